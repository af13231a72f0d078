// Per-key ordered delivery (GroupOptions::ordering = key): directed cases, then randomized
// publishes over K keys with random ack / nack / timeout / disconnect / restart across C
// consumers on a fake clock, with the ordering invariants checked after every step and a drain
// that must settle everything.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "loft/delivery/group_state.hpp"

using namespace std::chrono_literals;

namespace loft::delivery {
namespace {

GroupOptions ordered(std::uint32_t lookahead = 10'000) {
  GroupOptions o;
  o.ack_timeout = 1s;
  o.max_deliveries = 3;
  o.backoff.delays = {10ms};
  o.ordering = Ordering::key;
  o.key_lookahead = lookahead;
  return o;
}

// Tells the group the keys of [from, keys.size()) ("" = none) and that it has looked at them.
void look(GroupState& g, const std::vector<std::string>& keys) {
  for (auto o = g.examined().value; o < keys.size(); ++o) g.set_key(Offset{o}, keys[o]);
  g.on_appended(Offset{keys.size()});
  g.examined_to(Offset{keys.size()});
}

std::vector<std::uint64_t> offsets(const std::vector<Delivery>& ds) {
  std::vector<std::uint64_t> out;
  for (const auto& d : ds) out.push_back(d.offset.value);
  return out;
}

const TimePoint t0{};
const ConsumerId c1{1};
const ConsumerId c2{2};

TEST(KeyOrder, OneInFlightPerKeyOtherKeysFlow) {
  GroupState g{ordered(), Offset{0}};
  g.add_consumer(c1, 100);
  look(g, {"a", "a", "b", "", "a", "b", ""});
  EXPECT_EQ(offsets(g.poll(t0)), (std::vector<std::uint64_t>{0, 2, 3, 6}));
  EXPECT_EQ(g.stats().held_back, 3u);
  ASSERT_EQ(g.ack(c1, Offset{0}), AckResult::ok);
  EXPECT_EQ(offsets(g.poll(t0)), (std::vector<std::uint64_t>{1}));
  ASSERT_EQ(g.ack(c1, Offset{2}), AckResult::ok);
  ASSERT_EQ(g.ack(c1, Offset{1}), AckResult::ok);
  EXPECT_EQ(offsets(g.poll(t0)), (std::vector<std::uint64_t>{4, 5}));
  EXPECT_EQ(g.stats().held_back, 0u);
}

TEST(KeyOrder, NackTimeoutAndLeavingRedeliverTheSameMessageFirst) {
  GroupState g{ordered(), Offset{0}};
  g.add_consumer(c1, 10);
  g.add_consumer(c2, 10);
  look(g, {"k", "k", "k"});
  EXPECT_EQ(offsets(g.poll(t0)), (std::vector<std::uint64_t>{0}));
  ASSERT_EQ(g.nack(c1, Offset{0}, 0ms, t0), AckResult::ok);
  auto again = g.poll(t0);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].offset, Offset{0});
  EXPECT_EQ(again[0].attempt, 2u);
  g.expire(t0 + 1s);  // timed out: still the owner
  EXPECT_TRUE(g.poll(t0 + 1s).empty());
  auto third = g.poll(t0 + 1s + 10ms);
  ASSERT_EQ(offsets(third), (std::vector<std::uint64_t>{0}));
  g.remove_consumer(third[0].consumer, t0 + 2s);
  EXPECT_EQ(offsets(g.poll(t0 + 2s)), (std::vector<std::uint64_t>{0}));
}

TEST(KeyOrder, DeadLetterPassesTheKeyOnOnlyWhenDurable) {
  GroupState g{ordered(), Offset{0}};
  g.add_consumer(c1, 10);
  look(g, {"k", "k"});
  ASSERT_EQ(offsets(g.poll(t0)), (std::vector<std::uint64_t>{0}));
  ASSERT_EQ(g.reject(c1, Offset{0}), AckResult::ok);
  EXPECT_TRUE(g.poll(t0).empty());
  const auto letters = g.take_dead_letters();
  ASSERT_EQ(letters.size(), 1u);
  g.dead_letter_failed(letters[0]);
  EXPECT_TRUE(g.poll(t0).empty());
  std::ignore = g.take_dead_letters();
  g.dead_lettered(Offset{0});
  EXPECT_EQ(offsets(g.poll(t0)), (std::vector<std::uint64_t>{1}));
}

