// The NATS port (core NATS, no JetStream) of the real loftd, driven by a raw-socket NATS client
// (tests/support/nats_client.hpp): INFO, CONNECT, PING; publish and subscribe with wildcards
// and queue groups; UNSUB with max; echo; request/reply with and without responders; verbose;
// the errors nats-server sends (and where it closes); users and permissions; a slow consumer;
// and hostile input (garbage, stalls, silent sockets, half-closed connections), each while a
// well-behaved pair keeps working.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "http_client.hpp"
#include "nats_bystander.hpp"
#include "nats_client.hpp"
#include "test_certs.hpp"
#include "test_daemon.hpp"
#include "test_password.hpp"

namespace loft::testing {
namespace {

using namespace std::chrono_literals;
using Kind = NatsEvent::Kind;
using ::testing::HasSubstr;

constexpr std::string_view kPlainConnect =
    R"({"verbose":false,"pedantic":false,"headers":false,"name":"plain"})";

std::string nats_config(const std::string& extra = "") {
  return "nats_listen = \"127.0.0.1:0\"\n" + extra;
}

// One daemon for the tests that need no special settings.
class Nats : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = std::make_unique<TestDaemon>(nats_config("max_message_size = \"64KiB\"\n"));
    daemon_->start();
  }
  static void TearDownTestSuite() { daemon_.reset(); }
  static std::uint16_t port() { return daemon_->nats_port(); }
  static std::unique_ptr<NatsConnection> connect(std::string_view json = NatsConnection::kConnect) {
    auto c = std::make_unique<NatsConnection>(port());
    EXPECT_TRUE(c->connected());
    EXPECT_TRUE(c->handshake(json)) << to_string(c->last().kind) << " " << c->last().text;
    return c;
  }
  static std::unique_ptr<TestDaemon> daemon_;
};
std::unique_ptr<TestDaemon> Nats::daemon_;

// The subjects of the messages that arrive until the PONG of a flush (all of them are read by
// then: loftd answers a connection's ops in order).
std::multimap<std::string, std::string> drain(NatsConnection& c) {
  std::multimap<std::string, std::string> by_sid;
  EXPECT_TRUE(c.flush());
  for (;;) {
    auto m = c.next_msg(0ms);
    if (!m) break;
    by_sid.emplace(m->sid, m->subject);
  }
  return by_sid;
}

TEST_F(Nats, InfoAnnouncesTheServerAndConnectAndPingWork) {
  NatsConnection c(port());
  ASSERT_TRUE(c.connected());
  const auto info = boost::json::parse(c.info()).as_object();
  EXPECT_EQ(info.at("proto").as_int64(), 1);
  EXPECT_TRUE(info.at("headers").as_bool());
  EXPECT_EQ(info.at("max_payload").to_number<std::int64_t>(), 64 * 1024);
  EXPECT_FALSE(info.contains("auth_required"));
  EXPECT_FALSE(info.at("server_id").as_string().empty());
  EXPECT_EQ(info.at("version").as_string(), "2.9.10");
  EXPECT_EQ(info.at("client_ip").as_string(), "127.0.0.1");
  // verbose: +OK for CONNECT, SUB, PUB, UNSUB; PING is answered by PONG alone.
  ASSERT_TRUE(
      c.send("CONNECT {\"verbose\":true}\r\nSUB a 1\r\nPUB b 2\r\nhi\r\nUNSUB 1\r\nPING\r\n"));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(c.next().kind, Kind::ok) << i;
  EXPECT_EQ(c.next().kind, Kind::pong);
  // A CONNECT without `verbose` is verbose, as nats-server's default.
  NatsConnection d(port());
  ASSERT_TRUE(d.send("CONNECT {}\r\nPING\r\n"));
  EXPECT_EQ(d.next().kind, Kind::ok);
  EXPECT_EQ(d.next().kind, Kind::pong);
}

