// NATS header blocks, and the rule for loft headers NATS cannot carry.

#include "loft/nats/headers.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "loft/nats/encode.hpp"
#include "loft/nats/parser.hpp"

namespace loft::nats {
namespace {

using namespace std::string_literals;

std::string block(std::uint16_t status, std::string_view description,
                  const std::vector<Header>& headers) {
  std::string out;
  append_headers(out, status, description, headers);
  EXPECT_EQ(out.size(), headers_size(status, description, std::span<const Header>(headers)));
  return out;
}

TEST(NatsHeaders, EncodesPlainHeadersAsTheyAre) {
  EXPECT_EQ(block(0, "", {{"Nats-Msg-Id", "7"}, {"x-Trace", "a b"}, {"x-Trace", "c"}}),
            "NATS/1.0\r\nNats-Msg-Id: 7\r\nx-Trace: a b\r\nx-Trace: c\r\n\r\n");
  EXPECT_EQ(block(0, "", {}), "NATS/1.0\r\n\r\n");
  EXPECT_EQ(block(0, "", {{"Utf8", "grüße"}}), "NATS/1.0\r\nUtf8: grüße\r\n\r\n");
}

TEST(NatsHeaders, StatusOnlyBlocks) {
  EXPECT_EQ(block(503, "", {}), "NATS/1.0 503\r\n\r\n");
  EXPECT_EQ(block(404, "No Messages", {}), "NATS/1.0 404 No Messages\r\n\r\n");
  EXPECT_EQ(block(408, "Request Timeout", {}), "NATS/1.0 408 Request Timeout\r\n\r\n");
  EXPECT_EQ(block(409, "Consumer Deleted", {}), "NATS/1.0 409 Consumer Deleted\r\n\r\n");
  EXPECT_EQ(block(100, "Idle Heartbeat", {{"Nats-Last-Consumer", "5"}}),
            "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 5\r\n\r\n");
  for (const auto& [status, description] : std::vector<std::pair<std::uint16_t, std::string>>{
           {503, ""}, {404, "No Messages"}, {100, "FlowControl Request"}}) {
    const auto parsed = parse_headers(block(status, description, {}));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->status, status);
    EXPECT_EQ(parsed->description, description);
    EXPECT_TRUE(parsed->headers.empty());
  }
}

TEST(NatsHeaders, ParsesWhatClientsSend) {
  const auto parsed =
      parse_headers("NATS/1.0\r\nNats-Msg-Id:  abc \r\nX-Multi: 1\r\nx-multi: 2\r\nEmpty:\r\n\r\n");
  ASSERT_TRUE(parsed.has_value()) << parsed.error().detail;
  EXPECT_EQ(parsed->status, 0);
  const std::vector<Header> expected{
      {"Nats-Msg-Id", "abc"}, {"X-Multi", "1"}, {"x-multi", "2"}, {"Empty", ""}};
  EXPECT_EQ(parsed->headers, expected);  // case kept, values trimmed, repeats in order
}

TEST(NatsHeaders, RefusesMalformedBlocks) {
  for (const std::string_view wire :
       {"", "NATS/1.0", "NATS/1.0\r\n", "NATS/1.0\r\nA: b\r\n", "HTTP/1.1\r\n\r\n",
        "NATS/1.0 5\r\n\r\n", "NATS/1.0 abc\r\n\r\n", "NATS/1.0 099\r\n\r\n", "NATS/1.0X\r\n\r\n",
        "NATS/1.0\r\nno colon\r\n\r\n", "NATS/1.0\r\n: v\r\n\r\n", "NATS/1.0\r\nA b: v\r\n\r\n",
        "NATS/1.0\r\nA: b\nc\r\n\r\n", "NATS/1.0\r\n\r\ntrailing"}) {
    const auto parsed = parse_headers(wire);
    ASSERT_FALSE(parsed.has_value()) << wire;
    EXPECT_EQ(parsed.error().code, ErrorCode::bad_header);
  }
}

TEST(NatsHeaders, EncodesWhatNatsCannotCarry) {
  EXPECT_EQ(encode_header_value("a\r\nb"), "%%a%0D%0Ab");
  EXPECT_EQ(encode_header_value(" lead"), "%%%20lead");
  EXPECT_EQ(encode_header_value("trail\t"), "%%trail%09");
  EXPECT_EQ(encode_header_value("%%x"), "%%%25%25x");  // the marker itself
  EXPECT_EQ(encode_header_value("50%"), "50%");        // a lone '%' is plain
  EXPECT_EQ(encode_header_value("a:b"), "a:b");
  EXPECT_EQ(encode_header_value("\xff"s), "%%%FF");  // not UTF-8
  EXPECT_EQ(encode_header_name("has space"), "%%has%20space");
  EXPECT_EQ(encode_header_name("a:b"), "%%a%3Ab");
  EXPECT_EQ(encode_header_name(""), "%%");
  EXPECT_EQ(encode_header_name("grüße"), "%%gr%C3%BC%C3%9Fe");
  EXPECT_EQ(encode_header_name("Plain-Name_1"), "Plain-Name_1");
  // Reading: our form decodes, anything else is kept.
  EXPECT_EQ(decode_header_text("%%a%0D%0Ab"), "a\r\nb");
  EXPECT_EQ(decode_header_text("%%a%0d"), "a\r");
  EXPECT_EQ(decode_header_text("%%zz%G1"), "%%zz%G1");
  EXPECT_EQ(decode_header_text("%%%4"), "%%%4");
  EXPECT_EQ(decode_header_text("plain"), "plain");
}

TEST(NatsHeaders, AnyLoftHeaderRoundTrips) {
  std::mt19937 rng{9};
  const std::string alphabet = "aZ09-_:% \t\r\n\x01\x7f\xc3\xbc\xff.";
  for (int round = 0; round < 2000; ++round) {
    std::vector<Header> headers;
    for (std::size_t n = rng() % 4; n > 0; --n) {
      Header h;
      for (std::size_t k = rng() % 6; k > 0; --k) h.name += alphabet[rng() % alphabet.size()];
      for (std::size_t k = rng() % 8; k > 0; --k) h.value += alphabet[rng() % alphabet.size()];
      if (rng() % 8 == 0) h.value = "%%" + h.value;
      headers.push_back(h);
    }
    const std::string wire = block(0, "", headers);
    const auto parsed = parse_headers(wire);
    ASSERT_TRUE(parsed.has_value()) << wire << ": " << parsed.error().detail;
    EXPECT_EQ(parsed->headers, headers) << wire;
    // And from views, as a delivery writes them.
    std::vector<HeaderView> views;
    views.reserve(headers.size());
    for (const auto& h : headers) views.push_back(HeaderView{h.name, h.value});
    std::string from_views;
    append_headers(from_views, 0, "", views);
    EXPECT_EQ(from_views, wire);
    EXPECT_EQ(headers_size(0, "", views), wire.size());
  }
}

TEST(NatsHeaders, FromAnHpubToLoftHeadersAndBack) {
  const std::vector<Header> headers{{"Nats-Msg-Id", "42"}, {"bin", "\r\n\x00"s}};
  std::string block_bytes;
  append_headers(block_bytes, 0, "", headers);
  std::string wire;
  append_hpub(wire, "orders.eu", "", block_bytes, "body");
  Parser parser;
  parser.feed(wire);
  const auto op = parser.next();
  ASSERT_TRUE(op.has_value() && op->has_value());
  const auto& hpub = std::get<HPub>(**op);
  EXPECT_EQ(hpub.payload, "body");
  const auto parsed = parse_headers(hpub.headers);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().detail;
  EXPECT_EQ(parsed->headers, headers);
}

}  // namespace
}  // namespace loft::nats
