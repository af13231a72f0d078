// TLS on the binary protocol against the real loftd: certificates made at test time
// (TestCerts), the C++ client and the CLI on loftd's tls_listen port.

#include "loft/tls/tls.hpp"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <csignal>
#include <fstream>
#include <future>
#include <thread>

#include "loft/protocol/codec.hpp"
#include "loft/tls/engine.hpp"
#include "test_certs.hpp"
#include "test_daemon.hpp"

namespace loft::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::ip::tcp;

std::string tls_config(const CertPair& pair, const std::string& extra = "") {
  return "tls_listen = \"127.0.0.1:0\"\ntls_cert_file = \"" + pair.cert + "\"\ntls_key_file = \"" +
         pair.key + "\"\n" + extra;
}

client::Options tls_options(const TestDaemon& d, const std::string& ca) {
  client::Options o;
  o.port = d.tls_port();
  o.client_name = "tls-test";
  o.tls.enabled = true;
  o.tls.ca_file = ca;
  return o;
}

Message text(std::string payload) {
  Message m;
  m.payload = std::move(payload);
  return m;
}

// The serial (hex) of the certificate loftd's TLS listener presents now; verifies nothing.
std::string served_serial(std::uint16_t port) {
  asio::io_context io;
  ssl::context context(ssl::context::tls_client);
  context.set_verify_mode(ssl::verify_none);
  ssl::stream<tcp::socket> stream(io, context);
  stream.next_layer().connect({asio::ip::make_address("127.0.0.1"), port});
  const timeval timeout{30, 0};  // a blocking handshake must not hang the test
  ::setsockopt(stream.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout,
               sizeof timeout);
  stream.handshake(ssl::stream_base::client);
  X509* cert = SSL_get0_peer_certificate(stream.native_handle());
  if (cert == nullptr) return "none";
  return tls::serial_hex(cert);
}

// Connects to `port`, sends `bytes`, and waits until the server closes the connection; how long
// that took, or nullopt when it did not close within 30 s.
std::optional<std::chrono::milliseconds> closed_after_sending(std::uint16_t port,
                                                              const std::string& bytes) {
  const auto started = std::chrono::steady_clock::now();
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::optional<std::chrono::milliseconds> closed;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size())) {
    const auto deadline = started + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      if (::recv(fd, buf, sizeof buf, 0) <= 0) {
        closed = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - started);
        break;
      }
    }
  }
  ::close(fd);
  return closed;
}

