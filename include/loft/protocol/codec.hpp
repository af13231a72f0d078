#pragma once
// Encode and decode protocol frames, of versions 1 to 4 (docs/protocol.md, sections 17 to 19:
// version 2 gives Message a subject and GroupConfig a filter, version 3 adds retention modes
// and per-key ordering, version 4 a message's deliver_at_ms and a PUBLISH's delay_ms). Every
// function takes the version agreed in the handshake; HELLO and HELLO_OK are the same in every
// version. Pure functions over bytes: no sockets, no clocks. Decoding never reads past the span it
// is given and never allocates more than the frame's declared length allows; every structural
// problem is an Error with code malformed_frame, frame_too_large or unknown_frame_type.

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "loft/common/error.hpp"
#include "loft/protocol/frames.hpp"

namespace loft::protocol {

// Appends the complete frame (header and body) to `out`, in the layout of `version`. Text
// fields (client_name, server_name, error message) longer than 65535 bytes are cut to 65535.
// At version 1 a message's subject and a group config's filter are left out (that version has
// no field for them): a client checks it has nothing to leave out before it sends.
// REQUIRES: every other u16-prefixed field (topic names, message id and key, header names) is
// at most 65535 bytes and the frame fits a u32 length: the broker's message limits and topic
// name rules guarantee it. Throws std::length_error otherwise (a bug in the caller).
void encode(const Frame& frame, std::string& out, std::uint16_t version = kProtocolVersion);
std::string encode(const Frame& frame, std::uint16_t version = kProtocolVersion);

// Bytes one stored message adds to a FETCH_OK frame. A FETCH_OK frame is kFetchOkBaseSize plus
// the sum of encoded_size over its messages, so the server can keep a reply under
// max_frame_size without encoding it first.
inline constexpr std::size_t kFetchOkBaseSize = kHeaderSize + 8 + 8 + 4;
std::size_t encoded_size(const StoredMessage& message,
                         std::uint16_t version = kProtocolVersion) noexcept;

// The same for DELIVER: a DELIVER frame is deliver_base_size(topic, group) plus the sum of
// encoded_size over its messages, so the server can fill one up to max_frame_size.
constexpr std::size_t deliver_base_size(std::string_view topic, std::string_view group) noexcept {
  return kHeaderSize + 8 + 2 + topic.size() + 2 + group.size() + 4;
}
std::size_t encoded_size(const DeliveredMessage& message,
                         std::uint16_t version = kProtocolVersion) noexcept;

// Builds DELIVER frames straight from stored message views, with no Deliver or Message in
// between: what the server sends while a group drains. A frame it makes is byte for byte what
// encode() makes of Frame{0, Deliver{subscription, topic, group, messages}} with the same
// messages and attempts; the correlation id is 0 until set_correlation_id sets it (the
// connection knows its subscription's).
// REQUIRES: the limits encode() requires (topic and group names, message ids and keys and
// header names at most 65535 bytes, at most 65535 headers); throws std::length_error if not.
class DeliverWriter {
 public:
  DeliverWriter(std::uint64_t subscription, std::string_view topic, std::string_view group,
                std::uint16_t version = kProtocolVersion);

  // The bytes one message adds to a frame: encoded_size() of the same DeliveredMessage.
  std::size_t encoded_size(const StoredMessageView& message) const noexcept;

  // The frame so far, in bytes, and its number of messages.
  std::size_t size() const noexcept { return frame_.size(); }
  std::size_t count() const noexcept { return count_; }

  // On std::length_error the frame is left as it was.
  void add(std::uint32_t attempt, const StoredMessageView& message);
  // The finished frame; the writer starts a new, empty one. REQUIRES: count() > 0 (a DELIVER
  // carries at least one message).
  std::string take();

