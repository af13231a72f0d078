// GroupState: the delivery state machine of one consumer group. See the header for the rules;
// this file notes the decisions the header leaves open.

#include "loft/delivery/group_state.hpp"

#include <algorithm>
#include <iterator>
#include <limits>

namespace loft::delivery {
namespace {

Offset next(Offset o) { return Offset{o.value + 1}; }

// now + d without signed overflow (a huge nack delay or cap must not wrap into the past).
TimePoint add_saturating(TimePoint now, Duration d) {
  const auto t = now.time_since_epoch().count();
  const auto v = d.count();
  constexpr auto kMax = std::numeric_limits<Duration::rep>::max();
  constexpr auto kMin = std::numeric_limits<Duration::rep>::min();
  if (v > 0 && t > kMax - v) return TimePoint{Duration{kMax}};
  if (v < 0 && t < kMin - v) return TimePoint{Duration{kMin}};
  return now + d;
}

}  // namespace

GroupState::GroupState(GroupOptions options, Offset start, std::uint64_t seed)
    : options_(std::move(options)),
      rng_(seed),
      ack_floor_(start),
      next_new_(start),
      end_(start),
      examined_(start) {}

// Restored groups: nothing is in flight, and the attempts of the offsets that were in flight
// or scheduled before the restart are not persisted, so they are delivered again as attempt 1
// (max_deliveries counts from the restart). Pending dead letters are not done either, so they
// are delivered again too (the caller makes a dead-letter append and the snapshot that retires
// it durable together). Malformed runs (unsorted, overlapping, adjacent, below the floor) are
// normalised rather than trusted.
GroupState::GroupState(GroupOptions options, const Snapshot& snapshot, std::uint64_t seed)
    : GroupState(std::move(options), snapshot.ack_floor, seed) {
  dead_lettered_ = snapshot.dead_lettered;
  redelivered_ = snapshot.redelivered;
  skipped_ = snapshot.skipped;
  for (const auto& run : snapshot.done_above_floor) {
    auto first = std::max(run.first, ack_floor_).value;
    auto end = run.end.value;
    if (first >= end) continue;
    auto it = done_runs_.upper_bound(first);
    if (it != done_runs_.begin() && std::prev(it)->second >= first) {
      --it;
      first = it->first;
    }
    while (it != done_runs_.end() && it->first <= end) {
      end = std::max(end, it->second);
      it = done_runs_.erase(it);
    }
    done_runs_.emplace(first, end);
  }
  // A run starting at the floor belongs to the floor.
  if (auto it = done_runs_.find(ack_floor_.value); it != done_runs_.end()) {
    ack_floor_ = Offset{it->second};
    done_runs_.erase(it);
  }
  next_new_ = ack_floor_;
  end_ = ack_floor_;
  // What was filtered out before the restart is done (in the runs). Everything below the end of
  // the last done run was looked at before (a run ends at an acked, dead-lettered or filtered
  // offset, each examined first), and what of it is not done matched: start looking there, not
  // at the floor, so a restart does not read the processed backlog again.
  examined_ =
      done_runs_.empty() ? ack_floor_ : std::max(ack_floor_, Offset{done_runs_.rbegin()->second});
  // An ordered group must learn the key of every offset it delivers, so it looks from the floor.
  if (options_.ordering == Ordering::key) examined_ = ack_floor_;
}

void GroupState::add_consumer(ConsumerId consumer, std::uint32_t max_in_flight) {
  auto [it, inserted] = consumers_.try_emplace(consumer);
  // Lowering max_in_flight below the current in_flight revokes nothing: the consumer simply
  // gets no more until its acks bring it below the new limit.
  it->second.max_in_flight = max_in_flight;
  if (inserted) {
    it->second.joined = next_join_++;
    join_order_.emplace(it->second.joined, consumer);
  }
}

void GroupState::remove_consumer(ConsumerId consumer, TimePoint now) {
  auto c = consumers_.find(consumer);
  if (c == consumers_.end()) return;
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    if (it->second.consumer != consumer) {
      ++it;
      continue;
    }
    const auto offset = it->first;
    const auto attempt = it->second.attempt;
    deadlines_.erase(it->second.due);
    it = in_flight_.erase(it);
    // Leaving is not a failed attempt: no backoff, no dead-lettering, the count is kept. (An
    // offset at max_deliveries is still redelivered once more.)
    schedule(offset, attempt, now);
  }
  join_order_.erase(c->second.joined);
  consumers_.erase(c);
}

void GroupState::on_appended(Offset end) { end_ = std::max(end_, end); }

