// Runs the decoder fuzz target without libFuzzer: over every sample frame (alone, and all of
// them as one stream) and over seeded random mutations of them (bit flips, truncations,
// insertions, huge length fields). Deterministic, so a failure reproduces.
//   decoder_fuzz_corpus [MUTATIONS]

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "loft/protocol/codec.hpp"
#include "sample_frames.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

void run(const std::string& input) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
}

}  // namespace

int main(int argc, char** argv) {
  const long mutations = argc > 1 ? std::atol(argv[1]) : 20000;
  std::vector<std::string> seeds;
  std::string stream;
  for (const auto& frame : loft::protocol::testing::sample_frames()) {
    seeds.push_back(loft::protocol::encode(frame));
    stream += seeds.back();
  }
  seeds.push_back(stream);
  std::size_t inputs = 0;
  for (const auto& s : seeds) {
    for (char piece = 0; piece < 17; ++piece) {
      run(std::string(1, piece) + s);
      ++inputs;
    }
  }
  std::mt19937_64 rng{2026};
  for (long i = 0; i < mutations; ++i) {
    std::string s = std::string(1, static_cast<char>(rng() % 17)) + seeds[rng() % seeds.size()];
    switch (rng() % 4) {
      case 0:  // flip a few bytes
        for (int k = 0; k < 4; ++k) s[1 + rng() % (s.size() - 1)] ^= static_cast<char>(rng());
        break;
      case 1:  // truncate
        s.resize(1 + rng() % s.size());
        break;
      case 2:  // insert garbage
        s.insert(1 + rng() % (s.size() - 1), std::string(rng() % 16, static_cast<char>(rng())));
        break;
      case 3:  // a huge or tiny length field
        if (s.size() >= 5) {
          const std::uint32_t len = static_cast<std::uint32_t>(rng());
          for (int k = 0; k < 4; ++k) s[1 + k] = static_cast<char>(len >> (8 * k));
        }
        break;
    }
    run(s);
    ++inputs;
  }
  std::printf("decoder fuzz corpus: %zu inputs, no crash, every frame round-trips\n", inputs);
  return 0;
}
