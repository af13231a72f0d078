#pragma once
// A message as producers write it and consumers read it. Shared by the protocol codec and the
// storage layer, so neither has to translate the other's type.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "loft/common/ids.hpp"

namespace loft {

struct Header {
  std::string name;   // UTF-8 text
  std::string value;  // bytes
  bool operator==(const Header&) const = default;
};

struct Message {
  std::string id;   // optional message id (empty = none); bytes
  std::string key;  // optional key (empty = none); bytes
  std::vector<Header> headers;
  std::string payload;  // bytes, any content including NUL
  // Optional subject (loft/common/subject.hpp; empty = none, which wherever a subject is shown
  // or matched means the topic's name). Last, and with an initializer, so that aggregate
  // initialisations written before subjects (designated ones too) keep their meaning.
  std::string subject{};
  // When the message becomes deliverable, in milliseconds since the Unix epoch by loftd's clock;
  // 0 = at once (docs/semantics.md, "Delayed delivery"). Front ends turn a relative delay into
  // this time with loftd's clock when the publish arrives; the broker refuses one further
  // ahead than its max_delivery_delay (delay_too_long) and takes a time in the past as now.
  std::int64_t deliver_at_ms = 0;
  bool operator==(const Message&) const = default;

  // Bytes counted against the topic's size: id + key + subject + header names/values + payload.
  std::uint64_t size_bytes() const {
    std::uint64_t n = id.size() + key.size() + subject.size() + payload.size();
    for (const auto& h : headers) n += h.name.size() + h.value.size();
    return n;
  }
};

// What one message may hold; the broker refuses a publish past any of these, whichever front
// end it came through (message_too_large, id_too_large, key_too_large, headers_too_large).
struct MessageLimits {
  std::uint32_t max_message_size = 1024 * 1024;  // payload bytes
  std::uint16_t max_id_size = 256;
  std::uint16_t max_key_size = 1024;
  std::uint32_t max_headers_size = 64 * 1024;  // sum of header names and values
  bool operator==(const MessageLimits&) const = default;
};
// A header name is at most this long whatever max_headers_size says: the log and every wire
// carry it with a u16 length.
inline constexpr std::size_t kMaxHeaderNameSize = 65535;

// A message as the log holds it: with its offset and publish time.
struct StoredMessage {
  Offset offset;
  std::int64_t timestamp_ms = 0;  // publish time, milliseconds since the Unix epoch
  Message message;
  bool operator==(const StoredMessage&) const = default;
};

// A stored message's fields as views into bytes that something else owns (for delivery, a
// storage::MessageBlock): read and sent on without building a Message.
struct HeaderView {
  std::string_view name;
  std::string_view value;
};
struct StoredMessageView {
  Offset offset;
  std::int64_t timestamp_ms = 0;
  std::string_view id;
  std::string_view key;
  std::span<const HeaderView> headers;
  std::string_view payload;
  std::string_view subject{};      // empty = none (the topic's name)
  std::int64_t deliver_at_ms = 0;  // Message::deliver_at_ms

  // Message::size_bytes() of the message it shows.
  std::uint64_t size_bytes() const {
    std::uint64_t n = id.size() + key.size() + subject.size() + payload.size();
    for (const auto& h : headers) n += h.name.size() + h.value.size();
    return n;
  }
};

}  // namespace loft