TEST(KeyOrder, LookaheadBoundStopsAndNamesTheBlockingKey) {
  GroupState g{ordered(2), Offset{0}};
  g.add_consumer(c1, 100);
  look(g, {"a", "a", "b", "a", "b", "c", ""});
  // 0 (a) and 2 (b) go out; 1 and 3 are held back; 4 (b) would exceed the bound of 2.
  EXPECT_EQ(offsets(g.poll(t0)), (std::vector<std::uint64_t>{0, 2}));
  auto s = g.stats();
  EXPECT_EQ(s.held_back, 2u);
  EXPECT_TRUE(s.key_blocked);
  EXPECT_EQ(s.blocking_key, "a");
  ASSERT_EQ(g.ack(c1, Offset{0}), AckResult::ok);
  // 1 takes over key a (the bound frees one place), 4 is held back, 5 and 6 flow.
  EXPECT_EQ(offsets(g.poll(t0)), (std::vector<std::uint64_t>{1, 5, 6}));
  EXPECT_FALSE(g.stats().key_blocked);
}

TEST(KeyOrder, RestoredGroupKeepsTheOrder) {
  GroupState g{ordered(), Offset{0}};
  g.add_consumer(c1, 100);
  const std::vector<std::string> keys{"a", "b", "a", "b", "a"};
  look(g, keys);
  ASSERT_EQ(offsets(g.poll(t0)), (std::vector<std::uint64_t>{0, 1}));
  ASSERT_EQ(g.ack(c1, Offset{1}), AckResult::ok);
  ASSERT_EQ(offsets(g.poll(t0)), (std::vector<std::uint64_t>{3}));
  ASSERT_EQ(g.ack(c1, Offset{3}), AckResult::ok);
  GroupState r{ordered(), g.snapshot()};
  r.add_consumer(c2, 100);
  EXPECT_EQ(r.examined(), Offset{0});  // it looks at the keys again from the floor
  look(r, keys);
  EXPECT_EQ(offsets(r.poll(t0)), (std::vector<std::uint64_t>{0}));
  ASSERT_EQ(r.ack(c2, Offset{0}), AckResult::ok);
  EXPECT_EQ(offsets(r.poll(t0)), (std::vector<std::uint64_t>{2}));
}

TEST(KeyOrder, SkipToPassesTheKeyOn) {
  GroupState g{ordered(), Offset{0}};
  g.add_consumer(c1, 100);
  look(g, {"a", "a", "a"});
  ASSERT_EQ(offsets(g.poll(t0)), (std::vector<std::uint64_t>{0}));
  EXPECT_EQ(g.skip_to(Offset{1}), 1u);
  EXPECT_EQ(offsets(g.poll(t0)), (std::vector<std::uint64_t>{1}));
  EXPECT_EQ(g.ack(c1, Offset{0}), AckResult::not_in_flight);
  g.reset(Offset{3});
  EXPECT_EQ(g.stats().held_back, 0u);
}

// ---------------------------------------------------------------------------------------------
// Randomized.

class KeyHarness {
 public:
  explicit KeyHarness(std::uint64_t seed) : rng_(seed) {
    options_ = ordered(static_cast<std::uint32_t>(pick(1, 12)));
    options_.ack_timeout = std::chrono::milliseconds{pick(20, 200)};
    options_.max_deliveries = static_cast<std::uint32_t>(pick(0, 4));
    options_.backoff.delays = {std::chrono::milliseconds{pick(0, 30)}};
    keys_count_ = pick(1, 8);
    g_.emplace(options_, Offset{0}, seed);
  }