TEST_F(Nats, SubjectsAndWildcardsRouteToTheirSubscribers) {
  auto sub = connect();
  for (const auto& [subject, sid] : std::vector<std::pair<std::string, std::string>>{
           {"orders.eu", "1"}, {"orders.*", "2"}, {"orders.>", "3"}, {">", "4"}, {"*.eu.x", "5"}}) {
    ASSERT_TRUE(sub->sub(subject, sid));
  }
  ASSERT_TRUE(sub->flush());
  auto pub = connect();
  ASSERT_TRUE(pub->pub("orders.eu", "a"));
  ASSERT_TRUE(pub->pub("orders.eu.x", "b"));
  ASSERT_TRUE(pub->pub("other", "c"));
  ASSERT_TRUE(pub->flush());
  const auto got = drain(*sub);
  const std::multimap<std::string, std::string> want{
      {"1", "orders.eu"}, {"2", "orders.eu"},   {"3", "orders.eu"}, {"3", "orders.eu.x"},
      {"4", "orders.eu"}, {"4", "orders.eu.x"}, {"4", "other"},     {"5", "orders.eu.x"}};
  EXPECT_EQ(got, want);
}

TEST_F(Nats, MessagesKeepPayloadReplyAndHeaders) {
  auto sub = connect();
  auto plain = connect(kPlainConnect);
  ASSERT_TRUE(sub->sub("h", "9"));
  ASSERT_TRUE(plain->sub("h", "7"));
  ASSERT_TRUE(sub->flush());
  ASSERT_TRUE(plain->flush());
  auto pub = connect();
  const std::string payload("bin\0ary\r\n", 9);
  const std::string headers = "NATS/1.0\r\nTrace: abc\r\nTrace: def\r\n\r\n";
  ASSERT_TRUE(pub->hpub("h", headers, payload, "reply.to"));
  ASSERT_TRUE(pub->pub("h", ""));
  auto m = sub->next_msg();
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->hmsg);
  EXPECT_EQ(m->headers, headers);
  EXPECT_EQ(m->payload, payload);
  EXPECT_EQ(m->reply, "reply.to");
  m = sub->next_msg();
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->hmsg);
  EXPECT_EQ(m->payload, "");
  // A client that did not ask for headers gets the payload alone, as from nats-server.
  m = plain->next_msg();
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->hmsg);
  EXPECT_EQ(m->payload, payload);
}

TEST_F(Nats, AQueueGroupGetsEachMessageOnceAndPlainSubscribersGetAll) {
  std::vector<std::unique_ptr<NatsConnection>> members;
  for (int i = 0; i < 3; ++i) {
    members.push_back(connect());
    ASSERT_TRUE(members.back()->sub("work.*", "1", "workers"));
    ASSERT_TRUE(members.back()->flush());
  }
  // A second subscription of one member, same group: still one delivery per message.
  ASSERT_TRUE(members[0]->sub("work.>", "2", "workers"));
  ASSERT_TRUE(members[0]->flush());
  auto watcher = connect();
  ASSERT_TRUE(watcher->sub("work.*", "w"));
  ASSERT_TRUE(watcher->flush());
  auto pub = connect();
  constexpr int kMessages = 300;
  for (int i = 0; i < kMessages; ++i) ASSERT_TRUE(pub->pub("work.x", std::to_string(i)));
  ASSERT_TRUE(pub->flush());
  std::vector<int> per_member;
  for (auto& m : members) {
    per_member.push_back(static_cast<int>(drain(*m).size()));
  }
  int total = 0;
  for (const int n : per_member) {
    EXPECT_GT(n, 0) << "a member got nothing";
    total += n;
  }
  EXPECT_EQ(total, kMessages);
  EXPECT_EQ(drain(*watcher).size(), static_cast<std::size_t>(kMessages));
}

