#include "loft/common/units.hpp"

#include <array>
#include <charconv>
#include <limits>
#include <utility>

namespace loft {
namespace {

// Splits "123abc" into 123 and "abc". Fails on no digits or overflow.
Result<std::pair<std::uint64_t, std::string_view>> split_number(std::string_view text,
                                                                std::string_view what) {
  std::uint64_t n = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, n);
  if (ec == std::errc::result_out_of_range) {
    return fail(Errc::invalid_request,
                std::string(what) + " '" + std::string(text) + "' is too large");
  }
  if (ec != std::errc{} || ptr == text.data()) {
    return fail(Errc::invalid_request,
                std::string(what) + " '" + std::string(text) + "' must start with a number");
  }
  return std::pair{n, std::string_view(ptr, static_cast<std::size_t>(end - ptr))};
}

bool mul_overflows(std::uint64_t a, std::uint64_t b) {
  return b != 0 && a > std::numeric_limits<std::uint64_t>::max() / b;
}

}  // namespace

Result<std::chrono::microseconds> parse_duration(std::string_view text) {
  auto split = split_number(text, "duration");
  if (!split) return tl::unexpected(split.error());
  const auto [n, unit] = *split;
  static constexpr std::array<std::pair<std::string_view, std::uint64_t>, 6> kUnits{{
      {"us", 1},
      {"ms", 1'000},
      {"s", 1'000'000},
      {"m", 60'000'000},
      {"h", 3'600'000'000},
      {"d", 86'400'000'000},
  }};
  for (const auto& [name, mult] : kUnits) {
    if (unit == name) {
      if (mul_overflows(n, mult) ||
          n * mult > static_cast<std::uint64_t>(std::chrono::microseconds::max().count())) {
        return fail(Errc::invalid_request, "duration '" + std::string(text) + "' is too large");
      }
      return std::chrono::microseconds(static_cast<std::int64_t>(n * mult));
    }
  }
  return fail(Errc::invalid_request,
              "duration '" + std::string(text) +
                  "' needs a unit: us, ms, s, m, h or d (like 500ms, 3s, 7d)");
}

Result<std::uint64_t> parse_size(std::string_view text) {
  auto split = split_number(text, "size");
  if (!split) return tl::unexpected(split.error());
  const auto [n, unit] = *split;
  static constexpr std::array<std::pair<std::string_view, std::uint64_t>, 10> kUnits{{
      {"", 1},
      {"B", 1},
      {"KiB", 1ULL << 10},
      {"MiB", 1ULL << 20},
      {"GiB", 1ULL << 30},
      {"TiB", 1ULL << 40},
      {"KB", 1'000},
      {"MB", 1'000'000},
      {"GB", 1'000'000'000},
      {"TB", 1'000'000'000'000},
  }};
  for (const auto& [name, mult] : kUnits) {
    if (unit == name) {
      if (mul_overflows(n, mult)) {
        return fail(Errc::invalid_request, "size '" + std::string(text) + "' is too large");
      }
      return n * mult;
    }
  }
  return fail(Errc::invalid_request,
              "size '" + std::string(text) + "' has an unknown unit: use B, KiB, MiB, GiB or TiB");
}

std::string format_duration(std::chrono::microseconds d) {
  const auto us = static_cast<std::uint64_t>(d.count());
  static constexpr std::array<std::pair<std::string_view, std::uint64_t>, 5> kUnits{{
      {"d", 86'400'000'000},
      {"h", 3'600'000'000},
      {"m", 60'000'000},
      {"s", 1'000'000},
      {"ms", 1'000},
  }};
  for (const auto& [name, mult] : kUnits) {
    if (us != 0 && us % mult == 0) return std::to_string(us / mult) + std::string(name);
  }
  return std::to_string(us) + "us";
}

std::string format_size(std::uint64_t bytes) {
  static constexpr std::array<std::pair<std::string_view, std::uint64_t>, 4> kUnits{{
      {"TiB", 1ULL << 40},
      {"GiB", 1ULL << 30},
      {"MiB", 1ULL << 20},
      {"KiB", 1ULL << 10},
  }};
  for (const auto& [name, mult] : kUnits) {
    if (bytes != 0 && bytes % mult == 0) return std::to_string(bytes / mult) + std::string(name);
  }
  return std::to_string(bytes) + "B";
}

}  // namespace loft