 private:
  std::uint16_t version_;
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

// Decodes the body of a frame whose header has been decoded, in the layout of `version`.
// `body` is exactly header.length - 8 bytes. Fails with unknown_frame_type for a type the
// protocol does not define and malformed_frame for bad lengths, counts or trailing bytes.
Result<Body> decode_body(const FrameHeader& header, std::span<const char> body,
                         std::uint16_t version = kProtocolVersion);

// How many results a PUBLISH_OK within `max_frame_size` can carry: a PUBLISH of more
// messages cannot be answered (invalid_request).
std::size_t max_publish_results(std::uint32_t max_frame_size) noexcept;

// The frame reader of a byte stream: what the client's reader thread and the server's sessions
// read with (and the tests and fuzz targets). It owns the read buffer, so a reader reads from
// its socket straight into it (prepare(), then commit() what arrived) or feed()s bytes it
// already has; next() then returns each complete frame in turn. One chunk read can bring in
// thousands of small frames: next() returns them one by one without another read.
// Not thread-safe: used by one thread (or strand) at a time.
class Decoder {
 public:
  // A buffer grown past this for a large frame is given back once the frame is consumed, so a
  // long-lived connection keeps a large allocation only while it needs one.
  static constexpr std::size_t kKeepCapacity = std::size_t{4} << 20;

  explicit Decoder(std::uint32_t max_frame_size) : max_frame_size_(max_frame_size) {}
  // Changes the limit from the next call of next() or prepare() on, for the frame in progress
  // too (loftd raises it once a connection has completed its handshake).
  void set_max_frame_size(std::uint32_t max_frame_size) noexcept {
    max_frame_size_ = max_frame_size;
  }
  // The protocol version whose layouts the next frames are decoded with (kProtocolVersion
  // until set): a reader sets the version agreed in the handshake as soon as it has it, before
  // it decodes the frame after HELLO (or HELLO_OK).
  void set_version(std::uint16_t version) noexcept { version_ = version; }
  std::uint16_t version() const noexcept { return version_; }

  // Room at the end of the buffer for the next read: a span of at least `at_least` bytes and at
  // least what the frame begun in the buffer still lacks once its header is in (so one read
  // can complete a large frame). Compacts first: bytes of frames next() returned are dropped,
  // the rest moved to the front, so the buffer stays near one read plus one frame. The span
  // is valid until the next prepare(), commit(), feed() or next().
  std::span<char> prepare(std::size_t at_least);
  // Appends the first `n` bytes of the last prepare()'s span to the stream.
  // REQUIRES: n <= that span's size, and no other call since that prepare().
  void commit(std::size_t n) noexcept { end_ += n; }
  // Appends a copy of `bytes`: prepare, copy, commit. Ignored after an error.
  void feed(std::span<const char> bytes);

  // A complete frame, nullopt when more bytes are needed, or the error that makes the stream
  // unusable: malformed_frame or frame_too_large (from the header alone, as soon as its 12
  // bytes are in), unknown_frame_type or malformed_frame (from the body). After an error,
  // every later call returns the same error.
  Result<std::optional<Frame>> next();

  // Bytes buffered that next() has not returned as a frame.
  std::size_t buffered() const noexcept { return end_ - begin_; }
  // True while a frame has begun and is not complete: bytes are buffered, and next() needs
  // more of them before it can return a frame or an error (what a frame timeout measures).
  bool partial_frame() const noexcept;
  // Wire bytes (the 12-byte header included) of the frame the last successful next() returned.
  std::size_t last_frame_size() const noexcept { return last_frame_size_; }
  // The correlation id the peer sent in the header of the frame that made next() fail (the
  // raw header field even when the header itself is what failed), so that an ERROR reply can
  // echo it. 0 until next() has failed.
  std::uint32_t failed_correlation_id() const noexcept { return failed_correlation_id_; }
  // Bytes allocated for the buffer (for tests of its bounds).
  std::size_t capacity() const noexcept { return buffer_.size(); }

 private:
  void make_room(std::size_t n);
  Result<std::optional<Frame>> fail_with(std::uint32_t correlation_id, Error error);

  std::uint32_t max_frame_size_;
  std::uint16_t version_ = kProtocolVersion;
  // buffer_[begin_, end_) holds bytes not yet returned as frames; the rest is room for reads.
  // Never zero-filled between reads: it grows (once) only for a frame larger than it.
  std::vector<char> buffer_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::size_t last_frame_size_ = 0;
  std::uint32_t failed_correlation_id_ = 0;
  std::optional<Error> failed_;
};

}  // namespace loft::protocol