TEST_F(Nats, UnsubWithMaxCountsWhatWasDeliveredAlready) {
  auto c = connect();
  ASSERT_TRUE(c->sub("m", "1"));
  ASSERT_TRUE(c->unsub("1", 3));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c->pub("m", std::to_string(i)));
  EXPECT_EQ(drain(*c).size(), 3u);
  // Two delivered, then UNSUB 2: done at once.
  ASSERT_TRUE(c->sub("n", "2"));
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(c->pub("n", "x"));
  EXPECT_EQ(drain(*c).size(), 2u);
  ASSERT_TRUE(c->unsub("2", 2));
  ASSERT_TRUE(c->pub("n", "x"));
  EXPECT_EQ(drain(*c).size(), 0u);
  // UNSUB without max ends it; an unknown sid is no error.
  ASSERT_TRUE(c->sub("o", "3"));
  ASSERT_TRUE(c->unsub("3"));
  ASSERT_TRUE(c->unsub("nope"));
  ASSERT_TRUE(c->pub("o", "x"));
  EXPECT_EQ(drain(*c).size(), 0u);
}

TEST_F(Nats, EchoFalseKeepsAPublisherFromItsOwnMessages) {
  auto quiet = connect(R"({"verbose":false,"echo":false,"headers":true})");
  auto other = connect();
  ASSERT_TRUE(quiet->sub("e", "1"));
  ASSERT_TRUE(other->sub("e", "1"));
  ASSERT_TRUE(quiet->flush());
  ASSERT_TRUE(other->flush());
  ASSERT_TRUE(quiet->pub("e", "mine"));
  ASSERT_TRUE(other->pub("e", "theirs"));
  EXPECT_EQ(drain(*other).size(), 2u);
  const auto got = drain(*quiet);
  ASSERT_EQ(got.size(), 1u);
}

TEST_F(Nats, RequestReplyWithAndWithoutResponders) {
  auto service = connect();
  ASSERT_TRUE(service->sub("svc.echo", "1", "svc"));
  ASSERT_TRUE(service->flush());
  auto client = connect();
  ASSERT_TRUE(client->sub("_INBOX.abc.*", "9"));
  ASSERT_TRUE(client->pub("svc.echo", "ping?", "_INBOX.abc.1"));
  const auto request = service->next_msg();
  ASSERT_TRUE(request);
  EXPECT_EQ(request->reply, "_INBOX.abc.1");
  ASSERT_TRUE(service->pub(request->reply, "pong!"));
  auto reply = client->next_msg();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->subject, "_INBOX.abc.1");
  EXPECT_EQ(reply->payload, "pong!");
  // Nobody subscribes: the no-responders status, byte for byte as nats-server sends it.
  ASSERT_TRUE(client->send("PUB svc.none _INBOX.abc.2 1\r\nx\r\nPING\r\n"));
  const auto status = client->next_msg();
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->hmsg);
  EXPECT_EQ(status->subject, "_INBOX.abc.2");
  EXPECT_EQ(status->sid, "9");
  EXPECT_EQ(status->reply, "");
  EXPECT_EQ(status->headers, "NATS/1.0 503\r\n\r\n");
  EXPECT_EQ(status->payload, "");
  EXPECT_EQ(client->next().kind, Kind::pong);
  // Without no_responders in CONNECT, silence (the client's own timeout).
  auto old = connect(R"({"verbose":false,"headers":true})");
  ASSERT_TRUE(old->sub("_INBOX.def.*", "1"));
  ASSERT_TRUE(old->pub("svc.none", "x", "_INBOX.def.1"));
  EXPECT_EQ(drain(*old).size(), 0u);
  // no_responders needs headers, as in nats-server: -ERR and close.
  NatsConnection bad(port());
  ASSERT_TRUE(bad.send("CONNECT {\"no_responders\":true}\r\n"));
  EXPECT_EQ(bad.error_then_close(), "no responders requires headers support");
}

