// loftd's HTTP endpoint with users and over HTTPS, against the real daemon on 127.0.0.1:0:
// 401 without or with bad Basic credentials (with the challenge), 403 per topic, the topic
// list filtered, health open, /metrics open or not as metrics_auth says, logins counted and
// logged without the password; HTTPS with a test CA, and plaintext/TLS mismatches that close
// cleanly while loftd goes on serving. Certificates come from TestCerts (openssl at test time).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <csignal>
#include <fstream>
#include <regex>
#include <set>
#include <thread>
#include <vector>

#include "http_client.hpp"
#include "loft/auth/auth.hpp"
#include "loft/protocol/codec.hpp"
#include "test_certs.hpp"
#include "test_daemon.hpp"
#include "test_password.hpp"

namespace loft::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace json = boost::json;

constexpr const char* kAdminPassword = "admin-pw-9f3c1e";
constexpr const char* kBillingPassword = "billing-pw-47aa2d";
constexpr const char* kWrongPassword = "wrong-pw-d81b06";

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out.flush()) throw std::runtime_error("cannot write " + path.string());
}

// The users file, made once for the suite (cheap hashes: test_password.hpp).
class HttpAuth : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (const char* secret : {kAdminPassword, kBillingPassword, kWrongPassword}) {
      never_log(secret);  // checked over every daemon's log by ~TestDaemon
    }
    dir_ = new TempDir();
    const auto admin = cheap_password_hash(kAdminPassword);
    const auto billing = cheap_password_hash(kBillingPassword);
    ASSERT_FALSE(admin.empty() || billing.empty());
    write_file(users_file(), "[[users]]\nname = \"admin\"\npassword_hash = \"" + admin +
                                 "\"\npublish = [\"*\"]\nsubscribe = [\"*\"]\nadmin = [\"*\"]\n"
                                 "\n[[users]]\nname = \"billing\"\npassword_hash = \"" +
                                 billing +
                                 "\"\npublish = [\"orders.*\"]\nsubscribe = [\"audit\"]\n"
                                 "deny = [\"orders.secret\"]\n"
                                 // Certificate users (TestCerts: alice by CN, bob by SAN).
                                 "\n[[users]]\nname = \"alice\"\npublish = [\"orders.*\"]\n"
                                 "\n[[users]]\nname = \"bob\"\nsubscribe = [\"payroll\"]\n");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static std::filesystem::path users_file() { return dir_->path() / "users.toml"; }
  static std::filesystem::path ca_file() { return TestCerts::get().ca; }
  static std::string config(const std::string& extra = "") {
    return "auto_create_topics = true\nusers_file = \"" + users_file().string() + "\"\n" + extra;
  }
  static std::string tls_config(const std::string& extra = "") {
    const auto& certs = TestCerts::get();
    return config("http_tls = true\ntls_cert_file = \"" + certs.server.cert +
                  "\"\ntls_key_file = \"" + certs.server.key + "\"\n" + extra);
  }
  static HttpClientOptions as(const std::string& user, const std::string& password) {
    HttpClientOptions o;
    o.user = user;
    o.password = password;
    return o;
  }

  // HTTPS with the test CA and, when given, a client certificate.
  static HttpClientOptions https(const CertPair* client_cert = nullptr) {
    HttpClientOptions o;
    o.tls_ca_file = ca_file();
    if (client_cert != nullptr) {
      o.tls_cert_file = client_cert->cert;
      o.tls_key_file = client_cert->key;
    }
    return o;
  }

  static HttpClientOptions raw_authorization(const std::string& value) {
    HttpClientOptions o;
    o.authorization = value;
    return o;
  }

  // Creates the topics (auto_create_topics, as admin, which may publish everywhere).
  static void make_topics(std::uint16_t port,
                          HttpClientOptions admin = as("admin", kAdminPassword)) {
    HttpClient http(port, std::move(admin));
    for (const char* topic : {"orders.eu", "orders.secret", "audit", "payroll"}) {
      const auto r =
          http.post(std::string("/v1/topics/") + topic + "/messages", R"({"payload":"first"})");
      ASSERT_EQ(r.status, 200u) << topic << ": " << r.body;
    }
  }

  static std::set<std::string> topic_names(const HttpResponse& r) {
    std::set<std::string> names;
    const auto list = json::parse(r.body);
    for (const auto& t : list.as_array()) {
      names.insert(std::string(t.at("name").as_string()));
    }
    return names;
  }

  // How many times `text` stands in `log`.
  static std::size_t occurrences(const std::string& log, const std::string& text) {
    std::size_t n = 0;
    for (auto at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) ++n;
    return n;
  }

  static std::uint64_t metric(const std::string& page, const std::string& name) {
    std::smatch m;
    if (!std::regex_search(page, m, std::regex("\n" + name + " (\\d+)"))) return ~0ULL;
    return std::stoull(m[1]);
  }

  static std::string error_code(const HttpResponse& r) {
    return std::string(json::parse(r.body).at("error").at("code").as_string());
  }

  static TempDir* dir_;
};
TempDir* HttpAuth::dir_ = nullptr;

