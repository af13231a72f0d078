// Who may call which HTTP endpoint: the Basic header (well-formed and hostile), each
// endpoint's access, and the 403 naming the user, the operation and the topic.

#include "loft/http/access.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/beast/core/detail/base64.hpp>

namespace loft::http {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string base64(std::string_view text) {
  std::string out(boost::beast::detail::base64::encoded_size(text.size()), '\0');
  out.resize(boost::beast::detail::base64::encode(out.data(), text.data(), text.size()));
  return out;
}

TEST(ParseBasicAuthorization, TakesUserAndPassword) {
  const auto c = parse_basic_authorization("Basic " + base64("billing:s3cret:with:colons"));
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->user, "billing");
  EXPECT_EQ(c->password, "s3cret:with:colons");
}

TEST(ParseBasicAuthorization, SchemeIsCaseInsensitiveAndSpacesAreTolerated) {
  const auto c = parse_basic_authorization("bAsIc   " + base64("u:p") + " ");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->user, "u");
  EXPECT_EQ(c->password, "p");
  const auto empty_password = parse_basic_authorization("Basic " + base64("u:"));
  ASSERT_TRUE(empty_password);
  EXPECT_EQ(empty_password->password, "");
}

TEST(ParseBasicAuthorization, MalformedHeadersFailWithoutThePassword) {
  const std::string secret = "hunter2";
  for (const std::string& value :
       {std::string(""), std::string("Basic"), std::string("Basic "), "Bearer " + base64("u:p"),
        "Basic " + base64("no-colon-" + secret), "Basic " + base64(":" + secret),
        "Basic " + base64("u:" + secret).substr(1), std::string("Basic !!!!"),
        std::string("Basic ===="), std::string("Basic dT1w\x01\x02"), std::string("Basic\tdTpw"),
        std::string(4096, 'B')}) {
    const auto c = parse_basic_authorization(value);
    ASSERT_FALSE(c) << value;
    EXPECT_EQ(c.error().code, Errc::authentication_failed) << value;
    EXPECT_THAT(c.error().detail, Not(HasSubstr(secret)));
  }
}

TEST(AccessOf, HealthIsOpenMetricsAsConfiguredApiNeedsAUser) {
  EXPECT_EQ(access_of(Endpoint::healthz, true), Access::open);
  EXPECT_EQ(access_of(Endpoint::readyz, true), Access::open);
  EXPECT_EQ(access_of(Endpoint::metrics, false), Access::open);
  EXPECT_EQ(access_of(Endpoint::metrics, true), Access::user);
  EXPECT_EQ(access_of(Endpoint::topics, false), Access::user);
  EXPECT_EQ(access_of(Endpoint::topic, false), Access::see_topic);
  EXPECT_EQ(access_of(Endpoint::topic_groups, false), Access::see_topic);
  EXPECT_EQ(access_of(Endpoint::topic_messages, false), Access::publish_topic);
  EXPECT_EQ(access_of(Endpoint::create_topic, false), Access::admin_topic);
  EXPECT_EQ(access_of(Endpoint::delete_topic, false), Access::admin_topic);
}

auth::User user_with(std::vector<std::string> publish, std::vector<std::string> subscribe,
                     std::vector<std::string> deny = {}) {
  auth::User u;
  u.name = "billing";
  for (const auto& p : publish) u.permissions.publish.push_back(*auth::TopicPattern::parse(p));
  for (const auto& p : subscribe) {
    u.permissions.subscribe.push_back(*auth::TopicPattern::parse(p));
  }
  for (const auto& p : deny) u.permissions.deny.push_back(*auth::TopicPattern::parse(p));
  return u;
}

TEST(Authorize, PublishNeedsPublishOnTheTopic) {
  const auto u = user_with({"orders.*"}, {"audit"}, {"orders.secret"});
  EXPECT_TRUE(authorize(u, Route{Endpoint::topic_messages, "orders.eu"}));
  const auto denied = authorize(u, Route{Endpoint::topic_messages, "audit"});
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code, Errc::forbidden);
  EXPECT_THAT(denied.error().detail, HasSubstr("'billing' may not publish to topic 'audit'"));
  EXPECT_FALSE(authorize(u, Route{Endpoint::topic_messages, "orders.secret"}));
}

TEST(Authorize, DescribeAndGroupsNeedAnyPermissionOnTheTopic) {
  const auto u = user_with({"orders.*"}, {"audit"}, {"orders.secret"});
  EXPECT_TRUE(authorize(u, Route{Endpoint::topic, "audit"}));
  EXPECT_TRUE(authorize(u, Route{Endpoint::topic_groups, "orders.eu"}));
  for (const auto e : {Endpoint::topic, Endpoint::topic_groups}) {
    const auto denied = authorize(u, Route{e, "payroll"});
    ASSERT_FALSE(denied);
    EXPECT_EQ(denied.error().code, Errc::forbidden);
    EXPECT_THAT(denied.error().detail, HasSubstr("may not see topic 'payroll'"));
    EXPECT_FALSE(authorize(u, Route{e, "orders.secret"}));
  }
  EXPECT_TRUE(authorize(u, Route{Endpoint::topics, ""}));
  EXPECT_TRUE(authorize(u, Route{Endpoint::metrics, ""}));
}

TEST(Authorize, CreatingAndDeletingATopicNeedAdminOnIt) {
  auto u = user_with({"*"}, {"*"});
  u.permissions.admin.push_back(*auth::TopicPattern::parse("jobs.*"));
  u.permissions.deny.push_back(*auth::TopicPattern::parse("jobs.secret"));
  EXPECT_TRUE(authorize(u, Route{Endpoint::create_topic, "jobs.eu"}));
  EXPECT_TRUE(authorize(u, Route{Endpoint::delete_topic, "jobs.eu"}));
  const auto create = authorize(u, Route{Endpoint::create_topic, "orders"});
  ASSERT_FALSE(create);
  EXPECT_EQ(create.error().code, Errc::forbidden);
  EXPECT_THAT(create.error().detail, HasSubstr("'billing' may not create topic 'orders'"));
  const auto remove = authorize(u, Route{Endpoint::delete_topic, "orders"});
  ASSERT_FALSE(remove);
  EXPECT_THAT(remove.error().detail, HasSubstr("may not delete topic 'orders'"));
  EXPECT_FALSE(authorize(u, Route{Endpoint::create_topic, "jobs.secret"}));  // deny wins
}

}  // namespace
}  // namespace loft::http
