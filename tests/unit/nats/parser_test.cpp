// The NATS client-protocol parser: round trips, every split, limits and malformed input.

#include "loft/nats/parser.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "loft/nats/encode.hpp"

namespace loft::nats {
namespace {

using namespace std::string_view_literals;

// One op of each kind and form, with the canonical bytes of each.
std::vector<Op> sample_ops() {
  return {
      Connect{R"({"verbose":false,"pedantic":false,"headers":true,"name":"a b"})"},
      Pub{"orders.eu", "", "hello"},
      Pub{"orders.eu", "_INBOX.x.1", "hello"},
      Pub{"empty", "", ""},
      Pub{"bin", "", "a\r\nPUB x 1\r\n\0b"sv},
      HPub{"orders.eu", "", "NATS/1.0\r\nNats-Msg-Id: 7\r\n\r\n", "hello"},
      HPub{"orders.eu", "_INBOX.y", "NATS/1.0\r\n\r\n", ""},
      Sub{"orders.*", "", "1"},
      Sub{"orders.>", "workers", "22"},
      Unsub{"1", std::nullopt},
      Unsub{"22", 5},
      Ping{},
      Pong{},
  };
}

std::string encode_all(const std::vector<Op>& ops) {
  std::string out;
  for (const auto& op : ops) append_op(out, op);
  return out;
}

// Feeds `wire` cut at `cuts`, and returns the ops it gave, encoded again (the ops themselves
// are views that later feeds invalidate; EveryOpRoundTrips compares ops field by field).
std::string parse_in_pieces(std::string_view wire, const std::vector<std::size_t>& cuts) {
  Parser parser;
  std::string again;
  std::size_t at = 0;
  const auto drain = [&] {
    for (;;) {
      auto next = parser.next();
      EXPECT_TRUE(next.has_value()) << (next ? "" : next.error().detail);
      if (!next || !*next) return;
      append_op(again, **next);
    }
  };
  for (const std::size_t cut : cuts) {
    parser.feed(wire.substr(at, cut - at));
    at = cut;
    drain();
  }
  parser.feed(wire.substr(at));
  drain();
  EXPECT_EQ(parser.buffered(), 0u);
  return again;
}

TEST(NatsParser, EveryOpRoundTrips) {
  for (const auto& op : sample_ops()) {
    std::string wire;
    append_op(wire, op);
    Parser parser;
    parser.feed(wire);
    auto next = parser.next();
    ASSERT_TRUE(next.has_value()) << wire;
    ASSERT_TRUE(next->has_value()) << wire;
    EXPECT_EQ(**next, op) << wire;
    std::string again;
    append_op(again, **next);
    EXPECT_EQ(again, wire);
    EXPECT_FALSE(parser.next()->has_value());
  }
}

TEST(NatsParser, AllOpsOfOneReadStayValidTogether) {
  const auto ops = sample_ops();
  Parser parser;
  parser.feed(encode_all(ops));
  std::vector<Op> got;
  for (;;) {
    auto next = parser.next();
    ASSERT_TRUE(next.has_value());
    if (!*next) break;
    got.push_back(**next);
  }
  EXPECT_EQ(got, ops);  // every view still points at live bytes
}

TEST(NatsParser, AcceptsEveryOpSplitAtEveryByte) {
  const std::string wire = encode_all(sample_ops());
  for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
    EXPECT_EQ(parse_in_pieces(wire, {cut}), wire) << "cut at " << cut;
  }
}

TEST(NatsParser, AcceptsOneByteAtATime) {
  const std::string wire = encode_all(sample_ops());
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < wire.size(); ++i) cuts.push_back(i);
  EXPECT_EQ(parse_in_pieces(wire, cuts), wire);
}

TEST(NatsParser, AcceptsRandomSplits) {
  const std::string wire = encode_all(sample_ops());
  std::mt19937 rng{19};
  for (int round = 0; round < 200; ++round) {
    std::vector<std::size_t> cuts;
    for (std::size_t at = 0; at < wire.size();) {
      at += 1 + rng() % 40;
      if (at < wire.size()) cuts.push_back(at);
    }
    EXPECT_EQ(parse_in_pieces(wire, cuts), wire) << "round " << round;
  }
}

