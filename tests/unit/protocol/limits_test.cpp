#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "loft/protocol/codec.hpp"

namespace loft::protocol {
namespace {

using ::testing::HasSubstr;

constexpr Limits kLimits{.max_frame_size = 4096,
                         .max_message_size = 100,
                         .max_id_size = 10,
                         .max_key_size = 20,
                         .max_headers_size = 30};

Publish with_message(Message m) {
  // Message 0 is always fine, so the detail must name message 1.
  return Publish{"t", {Message{"id", "key", {{"h", "v"}}, "payload"}, std::move(m)}};
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

void expect_ok(const Publish& p) {
  const auto r = check_limits(p, kLimits);
  EXPECT_TRUE(r) << r.error().to_string();
}

void expect_fail(const Publish& p, Errc code, const std::string& detail) {
  const auto r = check_limits(p, kLimits);
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
  Limits big = kLimits;
  big.max_headers_size = 1 << 20;
  Message m{"", "", {{std::string(65535, 'n'), ""}}, ""};
  EXPECT_TRUE(check_limits(Publish{"t", {m}}, big));
  m.headers[0].name.push_back('n');
  const auto r = check_limits(Publish{"t", {m}}, big);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::headers_too_large);
  EXPECT_THAT(r.error().detail, HasSubstr("header 0 name is 65536 bytes"));
}

TEST(CheckLimits, EmptyTopicOrNoMessagesIsInvalid) {
  expect_fail(Publish{"", {Message{}}}, Errc::invalid_request, "empty topic");
  expect_fail(Publish{"t", {}}, Errc::invalid_request, "no messages");
}

TEST(CheckLimits, EmptyMessageIsFine) { expect_ok(Publish{"t", {Message{}}}); }

TEST(CheckLimits, DefaultLimits) {
  const Limits d;
  EXPECT_EQ(d.max_frame_size, 16u << 20);
  EXPECT_EQ(d.max_message_size, 1u << 20);
  EXPECT_EQ(d.max_id_size, 256u);
  EXPECT_EQ(d.max_key_size, 1024u);
  EXPECT_EQ(d.max_headers_size, 64u << 10);
  EXPECT_TRUE(check_limits(Publish{"t",
                                   {Message{std::string(256, 'i'),
                                            std::string(1024, 'k'),
                                            {{"n", std::string((64 << 10) - 1, 'v')}},
                                            std::string(1 << 20, 'p')}}},
                           d));
}

}  // namespace
}  // namespace loft::protocol
