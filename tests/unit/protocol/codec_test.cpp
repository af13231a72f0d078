#include "loft/protocol/codec.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <set>
#include <stdexcept>
#include <string>

#include "sample_frames.hpp"

namespace loft::protocol {
namespace {

using ::testing::HasSubstr;
using testing::sample_frames;

constexpr std::uint32_t kMax = 16 * 1024 * 1024;
constexpr std::size_t kRetentionBlockSize = 1 + 3 * 8;  // mask + three limits

std::span<const char> as_span(const std::string& s) { return {s.data(), s.size()}; }

// Decodes one complete frame from `wire`, which must hold exactly that frame.
Result<Frame> decode_frame(const std::string& wire, std::uint16_t version = kProtocolVersion) {
  auto header = decode_header(as_span(wire), kMax);
  if (!header) return tl::unexpected(header.error());
  if (wire.size() != std::size_t{header->length} + 4) {
    return fail(Errc::malformed_frame, "test: wire size does not match length");
  }
  auto body = decode_body(*header, as_span(wire).subspan(kHeaderSize), version);
  if (!body) return tl::unexpected(body.error());
  return Frame{header->correlation_id, std::move(*body)};
}

// The body bytes of an encoded frame, and its header.
std::string body_of(const Frame& f, std::uint16_t version = kProtocolVersion) {
  return encode(f, version).substr(kHeaderSize);
}
FrameHeader header_of(const Frame& f, std::uint16_t version = kProtocolVersion) {
  return peek_header(as_span(encode(f, version)));
}

Result<Body> decode(const FrameHeader& h, const std::string& body,
                    std::uint16_t version = kProtocolVersion) {
  return decode_body(h, as_span(body), version);
}

TEST(Codec, SampleFramesCoverEveryBodyType) {
  std::set<std::size_t> seen;
  for (const auto& f : sample_frames()) seen.insert(f.body.index());
  EXPECT_EQ(seen.size(), std::variant_size_v<Body>);
}

TEST(Codec, RoundTripsEveryFrame) {
  for (const auto& frame : sample_frames()) {
    SCOPED_TRACE(testing::to_hex(encode(frame).substr(0, 64)));
    const auto wire = encode(frame);
    const auto decoded = decode_frame(wire);
    ASSERT_TRUE(decoded) << decoded.error().to_string();
    EXPECT_EQ(*decoded, frame);
    EXPECT_EQ(encode(*decoded), wire);  // decode then encode gives the same bytes
  }
}

TEST(Codec, HeaderFieldsAreLittleEndian) {
  const auto wire = encode(Frame{0x04030201, Ping{}});
  EXPECT_EQ(testing::to_hex(wire), "08 00 00 00 08 00 00 00 01 02 03 04");
  const auto h = decode_header(as_span(wire), kMax);
  ASSERT_TRUE(h);
  EXPECT_EQ(*h, (FrameHeader{8, 0x0008, 0, 0x04030201}));
}

TEST(Codec, EncodeAppendsToExistingBuffer) {
  std::string out = "prefix";
  encode(Frame{1, Ping{}}, out);
  encode(Frame{2, Pong{}}, out);
  EXPECT_EQ(out.substr(0, 6), "prefix");
  EXPECT_EQ(out.substr(6), encode(Frame{1, Ping{}}) + encode(Frame{2, Pong{}}));
}

TEST(Codec, TypeOfMatchesEncodedType) {
  for (const auto& f : sample_frames()) {
    EXPECT_EQ(header_of(f).type, static_cast<std::uint16_t>(type_of(f.body)));
  }
  EXPECT_EQ(type_of(Body{Publish{}}), FrameType::publish);
  EXPECT_EQ(type_of(Body{ErrorReply{}}), FrameType::error);
  EXPECT_EQ(type_of(Body{Pong{}}), FrameType::pong);
}

TEST(Codec, IsFatalForFrameErrorsAndConnectionLimits) {
  for (std::uint16_t v = 0; v < 200; ++v) {
    const auto code = static_cast<Errc>(v);
    EXPECT_EQ(is_fatal(code), (v >= 1 && v <= 5) || (v >= 30 && v <= 33)) << v;
  }
}

TEST(Codec, EncodedSizeMatchesFetchOkFrame) {
  for (const auto& f : sample_frames()) {
    const auto* ok = std::get_if<FetchOk>(&f.body);
    if (ok == nullptr) continue;
    std::size_t expected = kFetchOkBaseSize;
    for (const auto& m : ok->messages) expected += encoded_size(m);
    EXPECT_EQ(encode(f).size(), expected);
  }
}

TEST(Codec, EncodedSizeMatchesDeliverFrame) {
  int checked = 0;
  for (const auto& f : sample_frames()) {
    const auto* d = std::get_if<Deliver>(&f.body);
    if (d == nullptr) continue;
    std::size_t expected = deliver_base_size(d->topic, d->group);
    for (const auto& m : d->messages) expected += encoded_size(m);
    EXPECT_EQ(encode(f).size(), expected);
    ++checked;
  }
  EXPECT_GE(checked, 2);
  static_assert(deliver_base_size("", "") == kHeaderSize + 8 + 2 + 2 + 4);
}

// Views of a DeliveredMessage's message, and the headers they point into.
StoredMessageView view_of(const DeliveredMessage& m, std::vector<HeaderView>& headers) {
  headers.clear();
  for (const auto& h : m.message.headers) headers.push_back({h.name, h.value});
  return StoredMessageView{
      Offset{m.offset}, m.timestamp_ms,    m.message.id,      m.message.key,
      headers,          m.message.payload, m.message.subject, m.message.deliver_at_ms};
}

// A DeliverWriter makes byte for byte the frame encode() makes of the same Deliver, sizes
// included, frame after frame, and set_correlation_id gives it the subscription's id.
TEST(DeliverWriter, WritesTheFramesEncodeWrites) {
  int checked = 0;
  for (const std::uint16_t version : {1, 2, 3, 4}) {
    for (const auto& f : sample_frames()) {
      const auto* d = std::get_if<Deliver>(&f.body);
      if (d == nullptr || d->messages.empty()) continue;
      DeliverWriter w{d->subscription, d->topic, d->group, version};
      std::vector<HeaderView> headers;
      for (int round = 0; round < 2; ++round) {  // the second frame after take()
        EXPECT_EQ(w.size(), deliver_base_size(d->topic, d->group));
        for (const auto& m : d->messages) {
          const auto v = view_of(m, headers);
          EXPECT_EQ(w.encoded_size(v), encoded_size(m, version));
          w.add(m.attempt, v);
        }
        EXPECT_EQ(w.count(), d->messages.size());
        auto frame = w.take();
        EXPECT_EQ(w.count(), 0u);
        EXPECT_EQ(frame, encode(Frame{0, *d}, version));
        set_correlation_id(frame, f.correlation_id);
        EXPECT_EQ(frame, encode(f, version));
      }
      ++checked;
    }
  }
  EXPECT_GE(checked, 4);
}

TEST(DeliverWriter, RefusesAMessageIdLongerThanTheWireAllows) {
  DeliverWriter w{1, "t", "g"};
  StoredMessageView fine;
  fine.offset = Offset{4};
  fine.payload = "ok";
  w.add(1, fine);
  const std::string id(70'000, 'i');
  StoredMessageView v;
  v.id = id;
  v.payload = "not sent";
  const auto size = w.size();
  EXPECT_THROW(w.add(1, v), std::length_error);
  // The frame is as before the failed add: still one whole message.
  EXPECT_EQ(w.size(), size);
  EXPECT_EQ(w.count(), 1u);
  DeliveredMessage sent{4, 1, 0, Message{}};
  sent.message.payload = "ok";
  EXPECT_EQ(w.take(), encode(Frame{0, Deliver{1, "t", "g", {sent}}}));
}

TEST(Codec, NewTypesHaveTheirDocumentedNumbers) {
  EXPECT_EQ(type_of(Body{Subscribe{}}), static_cast<FrameType>(0x0010));
  EXPECT_EQ(type_of(Body{ResetGroup{}}), static_cast<FrameType>(0x0017));
  EXPECT_EQ(type_of(Body{SubscribeOk{}}), static_cast<FrameType>(0x8010));
  EXPECT_EQ(type_of(Body{ResetGroupOk{}}), static_cast<FrameType>(0x8017));
  EXPECT_EQ(type_of(Body{Deliver{}}), static_cast<FrameType>(0x4001));
  // Every request's reply is the request's type with the high bit set.
  const std::vector<std::pair<Body, Body>> pairs = {
      {Subscribe{}, SubscribeOk{}},       {Settle{}, SettleOk{}},
      {Unsubscribe{}, UnsubscribeOk{}},   {CreateGroup{}, CreateGroupOk{}},
      {ListGroups{}, ListGroupsOk{}},     {DescribeGroup{}, DescribeGroupOk{}},
      {DeleteGroup{}, DeleteGroupOk{}},   {ResetGroup{}, ResetGroupOk{}},
      {AlterTopic{}, AlterTopicOk{}},     {Backup{}, BackupOk{}},
      {Authenticate{}, AuthenticateOk{}},
  };
  EXPECT_EQ(type_of(Body{Authenticate{}}), static_cast<FrameType>(0x0030));
  EXPECT_EQ(type_of(Body{AlterTopic{}}), static_cast<FrameType>(0x0020));
  EXPECT_EQ(type_of(Body{Backup{}}), static_cast<FrameType>(0x0021));
  for (const auto& [req, rep] : pairs) {
    EXPECT_EQ(static_cast<std::uint16_t>(type_of(rep)),
              static_cast<std::uint16_t>(type_of(req)) | 0x8000u);
  }
}

TEST(Codec, EncodeThrowsWhenAFieldDoesNotFitItsPrefix) {
  EXPECT_THROW(
      encode(Frame{1, CreateTopic{std::string(65536, 'a'), 0, DedupConflict::duplicate, {}}}),
      std::length_error);
  Message m;
  m.id = std::string(65536, 'i');
  EXPECT_THROW(encode(Frame{1, Publish{"t", {m}}}), std::length_error);
  m.id.clear();
  m.headers = {{std::string(65536, 'n'), ""}};
  EXPECT_THROW(encode(Frame{1, Publish{"t", {m}}}), std::length_error);
  std::string out = "keep";
  EXPECT_THROW(encode(Frame{1, DescribeTopic{std::string(70000, 'a')}}, out), std::length_error);
}

TEST(Codec, EncodeCutsLongTextFields) {
  const auto wire = encode(Frame{1, ErrorReply{Errc::internal_error, std::string(70000, 'x')}});
  const auto decoded = decode_frame(wire);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(std::get<ErrorReply>(decoded->body).message, std::string(65535, 'x'));
}

TEST(Codec, UnknownErrorCodesDecodeAsInternalError) {
  auto body = body_of(Frame{1, ErrorReply{Errc::ok, "m"}});
  body[0] = static_cast<char>(0xE7);  // 999
  body[1] = 0x03;
  const auto decoded = decode(FrameHeader{0, 0x8000, 0, 1}, body);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(std::get<ErrorReply>(*decoded).code, Errc::internal_error);
}

TEST(Codec, ReceiversIgnoreHeaderFlags) {
  auto wire = encode(Frame{7, Ping{}});
  wire[6] = static_cast<char>(0xFF);
  wire[7] = static_cast<char>(0xFF);
  const auto decoded = decode_frame(wire);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(*decoded, (Frame{7, Ping{}}));
}

// ---------------------------------------------------------------------------------------------
// decode_header

TEST(DecodeHeader, RejectsLengthBelowEight) {
  for (std::uint32_t len = 0; len < 8; ++len) {
    std::string wire = encode(Frame{1, Ping{}});
    wire[0] = static_cast<char>(len);
    const auto h = decode_header(as_span(wire), kMax);
    ASSERT_FALSE(h);
    EXPECT_EQ(h.error().code, Errc::malformed_frame);
    EXPECT_THAT(h.error().detail, HasSubstr("frame length " + std::to_string(len)));
  }
}

TEST(DecodeHeader, FrameSizeLimitCountsTheLengthPrefix) {
  // length 92 -> a frame of 96 bytes.
  const auto wire = testing::from_hex("5c 00 00 00 06 00 00 00 09 00 00 00");
  EXPECT_TRUE(decode_header(as_span(wire), 96));
  const auto h = decode_header(as_span(wire), 95);
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().code, Errc::frame_too_large);
  EXPECT_THAT(h.error().detail, HasSubstr("96"));
  EXPECT_EQ(peek_header(as_span(wire)).correlation_id, 9u);
}

TEST(DecodeHeader, HugeLengthIsTooLargeWithoutOverflow) {
  const auto wire = testing::from_hex("ff ff ff ff 06 00 00 00 2a 00 00 00");
  const auto h = decode_header(as_span(wire), 0xFFFFFFFF);
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().code, Errc::frame_too_large);
  EXPECT_EQ(peek_header(as_span(wire)), (FrameHeader{0xFFFFFFFF, 6, 0, 42}));
}

TEST(DecodeHeader, ShortInputIsMalformedNotARead) {
  const std::string wire(11, '\0');
  const auto h = decode_header(as_span(wire), kMax);
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().code, Errc::malformed_frame);
}

