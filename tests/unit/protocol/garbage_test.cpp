// Random and mutated input must give a value or an error, never a crash, an over-read or a
// huge allocation (this runs under ASan and UBSan).

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "loft/protocol/codec.hpp"
#include "sample_frames.hpp"

namespace loft::protocol {
namespace {

// Frames above this size skip the quadratic tests (they get sampled ones instead).
constexpr std::size_t kBigFrame = std::size_t{64} * 1024;

constexpr std::uint16_t kTypes[] = {
    0x0001, 0x0002, 0x0003, 0x0004, 0x0005, 0x0006, 0x0007, 0x0008, 0x0010, 0x0011, 0x0012, 0x0013,
    0x0014, 0x0015, 0x0016, 0x0017, 0x4001, 0x8000, 0x8001, 0x8002, 0x8003, 0x8004, 0x8005, 0x8006,
    0x8007, 0x8008, 0x8010, 0x8011, 0x8012, 0x8013, 0x8014, 0x8015, 0x8016, 0x8017, 0x1234};

// A decoded value must encode to a body that decodes to the same value.
void check(std::uint16_t type, const std::string& body) {
  const FrameHeader h{static_cast<std::uint32_t>(body.size() + 8), type, 0, 1};
  const auto r = decode_body(h, {body.data(), body.size()});
  if (!r) {
    EXPECT_TRUE(r.error().code == Errc::malformed_frame ||
                r.error().code == Errc::unknown_frame_type);
    return;
  }
  const Frame f{1, *r};
  const auto again = encode(f);
  const auto h2 = peek_header({again.data(), again.size()});
  const auto r2 = decode_body(h2, {again.data() + kHeaderSize, again.size() - kHeaderSize});
  ASSERT_TRUE(r2);
  EXPECT_EQ(*r2, *r);
}

TEST(Garbage, RandomBytesForEveryType) {
  std::mt19937 rng(7);
  for (const auto type : kTypes) {
    for (int i = 0; i < 400; ++i) {
      // Mostly short inputs, so that small counts and lengths sometimes line up.
      const std::size_t n = rng() % (i < 300 ? 48 : 600);
      std::string body(n, '\0');
      for (auto& c : body) c = static_cast<char>(rng() % (i % 2 ? 256 : 4));
      check(type, body);
    }
  }
}

TEST(Garbage, MutatedValidBodies) {
  std::mt19937 rng(11);
  for (const auto& frame : testing::sample_frames()) {
    const auto wire = encode(frame);
    if (wire.size() > kBigFrame) continue;
    const auto type = peek_header({wire.data(), wire.size()}).type;
    const std::string body = wire.substr(kHeaderSize);
    for (int i = 0; i < 300; ++i) {
      auto m = body;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits && !m.empty(); ++e) {
        const auto at = rng() % m.size();
        switch (rng() % 3) {
          case 0:
            m[at] = static_cast<char>(rng());
            break;
          case 1:
            m[at] = static_cast<char>(0xFF);
            break;
          default:
            m.resize(at);
            break;
        }
      }
      check(type, m);
    }
  }
}

TEST(Garbage, RandomStreamThroughDecoder) {
  std::mt19937 rng(3);
  for (int i = 0; i < 300; ++i) {
    Decoder d{1 << 16};
    for (int chunk = 0; chunk < 20; ++chunk) {
      std::string bytes(rng() % 64, '\0');
      for (auto& c : bytes) c = static_cast<char>(rng() % 16);
      d.feed({bytes.data(), bytes.size()});
      const auto r = d.next();
      if (!r) break;
    }
  }
}

}  // namespace
}  // namespace loft::protocol
