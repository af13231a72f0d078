// The real loftd, on 127.0.0.1 and a port the kernel picks, driven through the client library.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <mutex>
#include <thread>
#include <tuple>

#include "test_daemon.hpp"

namespace loft::testing {
namespace {

using ::testing::HasSubstr;

Message make_message(std::size_t i) {
  Message m;
  m.payload =
      "payload-" + std::to_string(i) + std::string("\0\x01\xff", 3) + std::string(i % 7, 'x');
  if (i % 3 == 0) m.id = "id-" + std::to_string(i);
  if (i % 2 == 0) m.key = std::string("key\0", 4) + std::to_string(i % 5);
  if (i % 4 == 0) m.headers = {{"trace", "t" + std::to_string(i)}, {"bin", std::string("\0\0", 2)}};
  return m;
}

TEST(Daemon, TopicsAreCreatedListedDescribedAndDeleted) {
  TestDaemon d;
  d.start();
  auto c = d.client();
  const auto created = c->create_topic("orders");
  ASSERT_TRUE(created) << created.error().to_string();
  EXPECT_EQ(created->name, "orders");
  EXPECT_EQ(created->next_offset.value, 0u);
  ASSERT_TRUE(c->create_topic("audit.log-2"));

  auto again = c->create_topic("orders");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::topic_exists);
  auto bad = c->create_topic("no spaces/please");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::invalid_name);

  const auto list = c->list_topics();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "audit.log-2");
  EXPECT_EQ((*list)[1].name, "orders");

  ASSERT_TRUE(c->publish("orders", make_message(1)));
  const auto described = c->describe_topic("orders");
  ASSERT_TRUE(described);
  EXPECT_EQ(described->next_offset.value, 1u);
  EXPECT_EQ(described->messages, 1u);
  EXPECT_EQ(described->bytes, make_message(1).size_bytes());

  ASSERT_TRUE(c->delete_topic("orders"));
  EXPECT_EQ(c->describe_topic("orders").error().code, Errc::topic_not_found);
  EXPECT_EQ(c->delete_topic("orders").error().code, Errc::topic_not_found);
  // A topic re-created under the same name starts empty at offset 0.
  ASSERT_TRUE(c->create_topic("orders"));
  auto r = c->publish("orders", make_message(2));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->offset, 0u);
  EXPECT_EQ(fetch_all(*c, "orders").value().size(), 1u);
}

TEST(Daemon, PublishedBatchesSurviveRestartsByteForByte) {
  TestDaemon d;
  d.start();
  std::vector<Message> sent;
  {
    auto c = d.client();
    ASSERT_TRUE(c->create_topic("events"));
    // Several batches in flight at once on one connection.
    std::vector<std::future<Result<std::vector<client::PublishResult>>>> replies;
    for (std::size_t b = 0; b < 20; ++b) {
      std::vector<Message> batch;
      for (std::size_t i = 0; i < 25; ++i) batch.push_back(make_message(sent.size() + i));
      sent.insert(sent.end(), batch.begin(), batch.end());
      replies.push_back(c->publish_async("events", std::move(batch)));
    }
    std::uint64_t expected = 0;
    for (auto& f : replies) {
      auto results = f.get();
      ASSERT_TRUE(results) << results.error().to_string();
      ASSERT_EQ(results->size(), 25u);
      for (const auto& r : *results) {
        EXPECT_EQ(r.code, Errc::ok);
        EXPECT_FALSE(r.duplicate);
        EXPECT_EQ(r.offset, expected++);
      }
    }
  }
  auto check_all_there = [&] {
    auto c = d.client();
    const auto stored = fetch_all(*c, "events").value();
    ASSERT_EQ(stored.size(), sent.size());
    for (std::size_t i = 0; i < stored.size(); ++i) {
      EXPECT_EQ(stored[i].offset.value, i);
      EXPECT_EQ(stored[i].message, sent[i]) << "offset " << i;
      EXPECT_GT(stored[i].timestamp_ms, 0);
    }
    const auto info = c->describe_topic("events");
    ASSERT_TRUE(info);
    EXPECT_EQ(info->next_offset.value, sent.size());
    EXPECT_EQ(info->messages, sent.size());
  };
  ASSERT_EQ(d.stop(), 0) << d.log();
  d.start();
  check_all_there();
  // durability = fsync: a confirmed publish survives kill -9 too.
  d.kill9();
  d.start();
  check_all_there();
  // And the log goes on without a gap.
  auto c = d.client();
  auto next = c->publish("events", make_message(9999));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->offset, sent.size());
}

