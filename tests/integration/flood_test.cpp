// Connection floods against the real loftd: thousands of sockets that never send HELLO must not
// lock out a client that does (docs/protocol.md, section 7.4). The silent sockets come from
// SocketFlood (tests/support), which can also stall them in the middle of a handshake by
// sending a few first bytes (a TLS ClientHello's start, on the TLS listener of a loftd with
// users, while a client authenticates over TLS).

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "http_client.hpp"
#include "socket_flood.hpp"
#include "test_certs.hpp"
#include "test_daemon.hpp"
#include "test_password.hpp"

namespace loft::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Enough descriptors for the flood in this process and, inherited, in loftd.
constexpr std::uint64_t kNeededOpenFiles = 12'000;

// The value of an unlabelled metric on loftd's /metrics page; -1 if absent.
long long metric(const TestDaemon& d, const std::string& name) {
  HttpClient http(d.http_port());
  const auto page = http.get("/metrics").body;
  std::smatch m;
  if (!std::regex_search(page, m, std::regex("\n" + name + " ([0-9]+)\n"))) return -1;
  return std::stoll(m[1]);
}

// Connects, creates a topic, publishes one message and waits for its confirm; returns how
// long that took.
Clock::duration publish_one(const TestDaemon& d, const std::string& topic) {
  const auto start = Clock::now();
  client::Options options;
  options.port = d.port();
  options.client_name = "well-behaved";
  options.connect_timeout = 20s;
  options.request_timeout = 20s;
  auto c = client::Client::connect(options);
  EXPECT_TRUE(c) << c.error().to_string();
  if (!c) return Clock::duration::max();
  const auto created = (*c)->create_topic(topic);
  EXPECT_TRUE(created) << created.error().to_string();
  Message message;
  message.id = "m1";
  message.payload = "hello";
  const auto confirmed = (*c)->publish(topic, message);
  EXPECT_TRUE(confirmed) << confirmed.error().to_string();
  return Clock::now() - start;
}

TEST(Flood, FiveThousandSilentSocketsDoNotLockOutAClient) {
  constexpr std::size_t kSilent = 5'000;
  constexpr std::size_t kMaxPending = 256;  // the default
  if (const auto limit = raise_open_files_limit(); limit < kNeededOpenFiles) {
    GTEST_SKIP() << "RLIMIT_NOFILE hard limit " << limit << " is below " << kNeededOpenFiles
                 << "; raise it (ulimit -Hn) to run this test";
  }
  // Inherits the raised limit. A long handshake_timeout: every closed connection is evicted.
  TestDaemon d("", {"--set", "handshake_timeout=60s"});
  d.start();
  const auto rss_before = d.rss_kib();

  const auto opening = Clock::now();
  SocketFlood flood(d.port(), kSilent, 20s);
  const auto opened_in = Clock::now() - opening;
  ASSERT_EQ(flood.connected(), kSilent) << flood.first_error();
  std::cerr << "opened " << kSilent << " silent sockets in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(opened_in).count() << " ms\n";
  EXPECT_LT(opened_in, 10s);
  // loftd has accepted them all, and kept only the newest max_pending_connections.
  ASSERT_TRUE(eventually(
      [&] { return metric(d, "loft_connections_evicted_total") == kSilent - kMaxPending; }, 20s))
      << "evicted " << metric(d, "loft_connections_evicted_total");
  EXPECT_EQ(metric(d, "loft_connections_pending"), static_cast<long long>(kMaxPending));

  // The silent sockets are still open on our side while a real client gets through.
  const auto took = publish_one(d, "flood");
  std::cerr << "connect + create + publish + confirm took "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
  EXPECT_LT(took, 20s);
  EXPECT_EQ(metric(d, "loft_connections_pending"), static_cast<long long>(kMaxPending) - 1)
      << "the client's connection is admitted; it evicted one pending connection";
  EXPECT_GE(flood.closed_by_peer(), kSilent - kMaxPending);

  // Pending connections are cheap: the flood costs loftd little memory.
  const auto rss_after = d.rss_kib();
  std::cerr << "loftd RSS before " << rss_before << " KiB, after " << rss_after << " KiB\n";
  ASSERT_GT(rss_before, 0u);
  EXPECT_LT(rss_after, rss_before + std::uint64_t{200} * 1024);
  // Logged at most once per 10 s, with counts.
  EXPECT_THAT(d.log(), ::testing::HasSubstr("reason=max_pending_connections"));
}