// A TLS client on a blocking socket that moves its bytes itself (tls::Engine), so a test can
// send what no library would: records one byte at a time, each on the wire one byte per send.
// Reads give up after 30 s (SO_RCVTIMEO), so nothing here can hang.
class RawTls {
 public:
  RawTls(std::uint16_t port, const std::string& ca) : context_(ssl::context::tls_client) {
    context_.load_verify_file(ca);
    context_.set_verify_mode(ssl::verify_peer);
    engine_ = std::make_unique<tls::Engine>(context_, tls::Engine::Role::client);
    decoder_.set_version(1);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const timeval timeout{30, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~RawTls() { ::close(fd_); }
  RawTls(const RawTls&) = delete;
  RawTls& operator=(const RawTls&) = delete;

  // The whole handshake, every byte of ours in a send of its own when `bytewise`.
  ::testing::AssertionResult handshake(bool bytewise) {
    if (!connected_) return ::testing::AssertionFailure() << "not connected";
    for (;;) {
      const auto status = engine_->handshake();
      if (!send_output(bytewise)) return ::testing::AssertionFailure() << "send failed";
      if (status == tls::Engine::Status::done) return ::testing::AssertionSuccess();
      if (status != tls::Engine::Status::want_read) {
        return ::testing::AssertionFailure() << engine_->error().message();
      }
      if (!receive()) return ::testing::AssertionFailure() << "closed during the handshake";
    }
  }
  // The first flight alone (the ClientHello).
  bool send_client_hello() {
    return connected_ && engine_->handshake() == tls::Engine::Status::want_read &&
           send_output(false);
  }

  // A frame as one record per byte, every byte of them in a send of its own.
  bool send_bytewise(std::uint32_t cid, protocol::Body body) {
    // The raw client speaks version 1 (its HELLO offers 1..1), both ways.
    const auto plain = protocol::encode(protocol::Frame{cid, std::move(body)}, 1);
    for (const char ch : plain) {
      if (!engine_->write({&ch, 1}) || !send_output(true)) return false;
    }
    return true;
  }

  std::optional<protocol::Frame> read_frame() {
    std::array<char, 4096> room{};
    for (;;) {
      auto next = decoder_.next();
      if (!next || *next) return next ? std::optional(std::move(**next)) : std::nullopt;
      const auto r = engine_->read(room);
      decoder_.feed({room.data(), r.bytes});
      if (r.bytes > 0) continue;
      if (r.status == tls::Engine::Status::want_read && !receive()) return std::nullopt;
      if (r.status == tls::Engine::Status::closed || r.status == tls::Engine::Status::failed) {
        return std::nullopt;
      }
    }
  }

  int fd() const { return fd_; }

 private:
  bool send_output(bool bytewise) {
    std::array<char, 16384> out{};
    while (const std::size_t n = engine_->take_output(out)) {
      for (std::size_t sent = 0; sent < n;) {
        const auto k = ::send(fd_, out.data() + sent, bytewise ? 1 : n - sent, MSG_NOSIGNAL);
        if (k <= 0) return false;
        sent += static_cast<std::size_t>(k);
      }
    }
    return true;
  }
  bool receive() {
    std::array<char, 16384> in{};
    const auto n = ::recv(fd_, in.data(), in.size(), 0);
    if (n <= 0) return false;
    engine_->feed({in.data(), static_cast<std::size_t>(n)});
    return true;
  }

  ssl::context context_;
  std::unique_ptr<tls::Engine> engine_;
  int fd_ = -1;
  bool connected_ = false;
  protocol::Decoder decoder_{1u << 30};
};

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

::testing::AssertionResult publishes(client::Client& c, const std::string& topic) {
  auto r = c.publish(topic, text("over TLS"));
  if (!r) return ::testing::AssertionFailure() << r.error().to_string();
  return ::testing::AssertionSuccess() << "offset " << r->offset;
}

TEST(Tls, PublishAndConfirmOverTlsWithTheClientAndTheCli) {
  const auto& certs = TestCerts::get();
  TestDaemon d(tls_config(certs.server));
  d.start();
  ASSERT_NE(d.tls_port(), 0);
  EXPECT_THAT(d.log(), HasSubstr("tls listening"));

  auto c = client::Client::connect(tls_options(d, certs.ca));
  ASSERT_TRUE(c) << c.error().to_string();
  ASSERT_TRUE((*c)->create_topic("t"));
  EXPECT_TRUE(publishes(**c, "t"));
  // The plaintext listener goes on beside it.
  EXPECT_TRUE(d.client()->ping());

  // By name too: localhost is in the certificate.
  auto by_name = tls_options(d, certs.ca);
  by_name.host = "localhost";
  auto named = client::Client::connect(by_name);
  ASSERT_TRUE(named) << named.error().to_string();
  EXPECT_TRUE(publishes(**named, "t"));

  const std::string tls_broker = "127.0.0.1:" + std::to_string(d.tls_port());
  auto pub = run_process({TestDaemon::loft_path(), "--broker", tls_broker, "--tls-ca", certs.ca,
                          "pub", "t", "from the CLI"});
  EXPECT_EQ(pub.exit_code, 0) << pub.err;
  auto fetched = fetch_all(**c, "t");
  ASSERT_TRUE(fetched);
  ASSERT_EQ(fetched->size(), 3u);
  EXPECT_EQ(fetched->back().message.payload, "from the CLI");

  // A CA that did not sign the server's certificate: one line, a non-zero exit.
  auto bad = run_process({TestDaemon::loft_path(), "--broker", tls_broker, "--tls-ca",
                          certs.other_ca, "topic", "list"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.err, HasSubstr("certificate verify failed"));
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
  auto missing = run_process({TestDaemon::loft_path(), "--broker", tls_broker, "--tls-ca",
                              (certs.dir / "no-such.pem").string(), "topic", "list"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.err, HasSubstr("no-such.pem"));
}

TEST(Tls, TheClientRefusesAServerItCannotVerify) {
  const auto& certs = TestCerts::get();
  TestDaemon d(tls_config(certs.server));
  d.start();

  auto wrong_ca = client::Client::connect(tls_options(d, certs.other_ca));
  ASSERT_FALSE(wrong_ca);
  EXPECT_EQ(wrong_ca.error().code, Errc::connection_error);
  EXPECT_THAT(wrong_ca.error().detail, HasSubstr("TLS handshake with 127.0.0.1:"));
  EXPECT_THAT(wrong_ca.error().detail, HasSubstr("certificate verify failed"));

  auto other_name = tls_options(d, certs.ca);
  other_name.tls.server_name = "broker.example";
  auto mismatch = client::Client::connect(other_name);
  ASSERT_FALSE(mismatch);
  EXPECT_EQ(mismatch.error().code, Errc::connection_error);
  EXPECT_THAT(mismatch.error().detail, HasSubstr("hostname mismatch"));

  // The system's CAs do not know the test CA.
  auto system = client::Client::connect(tls_options(d, ""));
  ASSERT_FALSE(system);
  EXPECT_THAT(system.error().detail, HasSubstr("certificate verify failed"));
  // The CLI's --tls alone uses them too: one line, a non-zero exit.
  const auto cli =
      run_process({TestDaemon::loft_path(), "--broker", "127.0.0.1:" + std::to_string(d.tls_port()),
                   "--tls", "topic", "list"});
  EXPECT_NE(cli.exit_code, 0);
  EXPECT_THAT(cli.err, HasSubstr("certificate verify failed"));
  EXPECT_EQ(std::count(cli.err.begin(), cli.err.end(), '\n'), 1) << cli.err;

  // loftd goes on serving.
  auto good = client::Client::connect(tls_options(d, certs.ca));
  ASSERT_TRUE(good) << good.error().to_string();
  EXPECT_TRUE((*good)->ping());
}

TEST(Tls, AnExpiredServerCertificateIsRefused) {
  const auto& certs = TestCerts::get();
  TestDaemon d(tls_config(certs.expired));
  d.start();
  auto c = client::Client::connect(tls_options(d, certs.ca));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::connection_error);
  EXPECT_THAT(c.error().detail, HasSubstr("certificate has expired"));
  // The CLI: one line, a non-zero exit.
  const auto cli =
      run_process({TestDaemon::loft_path(), "--broker", "127.0.0.1:" + std::to_string(d.tls_port()),
                   "--tls-ca", certs.ca, "topic", "list"});
  EXPECT_NE(cli.exit_code, 0);
  EXPECT_THAT(cli.err, HasSubstr("certificate has expired"));
  EXPECT_EQ(std::count(cli.err.begin(), cli.err.end(), '\n'), 1) << cli.err;
}

TEST(Tls, ARequiredClientCertificateMustBePresentAndSignedByTheCa) {
  const auto& certs = TestCerts::get();
  TestDaemon d(tls_config(certs.server,
                          "tls_ca_file = \"" + certs.ca + "\"\ntls_client_auth = \"required\"\n"));
  d.start();
  auto options = tls_options(d, certs.ca);
  // TLS 1.3: the server judges the client's certificate after the client has finished its
  // handshake, so the refusal may arrive as the answer to HELLO; connect() fails either way.
  auto without = client::Client::connect(options);
  ASSERT_FALSE(without);
  EXPECT_EQ(without.error().code, Errc::connection_error) << without.error().to_string();

  auto stranger = options;
  stranger.tls.cert_file = certs.other_server.cert;  // from CA 2
  stranger.tls.key_file = certs.other_server.key;
  EXPECT_FALSE(client::Client::connect(stranger));

  // An expired client certificate from the right CA: refused, and the CLI says so in one line.
  auto expired = options;
  expired.tls.cert_file = certs.expired_client.cert;
  expired.tls.key_file = certs.expired_client.key;
  EXPECT_FALSE(client::Client::connect(expired));
  const auto expired_cli =
      run_process({TestDaemon::loft_path(), "--broker", "127.0.0.1:" + std::to_string(d.tls_port()),
                   "--tls-ca", certs.ca, "--tls-cert", certs.expired_client.cert, "--tls-key",
                   certs.expired_client.key, "topic", "list"});
  EXPECT_NE(expired_cli.exit_code, 0);
  EXPECT_EQ(std::count(expired_cli.err.begin(), expired_cli.err.end(), '\n'), 1) << expired_cli.err;

  auto alice = options;
  alice.tls.cert_file = certs.alice.cert;
  alice.tls.key_file = certs.alice.key;
  auto c = client::Client::connect(alice);
  ASSERT_TRUE(c) << c.error().to_string();
  ASSERT_TRUE((*c)->create_topic("t"));
  EXPECT_TRUE(publishes(**c, "t"));

  auto bob = options;
  bob.tls.cert_file = certs.bob.cert;
  bob.tls.key_file = certs.bob.key;
  auto b = client::Client::connect(bob);
  ASSERT_TRUE(b) << b.error().to_string();
  EXPECT_TRUE(publishes(**b, "t"));

  auto cli =
      run_process({TestDaemon::loft_path(), "--broker", "127.0.0.1:" + std::to_string(d.tls_port()),
                   "--tls-ca", certs.ca, "--tls-cert", certs.alice.cert, "--tls-key",
                   certs.alice.key, "pub", "t", "from alice"});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
}

TEST(Tls, PlaintextAndTlsOnTheWrongPortFailCleanlyAndLoftdGoesOn) {
  const auto& certs = TestCerts::get();
  TestDaemon d(tls_config(certs.server, "handshake_timeout = \"2s\"\n"));
  d.start();
  const auto started = std::chrono::steady_clock::now();

  // A plaintext client on the TLS port: its HELLO is no ClientHello.
  client::Options plain;
  plain.port = d.tls_port();
  auto p = client::Client::connect(plain);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, Errc::connection_error) << p.error().to_string();

  // A TLS client on the plaintext port: its ClientHello is no frame.
  auto wrong = tls_options(d, certs.ca);
  wrong.port = d.port();
  auto t = client::Client::connect(wrong);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, Errc::connection_error) << t.error().to_string();
  EXPECT_THAT(t.error().detail, HasSubstr("TLS handshake"));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);

