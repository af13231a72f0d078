#include "loft/broker/groups.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <span>
#include <utility>

#include "loft/common/subject.hpp"

namespace loft::broker {
namespace {

constexpr std::chrono::milliseconds kWriteRetry{1000};
// The most delayed messages' stored copies one pump passes over (each is read and acked
// without a delivery): millions of them in a row must not hold the io thread for seconds.
constexpr std::size_t kMaxSkipsPerPump = 4096;
// Read-ahead of a group (Group::read_ahead): how much one store read may bring in beyond the
// deliveries that asked for it, and so what one group holds at most between deliveries; and
// what all groups together may hold (no group reads ahead while they hold more).
constexpr std::size_t kReadAheadMessages = 1024;
constexpr std::size_t kReadAheadBytes = 256 << 10;
constexpr std::size_t kReadAheadBudget = 64 << 20;
// A filtered group reads ahead of its deliveries to learn which messages match (one store read
// of at most kReadAheadMessages / kReadAheadBytes per pump), while fewer than this many
// matching messages wait for a consumer.
constexpr std::uint64_t kFilterAhead = 1024;
// What one ordered group may hold of the blocks it examined (Group::key_blocks): about 40,000
// messages of 100 bytes, four times what its default key_lookahead (10,000) holds back.
constexpr std::size_t kKeyBlocksBytes = 8 << 20;
// Whether a group reads ahead of its deliveries: to filter, or to learn the keys of an ordered
// group.
bool looks_ahead(const storage::GroupRecord& r) {
  return !r.filter.empty() || r.ordering == Ordering::key;
}

Error group_not_found(std::string_view topic, std::string_view group) {
  return Error{Errc::group_not_found, "group '" + std::string(group) + "' of topic '" +
                                          std::string(topic) + "' does not exist"};
}

Result<void> validate_group_name(std::string_view name) {
  if (auto ok = validate_topic_name(name); !ok) {
    return fail(Errc::invalid_name, "group name '" + std::string(name) +
                                        "' must be 1 to 249 bytes of letters, digits, '.', '_' "
                                        "and '-'");
  }
  return {};
}

// What a block holds in memory, roughly: its bytes and views (and decoded messages, for a
// store that has them).
std::size_t block_bytes(const storage::MessageBlock& b) {
  std::size_t n = b.buffer_bytes + b.buffers.capacity() * sizeof(b.buffers[0]) +
                  b.headers.capacity() * sizeof(HeaderView) +
                  b.messages.capacity() * sizeof(StoredMessageView);
  for (const auto& m : b.decoded) n += sizeof(m) + m.message.size_bytes();
  return n;
}

std::string reason_text(delivery::DeadLetterReason r) {
  return r == delivery::DeadLetterReason::rejected ? "rejected" : "max_deliveries";
}

}  // namespace

struct Groups::Group {
  std::string topic;
  TopicId topic_id;
  std::string name;
  // Unique among the groups this Groups made (the seed of its state): a write's completion
  // for a group that was deleted must not land on a group made again under the same name.
  std::uint64_t incarnation = 0;
  storage::GroupRecord settings;  // settings and creation time; progress comes from `state`
  delivery::GroupState state;
  std::vector<std::uint64_t> subscriptions;  // in subscribe order
  bool persisted = false;                    // the creating write is durable
  std::vector<std::function<void(Result<Group*>)>> waiting_for_create;
  // Persistence: at most one write in flight.
  bool writing = false;
  std::uint64_t generation = 0;  // bumped by every change that must reach disk
  std::uint64_t written_generation = 0;
  // Written with a sync (as durable as the broker's durability): what confirms wait for.
  // Progress nobody waits on is written without one (GroupWrite::durability), so this can
  // trail written_generation.
  std::uint64_t durable_generation = 0;
  struct Confirm {
    std::uint64_t generation;
    Settled reply;
    Callback<Settled> done;
  };
  std::vector<Confirm> confirms;
  std::vector<delivery::DeadLetter> dead_letters_writing;
  std::optional<TimePoint> retry_at;  // after a failed write
  GroupCounters counters;
  // Messages read from the store past the deliveries that asked for them: the views of
  // read_ahead->messages from read_ahead_next on, at consecutive offsets. A group that drains
  // a backlog gets its deliveries in runs as short as its consumers' acks free credit; without
  // this, every run would seek to the stored record that holds its first offset and skip the
  // messages before it, so each record was read and parsed again for every run it served.
  // One store read's block: at most kReadAheadMessages, and kReadAheadBytes plus the one
  // message that crosses it. What counts against kReadAheadBudget (Groups::read_ahead_total_,
  // all groups together) is the memory the block holds (its copied record bytes, about 80 bytes
  // of views per message and 32 more per header, so about twice the messages' size_bytes for
  // 100-byte payloads), from when it is kept until it is let go, however much of it is used. Let go
  // of when used up, when the group's last subscription ends and when the group is reset. Messages
  // never change once stored, so what is here stays valid; offsets the group moved past are
  // skipped. Changed only through Groups' *_ahead functions, which keep the byte counts.
  std::shared_ptr<const storage::MessageBlock> read_ahead;
  std::size_t read_ahead_next = 0;
  std::size_t read_ahead_bytes = 0;  // block_bytes() of the block, counted when it was kept
  // An ordered group's examined blocks (filter_ahead), by the offset of their last message,
  // while they may hold messages to deliver. A key's next message is held back until the
  // key's message in flight is settled, and is delivered then, below the read-ahead: without
  // these, every such short run (the few messages whose keys one batch of acks freed) was read
  // from the store on its own, a seek to its stored record and a parse of it, which made an
  // ordered drain of 1,000 keys about half as fast as an unordered one (docs/performance.md,
  // "Per-key ordered delivery"). Let go of once below the ack floor (every message in them is
  // done), and with the read-ahead (clear_ahead); counted in read_ahead_total_ as the
  // read-ahead is, at most kKeyBlocksBytes per group: a block beyond it is not kept, and runs
  // in it are read from the store as before. Changed only through the *_key_block(s)
  // functions and clear_ahead.
  std::map<std::uint64_t, std::shared_ptr<const storage::MessageBlock>> key_blocks;
  std::size_t key_blocks_bytes = 0;
  // Average stored size of the messages this group read, 0 before its first read: a run whose
  // own messages would fill the read-ahead's byte bound is read without read-ahead.
  std::size_t average_message_bytes = 0;
  // A filtered group has messages left to look at, and room to look (filter_ahead): the next
  // deadline is now, so the runner pumps again soon, after whatever else the io thread has to
  // do. Set by pump only; a failed or empty read clears it and sets filter_retry_at.
  bool filter_more = false;
  // A filtered group's read failed (or found nothing where the topic said there was more: a
  // trim or delete on its way): look again then, even if no other event comes.
  std::optional<TimePoint> filter_retry_at;
  // Groups::wakes_: the time of this group's live entry, if it has one; whether it waits in
  // touched_ to be looked at again.
  std::optional<TimePoint> armed_at;
  bool touched = false;

