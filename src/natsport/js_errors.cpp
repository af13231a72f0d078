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

}  // namespace loft::natsport::js
