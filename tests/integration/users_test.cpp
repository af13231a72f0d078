// Users and permissions on the binary protocol, against the real loftd with a users file:
// authentication (good and bad passwords, unknown users, too many failures, requests before
// AUTHENTICATE), the permission matrix of every request type, a users reload, the refusal to
// run anonymous on a network address, and that no password reaches the log.

#include <gmock/gmock.h>
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "loft/auth/auth.hpp"
#include "loft/protocol/codec.hpp"
#include "test_certs.hpp"
#include "test_daemon.hpp"
#include "test_password.hpp"

namespace loft::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The error code of a raw request's answer: an ERROR frame, or a failed request.
Errc code_of(const Result<protocol::Body>& r) {
  if (!r) return r.error().code;
  if (const auto* e = std::get_if<protocol::ErrorReply>(&*r)) return e->code;
  return Errc::ok;
}

Message msg(std::string payload) {
  Message m;
  m.payload = std::move(payload);
  return m;
}

client::SubscribeOptions subscription(std::string topic, std::string group) {
  client::SubscribeOptions o;
  o.topic = std::move(topic);
  o.group = std::move(group);
  return o;
}

// Passwords of the test users; none may ever appear in loftd's log.
const std::map<std::string, std::string>& passwords() {
  static const std::map<std::string, std::string> p = [] {
    std::map<std::string, std::string> made{
        {"producer", "pr0ducer-secret-7f3a"}, {"consumer", "c0nsumer-secret-91bd"},
        {"ops", "0ps-secret-c2e4"},           {"root", "r00t-secret-5d10"},
        {"nobody", "n0body-secret-aa21"},
    };
    for (const auto& [user, password] : made) never_log(password);  // checked by ~TestDaemon
    return made;
  }();
  return p;
}

// One cheap Argon2id hash per user (test_password.hpp), made once per test binary.
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

std::string user_entry(const std::string& name, const std::string& permissions) {
  return "[[users]]\nname = \"" + name + "\"\npassword_hash = \"" + hash_of(name) + "\"\n" +
         permissions + "\n";
}

// producer publishes to orders.* but never orders.secret; consumer consumes orders.*; ops
// administers orders.*; root administers everything; nobody may do nothing.
std::string users_file_text(const std::string& producer_publish = R"(["orders.*"])") {
  return user_entry("producer", "publish = " + producer_publish + "\ndeny = [\"orders.secret\"]") +
         user_entry("consumer", "subscribe = [\"orders.*\"]") +
         user_entry("ops", "admin = [\"orders.*\"]") +
         user_entry("root", "admin = [\"*\"]\npublish = [\"*\"]\nsubscribe = [\"*\"]") +
         user_entry("nobody", "");
}

class WithUsers : public ::testing::Test {
 protected:
  void SetUp() override {
    users_path_ = dir_.path() / "users.toml";
    write_users(users_file_text());
    // A long handshake_timeout: a login waits for its Argon2id check (each tens of ms, far
    // more under sanitizers on a loaded machine), queued behind the others of a burst.
    daemon_ = std::make_unique<TestDaemon>("users_file = \"" + users_path_.string() +
                                           "\"\nhandshake_timeout = \"60s\"\n");
    daemon_->start();
    auto root = as("root");
    ASSERT_TRUE(root.has_value()) << root.error().to_string();
    for (const char* topic : {"orders.eu", "orders.secret", "payments"}) {
      ASSERT_TRUE((*root)->create_topic(topic).has_value()) << topic;
      ASSERT_TRUE((*root)->publish(topic, msg("m")).has_value()) << topic;
    }
  }

  void TearDown() override {
    if (!daemon_) return;
    const auto log = daemon_->log();
    for (const auto& [user, password] : passwords()) {
      EXPECT_THAT(log, Not(HasSubstr(password))) << "the password of " << user << " was logged";
    }
  }

  void write_users(const std::string& text) {
    const auto tmp = users_path_.string() + ".tmp";
    std::ofstream(tmp) << text;
    std::filesystem::rename(tmp, users_path_);
  }