// ---------------------------------------------------------------------------------------------
// decode_body: malformed input

TEST(DecodeBody, UnknownTypeFails) {
  for (const std::uint16_t type :
       {0x0000, 0x0009, 0x000F, 0x0018, 0x4000, 0x4002, 0x7FFF, 0x8009, 0x8018, 0xC001, 0xFFFF}) {
    const auto r = decode(FrameHeader{8, type, 0, 1}, "");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::unknown_frame_type);
    EXPECT_THAT(r.error().detail, HasSubstr(std::to_string(type)));
  }
}

TEST(DecodeBody, TruncationAtEveryLengthIsMalformed) {
  for (const auto& frame : sample_frames()) {
    const auto body = body_of(frame);
    const auto header = header_of(frame);
    // A CREATE_TOPIC that ends before its retention block, or (version 3) before its
    // retention mode, is an older layout, and valid.
    const auto* create = std::get_if<CreateTopic>(&frame.body);
    const std::size_t without_mode = create ? body.size() - 1 : std::size_t{0} - 1;
    const std::size_t without_retention =
        create ? without_mode - kRetentionBlockSize : std::size_t{0} - 1;
    // Every length for small bodies; for the megabyte ones, the boundaries and a stride.
    const std::size_t step = body.size() < 4096 ? 1 : body.size() / 40;
    for (std::size_t n = 0; n < body.size(); n += (n < 64 || n + 64 > body.size()) ? 1 : step) {
      if (n == without_retention || n == without_mode) continue;
      const auto r = decode(header, body.substr(0, n));
      ASSERT_FALSE(r) << "type " << header.type << " decoded from " << n << " of " << body.size();
      EXPECT_EQ(r.error().code, Errc::malformed_frame);
    }
  }
}

