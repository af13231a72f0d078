// SIGHUP: the real loftd reads its config file again and applies log_level and the connection
// limits without a restart; other changed keys are named as needing one; a bad file changes
// nothing and loftd keeps serving.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "test_daemon.hpp"

namespace loft::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::size_t count(const std::string& text, std::string_view needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Sends SIGHUP and waits until the daemon has logged `needle` once more than before.
void reload_and_wait_for(TestDaemon& d, std::string_view needle) {
  const auto before = count(d.log(), needle);
  d.signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return count(d.log(), needle) > before; }))
      << "no new '" << needle << "' in the log:\n"
      << d.log();
}

constexpr std::string_view kReloaded = "config reloaded";
constexpr std::string_view kReloadFailed = "config reload failed";

Result<std::unique_ptr<client::Client>> connect(const TestDaemon& d) {
  client::Options options;
  options.port = d.port();
  return client::Client::connect(options);
}

void expect_refused(const TestDaemon& d) {
  const auto c = connect(d);
  ASSERT_FALSE(c) << "a connection over max_connections was accepted";
  EXPECT_EQ(c.error().code, Errc::too_many_connections) << c.error().to_string();
  EXPECT_EQ(static_cast<int>(c.error().code), 30);
}

TEST(Reload, RaisedMaxConnectionsLetsTheNextConnectionInAndKeepsTheOpenOnes) {
  TestDaemon d("max_connections = 2\n");
  d.start();
  auto first = d.client("first");
  auto second = d.client("second");
  expect_refused(d);

  d.write_config("max_connections = 10\n");
  reload_and_wait_for(d, kReloaded);
  EXPECT_THAT(d.log(), HasSubstr("applied=max_connections needs_restart=none"));
  EXPECT_THAT(d.log(), HasSubstr("max_connections=10"));

  auto third = connect(d);
  ASSERT_TRUE(third) << third.error().to_string();
  EXPECT_TRUE((*third)->ping());
  EXPECT_TRUE(first->ping());
  EXPECT_TRUE(second->ping());
}

TEST(Reload, LoweredMaxConnectionsClosesNoneAndRefusesNewOnes) {
  TestDaemon d("max_connections = 10\n");
  d.start();
  auto first = d.client("first");
  auto second = d.client("second");

  d.write_config("max_connections = 1\n");
  reload_and_wait_for(d, kReloaded);
  expect_refused(d);
  EXPECT_TRUE(first->ping());
  EXPECT_TRUE(second->ping());
}

// Each connection's HELLO is logged at debug ("handshake peer=... client=...").
TEST(Reload, LogLevelChangesWithoutARestart) {
  TestDaemon d("log_level = \"info\"\n");
  d.start();
  // A reply to HELLO is sent after the handshake is logged, so once connected the line is there
  // or will never be.
  auto quiet = d.client("before-reload");
  EXPECT_THAT(d.log(), Not(HasSubstr("client=\"before-reload\"")));

  d.write_config("log_level = \"debug\"\n");
  reload_and_wait_for(d, kReloaded);
  EXPECT_THAT(d.log(), HasSubstr("applied=log_level"));
  auto loud = d.client("at-debug");
  EXPECT_THAT(d.log(), HasSubstr("client=\"at-debug\""));

  // Lowered to warn: the reload that lowers it still confirms itself; then debug and info
  // lines stop, the confirmation of a later reload included.
  d.write_config("log_level = \"warn\"\n");
  reload_and_wait_for(d, "log_level=warn");
  auto silent = d.client("at-warn");
  EXPECT_THAT(d.log(), Not(HasSubstr("client=\"at-warn\"")));
  const auto confirmed = count(d.log(), kReloaded);
  // Three connections are open: a 4th is refused once this reload has been applied.
  d.write_config("log_level = \"warn\"\nmax_connections = 3\n");
  d.signal(SIGHUP);
  ASSERT_TRUE(eventually([&] {
    const auto c = connect(d);
    return !c && c.error().code == Errc::too_many_connections;
  }));
  EXPECT_EQ(count(d.log(), kReloaded), confirmed) << d.log();
  EXPECT_TRUE(quiet->ping());
  EXPECT_TRUE(loud->ping());
  EXPECT_TRUE(silent->ping());
}

TEST(Reload, ABrokenFileIsReportedAndTheOldLimitsStay) {
  TestDaemon d("max_connections = 2\n");
  d.start();
  auto first = d.client("first");
  auto second = d.client("second");

  // Not TOML.
  d.write_config("max_connections = = 10\n");
  reload_and_wait_for(d, kReloadFailed);
  EXPECT_THAT(d.log(), HasSubstr("TOML syntax error"));
  expect_refused(d);

  // TOML, but not a valid value.
  d.write_config("max_connections = 0\n");
  reload_and_wait_for(d, kReloadFailed);
  EXPECT_THAT(d.log(), HasSubstr("config key 'max_connections'"));
  expect_refused(d);

  // Each key valid, but they do not fit together (a message would not fit in a frame).
  d.write_config("max_connections = 10\nmax_frame_size = \"1KiB\"\n");
  reload_and_wait_for(d, kReloadFailed);
  expect_refused(d);

  // No file at all.
  std::filesystem::remove(d.config_path());
  reload_and_wait_for(d, kReloadFailed);
  expect_refused(d);

  EXPECT_EQ(count(d.log(), std::string(kReloaded) + " "), 0u);
  EXPECT_TRUE(d.running());
  EXPECT_TRUE(first->ping());
  ASSERT_TRUE(first->create_topic("still-serving"));
  Message m;
  m.payload = "after four bad reloads";
  EXPECT_TRUE(second->publish("still-serving", m));
}

TEST(Reload, KeysThatNeedARestartAreNamedAndKeepTheirRunningValue) {
  TestDaemon d("durability = \"fsync\"\nauto_create_topics = false\n");
  d.start();
  auto c = d.client();

  // listen in the file is overridden by TestDaemon's --listen, as at start-up: not a change.
  d.write_config(
      "durability = \"os\"\nauto_create_topics = true\nlisten = \"127.0.0.1:1\"\n"
      "max_connections = 50\n");
  reload_and_wait_for(d, kReloaded);
  const auto log = d.log();
  EXPECT_THAT(log, HasSubstr("config key needs a restart to take effect key=durability"));
  EXPECT_THAT(log, HasSubstr("config key needs a restart to take effect key=auto_create_topics"));
  EXPECT_THAT(log, Not(HasSubstr("key=listen")));
  EXPECT_THAT(log,
              HasSubstr("applied=max_connections needs_restart=durability,auto_create_topics"));

  // Still serving with the running values: topics are not auto-created.
  EXPECT_TRUE(c->ping());
  Message m;
  m.payload = "x";
  const auto missing = c->publish("not-created", m);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::topic_not_found);
  auto fresh = d.client("after-reload");
  ASSERT_TRUE(fresh->create_topic("t"));
  EXPECT_TRUE(fresh->publish("t", m));
}

}  // namespace
}  // namespace loft::testing