TEST_F(Nats, RequestErrorsKeepTheConnectionAndStreamErrorsCloseIt) {
  auto c = connect();
  ASSERT_TRUE(c->send("PUB bad.*.subject 1\r\nx\r\nSUB a..b 1\r\nSUB ok q.1 2\r\nPING\r\n"));
  EXPECT_EQ(c->next().text, "Invalid Publish Subject");
  EXPECT_EQ(c->next().text, "Invalid Subject");
  EXPECT_EQ(c->next().kind, Kind::pong);  // a queue group with a dot is fine
  const std::vector<std::pair<std::string, std::string>> fatal{
      {"GARBAGE\r\n", "Unknown Protocol Operation"},
      {"PUB x 1\r\nxyz\r\n", "Unknown Protocol Operation"},  // no CRLF after the payload
      {"PUB x\r\n", "Unknown Protocol Operation"},
      {"PUB big " + std::to_string(64 * 1024 + 1) + "\r\n", "Maximum Payload Violation"},
      {"HPUB big 10 " + std::to_string(64 * 1024 + 1) + "\r\n", "Maximum Payload Violation"},
      {"SUB " + std::string(5000, 'a') + " 1\r\n", "maximum control line exceeded"},
      {"CONNECT {not json\r\n", "Unknown Protocol Operation"},
  };
  for (const auto& [bytes, text] : fatal) {
    NatsConnection n(port());
    ASSERT_TRUE(n.handshake());
    ASSERT_TRUE(n.send(bytes));
    EXPECT_EQ(n.error_then_close(), text) << bytes.substr(0, 40);
  }
  // A payload of exactly max_payload is fine.
  ASSERT_TRUE(c->sub("big", "1"));
  ASSERT_TRUE(c->pub("big", std::string(64 * 1024, 'p')));
  const auto m = c->next_msg();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payload.size(), 64u * 1024);
}

TEST_F(Nats, MetricsCountConnectionsAndMessages) {
  auto c = connect();
  ASSERT_TRUE(c->sub("metrics.x", "1"));
  ASSERT_TRUE(c->pub("metrics.x", "12345"));
  EXPECT_EQ(drain(*c).size(), 1u);
  const auto res = http_get(daemon_->http_port(), "/metrics");
  EXPECT_THAT(res.body, HasSubstr("loft_nats_connections_open "));
  EXPECT_THAT(res.body, HasSubstr("loft_nats_messages_in_total "));
  EXPECT_THAT(res.body, HasSubstr("loft_nats_messages_out_total "));
  EXPECT_THAT(res.body, HasSubstr("loft_nats_slow_consumers_total 0"));
  EXPECT_THAT(res.body, ::testing::Not(HasSubstr("loft_nats_connections_open 0\n")));
}

// ---------------------------------------------------------------------------------------------
// Users and permissions.

const std::map<std::string, std::string>& passwords() {
  static const std::map<std::string, std::string> p{{"client", "cl1ent-secret-4e1"},
                                                    {"service", "s3rvice-secret-9a0"},
                                                    {"feeder", "f33der-secret-0c2"}};
  return p;
}

// One cheap Argon2id hash per user (test_password.hpp) and test binary.
const std::string& hash_of(const std::string& user) {
  static std::map<std::string, std::string> hashes;
  auto it = hashes.find(user);
  if (it == hashes.end()) {
    const auto h = cheap_password_hash(passwords().at(user));
    EXPECT_FALSE(h.empty());
    it = hashes.emplace(user, h).first;
  }
  return it->second;
}

std::string users_file() {
  std::string text;
  for (const auto& [name, permissions] : std::vector<std::pair<std::string, std::string>>{
           {"client",
            "publish = [\"svc.*\", \"orders.*\"]\nsubscribe = [\"orders.*\"]\n"
            "deny = [\"orders.secret\"]"},
           {"service", "subscribe = [\"svc.*\"]"},
           {"feeder", "publish = [\"orders.*\"]"}}) {
    text += "[[users]]\nname = \"" + name + "\"\npassword_hash = \"" + hash_of(name) + "\"\n" +
            permissions + "\n";
  }
  return text;
}

