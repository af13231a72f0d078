// Retention in the broker, against the memory store and a fake clock: each limit trims exactly
// the oldest messages past it, counts stay right, alter takes effect, bad values are refused.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>

#include "loft/broker/broker.hpp"
#include "support/broker_backends.hpp"
#include "support/forwarding_store.hpp"

namespace loft::broker {
namespace {

using testing::wait;

constexpr std::int64_t kStart = 1'700'000'000'000;

// A clock the test moves; passes run only when the test calls run_retention_pass().
struct Fixture {
  std::shared_ptr<std::atomic<std::int64_t>> now =
      std::make_shared<std::atomic<std::int64_t>>(kStart);
  Options options(RetentionLimits defaults = {}) const {
    Options o;
    o.now_ms = [now = now] { return now->load(); };
    o.default_retention = defaults;
    o.retention_interval = std::chrono::milliseconds{0};
    return o;
  }
};

std::unique_ptr<Broker> open_broker(std::unique_ptr<storage::Store> store, Options o) {
  auto b = Broker::open(std::move(store), std::move(o));
  EXPECT_TRUE(b.has_value());
  return std::move(*b);
}

// Designated initializers would leave optionals out (-Wmissing-field-initializers).
RetentionChange change(std::optional<std::uint64_t> max_age_ms,
                       std::optional<std::uint64_t> max_bytes,
                       std::optional<std::uint64_t> max_messages) {
  RetentionChange c;
  c.max_age_ms = max_age_ms;
  c.max_bytes = max_bytes;
  c.max_messages = max_messages;
  return c;
}

Result<TopicInfo> create(Broker& b, std::string name, RetentionChange retention) {
  TopicSettings settings;
  settings.retention = retention;
  return wait<TopicInfo>([&](auto done) { b.create_topic(name, settings, std::move(done)); });
}

Result<TopicInfo> alter(Broker& b, std::string name, RetentionChange change) {
  return wait<TopicInfo>([&](auto done) { b.alter_topic(name, change, std::move(done)); });
}

// Publishes `n` messages with `size`-byte payloads (and ids "<prefix>-<i>" if a prefix is
// given); returns their offsets.
std::vector<std::uint64_t> publish(Broker& b, const std::string& topic, std::size_t n,
                                   std::size_t size, const std::string& id_prefix = "") {
  std::vector<Message> msgs(n);
  for (std::size_t i = 0; i < n; ++i) {
    msgs[i].payload.assign(size, 'p');
    if (!id_prefix.empty()) msgs[i].id = id_prefix + "-" + std::to_string(i);
  }
  auto r = wait<Appended>([&](auto done) { b.publish(topic, std::move(msgs), std::move(done)); });
  std::vector<std::uint64_t> out;
  if (!r) return out;
  for (const auto& m : r->results) out.push_back(m.offset.value);
  return out;
}

std::vector<std::uint64_t> stored_offsets(Broker& b, const std::string& topic) {
  std::vector<std::uint64_t> out;
  const auto r = b.fetch(topic, Offset{0}, {100'000, std::size_t{1} << 30});
  if (!r) return out;
  for (const auto& m : r->messages) out.push_back(m.offset.value);
  return out;
}

TEST(Retention, MaxMessagesKeepsExactlyTheNewest) {
  Fixture f;
  auto b = open_broker(storage::make_memory_store(), f.options());
  ASSERT_TRUE(create(*b, "t", change(std::nullopt, std::nullopt, 3)));
  publish(*b, "t", 10, 4);
  EXPECT_EQ(b->run_retention_pass(), 7u);
  const auto t = b->describe_topic("t");
  EXPECT_EQ(t->first_offset, Offset{7});
  EXPECT_EQ(t->next_offset, Offset{10});
  EXPECT_EQ(t->messages, 3u);
  EXPECT_EQ(t->bytes, 12u);
  EXPECT_THAT(stored_offsets(*b, "t"), ::testing::ElementsAre(7, 8, 9));
  // A fetch below the first offset starts at the first retained one.
  EXPECT_EQ(b->fetch("t", Offset{2}, {})->messages.front().offset, Offset{7});
  EXPECT_EQ(b->run_retention_pass(), 0u) << "nothing more is past the limit";
}

TEST(Retention, MaxBytesRemovesTheOldestUntilTheRestFits) {
  Fixture f;
  auto b = open_broker(storage::make_memory_store(), f.options());
  ASSERT_TRUE(create(*b, "t", change(std::nullopt, 25, std::nullopt)));
  publish(*b, "t", 8, 10);  // 80 bytes: 2 messages (20 bytes) fit, a third would not
  EXPECT_EQ(b->run_retention_pass(), 6u);
  EXPECT_EQ(b->describe_topic("t")->bytes, 20u);
  EXPECT_THAT(stored_offsets(*b, "t"), ::testing::ElementsAre(6, 7));
  publish(*b, "t", 1, 5);  // 25 bytes: exactly at the limit stays
  EXPECT_EQ(b->run_retention_pass(), 0u);
  publish(*b, "t", 1, 1);  // 26: the oldest (10 bytes) goes
  EXPECT_EQ(b->run_retention_pass(), 1u);
  EXPECT_EQ(b->describe_topic("t")->bytes, 16u);
  EXPECT_EQ(b->describe_topic("t")->first_offset, Offset{7});
}

TEST(Retention, MaxAgeUsesThePublishTimeAndKeepsAMessageExactlyAtTheLimit) {
  Fixture f;
  auto b = open_broker(storage::make_memory_store(), f.options());
  ASSERT_TRUE(create(*b, "t", change(10'000, std::nullopt, std::nullopt)));
  publish(*b, "t", 3, 1);  // offsets 0..2 at kStart
  f.now->store(kStart + 4'000);
  publish(*b, "t", 2, 1);  // offsets 3, 4 at kStart + 4 s
  f.now->store(kStart + 10'000);
  EXPECT_EQ(b->run_retention_pass(), 0u) << "10 s old is not older than 10 s";
  f.now->store(kStart + 10'001);
  EXPECT_EQ(b->run_retention_pass(), 3u);
  EXPECT_THAT(stored_offsets(*b, "t"), ::testing::ElementsAre(3, 4));
  f.now->store(kStart + 60'000);
  EXPECT_EQ(b->run_retention_pass(), 2u);
  const auto t = b->describe_topic("t");
  EXPECT_EQ(t->first_offset, Offset{5});
  EXPECT_EQ(t->messages, 0u);
  EXPECT_EQ(t->bytes, 0u);
  EXPECT_EQ(publish(*b, "t", 1, 1), std::vector<std::uint64_t>{5}) << "offsets go on";
}

TEST(Retention, AnyLimitTrims) {
  Fixture f;
  auto b = open_broker(storage::make_memory_store(), f.options());
  ASSERT_TRUE(create(*b, "t", change(1'000'000, 1'000, 5)));
  publish(*b, "t", 8, 1);
  EXPECT_EQ(b->run_retention_pass(), 3u);  // only max_messages is exceeded
}

TEST(Retention, DefaultsApplyWhenCreateDoesNotSetALimitAndZeroMeansUnlimited) {
  Fixture f;
  auto b = open_broker(storage::make_memory_store(), f.options(RetentionLimits{0, 100, 2}));
  const auto defaulted = create(*b, "d", {});
  EXPECT_EQ(defaulted->max_bytes, 100u);
  EXPECT_EQ(defaulted->max_messages, 2u);
  const auto own = create(*b, "own", change(std::nullopt, std::nullopt, 0));
  EXPECT_EQ(own->max_messages, 0u) << "0 given at create is unlimited, not the default";
  EXPECT_EQ(own->max_bytes, 100u);
  publish(*b, "d", 4, 1);
  publish(*b, "own", 4, 1);
  EXPECT_EQ(b->run_retention_pass(), 2u);
  EXPECT_EQ(b->describe_topic("own")->messages, 4u);
}

TEST(Retention, AlterChangesOnlyTheGivenLimitsAndTakesEffect) {
  Fixture f;
  auto b = open_broker(storage::make_memory_store(), f.options());
  ASSERT_TRUE(create(*b, "t", change(std::nullopt, 1'000, std::nullopt)));
  publish(*b, "t", 10, 1);
  EXPECT_EQ(b->run_retention_pass(), 0u);
  const auto altered = alter(*b, "t", change(std::nullopt, std::nullopt, 4));
  ASSERT_TRUE(altered);
  EXPECT_EQ(altered->max_messages, 4u);
  EXPECT_EQ(altered->max_bytes, 1'000u);
  EXPECT_EQ(b->run_retention_pass(), 6u);
  ASSERT_TRUE(alter(*b, "t", change(std::nullopt, std::nullopt, 0)));  // unlimited again
  publish(*b, "t", 10, 1);
  EXPECT_EQ(b->run_retention_pass(), 0u);
  EXPECT_EQ(b->describe_topic("t")->messages, 14u);
}

TEST(Retention, BadValuesAndMissingTopicsAreRefused) {
  Fixture f;
  auto b = open_broker(storage::make_memory_store(), f.options());
  EXPECT_EQ(create(*b, "t", change(999, std::nullopt, std::nullopt)).error().code,
            Errc::invalid_request);
  EXPECT_THAT(create(*b, "t", change(999, std::nullopt, std::nullopt)).error().detail,
              ::testing::HasSubstr("max_age must be 0 (unlimited) or 1 s to 100 years"));
  EXPECT_EQ(create(*b, "t", change(kMaxMaxAgeMs + 1, std::nullopt, std::nullopt)).error().code,
            Errc::invalid_request);
  ASSERT_TRUE(create(*b, "t", {}));
  EXPECT_EQ(alter(*b, "t", {}).error().code, Errc::invalid_request);
  EXPECT_EQ(alter(*b, "t", change(5, std::nullopt, std::nullopt)).error().code,
            Errc::invalid_request);
  EXPECT_EQ(alter(*b, "missing", change(std::nullopt, std::nullopt, 1)).error().code,
            Errc::topic_not_found);
  EXPECT_EQ(alter(*b, "bad name", change(std::nullopt, std::nullopt, 1)).error().code,
            Errc::invalid_name);
}

TEST(Retention, IdsOfRemovedMessagesStayKnownForTheirDedupWindow) {
  Fixture f;
  auto b = open_broker(storage::make_memory_store(), f.options());
  ASSERT_TRUE(create(*b, "t", change(std::nullopt, std::nullopt, 1)));
  publish(*b, "t", 3, 1, "id");
  ASSERT_EQ(b->run_retention_pass(), 2u);
  auto again = wait<Appended>([&](auto done) {
    Message m;
    m.id = "id-0";
    m.payload = "p";
    b->publish("t", {m}, std::move(done));
  });
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->results.front().duplicate);
  EXPECT_EQ(again->results.front().offset, Offset{0}) << "the original offset, though removed";
}

TEST(Retention, TheTrimIsDurable) {
  Fixture f;
  auto store = storage::make_memory_store();
  {
    auto b = open_broker(std::make_unique<testing::ForwardingStore>(*store), f.options());
    ASSERT_TRUE(create(*b, "t", change(std::nullopt, std::nullopt, 2)));
    publish(*b, "t", 5, 3);
    ASSERT_EQ(b->run_retention_pass(), 3u);
  }
  auto b = open_broker(std::make_unique<testing::ForwardingStore>(*store), f.options());
  const auto t = b->describe_topic("t");
  EXPECT_EQ(t->first_offset, Offset{3});
  EXPECT_EQ(t->messages, 2u);
  EXPECT_EQ(t->bytes, 6u);
  EXPECT_EQ(t->max_messages, 2u);
  EXPECT_THAT(stored_offsets(*b, "t"), ::testing::ElementsAre(3, 4));
}

TEST(Retention, TopicEventsCarryTheNewFirstOffset) {
  Fixture f;
  auto b = open_broker(storage::make_memory_store(), f.options());
  std::mutex mutex;
  std::vector<TopicEvent> events;
  b->set_topic_listener([&](std::vector<TopicEvent> e) {
    std::lock_guard lock(mutex);
    events.insert(events.end(), e.begin(), e.end());
  });
  ASSERT_TRUE(create(*b, "t", change(std::nullopt, std::nullopt, 1)));
  publish(*b, "t", 4, 1);
  ASSERT_EQ(b->run_retention_pass(), 3u);
  std::lock_guard lock(mutex);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().first, Offset{3});
  EXPECT_EQ(events.back().end, Offset{4});
}

TEST(Retention, FirstKeptByCountAndAge) {
  TopicInfo t;
  t.first_offset = Offset{10};
  t.next_offset = Offset{20};
  EXPECT_EQ(first_kept_by_count_and_age(t, std::nullopt), Offset{10});
  t.max_messages = 4;
  EXPECT_EQ(first_kept_by_count_and_age(t, std::nullopt), Offset{16});
  EXPECT_EQ(first_kept_by_count_and_age(t, Offset{18}), Offset{18});
  EXPECT_EQ(first_kept_by_count_and_age(t, Offset{12}), Offset{16});
  EXPECT_EQ(first_kept_by_count_and_age(t, Offset{99}), Offset{20}) << "never past the end";
  t.max_messages = 100;
  EXPECT_EQ(first_kept_by_count_and_age(t, std::nullopt), Offset{10});
}

TEST(Backup, RefusesARelativePathAndAStoreThatCannotCopy) {
  Fixture f;
  auto b = open_broker(storage::make_memory_store(), f.options());
  const auto relative = wait<void>([&](auto done) { b->backup("relative/dir", std::move(done)); });
  ASSERT_FALSE(relative);
  EXPECT_EQ(relative.error().code, Errc::backup_failed);
  EXPECT_THAT(relative.error().detail, ::testing::HasSubstr("not an absolute path"));
  const auto exists = wait<void>([&](auto done) { b->backup("/", std::move(done)); });
  ASSERT_FALSE(exists);
  EXPECT_EQ(exists.error().code, Errc::backup_failed);
  const auto memory = wait<void>(
      [&](auto done) { b->backup("/nonexistent-parent-dir-for-loft/x", std::move(done)); });
  ASSERT_FALSE(memory);
  EXPECT_THAT(memory.error().detail, ::testing::HasSubstr("not an existing directory"));
}

}  // namespace
}  // namespace loft::broker