  client::Options options(const std::string& user, const std::string& password) const {
    client::Options o;
    o.port = daemon_->port();
    o.user = user;
    o.password = password;
    return o;
  }

  Result<std::unique_ptr<client::Client>> as(const std::string& user) const {
    return client::Client::connect(options(user, passwords().at(user)));
  }

  // `c` joins group `group` of orders.eu and receives its one message (its offset into
  // `offset`); null when that fails.
  static std::unique_ptr<client::Subscription> take_the_message(client::Client& c,
                                                                const std::string& group,
                                                                std::uint64_t& offset) {
    auto s = c.subscribe(subscription("orders.eu", group));
    EXPECT_TRUE(s.has_value()) << s.error().to_string();
    if (!s) return nullptr;
    auto got = (*s)->receive(std::chrono::seconds(30), 1);
    EXPECT_TRUE(got.has_value() && got->size() == 1u);
    if (!got || got->size() != 1u) return nullptr;
    offset = got->front().offset;
    return std::move(*s);
  }

  std::unique_ptr<client::Client> anonymous() const {
    client::Options o;
    o.port = daemon_->port();
    auto c = client::Client::connect(o);
    EXPECT_TRUE(c.has_value()) << c.error().to_string();
    return c ? std::move(*c) : nullptr;
  }

  TempDir dir_;
  std::filesystem::path users_path_;
  std::unique_ptr<TestDaemon> daemon_;
};

TEST_F(WithUsers, AGoodPasswordAuthenticatesAndTheUserCanPublish) {
  auto c = as("producer");
  ASSERT_TRUE(c.has_value()) << c.error().to_string();
  auto r = (*c)->publish("orders.eu", msg("hello"));
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_EQ(r->code, Errc::ok);
  EXPECT_THAT(daemon_->log(), HasSubstr("authenticated peer="));
  EXPECT_THAT(daemon_->log(), HasSubstr("user=\"producer\""));
}

TEST_F(WithUsers, AWrongPasswordAndAnUnknownUserFailAlike) {
  const auto wrong = client::Client::connect(options("producer", "not-the-password"));
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().code, Errc::authentication_failed) << wrong.error().to_string();
  const auto unknown = client::Client::connect(options("mallory", "whatever"));
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().code, Errc::authentication_failed) << unknown.error().to_string();
  // The same text: the answer does not tell whether the user exists.
  EXPECT_EQ(wrong.error().to_string(), unknown.error().to_string());
  // One line per failure, naming the peer and the user.
  const auto log = daemon_->log();
  EXPECT_THAT(log, HasSubstr("authentication failed peer=127.0.0.1:"));
  EXPECT_THAT(log, HasSubstr("user=\"mallory\""));
  EXPECT_THAT(log, Not(HasSubstr("not-the-password")));
  EXPECT_THAT(log, Not(HasSubstr("whatever")));
}

TEST_F(WithUsers, BeforeAuthenticatingOnlyPingWorks) {
  auto c = anonymous();
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->ping().has_value());
  const auto topics = c->list_topics();
  ASSERT_FALSE(topics.has_value());
  EXPECT_EQ(topics.error().code, Errc::unauthenticated);
  const auto pub = c->publish("orders.eu", msg("x"));
  ASSERT_FALSE(pub.has_value());
  EXPECT_EQ(pub.error().code, Errc::unauthenticated);
  // The connection stays open for AUTHENTICATE.
  EXPECT_TRUE(c->ping().has_value());
}

// AUTHENTICATE frames sent by hand: each failure is answered (after a growing delay), and the
// max_auth_failures-th closes the connection with auth_failures.
TEST_F(WithUsers, TooManyFailuresCloseTheConnection) {
  auto c = anonymous();
  ASSERT_NE(c, nullptr);
  const auto attempt = [&](std::uint32_t cid) {
    std::string bytes;
    protocol::encode(
        protocol::Frame{cid, protocol::Authenticate{"PLAIN", auth::encode_plain("root", "guess")}},
        bytes);
    return c->raw_request(bytes, cid);
  };
  for (std::uint32_t i = 0; i < 2; ++i) {
    EXPECT_EQ(code_of(attempt(0x80000001 + i)), Errc::authentication_failed) << i;
    EXPECT_TRUE(c->connected());
  }
  EXPECT_EQ(code_of(attempt(0x80000003)), Errc::auth_failures);
  EXPECT_TRUE(eventually([&] { return !c->connected(); }));
}