std::string login(const std::string& user, const std::string& password) {
  return R"({"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"user":")" +
         user + R"(","pass":")" + password + R"("})";
}

TEST(NatsUsers, LoginsPermissionsAndTheRequestReplyRules) {
  TempDir dir;
  const auto users_path = dir.path() / "users.toml";
  const auto users = users_file();
  std::ofstream(users_path) << users;
  TestDaemon d(nats_config("users_file = \"" + users_path.string() + "\"\n"));
  d.start();
  const auto port = d.nats_port();

  NatsConnection anonymous(port);
  const auto info = boost::json::parse(anonymous.info()).as_object();
  EXPECT_TRUE(info.at("auth_required").as_bool());
  ASSERT_TRUE(anonymous.send("PING\r\n"));  // nothing before CONNECT with users
  EXPECT_EQ(anonymous.error_then_close(), "Authorization Violation");
  for (const auto& connect :
       {std::string(R"({"verbose":false})"), login("client", "wrong"), login("nobody", "x")}) {
    NatsConnection c(port);
    ASSERT_TRUE(c.send("CONNECT " + connect + "\r\nPING\r\n"));
    EXPECT_EQ(c.error_then_close(), "Authorization Violation") << connect;
  }

  NatsConnection client(port);
  ASSERT_TRUE(client.handshake(login("client", passwords().at("client"))));
  NatsConnection service(port);
  ASSERT_TRUE(service.handshake(login("service", passwords().at("service"))));
  // Denied ops are answered with nats-server's texts; the connection stays.
  ASSERT_TRUE(
      client.send("PUB other 1\r\nx\r\nSUB svc.x 1\r\nSUB svc.x q 2\r\nSUB orders.secret 3\r\n"
                  "SUB _INBOX.> 4\r\nSUB _INBOX.* 5\r\nPING\r\n"));
  EXPECT_EQ(client.next().text, "Permissions Violation for Publish to \"other\"");
  EXPECT_EQ(client.next().text, "Permissions Violation for Subscription to \"svc.x\"");
  EXPECT_EQ(client.next().text,
            "Permissions Violation for Subscription to \"svc.x\" using queue \"q\"");
  EXPECT_EQ(client.next().text, "Permissions Violation for Subscription to \"orders.secret\"");
  EXPECT_EQ(client.next().text, "Permissions Violation for Subscription to \"_INBOX.>\"");
  EXPECT_EQ(client.next().text, "Permissions Violation for Subscription to \"_INBOX.*\"");
  EXPECT_EQ(client.next().kind, Kind::pong);

  // A wildcard subscription gets what the user may see: `deny` still cuts orders.secret out.
  ASSERT_TRUE(client.sub("orders.*", "10"));
  ASSERT_TRUE(client.flush());
  NatsConnection feeder(port);
  ASSERT_TRUE(feeder.handshake(login("feeder", passwords().at("feeder"))));
  ASSERT_TRUE(feeder.pub("orders.secret", "hidden"));
  ASSERT_TRUE(feeder.pub("orders.eu", "seen"));
  auto m = client.next_msg();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->subject, "orders.eu");
  ASSERT_TRUE(client.unsub("10"));

  // Request/reply: the client may subscribe to its private inbox; the service may answer on
  // the reply subject it received, and on no other inbox.
  ASSERT_TRUE(service.sub("svc.*", "1"));
  ASSERT_TRUE(service.flush());
  ASSERT_TRUE(client.sub("_INBOX.k7Hq2.*", "11"));
  ASSERT_TRUE(client.pub("svc.time", "now?", "_INBOX.k7Hq2.1"));
  const auto request = service.next_msg();
  ASSERT_TRUE(request);
  ASSERT_TRUE(service.pub(request->reply, "12:00"));
  ASSERT_TRUE(service.pub("_INBOX.k7Hq2.2", "forged"));
  EXPECT_EQ(service.next().text, "Permissions Violation for Publish to \"_INBOX.k7Hq2.2\"");
  m = client.next_msg();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->subject, "_INBOX.k7Hq2.1");
  EXPECT_EQ(m->payload, "12:00");
  EXPECT_TRUE(client.flush());
  EXPECT_FALSE(client.next_msg(200ms)) << "the forged reply was delivered";
  // No responder: 503, also for a user.
  ASSERT_TRUE(client.pub("svc", "x", "_INBOX.k7Hq2.3"));  // may not publish to svc: -ERR
  EXPECT_EQ(client.next().text, "Permissions Violation for Publish to \"svc\"");
  ASSERT_TRUE(client.pub("orders.none", "x", "_INBOX.k7Hq2.4"));
  m = client.next_msg();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->headers, "NATS/1.0 503\r\n\r\n");

  // A reload that removes a user closes its connections; the others stay.
  const auto service_begins = users.find("[[users]]\nname = \"service\"");
  const auto service_ends = users.find("[[users]]", service_begins + 1);
  ASSERT_NE(service_ends, std::string::npos);
  std::ofstream(users_path.string() + ".tmp")
      << users.substr(0, service_begins) + users.substr(service_ends);
  std::filesystem::rename(users_path.string() + ".tmp", users_path);
  d.signal(SIGHUP);
  EXPECT_EQ(service.error_then_close(), "Authorization Violation");
  EXPECT_TRUE(client.flush());

  // The log has the failures, never a password.
  const auto log = d.log();
  EXPECT_THAT(log, HasSubstr("authentication failed"));
  for (const auto& [name, password] : passwords())
    EXPECT_THAT(log, ::testing::Not(HasSubstr(password)));
}

