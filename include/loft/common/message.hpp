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
  bool operator==(const Message&) const = default;

  // Bytes counted against the topic's size: id + key + header names/values + payload.
  std::uint64_t size_bytes() const {
    std::uint64_t n = id.size() + key.size() + payload.size();
    for (const auto& h : headers) n += h.name.size() + h.value.size();
    return n;
  }
};

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

  // Message::size_bytes() of the message it shows.
  std::uint64_t size_bytes() const {
    std::uint64_t n = id.size() + key.size() + payload.size();
    for (const auto& h : headers) n += h.name.size() + h.value.size();
    return n;
  }
};

}  // namespace loft