  void random_steps(int steps) {
    for (int step = 0; step < steps; ++step) {
      switch (pick(0, 11)) {
        case 0:
          add_consumer();
          break;
        case 1:
          remove_consumer();
          break;
        case 2:
        case 3:
          publish();
          break;
        case 4:
        case 5:
          poll();
          break;
        case 6:
        case 7:
          settle(Settle::ack);
          break;
        case 8:
          settle(pick(0, 3) == 0 ? Settle::reject : Settle::nack);
          break;
        case 9:
          now_ += std::chrono::milliseconds{pick(0, 150)};
          g_->expire(now_);
          break;
        case 10:
          dead_letters();
          break;
        case 11:
          if (pick(0, 4) == 0) restart();
          break;
      }
      check(step);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }

  // Everything ends acked or dead-lettered, every key included, in a bounded number of rounds.
  void drain() {
    const ConsumerId drainer{100};
    g_->add_consumer(drainer, 5);
    consumers_.insert(drainer);
    for (int round = 0; round < 10'000 && !all_done(); ++round) {
      now_ += 50ms;
      g_->expire(now_);
      dead_letters();
      for (const auto& d : record(g_->poll(now_))) {
        if (g_->ack(d.consumer, d.offset) == AckResult::ok) done_.insert(d.offset.value);
      }
      check(-1);
      if (::testing::Test::HasFatalFailure()) return;
    }
    for (std::size_t o = 0; o < keys_.size(); ++o) {
      ASSERT_TRUE(g_->is_done(Offset{o})) << "offset " << o << " key '" << keys_[o] << "'";
    }
  }

 private:
  enum class Settle { ack, nack, reject };

  std::uint64_t pick(std::uint64_t lo, std::uint64_t hi) {
    return std::uniform_int_distribution<std::uint64_t>{lo, hi}(rng_);
  }

  bool all_done() const {
    for (std::size_t o = 0; o < keys_.size(); ++o) {
      if (!g_->is_done(Offset{o})) return false;
    }
    return true;
  }

  void add_consumer() {
    const ConsumerId c{pick(1, 4)};
    g_->add_consumer(c, static_cast<std::uint32_t>(pick(1, 4)));
    consumers_.insert(c);
  }
  void remove_consumer() {
    if (consumers_.empty()) return;
    auto it = consumers_.begin();
    std::advance(it, static_cast<long>(pick(0, consumers_.size() - 1)));
    g_->remove_consumer(*it, now_);
    std::erase_if(delivered_, [&](const auto& d) { return d.second == *it; });
    consumers_.erase(it);
  }
  void publish() {
    const auto n = pick(1, 6);
    for (std::uint64_t i = 0; i < n && keys_.size() < 200; ++i) {
      keys_.push_back(pick(0, 5) == 0 ? std::string{} : "k" + std::to_string(pick(1, keys_count_)));
    }
    look(*g_, keys_);
  }
  // Checks the order of a poll's deliveries against what the test saw settle.
  std::vector<Delivery> record(std::vector<Delivery> ds) {
    for (const auto& d : ds) {
      const auto o = d.offset.value;
      const auto& key = keys_.at(o);
      if (!key.empty()) {
        for (std::uint64_t p = 0; p < o; ++p) {
          if (keys_[p] == key) {
            EXPECT_TRUE(done_.contains(p)) << "offset " << o << " of key '" << key
                                           << "' delivered before offset " << p << " was settled";
          }
        }
      }
      delivered_[o] = d.consumer;
    }
    return ds;
  }
  void poll() { record(g_->poll(now_)); }
  void settle(Settle how) {
    if (delivered_.empty()) return;
    auto it = delivered_.begin();
    std::advance(it, static_cast<long>(pick(0, delivered_.size() - 1)));
    const Offset o{it->first};
    const auto c = it->second;
    delivered_.erase(it);
    switch (how) {
      case Settle::ack:
        if (g_->ack(c, o) == AckResult::ok) done_.insert(o.value);
        break;
      case Settle::nack:
        std::ignore = g_->nack(c, o, std::nullopt, now_);
        break;
      case Settle::reject:
        std::ignore = g_->reject(c, o);
        break;
    }
  }
  void dead_letters() {
    for (const auto& l : g_->take_dead_letters()) {
      if (pick(0, 4) == 0) {
        g_->dead_letter_failed(l);
      } else {
        g_->dead_lettered(l.offset);
        done_.insert(l.offset.value);
      }
    }
  }
  // loftd restarts: what was in flight is forgotten, the snapshot comes back, the caller looks
  // at the keys again and the consumers reconnect.
  void restart() {
    const auto snap = g_->snapshot();
    g_.emplace(options_, snap, pick(1, 1000));
    look(*g_, keys_);
    delivered_.clear();
    // Dead letters taken but not durable are not done: the snapshot says so.
    for (std::size_t o = 0; o < keys_.size(); ++o) {
      if (!g_->is_done(Offset{o})) done_.erase(o);
    }
    for (const auto c : consumers_) g_->add_consumer(c, static_cast<std::uint32_t>(pick(1, 4)));
  }
  void check(int step) {
    const auto s = g_->stats();
    ASSERT_LE(s.held_back, options_.key_lookahead) << "step " << step;
    if (s.key_blocked) {
      ASSERT_FALSE(s.blocking_key.empty()) << "step " << step;
    }
    for (const auto o : done_) ASSERT_TRUE(g_->is_done(Offset{o})) << "step " << step;
  }

  std::mt19937_64 rng_;
  GroupOptions options_;
  std::uint64_t keys_count_ = 1;
  std::optional<GroupState> g_;
  TimePoint now_{};
  std::vector<std::string> keys_;  // by offset; "" = no key
  std::set<std::uint64_t> done_;   // acked or dead-lettered, as the test saw it
  std::set<ConsumerId> consumers_;
  std::map<std::uint64_t, ConsumerId> delivered_;  // last delivery of each offset
};

TEST(KeyOrderRandom, PerKeyOrderHoldsAndEverythingSettles) {
  for (std::uint64_t seed = 1; seed <= 100; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    KeyHarness h{seed};
    h.random_steps(600);
    if (HasFatalFailure()) return;
    h.drain();
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace loft::delivery