TEST(DecodeBody, TrailingBytesAreMalformed) {
  for (const auto& frame : sample_frames()) {
    const auto r = decode(header_of(frame), body_of(frame) + '\0');
    ASSERT_FALSE(r) << "type " << header_of(frame).type;
    EXPECT_EQ(r.error().code, Errc::malformed_frame);
    EXPECT_THAT(r.error().detail, HasSubstr("1 trailing bytes"));
  }
}

TEST(DecodeBody, TruncatedPayloadNamesTheMessage) {
  Publish p{"t", {Message{}, Message{}, Message{}, Message{"", "", {}, std::string(900, 'p')}}};
  const Frame f{1, p};
  auto body = body_of(f);
  body.resize(body.size() - 888);
  const auto r = decode(header_of(f), body);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().detail, "publish: message 3 payload length 900 exceeds remaining 12 bytes");
}

TEST(DecodeBody, HugeCountsFailBeforeAllocating) {
  // Each count replaced by 0xFFFFFFFF (or 0xFFFF for header counts) in an otherwise valid body.
  struct Case {
    Frame frame;
    std::size_t count_at;  // byte offset of the count in the body
    std::size_t width;
    std::string detail;
  };
  const std::vector<Case> cases = {
      {{1, ListTopicsOk{}}, 0, 4, "list_topics_ok: topic count 4294967295 needs at least"},
      {{1, Publish{"t", {}}}, 3, 4, "publish: message count 4294967295 needs at least"},
      {{1, PublishOk{}}, 0, 4, "publish_ok: result count 4294967295 needs at least"},
      {{1, FetchOk{}}, 16, 4, "fetch_ok: message count 4294967295 needs at least"},
      {{1, Publish{"t", {Message{}}}}, 11, 2, "publish: message 0 header count 65535 needs"},
      {{1, Deliver{7, "t", "g", {}}}, 14, 4, "deliver: message count 4294967295 needs at least"},
      {{1, Settle{7, SettleAction::ack, false, 0, {}}}, 14, 4, "settle: run count 4294967295"},
      {{1, ListGroupsOk{}}, 0, 4, "list_groups_ok: group count 4294967295 needs at least"},
      {{1, DescribeGroupOk{GroupInfo{}}},
       76,
       4,
       "describe_group_ok: backoff delay count 4294967295"},
      {{1, DescribeGroupOk{GroupInfo{}}}, 82, 4, "describe_group_ok: consumer count 4294967295"},
      {{1, Subscribe{"t", "g", {}, 0, {}}}, 35, 4, "subscribe: backoff delay count 4294967295"},
      {{1, ListGroupsOk{{GroupInfo{}}}}, 4 + 82, 4, "list_groups_ok: group 0 consumer count"},
  };
  const auto check = [](const std::vector<Case>& list, std::uint16_t version) {
    for (const auto& c : list) {
      auto body = body_of(c.frame, version);
      for (std::size_t i = 0; i < c.width; ++i) body[c.count_at + i] = static_cast<char>(0xFF);
      const auto r = decode(header_of(c.frame, version), body, version);
      ASSERT_FALSE(r) << c.detail;
      EXPECT_EQ(r.error().code, Errc::malformed_frame);
      EXPECT_THAT(r.error().detail, HasSubstr(c.detail));
    }
  };
  // The offsets are version 1's; version 2 moves what follows a subject or a filter by 2.
  check(cases, 1);
  check({{{1, Publish{"t", {Message{}}}}, 13, 2, "publish: message 0 header count 65535 needs"},
         {{1, DescribeGroupOk{GroupInfo{}}}, 84, 4, "describe_group_ok: consumer count 4294967295"},
         {{1, ListGroupsOk{{GroupInfo{}}}}, 4 + 84, 4, "list_groups_ok: group 0 consumer count"}},
        2);
}

