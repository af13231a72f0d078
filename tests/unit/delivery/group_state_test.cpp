#include "loft/delivery/group_state.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

namespace loft::delivery {
namespace {

const TimePoint t0{};  // the fake clock: plain TimePoint values
const ConsumerId c1{1};
const ConsumerId c2{2};
const ConsumerId c3{3};

Offset off(std::uint64_t v) { return Offset{v}; }
Delivery d(ConsumerId c, std::uint64_t o, std::uint32_t attempt = 1) {
  return Delivery{c, Offset{o}, attempt};
}

// No jitter, so times are exact: 100ms, 200ms, 400ms, ...
GroupOptions opts(std::uint32_t max_deliveries = 5) {
  GroupOptions o;
  o.ack_timeout = 1000ms;
  o.max_deliveries = max_deliveries;
  o.backoff.base = 100ms;
  o.backoff.factor = 2.0;
  o.backoff.cap = 10'000ms;
  o.backoff.jitter = 0.0;
  return o;
}

// Everything observable, to check that a refused call changes nothing.
struct Observed {
  Snapshot snapshot;
  std::uint64_t in_flight, scheduled, lag;
  std::vector<std::uint32_t> consumer_in_flight;
  std::optional<TimePoint> next_deadline;
  bool operator==(const Observed&) const = default;
};
Observed observe(const GroupState& g) {
  const auto s = g.stats();
  Observed o{g.snapshot(), s.in_flight, s.scheduled, s.lag, {}, g.next_deadline()};
  for (const auto& c : s.consumers) o.consumer_in_flight.push_back(c.in_flight);
  return o;
}

TEST(GroupState, FirstDeliveryInOffsetOrderFromStart) {
  GroupState g{opts(), off(10)};
  g.add_consumer(c1, 100);
  EXPECT_THAT(g.poll(t0), IsEmpty());  // nothing appended yet
  g.on_appended(off(13));
  EXPECT_THAT(g.poll(t0), ElementsAre(d(c1, 10), d(c1, 11), d(c1, 12)));
  EXPECT_THAT(g.poll(t0), IsEmpty());
  g.on_appended(off(15));
  EXPECT_THAT(g.poll(t0), ElementsAre(d(c1, 13), d(c1, 14)));
  EXPECT_TRUE(g.is_done(off(9)));
  EXPECT_FALSE(g.is_done(off(10)));
  EXPECT_EQ(g.ack_floor(), off(10));
}

TEST(GroupState, OnAppendedNeverMovesBackwards) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 100);
  g.on_appended(off(5));
  g.on_appended(off(3));
  EXPECT_EQ(g.stats().end, off(5));
  EXPECT_EQ(g.poll(t0).size(), 5u);
}

TEST(GroupState, NoConsumerNoDelivery) {
  GroupState g{opts(), off(0)};
  g.on_appended(off(5));
  EXPECT_THAT(g.poll(t0), IsEmpty());
  g.add_consumer(c1, 0);  // no credit at all
  EXPECT_THAT(g.poll(t0), IsEmpty());
  g.add_consumer(c1, 2);  // already present: max_in_flight updated
  EXPECT_THAT(g.poll(t0), ElementsAre(d(c1, 0), d(c1, 1)));
}

TEST(GroupState, RoundRobinInJoinOrder) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c2, 10);
  g.add_consumer(c1, 10);
  g.add_consumer(c3, 10);
  g.on_appended(off(7));
  EXPECT_THAT(g.poll(t0),
              ElementsAre(d(c2, 0), d(c1, 1), d(c3, 2), d(c2, 3), d(c1, 4), d(c3, 5), d(c2, 6)));
}

TEST(GroupState, RoundRobinContinuesAcrossPolls) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 10);
  g.add_consumer(c2, 10);
  g.add_consumer(c3, 10);
  for (std::uint64_t o = 0; o < 6; ++o) {
    g.on_appended(off(o + 1));
    const auto got = g.poll(t0);
    ASSERT_EQ(got.size(), 1u);
    const ConsumerId expected{o % 3 + 1};
    EXPECT_EQ(got[0], d(expected, o));
  }
}

TEST(GroupState, CreditIsNeverExceeded) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 2);
  g.add_consumer(c2, 1);
  g.on_appended(off(100));
  EXPECT_THAT(g.poll(t0), ElementsAre(d(c1, 0), d(c2, 1), d(c1, 2)));
  EXPECT_THAT(g.poll(t0), IsEmpty());
  EXPECT_EQ(g.in_flight_of(c1), 2u);
  EXPECT_EQ(g.in_flight_of(c2), 1u);
  ASSERT_EQ(g.ack(c2, off(1)), AckResult::ok);
  EXPECT_THAT(g.poll(t0), ElementsAre(d(c2, 3)));  // only the freed credit
  g.add_consumer(c1, 1);  // lowering revokes nothing, but gives nothing more
  ASSERT_EQ(g.ack(c1, off(0)), AckResult::ok);
  EXPECT_THAT(g.poll(t0), IsEmpty());
  EXPECT_EQ(g.in_flight_of(c1), 1u);
}

TEST(GroupState, AckAdvancesFloorOverRuns) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 100);
  g.on_appended(off(10));
  ASSERT_EQ(g.poll(t0).size(), 10u);
  for (std::uint64_t o : {1, 2, 4, 5, 7}) ASSERT_EQ(g.ack(c1, off(o)), AckResult::ok);
  EXPECT_EQ(g.ack_floor(), off(0));
  EXPECT_EQ(g.snapshot().done_above_floor,
            (std::vector<OffsetRange>{{off(1), off(3)}, {off(4), off(6)}, {off(7), off(8)}}));
  ASSERT_EQ(g.ack(c1, off(3)), AckResult::ok);  // joins two runs
  EXPECT_EQ(g.snapshot().done_above_floor,
            (std::vector<OffsetRange>{{off(1), off(6)}, {off(7), off(8)}}));
  ASSERT_EQ(g.ack(c1, off(0)), AckResult::ok);  // the floor swallows the run
  EXPECT_EQ(g.ack_floor(), off(6));
  EXPECT_EQ(g.snapshot().done_above_floor, (std::vector<OffsetRange>{{off(7), off(8)}}));
  ASSERT_EQ(g.ack(c1, off(6)), AckResult::ok);
  EXPECT_EQ(g.ack_floor(), off(8));
  EXPECT_THAT(g.snapshot().done_above_floor, IsEmpty());
  EXPECT_TRUE(g.is_done(off(7)));
  EXPECT_FALSE(g.is_done(off(8)));
}

