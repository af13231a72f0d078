// Randomized sequences of every GroupState event, with the invariants checked after every step
// against a small reference model kept by the test, then a drain that must lose nothing.

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <vector>

#include "loft/delivery/group_state.hpp"

using namespace std::chrono_literals;

namespace loft::delivery {
namespace {

constexpr std::uint64_t kMaxEnd = 160;

struct Flight {
  ConsumerId consumer;
  std::uint32_t attempt = 1;
  TimePoint deadline;
};

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

class Harness {
 public:
  explicit Harness(std::uint64_t seed) : seed_(seed), rng_(seed) {
    options_.ack_timeout = std::chrono::milliseconds{pick(50, 400)};
    options_.max_deliveries = static_cast<std::uint32_t>(pick(0, 4));
    options_.backoff.base = std::chrono::milliseconds{pick(0, 50)};
    options_.backoff.factor = pick(0, 1) ? 2.0 : 0.5;
    options_.backoff.cap = std::chrono::milliseconds{pick(0, 300)};
    options_.backoff.jitter = 0.5;
    if (pick(0, 3) == 0) options_.backoff.delays = {5ms, 40ms};
    const auto start = pick(0, 20);
    done_.assign(kMaxEnd + 1, 0);
    for (std::uint64_t o = 0; o < start; ++o) done_[o] = true;
    floor_ = end_ = start;
    g_.emplace(options_, Offset{start}, seed);
  }

  void random_steps(int steps) {
    for (step_ = 0; step_ < steps; ++step_) {
      switch (pick(0, 15)) {
        case 0:
          add_consumer(ConsumerId{pick(1, 5)}, static_cast<std::uint32_t>(pick(0, 6)));
          break;
        case 1:
          remove_consumer();
          break;
        case 2:
          append();
          break;
        case 3:
        case 4:
          poll();
          break;
        case 5:
        case 6:
          ack_in_flight();
          break;
        case 7:
          ack_refused();
          break;
        case 8:
          nack();
          break;
        case 9:
          extend();
          break;
        case 10:
          reject();
          break;
        case 11:
        case 12:
          advance_and_expire();
          break;
        case 13:
          take_dead_letters();
          break;
        case 14:
          resolve_dead_letter();
          break;
        case 15:
          if (pick(0, 9) == 0) {
            restart();
          } else if (pick(0, 19) == 0) {
            reset_forward();
          }
          break;
      }
      check(step_ % 50 == 0);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }

  // One consumer acks everything, every dead letter is appended, time runs past every
  // deadline: everything below the end must end up done.
  void drain() {
    for (const auto& [o, letter] : taken_) {
      g_->dead_lettered(Offset{o});
      done_[o] = true;
    }
    taken_.clear();
    while (!join_order_.empty()) remove(join_order_.front());
    add_consumer(ConsumerId{100}, 8);
    for (int i = 0; i < 100'000; ++i) {
      g_->expire(now_);
      std::erase_if(in_flight_, [&](const auto& f) { return f.second.deadline <= now_; });
      const auto got = poll();
      for (const auto& d : got) ack(d.consumer, d.offset.value);
      auto letters = g_->take_dead_letters();
      for (const auto& l : letters) {
        g_->dead_lettered(l.offset);
        done_[l.offset.value] = true;
      }
      check(true);
      ASSERT_FALSE(::testing::Test::HasFatalFailure());
      if (got.empty() && letters.empty()) {
        const auto next = g_->next_deadline();
        if (!next) break;
        now_ = std::max(now_, *next);
      }
    }
    EXPECT_EQ(g_->ack_floor(), Offset{end_}) << "seed " << seed_;
    const auto s = g_->stats();
    EXPECT_EQ(s.lag, 0u);
    EXPECT_EQ(s.in_flight, 0u);
    EXPECT_EQ(s.scheduled, 0u);
    for (std::uint64_t o = 0; o < end_; ++o) ASSERT_TRUE(done_[o]) << "seed " << seed_ << " " << o;
  }

 private:
  std::uint64_t pick(std::uint64_t lo, std::uint64_t hi) {
    return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng_);
  }

  void add_consumer(ConsumerId c, std::uint32_t max) {
    g_->add_consumer(c, max);
    if (!max_.contains(c)) join_order_.push_back(c);
    max_[c] = max;
  }

  void remove(ConsumerId c) {
    g_->remove_consumer(c, now_);
    std::erase_if(in_flight_, [&](const auto& f) { return f.second.consumer == c; });
    std::erase(join_order_, c);
    max_.erase(c);
  }

  void remove_consumer() {
    if (join_order_.empty() || pick(0, 4) == 0) {
      remove(ConsumerId{pick(1, 6)});  // possibly unknown: a no-op
    } else {
      remove(join_order_[pick(0, join_order_.size() - 1)]);
    }
  }

  void append() {
    end_ = std::min(kMaxEnd, end_ + pick(0, 6));
    g_->on_appended(Offset{end_});
    if (pick(0, 5) == 0 && end_ > 0) g_->on_appended(Offset{end_ - 1});  // ignored
  }