GroupState::Consumer* GroupState::next_consumer_with_credit(ConsumerId& id) {
  if (join_order_.empty()) return nullptr;
  // Round-robin in join order, continuing after the consumer served last (even across calls),
  // so a stream of single deliveries spreads evenly.
  auto start = join_order_.upper_bound(last_served_);
  for (int pass = 0; pass < 2; ++pass) {
    auto first = pass == 0 ? start : join_order_.begin();
    auto last = pass == 0 ? join_order_.end() : start;
    for (auto it = first; it != last; ++it) {
      auto& c = consumers_.at(it->second);
      if (c.in_flight < c.max_in_flight) {
        id = it->second;
        return &c;
      }
    }
  }
  return nullptr;
}

void GroupState::deliver(std::vector<Delivery>& out, Offset offset, std::uint32_t attempt,
                         TimePoint now) {
  ConsumerId id;
  auto* c = next_consumer_with_credit(id);
  // Callers check credit first.
  ++c->in_flight;
  last_served_ = c->joined;
  const auto deadline = add_saturating(now, options_.ack_timeout);
  // Deadlines only grow with `now`, so the new one almost always goes last: with the hint the
  // insert takes constant time instead of a search.
  const auto due = deadlines_.emplace_hint(deadlines_.end(), deadline, offset);
  try {
    in_flight_.emplace(offset, InFlight{id, attempt, deadline, due});
  } catch (...) {
    deadlines_.erase(due);  // no deadline without its in-flight entry
    throw;
  }
  if (attempt >= 2) ++redelivered_;
  out.push_back(Delivery{id, offset, attempt});
}

std::vector<Delivery> GroupState::poll(TimePoint now) {
  // Scheduled offsets that became due move to ready_, which keeps them in offset order until
  // a consumer has credit for them (so a long backlog is not re-sorted on every poll).
  while (!waiting_.empty() && waiting_.begin()->first <= now) {
    ready_.insert(waiting_.begin()->second);
    waiting_.erase(waiting_.begin());
  }
  std::vector<Delivery> out;
  ConsumerId unused;
  // Redeliveries first, lowest offset first.
  while (!ready_.empty() && next_consumer_with_credit(unused) != nullptr) {
    const auto offset = *ready_.begin();
    ready_.erase(ready_.begin());
    const auto s = scheduled_.find(offset);
    const auto attempt = s->second.attempt + 1;
    scheduled_.erase(s);
    deliver(out, offset, attempt, now);
  }
  // Ordered groups: the offsets whose key came free, oldest first, then new ones in order.
  if (options_.ordering == Ordering::key) {
    while (!unblocked_.empty() && next_consumer_with_credit(unused) != nullptr) {
      const auto offset = *unblocked_.begin();
      unblocked_.erase(unblocked_.begin());
      deliver(out, offset, 1, now);
    }
    next_new_ = std::max(next_new_, ack_floor_);
    poll_ordered_new(out, std::min(end_, examined()), now);
    return out;
  }
  // Then never-delivered offsets in order. Only a restored group has done offsets at or above
  // next_new_ (the runs of its snapshot); they are skipped. Acks of redelivered offsets below
  // next_new_ can merge such a run with runs below it, so look for the run that contains
  // next_new_, not one that starts there.
  // The floor can pass next_new_ when it swallows such runs.
  next_new_ = std::max(next_new_, ack_floor_);
  // A filtered group hands out only what the caller has looked at.
  const Offset limit = looks_ahead() ? std::min(end_, examined()) : end_;
  while (next_new_ < limit && next_consumer_with_credit(unused) != nullptr) {
    if (auto run = done_runs_.upper_bound(next_new_.value); run != done_runs_.begin()) {
      if (const auto run_end = std::prev(run)->second; run_end > next_new_.value) {
        next_new_ = Offset{run_end};
        continue;
      }
    }
    const auto offset = next_new_;
    next_new_ = next(next_new_);
    deliver(out, offset, 1, now);
  }
  return out;
}