  // A client that stalls in the middle of its ClientHello is closed at handshake_timeout.
  const auto stalled = closed_after_sending(d.tls_port(), std::string("\x16\x03\x01\x02", 4));
  ASSERT_TRUE(stalled.has_value()) << "not closed";
  EXPECT_GE(*stalled, 1900ms);
  EXPECT_THAT(d.log(), HasSubstr("TLS handshake not complete within handshake_timeout 2000ms"));

  // Both listeners still serve.
  EXPECT_TRUE(d.client()->ping());
  auto good = client::Client::connect(tls_options(d, certs.ca));
  ASSERT_TRUE(good) << good.error().to_string();
  EXPECT_TRUE((*good)->ping());
  EXPECT_TRUE(eventually([&] { return d.log().find("TLS handshake failed") != std::string::npos; }))
      << d.log();
}

// Deliveries in batches far larger than a TLS record (and than one socket write of loftd's)
// reach a consumer whole and in order, however the reads split them.
TEST(Tls, LargeDeliveryBatchesArriveWholeOverTls) {
  const auto& certs = TestCerts::get();
  TestDaemon d(tls_config(certs.server));
  d.start();
  auto producer = client::Client::connect(tls_options(d, certs.ca));
  ASSERT_TRUE(producer) << producer.error().to_string();
  ASSERT_TRUE((*producer)->create_topic("big"));
  constexpr int kMessages = 3000;
  constexpr std::size_t kSize = 3000;  // 9 MB in all
  auto payload = [](int i) {
    std::string p(kSize, static_cast<char>('a' + i % 26));
    p.replace(0, std::to_string(i).size(), std::to_string(i));
    return p;
  };
  for (int from = 0; from < kMessages; from += 500) {
    std::vector<Message> batch;
    for (int i = from; i < from + 500; ++i) batch.push_back(text(payload(i)));
    auto r = (*producer)->publish("big", std::move(batch));
    ASSERT_TRUE(r) << r.error().to_string();
  }
  auto consumer = client::Client::connect(tls_options(d, certs.ca));
  ASSERT_TRUE(consumer) << consumer.error().to_string();
  client::SubscribeOptions o;
  o.topic = "big";
  o.group = "g";
  o.max_in_flight = kMessages;  // the whole backlog in flight: batches as large as loftd makes
  auto s = (*consumer)->subscribe(o);
  ASSERT_TRUE(s) << s.error().to_string();
  int next = 0;
  const auto until = std::chrono::steady_clock::now() + 120s;
  while (next < kMessages && std::chrono::steady_clock::now() < until) {
    auto got = (*s)->receive(200ms, kMessages);
    ASSERT_TRUE(got) << got.error().to_string();
    for (const auto& m : *got) {
      ASSERT_EQ(m.offset, static_cast<std::uint64_t>(next));
      ASSERT_TRUE(m.message.payload == payload(next)) << "payload of offset " << next;
      (*s)->ack(m.offset);
      ++next;
    }
  }
  EXPECT_EQ(next, kMessages);
  EXPECT_TRUE((*s)->flush());
}