// The canonical bytes of the one op `wire` holds ("" when none), and of an op.
std::string parse_one(std::string_view wire, ParserLimits limits = {}) {
  Parser parser{limits};
  parser.feed(wire);
  auto next = parser.next();
  EXPECT_TRUE(next.has_value()) << wire << ": " << (next ? "" : next.error().detail);
  std::string out;
  if (next && *next) append_op(out, **next);
  return out;
}
std::string canon(const Op& op) {
  std::string out;
  append_op(out, op);
  return out;
}

Error parse_error(std::string_view wire, ParserLimits limits = {}) {
  Parser parser{limits};
  parser.feed(wire);
  for (;;) {
    auto next = parser.next();
    if (!next) {
      // The stream stays failed, and feeding more does not revive it.
      parser.feed("PING\r\n");
      const auto again = parser.next();
      EXPECT_FALSE(again.has_value());
      return next.error();
    }
    if (!*next) {
      ADD_FAILURE() << "no error for: " << wire;
      return Error{};
    }
  }
}

TEST(NatsParser, OpNamesAreCaseInsensitiveAndBlanksAnyRun) {
  EXPECT_EQ(parse_one("ping\r\n"), canon(Ping{}));
  EXPECT_EQ(parse_one("PiNg\r\n"), canon(Ping{}));
  EXPECT_EQ(parse_one("pong\n"), canon(Pong{}));             // a bare LF ends a line too
  EXPECT_EQ(parse_one("PING anything\r\n"), canon(Ping{}));  // ignored, as nats-server does
  EXPECT_EQ(parse_one("pub\t foo \t\t3\r\nabc\r\n"), canon(Pub{"foo", "", "abc"}));
  EXPECT_EQ(parse_one("Pub foo  bar 3 \r\nabc\r\n"), canon(Pub{"foo", "bar", "abc"}));
  EXPECT_EQ(parse_one("hpub foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"),
            canon(HPub{"foo", "", "NATS/1.0\r\n\r\n", "hi"}));
  EXPECT_EQ(parse_one("sub\tfoo\tq\t9\r\n"), canon(Sub{"foo", "q", "9"}));
  EXPECT_EQ(parse_one("unsub 9   3\r\n"), canon(Unsub{"9", 3}));
  EXPECT_EQ(parse_one("connect   {\"a\": 1}  \r\n"), canon(Connect{"{\"a\": 1}"}));
}

TEST(NatsParser, WaitsForTheWholeOp) {
  for (const std::string_view part : {"P"sv, "PUB foo 5\r\nhel"sv, "PUB foo 5\r\nhello"sv,
                                      "PUB foo 5\r\nhello\r"sv, "SUB foo 1"sv, "CONN"sv}) {
    Parser parser;
    parser.feed(part);
    auto next = parser.next();
    ASSERT_TRUE(next.has_value()) << part;
    EXPECT_FALSE(next->has_value()) << part;
  }
}

TEST(NatsParser, RefusesGarbageAtOnce) {
  for (const std::string_view wire :
       {"GET / HTTP/1.1"sv, "X"sv, "PUBX foo 1\r\n"sv, " PING\r\n"sv, "\r\n"sv, "MSG a 1 1\r\n"sv,
        "INFO {}\r\n"sv, "+OK\r\n"sv, "-ERR 'x'\r\n"sv, "\x00\x01"sv, "PINGPONG\r\n"sv}) {
    const Error e = parse_error(wire);
    EXPECT_EQ(e.code, ErrorCode::unknown_operation) << wire;
    EXPECT_EQ(e.text(), "Unknown Protocol Operation");
    EXPECT_TRUE(e.fatal());
  }
}

TEST(NatsParser, RefusesBadArguments) {
  for (const std::string_view wire :
       {"PUB foo\r\n"sv, "PUB\r\n"sv, "PUB foo bar baz 1\r\n"sv, "PUB foo -1\r\n"sv,
        "PUB foo 1x\r\n"sv, "PUB foo +1\r\n"sv, "PUB foo 99999999999999999999999\r\n"sv,
        "HPUB foo 1\r\n"sv, "HPUB foo 5 4\r\n"sv, "HPUB foo -1 4\r\n"sv, "SUB foo\r\n"sv,
        "SUB a b c d\r\n"sv, "UNSUB\r\n"sv, "UNSUB 1 x\r\n"sv, "UNSUB 1 -2\r\n"sv,
        "UNSUB 1 2 3\r\n"sv, "CONNECT\r\n"sv, "CONNECT   \r\n"sv}) {
    const Error e = parse_error(wire);
    EXPECT_EQ(e.code, ErrorCode::bad_arguments) << wire;
    EXPECT_EQ(e.text(), "Unknown Protocol Operation");
    EXPECT_FALSE(e.detail.empty());
  }
}