// The whole scenario with security on: users and a TLS listener; 5,000 silent sockets on the
// plaintext port and 500 stalled in the middle of a TLS ClientHello on the TLS port. A client
// then connects over TLS, authenticates with a password (an Argon2id check while its connection
// is still pending), publishes and gets its confirm; loftd's memory stays bounded.
TEST(Flood, SilentAndTlsStalledSocketsDoNotLockOutAnAuthenticatingTlsClient) {
  constexpr std::size_t kSilent = 5'000;
  constexpr std::size_t kStalled = 500;
  constexpr std::size_t kMaxPending = 256;  // the default
  if (const auto limit = raise_open_files_limit(); limit < kNeededOpenFiles) {
    GTEST_SKIP() << "RLIMIT_NOFILE hard limit " << limit << " is below " << kNeededOpenFiles
                 << "; raise it (ulimit -Hn) to run this test";
  }
  const auto& certs = TestCerts::get();
  const std::string password = "fl00d-test-secret-3e9a";
  never_log(password);
  TempDir dir;
  const auto users = dir.path() / "users.toml";
  const auto hash = cheap_password_hash(password);
  ASSERT_FALSE(hash.empty());
  std::ofstream(users) << "[[users]]\nname = \"writer\"\npassword_hash = \"" << hash
                       << "\"\nadmin = [\"flood\"]\npublish = [\"flood\"]\n";
  TestDaemon d("users_file = \"" + users.string() +
               "\"\ntls_listen = \"127.0.0.1:0\"\ntls_cert_file = \"" + certs.server.cert +
               "\"\ntls_key_file = \"" + certs.server.key + "\"\nhandshake_timeout = \"60s\"\n");
  d.start();
  const auto rss_before = d.rss_kib();

  SocketFlood silent(d.port(), kSilent, 20s);
  ASSERT_EQ(silent.connected(), kSilent) << silent.first_error();
  // A TLS record header announcing a ClientHello, and then nothing.
  SocketFlood stalled(d.tls_port(), kStalled, 20s, std::string("\x16\x03\x01\x02\x00", 5));
  ASSERT_EQ(stalled.connected(), kStalled) << stalled.first_error();
  ASSERT_TRUE(eventually(
      [&] {
        return metric(d, "loft_connections_evicted_total") ==
               static_cast<long long>(kSilent + kStalled - kMaxPending);
      },
      60s))
      << "evicted " << metric(d, "loft_connections_evicted_total");

  const auto start = Clock::now();
  client::Options options;
  options.port = d.tls_port();
  options.client_name = "well-behaved";
  options.tls.enabled = true;
  options.tls.ca_file = certs.ca;
  options.user = "writer";
  options.password = password;
  options.connect_timeout = 20s;
  options.request_timeout = 20s;
  auto c = client::Client::connect(options);
  ASSERT_TRUE(c) << c.error().to_string();
  ASSERT_TRUE((*c)->create_topic("flood"));
  Message message;
  message.payload = "hello";
  const auto confirmed = (*c)->publish("flood", message);
  ASSERT_TRUE(confirmed) << confirmed.error().to_string();
  const auto took = Clock::now() - start;
  std::cerr << "TLS connect + authenticate + create + publish + confirm took "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
  EXPECT_LT(took, 20s);
  EXPECT_EQ(metric(d, "loft_connections_pending"), static_cast<long long>(kMaxPending) - 1)
      << "the client's connection is admitted; it evicted one pending connection";
  EXPECT_EQ(metric(d, "loft_auth_succeeded_total"), 1);
  EXPECT_GE(silent.closed_by_peer() + stalled.closed_by_peer(), kSilent + kStalled - kMaxPending);

  const auto rss_after = d.rss_kib();
  std::cerr << "loftd RSS before " << rss_before << " KiB, after " << rss_after << " KiB\n";
  ASSERT_GT(rss_before, 0u);
  EXPECT_LT(rss_after, rss_before + std::uint64_t{200} * 1024);
}

