// loftd's HTTP endpoint against the real daemon on 127.0.0.1:0: HTTP publish (read back with
// `loft sub`, deduplicated by id), /metrics after a known workload (checked value by value and
// parsed with a strict Prometheus text-format parser), the /v1 JSON against `loft ... --json`,
// health, every error status, and the endpoint turned off.

#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "http_client.hpp"
#include "test_daemon.hpp"

namespace loft::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
namespace json = boost::json;

// ------------------------------------------------------------------ strict Prometheus parser
// The text exposition format, version 0.0.4: `# HELP name text`, `# TYPE name type`, samples
// `name{label="value",...} value`. Every sample must belong to a family declared by TYPE
// before it; histograms must have le-ordered cumulative buckets ending at +Inf, equal to
// _count, and a _sum. Counters must end in _total (the naming convention).

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct Parsed {
  std::map<std::string, std::string> types;  // family -> type
  std::map<std::string, std::string> help;
  std::vector<Sample> samples;
  std::string error;  // empty: the text is valid

  // The value of the one sample with this name and exactly these labels.
  std::optional<double> value(const std::string& name,
                              const std::map<std::string, std::string>& labels = {}) const {
    std::optional<double> found;
    for (const auto& s : samples) {
      if (s.name == name && s.labels == labels) found = s.value;
    }
    return found;
  }
};

bool valid_metric_name(const std::string& n) {
  static const std::regex re("[a-zA-Z_:][a-zA-Z0-9_:]*");
  return std::regex_match(n, re);
}
bool valid_label_name(const std::string& n) {
  static const std::regex re("[a-zA-Z_][a-zA-Z0-9_]*");
  return std::regex_match(n, re) && !n.starts_with("__");
}

std::optional<double> parse_float(const std::string& text) {
  if (text == "+Inf" || text == "Inf") return HUGE_VAL;
  if (text == "-Inf") return -HUGE_VAL;
  if (text == "NaN") return std::nan("");
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || errno == ERANGE) return std::nullopt;
  return v;
}

// The family a sample name belongs to: itself, or a histogram's base name.
std::string family_of(const std::string& name, const std::map<std::string, std::string>& types) {
  if (types.contains(name)) return name;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s(suffix);
    if (name.size() > s.size() && name.ends_with(s)) {
      const auto base = name.substr(0, name.size() - s.size());
      const auto it = types.find(base);
      if (it != types.end() && it->second == "histogram") return base;
    }
  }
  return "";
}

