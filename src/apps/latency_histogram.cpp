#include "latency_histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace loft::apps {

// Below 2^P a bucket is one value. Above, a value whose highest set bit is `msb` keeps its top
// P bits m (in [2^(P-1), 2^P)) and drops `shift` = msb - P + 1 low bits; the buckets of one
// shift follow those of the previous one, so the index grows with the value.
std::size_t LatencyHistogram::bucket_of(std::uint64_t value) {
  if (value < 2 * kHalf) return static_cast<std::size_t>(value);
  // bit_width returns the argument's type in libstdc++ 12 (int only since LWG 3656).
  const int msb = static_cast<int>(std::bit_width(value)) - 1;
  const int shift = msb - kPrecisionBits + 1;
  const auto m = static_cast<std::size_t>(value >> shift);
  return static_cast<std::size_t>(shift + 1) * kHalf + (m - kHalf);
}

std::uint64_t LatencyHistogram::bucket_low(std::size_t bucket) {
  if (bucket < 2 * kHalf) return bucket;
  const auto shift = static_cast<int>(bucket / kHalf) - 1;
  const std::uint64_t m = kHalf + bucket % kHalf;
  return m << shift;
}

std::uint64_t LatencyHistogram::bucket_high(std::size_t bucket) {
  if (bucket < 2 * kHalf) return bucket;
  const auto shift = static_cast<int>(bucket / kHalf) - 1;
  const std::uint64_t m = kHalf + bucket % kHalf;
  // The last bucket ends at 2^64 - 1; computing (m + 1) << shift there would overflow.
  return m == 2 * kHalf - 1 && shift == 64 - kPrecisionBits ? UINT64_MAX : ((m + 1) << shift) - 1;
}

void LatencyHistogram::record(std::uint64_t value) {
  ++counts_[bucket_of(value)];
  ++count_;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

std::uint64_t LatencyHistogram::quantile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const auto rank = std::max<std::uint64_t>(
      1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_))));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    // The bucket's midpoint halves the worst-case error of the low or high end.
    if (seen >= rank) {
      const auto low = bucket_low(i);
      const auto mid = low + (bucket_high(i) - low) / 2;
      return std::clamp(mid, min(), max_);
    }
  }
  return max_;
}

}  // namespace loft::apps
