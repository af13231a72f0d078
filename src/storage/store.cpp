#include "loft/storage/store.hpp"

namespace loft::storage {

Result<std::shared_ptr<MessageBlock>> Store::read_block(TopicId topic, Offset from,
                                                        ReadLimits limits) const {
  auto read = this->read(topic, from, limits);
  if (!read) return tl::unexpected(std::move(read.error()));
  auto block = std::make_shared<MessageBlock>();
  block->decoded = std::move(*read);
  std::size_t header_count = 0;
  for (const auto& m : block->decoded) header_count += m.message.headers.size();
  // The spans below point into `headers`: it must not reallocate once they are taken.
  block->headers.reserve(header_count);
  block->messages.reserve(block->decoded.size());
  for (const auto& m : block->decoded) {
    const std::size_t first = block->headers.size();
    for (const auto& h : m.message.headers) block->headers.push_back({h.name, h.value});
    block->messages.push_back(StoredMessageView{
        m.offset, m.timestamp_ms, m.message.id, m.message.key,
        std::span<const HeaderView>{block->headers.data() + first, m.message.headers.size()},
        m.message.payload, m.message.subject, m.message.deliver_at_ms});
  }
  return block;
}

}  // namespace loft::storage