TEST(DecodeBody, UnknownDedupConflictModeIsMalformed) {
  // dedup_conflict follows the name "t" (3 bytes) and one u64 (CREATE_TOPIC) or six.
  for (const auto& [f, at] :
       {std::pair{Frame{1, CreateTopic{"t", 1'000, DedupConflict::error, {}}}, std::size_t{3 + 8}},
        std::pair{Frame{1, DescribeTopicOk{TopicInfo{.name = "t"}}}, std::size_t{3 + 6 * 8}}}) {
    auto body = body_of(f);
    body[at] = '\x02';
    const auto r = decode(header_of(f), body);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::malformed_frame);
    EXPECT_THAT(r.error().detail, HasSubstr("dedup_conflict"));
  }
}

TEST(DecodeBody, CreateTopicWithoutTheRetentionBlockSetsNoLimits) {
  const Frame f{1, CreateTopic{"t", 1'000, DedupConflict::error, {5, 6, 7}}};
  auto body = body_of(f);
  body.resize(body.size() - kRetentionBlockSize - 1);  // and version 3's retention mode
  const auto r = decode(header_of(f), body);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(std::get<CreateTopic>(*r), (CreateTopic{"t", 1'000, DedupConflict::error, {}}));
}

TEST(DecodeBody, RetentionMaskReservedBitsAndUnsetNonZeroLimitsAreMalformed) {
  const Frame f{1, AlterTopic{"t", {std::nullopt, 9, std::nullopt}}};
  const auto good = body_of(f);
  const std::size_t mask_at = 3;  // after the name "t"
  auto reserved = good;
  reserved[mask_at] = static_cast<char>(0x0A);
  auto r = decode(header_of(f), reserved);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().detail, HasSubstr("reserved bits"));
  auto unset = good;
  unset[mask_at + 1] = '\x01';  // max_age_ms is not in the mask but not 0
  r = decode(header_of(f), unset);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::malformed_frame);
  EXPECT_THAT(r.error().detail, HasSubstr("max_age_ms is 1 but not set"));
}

TEST(DecodeBody, CountOneMoreThanPresentIsMalformed) {
  const Frame f{1, ListTopicsOk{{TopicInfo{.name = "a"}, TopicInfo{.name = "b"}}}};
  auto body = body_of(f);
  body[0] = 3;
  const auto r = decode(header_of(f), body);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::malformed_frame);
}

TEST(DecodeBody, HugeLengthsAreMalformed) {
  // publish "t" with one empty message (version 1): 01 00 74 | 01 00 00 00 | id 00 00 |
  // key 00 00 | header count 00 00 | payload length 00 00 00 00.
  const FrameHeader h{0, 0x0006, 0, 1};
  const auto decode = [](const FrameHeader& header, const std::string& body) {
    return decode_body(header, as_span(body), 1);
  };
  const auto ok = testing::from_hex("01 00 74 01 00 00 00 00 00 00 00 00 00 00 00 00 00");
  ASSERT_TRUE(decode(h, ok));
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"ff ff 74 01 00 00 00 00 00 00 00 00 00 00 00 00 00", "publish: topic length 65535"},
      {"01 00 74 01 00 00 00 ff ff 00 00 00 00 00 00 00 00", "publish: message 0 id length 65535"},
      {"01 00 74 01 00 00 00 00 00 ff ff 00 00 00 00 00 00", "publish: message 0 key length 65535"},
      {"01 00 74 01 00 00 00 00 00 00 00 00 00 ff ff ff ff",
       "publish: message 0 payload length 4294967295 exceeds remaining 0 bytes"},
  };
  for (const auto& [hex, detail] : bad) {
    const auto r = decode(h, testing::from_hex(hex));
    ASSERT_FALSE(r) << hex;
    EXPECT_EQ(r.error().code, Errc::malformed_frame);
    EXPECT_THAT(r.error().detail, HasSubstr(detail));
  }
  // A header value length of 0xFFFFFFFF.
  const auto hv =
      testing::from_hex("01 00 74 01 00 00 00 00 00 00 00 01 00 01 00 6e ff ff ff ff 00 00 00 00");
  const auto r = decode(h, hv);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().detail,
              HasSubstr("publish: message 0 header 0 value length 4294967295 exceeds remaining"));
}

TEST(DecodeBody, ReservedPublishResultFlagsAreMalformed) {
  const Frame f{1, PublishOk{{{Errc::ok, false, 1}, {Errc::ok, false, 2}}}};
  const auto good = body_of(f);
  for (int flags = 0; flags < 256; ++flags) {
    auto body = good;
    body[4 + 11 + 2] = static_cast<char>(flags);  // second result's flags byte
    const auto r = decode(header_of(f), body);
    if (flags <= 1) {
      ASSERT_TRUE(r);
      EXPECT_EQ(std::get<PublishOk>(*r).results[1].duplicate, flags == 1);
    } else {
      ASSERT_FALSE(r) << flags;
      EXPECT_EQ(r.error().code, Errc::malformed_frame);
      EXPECT_THAT(r.error().detail, HasSubstr("result 1 flags"));
    }
  }
}

// Every value of one byte of an otherwise valid body: values 0..max decode to `accepted(v)`,
// the rest are malformed with a detail containing `detail`.
template <class Check>
void expect_byte_range(const Frame& f, std::size_t at, int max, const std::string& detail,
                       Check accepted) {
  const auto good = body_of(f);
  ASSERT_LT(at, good.size());
  for (int v = 0; v < 256; ++v) {
    auto body = good;
    body[at] = static_cast<char>(v);
    const auto r = decode(header_of(f), body);
    if (v <= max) {
      ASSERT_TRUE(r) << detail << " " << v << ": " << r.error().to_string();
      accepted(*r, v);
    } else {
      ASSERT_FALSE(r) << detail << " " << v;
      EXPECT_EQ(r.error().code, Errc::malformed_frame);
      EXPECT_THAT(r.error().detail, HasSubstr(detail));
    }
  }
}

TEST(DecodeBody, StartKindMustBeDefined) {
  // topic "orders" (8 bytes) and group "billing" (9 bytes), then the start kind.
  expect_byte_range(Frame{1, Subscribe{"orders", "billing", {}, 0, {}}}, 17, 3,
                    "subscribe: start kind", [](const Body& b, int v) {
                      EXPECT_EQ(std::get<Subscribe>(b).start.kind, static_cast<StartKind>(v));
                    });
  expect_byte_range(Frame{1, CreateGroup{"orders", "billing", {}, {}}}, 17, 3,
                    "create_group: start kind", [](const Body& b, int v) {
                      EXPECT_EQ(std::get<CreateGroup>(b).start.kind, static_cast<StartKind>(v));
                    });
  expect_byte_range(Frame{1, ResetGroup{"orders", "billing", {}}}, 17, 3, "reset_group: start kind",
                    [](const Body& b, int v) {
                      EXPECT_EQ(std::get<ResetGroup>(b).to.kind, static_cast<StartKind>(v));
                    });
}

TEST(DecodeBody, SettleActionMustBeDefined) {
  expect_byte_range(Frame{1, Settle{7, SettleAction::ack, false, 0, {{1, 1}}}}, 8, 3,
                    "settle: action", [](const Body& b, int v) {
                      EXPECT_EQ(std::get<Settle>(b).action, static_cast<SettleAction>(v));
                    });
}

TEST(DecodeBody, StallReasonMustBeDefined) {
  GroupInfo g;
  g.consumers = {{1, "a", 2, 3, StallReason::none}, {4, "b", 5, 6, StallReason::none}};
  const Frame f{1, DescribeGroupOk{g}};
  // The second consumer's `stalled` is the last byte before `skipped` (u64), held_back (u64)
  // and an empty blocking_key (u16): 0 to 4 (key_blocked) in version 3.
  expect_byte_range(f, body_of(f).size() - 1 - 8 - 8 - 2, 4,
                    "describe_group_ok: consumer 1 stalled", [](const Body& b, int v) {
                      EXPECT_EQ(std::get<DescribeGroupOk>(b).group.consumers[1].stalled,
                                static_cast<StallReason>(v));
                    });
}

TEST(DecodeBody, BooleansMustBeZeroOrOne) {
  expect_byte_range(
      Frame{1, SubscribeOk{7, false, 9}}, 8, 1, "subscribe_ok: created is",
      [](const Body& b, int v) { EXPECT_EQ(std::get<SubscribeOk>(b).created, v == 1); });
  expect_byte_range(Frame{1, Settle{7, SettleAction::nack, false, 0, {}}}, 9, 1,
                    "settle: confirm is",
                    [](const Body& b, int v) { EXPECT_EQ(std::get<Settle>(b).confirm, v == 1); });
}

// ---------------------------------------------------------------------------------------------
// Versions 1 and 2

// At version 1 every frame has the layout it always had: a subject or filter in the frame is
// left out, and what decodes is the frame without them.
TEST(Version1, RoundTripsEveryFrameWithoutSubjectsAndFilters) {
  int dropped = 0;
  for (const auto& frame : sample_frames()) {
    const auto v1 = testing::as_version_1(frame);
    if (!(v1 == frame)) ++dropped;
    const auto wire = encode(frame, 1);
    EXPECT_EQ(wire, encode(v1, 1));
    const auto decoded = decode_frame(wire, 1);
    ASSERT_TRUE(decoded) << decoded.error().to_string();
    EXPECT_EQ(*decoded, v1);
    EXPECT_EQ(encode(*decoded, 1), wire);
  }
  EXPECT_GE(dropped, 8);  // the samples do carry subjects and filters
}

// Version 2 differs from 1 only by a str16 after a message's key (its subject) and one at the
// end of a GroupConfig (its filter): the same frame is exactly 2 bytes more per message and
// per config, plus the subject's and the filter's bytes.
TEST(Version2, AddsASubjectToEachMessageAndAFilterToEachGroupConfig) {
  Message m;
  m.id = "i";
  m.key = "k";
  m.payload = "p";
  m.headers = {{"h", "v"}};
  m.subject = "a.b";
  const Frame publish{1, Publish{"t", {m, Message{}}}};
  const auto v1 = body_of(publish, 1);
  const auto v2 = body_of(publish, 2);
  // topic 3 + count 4 + id 3 + key 3: the subject comes next.
  EXPECT_EQ(v2.substr(0, 13), v1.substr(0, 13));
  EXPECT_EQ(testing::to_hex(v2.substr(13, 5)), "03 00 61 2e 62");
  EXPECT_EQ(v2.size(), v1.size() + 5 + 2);
  GroupConfig config;
  config.filter = "a.*";
  const Frame create{1, CreateGroup{"t", "g", {}, config}};
  const auto c1 = body_of(create, 1);
  const auto c2 = body_of(create, 2);
  EXPECT_EQ(c2.substr(0, c1.size()), c1);
  EXPECT_EQ(testing::to_hex(c2.substr(c1.size())), "03 00 61 2e 2a");
  GroupInfo info;
  info.config = config;
  EXPECT_EQ(body_of(Frame{1, DescribeGroupOk{info}}, 2).size(),
            body_of(Frame{1, DescribeGroupOk{info}}, 1).size() + 5);
}

// Version 2 ends a TopicInfo with the topic's subjects (u16 count, then a str16 each).
TEST(Version2, EndsATopicInfoWithItsSubjects) {
  TopicInfo t;
  t.name = "t";
  t.subjects = {"a.*", "b"};
  const Frame f{1, DescribeTopicOk{t}};
  const auto v1 = body_of(f, 1);
  const auto v2 = body_of(f, 2);
  EXPECT_EQ(v2.substr(0, v1.size()), v1);
  EXPECT_EQ(testing::to_hex(v2.substr(v1.size())), "02 00 03 00 61 2e 2a 01 00 62");
  const auto decoded = decode(header_of(f, 2), v2, 2);
  ASSERT_TRUE(decoded) << decoded.error().to_string();
  EXPECT_EQ(std::get<DescribeTopicOk>(*decoded).topic.subjects, t.subjects);
  auto cut = v2;
  cut.pop_back();
  EXPECT_FALSE(decode(header_of(f, 2), cut, 2));
  auto huge = v2;
  huge[v1.size()] = static_cast<char>(0xFF);
  huge[v1.size() + 1] = static_cast<char>(0xFF);
  const auto r = decode(header_of(f, 2), huge, 2);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().detail, HasSubstr("subject count 65535"));
  // Without subjects a version 2 TopicInfo is 2 bytes more: the minimum a count checks against.
  TopicInfo none;
  EXPECT_EQ(body_of(Frame{1, DescribeTopicOk{none}}, 2).size(),
            body_of(Frame{1, DescribeTopicOk{none}}, 1).size() + 2);
  const Frame list{1, ListTopicsOk{{none}}};
  auto body = body_of(list, 2);
  body[0] = 2;  // two topics announced, one of 77 bytes there
  EXPECT_FALSE(decode(header_of(list, 2), body, 2));
}

