// STREAM.CREATE | UPDATE | INFO | DELETE | NAMES | LIST | PURGE | MSG.GET on loft topics, and
// MSG.DELETE refused
// (docs/nats.md, "JetStream: streams").

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "js_api.hpp"
#include "js_streams.hpp"
#include "loft/common/subject.hpp"
#include "log.hpp"

namespace loft::natsport::js {

namespace {

constexpr std::size_t kNamesPage = 1024;  // nats-server's page sizes
constexpr std::size_t kListPage = 256;
// MSG.GET by subject reads at most this many messages: last_by_subj the newest ones,
// next_by_subj those from its `seq` on. A subject not among them is a 10003 naming the bound.
constexpr std::uint64_t kSubjectScan = 10'000;
constexpr broker::ReadLimits kSubjectScanRead{1000, std::size_t{8} << 20};

// A broker error as the JetStream error of API `kind` (`fallback` for what has no NATS twin).
ApiError from_broker(const Error& e, const ErrorKind& fallback) {
  switch (e.code) {
    case Errc::topic_not_found:
      return api_error(err::kStreamNotFound);
    case Errc::topic_exists:
      return api_error(err::kStreamNameExist);
    case Errc::subjects_overlap:
      return api_error(err::kStreamSubjectOverlap);
    case Errc::storage_full:
      return api_error(err::kStorageResourcesExceeded);
    case Errc::invalid_name:
    case Errc::invalid_request:
    case Errc::invalid_subject:
      return api_error(err::kStreamInvalidConfig, e.detail.empty() ? e.to_string() : e.detail);
    default:
      return api_error(fallback, e.detail.empty() ? e.to_string() : e.detail);
  }
}

// The JSON body of a request, or an empty object for an empty payload; 10025 if not JSON or
// if a field these requests read has the wrong type (nats-server's decoder refuses those).
ApiResult<boost::json::object> body_of(const Request& r) {
  if (r.payload.empty()) return boost::json::object{};
  boost::system::error_code ec;
  auto v = boost::json::parse(r.payload, ec);
  if (ec || !v.is_object()) return tl::unexpected(api_error(err::kInvalidJson, "invalid JSON"));
  auto& o = v.get_object();
  const auto wrong = [](std::string_view key, std::string_view type) {
    std::string text = "invalid JSON: field ";
    text += key;
    text += " must be ";
    text += type;
    return tl::unexpected(api_error(err::kInvalidJson, std::move(text)));
  };
  for (const std::string_view key : {"subject", "filter", "last_by_subj", "next_by_subj"}) {
    const auto* f = o.if_contains(key);
    if (f != nullptr && !f->is_null() && !f->is_string()) return wrong(key, "a string");
  }
  for (const std::string_view key : {"offset", "seq", "keep"}) {
    const auto* f = o.if_contains(key);
    if (f != nullptr && !f->is_null() && !f->is_uint64() &&
        !(f->is_int64() && f->get_int64() >= 0)) {
      return wrong(key, "an unsigned integer");
    }
  }
  return std::move(o);
}

std::optional<std::uint64_t> uint_field(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return std::nullopt;
  if (v->is_uint64()) return v->get_uint64();
  if (v->is_int64() && v->get_int64() >= 0) return static_cast<std::uint64_t>(v->get_int64());
  return std::nullopt;
}

std::string string_field(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

// MSG.GET by subject: with `next_from` (next_by_subj, its `seq`; 0 or none: the first), the
// first message at or after that sequence whose subject matches `filter`, else (last_by_subj)
// the newest one. Reads at most kSubjectScan messages; nullopt when none matches in what the
// stream holds, a 10003 naming the bound when the match could be beyond it.
ApiResult<std::optional<StoredMessage>> scan_subject(const broker::Broker& broker,
                                                     const TopicInfo& topic,
                                                     std::string_view filter,
                                                     std::optional<std::uint64_t> next_from) {
  const std::uint64_t first = topic.first_offset.value;
  const std::uint64_t end = topic.next_offset.value;
  std::uint64_t from = first;
  std::uint64_t to = end;
  if (next_from) {
    from = std::max(first, *next_from == 0 ? 0 : *next_from - 1);
    to = std::min(end, from + kSubjectScan);
  } else if (end - first > kSubjectScan) {
    from = end - kSubjectScan;
  }
  std::optional<StoredMessage> found;
  for (std::uint64_t at = from; at < to;) {
    auto f = broker.fetch(topic.name, Offset{at}, kSubjectScanRead);
    if (!f) return tl::unexpected(api_error(err::kStreamGeneral, f.error().to_string()));
    if (f->messages.empty()) break;
    for (auto& m : f->messages) {
      if (m.offset.value >= to) break;
      const std::string_view subject =
          m.message.subject.empty() ? std::string_view(topic.name) : m.message.subject;
      if (!subjects_collide(filter, subject)) continue;
      found = std::move(m);
      if (next_from) return found;
    }
    at = f->messages.back().offset.value + 1;
  }
  const bool all_read = next_from ? to == end : from == first;
  if (found || all_read) return found;
  std::string text = "no message on '";
  text += filter;
  text += next_from ? "' among the " : "' among the last ";
  text += std::to_string(kSubjectScan);
  text += next_from ? " messages from the given sequence" : " messages of the stream";
  text += ": loft searches no further";
  return tl::unexpected(api_error(err::kBadRequest, std::move(text)));
}

ApiError forbidden(std::string_view stream) {
  std::string text = "permission denied: admin on stream ";
  text += stream;
  return ApiError{403, err::kBadRequest.err_code, std::move(text)};
}

}  // namespace

void Api::stream_api(const Request& request, std::string_view api) {
  struct Route {
    std::string_view prefix;
    void (Api::*handler)(const Request&, std::string_view);
  };
  if (api == "NAMES") return stream_list(request, true);
  if (api == "LIST") return stream_list(request, false);
  if (api.starts_with("MSG.DELETE.")) return stream_msg_delete(request, api.substr(11));
  if (api.starts_with("CREATE.")) return stream_create(request, api.substr(7), false);
  if (api.starts_with("UPDATE.")) return stream_create(request, api.substr(7), true);
  for (const auto& [prefix, handler] :
       {Route{"INFO.", &Api::stream_info}, Route{"DELETE.", &Api::stream_delete},
        Route{"PURGE.", &Api::stream_purge}, Route{"MSG.GET.", &Api::stream_msg_get}}) {
    if (api.starts_with(prefix)) return (this->*handler)(request, api.substr(prefix.size()));
  }
  unknown(request);
}

std::string Api::stream_info_json(std::string_view type, const TopicInfo& t) {
  std::optional<std::int64_t> first_ts;
  std::optional<std::int64_t> last_ts;
  if (t.messages > 0) {
    const broker::ReadLimits one{1, 1};
    if (auto f = broker_.fetch(t.name, t.first_offset, one); f && !f->messages.empty()) {
      first_ts = f->messages.front().timestamp_ms;
    }
    if (auto l = broker_.fetch(t.name, Offset{t.next_offset.value - 1}, one);
        l && !l->messages.empty()) {
      last_ts = l->messages.front().timestamp_ms;
    }
  }
  boost::json::object body;
  body["type"] = response_type(type);
  body["config"] = config_json(t);
  body["created"] = rfc3339(t.created_at_ms);
  body["state"] = state_json(t, first_ts, last_ts, consumers_of(t.name));
  return boost::json::serialize(body);
}

void Api::stream_create(const Request& request, std::string_view name, bool update) {
  const std::string_view type = update ? "stream_update" : "stream_create";
  if (!is_valid_stream_name(name)) {
    return respond_error(request.reply, type,
                         api_error(err::kStreamInvalidConfig, "invalid stream name"));
  }
  if (!allowed(request, auth::Operation::admin, name)) {
    return respond_error(request.reply, type, forbidden(name));
  }
  auto config = parse_stream_config(name, request.payload);
  if (!config) return respond_error(request.reply, type, config.error());
  const auto existing = broker_.describe_topic(name);
  std::string reply = request.reply;
  std::string topic(name);
  // (The connection's next request waits for the answer: hold().)
  auto answer = [this, reply, topic, type, update, turn = hold()](Result<TopicInfo> r,
                                                                  const ErrorKind& fallback) {
    post([this, reply, topic, type, update, turn, r = std::move(r), &fallback] {
      if (!r) return respond_error(reply, type, from_broker(r.error(), fallback));
      respond(reply, stream_info_json(type, *r));
      if (on_stream_action) on_stream_action(topic, update ? "modify" : "create");
    });
  };
  if (!update) {
    if (existing) {
      // As nats-server: the same config again is not an error.
      if (same_config(*config, *existing)) return respond(reply, stream_info_json(type, *existing));
      return respond_error(reply, type, api_error(err::kStreamNameExist));
    }
    broker::TopicSettings settings;
    settings.dedup_window_ms = config->duplicate_window_ms;
    settings.retention =
        RetentionChange{config->max_age_ms, config->max_bytes, config->max_messages};
    settings.subjects = config->subjects;
    nats_log()->info("stream create stream={} subjects={}", topic, config->subjects.size());
    return broker_.create_topic(topic, std::move(settings), [answer](Result<TopicInfo> r) {
      answer(std::move(r), err::kStreamCreate);
    });
  }
  if (!existing) return respond_error(reply, type, api_error(err::kStreamNotFound));
  if (config->duplicate_window_given && config->duplicate_window_ms != existing->dedup_window_ms) {
    return respond_error(
        reply, type,
        api_error(err::kStreamInvalidConfig,
                  "duplicate_window can not be changed: loft fixes a stream's dedup window when "
                  "it is created"));
  }
  // Two writes: the retention limits, then the subjects; each answers for itself, and the
  // answer is the info after both.
  const RetentionChange limits{config->max_age_ms, config->max_bytes, config->max_messages};
  auto subjects = config->subjects;
  auto set_subjects = [this, topic, subjects, answer](Result<TopicInfo> altered) {
    if (!altered) return answer(std::move(altered), err::kStreamUpdate);
    if (stream_subjects(*altered) == subjects)
      return answer(std::move(altered), err::kStreamUpdate);
    // Called on the writer thread after the alter: the broker's next request is made from
    // the io thread (callbacks must not call back into the broker).
    post([this, topic, subjects, answer] {
      broker_.set_topic_subjects(topic, subjects, [answer](Result<TopicInfo> r) {
        answer(std::move(r), err::kStreamUpdate);
      });
    });
  };
  if (existing->retention() == broker::apply_retention(existing->retention(), limits)) {
    return set_subjects(*existing);
  }
  broker_.alter_topic(topic, limits, std::move(set_subjects));
}

void Api::stream_info(const Request& request, std::string_view name) {
  if (!allowed(request, auth::Operation::admin, name) &&
      (request.user == nullptr || !request.user->permissions.may_see(name))) {
    return respond_error(request.reply, "stream_info", forbidden(name));
  }
  const auto topic =
      is_valid_stream_name(name) ? broker_.describe_topic(name) : fail(Errc::topic_not_found, "");
  if (!topic) return respond_error(request.reply, "stream_info", api_error(err::kStreamNotFound));
  respond(request.reply, stream_info_json("stream_info", *topic));
}

void Api::stream_delete(const Request& request, std::string_view name) {
  if (!allowed(request, auth::Operation::admin, name)) {
    return respond_error(request.reply, "stream_delete", forbidden(name));
  }
  if (!is_valid_stream_name(name) || !broker_.describe_topic(name)) {
    return respond_error(request.reply, "stream_delete", api_error(err::kStreamNotFound));
  }
  nats_log()->info("stream delete stream={}", name);
  broker_.delete_topic(std::string(name), [this, reply = request.reply, topic = std::string(name),
                                           turn = hold()](Result<void> r) {
    post([this, reply, topic, turn, r = std::move(r)] {
      if (!r)
        return respond_error(reply, "stream_delete", from_broker(r.error(), err::kStreamDelete));
      if (on_stream_deleted) on_stream_deleted(topic);
      respond(reply,
              R"({"type":"io.nats.jetstream.api.v1.stream_delete_response","success":true})");
      if (on_stream_action) on_stream_action(topic, "delete");
    });
  });
}

void Api::stream_list(const Request& request, bool names_only) {
  const std::string_view type = names_only ? "stream_names" : "stream_list";
  const auto body = body_of(request);
  if (!body) return respond_error(request.reply, type, body.error());
  const std::size_t offset = uint_field(*body, "offset").value_or(0);
  const std::string subject = string_field(*body, "subject");
  std::vector<TopicInfo> matching;
  for (auto& t : broker_.list_topics()) {
    if (!is_valid_stream_name(t.name)) continue;  // a loft topic no NATS API subject can name
    if (request.user != nullptr && !request.user->permissions.may_see(t.name)) continue;
    if (!subject.empty()) {
      bool hit = false;
      for (const auto& s : stream_subjects(t)) hit = hit || subjects_collide(s, subject);
      if (!hit) continue;
    }
    matching.push_back(std::move(t));
  }
  const std::size_t limit = names_only ? kNamesPage : kListPage;
  boost::json::object out;
  out["type"] = response_type(type);
  out["total"] = matching.size();
  out["offset"] = offset;
  out["limit"] = limit;
  boost::json::array streams;
  for (std::size_t i = offset; i < matching.size() && streams.size() < limit; ++i) {
    if (names_only) {
      streams.emplace_back(matching[i].name);
    } else {
      auto info = boost::json::parse(stream_info_json("stream_info", matching[i])).as_object();
      info.erase("type");
      streams.emplace_back(std::move(info));
    }
  }
  if (names_only && streams.empty()) {
    out["streams"] = nullptr;  // as nats-server
  } else {
    out["streams"] = std::move(streams);
  }
  if (!names_only) out["missing"] = nullptr;
  respond(request.reply, boost::json::serialize(out));
}

std::optional<Api::StreamRequest> Api::stream_request(const Request& request, std::string_view name,
                                                      std::string_view type) {
  auto topic =
      is_valid_stream_name(name) ? broker_.describe_topic(name) : fail(Errc::topic_not_found, "");
  if (!topic) {
    respond_error(request.reply, type, api_error(err::kStreamNotFound));
    return std::nullopt;
  }
  auto body = body_of(request);
  if (!body) {
    respond_error(request.reply, type, body.error());
    return std::nullopt;
  }
  return StreamRequest{std::move(*topic), std::move(*body)};
}

void Api::stream_purge(const Request& request, std::string_view name) {
  if (!allowed(request, auth::Operation::admin, name)) {
    return respond_error(request.reply, "stream_purge", forbidden(name));
  }
  const auto stream = stream_request(request, name, "stream_purge");
  if (!stream) return;
  const auto& topic = stream->topic;
  const auto& body = stream->body;
  broker::PurgeRequest purge;
  if (const auto seq = uint_field(body, "seq")) {
    purge.before = Offset{*seq == 0 ? 0 : *seq - 1};  // "up to, not including, seq"
  }
  if (const auto keep = uint_field(body, "keep")) purge.keep = *keep;
  if (purge.before && purge.keep) {
    return respond_error(request.reply, "stream_purge",
                         api_error(err::kBadRequest, "can not specify both sequence and keep"));
  }
  auto done = [this, reply = request.reply, turn = hold()](Result<broker::PurgeResult> r) {
    post([this, reply, turn, r = std::move(r)] { purged(reply, r); });
  };
  if (const auto filter = string_field(body, "filter"); !filter.empty()) {
    // A filter that covers every subject of the stream is a purge from the front (one prefix
    // delete); any other deletes the matching messages from the middle of the topic.
    bool covers = true;
    for (const auto& s : stream_subjects(topic)) covers = covers && filter == s;
    if (!covers && filter != ">") {
      broker::SubjectPurgeRequest by_subject{filter, purge.before, purge.keep};
      return broker_.purge_subject(std::string(name), std::move(by_subject), std::move(done));
    }
  }
  broker_.purge_topic(std::string(name), purge, std::move(done));
}

void Api::purged(std::string_view reply, const Result<broker::PurgeResult>& r) {
  if (!r)
    return respond_error(reply, "stream_purge", from_broker(r.error(), err::kStreamPurgeFailed));
  boost::json::object out;
  out["type"] = response_type("stream_purge");
  out["success"] = true;
  out["purged"] = r->purged;
  respond(reply, boost::json::serialize(out));
}

// As nats-server 2.9.10 answers (checked with nats.js, tests/nats scenario js_holes): seq 0 or
// none, or one below the first (purged), is 10057 "no message found", a sequence past the last
// one 10057 "stream store EOF", a deleted one 400/10043 "sequence N not found". `no_erase` is
// taken and means nothing more: loft never overwrites a message's bytes, it deletes the key
// (the bytes stay on disk until a compaction drops them).
void Api::stream_msg_delete(const Request& request, std::string_view name) {
  static constexpr std::string_view kType = "stream_msg_delete";
  if (!allowed(request, auth::Operation::admin, name)) {
    return respond_error(request.reply, kType, forbidden(name));
  }
  const auto stream = stream_request(request, name, kType);
  if (!stream) return;
  const auto& topic = stream->topic;
  const auto& body = stream->body;
  const auto seq = uint_field(body, "seq").value_or(0);
  if (seq == 0) {
    return respond_error(request.reply, kType,
                         api_error(err::kStreamMsgDeleteFailed, "no message found"));
  }
  if (seq - 1 < topic.first_offset.value) {  // purged, or retention removed it
    return respond_error(request.reply, kType,
                         api_error(err::kStreamMsgDeleteFailed, "no message found"));
  }
  if (seq > topic.next_offset.value) {
    return respond_error(request.reply, kType,
                         api_error(err::kStreamMsgDeleteFailed, "stream store EOF"));
  }
  broker_.delete_messages(
      std::string(name), {Offset{seq - 1}},
      [this, reply = request.reply, seq, turn = hold()](Result<broker::DeleteResult> r) {
        post([this, reply, seq, turn, r = std::move(r)] {
          if (!r) {
            return respond_error(reply, kType, from_broker(r.error(), err::kStreamMsgDeleteFailed));
          }
          if (r->deleted == 0) {
            std::string text = "sequence ";
            text += std::to_string(seq);
            text += " not found";
            return respond_error(reply, kType, api_error(err::kSequenceNotFound, text));
          }
          boost::json::object out;
          out["type"] = response_type(kType);
          out["success"] = true;
          respond(reply, boost::json::serialize(out));
        });
      });
}

void Api::stream_msg_get(const Request& request, std::string_view name) {
  constexpr std::string_view kType = "stream_msg_get";
  if (!allowed(request, auth::Operation::admin, name) &&
      !allowed(request, auth::Operation::subscribe, name)) {
    return respond_error(request.reply, kType, forbidden(name));
  }
  const auto stream = stream_request(request, name, kType);
  if (!stream) return;
  const auto& topic = stream->topic;
  const auto& body = stream->body;
  const auto seq = uint_field(body, "seq");
  const auto last_by = string_field(body, "last_by_subj");
  const auto next_by = string_field(body, "next_by_subj");
  std::optional<StoredMessage> found;
  if (!next_by.empty() || !last_by.empty()) {
    const std::string& filter = next_by.empty() ? last_by : next_by;
    if (!is_valid_filter_subject(filter)) {
      return respond_error(request.reply, kType,
                           api_error(err::kBadRequest, "invalid subject: " + filter));
    }
    const auto next_from =
        next_by.empty() ? std::nullopt : std::optional<std::uint64_t>{seq.value_or(0)};
    auto scanned = scan_subject(broker_, topic, filter, next_from);
    if (!scanned) return respond_error(request.reply, kType, scanned.error());
    found = std::move(*scanned);
  } else if (seq && *seq > 0) {
    const Offset at{*seq - 1};
    if (at >= topic.first_offset && at < topic.next_offset) {
      auto f = broker_.fetch(topic.name, at, broker::ReadLimits{1, 1});
      if (f && !f->messages.empty() && f->messages.front().offset == at) {
        found = std::move(f->messages.front());
      }
    }
  } else {
    return respond_error(
        request.reply, kType,
        api_error(err::kBadRequest, "request must have seq, last_by_subj or next_by_subj"));
  }
  if (!found) return respond_error(request.reply, kType, api_error(err::kNoMessageFound));
  boost::json::object out;
  out["type"] = response_type(kType);
  out["message"] = stored_message_json(topic.name, *found);
  forget_audit(request.reply);  // nats-server 2.9.10 audits a MSG.GET's errors only
  respond(request.reply, boost::json::serialize(out));
}

}  // namespace loft::natsport::js