TEST_F(HttpAuth, UsersAndPermissionsOnPlainHttp) {
  TestDaemon d(config());
  d.start();
  ASSERT_NE(d.http_port(), 0);
  make_topics(d.http_port());

  // No credentials: 401 with the challenge and the JSON error body; health stays open.
  {
    HttpClient anonymous(d.http_port());
    for (const char* target : {"/v1/topics", "/v1/topics/audit", "/v1/topics/audit/groups"}) {
      const auto r = anonymous.get(target);
      EXPECT_EQ(r.status, 401u) << target;
      EXPECT_EQ(r.headers.at("www-authenticate"), "Basic realm=\"loft\"") << target;
      EXPECT_EQ(error_code(r), "unauthenticated") << r.body;
    }
    const auto p = anonymous.post("/v1/topics/audit/messages", R"({"payload":"x"})");
    EXPECT_EQ(p.status, 401u);
    EXPECT_EQ(anonymous.get("/healthz").status, 200u);
    EXPECT_EQ(anonymous.get("/readyz").status, 200u);
    // metrics_auth = "open" by default: every topic's name, to anyone (docs/security.md).
    const auto metrics = anonymous.get("/metrics");
    EXPECT_EQ(metrics.status, 200u);
    EXPECT_THAT(metrics.body, HasSubstr("loft_messages_published_total{topic=\"payroll\"} 1"));
  }

  // Wrong password, unknown user, a malformed header: 401 authentication_failed.
  for (const auto& options :
       {as("billing", kWrongPassword), as("nobody", kWrongPassword),
        raw_authorization("Basic not*base64"), raw_authorization("Bearer abc")}) {
    HttpClient http(d.http_port(), options);
    const auto r = http.get("/v1/topics");
    EXPECT_EQ(r.status, 401u) << r.body;
    EXPECT_EQ(r.headers.at("www-authenticate"), "Basic realm=\"loft\"");
    EXPECT_EQ(error_code(r), "authentication failed") << r.body;
    EXPECT_TRUE(r.keep_alive);  // a failed request does not end the connection
  }

  HttpClient admin(d.http_port(), as("admin", kAdminPassword));
  HttpClient billing(d.http_port(), as("billing", kBillingPassword));

  // The list shows only what the user may see; admin sees everything.
  const auto all = admin.get("/v1/topics");
  ASSERT_EQ(all.status, 200u) << all.body;
  EXPECT_EQ(topic_names(all),
            (std::set<std::string>{"audit", "orders.eu", "orders.secret", "payroll"}));
  const auto mine = billing.get("/v1/topics");
  ASSERT_EQ(mine.status, 200u) << mine.body;
  EXPECT_EQ(topic_names(mine), (std::set<std::string>{"audit", "orders.eu"}));

  // Allowed: publish on orders.*, describe and groups of what the user may see.
  EXPECT_EQ(billing.post("/v1/topics/orders.eu/messages", R"({"payload":"ok"})").status, 200u);
  EXPECT_EQ(billing.get("/v1/topics/audit").status, 200u);
  EXPECT_EQ(billing.get("/v1/topics/orders.eu/groups").status, 200u);

  // Denied: 403 forbidden naming the operation and the topic.
  const auto publish = billing.post("/v1/topics/audit/messages", R"({"payload":"no"})");
  EXPECT_EQ(publish.status, 403u);
  EXPECT_EQ(error_code(publish), "forbidden");
  EXPECT_THAT(publish.body, HasSubstr("may not publish to topic 'audit'"));
  const auto denied = billing.post("/v1/topics/orders.secret/messages", R"({"payload":"no"})");
  EXPECT_EQ(denied.status, 403u) << denied.body;
  for (const char* target :
       {"/v1/topics/payroll", "/v1/topics/payroll/groups", "/v1/topics/orders.secret"}) {
    const auto r = billing.get(target);
    EXPECT_EQ(r.status, 403u) << target;
    EXPECT_THAT(r.body, HasSubstr("may not see topic")) << target;
  }
  // Nothing of the denied publishes was stored.
  const auto audit = admin.get("/v1/topics/audit");
  ASSERT_EQ(audit.status, 200u);
  EXPECT_EQ(json::parse(audit.body).at("next_offset").as_int64(), 1) << audit.body;

  // Logins counted over HTTP (every request with credentials is one): 4 failures above.
  const auto metrics = admin.get("/metrics");
  ASSERT_EQ(metrics.status, 200u);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(metrics.body, m, std::regex("\nloft_auth_failed_total (\\d+)")));
  EXPECT_EQ(std::stoi(m[1]), 4);
  ASSERT_TRUE(std::regex_search(metrics.body, m, std::regex("\nloft_auth_succeeded_total (\\d+)")));
  EXPECT_GE(std::stoi(m[1]), 10);

  // One log line per failure, with peer and user name; never a password.
  const auto log = d.log();
  for (const char* secret : {kAdminPassword, kBillingPassword, kWrongPassword}) {
    EXPECT_THAT(log, Not(HasSubstr(secret)));
  }
  EXPECT_THAT(log, HasSubstr("authentication failed peer=127.0.0.1:"));
  EXPECT_THAT(log, HasSubstr("user=\"nobody\""));
  const std::regex failure("authentication failed");
  EXPECT_EQ(
      std::distance(std::sregex_iterator(log.begin(), log.end(), failure), std::sregex_iterator()),
      4);

  // Failures on one connection are answered ever later, and the third closes it.
  HttpClient guesser(d.http_port(), as("billing", kWrongPassword));
  EXPECT_TRUE(guesser.get("/v1/topics").keep_alive);
  EXPECT_TRUE(guesser.get("/v1/topics").keep_alive);
  const auto third = guesser.get("/v1/topics");
  EXPECT_EQ(third.status, 401u);
  EXPECT_FALSE(third.keep_alive);
  EXPECT_THROW(guesser.get("/v1/topics"), std::runtime_error);
  EXPECT_THAT(d.log(), HasSubstr("user=\"billing\" failures=3"));
}