// These frames of one version, read as the other, are malformed: the field added in version 2
// shifts what follows, and the body no longer ends where its last field does. (Crafted bytes
// can decode in both layouts; the negotiated version, not the bytes, decides the layout.)
TEST(Version2, AFrameOfTheOtherVersionIsMalformed) {
  Message m;
  m.payload = "p";
  GroupConfig config;
  config.filter = "a.>";
  for (const auto& f : {Frame{1, Publish{"t", {m}}}, Frame{1, CreateGroup{"t", "g", {}, {}}},
                        Frame{1, Subscribe{"t", "g", {}, 0, config}},
                        Frame{1, FetchOk{0, 1, {StoredMessage{Offset{0}, 0, m}}}}}) {
    for (const std::uint16_t written : {1, 2}) {
      const std::uint16_t read = written == 1 ? 2 : 1;
      const auto r = decode(header_of(f, written), body_of(f, written), read);
      ASSERT_FALSE(r) << "type " << header_of(f).type << " written in v" << written;
      EXPECT_EQ(r.error().code, Errc::malformed_frame);
    }
  }
}

// Version 3 differs from 2 only by a u8 retention mode at the end of a TopicInfo and of a
// CREATE_TOPIC (after its retention block, and optional as the block is).
TEST(Version3, EndsATopicInfoAndACreateTopicWithTheRetentionMode) {
  TopicInfo t;
  t.name = "jobs";
  t.retention_mode = RetentionMode::work_queue;
  const Frame f{1, DescribeTopicOk{t}};
  const auto v2 = body_of(f, 2);
  const auto v3 = body_of(f, 3);
  EXPECT_EQ(v3.substr(0, v2.size()), v2);
  EXPECT_EQ(testing::to_hex(v3.substr(v2.size())), "01");
  auto decoded = decode(header_of(f, 3), v3, 3);
  ASSERT_TRUE(decoded) << decoded.error().to_string();
  EXPECT_EQ(std::get<DescribeTopicOk>(*decoded).topic, t);
  decoded = decode(header_of(f, 2), v2, 2);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(std::get<DescribeTopicOk>(*decoded).topic.retention_mode, RetentionMode::limits);
  EXPECT_FALSE(decode(header_of(f, 3), v2, 3)) << "version 3 needs the byte";
  auto bad = v3;
  bad.back() = '\x02';
  const auto r = decode(header_of(f, 3), bad, 3);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::malformed_frame);

  CreateTopic create{"jobs", 0, DedupConflict::duplicate, {}, RetentionMode::work_queue};
  const Frame c{1, create};
  const auto c2 = body_of(c, 2);
  const auto c3 = body_of(c, 3);
  EXPECT_EQ(c3.substr(0, c2.size()), c2);
  EXPECT_EQ(testing::to_hex(c3.substr(c2.size())), "01");
  decoded = decode(header_of(c, 3), c3, 3);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(std::get<CreateTopic>(*decoded), create);
  // A version 3 CREATE_TOPIC may end before the mode (or before the retention block, as in
  // version 2): a `limits` topic.
  for (const auto& body : {c2, c2.substr(0, c2.size() - 25)}) {
    decoded = decode(header_of(c, 3), body, 3);
    ASSERT_TRUE(decoded) << decoded.error().to_string();
    EXPECT_EQ(std::get<CreateTopic>(*decoded).retention_mode, RetentionMode::limits);
  }
  EXPECT_FALSE(decode(header_of(c, 2), c3, 2)) << "version 2 has no such byte";
  bad = c3;
  bad.back() = '\x07';
  EXPECT_FALSE(decode(header_of(c, 3), bad, 3));
}