// Password checks are queued at most 4 per client address: of 8 logins fired at once from one
// address, the ones beyond that are answered at once with "try again shortly" (and are not
// counted as failures), and a known password skips the queue. The logins name an unknown user:
// loftd checks them against its own hash at the real cost, so the first ones are still queued
// when the others arrive (the users of this file have cheap hashes).
TEST_F(WithUsers, PasswordChecksAreBoundedPerAddress) {
  constexpr int kClients = 8;
  std::vector<std::unique_ptr<client::Client>> clients;
  for (int i = 0; i < kClients; ++i) clients.push_back(anonymous());
  std::vector<Result<protocol::Body>> replies(kClients, tl::unexpected(Error{}));
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      std::string bytes;
      protocol::encode(
          protocol::Frame{0x80000001,
                          protocol::Authenticate{"PLAIN", auth::encode_plain("stranger", "x")}},
          bytes);
      replies[i] = clients[i]->raw_request(bytes, 0x80000001);
    });
  }
  for (auto& t : threads) t.join();
  int busy = 0;
  for (const auto& r : replies) {
    EXPECT_EQ(code_of(r), Errc::authentication_failed);
    if (!r && r.error().detail.find("try again shortly") != std::string::npos) ++busy;
  }
  EXPECT_GE(busy, kClients - 4);
  // The known password of an earlier login is answered without queueing.
  ASSERT_TRUE(as("producer").has_value());
  EXPECT_TRUE(as("producer").has_value());
}

TEST_F(WithUsers, AnUnsupportedMechanismIsRefused) {
  auto c = anonymous();
  ASSERT_NE(c, nullptr);
  std::string bytes;
  protocol::encode(protocol::Frame{0x80000001, protocol::Authenticate{"SCRAM-SHA-256", "x"}},
                   bytes);
  const auto r = c->raw_request(bytes, 0x80000001);
  EXPECT_EQ(code_of(r), Errc::authentication_failed);
  if (!r) {
    EXPECT_THAT(r.error().detail, HasSubstr("PLAIN"));
  }
  EXPECT_TRUE(c->ping().has_value());
}

