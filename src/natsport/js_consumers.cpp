#include "js_consumers.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <charconv>
#include <limits>
#include <tuple>
#include <vector>

#include "js_ack.hpp"
#include "loft/broker/broker.hpp"
#include "loft/nats/headers.hpp"
#include "log.hpp"
#include "router.hpp"

namespace loft::natsport::js {

namespace {

constexpr std::size_t kNamesLimit = 1024;  // nats-server's page sizes
constexpr std::size_t kListLimit = 256;
// The most offsets one settle of an ack_policy all ack names (broker::GroupDefaults'
// max_settle_offsets is larger).
constexpr std::uint32_t kAckAllChunk = 4096;

std::vector<std::string_view> tokens(std::string_view s, std::size_t max_tokens) {
  std::vector<std::string_view> out;
  while (out.size() + 1 < max_tokens) {
    const auto dot = s.find('.');
    if (dot == std::string_view::npos) break;
    out.push_back(s.substr(0, dot));
    s.remove_prefix(dot + 1);
  }
  out.push_back(s);
  return out;
}

ApiError from_loft(const Error& e, const ErrorKind& otherwise) {
  switch (e.code) {
    case Errc::topic_not_found:
      return api_error(err::kStreamNotFound);
    case Errc::group_not_found:
      return api_error(err::kConsumerNotFound);
    case Errc::group_exists:
      return api_error(err::kConsumerNameExist);
    case Errc::storage_full:
      return api_error(err::kStorageResourcesExceeded);
    default:
      return api_error(otherwise, e.detail);
  }
}

std::string with_number(std::string_view text, std::int64_t n) {
  std::string out(text);
  out += std::to_string(n);
  return out;
}

}  // namespace

tl::expected<PullSpec, std::string> parse_pull_request(std::string_view payload) {
  PullSpec s;
  while (!payload.empty() && (payload.front() == ' ' || payload.front() == '\t')) {
    payload.remove_prefix(1);
  }
  while (!payload.empty() && (payload.back() == ' ' || payload.back() == '\t' ||
                              payload.back() == '\r' || payload.back() == '\n')) {
    payload.remove_suffix(1);
  }
  if (payload.empty()) return s;
  if (payload.front() != '{') {
    std::int64_t n = 0;
    const auto [ptr, ec] = std::from_chars(payload.data(), payload.data() + payload.size(), n);
    if (ec != std::errc{} || ptr != payload.data() + payload.size() || n <= 0) {
      return tl::unexpected(std::string("Bad Request"));
    }
    s.batch = n;
    return s;
  }
  boost::system::error_code ec;
  const auto v = boost::json::parse(payload, ec);
  if (ec || !v.is_object()) return tl::unexpected(std::string("Bad Request"));
  const auto& o = v.get_object();
  const auto int_of = [&](const char* key, std::int64_t& out) {
    const auto* f = o.if_contains(key);
    if (f == nullptr || f->is_null()) return true;
    if (f->is_int64()) {
      out = f->get_int64();
      return true;
    }
    if (f->is_uint64() && f->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
      out = static_cast<std::int64_t>(f->get_uint64());
      return true;
    }
    return false;
  };
  if (!int_of("batch", s.batch) || !int_of("expires", s.expires_ns) ||
      !int_of("max_bytes", s.max_bytes) || !int_of("idle_heartbeat", s.idle_heartbeat_ns)) {
    return tl::unexpected(std::string("Bad Request"));
  }
  if (const auto* f = o.if_contains("no_wait"); f != nullptr && !f->is_null()) {
    if (!f->is_bool()) return tl::unexpected(std::string("Bad Request"));
    s.no_wait = f->get_bool();
  }
  if (s.batch <= 0) s.batch = 1;
  if (s.max_bytes < 0) return tl::unexpected(std::string("Bad Request"));
  // As nats-server: a heartbeat at most half the expiry (so none without one); a negative
  // heartbeat is none; a negative expiry has passed already (next() answers 408).
  if (s.idle_heartbeat_ns > 0 && s.idle_heartbeat_ns > s.expires_ns / 2) {
    return tl::unexpected(std::string("Bad Request - heartbeat value too large"));
  }
  if (s.idle_heartbeat_ns < 0) s.idle_heartbeat_ns = 0;
  return s;
}

Consumers::Consumers(Api& api, broker::Groups& groups, std::function<void()> groups_changed,
                     const boost::asio::any_io_executor& io, std::string server_name)
    : api_(api),
      groups_(groups),
      groups_changed_(std::move(groups_changed)),
      server_name_(std::move(server_name)),
      timer_(io),
      random_(std::random_device{}()) {}

Consumers::~Consumers() {
  *alive_ = false;
  try {
    timer_.cancel();
    api_.router().on_interest_change = nullptr;
    if (fc_subscription_) api_.router().unsubscribe(*fc_subscription_);
    groups_.on_dead_lettered(nullptr);
    groups_.drop_subscriber(this, group_now());
    if (groups_changed_) groups_changed_();
  } catch (...) {
    // Only an allocation failure while the process goes down (logging could throw as well):
    // the subscriptions go with the groups' owner anyway.
  }
}

void Consumers::attach() {
  api_.consumers = [this](const Request& r) { handle(r); };
  api_.acks = [this](const Request& r) { on_ack(r); };
  api_.consumer_count = [this](std::string_view stream) { return count(stream); };
  api_.on_stream_deleted = [this](const std::string& stream) { on_stream_deleted(stream); };
  api_.on_stream_action = [this](const std::string& stream, std::string_view action) {
    advise(stream_action_advisory(advisory_header(), stream, action));
  };
  api_.router().on_interest_change = [this](std::string_view) { on_interest_change(); };
  restore_push();
  groups_.on_dead_lettered([this](const broker::DeadLettered& d) { on_dead_lettered(d); });
}

std::size_t Consumers::count(std::string_view stream) const {
  auto groups = groups_.list_groups(stream);
  return groups ? groups->size() : 0;
}

// The stream's topic is gone, and its groups with it (broker::Groups removed them): waiting
// pull requests hear of it, as of a deleted consumer.
void Consumers::on_stream_deleted(const std::string& stream) {
  std::vector<Key> gone;
  for (auto& [key, c] : consumers_) {
    if (key.first != stream) continue;
    end_all(c, nats::kStatusConflict, "Consumer Deleted");
    gone.push_back(key);
  }
  for (const auto& key : gone) drop_consumer(key);
}

void Consumers::stop() {
  stopped_ = true;
  timer_.cancel();
}

delivery::TimePoint Consumers::group_now() {
  return std::chrono::time_point_cast<delivery::Duration>(Clock::now());
}

// ---- Requests ------------------------------------------------------------------------------

void Consumers::handle(const Request& r) {
  const auto api = r.api();  // "CONSUMER...."
  const auto rest = api.substr(std::string_view("CONSUMER.").size());
  const auto take = [&](std::string_view prefix) -> std::optional<std::string_view> {
    if (!rest.starts_with(prefix)) return std::nullopt;
    return rest.substr(prefix.size());
  };
  if (auto a = take("CREATE.")) {
    // <stream>[.<consumer>[.<filter subject, dots and all>]]
    const auto t = tokens(*a, 3);
    return create(r, t[0], t.size() > 1 ? t[1] : "", t.size() > 2 ? t[2] : "", false);
  }
  if (auto a = take("DURABLE.CREATE.")) {
    const auto t = tokens(*a, 2);
    if (t.size() != 2) {
      return error(r, "consumer_create", api_error(err::kConsumerDurableNameNotInSubject));
    }
    return create(r, t[0], t[1], "", true);
  }
  for (const auto& [verb, name] :
       {std::pair{"INFO.", "consumer_info"}, std::pair{"DELETE.", "consumer_delete"},
        std::pair{"MSG.NEXT.", "consumer_getnext"}}) {
    auto a = take(verb);
    if (!a) continue;
    const auto t = tokens(*a, 2);
    if (t.size() != 2 || t[0].empty() || t[1].empty()) {
      return error(r, name, api_error(err::kBadRequest));
    }
    if (verb == std::string_view("INFO.")) return info(r, t[0], t[1]);
    if (verb == std::string_view("DELETE.")) return remove(r, t[0], t[1]);
    return next(r, t[0], t[1]);
  }
  if (auto a = take("NAMES.")) return names(r, *a, false);
  if (auto a = take("LIST.")) return names(r, *a, true);
  error(r, "api", api_error(err::kBadRequest, "unknown JetStream API: " + r.subject));
}

void Consumers::error(const Request& r, std::string_view name, const ApiError& e) {
  api_.respond_error(r.reply, name, e);
}

void Consumers::answer(const Request& r, std::string_view name, const boost::json::object& body) {
  boost::json::object out;
  out["type"] = response_type(name);
  for (const auto& [k, v] : body) out[k] = v;
  api_.respond(r.reply, boost::json::serialize(out));
}

Consumers::Consumer* Consumers::find(std::string_view stream, std::string_view name) {
  if (auto it = consumers_.find(Key{stream, name}); it != consumers_.end()) {
    if (groups_.describe_group(stream, name)) return &it->second;
    drop_consumer(it->first);  // its group was deleted by other means
    return nullptr;
  }
  auto g = groups_.describe_group(stream, name);
  if (!g) return nullptr;
  Consumer c;
  c.stream = std::string(stream);
  c.name = std::string(name);
  c.last_active = Clock::now();
  if (auto restored = restore_consumer(g->config.annotation)) {
    // Made through this port: its config as it was made (or last updated), and when.
    c.config = std::move(restored->config);
    c.created_ns = restored->created_ns;
    c.consumer_seq = restored->consumer_seq;
    c.config_known = true;
  } else {
    c.config = config_of_group(name, g->config);
    if (auto topic = api_.broker().describe_topic(stream)) {
      c.created_ns = topic->created_at_ms * 1'000'000;
    }
  }
  auto [it, inserted] = consumers_.emplace(Key{c.stream, c.name}, std::move(c));
  if (it->second.config.push()) start_push(it->second);
  return &it->second;
}

Consumers::Consumer* Consumers::by_subscription(std::uint64_t subscription) {
  const auto it = subscriptions_.find(subscription);
  if (it == subscriptions_.end()) return nullptr;
  const auto c = consumers_.find(it->second);
  return c == consumers_.end() ? nullptr : &c->second;
}

void Consumers::drop_consumer(const Key& key) {
  const auto it = consumers_.find(key);
  if (it == consumers_.end()) return;
  if (it->second.subscription) subscriptions_.erase(*it->second.subscription);
  consumers_.erase(it);
}

boost::json::object Consumers::info_json(const Consumer& c, const GroupInfo& g) const {
  std::uint64_t waiting = 0;
  for (const auto& w : c.waiting) waiting += w.alive() ? 1 : 0;
  auto o = consumer_info_json(c.stream, c.config, c.created_ns,
                              consumer_numbers(g, c.consumer_seq, c.delivered_stream_seq, waiting),
                              server_name_);
  if (push_bound(c)) o["push_bound"] = true;
  return o;
}

void Consumers::create(const Request& r, std::string_view stream, std::string_view name,
                       std::string_view filter, bool durable_form) {
  static constexpr std::string_view kName = "consumer_create";
  if (!Api::allowed(r, auth::Operation::admin, stream)) {
    return error(r, kName,
                 api_error(err::kBadRequest, "permission denied: admin on stream " +
                                                 std::string(stream) + " is needed"));
  }
  boost::system::error_code ec;
  const auto body = boost::json::parse(r.payload, ec);
  if (ec || !body.is_object()) {
    return error(r, kName, api_error(err::kInvalidJson, "invalid JSON: " + ec.message()));
  }
  const auto& o = body.get_object();
  if (const auto* s = o.if_contains("stream_name"); s != nullptr) {
    // As nats-server: a stream_name that is not a string fails the request's decoding.
    if (!s->is_string() && !s->is_null()) {
      return error(
          r, kName,
          api_error(err::kInvalidJson, "invalid JSON: field stream_name must be a string"));
    }
    if (!s->is_string() || s->get_string() != stream) {
      return error(r, kName, api_error(err::kStreamMismatch));
    }
  }
  const auto* cfg = o.if_contains("config");
  if (cfg == nullptr) return error(r, kName, api_error(err::kConsumerConfigRequired));
  auto parsed = parse_consumer_config(*cfg);
  if (!parsed) return error(r, kName, parsed.error());
  ConsumerConfig config = std::move(*parsed);

  // The subject's names against the config's.
  if (durable_form) {
    if (config.durable_name.empty()) config.durable_name = std::string(name);
    if (config.durable_name != name) {
      return error(r, kName, api_error(err::kConsumerDurableNameNotMatchSubject));
    }
  } else if (name.empty()) {
    if (config.durable()) {
      return error(r, kName, api_error(err::kConsumerEphemeralWithDurableName));
    }
  } else {
    if ((!config.name.empty() && config.name != name) ||
        (config.durable() && config.durable_name != name)) {
      return error(r, kName, api_error(err::kConsumerDurableNameNotMatchSubject));
    }
    if (!filter.empty()) {
      if (!config.filter_subject.empty() && config.filter_subject != filter) {
        return error(r, kName, api_error(err::kConsumerCreateFilterSubjectMismatch));
      }
      config.filter_subject = std::string(filter);
    }
  }
  if (!name.empty()) {
    if (auto ok = check_consumer_name(name); !ok) return error(r, kName, ok.error());
  }
  if (config.name.empty()) {
    config.name = name.empty() ? (config.durable() ? config.durable_name : random_name(random_))
                               : std::string(name);
  }
  if (!config.filter_subject.empty()) {
    if (auto ok = broker::validate_filter(config.filter_subject); !ok) {
      return error(r, kName, api_error(err::kConsumerCreate, ok.error().detail));
    }
  }
  if (!durable_form && !config.durable() && config.inactive_threshold_ns == 0) {
    config.inactive_threshold_ns = kDefaultInactiveThresholdNs;
  }

  auto topic = api_.broker().describe_topic(stream);
  if (!topic) return error(r, kName, api_error(err::kStreamNotFound));
  for (const auto& captured : topic->subjects) {
    // Pushing into the stream's own subjects would store every delivery again.
    if (config.push() && nats::is_valid_subscription_subject(captured) &&
        nats::subject_matches(captured, config.deliver_subject)) {
      return error(r, kName, api_error(err::kConsumerDeliverCycle));
    }
  }
  auto settings = group_settings(config, topic->next_offset.value);
  if (!settings) return error(r, kName, settings.error());
  const std::string consumer = config.consumer_name();

  // A consumer of that name: the same config is the same consumer (nats-server answers with
  // it); another is an update, as far as nats-server 2.9 allows one and loft's group settings
  // stay as they are.
  if (auto existing = groups_.describe_group(stream, consumer)) {
    Consumer* c = find(stream, consumer);
    if (c == nullptr) return error(r, kName, api_error(err::kConsumerNameExist));
    if (auto ok =
            check_consumer_update(c->config, c->config_known, config, existing->config, *settings);
        !ok) {
      return error(r, kName, ok.error());
    }
    return update(r, *c, *existing, std::move(config));
  }

  const std::int64_t created_ns = system_now_ns();
  auto note = consumer_annotation(config, created_ns);
  if (!note) return error(r, kName, note.error());
  broker::CreateGroupRequest req;
  req.topic = std::string(stream);
  req.group = consumer;
  req.start = settings->start;
  req.config = settings->config;
  req.config.annotation = std::move(*note);
  groups_.create_group(
      std::move(req), group_now(),
      [this, alive = std::weak_ptr<bool>(alive_), r, config, created_ns,
       turn = api_.hold()](Result<GroupInfo> g) {
        if (alive.expired()) return;
        if (!g) {
          // A setting out of the group's range is the broker's refusal, named as NATS names it.
          const auto code = g.error().code;
          const bool refused = code == Errc::invalid_request || code == Errc::invalid_subject;
          return error(
              r, kName,
              refused ? group_refusal(g.error()) : from_loft(g.error(), err::kConsumerCreate));
        }
        Consumer c;
        c.stream = g->topic;
        c.name = g->group;
        c.config = config;
        c.config_known = true;
        c.created_ns = created_ns;
        c.last_active = Clock::now();
        auto [it, inserted] = consumers_.insert_or_assign(Key{c.stream, c.name}, std::move(c));
        start_push(it->second);
        answer(r, kName, info_json(it->second, *g));
        advise(consumer_action_advisory(advisory_header(), it->second.stream, it->second.name,
                                        ConsumerAction::created));
        arm();
      });
  if (groups_changed_) groups_changed_();
}

void Consumers::update(const Request& r, Consumer& c, const GroupInfo& existing,
                       ConsumerConfig config) {
  static constexpr std::string_view kName = "consumer_create";
  c.last_active = Clock::now();
  if (c.config_known && c.config == config) return answer(r, kName, info_json(c, existing));
  auto note = consumer_annotation(config, c.created_ns, c.consumer_seq);
  if (!note) return error(r, kName, note.error());
  // The new config holds once it is durable with the group, max_ack_pending on the consumer's
  // current subscription too.
  groups_.annotate(c.stream, c.name, std::move(*note), group_now(),
                   [this, alive = std::weak_ptr<bool>(alive_), r, key = Key{c.stream, c.name},
                    config = std::move(config), turn = api_.hold()](Result<GroupInfo> g) mutable {
                     if (alive.expired()) return;
                     if (!g) return error(r, kName, from_loft(g.error(), err::kConsumerCreate));
                     const auto it = consumers_.find(key);
                     if (it == consumers_.end()) {
                       return error(r, kName, api_error(err::kConsumerNotFound));
                     }
                     auto& c = it->second;
                     const bool credit_changed = c.config.max_ack_pending != config.max_ack_pending;
                     c.config = std::move(config);
                     c.config_known = true;
                     if (credit_changed && c.subscription) {
                       std::ignore = groups_.set_max_in_flight(
                           *c.subscription, max_in_flight(c.config), group_now());
                       if (groups_changed_) groups_changed_();
                     }
                     start_push(c);  // a changed deliver_group, heartbeat, ...
                     answer(r, kName, info_json(it->second, *g));
                     arm();
                   });
  if (groups_changed_) groups_changed_();
}

void Consumers::info(const Request& r, std::string_view stream, std::string_view name) {
  static constexpr std::string_view kName = "consumer_info";
  if (!Api::allowed(r, auth::Operation::subscribe, stream)) {
    return error(r, kName, api_error(err::kBadRequest, "permission denied"));
  }
  auto g = groups_.describe_group(stream, name);
  if (!g) return error(r, kName, from_loft(g.error(), err::kBadRequest));
  Consumer* c = find(stream, name);
  if (c == nullptr) return error(r, kName, api_error(err::kConsumerNotFound));
  answer(r, kName, info_json(*c, *g));
}

void Consumers::remove(const Request& r, std::string_view stream, std::string_view name) {
  static constexpr std::string_view kName = "consumer_delete";
  if (!Api::allowed(r, auth::Operation::admin, stream)) {
    return error(r, kName, api_error(err::kBadRequest, "permission denied"));
  }
  if (auto g = groups_.describe_group(stream, name); !g) {
    return error(r, kName, from_loft(g.error(), err::kBadRequest));
  }
  if (auto it = consumers_.find(Key{stream, name}); it != consumers_.end()) {
    end_all(it->second, nats::kStatusConflict, "Consumer Deleted");
    drop_consumer(it->first);
  }
  groups_.delete_group(std::string(stream), std::string(name), group_now(),
                       [this, alive = std::weak_ptr<bool>(alive_), r, key = Key{stream, name},
                        turn = api_.hold()](Result<void> done) {
                         if (alive.expired()) return;
                         if (!done)
                           return error(r, kName, from_loft(done.error(), err::kBadRequest));
                         boost::json::object body;
                         body["success"] = true;
                         answer(r, kName, body);
                         advise(consumer_action_advisory(advisory_header(), key.first, key.second,
                                                         ConsumerAction::deleted));
                       });
  if (groups_changed_) groups_changed_();
}

void Consumers::names(const Request& r, std::string_view stream, bool list) {
  const std::string_view name = list ? "consumer_list" : "consumer_names";
  if (!Api::allowed(r, auth::Operation::subscribe, stream)) {
    return error(r, name, api_error(err::kBadRequest, "permission denied"));
  }
  std::size_t offset = 0;
  if (!r.payload.empty()) {
    boost::system::error_code ec;
    const auto body = boost::json::parse(r.payload, ec);
    if (ec || !body.is_object()) return error(r, name, api_error(err::kInvalidJson));
    if (const auto* off = body.get_object().if_contains("offset");
        off != nullptr && off->is_int64() && off->get_int64() > 0) {
      offset = static_cast<std::size_t>(off->get_int64());
    }
  }
  auto groups = groups_.list_groups(stream);
  if (!groups) return error(r, name, from_loft(groups.error(), err::kBadRequest));
  const std::size_t limit = list ? kListLimit : kNamesLimit;
  boost::json::object body;
  body["total"] = groups->size();
  body["offset"] = offset;
  body["limit"] = limit;
  boost::json::array items;
  for (std::size_t i = offset; i < groups->size() && items.size() < limit; ++i) {
    const auto& g = (*groups)[i];
    if (!list) {
      items.emplace_back(g.group);
      continue;
    }
    if (Consumer* c = find(stream, g.group)) items.emplace_back(info_json(*c, g));
  }
  body["consumers"] = std::move(items);
  answer(r, name, body);
}

// ---- Pull requests ---------------------------------------------------------------------------

void Consumers::next(const Request& r, std::string_view stream, std::string_view name) {
  Consumer* c = Api::allowed(r, auth::Operation::subscribe, stream) ? find(stream, name) : nullptr;
  if (c == nullptr) {
    // nats-server has no such consumer to answer: the requester gets "no responders".
    return status(r.reply, nats::kStatusNoResponders, "");
  }
  if (c->config.push()) return status(r.reply, nats::kStatusConflict, "Consumer is push based");
  auto spec = parse_pull_request(r.payload);
  if (!spec) return status(r.reply, 400, spec.error());
  const auto& cfg = c->config;
  if (cfg.max_batch > 0 && spec->batch > cfg.max_batch) {
    return status(r.reply, nats::kStatusConflict,
                  with_number("Exceeded MaxRequestBatch of ", cfg.max_batch));
  }
  if (cfg.max_bytes > 0 && spec->max_bytes > cfg.max_bytes) {
    return status(r.reply, nats::kStatusConflict,
                  with_number("Exceeded MaxRequestMaxBytes of ", cfg.max_bytes));
  }
  if (cfg.max_expires_ns > 0 && spec->expires_ns > cfg.max_expires_ns) {
    return status(r.reply, nats::kStatusConflict, "Exceeded MaxRequestExpires");
  }
  std::erase_if(c->waiting, [](const Waiting& w) { return !w.alive(); });
  if (static_cast<std::int64_t>(c->waiting.size()) >= cfg.max_waiting) {
    return status(r.reply, nats::kStatusConflict, "Exceeded MaxWaiting");
  }
  if (spec->expires_ns < 0) {  // expired on arrival, as nats-server answers it
    return status(r.reply, nats::kStatusRequestTimeout, "Request Timeout",
                  static_cast<std::uint64_t>(spec->batch),
                  static_cast<std::uint64_t>(spec->max_bytes), true);
  }
  pull(*c, r.reply, r.session, *spec);
}

void Consumers::pull(Consumer& c, std::string reply, std::weak_ptr<void> session,
                     const PullSpec& spec) {
  const auto now = Clock::now();
  Waiting w;
  w.reply = std::move(reply);
  w.session = std::move(session);
  w.batch_left = spec.batch;
  w.bytes_bounded = spec.max_bytes > 0;
  w.bytes_left = spec.max_bytes;
  w.no_wait = spec.no_wait;
  if (spec.expires_ns > 0) w.expires_at = now + std::chrono::nanoseconds(spec.expires_ns);
  if (spec.idle_heartbeat_ns > 0) {
    w.heartbeat = std::chrono::nanoseconds(spec.idle_heartbeat_ns);
    w.next_heartbeat = now + w.heartbeat;
  }
  c.waiting.push_back(std::move(w));
  c.last_active = now;
  if (!c.subscription) {
    subscribe(c);  // serves once subscribed
  } else {
    serve(c);
  }
  arm();
}

void Consumers::subscribe(Consumer& c) {
  if (c.subscribing) return;
  c.subscribing = true;
  broker::SubscribeRequest req;
  req.topic = c.stream;
  req.group = c.name;
  req.max_in_flight = max_in_flight(c.config);
  if (auto s = group_settings(c.config, 0)) req.config = s->config;
  groups_.subscribe(std::move(req), this, group_now(),
                    [this, alive = std::weak_ptr<bool>(alive_),
                     key = Key{c.stream, c.name}](Result<broker::Subscribed> s) {
                      if (alive.expired()) return;
                      const auto it = consumers_.find(key);
                      if (!s) {
                        if (it == consumers_.end()) return;
                        it->second.subscribing = false;
                        nats_log()->warn(
                            "pull consumer subscribe failed stream={} consumer={} "
                            "error=\"{}\"",
                            key.first, key.second, s.error().detail);
                        end_all(it->second, nats::kStatusConflict, "Consumer Deleted");
                        return;
                      }
                      if (it == consumers_.end()) {
                        // Deleted meanwhile: let the subscription go.
                        std::ignore = groups_.unsubscribe(s->subscription, this, group_now());
                        return;
                      }
                      it->second.subscribing = false;
                      it->second.subscription = s->subscription;
                      subscriptions_[s->subscription] = key;
                      serve(it->second);
                      arm();
                    });
  if (groups_changed_) groups_changed_();
}

void Consumers::serve(Consumer& c) {
  const Key key{c.stream, c.name};
  groups_.on_ready(this, group_now());
  if (groups_changed_) groups_changed_();
  // on_ready delivered what the group had; no_wait requests still waiting end now.
  const auto it = consumers_.find(key);
  if (it == consumers_.end()) return;
  auto& waiting = it->second.waiting;
  std::vector<Waiting> ended;
  std::erase_if(waiting, [&](Waiting& w) {
    if (!w.no_wait) return false;
    ended.push_back(std::move(w));
    return true;
  });
  for (const auto& w : ended) {
    if (w.delivered == 0) {
      status(w.reply, nats::kStatusNoMessages, "No Messages");
    } else {
      status(w.reply, nats::kStatusRequestTimeout, "Request Timeout",
             static_cast<std::uint64_t>(w.batch_left),
             w.bytes_bounded ? static_cast<std::uint64_t>(w.bytes_left) : 0, true);
    }
  }
}

std::uint32_t Consumers::credit(std::uint64_t subscription) const {
  const auto it = subscriptions_.find(subscription);
  if (it == subscriptions_.end()) return 0;
  const auto c = consumers_.find(it->second);
  if (c == consumers_.end()) return 0;
  if (c->second.push) return push_credit(c->second);
  std::uint64_t total = 0;
  for (const auto& w : c->second.waiting) {
    if (w.alive()) total += static_cast<std::uint64_t>(w.batch_left);
  }
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(total, UINT32_MAX));
}