TEST(GroupState, AckRunExtendsDownwardsToo) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 100);
  g.on_appended(off(10));
  ASSERT_EQ(g.poll(t0).size(), 10u);
  for (std::uint64_t o : {8, 7, 6}) ASSERT_EQ(g.ack(c1, off(o)), AckResult::ok);
  EXPECT_EQ(g.snapshot().done_above_floor, (std::vector<OffsetRange>{{off(6), off(9)}}));
}

// The done set is kept as runs: however many contiguous acks pile up behind one stuck offset,
// they are one run (100k here to keep the Debug+ASan run short; the size does not matter).
TEST(GroupState, ManyAcksBehindAStuckOffsetAreOneRun) {
  GroupState g{opts(), off(0)};
  const ConsumerId stuck{9};
  g.add_consumer(stuck, 1);
  g.add_consumer(c1, 1000);
  g.on_appended(off(100'001));
  std::uint64_t acked = 0;
  for (auto batch = g.poll(t0); !batch.empty(); batch = g.poll(t0)) {
    for (const auto& dl : batch) {
      if (dl.consumer != c1) continue;
      if (g.ack(c1, dl.offset) != AckResult::ok) FAIL() << dl.offset.value;
      ++acked;
    }
  }
  ASSERT_EQ(acked, 100'000u);
  const auto snap = g.snapshot();
  EXPECT_EQ(snap.ack_floor, off(0));
  EXPECT_EQ(snap.done_above_floor, (std::vector<OffsetRange>{{off(1), off(100'001)}}));
  EXPECT_EQ(g.stats().lag, 1u);
  ASSERT_EQ(g.ack(stuck, off(0)), AckResult::ok);
  EXPECT_EQ(g.ack_floor(), off(100'001));
  EXPECT_THAT(g.snapshot().done_above_floor, IsEmpty());
}

TEST(GroupState, RefusedAcksChangeNothing) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 10);
  g.add_consumer(c2, 10);
  g.on_appended(off(4));
  ASSERT_THAT(g.poll(t0), ElementsAre(d(c1, 0), d(c2, 1), d(c1, 2), d(c2, 3)));
  ASSERT_EQ(g.ack(c1, off(2)), AckResult::ok);
  const auto before = observe(g);
  const ConsumerId stranger{99};
  // Unknown offset, beyond the end, foreign (in flight to c2), already acked, unknown consumer.
  for (const auto& [c, o] : std::vector<std::pair<ConsumerId, Offset>>{
           {c1, off(50)}, {c1, off(4)}, {c1, off(1)}, {c1, off(2)}, {stranger, off(0)}}) {
    EXPECT_EQ(g.ack(c, o), AckResult::not_in_flight) << o.value;
    EXPECT_EQ(g.nack(c, o, std::nullopt, t0), AckResult::not_in_flight) << o.value;
    EXPECT_EQ(g.nack(c, o, 5ms, t0), AckResult::not_in_flight) << o.value;
    EXPECT_EQ(g.extend(c, o, t0 + 500ms), AckResult::not_in_flight) << o.value;
    EXPECT_EQ(g.reject(c, o), AckResult::not_in_flight) << o.value;
    EXPECT_EQ(observe(g), before) << o.value;
  }
  EXPECT_THAT(g.take_dead_letters(), IsEmpty());
}

TEST(GroupState, AckAfterTimeoutRedeliveryIsRefused) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 10);
  g.add_consumer(c2, 10);
  g.on_appended(off(1));
  ASSERT_THAT(g.poll(t0), ElementsAre(d(c1, 0)));
  g.expire(t0 + 1000ms);
  ASSERT_THAT(g.poll(t0 + 1100ms), ElementsAre(d(c2, 0, 2)));
  EXPECT_EQ(g.ack(c1, off(0)), AckResult::not_in_flight);  // the late ack of the first attempt
  EXPECT_EQ(g.ack(c2, off(0)), AckResult::ok);
}

TEST(GroupState, NackWithDelayRedeliversAtTheDueTimeNotBefore) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 10);
  g.on_appended(off(1));
  ASSERT_EQ(g.poll(t0).size(), 1u);
  ASSERT_EQ(g.nack(c1, off(0), 5000ms, t0 + 10ms), AckResult::ok);
  EXPECT_EQ(g.in_flight_of(c1), 0u);
  EXPECT_EQ(g.stats().scheduled, 1u);
  EXPECT_EQ(g.next_deadline(), t0 + 5010ms);
  EXPECT_THAT(g.poll(t0 + 5009ms), IsEmpty());
  EXPECT_THAT(g.poll(t0 + 5010ms), ElementsAre(d(c1, 0, 2)));
  EXPECT_EQ(g.stats().redelivered, 1u);
  EXPECT_EQ(g.stats().scheduled, 0u);
}

TEST(GroupState, NackWithZeroDelayIsDueAtOnce) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 10);
  g.on_appended(off(1));
  ASSERT_EQ(g.poll(t0).size(), 1u);
  ASSERT_EQ(g.nack(c1, off(0), 0ms, t0), AckResult::ok);
  EXPECT_THAT(g.poll(t0), ElementsAre(d(c1, 0, 2)));
}

TEST(GroupState, NackWithoutDelayUsesBackoff) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 10);
  g.on_appended(off(1));
  TimePoint now = t0;
  ASSERT_EQ(g.poll(now).size(), 1u);
  // attempt n failed -> 100ms * 2^(n-1)
  for (std::uint32_t attempt = 1; attempt <= 4; ++attempt) {
    ASSERT_EQ(g.nack(c1, off(0), std::nullopt, now), AckResult::ok);
    const std::chrono::milliseconds backoff{100 << (attempt - 1)};
    EXPECT_EQ(g.next_deadline(), now + backoff);
    EXPECT_THAT(g.poll(now + backoff - 1ms), IsEmpty());
    now += backoff;
    EXPECT_THAT(g.poll(now), ElementsAre(d(c1, 0, attempt + 1)));
  }
}