// Every request type, by a user who may, one who may not, and on a topic outside the grant.
TEST_F(WithUsers, PermissionMatrix) {
  struct Case {
    std::string what;
    std::string user;
    std::function<Result<void>(client::Client&)> request;
    bool allowed;
  };
  const auto ok = [](auto r) -> Result<void> {
    if (!r) return tl::unexpected(r.error());
    return {};
  };
  const auto publish = [&](std::string topic) {
    return [=](client::Client& c) { return ok(c.publish(topic, msg("p"))); };
  };
  const auto fetch = [&](std::string topic) {
    return [=](client::Client& c) { return ok(c.fetch(topic, 0)); };
  };
  const auto subscribe = [&](std::string topic) {
    return [=](client::Client& c) { return ok(c.subscribe(subscription(topic, "g"))); };
  };
  const auto create_topic = [&](std::string topic) {
    return [=](client::Client& c) { return ok(c.create_topic(topic)); };
  };
  const auto alter_topic = [&](std::string topic) {
    return [=](client::Client& c) {
      RetentionChange change;
      change.max_messages = 1000;
      return ok(c.alter_topic(topic, change));
    };
  };
  const auto describe_topic = [&](std::string topic) {
    return [=](client::Client& c) { return ok(c.describe_topic(topic)); };
  };
  const auto create_group = [&](std::string topic) {
    return [=](client::Client& c) { return ok(c.create_group(topic, "admin-made")); };
  };
  const auto describe_group = [&](std::string topic) {
    return [=](client::Client& c) { return ok(c.describe_group(topic, "admin-made")); };
  };
  const auto list_groups = [&](std::string topic) {
    return [=](client::Client& c) { return ok(c.list_groups(topic)); };
  };
  const auto reset_group = [&](std::string topic) {
    return [=](client::Client& c) {
      return ok(c.reset_group(topic, "admin-made", {StartKind::earliest, 0}));
    };
  };
  const auto delete_group = [&](std::string topic) {
    return [=](client::Client& c) { return ok(c.delete_group(topic, "admin-made")); };
  };
  const auto delete_topic = [&](std::string topic) {
    return [=](client::Client& c) { return ok(c.delete_topic(topic)); };
  };
  const auto backup = [&](client::Client& c) {
    return ok(c.backup((dir_.path() / ("backup-" + std::to_string(::getpid()))).string()));
  };
  const std::vector<Case> cases = {
      {"publish", "producer", publish("orders.eu"), true},
      {"publish", "consumer", publish("orders.eu"), false},
      {"publish denied topic", "producer", publish("orders.secret"), false},
      {"publish other topic", "producer", publish("payments"), false},
      {"fetch", "consumer", fetch("orders.eu"), true},
      {"fetch", "producer", fetch("orders.eu"), false},
      {"fetch other topic", "consumer", fetch("payments"), false},
      {"subscribe", "consumer", subscribe("orders.eu"), true},
      {"subscribe", "producer", subscribe("orders.eu"), false},
      {"subscribe other topic", "consumer", subscribe("payments"), false},
      {"describe topic", "consumer", describe_topic("orders.eu"), true},
      {"describe topic", "nobody", describe_topic("orders.eu"), false},
      {"describe other topic", "consumer", describe_topic("payments"), false},
      {"create topic", "ops", create_topic("orders.us"), true},
      {"create topic", "producer", create_topic("orders.jp"), false},
      {"create other topic", "ops", create_topic("invoices"), false},
      {"alter topic", "ops", alter_topic("orders.eu"), true},
      {"alter topic", "consumer", alter_topic("orders.eu"), false},
      {"alter other topic", "ops", alter_topic("payments"), false},
      {"create group", "ops", create_group("orders.eu"), true},
      {"create group", "consumer", create_group("orders.eu"), false},
      {"create group other topic", "ops", create_group("payments"), false},
      {"describe group", "consumer", describe_group("orders.eu"), true},
      {"describe group", "nobody", describe_group("orders.eu"), false},
      {"list groups", "consumer", list_groups("orders.eu"), true},
      {"list groups other topic", "consumer", list_groups("payments"), false},
      {"reset group", "ops", reset_group("orders.eu"), true},
      {"reset group", "consumer", reset_group("orders.eu"), false},
      {"delete group", "consumer", delete_group("orders.eu"), false},
      {"delete group", "ops", delete_group("orders.eu"), true},
      {"delete topic", "producer", delete_topic("orders.us"), false},
      {"delete other topic", "ops", delete_topic("payments"), false},
      {"delete topic", "ops", delete_topic("orders.us"), true},
      {"backup", "ops", backup, false},
      {"backup", "root", backup, true},
  };
  std::map<std::string, std::unique_ptr<client::Client>> clients;
  for (const auto& c : cases) {
    auto& client = clients[c.user];
    if (!client) {
      auto made = as(c.user);
      ASSERT_TRUE(made.has_value()) << c.user << ": " << made.error().to_string();
      client = std::move(*made);
    }
    const auto r = c.request(*client);
    if (c.allowed) {
      EXPECT_TRUE(r.has_value()) << c.what << " by " << c.user << ": " << r.error().to_string();
    } else {
      ASSERT_FALSE(r.has_value()) << c.what << " by " << c.user << " was allowed";
      EXPECT_EQ(r.error().code, Errc::forbidden)
          << c.what << " by " << c.user << ": " << r.error().to_string();
      EXPECT_THAT(r.error().detail, HasSubstr("user '" + c.user + "'")) << c.what;
    }
  }
}