TEST(Daemon, ThousandsOfTopicsShareOneStoreAndSurviveARestart) {
  TestDaemon d("durability = \"os\"\n");
  d.start();
  constexpr int kTopics = 2000;
  {
    auto c = d.client();
    for (int i = 0; i < kTopics; ++i) {
      const auto name = "topic-" + std::to_string(i);
      ASSERT_TRUE(c->create_topic(name));
      // Topic i holds i % 3 + 1 messages.
      std::vector<Message> batch(static_cast<std::size_t>(i % 3 + 1), make_message(i));
      ASSERT_TRUE(c->publish(name, std::move(batch)));
    }
  }
  ASSERT_EQ(d.stop(), 0);
  d.start();
  auto c = d.client();
  const auto topics = c->list_topics();
  ASSERT_TRUE(topics);
  ASSERT_EQ(topics->size(), static_cast<std::size_t>(kTopics));
  for (const int i : {0, 1, 2, 999, 1000, 1998, 1999}) {
    const auto name = "topic-" + std::to_string(i);
    const auto stored = fetch_all(*c, name).value();
    ASSERT_EQ(stored.size(), static_cast<std::size_t>(i % 3 + 1)) << name;
    EXPECT_EQ(stored.back().message, make_message(i)) << name;
  }
}

TEST(Daemon, PublishToMissingTopicIsAnError) {
  TestDaemon d;
  d.start();
  auto c = d.client();
  auto r = c->publish("nope", make_message(0));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::topic_not_found);
  EXPECT_THAT(r.error().detail, HasSubstr("nope"));
  EXPECT_EQ(c->describe_topic("nope").error().code, Errc::topic_not_found);
  EXPECT_TRUE(c->ping()) << "the connection stays usable after a request error";
}

TEST(Daemon, AutoCreateTopicsCreatesOnFirstPublish) {
  // The file says no; the command line wins.
  TestDaemon d("auto_create_topics = false\n", {"--set", "auto_create_topics=true"});
  d.start();
  auto c = d.client();
  auto r = c->publish("fresh", make_message(0));
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->offset, 0u);
  EXPECT_EQ(c->describe_topic("fresh")->messages, 1u);
}

// Broken frames and limits: hostile_test.cpp.

TEST(Daemon, ConcurrentProducersGetDistinctGaplessOffsets) {
  TestDaemon d;
  d.start();
  ASSERT_TRUE(d.client()->create_topic("shared"));
  constexpr int kProducers = 4;
  constexpr int kBatches = 30;
  std::vector<std::thread> threads;
  std::vector<std::vector<std::uint64_t>> offsets(kProducers);
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      auto c = d.client("p" + std::to_string(p));
      std::vector<std::future<Result<std::vector<client::PublishResult>>>> replies;
      for (int b = 0; b < kBatches; ++b) {
        // Distinct indices, so no two messages share an id (which would be deduplicated).
        const auto i = static_cast<std::size_t>(p * 1000 + 2 * b);
        replies.push_back(c->publish_async("shared", {make_message(i), make_message(i + 1)}));
      }
      for (auto& f : replies) {
        auto r = f.get();
        if (!r) continue;
        for (const auto& x : *r) offsets[p].push_back(x.offset);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::vector<std::uint64_t> all;
  for (const auto& o : offsets) {
    EXPECT_EQ(o.size(), kBatches * 2u);
    EXPECT_TRUE(std::is_sorted(o.begin(), o.end())) << "one producer's offsets go up";
    all.insert(all.end(), o.begin(), o.end());
  }
  std::sort(all.begin(), all.end());
  for (std::size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], i);
}

TEST(Daemon, GracefulStopAnswersEveryInFlightPublish) {
  TestDaemon d;
  d.start();
  auto c = d.client();
  ASSERT_TRUE(c->create_topic("t"));
  std::vector<std::future<Result<std::vector<client::PublishResult>>>> replies;
  for (int b = 0; b < 200; ++b) {
    // Distinct ids: a repeated id would be deduplicated.
    replies.push_back(c->publish_async("t", {make_message(2 * b), make_message(2 * b + 1)}));
  }
  ASSERT_EQ(d.stop(), 0) << d.log();
  std::vector<std::uint64_t> confirmed;
  for (auto& f : replies) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(60)), std::future_status::ready);
    auto r = f.get();
    if (!r) continue;  // not accepted before the stop: the client knows it failed
    for (const auto& x : *r) confirmed.push_back(x.offset);
  }
  EXPECT_THAT(d.log(), HasSubstr("loftd stopped"));
  d.start();
  auto c2 = d.client();
  const auto stored = fetch_all(*c2, "t").value();
  EXPECT_GE(stored.size(), confirmed.size());
  for (const auto off : confirmed) {
    ASSERT_LT(off, stored.size());
    EXPECT_EQ(stored[off].offset.value, off);
  }
}