TEST(Version2, TruncatedSubjectsAndFiltersAreMalformed) {
  Message m;
  m.subject = "orders.eu";
  const Frame publish{1, Publish{"t", {m}}};
  auto body = body_of(publish, 2);
  // topic 3 + count 4 + empty id and key 4: the subject's length.
  ASSERT_EQ(testing::to_hex(body.substr(11, 2)), "09 00");
  body[11] = static_cast<char>(0xFF);
  body[12] = static_cast<char>(0xFF);
  auto r = decode(header_of(publish, 2), body, 2);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().detail, HasSubstr("publish: message 0 subject length 65535 exceeds"));
  GroupConfig config;
  config.filter = "x";
  const Frame create{1, CreateGroup{"t", "g", {}, config}};
  body = body_of(create, 2);
  body.pop_back();
  r = decode(header_of(create, 2), body, 2);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().detail, HasSubstr("create_group: filter length 1 exceeds"));
  body.pop_back();
  body.pop_back();  // the filter's length itself cut short
  r = decode(header_of(create, 2), body, 2);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().detail, HasSubstr("filter length needs 2 bytes"));
}

// Counts are checked against version 2's larger minimum sizes (12 bytes a message).
TEST(Version2, CountsUseTheLargerMinimumSizes) {
  const FrameHeader h{0, 0x0006, 0, 1};
  // topic "t", count 2, one empty v2 message (12 bytes): 2 x 12 > 12.
  const auto body = testing::from_hex("01 00 74 02 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00");
  const auto r = decode(h, body, 2);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().detail, HasSubstr("message count 2 needs at least 24 bytes"));
  EXPECT_FALSE(decode(h, body, 1));  // in version 1 a message is 10 bytes at least: 20 > 12
}

TEST(Version2, EncodedSizesFollowTheVersion) {
  for (const std::uint16_t version : {1, 2, 3, 4}) {
    for (const auto& f : sample_frames()) {
      if (const auto* ok = std::get_if<FetchOk>(&f.body)) {
        std::size_t expected = kFetchOkBaseSize;
        for (const auto& m : ok->messages) expected += encoded_size(m, version);
        EXPECT_EQ(encode(f, version).size(), expected) << "v" << version;
      }
      if (const auto* d = std::get_if<Deliver>(&f.body)) {
        std::size_t expected = deliver_base_size(d->topic, d->group);
        for (const auto& m : d->messages) expected += encoded_size(m, version);
        EXPECT_EQ(encode(f, version).size(), expected) << "v" << version;
      }
    }
  }
}

