// Retention and online backup against the real loftd: each limit trims exactly the oldest
// messages and the disk space comes back, a group behind retention skips forward and says
// so, alter takes effect, bad values get clear errors, and a backup taken while a producer
// publishes restores to a loftd with the same topics, offsets, groups and dedup state.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/json.hpp>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "http_client.hpp"
#include "test_daemon.hpp"

namespace loft::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
namespace fs = std::filesystem;
namespace json = boost::json;

// Retention passes every 50 ms, so tests wait for little.
constexpr const char* kFastRetention = "retention_check_interval = \"50ms\"\n";

std::uintmax_t sst_bytes(const fs::path& dir) {
  std::uintmax_t total = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".sst") total += entry.file_size(ec);
  }
  return total;
}

std::vector<Message> random_messages(std::size_t n, std::size_t size, std::mt19937_64& rng) {
  std::vector<Message> out(n);
  for (auto& m : out) {
    m.payload.resize(size);
    for (std::size_t i = 0; i + 8 <= size; i += 8) {
      const auto r = rng();
      std::memcpy(&m.payload[i], &r, 8);
    }
  }
  return out;
}

Message text(std::string payload, std::string id = "") {
  Message m;
  m.id = std::move(id);
  m.payload = std::move(payload);
  return m;
}

// Subscribes to `group`, receives `n` messages and acks them durably, then unsubscribes.
void consume_and_ack(client::Client& c, const std::string& topic, const std::string& group,
                     std::size_t n) {
  client::SubscribeOptions o;
  o.topic = topic;
  o.group = group;
  o.max_in_flight = static_cast<std::uint32_t>(n);
  auto sub = c.subscribe(o);
  ASSERT_TRUE(sub) << sub.error().to_string();
  std::vector<std::uint64_t> got;
  ASSERT_TRUE(eventually([&] {
    auto msgs = (*sub)->receive(200ms, n - got.size());
    if (msgs) {
      for (const auto& m : *msgs) got.push_back(m.offset);
    }
    return got.size() >= n;
  }));
  ASSERT_TRUE((*sub)->ack_confirmed(got));
  ASSERT_TRUE((*sub)->unsubscribe());
}

protocol::RetentionChange max_messages(std::uint64_t n) {
  protocol::RetentionChange c;
  c.max_messages = n;
  return c;
}

class Retention : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_.start();
    client_ = daemon_.client();
  }

  client::TopicInfo describe(const std::string& topic) {
    auto t = client_->describe_topic(topic);
    EXPECT_TRUE(t) << t.error().to_string();
    return t ? *t : client::TopicInfo{};
  }

  TestDaemon daemon_{kFastRetention};
  std::unique_ptr<client::Client> client_;
};

TEST_F(Retention, MaxMessagesKeepsTheNewestAndTheDiskSpaceComesBack) {
  ASSERT_TRUE(client_->create_topic("big"));
  // 2000 x 8 KiB of incompressible payloads (~16 MiB), then a restart so they are in SST
  // files (a graceful stop flushes).
  std::mt19937_64 rng{7};
  std::vector<Message> all;
  for (int b = 0; b < 20; ++b) {
    auto batch = random_messages(100, 8192, rng);
    all.insert(all.end(), batch.begin(), batch.end());
    ASSERT_TRUE(client_->publish("big", std::move(batch)));
  }
  client_.reset();
  ASSERT_EQ(daemon_.stop(), 0);
  const auto store_dir = daemon_.data_dir() / "rocksdb";
  const auto before = sst_bytes(store_dir);
  ASSERT_GT(before, std::uintmax_t{15} << 20) << "the messages should be in SST files";
  daemon_.start();
  client_ = daemon_.client();

  const auto altered = client_->alter_topic("big", max_messages(100));
  ASSERT_TRUE(altered) << altered.error().to_string();
  EXPECT_EQ(altered->max_messages, 100u);
  ASSERT_TRUE(eventually([&] { return describe("big").first_offset.value == 1900; }))
      << "first_offset=" << describe("big").first_offset.value;
  const auto t = describe("big");
  EXPECT_EQ(t.next_offset.value, 2000u);
  EXPECT_EQ(t.messages, 100u);
  EXPECT_EQ(t.bytes, 100u * 8192);
  // Exactly the newest 100 remain, byte for byte; a fetch from 0 starts at the first one.
  const auto kept = fetch_all(*client_, "big");
  ASSERT_TRUE(kept);
  ASSERT_EQ(kept->size(), 100u);
  for (std::size_t i = 0; i < kept->size(); ++i) {
    ASSERT_EQ((*kept)[i].offset, Offset{1900 + i});
    ASSERT_EQ((*kept)[i].message.payload, all[1900 + i].payload);
  }
  // The background compaction gives the space of the 1900 removed messages back.
  std::uintmax_t after = 0;
  EXPECT_TRUE(eventually([&] {
    after = sst_bytes(store_dir);
    return after < before / 5;
  })) << "before="
      << before << " after=" << after;
  std::printf("sst bytes before trim: %ju, after: %ju\n", before, after);
}

