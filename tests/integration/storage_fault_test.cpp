// Storage faults at the broker level. Method: fault injection through PowerLossFs
// (tests/support/power_loss_fs.hpp, a RocksDB FileSystemWrapper) under the real RocksDB store
// and the real Broker, in process: every append fails with NoSpace (a full disk) or an
// IOError, or every sync fails. Checked: publishes get an error instead of a confirm, nothing
// confirmed is lost, the broker's storage_health() and its once-per-episode callback say so,
// and (for a full disk) writes come back by themselves once the fault is gone. The same with
// a real full file system: disk_full_test.cpp.

#include <gtest/gtest.h>
#include <rocksdb/env.h>

#include <future>
#include <mutex>

#include "loft/broker/broker.hpp"
#include "power_loss_fs.hpp"
#include "storage/rocksdb_testing.hpp"
#include "test_daemon.hpp"

namespace loft::testing {
namespace {

using namespace std::chrono_literals;
using Fault = PowerLossFs::Fault;

// A broker on the RocksDB store on a PowerLossFs in a temp dir, recording health changes.
class FaultyDisk {
 public:
  explicit FaultyDisk(storage::Durability durability) : durability_(durability) { open(); }
  ~FaultyDisk() { broker_.reset(); }

  void open() {
    broker_.reset();
    auto store = storage::testing::open_rocksdb_store_on({.dir = tmp_.path() / "rocksdb"}, *env_);
    ASSERT_TRUE(store) << store.error().to_string();
    broker::Options o;
    o.durability = durability_;
    o.storage_retry_interval = 50ms;
    o.on_storage_health = [this](const broker::StorageHealth& h) {
      std::lock_guard lock(mutex_);
      changes_.push_back(h);
    };
    auto b = broker::Broker::open(std::move(*store), std::move(o));
    ASSERT_TRUE(b) << b.error().to_string();
    broker_ = std::move(*b);
  }

  Result<broker::Appended> publish(const std::string& payload) {
    Message m;
    m.id = "id-" + payload;
    m.payload = payload;
    std::promise<Result<broker::Appended>> done;
    broker_->publish("t", {m}, [&](Result<broker::Appended> r) { done.set_value(std::move(r)); });
    auto r = done.get_future().get();
    if (r) confirmed_.push_back(payload);
    return r;
  }

