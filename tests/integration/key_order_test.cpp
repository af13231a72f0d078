// Per-key ordered delivery through the real loftd and the loft CLI: a group created with
// --ordering key, two `loft sub` consumers sharing it, one killed mid-way.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_daemon.hpp"

using namespace std::chrono_literals;

namespace loft::testing {
namespace {

// A `loft` process running in the background, its standard output collected by a thread.
class Background {
 public:
  explicit Background(const std::vector<std::string>& argv) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 2);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(out[1]);
    reader_ = std::thread([this, fd = out[0]] {
      char buf[65536];
      for (;;) {
        const auto n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        std::lock_guard lock(mutex_);
        out_.append(buf, static_cast<std::size_t>(n));
      }
      ::close(fd);
    });
  }
  ~Background() {
    stop(SIGKILL);
    if (reader_.joinable()) reader_.join();
  }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  void stop(int signo) {
    if (pid_ <= 0) return;
    ::kill(pid_, signo);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  // Complete lines printed so far.
  std::vector<std::string> lines() {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    std::size_t start = 0;
    for (auto nl = out_.find('\n'); nl != std::string::npos; nl = out_.find('\n', start)) {
      out.push_back(out_.substr(start, nl - start));
      start = nl + 1;
    }
    return out;
  }
  std::vector<std::string> finish() {
    stop(SIGTERM);
    if (reader_.joinable()) reader_.join();
    return lines();
  }

 private:
  pid_t pid_ = -1;
  std::thread reader_;
  std::mutex mutex_;
  std::string out_;
};

Message keyed(std::string key, std::string payload) {
  Message m;
  m.key = std::move(key);
  m.payload = std::move(payload);
  return m;
}

// "offset<TAB>payload" lines; the payload is the message's key.
struct Line {
  std::uint64_t offset;
  std::string key;
};
std::vector<Line> parse(const std::vector<std::string>& lines) {
  std::vector<Line> out;
  for (const auto& l : lines) {
    const auto tab = l.find('\t');
    if (tab == std::string::npos) continue;
    out.push_back({std::stoull(l.substr(0, tab)), l.substr(tab + 1)});
  }
  return out;
}

// Per key, the offsets one consumer printed strictly increase.
void expect_increasing_per_key(const std::vector<Line>& lines, const char* who) {
  std::map<std::string, std::uint64_t> last;
  for (const auto& l : lines) {
    const auto it = last.find(l.key);
    if (it != last.end()) {
      EXPECT_LT(it->second, l.offset) << who << ": key " << l.key << " went back";
    }
    last[l.key] = l.offset;
  }
}

TEST(KeyOrder, TwoSubConsumersKeepEachKeyInOrderWhenOneIsKilled) {
  TestDaemon d;
  d.start();
  auto c = d.client();
  ASSERT_TRUE(c->create_topic("orders"));
  auto created = d.loft({"group", "create", "orders", "g", "--ordering", "key", "--json"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const auto info = boost::json::parse(created.out).as_object();
  EXPECT_EQ(info.at("ordering").as_string(), "key");
  EXPECT_EQ(info.at("key_lookahead").as_int64(), 10000);

  constexpr int kMessages = 10'000;
  constexpr int kKeys = 50;
  std::vector<Message> batch;
  for (int i = 0; i < kMessages; ++i) {
    Message m;
    m.key = "k" + std::to_string(i % kKeys);
    m.payload = m.key;
    batch.push_back(std::move(m));
    if (batch.size() == 1000) {
      ASSERT_TRUE(c->publish("orders", std::move(batch)));
      batch.clear();
    }
  }

  const std::vector<std::string> sub{
      TestDaemon::loft_path(), "--broker", d.address(), "sub", "orders", "--group", "g"};
  Background a(sub);
  Background b(sub);
  // A is killed once it has printed a part: what it had out comes back to B, first per key.
  ASSERT_TRUE(eventually([&] { return a.lines().size() >= 1000; }, 60s));
  a.stop(SIGKILL);
  ASSERT_TRUE(eventually(
      [&] {
        auto g = c->describe_group("orders", "g");
        return g && g->lag == 0;
      },
      120s));
  const auto from_a = parse(a.lines());
  const auto from_b = parse(b.finish());
  expect_increasing_per_key(from_a, "consumer a");
  expect_increasing_per_key(from_b, "consumer b");
  EXPECT_FALSE(from_b.empty());
  std::set<std::uint64_t> seen;
  for (const auto& l : from_a) seen.insert(l.offset);
  for (const auto& l : from_b) seen.insert(l.offset);
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kMessages));

  auto described = d.loft({"group", "describe", "orders", "g"});
  EXPECT_NE(described.out.find("ordering:          key"), std::string::npos) << described.out;
}

TEST(KeyOrder, SubCreatesAnOrderedGroupAndRefusesABadOrdering) {
  TestDaemon d;
  d.start();
  auto c = d.client();
  ASSERT_TRUE(c->create_topic("t"));
  ASSERT_TRUE(c->publish("t", {keyed("a", "1")}));
  auto r = d.loft({"sub", "t", "--group", "g", "--ordering", "key", "--count", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto g = c->describe_group("t", "g");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->config.ordering, Ordering::key);
  r = d.loft({"sub", "t", "--group", "h", "--ordering", "fifo"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--ordering must be none or key"), std::string::npos) << r.err;
  r = d.loft({"group", "create", "t", "h", "--key-lookahead", "5"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--key-lookahead needs --ordering key"), std::string::npos) << r.err;
}

// The look-ahead bound stops delivery: describe names the reason and the key.
TEST(KeyOrder, DescribeShowsKeyBlockedAndTheBlockingKey) {
  TestDaemon d;
  d.start();
  auto c = d.client();
  ASSERT_TRUE(c->create_topic("t"));
  std::vector<Message> ms;
  for (const auto* k : {"a", "a", "a", "b"}) ms.push_back(keyed(k, k));
  ASSERT_TRUE(c->publish("t", std::move(ms)));
  auto created = d.loft({"group", "create", "t", "g", "--ordering", "key", "--key-lookahead", "1"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  client::SubscribeOptions so;
  so.topic = "t";
  so.group = "g";
  auto sub = c->subscribe(so);
  ASSERT_TRUE(sub);
  // Offset 0 (a) goes out; 1 (a) is held back, at the bound; 2 (a) waits, and so does 3 (b).
  std::vector<std::uint64_t> got;
  ASSERT_TRUE(eventually([&] {
    auto batch = (*sub)->receive(100ms);
    if (batch) {
      for (const auto& m : *batch) got.push_back(m.offset);
    }
    return !got.empty();
  }));
  ASSERT_EQ(got, (std::vector<std::uint64_t>{0}));
  auto r = d.loft({"group", "describe", "t", "g", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto o = boost::json::parse(r.out).as_object();
  EXPECT_EQ(o.at("blocking_key").as_string(), "a");
  EXPECT_EQ(o.at("held_back").as_int64(), 1);
  EXPECT_EQ(o.at("consumers").as_array().at(0).as_object().at("stalled").as_string(),
            "key_blocked");
  (*sub)->ack(0);
  ASSERT_TRUE((*sub)->flush());
  ASSERT_TRUE(eventually([&] {
    auto batch = (*sub)->receive(100ms);
    if (batch) {
      for (const auto& m : *batch) got.push_back(m.offset);
    }
    return got.size() >= 3;
  }));
  EXPECT_EQ(got, (std::vector<std::uint64_t>{0, 1, 3}));
}

}  // namespace
}  // namespace loft::testing
