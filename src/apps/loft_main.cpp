// loft: the command-line tool. Parses commands and flags, calls the client library, prints.

#include <algorithm>
#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <deque>
#include <future>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "bench.hpp"
#include "loft/client/client.hpp"
#include "loft/common/units.hpp"
#include "loft/common/version.hpp"
#include "loft/http/json.hpp"

namespace po = boost::program_options;
namespace json = boost::json;

namespace loft {
namespace {

using http::group_json;
using http::stall_text;
using http::topic_json;

constexpr const char* kUsage = R"(Usage: loft [--broker HOST:PORT] COMMAND [ARGS] [--json]

Commands:
  topic create NAME          create a topic
  topic delete NAME          delete a topic and all its messages
  topic list                 list topics
  topic describe NAME        show a topic's offsets, message count and size
  topic create NAME [--dedup-window DURATION] [--dedup-conflict duplicate|error]
                             how long message ids are remembered (default 2h), and what a
                             known id with a different payload gets
  topic create NAME [--max-age DURATION] [--max-bytes SIZE] [--max-messages N]
                             retention: the oldest messages past any limit are removed;
                             0 or none = unlimited; a limit not given is the broker's
                             default (retention_max_* in loftd.toml, unlimited unless set)
  topic alter NAME [--max-age DURATION] [--max-bytes SIZE] [--max-messages N]
                             change the limits given (0 or none = unlimited); others stay
  pub TOPIC [MESSAGE]        publish MESSAGE, or each line of standard input as one message
      [--id ID] [--key KEY] [--header K=V]...
      [--id-prefix PREFIX]   (standard input) line n gets id PREFIX-n: re-running stores
                             nothing twice; a duplicate prints its original offset and
                             'duplicate' ("duplicate":true with --json)
  fetch TOPIC [--offset N] [--max N]
                             print stored messages from offset N (a plain read, no group)
  sub TOPIC --group G        receive messages as a member of group G, ack each after printing
      [--from earliest|latest|OFFSET|@UNIX_MS] [--count N] [--max-in-flight N]
      [--ack-timeout DURATION] [--max-deliveries N] [--no-ack] [--idle-exit DURATION]
  group create TOPIC GROUP [--from ...] [--ack-timeout D] [--max-deliveries N]
  group list TOPIC
  group describe TOPIC GROUP
  group delete TOPIC GROUP
  group reset TOPIC GROUP --to earliest|latest|OFFSET|@UNIX_MS
  admin backup DIR           the broker copies its data directory into DIR (a new directory,
                             an absolute path on the broker's machine) while it keeps
                             serving; start loftd with --data-dir DIR to restore
  dlq redrive DLQ_TOPIC [--group G]
                             publish DLQ_TOPIC's dead letters back to their loft-dlq-topic,
                             without the loft-dlq-* headers (key, other headers and payload
                             kept) and with the id redrive:<hash of DLQ_TOPIC>:<offset>[:<id>]
                             (the original id is still known to the topic's dedup). With
                             --group only G's letters; the rest are skipped. Progress is kept
                             in group loft-redrive (loft-redrive.G): a rerun handles only new
                             letters, and a letter redriven again (another filter, or a crash
                             between publish and ack) is a duplicate, not a second copy, within
                             the topic's dedup window. Exits after 1s without new letters.
  bench publish [--messages N | --duration D] [--size BYTES] [--batch B] [--window W]
      [--producers P] [--ids]
                             publish to a fresh topic; confirm latency per request
  bench consume [--messages N] [--size BYTES] [--consumers C] [--max-in-flight M]
                             fill a fresh topic, then drain it with one group, acking each
                             message
  bench e2e [--rate R] [--duration D] [--size BYTES]
                             publish at R msg/s while a consumer acks; publish-to-delivery
                             latency
  bench storage [--messages N] [--size BYTES] [--batch B] [--window W] [--ids]
      [--durability fsync|os] [--data-dir DIR]
                             the same appends through loft's storage and group-commit writer,
                             no network (a temporary data dir unless --data-dir)
  bench ... [--keep]         keep the bench topic (and data dir) afterwards. Defaults: 1000000
                             messages of 100 bytes, --batch 100 --window 10, e2e 10000 msg/s
                             for 10s. --json: one object with every parameter and figure
                             (msgs_per_sec, mb_per_sec, p50_us, p99_us, p999_us, max_us)

Global options:
  --broker HOST:PORT         broker address (default 127.0.0.1:7450)
  --json                     print JSON instead of text
  --help, --version
)";

// A failure to report: one line on stderr, then exit with `status`.
struct Failure {
  std::string message;
  int status = 1;
};

[[noreturn]] void usage_error(const std::string& message) {
  throw Failure{message + " (see loft --help)", 2};
}

template <class T>
T check(Result<T> r) {
  if (!r) throw Failure{r.error().to_string(), 1};
  if constexpr (!std::is_void_v<T>) return std::move(*r);
}

struct Common {
  client::Options options;
  bool json = false;
  std::vector<std::string> words;  // positional words, command included
  po::variables_map vm;
};

// An unsigned flag value in [min, max]; "-1" or "12x" is a usage error, not a huge number.
std::uint64_t number_flag(const Common& c, const char* flag, std::uint64_t min, std::uint64_t max) {
  const auto text = c.vm[flag].as<std::string>();
  std::uint64_t value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size() || value < min ||
      value > max) {
    usage_error(std::string("--") + flag + " must be a whole number from " + std::to_string(min) +
                " to " + std::to_string(max) + ", got '" + text + "'");
  }
  return value;
}

// A retention limit for text output: 0 is "unlimited".
std::string limit_text(std::uint64_t value, std::string (*format)(std::uint64_t)) {
  return value == 0 ? std::string("unlimited") : format(value);
}

void print_topic(const client::TopicInfo& t, bool as_json) {
  if (as_json) {
    std::cout << json::serialize(topic_json(t)) << "\n";
    return;
  }
  std::cout << "name:          " << t.name << "\n"
            << "first_offset:  " << t.first_offset.value << "\n"
            << "next_offset:   " << t.next_offset.value << "\n"
            << "messages:      " << t.messages << "\n"
            << "bytes:         " << t.bytes << "\n"
            << "created_at_ms: " << t.created_at_ms << "\n"
            << "dedup_window:  " << format_duration(std::chrono::milliseconds(t.dedup_window_ms))
            << "\n"
            << "dedup_conflict: "
            << (t.dedup_conflict == protocol::DedupConflict::error ? "error" : "duplicate") << "\n"
            << "max_age:       "
            << limit_text(
                   t.max_age_ms,
                   [](std::uint64_t ms) { return format_duration(std::chrono::milliseconds(ms)); })
            << "\n"
            << "max_bytes:     " << limit_text(t.max_bytes, format_size) << "\n"
            << "max_messages:  "
            << limit_text(t.max_messages, [](std::uint64_t n) { return std::to_string(n); })
            << "\n";
}

// --max-age, --max-bytes and --max-messages: the limits given ("none" or 0 = unlimited).
protocol::RetentionChange retention_flags(const Common& c) {
  protocol::RetentionChange change;
  const auto text = [&](const char* flag) -> std::optional<std::string> {
    if (!c.vm.count(flag)) return std::nullopt;
    return c.vm[flag].as<std::string>();
  };
  if (const auto v = text("max-age")) {
    if (*v == "none" || *v == "0") {
      change.max_age_ms = 0;
    } else {
      auto d = parse_duration(*v);
      if (!d) usage_error("--max-age: " + d.error().detail + " (or none/0 for unlimited)");
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*d).count();
      if (ms < 1000) usage_error("--max-age must be at least 1s, or none/0 for unlimited");
      change.max_age_ms = static_cast<std::uint64_t>(ms);
    }
  }
  if (const auto v = text("max-bytes")) {
    if (*v == "none") {
      change.max_bytes = 0;
    } else {
      auto n = parse_size(*v);
      if (!n) usage_error("--max-bytes: " + n.error().detail + " (or none/0 for unlimited)");
      change.max_bytes = *n;
    }
  }
  if (const auto v = text("max-messages")) {
    change.max_messages =
        *v == "none" ? 0
                     : number_flag(c, "max-messages", 0, std::numeric_limits<std::uint64_t>::max());
  }
  return change;
}

std::unique_ptr<client::Client> connect(const Common& c) {
  return check(client::Client::connect(c.options));
}

const std::string& word(const Common& c, std::size_t i, const char* what) {
  if (c.words.size() <= i) usage_error(std::string("missing ") + what);
  return c.words[i];
}

void expect_words(const Common& c, std::size_t n) {
  if (c.words.size() > n) usage_error("unexpected argument '" + c.words[n] + "'");
}

int topic_command(Common& c) {
  const auto& sub = word(c, 1, "topic command: create, alter, delete, list or describe");
  if (sub == "list") {
    expect_words(c, 2);
    const auto topics = check(connect(c)->list_topics());
    if (c.json) {
      json::array arr;
      for (const auto& t : topics) arr.push_back(topic_json(t));
      std::cout << json::serialize(arr) << "\n";
      return 0;
    }
    std::printf("%-40s %12s %14s %12s %12s\n", "NAME", "MESSAGES", "BYTES", "FIRST", "NEXT");
    for (const auto& t : topics) {
      std::printf("%-40s %12llu %14llu %12llu %12llu\n", t.name.c_str(),
                  static_cast<unsigned long long>(t.messages),
                  static_cast<unsigned long long>(t.bytes),
                  static_cast<unsigned long long>(t.first_offset.value),
                  static_cast<unsigned long long>(t.next_offset.value));
    }
    return 0;
  }
  const auto& name = word(c, 2, "topic name");
  expect_words(c, 3);
  if (sub == "create") {
    std::uint64_t window_ms = 0;
    if (c.vm.count("dedup-window")) {
      auto d = parse_duration(c.vm["dedup-window"].as<std::string>());
      if (!d) usage_error("--dedup-window: " + d.error().detail);
      window_ms = static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(*d).count());
      if (window_ms == 0) usage_error("--dedup-window must be at least 1s");
    }
    auto conflict = protocol::DedupConflict::duplicate;
    if (c.vm.count("dedup-conflict")) {
      const auto v = c.vm["dedup-conflict"].as<std::string>();
      if (v == "error") {
        conflict = protocol::DedupConflict::error;
      } else if (v != "duplicate") {
        usage_error("--dedup-conflict must be duplicate or error, got '" + v + "'");
      }
    }
    const auto t = check(connect(c)->create_topic(name, window_ms, conflict, retention_flags(c)));
    if (c.json) {
      print_topic(t, true);
    } else {
      std::cout << "created topic " << t.name << "\n";
    }
  } else if (sub == "alter") {
    if (c.vm.count("dedup-window") || c.vm.count("dedup-conflict")) {
      usage_error("dedup settings are fixed when a topic is created; alter changes retention");
    }
    const auto change = retention_flags(c);
    if (change.empty()) {
      usage_error("topic alter needs at least one of --max-age, --max-bytes, --max-messages");
    }
    const auto t = check(connect(c)->alter_topic(name, change));
    if (c.json) {
      print_topic(t, true);
    } else {
      std::cout << "altered topic " << t.name << "\n";
    }
  } else if (sub == "delete") {
    check(connect(c)->delete_topic(name));
    if (c.json) {
      std::cout << json::serialize(json::object{{"deleted", name}}) << "\n";
    } else {
      std::cout << "deleted topic " << name << "\n";
    }
  } else if (sub == "describe") {
    print_topic(check(connect(c)->describe_topic(name)), c.json);
  } else {
    usage_error("unknown topic command '" + sub + "'");
  }
  return 0;
}