Parsed parse_prometheus(const std::string& text) {
  Parsed p;
  auto fail = [&](std::size_t line_no, const std::string& why, const std::string& line) {
    p.error = "line " + std::to_string(line_no) + ": " + why + ": " + line;
    return p;
  };
  if (!text.empty() && text.back() != '\n') return fail(0, "does not end with a newline", "");
  std::istringstream in(text);
  std::string line;
  std::size_t n = 0;
  std::set<std::string> seen_series;
  std::set<std::string> families_with_samples;
  std::string current_family;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    if (line.starts_with("#")) {
      std::istringstream ls(line);
      std::string hash, kind, name;
      ls >> hash >> kind >> name;
      if (kind != "HELP" && kind != "TYPE") continue;  // other comments are allowed
      if (!valid_metric_name(name)) return fail(n, "bad metric name in " + kind, line);
      std::string rest;
      std::getline(ls, rest);
      if (!rest.empty() && rest.front() == ' ') rest.erase(0, 1);
      if (kind == "HELP") {
        if (p.help.contains(name)) return fail(n, "second HELP", line);
        for (std::size_t i = 0; i < rest.size(); ++i) {
          if (rest[i] == '\\' &&
              (i + 1 >= rest.size() || (rest[i + 1] != '\\' && rest[i + 1] != 'n'))) {
            return fail(n, "bad escape in HELP", line);
          }
          if (rest[i] == '\\') ++i;
        }
        p.help[name] = rest;
      } else {
        static const std::set<std::string> kTypes{"counter", "gauge", "histogram", "summary",
                                                  "untyped"};
        if (!kTypes.contains(rest)) return fail(n, "unknown type", line);
        if (p.types.contains(name)) return fail(n, "second TYPE", line);
        if (families_with_samples.contains(name)) return fail(n, "TYPE after samples", line);
        if (rest == "counter" && !name.ends_with("_total")) {
          return fail(n, "counter name without _total", line);
        }
        p.types[name] = rest;
        current_family = name;
      }
      continue;
    }
    // A sample.
    Sample s;
    std::size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    if (!valid_metric_name(s.name)) return fail(n, "bad metric name", line);
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        std::size_t eq = line.find('=', i);
        if (eq == std::string::npos) return fail(n, "label without =", line);
        const auto label = line.substr(i, eq - i);
        if (!valid_label_name(label)) return fail(n, "bad label name '" + label + "'", line);
        i = eq + 1;
        if (i >= line.size() || line[i] != '"') return fail(n, "label value not quoted", line);
        ++i;
        std::string value;
        for (;;) {
          if (i >= line.size()) return fail(n, "unterminated label value", line);
          const char c = line[i++];
          if (c == '"') break;
          if (c == '\\') {
            if (i >= line.size()) return fail(n, "dangling escape", line);
            const char e = line[i++];
            if (e == '\\') {
              value += '\\';
            } else if (e == '"') {
              value += '"';
            } else if (e == 'n') {
              value += '\n';
            } else {
              return fail(n, "bad escape in label value", line);
            }
          } else {
            value += c;
          }
        }
        if (s.labels.contains(label)) return fail(n, "repeated label", line);
        s.labels[label] = value;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size()) return fail(n, "unterminated label set", line);
      ++i;  // '}'
    }
    if (i >= line.size() || line[i] != ' ') return fail(n, "no space before the value", line);
    ++i;
    std::string rest = line.substr(i);
    std::string value_text = rest.substr(0, rest.find(' '));
    if (rest.find(' ') != std::string::npos) {
      const auto ts = rest.substr(rest.find(' ') + 1);
      if (!std::regex_match(ts, std::regex("-?[0-9]+"))) return fail(n, "bad timestamp", line);
    }
    const auto v = parse_float(value_text);
    if (!v) return fail(n, "bad value '" + value_text + "'", line);
    s.value = *v;
    const auto family = family_of(s.name, p.types);
    if (family.empty()) return fail(n, "sample without a TYPE", line);
    if (family != current_family) return fail(n, "sample away from its family", line);
    families_with_samples.insert(family);
    std::string series = s.name;
    for (const auto& [k, val] : s.labels) series += "|" + k + "=" + val;
    if (!seen_series.insert(series).second) return fail(n, "duplicate series", line);
    p.samples.push_back(std::move(s));
  }
  // Histograms: per label set (without le), buckets ordered by le, cumulative, +Inf = _count.
  for (const auto& [family, type] : p.types) {
    if (type != "histogram") continue;
    std::map<std::map<std::string, std::string>, std::vector<std::pair<double, double>>> buckets;
    for (const auto& s : p.samples) {
      if (s.name != family + "_bucket") continue;
      auto labels = s.labels;
      if (!labels.contains("le")) return fail(0, family + ": bucket without le", "");
      const auto le = parse_float(labels["le"]);
      if (!le) return fail(0, family + ": bad le '" + labels["le"] + "'", "");
      labels.erase("le");
      buckets[labels].emplace_back(*le, s.value);
    }
    if (buckets.empty()) return fail(0, family + ": histogram without buckets", "");
    for (const auto& [labels, list] : buckets) {
      for (std::size_t i = 1; i < list.size(); ++i) {
        if (!(list[i].first > list[i - 1].first))
          return fail(0, family + ": le not increasing", "");
        if (list[i].second < list[i - 1].second)
          return fail(0, family + ": buckets not cumulative", "");
      }
      if (!std::isinf(list.back().first)) return fail(0, family + ": no le=\"+Inf\" bucket", "");
      const auto count = p.value(family + "_count", labels);
      if (!count || *count != list.back().second) return fail(0, family + ": +Inf != _count", "");
      if (!p.value(family + "_sum", labels)) return fail(0, family + ": no _sum", "");
    }
  }
  return p;
}