TEST_F(HttpAuth, HttpsWithMetricsForUsersAndMismatchesCloseCleanly) {
  TestDaemon d(tls_config("metrics_auth = \"users\"\n"));
  d.start();
  ASSERT_NE(d.http_port(), 0);
  HttpClientOptions admin = as("admin", kAdminPassword);
  admin.tls_ca_file = ca_file();
  make_topics(d.http_port(), admin);

  HttpClientOptions anonymous;
  anonymous.tls_ca_file = ca_file();
  HttpClient open(d.http_port(), anonymous);
  EXPECT_EQ(open.get("/healthz").status, 200u);
  const auto metrics = open.get("/metrics");
  EXPECT_EQ(metrics.status, 401u);
  EXPECT_EQ(metrics.headers.at("www-authenticate"), "Basic realm=\"loft\"");
  HttpClient https(d.http_port(), admin);
  EXPECT_EQ(https.get("/metrics").status, 200u);
  const auto topics = https.get("/v1/topics");
  EXPECT_EQ(topics.status, 200u);
  EXPECT_EQ(topic_names(topics).size(), 4u);

  // Plain HTTP to the HTTPS port: a plain 400 that says so, the connection closed, one log
  // line; a TLS client whose handshake stops half way is closed too; loftd goes on serving.
  {
    HttpClient plain(d.http_port());
    const auto r = plain.get("/healthz");
    EXPECT_EQ(r.status, 400u);
    EXPECT_THAT(r.body, HasSubstr("use https://"));
    EXPECT_FALSE(r.keep_alive);
    EXPECT_THROW(plain.get("/healthz"), std::runtime_error);
  }
  {
    HttpClient garbage(d.http_port());
    // A ClientHello record of zeros (protocol version 0.0): OpenSSL rejects it with an alert.
    std::string hello("\x16\x03\x01\x00\x28\x01\x00\x00\x24", 9);
    hello.append(36, '\0');
    EXPECT_THROW(garbage.raw(hello), std::runtime_error);
  }
  EXPECT_TRUE(eventually([&] {
    const auto log = d.log();
    return log.find("plain HTTP on the HTTPS port") != std::string::npos &&
           log.find("tls handshake failed") != std::string::npos;
  }));
  EXPECT_EQ(HttpClient(d.http_port(), admin).get("/v1/topics/audit").status, 200u);
  EXPECT_THAT(d.log(), Not(HasSubstr(kAdminPassword)));
}

