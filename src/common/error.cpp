#include "loft/common/error.hpp"

namespace loft {

std::string_view errc_text(Errc code) noexcept {
  switch (code) {
    case Errc::ok:
      return "ok";
    case Errc::malformed_frame:
      return "malformed frame";
    case Errc::frame_too_large:
      return "frame too large";
    case Errc::unsupported_version:
      return "unsupported protocol version";
    case Errc::handshake_required:
      return "handshake required";
    case Errc::unknown_frame_type:
      return "unknown frame type";
    case Errc::invalid_request:
      return "invalid request";
    case Errc::invalid_name:
      return "invalid name";
    case Errc::topic_not_found:
      return "topic not found";
    case Errc::topic_exists:
      return "topic already exists";
    case Errc::message_too_large:
      return "message too large";
    case Errc::id_too_large:
      return "message id too large";
    case Errc::key_too_large:
      return "key too large";
    case Errc::headers_too_large:
      return "headers too large";
    case Errc::group_not_found:
      return "group not found";
    case Errc::unknown_subscription:
      return "unknown subscription";
    case Errc::group_exists:
      return "group already exists";
    case Errc::dedup_conflict:
      return "message id conflict";
    case Errc::invalid_subject:
      return "invalid subject";
    case Errc::subjects_overlap:
      return "subjects overlap";
    case Errc::expectation_failed:
      return "expectation failed";
    case Errc::delay_too_long:
      return "delay too long";
    case Errc::backup_failed:
      return "backup failed";
    case Errc::forbidden:
      return "forbidden";
    case Errc::unauthenticated:
      return "unauthenticated";
    case Errc::authentication_failed:
      return "authentication failed";
    case Errc::storage_error:
      return "storage error";
    case Errc::shutting_down:
      return "server shutting down";
    case Errc::internal_error:
      return "internal error";
    case Errc::too_many_connections:
      return "too many connections";
    case Errc::handshake_timeout:
      return "handshake timeout";
    case Errc::frame_timeout:
      return "frame timeout";
    case Errc::auth_failures:
      return "too many authentication failures";
    case Errc::storage_full:
      return "storage full";
    case Errc::connection_error:
      return "connection error";
    case Errc::timeout:
      return "timeout";
  }
  return "unknown error";
}

Errc errc_from_wire(std::uint16_t value) noexcept {
  const auto code = static_cast<Errc>(value);
  // errc_text falls through to "unknown error" only for values outside the enum.
  return errc_text(code) == "unknown error" ? Errc::internal_error : code;
}

std::string Error::to_string() const {
  std::string out{errc_text(code)};
  // A detail that already begins with the text (as the server's often do: "storage full: disk
  // full ...") is not prefixed a second time.
  if (detail.starts_with(out)) return detail;
  if (!detail.empty()) {
    out += ": ";
    out += detail;
  }
  return out;
}

}  // namespace loft