// Threads that share one TLS connection each encrypt and send their own frames: records must
// leave in the order they were made (a record out of order fails loftd's decryption), while
// the reader thread decrypts the confirms.
TEST(Tls, ThreadsSharingOneTlsConnectionAllGetTheirConfirms) {
  const auto& certs = TestCerts::get();
  TestDaemon d(tls_config(certs.server));
  d.start();
  auto c = client::Client::connect(tls_options(d, certs.ca));
  ASSERT_TRUE(c) << c.error().to_string();
  ASSERT_TRUE((*c)->create_topic("shared"));
  constexpr int kThreads = 4;
  constexpr int kEach = 300;
  std::atomic<int> confirmed{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::future<Result<std::vector<client::PublishResult>>>> pending;
      pending.reserve(kEach);
      for (int i = 0; i < kEach; ++i) {
        std::vector<Message> one;
        one.push_back(text(std::string(100 + (i * 37 + t) % 3000, 'x')));
        pending.push_back((*c)->publish_async("shared", std::move(one)));
      }
      for (auto& f : pending) {
        if (f.get()) ++confirmed;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(confirmed.load(), kThreads * kEach);
  auto fetched = fetch_all(**c, "shared");
  ASSERT_TRUE(fetched) << fetched.error().to_string();
  EXPECT_EQ(fetched->size(), static_cast<std::size_t>(kThreads * kEach));
}

// A client whose every TLS record carries one byte, each byte of them in a TCP segment of its
// own (the handshake too): loftd reassembles records and frames from any split.
TEST(Tls, RecordsOfOneByteSentOneByteAtATimeAreServed) {
  const auto& certs = TestCerts::get();
  TestDaemon d(tls_config(certs.server));
  d.start();
  RawTls raw(d.tls_port(), certs.ca);
  ASSERT_TRUE(raw.handshake(true));
  ASSERT_TRUE(raw.send_bytewise(1, protocol::Hello{1, 1, "bytewise"}));
  auto hello = raw.read_frame();
  ASSERT_TRUE(hello);
  EXPECT_TRUE(std::holds_alternative<protocol::HelloOk>(hello->body));
  ASSERT_TRUE(raw.send_bytewise(2, protocol::CreateTopic{"t", 0, {}, {}}));
  ASSERT_TRUE(raw.send_bytewise(3, protocol::Publish{"t", {text("one byte at a time")}}));
  for (std::uint32_t cid : {2u, 3u}) {
    auto reply = raw.read_frame();
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->correlation_id, cid);
    EXPECT_FALSE(std::holds_alternative<protocol::ErrorReply>(reply->body));
  }
  auto c = client::Client::connect(tls_options(d, certs.ca));
  ASSERT_TRUE(c) << c.error().to_string();
  auto fetched = fetch_all(**c, "t");
  ASSERT_TRUE(fetched);
  ASSERT_EQ(fetched->size(), 1u);
  EXPECT_EQ(fetched->front().message.payload, "one byte at a time");
}

// Clients that go away in the middle of the handshake (right after their ClientHello, or after
// reading loftd's answer to it) and one that stops answering there: one log line each, the
// silent one closed at handshake_timeout, and loftd goes on serving TLS.
TEST(Tls, ClientsThatCloseOrStallDuringTheHandshakeEndCleanly) {
  const auto& certs = TestCerts::get();
  TestDaemon d(tls_config(certs.server, "handshake_timeout = \"2s\"\n"));
  d.start();
  {
    RawTls gone(d.tls_port(), certs.ca);
    ASSERT_TRUE(gone.send_client_hello());
  }
  {
    RawTls gone(d.tls_port(), certs.ca);
    ASSERT_TRUE(gone.send_client_hello());
    std::array<char, 1> first{};
    ASSERT_EQ(::recv(gone.fd(), first.data(), first.size(), 0), 1) << "no ServerHello";
  }
  ASSERT_TRUE(eventually([&] { return occurrences(d.log(), "TLS handshake failed") >= 2; }))
      << d.log();

  const auto started = std::chrono::steady_clock::now();
  RawTls stalled(d.tls_port(), certs.ca);
  ASSERT_TRUE(stalled.send_client_hello());
  std::array<char, 16384> sink{};
  while (::recv(stalled.fd(), sink.data(), sink.size(), 0) > 0) {
  }
  EXPECT_GE(std::chrono::steady_clock::now() - started, 1900ms);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 25s) << "not closed";
  EXPECT_TRUE(eventually([&] {
    return d.log().find("TLS handshake not complete within handshake_timeout 2000ms") !=
           std::string::npos;
  })) << d.log();

  auto c = client::Client::connect(tls_options(d, certs.ca));
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_TRUE((*c)->ping());
}

