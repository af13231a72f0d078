#pragma once
// Errors as values. Every expected failure in loft is an Error with a code from Errc and a
// human-readable detail. The numeric values of Errc are the wire error codes of protocol v1
// (docs/protocol.md, "Error codes"): they are stable, never renumber one.

#include <cstdint>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <utility>

namespace loft {

enum class Errc : std::uint16_t {
  ok = 0,
  // Protocol-level errors: the server closes the connection after sending them.
  malformed_frame = 1,
  frame_too_large = 2,
  unsupported_version = 3,
  handshake_required = 4,
  unknown_frame_type = 5,
  // Request errors: the connection stays open.
  invalid_request = 10,
  invalid_name = 11,
  topic_not_found = 12,
  topic_exists = 13,
  message_too_large = 14,
  id_too_large = 15,
  key_too_large = 16,
  headers_too_large = 17,
  group_not_found = 18,
  unknown_subscription = 19,
  group_exists = 23,
  dedup_conflict = 24,      // a message id already stored with a different payload
  invalid_subject = 25,     // a message subject or group filter that is not a valid subject
  subjects_overlap = 26,    // a topic's subjects would capture a subject another topic captures
  expectation_failed = 27,  // a conditional publish found its topic not as it expected
  delay_too_long = 28,      // a delayed publish due later than max_delivery_delay from now
  backup_failed = 40,       // BACKUP: the target exists, cannot be created, or the copy failed
  // Security (docs/security.md).
  forbidden = 41,              // the user may not do this operation on this topic
  unauthenticated = 42,        // the server has users and the connection did not authenticate
  authentication_failed = 43,  // AUTHENTICATE: wrong user, password or mechanism
  // Server-side conditions.
  storage_error = 20,
  shutting_down = 21,
  internal_error = 22,
  // Connection limits (the server closes the connection after sending them).
  too_many_connections = 30,
  handshake_timeout = 31,
  frame_timeout = 32,
  auth_failures = 33,  // too many failed AUTHENTICATE attempts on one connection
  storage_full = 35,   // the disk is full: nothing of the request was stored; retry later
  // Client-side only (never sent on the wire).
  connection_error = 100,
  timeout = 101,
};

// The fixed text of a code, as listed in docs/protocol.md.
std::string_view errc_text(Errc code) noexcept;
// The code for a wire value; unknown values map to internal_error.
Errc errc_from_wire(std::uint16_t value) noexcept;

struct Error {
  Errc code = Errc::internal_error;
  std::string detail;

  // "topic_not_found: topic 'x' does not exist"
  std::string to_string() const;
};

template <class T = void>
class [[nodiscard]] Result : public tl::expected<T, Error> {
 public:
  using tl::expected<T, Error>::expected;
  Result(const tl::expected<T, Error>& e) : tl::expected<T, Error>(e) {}
  Result(tl::expected<T, Error>&& e) : tl::expected<T, Error>(std::move(e)) {}
};

inline tl::unexpected<Error> fail(Errc code, std::string detail) {
  return tl::unexpected<Error>(Error{code, std::move(detail)});
}

}  // namespace loft
