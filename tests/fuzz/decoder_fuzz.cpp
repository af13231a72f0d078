// libFuzzer target over the frame decoder: any bytes, fed in pieces, must give frames or an
// error, never a crash, a hang or an over-read (ASan); and every frame decoded must encode and
// decode again to the same frame. Each input is read in the layouts of every protocol version.
//
//   CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DLOFT_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug
//   ninja -C build/fuzz decoder_fuzz && build/fuzz/tests/fuzz/decoder_fuzz -max_total_time=60
//
// Without clang, decoder_fuzz_corpus (a ctest, label fuzz) runs the same function over seed
// frames and seeded random mutations of them.

#include <cstddef>
#include <cstdint>
#include <span>

#include "loft/protocol/codec.hpp"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace loft::protocol;
  if (size == 0) return 0;
  // The first byte picks how the stream is cut, so splits are explored too.
  const std::size_t piece = data[0] % 17 + 1;
  const auto* bytes = reinterpret_cast<const char*>(data + 1);
  const std::size_t n = size - 1;
  // The same bytes in the layouts of every version (they differ in messages and group configs).
  for (std::uint16_t version = kMinProtocolVersion; version <= kProtocolVersion; ++version) {
    Decoder decoder{1 << 20};
    decoder.set_version(version);
    bool failed = false;
    for (std::size_t at = 0; at < n && !failed; at += piece) {
      decoder.feed(std::span<const char>(bytes + at, std::min(piece, n - at)));
      for (;;) {
        auto next = decoder.next();
        if (!next) {
          failed = true;  // an error: the stream is unusable, as documented
          break;
        }
        if (!next->has_value()) break;
        const Frame& frame = **next;
        const std::string again = encode(frame, version);
        Decoder second{1 << 20};
        second.set_version(version);
        second.feed(again);
        auto round = second.next();
        check(round.has_value() && round->has_value() && **round == frame);
      }
    }
  }
  return 0;
}