void print_result(const client::PublishResult& r, bool as_json) {
  if (as_json) {
    std::cout << R"({"offset":)" << r.offset << R"(,"duplicate":)"
              << (r.duplicate ? "true" : "false") << "}\n";
  } else if (r.duplicate) {
    std::cout << r.offset << " duplicate\n";
  } else {
    std::cout << r.offset << "\n";
  }
}

// Checks every result of a confirmed batch and prints it; a per-message error stops.
void print_results(const std::vector<client::PublishResult>& results, std::size_t expected,
                   bool as_json) {
  if (results.size() != expected) throw Failure{"broker returned a wrong number of results", 1};
  for (const auto& r : results) {
    if (r.code != Errc::ok) {
      std::cout.flush();
      throw Failure{"message rejected: " + std::string(errc_text(r.code)), 1};
    }
    print_result(r, as_json);
  }
  std::cout.flush();
}

int pub_command(Common& c) {
  const auto& topic = word(c, 1, "topic name");
  Message base;
  base.key = c.vm.count("key") ? c.vm["key"].as<std::string>() : "";
  if (c.vm.count("header")) {
    for (const auto& kv : c.vm["header"].as<std::vector<std::string>>()) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) usage_error("--header needs K=V, got '" + kv + "'");
      base.headers.push_back({kv.substr(0, eq), kv.substr(eq + 1)});
    }
  }
  const std::string id = c.vm.count("id") ? c.vm["id"].as<std::string>() : "";
  const std::string id_prefix = c.vm.count("id-prefix") ? c.vm["id-prefix"].as<std::string>() : "";
  if (!id_prefix.empty() && c.words.size() >= 3) {
    usage_error("--id-prefix is for standard input; give one message an id with --id");
  }
  auto cl = connect(c);

  if (c.words.size() >= 3) {
    expect_words(c, 3);
    Message m = base;
    m.id = id;
    m.payload = c.words[2];
    print_results({check(cl->publish(topic, std::move(m)))}, 1, c.json);
    return 0;
  }
  if (!id.empty()) usage_error("--id needs a MESSAGE argument (standard input has many messages)");

  // Standard input: batches of lines, a window of batches in flight, results printed in
  // input order as soon as they are confirmed.
  const auto& limits = cl->server().limits;
  const std::size_t batch_messages = number_flag(c, "batch", 1, 1'000'000);
  const std::size_t window = number_flag(c, "window", 1, 4096);
  const std::size_t batch_bytes = limits.max_frame_size / 2;
  struct InFlight {
    std::future<Result<std::vector<client::PublishResult>>> reply;
    std::size_t count;
  };
  std::deque<InFlight> inflight;
  auto complete_front = [&] {
    auto& f = inflight.front();
    if (f.reply.wait_for(c.options.request_timeout) != std::future_status::ready) {
      std::cout.flush();
      throw Failure{"no confirm from the broker within " +
                        std::to_string(c.options.request_timeout.count()) + "ms",
                    1};
    }
    print_results(check(f.reply.get()), f.count, c.json);
    inflight.pop_front();
  };

  std::vector<Message> batch;
  std::size_t bytes = 0;
  std::size_t line_no = 0;
  auto flush_batch = [&] {
    if (batch.empty()) return;
    const auto n = batch.size();
    inflight.push_back({cl->publish_async(topic, std::move(batch)), n});
    batch.clear();
    bytes = 0;
    while (!inflight.empty() &&
           (inflight.size() > window || inflight.front().reply.wait_for(std::chrono::seconds(0)) ==
                                            std::future_status::ready)) {
      complete_front();
    }
  };
  std::string line;
  while (std::getline(std::cin, line)) {
    ++line_no;
    if (line.size() > limits.message.max_message_size) {
      while (!inflight.empty()) complete_front();
      throw Failure{"line " + std::to_string(line_no) + " is " + std::to_string(line.size()) +
                        " bytes, over the broker's max_message_size of " +
                        std::to_string(limits.message.max_message_size),
                    1};
    }
    Message m = base;
    m.payload = std::move(line);
    // Line n gets the id PREFIX-n, so re-running the same import stores nothing twice.
    if (!id_prefix.empty()) m.id = id_prefix + "-" + std::to_string(line_no);
    bytes += m.size_bytes() + 64;
    batch.push_back(std::move(m));
    if (batch.size() >= batch_messages || bytes >= batch_bytes) flush_batch();
  }
  flush_batch();
  while (!inflight.empty()) complete_front();
  return 0;
}