void GroupState::poll_ordered_new(std::vector<Delivery>& out, Offset limit, TimePoint now) {
  ConsumerId unused;
  stopped_at_bound_ = false;
  while (next_new_ < limit && next_consumer_with_credit(unused) != nullptr) {
    while (!new_keys_.empty() && new_keys_.front().first < next_new_) new_keys_.pop_front();
    if (auto run = done_runs_.upper_bound(next_new_.value); run != done_runs_.begin()) {
      if (const auto run_end = std::prev(run)->second; run_end > next_new_.value) {
        next_new_ = Offset{run_end};
        continue;
      }
    }
    const auto offset = next_new_;
    if (new_keys_.empty() || new_keys_.front().first != offset) {
      next_new_ = next(next_new_);
      deliver(out, offset, 1, now);  // no key: not ordered
      continue;
    }
    auto& key = new_keys_.front().second;
    if (const auto it = keys_.find(key); it != keys_.end()) {
      // Owned: hold it back, if the bound allows; otherwise wait until an owner is done.
      if (held_ >= options_.key_lookahead) {
        stopped_at_bound_ = true;
        return;
      }
      it->second.held.push_back(offset);
      ++held_;
    } else {
      auto [entry, inserted] = keys_.try_emplace(std::move(key), KeyState{offset, {}});
      owned_.emplace(offset, &*entry);
      deliver(out, offset, 1, now);
    }
    new_keys_.pop_front();
    next_new_ = next(next_new_);
  }
}

void GroupState::set_key(Offset offset, std::string_view key) {
  if (options_.ordering != Ordering::key || key.empty() || offset < examined()) return;
  if (!new_keys_.empty() && offset <= new_keys_.back().first) return;  // not in order: ignored
  new_keys_.emplace_back(offset, std::string(key));
}

void GroupState::release_key(Offset offset) {
  if (owned_.empty()) return;
  const auto it = owned_.find(offset);
  if (it == owned_.end()) return;
  auto* entry = it->second;
  owned_.erase(it);
  auto& held = entry->second.held;
  if (held.empty()) {
    keys_.erase(entry->first);
    return;
  }
  const auto next_owner = held.front();
  held.pop_front();
  --held_;
  entry->second.owner = next_owner;
  owned_.emplace(next_owner, entry);
  unblocked_.insert(next_owner);
}

void GroupState::forget_keys_below(Offset first) {
  if (options_.ordering != Ordering::key) return;
  while (!new_keys_.empty() && new_keys_.front().first < first) new_keys_.pop_front();
  unblocked_.erase(unblocked_.begin(), unblocked_.lower_bound(first));
  for (auto& [key, state] : keys_) {
    while (!state.held.empty() && state.held.front() < first) {
      state.held.pop_front();
      --held_;
    }
  }
  std::vector<Offset> below;
  for (const auto& [offset, entry] : owned_) {
    if (offset < first) below.push_back(offset);
  }
  // Each passes its key to a held-back offset at or above `first` (or frees it).
  for (const auto offset : below) release_key(offset);
}

GroupState::InFlight GroupState::take_in_flight(InFlightMap::iterator it) {
  const auto f = it->second;
  deadlines_.erase(f.due);
  in_flight_.erase(it);
  if (auto c = consumers_.find(f.consumer); c != consumers_.end()) --c->second.in_flight;
  return f;
}

AckResult GroupState::ack(ConsumerId consumer, Offset offset) {
  const auto it = in_flight_.find(offset);
  if (it == in_flight_.end() || it->second.consumer != consumer) return AckResult::not_in_flight;
  take_in_flight(it);
  mark_done(offset);
  release_key(offset);
  return AckResult::ok;
}

AckResult GroupState::nack(ConsumerId consumer, Offset offset, std::optional<Duration> delay,
                           TimePoint now) {
  const auto it = in_flight_.find(offset);
  if (it == in_flight_.end() || it->second.consumer != consumer) return AckResult::not_in_flight;
  const auto f = take_in_flight(it);
  retry_or_dead_letter(offset, f.attempt, delay, now);
  return AckResult::ok;
}

AckResult GroupState::extend(ConsumerId consumer, Offset offset, TimePoint now) {
  const auto it = in_flight_.find(offset);
  if (it == in_flight_.end() || it->second.consumer != consumer) return AckResult::not_in_flight;
  // The new entry first: if inserting throws, the old one is still there and valid.
  const auto deadline = add_saturating(now, options_.ack_timeout);
  const auto due = deadlines_.emplace_hint(deadlines_.end(), deadline, offset);
  if (due != it->second.due) deadlines_.erase(it->second.due);
  it->second.deadline = deadline;
  it->second.due = due;
  return AckResult::ok;
}

AckResult GroupState::reject(ConsumerId consumer, Offset offset) {
  const auto it = in_flight_.find(offset);
  if (it == in_flight_.end() || it->second.consumer != consumer) return AckResult::not_in_flight;
  const auto f = take_in_flight(it);
  dead_letter_pending_.emplace(offset, DeadLetter{offset, f.attempt, DeadLetterReason::rejected});
  return AckResult::ok;
}

