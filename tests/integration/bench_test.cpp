// Smoke runs of `loft bench` against the real loftd: each mode with tiny sizes runs, exits 0
// and reports sane figures. No timing assertions: the figures depend on the machine's load.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>

#include "test_daemon.hpp"

namespace loft::testing {
namespace {

using ::testing::HasSubstr;
namespace json = boost::json;

// `loft --broker ADDRESS ARGS...`, with a deadline that a loaded machine still meets.
ProcessResult run_loft(const std::string& address, std::vector<std::string> args) {
  args.insert(args.begin(), {TestDaemon::loft_path(), "--broker", address});
  return run_process(args, "", std::chrono::minutes(3));
}

class Bench : public ::testing::Test {
 protected:
  Bench() { daemon_.start(); }

  ProcessResult loft(std::vector<std::string> args) {
    return run_loft(daemon_.address(), std::move(args));
  }

  // Runs `loft bench ARGS --json`; the one JSON object it prints.
  json::object bench(std::vector<std::string> args) {
    args.insert(args.begin(), "bench");
    args.push_back("--json");
    const auto r = loft(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "") << "stderr is not a terminal: no progress line";
    json::object o;
    EXPECT_NO_THROW(o = json::parse(r.out).as_object()) << r.out;
    return o;
  }

  static double number(const json::object& o, std::string_view key) {
    EXPECT_TRUE(o.contains(key)) << key << " missing in " << json::serialize(o);
    return o.contains(key) ? o.at(key).to_number<double>() : -1;
  }

  static void expect_rates(const json::object& o) {
    EXPECT_GT(number(o, "msgs_per_sec"), 0) << json::serialize(o);
    EXPECT_GT(number(o, "mb_per_sec"), 0) << json::serialize(o);
    EXPECT_GT(number(o, "elapsed_s"), 0) << json::serialize(o);
  }

  static void expect_latency(const json::object& o) {
    const auto p50 = number(o, "p50_us");
    const auto p99 = number(o, "p99_us");
    const auto p999 = number(o, "p999_us");
    const auto max = number(o, "max_us");
    EXPECT_GE(p50, 0) << json::serialize(o);
    EXPECT_LE(p50, p99) << json::serialize(o);
    EXPECT_LE(p99, p999) << json::serialize(o);
    EXPECT_LE(p999, max) << json::serialize(o);
  }

  // The bench topics are gone afterwards (no --keep).
  void expect_no_topics() {
    const auto topics = daemon_.client()->list_topics();
    ASSERT_TRUE(topics.has_value());
    EXPECT_TRUE(topics->empty()) << topics->front().name;
  }

  TestDaemon daemon_;
};

TEST_F(Bench, PublishReportsItsParametersAndFigures) {
  const auto o = bench({"publish", "--messages", "2000", "--size", "100", "--batch", "50",
                        "--window", "4", "--producers", "2"});
  EXPECT_EQ(o.at("mode").as_string(), "publish");
  EXPECT_EQ(o.at("durability").as_string(), "fsync");
  EXPECT_EQ(number(o, "messages"), 2000);
  EXPECT_EQ(number(o, "size"), 100);
  EXPECT_EQ(number(o, "batch"), 50);
  EXPECT_EQ(number(o, "window"), 4);
  EXPECT_EQ(number(o, "producers"), 2);
  EXPECT_FALSE(o.at("ids").as_bool());
  // One latency sample per request: 2000 / 50.
  EXPECT_EQ(number(o, "latency_samples"), 40);
  expect_rates(o);
  expect_latency(o);
  expect_no_topics();
}

TEST_F(Bench, PublishWithIdsAndOneAtATime) {
  const auto o = bench({"publish", "--messages", "300", "--batch", "1", "--window", "1", "--ids"});
  EXPECT_EQ(number(o, "messages"), 300);
  EXPECT_TRUE(o.at("ids").as_bool());
  EXPECT_EQ(number(o, "latency_samples"), 300);
  expect_rates(o);
  expect_latency(o);
}

TEST_F(Bench, PublishForADuration) {
  const auto o = bench({"publish", "--duration", "300ms", "--batch", "10", "--window", "2"});
  EXPECT_GT(number(o, "messages"), 0);
  EXPECT_DOUBLE_EQ(number(o, "duration_s"), 0.3);
  expect_rates(o);
  expect_latency(o);
}

TEST_F(Bench, ConsumeDrainsEveryMessage) {
  const auto o =
      bench({"consume", "--messages", "3000", "--consumers", "2", "--max-in-flight", "100"});
  EXPECT_EQ(o.at("mode").as_string(), "consume");
  EXPECT_EQ(o.at("durability").as_string(), "fsync");
  EXPECT_EQ(number(o, "messages"), 3000);
  EXPECT_EQ(number(o, "consumers"), 2);
  EXPECT_EQ(number(o, "max_in_flight"), 100);
  expect_rates(o);
  expect_no_topics();
}

TEST_F(Bench, E2eDeliversEveryMessageAndMeasuresLatency) {
  const auto o = bench({"e2e", "--rate", "500", "--duration", "1s", "--size", "64"});
  EXPECT_EQ(o.at("mode").as_string(), "e2e");
  EXPECT_EQ(number(o, "rate"), 500);
  EXPECT_EQ(number(o, "messages"), 500);
  EXPECT_EQ(number(o, "latency_samples"), 500);
  EXPECT_GT(number(o, "publish_rate"), 0);
  expect_rates(o);
  expect_latency(o);
  expect_no_topics();
}

TEST_F(Bench, StorageRunsWithoutABroker) {
  TempDir dir;
  const auto o = bench({"storage", "--messages", "2000", "--batch", "100", "--window", "4",
                        "--durability", "os", "--data-dir", (dir.path() / "data").string()});
  EXPECT_EQ(o.at("mode").as_string(), "storage");
  EXPECT_EQ(o.at("durability").as_string(), "os");
  EXPECT_EQ(number(o, "messages"), 2000);
  EXPECT_EQ(number(o, "latency_samples"), 20);
  expect_rates(o);
  expect_latency(o);
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "data" / "rocksdb"));
}