int fetch_command(Common& c) {
  const auto& topic = word(c, 1, "topic name");
  expect_words(c, 2);
  auto cl = connect(c);
  std::uint64_t offset = number_flag(c, "offset", 0, UINT64_MAX);
  std::uint64_t remaining = number_flag(c, "max", 0, UINT64_MAX);
  while (remaining > 0) {
    const auto chunk = static_cast<std::uint32_t>(std::min<std::uint64_t>(remaining, 1000));
    const auto got = check(cl->fetch(topic, offset, chunk));
    if (got.messages.empty()) break;
    for (const auto& m : got.messages) {
      if (c.json) {
        json::object headers;
        for (const auto& h : m.message.headers) headers[h.name] = h.value;
        json::object o{{"offset", m.offset.value},
                       {"timestamp_ms", m.timestamp_ms},
                       {"id", m.message.id},
                       {"key", m.message.key},
                       {"headers", std::move(headers)},
                       {"payload", m.message.payload}};
        std::cout << json::serialize(o) << "\n";
      } else {
        std::cout << m.offset.value << "\t" << m.message.payload << "\n";
      }
      offset = m.offset.value + 1;
      --remaining;
    }
  }
  return 0;
}

// --from / --to: earliest, latest, an offset, or @UNIX_MS (the first message published then or
// later).
protocol::StartPosition parse_position(const std::string& text, const char* flag) {
  if (text == "earliest") return {protocol::StartKind::earliest, 0};
  if (text == "latest") return {protocol::StartKind::latest, 0};
  const bool at = !text.empty() && text[0] == '@';
  const std::string digits = at ? text.substr(1) : text;
  std::uint64_t value = 0;
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc{} || ptr != digits.data() + digits.size()) {
    usage_error(std::string("--") + flag +
                " must be earliest, latest, an offset or @UNIX_MS, got '" + text + "'");
  }
  return {at ? protocol::StartKind::timestamp : protocol::StartKind::offset, value};
}

