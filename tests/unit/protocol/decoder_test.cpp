#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "loft/protocol/codec.hpp"
#include "sample_frames.hpp"

namespace loft::protocol {
namespace {

// Frames above this size skip the quadratic tests (they get sampled ones instead).
constexpr std::size_t kBigFrame = std::size_t{64} * 1024;

using testing::sample_frames;

constexpr std::uint32_t kMax = 16 * 1024 * 1024;

std::span<const char> as_span(const std::string& s, std::size_t from = 0,
                              std::size_t n = std::string::npos) {
  const auto sub = std::string_view(s).substr(from, n);
  return {sub.data(), sub.size()};
}

// Feeds `wire` to a fresh decoder in the pieces `cuts` gives and returns every frame it yields.
std::vector<Frame> decode_in_pieces(const std::string& wire, const std::vector<std::size_t>& cuts) {
  Decoder d{kMax};
  std::vector<Frame> out;
  std::size_t from = 0;
  auto drain = [&] {
    for (;;) {
      auto r = d.next();
      EXPECT_TRUE(r) << r.error().to_string();
      if (!r || !r->has_value()) return;
      out.push_back(std::move(**r));
    }
  };
  for (const auto cut : cuts) {
    d.feed(as_span(wire, from, cut - from));
    drain();
    from = cut;
  }
  d.feed(as_span(wire, from));
  drain();
  EXPECT_EQ(d.buffered(), 0u);
  return out;
}

TEST(Decoder, AcceptsEveryFrameSplitAtEveryByte) {
  for (const auto& frame : sample_frames()) {
    const auto wire = encode(frame);
    if (wire.size() > kBigFrame) continue;  // the megabyte frames get random splits below
    Decoder d{kMax};
    for (std::size_t i = 0; i + 1 < wire.size(); ++i) {
      d.feed(as_span(wire, i, 1));
      const auto r = d.next();
      ASSERT_TRUE(r) << r.error().to_string();
      ASSERT_FALSE(r->has_value()) << "complete after " << i + 1 << " of " << wire.size();
    }
    d.feed(as_span(wire, wire.size() - 1, 1));
    const auto r = d.next();
    ASSERT_TRUE(r) << r.error().to_string();
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ(**r, frame);
    EXPECT_EQ(d.buffered(), 0u);
  }
}

TEST(Decoder, AcceptsEveryFrameSplitInTwoAtEveryPoint) {
  for (const auto& frame : sample_frames()) {
    const auto wire = encode(frame);
    if (wire.size() > kBigFrame) continue;
    for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
      const auto frames = decode_in_pieces(wire, {cut});
      ASSERT_EQ(frames.size(), 1u) << "cut at " << cut;
      EXPECT_EQ(frames[0], frame);
    }
  }
}

// Decodes `wire` cut at random points and checks it yields `frames`.
void random_splits(const std::vector<Frame>& frames, const std::string& wire, int rounds) {
  std::mt19937_64 rng(12345);
  for (int round = 0; round < rounds; ++round) {
    std::uniform_int_distribution<std::size_t> pick(0, wire.size());
    std::vector<std::size_t> cuts(1 + rng() % 200);
    for (auto& c : cuts) c = pick(rng);
    std::sort(cuts.begin(), cuts.end());
    const auto got = decode_in_pieces(wire, cuts);
    ASSERT_EQ(got, frames) << "round " << round;
  }
}

TEST(Decoder, AcceptsAStreamOfAllFramesAtRandomSplitPoints) {
  // Fifty rounds over the small frames, three over the stream with the megabyte frame too.
  for (const bool big : {false, true}) {
    std::vector<Frame> frames;
    std::string wire;
    for (const auto& f : sample_frames()) {
      if (!big && encode(f).size() > kBigFrame) continue;
      frames.push_back(f);
      encode(f, wire);
    }
    random_splits(frames, wire, big ? 3 : 50);
  }
}

TEST(Decoder, ReturnsSeveralFramesFromOneFeed) {
  std::string wire;
  for (std::uint32_t i = 0; i < 100; ++i) encode(Frame{i, Ping{}}, wire);
  Decoder d{kMax};
  d.feed(as_span(wire));
  for (std::uint32_t i = 0; i < 100; ++i) {
    auto r = d.next();
    ASSERT_TRUE(r && r->has_value());
    EXPECT_EQ((*r)->correlation_id, i);
  }
  EXPECT_FALSE(d.next().value().has_value());
}

TEST(Decoder, ErrorIsStickyForever) {
  Decoder d{kMax};
  const auto bad = testing::from_hex("04 00 00 00 01 00 00 00 00 00 00 00");
  d.feed(as_span(bad));
  const auto first = d.next();
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().code, Errc::malformed_frame);
  const auto good = encode(Frame{1, Ping{}});
  for (int i = 0; i < 3; ++i) {
    d.feed(as_span(good));
    const auto again = d.next();
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, first.error().code);
    EXPECT_EQ(again.error().detail, first.error().detail);
  }
}

