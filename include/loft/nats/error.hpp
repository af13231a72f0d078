#pragma once
// Errors of the NATS client protocol as values. Each code carries the text a NATS client
// expects after `-ERR '...'` (the texts nats-server 2.9 sends), so the front end writes
// `append_err(out, error.text())` and logs `detail`, which is for the log only.

#include <cstdint>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <utility>

namespace loft::nats {

// Texts nats-server sends; clients compare some of them (case-insensitively).
inline constexpr std::string_view kErrUnknownOperation = "Unknown Protocol Operation";
inline constexpr std::string_view kErrMaxControlLine = "maximum control line exceeded";
inline constexpr std::string_view kErrMaxPayload = "Maximum Payload Violation";
inline constexpr std::string_view kErrInvalidSubject = "Invalid Subject";
inline constexpr std::string_view kErrInvalidPublishSubject = "Invalid Publish Subject";
inline constexpr std::string_view kErrBadHeader = "bad message header detected";
inline constexpr std::string_view kErrAuthorizationViolation = "Authorization Violation";
inline constexpr std::string_view kErrStaleConnection = "Stale Connection";

enum class ErrorCode : std::uint8_t {
  // Stream errors (the Parser cannot go on; the connection is closed after -ERR):
  unknown_operation,  // not an op a client sends, or no CRLF after a payload
  bad_arguments,      // wrong argument count, a bad size or count (nats-server closes without
                      // a -ERR; loft sends kErrUnknownOperation, the closest text clients know)
  max_control_line,   // a control line longer than ParserLimits::max_control_line
  max_payload,        // PUB/HPUB announcing more than ParserLimits::max_payload bytes
  // Request errors (the connection stays open):
  invalid_subject,          // SUB with an invalid subject or queue group
  invalid_publish_subject,  // PUB with wildcards or empty tokens (nats-server: pedantic only)
  bad_header,               // an HPUB headers block that is not `NATS/1.0...\r\n\r\n`
};

struct Error {
  ErrorCode code = ErrorCode::unknown_operation;
  std::string detail;  // for the log: what was wrong, never sent to the client

  // The text for `-ERR '<text>'`.
  std::string_view text() const noexcept;
  // True for the codes after which the parser's stream is unusable.
  bool fatal() const noexcept;
};

template <class T = void>
class [[nodiscard]] Result : public tl::expected<T, Error> {
 public:
  using tl::expected<T, Error>::expected;
  Result(const tl::expected<T, Error>& e) : tl::expected<T, Error>(e) {}
  Result(tl::expected<T, Error>&& e) : tl::expected<T, Error>(std::move(e)) {}
};

inline tl::unexpected<Error> fail(ErrorCode code, std::string detail) {
  return tl::unexpected<Error>(Error{code, std::move(detail)});
}

}  // namespace loft::nats