void Consumers::deliver(const broker::DeliveryBatch& batch) {
  Consumer* c = by_subscription(batch.subscription);
  if (c != nullptr && c->push) return push_deliver(*c, batch);
  std::vector<OffsetRun> unsent;
  std::vector<OffsetRun> sent_runs;  // ack_policy none: done once sent
  std::uint64_t end = 0;
  if (auto t = api_.broker().describe_topic(batch.topic)) end = t->next_offset.value;
  std::string headers;
  for (const auto& d : batch.messages) {
    const auto& m = *d.message;
    bool sent = false;
    while (c != nullptr && !sent && !c->waiting.empty()) {
      Waiting& w = c->waiting.front();
      const std::uint64_t size = m.payload.size() + [&] {
        std::uint64_t n = 0;
        for (const auto& h : m.headers) n += h.name.size() + h.value.size();
        return n;
      }();
      if (!w.alive()) {
        c->waiting.pop_front();
        continue;
      }
      if (w.bytes_bounded && static_cast<std::int64_t>(size) > w.bytes_left) {
        // Does not fit: the request ends (nats-server's 409), the message goes to the next.
        status(w.reply, nats::kStatusConflict, "Message Size Exceeds MaxBytes");
        c->waiting.pop_front();
        continue;
      }
      AckReply ack;
      ack.stream = c->stream;
      ack.consumer = c->name;
      ack.delivered = d.attempt;
      ack.stream_seq = m.offset.value + 1;
      ack.consumer_seq = ++c->consumer_seq;
      ack.timestamp_ns = m.timestamp_ms * 1'000'000;
      ack.pending = end > m.offset.value + 1 ? end - m.offset.value - 1 : 0;
      const auto reply = ack_reply_subject(ack);
      headers.clear();
      if (!m.headers.empty()) nats::append_headers(headers, 0, "", m.headers);
      const std::string_view subject = m.subject.empty() ? batch.topic : m.subject;
      if (api_.router().publish_to(w.reply, Outbound{subject, reply, headers, m.payload}) == 0) {
        // Nobody listens on that inbox any more: the request is gone.
        --c->consumer_seq;
        c->waiting.pop_front();
        continue;
      }
      sent = true;
      if (c->config.ack_none()) append_offset(sent_runs, m.offset.value);
      c->delivered_stream_seq = std::max(c->delivered_stream_seq, ack.stream_seq);
      ++w.delivered;
      --w.batch_left;
      if (w.bytes_bounded) w.bytes_left -= static_cast<std::int64_t>(size);
      if (w.batch_left <= 0 || (w.bytes_bounded && w.bytes_left <= 0)) c->waiting.pop_front();
    }
    if (!sent) unsent.push_back({m.offset.value, 1});
  }
  keep_sequence(*c);
  if (!unsent.empty()) {
    // Delivered by the group but no request could take it: back at once, as a nak without
    // delay (its attempt counts).
    broker::SettleRequest req{batch.subscription, SettleAction::nack, false, 0, std::move(unsent)};
    groups_.settle(req, this, group_now(), [](const Result<broker::Settled>&) {});
  }
  if (!sent_runs.empty()) settle_sent(batch.subscription, std::move(sent_runs));
}

