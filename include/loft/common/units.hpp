#pragma once
// Durations and sizes as users write them, in the CLI and in the config file:
//   durations: "500ms", "3s", "5m", "2h", "7d" (also "us"; an integer and a unit, no spaces)
//   sizes:     "512", "512B", "64KiB", "10MiB", "2GiB", "1TiB" (also KB/MB/GB/TB as powers of 1000)

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "loft/common/error.hpp"

namespace loft {

Result<std::chrono::microseconds> parse_duration(std::string_view text);
Result<std::uint64_t> parse_size(std::string_view text);

// Inverse of parse_duration/parse_size for messages and defaults: the largest exact unit.
std::string format_duration(std::chrono::microseconds d);
std::string format_size(std::uint64_t bytes);

}  // namespace loft