// ---------------------------------------------------------------------------------------------
// TLS (nats_tls): INFO in clear says tls_required, then the client's handshake.

TEST(NatsTls, ClientsSpeakTlsAfterInfoAndACertificateCanNameTheUser) {
  const auto& certs = TestCerts::get();
  TempDir dir;
  const auto users_path = dir.path() / "users.toml";
  std::ofstream(users_path) << "[[users]]\nname = \"alice\"\n"
                               "publish = [\"tls.*\"]\nsubscribe = [\"tls.*\"]\n"
                               "[[users]]\nname = \"client\"\npassword_hash = \""
                            << hash_of("client") << "\"\npublish = [\"tls.*\"]\n";
  TestDaemon d(nats_config("nats_tls = true\ntls_cert_file = \"" + certs.server.cert +
                           "\"\ntls_key_file = \"" + certs.server.key + "\"\ntls_ca_file = \"" +
                           certs.ca + "\"\ntls_client_auth = \"optional\"\nusers_file = \"" +
                           users_path.string() + "\"\n"));
  d.start();
  const auto port = d.nats_port();

  // A client that ignores tls_required and speaks in clear: closed, no -ERR in clear.
  NatsConnection plain(port);
  ASSERT_FALSE(plain.info().empty());
  const auto info = boost::json::parse(plain.info()).as_object();
  EXPECT_TRUE(info.at("tls_required").as_bool());
  ASSERT_TRUE(plain.send("CONNECT {}\r\nPING\r\n"));
  EXPECT_TRUE(plain.closed_by_server());
  EXPECT_EQ(plain.errors_seen(), "");

  // The certificate of user alice logs in without user and pass; a password works over TLS
  // from any address (here loopback) and messages flow.
  NatsConnection alice(port, 10s, 0, NatsTls{certs.ca, certs.alice.cert, certs.alice.key});
  ASSERT_TRUE(alice.connected());
  ASSERT_TRUE(alice.handshake());
  ASSERT_TRUE(alice.sub("tls.*", "1"));
  ASSERT_TRUE(alice.flush());
  NatsConnection client(port, 10s, 0, NatsTls{certs.ca, "", ""});
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.handshake(login("client", passwords().at("client"))));
  const std::string big(100 * 1024, 'z');  // several TLS records
  ASSERT_TRUE(client.pub("tls.x", big));
  const auto m = alice.next_msg();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payload, big);
  // No certificate and no user: refused.
  NatsConnection nobody(port, 10s, 0, NatsTls{certs.ca, "", ""});
  ASSERT_TRUE(nobody.connected());
  ASSERT_TRUE(nobody.send("CONNECT {\"verbose\":false}\r\n"));
  EXPECT_EQ(nobody.error_then_close(), "Authorization Violation");
  EXPECT_THAT(d.log(), HasSubstr("nats tls listening"));
}