TEST_F(HttpAuth, SighupReloadsTheHttpsCertificateForNewConnections) {
  const auto& certs = TestCerts::get();
  TempDir dir;
  const CertPair live = certs.copy_server_cert(dir.path());
  const auto cfg = config("http_tls = true\ntls_cert_file = \"" + live.cert +
                          "\"\ntls_key_file = \"" + live.key + "\"\n");
  TestDaemon d(cfg);
  d.start();
  HttpClientOptions tls;
  tls.tls_ca_file = ca_file();
  HttpClient old(d.http_port(), tls);
  const auto before = old.peer_certificate_serial();
  EXPECT_FALSE(before.empty());

  certs.make_server_cert("2C3D", live.cert, live.key);
  d.signal(SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return d.log().find("tls reloaded serial=2C3D") != std::string::npos;
  })) << d.log();
  HttpClient fresh(d.http_port(), tls);
  EXPECT_EQ(fresh.peer_certificate_serial(), "2C3D");
  EXPECT_EQ(fresh.get("/healthz").status, 200u);
  EXPECT_EQ(old.get("/healthz").status, 200u) << "an open connection keeps its TLS session";
  EXPECT_EQ(old.peer_certificate_serial(), before);
}

TEST_F(HttpAuth, TlsToThePlainPortClosesCleanly) {
  TestDaemon d(config());
  d.start();
  HttpClientOptions tls;
  tls.tls_ca_file = ca_file();
  EXPECT_THROW(HttpClient(d.http_port(), tls), std::runtime_error);
  EXPECT_TRUE(eventually(
      [&] { return d.log().find("tls handshake on the plain HTTP port") != std::string::npos; }));
  EXPECT_EQ(http_get(d.http_port(), "/healthz").status, 200u);
}

