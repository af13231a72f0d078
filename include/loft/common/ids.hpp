#pragma once
// Strong ids: an Offset cannot be passed where a TopicId is expected.

#include <compare>
#include <cstdint>
#include <functional>

namespace loft {

template <class Tag, class Rep>
struct StrongId {
  Rep value{};
  constexpr StrongId() = default;
  constexpr explicit StrongId(Rep v) : value(v) {}
  constexpr auto operator<=>(const StrongId&) const = default;
};

using Offset = StrongId<struct OffsetTag, std::uint64_t>;
using TopicId = StrongId<struct TopicIdTag, std::uint32_t>;
using ConsumerId = StrongId<struct ConsumerIdTag, std::uint64_t>;

}  // namespace loft

template <class Tag, class Rep>
struct std::hash<loft::StrongId<Tag, Rep>> {
  std::size_t operator()(const loft::StrongId<Tag, Rep>& id) const noexcept {
    return std::hash<Rep>{}(id.value);
  }
};