  // Every confirmed message is stored, in confirm order at offsets 0.., byte for byte.
  void expect_confirmed_intact() {
    SCOPED_TRACE("confirmed messages");
    auto read = broker_->fetch("t", Offset{0}, {.max_messages = 100'000, .max_bytes = 64 << 20});
    ASSERT_TRUE(read) << read.error().to_string();
    ASSERT_EQ(read->messages.size(), confirmed_.size());
    for (std::size_t i = 0; i < confirmed_.size(); ++i) {
      EXPECT_EQ(read->messages[i].offset.value, i);
      EXPECT_EQ(read->messages[i].message.payload, confirmed_[i]);
    }
  }

  std::vector<broker::StorageHealth> changes() {
    std::lock_guard lock(mutex_);
    return changes_;
  }

  PowerLossFs& fs() { return *fs_; }
  broker::Broker& broker() { return *broker_; }

 private:
  storage::Durability durability_;
  TempDir tmp_;
  std::shared_ptr<PowerLossFs> fs_ = std::make_shared<PowerLossFs>();
  std::unique_ptr<rocksdb::Env> env_ = rocksdb::NewCompositeEnv(fs_);
  std::unique_ptr<broker::Broker> broker_;
  std::vector<std::string> confirmed_;
  std::mutex mutex_;
  std::vector<broker::StorageHealth> changes_;
};

void create_topic(broker::Broker& b) {
  std::promise<Result<TopicInfo>> done;
  b.create_topic("t", [&](Result<TopicInfo> r) { done.set_value(std::move(r)); });
  auto r = done.get_future().get();
  ASSERT_TRUE(r) << r.error().to_string();
}

TEST(StorageFault, FullDiskFailsPublishesAndRecoversWithoutRestart) {
  FaultyDisk disk{storage::Durability::fsync};
  create_topic(disk.broker());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(disk.publish("before-" + std::to_string(i)));

  disk.fs().set_fault(Fault::no_space);
  for (int i = 0; i < 3; ++i) {
    auto r = disk.publish("during-" + std::to_string(i));
    ASSERT_FALSE(r) << "a publish on a full disk was confirmed";
    EXPECT_EQ(r.error().code, Errc::storage_full) << r.error().to_string();
    EXPECT_NE(r.error().detail.find("disk full"), std::string::npos) << r.error().detail;
  }
  auto h = disk.broker().storage_health();
  EXPECT_FALSE(h.writable);
  EXPECT_EQ(h.failed_writes, 3u);
  EXPECT_EQ(h.episodes, 1u);
  EXPECT_NE(h.last_error.find("disk full"), std::string::npos) << h.last_error;
  ASSERT_EQ(disk.changes().size(), 1u) << "one health change per episode, not per failure";
  EXPECT_FALSE(disk.changes()[0].writable);
  disk.expect_confirmed_intact();  // reads work while writes fail

  // Space is back: the writer's retries (Store::recover, RocksDB Resume) bring writes back
  // without any publish and without a restart.
  disk.fs().set_fault(Fault::none);
  ASSERT_TRUE(eventually([&] { return disk.broker().storage_health().writable; }, 60s));
  EXPECT_GE(disk.broker().storage_health().recovery_attempts, 1u);
  ASSERT_EQ(disk.changes().size(), 2u);
  EXPECT_TRUE(disk.changes()[1].writable);
  for (int i = 0; i < 5; ++i) {
    auto r = disk.publish("after-" + std::to_string(i));
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(r->results[0].offset.value, 5u + i) << "failed publishes took no offset";
  }
  disk.expect_confirmed_intact();
  disk.open();  // and after a restart
  disk.expect_confirmed_intact();
  EXPECT_TRUE(disk.publish("after-restart"));
}

// An I/O error that is not a full disk: RocksDB treats a failed WAL write or sync as fatal, so
// the store stays read-only (Resume() refuses) until loftd restarts; nothing confirmed is lost.
// After a failed sync the record may already be in the log, so the failed publish may turn out
// stored after the restart, whole (like a publish whose connection dropped): its retry with the
// same id then gets the same offset either way.
void expect_fatal_until_restart(Fault fault, storage::Durability durability) {
  FaultyDisk disk{durability};
  create_topic(disk.broker());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(disk.publish("before-" + std::to_string(i)));
  disk.fs().set_fault(fault);
  auto r = disk.publish("during");
  ASSERT_FALSE(r) << "a publish whose write failed was confirmed";
  EXPECT_EQ(r.error().code, Errc::storage_error) << r.error().to_string();
  disk.fs().set_fault(Fault::none);
  // The writer retries (Resume) and RocksDB refuses: the error is fatal, not a full disk.
  ASSERT_TRUE(
      eventually([&] { return disk.broker().storage_health().recovery_attempts >= 2; }, 60s));
  auto h = disk.broker().storage_health();
  EXPECT_FALSE(h.writable) << "RocksDB resumed after a fatal error";
  EXPECT_EQ(h.episodes, 1u);
  EXPECT_NE(h.last_error.find("injected"), std::string::npos) << h.last_error;
  disk.expect_confirmed_intact();
  disk.open();  // a restart clears it
  auto again = disk.publish("during");
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ(again->results[0].offset.value, 5u);
  disk.expect_confirmed_intact();
}

TEST(StorageFault, WalWriteIoErrorFailsPublishesAndKeepsConfirmedData) {
  expect_fatal_until_restart(Fault::write_io_error, storage::Durability::fsync);
}

TEST(StorageFault, WalSyncIoErrorFailsPublishesAndKeepsConfirmedData) {
  expect_fatal_until_restart(Fault::sync_io_error, storage::Durability::fsync);
}

}  // namespace
}  // namespace loft::testing
