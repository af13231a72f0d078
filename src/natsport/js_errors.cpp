#include "js_errors.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace loft::natsport::js {

ApiError api_error(const ErrorKind& kind) {
  return ApiError{kind.code, kind.err_code, std::string(kind.description)};
}

ApiError api_error(const ErrorKind& kind, std::string description) {
  return ApiError{kind.code, kind.err_code, std::move(description)};
}

std::string response_type(std::string_view name) {
  std::string type = "io.nats.jetstream.api.v1.";
  type += name;
  type += "_response";
  return type;
}

std::string error_response(std::string_view name, const ApiError& error) {
  boost::json::object body;
  body["type"] = response_type(name);
  boost::json::object e;
  e["code"] = error.code;
  e["err_code"] = error.err_code;
  e["description"] = error.description;
  body["error"] = std::move(e);
  return boost::json::serialize(body);
}

namespace {

// The length of the UTF-8 sequence at the start of `s`, 0 if it is not one (overlong forms,
// surrogates and code points above U+10FFFF are not).
std::size_t utf8_length(std::string_view s) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char b0 = byte(0);
  if (b0 < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80;  // the range of the second byte
  unsigned char hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (s.size() < 2 || byte(1) < lo || byte(1) > hi) return 0;
  for (std::size_t i = 2; i < n; ++i) {
    if (i >= s.size() || byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return n;
}

}  // namespace

std::string valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const std::size_t n = utf8_length(text);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      text.remove_prefix(1);
      continue;
    }
    out.append(text.substr(0, n));
    text.remove_prefix(n);
  }
  return out;
}

}  // namespace loft::natsport::js