void Consumers::settle_sent(std::uint64_t subscription, std::vector<OffsetRun> runs) {
  // Settled after this delivery returns: a settle from inside Subscriber::deliver would pump
  // the group again from within its own pump.
  boost::asio::post(timer_.get_executor(), [this, alive = std::weak_ptr<bool>(alive_), subscription,
                                            runs = std::move(runs)]() mutable {
    if (alive.expired() || !subscriptions_.contains(subscription)) return;
    broker::SettleRequest req{subscription, SettleAction::ack, false, std::nullopt,
                              std::move(runs)};
    groups_.settle(req, this, group_now(), [](const Result<broker::Settled>&) {});
    if (groups_changed_) groups_changed_();
  });
}

void Consumers::keep_sequence(const Consumer& c) {
  // A consumer made through this port keeps its delivery count in its annotation, which rides
  // on the group's next progress write (no write of its own).
  if (!c.config_known || c.consumer_seq == 0) return;
  auto note = consumer_annotation(c.config, c.created_ns, c.consumer_seq);
  if (note) std::ignore = groups_.keep_annotation(c.stream, c.name, std::move(*note));
}

void Consumers::status(std::string_view inbox, std::uint16_t code, std::string_view description,
                       std::uint64_t pending_messages, std::uint64_t pending_bytes,
                       bool with_pending) {
  std::string block;
  if (with_pending) {
    const std::vector<Header> h{{"Nats-Pending-Messages", std::to_string(pending_messages)},
                                {"Nats-Pending-Bytes", std::to_string(pending_bytes)}};
    nats::append_headers(block, code, description, std::span<const Header>(h));
  } else {
    nats::append_headers(block, code, description, std::span<const Header>{});
  }
  api_.router().publish_to(inbox, Outbound{inbox, {}, block, {}});
}