TEST(PrometheusParser, RejectsWhatIsNotTheFormat) {
  const std::string ok =
      "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 2\n"
      "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.5\nh_count 2\n";
  EXPECT_EQ(parse_prometheus(ok).error, "");
  for (const std::string& bad : {
           std::string("a_total 1\n"),                       // no TYPE
           std::string("# TYPE a counter\na 1\n"),           // counter without _total
           std::string("# TYPE a gauge\na{x=1} 1\n"),        // unquoted label
           std::string("# TYPE a gauge\na{x=\"\\q\"} 1\n"),  // bad escape
           std::string("# TYPE a gauge\na one\n"),           // bad value
           std::string("# TYPE a gauge\na 1\na 2\n"),        // duplicate series
           std::string("# TYPE 1a gauge\n"),                 // bad name
           std::string("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
                       "h_sum 1\nh_count 1\n"),  // not cumulative
           std::string("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n"),
       }) {
    EXPECT_NE(parse_prometheus(bad).error, "") << bad;
  }
}

// ------------------------------------------------------------------ helpers

json::value parse_json(const std::string& text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  EXPECT_FALSE(ec) << "not JSON: " << text;
  return v;
}

std::string error_code_of(const HttpResponse& r) {
  const auto v = parse_json(r.body);
  if (!v.is_object() || !v.as_object().contains("error")) return "<no error object>";
  const auto& e = v.at("error");
  EXPECT_TRUE(e.at("message").is_string());
  EXPECT_FALSE(e.at("message").as_string().empty());
  return std::string(e.at("code").as_string());
}

// Listening TCP sockets owned by `pid` (from /proc: its socket inodes in state LISTEN).
std::size_t listening_sockets(pid_t pid) {
  std::set<std::string> inodes;
  const auto fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  if (DIR* d = ::opendir(fd_dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      char target[256] = {};
      const auto path = fd_dir + "/" + e->d_name;
      const auto len = ::readlink(path.c_str(), target, sizeof target - 1);
      if (len <= 0) continue;
      const std::string t(target, static_cast<std::size_t>(len));
      if (t.starts_with("socket:[")) inodes.insert(t.substr(8, t.size() - 9));
    }
    ::closedir(d);
  }
  std::size_t listening = 0;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string sl, local, remote, state, queues, timer, retr, uid, timeout, inode;
      ls >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode;
      if (state == "0A" && inodes.contains(inode)) ++listening;
    }
  }
  return listening;
}

std::vector<Message> numbered(std::size_t first, std::size_t count) {
  std::vector<Message> out;
  for (std::size_t i = first; i < first + count; ++i) {
    Message m;
    m.id = "w-" + std::to_string(i);
    m.payload = "payload " + std::to_string(i);
    out.push_back(std::move(m));
  }
  return out;
}

// ------------------------------------------------------------------ tests

TEST(Http, PublishIsReadableBySubAndDeduplicatedById) {
  TestDaemon d;
  d.start();
  ASSERT_NE(d.http_port(), 0);
  auto c = d.client();
  ASSERT_TRUE(c->create_topic("orders"));
  HttpClient http(d.http_port());

  auto r = http.post("/v1/topics/orders/messages",
                     R"({"id":"m-1","key":"k1","headers":{"h":"v"},"payload":"hello"})");
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.body, R"({"offset":0,"duplicate":false})");
  EXPECT_EQ(r.headers["content-type"], "application/json");
  // The same id again: not stored twice, the original's offset.
  r = http.post("/v1/topics/orders/messages", R"({"id":"m-1","payload":"hello"})");
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.body, R"({"offset":0,"duplicate":true})");
  // An array: one confirm per message, in order, in an array.
  r = http.post("/v1/topics/orders/messages",
                R"([{"id":"m-2","payload_base64":"AAH/"},{"id":"m-1","payload":"hello"},)"
                R"({"payload":"no id"}])");
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.body, R"([{"offset":1,"duplicate":false},{"offset":0,"duplicate":true},)"
                    R"({"offset":2,"duplicate":false}])");
  EXPECT_TRUE(r.keep_alive);

  // Dedup is the topic's, whichever protocol publishes: the binary protocol sees m-2.
  Message again;
  again.id = "m-2";
  again.payload = std::string("\x00\x01\xff", 3);
  auto dup = c->publish("orders", again);
  ASSERT_TRUE(dup) << dup.error().to_string();
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->offset, 1u);

  const auto sub = run_process({TestDaemon::loft_path(), "--broker", d.address(), "sub", "orders",
                                "--group", "readers", "--count", "3", "--json"});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  std::vector<json::value> lines;
  std::istringstream out(sub.out);
  for (std::string line; std::getline(out, line);) lines.push_back(parse_json(line));
  ASSERT_EQ(lines.size(), 3u) << sub.out;
  EXPECT_EQ(lines[0].at("offset").as_int64(), 0);
  EXPECT_EQ(lines[0].at("id").as_string(), "m-1");
  EXPECT_EQ(lines[0].at("key").as_string(), "k1");
  EXPECT_EQ(lines[0].at("headers").at("h").as_string(), "v");
  EXPECT_EQ(lines[0].at("payload").as_string(), "hello");
  EXPECT_EQ(lines[1].at("payload_base64").as_string(), "AAH/");
  EXPECT_EQ(lines[2].at("payload").as_string(), "no id");
  auto all = fetch_all(*c, "orders");
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 3u);
}

