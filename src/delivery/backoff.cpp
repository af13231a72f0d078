// Backoff::delay_after: the exponential rule (or an explicit list) for redelivery delays.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "loft/delivery/group_state.hpp"

namespace loft::delivery {
namespace {

using Millis = std::chrono::duration<double, std::milli>;

// Milliseconds as a double to a Duration of whole milliseconds (rounded to the nearest),
// saturating instead of overflowing.
Duration to_duration(double ms) {
  if (!(ms > 0.0)) return Duration{0};  // also NaN
  const auto max_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Duration::max());
  if (ms >= static_cast<double>(max_ms.count())) return Duration::max();
  return std::chrono::milliseconds{std::llround(ms)};
}

}  // namespace

Duration Backoff::delay_after(std::uint32_t attempt, std::mt19937_64& rng) const {
  attempt = std::max<std::uint32_t>(attempt, 1);  // REQUIRES attempt >= 1; 0 reads as 1
  if (!delays.empty()) {
    const auto i = std::min<std::size_t>(attempt, delays.size()) - 1;
    return std::max(delays[i], Duration{0});
  }
  const auto cap_ms = Millis(std::max(cap, Duration{0})).count();
  const auto base_ms = Millis(base).count();
  double ms = 0.0;
  if (base_ms > 0.0) {
    // pow() of a large attempt is inf (factor > 1) or 0 (factor < 1); inf and NaN both fail
    // the comparison below and become the cap, so no attempt count can overflow.
    ms = base_ms * std::pow(factor, static_cast<double>(attempt - 1));
    if (!(ms <= cap_ms)) ms = cap_ms;
    if (ms < 0.0) ms = 0.0;  // a negative factor is nonsense; never a negative delay
  }
  const double j = std::isnan(jitter) ? 0.0 : std::clamp(jitter, 0.0, 1.0);
  if (j > 0.0 && ms > 0.0) {
    std::uniform_real_distribution<double> fraction(-j, j);
    ms *= 1.0 + fraction(rng);
  }
  return to_duration(ms);
}

}  // namespace loft::delivery
