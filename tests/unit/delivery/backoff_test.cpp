#include <gtest/gtest.h>

#include "loft/delivery/group_state.hpp"

using namespace std::chrono_literals;

namespace loft::delivery {
namespace {

// -Wmissing-field-initializers rejects designated initializers that leave `delays` out.
Backoff exponential(Duration base, double factor, Duration cap, double jitter) {
  Backoff b;
  b.base = base;
  b.factor = factor;
  b.cap = cap;
  b.jitter = jitter;
  return b;
}

TEST(Backoff, ExponentialWithoutJitter) {
  const Backoff b = exponential(100ms, 2.0, 1000ms, 0.0);
  std::mt19937_64 rng{1};
  EXPECT_EQ(b.delay_after(1, rng), 100ms);
  EXPECT_EQ(b.delay_after(2, rng), 200ms);
  EXPECT_EQ(b.delay_after(3, rng), 400ms);
  EXPECT_EQ(b.delay_after(4, rng), 800ms);
  EXPECT_EQ(b.delay_after(5, rng), 1000ms);  // capped
  EXPECT_EQ(b.delay_after(6, rng), 1000ms);
}

TEST(Backoff, HugeAttemptsAreCappedWithoutOverflow) {
  const Backoff b = exponential(1000ms, 10.0, 60'000ms, 0.0);
  std::mt19937_64 rng{1};
  for (std::uint32_t a : {30u, 64u, 1000u, 4'000'000'000u, UINT32_MAX}) {
    EXPECT_EQ(b.delay_after(a, rng), 60'000ms) << a;
  }
  const Backoff huge_cap = exponential(1ms, 2.0, Duration::max(), 0.5);
  EXPECT_GT(huge_cap.delay_after(UINT32_MAX, rng), 0ms);  // saturates, never wraps negative
}

TEST(Backoff, FactorBelowOneShrinksAndZeroBaseIsZero) {
  std::mt19937_64 rng{1};
  const Backoff shrink = exponential(800ms, 0.5, 60'000ms, 0.0);
  EXPECT_EQ(shrink.delay_after(1, rng), 800ms);
  EXPECT_EQ(shrink.delay_after(2, rng), 400ms);
  EXPECT_EQ(shrink.delay_after(4, rng), 100ms);
  EXPECT_EQ(shrink.delay_after(UINT32_MAX, rng), 0ms);
  const Backoff zero = exponential(0ms, 2.0, 60'000ms, 0.2);
  EXPECT_EQ(zero.delay_after(UINT32_MAX, rng), 0ms);
  const Backoff flat = exponential(250ms, 1.0, 60'000ms, 0.0);
  EXPECT_EQ(flat.delay_after(100, rng), 250ms);
}

TEST(Backoff, AttemptZeroReadsAsOne) {
  std::mt19937_64 rng{1};
  const Backoff b = exponential(100ms, 2.0, 1000ms, 0.0);
  EXPECT_EQ(b.delay_after(0, rng), 100ms);
}

TEST(Backoff, JitterStaysWithinBoundsAndVaries) {
  const Backoff b = exponential(1000ms, 2.0, 60'000ms, 0.2);
  std::mt19937_64 rng{7};
  Duration lo = Duration::max();
  Duration hi = Duration::min();
  for (int i = 0; i < 2000; ++i) {
    const auto d = b.delay_after(2, rng);  // 2000ms ± 20%
    ASSERT_GE(d, 1600ms);
    ASSERT_LE(d, 2400ms);
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_LT(lo, 1700ms);  // it really jitters, across most of the range
  EXPECT_GT(hi, 2300ms);
  // Jitter applies after the cap.
  for (int i = 0; i < 200; ++i) {
    const auto d = b.delay_after(40, rng);
    ASSERT_GE(d, 48'000ms);
    ASSERT_LE(d, 72'000ms);
  }
}

TEST(Backoff, FullJitterNeverNegativeAndOutOfRangeJitterIsClamped) {
  std::mt19937_64 rng{3};
  const Backoff full = exponential(100ms, 1.0, 1000ms, 1.0);
  const Backoff over = exponential(100ms, 1.0, 1000ms, 5.0);
  const Backoff under = exponential(100ms, 1.0, 1000ms, -1.0);
  for (int i = 0; i < 500; ++i) {
    for (const auto* b : {&full, &over}) {
      const auto d = b->delay_after(1, rng);
      ASSERT_GE(d, 0ms);
      ASSERT_LE(d, 200ms);
    }
    ASSERT_EQ(under.delay_after(1, rng), 100ms);
  }
}

TEST(Backoff, SameSeedSameDelays) {
  const Backoff b{};
  std::mt19937_64 r1{42};
  std::mt19937_64 r2{42};
  for (std::uint32_t a = 1; a < 20; ++a) EXPECT_EQ(b.delay_after(a, r1), b.delay_after(a, r2));
}

TEST(Backoff, ExplicitListLastRepeatsAndNoJitter) {
  Backoff b;
  b.jitter = 0.5;
  b.delays = {5ms, 50ms, 500ms};
  std::mt19937_64 rng{1};
  EXPECT_EQ(b.delay_after(1, rng), 5ms);
  EXPECT_EQ(b.delay_after(2, rng), 50ms);
  EXPECT_EQ(b.delay_after(3, rng), 500ms);
  EXPECT_EQ(b.delay_after(4, rng), 500ms);
  EXPECT_EQ(b.delay_after(UINT32_MAX, rng), 500ms);
  EXPECT_EQ(b.delay_after(0, rng), 5ms);
}

}  // namespace
}  // namespace loft::delivery
