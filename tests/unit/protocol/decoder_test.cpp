#include <gtest/gtest.h>

#include <algorithm>
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

}  // namespace
}  // namespace loft::protocol