// Version 3 differs from 2 only by ordering (u8) and key_lookahead (u32) at the end of a
// GroupConfig, held_back (u64) and blocking_key (str16) at the end of a GroupInfo, and the
// stall reason key_blocked.
TEST(Version3, AddsOrderingToGroupConfigAndGroupInfo) {
  GroupConfig config;
  config.filter = "a.*";
  config.ordering = Ordering::key;
  config.key_lookahead = 10'000;
  const Frame create{1, CreateGroup{"t", "g", {}, config}};
  const auto c2 = body_of(create, 2);
  const auto c3 = body_of(create, 3);
  EXPECT_EQ(c3.substr(0, c2.size()), c2);
  EXPECT_EQ(testing::to_hex(c3.substr(c2.size())), "01 10 27 00 00");
  const auto decoded = decode(header_of(create, 3), c3, 3);
  ASSERT_TRUE(decoded) << decoded.error().to_string();
  EXPECT_EQ(std::get<CreateGroup>(*decoded).config, config);
  // Version 2 has no field for it: the group it creates is unordered.
  const auto old = decode(header_of(create, 2), c2, 2);
  ASSERT_TRUE(old);
  EXPECT_EQ(std::get<CreateGroup>(*old).config.ordering, Ordering::none);

  GroupInfo info;
  info.config = config;
  info.held_back = 7;
  info.blocking_key = "k1";
  info.consumers.push_back(ConsumerInfo{1, "c", 10, 1, StallReason::key_blocked});
  const Frame described{1, DescribeGroupOk{info}};
  const auto i2 = body_of(described, 2);
  const auto i3 = body_of(described, 3);
  EXPECT_EQ(i3.size(), i2.size() + 5 + 8 + 2 + 2);
  EXPECT_EQ(testing::to_hex(i3.substr(i3.size() - 12)), "07 00 00 00 00 00 00 00 02 00 6b 31");
  const auto back = decode(header_of(described, 3), i3, 3);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(std::get<DescribeGroupOk>(*back).group, info);
  // A version 2 client sees a consumer stalled by key_blocked as not stalled.
  const auto v2 = decode(header_of(described, 2), i2, 2);
  ASSERT_TRUE(v2) << v2.error().to_string();
  EXPECT_EQ(std::get<DescribeGroupOk>(*v2).group.consumers.at(0).stalled, StallReason::none);
  EXPECT_EQ(std::get<DescribeGroupOk>(*v2).group.config.ordering, Ordering::none);
}

TEST(Version3, BadOrderingAndOtherVersionsAreMalformed) {
  GroupConfig config;
  config.ordering = Ordering::key;
  const Frame create{1, CreateGroup{"t", "g", {}, config}};
  auto body = body_of(create, 3);
  body[body.size() - 5] = 2;  // ordering 2 does not exist
  auto r = decode(header_of(create, 3), body, 3);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::malformed_frame);
  EXPECT_THAT(r.error().detail, HasSubstr("ordering"));
  for (const std::uint16_t written : {2, 3}) {
    const std::uint16_t read = written == 2 ? 3 : 2;
    r = decode(header_of(create, written), body_of(create, written), read);
    ASSERT_FALSE(r) << "written in v" << written;
    EXPECT_EQ(r.error().code, Errc::malformed_frame);
  }
}

// ---------------------------------------------------------------------------------------------
// Version 4

// At version 3 every frame has the layout it had: a publish's delay and messages' delivery
// times are left out, and what decodes is the frame without them.
TEST(Version3, RoundTripsEveryFrameWithoutDelays) {
  int dropped = 0;
  for (const auto& frame : sample_frames()) {
    const auto v3 = testing::as_version_3(frame);
    if (!(v3 == frame)) ++dropped;
    const auto wire = encode(frame, 3);
    EXPECT_EQ(wire, encode(v3, 3));
    const auto decoded = decode_frame(wire, 3);
    ASSERT_TRUE(decoded) << decoded.error().to_string();
    EXPECT_EQ(*decoded, v3);
    EXPECT_EQ(encode(*decoded, 3), wire);
  }
  EXPECT_GE(dropped, 5);  // the samples do carry delays and delivery times
}

