#pragma once
// A latency recorder for `loft bench`: log-linear buckets, so memory is fixed (about 30 KiB)
// however many samples are recorded, and a reported quantile is within 1/128 (0.8 %) of the
// true one. Values below 128 are kept exactly. Plain C++: no clock reads; the caller
// passes durations.
//
// Not thread-safe: give each thread its own histogram and merge() them at the end.

#include <array>
#include <cstdint>

namespace loft::apps {

class LatencyHistogram {
 public:
  // Values up to 2^64 - 1 (nanoseconds, or any unit the caller picks).
  void record(std::uint64_t value);
  void merge(const LatencyHistogram& other);

  std::uint64_t count() const { return count_; }
  std::uint64_t min() const { return count_ ? min_ : 0; }
  std::uint64_t max() const { return max_; }
  // The value at quantile q in [0, 1] (the nearest-rank definition: the smallest recorded
  // value with at least ceil(q * count) samples at or below it), within the bucket precision
  // and never above max() nor below min(). 0 when empty. So p50 <= p99 <= p99.9 <= max.
  std::uint64_t quantile(double q) const;

  // Bucket arithmetic, public for its tests.
  static std::size_t bucket_of(std::uint64_t value);
  static std::uint64_t bucket_low(std::size_t bucket);
  static std::uint64_t bucket_high(std::size_t bucket);

  static constexpr int kPrecisionBits = 7;  // 128 exact values, then 64 buckets per power of two
  static constexpr std::size_t kHalf = std::size_t{1} << (kPrecisionBits - 1);
  static constexpr std::size_t kBuckets = (64 - kPrecisionBits + 2) * kHalf;

 private:
  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
};

}  // namespace loft::apps