TEST(Decoder, TooLargeFrameFailsAfterTheHeaderAlone) {
  Decoder d{1024};
  // length 1021 -> 1025 bytes; only the 12 header bytes are fed.
  d.feed(as_span(testing::from_hex("fd 03 00 00 06 00 00 00 05 00 00 00")));
  const auto r = d.next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::frame_too_large);
}

TEST(Decoder, FrameOfExactlyMaxSizeIsAccepted) {
  const Frame f{1, Publish{"t", {Message{"", "", {}, std::string(1000, 'x')}}}};
  const auto wire = encode(f);
  Decoder exact{static_cast<std::uint32_t>(wire.size())};
  exact.feed(as_span(wire));
  EXPECT_EQ(exact.next().value(), f);
  Decoder under{static_cast<std::uint32_t>(wire.size() - 1)};
  under.feed(as_span(wire));
  EXPECT_EQ(under.next().error().code, Errc::frame_too_large);
}

TEST(Decoder, BadBodyIsSticky) {
  Decoder d{kMax};
  d.feed(as_span(testing::from_hex("08 00 00 00 09 00 00 00 01 00 00 00")));  // type 9
  EXPECT_EQ(d.next().error().code, Errc::unknown_frame_type);
  EXPECT_EQ(d.next().error().code, Errc::unknown_frame_type);
}

