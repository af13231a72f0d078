// What the server sends, byte for byte.

#include "loft/nats/encode.hpp"

#include <gtest/gtest.h>

#include <string>

#include "loft/nats/error.hpp"
#include "loft/nats/headers.hpp"

namespace loft::nats {
namespace {

TEST(NatsEncode, ServerOps) {
  std::string out;
  append_info(out, R"({"server_id":"x","max_payload":1048576})");
  EXPECT_EQ(out, "INFO {\"server_id\":\"x\",\"max_payload\":1048576}\r\n");
  out.clear();
  append_ok(out);
  append_ping(out);
  append_pong(out);
  append_err(out, kErrMaxPayload);
  EXPECT_EQ(out, "+OK\r\nPING\r\nPONG\r\n-ERR 'Maximum Payload Violation'\r\n");
}

TEST(NatsEncode, Msg) {
  std::string out;
  append_msg(out, "orders.eu", "7", "", "hello");
  append_msg(out, "orders.eu", "7", "_INBOX.a", "");
  EXPECT_EQ(out, "MSG orders.eu 7 5\r\nhello\r\nMSG orders.eu 7 _INBOX.a 0\r\n\r\n");
  std::string pieces;
  append_msg_line(pieces, "orders.eu", "7", "", 5);
  pieces += "hello";
  append_crlf(pieces);
  EXPECT_EQ(pieces, out.substr(0, pieces.size()));
}

TEST(NatsEncode, Hmsg) {
  const std::string headers = "NATS/1.0\r\nA: b\r\n\r\n";
  std::string out;
  append_hmsg(out, "s", "1", "r", headers, "xy");
  EXPECT_EQ(out, "HMSG s 1 r 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nxy\r\n");
  std::string pieces;
  append_hmsg_line(pieces, "s", "1", "r", headers.size(), headers.size() + 2);
  pieces += headers + "xy";
  append_crlf(pieces);
  EXPECT_EQ(pieces, out);
}

TEST(NatsEncode, NoRespondersStatusMessage) {
  // What a requester gets when no one listens on the subject.
  std::string headers;
  append_headers(headers, kStatusNoResponders, "", std::span<const HeaderView>{});
  std::string out;
  append_hmsg(out, "_INBOX.abc", "3", "", headers, "");
  EXPECT_EQ(out, "HMSG _INBOX.abc 3 16 16\r\nNATS/1.0 503\r\n\r\n\r\n");
}

Error error_of(ErrorCode code) { return Error{code, "detail"}; }

TEST(NatsEncode, ErrorTexts) {
  EXPECT_EQ(error_of(ErrorCode::unknown_operation).text(), "Unknown Protocol Operation");
  EXPECT_EQ(error_of(ErrorCode::bad_arguments).text(), "Unknown Protocol Operation");
  EXPECT_EQ(error_of(ErrorCode::max_control_line).text(), "maximum control line exceeded");
  EXPECT_EQ(error_of(ErrorCode::max_payload).text(), "Maximum Payload Violation");
  EXPECT_EQ(error_of(ErrorCode::invalid_subject).text(), "Invalid Subject");
  EXPECT_EQ(error_of(ErrorCode::invalid_publish_subject).text(), "Invalid Publish Subject");
  EXPECT_EQ(error_of(ErrorCode::bad_header).text(), "bad message header detected");
  EXPECT_FALSE(error_of(ErrorCode::invalid_subject).fatal());
  EXPECT_TRUE(error_of(ErrorCode::max_payload).fatal());
}

}  // namespace
}  // namespace loft::nats