// ---------------------------------------------------------------------------------------------
// Slow consumers and hostile input. Each case keeps a well-behaved publisher and subscriber
// working on their own subject (Bystander, nats_bystander.hpp), and checks at the end that they
// still do.

TEST(NatsHostile, ASlowConsumerIsClosedAndNobodyElseIsHeldUp) {
  // Small enough to reach soon, large enough for the bursts a consumer that reads all the time
  // is behind by (loftd reads a publisher 64 KiB at a time, faster than one socket drains).
  TestDaemon d(nats_config("max_send_queue = \"2MiB\"\n"));
  d.start();
  Bystander bystander(d.nats_port());
  NatsConnection slow(d.nats_port(), 10s, 4096);
  ASSERT_TRUE(slow.handshake());
  ASSERT_TRUE(slow.sub("firehose", "1"));
  ASSERT_TRUE(slow.flush());
  NatsConnection fast(d.nats_port());
  ASSERT_TRUE(fast.handshake());
  ASSERT_TRUE(fast.sub("firehose", "1"));
  ASSERT_TRUE(fast.flush());
  NatsConnection pub(d.nats_port());
  ASSERT_TRUE(pub.handshake());
  // Published until loftd gives up on the slow one (its kernel buffers hold some megabytes
  // first), while the fast one reads everything as it comes, on a thread of its own.
  std::atomic<int> fast_got = 0;
  std::atomic<bool> publishing = true;
  std::thread fast_reader([&] {
    for (;;) {
      if (fast.next_msg(200ms)) {
        ++fast_got;
      } else if (!publishing || fast.last().kind != Kind::timeout) {
        return;
      }
    }
  });
  const std::string payload(std::size_t{16} << 10, 'f');
  int published = 0;
  bool slow_closed = false;
  while (!slow_closed && published < 4096) {
    for (int i = 0; i < 16; ++i, ++published) ASSERT_TRUE(pub.pub("firehose", payload));
    slow_closed = d.log().find("slow consumer closed") != std::string::npos;
  }
  EXPECT_TRUE(slow_closed) << "published " << published << " messages";
  EXPECT_TRUE(eventually([&] { return fast_got == published; }, 20s))
      << fast_got << " of " << published;
  publishing = false;
  fast_reader.join();
  EXPECT_TRUE(pub.flush());
  EXPECT_TRUE(slow.closed_by_server(30s));
  EXPECT_TRUE(bystander.works());
  const auto metrics = http_get(d.http_port(), "/metrics");
  EXPECT_THAT(metrics.body, HasSubstr("loft_nats_slow_consumers_total 1"));
}