TEST(Http, MetricsMatchAKnownWorkloadAndParse) {
  TestDaemon d;
  d.start();
  auto c = d.client();
  ASSERT_TRUE(c->create_topic("work"));
  // 1000 messages in 10 publishes of 100, then 10 ids again (dedup hits, no new message).
  std::uint64_t bytes = 0;
  for (std::size_t b = 0; b < 10; ++b) {
    auto batch = numbered(b * 100, 100);
    for (const auto& m : batch) bytes += m.size_bytes();
    auto r = c->publish("work", std::move(batch));
    ASSERT_TRUE(r) << r.error().to_string();
  }
  auto again = c->publish("work", numbered(0, 10));
  ASSERT_TRUE(again);
  for (const auto& r : *again) EXPECT_TRUE(r.duplicate);

  // Consume and ack exactly 600: credit 600 and an ack timeout far beyond the test, so the
  // other 400 are delivered once credit returns and stay in flight, never redelivered.
  protocol::GroupConfig config;
  config.ack_timeout_ms = 3'600'000;
  ASSERT_TRUE(c->create_group("work", "g", {}, config));
  client::SubscribeOptions so;
  so.topic = "work";
  so.group = "g";
  so.max_in_flight = 600;
  auto sub = c->subscribe(so);
  ASSERT_TRUE(sub) << sub.error().to_string();
  std::vector<std::uint64_t> got;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (got.size() < 600 && std::chrono::steady_clock::now() < deadline) {
    auto msgs = (*sub)->receive(1s, 600 - got.size());
    ASSERT_TRUE(msgs) << msgs.error().to_string();
    for (const auto& m : *msgs) got.push_back(m.offset);
  }
  ASSERT_EQ(got.size(), 600u);
  auto acked = (*sub)->ack_confirmed(got);
  ASSERT_TRUE(acked) << acked.error().to_string();
  EXPECT_EQ(acked->applied, 600u);

  const std::map<std::string, std::string> topic{{"topic", "work"}};
  const std::map<std::string, std::string> group{{"topic", "work"}, {"group", "g"}};
  Parsed m;
  std::string text;
  // The last 400 deliveries happen after the acks, on the broker's own time.
  const bool settled = eventually([&] {
    text = http_get(d.http_port(), "/metrics").body;
    m = parse_prometheus(text);
    return m.error.empty() && m.value("loft_messages_delivered_total", group) == 1000.0;
  });
  ASSERT_TRUE(settled) << m.error << "\n" << text;
  EXPECT_EQ(m.value("loft_messages_published_total", topic), 1000.0);
  EXPECT_EQ(m.value("loft_published_bytes_total", topic), static_cast<double>(bytes));
  EXPECT_EQ(m.value("loft_dedup_hits_total", topic), 10.0);
  EXPECT_EQ(m.value("loft_messages_acked_total", group), 600.0);
  EXPECT_EQ(m.value("loft_messages_nacked_total", group), 0.0);
  EXPECT_EQ(m.value("loft_messages_redelivered_total", group), 0.0);
  EXPECT_EQ(m.value("loft_messages_dead_lettered_total", group), 0.0);
  EXPECT_EQ(m.value("loft_group_lag_messages", group), 400.0);
  EXPECT_EQ(m.value("loft_group_in_flight_messages", group), 400.0);
  // 11 publish requests were confirmed; create/ack writes are not publishes.
  EXPECT_EQ(m.value("loft_publish_confirm_duration_seconds_count"), 11.0);
  EXPECT_GT(m.value("loft_publish_confirm_duration_seconds_sum").value_or(0), 0.0);
  EXPECT_EQ(m.value("loft_connections_open"), 1.0);  // this test's client
  EXPECT_EQ(m.value("loft_connections_refused_total"), 0.0);
  EXPECT_GT(m.value("loft_process_resident_memory_bytes").value_or(0), 1e6);
  EXPECT_GT(m.value("loft_rocksdb_memtable_bytes").value_or(0), 0.0);
  for (const auto* name :
       {"loft_rocksdb_live_data_bytes", "loft_rocksdb_pending_compaction_bytes",
        "loft_rocksdb_write_stops_total", "loft_rocksdb_write_slowdowns_total"}) {
    EXPECT_TRUE(m.value(name)) << name;
  }
  for (const auto& [family, type] : m.types) EXPECT_TRUE(m.help.contains(family)) << family;
}