// Version 4 differs from 3 only by an i64 deliver_at_ms after a message's subject (in PUBLISH,
// FETCH_OK and DELIVER alike) and an i64 delay_ms after a PUBLISH's topic.
TEST(Version4, AddsDeliverAtToEachMessageAndADelayToPublish) {
  Message m;
  m.id = "i";
  m.key = "k";
  m.subject = "a.b";
  m.payload = "p";
  m.deliver_at_ms = 0x0102030405060708;
  const Frame publish{1, Publish{"t", {m, Message{}}, 10'000}};
  const auto v3 = body_of(publish, 3);
  const auto v4 = body_of(publish, 4);
  EXPECT_EQ(v4.size(), v3.size() + 8 + 2 * 8);
  // topic 3, then the delay; count 4 + id 3 + key 3 + subject 5, then the delivery time.
  EXPECT_EQ(v4.substr(0, 3), v3.substr(0, 3));
  EXPECT_EQ(testing::to_hex(v4.substr(3, 8)), "10 27 00 00 00 00 00 00");
  EXPECT_EQ(v4.substr(11, 15), v3.substr(3, 15));
  EXPECT_EQ(testing::to_hex(v4.substr(26, 8)), "08 07 06 05 04 03 02 01");
  auto decoded = decode(header_of(publish, 4), v4, 4);
  ASSERT_TRUE(decoded) << decoded.error().to_string();
  EXPECT_EQ(std::get<Publish>(*decoded), std::get<Publish>(publish.body));

  const Frame fetched{1, FetchOk{0, 1, {StoredMessage{Offset{0}, 5, m}}}};
  EXPECT_EQ(body_of(fetched, 4).size(), body_of(fetched, 3).size() + 8);
  decoded = decode(header_of(fetched, 4), body_of(fetched, 4), 4);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(std::get<FetchOk>(*decoded).messages.at(0).message.deliver_at_ms, m.deliver_at_ms);
  const Frame delivered{1, Deliver{1, "t", "g", {DeliveredMessage{0, 1, 5, m}}}};
  EXPECT_EQ(body_of(delivered, 4).size(), body_of(delivered, 3).size() + 8);

  // A negative delay decodes (the session refuses it with invalid_request, a clear text).
  const Frame negative{1, Publish{"t", {Message{}}, -1}};
  decoded = decode(header_of(negative, 4), body_of(negative, 4), 4);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(std::get<Publish>(*decoded).delay_ms, -1);
}

// Version 4 ends a TopicInfo with the topic's scheduled count (u64).
TEST(Version4, EndsATopicInfoWithItsScheduledCount) {
  TopicInfo t;
  t.name = "t";
  t.scheduled = 0x0102;
  const Frame f{1, DescribeTopicOk{t}};
  const auto v3 = body_of(f, 3);
  const auto v4 = body_of(f, 4);
  EXPECT_EQ(v4.substr(0, v3.size()), v3);
  EXPECT_EQ(testing::to_hex(v4.substr(v3.size())), "02 01 00 00 00 00 00 00");
  const auto decoded = decode(header_of(f, 4), v4, 4);
  ASSERT_TRUE(decoded) << decoded.error().to_string();
  EXPECT_EQ(std::get<DescribeTopicOk>(*decoded).topic, t);
  EXPECT_FALSE(decode(header_of(f, 4), v3, 4)) << "version 4 needs the count";
  EXPECT_FALSE(decode(header_of(f, 3), v4, 3)) << "version 3 has no such field";
  const Frame list{1, ListTopicsOk{{TopicInfo{}}}};
  auto body = body_of(list, 4);
  body[0] = 2;  // two topics announced, one of 86 bytes there
  const auto r = decode(header_of(list, 4), body, 4);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().detail, HasSubstr("needs at least 172 bytes"));
}

// These frames of one version, read as the other, are malformed: the fields version 4 adds
// shift what follows.
TEST(Version4, AFrameOfTheOtherVersionIsMalformed) {
  Message m;
  m.payload = "p";
  m.deliver_at_ms = 1'700'000'000'000;
  for (const auto& f : {Frame{1, Publish{"t", {m}, 5}}, Frame{1, Publish{"t", {m}}},
                        Frame{1, FetchOk{0, 1, {StoredMessage{Offset{0}, 0, m}}}},
                        Frame{1, Deliver{1, "t", "g", {DeliveredMessage{0, 1, 0, m}}}}}) {
    for (const std::uint16_t written : {3, 4}) {
      const std::uint16_t read = written == 3 ? 4 : 3;
      const auto r = decode(header_of(f, written), body_of(f, written), read);
      ASSERT_FALSE(r) << "type " << header_of(f).type << " written in v" << written;
      EXPECT_EQ(r.error().code, Errc::malformed_frame);
    }
  }
}

// A version 4 PUBLISH cut inside its delay or a message's delivery time is malformed, and
// counts are checked against version 4's larger minimum message size (20 bytes).
TEST(Version4, TruncatedDelaysAndCountsAreMalformed) {
  const Frame publish{1, Publish{"t", {Message{}}, 7}};
  const auto body = body_of(publish, 4);
  ASSERT_EQ(body.size(), 3u + 8 + 4 + 20);
  for (const std::size_t cut : {5u, 10u, 22u, 29u}) {
    const auto r = decode(header_of(publish, 4), body.substr(0, cut), 4);
    ASSERT_FALSE(r) << cut;
    EXPECT_EQ(r.error().code, Errc::malformed_frame);
  }
  auto r = decode(header_of(publish, 4), body.substr(0, 10), 4);
  EXPECT_THAT(r.error().detail, HasSubstr("delay_ms"));
  auto two = body;
  two[11] = 2;  // two messages announced, one of 20 bytes there
  r = decode(header_of(publish, 4), two, 4);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().detail, HasSubstr("message count 2 needs at least 40 bytes"));
}

// A PUBLISH's delay becomes a time by the clock it is given (loftd's, on arrival); 0 is no
// delay at all, not "now".
TEST(ResolveDelay, AddsTheDelayToNowAndRefusesNegativeAndOverflowingDelays) {
  constexpr std::int64_t kNow = 1'700'000'000'000;
  EXPECT_EQ(resolve_delay(0, kNow).value(), 0);
  EXPECT_EQ(resolve_delay(1, kNow).value(), kNow + 1);
  EXPECT_EQ(resolve_delay(10'000, kNow).value(), kNow + 10'000);
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ(resolve_delay(kMax - kNow, kNow).value(), kMax);
  auto r = resolve_delay(-1, kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_request);
  EXPECT_THAT(r.error().detail, HasSubstr("delay_ms -1 is negative"));
  r = resolve_delay(kMax - kNow + 1, kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_request);
  EXPECT_THAT(r.error().detail, HasSubstr("overflows"));
  EXPECT_FALSE(resolve_delay(std::numeric_limits<std::int64_t>::min(), kNow));
}

TEST(DecodeBody, EmptyBodiesRejectAnyByte) {
  for (const std::uint16_t type : {0x0003 + 0x8000, 0x0004, 0x0008, 0x8008, 0x8012, 0x8016}) {
    EXPECT_TRUE(decode(FrameHeader{8, type, 0, 1}, ""));
    EXPECT_FALSE(decode(FrameHeader{8, type, 0, 1}, "x"));
  }
}

}  // namespace
}  // namespace loft::protocol

namespace loft::protocol {
namespace {

TEST(Limits, DefaultFrameSize) { EXPECT_EQ(Limits{}.max_frame_size, 16u << 20); }

// A PUBLISH_OK of max_publish_results(m) results is exactly what fits in m bytes.
TEST(Limits, MaxPublishResultsFitInAFrame) {
  for (const std::uint32_t max_frame : {16u, 27u, 28u, 4096u, 16u << 20}) {
    const auto n = max_publish_results(max_frame);
    PublishOk ok;
    ok.results.resize(n);
    EXPECT_LE(encode(Frame{1, ok}).size(), max_frame) << max_frame;
    ok.results.resize(n + 1);
    EXPECT_GT(encode(Frame{1, ok}).size(), max_frame) << max_frame;
  }
}

}  // namespace
}  // namespace loft::protocol