std::uint32_t duration_ms(const Common& c, const char* flag) {
  if (!c.vm.count(flag)) return 0;
  auto d = parse_duration(c.vm[flag].as<std::string>());
  if (!d) usage_error(std::string("--") + flag + ": " + d.error().detail);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*d).count();
  if (ms <= 0 || ms > 0xFFFFFFF0) usage_error(std::string("--") + flag + " is out of range");
  return static_cast<std::uint32_t>(ms);
}

protocol::GroupConfig group_config(const Common& c) {
  protocol::GroupConfig config;
  config.ack_timeout_ms = duration_ms(c, "ack-timeout");
  if (c.vm.count("max-deliveries"))
    config.max_deliveries =
        static_cast<std::uint32_t>(number_flag(c, "max-deliveries", 1, 1'000'000));
  return config;
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80           ? 1
                    : (c >> 5) == 0x6  ? 2
                    : (c >> 4) == 0xE  ? 3
                    : (c >> 3) == 0x1E ? 4
                                       : 0;
    if (n == 0 || i + n > s.size()) return false;
    std::uint32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (std::size_t k = 1; k < n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      return false;
    }
    i += n;
  }
  return true;
}

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const std::uint32_t v = (static_cast<unsigned char>(in[i]) << 16) |
                            (static_cast<unsigned char>(in[i + 1]) << 8) |
                            static_cast<unsigned char>(in[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out += kAlphabet[(v >> k) & 0x3F];
  }
  if (i < in.size()) {
    std::uint32_t v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 0x3F];
    out += kAlphabet[(v >> 12) & 0x3F];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 0x3F] : '=';
    out += '=';
  }
  return out;
}

// Puts `value` under `name` when it is UTF-8 text, otherwise base64 under `name`_base64.
void put_bytes(json::object& o, const std::string& name, const std::string& value) {
  if (valid_utf8(value)) {
    o[name] = value;
  } else {
    o[name + "_base64"] = base64(value);
  }
}

json::object delivered_json(const client::DeliveredMessage& m) {
  json::object headers;
  json::object headers_b64;
  for (const auto& h : m.message.headers) {
    if (valid_utf8(h.value)) {
      headers[h.name] = h.value;
    } else {
      headers_b64[h.name] = base64(h.value);
    }
  }
  json::object o{{"offset", m.offset}, {"attempt", m.attempt}};
  put_bytes(o, "id", m.message.id);
  put_bytes(o, "key", m.message.key);
  o["timestamp_ms"] = m.timestamp_ms;
  o["headers"] = std::move(headers);
  if (!headers_b64.empty()) o["headers_base64"] = std::move(headers_b64);
  put_bytes(o, "payload", m.message.payload);
  return o;
}

