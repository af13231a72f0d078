#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>

#include "loft/broker/broker.hpp"

// The broker checks every publish against its message limits, whichever front end the
// publish came through.
namespace loft::broker {
namespace {

using ::testing::HasSubstr;

constexpr MessageLimits kLimits{
    .max_message_size = 100, .max_id_size = 10, .max_key_size = 20, .max_headers_size = 30};

std::vector<Message> with_message(Message m) {
  // Message 0 is always fine, so the detail must name message 1.
  return {Message{"id", "key", {{"h", "v"}}, "payload"}, std::move(m)};
}

Message payload(std::size_t n) { return Message{"", "", {}, std::string(n, 'p')}; }
Message id(std::size_t n) { return Message{std::string(n, 'i'), "", {}, ""}; }
Message key(std::size_t n) { return Message{"", std::string(n, 'k'), {}, ""}; }
Message headers(std::size_t names, std::size_t values) {
  // Split over two headers so the sum, not a single header, is what hits the limit.
  return Message{"",
                 "",
                 {{std::string(names / 2, 'n'), std::string(values / 2, 'v')},
                  {std::string(names - names / 2, 'n'), std::string(values - values / 2, 'v')}},
                 ""};
}

void expect_ok(const std::vector<Message>& p) {
  const auto r = validate_messages(p, kLimits);
  EXPECT_TRUE(r) << r.error().to_string();
}

void expect_fail(const std::vector<Message>& p, Errc code, const std::string& detail) {
  const auto r = validate_messages(p, kLimits);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, code);
  EXPECT_THAT(r.error().detail, HasSubstr(detail));
}

TEST(CheckLimits, PayloadAtLimitPassesOneOverFails) {
  expect_ok(with_message(payload(100)));
  expect_fail(with_message(payload(101)), Errc::message_too_large,
              "message 1 payload is 101 bytes, max_message_size is 100");
}

TEST(CheckLimits, IdAtLimitPassesOneOverFails) {
  expect_ok(with_message(id(10)));
  expect_fail(with_message(id(11)), Errc::id_too_large,
              "message 1 id is 11 bytes, max_id_size is 10");
}

TEST(CheckLimits, KeyAtLimitPassesOneOverFails) {
  expect_ok(with_message(key(20)));
  expect_fail(with_message(key(21)), Errc::key_too_large,
              "message 1 key is 21 bytes, max_key_size is 20");
}

TEST(CheckLimits, HeadersCountNamesAndValues) {
  expect_ok(with_message(headers(10, 20)));
  expect_fail(with_message(headers(11, 20)), Errc::headers_too_large,
              "message 1 headers are 31 bytes (names + values), max_headers_size is 30");
  expect_fail(with_message(headers(10, 21)), Errc::headers_too_large, "31 bytes");
}

TEST(CheckLimits, HeaderNameMustFitItsPrefix) {
  MessageLimits big = kLimits;
  big.max_headers_size = 1 << 20;
  std::vector<Message> m{Message{"", "", {{std::string(65535, 'n'), ""}}, ""}};
  EXPECT_TRUE(validate_messages(m, big));
  m[0].headers[0].name.push_back('n');
  const auto r = validate_messages(m, big);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::headers_too_large);
  EXPECT_THAT(r.error().detail, HasSubstr("header 0 name is 65536 bytes"));
}

Message subject(std::string s) {
  Message m;
  m.subject = std::move(s);
  return m;
}

// Subjects follow the NATS rules (loft/common/subject.hpp) with a fixed length limit; none
// (empty) is always fine. Checked after every size limit.
TEST(CheckLimits, SubjectsMustBeValidPublishSubjects) {
  expect_ok(with_message(subject("")));
  expect_ok(with_message(subject("orders.eu.new")));
  expect_ok(with_message(subject(std::string(kMaxSubjectSize, 's'))));
  expect_fail(with_message(subject(std::string(kMaxSubjectSize + 1, 's'))), Errc::invalid_subject,
              "message 1 subject is 1025 bytes, more than 1024");
  for (const char* bad : {"a..b", ".a", "a.", "a b", "orders.*", "orders.>", ">", "a\tb"}) {
    expect_fail(with_message(subject(bad)), Errc::invalid_subject,
                "message 1 subject '" + std::string(bad) + "' is not a valid subject");
  }
  // A size limit is reported before the subject.
  auto both = subject("a..b");
  both.payload = std::string(101, 'p');
  expect_fail(with_message(both), Errc::message_too_large, "payload is 101 bytes");
}

