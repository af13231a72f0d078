#pragma once
// NATS message headers: `NATS/1.0[ <status>[ <description>]]\r\n(Name: value\r\n)*\r\n`.
//
// loft headers are arbitrary bytes; NATS header lines are not. The rule (docs/nats.md):
// - A name is sent as it is when it is non-empty and only printable ASCII (0x21-0x7E) without
//   ':' and does not begin with "%%". A value is sent as it is when it is printable ASCII or
//   valid UTF-8 (no control bytes: 0x00-0x1F, 0x7F), has no space or tab at either end (NATS
//   clients trim them) and does not begin with "%%".
// - Any other name or value is sent as "%%" followed by its bytes percent-encoded: every byte
//   outside 0x21-0x7E, and '%' and ':', becomes %XX (upper-case hex); the rest stay.
// - Reading, a name or value that begins with "%%" and whose rest is well-formed percent-
//   encoding is decoded; anything else (a NATS client's own "%%zz") is kept as it is.
// So every loft header survives loft -> NATS -> loft unchanged, and the common ones (ASCII
// names, text values) look to a NATS client exactly as they do in loft. Names keep their
// case; a name may appear several times (several values), in order.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "loft/common/message.hpp"
#include "loft/nats/error.hpp"

namespace loft::nats {

// Status codes loft sends in status-only blocks.
inline constexpr std::uint16_t kStatusIdleHeartbeat = 100;  // also flow control
inline constexpr std::uint16_t kStatusNoMessages = 404;
inline constexpr std::uint16_t kStatusRequestTimeout = 408;
inline constexpr std::uint16_t kStatusConflict = 409;
inline constexpr std::uint16_t kStatusNoResponders = 503;

struct HeaderBlock {
  std::uint16_t status = 0;     // 0: none (a plain `NATS/1.0` line)
  std::string description;      // may be empty; only with a status
  std::vector<Header> headers;  // decoded loft form, in wire order
  bool operator==(const HeaderBlock&) const = default;
};

// Parses a whole block (HPub::headers). Errors: bad_header.
Result<HeaderBlock> parse_headers(std::string_view block);

// Bytes append_headers writes for the same arguments (for the HMSG line before the block).
// REQUIRES: status 0 or 100-999; description printable ASCII, empty when status is 0.
std::size_t headers_size(std::uint16_t status, std::string_view description,
                         std::span<const HeaderView> headers);
std::size_t headers_size(std::uint16_t status, std::string_view description,
                         std::span<const Header> headers);
void append_headers(std::string& out, std::uint16_t status, std::string_view description,
                    std::span<const HeaderView> headers);
void append_headers(std::string& out, std::uint16_t status, std::string_view description,
                    std::span<const Header> headers);

// One name or value by the rule above.
std::string encode_header_name(std::string_view name);
std::string encode_header_value(std::string_view value);
std::string decode_header_text(std::string_view text);

}  // namespace loft::nats