TEST(Daemon, SecondDaemonOnTheSameDataDirRefusesToStart) {
  TestDaemon d;
  d.start();
  auto c = d.client();
  ASSERT_TRUE(c->create_topic("t"));
  const auto second = run_process(
      {TestDaemon::loftd_path(), "--listen", "127.0.0.1:0", "--data-dir", d.data_dir().string()},
      "", std::chrono::seconds(60));
  EXPECT_NE(second.exit_code, 0);
  EXPECT_THAT(second.err, HasSubstr("in use by another loftd"));
  // The first one is untouched.
  auto r = c->publish("t", make_message(1));
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(d.stop(), 0);
}

TEST(Daemon, RefusesToStartOnABadConfigNamingTheKey) {
  TempDir dir;
  const auto path = dir.path() / "bad.toml";
  std::ofstream(path) << "durability = \"sometimes\"\n";
  const auto r = run_process({TestDaemon::loftd_path(), "--config", path.string(), "--data-dir",
                              (dir.path() / "data").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("durability"));
  const auto unknown = dir.path() / "unknown.toml";
  std::ofstream(unknown) << "durabilty = \"os\"\n";
  const auto r2 = run_process({TestDaemon::loftd_path(), "--config", unknown.string()});
  EXPECT_EQ(r2.exit_code, 1);
  EXPECT_THAT(r2.err, HasSubstr("durabilty"));
  const auto set = run_process({TestDaemon::loftd_path(), "--set", "max_frame_size=12 furlongs"});
  EXPECT_EQ(set.exit_code, 1);
  EXPECT_THAT(set.err, HasSubstr("max_frame_size"));
  const auto flag = run_process({TestDaemon::loftd_path(), "--listen", "nonsense"});
  EXPECT_EQ(flag.exit_code, 1);
  EXPECT_THAT(flag.err, HasSubstr("listen"));
  const auto help = run_process({TestDaemon::loftd_path(), "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("--port-file"));
}

// Whether thread `tid` of this process is asleep in a send system call (/proc: its state, and
// the number of the system call it is in).
bool sleeps_in_send(pid_t tid) {
  if (tid == 0) return false;
  const auto task = "/proc/self/task/" + std::to_string(tid);
  std::ifstream stat_file(task + "/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  const auto paren = stat.rfind(')');  // the command name may contain spaces
  if (paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] != 'S') {
    return false;
  }
  long number = -1;
  std::ifstream(task + "/syscall") >> number;
  return number == SYS_sendto || number == SYS_sendmsg;
}

// A broker that stops reading (SIGSTOPped here) must not make close() hang while another
// thread is blocked sending to it: close() stops waiting after close_timeout, and the blocked
// send fails.
TEST(Daemon, ClientCloseReturnsWhileAnotherThreadIsBlockedSendingToABrokerThatStoppedReading) {
  using namespace std::chrono_literals;
  TestDaemon d;
  d.start();
  client::Options o;
  o.host = "127.0.0.1";
  o.port = d.port();
  o.close_timeout = 1s;
  auto c = client::Client::connect(o);
  ASSERT_TRUE(c) << c.error().to_string();
  ASSERT_TRUE((*c)->create_topic("t"));
  d.signal(SIGSTOP);
  // 1 MiB per request: the socket buffers (a few MiB on loopback) fill within a few requests,
  // then a send blocks. Bounded: 256 requests at most.
  std::atomic<pid_t> producer_tid{0};
  std::thread producer([&] {
    producer_tid = static_cast<pid_t>(::syscall(SYS_gettid));
    std::vector<Message> batch(16);
    for (auto& m : batch) m.payload.assign(64 << 10, 'x');
    for (int i = 0; i < 256 && (*c)->connected(); ++i) {
      std::ignore = (*c)->publish_async("t", batch);  // never answered: loftd is stopped
    }
  });
  // Until the producer sleeps inside a send: with loftd stopped, a send blocked on full socket
  // buffers.
  const bool blocked = eventually([&] { return sleeps_in_send(producer_tid.load()); });
  auto closing = std::async(std::launch::async, [&] { (*c)->close(); });
  const bool closed = closing.wait_for(30s) == std::future_status::ready;
  d.signal(SIGCONT);  // frees a hung close() too, so the test ends either way
  producer.join();
  closing.wait();
  ASSERT_TRUE(blocked) << "the producer never blocked in a send: the test tests nothing";
  EXPECT_TRUE(closed) << "close() hung behind a blocked send";
}

// While it lives, a SIGALRM about once a millisecond to every thread of this process (the
// clients' readers waiting in recv, the test's own thread sending), from a thread of its own, with
// a handler installed without SA_RESTART, as libFuzzer's and many profilers' timers are: a system
// call such a thread is in fails with EINTR. (A process-wide timer would not do: the kernel hands
// its signal to one thread, which may be an idle one.) The handler stays installed afterwards
// (it does nothing): restoring the default could let one last alarm in flight end the test.
class AlarmsOnEveryThread {
 public:
  AlarmsOnEveryThread() {
    struct sigaction action {};
    action.sa_handler = [](int) {};
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;
    ::sigaction(SIGALRM, &action, nullptr);
    sender_ = std::thread([this] { run(); });
  }
  ~AlarmsOnEveryThread() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_one();
    sender_.join();
  }
  AlarmsOnEveryThread(const AlarmsOnEveryThread&) = delete;
  AlarmsOnEveryThread& operator=(const AlarmsOnEveryThread&) = delete;

  std::uint64_t sent() const { return sent_; }

 private:
  void run() {
    const auto self = static_cast<pid_t>(::syscall(SYS_gettid));
    std::unique_lock lock(mutex_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(1), [this] { return stop_; })) {
      // Not throwing: an exception on this thread would end the test process. A thread that
      // exits between the listing and the kill only makes tgkill fail.
      std::error_code ec;
      for (std::filesystem::directory_iterator it("/proc/self/task", ec), end; !ec && it != end;
           it.increment(ec)) {
        const auto tid =
            static_cast<pid_t>(std::strtol(it->path().filename().c_str(), nullptr, 10));
        if (tid <= 0 || tid == self) continue;
        if (::syscall(SYS_tgkill, ::getpid(), tid, SIGALRM) == 0) ++sent_;
      }
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::atomic<std::uint64_t> sent_{0};
  std::thread sender_;
};

// A signal that interrupts the client's blocking recv is not a lost connection: publishes,
// deliveries and acks go on through a thousand interruptions a second.
TEST(Daemon, ClientKeepsItsConnectionThroughSignalsThatInterruptSystemCalls) {
  using namespace std::chrono_literals;
  TestDaemon d;
  d.start();
  auto producer = d.client();
  auto consumer = d.client();
  ASSERT_TRUE(producer->create_topic("t"));
  client::SubscribeOptions o;
  o.topic = "t";
  o.group = "g";
  auto s = consumer->subscribe(o);
  ASSERT_TRUE(s) << s.error().to_string();

  constexpr std::size_t kMessages = 2000;
  std::size_t received = 0;
  {
    AlarmsOnEveryThread alarms;
    for (std::size_t i = 0; i < kMessages; ++i) {
      auto r = producer->publish("t", make_message(i));
      ASSERT_TRUE(r) << "publish " << i << ": " << r.error().to_string();
    }
    const auto until = std::chrono::steady_clock::now() + 60s;
    while (received < kMessages && std::chrono::steady_clock::now() < until) {
      auto batch = (*s)->receive(100ms, kMessages - received);
      ASSERT_TRUE(batch) << batch.error().to_string();
      for (const auto& m : *batch) (*s)->ack(m.offset);
      received += batch->size();
    }
    auto flushed = (*s)->flush();
    ASSERT_TRUE(flushed) << flushed.error().to_string();
    EXPECT_GT(alarms.sent(), 100u) << "the alarms did not run";
  }
  EXPECT_EQ(received, kMessages);
  const auto g = producer->describe_group("t", "g");
  ASSERT_TRUE(g) << g.error().to_string();
  EXPECT_EQ(g->ack_floor, kMessages);
}

}  // namespace
}  // namespace loft::testing