TEST_F(Retention, MaxBytesAndMaxAgeFromTheCliTrimWhatIsPastThem) {
  auto r = daemon_.loft({"topic", "create", "bytes", "--max-bytes", "1KiB"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = daemon_.loft({"topic", "create", "aged", "--max-age", "1s", "--max-messages", "none"});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  std::vector<Message> hundred_bytes(20, text(std::string(100, 'x')));
  ASSERT_TRUE(client_->publish("bytes", hundred_bytes));
  // 10 x 100 = 1000 bytes fit in 1024; 11 would not.
  ASSERT_TRUE(eventually([&] { return describe("bytes").first_offset.value == 10; }));
  EXPECT_EQ(describe("bytes").bytes, 1000u);
  EXPECT_EQ(describe("bytes").messages, 10u);

  ASSERT_TRUE(client_->publish("aged", std::vector<Message>(5, text("old"))));
  ASSERT_TRUE(eventually([&] { return describe("aged").messages == 0; }));
  EXPECT_EQ(describe("aged").first_offset.value, 5u);
  EXPECT_EQ(describe("aged").next_offset.value, 5u);

  r = daemon_.loft({"topic", "describe", "aged", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto obj = json::parse(r.out).as_object();
  EXPECT_EQ(obj.at("max_age_ms").to_number<std::uint64_t>(), 1000u);
  EXPECT_EQ(obj.at("max_bytes").to_number<std::uint64_t>(), 0u);
  EXPECT_EQ(obj.at("max_messages").to_number<std::uint64_t>(), 0u);
  EXPECT_EQ(obj.at("first_offset").to_number<std::uint64_t>(), 5u);
  r = daemon_.loft({"topic", "describe", "bytes"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("max_bytes:     1KiB"));
  EXPECT_THAT(r.out, HasSubstr("max_age:       unlimited"));

  // alter from the CLI: the limit changes and takes effect.
  r = daemon_.loft({"topic", "alter", "bytes", "--max-messages", "3", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out).as_object().at("max_messages").to_number<std::uint64_t>(), 3u);
  ASSERT_TRUE(eventually([&] { return describe("bytes").first_offset.value == 17; }));
  EXPECT_EQ(describe("bytes").max_bytes, 1024u) << "alter keeps the limits it is not given";
}

TEST_F(Retention, ConfiguredDefaultsApplyToTopicsCreatedWithoutLimits) {
  TestDaemon d{std::string(kFastRetention) + "retention_max_messages = 2\n"};
  d.start();
  auto c = d.client();
  const auto t = c->create_topic("t");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->max_messages, 2u);
  ASSERT_TRUE(c->publish("t", std::vector<Message>(5, text("m"))));
  ASSERT_TRUE(eventually([&] { return c->describe_topic("t")->first_offset.value == 3; }));
}

TEST_F(Retention, BadValuesGetClearErrors) {
  ASSERT_EQ(daemon_.loft({"topic", "create", "t"}).exit_code, 0);
  const std::vector<std::pair<std::vector<std::string>, std::string>> usage = {
      {{"topic", "create", "x", "--max-age", "10"}, "--max-age"},
      {{"topic", "create", "x", "--max-age", "500ms"}, "at least 1s"},
      {{"topic", "create", "x", "--max-bytes", "lots"}, "--max-bytes"},
      {{"topic", "create", "x", "--max-messages", "-1"}, "--max-messages"},
      {{"topic", "alter", "t"}, "at least one of"},
      {{"topic", "alter", "t", "--dedup-window", "1h"}, "fixed when a topic is created"},
      {{"pub", "t", "m", "--max-messages", "3"}, "only applies to 'loft topic'"},
  };
  for (const auto& [args, text] : usage) {
    const auto r = daemon_.loft(args);
    EXPECT_EQ(r.exit_code, 2) << args.back();
    EXPECT_THAT(r.err, HasSubstr(text));
  }
  auto r = daemon_.loft({"topic", "alter", "missing", "--max-messages", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("does not exist"));
  // The server checks too, for clients other than the CLI.
  protocol::RetentionChange tiny_age;
  tiny_age.max_age_ms = 5;
  const auto bad = client_->alter_topic("t", tiny_age);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::invalid_request);
  EXPECT_THAT(bad.error().detail, HasSubstr("max_age"));
  EXPECT_EQ(client_->alter_topic("t", {}).error().code, Errc::invalid_request);
  EXPECT_EQ(describe("t").max_age_ms, 0u) << "a refused alter changes nothing";
}

TEST_F(Retention, AGroupBehindRetentionSkipsForwardAndReportsIt) {
  ASSERT_TRUE(client_->create_topic("t"));
  ASSERT_TRUE(client_->create_group("t", "slow"));
  std::vector<Message> fifty;
  for (int i = 0; i < 50; ++i) fifty.push_back(text("m" + std::to_string(i)));
  ASSERT_TRUE(client_->publish("t", fifty));
  // Consume and ack 5 first: those were not skipped.
  consume_and_ack(*client_, "t", "slow", 5);
  ASSERT_TRUE(client_->alter_topic("t", max_messages(10)));
  ASSERT_TRUE(eventually([&] {
    auto g = client_->describe_group("t", "slow");
    return g && g->skipped == 35;
  })) << "skipped="
      << client_->describe_group("t", "slow")->skipped;
  auto g = client_->describe_group("t", "slow");
  EXPECT_EQ(g->ack_floor, 40u);
  EXPECT_EQ(g->lag, 10u);

  auto r = daemon_.loft({"group", "describe", "t", "slow", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out).as_object().at("skipped").to_number<std::uint64_t>(), 35u);
  r = daemon_.loft({"group", "describe", "t", "slow"});
  EXPECT_THAT(r.out, HasSubstr("skipped:           35"));
  EXPECT_THAT(http_get(daemon_.http_port(), "/metrics").body,
              HasSubstr("\nloft_messages_skipped_total{topic=\"t\",group=\"slow\"} 35\n"));

  // Delivery goes on from the first retained offset.
  r = daemon_.loft({"sub", "t", "--group", "slow", "--count", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "40\tm40\n");

  // The count is part of the group's durable state.
  client_.reset();
  ASSERT_EQ(daemon_.stop(), 0);
  daemon_.start();
  client_ = daemon_.client();
  EXPECT_EQ(client_->describe_group("t", "slow")->skipped, 35u);
}

// ---- Work-queue retention -------------------------------------------------------------

client::SubscribeOptions group_of(const std::string& topic, const std::string& group) {
  client::SubscribeOptions o;
  o.topic = topic;
  o.group = group;
  o.max_in_flight = 1000;
  return o;
}

// Receives the next `n` messages of `sub` (strictly increasing offsets, as one consumer of a
// group gets them); their offsets.
std::vector<std::uint64_t> receive_n(client::Subscription& sub, std::size_t n) {
  std::vector<std::uint64_t> got;
  EXPECT_TRUE(eventually([&] {
    auto msgs = sub.receive(200ms, n - got.size());
    if (msgs) {
      for (const auto& m : *msgs) {
        EXPECT_TRUE(got.empty() || m.offset > got.back());
        got.push_back(m.offset);
      }
    }
    return got.size() >= n;
  })) << got.size()
      << " of " << n;
  return got;
}

// `loft topic create --work-queue`, describe (text and JSON), and two groups draining it with
// `loft sub`: a message goes once both have acked it, and a group created later starts at the
// oldest retained message.
TEST_F(Retention, AWorkQueueTopicFromTheCliKeepsWhatAGroupStillNeeds) {
  auto r = daemon_.loft({"topic", "create", "jobs", "--work-queue"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = daemon_.loft({"topic", "describe", "jobs"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("retention:     work_queue"));
  r = daemon_.loft({"topic", "describe", "jobs", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out).as_object().at("retention").as_string(), "work_queue");
  r = daemon_.loft({"topic", "alter", "jobs", "--work-queue"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("fixed when a topic is created"));
  ASSERT_TRUE(client_->create_group("jobs", "a"));
  ASSERT_TRUE(client_->create_group("jobs", "b"));

  ASSERT_TRUE(client_->publish("jobs", std::vector<Message>(20, text("job"))));
  EXPECT_EQ(describe("jobs").messages, 20u) << "nobody acked anything yet";
  r = daemon_.loft({"sub", "jobs", "--group", "a", "--count", "20"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = daemon_.loft({"sub", "jobs", "--group", "b", "--count", "8"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(eventually([&] { return describe("jobs").first_offset.value == 8; }))
      << describe("jobs").first_offset.value;
  EXPECT_EQ(describe("jobs").messages, 12u);

  // A group created now, asking for the end, starts at offset 8 and holds it.
  const auto late = client_->create_group("jobs", "late",
                                          protocol::StartPosition{protocol::StartKind::latest, 0});
  ASSERT_TRUE(late) << late.error().to_string();
  EXPECT_EQ(late->ack_floor, 8u);
  r = daemon_.loft({"sub", "jobs", "--group", "b", "--count", "12"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(client_->delete_group("jobs", "late"));
  ASSERT_TRUE(eventually([&] { return describe("jobs").messages == 0; }));
  EXPECT_EQ(describe("jobs").first_offset.value, 20u);
  EXPECT_EQ(client_->describe_group("jobs", "b")->skipped, 0u);
}

// The drain: N messages (LOFT_WORK_QUEUE_MESSAGES, 10,000 by default; run once with
// 1,000,000) drained by two groups; afterwards the topic holds nothing and its SST files give
// the space back.
TEST_F(Retention, AWorkQueueDrainedByTwoGroupsGivesItsDiskSpaceBack) {
  const auto n = static_cast<std::size_t>(env_count("LOFT_WORK_QUEUE_MESSAGES", 10'000));
  ASSERT_TRUE(client_->create_topic("jobs", 0, protocol::DedupConflict::duplicate, {},
                                    RetentionMode::work_queue));
  ASSERT_TRUE(client_->create_group("jobs", "a"));
  ASSERT_TRUE(client_->create_group("jobs", "b"));
  std::mt19937_64 rng{11};
  const auto started = std::chrono::steady_clock::now();
  for (std::size_t done = 0; done < n;) {
    const auto batch = std::min<std::size_t>(1000, n - done);
    ASSERT_TRUE(client_->publish("jobs", random_messages(batch, 200, rng)));
    done += batch;
  }
  client_.reset();
  ASSERT_EQ(daemon_.stop(), 0);  // a graceful stop flushes: the messages are in SST files
  const auto store_dir = daemon_.data_dir() / "rocksdb";
  const auto before = sst_bytes(store_dir);
  daemon_.start();
  client_ = daemon_.client();
  for (const char* group : {"a", "b"}) {
    auto sub = client_->subscribe(group_of("jobs", group));
    ASSERT_TRUE(sub) << sub.error().to_string();
    for (std::size_t got = 0; got < n;) {
      const auto offsets = receive_n(**sub, std::min<std::size_t>(1000, n - got));
      for (const auto o : offsets) (*sub)->ack(o);
      got += offsets.size();
    }
    ASSERT_TRUE((*sub)->flush());
    ASSERT_TRUE((*sub)->unsubscribe());
  }
  ASSERT_TRUE(eventually([&] { return describe("jobs").messages == 0; }, 120s))
      << describe("jobs").messages;
  EXPECT_EQ(describe("jobs").bytes, 0u);
  EXPECT_EQ(describe("jobs").first_offset.value, n);
  std::uintmax_t after = 0;
  EXPECT_TRUE(eventually(
      [&] {
        after = sst_bytes(store_dir);
        return after < before / 10;
      },
      120s))
      << "before=" << before << " after=" << after;
  std::printf("work queue of %zu messages: sst bytes before drain %ju, after %ju; %.1f s\n", n,
              before, after,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
}

// kill -9 in the middle of draining a work queue, a few bounded rounds: every confirmed message
// that some group has not acked survives (whatever acks were in flight), and what both groups
// acked durably is removed after the restart.
TEST_F(Retention, AWorkQueueLosesNoUnackedMessageToKill9) {
  ASSERT_TRUE(client_->create_topic("jobs", 0, protocol::DedupConflict::duplicate, {},
                                    RetentionMode::work_queue));
  const std::array<std::string, 2> groups{"a", "b"};
  for (const auto& g : groups) ASSERT_TRUE(client_->create_group("jobs", g));
  std::uint64_t published = 0;
  std::array<std::uint64_t, 2> confirmed{};  // each group's floor as far as confirmed acks go
  std::array<std::uint64_t, 2> upper{};      // and as far as any ack sent goes
  std::mt19937_64 rng{5};
  for (int round = 0; round < 3; ++round) {
    std::vector<Message> batch(600);
    for (auto& m : batch) m = text("m" + std::to_string(published++));
    ASSERT_TRUE(client_->publish("jobs", std::move(batch)));
    std::vector<std::unique_ptr<client::Subscription>> subs;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      auto sub = client_->subscribe(group_of("jobs", groups[g]));
      ASSERT_TRUE(sub) << sub.error().to_string();
      const auto take = 100 + rng() % 300;
      const auto offsets = receive_n(**sub, take);
      ASSERT_FALSE(offsets.empty());
      EXPECT_GE(offsets.front(), confirmed[g]) << "a confirmed ack came back";
      EXPECT_LE(offsets.front(), upper[g]) << "a message that was never acked is gone";
      const auto half = offsets.size() / 2;
      ASSERT_TRUE((*sub)->ack_confirmed({offsets.begin(), offsets.begin() + half}));
      confirmed[g] = offsets[half - 1] + 1;
      for (auto i = half; i < offsets.size(); ++i) (*sub)->ack(offsets[i]);
      std::ignore = (*sub)->flush();  // sent; durable or not when the kill comes
      upper[g] = offsets.back() + 1;
      subs.push_back(std::move(*sub));
    }
    ASSERT_TRUE(eventually([&] {
      return describe("jobs").first_offset.value >= std::min(confirmed[0], confirmed[1]);
    }));
    daemon_.kill9();
    subs.clear();
    client_.reset();
    daemon_.start(/*same_port=*/true);
    client_ = daemon_.client();
    const auto lowest_upper = std::min(upper[0], upper[1]);
    const auto check = [&] {
      const auto t = describe("jobs");
      EXPECT_EQ(t.next_offset.value, published) << "a confirmed publish was lost";
      EXPECT_LE(t.first_offset.value, lowest_upper) << "an unacked message was removed";
      return t;
    };
    const auto t = check();
    // Everything retained is there, intact.
    for (auto at = t.first_offset.value; at < published;) {
      auto fetched = client_->fetch("jobs", at, 1000);
      ASSERT_TRUE(fetched) << fetched.error().to_string();
      ASSERT_FALSE(fetched->messages.empty());
      for (const auto& m : fetched->messages) {
        ASSERT_EQ(m.offset.value, at) << "a gap in what is retained";
        EXPECT_EQ(m.message.payload, "m" + std::to_string(at));
        ++at;
      }
    }
    ASSERT_TRUE(eventually([&] {
      return check().first_offset.value >= std::min(confirmed[0], confirmed[1]);
    })) << "round "
        << round;
  }
}

TEST(Backup, ATakenUnderLoadRestoresToALoftdWithTheSameData) {
  TestDaemon live;
  live.start();
  auto c = live.client();
  ASSERT_TRUE(c->create_topic("orders"));
  // A group with durable progress: 100 acked.
  ASSERT_TRUE(c->create_group("orders", "billing"));
  std::vector<Message> first;
  for (int i = 0; i < 200; ++i)
    first.push_back(text("m" + std::to_string(i), "id-" + std::to_string(i)));
  ASSERT_TRUE(c->publish("orders", first));
  consume_and_ack(*c, "orders", "billing", 100);

  // A producer publishes with ids, one confirmed batch after another, into a ledger.
  std::mutex ledger_mutex;
  std::vector<std::pair<std::uint64_t, std::string>> ledger;  // offset, id
  std::atomic<bool> stop{false};
  std::thread producer([&] {
    auto pc = live.client("producer");
    for (int b = 0; b < 400 && !stop.load(); ++b) {
      std::vector<Message> batch;
      for (int i = 0; i < 25; ++i) {
        const auto id = "load-" + std::to_string(b) + "-" + std::to_string(i);
        batch.push_back(text("payload of " + id, id));
      }
      auto r = pc->publish("orders", batch);
      if (!r) return;
      std::lock_guard lock(ledger_mutex);
      for (std::size_t i = 0; i < r->size(); ++i) {
        ledger.emplace_back((*r)[i].offset, batch[i].id);
      }
    }
  });
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(ledger_mutex);
    return ledger.size() >= 500;
  }));
  std::vector<std::pair<std::uint64_t, std::string>> confirmed_before;
  {
    std::lock_guard lock(ledger_mutex);
    confirmed_before = ledger;
  }
  TestDaemon restored;  // its data dir does not exist until it starts: the backup creates it
  const auto done = c->backup(restored.data_dir().string());
  stop.store(true);
  producer.join();
  ASSERT_TRUE(done) << done.error().to_string();
  EXPECT_EQ(*done, restored.data_dir().string());
  std::size_t during = 0;
  {
    std::lock_guard lock(ledger_mutex);
    during = ledger.size() - confirmed_before.size();
  }
  std::printf("confirmed before the backup: %zu messages (+200), during it: %zu\n",
              confirmed_before.size(), during);

  // A second backup into the same directory is refused, clearly.
  const auto again = c->backup(restored.data_dir().string());
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::backup_failed);
  EXPECT_THAT(again.error().detail, HasSubstr("already exists"));

  restored.start();
  auto rc = restored.client();
  const auto topic = rc->describe_topic("orders");
  ASSERT_TRUE(topic) << topic.error().to_string();
  // Every message confirmed before the backup started is there, at the same offset; the
  // stored prefix is identical to the live topic's.
  const auto copy = fetch_all(*rc, "orders");
  const auto original = fetch_all(*c, "orders");
  ASSERT_TRUE(copy && original);
  ASSERT_GE(copy->size(), 200 + confirmed_before.size());
  ASSERT_LE(copy->size(), original->size());
  EXPECT_EQ(topic->next_offset.value, copy->size());
  for (std::size_t i = 0; i < copy->size(); ++i) {
    ASSERT_EQ((*copy)[i].offset, (*original)[i].offset);
    ASSERT_EQ((*copy)[i].timestamp_ms, (*original)[i].timestamp_ms);
    ASSERT_EQ((*copy)[i].message, (*original)[i].message) << "offset " << i;
  }
  for (const auto& [offset, id] : confirmed_before) {
    ASSERT_LT(offset, copy->size());
    ASSERT_EQ((*copy)[offset].message.id, id);
  }
  // The group's durable progress came along.
  const auto group = rc->describe_group("orders", "billing");
  ASSERT_TRUE(group) << group.error().to_string();
  EXPECT_EQ(group->ack_floor, 100u);
  // Dedup state: a confirmed id is a duplicate with its original offset.
  const auto& [offset, id] = confirmed_before.back();
  const auto dup = rc->publish("orders", text("payload of " + id, id));
  ASSERT_TRUE(dup);
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->offset, offset);
  // And it serves: a new message gets the next offset.
  const auto fresh = rc->publish("orders", text("after restore"));
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->offset, copy->size());
}

TEST(Backup, TheCliReportsBadDirectories) {
  TestDaemon d;
  d.start();
  TempDir exists;  // created
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"relative/dir", "not an absolute path"},
      {exists.path().string(), "already exists"},
      {(exists.path() / "no" / "parent").string(), "not an existing directory"},
  };
  for (const auto& [dir, text] : cases) {
    const auto r = d.loft({"admin", "backup", dir});
    EXPECT_EQ(r.exit_code, 1) << dir;
    EXPECT_THAT(r.err, HasSubstr(text)) << dir;
    EXPECT_THAT(r.err, HasSubstr("backup failed"));
  }
  const auto target = exists.path() / "copy";
  const auto r = d.loft({"admin", "backup", target.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "backup written to " + target.string() + "\n");
  EXPECT_TRUE(fs::exists(target / "rocksdb" / "CURRENT"));
}

}  // namespace
}  // namespace loft::testing