TEST(Http, V1JsonIsWhatTheCliPrints) {
  TestDaemon d;
  d.start();
  auto c = d.client();
  ASSERT_TRUE(c->create_topic("a"));
  ASSERT_TRUE(c->create_topic("b", 60'000, protocol::DedupConflict::error));
  ASSERT_TRUE(c->publish("a", numbered(0, 5)));
  ASSERT_TRUE(c->create_group("a", "g1"));
  ASSERT_TRUE(c->create_group("a", "g2"));
  HttpClient http(d.http_port());
  const auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {TestDaemon::loft_path(), "--broker", d.address()});
    args.push_back("--json");
    const auto r = run_process(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return parse_json(r.out);
  };
  auto r = http.get("/v1/topics");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(parse_json(r.body), cli({"topic", "list"}));
  r = http.get("/v1/topics/b");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(parse_json(r.body), cli({"topic", "describe", "b"}));
  EXPECT_EQ(parse_json(r.body).at("dedup_conflict").as_string(), "error");
  r = http.get("/v1/topics/a/groups");
  EXPECT_EQ(r.status, 200u);
  const auto groups = parse_json(r.body);
  EXPECT_EQ(groups, cli({"group", "list", "a"}));
  ASSERT_EQ(groups.as_array().size(), 2u);
  EXPECT_EQ(groups.as_array()[0], cli({"group", "describe", "a", "g1"}));
  EXPECT_EQ(groups.as_array()[0].at("lag").as_int64(), 5);
}

TEST(Http, HealthAndReadiness) {
  TestDaemon d;
  d.start();
  auto r = http_get(d.http_port(), "/healthz");
  EXPECT_EQ(r.status, 200u);
  r = http_get(d.http_port(), "/readyz");
  EXPECT_EQ(r.status, 200u) << r.body;
}

TEST(Http, ErrorsHaveStatusAndJsonBody) {
  // Small limits so a too-large body is cheap to send.
  TestDaemon d(
      "max_frame_size = \"8KiB\"\nmax_message_size = \"2KiB\"\nmax_headers_size = \"1KiB\"\n"
      "max_key_size = \"256B\"\n");
  d.start();
  auto c = d.client();
  ASSERT_TRUE(c->create_topic("t"));
  ASSERT_TRUE(c->create_topic("strict", 60'000, protocol::DedupConflict::error));
  HttpClient http(d.http_port());
  const auto expect_error = [&](const HttpResponse& r, unsigned status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.headers.at("content-type"), "application/json");
    EXPECT_EQ(error_code_of(r), code) << r.body;
  };
  // Every answer below comes over the same kept-alive connection.
  expect_error(http.get("/nope"), 404, "invalid request");
  expect_error(http.get("/v1/topics/t/other"), 404, "invalid request");
  auto r = http.post("/metrics", "{}");
  expect_error(r, 405, "invalid request");
  EXPECT_EQ(r.headers["allow"], "GET");
  r = http.get("/v1/topics/t/messages");
  expect_error(r, 405, "invalid request");
  EXPECT_EQ(r.headers["allow"], "POST");
  r = http.request("PATCH", "/v1/topics/t");  // GET, PUT and DELETE are the topic's
  expect_error(r, 405, "invalid request");
  EXPECT_EQ(r.headers["allow"], "GET, PUT, DELETE");
  expect_error(http.post("/v1/topics/t/messages", "{not json"), 400, "invalid request");
  expect_error(http.post("/v1/topics/t/messages", R"({"payload":"a","x":1})"), 400,
               "invalid request");
  expect_error(http.post("/v1/topics/t/messages", R"({"payload_base64":"!!!!"})"), 400,
               "invalid request");
  expect_error(http.get("/v1/topics/missing"), 404, "topic not found");
  expect_error(http.get("/v1/topics/missing/groups"), 404, "topic not found");
  expect_error(http.post("/v1/topics/missing/messages", R"({"payload":"a"})"), 404,
               "topic not found");
  expect_error(http.post("/v1/topics/bad%20name/messages", R"({"payload":"a"})"), 400,
               "invalid name");
  // A message over max_message_size in a body that fits.
  expect_error(
      http.post("/v1/topics/t/messages", R"({"payload":")" + std::string(3000, 'x') + R"("})"), 413,
      "message too large");
  // The same id with another payload on a topic whose dedup conflict mode is "error".
  ASSERT_EQ(http.post("/v1/topics/strict/messages", R"({"id":"i","payload":"a"})").status, 200u);
  expect_error(http.post("/v1/topics/strict/messages", R"({"id":"i","payload":"b"})"), 409,
               "message id conflict");
  EXPECT_EQ(http.get("/healthz").status, 200u);  // the connection is still fine

  // A body over max_frame_size: 413 as soon as the header says so, then the connection closes.
  HttpClient big(d.http_port());
  r = big.raw("POST /v1/topics/t/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 9000\r\n\r\n");
  expect_error(r, 413, "message too large");
  EXPECT_FALSE(r.keep_alive);
  // Also when the body is sent along.
  HttpClient big2(d.http_port());
  r = big2.post("/v1/topics/t/messages", R"({"payload":")" + std::string(9000, 'x') + R"("})");
  expect_error(r, 413, "message too large");
  // Malformed HTTP: 400.
  HttpClient garbage(d.http_port());
  r = garbage.raw("GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n");
  expect_error(r, 400, "invalid request");
  // A header over the limit: 431.
  HttpClient huge(d.http_port());
  r = huge.raw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'y') +
               "\r\n\r\n");
  expect_error(r, 431, "invalid request");
  // Nothing above stored anything but the one strict message.
  auto t = c->describe_topic("t");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->messages, 0u);
  EXPECT_EQ(http_get(d.http_port(), "/healthz").status, 200u);
}