TEST(GroupState, NackUsesExplicitDelayList) {
  auto o = opts(0);
  o.backoff.delays = {10ms, 20ms};
  GroupState g{o, off(0)};
  g.add_consumer(c1, 10);
  g.on_appended(off(1));
  TimePoint now = t0;
  ASSERT_EQ(g.poll(now).size(), 1u);
  for (const auto delay : {10ms, 20ms, 20ms, 20ms}) {
    ASSERT_EQ(g.nack(c1, off(0), std::nullopt, now), AckResult::ok);
    EXPECT_EQ(g.next_deadline(), now + delay);
    now += delay;
    ASSERT_EQ(g.poll(now).size(), 1u);
  }
}

TEST(GroupState, ExpireRedeliversWithAttemptTwoAfterBackoff) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 1);
  g.on_appended(off(2));
  ASSERT_THAT(g.poll(t0), ElementsAre(d(c1, 0)));
  EXPECT_EQ(g.next_deadline(), t0 + 1000ms);
  g.expire(t0 + 999ms);
  EXPECT_EQ(g.in_flight_of(c1), 1u);
  g.expire(t0 + 1000ms);              // deadline <= now
  EXPECT_EQ(g.in_flight_of(c1), 0u);  // credit freed...
  EXPECT_EQ(g.next_deadline(), t0 + 1100ms);
  EXPECT_THAT(g.poll(t0 + 1000ms), ElementsAre(d(c1, 1)));  // ...so the next new offset goes
  ASSERT_EQ(g.ack(c1, off(1)), AckResult::ok);
  EXPECT_THAT(g.poll(t0 + 1099ms), IsEmpty());
  EXPECT_THAT(g.poll(t0 + 1100ms), ElementsAre(d(c1, 0, 2)));
  EXPECT_EQ(g.next_deadline(), t0 + 2100ms);
}

TEST(GroupState, ExtendPostponesTheTimeout) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 10);
  g.on_appended(off(1));
  ASSERT_EQ(g.poll(t0).size(), 1u);
  ASSERT_EQ(g.extend(c1, off(0), t0 + 800ms), AckResult::ok);
  EXPECT_EQ(g.next_deadline(), t0 + 1800ms);
  g.expire(t0 + 1799ms);
  EXPECT_EQ(g.stats().in_flight, 1u);
  EXPECT_EQ(g.ack(c1, off(0)), AckResult::ok);
  EXPECT_EQ(g.next_deadline(), std::nullopt);
}

TEST(GroupState, MaxDeliveriesDeadLettersWithAttemptsAndReason) {
  GroupState g{opts(3), off(0)};
  g.add_consumer(c1, 10);
  g.on_appended(off(1));
  TimePoint now = t0;
  for (std::uint32_t attempt = 1; attempt <= 3; ++attempt) {
    ASSERT_THAT(g.poll(now), ElementsAre(d(c1, 0, attempt)));
    now += 1000ms;
    g.expire(now);
    if (attempt < 3) {
      EXPECT_THAT(g.take_dead_letters(), IsEmpty());
      now += 10'000ms;
    }
  }
  EXPECT_THAT(g.take_dead_letters(),
              ElementsAre(DeadLetter{off(0), 3, DeadLetterReason::max_deliveries}));
  EXPECT_THAT(g.poll(now + 100'000ms), IsEmpty());  // never delivered again
  EXPECT_EQ(g.next_deadline(), std::nullopt);       // dead letters do not wait on time
}

TEST(GroupState, NackWithDelayStillDeadLettersWhenAttemptsAreUsedUp) {
  GroupState g{opts(1), off(0)};
  g.add_consumer(c1, 10);
  g.on_appended(off(1));
  ASSERT_EQ(g.poll(t0).size(), 1u);
  ASSERT_EQ(g.nack(c1, off(0), 5ms, t0), AckResult::ok);
  EXPECT_THAT(g.take_dead_letters(),
              ElementsAre(DeadLetter{off(0), 1, DeadLetterReason::max_deliveries}));
  EXPECT_EQ(g.stats().scheduled, 0u);
}

TEST(GroupState, MaxDeliveriesZeroNeverDeadLetters) {
  GroupState g{opts(0), off(0)};
  g.add_consumer(c1, 10);
  g.on_appended(off(1));
  TimePoint now = t0;
  for (std::uint32_t attempt = 1; attempt <= 50; ++attempt) {
    ASSERT_THAT(g.poll(now), ElementsAre(d(c1, 0, attempt)));
    ASSERT_EQ(g.nack(c1, off(0), 0ms, now), AckResult::ok);
    ASSERT_THAT(g.take_dead_letters(), IsEmpty());
  }
}

TEST(GroupState, RejectDeadLettersAtOnceWhateverTheAttempt) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 10);
  g.on_appended(off(2));
  ASSERT_EQ(g.poll(t0).size(), 2u);
  ASSERT_EQ(g.reject(c1, off(1)), AckResult::ok);
  EXPECT_EQ(g.in_flight_of(c1), 1u);
  EXPECT_THAT(g.take_dead_letters(),
              ElementsAre(DeadLetter{off(1), 1, DeadLetterReason::rejected}));
}

