#pragma once
// Encode and decode protocol v1 frames. Pure functions over bytes: no sockets, no clocks.
// Decoding never reads past the span it is given and never allocates more than the frame's
// declared length allows; every structural problem is an Error with code malformed_frame,
// frame_too_large or unknown_frame_type.

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "loft/common/error.hpp"
#include "loft/protocol/frames.hpp"

namespace loft::protocol {

// Appends the complete frame (header and body) to `out`. Text fields (client_name,
// server_name, error message) longer than 65535 bytes are cut to 65535.
// REQUIRES: every other u16-prefixed field (topic names, message id and key, header names) is
// at most 65535 bytes and the frame fits a u32 length: check_limits and the topic name rules
// guarantee it. Throws std::length_error otherwise (a bug in the caller).
void encode(const Frame& frame, std::string& out);
std::string encode(const Frame& frame);

// Bytes one stored message adds to a FETCH_OK frame. A FETCH_OK frame is kFetchOkBaseSize plus
// the sum of encoded_size over its messages, so the server can keep a reply under
// max_frame_size without encoding it first.
inline constexpr std::size_t kFetchOkBaseSize = kHeaderSize + 8 + 8 + 4;
std::size_t encoded_size(const StoredMessage& message) noexcept;

// The same for DELIVER: a DELIVER frame is deliver_base_size(topic, group) plus the sum of
// encoded_size over its messages, so the server can fill one up to max_frame_size.
constexpr std::size_t deliver_base_size(std::string_view topic, std::string_view group) noexcept {
  return kHeaderSize + 8 + 2 + topic.size() + 2 + group.size() + 4;
}
std::size_t encoded_size(const DeliveredMessage& message) noexcept;

// Builds DELIVER frames straight from stored message views, with no Deliver or Message in
// between: what the server sends while a group drains. A frame it makes is byte for byte what
// encode() makes of Frame{0, Deliver{subscription, topic, group, messages}} with the same
// messages and attempts; the correlation id is 0 until set_correlation_id sets it (the
// connection knows its subscription's).
// REQUIRES: the limits encode() requires (topic and group names, message ids and keys and
// header names at most 65535 bytes, at most 65535 headers); throws std::length_error if not.
class DeliverWriter {
 public:
  DeliverWriter(std::uint64_t subscription, std::string_view topic, std::string_view group);

  // The bytes one message adds to a frame: encoded_size() of the same DeliveredMessage.
  static std::size_t encoded_size(const StoredMessageView& message) noexcept;

  // The frame so far, in bytes, and its number of messages.
  std::size_t size() const noexcept { return frame_.size(); }
  std::size_t count() const noexcept { return count_; }

  // On std::length_error the frame is left as it was.
  void add(std::uint32_t attempt, const StoredMessageView& message);
  // The finished frame; the writer starts a new, empty one. REQUIRES: count() > 0 (a DELIVER
  // carries at least one message).
  std::string take();

 private:
  std::string prefix_;  // header and fields up to the count, as every frame begins
  std::string frame_;
  std::uint32_t count_ = 0;
};

// Overwrites the correlation id of an encoded frame. REQUIRES: frame.size() >= kHeaderSize.
void set_correlation_id(std::span<char> frame, std::uint32_t correlation_id) noexcept;

// The raw header fields with no checks at all: for the correlation id of a frame that
// decode_header rejected (ERROR frame_too_large echoes it).
// REQUIRES: bytes.size() >= kHeaderSize.
FrameHeader peek_header(std::span<const char> bytes) noexcept;

// Decodes the fixed 12-byte header. Fails with frame_too_large when length + 4 exceeds
// max_frame_size, and with malformed_frame when length < kMinLength.
// REQUIRES: bytes.size() >= kHeaderSize.
Result<FrameHeader> decode_header(std::span<const char> bytes, std::uint32_t max_frame_size);

// Decodes the body of a frame whose header has been decoded. `body` is exactly
// header.length - 8 bytes. Fails with unknown_frame_type for a type v1 does not define and
// malformed_frame for bad lengths, counts or trailing bytes.
Result<Body> decode_body(const FrameHeader& header, std::span<const char> body);

// How many results a PUBLISH_OK within `max_frame_size` can carry: a PUBLISH of more
// messages cannot be answered (invalid_request).
std::size_t max_publish_results(std::uint32_t max_frame_size) noexcept;

// Incremental decoder over a byte stream (for tests and fuzzing; the server's sessions and the
// client's reader keep their own 64 KiB read buffers and call decode_header/decode_body).
class Decoder {
 public:
  explicit Decoder(std::uint32_t max_frame_size) : max_frame_size_(max_frame_size) {}
  void feed(std::span<const char> bytes);
  // A complete frame, nullopt when more bytes are needed, or the error that makes the stream
  // unusable (after an error, every later call returns the same error).
  Result<std::optional<Frame>> next();
  std::size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  std::uint32_t max_frame_size_;
  std::string buffer_;
  std::size_t consumed_ = 0;
  std::optional<Error> failed_;
};

}  // namespace loft::protocol