TEST(Decoder, BufferStaysBoundedOnALongStream) {
  // Many frames fed in pieces that never line up with frame boundaries: what the decoder holds
  // never exceeds one partial frame, and it ends empty. (The compaction of its private buffer
  // runs on every feed here; ASan would flag a bad erase.)
  std::string wire;
  for (std::uint32_t i = 0; i < 10'000; ++i) encode(Frame{i, DescribeTopic{"topic-name"}}, wire);
  Decoder d{kMax};
  std::uint32_t next_id = 0;
  for (std::size_t from = 0; from < wire.size(); from += 7) {
    d.feed(as_span(wire, from, 7));
    for (;;) {
      auto r = d.next();
      ASSERT_TRUE(r);
      if (!r->has_value()) break;
      ASSERT_EQ((*r)->correlation_id, next_id++);
    }
    ASSERT_LT(d.buffered(), 64u);
  }
  EXPECT_EQ(next_id, 10'000u);
  EXPECT_EQ(d.buffered(), 0u);
}

// ---- Reading straight into the decoder: prepare() and commit() ----------------------------

// Copies `bytes` into the decoder the way a socket read does: into prepare()'s span, at most
// `read` bytes per call, and returns the frames next() yields after each read.
std::vector<Frame> read_through(Decoder& d, const std::string& wire, std::size_t read) {
  std::vector<Frame> out;
  for (std::size_t from = 0; from < wire.size();) {
    const auto room = d.prepare(read);
    EXPECT_GE(room.size(), read);
    const std::size_t n = std::min({read, room.size(), wire.size() - from});
    std::memcpy(room.data(), wire.data() + from, n);
    d.commit(n);
    from += n;
    for (;;) {
      auto r = d.next();
      EXPECT_TRUE(r) << r.error().to_string();
      if (!r || !r->has_value()) break;
      out.push_back(std::move(**r));
    }
  }
  return out;
}

TEST(Decoder, PrepareCommitSplitAtEveryByte) {
  for (const auto& frame : sample_frames()) {
    const auto wire = encode(frame);
    if (wire.size() > kBigFrame) continue;
    Decoder d{kMax};
    for (std::size_t i = 0; i < wire.size(); ++i) {
      ASSERT_TRUE(d.partial_frame() == (i > 0)) << "after " << i << " bytes";
      const auto room = d.prepare(1);
      ASSERT_GE(room.size(), 1u);
      room[0] = wire[i];
      d.commit(1);
      const auto r = d.next();
      ASSERT_TRUE(r) << r.error().to_string();
      ASSERT_EQ(r->has_value(), i + 1 == wire.size()) << "after " << i + 1 << " bytes";
      if (r->has_value()) {
        EXPECT_EQ(**r, frame);
        EXPECT_EQ(d.last_frame_size(), wire.size());
      }
    }
    EXPECT_FALSE(d.partial_frame());
    EXPECT_EQ(d.buffered(), 0u);
  }
}

TEST(Decoder, PrepareCommitInChunksGivesEveryFrame) {
  std::vector<Frame> frames;
  std::string wire;
  for (const auto& f : sample_frames()) {
    frames.push_back(f);
    encode(f, wire);
  }
  // (Reads of one byte: PrepareCommitSplitAtEveryByte.)
  for (const std::size_t read : {std::size_t{7}, std::size_t{4096}, std::size_t{64} << 10}) {
    Decoder d{kMax};
    EXPECT_EQ(read_through(d, wire, read), frames) << "reads of " << read;
    EXPECT_EQ(d.buffered(), 0u);
  }
}

TEST(Decoder, PrepareMakesRoomForTheWholeFrameOnceItsHeaderIsIn) {
  const Frame big{3, Publish{"t", {Message{"", "", {}, std::string(300'000, 'x')}}}};
  const auto wire = encode(big);
  Decoder d{kMax};
  auto room = d.prepare(64);
  ASSERT_GE(room.size(), 64u);
  std::memcpy(room.data(), wire.data(), 64);
  d.commit(64);
  ASSERT_FALSE(d.next().value().has_value());
  EXPECT_TRUE(d.partial_frame());
  // One read can now bring in the rest of the frame.
  room = d.prepare(16);
  ASSERT_GE(room.size(), wire.size() - 64);
  std::memcpy(room.data(), wire.data() + 64, wire.size() - 64);
  d.commit(wire.size() - 64);
  EXPECT_EQ(d.next().value(), big);
  EXPECT_EQ(d.last_frame_size(), wire.size());
  EXPECT_FALSE(d.partial_frame());
}

TEST(Decoder, PrepareAllocatesNothingForABadHeader) {
  Decoder d{1024};
  // length 0xFFFFFFF0: far over max_frame_size; prepare must not size the buffer by it.
  const auto head = testing::from_hex("f0 ff ff ff 06 00 00 00 2a 00 00 00");
  d.feed(as_span(head));
  EXPECT_FALSE(d.partial_frame());  // next() fails now: nothing more to wait for
  EXPECT_LT(d.prepare(16).size(), std::size_t{1} << 20);
  EXPECT_EQ(d.next().error().code, Errc::frame_too_large);
}

TEST(Decoder, LastFrameSizeIsEachFramesWireSize) {
  const std::vector<Frame> frames = {Frame{1, Ping{}}, Frame{2, DescribeTopic{"orders"}},
                                     Frame{3, Publish{"t", {Message{"id", "", {}, "payload"}}}}};
  std::string wire;
  for (const auto& f : frames) encode(f, wire);
  Decoder d{kMax};
  d.feed(as_span(wire));
  for (const auto& f : frames) {
    auto r = d.next();
    ASSERT_TRUE(r && r->has_value());
    EXPECT_EQ(**r, f);
    EXPECT_EQ(d.last_frame_size(), encode(f).size());
  }
}

TEST(Decoder, PartialFrameOnlyWhileAFrameIsIncomplete) {
  Decoder d{kMax};
  EXPECT_FALSE(d.partial_frame());
  std::string wire = encode(Frame{1, Ping{}});
  const std::string second = encode(Frame{2, DescribeTopic{"t"}});
  wire += second.substr(0, 5);  // a whole frame and the start of the next
  d.feed(as_span(wire));
  EXPECT_FALSE(d.partial_frame());  // the first frame is complete: next() returns it
  ASSERT_TRUE(d.next().value().has_value());
  EXPECT_TRUE(d.partial_frame());
  ASSERT_FALSE(d.next().value().has_value());
  d.feed(as_span(second, 5));
  EXPECT_FALSE(d.partial_frame());
  ASSERT_TRUE(d.next().value().has_value());
  EXPECT_FALSE(d.partial_frame());
}

TEST(Decoder, FailureKeepsTheCorrelationIdOfTheBadHeader) {
  {
    Decoder d{1024};  // frame_too_large, correlation id 0x01020304
    d.feed(as_span(testing::from_hex("fd 03 00 00 06 00 00 00 04 03 02 01")));
    EXPECT_EQ(d.next().error().code, Errc::frame_too_large);
    EXPECT_EQ(d.failed_correlation_id(), 0x01020304u);
  }
  {
    Decoder d{1024};  // length 4 < 8: malformed, correlation id 77
    d.feed(as_span(testing::from_hex("04 00 00 00 01 00 00 00 4d 00 00 00")));
    EXPECT_EQ(d.next().error().code, Errc::malformed_frame);
    EXPECT_EQ(d.failed_correlation_id(), 77u);
  }
  {
    Decoder d{kMax};  // good frames first, then type 9 with correlation id 9000
    std::string wire = encode(Frame{5, Ping{}});
    wire += testing::from_hex("08 00 00 00 09 00 00 00 28 23 00 00");
    d.feed(as_span(wire));
    ASSERT_TRUE(d.next().value().has_value());
    EXPECT_EQ(d.failed_correlation_id(), 0u);
    EXPECT_EQ(d.next().error().code, Errc::unknown_frame_type);
    EXPECT_EQ(d.failed_correlation_id(), 9000u);
  }
}

TEST(Decoder, BufferStaysNearOneReadOnALongStream) {
  // A long-lived connection: 64 KiB reads of many small frames that never line up with the
  // reads. The buffer is compacted, not grown: it stays near one read plus one frame.
  std::string wire;
  for (std::uint32_t i = 0; i < 50'000; ++i) encode(Frame{i, DescribeTopic{"topic-name"}}, wire);
  Decoder d{kMax};
  constexpr std::size_t kRead = 64 << 10;
  std::uint32_t next_id = 0;
  for (std::size_t from = 0; from < wire.size();) {
    const auto room = d.prepare(kRead);
    const std::size_t n = std::min(kRead - 5, wire.size() - from);  // never frame-aligned
    std::memcpy(room.data(), wire.data() + from, n);
    d.commit(n);
    from += n;
    for (;;) {
      auto r = d.next();
      ASSERT_TRUE(r);
      if (!r->has_value()) break;
      ASSERT_EQ((*r)->correlation_id, next_id++);
    }
    ASSERT_LE(d.capacity(), 2 * kRead);
  }
  EXPECT_EQ(next_id, 50'000u);
}

TEST(Decoder, GivesBackALargeBufferOnceTheFrameIsConsumed) {
  const Frame big{1, Publish{"t", {Message{"", "", {}, std::string(6 << 20, 'x')}}}};
  Decoder d{kMax};
  d.feed(as_span(encode(big)));
  EXPECT_GT(d.capacity(), Decoder::kKeepCapacity);
  ASSERT_EQ(d.next().value(), big);
  EXPECT_GE(d.prepare(64 << 10).size(), std::size_t{64} << 10);
  EXPECT_LE(d.capacity(), Decoder::kKeepCapacity);
}

}  // namespace
}  // namespace loft::protocol