int sub_command(Common& c) {
  const auto& topic = word(c, 1, "topic name");
  expect_words(c, 2);
  if (!c.vm.count("group")) usage_error("sub needs --group G");
  client::SubscribeOptions options;
  options.topic = topic;
  options.group = c.vm["group"].as<std::string>();
  if (c.vm.count("from")) options.start = parse_position(c.vm["from"].as<std::string>(), "from");
  if (c.vm.count("max-in-flight")) {
    options.max_in_flight =
        static_cast<std::uint32_t>(number_flag(c, "max-in-flight", 1, 1'000'000));
  }
  options.config = group_config(c);
  const bool no_ack = c.vm.count("no-ack") > 0;
  const std::uint64_t count = c.vm.count("count") ? number_flag(c, "count", 1, UINT64_MAX) : 0;
  const std::uint32_t idle_ms = duration_ms(c, "idle-exit");
  if (count > 0) {
    // Take no more than it will print: messages it held unprinted at exit would go back to
    // the group as redeliveries.
    const auto cap = static_cast<std::uint32_t>(std::min<std::uint64_t>(count, 1000));
    options.max_in_flight = options.max_in_flight ? std::min(options.max_in_flight, cap) : cap;
  }
  auto cl = connect(c);
  auto sub = check(cl->subscribe(options));
  std::uint64_t received = 0;
  auto last_message = std::chrono::steady_clock::now();
  while (count == 0 || received < count) {
    const auto batch =
        check(sub->receive(std::chrono::milliseconds(200),
                           count ? static_cast<std::size_t>(count - received) : std::size_t{1000}));
    if (batch.empty()) {
      if (idle_ms > 0 &&
          std::chrono::steady_clock::now() - last_message >= std::chrono::milliseconds(idle_ms)) {
        break;
      }
      continue;
    }
    last_message = std::chrono::steady_clock::now();
    for (const auto& m : batch) {
      if (c.json) {
        std::cout << json::serialize(delivered_json(m)) << "\n";
      } else {
        std::cout << m.offset << "\t" << m.message.payload << "\n";
      }
    }
    std::cout.flush();
    // Ack what was printed, and wait for the broker to take it before reading on: at most
    // one batch is ever printed but not acked.
    if (!no_ack) {
      for (const auto& m : batch) sub->ack(m.offset);
      check(sub->flush());
    }
    received += batch.size();
  }
  check(sub->unsubscribe());
  return 0;
}

void print_group(const client::GroupInfo& g, bool as_json) {
  if (as_json) {
    std::cout << json::serialize(group_json(g)) << "\n";
    return;
  }
  std::cout << "topic:             " << g.topic << "\n"
            << "group:             " << g.group << "\n"
            << "ack_floor:         " << g.ack_floor << "\n"
            << "end:               " << g.end << "\n"
            << "lag:               " << g.lag << "\n"
            << "in_flight:         " << g.in_flight << "\n"
            << "scheduled:         " << g.scheduled << "\n"
            << "dead_lettered:     " << g.dead_lettered << "\n"
            << "redelivered:       " << g.redelivered << "\n"
            << "skipped:           " << g.skipped << "\n"
            << "dead_letter_topic: " << g.config.dead_letter_topic << "\n"
            << "consumers:         " << g.consumers.size() << "\n";
  for (const auto& c : g.consumers) {
    std::cout << "  subscription " << c.subscription << " (" << c.client_name << "): in_flight "
              << c.in_flight << "/" << c.max_in_flight;
    if (c.stalled != protocol::StallReason::none)
      std::cout << ", stalled: " << stall_text(c.stalled);
    std::cout << "\n";
  }
}

int group_command(Common& c) {
  const auto& sub = word(c, 1, "group command: create, list, describe, delete or reset");
  const auto& topic = word(c, 2, "topic name");
  if (sub == "list") {
    expect_words(c, 3);
    const auto groups = check(connect(c)->list_groups(topic));
    if (c.json) {
      json::array arr;
      for (const auto& g : groups) arr.push_back(group_json(g));
      std::cout << json::serialize(arr) << "\n";
      return 0;
    }
    std::printf("%-40s %12s %12s %10s %10s\n", "GROUP", "ACK_FLOOR", "LAG", "IN_FLIGHT",
                "CONSUMERS");
    for (const auto& g : groups) {
      std::printf("%-40s %12llu %12llu %10llu %10zu\n", g.group.c_str(),
                  static_cast<unsigned long long>(g.ack_floor),
                  static_cast<unsigned long long>(g.lag),
                  static_cast<unsigned long long>(g.in_flight), g.consumers.size());
    }
    return 0;
  }
  const auto& group = word(c, 3, "group name");
  expect_words(c, 4);
  if (sub == "create") {
    protocol::StartPosition start;
    if (c.vm.count("from")) start = parse_position(c.vm["from"].as<std::string>(), "from");
    const auto g = check(connect(c)->create_group(topic, group, start, group_config(c)));
    if (c.json) {
      print_group(g, true);
    } else {
      std::cout << "created group " << group << " of topic " << topic << " at offset "
                << g.ack_floor << "\n";
    }
  } else if (sub == "describe") {
    print_group(check(connect(c)->describe_group(topic, group)), c.json);
  } else if (sub == "delete") {
    check(connect(c)->delete_group(topic, group));
    if (c.json) {
      std::cout << json::serialize(json::object{{"deleted", group}}) << "\n";
    } else {
      std::cout << "deleted group " << group << " of topic " << topic << "\n";
    }
  } else if (sub == "reset") {
    if (!c.vm.count("to")) usage_error("group reset needs --to earliest|latest|OFFSET|@UNIX_MS");
    const auto g = check(
        connect(c)->reset_group(topic, group, parse_position(c.vm["to"].as<std::string>(), "to")));
    if (c.json) {
      print_group(g, true);
    } else {
      std::cout << "group " << group << " of topic " << topic << " now at offset " << g.ack_floor
                << "\n";
    }
  } else {
    usage_error("unknown group command '" + sub + "'");
  }
  return 0;
}