// SETTLE and UNSUBSCRIBE name a subscription, not a topic: they reach only the subscriptions of
// their own connection (which needed subscribe on the topic), so another user cannot ack or end
// a consumer's messages; before AUTHENTICATE both are unauthenticated.
TEST_F(WithUsers, SettleAndUnsubscribeReachOnlyTheConnectionsOwnSubscriptions) {
  auto consumer = as("consumer");
  ASSERT_TRUE(consumer.has_value());
  std::uint64_t offset = 0;
  auto s = take_the_message(**consumer, "g", offset);
  ASSERT_NE(s, nullptr);
  const std::uint64_t id = s->id();

  const auto settle = [&](client::Client& c) {
    std::string bytes;
    protocol::encode(
        protocol::Frame{
            0x80000001,
            protocol::Settle{id, SettleAction::ack, true, protocol::kBackoffDelay, {{offset, 1}}}},
        bytes);
    return code_of(c.raw_request(bytes, 0x80000001));
  };
  const auto unsubscribe = [&](client::Client& c) {
    std::string bytes;
    protocol::encode(protocol::Frame{0x80000002, protocol::Unsubscribe{id}}, bytes);
    return code_of(c.raw_request(bytes, 0x80000002));
  };
  auto anonymous_client = anonymous();
  ASSERT_NE(anonymous_client, nullptr);
  EXPECT_EQ(settle(*anonymous_client), Errc::unauthenticated);
  EXPECT_EQ(unsubscribe(*anonymous_client), Errc::unauthenticated);
  for (const char* other : {"producer", "root"}) {
    auto c = as(other);
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(settle(**c), Errc::unknown_subscription) << other;
    EXPECT_EQ(unsubscribe(**c), Errc::unknown_subscription) << other;
  }
  // Still in flight to the consumer, who settles it.
  const auto g = (*consumer)->describe_group("orders.eu", "g");
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->in_flight, 1u);
  const auto ok = s->ack_confirmed({offset});
  ASSERT_TRUE(ok.has_value()) << ok.error().to_string();
  EXPECT_EQ(ok->applied, 1u);
  EXPECT_TRUE(s->unsubscribe().has_value());
}

// `loft dlq redrive` reads the dead-letter topic and publishes to each original topic: it needs
// subscribe on the one and publish on the other. Refused, it says so in one line, exits
// non-zero and leaves the letter where it was.
TEST_F(WithUsers, RedriveNeedsSubscribeOnTheDeadLettersAndPublishOnTheTarget) {
  {
    auto root = as("root");
    ASSERT_TRUE(root.has_value());
    std::uint64_t offset = 0;
    auto s = take_the_message(**root, "dead", offset);
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->reject(offset).has_value());
    ASSERT_TRUE(eventually([&] {
      const auto t = (*root)->describe_topic("orders.eu.dlq");
      return t.has_value() && t->messages == 1;
    }));
  }
  const auto redrive = [&](const std::string& user) {
    const auto file = dir_.path() / (user + ".password");
    std::ofstream(file) << passwords().at(user) << "\n";
    return daemon_->loft(
        {"--user", user, "--password-file", file.string(), "dlq", "redrive", "orders.eu.dlq"});
  };
  // producer may publish to orders.eu but not consume orders.eu.dlq; consumer the other way.
  for (const char* user : {"producer", "consumer"}) {
    const auto r = redrive(user);
    EXPECT_NE(r.exit_code, 0) << user;
    EXPECT_THAT(r.err, HasSubstr("may not")) << user;
    EXPECT_THAT(r.err, HasSubstr(user)) << user;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << user << ": " << r.err;
  }
  const auto r = redrive("root");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "redriven 1, skipped 0\n");
}