TEST(Tls, SighupReloadsTheCertificateForNewConnectionsOnly) {
  const auto& certs = TestCerts::get();
  TempDir dir;
  const CertPair live = certs.copy_server_cert(dir.path());
  TestDaemon d(tls_config(live));
  d.start();
  EXPECT_EQ(served_serial(d.tls_port()), "1001");
  auto old = client::Client::connect(tls_options(d, certs.ca));
  ASSERT_TRUE(old) << old.error().to_string();
  ASSERT_TRUE((*old)->create_topic("t"));

  certs.make_server_cert("1A2B", live.cert, live.key);
  d.signal(SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return d.log().find("tls reloaded serial=1A2B") != std::string::npos;
  })) << d.log();
  EXPECT_EQ(served_serial(d.tls_port()), "1A2B");
  EXPECT_TRUE(publishes(**old, "t")) << "an open connection keeps its TLS session";
  auto fresh = client::Client::connect(tls_options(d, certs.ca));
  ASSERT_TRUE(fresh) << fresh.error().to_string();
  EXPECT_TRUE(publishes(**fresh, "t"));

  // A broken file: logged, and the last good certificate goes on.
  {
    std::ofstream out(live.cert, std::ios::trunc);
    out << "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n";
  }
  d.signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return d.log().find("tls reload failed") != std::string::npos; }))
      << d.log();
  EXPECT_EQ(served_serial(d.tls_port()), "1A2B");
  auto after = client::Client::connect(tls_options(d, certs.ca));
  ASSERT_TRUE(after) << after.error().to_string();
  EXPECT_TRUE(publishes(**after, "t"));
  EXPECT_TRUE(publishes(**old, "t"));
}