TEST(GroupState, DeadLetterLifecycle) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 10);
  g.on_appended(off(4));
  ASSERT_EQ(g.poll(t0).size(), 4u);
  ASSERT_EQ(g.reject(c1, off(2)), AckResult::ok);
  ASSERT_EQ(g.reject(c1, off(0)), AckResult::ok);
  ASSERT_EQ(g.ack(c1, off(1)), AckResult::ok);
  const auto letters = g.take_dead_letters();
  ASSERT_THAT(letters, ElementsAre(DeadLetter{off(0), 1, DeadLetterReason::rejected},
                                   DeadLetter{off(2), 1, DeadLetterReason::rejected}));
  EXPECT_THAT(g.take_dead_letters(), IsEmpty());  // once each
  // Neither done nor deliverable while the append is pending: they count in lag.
  EXPECT_FALSE(g.is_done(off(0)));
  EXPECT_EQ(g.ack_floor(), off(0));
  EXPECT_EQ(g.stats().lag, 3u);
  EXPECT_THAT(g.poll(t0 + 100'000ms), IsEmpty());
  g.dead_letter_failed(letters[0]);
  EXPECT_THAT(g.take_dead_letters(), ElementsAre(letters[0]));  // offered again
  g.dead_lettered(off(0));
  EXPECT_EQ(g.ack_floor(), off(2));  // 0 dead-lettered, 1 acked
  g.dead_lettered(off(2));
  EXPECT_EQ(g.ack_floor(), off(3));
  EXPECT_EQ(g.stats().dead_lettered, 2u);
  EXPECT_EQ(g.stats().lag, 1u);
  g.dead_lettered(off(2));  // a duplicate is ignored
  g.dead_letter_failed(letters[1]);
  EXPECT_EQ(g.stats().dead_lettered, 2u);
  EXPECT_THAT(g.take_dead_letters(), IsEmpty());
  EXPECT_EQ(g.snapshot().dead_lettered, 2u);
}

TEST(GroupState, RemoveConsumerMakesItsOffsetsRedeliverableAtOnceKeepingAttempts) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 10);
  g.on_appended(off(2));
  ASSERT_THAT(g.poll(t0), ElementsAre(d(c1, 0), d(c1, 1)));
  g.expire(t0 + 1000ms);
  ASSERT_THAT(g.poll(t0 + 2000ms), ElementsAre(d(c1, 0, 2), d(c1, 1, 2)));
  g.add_consumer(c2, 10);
  g.remove_consumer(c1, t0 + 2500ms);
  EXPECT_EQ(g.stats().in_flight, 0u);
  EXPECT_EQ(g.stats().scheduled, 2u);
  EXPECT_EQ(g.next_deadline(), t0 + 2500ms);
  EXPECT_EQ(g.ack(c1, off(0)), AckResult::not_in_flight);
  ASSERT_THAT(g.stats().consumers, ::testing::SizeIs(1));
  EXPECT_THAT(g.poll(t0 + 2500ms), ElementsAre(d(c2, 0, 3), d(c2, 1, 3)));
  g.remove_consumer(ConsumerId{77}, t0);  // unknown: no-op
  EXPECT_EQ(g.stats().in_flight, 2u);
}

TEST(GroupState, RemovedConsumerRejoinsAtTheEndOfTheRoundRobin) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 10);
  g.add_consumer(c2, 10);
  g.remove_consumer(c1, t0);
  g.add_consumer(c1, 10);
  g.on_appended(off(3));
  EXPECT_THAT(g.poll(t0), ElementsAre(d(c2, 0), d(c1, 1), d(c2, 2)));
}

TEST(GroupState, RedeliveriesGoLowestFirstBeforeNewOffsets) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 10);
  g.on_appended(off(5));
  ASSERT_EQ(g.poll(t0).size(), 5u);
  ASSERT_EQ(g.nack(c1, off(3), 10ms, t0), AckResult::ok);
  ASSERT_EQ(g.nack(c1, off(1), 30ms, t0), AckResult::ok);
  ASSERT_EQ(g.nack(c1, off(2), 20ms, t0), AckResult::ok);
  ASSERT_EQ(g.nack(c1, off(4), 99ms, t0), AckResult::ok);  // not due yet
  g.on_appended(off(7));
  EXPECT_THAT(g.poll(t0 + 50ms),
              ElementsAre(d(c1, 1, 2), d(c1, 2, 2), d(c1, 3, 2), d(c1, 5), d(c1, 6)));
}

TEST(GroupState, DueRedeliveriesWaitForCreditInOffsetOrder) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 2);
  g.on_appended(off(10));
  ASSERT_THAT(g.poll(t0), ElementsAre(d(c1, 0), d(c1, 1)));
  ASSERT_EQ(g.nack(c1, off(1), 0ms, t0), AckResult::ok);
  ASSERT_EQ(g.nack(c1, off(0), 0ms, t0), AckResult::ok);
  ASSERT_THAT(g.poll(t0), ElementsAre(d(c1, 0, 2), d(c1, 1, 2)));  // lowest first
  ASSERT_EQ(g.nack(c1, off(1), 0ms, t0), AckResult::ok);
  ASSERT_EQ(g.nack(c1, off(0), 5ms, t0), AckResult::ok);
  ASSERT_THAT(g.poll(t0), ElementsAre(d(c1, 1, 3), d(c1, 2)));  // 0 is not due yet
  EXPECT_EQ(g.next_deadline(), t0 + 5ms);
  // 0 is due but there is no credit: it waits for credit, not for time, so next_deadline()
  // moves on to the ack deadlines (a timer armed on a past due time would spin).
  EXPECT_THAT(g.poll(t0 + 5ms), IsEmpty());
  EXPECT_EQ(g.stats().scheduled, 1u);
  EXPECT_EQ(g.next_deadline(), t0 + 1000ms);
  ASSERT_EQ(g.ack(c1, off(2)), AckResult::ok);
  EXPECT_THAT(g.poll(t0 + 6ms), ElementsAre(d(c1, 0, 3)));
  ASSERT_EQ(g.ack(c1, off(0)), AckResult::ok);
  EXPECT_THAT(g.poll(t0 + 6ms), ElementsAre(d(c1, 3)));
}