  Group(delivery::GroupState s) : state(std::move(s)) {}

  // Removes and returns the confirms that wait for writes up to `written`.
  std::vector<Confirm> take_confirms(std::uint64_t written) {
    std::vector<Confirm> out;
    std::erase_if(confirms, [&](Confirm& c) {
      if (c.generation > written) return false;
      out.push_back(std::move(c));
      return true;
    });
    return out;
  }
};

Groups::Groups(Broker& broker, GroupDefaults defaults, Post post)
    : broker_(broker), defaults_(defaults), post_(std::move(post)) {}

Groups::~Groups() { *alive_ = false; }

namespace {

delivery::GroupOptions options_of(const storage::GroupRecord& r, const GroupDefaults& d) {
  delivery::GroupOptions o;
  using std::chrono::milliseconds;
  o.ack_timeout = milliseconds{r.ack_timeout_ms};
  o.max_deliveries = r.max_deliveries;
  o.backoff.base = milliseconds{r.backoff_base_ms};
  o.backoff.cap = milliseconds{r.backoff_cap_ms};
  o.backoff.factor = d.backoff_factor;
  o.backoff.jitter = d.backoff_jitter;
  for (const auto ms : r.backoff_delays_ms) o.backoff.delays.emplace_back(milliseconds{ms});
  o.filtered = !r.filter.empty();
  o.ordering = r.ordering;
  // A record written before ordering existed has 0: any value >= 1 will do for an unordered group.
  o.key_lookahead = std::max<std::uint32_t>(1, r.key_lookahead);
  return o;
}

delivery::Snapshot snapshot_of(const storage::GroupRecord& r) {
  delivery::Snapshot s;
  s.ack_floor = r.ack_floor;
  for (const auto& [first, end] : r.done_ranges) s.done_above_floor.push_back({first, end});
  s.dead_lettered = r.dead_lettered;
  s.redelivered = r.redelivered;
  s.skipped = r.skipped;
  return s;
}

}  // namespace

void Groups::load() {
  const auto topics = broker_.list_topics();
  for (auto& record : broker_.take_loaded_groups()) {
    const auto topic = std::find_if(topics.begin(), topics.end(),
                                    [&](const TopicInfo& t) { return t.id == record.topic; });
    if (topic == topics.end()) continue;  // its topic is gone (dropped with it on disk too)
    const auto incarnation = seed_++;
    auto g = std::make_unique<Group>(
        delivery::GroupState(options_of(record, defaults_), snapshot_of(record), incarnation));
    g->incarnation = incarnation;
    g->topic = topic->name;
    g->topic_id = topic->id;
    g->name = record.name;
    g->settings = record;
    g->persisted = true;
    // What was loaded counts as durable (durable_generation 0 = generation 0): after a kill,
    // RocksDB replays what the WAL held, written or synced, and flushes it to synced files
    // while it opens (avoid_flush_during_recovery is left false), before any confirm.
    g->state.on_appended(topic->next_offset);
    // Retention may have passed the group while loftd was down (or before its progress was
    // written): it moves up, and the next write records it.
    if (g->state.skip_to(topic->first_offset) > 0) ++g->generation;
    // A filtered or ordered group looks at what is above its floor again: the timer pumps it at
    // once.
    g->filter_more = looks_ahead(record);
    add_group(std::move(g));
  }
}

void Groups::add_group(std::unique_ptr<Group> group) {
  Group* g = group.get();
  by_incarnation_.emplace(g->incarnation, g);
  by_topic_[g->topic_id.value].push_back(g);
  touch(*g);
  groups_.emplace(std::pair{g->topic, g->name}, std::move(group));
}

void Groups::erase_group(Group& g) {
  by_incarnation_.erase(g.incarnation);  // its wakes_ entry and touched_ mark go stale
  const auto it = by_topic_.find(g.topic_id.value);
  if (it != by_topic_.end()) {
    std::erase(it->second, &g);
    if (it->second.empty()) by_topic_.erase(it);
  }
  groups_.erase(std::pair{g.topic, g.name});
}

void Groups::erase_subscription(std::uint64_t id) {
  const auto it = subscriptions_.find(id);
  if (it == subscriptions_.end()) return;
  const auto who = by_subscriber_.find(it->second.who);
  if (who != by_subscriber_.end()) {
    std::erase(who->second, id);
    if (who->second.empty()) by_subscriber_.erase(who);
  }
  subscriptions_.erase(it);
}

Groups::Group* Groups::find(std::string_view topic, std::string_view group) const {
  const auto it = groups_.find(std::pair{std::string(topic), std::string(group)});
  return it == groups_.end() ? nullptr : it->second.get();
}

Result<Offset> Groups::resolve_start(const std::string& topic, const StartPosition& start,
                                     bool creating) {
  auto meta = broker_.describe_topic(topic);
  if (!meta) return tl::unexpected(meta.error());
  // Work-queue retention: a new group starts at the oldest retained message, whatever it
  // asked for, so that nothing stored is removed before it has settled it too.
  // (A reset moves an existing group where it is told.)
  if (creating && meta->retention_mode == RetentionMode::work_queue) return meta->first_offset;
  switch (start.kind) {
    case StartKind::earliest:
      return meta->first_offset;
    case StartKind::latest:
      return meta->next_offset;
    case StartKind::offset:
      return Offset{std::clamp(start.value, meta->first_offset.value, meta->next_offset.value)};
    case StartKind::timestamp:
      return broker_.offset_for_timestamp(topic, static_cast<std::int64_t>(start.value));
  }
  return fail(Errc::invalid_request, "unknown start position");
}

std::unique_ptr<Groups::Group> Groups::make_group(const TopicInfo& topic, std::string name,
                                                  const GroupConfig& c, Offset start) {
  // REQUIRES: `c` is effective (effective_group_config): every field set and in range.
  storage::GroupRecord r;
  r.topic = topic.id;
  r.name = name;
  r.created_at_ms = broker_.now_ms();
  r.ack_timeout_ms = c.ack_timeout_ms;
  r.max_deliveries = c.max_deliveries;
  r.backoff_base_ms = c.backoff_base_ms;
  r.backoff_cap_ms = c.backoff_cap_ms;
  r.backoff_delays_ms = c.backoff_delays_ms;
  r.dead_letter_topic = c.dead_letter_topic;
  r.filter = c.filter;
  r.annotation = c.annotation;
  r.ordering = c.ordering;
  r.key_lookahead = c.key_lookahead;
  r.ack_floor = start;
  const auto incarnation = seed_++;
  auto g =
      std::make_unique<Group>(delivery::GroupState(options_of(r, defaults_), start, incarnation));
  g->incarnation = incarnation;
  g->topic = topic.name;
  g->topic_id = topic.id;
  g->name = std::move(name);
  g->settings = std::move(r);
  g->state.on_appended(topic.next_offset);
  return g;
}

// The checks before making a group, for SUBSCRIBE and CREATE_GROUP alike (and so also when
// SUBSCRIBE joins an existing group, whose settings the request cannot change): the group
// name, the settings, and the topic.
Result<Groups::NewGroup> Groups::check_new_group(const std::string& topic, const std::string& group,
                                                 const GroupConfig& config) const {
  if (auto ok = validate_group_name(group); !ok) return tl::unexpected(ok.error());
  auto effective = effective_group_config(topic, config, defaults_);
  if (!effective) return tl::unexpected(effective.error());
  auto meta = broker_.describe_topic(topic);
  if (!meta) return tl::unexpected(meta.error());
  return NewGroup{std::move(*meta), std::move(*effective)};
}

// Registers `group` in memory at once (so a second subscriber finds it) and writes it; `then`
// runs once it is durable, or with the error if the write failed (the group is then removed).
void Groups::create_then(std::unique_ptr<Group> group, std::function<void(Result<Group*>)> then) {
  Group* g = group.get();
  g->waiting_for_create.push_back(std::move(then));
  g->writing = true;
  GroupWrite write;
  write.puts.push_back({g->topic, record_of(*g)});
  add_group(std::move(group));
  broker_.write_groups(std::move(write), [this, alive = alive_, topic = g->topic, name = g->name,
                                          incarnation = g->incarnation](Result<void> r) {
    post_([this, alive, topic, name, incarnation, r = std::move(r)] {
      if (!*alive) return;
      Group* g = find(topic, name);
      // Removed meanwhile (its topic was deleted; its waiters were answered then), and maybe
      // made again under the same name: that one is not this write's.
      if (g == nullptr || g->incarnation != incarnation) return;
      g->writing = false;
      auto waiting = std::move(g->waiting_for_create);
      if (!r) {
        remove_group(*g);
        for (auto& w : waiting) w(tl::unexpected(r.error()));
        return;
      }
      g->persisted = true;
      touch(*g);
      for (auto& w : waiting) w(g);
      start_write(*g);  // anything that changed meanwhile
    });
  });
}

void Groups::subscribe(SubscribeRequest req, Subscriber* who, TimePoint now,
                       Callback<Subscribed> done) {
  auto checked = check_new_group(req.topic, req.group, req.config);
  if (!checked) return done(tl::unexpected(checked.error()));
  const std::uint32_t max_in_flight =
      req.max_in_flight ? req.max_in_flight : defaults_.max_in_flight;

  auto attach = [this, who, max_in_flight, now, done = std::move(done)](Result<Group*> r,
                                                                        bool created) {
    if (!r) return done(tl::unexpected(r.error()));
    Group& g = **r;
    const std::uint64_t id = next_subscription_++;
    subscriptions_[id] = Subscription{id, &g, who, max_in_flight};
    by_subscriber_[who].push_back(id);
    g.subscriptions.push_back(id);
    g.state.add_consumer(ConsumerId{id}, max_in_flight);
    done(Subscribed{id, created, g.state.ack_floor()});
    pump(g, now);
  };

  if (Group* g = find(req.topic, req.group)) {
    if (g->persisted) return attach(g, false);
    g->waiting_for_create.push_back([attach](Result<Group*> r) { attach(std::move(r), false); });
    return;
  }
  auto start = resolve_start(req.topic, req.start, /*creating=*/true);
  if (!start) return attach(tl::unexpected(start.error()), true);  // answers `done` the error
  create_then(make_group(checked->topic, std::move(req.group), checked->config, *start),
              [attach](Result<Group*> r) { attach(std::move(r), true); });
}

void Groups::end_subscription(std::uint64_t id, TimePoint now) {
  const auto it = subscriptions_.find(id);
  if (it == subscriptions_.end()) return;
  Group& g = *it->second.group;
  erase_subscription(id);
  std::erase(g.subscriptions, id);
  if (g.subscriptions.empty()) clear_ahead(g);  // memory only for groups being served
  g.state.remove_consumer(ConsumerId{id}, now);
  pump(g, now);  // its messages go to the others at once
}

Result<void> Groups::unsubscribe(std::uint64_t subscription, const Subscriber* who, TimePoint now) {
  const auto it = subscriptions_.find(subscription);
  if (it == subscriptions_.end() || it->second.who != who) {
    return fail(Errc::unknown_subscription,
                "subscription " + std::to_string(subscription) + " is not one of this connection");
  }
  end_subscription(subscription, now);
  return {};
}

void Groups::drop_subscriber(const Subscriber* who, TimePoint now) {
  const auto it = by_subscriber_.find(who);
  if (it == by_subscriber_.end()) return;
  const std::vector<std::uint64_t> ids = it->second;  // end_subscription changes it
  for (const auto id : ids) end_subscription(id, now);
}

void Groups::settle(const SettleRequest& req, const Subscriber* who, TimePoint now,
                    Callback<Settled> done) {
  const auto it = subscriptions_.find(req.subscription);
  if (it == subscriptions_.end() || it->second.who != who) {
    return done(fail(
        Errc::unknown_subscription,
        "subscription " + std::to_string(req.subscription) + " is not one of this connection"));
  }
  std::uint64_t total = 0;
  for (const auto& run : req.runs) {
    if (run.first + run.count < run.first) {
      return done(fail(Errc::invalid_request, "a settle run passes the largest offset"));
    }
    total += run.count;
  }
  if (total > defaults_.max_settle_offsets) {
    return done(fail(Errc::invalid_request,
                     "a settle may name at most " + std::to_string(defaults_.max_settle_offsets) +
                         " offsets, this one names " + std::to_string(total)));
  }
  Group& g = *it->second.group;
  const ConsumerId consumer{req.subscription};
  Settled reply;
  std::optional<delivery::Duration> delay;
  if (req.delay_ms) delay = std::chrono::milliseconds{*req.delay_ms};
  for (const auto& run : req.runs) {
    for (std::uint64_t i = 0; i < run.count; ++i) {
      const Offset offset{run.first + i};
      delivery::AckResult r = delivery::AckResult::not_in_flight;
      switch (req.action) {
        case SettleAction::ack:
          r = g.state.ack(consumer, offset);
          break;
        case SettleAction::nack:
          r = g.state.nack(consumer, offset, delay, now);
          break;
        case SettleAction::extend:
          r = g.state.extend(consumer, offset, now);
          break;
        case SettleAction::reject:
          r = g.state.reject(consumer, offset);
          break;
      }
      if (r == delivery::AckResult::ok) {
        ++reply.applied;
        if (req.action == SettleAction::ack) ++g.counters.acked;
        if (req.action == SettleAction::nack || req.action == SettleAction::reject) {
          ++g.counters.nacked;
        }
      } else {
        ++reply.ignored;
      }
    }
  }
  // Acks move the floor (persist); nack/reject may too, through dead letters. Extend changes
  // nothing durable.
  if (reply.applied > 0 && req.action != SettleAction::extend) ++g.generation;
  if (req.confirm && g.generation > g.durable_generation) {
    g.confirms.push_back({g.generation, reply, std::move(done)});
  } else {
    done(reply);
  }
  pump(g, now);
}

void Groups::pump(Group& g, TimePoint now) {
  last_now_ = std::max(last_now_, now);
  touch(g);  // whatever called this may have moved its deadlines; so may this
  if (!g.persisted) return;
  g.state.expire(now);
  const bool could_read = filter_ahead(g);
  // Deliver in rounds of at most kRound messages per subscriber, re-checking between rounds
  // whether its connection can take more: a subscriber whose send queue is over its bound
  // gets no new credit until it drains, so a large max_in_flight of large messages cannot
  // pile up in memory (the overshoot is at most one round).
  constexpr std::uint32_t kRound = 64;
  std::size_t skipped = 0;  // delayed messages' stored copies passed over in this pump
  for (;;) {
    bool any_ready = false;
    for (const auto id : g.subscriptions) {
      const auto& s = subscriptions_.at(id);
      const auto in_flight = g.state.in_flight_of(ConsumerId{id});
      const std::uint32_t wanted = std::min(kRound, s.who->credit(id));
      const bool ready = wanted > 0 && s.who->ready();
      any_ready = any_ready || ready;
      const std::uint32_t credit = ready ? std::min(s.max_in_flight, in_flight + wanted)
                                         : std::min(s.max_in_flight, in_flight);
      g.state.add_consumer(ConsumerId{id}, credit);
    }
    if (!any_ready) break;
    auto deliveries = g.state.poll(now);
    if (deliveries.empty()) break;
    skipped += send_deliveries(g, std::move(deliveries));
    if (skipped >= kMaxSkipsPerPump) break;  // the rest in a later pump (below)
  }
  // More to look at, and room for it (the deliveries may have made some): another pump soon
  // (next_deadline).
  g.filter_more = could_read && looks_ahead(g.settings) && g.state.examined() < g.state.end() &&
                  g.state.waiting_new() < kFilterAhead;
  // Many delayed messages' stored copies in a row: the io thread does other work before the
  // next kMaxSkipsPerPump of them (the same "pump again soon" as a filtered group's).
  if (skipped >= kMaxSkipsPerPump) g.filter_more = true;
  start_write(g);
}

bool Groups::filter_ahead(Group& g) {
  if (!looks_ahead(g.settings)) return true;
  drop_key_blocks(g, g.state.ack_floor());
  const bool filtered = !g.settings.filter.empty();
  const Offset from = g.state.examined();
  if (from >= g.state.end() || g.state.waiting_new() >= kFilterAhead) return true;
  if (g.filter_retry_at && *g.filter_retry_at > last_now_) return false;
  g.filter_retry_at.reset();
  auto read =
      broker_.fetch_block(g.topic, from, storage::ReadLimits{kReadAheadMessages, kReadAheadBytes});
  // A failed read is tried again a little later (next_deadline), or at the next event, not
  // in a loop.
  if (!read) {
    g.filter_retry_at = last_now_ + kWriteRetry;
    return false;
  }
  if ((*read)->messages.empty()) {
    // Nothing stored from `from` to the end the group knows (deleted messages, a trim or a
    // topic delete on its way): nothing there to filter. Those offsets are delivered as any
    // other, found missing and counted as done (send_deliveries).
    g.state.examined_to(g.state.end());
    return true;
  }
  const auto& block = *read;
  std::size_t first_match = block->messages.size();
  bool filtered_out = false;
  for (std::size_t i = 0; i < block->messages.size(); ++i) {
    const auto& m = block->messages[i];
    // A message without a subject is on its topic's name. A delayed message's stored copy is
    // never delivered (its released copy is, at a later offset): done, and not its key's.
    if (m.deliver_at_ms == 0 &&
        (!filtered ||
         subject_matches(g.settings.filter, m.subject.empty() ? g.topic : m.subject))) {
      first_match = std::min(first_match, i);
      if (!m.key.empty()) g.state.set_key(m.offset, m.key);
    } else {
      // Only a real change counts: offsets filtered out before a restart are done already.
      if (g.state.filter_out(m.offset)) filtered_out = true;
    }
  }
  g.state.examined_to(Offset{block->messages.back().offset.value + 1});
  if (filtered_out) ++g.generation;  // the floor or the done runs moved
  // The matching messages are what the next deliveries read: keep them, unless the group is
  // not served (nobody to deliver to). An ordered group keeps the block among its key blocks
  // (its held-back messages are delivered out of it later); otherwise, or if that is full, as
  // the read-ahead, unless it already has one.
  if (first_match < block->messages.size() && !g.subscriptions.empty() &&
      !(g.settings.ordering == Ordering::key && keep_key_block(g, block)) && !g.read_ahead &&
      read_ahead_total_ < kReadAheadBudget) {
    keep_ahead(g, block, first_match);
  }
  return true;
}

std::size_t Groups::send_deliveries(Group& g, std::vector<delivery::Delivery> list) {
  // Every delivery of this round in offset order, whichever consumer it goes to: a contiguous
  // run is read once (consumers with credit at the same time get alternate offsets), and each
  // message goes into its own consumer's batch, in ascending offset order per consumer. The
  // batches are views of the stored bytes; the blocks that hold them live until every
  // subscriber has encoded its batch.
  std::sort(list.begin(), list.end(),
            [](const auto& a, const auto& b) { return a.offset < b.offset; });
  std::vector<std::shared_ptr<const storage::MessageBlock>> blocks;
  std::map<std::uint64_t, std::vector<DeliveredView>> batches;  // by subscription id
  std::size_t skipped = 0;
  std::size_t i = 0;
  while (i < list.size()) {
    std::size_t j = i + 1;
    while (j < list.size() && list[j].offset.value == list[j - 1].offset.value + 1) ++j;
    // A run that ends in first attempts goes on into offsets never delivered: worth reading
    // ahead. One of redeliveries only is read as it is.
    auto read = read_run(g, list[i].offset, j - i, list[j - 1].attempt == 1);
    if (!read) {
      // The store failed (not a deleted topic): the run stays in flight, and its ack deadline
      // brings it back, read again, rather than count messages never sent as done.
      i = j;
      continue;
    }
    const auto& found = read->messages;
    // Both in ascending offset order: walk them together.
    auto hit = found.begin();
    for (std::size_t k = i; k < j; ++k) {
      const auto& d = list[k];
      while (hit != found.end() && (*hit)->offset < d.offset) ++hit;
      if (hit == found.end() || (*hit)->offset != d.offset) {
        // Not stored any more (the topic is being deleted or was trimmed): nothing to
        // deliver; count it as done so the group does not wait for it forever.
        std::ignore = g.state.ack(d.consumer, d.offset);
        continue;
      }
      if ((*hit)->deliver_at_ms != 0) {
        // A delayed message's stored copy: its released copy, appended when it is due, is the
        // one delivered (docs/semantics.md, "Delayed delivery"). Done without a delivery.
        std::ignore = g.state.ack(d.consumer, d.offset);
        ++g.generation;  // the floor moved: persisted, so a restart does not pass it again
        ++skipped;
        continue;
      }
      batches[d.consumer.value].push_back(DeliveredView{d.attempt, *hit});
      ++g.counters.delivered;
      if (d.attempt > 1) ++g.counters.redelivered;
    }
    blocks.insert(blocks.end(), std::make_move_iterator(read->blocks.begin()),
                  std::make_move_iterator(read->blocks.end()));
    i = j;
  }
  for (const auto& [id, views] : batches) {
    subscriptions_.at(id).who->deliver(DeliveryBatch{id, g.topic, g.name, views});
  }
  return skipped;
}

void Groups::Run::add(const std::shared_ptr<const storage::MessageBlock>& block, std::size_t from,
                      std::uint64_t end) {
  bool used = false;
  for (; from < block->messages.size() && block->messages[from].offset.value < end; ++from) {
    messages.push_back(&block->messages[from]);
    used = true;
  }
  if (used) blocks.push_back(block);
}

Result<Groups::Run> Groups::read_run(Group& g, Offset first, std::size_t count, bool read_ahead) {
  // A topic that is gone has nothing left to deliver; any other failure is the store's.
  const auto gone = [](const Error& e) { return e.code == Errc::topic_not_found; };
  constexpr std::size_t kNoByteLimit = std::size_t{1} << 62;
  const std::uint64_t end = first.value + count;
  if (auto kept = from_key_blocks(g, first, end)) return std::move(*kept);
  Run out;
  // What the group moved past (delivered to another consumer, settled, skipped) is not needed.
  if (g.read_ahead) {
    const auto& ahead = g.read_ahead->messages;
    while (g.read_ahead_next < ahead.size() && ahead[g.read_ahead_next].offset < first) {
      ++g.read_ahead_next;
    }
    if (g.read_ahead_next == ahead.size()) clear_ahead(g);
  }
  if (g.read_ahead && g.read_ahead->messages[g.read_ahead_next].offset != first) {
    // A run below what was read ahead: redeliveries. Read it alone; keep the read-ahead.
    auto read = broker_.fetch_block(g.topic, first, storage::ReadLimits{count, kNoByteLimit});
    if (read) out.add(*read, 0, end);
    if (!read && !gone(read.error())) return tl::unexpected(read.error());
    return out;
  }
  if (g.read_ahead) {
    out.add(g.read_ahead, g.read_ahead_next, end);
    g.read_ahead_next += out.messages.size();
    if (g.read_ahead_next == g.read_ahead->messages.size()) clear_ahead(g);
  }
  const auto next = [&] {
    return out.messages.empty() ? first.value : out.messages.back()->offset.value + 1;
  };
  if (next() >= end) return out;
  // What is left of the read-ahead starts beyond a gap in the run (trimmed offsets): let it
  // go, so that the read-ahead is always the rest of the last read.
  clear_ahead(g);
  // The rest from the store, and a read-ahead's worth beyond it when the run is short, goes
  // on into new offsets, and its own messages would not fill the byte bound.
  const std::size_t want = end - next();
  const bool ahead_too = read_ahead && want < kReadAheadMessages &&
                         want * g.average_message_bytes <= kReadAheadBytes / 2 &&
                         read_ahead_total_ < kReadAheadBudget;
  auto read =
      broker_.fetch_block(g.topic, Offset{next()},
                          ahead_too ? storage::ReadLimits{kReadAheadMessages, kReadAheadBytes}
                                    : storage::ReadLimits{want, kNoByteLimit});
  if (!read) {
    if (!gone(read.error())) return tl::unexpected(read.error());
    return out;  // the caller counts the rest as done
  }
  const auto& block = *read;
  const auto& msgs = block->messages;
  if (!msgs.empty()) {
    std::uint64_t bytes = 0;
    for (const auto& m : msgs) bytes += m.size_bytes();
    g.average_message_bytes = static_cast<std::size_t>(bytes / msgs.size());
  }
  const std::size_t before = out.messages.size();
  out.add(block, 0, end);
  const std::size_t used = out.messages.size() - before;
  if (used == msgs.size() && next() < end) {
    // The byte bound cut the read short of the run (larger messages than before), or the
    // topic ends before it (a trim or delete is on its way): read the rest as it is.
    auto rest = broker_.fetch_block(g.topic, Offset{next()},
                                    storage::ReadLimits{end - next(), kNoByteLimit});
    if (rest) {
      out.add(*rest, 0, end);
    } else if (!gone(rest.error())) {
      return tl::unexpected(rest.error());
    }
    return out;
  }
  if (used < msgs.size()) keep_ahead(g, block, used);
  return out;
}

void Groups::keep_ahead(Group& g, std::shared_ptr<const storage::MessageBlock> block,
                        std::size_t next) {
  clear_ahead(g);
  g.read_ahead_bytes = block_bytes(*block);
  read_ahead_total_ += g.read_ahead_bytes;
  g.read_ahead = std::move(block);
  g.read_ahead_next = next;
}

void Groups::clear_ahead(Group& g) {
  read_ahead_total_ -= std::min(read_ahead_total_, g.read_ahead_bytes);
  g.read_ahead.reset();
  g.read_ahead_next = 0;
  g.read_ahead_bytes = 0;
  drop_key_blocks(g, Offset{~std::uint64_t{0}});
}

bool Groups::keep_key_block(Group& g, const std::shared_ptr<const storage::MessageBlock>& block) {
  const std::size_t bytes = block_bytes(*block);
  if (g.key_blocks_bytes + bytes > kKeyBlocksBytes || read_ahead_total_ >= kReadAheadBudget) {
    return false;
  }
  // A block ending where a kept one does is that one read again: keep the one there.
  if (!g.key_blocks.emplace(block->messages.back().offset.value, block).second) return true;
  g.key_blocks_bytes += bytes;
  read_ahead_total_ += bytes;
  return true;
}

void Groups::drop_key_blocks(Group& g, Offset below) {
  while (!g.key_blocks.empty() && g.key_blocks.begin()->first < below.value) {
    const std::size_t bytes = block_bytes(*g.key_blocks.begin()->second);
    g.key_blocks_bytes -= std::min(g.key_blocks_bytes, bytes);
    read_ahead_total_ -= std::min(read_ahead_total_, bytes);
    g.key_blocks.erase(g.key_blocks.begin());
  }
}

std::optional<Groups::Run> Groups::from_key_blocks(const Group& g, Offset first,
                                                   std::uint64_t end) {
  // Blocks are consecutive reads: each starts where the one before ended, unless offsets
  // between them are not stored (trimmed), which a run through them finds out from the store.
  if (g.key_blocks.empty()) return std::nullopt;
  Run out;
  std::uint64_t next = first.value;
  for (auto it = g.key_blocks.lower_bound(next); next < end; ++it) {
    if (it == g.key_blocks.end()) return std::nullopt;
    const auto& msgs = it->second->messages;
    if (msgs.front().offset.value > next) return std::nullopt;
    const auto from = std::partition_point(msgs.begin(), msgs.end(),
                                           [&](const auto& m) { return m.offset.value < next; });
    out.add(it->second, static_cast<std::size_t>(from - msgs.begin()), end);
    next = it->first + 1;
  }
  return out;
}

storage::GroupRecord Groups::record_of(const Group& g,
                                       std::span<const delivery::DeadLetter> retiring) const {
  auto r = g.settings;
  const auto snap = g.state.snapshot(retiring);
  r.ack_floor = snap.ack_floor;
  r.done_ranges.clear();
  for (const auto& run : snap.done_above_floor) r.done_ranges.emplace_back(run.first, run.end);
  r.dead_lettered = snap.dead_lettered;
  r.redelivered = snap.redelivered;
  r.skipped = snap.skipped;
  return r;
}

void Groups::start_write(Group& g) {
  if (g.writing || !g.persisted) return;
  if (g.retry_at) {
    if (*g.retry_at > last_now_) return;
    g.retry_at.reset();
  }
  GroupWrite write;
  auto letters = g.state.take_dead_letters();
  // The progress as it is once the dead letters are durable: their originals are done.
  auto record = record_of(g, letters);
  if (!letters.empty()) {
    // Each dead letter is a copy of the original with headers saying where it came from,
    // written together with the progress that marks the original done.
    write.dead_letter_topic = g.settings.dead_letter_topic;
    for (const auto& dl : letters) {
      auto read = broker_.fetch(g.topic, dl.offset, storage::ReadLimits{1, 1});
      if (!read || read->messages.empty() || read->messages.front().offset != dl.offset) {
        continue;  // the original is gone (topic being deleted): nothing to copy
      }
      Message m = std::move(read->messages.front().message);
      m.headers.push_back({"loft-dlq-topic", g.topic});
      m.headers.push_back({"loft-dlq-offset", std::to_string(dl.offset.value)});
      m.headers.push_back({"loft-dlq-group", g.name});
      m.headers.push_back({"loft-dlq-attempts", std::to_string(dl.attempts)});
      m.headers.push_back({"loft-dlq-reason", reason_text(dl.reason)});
      // The id is kept so a later redrive can be deduplicated; the DLQ itself never is.
      write.dead_letters.push_back(std::move(m));
    }
  } else if (g.generation == g.written_generation &&
             (g.confirms.empty() || g.durable_generation >= g.generation)) {
    return;  // nothing new to write, and no confirm waits for a sync of what was written
  }
  write.puts.push_back({g.topic, std::move(record)});
  // A sync only when someone waits for one: a confirmed settle or a reset (g.confirms), or a
  // dead letter (its append is a publish to the dead-letter topic). Plain acks are only
  // written: a power loss can forget them (they are redelivered), as docs/guarantees.md says.
  const auto durability =
      !letters.empty() || !g.confirms.empty() ? Durability::fsync : Durability::os;
  write.durability = durability;
  g.writing = true;
  g.dead_letters_writing = letters;
  const std::uint64_t generation = g.generation;
  broker_.write_groups(
      std::move(write), [this, alive = alive_, topic = g.topic, name = g.name,
                         incarnation = g.incarnation, generation, durability](Result<void> r) {
        post_([this, alive, topic, name, incarnation, generation, durability, r = std::move(r)] {
          if (!*alive) return;
          Group* g = find(topic, name);
          if (g == nullptr || g->incarnation != incarnation) return;  // deleted meanwhile
          g->writing = false;
          auto letters = std::move(g->dead_letters_writing);
          g->dead_letters_writing.clear();
          if (r) {
            for (const auto& dl : letters) g->state.dead_lettered(dl.offset);
            g->counters.dead_lettered += letters.size();
            if (dead_lettered_) {
              for (const auto& dl : letters) {
                dead_lettered_(DeadLettered{g->topic, g->name, dl.offset, dl.attempts, dl.reason});
              }
            }
            g->written_generation = std::max(g->written_generation, generation);
            if (durability == Durability::fsync) {
              g->durable_generation = std::max(g->durable_generation, generation);
            }
            for (auto& c : g->take_confirms(g->durable_generation)) c.done(c.reply);
          } else {
            // Nothing was written: the dead letters go back to pending and are retried with
            // the next write. The settles waiting for this write get its error now (a full
            // disk can last long): their acks stay applied and a later retry writes them, but
            // they are not confirmed durable.
            for (auto& c : g->take_confirms(generation)) c.done(tl::unexpected(r.error()));
            for (const auto& dl : letters) g->state.dead_letter_failed(dl);
            if (!letters.empty() || g->generation > g->written_generation) ++g->generation;
            g->retry_at = last_now_ + kWriteRetry;  // not in a tight loop while the disk fails
            touch(*g);
            return;
          }
          start_write(*g);
        });
      });
}

void Groups::write_all_on_stop() {
  for (auto& [key, g] : groups_) {
    if (!g->persisted || (!g->writing && g->generation == g->written_generation)) continue;
    // Dead letters whose append is in flight are retired by that write; say so here too, or
    // this later write would bring them back.
    auto record = record_of(*g, g->dead_letters_writing);
    GroupWrite write;
    write.puts.push_back({g->topic, std::move(record)});
    broker_.write_groups(std::move(write), [](const Result<void>&) {});
  }
}

void Groups::remove_group(Group& g) {
  clear_ahead(g);
  for (const auto id : g.subscriptions) erase_subscription(id);
  for (auto& c : g.confirms) c.done(fail(Errc::group_not_found, "the group was deleted"));
  // Subscribes and creates waiting for its creating write (its topic was deleted meanwhile):
  // that write's completion will not find this group, so they are answered here.
  auto waiting = std::move(g.waiting_for_create);
  erase_group(g);
  for (auto& w : waiting) w(fail(Errc::group_not_found, "the group was deleted"));
}

void Groups::on_topic_events(const std::vector<TopicEvent>& events, TimePoint now) {
  for (const auto& e : events) {
    const auto it = by_topic_.find(e.id.value);
    if (it == by_topic_.end()) continue;
    const std::vector<Group*> matching = it->second;  // remove_group changes it
    for (Group* g : matching) {
      if (e.deleted) {
        remove_group(*g);  // its records were dropped with the topic, in the same write
      } else {
        g->state.on_appended(e.end);
        // Messages deleted from the middle: what was read ahead may hold them, and a deleted
        // message is never delivered after its delete (the store's reads skip it).
        if (e.messages_deleted) clear_ahead(*g);
        // Retention removed what is below e.first: a group behind it moves forward.
        if (g->state.skip_to(e.first) > 0) ++g->generation;
        pump(*g, now);
      }
    }
  }
}

std::optional<TimePoint> Groups::wake_time(const Group& g) const {
  auto d = g.state.next_deadline();
  // A filtered group with more to look at is pumped again as soon as the io thread is free.
  if (g.filter_more && (!d || last_now_ < *d)) d = last_now_;
  // A failed group write, or a failed filter read, is retried a little later.
  if (g.retry_at && (!d || *g.retry_at < *d)) d = g.retry_at;
  if (g.filter_retry_at && (!d || *g.filter_retry_at < *d)) d = g.filter_retry_at;
  return d;
}

void Groups::touch(Group& g) const {
  if (g.touched) return;
  g.touched = true;
  touched_.push_back(g.incarnation);
}

void Groups::arm_touched() const {
  for (const auto incarnation : touched_) {
    const auto it = by_incarnation_.find(incarnation);
    if (it == by_incarnation_.end()) continue;  // removed since
    Group& g = *it->second;
    g.touched = false;
    const auto at = wake_time(g);
    if (!at) {
      g.armed_at.reset();  // nothing to wait for: its entry, if any, is stale now
      continue;
    }
    // A later time than the armed one waits until that entry reaches the top (next_deadline
    // moves it then): a group that acks and delivers all the time adds no entry per pump.
    if (g.armed_at && *g.armed_at <= *at) continue;
    g.armed_at = at;
    wakes_.push(Wake{*at, incarnation});
  }
  touched_.clear();
}

void Groups::on_timer(TimePoint now) {
  // Only the groups with something due: a filtered group catching up asks for the timer at
  // once (filter_more), and must not make every other group pump with it.
  arm_touched();
  std::vector<std::uint64_t> due;
  while (!wakes_.empty() && wakes_.top().at <= now) {
    const auto w = wakes_.top();
    wakes_.pop();
    const auto it = by_incarnation_.find(w.incarnation);
    if (it == by_incarnation_.end() || it->second->armed_at != w.at) continue;  // stale
    it->second->armed_at.reset();
    due.push_back(w.incarnation);
  }
  for (const auto incarnation : due) {
    // Looked up again: a pump before it may have removed it.
    const auto it = by_incarnation_.find(incarnation);
    if (it == by_incarnation_.end()) continue;
    Group& g = *it->second;
    const auto at = wake_time(g);
    if (at && *at <= now) {
      pump(g, now);
    } else {
      touch(g);  // its deadline moved later since it was armed: armed again for then
    }
  }
}

void Groups::on_ready(const Subscriber* who, TimePoint now) {
  const auto it = by_subscriber_.find(who);
  if (it == by_subscriber_.end()) return;
  std::vector<Group*> touched;
  for (const auto id : it->second) {
    Group* g = subscriptions_.at(id).group;
    if (std::find(touched.begin(), touched.end(), g) == touched.end()) touched.push_back(g);
  }
  for (Group* g : touched) pump(*g, now);
}

std::optional<TimePoint> Groups::next_deadline() const {
  arm_touched();
  // Every group with a wake time has a live entry at or before it (arm_touched), so the first
  // live entry whose group still wakes then is the earliest of all.
  while (!wakes_.empty()) {
    const auto w = wakes_.top();
    const auto it = by_incarnation_.find(w.incarnation);
    if (it == by_incarnation_.end() || it->second->armed_at != w.at) {
      wakes_.pop();  // stale
      continue;
    }
    Group& g = *it->second;
    const auto at = wake_time(g);
    if (at == w.at) return w.at;
    wakes_.pop();  // its time moved later (or went): armed again for the new one
    g.armed_at = at;
    if (at) wakes_.push(Wake{*at, w.incarnation});
  }
  return std::nullopt;
}

GroupInfo Groups::info(const Group& g) const {
  const auto stats = g.state.stats();
  GroupInfo out;
  out.topic = g.topic;
  out.group = g.name;
  out.ack_floor = stats.ack_floor.value;
  out.end = stats.end.value;
  out.lag = stats.lag;
  out.in_flight = stats.in_flight;
  out.scheduled = stats.scheduled;
  out.dead_lettered = stats.dead_lettered;
  out.redelivered = stats.redelivered;
  out.skipped = stats.skipped;
  out.config.ack_timeout_ms = g.settings.ack_timeout_ms;
  out.config.max_deliveries = g.settings.max_deliveries;
  out.config.backoff_base_ms = g.settings.backoff_base_ms;
  out.config.backoff_cap_ms = g.settings.backoff_cap_ms;
  out.config.backoff_delays_ms = g.settings.backoff_delays_ms;
  out.config.dead_letter_topic = g.settings.dead_letter_topic;
  out.config.filter = g.settings.filter;
  out.config.annotation = g.settings.annotation;
  out.config.ordering = g.settings.ordering;
  out.config.key_lookahead = g.settings.key_lookahead;
  out.held_back = stats.held_back;
  out.blocking_key = stats.blocking_key;
  for (const auto id : g.subscriptions) {
    const auto& s = subscriptions_.at(id);
    ConsumerInfo c;
    c.subscription = id;
    c.client_name = s.who->client_name();
    c.max_in_flight = s.max_in_flight;
    c.in_flight = g.state.in_flight_of(ConsumerId{id});
    if (stats.lag > c.in_flight) {
      if (!s.who->ready()) {
        c.stalled = StallReason::slow_socket;
      } else if (c.in_flight >= s.max_in_flight) {
        c.stalled = StallReason::at_max_in_flight;
      } else if (stats.key_blocked) {
        c.stalled = StallReason::key_blocked;
      } else if (stats.scheduled > 0) {
        c.stalled = StallReason::waiting_for_backoff;
      }
    }
    out.consumers.push_back(std::move(c));
  }
  return out;
}

std::vector<GroupMetrics> Groups::metrics() const {
  std::vector<GroupMetrics> out;
  out.reserve(groups_.size());
  for (const auto& [key, g] : groups_) {
    if (!g->persisted) continue;  // not created yet, as list_groups
    const auto stats = g->state.stats();
    out.push_back(
        GroupMetrics{g->topic, g->name, g->counters, stats.lag, stats.in_flight, stats.skipped});
  }
  return out;
}

Result<std::vector<GroupInfo>> Groups::list_groups(std::string_view topic) const {
  if (auto meta = broker_.describe_topic(topic); !meta) return tl::unexpected(meta.error());
  std::vector<GroupInfo> out;
  for (const auto& [key, g] : groups_) {
    if (key.first == topic && g->persisted) out.push_back(info(*g));
  }
  return out;
}

Result<GroupInfo> Groups::describe_group(std::string_view topic, std::string_view group) const {
  if (auto meta = broker_.describe_topic(topic); !meta) return tl::unexpected(meta.error());
  const Group* g = find(topic, group);
  if (g == nullptr || !g->persisted) return tl::unexpected(group_not_found(topic, group));
  return info(*g);
}

void Groups::create_group(CreateGroupRequest req, TimePoint now, Callback<GroupInfo> done) {
  auto checked = check_new_group(req.topic, req.group, req.config);
  if (!checked) return done(tl::unexpected(checked.error()));
  if (find(req.topic, req.group) != nullptr) {
    return done(fail(Errc::group_exists,
                     "group '" + req.group + "' of topic '" + req.topic + "' already exists"));
  }
  auto start = resolve_start(req.topic, req.start, /*creating=*/true);
  if (!start) return done(tl::unexpected(start.error()));
  create_then(make_group(checked->topic, std::move(req.group), checked->config, *start),
              [this, done = std::move(done), now](Result<Group*> r) {
                if (!r) return done(tl::unexpected(r.error()));
                pump(**r, now);
                done(info(**r));
              });
}

void Groups::delete_group(const std::string& topic, const std::string& group, TimePoint now,
                          Callback<void> done) {
  (void)now;
  Group* g = find(topic, group);
  if (g == nullptr || !g->persisted) return done(tl::unexpected(group_not_found(topic, group)));
  GroupWrite write;
  write.drops.push_back(storage::DropGroup{g->topic_id, g->name});
  // Its subscribers end now; the write removes it from disk.
  remove_group(*g);
  broker_.write_groups(std::move(write),
                       [this, alive = alive_, done = std::move(done)](Result<void> r) {
                         post_([alive, done, r = std::move(r)] {
                           if (!*alive) return;
                           done(r);
                         });
                       });
}

void Groups::annotate(std::string topic, std::string group, std::string annotation, TimePoint now,
                      Callback<GroupInfo> done) {
  Group* g = find(topic, group);
  if (g == nullptr || !g->persisted) return done(tl::unexpected(group_not_found(topic, group)));
  if (auto ok = validate_annotation(annotation); !ok) return done(tl::unexpected(ok.error()));
  g->settings.annotation = std::move(annotation);
  ++g->generation;
  // Durable before `done`, as a reset: the write that carries it syncs.
  g->confirms.push_back({g->generation, Settled{},
                         [this, done = std::move(done), topic = std::move(topic),
                          group = std::move(group)](Result<Settled> r) {
                           if (!r) return done(tl::unexpected(r.error()));
                           done(describe_group(topic, group));
                         }});
  last_now_ = std::max(last_now_, now);
  start_write(*g);
}

bool Groups::keep_annotation(std::string_view topic, std::string_view group,
                             std::string annotation) {
  Group* g = find(topic, group);
  if (g == nullptr || !g->persisted || !validate_annotation(annotation)) return false;
  g->settings.annotation = std::move(annotation);  // no generation: no write of its own
  return true;
}

bool Groups::set_max_in_flight(std::uint64_t subscription, std::uint32_t max_in_flight,
                               TimePoint now) {
  const auto it = subscriptions_.find(subscription);
  if (it == subscriptions_.end()) return false;
  it->second.max_in_flight = max_in_flight != 0 ? max_in_flight : defaults_.max_in_flight;
  pump(*it->second.group, now);
  return true;
}

void Groups::reset_group(std::string topic, std::string group, StartPosition to_position,
                         TimePoint now, Callback<GroupInfo> done) {
  Group* g = find(topic, group);
  if (g == nullptr || !g->persisted) return done(tl::unexpected(group_not_found(topic, group)));
  auto to = resolve_start(topic, to_position, /*creating=*/false);
  if (!to) return done(tl::unexpected(to.error()));
  g->state.reset(*to);
  clear_ahead(*g);  // the group may move back; read afresh from where it now is
  ++g->generation;
  g->confirms.push_back({g->generation, Settled{},
                         [this, done = std::move(done), topic = std::move(topic),
                          group = std::move(group)](Result<Settled> r) {
                           if (!r) return done(tl::unexpected(r.error()));
                           auto described = describe_group(topic, group);
                           done(std::move(described));
                         }});
  pump(*g, now);
}

}  // namespace loft::broker
