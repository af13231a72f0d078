#include "loft/nats/headers.hpp"

#include <array>
#include <charconv>

namespace loft::nats {
namespace {

constexpr std::string_view kVersion = "NATS/1.0";
constexpr std::string_view kMarker = "%%";
constexpr std::string_view kHex = "0123456789ABCDEF";

bool is_header_blank(char c) noexcept { return c == ' ' || c == '\t'; }

auto byte(char c) noexcept { return static_cast<unsigned char>(c); }

// Stays as it is inside the encoded form.
bool keeps(char c) noexcept { return byte(c) >= 0x21 && byte(c) <= 0x7e && c != '%' && c != ':'; }

// Well-formed UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
bool valid_utf8(std::string_view s) noexcept {
  std::size_t i = 0;
  while (i < s.size()) {
    const unsigned b = byte(s[i]);
    std::size_t n = 0;
    unsigned lo = 0x80;
    unsigned hi = 0xbf;
    if (b < 0x80) {
      ++i;
      continue;
    }
    if (b >= 0xc2 && b <= 0xdf) {
      n = 1;
    } else if (b >= 0xe0 && b <= 0xef) {
      n = 2;
      if (b == 0xe0) lo = 0xa0;
      if (b == 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      n = 3;
      if (b == 0xf0) lo = 0x90;
      if (b == 0xf4) hi = 0x8f;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      const unsigned c = byte(s[i + k]);
      if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xbf)) return false;
    }
    i += n + 1;
  }
  return true;
}

bool plain_name(std::string_view name) noexcept {
  if (name.empty() || name.starts_with(kMarker)) return false;
  for (const char c : name) {
    if (byte(c) < 0x21 || byte(c) > 0x7e || c == ':') return false;
  }
  return true;
}

bool plain_value(std::string_view value) noexcept {
  if (value.starts_with(kMarker)) return false;
  if (!value.empty() && (is_header_blank(value.front()) || is_header_blank(value.back())))
    return false;
  for (const char c : value) {
    if (byte(c) < 0x20 || byte(c) == 0x7f) return false;
  }
  return valid_utf8(value);
}

std::size_t encoded_size(std::string_view s, bool plain) noexcept {
  if (plain) return s.size();
  std::size_t n = kMarker.size();
  for (const char c : s) n += keeps(c) ? 1 : 3;
  return n;
}

void append_encoded(std::string& out, std::string_view s, bool plain) {
  if (plain) {
    out += s;
    return;
  }
  out += kMarker;
  for (const char c : s) {
    if (keeps(c)) {
      out += c;
    } else {
      out += '%';
      out += kHex[byte(c) >> 4];
      out += kHex[byte(c) & 0xf];
    }
  }
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string_view trim_header_blanks(std::string_view s) noexcept {
  while (!s.empty() && is_header_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_header_blank(s.back())) s.remove_suffix(1);
  return s;
}

std::size_t status_line_size(std::uint16_t status, std::string_view description) noexcept {
  std::size_t n = kVersion.size() + 2;
  if (status != 0) {
    n += 4;
    if (!description.empty()) n += 1 + description.size();
  }
  return n;
}

template <class H>
std::size_t size_of(std::uint16_t status, std::string_view description,
                    std::span<const H> headers) noexcept {
  std::size_t n = status_line_size(status, description) + 2;
  for (const auto& h : headers) {
    n += encoded_size(h.name, plain_name(h.name)) + 2 +
         encoded_size(h.value, plain_value(h.value)) + 2;
  }
  return n;
}

template <class H>
void append_block(std::string& out, std::uint16_t status, std::string_view description,
                  std::span<const H> headers) {
  out += kVersion;
  if (status != 0) {
    std::array<char, 8> digits{};
    const auto r = std::to_chars(digits.data(), digits.data() + digits.size(), status);
    out += ' ';
    out.append(digits.data(), r.ptr);
    if (!description.empty()) {
      out += ' ';
      out += description;
    }
  }
  out += "\r\n";
  for (const auto& h : headers) {
    append_encoded(out, h.name, plain_name(h.name));
    out += ": ";
    append_encoded(out, h.value, plain_value(h.value));
    out += "\r\n";
  }
  out += "\r\n";
}

Result<std::uint16_t> parse_status(std::string_view s) {
  if (s.size() != 3) return fail(ErrorCode::bad_header, "status is not 3 digits");
  std::uint16_t n = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return fail(ErrorCode::bad_header, "status is not 3 digits");
    n = static_cast<std::uint16_t>(n * 10 + (c - '0'));
  }
  if (n < 100) return fail(ErrorCode::bad_header, "status below 100");
  return n;
}

}  // namespace

