#pragma once
// The ReadLimits rule, shared by every store so they agree to the message: stop after
// max_messages, or after the message whose size_bytes() makes the total reach max_bytes; the
// first message is always taken (a message larger than max_bytes must not stall a consumer).
// max_messages == 0 is treated as 1 for the same reason.

#include <cstddef>
#include <cstdint>

#include "loft/common/message.hpp"
#include "loft/storage/store.hpp"

namespace loft::storage {

class ReadBudget {
 public:
  explicit ReadBudget(ReadLimits limits) : limits_(limits) {}

  // Counts one taken message; returns whether another one may follow.
  bool take(const Message& message) { return take(message.size_bytes()); }
  bool take(std::uint64_t size_bytes) {
    ++messages_;
    bytes_ += size_bytes;
    return messages_ < limits_.max_messages && bytes_ < limits_.max_bytes;
  }

 private:
  ReadLimits limits_;
  std::size_t messages_ = 0;
  std::uint64_t bytes_ = 0;
};

}  // namespace loft::storage
