#include "latency_histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace loft::apps {
namespace {

// The nearest-rank quantile of `sorted`, the definition the histogram approximates.
std::uint64_t exact_quantile(const std::vector<std::uint64_t>& sorted, double q) {
  const auto rank = std::max<std::size_t>(
      1, static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size()))));
  return sorted[rank - 1];
}

TEST(LatencyHistogram, EmptyReportsZero) {
  const LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.quantile(0.5), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.min(), 0u);
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram h;
  for (std::uint64_t v = 1; v <= 100; ++v) h.record(v);
  EXPECT_EQ(h.quantile(0.5), 50u);
  EXPECT_EQ(h.quantile(0.99), 99u);
  EXPECT_EQ(h.quantile(0.999), 100u);
  EXPECT_EQ(h.quantile(1.0), 100u);
  EXPECT_EQ(h.quantile(0.0), 1u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 100u);
}

TEST(LatencyHistogram, OneSampleIsEveryQuantile) {
  LatencyHistogram h;
  h.record(123'456'789);
  for (const double q : {0.0, 0.5, 0.99, 0.999, 1.0}) EXPECT_EQ(h.quantile(q), 123'456'789u);
}

TEST(LatencyHistogram, BucketsTileTheRangeInOrder) {
  EXPECT_EQ(LatencyHistogram::bucket_low(0), 0u);
  for (std::size_t b = 1; b < LatencyHistogram::kBuckets; ++b) {
    ASSERT_EQ(LatencyHistogram::bucket_low(b), LatencyHistogram::bucket_high(b - 1) + 1) << b;
  }
  EXPECT_EQ(LatencyHistogram::bucket_high(LatencyHistogram::kBuckets - 1), UINT64_MAX);
  EXPECT_EQ(LatencyHistogram::bucket_of(UINT64_MAX), LatencyHistogram::kBuckets - 1);
}

TEST(LatencyHistogram, EveryValueFallsInItsBucket) {
  std::mt19937_64 rng(7);
  std::vector<std::uint64_t> values{0, 1, 127, 128, 129, 255, 256, 1ULL << 40, UINT64_MAX};
  for (int i = 0; i < 10'000; ++i) values.push_back(rng() >> (rng() % 64));
  for (const auto v : values) {
    const auto b = LatencyHistogram::bucket_of(v);
    ASSERT_LT(b, LatencyHistogram::kBuckets);
    EXPECT_LE(LatencyHistogram::bucket_low(b), v);
    EXPECT_GE(LatencyHistogram::bucket_high(b), v);
    // Relative width: at most 1/64 of the bucket's low end above the exact range.
    if (v >= 128) {
      EXPECT_LE(LatencyHistogram::bucket_high(b) - LatencyHistogram::bucket_low(b),
                LatencyHistogram::bucket_low(b) / 64);
    }
  }
}

TEST(LatencyHistogram, QuantilesOfASkewedSampleAreWithinPrecision) {
  // A long-tailed, latency-like sample: mostly tens of microseconds, a few milliseconds.
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(10.5, 0.8);  // in ns: median ~36 us
  std::vector<std::uint64_t> values;
  LatencyHistogram h;
  for (int i = 0; i < 200'000; ++i) {
    const auto v = static_cast<std::uint64_t>(dist(rng));
    values.push_back(v);
    h.record(v);
  }
  std::sort(values.begin(), values.end());
  for (const double q : {0.5, 0.9, 0.99, 0.999}) {
    const auto want = static_cast<double>(exact_quantile(values, q));
    const auto got = static_cast<double>(h.quantile(q));
    EXPECT_NEAR(got, want, want / 128 + 1) << "q=" << q;
  }
  EXPECT_EQ(h.max(), values.back());
  EXPECT_EQ(h.min(), values.front());
  EXPECT_EQ(h.count(), values.size());
}

TEST(LatencyHistogram, QuantilesAreOrderedAndBoundedByMax) {
  LatencyHistogram h;
  // Two far-apart clusters: the nearest-rank p99 lands in the upper one.
  for (int i = 0; i < 980; ++i) h.record(50'000);
  for (int i = 0; i < 20; ++i) h.record(9'000'000);
  EXPECT_NEAR(static_cast<double>(h.quantile(0.5)), 50'000.0, 50'000.0 / 128);
  EXPECT_NEAR(static_cast<double>(h.quantile(0.99)), 9'000'000.0, 9'000'000.0 / 128);
  EXPECT_LE(h.quantile(0.5), h.quantile(0.99));
  EXPECT_LE(h.quantile(0.99), h.quantile(0.999));
  EXPECT_LE(h.quantile(0.999), h.max());
  EXPECT_EQ(h.max(), 9'000'000u);
}

TEST(LatencyHistogram, MergeEqualsRecordingEverythingInOne) {
  LatencyHistogram a;
  LatencyHistogram b;
  LatencyHistogram all;
  for (std::uint64_t v = 1; v < 100'000; v += 7) {
    (v % 2 ? a : b).record(v * 13);
    all.record(v * 13);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_EQ(a.min(), all.min());
  for (const double q : {0.1, 0.5, 0.99, 0.999}) EXPECT_EQ(a.quantile(q), all.quantile(q));
}

}  // namespace
}  // namespace loft::apps