TEST_F(Bench, StorageDefaultsToFsyncInATemporaryDir) {
  const auto o = bench({"storage", "--messages", "500", "--ids"});
  EXPECT_EQ(o.at("durability").as_string(), "fsync");
  EXPECT_EQ(o.at("data_dir").as_string(), "temporary");
  EXPECT_EQ(number(o, "messages"), 500);
  expect_rates(o);
  expect_latency(o);
}

// `bench storage` runs loft-bench-storage from loft's own directory; a loft installed without
// it says so in one line instead of running anything.
TEST_F(Bench, StorageWithoutItsBinaryIsAOneLineError) {
  TempDir dir;
  const auto lone = dir.path() / "loft";
  std::filesystem::copy_file(TestDaemon::loft_path(), lone);
  const auto r = run_process({lone.string(), "bench", "storage", "--messages", "10"}, "",
                             std::chrono::minutes(1));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("loft-bench-storage"));
  EXPECT_EQ(r.out, "");
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "loft-bench-storage"));
}

// The helper runs `loft bench storage` only: another mode is a usage error, not a broker run.
TEST_F(Bench, TheStorageBinaryRunsOnlyTheStorageMode) {
  const auto helper =
      std::filesystem::path(TestDaemon::loft_path()).parent_path() / "loft-bench-storage";
  const auto r = run_process(
      {helper.string(), "--broker", daemon_.address(), "bench", "publish", "--messages", "10"}, "",
      std::chrono::minutes(1));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("'loft bench storage' only"));
}

TEST_F(Bench, TableByDefault) {
  const auto r = loft({"bench", "publish", "--messages", "100", "--batch", "10"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("msgs_per_sec"));
  EXPECT_THAT(r.out, HasSubstr("durability"));
  EXPECT_EQ(r.out.find('{'), std::string::npos) << r.out;
}

TEST_F(Bench, BadFlagsAreUsageErrors) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"bench"},
        {"bench", "nonsense"},
        {"bench", "publish", "--messages", "0"},
        {"bench", "publish", "--messages", "10", "--duration", "1s"},
        {"bench", "publish", "--rate", "10"},
        {"bench", "consume", "--ids"},
        {"bench", "e2e", "--size", "4"},
        {"bench", "storage", "--durability", "always"},
        {"bench", "publish", "--window", "-1"},
        {"pub", "t", "--producers", "2"}}) {
    const auto r = loft(args);
    EXPECT_EQ(r.exit_code, 2) << args[1] << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

TEST_F(Bench, AnUnreachableBrokerIsAOneLineError) {
  // Port 1 is privileged: nothing of ours (or another test's) listens there.
  const auto r = run_loft("127.0.0.1:1", {"bench", "publish", "--messages", "10"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

}  // namespace
}  // namespace loft::testing