TEST(GroupState, RestoredGroupSkipsDoneRunsEvenAfterTheyMerge) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 100);
  g.on_appended(off(6));
  ASSERT_EQ(g.poll(t0).size(), 6u);
  for (std::uint64_t o : {1, 3, 4}) ASSERT_EQ(g.ack(c1, off(o)), AckResult::ok);
  GroupState r{opts(), g.snapshot()};  // floor 0, runs [1,2) [3,5)
  r.add_consumer(c1, 1);
  r.on_appended(off(6));
  ASSERT_THAT(r.poll(t0), ElementsAre(d(c1, 0)));
  ASSERT_EQ(r.ack(c1, off(0)), AckResult::ok);  // the floor swallows [1,2)
  ASSERT_THAT(r.poll(t0), ElementsAre(d(c1, 2)));
  ASSERT_EQ(r.ack(c1, off(2)), AckResult::ok);  // and [3,5)
  EXPECT_THAT(r.poll(t0), ElementsAre(d(c1, 5)));
}

TEST(GroupState, RestoredGroupSkipsARunThatGrewDownwards) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 100);
  g.on_appended(off(8));
  ASSERT_EQ(g.poll(t0).size(), 8u);
  for (std::uint64_t o : {2, 5, 6}) ASSERT_EQ(g.ack(c1, off(o)), AckResult::ok);
  GroupState r{opts(), g.snapshot()};  // floor 0, runs [2,3) [5,7)
  r.add_consumer(c1, 3);
  r.on_appended(off(8));
  ASSERT_THAT(r.poll(t0), ElementsAre(d(c1, 0), d(c1, 1), d(c1, 3)));
  ASSERT_EQ(r.ack(c1, off(3)), AckResult::ok);  // [2,3) + 3 -> [2,4)
  ASSERT_THAT(r.poll(t0), ElementsAre(d(c1, 4)));
  ASSERT_EQ(r.ack(c1, off(4)), AckResult::ok);  // [2,4) + 4 + [5,7) -> [2,7)
  EXPECT_THAT(r.poll(t0), ElementsAre(d(c1, 7)));
}

TEST(GroupState, NextDeadlineIsTheMinimumOfDeadlinesAndDueTimes) {
  GroupState g{opts(), off(0)};
  EXPECT_EQ(g.next_deadline(), std::nullopt);
  g.add_consumer(c1, 10);
  g.on_appended(off(3));
  ASSERT_EQ(g.poll(t0).size(), 3u);
  EXPECT_EQ(g.next_deadline(), t0 + 1000ms);
  ASSERT_EQ(g.nack(c1, off(1), 300ms, t0 + 100ms), AckResult::ok);
  EXPECT_EQ(g.next_deadline(), t0 + 400ms);
  ASSERT_EQ(g.reject(c1, off(0)), AckResult::ok);
  ASSERT_EQ(g.ack(c1, off(2)), AckResult::ok);
  EXPECT_EQ(g.next_deadline(), t0 + 400ms);
  ASSERT_EQ(g.poll(t0 + 400ms).size(), 1u);
  EXPECT_EQ(g.next_deadline(), t0 + 1400ms);
  ASSERT_EQ(g.ack(c1, off(1)), AckResult::ok);
  EXPECT_EQ(g.next_deadline(), std::nullopt);  // the pending dead letter does not count
}

TEST(GroupState, SkipToCountsWhatWasNotDoneAndKeepsWhatIsAbove) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 4);
  g.on_appended(off(20));
  ASSERT_THAT(g.poll(t0), ElementsAre(d(c1, 0), d(c1, 1), d(c1, 2), d(c1, 3)));
  ASSERT_EQ(g.ack(c1, off(2)), AckResult::ok);  // done: not skipped
  ASSERT_EQ(g.ack(c1, off(3)), AckResult::ok);
  // 0, 1 in flight; 4..9 never delivered; 2, 3 done: 8 skipped.
  EXPECT_EQ(g.skip_to(off(10)), 8u);
  EXPECT_EQ(g.ack_floor(), off(10));
  EXPECT_EQ(g.stats().skipped, 8u);
  EXPECT_EQ(g.stats().in_flight, 0u);
  EXPECT_EQ(g.in_flight_of(c1), 0u) << "the skipped in-flight offsets gave their credit back";
  EXPECT_EQ(g.ack(c1, off(1)), AckResult::not_in_flight);
  EXPECT_EQ(g.stats().lag, 10u);
  EXPECT_THAT(g.poll(t0), ElementsAre(d(c1, 10), d(c1, 11), d(c1, 12), d(c1, 13)));
  EXPECT_EQ(g.skip_to(off(5)), 0u) << "below the floor: nothing to skip";
  EXPECT_EQ(g.snapshot().skipped, 8u);
  // Restored from a snapshot, the count carries on.
  GroupState restored{opts(), g.snapshot()};
  EXPECT_EQ(restored.stats().skipped, 8u);
}

TEST(GroupState, SkipToLandsPastADoneRunThatCrossesTheNewStart) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 10);
  g.on_appended(off(10));
  ASSERT_EQ(g.poll(t0).size(), 10u);
  for (std::uint64_t o = 3; o < 8; ++o) ASSERT_EQ(g.ack(c1, off(o)), AckResult::ok);
  // [3, 8) done; skipping to 5 skips 0, 1, 2 and the floor lands on 8.
  EXPECT_EQ(g.skip_to(off(5)), 3u);
  EXPECT_EQ(g.ack_floor(), off(8));
  EXPECT_EQ(g.stats().in_flight, 2u);  // 8 and 9 stay in flight
  EXPECT_EQ(g.ack(c1, off(8)), AckResult::ok);
  EXPECT_EQ(g.ack_floor(), off(9));
}