// HTTPS with client certificates (tls_client_auth = "optional"): a certificate naming one user
// authenticates each request as that user without Basic; Basic beside it must name the same
// user; a certificate naming two users (CN alice, SAN bob) authenticates nobody.
TEST_F(HttpAuth, AClientCertificateNamingOneUserAuthenticatesHttpsRequests) {
  const auto& certs = TestCerts::get();
  TestDaemon d(tls_config("tls_ca_file = \"" + certs.ca + "\"\ntls_client_auth = \"optional\"\n"));
  d.start();
  auto admin = https();
  admin.user = "admin";
  admin.password = kAdminPassword;
  make_topics(d.http_port(), admin);

  HttpClient alice(d.http_port(), https(&certs.alice));
  const auto mine = alice.get("/v1/topics");
  ASSERT_EQ(mine.status, 200u) << mine.body;
  EXPECT_EQ(topic_names(mine), (std::set<std::string>{"orders.eu", "orders.secret"}));
  EXPECT_EQ(alice.post("/v1/topics/orders.eu/messages", R"({"payload":"a"})").status, 200u);
  const auto denied = alice.post("/v1/topics/audit/messages", R"({"payload":"a"})");
  EXPECT_EQ(denied.status, 403u);
  EXPECT_THAT(denied.body, HasSubstr("user 'alice' may not publish to topic 'audit'"));

  // Basic naming the certificate's user: the certificate decides (the password is not checked).
  auto alice_basic = https(&certs.alice);
  alice_basic.user = "alice";
  alice_basic.password = "not checked";
  EXPECT_EQ(HttpClient(d.http_port(), alice_basic).get("/v1/topics").status, 200u);
  // Basic naming another user, even with that user's right password: 401.
  auto alice_as_billing = https(&certs.alice);
  alice_as_billing.user = "billing";
  alice_as_billing.password = kBillingPassword;
  const auto mismatch = HttpClient(d.http_port(), alice_as_billing).get("/v1/topics");
  EXPECT_EQ(mismatch.status, 401u);
  EXPECT_EQ(mismatch.headers.at("www-authenticate"), "Basic realm=\"loft\"");
  EXPECT_EQ(error_code(mismatch), "authentication failed");
  EXPECT_THAT(mismatch.body, HasSubstr("another user than the client certificate"));

  // CN alice and SAN bob: neither; Basic works as without a certificate.
  const auto ambiguous = HttpClient(d.http_port(), https(&certs.alice_and_bob)).get("/v1/topics");
  EXPECT_EQ(ambiguous.status, 401u);
  EXPECT_EQ(error_code(ambiguous), "unauthenticated");
  auto both_with_basic = https(&certs.alice_and_bob);
  both_with_basic.user = "billing";
  both_with_basic.password = kBillingPassword;
  const auto as_billing = HttpClient(d.http_port(), both_with_basic).get("/v1/topics");
  ASSERT_EQ(as_billing.status, 200u) << as_billing.body;
  EXPECT_EQ(topic_names(as_billing), (std::set<std::string>{"audit", "orders.eu"}));
  // bob (SAN only) is a user of its own certificate.
  const auto bob = HttpClient(d.http_port(), https(&certs.bob)).get("/v1/topics");
  ASSERT_EQ(bob.status, 200u) << bob.body;
  EXPECT_EQ(topic_names(bob), (std::set<std::string>{"payroll"}));
  // No certificate: Basic as ever.
  EXPECT_EQ(HttpClient(d.http_port(), https()).get("/v1/topics").status, 401u);

  const auto log = d.log();
  EXPECT_EQ(occurrences(log,
                        "client certificate names more than one user, no certificate login "
                        "peer=127.0.0.1:"),
            2u)
      << log;  // once per connection
  EXPECT_THAT(log, HasSubstr("names=\"alice\",\"bob\" users=\"alice\",\"bob\""));
  EXPECT_THAT(log, HasSubstr("user=\"alice\" mechanism=certificate"));
  EXPECT_THAT(log, HasSubstr("user=\"bob\" mechanism=certificate"));
  for (const char* secret : {kAdminPassword, kBillingPassword}) {
    EXPECT_THAT(log, Not(HasSubstr(secret)));
  }
}