// `loft bench` over TLS, authenticated by a client certificate (a cert-only user that may do
// what the bench does): publish and consume run and report figures.
TEST(Tls, BenchRunsOverTlsWithAClientCertificate) {
  const auto& certs = TestCerts::get();
  TempDir dir;
  const auto users = dir.path() / "users.toml";
  std::ofstream(users) << "[[users]]\nname = \"alice\"\npublish = [\"*\"]\nsubscribe = [\"*\"]\n"
                       << "admin = [\"*\"]\n";
  TestDaemon d(tls_config(certs.server, "tls_ca_file = \"" + certs.ca +
                                            "\"\ntls_client_auth = \"required\"\nusers_file = \"" +
                                            users.string() + "\"\n"));
  d.start();
  const std::vector<std::string> tls_flags = {TestDaemon::loft_path(),
                                              "--broker",
                                              "127.0.0.1:" + std::to_string(d.tls_port()),
                                              "--tls-ca",
                                              certs.ca,
                                              "--tls-cert",
                                              certs.alice.cert,
                                              "--tls-key",
                                              certs.alice.key};
  for (const std::vector<std::string>& mode :
       {std::vector<std::string>{"bench", "publish", "--messages", "500", "--batch", "50"},
        std::vector<std::string>{"bench", "consume", "--messages", "500"}}) {
    auto argv = tls_flags;
    argv.insert(argv.end(), mode.begin(), mode.end());
    argv.push_back("--json");
    const auto r = run_process(argv, "", std::chrono::minutes(3));
    EXPECT_EQ(r.exit_code, 0) << mode[1] << ": " << r.err;
    EXPECT_THAT(r.out, HasSubstr("\"messages\":500")) << r.out;
  }
  EXPECT_THAT(d.log(), HasSubstr("user=\"alice\" mechanism=certificate"));
}