// The CLI's password: from --password-file or LOFT_PASSWORD, never the command line; a wrong
// one is one line and a non-zero exit.
TEST_F(WithUsers, TheCliTakesThePasswordFromAFileOrTheEnvironment) {
  const auto file = dir_.path() / "producer.password";
  std::ofstream(file) << passwords().at("producer") << "\n";
  const auto from_file = daemon_->loft(
      {"--user", "producer", "--password-file", file.string(), "pub", "orders.eu", "from a file"});
  EXPECT_EQ(from_file.exit_code, 0) << from_file.err;

  const auto from_env = run_process({"/usr/bin/env", "LOFT_PASSWORD=" + passwords().at("consumer"),
                                     TestDaemon::loft_path(), "--broker", daemon_->address(),
                                     "--user", "consumer", "topic", "list"});
  EXPECT_EQ(from_env.exit_code, 0) << from_env.err;
  EXPECT_THAT(from_env.out, HasSubstr("orders.eu"));
  EXPECT_THAT(from_env.out, Not(HasSubstr("payments")));

  const auto wrong =
      run_process({"/usr/bin/env", "LOFT_PASSWORD=not-the-password", TestDaemon::loft_path(),
                   "--broker", daemon_->address(), "--user", "consumer", "topic", "list"});
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_THAT(wrong.err, HasSubstr("invalid user name or password"));
  EXPECT_EQ(std::count(wrong.err.begin(), wrong.err.end(), '\n'), 1) << wrong.err;
  const auto none = daemon_->loft({"--user", "consumer", "topic", "list"});
  EXPECT_NE(none.exit_code, 0);
  EXPECT_THAT(none.err, HasSubstr("LOFT_PASSWORD"));
}

TEST_F(WithUsers, TopicListShowsOnlyTopicsTheUserMaySee) {
  auto producer = as("producer");
  ASSERT_TRUE(producer.has_value());
  const auto topics = (*producer)->list_topics();
  ASSERT_TRUE(topics.has_value()) << topics.error().to_string();
  std::vector<std::string> names;
  for (const auto& t : *topics) names.push_back(t.name);
  EXPECT_THAT(names, ::testing::ElementsAre("orders.eu"));  // not orders.secret, not payments
  auto nobody = as("nobody");
  ASSERT_TRUE(nobody.has_value());
  EXPECT_TRUE((*nobody)->list_topics()->empty());
}

TEST_F(WithUsers, ADeadLetterTopicOfTheClientsChoiceNeedsPublishOnIt) {
  auto consumer = as("consumer");
  ASSERT_TRUE(consumer.has_value());
  auto o = subscription("orders.eu", "dlq-elsewhere");
  o.config.dead_letter_topic = "payments";
  const auto s = (*consumer)->subscribe(o);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, Errc::forbidden);
  EXPECT_THAT(s.error().detail, HasSubstr("payments"));
}

// A reload that narrows a user's rights closes that user's connections; others go on, and a
// new connection gets the new rights.
TEST_F(WithUsers, AUsersReloadClosesConnectionsOfChangedUsers) {
  auto producer = as("producer");
  auto consumer = as("consumer");
  ASSERT_TRUE(producer.has_value() && consumer.has_value());
  write_users(users_file_text(R"(["payments"])"));
  const auto before = daemon_->log();
  daemon_->signal(SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return daemon_->log().find("users reloaded") != std::string::npos;
  })) << daemon_->log();
  EXPECT_TRUE(eventually([&] { return !(*producer)->connected(); }));
  EXPECT_TRUE((*consumer)->ping().has_value());
  auto again = as("producer");
  ASSERT_TRUE(again.has_value()) << again.error().to_string();
  EXPECT_EQ((*again)->publish("orders.eu", msg("x")).error().code, Errc::forbidden);
  EXPECT_TRUE((*again)->publish("payments", msg("x")).has_value());
}

TEST_F(WithUsers, ABrokenUsersFileOnReloadChangesNothing) {
  write_users("[[users]]\nname = 42\n");
  daemon_->signal(SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return daemon_->log().find("users reload failed") != std::string::npos;
  })) << daemon_->log();
  auto producer = as("producer");
  ASSERT_TRUE(producer.has_value()) << producer.error().to_string();
  EXPECT_TRUE((*producer)->publish("orders.eu", msg("x")).has_value());
}