TEST(NatsHostile, GarbageStallsSilenceAndHalfClosedConnections) {
  TestDaemon d(nats_config("handshake_timeout = \"400ms\"\nframe_timeout = \"400ms\"\n"));
  d.start();
  const auto port = d.nats_port();
  Bystander bystander(port);

  // Garbage, at once or after a good start: -ERR, close.
  for (const std::string& garbage :
       {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),
        std::string("GET / HTTP/1.1\r\n\r\n"), std::string(10000, '\0'),
        std::string("CONNECT {}\r\nPING\r\n\xff\xfe")}) {
    NatsConnection c(port);
    ASSERT_TRUE(c.send(garbage));
    EXPECT_EQ(c.error_then_close(), "Unknown Protocol Operation");
  }
  // Silent after INFO: closed at handshake_timeout.
  NatsConnection silent(port);
  EXPECT_EQ(silent.error_then_close(), "Authentication Timeout");
  // An op that stops half-way, in the line or in the payload: closed at frame_timeout.
  for (const std::string& half : {std::string("PUB stalled 10\r\nhal"), std::string("SUB sta")}) {
    NatsConnection c(port);
    ASSERT_TRUE(c.handshake());
    ASSERT_TRUE(c.send(half));
    EXPECT_EQ(c.error_then_close(), "Stale Connection") << half;
  }
  // Half-closed: what was sent before the FIN is answered, then the connection is closed.
  NatsConnection half(port);
  ASSERT_TRUE(half.send("CONNECT {\"verbose\":false}\r\nSUB hc 1\r\nPUB hc 2\r\nok\r\nPING\r\n"));
  half.shutdown_write();
  const auto m = half.next_msg();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payload, "ok");
  EXPECT_EQ(half.next().kind, Kind::pong);
  EXPECT_TRUE(half.closed_by_server());
  // An idle client is never closed for being idle.
  NatsConnection idle(port);
  ASSERT_TRUE(idle.handshake());
  EXPECT_EQ(idle.next(1s).kind, Kind::timeout);
  EXPECT_TRUE(idle.flush());
  EXPECT_TRUE(bystander.works());
}

TEST(NatsHostile, AClientThatStopsAnsweringPingsIsClosed) {
  TestDaemon d(nats_config("nats_ping_interval = \"200ms\"\n"));
  d.start();
  NatsConnection mute(d.nats_port());
  mute.set_auto_pong(false);
  ASSERT_TRUE(mute.handshake());
  NatsConnection alive(d.nats_port());  // answers (NatsConnection's auto_pong)
  ASSERT_TRUE(alive.handshake());
  int pings = 0;
  for (;;) {
    const auto e = mute.next(50ms);
    if (e.kind == Kind::timeout) {
      EXPECT_EQ(alive.next(10ms).kind, Kind::timeout);  // answers loftd's PINGs
      continue;
    }
    if (e.kind != Kind::ping) {
      EXPECT_EQ(e.kind, Kind::err);
      EXPECT_EQ(e.text, "Stale Connection");
      break;
    }
    ++pings;
  }
  EXPECT_EQ(pings, 2);
  EXPECT_TRUE(mute.closed_by_server());
  EXPECT_EQ(alive.next(1s).kind, Kind::timeout);  // PINGs answered meanwhile
  EXPECT_TRUE(alive.flush());
}

TEST(NatsHostile, SilentSocketsAreEvictedAndConnectionsOverTheLimitRefused) {
  TestDaemon d(nats_config("max_connections = 4\nmax_pending_connections = 2\n"));
  d.start();
  const auto port = d.nats_port();
  Bystander bystander(port);  // two connections, admitted
  NatsConnection silent1(port);
  NatsConnection silent2(port);
  ASSERT_TRUE(silent1.connected() && silent2.connected());
  // At max_pending_connections: the oldest silent one makes room, without an -ERR and long
  // before handshake_timeout (5 s).
  NatsConnection third(port);
  ASSERT_TRUE(third.handshake());
  EXPECT_TRUE(silent1.closed_by_server(3s));
  EXPECT_EQ(silent1.errors_seen(), "");
  // At max_connections with one pending: that one makes room.
  NatsConnection fourth(port);
  ASSERT_TRUE(fourth.handshake());
  EXPECT_TRUE(silent2.closed_by_server(3s));
  // At max_connections with none pending: refused, as nats-server refuses.
  NatsConnection fifth(port);
  EXPECT_TRUE(fifth.connected());  // INFO, then the refusal
  EXPECT_EQ(fifth.error_then_close(), "maximum connections exceeded");
  EXPECT_TRUE(bystander.works());
}

}  // namespace
}  // namespace loft::testing