  std::vector<Delivery> poll() {
    const auto got = g_->poll(now_);
    std::set<ConsumerId> served;
    for (const auto& d : got) {
      const auto o = d.offset.value;
      EXPECT_LT(o, end_) << "seed " << seed_;
      EXPECT_FALSE(done_[o]) << "done offset delivered again: " << o << " seed " << seed_
                             << " step " << step_ << " attempt " << d.attempt;
      EXPECT_FALSE(in_flight_.contains(o)) << "in flight twice: " << o << " seed " << seed_;
      EXPECT_FALSE(taken_.contains(o)) << "dead letter delivered: " << o << " seed " << seed_;
      EXPECT_TRUE(max_.contains(d.consumer)) << "seed " << seed_;
      const auto prev = attempts_.contains(o) ? attempts_[o] : 0;
      EXPECT_EQ(d.attempt, prev + 1) << "offset " << o << " seed " << seed_;
      attempts_[o] = d.attempt;
      in_flight_[o] = Flight{d.consumer, d.attempt, now_ + options_.ack_timeout};
      served.insert(d.consumer);
    }
    // No busy loop: after poll(now), next_deadline() <= now only while an in-flight offset
    // is past its deadline and expire(now) has not run yet.
    if (const auto next = g_->next_deadline(); next && *next <= now_) {
      EXPECT_TRUE(std::any_of(in_flight_.begin(), in_flight_.end(),
                              [&](const auto& f) { return f.second.deadline <= now_; }))
          << "next_deadline in the past after poll, seed " << seed_ << " step " << step_;
    }
    for (const auto& c : served) {
      EXPECT_LE(g_->in_flight_of(c), max_[c]) << "credit exceeded, seed " << seed_;
    }
    return got;
  }

  std::optional<std::pair<std::uint64_t, Flight>> random_in_flight() {
    if (in_flight_.empty()) return std::nullopt;
    auto it = in_flight_.begin();
    std::advance(it, static_cast<long>(pick(0, in_flight_.size() - 1)));
    return *it;
  }

  void ack(ConsumerId c, std::uint64_t o) {
    ASSERT_EQ(g_->ack(c, Offset{o}), AckResult::ok) << "offset " << o << " seed " << seed_;
    in_flight_.erase(o);
    done_[o] = true;
  }

  void ack_in_flight() {
    if (auto f = random_in_flight()) ack(f->second.consumer, f->first);
  }

  void ack_refused() {
    const auto o = pick(0, kMaxEnd);
    const ConsumerId c{pick(1, 6)};
    if (auto it = in_flight_.find(o); it != in_flight_.end() && it->second.consumer == c) return;
    const auto before = observe(*g_);
    switch (pick(0, 3)) {
      case 0:
        EXPECT_EQ(g_->ack(c, Offset{o}), AckResult::not_in_flight);
        break;
      case 1:
        EXPECT_EQ(g_->nack(c, Offset{o}, std::nullopt, now_), AckResult::not_in_flight);
        break;
      case 2:
        EXPECT_EQ(g_->extend(c, Offset{o}, now_ + 5ms), AckResult::not_in_flight);
        break;
      case 3:
        EXPECT_EQ(g_->reject(c, Offset{o}), AckResult::not_in_flight);
        break;
    }
    EXPECT_EQ(observe(*g_), before) << "refused call changed state, seed " << seed_;
  }

  void nack() {
    auto f = random_in_flight();
    if (!f) return;
    std::optional<Duration> delay;
    if (pick(0, 1)) delay = std::chrono::milliseconds{pick(0, 50)};
    ASSERT_EQ(g_->nack(f->second.consumer, Offset{f->first}, delay, now_), AckResult::ok);
    in_flight_.erase(f->first);
  }

  void extend() {
    auto f = random_in_flight();
    if (!f) return;
    ASSERT_EQ(g_->extend(f->second.consumer, Offset{f->first}, now_), AckResult::ok);
    in_flight_[f->first].deadline = now_ + options_.ack_timeout;
  }

  void reject() {
    auto f = random_in_flight();
    if (!f) return;
    ASSERT_EQ(g_->reject(f->second.consumer, Offset{f->first}), AckResult::ok);
    in_flight_.erase(f->first);
  }

  void advance_and_expire() {
    now_ += std::chrono::milliseconds{pick(0, 150)};
    g_->expire(now_);
    std::erase_if(in_flight_, [&](const auto& f) { return f.second.deadline <= now_; });
  }

  void take_dead_letters() {
    for (const auto& l : g_->take_dead_letters()) {
      const auto o = l.offset.value;
      EXPECT_FALSE(done_[o]) << "seed " << seed_;
      EXPECT_FALSE(in_flight_.contains(o)) << "seed " << seed_;
      EXPECT_FALSE(taken_.contains(o)) << "taken twice: " << o << " seed " << seed_;
      EXPECT_EQ(l.attempts, attempts_[o]) << "seed " << seed_;
      if (l.reason == DeadLetterReason::max_deliveries) {
        EXPECT_GT(options_.max_deliveries, 0u);
        EXPECT_GE(l.attempts, options_.max_deliveries);
      }
      taken_[o] = l;
    }
  }

