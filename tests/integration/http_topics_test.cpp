// Topic creation and deletion over HTTP (PUT and DELETE /v1/topics/NAME) against the real
// loftd on 127.0.0.1:0: a work-queue topic created over HTTP, fed over HTTP and drained by a
// group until the topic JSON shows it empty; a repeated PUT, a conflicting one, bad bodies and
// names; DELETE; and with users, 401 without credentials and 403 without admin on the topic.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>

#include "http_client.hpp"
#include "test_daemon.hpp"
#include "test_password.hpp"

namespace loft::testing {
namespace {

using ::testing::HasSubstr;
namespace json = boost::json;

std::string error_code(const HttpResponse& r) {
  return std::string(json::parse(r.body).at("error").at("code").as_string());
}

json::object topic_of(const HttpResponse& r) { return json::parse(r.body).as_object(); }

TEST(HttpTopics, AWorkQueueTopicCreatedOverHttpIsEmptiedByItsGroup) {
  TestDaemon d;
  d.start();
  HttpClient http(d.http_port());
  auto r = http.request("PUT", "/v1/topics/jobs", R"({"retention":"work_queue","max_age_ms":0})");
  ASSERT_EQ(r.status, 201u) << r.body;
  EXPECT_EQ(r.headers["content-type"], "application/json");
  EXPECT_EQ(topic_of(r).at("name").as_string(), "jobs");
  EXPECT_EQ(topic_of(r).at("retention").as_string(), "work_queue");
  // The binary protocol sees the same topic.
  auto described = d.loft({"topic", "describe", "jobs", "--json"});
  ASSERT_EQ(described.exit_code, 0) << described.err;
  EXPECT_EQ(json::parse(described.out).at("retention").as_string(), "work_queue");

  // PUT is idempotent: the same settings again are 200 with the topic; others are 409.
  r = http.request("PUT", "/v1/topics/jobs", R"({"retention":"work_queue"})");
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(topic_of(r).at("retention").as_string(), "work_queue");
  r = http.request("PUT", "/v1/topics/jobs", "");
  EXPECT_EQ(r.status, 200u) << r.body;  // no settings given: nothing to differ
  r = http.request("PUT", "/v1/topics/jobs", R"({"retention":"limits"})");
  EXPECT_EQ(r.status, 409u) << r.body;
  EXPECT_EQ(error_code(r), "topic already exists");
  EXPECT_THAT(r.body, HasSubstr("already exists with other settings"));

  // A group, then messages over HTTP: nothing goes before the group is done with it.
  auto created = d.loft({"group", "create", "jobs", "workers"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  std::string batch = "[";
  for (int i = 0; i < 10; ++i) {
    if (i > 0) batch += ",";
    // Piecewise: g++ 12 at -O3 warns falsely (-Wrestrict) on "literal" + std::string.
    batch += R"({"payload":"job )";
    batch += std::to_string(i);
    batch += R"("})";
  }
  batch += "]";
  r = http.post("/v1/topics/jobs/messages", batch);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(topic_of(http.get("/v1/topics/jobs")).at("messages").to_number<std::uint64_t>(), 10u);
  const auto drained = d.loft({"sub", "jobs", "--group", "workers", "--count", "10"});
  ASSERT_EQ(drained.exit_code, 0) << drained.err;
  ASSERT_TRUE(eventually([&] {
    const auto t = topic_of(http.get("/v1/topics/jobs"));
    return t.at("messages").to_number<std::uint64_t>() == 0 &&
           t.at("first_offset").to_number<std::uint64_t>() == 10;
  })) << http.get("/v1/topics/jobs").body;

