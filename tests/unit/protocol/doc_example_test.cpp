// The worked examples of docs/protocol.md ("Worked examples"), byte for byte. If one of these
// changes, the document must change with it.

#include <gtest/gtest.h>

#include "loft/protocol/codec.hpp"
#include "sample_frames.hpp"

namespace loft::protocol {
namespace {

using testing::from_hex;
using testing::to_hex;

// `version`: the protocol version the example is in (most frames are the same in both).
void expect_wire(const Frame& frame, std::string_view hex, std::uint16_t version = 1) {
  const auto wire = encode(frame, version);
  EXPECT_EQ(to_hex(wire), to_hex(from_hex(hex)));
  Decoder d{Limits{}.max_frame_size};
  d.set_version(version);
  const auto bytes = from_hex(hex);
  d.feed({bytes.data(), bytes.size()});
  const auto r = d.next();
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(**r, frame);
}

TEST(DocExample, Hello) {
  expect_wire(Frame{1, Hello{1, 2, "demo"}},
              "12 00 00 00  01 00  00 00  01 00 00 00"
              "01 00  02 00  04 00 64 65 6d 6f");
}

TEST(DocExample, HelloOk) {
  expect_wire(Frame{1, HelloOk{2, Limits{}, "loftd 0.1.0"}},
              "28 00 00 00  01 80  00 00  01 00 00 00"
              "02 00"
              "00 00 00 01  00 00 10 00  00 01  00 04  00 00 01 00"
              "0b 00 6c 6f 66 74 64 20 30 2e 31 2e 30"
              "00");
}

// The message of the PUBLISH examples: id "a1", no key, one header h: v, payload "hello".
Message example_message(std::string subject = {}) {
  return Message{"a1", "", {{"h", "v"}}, "hello", std::move(subject)};
}

TEST(DocExample, PublishOneMessage) {
  expect_wire(Frame{2, Publish{"orders", {example_message()}}},
              "2d 00 00 00  06 00  00 00  02 00 00 00"
              "06 00 6f 72 64 65 72 73"
              "01 00 00 00"
              "02 00 61 31"
              "00 00"
              "01 00"
              "01 00 68  01 00 00 00 76"
              "05 00 00 00 68 65 6c 6c 6f");
}

TEST(DocExample, PublishOneMessageWithASubjectInVersion2) {
  expect_wire(Frame{2, Publish{"orders", {example_message("orders.eu")}}},
              "38 00 00 00  06 00  00 00  02 00 00 00"
              "06 00 6f 72 64 65 72 73"
              "01 00 00 00"
              "02 00 61 31"
              "00 00"
              "09 00 6f 72 64 65 72 73 2e 65 75"
              "01 00"
              "01 00 68  01 00 00 00 76"
              "05 00 00 00 68 65 6c 6c 6f",
              2);
}

TEST(DocExample, PublishOneMessageDelayedBy10SecondsInVersion4) {
  expect_wire(Frame{3, Publish{"orders", {Message{"a1", "", {}, "hello"}}, 10'000}},
              "37 00 00 00  06 00  00 00  03 00 00 00"
              "06 00 6f 72 64 65 72 73"
              "10 27 00 00 00 00 00 00"
              "01 00 00 00"
              "02 00 61 31"
              "00 00"
              "00 00"
              "00 00 00 00 00 00 00 00"
              "00 00"
              "05 00 00 00 68 65 6c 6c 6f",
              4);
}

TEST(DocExample, CreateGroupWithAFilterInVersion2) {
  GroupConfig config;
  config.filter = "orders.eu.>";
  expect_wire(Frame{4, CreateGroup{"orders", "eu", {StartKind::earliest, 0}, config}},
              "40 00 00 00  13 00  00 00  04 00 00 00"
              "06 00 6f 72 64 65 72 73"
              "02 00 65 75"
              "00  00 00 00 00 00 00 00 00"
              "00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00"
              "00 00 00 00"
              "00 00"
              "0b 00 6f 72 64 65 72 73 2e 65 75 2e 3e",
              2);
}

TEST(DocExample, PublishOk) {
  expect_wire(Frame{2, PublishOk{{PublishResult{Errc::ok, false, 42}}}},
              "17 00 00 00  06 80  00 00  02 00 00 00"
              "01 00 00 00"
              "00 00  00  2a 00 00 00 00 00 00 00");
}

TEST(DocExample, Error) {
  expect_wire(Frame{2, ErrorReply{Errc::topic_not_found, "topic not found"}},
              "1b 00 00 00  00 80  00 00  02 00 00 00"
              "0c 00"
              "0f 00 74 6f 70 69 63 20 6e 6f 74 20 66 6f 75 6e 64");
}

TEST(DocExample, SettleAckOfOneRun) {
  expect_wire(Frame{3, Settle{7, SettleAction::ack, false, 0, {OffsetRun{5, 5}}}},
              "26 00 00 00  11 00  00 00  03 00 00 00"
              "07 00 00 00 00 00 00 00"
              "00  00  00 00 00 00"
              "01 00 00 00"
              "05 00 00 00 00 00 00 00  05 00 00 00");
}

TEST(DocExample, SettleOk) {
  expect_wire(Frame{3, SettleOk{5, 0}},
              "10 00 00 00  11 80  00 00  03 00 00 00"
              "05 00 00 00  00 00 00 00");
}

TEST(DocExample, AlterTopic) {
  // Keep at most 1000 messages; max_age and max_bytes unchanged.
  expect_wire(Frame{7, AlterTopic{"t", {std::nullopt, std::nullopt, 1000}}},
              "24 00 00 00  20 00  00 00  07 00 00 00"
              "01 00 74  04"
              "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  e8 03 00 00 00 00 00 00");
}

TEST(DocExample, Backup) {
  expect_wire(Frame{8, Backup{"/srv/b1"}},
              "11 00 00 00  21 00  00 00  08 00 00 00"
              "07 00 2f 73 72 76 2f 62 31");
}

}  // namespace
}  // namespace loft::protocol