// A dead letter split into what loftd added and the original message. loftd appends
// loft-dlq-topic and then the other loft-dlq-* headers; a letter dead-lettered again from a
// DLQ carries two such sets, and only the last one belongs to this DLQ, so the set starts at
// the last loft-dlq-topic header.
struct DeadLetter {
  std::string topic;  // where the original was published: the redrive target
  std::string group;  // the group that gave up on it
  Message original;
};

std::optional<DeadLetter> parse_dead_letter(Message m) {
  auto& headers = m.headers;
  const auto last_topic = std::find_if(headers.rbegin(), headers.rend(),
                                       [](const Header& h) { return h.name == "loft-dlq-topic"; });
  if (last_topic == headers.rend()) return std::nullopt;
  const auto first = std::prev(last_topic.base());
  DeadLetter letter;
  letter.topic = first->value;
  for (auto it = first; it != headers.end(); ++it) {
    if (it->name == "loft-dlq-group") letter.group = it->value;
  }
  headers.erase(std::remove_if(first, headers.end(),
                               [](const Header& h) { return h.name.starts_with("loft-dlq-"); }),
                headers.end());
  letter.original = std::move(m);
  return letter;
}

// The id a redriven message is published with. Not the original's: the topic still knows that
// one (within its dedup window) and would answer the redrive as a duplicate. It names the dead
// letter instead (a stable hash of the DLQ topic and the letter's offset, then the original
// id), so a redrive that is run again after a crash between publish and ack stores it once.
std::string redrive_id(std::string_view dlq_topic, std::uint64_t dlq_offset,
                       std::string_view original_id, std::size_t max_size) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a, 64 bits: stable across builds
  for (const char ch : dlq_topic) {
    h ^= static_cast<unsigned char>(ch);
    h *= 1099511628211ULL;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  std::string id = "redrive:" + std::string(hex) + ":" + std::to_string(dlq_offset);
  if (!original_id.empty()) {
    id += ":";
    id += original_id;
  }
  if (id.size() > max_size) id.resize(max_size);
  return id;
}