void GroupState::expire(TimePoint now) {
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    const auto offset = deadlines_.begin()->second;
    const auto f = take_in_flight(in_flight_.find(offset));
    // Same as a nack without a delay: due now + backoff (not deadline + backoff), so a late
    // expire() call never schedules into the past.
    retry_or_dead_letter(offset, f.attempt, std::nullopt, now);
  }
}

void GroupState::retry_or_dead_letter(Offset offset, std::uint32_t attempt,
                                      std::optional<Duration> delay, TimePoint now) {
  // Attempts used up wins over an explicit nack delay.
  if (options_.max_deliveries > 0 && attempt >= options_.max_deliveries) {
    dead_letter_pending_.emplace(offset,
                                 DeadLetter{offset, attempt, DeadLetterReason::max_deliveries});
    return;
  }
  const auto d =
      delay ? std::max(*delay, Duration{0}) : options_.backoff.delay_after(attempt, rng_);
  schedule(offset, attempt, add_saturating(now, d));
}

void GroupState::schedule(Offset offset, std::uint32_t attempt, TimePoint due) {
  scheduled_.emplace(offset, Scheduled{attempt, due});
  waiting_.emplace(due, offset);
}

std::optional<TimePoint> GroupState::next_deadline() const {
  // Scheduled offsets that poll() already found due but could not hand out for lack of credit
  // (ready_) are left out: time alone cannot move them, only new credit can (an ack, nack,
  // reject, add_consumer, or an expire() at an in-flight deadline, which is counted here). With
  // them in, the result would be in the past for as long as every consumer is full, and a
  // timer armed on it would spin. So after expire(now) and poll(now), the result is nullopt or
  // later than now.
  std::optional<TimePoint> t;
  if (!deadlines_.empty()) t = deadlines_.begin()->first;
  if (!waiting_.empty()) {
    const auto due = waiting_.begin()->first;
    t = t ? std::min(*t, due) : due;
  }
  return t;
}

std::vector<DeadLetter> GroupState::take_dead_letters() {
  std::vector<DeadLetter> out;
  out.reserve(dead_letter_pending_.size());
  for (auto& [offset, letter] : dead_letter_pending_) {
    out.push_back(letter);
    dead_letter_taken_.emplace(offset, letter);
  }
  dead_letter_pending_.clear();
  return out;
}

void GroupState::dead_lettered(Offset offset) {
  // Accepted for a taken letter (the normal case) or one still pending; anything else (a
  // stale call after reset(), a duplicate) is ignored.
  if (dead_letter_taken_.erase(offset) == 0 && dead_letter_pending_.erase(offset) == 0) return;
  ++dead_lettered_;
  if (offset >= ack_floor_) mark_done(offset);  // below it: skip_to() passed it meanwhile
  release_key(offset);
}

void GroupState::dead_letter_failed(const DeadLetter& letter) {
  // Only a taken letter goes back; the stored copy is authoritative.
  const auto it = dead_letter_taken_.find(letter.offset);
  if (it == dead_letter_taken_.end()) return;
  dead_letter_pending_.insert(*it);
  dead_letter_taken_.erase(it);
}

void GroupState::reset(Offset to) {
  // Also backwards: offsets at or above `to` are delivered again (as attempt 1). Late acks,
  // nacks and dead_lettered() calls for anything from before the reset are not_in_flight or
  // ignored.
  in_flight_.clear();
  deadlines_.clear();
  scheduled_.clear();
  waiting_.clear();
  ready_.clear();
  dead_letter_pending_.clear();
  dead_letter_taken_.clear();
  done_runs_.clear();
  for (auto& [id, c] : consumers_) c.in_flight = 0;
  keys_.clear();
  owned_.clear();
  new_keys_.clear();
  unblocked_.clear();
  held_ = 0;
  stopped_at_bound_ = false;
  ack_floor_ = to;
  next_new_ = to;
  examined_ = to;
}

Offset GroupState::examined() const {
  return looks_ahead() ? std::max(examined_, ack_floor_) : end_;
}

bool GroupState::filter_out(Offset offset) {
  if (!options_.filtered || offset < examined() || is_done(offset)) return false;
  mark_done(offset);
  return true;
}

void GroupState::examined_to(Offset end) {
  if (looks_ahead()) examined_ = std::max(examined_, end);
}

std::uint64_t GroupState::waiting_new() const {
  const Offset from = std::max(next_new_, ack_floor_);
  const Offset to = std::min(examined(), end_);
  if (to <= from) return 0;
  std::uint64_t n = to.value - from.value;
  auto it = done_runs_.upper_bound(from.value);
  if (it != done_runs_.begin()) --it;  // the run that may hold `from`
  for (; it != done_runs_.end() && it->first < to.value; ++it) {
    const auto first = std::max(it->first, from.value);
    const auto last = std::min(it->second, to.value);
    if (last > first) n -= last - first;
  }
  return n;
}