// Password checks wait in one bounded queue for both ports (4 per address): a burst of logins
// with a password nobody knows gets 503 with Retry-After beyond it, not counted as failures;
// while the queue is full an AUTHENTICATE on the binary port from the same address is told to
// try again, and users whose passwords were verified before are served at once on both ports.
TEST_F(HttpAuth, PasswordChecksBeyondTheSharedLimitAre503) {
  TestDaemon d(config());
  d.start();
  make_topics(d.http_port());  // admin's password is now known
  client::Options binary;
  binary.port = d.port();
  auto waiting = client::Client::connect(binary);
  ASSERT_TRUE(waiting.has_value()) << waiting.error().to_string();

  constexpr int kRequests = 16;
  std::vector<std::unique_ptr<HttpClient>> guessers;
  guessers.reserve(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    guessers.push_back(std::make_unique<HttpClient>(
        d.http_port(), as("nobody-" + std::to_string(i), kWrongPassword)));
  }
  std::vector<HttpResponse> answers(kRequests);
  std::atomic<bool> go{false};
  std::atomic<bool> saw_503{false};
  std::vector<std::thread> threads;
  threads.reserve(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    threads.emplace_back([&, i] {
      while (!go.load()) std::this_thread::yield();
      answers[i] = guessers[i]->get("/v1/topics");
      if (answers[i].status == 503) saw_503 = true;
    });
  }
  go = true;
  // A 503 means 4 checks from this address were queued a moment ago; each takes an Argon2id
  // hash, so they are still there for the next request.
  ASSERT_TRUE(eventually([&] { return saw_503.load(); }, std::chrono::seconds(60)));
  std::string bytes;
  protocol::encode(protocol::Frame{0x80000001, protocol::Authenticate{"PLAIN", auth::encode_plain(
                                                                                   "nobody", "x")}},
                   bytes);
  const auto busy = (*waiting)->raw_request(bytes, 0x80000001);
  ASSERT_FALSE(busy.has_value());
  EXPECT_EQ(busy.error().code, Errc::authentication_failed);
  EXPECT_THAT(busy.error().detail, HasSubstr("try again shortly"));
  // Known passwords skip the queue, on both ports.
  HttpClient admin(d.http_port(), as("admin", kAdminPassword));
  EXPECT_EQ(admin.get("/v1/topics/audit").status, 200u);
  client::Options admin_binary = binary;
  admin_binary.user = "admin";
  admin_binary.password = kAdminPassword;
  auto logged_in = client::Client::connect(admin_binary);
  ASSERT_TRUE(logged_in.has_value()) << logged_in.error().to_string();
  Message message;
  message.payload = "during the flood";
  EXPECT_TRUE((*logged_in)->publish("audit", message).has_value());
  for (auto& t : threads) t.join();

  int refused = 0;
  int failed = 0;
  for (const auto& r : answers) {
    if (r.status == 503) {
      ++refused;
      EXPECT_EQ(r.headers.at("retry-after"), "1");
      EXPECT_EQ(r.headers.at("content-type"), "application/json");
      EXPECT_EQ(error_code(r), "authentication failed") << r.body;
      EXPECT_THAT(r.body, HasSubstr("try again shortly"));
      EXPECT_EQ(r.headers.count("www-authenticate"), 0u);
      EXPECT_TRUE(r.keep_alive);
    } else {
      EXPECT_EQ(r.status, 401u) << r.body;
      ++failed;
    }
  }
  EXPECT_GE(refused, 1);
  EXPECT_LE(failed, kRequests - refused);
  // Only checked logins count as failures: not the 503s, not the binary port's busy answer.
  const auto page = admin.get("/metrics").body;
  EXPECT_EQ(metric(page, "loft_auth_failed_total"), static_cast<std::uint64_t>(failed)) << page;
  EXPECT_THAT(d.log(), Not(HasSubstr(kWrongPassword)));
}

// metrics_auth = "users": a user sees the per-topic and per-group series of the topics it may
// see (as GET /v1/topics lists them), and the broker-wide ones.
TEST_F(HttpAuth, MetricsForUsersShowOnlyTheTopicsTheUserMaySee) {
  TestDaemon d(config("metrics_auth = \"users\"\n"));
  d.start();
  make_topics(d.http_port());
  client::Options o;
  o.port = d.port();
  o.user = "admin";
  o.password = kAdminPassword;
  auto admin_client = client::Client::connect(o);
  ASSERT_TRUE(admin_client.has_value()) << admin_client.error().to_string();
  ASSERT_TRUE((*admin_client)->create_group("payroll", "salaries").has_value());
  ASSERT_TRUE((*admin_client)->create_group("orders.eu", "shipping").has_value());

  const auto all = HttpClient(d.http_port(), as("admin", kAdminPassword)).get("/metrics");
  ASSERT_EQ(all.status, 200u);
  for (const char* topic : {"payroll", "orders.secret", "orders.eu", "audit"}) {
    EXPECT_THAT(all.body, HasSubstr(std::string("{topic=\"") + topic + "\"}")) << topic;
  }
  EXPECT_THAT(all.body, HasSubstr("group=\"salaries\""));

  const auto mine = HttpClient(d.http_port(), as("billing", kBillingPassword)).get("/metrics");
  ASSERT_EQ(mine.status, 200u);
  EXPECT_THAT(mine.body, HasSubstr("loft_messages_published_total{topic=\"orders.eu\"} 1"));
  EXPECT_THAT(mine.body, HasSubstr("loft_messages_published_total{topic=\"audit\"} 1"));
  EXPECT_THAT(mine.body, HasSubstr("topic=\"orders.eu\",group=\"shipping\""));
  for (const char* hidden : {"payroll", "orders.secret", "salaries"}) {
    EXPECT_THAT(mine.body, Not(HasSubstr(hidden))) << hidden;
  }
  EXPECT_THAT(mine.body, HasSubstr("\nloft_connections_open "));  // broker-wide figures stay
  EXPECT_EQ(HttpClient(d.http_port()).get("/metrics").status, 401u);
}

}  // namespace
}  // namespace loft::testing
