#pragma once
// The NATS client protocol as a client sends it (CONNECT, PUB, HPUB, SUB, UNSUB, PING, PONG),
// read incrementally from any chunking of the byte stream.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "loft/nats/error.hpp"

namespace loft::nats {

// Ops hold views into the Parser's buffer (see Parser for how long they stay valid).
struct Connect {
  std::string_view json;  // the raw JSON object, parsed by the front end (see README.md)
  bool operator==(const Connect&) const = default;
};
struct Pub {
  std::string_view subject;
  std::string_view reply;  // empty: none
  std::string_view payload;
  bool operator==(const Pub&) const = default;
};
struct HPub {
  std::string_view subject;
  std::string_view reply;    // empty: none
  std::string_view headers;  // the whole block, `NATS/1.0...\r\n\r\n` (parse_headers)
  std::string_view payload;
  bool operator==(const HPub&) const = default;
};
struct Sub {
  std::string_view subject;
  std::string_view queue;  // empty: none
  std::string_view sid;
  bool operator==(const Sub&) const = default;
};
struct Unsub {
  std::string_view sid;
  std::optional<std::uint64_t> max_msgs;
  bool operator==(const Unsub&) const = default;
};
struct Ping {
  bool operator==(const Ping&) const = default;
};
struct Pong {
  bool operator==(const Pong&) const = default;
};
using Op = std::variant<Connect, Pub, HPub, Sub, Unsub, Ping, Pong>;

// The canonical bytes of an op (single spaces, upper-case names, CRLF), as a client would send
// it: parsing them gives the op back (tests, fuzzing).
void append_op(std::string& out, const Op& op);

struct ParserLimits {
  // Longest control line (op name and arguments, without CRLF). nats-server counts the
  // arguments only; the whole line is simpler to explain and differs by the op name.
  std::size_t max_control_line = 4096;
  // Largest PUB payload or HPUB headers + payload (nats-server's max_payload, default 1 MB).
  std::uint64_t max_payload = std::uint64_t{1} << 20;
};

// Incremental reader of a client's byte stream. It owns one buffer: the front end reads from
// the socket straight into it (prepare/commit) or copies into it (feed), then calls next()
// until it returns nullopt.
//
// Lifetime: the views of an Op stay valid until the next prepare() or feed(); next() does not
// move bytes, so every op of one read can be handled as a batch without copying.
// Rules (as nats-server): op names are case-insensitive; arguments are separated by any run of
// spaces and tabs; a line ends with CRLF or a bare LF; a payload must be followed by CRLF;
// sizes are decimal digits only. Subjects are not validated here (is_valid_*_subject): a bad
// SUB subject is an -ERR that keeps the connection, not a stream error. Not accepted from a
// client (nats-server ignores them): INFO, MSG, HMSG, +OK, -ERR.
// Not thread-safe: one per connection, used by the connection's reader.
class Parser {
 public:
  // A buffer grown past this for a large payload is given back once it is empty again.
  static constexpr std::size_t kKeepCapacity = std::size_t{1} << 20;

  explicit Parser(ParserLimits limits = {}) : limits_(limits) {}

  // Both take effect from the next call of next(), for an op in progress too (INFO announces
  // max_payload; a server may lower it before CONNECT).
  void set_max_control_line(std::size_t n) noexcept { limits_.max_control_line = n; }
  void set_max_payload(std::uint64_t n) noexcept { limits_.max_payload = n; }
  const ParserLimits& limits() const noexcept { return limits_; }

  // Room for the next read of at least `at_least` bytes. Drops the bytes of ops next() has
  // returned (invalidating their views). The span is valid until the next call.
  std::span<char> prepare(std::size_t at_least);
  // Appends the first `n` bytes of the last prepare()'s span. REQUIRES: n <= its size.
  void commit(std::size_t n) noexcept { end_ += n; }
  // prepare, copy, commit. Ignored after an error.
  void feed(std::string_view bytes);

  // The next complete op, nullopt when more bytes are needed, or the error that makes the
  // stream unusable (every later call returns it again). Garbage is refused as soon as the
  // op name cannot be one, an oversized line or payload as soon as it is announced or seen.
  Result<std::optional<Op>> next();

  // Bytes buffered that next() has not returned as ops.
  std::size_t buffered() const noexcept { return end_ - begin_; }

 private:
  ParserLimits limits_;
  std::vector<char> buf_;
  std::size_t begin_ = 0;  // first byte not yet returned as an op
  std::size_t end_ = 0;    // end of the bytes read
  std::optional<Error> error_;
};

}  // namespace loft::nats