void Consumers::end_all(Consumer& c, std::uint16_t code, std::string_view description) {
  auto waiting = std::move(c.waiting);
  c.waiting.clear();
  for (const auto& w : waiting) {
    if (w.alive()) status(w.reply, code, description);
  }
}

// ---- Acks ------------------------------------------------------------------------------------

void Consumers::on_ack(const Request& r) {
  const std::string_view subject = r.subject;
  const std::string_view reply = r.reply;
  const std::string_view payload = r.payload;
  const auto ack = parse_ack_reply_subject(subject);
  const auto cmd = parse_ack_payload(payload);
  if (!ack || !cmd) return;  // not an ack: ignored, as by nats-server
  if (!Api::allowed(r, auth::Operation::subscribe, ack->stream)) {
    nats_log()->debug("ack denied stream={} consumer={}", ack->stream, ack->consumer);
    return;
  }
  Consumer* c = find(ack->stream, ack->consumer);
  if (c == nullptr || ack->stream_seq == 0) {
    if (!reply.empty()) api_.send(reply, {}, {});
    return;
  }
  c->last_active = Clock::now();
  if (c->config.ack_none()) {
    // Every delivery was done once sent: nats-server takes the ack and changes nothing, but
    // advises a +TERM all the same, with the ack subject's numbers (2.9.10's processTerm).
    if (cmd->verb == AckVerb::term) {
      advise(terminated_advisory(advisory_header(), ack->stream, ack->consumer, ack->consumer_seq,
                                 ack->stream_seq, ack->delivered));
    }
    if (!reply.empty()) api_.send(reply, {}, {});
    if (cmd->verb == AckVerb::next && !reply.empty()) {
      auto spec = parse_pull_request(cmd->next_request);
      if (spec) pull(*c, std::string(reply), r.session, *spec);
    }
    return;
  }
  if (!c->subscription) {
    // Nothing of it is in flight through this loftd (delivered before a restart): the
    // message comes back after its ack_wait anyway.
    if (!reply.empty()) api_.send(reply, {}, {});
    return;
  }
  broker::SettleRequest req;
  req.subscription = *c->subscription;
  req.action = settle_action(cmd->verb);
  req.confirm = !reply.empty();
  req.runs = {OffsetRun{ack->stream_seq - 1, 1}};
  if (c->config.ack_all() && req.action == SettleAction::ack) {
    // Every message up to this one still pending is acked with it, as in nats-server: the
    // offsets from the group's floor on (the settle ignores those not in flight), in settles
    // of at most kAckAllChunk offsets; the last one, which includes this message, answers.
    const auto g = groups_.describe_group(c->stream, c->name);
    auto runs = ack_all_runs(g ? g->ack_floor : ack->stream_seq - 1, ack->stream_seq, kAckAllChunk);
    for (std::size_t i = 0; i + 1 < runs.size(); ++i) {
      broker::SettleRequest part{
          *c->subscription, SettleAction::ack, false, std::nullopt, {runs[i]}};
      groups_.settle(part, this, group_now(), [](const Result<broker::Settled>&) {});
    }
    req.runs = {runs.back()};
  }
  if (cmd->verb == AckVerb::nak) {
    // A nak without a delay: at once, as in NATS, unless the consumer has a backoff list.
    if (cmd->delay) {
      req.delay_ms = delay_ms(*cmd->delay);
    } else if (c->config.backoff_ns.empty()) {
      req.delay_ms = 0;
    }
  }
  const bool term = cmd->verb == AckVerb::term;
  groups_.settle(req, this, group_now(),
                 [this, alive = std::weak_ptr<bool>(alive_), reply = std::string(reply), term,
                  ack = *ack](const Result<broker::Settled>& r) {
                   if (alive.expired()) return;
                   if (term && r && r->applied > 0) {
                     advise(terminated_advisory(advisory_header(), ack.stream, ack.consumer,
                                                ack.consumer_seq, ack.stream_seq, ack.delivered));
                   }
                   // AckSync: answered once the settle is durable (or failed: an empty answer
                   // either way, as nats-server gives).
                   if (!reply.empty()) api_.send(reply, {}, {});
                 });
  if (groups_changed_) groups_changed_();
  if (cmd->verb == AckVerb::next && !reply.empty()) {
    auto spec = parse_pull_request(cmd->next_request);
    if (spec) pull(*c, std::string(reply), r.session, *spec);
  }
}