  void resolve_dead_letter() {
    if (taken_.empty()) return;
    auto it = taken_.begin();
    std::advance(it, static_cast<long>(pick(0, taken_.size() - 1)));
    if (pick(0, 2) == 0) {
      g_->dead_letter_failed(it->second);
    } else {
      g_->dead_lettered(Offset{it->first});
      done_[it->first] = true;
    }
    taken_.erase(it);
  }

  void restart() {
    const auto snap = g_->snapshot();
    g_.emplace(options_, snap, seed_ + static_cast<std::uint64_t>(step_));
    EXPECT_EQ(g_->snapshot(), snap) << "seed " << seed_;
    g_->on_appended(Offset{end_});
    for (const auto& c : join_order_) g_->add_consumer(c, max_[c]);
    in_flight_.clear();
    attempts_.clear();  // attempt counts restart at 1
    taken_.clear();     // not done, so delivered again
  }

  void reset_forward() {
    const auto to = pick(floor_, end_);
    g_->reset(Offset{to});
    for (std::uint64_t o = 0; o <= kMaxEnd; ++o) done_[o] = o < to;
    in_flight_.clear();
    attempts_.clear();
    taken_.clear();
  }

  // Plain ifs in the loops: gtest assertions on every offset of every step cost more than
  // the state machine itself under ASan.
  void check(bool full) {
    // The floor never moves backwards and is the lowest offset not done.
    const auto floor = g_->ack_floor().value;
    ASSERT_GE(floor, floor_) << "floor moved back, seed " << seed_;
    floor_ = floor;
    for (std::uint64_t o = full || floor < 4 ? 0 : floor - 4; o < floor && o <= kMaxEnd; ++o) {
      if (!done_[o]) FAIL() << "below the floor but not done: " << o << " seed " << seed_;
    }
    if (floor <= kMaxEnd && done_[floor]) FAIL() << "floor not advanced, seed " << seed_;
    // Credit: every consumer's count is its in-flight offsets in the model.
    std::array<std::uint32_t, 128> counts{};
    for (const auto& [o, f] : in_flight_) ++counts[f.consumer.value];
    for (const auto& c : join_order_) {
      if (g_->in_flight_of(c) != counts[c.value]) {
        FAIL() << "in_flight_of " << c.value << " seed " << seed_ << " step " << step_;
      }
    }
    if (!full) return;
    const auto s = g_->stats();
    ASSERT_EQ(s.in_flight, in_flight_.size()) << "seed " << seed_ << " step " << step_;
    ASSERT_EQ(s.consumers.size(), join_order_.size());
    for (std::size_t i = 0; i < join_order_.size(); ++i) {
      if (s.consumers[i].consumer != join_order_[i]) FAIL() << "join order, seed " << seed_;
    }
    std::uint64_t lag = 0;
    for (std::uint64_t o = 0; o <= kMaxEnd; ++o) {
      if (g_->is_done(Offset{o}) != done_[o]) FAIL() << "is_done " << o << " seed " << seed_;
      if (o >= floor && o < end_ && !done_[o]) ++lag;
    }
    ASSERT_EQ(s.lag, lag) << "seed " << seed_;
    const auto snap = g_->snapshot();
    std::uint64_t prev_end = snap.ack_floor.value;
    for (const auto& r : snap.done_above_floor) {
      ASSERT_GT(r.first.value, prev_end) << "runs not sorted, disjoint and non-adjacent";
      ASSERT_LT(r.first, r.end);
      prev_end = r.end.value;
    }
  }

  std::uint64_t seed_;
  std::mt19937_64 rng_;
  GroupOptions options_;
  std::optional<GroupState> g_;
  TimePoint now_{};
  int step_ = 0;
  std::uint64_t end_ = 0;
  std::uint64_t floor_ = 0;
  std::vector<char> done_;  // (not vector<bool>: cheaper to index in Debug) // must never be
                            // delivered again
  std::map<std::uint64_t, Flight> in_flight_;        // as the model expects the group to hold it
  std::map<std::uint64_t, std::uint32_t> attempts_;  // last attempt since the last restart
  std::map<std::uint64_t, DeadLetter> taken_;        // taken, append not resolved yet
  std::map<ConsumerId, std::uint32_t> max_;
  std::vector<ConsumerId> join_order_;
};

TEST(GroupStateRandom, InvariantsHoldAndNothingIsLost) {
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    Harness run{seed};
    run.random_steps(2000);
    ASSERT_FALSE(HasFatalFailure()) << "seed " << seed;
    run.drain();
    ASSERT_FALSE(HasFatalFailure()) << "seed " << seed;
    if (HasFailure()) FAIL() << "seed " << seed;
  }
}

}  // namespace
}  // namespace loft::delivery