// In process: a server stream on loft_tls's context and a client, both on one io_context; the
// names tls::peer_names reads from the server's side once both handshakes are done.
std::vector<std::string> names_seen_by_server(tls::ClientAuth auth, const CertPair* client_cert) {
  const auto& certs = TestCerts::get();
  auto context = tls::make_server_context({certs.server.cert, certs.server.key, certs.ca, auth});
  EXPECT_TRUE(context) << context.error().to_string();
  if (!context) return {"(no context)"};
  asio::io_context io;
  tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  ssl::stream<tcp::socket> server(io, **context);
  ssl::context client_context(ssl::context::tls_client);
  client_context.load_verify_file(certs.ca);
  if (client_cert != nullptr) {
    client_context.use_certificate_chain_file(client_cert->cert);
    client_context.use_private_key_file(client_cert->key, ssl::context::pem);
  }
  ssl::stream<tcp::socket> client(io, client_context);
  boost::system::error_code server_ec = asio::error::would_block;
  acceptor.async_accept(server.next_layer(), [&](boost::system::error_code ec) {
    if (ec) return;
    server.async_handshake(ssl::stream_base::server,
                           [&](boost::system::error_code e) { server_ec = e; });
  });
  client.next_layer().async_connect(acceptor.local_endpoint(), [&](boost::system::error_code ec) {
    if (!ec) client.async_handshake(ssl::stream_base::client, [](boost::system::error_code) {});
  });
  io.run_for(30s);
  EXPECT_FALSE(server_ec) << server_ec.message();
  return tls::peer_names(server.native_handle());
}

TEST(Tls, PeerNamesAreTheClientCertificatesCommonNameThenItsAlternativeNames) {
  const auto& certs = TestCerts::get();
  using ::testing::ElementsAre;
  EXPECT_THAT(names_seen_by_server(tls::ClientAuth::optional, &certs.alice), ElementsAre("alice"));
  EXPECT_THAT(names_seen_by_server(tls::ClientAuth::required, &certs.bob),
              ElementsAre("client-b", "bob", "bob@loft.test"));
  EXPECT_THAT(names_seen_by_server(tls::ClientAuth::optional, nullptr), ElementsAre());
  // Not asked for, so not sent.
  EXPECT_THAT(names_seen_by_server(tls::ClientAuth::none, &certs.alice), ElementsAre());
}

TEST(Tls, ServerContextsRefuseFilesThatDoNotLoadOrMatch) {
  const auto& certs = TestCerts::get();
  const auto detail = [](const tls::ServerFiles& files) {
    auto c = tls::ServerContext::load(files);
    return c ? std::string("loaded") : c.error().detail;
  };
  EXPECT_THAT(detail({certs.server.cert, certs.alice.key, "", tls::ClientAuth::none}),
              HasSubstr("does not match"));
  EXPECT_THAT(detail({certs.dir / "none.pem", certs.server.key, "", tls::ClientAuth::none}),
              HasSubstr("cannot load TLS certificate file"));
  EXPECT_THAT(detail({certs.server.cert, certs.server.key, "", tls::ClientAuth::required}),
              HasSubstr("tls_ca_file"));
  EXPECT_EQ(detail({certs.server.cert, certs.server.key, certs.ca, tls::ClientAuth::required}),
            "loaded");
  // loftd names the file and does not start.
  TestDaemon d(tls_config({certs.server.cert, certs.alice.key}));
  try {
    d.start();
    ADD_FAILURE() << "loftd started with a key that does not match its certificate";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("does not match"));
  }
}

// Refused before any connection is made, so no broker is needed.
TEST(Tls, APasswordIsNotSentInClearTextToANetworkAddress) {
  client::Options o;
  o.host = "192.0.2.1";  // TEST-NET-1: never reached
  o.user = "alice";
  o.password = "s3cret-in-test";
  auto c = client::Client::connect(o);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::invalid_request);
  EXPECT_THAT(c.error().detail, HasSubstr("clear text"));
  EXPECT_THAT(c.error().detail, Not(HasSubstr(o.password)));

  const std::string broker = "192.0.2.1:7450";
  TempDir dir;
  const auto password_file = (dir.path() / "password").string();
  std::ofstream(password_file) << "s3cret-in-test\n";
  auto cli = run_process({TestDaemon::loft_path(), "--broker", broker, "--user", "alice",
                          "--password-file", password_file, "topic", "list"});
  EXPECT_NE(cli.exit_code, 0);
  EXPECT_THAT(cli.err, HasSubstr("clear text"));
  EXPECT_THAT(cli.err, Not(HasSubstr("s3cret")));
  auto missing = run_process({TestDaemon::loft_path(), "--broker", broker, "--user", "alice",
                              "--password-file", (dir.path() / "none").string(), "topic", "list"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.err, HasSubstr("--password-file"));
}

}  // namespace
}  // namespace loft::testing
