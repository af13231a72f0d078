// loftd's HTTP endpoint with users and over HTTPS, against the real daemon on 127.0.0.1:0:
// 401 without or with bad Basic credentials (with the challenge), 403 per topic, the topic
// list filtered, health open, /metrics open or not as metrics_auth says, logins counted and
// logged without the password; HTTPS with a test CA, and plaintext/TLS mismatches that close
// cleanly while loftd goes on serving. Certificates come from TestCerts (openssl at test time).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <csignal>
#include <fstream>
#include <regex>
#include <set>

#include "http_client.hpp"
#include "loft/auth/auth.hpp"
#include "test_certs.hpp"
#include "test_daemon.hpp"

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

// The users file, made once for the suite (Argon2id hashing is slow).
class HttpAuth : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const auto admin = auth::hash_password(kAdminPassword);
    const auto billing = auth::hash_password(kBillingPassword);
    ASSERT_TRUE(admin && billing);
    write_file(users_file(), "[[users]]\nname = \"admin\"\npassword_hash = \"" + *admin +
                                 "\"\npublish = [\"*\"]\nsubscribe = [\"*\"]\nadmin = [\"*\"]\n"
                                 "\n[[users]]\nname = \"billing\"\npassword_hash = \"" +
                                 *billing +
                                 "\"\npublish = [\"orders.*\"]\nsubscribe = [\"audit\"]\n"
                                 "deny = [\"orders.secret\"]\n");
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
    EXPECT_EQ(anonymous.get("/metrics").status, 200u);  // metrics_auth = "open" by default
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

}  // namespace
}  // namespace loft::testing