TEST(GroupState, SkipToDropsScheduledAndPendingDeadLettersButNotTakenOnes) {
  GroupState g{opts(1), off(0)};  // one attempt: a nack dead-letters
  g.add_consumer(c1, 10);
  g.on_appended(off(6));
  ASSERT_EQ(g.poll(t0).size(), 6u);
  ASSERT_EQ(g.reject(c1, off(0)), AckResult::ok);
  ASSERT_THAT(g.take_dead_letters(),
              ElementsAre(DeadLetter{off(0), 1, DeadLetterReason::rejected}));
  ASSERT_EQ(g.reject(c1, off(1)), AckResult::ok);  // pending, not taken
  ASSERT_EQ(g.nack(c1, off(2), 0ms, t0), AckResult::ok);
  // 1 (pending letter), 2 (dead-lettered by the nack: pending), 3 (in flight): skipped;
  // 0 is taken and still completes.
  EXPECT_EQ(g.skip_to(off(4)), 3u);
  EXPECT_THAT(g.take_dead_letters(), IsEmpty());
  g.dead_lettered(off(0));
  EXPECT_EQ(g.stats().dead_lettered, 1u);
  EXPECT_EQ(g.ack_floor(), off(4));
  EXPECT_EQ(g.next_deadline(), t0 + 1000ms);  // 4 and 5 in flight
}

TEST(GroupState, ResetMovesTheGroup) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 10);
  g.on_appended(off(10));
  ASSERT_EQ(g.poll(t0).size(), 10u);
  ASSERT_EQ(g.ack(c1, off(5)), AckResult::ok);
  ASSERT_EQ(g.nack(c1, off(1), 0ms, t0), AckResult::ok);
  ASSERT_EQ(g.reject(c1, off(2)), AckResult::ok);
  g.reset(off(7));
  EXPECT_EQ(g.ack_floor(), off(7));
  EXPECT_EQ(g.in_flight_of(c1), 0u);
  const auto s = g.stats();
  EXPECT_EQ(s.in_flight, 0u);
  EXPECT_EQ(s.scheduled, 0u);
  EXPECT_EQ(s.lag, 3u);
  EXPECT_THAT(g.take_dead_letters(), IsEmpty());
  EXPECT_EQ(g.next_deadline(), std::nullopt);
  EXPECT_EQ(g.ack(c1, off(8)), AckResult::not_in_flight);  // a late ack from before the reset
  EXPECT_THAT(g.poll(t0), ElementsAre(d(c1, 7), d(c1, 8), d(c1, 9)));
  g.reset(off(3));  // backwards: replays, as attempt 1
  EXPECT_THAT(g.poll(t0),
              ElementsAre(d(c1, 3), d(c1, 4), d(c1, 5), d(c1, 6), d(c1, 7), d(c1, 8), d(c1, 9)));
  g.reset(off(20));  // beyond the end: nothing to deliver, no lag
  EXPECT_EQ(g.stats().lag, 0u);
  g.on_appended(off(21));
  EXPECT_THAT(g.poll(t0), ElementsAre(d(c1, 20)));
}

TEST(GroupState, SnapshotRestoreNeverRedeliversAckedAndRedeliversTheRest) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 100);
  g.on_appended(off(10));
  ASSERT_EQ(g.poll(t0).size(), 10u);
  for (std::uint64_t o : {0, 1, 3, 4, 8}) ASSERT_EQ(g.ack(c1, off(o)), AckResult::ok);
  ASSERT_EQ(g.nack(c1, off(5), 0ms, t0), AckResult::ok);
  ASSERT_EQ(g.poll(t0).size(), 1u);  // 5 is at attempt 2
  ASSERT_EQ(g.reject(c1, off(6)), AckResult::ok);
  ASSERT_EQ(g.take_dead_letters().size(), 1u);
  g.dead_lettered(off(6));
  const auto snap = g.snapshot();
  EXPECT_EQ(snap, (Snapshot{off(2), {{off(3), off(5)}, {off(6), off(7)}, {off(8), off(9)}}, 1, 1}));

  GroupState r{opts(), snap};
  EXPECT_EQ(r.snapshot(), snap);
  EXPECT_EQ(r.ack_floor(), off(2));
  EXPECT_EQ(r.stats().in_flight, 0u);
  r.add_consumer(c2, 100);
  r.on_appended(off(12));
  EXPECT_EQ(r.stats().lag, 6u);
  // Not done: 2, 5, 7, 9 (unacked before) and 10, 11 (new); every one as attempt 1.
  EXPECT_THAT(r.poll(t0),
              ElementsAre(d(c2, 2), d(c2, 5), d(c2, 7), d(c2, 9), d(c2, 10), d(c2, 11)));
  EXPECT_EQ(r.stats().redelivered, 1u);
  for (std::uint64_t o : {2, 5, 7, 9, 10, 11}) ASSERT_EQ(r.ack(c2, off(o)), AckResult::ok);
  EXPECT_EQ(r.ack_floor(), off(12));
  EXPECT_THAT(r.snapshot().done_above_floor, IsEmpty());
}

TEST(GroupState, RestoreNormalisesMalformedRuns) {
  const Snapshot messy{off(10),
                       {{off(20), off(25)},
                        {off(5), off(12)},
                        {off(24), off(30)},
                        {off(30), off(31)},
                        {off(40), off(40)},
                        {off(15), off(16)}}};
  GroupState g{opts(), messy};
  EXPECT_EQ(g.ack_floor(), off(12));  // [5,12) reaches the floor
  EXPECT_EQ(g.snapshot().done_above_floor,
            (std::vector<OffsetRange>{{off(15), off(16)}, {off(20), off(31)}}));
}