// ---- Advisories ------------------------------------------------------------------------------

AdvisoryHeader Consumers::advisory_header() { return advisory_now(random_); }

void Consumers::advise(const Advisory& a) { api_.send(a.subject, {}, a.body); }

void Consumers::on_dead_lettered(const broker::DeadLettered& d) {
  // A +TERM has its own advisory (on_ack); a message that used up max_deliver has this one.
  if (d.reason != delivery::DeadLetterReason::max_deliveries) return;
  advise(
      max_deliveries_advisory(advisory_header(), d.topic, d.group, d.offset.value + 1, d.attempts));
}

// ---- Deadlines -------------------------------------------------------------------------------

void Consumers::arm() {
  if (stopped_) return;
  std::optional<Clock::time_point> next;
  const auto consider = [&](Clock::time_point t) {
    if (!next || t < *next) next = t;
  };
  for (const auto& [key, c] : consumers_) {
    for (const auto& w : c.waiting) {
      if (w.expires_at) consider(*w.expires_at);
      if (w.heartbeat.count() > 0) consider(w.next_heartbeat);
    }
    if (c.push) {
      if (auto t = c.push->flow.next_heartbeat(); t && c.push->bound) consider(*t);
      if (c.push->bound && c.push->flow.rate_limit_bps() != 0) {
        if (auto t = c.push->flow.paced_until(Clock::now())) consider(*t);
      }
    }
    if (!c.config.durable() && c.config.inactive_threshold_ns > 0 && c.waiting.empty() &&
        !push_bound(c)) {
      consider(c.last_active + std::chrono::nanoseconds(c.config.inactive_threshold_ns));
    }
  }
  if (!next || (timer_at_ && *timer_at_ <= *next)) return;
  timer_at_ = next;
  timer_.expires_at(*next);
  timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](boost::system::error_code ec) {
    if (ec || alive.expired()) return;
    timer_at_.reset();
    on_timer();
  });
}

