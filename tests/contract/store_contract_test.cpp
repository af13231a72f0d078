// The storage contract: one typed suite run over every Store implementation (memory and
// RocksDB), then RocksDB-only cases (reopen, reclaim, open errors) and the FaultyStore test.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include "loft/storage/store.hpp"
#include "storage/encoding.hpp"
#include "storage/rocksdb_info_log.hpp"
#include "storage/rocksdb_testing.hpp"
#include "support/faulty_store.hpp"

namespace loft {

// Readable failure output instead of gtest's byte dumps.
void PrintTo(const StoredMessage& m, std::ostream* os) {
  *os << "{offset=" << m.offset.value << " ts=" << m.timestamp_ms
      << " id=" << ::testing::PrintToString(m.message.id)
      << " key=" << ::testing::PrintToString(m.message.key)
      << " headers=" << m.message.headers.size() << " payload=" << m.message.payload.size() << "B}";
}

namespace storage {

void PrintTo(const TopicInfo& t, std::ostream* os) {
  *os << "{id=" << t.id.value << " name=" << t.name << " created=" << t.created_at_ms
      << " first=" << t.first_offset.value << " next=" << t.next_offset.value
      << " messages=" << t.messages << " bytes=" << t.bytes << "}";
}

void PrintTo(const GroupRecord& g, std::ostream* os) {
  *os << "{topic=" << g.topic.value << " name=" << ::testing::PrintToString(g.name)
      << " created=" << g.created_at_ms << " ack_timeout=" << g.ack_timeout_ms
      << " max_deliveries=" << g.max_deliveries << " backoff=" << g.backoff_base_ms << ".."
      << g.backoff_cap_ms << " delays=" << ::testing::PrintToString(g.backoff_delays_ms)
      << " dlt=" << ::testing::PrintToString(g.dead_letter_topic) << " floor=" << g.ack_floor.value
      << " done=[";
  for (const auto& [first, end] : g.done_ranges) *os << first.value << "-" << end.value << " ";
  *os << "] dead_lettered=" << g.dead_lettered << " redelivered=" << g.redelivered
      << " filter=" << ::testing::PrintToString(g.filter)
      << " annotation=" << ::testing::PrintToString(g.annotation)
      << " ordering=" << static_cast<int>(g.ordering) << " key_lookahead=" << g.key_lookahead
      << "}";
}

namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr ReadLimits kAll{.max_messages = std::numeric_limits<std::size_t>::max(),
                          .max_bytes = std::numeric_limits<std::size_t>::max()};

template <class T>
::testing::AssertionResult ok(const Result<T>& r) {
  if (r) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << r.error().to_string();
}

// A fresh directory name under the system temp dir, removed with everything in it on
// destruction. The directory itself is not created: the store must do that.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info ? info->name() : "test";
    for (auto& c : name) {
      if (std::isalnum(static_cast<unsigned char>(c)) == 0) c = '_';  // "Name/fsync" has a '/'
    }
    path_ = fs::temp_directory_path() /
            ("loft-storage-" + name + "-" + std::to_string(rd()) + std::to_string(rd()));
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::unique_ptr<Store> open_or_fail(const fs::path& dir) {
  auto store = open_rocksdb_store({.dir = dir});
  if (!store) {
    ADD_FAILURE() << "open_rocksdb_store: " << store.error().to_string();
    return nullptr;
  }
  return std::move(*store);
}

struct MemoryBackend {
  static constexpr bool kPersistent = false;
  std::unique_ptr<Store> open() { return make_memory_store(); }
};

struct RocksDbBackend {
  static constexpr bool kPersistent = true;
  TempDir dir;
  std::unique_ptr<Store> open() { return open_or_fail(dir.path()); }
};

TopicInfo topic(std::uint32_t id, std::string name) {
  TopicInfo meta;
  meta.id = TopicId{id};
  meta.name = std::move(name);
  meta.created_at_ms = 1'700'000'000'000;
  return meta;
}

Message msg(std::string payload, std::string id = {}, std::string key = {},
            std::vector<Header> headers = {}) {
  return Message{.id = std::move(id),
                 .key = std::move(key),
                 .headers = std::move(headers),
                 .payload = std::move(payload)};
}

// `m` with a subject.
Message on(std::string subject, Message m) {
  m.subject = std::move(subject);
  return m;
}

WriteBatch put(const TopicInfo& meta) { return WriteBatch{{PutTopic{meta}}}; }

// Appends `messages` at offsets first, first+1, ... with timestamp 1000 + offset.
void add_appends(WriteBatch& batch, TopicId topic, std::uint64_t first,
                 const std::vector<Message>& messages) {
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const auto offset = first + i;
    batch.ops.emplace_back(Append{.topic = topic,
                                  .offset = Offset{offset},
                                  .timestamp_ms = static_cast<std::int64_t>(1000 + offset),
                                  .message = &messages[i]});
  }
}

WriteBatch appends(TopicId topic, std::uint64_t first, const std::vector<Message>& messages) {
  WriteBatch batch;
  add_appends(batch, topic, first, messages);
  return batch;
}

std::vector<StoredMessage> stored(std::uint64_t first, const std::vector<Message>& messages) {
  std::vector<StoredMessage> out;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const auto offset = first + i;
    out.push_back({Offset{offset}, static_cast<std::int64_t>(1000 + offset), messages[i]});
  }
  return out;
}

std::vector<StoredMessage> read_all(const Store& store, TopicId topic, Offset from = Offset{0}) {
  auto r = store.read(topic, from, kAll);
  if (!r) {
    ADD_FAILURE() << "read: " << r.error().to_string();
    return {};
  }
  return std::move(*r);
}

std::vector<TopicInfo> topics_of(Store& store) {
  auto r = store.load_topics();
  if (!r) {
    ADD_FAILURE() << "load_topics: " << r.error().to_string();
    return {};
  }
  return std::move(*r);
}

std::vector<GroupRecord> groups_of(Store& store) {
  auto r = store.load_groups();
  if (!r) {
    ADD_FAILURE() << "load_groups: " << r.error().to_string();
    return {};
  }
  return std::move(*r);
}

// A group with the default settings and no progress.
GroupRecord group(std::uint32_t topic, std::string name) {
  GroupRecord g;
  g.topic = TopicId{topic};
  g.name = std::move(name);
  g.created_at_ms = 1'700'000'000'000;
  return g;
}

