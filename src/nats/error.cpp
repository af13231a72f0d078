#include "loft/nats/error.hpp"

namespace loft::nats {

std::string_view Error::text() const noexcept {
  switch (code) {
    case ErrorCode::unknown_operation:
    case ErrorCode::bad_arguments:
      return kErrUnknownOperation;
    case ErrorCode::max_control_line:
      return kErrMaxControlLine;
    case ErrorCode::max_payload:
      return kErrMaxPayload;
    case ErrorCode::invalid_subject:
      return kErrInvalidSubject;
    case ErrorCode::invalid_publish_subject:
      return kErrInvalidPublishSubject;
    case ErrorCode::bad_header:
      return kErrBadHeader;
  }
  return kErrUnknownOperation;
}

bool Error::fatal() const noexcept {
  switch (code) {
    case ErrorCode::unknown_operation:
    case ErrorCode::bad_arguments:
    case ErrorCode::max_control_line:
    case ErrorCode::max_payload:
      return true;
    case ErrorCode::invalid_subject:
    case ErrorCode::invalid_publish_subject:
    case ErrorCode::bad_header:
      return false;
  }
  return true;
}

}  // namespace loft::nats
