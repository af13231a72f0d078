// The delivery state machine's cost per offset (include/loft/delivery/group_state.hpp):
// hand out N offsets, ack them in order and out of order, expire them at their ack deadline,
// nack them with backoff. Not a test: run it and read the numbers (last figures:
// docs/performance-log.md, "Micro-benchmarks: codec and delivery state machine").
//
//   build-release/tests/bench/group_state_bench
//
// Every iteration starts from a fresh group with one consumer whose credit is N, so the
// figures do not depend on how many iterations ran before; items/s counts offsets.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "loft/delivery/group_state.hpp"

namespace {

using namespace loft;
using namespace loft::delivery;
using namespace std::chrono_literals;

constexpr ConsumerId kConsumer{1};
const TimePoint kT0{};

// A group with one consumer of credit n and n offsets appended, all of them handed out at
// kT0 when `deliver` is true.
GroupState group_of(std::size_t n, bool deliver, benchmark::State& state) {
  GroupState g{GroupOptions{}, Offset{0}};
  g.add_consumer(kConsumer, static_cast<std::uint32_t>(n));
  g.on_appended(Offset{n});
  if (deliver && g.poll(kT0).size() != n) state.SkipWithError("poll did not hand out n offsets");
  return g;
}

std::size_t n_of(const benchmark::State& state) { return static_cast<std::size_t>(state.range(0)); }

void BM_DeliverN(benchmark::State& state) {
  const auto n = n_of(state);
  for (auto _ : state) {
    auto g = group_of(n, false, state);
    const auto out = g.poll(kT0);
    if (out.size() != n) {
      state.SkipWithError("poll did not hand out n offsets");
      break;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

// Delivers n offsets (not timed), then settles them one by one in `order` with `settle`
// (timed), and checks that the group ends where it should.
template <class Settle>
void settle_bench(benchmark::State& state, const std::vector<std::uint64_t>& order, Settle settle) {
  const auto n = order.size();
  std::optional<GroupState> g;  // outside the loop: the previous group is freed untimed
  for (auto _ : state) {
    state.PauseTiming();
    g.reset();
    g.emplace(group_of(n, true, state));
    state.ResumeTiming();
    for (const auto offset : order) {
      if (settle(*g, Offset{offset}) != AckResult::ok) {
        state.SkipWithError("a settle was not applied");
        return;
      }
    }
    benchmark::DoNotOptimize(g->ack_floor());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

std::vector<std::uint64_t> in_order(std::size_t n) {
  std::vector<std::uint64_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

AckResult ack(GroupState& g, Offset offset) { return g.ack(kConsumer, offset); }

void BM_AckInOrder(benchmark::State& state) { settle_bench(state, in_order(n_of(state)), ack); }

// A fixed shuffle: the floor moves only at the end, so done runs above the floor grow,
// merge and fold back.
void BM_AckOutOfOrder(benchmark::State& state) {
  auto order = in_order(n_of(state));
  std::mt19937_64 rng{42};
  std::shuffle(order.begin(), order.end(), rng);
  settle_bench(state, order, ack);
}

// Every offset nacked without a delay: the group's exponential backoff with jitter
// schedules each redelivery.
void BM_NackWithBackoff(benchmark::State& state) {
  settle_bench(state, in_order(n_of(state)), [](GroupState& g, Offset offset) {
    return g.nack(kConsumer, offset, std::nullopt, kT0);
  });
}

// All n offsets reach their ack deadline together: expire() moves each to scheduled.
void BM_ExpireAtDeadline(benchmark::State& state) {
  const auto n = n_of(state);
  const auto deadline = kT0 + GroupOptions{}.ack_timeout;
  std::optional<GroupState> g;  // outside the loop: the previous group is freed untimed
  for (auto _ : state) {
    state.PauseTiming();
    if (g && g->stats().scheduled != n) {
      state.SkipWithError("expire did not schedule every offset");
      break;
    }
    g.reset();
    g.emplace(group_of(n, true, state));
    state.ResumeTiming();
    g->expire(deadline);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

BENCHMARK(BM_DeliverN)->Arg(100)->Arg(1000)->Arg(10'000);
BENCHMARK(BM_AckInOrder)->Arg(100)->Arg(1000)->Arg(10'000);
BENCHMARK(BM_AckOutOfOrder)->Arg(100)->Arg(1000)->Arg(10'000);
BENCHMARK(BM_NackWithBackoff)->Arg(100)->Arg(1000)->Arg(10'000);
BENCHMARK(BM_ExpireAtDeadline)->Arg(100)->Arg(1000)->Arg(10'000);

}  // namespace

BENCHMARK_MAIN();