TEST(GroupState, LagCountsNotDoneOffsetsBelowTheEnd) {
  GroupState g{opts(), off(100)};
  EXPECT_EQ(g.stats().lag, 0u);
  g.add_consumer(c1, 3);
  g.add_consumer(c2, 3);
  g.on_appended(off(110));
  EXPECT_EQ(g.stats().lag, 10u);
  ASSERT_EQ(g.poll(t0).size(), 6u);
  ASSERT_EQ(g.ack(c2, off(101)), AckResult::ok);
  ASSERT_EQ(g.ack(c2, off(103)), AckResult::ok);
  const auto s = g.stats();
  EXPECT_EQ(s.lag, 8u);
  EXPECT_EQ(s.end, off(110));
  EXPECT_EQ(s.ack_floor, off(100));
  EXPECT_EQ(s.in_flight, 4u);
  ASSERT_EQ(s.consumers.size(), 2u);
  EXPECT_EQ(s.consumers[0].consumer, c1);
  EXPECT_EQ(s.consumers[0].in_flight, 3u);
  EXPECT_EQ(s.consumers[0].max_in_flight, 3u);
  EXPECT_EQ(s.consumers[1].consumer, c2);
  EXPECT_EQ(s.consumers[1].in_flight, 1u);
}

TEST(GroupState, HugeDelaysSaturateInsteadOfWrapping) {
  GroupOptions o;
  o.ack_timeout = Duration::max();
  GroupState g{o, off(0)};
  g.add_consumer(c1, 10);
  g.on_appended(off(2));
  const TimePoint late{std::chrono::milliseconds{1'000'000}};
  ASSERT_EQ(g.poll(late).size(), 2u);
  ASSERT_EQ(g.nack(c1, off(0), Duration::max(), late), AckResult::ok);
  EXPECT_GT(*g.next_deadline(), late);
  g.expire(late + 1000h);
  EXPECT_EQ(g.stats().in_flight, 1u);
}

TEST(GroupState, SnapshotWithRetiringDeadLettersIsTheSnapshotAfterThem) {
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 10);
  g.on_appended(off(4));
  ASSERT_EQ(g.poll(t0).size(), 4u);
  ASSERT_EQ(g.ack(c1, off(3)), AckResult::ok);
  ASSERT_EQ(g.reject(c1, off(0)), AckResult::ok);
  ASSERT_EQ(g.reject(c1, off(2)), AckResult::ok);
  const auto letters = g.take_dead_letters();
  ASSERT_EQ(letters.size(), 2u);
  const auto before = g.snapshot();
  const auto predicted = g.snapshot(letters);
  EXPECT_EQ(g.snapshot(), before);  // a prediction changes nothing
  EXPECT_EQ(predicted.ack_floor, off(1));
  EXPECT_EQ(predicted.done_above_floor, (std::vector<OffsetRange>{{off(2), off(4)}}));
  EXPECT_EQ(predicted.dead_lettered, before.dead_lettered + 2);
  for (const auto& l : letters) g.dead_lettered(l.offset);
  EXPECT_EQ(g.snapshot(), predicted);
}

// loftd hands steady_clock::now() to the group as it is. The fake clock here reads a time
// that is not on a millisecond boundary, as a real one almost always does: a nack at 100.7 ms
// with a 5 ms delay must not come due before 105.7 ms. (With millisecond TimePoints, the
// net layer's cast read `now` as 100 ms and the offset came due at 105 ms, 0.7 ms early.)
TEST(GroupState, RedeliveryIsNeverBeforeItsDelayAtASubMillisecondNow) {
  using std::chrono::steady_clock;
  const steady_clock::time_point real_nack{100'700us};
  const auto now = std::chrono::time_point_cast<Duration>(real_nack);  // as loftd converts
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 10);
  g.on_appended(off(2));
  ASSERT_EQ(g.poll(now).size(), 2u);
  ASSERT_EQ(g.nack(c1, off(0), 5ms, now), AckResult::ok);           // explicit delay
  ASSERT_EQ(g.nack(c1, off(1), std::nullopt, now), AckResult::ok);  // backoff: 100 ms
  // The timer is armed at next_deadline(): never before the delay has passed in real time.
  const auto due = steady_clock::time_point(g.next_deadline()->time_since_epoch());
  EXPECT_GE(due, real_nack + 5ms);
  EXPECT_THAT(g.poll(now + 5ms - 1ns), IsEmpty());
  EXPECT_THAT(g.poll(now + 5ms), ElementsAre(d(c1, 0, 2)));
  EXPECT_THAT(g.poll(now + 100ms - 1ns), IsEmpty());
  EXPECT_THAT(g.poll(now + 100ms), ElementsAre(d(c1, 1, 2)));
}

TEST(GroupState, AckTimeoutIsNeverEarlyAtASubMillisecondNow) {
  const TimePoint now{100'700us};
  GroupState g{opts(), off(0)};
  g.add_consumer(c1, 10);
  g.on_appended(off(1));
  ASSERT_EQ(g.poll(now).size(), 1u);
  EXPECT_EQ(*g.next_deadline(), now + 1000ms);
  g.expire(now + 1000ms - 1ns);
  EXPECT_EQ(g.stats().in_flight, 1u);
  g.expire(now + 1000ms);
  EXPECT_EQ(g.stats().in_flight, 0u);
}

TEST(GroupState, DefaultSettingsAreInMilliseconds) {
  const GroupOptions o;
  EXPECT_EQ(o.ack_timeout, 30s);
  EXPECT_EQ(o.backoff.base, 1s);
  EXPECT_EQ(o.backoff.cap, 60s);
}

}  // namespace
}  // namespace loft::delivery

// ---- Filtered groups: the caller looks at each offset and filters out those that do not
// match; only looked-at, matching offsets are handed out, the rest are done.

