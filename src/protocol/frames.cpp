#include "loft/protocol/frames.hpp"

#include <array>
#include <limits>
#include <string>
#include <utility>

namespace loft::protocol {

namespace {

// The frame type of each Body alternative, by variant index.
template <std::size_t... I>
constexpr std::array<FrameType, sizeof...(I)> make_type_table(std::index_sequence<I...>) {
  return {std::variant_alternative_t<I, Body>::kType...};
}
constexpr auto kTypeOfIndex =
    make_type_table(std::make_index_sequence<std::variant_size_v<Body>>{});

// Two alternatives with one type would make decoding ambiguous.
constexpr bool types_are_distinct() {
  for (std::size_t i = 0; i < kTypeOfIndex.size(); ++i) {
    for (std::size_t j = i + 1; j < kTypeOfIndex.size(); ++j) {
      if (kTypeOfIndex[i] == kTypeOfIndex[j]) return false;
    }
  }
  return true;
}
static_assert(types_are_distinct(), "two Body alternatives have the same kType");

}  // namespace

FrameType type_of(const Body& body) noexcept {
  // A valueless Body (an exception during assignment) has no type; call it an error frame.
  const auto i = body.index();
  return i < kTypeOfIndex.size() ? kTypeOfIndex[i] : FrameType::error;
}

bool is_fatal(Errc code) noexcept {
  switch (code) {
    case Errc::malformed_frame:
    case Errc::frame_too_large:
    case Errc::unsupported_version:
    case Errc::handshake_required:
    case Errc::unknown_frame_type:
    case Errc::too_many_connections:
    case Errc::handshake_timeout:
    case Errc::frame_timeout:
    case Errc::auth_failures:
      return true;
    default:
      return false;
  }
}

}  // namespace loft::protocol

namespace loft::protocol {

Result<std::int64_t> resolve_delay(std::int64_t delay_ms, std::int64_t now_ms) {
  if (delay_ms < 0) {
    return fail(Errc::invalid_request,
                "delay_ms " + std::to_string(delay_ms) + " is negative: a delay is 0 ms or more");
  }
  if (delay_ms == 0) return std::int64_t{0};
  if (now_ms > 0 && delay_ms > std::numeric_limits<std::int64_t>::max() - now_ms) {
    return fail(Errc::invalid_request, "delay_ms " + std::to_string(delay_ms) +
                                           " is too large: the time it gives overflows");
  }
  return now_ms + delay_ms;
}

}  // namespace loft::protocol