TEST(CheckLimits, FiltersMayHoldWildcards) {
  EXPECT_TRUE(validate_filter(""));
  for (const char* good : {"orders", "orders.*", "orders.>", "*.eu.>", ">"}) {
    EXPECT_TRUE(validate_filter(good)) << good;
  }
  for (const char* bad : {"a..b", "orders.>.eu", "a b", "."}) {
    const auto r = validate_filter(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, Errc::invalid_subject);
    EXPECT_THAT(r.error().detail, HasSubstr("is not a valid subject filter"));
  }
  const auto long_one = validate_filter(std::string(kMaxSubjectSize + 1, 'f'));
  ASSERT_FALSE(long_one);
  EXPECT_THAT(long_one.error().detail, HasSubstr("filter is 1025 bytes"));
}

TEST(CheckLimits, NoMessagesIsInvalid) { expect_fail({}, Errc::invalid_request, "no messages"); }

TEST(CheckLimits, EmptyMessageIsFine) { expect_ok({Message{}}); }

// Broker::publish refuses at once, storing nothing, what validate_messages refuses, and an
// empty topic name.
TEST(CheckLimits, PublishIsRefusedBeforeItReachesTheWriter) {
  Options o;
  o.message_limits = kLimits;
  o.auto_create_topics = true;
  auto broker = Broker::open(storage::make_memory_store(), o);
  ASSERT_TRUE(broker) << broker.error().to_string();
  const auto publish = [&](std::string topic, std::vector<Message> messages) {
    std::promise<Result<Appended>> p;
    (*broker)->publish(std::move(topic), std::move(messages),
                       [&](Result<Appended> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  };
  auto r = publish("t", with_message(id(11)));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::id_too_large);
  r = publish("", {Message{}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_request);
  EXPECT_THAT(r.error().detail, HasSubstr("empty topic"));
  EXPECT_TRUE((*broker)->list_topics().empty()) << "a refused publish created its topic";
  ASSERT_TRUE(publish("t", with_message(id(10))));
  (*broker)->stop();
}

// A front end's batch bound (what its reply can answer for) comes after the message limits
// and before the topic name, as docs/protocol.md orders PUBLISH's checks.
TEST(CheckLimits, TheCallersBatchBoundIsCheckedAfterTheMessagesAndBeforeTheTopicName) {
  Options o;
  o.message_limits = kLimits;
  auto broker = Broker::open(storage::make_memory_store(), o);
  ASSERT_TRUE(broker) << broker.error().to_string();
  const auto publish = [&](std::string topic, std::vector<Message> messages) {
    std::promise<Result<Appended>> p;
    (*broker)->publish(
        std::move(topic), std::move(messages),
        [&](Result<Appended> r) { p.set_value(std::move(r)); }, 1);
    return p.get_future().get();
  };
  auto r = publish("bad name!", with_message(id(11)));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::id_too_large);
  r = publish("bad name!", with_message(id(10)));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_request);
  EXPECT_THAT(r.error().detail, HasSubstr("2 messages in one request, at most 1 fit"));
  r = publish("bad name!", {Message{}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_name);
  (*broker)->stop();
}

TEST(CheckLimits, DefaultLimits) {
  const MessageLimits d;
  EXPECT_EQ(d.max_message_size, 1u << 20);
  EXPECT_EQ(d.max_id_size, 256u);
  EXPECT_EQ(d.max_key_size, 1024u);
  EXPECT_EQ(d.max_headers_size, 64u << 10);
  EXPECT_TRUE(
      validate_messages(std::vector<Message>{Message{std::string(256, 'i'),
                                                     std::string(1024, 'k'),
                                                     {{"n", std::string((64 << 10) - 1, 'v')}},
                                                     std::string(1 << 20, 'p')}},
                        d));
}

}  // namespace
}  // namespace loft::broker