int dlq_command(Common& c) {
  const auto& sub = word(c, 1, "dlq command: redrive");
  if (sub != "redrive") usage_error("unknown dlq command '" + sub + "'");
  const auto& dlq_topic = word(c, 2, "dead-letter topic name");
  expect_words(c, 3);
  const bool filter = c.vm.count("group") > 0;
  const std::string only_group = filter ? c.vm["group"].as<std::string>() : "";
  if (filter && only_group.empty()) usage_error("--group needs a group name");
  client::SubscribeOptions options;
  options.topic = dlq_topic;
  // One redrive group per filter: its progress is what makes a rerun skip redriven letters.
  options.group = filter ? "loft-redrive." + only_group : "loft-redrive";
  options.start = {protocol::StartKind::earliest, 0};
  options.max_in_flight = 10'000;
  auto cl = connect(c);
  auto subscription = check(cl->subscribe(options));
  const std::size_t batch_bytes = cl->server().limits.max_frame_size / 2;
  constexpr auto kIdle = std::chrono::seconds(1);

  std::uint64_t redriven = 0;
  std::uint64_t skipped = 0;
  auto last_letter = std::chrono::steady_clock::now();
  while (true) {
    auto letters = check(subscription->receive(std::chrono::milliseconds(200), 1000));
    if (letters.empty()) {
      if (std::chrono::steady_clock::now() - last_letter >= kIdle) break;
      continue;
    }
    last_letter = std::chrono::steady_clock::now();
    // Offsets of letters that are done with: redriven (publish confirmed) or skipped. Acked
    // only after the publishes, so a crash in between redrives a letter twice, never loses it.
    std::vector<std::uint64_t> settled;
    // Before failing, settle what is done, so a rerun does not redrive it again.
    auto fail = [&](std::string message) {
      if (!settled.empty()) {
        std::ignore = subscription->ack_confirmed(settled);  // best effort: failing anyway
      }
      throw Failure{std::move(message), 1};
    };
    // Consecutive letters for the same topic go out as one publish.
    std::string target;
    std::vector<Message> run;
    std::vector<std::uint64_t> run_offsets;
    std::size_t run_bytes = 0;
    auto publish_run = [&] {
      if (run.empty()) return;
      const auto n = run.size();
      auto results = cl->publish(target, std::move(run));
      run.clear();
      run_bytes = 0;
      if (!results) fail("redrive to '" + target + "' failed: " + results.error().to_string());
      if (results->size() != n) fail("broker returned a wrong number of results");
      for (const auto& r : *results) {
        if (r.code != Errc::ok) {
          fail("redrive to '" + target + "' rejected: " + std::string(errc_text(r.code)));
        }
      }
      settled.insert(settled.end(), run_offsets.begin(), run_offsets.end());
      run_offsets.clear();
      redriven += n;
    };
    for (auto& m : letters) {
      auto letter = parse_dead_letter(std::move(m.message));
      if (!letter) {
        publish_run();
        fail("dead letter at offset " + std::to_string(m.offset) + " of '" + dlq_topic +
             "' has no loft-dlq-topic header");
      }
      if (filter && letter->group != only_group) {
        settled.push_back(m.offset);
        ++skipped;
        continue;
      }
      const std::size_t bytes = letter->original.size_bytes() + 64;
      if (letter->topic != target || run_bytes + bytes > batch_bytes) {
        publish_run();
        target = letter->topic;
      }
      run_bytes += bytes;
      letter->original.id = redrive_id(dlq_topic, m.offset, letter->original.id,
                                       cl->server().limits.message.max_id_size);
      run.push_back(std::move(letter->original));
      run_offsets.push_back(m.offset);
    }
    publish_run();
    check(subscription->ack_confirmed(std::move(settled)));
  }
  check(subscription->unsubscribe());
  if (c.json) {
    std::cout << json::serialize(json::object{{"redriven", redriven}, {"skipped", skipped}})
              << "\n";
  } else {
    std::cout << "redriven " << redriven << ", skipped " << skipped << "\n";
  }
  return 0;
}