// A group with every field away from its default, and names and lists that exercise the
// encoding: NUL and 0xFF bytes, several backoff delays and done ranges, extreme numbers.
GroupRecord busy_group(std::uint32_t topic, std::string name) {
  using namespace std::string_literals;
  GroupRecord g;
  g.topic = TopicId{topic};
  g.name = std::move(name);
  g.created_at_ms = std::numeric_limits<std::int64_t>::min();
  g.ack_timeout_ms = 1;
  g.max_deliveries = std::numeric_limits<std::uint32_t>::max();
  g.backoff_base_ms = 250;
  g.backoff_cap_ms = 7'000;
  g.backoff_delays_ms = {0, 100, 1'000, std::numeric_limits<std::uint32_t>::max()};
  g.dead_letter_topic = "dead\0letters\xFF"s;
  g.ack_floor = Offset{1ULL << 40};
  g.done_ranges = {{Offset{(1ULL << 40) + 2}, Offset{(1ULL << 40) + 5}},
                   {Offset{(1ULL << 40) + 9}, Offset{std::numeric_limits<std::uint64_t>::max()}}};
  g.dead_lettered = 12;
  g.redelivered = std::numeric_limits<std::uint64_t>::max();
  g.skipped = 1ULL << 50;
  g.filter = "orders.*.>";
  g.annotation = "{\"nats\":1}\0\xFF"s;
  g.ordering = Ordering::key;
  g.key_lookahead = 123'456;
  return g;
}

std::vector<std::uint64_t> offsets_of(const std::vector<StoredMessage>& messages) {
  std::vector<std::uint64_t> out;
  out.reserve(messages.size());
  for (const auto& m : messages) out.push_back(m.offset.value);
  return out;
}

// Messages that exercise the encoding: NUL and 0xFF bytes everywhere, empty fields.
std::vector<Message> tricky_messages() {
  using namespace std::string_literals;
  return {
      msg("hello"),
      msg("a\0b\0\0c"s, "id-\0-1"s, "key\xFF\0"s,
          {{"content-type", "application/octet-stream"}, {"trace", "\0\x01\x02"s}, {"", ""}}),
      msg(""),                            // empty payload
      msg("", "only-id"),                 // empty payload with an id
      msg(std::string(70'000, '\0')),     // larger than 64 KiB, all NUL
      msg("\xFF\xFE\xFD"s, "", "k", {}),  // key only
      on("orders.eu.new", msg("with a subject", "id-s", "k", {{"h", "v"}})),
      on("s", msg("")),  // a subject and nothing else
  };
}

template <class Backend>
class StoreContract : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = backend_.open();
    ASSERT_NE(store_, nullptr);
  }

  Store& store() { return *store_; }

  // Persistent stores are closed and opened again from disk; the memory store stays as is.
  // Returns false (after reporting a failure) if reopening failed.
  bool reopen() {
    if constexpr (Backend::kPersistent) {
      store_.reset();
      store_ = backend_.open();
    }
    return store_ != nullptr;
  }

  Backend backend_;
  std::unique_ptr<Store> store_;
};

using Backends = ::testing::Types<MemoryBackend, RocksDbBackend>;
class BackendNames {
 public:
  template <class T>
  static std::string GetName(int) {
    return std::is_same_v<T, MemoryBackend> ? "Memory" : "RocksDb";
  }
};
TYPED_TEST_SUITE(StoreContract, Backends, BackendNames);

TYPED_TEST(StoreContract, EmptyStoreHasNoTopicsAndNoMessages) {
  EXPECT_THAT(topics_of(this->store()), IsEmpty());
  EXPECT_THAT(read_all(this->store(), TopicId{1}), IsEmpty());
  EXPECT_TRUE(ok(this->store().write(WriteBatch{}, Durability::fsync)));
  EXPECT_TRUE(ok(this->store().flush()));
  EXPECT_THAT(topics_of(this->store()), IsEmpty());
}

TYPED_TEST(StoreContract, PutTopicThenLoadTopicsReturnsIt) {
  auto a = topic(7, "orders");
  a.first_offset = Offset{3};
  a.next_offset = Offset{10};
  a.messages = 7;
  a.bytes = 1234;
  const auto b = topic(8, "audit.log");
  ASSERT_TRUE(ok(this->store().write(put(a), Durability::fsync)));
  ASSERT_TRUE(ok(this->store().write(put(b), Durability::os)));
  EXPECT_THAT(topics_of(this->store()), ElementsAre(b, a));  // in name order
  ASSERT_TRUE(this->reopen());
  EXPECT_THAT(topics_of(this->store()), ElementsAre(b, a));
}

TYPED_TEST(StoreContract, AppendedMessagesReadBackByteForByte) {
  const auto messages = tricky_messages();
  ASSERT_TRUE(ok(this->store().write(appends(TopicId{1}, 0, messages), Durability::fsync)));
  EXPECT_EQ(read_all(this->store(), TopicId{1}), stored(0, messages));
  ASSERT_TRUE(this->reopen());
  EXPECT_EQ(read_all(this->store(), TopicId{1}), stored(0, messages));
}

TYPED_TEST(StoreContract, TimestampsRoundTripIncludingExtremes) {
  const auto m = msg("x");
  WriteBatch batch;
  const std::vector<std::int64_t> stamps{0, -1, std::numeric_limits<std::int64_t>::max(),
                                         std::numeric_limits<std::int64_t>::min()};
  for (std::size_t i = 0; i < stamps.size(); ++i) {
    batch.ops.emplace_back(Append{TopicId{1}, Offset{i}, stamps[i], &m});
  }
  ASSERT_TRUE(ok(this->store().write(batch, Durability::os)));
  const auto read = read_all(this->store(), TopicId{1});
  ASSERT_THAT(read, SizeIs(stamps.size()));
  for (std::size_t i = 0; i < stamps.size(); ++i) EXPECT_EQ(read[i].timestamp_ms, stamps[i]);
}

TYPED_TEST(StoreContract, ReadsInOffsetOrderAcrossByteBoundaries) {
  // Little-endian or text keys would sort 256 before 255, or 10 before 9.
  const std::vector<std::uint64_t> offsets{1ULL << 32, 256, 9, 65'536, 255, 10, 257, 1ULL << 56};
  const auto m = msg("m");
  WriteBatch batch;
  for (const auto o : offsets) batch.ops.emplace_back(Append{TopicId{3}, Offset{o}, 0, &m});
  ASSERT_TRUE(ok(this->store().write(batch, Durability::os)));
  EXPECT_THAT(offsets_of(read_all(this->store(), TopicId{3})),
              ElementsAre(9, 10, 255, 256, 257, 65'536, 1ULL << 32, 1ULL << 56));
  EXPECT_THAT(offsets_of(read_all(this->store(), TopicId{3}, Offset{256})),
              ElementsAre(256, 257, 65'536, 1ULL << 32, 1ULL << 56));
}

TYPED_TEST(StoreContract, ReadsFromTheMiddleAndBeyondTheEnd) {
  const std::vector<Message> messages(10, msg("payload"));
  ASSERT_TRUE(ok(this->store().write(appends(TopicId{1}, 100, messages), Durability::os)));
  EXPECT_THAT(offsets_of(read_all(this->store(), TopicId{1}, Offset{105})),
              ElementsAre(105, 106, 107, 108, 109));
  EXPECT_THAT(offsets_of(read_all(this->store(), TopicId{1}, Offset{0})), SizeIs(10));
  EXPECT_THAT(offsets_of(read_all(this->store(), TopicId{1}, Offset{109})), ElementsAre(109));
  EXPECT_THAT(read_all(this->store(), TopicId{1}, Offset{110}), IsEmpty());
  EXPECT_THAT(
      read_all(this->store(), TopicId{1}, Offset{std::numeric_limits<std::uint64_t>::max()}),
      IsEmpty());
}

// Appends made by one write at consecutive offsets may share a record (the RocksDB store's
// layout): reads from any offset, trims to any offset, and both across a reopen see exactly
// the messages they should, whatever the record boundaries.
TYPED_TEST(StoreContract, ReadsAndTrimsAtEveryOffsetOfMessagesWrittenTogether) {
  std::vector<Message> messages;
  for (int i = 0; i < 13; ++i) messages.push_back(msg("p" + std::to_string(i), "", "k"));
  // Writes of 5, 1 and 7 messages, to one topic per trim point (topic 100 + end).
  const auto write_all = [&](std::uint32_t topic) {
    const std::vector<Message> a(messages.begin(), messages.begin() + 5);
    const std::vector<Message> b(messages.begin() + 5, messages.begin() + 6);
    const std::vector<Message> c(messages.begin() + 6, messages.end());
    ASSERT_TRUE(ok(this->store().write(appends(TopicId{topic}, 0, a), Durability::os)));
    ASSERT_TRUE(ok(this->store().write(appends(TopicId{topic}, 5, b), Durability::os)));
    ASSERT_TRUE(ok(this->store().write(appends(TopicId{topic}, 6, c), Durability::os)));
  };
  const auto tail = [&](std::uint64_t from) {
    return stored(from,
                  std::vector<Message>(messages.begin() + static_cast<long>(from), messages.end()));
  };
  write_all(99);
  for (std::uint64_t from = 0; from <= 13; ++from) {
    EXPECT_EQ(read_all(this->store(), TopicId{99}, Offset{from}), tail(from)) << "from " << from;
  }
  for (std::uint64_t end = 0; end <= 13; ++end) {
    const auto topic = static_cast<std::uint32_t>(100 + end);
    write_all(topic);
    ASSERT_TRUE(ok(
        this->store().write(WriteBatch{{TrimTopic{TopicId{topic}, Offset{end}}}}, Durability::os)));
  }
  for (int pass = 0; pass < 2; ++pass) {
    for (std::uint64_t end = 0; end <= 13; ++end) {
      const TopicId topic{static_cast<std::uint32_t>(100 + end)};
      EXPECT_EQ(read_all(this->store(), topic), tail(end)) << "trimmed to " << end;
      for (std::uint64_t from = end; from <= 13; ++from) {
        EXPECT_EQ(read_all(this->store(), topic, Offset{from}), tail(from))
            << "trimmed to " << end << ", read from " << from;
      }
    }
    EXPECT_EQ(read_all(this->store(), TopicId{99}), tail(0));
    ASSERT_TRUE(this->reopen());
  }
}

// A write's ops apply in order, also where the RocksDB store keeps a batch's appends as records
// it puts last: a trim in the same batch cuts them, a second smaller trim removes nothing more.
TYPED_TEST(StoreContract, TrimsApplyInOrderToAppendsOfTheSameWrite) {
  std::vector<Message> m;
  for (int i = 0; i < 10; ++i) m.push_back(msg("a" + std::to_string(i)));
  const std::vector<Message> first(m.begin(), m.begin() + 5);
  const std::vector<Message> second(m.begin() + 5, m.end());
  // Appends then a trim into them, in one write.
  auto batch = appends(TopicId{1}, 0, first);
  batch.ops.emplace_back(TrimTopic{TopicId{1}, Offset{2}});
  ASSERT_TRUE(ok(this->store().write(batch, Durability::os)));
  EXPECT_EQ(read_all(this->store(), TopicId{1}), stored(2, {m.begin() + 2, m.begin() + 5}));
  // Stored messages, then appends and a trim into the new ones, in one write.
  ASSERT_TRUE(ok(this->store().write(appends(TopicId{2}, 0, first), Durability::os)));
  batch = appends(TopicId{2}, 5, second);
  batch.ops.emplace_back(TrimTopic{TopicId{2}, Offset{7}});
  ASSERT_TRUE(ok(this->store().write(batch, Durability::os)));
  EXPECT_EQ(read_all(this->store(), TopicId{2}), stored(7, {m.begin() + 7, m.end()}));
  // Two trims of one topic in one write, the second lower: the first one stands.
  ASSERT_TRUE(ok(this->store().write(appends(TopicId{3}, 0, m), Durability::os)));
  ASSERT_TRUE(ok(this->store().write(
      WriteBatch{{TrimTopic{TopicId{3}, Offset{5}}, TrimTopic{TopicId{3}, Offset{3}}}},
      Durability::os)));
  EXPECT_EQ(read_all(this->store(), TopicId{3}), stored(5, {m.begin() + 5, m.end()}));
  // Appends, a drop of the topic, in one write: nothing of it is left.
  batch = appends(TopicId{4}, 0, m);
  batch.ops.emplace_back(DropTopic{TopicId{4}, "four"});
  ASSERT_TRUE(ok(this->store().write(batch, Durability::os)));
  EXPECT_THAT(read_all(this->store(), TopicId{4}), IsEmpty());
  ASSERT_TRUE(this->reopen());
  EXPECT_EQ(read_all(this->store(), TopicId{1}), stored(2, {m.begin() + 2, m.begin() + 5}));
  EXPECT_EQ(read_all(this->store(), TopicId{2}), stored(7, {m.begin() + 7, m.end()}));
  EXPECT_EQ(read_all(this->store(), TopicId{3}), stored(5, {m.begin() + 5, m.end()}));
  EXPECT_THAT(read_all(this->store(), TopicId{4}), IsEmpty());
}

// Reads never cross into a neighbouring topic's records, on flushed files as in the memtable.
TYPED_TEST(StoreContract, ReadsStayWithinTheirTopicAfterAFlush) {
  std::vector<Message> m;
  for (int i = 0; i < 10; ++i) m.push_back(msg("n" + std::to_string(i)));
  auto batch = appends(TopicId{1}, 0, m);
  add_appends(batch, TopicId{2}, 0, m);
  ASSERT_TRUE(ok(this->store().write(batch, Durability::os)));
  ASSERT_TRUE(
      ok(this->store().write(WriteBatch{{TrimTopic{TopicId{2}, Offset{5}}}}, Durability::os)));
  ASSERT_TRUE(ok(this->store().flush()));
  EXPECT_EQ(offsets_of(read_all(this->store(), TopicId{2})),
            (std::vector<std::uint64_t>{5, 6, 7, 8, 9}));
  EXPECT_EQ(offsets_of(read_all(this->store(), TopicId{2}, Offset{3})),
            (std::vector<std::uint64_t>{5, 6, 7, 8, 9}));
  EXPECT_THAT(read_all(this->store(), TopicId{3}, Offset{3}), IsEmpty());
  EXPECT_THAT(read_all(this->store(), TopicId{2}, Offset{12}), IsEmpty());
  const auto one = this->store().read(TopicId{1}, Offset{4}, ReadLimits{1, kAll.max_bytes});
  ASSERT_TRUE(one);
  EXPECT_EQ(offsets_of(*one), (std::vector<std::uint64_t>{4}));
}

TYPED_TEST(StoreContract, ReadStopsAtMaxMessages) {
  const std::vector<Message> messages(10, msg("p"));
  ASSERT_TRUE(ok(this->store().write(appends(TopicId{1}, 0, messages), Durability::os)));
  auto r = this->store().read(TopicId{1}, Offset{2}, {.max_messages = 3, .max_bytes = 1 << 20});
  ASSERT_TRUE(ok(r));
  EXPECT_THAT(offsets_of(*r), ElementsAre(2, 3, 4));
  r = this->store().read(TopicId{1}, Offset{8}, {.max_messages = 3, .max_bytes = 1 << 20});
  ASSERT_TRUE(ok(r));
  EXPECT_THAT(offsets_of(*r), ElementsAre(8, 9));
}

TYPED_TEST(StoreContract, ReadStopsAfterTheMessageThatCrossesMaxBytes) {
  // size_bytes() counts id + key + subject + headers + payload: each message here is 10 bytes.
  std::vector<Message> messages(10, msg("123456", "ab", "cd"));
  for (std::size_t i = 0; i < messages.size(); i += 2) messages[i] = on("s.t", msg("12345", "ab"));
  ASSERT_EQ(messages[0].size_bytes(), 10U);
  ASSERT_EQ(messages[1].size_bytes(), 10U);
  ASSERT_TRUE(ok(this->store().write(appends(TopicId{1}, 0, messages), Durability::os)));
  const auto read = [&](std::size_t max_bytes) {
    auto r =
        this->store().read(TopicId{1}, Offset{0}, {.max_messages = 100, .max_bytes = max_bytes});
    EXPECT_TRUE(ok(r));
    return r ? offsets_of(*r) : std::vector<std::uint64_t>{};
  };
  EXPECT_THAT(read(25), ElementsAre(0, 1, 2));  // 30 bytes: the third crosses 25
  EXPECT_THAT(read(20), ElementsAre(0, 1));     // 20 bytes reach the limit exactly
  EXPECT_THAT(read(1), ElementsAre(0));         // at least one, though larger than the limit
  EXPECT_THAT(read(0), ElementsAre(0));
}

TYPED_TEST(StoreContract, ReadReturnsAMessageLargerThanMaxBytes) {
  const std::vector<Message> messages{msg(std::string(100'000, 'x')), msg("small")};
  ASSERT_TRUE(ok(this->store().write(appends(TopicId{1}, 0, messages), Durability::os)));
  auto r = this->store().read(TopicId{1}, Offset{0}, {.max_messages = 10, .max_bytes = 1024});
  ASSERT_TRUE(ok(r));
  EXPECT_EQ(*r, stored(0, {messages[0]}));
}

// What a block's views show, as Message objects.
std::vector<StoredMessage> materialize(const MessageBlock& block) {
  std::vector<StoredMessage> out;
  for (const auto& v : block.messages) {
    StoredMessage m{v.offset, v.timestamp_ms, {}};
    m.message.id = v.id;
    m.message.key = v.key;
    for (const auto& h : v.headers)
      m.message.headers.push_back({std::string(h.name), std::string(h.value)});
    m.message.payload = v.payload;
    m.message.subject = v.subject;
    out.push_back(std::move(m));
  }
  return out;
}

// read_block shows exactly what read() returns, for every start and limit, across records of
// several messages, a trim inside a record, headers, empty fields and NUL bytes; and a block
// stays readable after the store has moved on (written, flushed, reopened): it owns its bytes.
TYPED_TEST(StoreContract, ReadBlockShowsWhatReadReturns) {
  const std::vector<Message> first{
      msg("a"), msg("", "id-1"), msg(std::string("n\0l", 3), "", "key", {{"h1", "v1"}, {"", ""}}),
      msg(std::string(70'000, 'x'), "id-2", "k2", {{"only", std::string(300, 'y')}}),
      on("a.b", msg("e", {}, {}, {{"x", ""}, {"y", "z"}, {"x", "again"}}))};
  const std::vector<Message> second{msg("f"), on("g.h", msg("g", "id-3")),
                                    msg("h", {}, {}, {{"a", "b"}})};
  const std::vector<Message> third{msg("i")};
  ASSERT_TRUE(ok(this->store().write(appends(TopicId{1}, 0, first), Durability::os)));
  ASSERT_TRUE(ok(this->store().write(appends(TopicId{1}, 5, second), Durability::os)));
  ASSERT_TRUE(ok(this->store().write(appends(TopicId{1}, 8, third), Durability::os)));
  ASSERT_TRUE(ok(this->store().write(appends(TopicId{2}, 0, second), Durability::os)));
  ASSERT_TRUE(
      ok(this->store().write(WriteBatch{{TrimTopic{TopicId{1}, Offset{2}}}}, Durability::os)));
  const std::vector<ReadLimits> limits{kAll,
                                       {.max_messages = 1, .max_bytes = 1 << 20},
                                       {.max_messages = 3, .max_bytes = 1 << 20},
                                       {.max_messages = 100, .max_bytes = 15},
                                       {.max_messages = 100, .max_bytes = 70'001}};
  const auto check_all = [&] {
    for (std::uint64_t from = 0; from <= 10; ++from) {
      for (const auto& l : limits) {
        const auto want = this->store().read(TopicId{1}, Offset{from}, l);
        const auto got = this->store().read_block(TopicId{1}, Offset{from}, l);
        ASSERT_TRUE(ok(want));
        ASSERT_TRUE(ok(got));
        ASSERT_NE(*got, nullptr);
        EXPECT_EQ(materialize(**got), *want) << "from " << from << " max_messages "
                                             << l.max_messages << " max_bytes " << l.max_bytes;
      }
    }
  };
  check_all();
  auto held = this->store().read_block(TopicId{1}, Offset{0}, kAll);
  ASSERT_TRUE(ok(held));
  const auto expected = materialize(**held);
  ASSERT_EQ(offsets_of(expected), (std::vector<std::uint64_t>{2, 3, 4, 5, 6, 7, 8}));
  ASSERT_TRUE(ok(this->store().flush()));
  check_all();
  ASSERT_TRUE(ok(this->store().write(appends(TopicId{1}, 9, second), Durability::os)));
  ASSERT_TRUE(this->reopen());
  check_all();
  EXPECT_EQ(materialize(**held), expected);
}

TYPED_TEST(StoreContract, TopicsDoNotSeeEachOthersMessages) {
  // Neighbouring ids, including ones that differ in a higher key byte and the largest id.
  const std::vector<std::uint32_t> ids{1, 2, 0xFF, 0x100, 0xFFFF'FFFE, 0xFFFF'FFFF};
  std::vector<std::vector<Message>> logs;
  logs.reserve(ids.size());
  for (const auto id : ids) {
    logs.push_back({msg("t" + std::to_string(id) + "-0"), msg("t" + std::to_string(id) + "-1")});
  }
  WriteBatch batch;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    // The largest offsets, too, so a topic's range end cannot cut them off.
    add_appends(batch, TopicId{ids[i]},
                i % 2 == 0 ? 0 : std::numeric_limits<std::uint64_t>::max() - 1, logs[i]);
  }
  ASSERT_TRUE(ok(this->store().write(batch, Durability::os)));
  for (std::size_t i = 0; i < ids.size(); ++i) {
    SCOPED_TRACE("topic id " + std::to_string(ids[i]));
    const auto first = i % 2 == 0 ? 0 : std::numeric_limits<std::uint64_t>::max() - 1;
    EXPECT_EQ(read_all(this->store(), TopicId{ids[i]}), stored(first, logs[i]));
  }
  EXPECT_THAT(read_all(this->store(), TopicId{3}), IsEmpty());
  EXPECT_THAT(read_all(this->store(), TopicId{0}), IsEmpty());
}

TYPED_TEST(StoreContract, BatchWithTopicAndAppendsIsAppliedWhole) {
  auto meta = topic(5, "events");
  const auto messages = tricky_messages();
  meta.next_offset = Offset{messages.size()};
  meta.messages = messages.size();
  WriteBatch batch = put(meta);
  add_appends(batch, meta.id, 0, messages);
  ASSERT_TRUE(ok(this->store().write(batch, Durability::fsync)));
  ASSERT_TRUE(this->reopen());
  EXPECT_THAT(topics_of(this->store()), ElementsAre(meta));
  EXPECT_EQ(read_all(this->store(), meta.id), stored(0, messages));
}

TYPED_TEST(StoreContract, FailedBatchChangesNothing) {
  const std::vector<Message> messages{msg("m")};  // must outlive write(): Append points into it
  WriteBatch batch = put(topic(5, "events"));
  add_appends(batch, TopicId{5}, 0, messages);
  batch.ops.emplace_back(Append{TopicId{5}, Offset{1}, 0, nullptr});  // invalid: no message
  const auto r = this->store().write(batch, Durability::fsync);
  ASSERT_FALSE(r);
  EXPECT_THAT(topics_of(this->store()), IsEmpty());
  EXPECT_THAT(read_all(this->store(), TopicId{5}), IsEmpty());
  ASSERT_TRUE(this->reopen());
  EXPECT_THAT(topics_of(this->store()), IsEmpty());
  EXPECT_THAT(read_all(this->store(), TopicId{5}), IsEmpty());
}

TYPED_TEST(StoreContract, DropTopicRemovesMetaAndMessages) {
  const std::vector<Message> messages(20, msg("old data"));
  const auto old_topic = topic(10, "jobs");
  const auto neighbour = topic(11, "other");
  WriteBatch batch = put(old_topic);
  batch.ops.emplace_back(PutTopic{neighbour});
  add_appends(batch, old_topic.id, 0, messages);
  add_appends(batch, neighbour.id, 0, messages);
  ASSERT_TRUE(ok(this->store().write(batch, Durability::fsync)));

  ASSERT_TRUE(ok(this->store().write(WriteBatch{{DropTopic{old_topic.id, old_topic.name}}},
                                     Durability::fsync)));
  EXPECT_THAT(topics_of(this->store()), ElementsAre(neighbour));
  EXPECT_THAT(read_all(this->store(), old_topic.id), IsEmpty());
  EXPECT_EQ(read_all(this->store(), neighbour.id), stored(0, messages));

  // Same name, new id (ids are never reused): starts empty.
  const auto new_topic = topic(12, "jobs");
  ASSERT_TRUE(ok(this->store().write(put(new_topic), Durability::fsync)));
  EXPECT_THAT(read_all(this->store(), new_topic.id), IsEmpty());
  ASSERT_TRUE(ok(this->store().reclaim(old_topic.id)));

  ASSERT_TRUE(this->reopen());
  EXPECT_THAT(topics_of(this->store()), ElementsAre(new_topic, neighbour));
  EXPECT_THAT(read_all(this->store(), old_topic.id), IsEmpty());
  EXPECT_THAT(read_all(this->store(), new_topic.id), IsEmpty());
  EXPECT_EQ(read_all(this->store(), neighbour.id), stored(0, messages));
}

// `m` delivered at `due_ms`.
Message at(std::int64_t due_ms, Message m) {
  m.deliver_at_ms = due_ms;
  return m;
}

std::vector<ScheduledMessage> schedule_of(
    const Store& store, std::int64_t from = 0,
    std::int64_t up_to = std::numeric_limits<std::int64_t>::max() - 1, ReadLimits limits = kAll) {
  auto r = store.read_schedule(from, up_to, limits);
  if (!r) {
    ADD_FAILURE() << "read_schedule: " << r.error().to_string();
    return {};
  }
  return std::move(*r);
}

std::vector<std::int64_t> dues_of(const std::vector<ScheduledMessage>& entries) {
  std::vector<std::int64_t> out;
  for (const auto& e : entries) out.push_back(e.due_ms);
  return out;
}

// A delayed message is stored with its delivery time (the log's copy) and kept whole in the
// schedule (the copy that is released), ordered by due time whatever the write order, across
// a reopen.
TYPED_TEST(StoreContract, ScheduledMessagesReadBackInDueOrderWithTheirStoredCopies) {
  using namespace std::string_literals;
  const std::vector<Message> messages{
      at(5'000, msg("late", "id-late", "k1", {{"h", "v\0"s}})),
      at(1'000, on("a.b", msg("early\0"s, "", "k2"))),
      at(3'000, msg("")),
      msg("at once"),
  };
  WriteBatch batch = appends(TopicId{7}, 0, messages);
  for (std::size_t i = 0; i < 3; ++i) {
    batch.ops.emplace_back(
        Schedule{TopicId{7}, Offset{i}, static_cast<std::int64_t>(1000 + i), &messages[i]});
  }
  batch.ops.emplace_back(Schedule{TopicId{3}, Offset{9}, 42, &messages[2]});  // same due, topic 3
  ASSERT_TRUE(ok(this->store().write(batch, Durability::fsync)));
  ASSERT_TRUE(this->reopen());
  EXPECT_EQ(read_all(this->store(), TopicId{7}), stored(0, messages));  // deliver_at_ms kept
  const auto all = schedule_of(this->store());
  ASSERT_THAT(all, SizeIs(4));
  EXPECT_EQ(all[0], (ScheduledMessage{1'000, TopicId{7}, Offset{1}, 1001, messages[1]}));
  EXPECT_EQ(all[1], (ScheduledMessage{3'000, TopicId{3}, Offset{9}, 42, messages[2]}));
  EXPECT_EQ(all[2], (ScheduledMessage{3'000, TopicId{7}, Offset{2}, 1002, messages[2]}));
  EXPECT_EQ(all[3], (ScheduledMessage{5'000, TopicId{7}, Offset{0}, 1000, messages[0]}));
  // Bounds are inclusive; limits cut the read.
  EXPECT_THAT(dues_of(schedule_of(this->store(), 0, 2'999)), ElementsAre(1'000));
  EXPECT_THAT(dues_of(schedule_of(this->store(), 1'001, 3'000)), ElementsAre(3'000, 3'000));
  EXPECT_THAT(dues_of(schedule_of(this->store(), 3'000, 5'000, ReadLimits{2, 1 << 20})),
              ElementsAre(3'000, 3'000));
  EXPECT_THAT(schedule_of(this->store(), 5'001), IsEmpty());
  EXPECT_THAT(schedule_of(this->store(), 2'000, 1'000), IsEmpty());
}

// A release: the entry's deletion and the released copy's append are one write, and a trim
// or a drop of the topic leaves the schedule alone.
TYPED_TEST(StoreContract, UnscheduleGoesWithTheReleasedAppendAndTrimsLeaveTheSchedule) {
  const std::vector<Message> delayed{at(2'000, msg("a", "id-a")), at(4'000, msg("b"))};
  WriteBatch batch = appends(TopicId{4}, 0, delayed);
  for (std::size_t i = 0; i < delayed.size(); ++i) {
    batch.ops.emplace_back(
        Schedule{TopicId{4}, Offset{i}, static_cast<std::int64_t>(1000 + i), &delayed[i]});
  }
  ASSERT_TRUE(ok(this->store().write(batch, Durability::fsync)));
  ASSERT_TRUE(
      ok(this->store().write(WriteBatch{{TrimTopic{TopicId{4}, Offset{2}}}}, Durability::fsync)));
  EXPECT_THAT(read_all(this->store(), TopicId{4}), IsEmpty());
  ASSERT_THAT(schedule_of(this->store()), SizeIs(2));

  const Message released = msg("a", "id-a");
  WriteBatch release{
      {Append{TopicId{4}, Offset{2}, 2'000, &released}, Unschedule{2'000, TopicId{4}, Offset{0}}}};
  ASSERT_TRUE(ok(this->store().write(release, Durability::fsync)));
  ASSERT_TRUE(this->reopen());
  EXPECT_THAT(offsets_of(read_all(this->store(), TopicId{4})), ElementsAre(2));
  EXPECT_THAT(dues_of(schedule_of(this->store())), ElementsAre(4'000));
  // Deleting what is not there is no error.
  ASSERT_TRUE(ok(this->store().write(WriteBatch{{Unschedule{2'000, TopicId{4}, Offset{0}}}},
                                     Durability::fsync)));
  ASSERT_TRUE(ok(this->store().write(WriteBatch{{DropTopic{TopicId{4}, "t"}}}, Durability::fsync)));
  EXPECT_THAT(dues_of(schedule_of(this->store())), ElementsAre(4'000));
}

TYPED_TEST(StoreContract, AScheduleWithoutADueTimeFailsTheWholeBatch) {
  const std::vector<Message> messages{msg("now")};
  WriteBatch batch = appends(TopicId{4}, 0, messages);
  batch.ops.emplace_back(Schedule{TopicId{4}, Offset{0}, 1, &messages[0]});
  EXPECT_FALSE(this->store().write(batch, Durability::fsync));
  EXPECT_THAT(read_all(this->store(), TopicId{4}), IsEmpty());
  EXPECT_THAT(schedule_of(this->store()), IsEmpty());
}

TYPED_TEST(StoreContract, TrimTopicRemovesOnlyItsMessagesBelowTheEndAndKeepsDedupEntries) {
  const std::vector<Message> messages(10, msg("m"));
  WriteBatch batch = appends(TopicId{4}, 0, messages);
  add_appends(batch, TopicId{5}, 0, messages);  // the next topic's messages stay
  batch.ops.emplace_back(PutDedup{TopicId{4}, "first", Offset{0}, 1, 2});
  ASSERT_TRUE(ok(this->store().write(batch, Durability::fsync)));

  ASSERT_TRUE(
      ok(this->store().write(WriteBatch{{TrimTopic{TopicId{4}, Offset{7}}}}, Durability::fsync)));
  ASSERT_TRUE(ok(this->store().reclaim_trimmed(TopicId{4}, Offset{7})));
  ASSERT_TRUE(this->reopen());
  EXPECT_EQ(offsets_of(read_all(this->store(), TopicId{4})), (std::vector<std::uint64_t>{7, 8, 9}));
  EXPECT_THAT(read_all(this->store(), TopicId{5}), SizeIs(10));
  // The id of a removed message stays known until its dedup window expires.
  EXPECT_TRUE(this->store().find_dedup(TopicId{4}, "first").value().has_value());
  // Trimming again below the new start changes nothing.
  ASSERT_TRUE(
      ok(this->store().write(WriteBatch{{TrimTopic{TopicId{4}, Offset{3}}}}, Durability::fsync)));
  EXPECT_THAT(read_all(this->store(), TopicId{4}), SizeIs(3));
}

TYPED_TEST(StoreContract, DropTopicHidesMessagesAlreadyFlushed) {
  // Messages in one flushed file and the drop in a later one: the drop must still hide them
  // (the later file holds no message of the topic, so a filter must not skip it).
  const std::vector<Message> messages(5, msg("flushed"));
  WriteBatch batch = put(topic(1, "t"));
  add_appends(batch, TopicId{1}, 0, messages);
  add_appends(batch, TopicId{2}, 0, messages);
  ASSERT_TRUE(ok(this->store().write(batch, Durability::os)));
  ASSERT_TRUE(ok(this->store().flush()));
  ASSERT_TRUE(ok(this->store().write(WriteBatch{{DropTopic{TopicId{1}, "t"}}}, Durability::os)));
  ASSERT_TRUE(ok(this->store().flush()));
  EXPECT_THAT(read_all(this->store(), TopicId{1}), IsEmpty());
  EXPECT_THAT(read_all(this->store(), TopicId{1}, Offset{3}), IsEmpty());
  EXPECT_EQ(read_all(this->store(), TopicId{2}), stored(0, messages));
  ASSERT_TRUE(this->reopen());
  EXPECT_THAT(read_all(this->store(), TopicId{1}), IsEmpty());
  EXPECT_THAT(topics_of(this->store()), IsEmpty());
}

TYPED_TEST(StoreContract, DropAndRecreateUnderTheSameNameInOneBatch) {
  const std::vector<Message> messages(3, msg("old"));
  WriteBatch batch = put(topic(1, "t"));
  add_appends(batch, TopicId{1}, 0, messages);
  ASSERT_TRUE(ok(this->store().write(batch, Durability::os)));
  const auto recreated = topic(2, "t");
  ASSERT_TRUE(ok(this->store().write(WriteBatch{{DropTopic{TopicId{1}, "t"}, PutTopic{recreated}}},
                                     Durability::os)));
  EXPECT_THAT(topics_of(this->store()), ElementsAre(recreated));
  EXPECT_THAT(read_all(this->store(), TopicId{1}), IsEmpty());
  EXPECT_THAT(read_all(this->store(), TopicId{2}), IsEmpty());
}

TYPED_TEST(StoreContract, TopicMetaUpdatesPersist) {
  auto meta = topic(3, "metrics");
  ASSERT_TRUE(ok(this->store().write(put(meta), Durability::fsync)));
  const std::vector<Message> messages{msg("abc"), msg("defg", "id")};
  meta.next_offset = Offset{2};
  meta.messages = 2;
  meta.bytes = messages[0].size_bytes() + messages[1].size_bytes();
  WriteBatch batch = appends(meta.id, 0, messages);
  batch.ops.emplace_back(PutTopic{meta});  // a message and its topic's new metadata together
  ASSERT_TRUE(ok(this->store().write(batch, Durability::fsync)));
  EXPECT_THAT(topics_of(this->store()), ElementsAre(meta));

  meta.first_offset = Offset{1};
  meta.messages = 1;
  meta.bytes = messages[1].size_bytes();
  ASSERT_TRUE(ok(this->store().write(put(meta), Durability::os)));
  ASSERT_TRUE(ok(this->store().flush()));
  ASSERT_TRUE(this->reopen());
  EXPECT_THAT(topics_of(this->store()), ElementsAre(meta));
  EXPECT_EQ(read_all(this->store(), meta.id), stored(0, messages));
}

TYPED_TEST(StoreContract, NextTopicIdPersists) {
  EXPECT_EQ(this->store().load_next_topic_id().value(), TopicId{1});
  WriteBatch batch;
  batch.ops.emplace_back(SetNextTopicId{TopicId{7}});
  ASSERT_TRUE(ok(this->store().write(batch, Durability::fsync)));
  EXPECT_EQ(this->store().load_next_topic_id().value(), TopicId{7});
  batch.ops.clear();
  batch.ops.emplace_back(SetNextTopicId{TopicId{0x12345678}});
  ASSERT_TRUE(ok(this->store().write(batch, Durability::os)));
  ASSERT_TRUE(this->reopen());
  EXPECT_EQ(this->store().load_next_topic_id().value(), TopicId{0x12345678});
}

TYPED_TEST(StoreContract, EmptyStoreHasNoGroups) {
  EXPECT_THAT(groups_of(this->store()), IsEmpty());
  ASSERT_TRUE(this->reopen());
  EXPECT_THAT(groups_of(this->store()), IsEmpty());
}

TYPED_TEST(StoreContract, PutGroupThenLoadGroupsReturnsEveryField) {
  using namespace std::string_literals;
  const auto plain = group(4, "billing");             // empty delays, no done ranges
  const auto busy = busy_group(4, "work\0ers\xFF"s);  // every field set
  auto one_delay = group(4, "");                      // empty name, one delay, one range
  one_delay.backoff_delays_ms = {5};
  one_delay.done_ranges = {{Offset{3}, Offset{4}}};
  one_delay.dead_letter_topic = "dlq";
  WriteBatch batch{{PutGroup{busy}, PutGroup{plain}}};
  batch.ops.emplace_back(PutGroup{one_delay});
  ASSERT_TRUE(ok(this->store().write(batch, Durability::fsync)));
  EXPECT_THAT(groups_of(this->store()), ElementsAre(one_delay, plain, busy));  // by name bytes
  ASSERT_TRUE(this->reopen());
  EXPECT_THAT(groups_of(this->store()), ElementsAre(one_delay, plain, busy));
}

TYPED_TEST(StoreContract, GroupUpdatesPersistAcrossReopen) {
  auto g = group(2, "g");
  g.backoff_delays_ms = {10, 20};
  ASSERT_TRUE(ok(this->store().write(WriteBatch{{PutGroup{g}}}, Durability::fsync)));
  ASSERT_TRUE(ok(this->store().flush()));  // the first version in an SST file, the update not
  g.ack_floor = Offset{17};
  g.done_ranges = {{Offset{19}, Offset{21}}};
  g.dead_lettered = 1;
  g.redelivered = 3;
  ASSERT_TRUE(ok(this->store().write(WriteBatch{{PutGroup{g}}}, Durability::os)));
  EXPECT_THAT(groups_of(this->store()), ElementsAre(g));
  ASSERT_TRUE(this->reopen());
  EXPECT_THAT(groups_of(this->store()), ElementsAre(g));

  g.ack_floor = Offset{22};  // the floor caught up: no ranges left
  g.done_ranges.clear();
  g.annotation = "a front end's settings, changed";  // an annotation written with progress
  ASSERT_TRUE(ok(this->store().write(WriteBatch{{PutGroup{g}}}, Durability::fsync)));
  ASSERT_TRUE(this->reopen());
  EXPECT_THAT(groups_of(this->store()), ElementsAre(g));
}

TYPED_TEST(StoreContract, DropGroupRemovesOnlyThatGroup) {
  const auto a1 = group(1, "a");
  const auto b1 = group(1, "b");
  const auto a2 = group(2, "a");
  const auto ab1 = group(1, "ab");  // "a" is its prefix
  ASSERT_TRUE(ok(this->store().write(
      WriteBatch{{PutGroup{a1}, PutGroup{b1}, PutGroup{a2}, PutGroup{ab1}}}, Durability::fsync)));
  ASSERT_TRUE(ok(this->store().write(WriteBatch{{DropGroup{TopicId{1}, "a"}}}, Durability::fsync)));
  EXPECT_THAT(groups_of(this->store()), ElementsAre(ab1, b1, a2));
  // Dropping a group that does not exist is not an error and changes nothing.
  ASSERT_TRUE(ok(this->store().write(WriteBatch{{DropGroup{TopicId{3}, "a"}}}, Durability::fsync)));
  ASSERT_TRUE(this->reopen());
  EXPECT_THAT(groups_of(this->store()), ElementsAre(ab1, b1, a2));
}

TYPED_TEST(StoreContract, GroupsComeBackOrderedByTopicIdThenName) {
  using namespace std::string_literals;
  // 0xFF and 0x100 differ in a higher byte: a little-endian key would put 0x100 first. Names
  // compare as unsigned bytes: "\xFF" after "b", "" and "\0" before "a".
  const std::vector<GroupRecord> ordered{
      group(1, "z"),        group(0xFF, ""),           group(0xFF, "\0"s), group(0xFF, "a"),
      group(0xFF, "b"),     group(0xFF, "\xFF"s),      group(0x100, "a"),  group(0x100, "aa"),
      group(0x1'0000, "a"), group(0xFFFF'FFFF, "last")};
  WriteBatch batch;
  for (auto it = ordered.rbegin(); it != ordered.rend(); ++it)
    batch.ops.emplace_back(PutGroup{*it});
  ASSERT_TRUE(ok(this->store().write(batch, Durability::os)));
  EXPECT_EQ(groups_of(this->store()), ordered);
  ASSERT_TRUE(this->reopen());
  EXPECT_EQ(groups_of(this->store()), ordered);
}

TYPED_TEST(StoreContract, DropTopicDropsItsGroupsButNotOtherTopics) {
  using namespace std::string_literals;
  const std::vector<std::uint32_t> ids{0xFE, 0xFF, 0x100, 0xFFFF'FFFE, 0xFFFF'FFFF};
  WriteBatch batch;
  for (const auto id : ids) {
    batch.ops.emplace_back(PutTopic{topic(id, "t" + std::to_string(id))});
    for (auto name : {"a"s, "\xFF\xFF\xFF\xFF"s, ""s})
      batch.ops.emplace_back(PutGroup{group(id, name)});
  }
  ASSERT_TRUE(ok(this->store().write(batch, Durability::fsync)));
  ASSERT_TRUE(ok(this->store().flush()));  // the groups in SST files, the drops in the memtable

  ASSERT_TRUE(
      ok(this->store().write(WriteBatch{{DropTopic{TopicId{0xFF}, "t255"}}}, Durability::fsync)));
  // The largest id has no range end: its groups in the DB and one put earlier in the batch
  // must all go; one put after the drop in the same batch stays (ops apply in order).
  const auto kept = group(0xFFFF'FFFF, "after");
  ASSERT_TRUE(ok(this->store().write(
      WriteBatch{{PutGroup{group(0xFFFF'FFFF, "before")},
                  DropTopic{TopicId{0xFFFF'FFFF}, "t4294967295"}, PutGroup{kept}}},
      Durability::fsync)));

  const auto expected = [&] {
    std::vector<GroupRecord> out;
    for (const auto id : {0xFEU, 0x100U, 0xFFFF'FFFEU}) {
      for (auto name : {""s, "a"s, "\xFF\xFF\xFF\xFF"s}) out.push_back(group(id, name));
    }
    out.push_back(kept);
    return out;
  }();
  EXPECT_EQ(groups_of(this->store()), expected);
  ASSERT_TRUE(this->reopen());
  EXPECT_EQ(groups_of(this->store()), expected);
}

TYPED_TEST(StoreContract, GroupInABatchWithAppendsIsAppliedWhole) {
  // What the broker writes when it dead-letters: the append to the dead-letter topic, that
  // topic's new metadata and the group's new progress, together.
  const std::vector<Message> dead{msg("poison", "id-1")};
  auto dlq = topic(9, "orders.dlq");
  dlq.next_offset = Offset{1};
  dlq.messages = 1;
  dlq.bytes = dead[0].size_bytes();
  auto g = group(8, "shipping");
  g.dead_letter_topic = dlq.name;
  g.ack_floor = Offset{6};
  g.dead_lettered = 1;
  WriteBatch batch = appends(dlq.id, 0, dead);
  batch.ops.emplace_back(PutTopic{dlq});
  batch.ops.emplace_back(PutGroup{g});
  ASSERT_TRUE(ok(this->store().write(batch, Durability::fsync)));
  ASSERT_TRUE(this->reopen());
  EXPECT_THAT(groups_of(this->store()), ElementsAre(g));
  EXPECT_THAT(topics_of(this->store()), ElementsAre(dlq));
  EXPECT_EQ(read_all(this->store(), dlq.id), stored(0, dead));

  // A batch that fails leaves the group as it was, as well as the messages.
  auto moved = g;
  moved.ack_floor = Offset{7};
  moved.dead_lettered = 2;
  WriteBatch bad = appends(dlq.id, 1, dead);
  bad.ops.emplace_back(PutGroup{moved});
  bad.ops.emplace_back(DropGroup{TopicId{8}, "shipping"});
  bad.ops.emplace_back(Append{dlq.id, Offset{2}, 0, nullptr});  // invalid: no message
  ASSERT_FALSE(this->store().write(bad, Durability::fsync));
  ASSERT_TRUE(this->reopen());
  EXPECT_THAT(groups_of(this->store()), ElementsAre(g));
  EXPECT_EQ(read_all(this->store(), dlq.id), stored(0, dead));
}

// ---- Dedup index ---------------------------------------------------------------------------

std::optional<DedupEntry> dedup_of(const Store& store, std::uint32_t topic, std::string_view id) {
  auto r = store.find_dedup(TopicId{topic}, id);
  if (!r) {
    ADD_FAILURE() << "find_dedup: " << r.error().to_string();
    return std::nullopt;
  }
  return *r;
}

TYPED_TEST(StoreContract, PutDedupIsFoundByTopicAndIdAndSurvivesReopen) {
  using namespace std::string_literals;
  const std::vector<Message> messages{msg("payload", "id-1")};  // outlives the write
  WriteBatch batch{{PutTopic{topic(1, "a")}, PutTopic{topic(2, "b")}}};
  add_appends(batch, TopicId{1}, 0, messages);
  batch.ops.emplace_back(PutDedup{TopicId{1}, "id-1", Offset{0}, 1000, 0xABCDEF0123456789});
  const auto binary_id = "\0\xFF"s;  // PutDedup views its id until write() returns
  batch.ops.emplace_back(PutDedup{TopicId{1}, binary_id, Offset{7}, -5, 0});
  ASSERT_TRUE(ok(this->store().write(batch, Durability::fsync)));
  const DedupEntry first{Offset{0}, 1000, 0xABCDEF0123456789};
  const DedupEntry odd{Offset{7}, -5, 0};
  EXPECT_EQ(dedup_of(this->store(), 1, "id-1"), first);
  EXPECT_EQ(dedup_of(this->store(), 1, "\0\xFF"s), odd);
  EXPECT_EQ(dedup_of(this->store(), 1, "id-2"), std::nullopt);
  EXPECT_EQ(dedup_of(this->store(), 2, "id-1"), std::nullopt) << "ids are per topic";
  EXPECT_EQ(dedup_of(this->store(), 1, "id-"), std::nullopt) << "no prefix match";
  ASSERT_TRUE(this->reopen());
  EXPECT_EQ(dedup_of(this->store(), 1, "id-1"), first);
  EXPECT_EQ(dedup_of(this->store(), 1, "\0\xFF"s), odd);
}

TYPED_TEST(StoreContract, DropTopicDropsItsDedupEntriesButNotOtherTopics) {
  const std::vector<std::uint32_t> ids{0xFE, 0xFF, 0x100, 0xFFFF'FFFF};
  WriteBatch batch;
  for (const auto id : ids) {
    batch.ops.emplace_back(PutTopic{topic(id, "t" + std::to_string(id))});
    batch.ops.emplace_back(PutDedup{TopicId{id}, "x", Offset{id}, 1, 2});
  }
  ASSERT_TRUE(ok(this->store().write(batch, Durability::fsync)));
  ASSERT_TRUE(ok(this->store().flush()));  // the entries in SST files, the drops in the memtable
  ASSERT_TRUE(
      ok(this->store().write(WriteBatch{{DropTopic{TopicId{0xFF}, "t255"}}}, Durability::fsync)));
  // The largest id: an entry in the DB and one put earlier in the batch go, one after stays.
  ASSERT_TRUE(
      ok(this->store().write(WriteBatch{{PutDedup{TopicId{0xFFFF'FFFF}, "before", Offset{1}, 1, 2},
                                         DropTopic{TopicId{0xFFFF'FFFF}, "t4294967295"},
                                         PutDedup{TopicId{0xFFFF'FFFF}, "after", Offset{2}, 1, 2}}},
                             Durability::fsync)));
  for (int round = 0; round < 2; ++round) {
    EXPECT_TRUE(dedup_of(this->store(), 0xFE, "x"));
    EXPECT_FALSE(dedup_of(this->store(), 0xFF, "x"));
    EXPECT_TRUE(dedup_of(this->store(), 0x100, "x"));
    EXPECT_FALSE(dedup_of(this->store(), 0xFFFF'FFFF, "x"));
    EXPECT_FALSE(dedup_of(this->store(), 0xFFFF'FFFF, "before"));
    EXPECT_TRUE(dedup_of(this->store(), 0xFFFF'FFFF, "after"));
    ASSERT_TRUE(this->reopen());
  }
}

TYPED_TEST(StoreContract, FindDedupsAnswersEveryIdInTheOrderAsked) {
  using namespace std::string_literals;
  // "b" and "\xFF" in SST files, "a" and a newer "b" in the memtable (the newer one must win),
  // "c" in another topic only.
  WriteBatch first{{PutTopic{topic(1, "one")}, PutTopic{topic(2, "two")}}};
  first.ops.emplace_back(PutDedup{TopicId{1}, "b", Offset{1}, 10, 11});
  const auto high_id = "\xFF"s;  // PutDedup views its id until write() returns
  first.ops.emplace_back(PutDedup{TopicId{1}, high_id, Offset{2}, 20, 21});
  first.ops.emplace_back(PutDedup{TopicId{2}, "c", Offset{3}, 30, 31});
  ASSERT_TRUE(ok(this->store().write(first, Durability::fsync)));
  ASSERT_TRUE(ok(this->store().flush()));
  ASSERT_TRUE(ok(this->store().write(WriteBatch{{PutDedup{TopicId{1}, "a", Offset{4}, 40, 41},
                                                 PutDedup{TopicId{1}, "b", Offset{5}, 50, 51}}},
                                     Durability::fsync)));
  const DedupEntry a{Offset{4}, 40, 41};
  const DedupEntry b{Offset{5}, 50, 51};
  const DedupEntry ff{Offset{2}, 20, 21};
  // Unsorted, with a repeat, a miss, another topic's id and a prefix of a stored id.
  const std::vector<std::string_view> ids{"\xFF", "b", "zz", "a", "c", "b", ""};
  for (int round = 0; round < 2; ++round) {
    const auto found = this->store().find_dedups(TopicId{1}, ids);
    ASSERT_TRUE(ok(found));
    EXPECT_THAT(*found, ElementsAre(ff, b, std::nullopt, a, std::nullopt, b, std::nullopt));
    for (std::size_t i = 0; i < ids.size(); ++i) {
      EXPECT_EQ((*found)[i], dedup_of(this->store(), 1, ids[i])) << "same as find_dedup: " << i;
    }
    EXPECT_THAT(this->store().find_dedups(TopicId{2}, ids).value(),
                ElementsAre(std::nullopt, std::nullopt, std::nullopt, std::nullopt,
                            DedupEntry{Offset{3}, 30, 31}, std::nullopt, std::nullopt));
    EXPECT_THAT(this->store().find_dedups(TopicId{1}, {}).value(), IsEmpty());
    ASSERT_TRUE(this->reopen());
  }
}

TYPED_TEST(StoreContract, TopicDedupSettingsPersist) {
  auto meta = topic(4, "strict");
  meta.dedup_window_ms = 1'000;
  meta.dedup_conflict = DedupConflict::error;
  ASSERT_TRUE(ok(this->store().write(put(meta), Durability::fsync)));
  ASSERT_TRUE(this->reopen());
  EXPECT_THAT(topics_of(this->store()), ElementsAre(meta));
}

TYPED_TEST(StoreContract, TopicSubjectsPersistAndCanBeCleared) {
  auto meta = topic(5, "orders");
  meta.subjects = {"orders.*", "returns.>", std::string(1024, 's')};
  ASSERT_TRUE(ok(this->store().write(put(meta), Durability::fsync)));
  ASSERT_TRUE(this->reopen());
  EXPECT_THAT(topics_of(this->store()), ElementsAre(meta));
  meta.subjects.clear();
  ASSERT_TRUE(ok(this->store().write(put(meta), Durability::fsync)));
  ASSERT_TRUE(this->reopen());
  EXPECT_THAT(topics_of(this->store()), ElementsAre(meta));
}

TYPED_TEST(StoreContract, ConcurrentReadsSeeWholeBatches) {
  constexpr std::size_t kBatches = 200;
  constexpr std::size_t kPerBatch = 5;
  const std::vector<Message> messages(kPerBatch, msg("concurrent"));
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (std::size_t b = 0; b < kBatches; ++b) {
      EXPECT_TRUE(
          ok(this->store().write(appends(TopicId{1}, b * kPerBatch, messages), Durability::os)));
    }
    done = true;
  });
  std::size_t reads = 0;
  while (!done || reads == 0) {
    const auto read = read_all(this->store(), TopicId{1});
    ++reads;
    ASSERT_EQ(read.size() % kPerBatch, 0U) << "a reader saw part of a batch";
    for (std::size_t i = 0; i < read.size(); ++i) ASSERT_EQ(read[i].offset.value, i);
  }
  writer.join();
  EXPECT_THAT(read_all(this->store(), TopicId{1}), SizeIs(kBatches * kPerBatch));
}

// --- RocksDB only -------------------------------------------------------------------------

// RocksDB may delete obsolete files while this lists them: a file gone meanwhile counts 0.
std::uintmax_t sst_bytes(const fs::path& dir) {
  std::uintmax_t total = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".sst") continue;
    std::error_code ec;
    const auto size = fs::file_size(entry.path(), ec);
    if (!ec) total += size;
  }
  return total;
}

// The SST bytes of `dir` once they are under `bound`, or what they are after a generous
// deadline: RocksDB deletes the files a compaction made obsolete on its own threads, which may
// finish after CompactRange has returned on a loaded machine.
std::uintmax_t sst_bytes_once_under(const fs::path& dir, std::uintmax_t bound) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    const auto bytes = sst_bytes(dir);
    if (bytes < bound || std::chrono::steady_clock::now() >= deadline) return bytes;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

class RocksDbStoreTest : public ::testing::TestWithParam<Durability> {
 protected:
  TempDir dir_;
};

TEST_P(RocksDbStoreTest, ReopenAfterCloseHasTheSameState) {
  auto store = open_or_fail(dir_.path());
  ASSERT_NE(store, nullptr);
  const auto messages = tricky_messages();
  auto a = topic(1, "a");
  a.next_offset = Offset{messages.size()};
  a.messages = messages.size();
  WriteBatch batch = put(a);
  batch.ops.emplace_back(PutTopic{topic(2, "b")});
  add_appends(batch, TopicId{1}, 0, messages);
  add_appends(batch, TopicId{2}, 40, messages);
  ASSERT_TRUE(ok(store->write(batch, GetParam())));
  const auto topics_before = topics_of(*store);
  store.reset();  // no flush(): what a successful write() returned must come back from the WAL

  store = open_or_fail(dir_.path());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(topics_of(*store), topics_before);
  EXPECT_EQ(read_all(*store, TopicId{1}), stored(0, messages));
  EXPECT_EQ(read_all(*store, TopicId{2}), stored(40, messages));
}

INSTANTIATE_TEST_SUITE_P(Durabilities, RocksDbStoreTest,
                         ::testing::Values(Durability::fsync, Durability::os),
                         [](const auto& info) {
                           return info.param == Durability::fsync ? "fsync" : "os";
                         });

TEST(RocksDbStore, CompactionDropsDedupEntriesOlderThanTheirTopicsWindow) {
  TempDir dir;
  const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  {
    auto store = open_or_fail(dir.path());
    ASSERT_NE(store, nullptr);
    auto short_window = topic(1, "short");
    short_window.dedup_window_ms = 60'000;  // one minute
    auto long_window = topic(2, "long");
    long_window.dedup_window_ms = 30ULL * 24 * 3600 * 1000;
    WriteBatch batch;
    batch.ops.emplace_back(PutTopic{short_window});
    batch.ops.emplace_back(PutTopic{long_window});
    // Two hours old: expired in "short", live in "long". One second old: live in both.
    for (const auto& [topic_id, id, age_ms] :
         {std::tuple{1u, "old", 7'200'000}, std::tuple{1u, "new", 1'000},
          std::tuple{2u, "old", 7'200'000}, std::tuple{2u, "new", 1'000}}) {
      batch.ops.emplace_back(PutDedup{TopicId{topic_id}, id, Offset{0}, now - age_ms, 7});
    }
    ASSERT_TRUE(ok(store->write(batch, Durability::fsync)));
    ASSERT_TRUE(ok(store->flush()));
  }
  const auto left = storage::testing::compact_dedup_and_count(dir.path());
  ASSERT_TRUE(left) << left.error().to_string();
  EXPECT_EQ(*left, 3u) << "only the expired entry of the short-window topic is gone";
  auto store = open_or_fail(dir.path());
  EXPECT_FALSE(store->find_dedup(TopicId{1}, "old").value().has_value());
  EXPECT_TRUE(store->find_dedup(TopicId{1}, "new").value().has_value());
  EXPECT_TRUE(store->find_dedup(TopicId{2}, "old").value().has_value());
}

// Writes `batches` batches of 100 incompressible 10 KiB messages to `topic` (offsets from 0).
void write_random_payloads(Store& store, TopicId topic, std::uint64_t batches) {
  std::mt19937_64 rng{42};
  std::vector<Message> batch_messages(100);
  for (std::uint64_t b = 0; b < batches; ++b) {
    for (auto& m : batch_messages) {
      m.payload.resize(std::size_t{10} << 10);
      for (std::size_t i = 0; i < m.payload.size(); i += 8) {
        const auto r = rng();
        std::memcpy(&m.payload[i], &r, 8);
      }
    }
    ASSERT_TRUE(
        ok(store.write(appends(topic, b * batch_messages.size(), batch_messages), Durability::os)));
  }
}

TEST(RocksDbStore, ReclaimAfterDropGivesTheDiskSpaceBack) {
  TempDir dir;
  auto store = open_or_fail(dir.path());
  ASSERT_NE(store, nullptr);
  // ~20 MiB of incompressible payloads in topic 1, a little in its neighbour topic 2.
  write_random_payloads(*store, TopicId{1}, 20);
  const std::vector<Message> kept{msg("keep me"), msg("me too")};
  ASSERT_TRUE(ok(store->write(appends(TopicId{2}, 0, kept), Durability::os)));
  ASSERT_TRUE(ok(store->flush()));
  const auto before = sst_bytes(dir.path());
  ASSERT_GT(before, 19U << 20);  // 2000 x 10 KiB written

  ASSERT_TRUE(ok(store->write(WriteBatch{{DropTopic{TopicId{1}, "big"}}}, Durability::fsync)));
  ASSERT_TRUE(ok(store->reclaim(TopicId{1})));
  const auto after = sst_bytes_once_under(dir.path(), before / 20);
  EXPECT_LT(after, before / 20) << "before=" << before << " after=" << after;
  EXPECT_THAT(read_all(*store, TopicId{1}), IsEmpty());
  EXPECT_EQ(read_all(*store, TopicId{2}), stored(0, kept));
}

TEST(RocksDbStore, ReclaimTrimmedGivesTheDiskSpaceOfTheRemovedMessagesBack) {
  TempDir dir;
  auto store = open_or_fail(dir.path());
  ASSERT_NE(store, nullptr);
  write_random_payloads(*store, TopicId{1}, 20);  // offsets 0..1999, ~20 MiB
  ASSERT_TRUE(ok(store->flush()));
  const auto before = sst_bytes(dir.path());
  ASSERT_GT(before, 19U << 20);

  // Keep the newest 200 messages (~2 MiB).
  ASSERT_TRUE(ok(store->write(WriteBatch{{TrimTopic{TopicId{1}, Offset{1800}}}}, Durability::os)));
  ASSERT_TRUE(ok(store->reclaim_trimmed(TopicId{1}, Offset{1800})));
  const auto after = sst_bytes_once_under(dir.path(), before / 5);
  EXPECT_LT(after, before / 5) << "before=" << before << " after=" << after;
  EXPECT_GT(after, 1U << 20) << "the 200 kept messages are still on disk";
  const auto left = read_all(*store, TopicId{1});
  ASSERT_THAT(left, SizeIs(200));
  EXPECT_EQ(left.front().offset, Offset{1800});
}

TEST(RocksDbStore, CheckpointIsACopyThatOpensWithTheSameState) {
  TempDir dir;
  TempDir copy;
  auto store = open_or_fail(dir.path());
  ASSERT_NE(store, nullptr);
  const auto messages = tricky_messages();
  auto t = topic(1, "t");
  t.next_offset = Offset{messages.size()};
  WriteBatch batch = put(t);
  add_appends(batch, t.id, 0, messages);
  batch.ops.emplace_back(PutGroup{busy_group(1, "g")});
  batch.ops.emplace_back(PutDedup{t.id, "id-1", Offset{1}, 5, 6});
  ASSERT_TRUE(ok(store->write(batch, Durability::fsync)));

  ASSERT_TRUE(ok(store->checkpoint(copy.path())));
  // Written after the checkpoint: not in the copy.
  ASSERT_TRUE(ok(store->write(appends(t.id, messages.size(), {msg("later")}), Durability::fsync)));

  auto restored = open_or_fail(copy.path());
  ASSERT_NE(restored, nullptr);
  EXPECT_THAT(topics_of(*restored), ElementsAre(t));
  EXPECT_EQ(read_all(*restored, t.id), stored(0, messages));
  EXPECT_THAT(restored->load_groups().value(), ElementsAre(busy_group(1, "g")));
  EXPECT_EQ(restored->find_dedup(t.id, "id-1").value(), (DedupEntry{Offset{1}, 5, 6}));
}

TEST(RocksDbStore, CheckpointIntoAnExistingDirectoryFailsAndLeavesItAlone) {
  TempDir dir;
  TempDir existing;
  auto store = open_or_fail(dir.path());
  ASSERT_NE(store, nullptr);
  fs::create_directories(existing.path());
  { std::ofstream{existing.path() / "keep"} << "mine"; }
  const auto r = store->checkpoint(existing.path());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::storage_error);
  EXPECT_TRUE(fs::exists(existing.path() / "keep"));
}

TEST(MemoryStore, CheckpointIsRefused) {
  TempDir copy;
  const auto r = make_memory_store()->checkpoint(copy.path());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_request);
}

TEST(RocksDbStore, OpenFailsWithAnErrorWhenThePathIsARegularFile) {
  TempDir dir;
  { std::ofstream{dir.path()} << "not a database"; }
  const auto store = open_rocksdb_store({.dir = dir.path()});
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, Errc::storage_error);
  EXPECT_THAT(store.error().detail, HasSubstr(dir.path().string()));

  const auto below = open_rocksdb_store({.dir = dir.path() / "sub"});
  ASSERT_FALSE(below);
  EXPECT_EQ(below.error().code, Errc::storage_error);
}

TEST(RocksDbStore, OpenFailsWithAnErrorOnACorruptDirectory) {
  TempDir dir;
  {
    auto store = open_or_fail(dir.path());
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(ok(store->write(put(topic(1, "a")), Durability::fsync)));
  }
  // CURRENT names the live MANIFEST; point it at garbage.
  { std::ofstream{dir.path() / "CURRENT", std::ios::trunc} << "MANIFEST-999999\n"; }
  const auto store = open_rocksdb_store({.dir = dir.path()});
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, Errc::storage_error);
  EXPECT_THAT(store.error().detail, HasSubstr("open store"));
}

TEST(RocksDbStore, OpenRefusesANewerFormatVersion) {
  TempDir dir;
  { ASSERT_NE(open_or_fail(dir.path()), nullptr); }
  ASSERT_TRUE(ok(testing::overwrite_format_version(dir.path(), 999)));
  const auto store = open_rocksdb_store({.dir = dir.path()});
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, Errc::storage_error);
  EXPECT_THAT(store.error().detail, HasSubstr("format version 999"));
}

TEST(RocksDbStore, OpensADataDirWrittenBeforeGroups) {
  TempDir dir;
  auto meta = topic(3, "legacy");
  const std::vector<StoredMessage> old_messages{{Offset{0}, 1000, msg("one")},
                                                {Offset{1}, 1001, msg("two", "id")}};
  meta.next_offset = Offset{2};
  meta.messages = 2;
  ASSERT_TRUE(ok(testing::create_store_without_groups(dir.path(), meta, old_messages)));
  auto families = testing::list_column_families(dir.path());
  ASSERT_TRUE(ok(families));
  EXPECT_THAT(*families, ::testing::UnorderedElementsAre("default", "topics", "messages"));

  auto store = open_or_fail(dir.path());
  ASSERT_NE(store, nullptr);
  // The 44-byte pre-dedup topic record decodes with the default dedup settings.
  EXPECT_THAT(topics_of(*store), ElementsAre(meta));
  EXPECT_EQ(topics_of(*store).at(0).dedup_window_ms, kDefaultDedupWindowMs);
  EXPECT_EQ(read_all(*store, meta.id), old_messages);
  EXPECT_THAT(groups_of(*store), IsEmpty());
  EXPECT_EQ(dedup_of(*store, 3, "id"), std::nullopt);
  const auto g = busy_group(3, "new");
  ASSERT_TRUE(ok(store->write(WriteBatch{{PutGroup{g}}}, Durability::fsync)));
  store.reset();

  families = testing::list_column_families(dir.path());
  ASSERT_TRUE(ok(families));
  EXPECT_THAT(*families, ::testing::Contains("groups"));
  EXPECT_THAT(*families, ::testing::Contains("dedup"));
  store = open_or_fail(dir.path());
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(groups_of(*store), ElementsAre(g));
  EXPECT_THAT(topics_of(*store), ElementsAre(meta));

  // Format 1 (one message per record) was marked with this build's format (3) at the first
  // open, so an older loftd refuses the store once records of several messages, or messages
  // with subjects, may be in it; every kind reads back.
  const std::vector<Message> more{msg("three"), on("x.y", msg("four")), msg("five")};
  ASSERT_TRUE(ok(store->write(appends(meta.id, 2, more), Durability::fsync)));
  store.reset();
  EXPECT_EQ(testing::read_format_version(dir.path()).value(), encoding::kFormatVersion);
  store = open_or_fail(dir.path());
  ASSERT_NE(store, nullptr);
  auto all = old_messages;
  for (auto& m : stored(2, more)) all.push_back(std::move(m));
  EXPECT_EQ(read_all(*store, meta.id), all);
  EXPECT_EQ(read_all(*store, meta.id, Offset{1}),
            std::vector<StoredMessage>(all.begin() + 1, all.end()));
}

TEST(RocksDbStore, OpensADataDirWithAColumnFamilyItDoesNotKnow) {
  TempDir dir;
  ASSERT_TRUE(ok(testing::create_store_without_groups(dir.path(), topic(1, "a"), {})));
  { ASSERT_NE(open_or_fail(dir.path()), nullptr); }  // adds groups
  ASSERT_TRUE(ok(testing::add_column_family(dir.path(), "from_the_future")));
  auto store = open_or_fail(dir.path());
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(topics_of(*store), ElementsAre(topic(1, "a")));
}

TEST(RocksDbStore, LoadGroupsReportsACorruptGroupByName) {
  TempDir dir;
  {
    auto store = open_or_fail(dir.path());
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(ok(store->write(WriteBatch{{PutGroup{group(1, "fine")}}}, Durability::fsync)));
  }
  ASSERT_TRUE(ok(testing::put_raw_group_value(dir.path(), TopicId{0x102}, "mangled", "\x01\x02")));
  auto store = open_or_fail(dir.path());
  ASSERT_NE(store, nullptr);
  const auto groups = store->load_groups();
  ASSERT_FALSE(groups);
  EXPECT_EQ(groups.error().code, Errc::storage_error);
  EXPECT_THAT(groups.error().detail, HasSubstr("'mangled' of topic 258"));
}

// read_block copies each record while the iterator still holds it. With no block cache, a
// data block of a flushed file is freed as soon as the iterator moves past it, so a copy made
// later would read freed memory (ASan reports it; without ASan the views would show garbage).
TEST(RocksDbStore, ReadBlockCopiesEachRecordBeforeTheIteratorMovesOn) {
  TempDir dir;
  std::vector<std::vector<Message>> batches(6);
  std::uint64_t next = 0;
  for (std::size_t b = 0; b < batches.size(); ++b) {
    for (int i = 0; i < 40; ++i) {
      batches[b].push_back(msg(std::string(200, static_cast<char>('a' + b)) + std::to_string(i),
                               "id-" + std::to_string(next + i), "", {{"n", std::to_string(i)}}));
    }
    next += batches[b].size();
  }
  {
    auto store = open_or_fail(dir.path());
    ASSERT_NE(store, nullptr);
    std::uint64_t first = 0;
    for (const auto& batch : batches) {  // one write each: one record each (about 9 KiB)
      ASSERT_TRUE(ok(store->write(appends(TopicId{1}, first, batch), Durability::os)));
      first += batch.size();
    }
    ASSERT_TRUE(ok(store->flush()));
  }
  auto opened = open_rocksdb_store(RocksDbOptions{.dir = dir.path(), .block_cache_bytes = 0});
  ASSERT_TRUE(ok(opened));
  auto& store = **opened;
  // All of it, and limits that stop inside a record (the budget's early end of a record).
  const std::vector<ReadLimits> limits{
      kAll, {.max_messages = 57, .max_bytes = 1 << 20}, {.max_messages = 1000, .max_bytes = 5000}};
  for (const std::uint64_t from : {0, 17, 100}) {
    for (const auto& l : limits) {
      const auto want = store.read(TopicId{1}, Offset{from}, l);
      const auto got = store.read_block(TopicId{1}, Offset{from}, l);
      ASSERT_TRUE(ok(want));
      ASSERT_TRUE(ok(got));
      if (l.max_messages == kAll.max_messages) {
        EXPECT_EQ(want->size(), next - from);
      }
      EXPECT_EQ(materialize(**got), *want) << "from " << from << " max " << l.max_messages;
    }
  }
}

// A messages record that does not decode (here: cut inside its second message) fails read()
// and read_block() with a storage error naming the topic, whichever message the read starts
// at; nothing past the record's end is read.
TEST(RocksDbStore, ACorruptMessageRecordFailsReadsWithAStorageError) {
  TempDir dir;
  std::string record;
  encoding::encode_message(1000, msg("one"), record);
  encoding::encode_message(1001, msg("two", "id", "key", {{"h", "v"}}), record);
  record.resize(record.size() - 2);
  ASSERT_TRUE(ok(testing::put_raw_message_record(dir.path(), TopicId{3}, Offset{0}, record)));
  auto store = open_or_fail(dir.path());
  ASSERT_NE(store, nullptr);
  for (const std::uint64_t from : {0, 1}) {
    const auto read = store->read(TopicId{3}, Offset{from}, kAll);
    ASSERT_FALSE(read) << "from " << from;
    EXPECT_EQ(read.error().code, Errc::storage_error);
    EXPECT_THAT(read.error().detail, HasSubstr("read topic 3"));
    EXPECT_THAT(read.error().detail, HasSubstr("corrupt message record"));
    const auto block = store->read_block(TopicId{3}, Offset{from}, kAll);
    ASSERT_FALSE(block) << "from " << from;
    EXPECT_EQ(block.error().code, Errc::storage_error);
    EXPECT_EQ(block.error().detail, read.error().detail);
  }
  // The first message alone is whole: a read that stops after it succeeds.
  const auto one = store->read_block(TopicId{3}, Offset{0}, {.max_messages = 1, .max_bytes = 1});
  ASSERT_TRUE(ok(one));
  EXPECT_EQ(materialize(**one), (std::vector<StoredMessage>{{Offset{0}, 1000, msg("one")}}));
}

// A messages record is messages back to back: decoded one by one with their offsets, skipped
// without decoding, and a cut anywhere but between two messages is never read past.
TEST(MessageEncoding, ARecordOfSeveralMessagesDecodesOneByOneAndRejectsEveryPartialMessage) {
  const std::vector<StoredMessage> messages{
      {Offset{7}, -5, msg("", "id", "key", {{"h", std::string(1, '\0')}})},
      {Offset{8}, std::numeric_limits<std::int64_t>::max(), msg(std::string(300, '\xFF'))},
      {Offset{9}, 0, on("a.b.c", msg("last", "", "", {{"a", "1"}, {"b", ""}}))}};
  std::string record;
  std::vector<std::size_t> ends;  // where each message ends in the record
  for (const auto& m : messages) {
    encoding::encode_message(m.timestamp_ms, m.message, record);
    ends.push_back(record.size());
  }
  std::string_view rest = record;
  for (const auto& m : messages) EXPECT_EQ(encoding::decode_next_message(m.offset, rest), m);
  EXPECT_TRUE(rest.empty());
  rest = record;
  std::vector<HeaderView> headers;
  for (const auto& m : messages) {
    StoredMessageView v;
    headers.clear();
    ASSERT_TRUE(encoding::decode_next_view(rest, v, headers));
    EXPECT_EQ(v.timestamp_ms, m.timestamp_ms);
    EXPECT_EQ(v.id, m.message.id);
    EXPECT_EQ(v.key, m.message.key);
    EXPECT_EQ(v.payload, m.message.payload);
    EXPECT_EQ(v.subject, m.message.subject);
    ASSERT_EQ(headers.size(), m.message.headers.size());
    for (std::size_t i = 0; i < headers.size(); ++i) {
      EXPECT_EQ(headers[i].name, m.message.headers[i].name);
      EXPECT_EQ(headers[i].value, m.message.headers[i].value);
    }
  }
  EXPECT_TRUE(rest.empty());
  rest = record;
  ASSERT_TRUE(encoding::skip_message(rest));
  ASSERT_TRUE(encoding::skip_message(rest));
  EXPECT_EQ(encoding::decode_message(Offset{9}, rest), messages[2]);
  EXPECT_EQ(encoding::decode_message(Offset{7}, record), std::nullopt) << "more than one message";
  for (std::size_t n = 0; n < record.size(); ++n) {
    std::string_view cut = std::string_view(record).substr(0, n);
    std::size_t whole = 0;
    while (!cut.empty() && encoding::decode_next_message(Offset{whole}, cut)) ++whole;
    const auto expected_whole =
        static_cast<std::size_t>(std::upper_bound(ends.begin(), ends.end(), n) - ends.begin());
    EXPECT_EQ(whole, expected_whole) << "cut at " << n;
    std::string_view skipped = std::string_view(record).substr(0, n);
    std::size_t skips = 0;
    while (!skipped.empty() && encoding::skip_message(skipped)) ++skips;
    EXPECT_EQ(skips, expected_whole) << "cut at " << n;
    std::string_view viewed = std::string_view(record).substr(0, n);
    std::size_t views = 0;
    std::vector<HeaderView> headers;
    StoredMessageView v;
    while (!viewed.empty() && encoding::decode_next_view(viewed, v, headers)) ++views;
    EXPECT_EQ(views, expected_whole) << "cut at " << n;
    // After the last whole message, what is left is a partial one and is refused.
    const bool at_boundary = n == 0 || std::find(ends.begin(), ends.end(), n) != ends.end();
    EXPECT_EQ(cut.empty(), at_boundary) << "cut at " << n;
  }
}

// A message without a subject is encoded exactly as before subjects existed (storage format 2),
// so records written by an older loftd read unchanged; one with a subject sets bit 31 of the
// header count and carries the subject right after it.
TEST(MessageEncoding, WithoutASubjectTheLayoutIsTheFormat2One) {
  using namespace std::string_literals;
  const auto plain = msg("pay", "i", "k", {{"h", "v"}});
  const std::string format2 =
      "\x05\0\0\0\0\0\0\0"s      // timestamp 5
      "\x01\0\0\0i"s             // id
      "\x01\0\0\0k"s             // key
      "\x01\0\0\0"s              // header count 1
      "\x01\0\0\0h\x01\0\0\0v"s  // header
      "\x03\0\0\0pay"s;          // payload
  std::string record;
  encoding::encode_message(5, plain, record);
  EXPECT_EQ(record, format2);
  EXPECT_EQ(encoding::decode_message(Offset{1}, format2), (StoredMessage{Offset{1}, 5, plain}));

  const auto with = on("a.b", plain);
  record.clear();
  encoding::encode_message(5, with, record);
  const std::string format3 =
      "\x05\0\0\0\0\0\0\0\x01\0\0\0i\x01\0\0\0k"s
      "\x01\0\0\x80"s   // header count 1, subject flag
      "\x03\0\0\0a.b"s  // subject
      "\x01\0\0\0h\x01\0\0\0v\x03\0\0\0pay"s;
  EXPECT_EQ(record, format3);
  EXPECT_EQ(encoding::decode_message(Offset{1}, record), (StoredMessage{Offset{1}, 5, with}));
  std::vector<HeaderView> headers;
  StoredMessageView v;
  std::string_view rest = record;
  ASSERT_TRUE(encoding::decode_next_view(rest, v, headers));
  EXPECT_EQ(v.subject, "a.b");
  EXPECT_EQ(v.payload, "pay");
  ASSERT_EQ(headers.size(), 1u);
  EXPECT_EQ(headers[0].value, "v");
  rest = format2;
  ASSERT_TRUE(encoding::decode_next_view(rest, v, headers));
  EXPECT_EQ(v.subject, "");
  rest = record;
  ASSERT_TRUE(encoding::skip_message(rest));
  EXPECT_TRUE(rest.empty());
}

// The subject flag has one meaning only: a flagged count must be followed by a whole, non-empty
// subject, and every decoder refuses anything else rather than guess.
TEST(MessageEncoding, RejectsCorruptSubjectFlags) {
  using namespace std::string_literals;
  const std::string head = "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"s;  // timestamp, empty id and key
  const std::string tail = "\x01\0\0\0p"s;                       // payload "p"
  const std::vector<std::pair<std::string, std::string>> corrupt{
      {"an empty subject", head + "\0\0\0\x80"s + "\0\0\0\0"s + tail},
      {"a subject longer than the record", head + "\0\0\0\x80"s + "\x09\0\0\0a.b"s + tail},
      {"a flag and no subject length", head + "\0\0\0\x80"s},
      {"a flag and a cut length", head + "\0\0\0\x80\x03\0"s},
      {"a flagged header count too large", head + "\x10\0\0\x80\x01\0\0\0s"s + tail},
  };
  for (const auto& [what, bytes] : corrupt) {
    SCOPED_TRACE(what);
    std::string_view rest = bytes;
    EXPECT_EQ(encoding::decode_next_message(Offset{0}, rest), std::nullopt);
    rest = bytes;
    EXPECT_FALSE(encoding::skip_message(rest));
    rest = bytes;
    std::vector<HeaderView> headers;
    StoredMessageView v;
    EXPECT_FALSE(encoding::decode_next_view(rest, v, headers));
  }
  // The same bytes with a one-byte subject decode.
  const std::string good = head + "\0\0\0\x80"s + "\x01\0\0\0s"s + tail;
  const auto m = encoding::decode_message(Offset{0}, good);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->message.subject, "s");
  EXPECT_EQ(m->message.payload, "p");
}

TEST(GroupEncoding, RoundTripsAndRejectsEveryTruncationAndTrailingBytes) {
  for (const auto& g : {group(1, "g"), busy_group(0xFFFF'FFFF, "busy")}) {
    SCOPED_TRACE(g.name);
    const auto bytes = encoding::encode_group(g);
    EXPECT_EQ(encoding::decode_group(g.topic, g.name, bytes), g);
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      EXPECT_EQ(encoding::decode_group(g.topic, g.name, bytes.substr(0, n)), std::nullopt)
          << "decoded from the first " << n << " of " << bytes.size() << " bytes";
    }
    EXPECT_EQ(encoding::decode_group(g.topic, g.name, bytes + '\0'), std::nullopt);
    auto newer = bytes;
    newer[0] = static_cast<char>(encoding::kGroupRecordVersion + 1);
    EXPECT_EQ(encoding::decode_group(g.topic, g.name, newer), std::nullopt);
  }
}

// What version 5 appended: ordering (u8) and key_lookahead (u32).
constexpr std::size_t kVersion5Tail = 1 + 4;

TEST(GroupEncoding, AVersion1RecordDecodesWithNothingSkipped) {
  auto g = busy_group(3, "old");
  g.skipped = 77;
  auto v1 = encoding::encode_group(g);
  // Version 1 ended after `redelivered`.
  v1.resize(v1.size() - kVersion5Tail - 4 - g.annotation.size() - 4 - g.filter.size() - 8);
  v1[0] = '\x01';
  const auto decoded = encoding::decode_group(g.topic, g.name, v1);
  ASSERT_TRUE(decoded);
  g.skipped = 0;
  g.filter.clear();
  g.annotation.clear();
  g.ordering = Ordering::none;
  g.key_lookahead = 0;
  EXPECT_EQ(*decoded, g);
}

// `g`'s record as a record of the version before its last field (`field`, empty in `g`'s
// previous-version view `old`): the last field's length and bytes cut off. It decodes as `old`,
// and the same bytes marked with the newer version lack that field: corrupt, not misread.
void expect_previous_version_decodes(const GroupRecord& g, const std::string& field,
                                     std::uint8_t version, const GroupRecord& old) {
  ASSERT_EQ(g.ordering, Ordering::none);  // a version 4 record has no ordering
  auto bytes = encoding::encode_group(g);
  bytes.resize(bytes.size() - kVersion5Tail);  // version 5's bytes without it: version 4's
  const std::string length{static_cast<char>(field.size()), '\0', '\0', '\0'};
  ASSERT_EQ(bytes.substr(bytes.size() - 4 - field.size()), length + field);
  bytes.resize(bytes.size() - 4 - field.size());
  bytes[0] = static_cast<char>(version);
  EXPECT_EQ(encoding::decode_group(g.topic, g.name, bytes), old);
  bytes[0] = static_cast<char>(version + 1);
  EXPECT_EQ(encoding::decode_group(g.topic, g.name, bytes), std::nullopt);
}

// Version 3 appended the filter (u32 length + bytes); a version 2 record has none.
TEST(GroupEncoding, AVersion2RecordDecodesWithoutAFilter) {
  auto g = busy_group(3, "old");
  g.annotation.clear();
  g.ordering = Ordering::none;
  g.key_lookahead = 0;
  auto v3 = encoding::encode_group(g);  // version 5 with no annotation nor ordering: version 3's
  v3.resize(v3.size() - kVersion5Tail - 4);
  v3[0] = '\x03';
  const auto as_v3 = encoding::decode_group(g.topic, g.name, v3);
  ASSERT_EQ(as_v3, g);
  auto old = g;
  old.filter.clear();
  // Cut from the version 3 record: the filter is its last field.
  auto v2 = v3;
  ASSERT_EQ(v2.substr(v2.size() - 4 - g.filter.size()),
            std::string("\x0a\0\0\0", 4) + "orders.*.>");
  v2.resize(v2.size() - 4 - g.filter.size());
  v2[0] = '\x02';
  EXPECT_EQ(encoding::decode_group(g.topic, g.name, v2), old);
  v2[0] = '\x03';
  EXPECT_EQ(encoding::decode_group(g.topic, g.name, v2), std::nullopt);
}

// Version 4 appended the annotation (u32 length + bytes); a version 3 record has none, and
// decodes unchanged otherwise.
TEST(GroupEncoding, AVersion3RecordDecodesWithoutAnAnnotation) {
  auto g = busy_group(3, "old");
  g.ordering = Ordering::none;
  g.key_lookahead = 0;
  auto old = g;
  old.annotation.clear();
  expect_previous_version_decodes(g, g.annotation, 3, old);
}

// Version 5 appended ordering (u8) and key_lookahead (u32): a version 4 record is unordered; an
// ordering byte that names no ordering is corrupt.
TEST(GroupEncoding, AVersion4RecordDecodesUnordered) {
  const auto g = busy_group(3, "old");
  auto bytes = encoding::encode_group(g);
  ASSERT_EQ(bytes.substr(bytes.size() - kVersion5Tail), std::string("\x01\x40\xe2\x01\x00", 5));
  auto bad = bytes;
  bad[bad.size() - kVersion5Tail] = '\x02';
  EXPECT_EQ(encoding::decode_group(g.topic, g.name, bad), std::nullopt);
  bytes.resize(bytes.size() - kVersion5Tail);
  bytes[0] = '\x04';
  auto old = g;
  old.ordering = Ordering::none;
  old.key_lookahead = 0;
  EXPECT_EQ(encoding::decode_group(g.topic, g.name, bytes), old);
  bytes[0] = '\x05';
  EXPECT_EQ(encoding::decode_group(g.topic, g.name, bytes), std::nullopt);
}

TEST(GroupEncoding, KeyIsBigEndianTopicIdThenName) {
  using namespace std::string_literals;
  EXPECT_EQ(encoding::group_key(TopicId{0x01020304}, "g\0"s), "\x01\x02\x03\x04g\0"s);
  EXPECT_EQ(encoding::group_begin_key(TopicId{0xFF}), "\0\0\0\xFF"s);
  EXPECT_EQ(encoding::group_end_key(TopicId{0xFF}), "\0\0\x01\0"s);
  const auto parsed = encoding::parse_group_key("\0\0\x01\0name"s);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->first, TopicId{0x100});
  EXPECT_EQ(parsed->second, "name");
  EXPECT_EQ(encoding::parse_group_key("\0\0\x01"), std::nullopt);
}

TEST(TopicEncoding, DecodesBothLayoutsAndRejectsEveryOtherLength) {
  auto meta = topic(9, "t");
  meta.next_offset = Offset{5};
  meta.dedup_window_ms = 30ULL * 24 * 3600 * 1000;
  meta.dedup_conflict = DedupConflict::error;
  meta.max_age_ms = 3'600'000;
  meta.max_bytes = 1ULL << 40;
  meta.max_messages = std::numeric_limits<std::uint64_t>::max();
  const auto bytes = encoding::encode_topic_meta(meta);
  constexpr std::size_t kV1Size = encoding::kTopicBaseSize + 1 + 8 + 1;
  EXPECT_EQ(bytes.size(), kV1Size + 3 * 8);
  EXPECT_EQ(encoding::decode_topic_meta("t", bytes), meta);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    if (n == encoding::kTopicBaseSize) continue;  // the old layout
    EXPECT_EQ(encoding::decode_topic_meta("t", bytes.substr(0, n)), std::nullopt) << n;
  }
  EXPECT_EQ(encoding::decode_topic_meta("t", bytes + '\0'), std::nullopt);
  auto newer = bytes;
  newer[encoding::kTopicBaseSize] = static_cast<char>(encoding::kTopicExtensionVersion + 1);
  EXPECT_EQ(encoding::decode_topic_meta("t", newer), std::nullopt);
  auto bad_mode = bytes;
  bad_mode[kV1Size - 1] = '\x02';
  EXPECT_EQ(encoding::decode_topic_meta("t", bad_mode), std::nullopt);
  // Extension version 1 (before retention): unlimited retention.
  auto v1 = bytes.substr(0, kV1Size);
  v1[encoding::kTopicBaseSize] = '\x01';
  const auto unlimited = encoding::decode_topic_meta("t", v1);
  ASSERT_TRUE(unlimited);
  EXPECT_EQ(unlimited->dedup_window_ms, meta.dedup_window_ms);
  EXPECT_EQ(unlimited->max_age_ms, 0u);
  EXPECT_EQ(unlimited->max_bytes, 0u);
  EXPECT_EQ(unlimited->max_messages, 0u);
  // The pre-dedup layout gets the defaults.
  const auto old = encoding::decode_topic_meta("t", encoding::encode_topic_meta_v0(meta));
  ASSERT_TRUE(old);
  EXPECT_EQ(old->next_offset, Offset{5});
  EXPECT_EQ(old->dedup_window_ms, kDefaultDedupWindowMs);
  EXPECT_EQ(old->dedup_conflict, DedupConflict::duplicate);
}

// Subjects make the extension version 3; without them the record is version 2's, byte for byte.
TEST(TopicEncoding, SubjectsAreVersion3AndEveryTruncationIsRejected) {
  auto meta = topic(9, "t");
  meta.max_messages = 3;
  const auto plain = encoding::encode_topic_meta(meta);
  EXPECT_EQ(plain[encoding::kTopicBaseSize], '\x02');
  meta.subjects = {"a.*", "b"};
  const auto bytes = encoding::encode_topic_meta(meta);
  EXPECT_EQ(bytes[encoding::kTopicBaseSize], '\x03');
  EXPECT_EQ(bytes.substr(0, plain.size()).substr(encoding::kTopicBaseSize + 1),
            plain.substr(encoding::kTopicBaseSize + 1));
  EXPECT_EQ(bytes.size(), plain.size() + 4 + (4 + 3) + (4 + 1));
  EXPECT_EQ(encoding::decode_topic_meta("t", bytes), meta);
  for (std::size_t n = plain.size(); n < bytes.size(); ++n) {
    EXPECT_EQ(encoding::decode_topic_meta("t", bytes.substr(0, n)), std::nullopt) << n;
  }
  EXPECT_EQ(encoding::decode_topic_meta("t", bytes + '\0'), std::nullopt);
  // Version 3 with no subjects, or an empty one, is not something this build writes.
  auto none = plain + std::string(4, '\0');
  none[encoding::kTopicBaseSize] = '\x03';
  EXPECT_EQ(encoding::decode_topic_meta("t", none), std::nullopt);
  auto empty = none;
  empty[plain.size()] = '\x01';
  empty += std::string(4, '\0');
  EXPECT_EQ(encoding::decode_topic_meta("t", empty), std::nullopt);
  // A count far beyond what the record holds fails without reserving it.
  auto huge = bytes;
  huge.replace(plain.size(), 4, std::string(4, '\xFF'));
  EXPECT_EQ(encoding::decode_topic_meta("t", huge), std::nullopt);
}

// A work-queue topic is version 4 (subject count, possibly 0, then the mode byte); every other
// topic keeps the bytes of version 2 or 3.
TEST(TopicEncoding, WorkQueueIsVersion4AndEveryTruncationIsRejected) {
  auto meta = topic(9, "t");
  meta.max_messages = 3;
  const auto plain = encoding::encode_topic_meta(meta);
  meta.retention_mode = RetentionMode::work_queue;
  const auto bytes = encoding::encode_topic_meta(meta);
  EXPECT_EQ(bytes[encoding::kTopicBaseSize], '\x04');
  EXPECT_EQ(bytes.size(), plain.size() + 4 + 1);
  EXPECT_EQ(encoding::decode_topic_meta("t", bytes), meta);
  for (std::size_t n = plain.size(); n < bytes.size(); ++n) {
    EXPECT_EQ(encoding::decode_topic_meta("t", bytes.substr(0, n)), std::nullopt) << n;
  }
  EXPECT_EQ(encoding::decode_topic_meta("t", bytes + '\0'), std::nullopt);
  auto limits = bytes;
  limits.back() = '\0';  // version 4 is only written for a work-queue topic
  EXPECT_EQ(encoding::decode_topic_meta("t", limits), std::nullopt);
  auto unknown = bytes;
  unknown.back() = '\x02';
  EXPECT_EQ(encoding::decode_topic_meta("t", unknown), std::nullopt);
  meta.subjects = {"a.>"};
  EXPECT_EQ(encoding::decode_topic_meta("t", encoding::encode_topic_meta(meta)), meta);
}

TEST(TopicEncoding, ScheduledIsVersion5WithEitherModeAndEveryTruncationIsRejected) {
  auto meta = topic(9, "t");
  const auto plain = encoding::encode_topic_meta(meta);
  meta.scheduled = 3;
  const auto bytes = encoding::encode_topic_meta(meta);
  EXPECT_EQ(bytes[encoding::kTopicBaseSize], '\x05');
  EXPECT_EQ(bytes.size(), plain.size() + 4 + 1 + 8);
  EXPECT_EQ(encoding::decode_topic_meta("t", bytes), meta);
  for (std::size_t n = plain.size(); n < bytes.size(); ++n) {
    EXPECT_EQ(encoding::decode_topic_meta("t", bytes.substr(0, n)), std::nullopt) << n;
  }
  EXPECT_EQ(encoding::decode_topic_meta("t", bytes + '\0'), std::nullopt);
  meta.retention_mode = RetentionMode::work_queue;
  meta.subjects = {"a.>"};
  EXPECT_EQ(encoding::decode_topic_meta("t", encoding::encode_topic_meta(meta)), meta);
  meta.scheduled = 0;  // back to version 4
  EXPECT_EQ(encoding::encode_topic_meta(meta)[encoding::kTopicBaseSize], '\x04');
}

TEST(MessageEncoding, ADeliveryTimeIsFlaggedAfterTheSubjectAndNeverZero) {
  using namespace std::string_literals;
  auto m = at(0x0102, on("a", msg("p")));
  std::string record;
  encoding::encode_message(5, m, record);
  const std::string format4 =
      "\x05\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"s  // timestamp 5, empty id and key
      "\0\0\0\xC0"s                          // no header, subject and delivery time flags
      "\x01\0\0\0a"s                         // subject
      "\x02\x01\0\0\0\0\0\0"s                // deliver_at_ms 0x0102
      "\x01\0\0\0p"s;
  EXPECT_EQ(record, format4);
  EXPECT_EQ(encoding::decode_message(Offset{1}, record), (StoredMessage{Offset{1}, 5, m}));
  std::vector<HeaderView> headers;
  StoredMessageView v;
  std::string_view rest = record;
  ASSERT_TRUE(encoding::decode_next_view(rest, v, headers));
  EXPECT_EQ(v.deliver_at_ms, 0x0102);
  EXPECT_EQ(v.subject, "a");
  rest = record;
  ASSERT_TRUE(encoding::skip_message(rest));
  EXPECT_TRUE(rest.empty());
  const std::string zero =
      "\x05\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"s
      "\0\0\0\x40"s
      "\0\0\0\0\0\0\0\0\x01\0\0\0p"s;
  const std::string cut = "\x05\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x40\x01\0"s;
  for (const auto& bad : {zero, cut}) {
    rest = bad;
    EXPECT_EQ(encoding::decode_next_message(Offset{0}, rest), std::nullopt);
    rest = bad;
    EXPECT_FALSE(encoding::skip_message(rest));
    rest = bad;
    EXPECT_FALSE(encoding::decode_next_view(rest, v, headers));
  }
}

TEST(ScheduleEncoding, KeysAreBigEndianDueTopicOffset) {
  using namespace std::string_literals;
  const auto key = encoding::schedule_key(0x0102, TopicId{3}, Offset{0x0405});
  EXPECT_EQ(key, "\0\0\0\0\0\0\x01\x02\0\0\0\x03\0\0\0\0\0\0\x04\x05"s);
  const auto parsed = encoding::parse_schedule_key(key);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->due_ms, 0x0102);
  EXPECT_EQ(parsed->topic, TopicId{3});
  EXPECT_EQ(parsed->offset, Offset{0x0405});
  EXPECT_FALSE(encoding::parse_schedule_key(key.substr(1)));
  EXPECT_LT(encoding::schedule_key(255, TopicId{9}, Offset{9}),
            encoding::schedule_key(256, TopicId{1}, Offset{0}));
}

TEST(DedupEncoding, ValueIs24BytesAndKeyIsBigEndianTopicIdThenId) {
  using namespace std::string_literals;
  const DedupEntry e{Offset{0x0102}, -1, 0xFFFF'0000'FFFF'0000};
  const auto bytes = encoding::encode_dedup(e);
  EXPECT_EQ(bytes.size(), encoding::kDedupValueSize);
  EXPECT_EQ(encoding::decode_dedup(bytes), e);
  EXPECT_EQ(encoding::decode_dedup(bytes.substr(0, 23)), std::nullopt);
  EXPECT_EQ(encoding::decode_dedup(bytes + '\0'), std::nullopt);
  EXPECT_EQ(encoding::dedup_key(TopicId{0x01020304}, "m\0"s), "\x01\x02\x03\x04m\0"s);
  EXPECT_EQ(encoding::topic_of_prefixed_key("\0\0\x01\0id"s), TopicId{0x100});
}

// The compaction filter's decision, with a fake now: the same edge as the broker's.
TEST(DedupCompactionFilter, DropsOnlyEntriesOlderThanTheirTopicsWindow) {
  constexpr std::int64_t kNow = 1'700'000'000'000;
  EXPECT_FALSE(encoding::dedup_entry_expired(kNow - 10'000, 10'000, kNow)) << "exactly the window";
  EXPECT_TRUE(encoding::dedup_entry_expired(kNow - 10'001, 10'000, kNow));
  EXPECT_FALSE(encoding::dedup_entry_expired(kNow, 10'000, kNow));
  EXPECT_FALSE(encoding::dedup_entry_expired(kNow + 5, 0, kNow)) << "from the future";
  EXPECT_FALSE(encoding::dedup_entry_expired(0, std::nullopt, kNow)) << "unknown topic: kept";
  // No overflow at the extremes.
  constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  EXPECT_TRUE(encoding::dedup_entry_expired(kMin, 10'000, kMax));
  EXPECT_FALSE(
      encoding::dedup_entry_expired(kMin, std::numeric_limits<std::uint64_t>::max(), kMax));
  EXPECT_FALSE(encoding::dedup_entry_expired(kMax, 0, kMin));
}

// --- FaultyStore ----------------------------------------------------------------------------

TEST(FaultyStore, FailsTheNthWriteAndItChangesNothing) {
  loft::testing::FaultyStore store{make_memory_store()};
  const auto m = msg("m");
  store.fail_nth_write(2);
  EXPECT_TRUE(ok(store.write(appends(TopicId{1}, 0, {m}), Durability::fsync)));
  const auto failed = store.write(appends(TopicId{1}, 1, {m}), Durability::fsync);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, Errc::storage_error);
  EXPECT_TRUE(ok(store.write(appends(TopicId{1}, 2, {m}), Durability::fsync)));
  EXPECT_THAT(offsets_of(read_all(store, TopicId{1})), ElementsAre(0, 2));
  EXPECT_EQ(store.writes(), 3U);
  EXPECT_EQ(store.failed_writes(), 1U);
}

TEST(FaultyStore, ArmedFailsEveryWriteUntilDisarmed) {
  loft::testing::FaultyStore store{make_memory_store()};
  store.arm();
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(store.write(put(topic(1, "a")), Durability::os));
  }
  EXPECT_THAT(topics_of(store), IsEmpty());
  store.disarm();
  EXPECT_TRUE(ok(store.write(put(topic(1, "a")), Durability::os)));
  EXPECT_THAT(topics_of(store), SizeIs(1));
  EXPECT_EQ(store.failed_writes(), 3U);
}

// RocksDB's LOG, written by loft's logger: a new file every max_file_bytes, the newest
// keep_files kept, no line lost or repeated across the files, RocksDB's header lines (its
// Options dump) at the top of every file.
TEST(RocksDbInfoLog, StartsANewFilePastItsSizeAndKeepsTheNewest) {
  TempDir dir;
  fs::create_directories(dir.path());
  constexpr std::uint64_t kMax = 4096;
  constexpr int kLines = 400;  // 50 bytes each: some five files' worth
  {
    const auto log = open_info_log(dir.path(), 3, kMax);
    ASSERT_NE(log, nullptr);
    rocksdb::Header(log.get(), "header %s", "of the test");
    for (int i = 0; i < kLines; ++i) rocksdb::Log(log.get(), "line %05d of the test", i);
  }
  std::vector<fs::path> old;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    if (e.path().filename().string().starts_with("LOG.old.")) old.push_back(e.path());
  }
  std::sort(old.begin(), old.end());
  ASSERT_EQ(old.size(), 2u) << "keep_files 3: the LOG and the two newest old files";
  for (const auto& f : old) EXPECT_GE(fs::file_size(f), kMax) << f;
  EXPECT_LT(fs::file_size(dir.path() / "LOG"), kMax);
  // The kept files hold the last lines, each once, in order.
  std::vector<int> numbers;
  for (const auto& f : {old[0], old[1], dir.path() / "LOG"}) {
    std::ifstream in(f);
    std::string first;
    ASSERT_TRUE(std::getline(in, first)) << f;
    EXPECT_NE(first.find("header of the test"), std::string::npos) << f << ": " << first;
    for (std::string line; std::getline(in, line);) {
      const auto at = line.find("line ");
      ASSERT_NE(at, std::string::npos) << line;
      numbers.push_back(std::stoi(line.substr(at + 5, 5)));
    }
  }
  ASSERT_FALSE(numbers.empty());
  EXPECT_EQ(numbers.back(), kLines - 1);
  for (std::size_t i = 1; i < numbers.size(); ++i) EXPECT_EQ(numbers[i], numbers[i - 1] + 1);
  EXPECT_GT(numbers.size(), static_cast<std::size_t>(2 * kMax / 60)) << "two full old files";
  EXPECT_EQ(numbers.front(), kLines - static_cast<int>(numbers.size()));

  // Opening again starts a new LOG too, and still keeps two old files.
  { std::ignore = open_info_log(dir.path(), 3, kMax); }
  std::size_t after = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    after += e.path().filename().string().starts_with("LOG.old.") ? 1 : 0;
  }
  EXPECT_EQ(after, 2u);
  EXPECT_EQ(fs::file_size(dir.path() / "LOG"), 0u);
}

}  // namespace
}  // namespace storage
}  // namespace loft