  // DELETE: 204, then the topic is gone.
  r = http.request("DELETE", "/v1/topics/jobs");
  EXPECT_EQ(r.status, 204u) << r.body;
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(http.get("/v1/topics/jobs").status, 404u);
  r = http.request("DELETE", "/v1/topics/jobs");
  EXPECT_EQ(r.status, 404u) << r.body;
  EXPECT_EQ(error_code(r), "topic not found");
}

TEST(HttpTopics, BadRequestsAreRefusedWithAReason) {
  TestDaemon d;
  d.start();
  HttpClient http(d.http_port());
  auto r = http.request("PUT", "/v1/topics/jobs", R"({"retention":"work_queue","ttl":5})");
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_THAT(r.body, HasSubstr("unknown field 'ttl'"));
  EXPECT_THAT(r.body, HasSubstr("known: retention, max_age_ms"));
  r = http.request("PUT", "/v1/topics/jobs", R"({"retention":"fifo"})");
  EXPECT_EQ(r.status, 400u) << r.body;
  r = http.request("PUT", "/v1/topics/jobs", "{");
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_THAT(r.body, HasSubstr("not valid JSON"));
  r = http.request("PUT", "/v1/topics/jobs", R"({"dedup_window_ms":1})");  // below 1 s
  EXPECT_EQ(r.status, 400u) << r.body;
  r = http.request("PUT", "/v1/topics/no$such", "{}");
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_EQ(error_code(r), "invalid name");
  // None of them made a topic.
  EXPECT_EQ(http.get("/v1/topics").body, "[]");
  r = http.request("POST", "/v1/topics/jobs", "{}");
  EXPECT_EQ(r.status, 405u) << r.body;
  EXPECT_EQ(r.headers["allow"], "GET, PUT, DELETE");
  r = http.request("PUT", "/v1/topics/jobs/messages", "{}");
  EXPECT_EQ(r.status, 405u) << r.body;
  EXPECT_EQ(r.headers["allow"], "POST");
}

HttpClientOptions as(const std::string& user, const std::string& password) {
  HttpClientOptions o;
  o.user = user;
  o.password = password;
  return o;
}

TEST(HttpTopics, CreatingAndDeletingNeedAdminOnTheTopic) {
  constexpr const char* kAdminPassword = "admin-pw-5be01c";
  constexpr const char* kClerkPassword = "clerk-pw-a7d342";
  never_log(kAdminPassword);
  never_log(kClerkPassword);
  TempDir dir;
  const auto users = dir.path() / "users.toml";
  {
    std::ofstream out(users);
    out << "[[users]]\nname = \"ops\"\npassword_hash = \"" << cheap_password_hash(kAdminPassword)
        << "\"\nadmin = [\"jobs.*\"]\n\n[[users]]\nname = \"clerk\"\npassword_hash = \""
        << cheap_password_hash(kClerkPassword) << "\"\npublish = [\"*\"]\nsubscribe = [\"*\"]\n";
  }
  std::string config = "users_file = \"";
  config += users.string();
  config += "\"\n";
  TestDaemon d(config);
  d.start();
  HttpClient anonymous(d.http_port());
  auto r = anonymous.request("PUT", "/v1/topics/jobs.eu", "{}");
  EXPECT_EQ(r.status, 401u) << r.body;
  EXPECT_EQ(error_code(r), "unauthenticated");
  r = anonymous.request("DELETE", "/v1/topics/jobs.eu");
  EXPECT_EQ(r.status, 401u) << r.body;

  HttpClient clerk(d.http_port(), as("clerk", kClerkPassword));
  r = clerk.request("PUT", "/v1/topics/jobs.eu", R"({"retention":"work_queue"})");
  EXPECT_EQ(r.status, 403u) << r.body;
  EXPECT_THAT(r.body, HasSubstr("'clerk' may not create topic 'jobs.eu'"));

  HttpClient ops(d.http_port(), as("ops", kAdminPassword));
  r = ops.request("PUT", "/v1/topics/jobs.eu", R"({"retention":"work_queue"})");
  ASSERT_EQ(r.status, 201u) << r.body;
  r = ops.request("PUT", "/v1/topics/orders", "{}");  // admin on jobs.* only
  EXPECT_EQ(r.status, 403u) << r.body;

  r = clerk.request("DELETE", "/v1/topics/jobs.eu");
  EXPECT_EQ(r.status, 403u) << r.body;
  EXPECT_THAT(r.body, HasSubstr("may not delete topic 'jobs.eu'"));
  EXPECT_EQ(clerk.get("/v1/topics/jobs.eu").status, 200u);  // still there
  r = ops.request("DELETE", "/v1/topics/jobs.eu");
  EXPECT_EQ(r.status, 204u) << r.body;
  EXPECT_EQ(clerk.get("/v1/topics/jobs.eu").status, 404u);
}

}  // namespace
}  // namespace loft::testing