namespace loft::delivery {
namespace {

GroupOptions filtered() {
  auto o = opts();
  o.filtered = true;
  return o;
}

TEST(GroupStateFilter, HandsOutOnlyWhatWasLookedAtAndTheFilteredOffsetsAreDone) {
  GroupState g(filtered(), off(0));
  g.add_consumer(c1, 100);
  g.on_appended(off(10));
  EXPECT_EQ(g.examined(), off(0));
  EXPECT_THAT(g.poll(t0), IsEmpty()) << "nothing looked at yet";
  EXPECT_EQ(g.stats().lag, 10u);
  // 0..5 looked at: 1, 2 and 4 do not match.
  for (const auto o : {1, 2, 4}) g.filter_out(off(o));
  g.examined_to(off(6));
  EXPECT_EQ(g.waiting_new(), 3u);  // 0, 3, 5
  EXPECT_THAT(g.poll(t0), ElementsAre(d(c1, 0), d(c1, 3), d(c1, 5)));
  EXPECT_EQ(g.waiting_new(), 0u);
  EXPECT_EQ(g.stats().lag, 10u - 3u);  // 3 in flight, 4 not looked at
  EXPECT_EQ(g.ack(c1, off(0)), AckResult::ok);
  EXPECT_EQ(g.ack_floor(), off(3)) << "the floor passes the filtered offsets 1 and 2";
  EXPECT_EQ(g.ack(c1, off(3)), AckResult::ok);
  EXPECT_EQ(g.ack(c1, off(5)), AckResult::ok);
  EXPECT_EQ(g.ack_floor(), off(6));
  EXPECT_EQ(g.stats().lag, 4u);
  // The rest do not match: done without a delivery, the lag is 0.
  for (std::uint64_t o = 6; o < 10; ++o) g.filter_out(off(o));
  g.examined_to(off(10));
  EXPECT_THAT(g.poll(t0), IsEmpty());
  EXPECT_EQ(g.ack_floor(), off(10));
  EXPECT_EQ(g.stats().lag, 0u);
}

TEST(GroupStateFilter, FilterOutBelowWhatWasLookedAtChangesNothing) {
  GroupState g(filtered(), off(0));
  g.add_consumer(c1, 1);
  g.on_appended(off(3));
  g.examined_to(off(3));
  EXPECT_THAT(g.poll(t0), ElementsAre(d(c1, 0)));
  g.filter_out(off(0));  // in flight: not the caller's to filter any more
  g.filter_out(off(1));
  EXPECT_EQ(g.in_flight_of(c1), 1u);
  EXPECT_FALSE(g.is_done(off(0)));
  EXPECT_FALSE(g.is_done(off(1)));
}

TEST(GroupStateFilter, WaitingNewCountsOnlyMatchingOffsetsNotHandedOut) {
  GroupState g(filtered(), off(100));
  g.on_appended(off(200));
  for (std::uint64_t o = 100; o < 200; ++o) {
    if (o % 10 != 0) g.filter_out(off(o));
  }
  g.examined_to(off(150));
  EXPECT_EQ(g.waiting_new(), 5u);  // 100, 110, ..., 140
  g.add_consumer(c1, 2);
  EXPECT_THAT(g.poll(t0), ElementsAre(d(c1, 100), d(c1, 110)));
  EXPECT_EQ(g.waiting_new(), 3u);
  EXPECT_EQ(g.ack_floor(), off(100));
}

TEST(GroupStateFilter, RestoredGroupsLookAgainFromTheirLastDoneRunResetAndSkippedFromTheFloor) {
  GroupState g(filtered(), off(0));
  g.add_consumer(c1, 10);
  g.on_appended(off(20));
  for (std::uint64_t o = 0; o < 20; ++o) {
    if (o != 5) g.filter_out(off(o));
  }
  g.examined_to(off(20));
  EXPECT_EQ(g.ack_floor(), off(5));
  // A restart: the filtered offsets above the floor are done (stored runs), and below the end
  // of the last run everything was looked at, so what is not done there (5) matched: it is
  // handed out at once, without reading 6..19 again.
  GroupState restored(filtered(), g.snapshot());
  restored.add_consumer(c1, 10);
  restored.on_appended(off(20));
  EXPECT_EQ(restored.examined(), off(20));
  EXPECT_FALSE(restored.filter_out(off(7))) << "done already: no change to persist";
  EXPECT_THAT(restored.poll(t0), ElementsAre(d(c1, 5)));
  EXPECT_EQ(restored.stats().lag, 1u);
  // A reset looks again from where it moves the group.
  restored.reset(off(2));
  EXPECT_EQ(restored.examined(), off(2));
  EXPECT_THAT(restored.poll(t0), IsEmpty());
  // Retention passing the floor moves what was looked at with it.
  restored.skip_to(off(8));
  EXPECT_EQ(restored.examined(), off(8));
}

TEST(GroupStateFilter, FilterOutSaysWhetherItChangedAnything) {
  GroupState g(filtered(), off(0));
  g.on_appended(off(4));
  EXPECT_TRUE(g.filter_out(off(2)));
  EXPECT_FALSE(g.filter_out(off(2))) << "twice";
  EXPECT_TRUE(g.filter_out(off(0)));
  EXPECT_EQ(g.ack_floor(), off(1));
  EXPECT_FALSE(g.filter_out(off(0))) << "below the floor";
  // A restored group with no done run above its floor looks from the floor.
  GroupState restored(filtered(), g.snapshot());
  EXPECT_EQ(restored.examined(), off(3));
}

TEST(GroupStateFilter, AGroupThatIsNotFilteredHasLookedAtEverything) {
  GroupState g(opts(), off(0));
  g.on_appended(off(7));
  EXPECT_EQ(g.examined(), off(7));
  g.filter_out(off(3));
  EXPECT_FALSE(g.is_done(off(3)));
  EXPECT_EQ(g.waiting_new(), 7u);
}

}  // namespace
}  // namespace loft::delivery