// tls_client_auth = "required": a certificate whose CN (alice) or alternative name (bob) is a
// user authenticates the connection without a password; one naming no user leaves it
// unauthenticated.
TEST(CertificateIdentity, AClientCertificateNamesTheUser) {
  const auto& certs = TestCerts::get();
  TempDir dir;
  const auto users = dir.path() / "users.toml";
  std::ofstream(users) << "[[users]]\nname = \"alice\"\npublish = [\"a.*\"]\n"
                       << "[[users]]\nname = \"bob\"\nsubscribe = [\"b.*\"]\n"
                       << "[[users]]\nname = \"root\"\nadmin = [\"*\"]\npassword_hash = \""
                       << hash_of("root") << "\"\n";
  TestDaemon d("users_file = \"" + users.string() + "\"\ntls_listen = \"127.0.0.1:0\"\n" +
               "tls_cert_file = \"" + certs.server.cert + "\"\ntls_key_file = \"" +
               certs.server.key + "\"\ntls_ca_file = \"" + certs.ca +
               "\"\ntls_client_auth = \"optional\"\n");
  d.start();
  const auto tls_client = [&](const CertPair* cert) {
    client::Options o;
    o.port = d.tls_port();
    o.tls.enabled = true;
    o.tls.ca_file = certs.ca;
    if (cert != nullptr) {
      o.tls.cert_file = cert->cert;
      o.tls.key_file = cert->key;
    }
    auto c = client::Client::connect(o);
    EXPECT_TRUE(c.has_value()) << c.error().to_string();
    return c ? std::move(*c) : nullptr;
  };
  {
    client::Options o;
    o.port = d.port();
    o.user = "root";
    o.password = passwords().at("root");
    auto root = client::Client::connect(o);
    ASSERT_TRUE(root.has_value()) << root.error().to_string();
    ASSERT_TRUE((*root)->create_topic("a.1").has_value());
    ASSERT_TRUE((*root)->create_topic("b.1").has_value());
  }
  auto alice = tls_client(&certs.alice);
  ASSERT_NE(alice, nullptr);
  EXPECT_TRUE(alice->publish("a.1", msg("x")).has_value());
  EXPECT_EQ(alice->fetch("b.1", 0).error().code, Errc::forbidden);
  auto bob = tls_client(&certs.bob);
  ASSERT_NE(bob, nullptr);
  EXPECT_TRUE(bob->fetch("b.1", 0).has_value());
  EXPECT_EQ(bob->publish("a.1", msg("x")).error().code, Errc::forbidden);
  // No certificate: TLS works, the connection is not authenticated.
  auto none = tls_client(nullptr);
  ASSERT_NE(none, nullptr);
  EXPECT_EQ(none->list_topics().error().code, Errc::unauthenticated);
  EXPECT_THAT(d.log(), HasSubstr("mechanism=certificate"));
}