std::string encode_header_name(std::string_view name) {
  std::string out;
  append_encoded(out, name, plain_name(name));
  return out;
}

std::string encode_header_value(std::string_view value) {
  std::string out;
  append_encoded(out, value, plain_value(value));
  return out;
}

std::string decode_header_text(std::string_view text) {
  if (!text.starts_with(kMarker)) return std::string(text);
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = kMarker.size(); i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    const int hi = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
    const int lo = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
    if (hi < 0 || lo < 0) return std::string(text);  // not ours: kept as it is
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::size_t headers_size(std::uint16_t status, std::string_view description,
                         std::span<const HeaderView> headers) {
  return size_of(status, description, headers);
}
std::size_t headers_size(std::uint16_t status, std::string_view description,
                         std::span<const Header> headers) {
  return size_of(status, description, headers);
}
void append_headers(std::string& out, std::uint16_t status, std::string_view description,
                    std::span<const HeaderView> headers) {
  append_block(out, status, description, headers);
}
void append_headers(std::string& out, std::uint16_t status, std::string_view description,
                    std::span<const Header> headers) {
  append_block(out, status, description, headers);
}

Result<HeaderBlock> parse_headers(std::string_view block) {
  const auto bad = [](std::string what) { return fail(ErrorCode::bad_header, std::move(what)); };
  if (!block.starts_with(kVersion)) return bad("does not begin with NATS/1.0");
  const std::size_t first_end = block.find("\r\n");
  if (first_end == std::string_view::npos) return bad("no CRLF after NATS/1.0");
  HeaderBlock out;
  if (block.substr(0, first_end).find('\n') != std::string_view::npos) {
    return bad("a bare LF in the status line");
  }
  const std::string_view status_line = block.substr(kVersion.size(), first_end - kVersion.size());
  if (!status_line.empty()) {
    if (!is_header_blank(status_line.front())) return bad("no blank after NATS/1.0");
    const std::string_view rest = trim_header_blanks(status_line);
    if (!rest.empty()) {
      const std::size_t blank = rest.find_first_of(" \t");
      auto status = parse_status(rest.substr(0, blank));
      if (!status) return tl::unexpected(status.error());
      out.status = *status;
      if (blank != std::string_view::npos) out.description = trim_header_blanks(rest.substr(blank));
    }
  }
  std::size_t at = first_end + 2;
  for (;;) {
    const std::size_t end = block.find("\r\n", at);
    if (end == std::string_view::npos) return bad("no empty line at the end");
    const std::string_view line = block.substr(at, end - at);
    at = end + 2;
    if (line.empty()) break;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return bad("a header line without ':'");
    const std::string_view name = line.substr(0, colon);
    if (name.empty()) return bad("an empty header name");
    for (const char c : line) {
      if (c == '\r' || c == '\n') return bad("a bare CR or LF in a header line");
    }
    for (const char c : name) {
      if (byte(c) < 0x21 || byte(c) > 0x7e) return bad("a space or control byte in a name");
    }
    out.headers.push_back(Header{decode_header_text(name),
                                 decode_header_text(trim_header_blanks(line.substr(colon + 1)))});
  }
  if (at != block.size()) return bad("bytes after the empty line");
  return out;
}

}  // namespace loft::nats