TEST(Http, ConnectionsBeyondTheLimitAreClosedAndOthersStillServed) {
  TestDaemon d;
  d.start();
  // 64 kept-alive connections, each proven open by one answered request.
  std::vector<std::unique_ptr<HttpClient>> held;
  for (int i = 0; i < 64; ++i) {
    held.push_back(std::make_unique<HttpClient>(d.http_port()));
    ASSERT_EQ(held.back()->get("/healthz").status, 200u) << i;
  }
  // The 65th is accepted by the kernel and closed by loftd without an answer.
  HttpClient extra(d.http_port());
  EXPECT_THROW(extra.get("/healthz"), std::runtime_error);
  // The held ones still work; once one closes, a new connection is served again.
  EXPECT_EQ(held.front()->get("/readyz").status, 200u);
  held.pop_back();
  EXPECT_TRUE(eventually([&] {
    try {
      return http_get(d.http_port(), "/healthz").status == 200u;
    } catch (const std::runtime_error&) {
      return false;  // the close may not have reached loftd yet
    }
  }));
}

TEST(Http, TurnedOffNothingListens) {
  TestDaemon on;
  on.start();
  EXPECT_EQ(listening_sockets(on.pid()), 2u);  // binary protocol and HTTP

  TestDaemon off("", {"--http-listen", "off"});
  off.start();
  EXPECT_EQ(off.http_port(), 0);
  EXPECT_EQ(listening_sockets(off.pid()), 1u);  // the binary protocol only
  EXPECT_THAT(off.log(), HasSubstr("http_listen=off"));
  auto c = off.client();
  EXPECT_TRUE(c->create_topic("still-works"));
}

}  // namespace
}  // namespace loft::testing