// A certificate whose CN (alice) and alternative name (bob) are two different users names
// neither: no certificate login, one log line per connection naming the names and the users,
// and the connection may still log in with a password; under "optional" as under "required".
TEST(CertificateIdentity, ACertificateNamingTwoUsersLogsInNobody) {
  const auto& certs = TestCerts::get();
  for (const char* client_auth : {"optional", "required"}) {
    SCOPED_TRACE(client_auth);
    TempDir dir;
    const auto users = dir.path() / "users.toml";
    // bob's password is the test password of "consumer" (passwords() is keyed by those names).
    std::ofstream(users) << "[[users]]\nname = \"alice\"\npublish = [\"*\"]\nadmin = [\"*\"]\n"
                         << "[[users]]\nname = \"bob\"\nsubscribe = [\"*\"]\npassword_hash = \""
                         << hash_of("consumer") << "\"\n";
    TestDaemon d("users_file = \"" + users.string() + "\"\ntls_listen = \"127.0.0.1:0\"\n" +
                 "tls_cert_file = \"" + certs.server.cert + "\"\ntls_key_file = \"" +
                 certs.server.key + "\"\ntls_ca_file = \"" + certs.ca + "\"\ntls_client_auth = \"" +
                 client_auth + "\"\n");
    d.start();
    client::Options o;
    o.port = d.tls_port();
    o.tls.enabled = true;
    o.tls.ca_file = certs.ca;
    o.tls.cert_file = certs.alice_and_bob.cert;
    o.tls.key_file = certs.alice_and_bob.key;
    auto both = client::Client::connect(o);
    ASSERT_TRUE(both.has_value()) << both.error().to_string();
    // Not alice (who could create topics), not bob: unauthenticated.
    EXPECT_EQ((*both)->create_topic("t").error().code, Errc::unauthenticated);
    EXPECT_EQ((*both)->list_topics().error().code, Errc::unauthenticated);
    EXPECT_TRUE((*both)->ping().has_value());

    // The same certificate with a password: the password decides.
    o.user = "bob";
    o.password = passwords().at("consumer");
    auto with_password = client::Client::connect(o);
    ASSERT_TRUE(with_password.has_value()) << with_password.error().to_string();
    EXPECT_TRUE((*with_password)->list_topics().has_value());
    EXPECT_EQ((*with_password)->create_topic("t").error().code, Errc::forbidden);

    // alice's own certificate still logs her in.
    client::Options alice = o;
    alice.user.clear();
    alice.password.clear();
    alice.tls.cert_file = certs.alice.cert;
    alice.tls.key_file = certs.alice.key;
    auto a = client::Client::connect(alice);
    ASSERT_TRUE(a.has_value()) << a.error().to_string();
    EXPECT_TRUE((*a)->create_topic("t").has_value());

    const auto log = d.log();
    const std::string line =
        "client certificate names more than one user, no certificate login peer=127.0.0.1:";
    std::size_t lines = 0;
    for (auto at = log.find(line); at != std::string::npos; at = log.find(line, at + 1)) ++lines;
    EXPECT_EQ(lines, 2u) << log;  // one per connection with that certificate
    EXPECT_THAT(log, HasSubstr("names=\"alice\",\"bob\" users=\"alice\",\"bob\""));
    EXPECT_THAT(log, Not(HasSubstr(passwords().at("consumer"))));
  }
}

// The check behind never_log(): a daemon whose log holds a registered secret fails the test.
// The "secret" here is a user name loftd logs on a failed login, made unique to this process.
void run_a_daemon_that_logs_a_registered_secret() {
  TempDir dir;
  const auto users = dir.path() / "users.toml";
  std::ofstream(users) << "[[users]]\nname = \"root\"\npassword_hash = \"" << hash_of("root")
                       << "\"\n";
  const std::string canary = "canary-" + std::to_string(::getpid());
  never_log(canary);
  TestDaemon d("users_file = \"" + users.string() + "\"\n");
  d.start();
  client::Options o;
  o.port = d.port();
  o.user = canary;
  o.password = "x";
  EXPECT_FALSE(client::Client::connect(o).has_value());
  ASSERT_TRUE(eventually([&] { return d.log().find(canary) != std::string::npos; }));
}

TEST(NoSecretInLogs, ADaemonThatLogsARegisteredSecretFailsTheTest) {
  EXPECT_NONFATAL_FAILURE(run_a_daemon_that_logs_a_registered_secret(), "loftd logged a secret");
}

TEST(Anonymous, LoftdRefusesANetworkAddressWithoutUsers) {
  TempDir dir;
  const auto r = run_process({TestDaemon::loftd_path(), "--listen", "0.0.0.0:0", "--http-listen",
                              "off", "--data-dir", (dir.path() / "data").string()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("allow_anonymous"));
  EXPECT_THAT(r.err, HasSubstr("users_file"));
}

TEST(Anonymous, LoopbackWithoutUsersWorksAsBefore) {
  TestDaemon d;
  d.start();
  auto c = d.client();
  ASSERT_TRUE(c->create_topic("t").has_value());
  EXPECT_TRUE(c->publish("t", msg("x")).has_value());
}

}  // namespace
}  // namespace loft::testing