int bench_command(Common& c) {
  const auto mode =
      apps::bench::parse_mode(word(c, 1, "bench mode: publish, consume, e2e or storage"));
  if (!mode) usage_error(mode.error().detail);
  expect_words(c, 2);
  const auto given = [&](const char* flag) { return c.vm.count(flag) && !c.vm[flag].defaulted(); };
  for (const auto* flag :
       {"messages", "duration", "size", "batch", "window", "producers", "ids", "consumers",
        "max-in-flight", "rate", "data-dir", "durability", "keep"}) {
    if (given(flag) && !apps::bench::flag_applies(*mode, flag)) {
      usage_error(std::string("--") + flag + " does not apply to 'loft bench " +
                  std::string(apps::bench::to_string(*mode)) + "'");
    }
  }
  apps::bench::Params p;
  p.mode = *mode;
  if (given("messages") && given("duration"))
    usage_error("give --messages or --duration, not both");
  if (given("messages")) p.messages = number_flag(c, "messages", 1, 100'000'000'000);
  if (given("duration")) p.duration = std::chrono::milliseconds(duration_ms(c, "duration"));
  if (p.mode == apps::bench::Mode::e2e && !given("duration")) p.duration = std::chrono::seconds(10);
  if (given("size")) p.size = number_flag(c, "size", 0, 64 << 20);
  if (given("batch")) p.batch = number_flag(c, "batch", 1, 1'000'000);
  if (given("window")) p.window = number_flag(c, "window", 1, 4096);
  if (given("producers")) p.producers = number_flag(c, "producers", 1, 256);
  if (given("consumers")) p.consumers = number_flag(c, "consumers", 1, 256);
  if (given("max-in-flight")) {
    p.max_in_flight = static_cast<std::uint32_t>(number_flag(c, "max-in-flight", 1, 1'000'000));
  }
  if (given("rate")) p.rate = number_flag(c, "rate", 1, 10'000'000);
  p.ids = given("ids");
  p.keep = given("keep");
  if (given("data-dir")) p.data_dir = c.vm["data-dir"].as<std::string>();
  if (given("durability")) {
    const auto d = c.vm["durability"].as<std::string>();
    if (d != "fsync" && d != "os") usage_error("--durability must be fsync or os, got '" + d + "'");
    p.durability = d == "os" ? storage::Durability::os : storage::Durability::fsync;
  }
  if (auto ok = apps::bench::validate(p); !ok) usage_error(ok.error().detail);
  const auto report = check(apps::bench::run(p, c.options));
  if (c.json) {
    std::cout << json::serialize(report) << "\n";
  } else {
    apps::bench::print_table(report, std::cout);
  }
  return 0;
}

int admin_command(Common& c) {
  const auto& sub = word(c, 1, "admin command: backup");
  if (sub != "backup") usage_error("unknown admin command '" + sub + "'");
  const auto& dir = word(c, 2, "backup directory");
  expect_words(c, 3);
  // A backup flushes and copies files while loftd keeps serving: give it time.
  c.options.request_timeout = std::chrono::minutes(30);
  const auto done = check(connect(c)->backup(dir));
  if (c.json) {
    std::cout << json::serialize(json::object{{"backup", done}}) << "\n";
  } else {
    std::cout << "backup written to " << done << "\n";
  }
  return 0;
}

int run(int argc, char** argv) {
  po::options_description global("Global options");
  // clang-format off
  global.add_options()
    ("help,h", "")
    ("version", "")
    ("broker", po::value<std::string>()->default_value("127.0.0.1:7450"), "")
    ("json", "");
  po::options_description cmd("Command options");
  cmd.add_options()
    ("id", po::value<std::string>(), "")
    ("id-prefix", po::value<std::string>(), "")
    ("dedup-window", po::value<std::string>(), "")
    ("dedup-conflict", po::value<std::string>(), "")
    ("max-age", po::value<std::string>(), "")
    ("max-bytes", po::value<std::string>(), "")
    ("max-messages", po::value<std::string>(), "")
    ("key", po::value<std::string>(), "")
    ("header", po::value<std::vector<std::string>>()->composing(), "")
    ("batch", po::value<std::string>()->default_value("1000"), "")
    ("window", po::value<std::string>()->default_value("16"), "")
    ("offset", po::value<std::string>()->default_value("0"), "")
    ("max", po::value<std::string>()->default_value("100"), "")
    ("group", po::value<std::string>(), "")
    ("from", po::value<std::string>(), "")
    ("to", po::value<std::string>(), "")
    ("count", po::value<std::string>(), "")
    ("max-in-flight", po::value<std::string>(), "")
    ("ack-timeout", po::value<std::string>(), "")
    ("max-deliveries", po::value<std::string>(), "")
    ("no-ack", "")
    ("idle-exit", po::value<std::string>(), "")
    ("messages", po::value<std::string>(), "")
    ("duration", po::value<std::string>(), "")
    ("size", po::value<std::string>(), "")
    ("producers", po::value<std::string>(), "")
    ("ids", "")
    ("consumers", po::value<std::string>(), "")
    ("rate", po::value<std::string>(), "")
    ("data-dir", po::value<std::string>(), "")
    ("durability", po::value<std::string>(), "")
    ("keep", "")
    ("words", po::value<std::vector<std::string>>(), "");
  // clang-format on
  po::options_description all;
  all.add(global).add(cmd);
  po::positional_options_description pos;
  pos.add("words", -1);

  Common c;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), c.vm);
    po::notify(c.vm);
  } catch (const po::error& e) {
    usage_error(e.what());
  }
  if (c.vm.count("help")) {
    std::cout << kUsage;
    return 0;
  }
  if (c.vm.count("version")) {
    std::cout << "loft " << kVersion << "\n";
    return 0;
  }
  check(client::parse_broker_address(c.vm["broker"].as<std::string>(), c.options));
  c.options.client_name = std::string("loft-cli ") + kVersion;
  c.json = c.vm.count("json") > 0;
  if (c.vm.count("words")) c.words = c.vm["words"].as<std::vector<std::string>>();
  if (c.words.empty()) usage_error("missing command");
  const auto& command = c.words[0];
  // Flags that only make sense with `pub` or `fetch` are refused elsewhere, not ignored.
  auto only_for = [&](const char* flag, std::initializer_list<std::string_view> which) {
    if (!c.vm.count(flag) || c.vm[flag].defaulted()) return;
    for (const auto w : which) {
      if (command == w) return;
    }
    usage_error(std::string("--") + flag + " only applies to 'loft " + std::string(*which.begin()) +
                "'");
  };
  for (const auto* flag : {"id", "id-prefix", "key", "header"}) only_for(flag, {"pub"});
  for (const auto* flag : {"batch", "window"}) only_for(flag, {"pub", "bench"});
  for (const auto* flag : {"messages", "duration", "size", "producers", "ids", "consumers", "rate",
                           "data-dir", "durability", "keep"}) {
    only_for(flag, {"bench"});
  }
  for (const auto* flag :
       {"dedup-window", "dedup-conflict", "max-age", "max-bytes", "max-messages"})
    only_for(flag, {"topic"});
  for (const auto* flag : {"offset", "max"}) only_for(flag, {"fetch"});
  only_for("group", {"sub", "dlq"});
  for (const auto* flag : {"count", "no-ack", "idle-exit"}) only_for(flag, {"sub"});
  only_for("max-in-flight", {"sub", "bench"});
  for (const auto* flag : {"from", "ack-timeout", "max-deliveries"})
    only_for(flag, {"sub", "group"});
  only_for("to", {"group"});
  if (command == "topic") return topic_command(c);
  if (command == "pub") return pub_command(c);
  if (command == "fetch") return fetch_command(c);
  if (command == "sub") return sub_command(c);
  if (command == "group") return group_command(c);
  if (command == "dlq") return dlq_command(c);
  if (command == "bench") return bench_command(c);
  if (command == "admin") return admin_command(c);
  usage_error("unknown command '" + command + "'");
}

}  // namespace
}  // namespace loft

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  try {
    return loft::run(argc, argv);
  } catch (const loft::Failure& f) {
    std::cout.flush();
    std::cerr << "loft: " << f.message << "\n";
    return f.status;
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << "loft: " << e.what() << "\n";
    return 1;
  }
}