TEST(NatsParser, RefusesAMissingCrlfAfterThePayload) {
  for (const std::string_view wire :
       {"PUB foo 3\r\nabcd\r\n"sv, "PUB foo 3\r\nabc\n"sv, "PUB foo 3\r\nab\r\n"sv,
        "PUB foo 3\r\nabc\rX"sv, "HPUB foo 12 12\r\nNATS/1.0\r\n\r\nX"sv}) {
    EXPECT_EQ(parse_error(wire).code, ErrorCode::unknown_operation) << wire;
  }
}

TEST(NatsParser, RefusesAnOversizedControlLineBeforeItEnds) {
  const ParserLimits limits{.max_control_line = 64, .max_payload = 1024};
  // Exactly at the limit: accepted.
  const std::string at_limit = "SUB " + std::string(64 - 6, 'a') + " 1";
  ASSERT_EQ(at_limit.size(), 64u);
  EXPECT_EQ(parse_one(at_limit + "\r\n", limits),
            canon(Sub{std::string_view(at_limit).substr(4, 58), "", "1"}));
  // One more: refused, with CRLF or without (the line never ends).
  const std::string over = "SUB " + std::string(64 - 5, 'a') + " 1";
  EXPECT_EQ(parse_error(over + "\r\n", limits).code, ErrorCode::max_control_line);
  const Error e = parse_error("SUB " + std::string(1000, 'a'), limits);
  EXPECT_EQ(e.code, ErrorCode::max_control_line);
  EXPECT_EQ(e.text(), "maximum control line exceeded");
}

TEST(NatsParser, RefusesAnOversizedPayloadFromItsSize) {
  const ParserLimits limits{.max_control_line = 4096, .max_payload = 10};
  EXPECT_EQ(parse_one("PUB foo 10\r\n0123456789\r\n", limits), canon(Pub{"foo", "", "0123456789"}));
  // Refused from the control line alone: the payload never has to arrive.
  const Error e = parse_error("PUB foo 11\r\n", limits);
  EXPECT_EQ(e.code, ErrorCode::max_payload);
  EXPECT_EQ(e.text(), "Maximum Payload Violation");
  // HPUB counts headers and payload together.
  EXPECT_EQ(parse_error("HPUB foo 5 11\r\n", limits).code, ErrorCode::max_payload);
  EXPECT_EQ(parse_error("PUB foo 18446744073709551615\r\n",
                        {.max_control_line = 4096, .max_payload = UINT64_MAX})
                .code,
            ErrorCode::max_payload);
}

TEST(NatsParser, LimitsCanChangeMidStream) {
  Parser parser{{.max_control_line = 4096, .max_payload = 100}};
  parser.feed("PUB a 50\r\n");
  ASSERT_FALSE(parser.next()->has_value());
  parser.set_max_payload(10);
  EXPECT_EQ(parser.next().error().code, ErrorCode::max_payload);
}

TEST(NatsParser, ReadsStraightIntoItsBuffer) {
  const std::string wire = encode_all(sample_ops());
  Parser parser;
  std::vector<Op> got;
  std::string again;
  for (std::size_t at = 0; at < wire.size();) {
    auto room = parser.prepare(7);
    ASSERT_GE(room.size(), 7u);
    const std::size_t n = std::min<std::size_t>(7, wire.size() - at);
    std::copy_n(wire.data() + at, n, room.data());
    parser.commit(n);
    at += n;
    for (;;) {
      auto next = parser.next();
      ASSERT_TRUE(next.has_value());
      if (!*next) break;
      append_op(again, **next);
    }
  }
  EXPECT_EQ(again, wire);
}

TEST(NatsParser, GivesBackALargeBufferOnceEmpty) {
  Parser parser;
  std::string wire;
  append_pub(wire, "big", "", std::string(std::size_t{900} << 10, 'x'));
  parser.feed(wire);
  parser.feed(wire);
  ASSERT_TRUE(parser.next()->has_value());
  ASSERT_TRUE(parser.next()->has_value());
  const auto room = parser.prepare(16);
  EXPECT_LT(room.size(), Parser::kKeepCapacity);
}

}  // namespace
}  // namespace loft::nats
