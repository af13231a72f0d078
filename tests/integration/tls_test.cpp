// TLS on the binary protocol against the real loftd: certificates made at test time
// (TestCerts), the C++ client and the CLI on loftd's tls_listen port.

#include "loft/tls/tls.hpp"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <csignal>
#include <fstream>

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