TEST(Flood, SilentSocketsAtMaxConnectionsMakeRoomForAClient) {
  constexpr std::size_t kSilent = 200;
  constexpr std::size_t kMaxConnections = 50;
  TestDaemon d("", {"--set", "max_connections=" + std::to_string(kMaxConnections), "--set",
                    "max_pending_connections=1000", "--set", "handshake_timeout=60s"});
  d.start();
  SocketFlood flood(d.port(), kSilent, 20s);
  ASSERT_EQ(flood.connected(), kSilent) << flood.first_error();
  ASSERT_TRUE(eventually(
      [&] { return metric(d, "loft_connections_evicted_total") == kSilent - kMaxConnections; },
      20s))
      << "evicted " << metric(d, "loft_connections_evicted_total");
  EXPECT_EQ(metric(d, "loft_connections_refused_total"), 0);

  EXPECT_LT(publish_one(d, "flood"), 20s);
  EXPECT_EQ(metric(d, "loft_connections_refused_total"), 0);
  EXPECT_EQ(metric(d, "loft_connections_evicted_total"),
            static_cast<long long>(kSilent - kMaxConnections + 1))
      << "the client's connection evicted one more";
  EXPECT_THAT(d.log(), ::testing::HasSubstr("reason=max_connections"));
}

TEST(Flood, TheOldestPendingConnectionIsClosedFirstAndAdmittedOnesNever) {
  TestDaemon d("", {"--set", "max_pending_connections=3", "--set", "handshake_timeout=60s"});
  d.start();
  auto admitted = d.client("admitted");
  // One at a time, so that loftd accepts them in this order.
  std::vector<std::unique_ptr<SocketFlood>> silent;
  for (int i = 0; i < 4; ++i) {
    silent.push_back(std::make_unique<SocketFlood>(d.port(), 1, 20s));
    ASSERT_EQ(silent.back()->connected(), 1u) << silent.back()->first_error();
    // The fourth evicts the first.
    ASSERT_TRUE(eventually(
        [&] {
          return metric(d, "loft_connections_open") == std::min(i + 1, 3) + 1 &&
                 metric(d, "loft_connections_evicted_total") == std::max(0, i - 2);
        },
        20s))
        << "socket " << i;
  }
  EXPECT_TRUE(eventually([&] { return silent[0]->closed_by_peer() == 1; }, 20s));
  for (int i = 1; i < 4; ++i) EXPECT_EQ(silent[i]->closed_by_peer(), 0u) << "socket " << i;
  EXPECT_EQ(metric(d, "loft_connections_pending"), 3);
  EXPECT_EQ(metric(d, "loft_connections_evicted_total"), 1);
  EXPECT_TRUE(admitted->ping());
}

TEST(Flood, ALoweredMaxPendingConnectionsAppliesAtTheNextAccept) {
  TestDaemon d("max_pending_connections = 100\nhandshake_timeout = \"60s\"\n");
  d.start();
  SocketFlood older(d.port(), 3, 20s);
  ASSERT_EQ(older.connected(), 3u) << older.first_error();
  ASSERT_TRUE(eventually([&] { return metric(d, "loft_connections_pending") == 3; }, 20s));

  d.write_config("max_pending_connections = 2\nhandshake_timeout = \"60s\"\n");
  d.signal(SIGHUP);
  ASSERT_TRUE(eventually(
      [&] { return d.log().find("max_pending_connections=2 ") != std::string::npos; }, 20s))
      << d.log();
  EXPECT_EQ(metric(d, "loft_connections_pending"), 3) << "a lower limit closes none at once";

  SocketFlood newer(d.port(), 1, 20s);
  ASSERT_EQ(newer.connected(), 1u) << newer.first_error();
  ASSERT_TRUE(eventually([&] { return metric(d, "loft_connections_evicted_total") == 2; }, 20s));
  EXPECT_EQ(metric(d, "loft_connections_pending"), 2);
  EXPECT_TRUE(eventually([&] { return older.closed_by_peer() == 2; }, 20s));
  EXPECT_EQ(newer.closed_by_peer(), 0u);
}

}  // namespace
}  // namespace loft::testing