std::uint64_t GroupState::skip_to(Offset first) {
  if (first <= ack_floor_) return 0;
  std::uint64_t skipped = first.value - ack_floor_.value;
  // Done runs below `first` were not skipped; a run that reaches past it lifts the floor.
  Offset floor = first;
  for (auto it = done_runs_.begin(); it != done_runs_.end() && it->first < first.value;) {
    skipped -= std::min(it->second, first.value) - it->first;
    if (it->second > first.value) floor = Offset{it->second};
    it = done_runs_.erase(it);
  }
  for (auto it = dead_letter_taken_.begin(); it != dead_letter_taken_.end() && it->first < first;
       ++it) {
    --skipped;
  }
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    if (it->first < first) {
      take_in_flight(it++);
    } else {
      ++it;
    }
  }
  std::erase_if(waiting_, [&](const auto& due) { return due.second < first; });
  ready_.erase(ready_.begin(), ready_.lower_bound(first));
  scheduled_.erase(scheduled_.begin(), scheduled_.lower_bound(first));
  dead_letter_pending_.erase(dead_letter_pending_.begin(), dead_letter_pending_.lower_bound(first));
  forget_keys_below(first);
  ack_floor_ = floor;
  if (auto it = done_runs_.find(ack_floor_.value); it != done_runs_.end()) {
    ack_floor_ = Offset{it->second};
    done_runs_.erase(it);
  }
  next_new_ = std::max(next_new_, ack_floor_);
  end_ = std::max(end_, first);
  skipped_ += skipped;
  return skipped;
}

void GroupState::mark_done(Offset offset) { delivery::mark_done(ack_floor_, done_runs_, offset); }

Snapshot GroupState::snapshot() const { return snapshot(std::span<const DeadLetter>{}); }

Snapshot GroupState::snapshot(std::span<const DeadLetter> retiring) const {
  Offset floor = ack_floor_;
  const DoneRuns* runs = &done_runs_;
  DoneRuns retired;  // a copy only when something changes
  if (!retiring.empty()) {
    retired = done_runs_;
    for (const auto& letter : retiring) delivery::mark_done(floor, retired, letter.offset);
    runs = &retired;
  }
  Snapshot s;
  s.ack_floor = floor;
  s.done_above_floor.reserve(runs->size());
  for (const auto& [first, end] : *runs) {
    s.done_above_floor.push_back(OffsetRange{Offset{first}, Offset{end}});
  }
  s.dead_lettered = dead_lettered_ + retiring.size();
  s.redelivered = redelivered_;
  s.skipped = skipped_;
  return s;
}

GroupStats GroupState::stats() const {
  GroupStats s;
  s.ack_floor = ack_floor_;
  s.end = end_;
  s.in_flight = in_flight_.size();
  s.scheduled = scheduled_.size();
  if (end_ > ack_floor_) {
    s.lag = end_.value - ack_floor_.value;
    for (const auto& [first, end] : done_runs_) {
      if (first >= end_.value) break;
      s.lag -= std::min(end, end_.value) - first;
    }
  }
  s.dead_lettered = dead_lettered_;
  s.redelivered = redelivered_;
  s.skipped = skipped_;
  s.consumers.reserve(join_order_.size());
  for (const auto& [joined, id] : join_order_) {
    const auto& c = consumers_.at(id);
    s.consumers.push_back(ConsumerStats{id, c.max_in_flight, c.in_flight});
  }
  s.held_back = held_;
  const Offset limit = std::min(end_, examined());
  s.key_blocked = stopped_at_bound_ && held_ >= options_.key_lookahead &&
                  std::max(next_new_, ack_floor_) < limit;
  if (s.key_blocked) {
    std::optional<Offset> lowest;
    for (const auto& [key, state] : keys_) {
      if (!state.held.empty() && (!lowest || state.held.front() < *lowest)) {
        lowest = state.held.front();
        s.blocking_key = key;
      }
    }
  }
  return s;
}

std::uint32_t GroupState::in_flight_of(ConsumerId consumer) const {
  const auto it = consumers_.find(consumer);
  return it == consumers_.end() ? 0 : it->second.in_flight;
}

bool GroupState::is_done(Offset offset) const {
  return delivery::is_done(ack_floor_, done_runs_, offset);
}

}  // namespace loft::delivery