void Consumers::on_timer() {
  const auto now = Clock::now();
  std::vector<Key> idle;
  std::vector<Key> paced;  // rate-limited push consumers whose bucket lets the next one go
  for (auto& [key, c] : consumers_) {
    std::vector<Waiting> expired;
    std::erase_if(c.waiting, [&](Waiting& w) {
      if (!w.alive()) return true;
      if (w.expires_at && *w.expires_at <= now) {
        expired.push_back(std::move(w));
        return true;
      }
      return false;
    });
    for (auto& w : c.waiting) {
      if (w.heartbeat.count() > 0 && w.next_heartbeat <= now) {
        status(w.reply, nats::kStatusIdleHeartbeat, "Idle Heartbeat");
        w.next_heartbeat = now + w.heartbeat;
      }
    }
    for (const auto& w : expired) {
      status(w.reply, nats::kStatusRequestTimeout, "Request Timeout",
             static_cast<std::uint64_t>(w.batch_left),
             w.bytes_bounded ? static_cast<std::uint64_t>(w.bytes_left) : 0, true);
    }
    if (c.push) {
      push_timer(c, now);
      if (c.push->bound && c.push->flow.rate_limit_bps() != 0 && !push_paced(c, now)) {
        paced.push_back(key);
      }
    }
    if (!c.config.durable() && c.config.inactive_threshold_ns > 0 && c.waiting.empty() &&
        !push_bound(c) &&
        c.last_active + std::chrono::nanoseconds(c.config.inactive_threshold_ns) <= now) {
      idle.push_back(key);
    }
  }
  for (const auto& key : paced) {
    if (auto it = consumers_.find(key); it != consumers_.end() && it->second.push) {
      push_flush(it->second);
    }
  }
  for (const auto& key : idle) {
    // An ephemeral consumer nobody pulled from or acked for inactive_threshold: its group goes.
    nats_log()->debug("ephemeral consumer removed stream={} consumer={}", key.first, key.second);
    drop_consumer(key);
    groups_.delete_group(key.first, key.second, group_now(), [](const Result<void>&) {});
    advise(consumer_action_advisory(advisory_header(), key.first, key.second,
                                    ConsumerAction::deleted));
  }
  if (!idle.empty() && groups_changed_) groups_changed_();
  arm();
}

}  // namespace loft::natsport::js
