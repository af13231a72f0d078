// Runs a fuzz target (LLVMFuzzerTestOneInput) without libFuzzer: over every file of the given
// corpus directories as it is (the committed seeds, and every crash found, which stays there as
// a regression test), over every sample frame (alone, and all of them as one stream, behind
// each control byte 0..16) and over seeded random mutations of them (bit flips, truncations,
// insertions, huge length fields). Deterministic, so a failure reproduces. A SIGALRM arrives
// every millisecond throughout, as libFuzzer's -timeout watchdog sends one every half timeout:
// a target must take an interrupted system call (EINTR) for what it is, not for a failure.
//   <target>_corpus [MUTATIONS] [CORPUS_DIR]... [--seeds SEED_DIR...]
// The files of a SEED_DIR are run as they are too, then behind each control byte, and the
// mutations start from them instead of the sample frames (for a target whose input is not
// loft frames: nats_parser_fuzz).
//   <target>_corpus --write-seeds DIR     writes the generated seeds as files (tests/fuzz/corpus)

#include <signal.h>
#include <sys/time.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "loft/protocol/codec.hpp"
#include "sample_frames.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

// A SIGALRM about once per millisecond. The kernel hands a process-wide timer's signal to one
// thread, the main thread first: the one that runs the target and waits on its sockets.
void start_alarms() {
  struct sigaction action {};
  action.sa_handler = [](int) {};
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART, as libFuzzer installs its handler
  sigaction(SIGALRM, &action, nullptr);
  const itimerval every_ms{{0, 1000}, {0, 1000}};
  setitimer(ITIMER_REAL, &every_ms, nullptr);
}

void run(const std::string& input) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
}

// A well-behaved client's requests after the handshake: create, publish, fetch, subscribe,
// settle, describe, in the layouts of `version`. With control byte 1 the connection target
// sends a HELLO of version 1 before it, with control byte 3 one of version 2.
std::string session_stream(std::uint16_t version) {
  using namespace loft::protocol;
  loft::Message m;
  m.id = "id-1";
  m.key = "k";
  m.headers = {{"h", "v"}};
  m.payload = "hello";
  if (version >= 2) m.subject = "t.eu";
  // Version 4: a delayed publish, both forms (a relative delay, an absolute time).
  loft::Message later = m;
  if (version >= 4) later.deliver_at_ms = 1'800'000'000'000;
  std::string out;
  std::uint32_t id = 2;
  for (const Body& body : std::vector<Body>{
           CreateTopic{"t", 0, DedupConflict::duplicate}, Publish{"t", {m, m}},
           Publish{"t", {later}}, Publish{"t", {m}, version >= 4 ? 60'000 : 0},
           Fetch{"t", 0, 10, 0}, Subscribe{"t", "g", {}, 10, {}},
           Settle{1, SettleAction::ack, true, kBackoffDelay, {{0, 1}}}, DescribeGroup{"t", "g"},
           DescribeTopic{"t"}, ListGroups{"t"}, Unsubscribe{1}, Ping{}}) {
    out += encode(Frame{id++, body}, version);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const long mutations = argc > 1 ? std::atol(argv[1]) : 20000;
  std::vector<std::string> seeds;
  std::string stream;
  // Each sample frame in the layouts of both versions (the committed corpus is version 1's),
  // and per version all of them as one stream and a session's requests.
  using loft::protocol::kMinProtocolVersion;
  using loft::protocol::kProtocolVersion;
  for (std::uint16_t v = kMinProtocolVersion; v <= kProtocolVersion; ++v) {
    stream.clear();
    for (const auto& frame : loft::protocol::testing::sample_frames()) {
      seeds.push_back(loft::protocol::encode(frame, v));
      stream += seeds.back();
    }
    seeds.push_back(stream);
    seeds.push_back(session_stream(v));
  }
  if (argc == 3 && std::string(argv[1]) == "--write-seeds") {
    int n = 0;
    for (const auto& seed : seeds) {
      if (seed.size() > 16 * 1024) continue;  // big samples stay generated, not committed
      for (char control : {'\0', '\1'}) {
        std::ofstream(std::filesystem::path(argv[2]) / ("seed-" + std::to_string(n++)),
                      std::ios::binary)
            << control << seed;
      }
    }
    return 0;
  }
  start_alarms();
  std::size_t inputs = 0;
  bool mutate_files = false;
  std::vector<std::string> file_seeds;
  for (int i = 2; i < argc; ++i) {
    if (std::string(argv[i]) == "--seeds") {
      mutate_files = true;
      continue;
    }
    for (const auto& entry : std::filesystem::directory_iterator(argv[i])) {
      std::ifstream in(entry.path(), std::ios::binary);
      std::string input(std::istreambuf_iterator<char>(in), {});
      run(input);
      ++inputs;
      // Without its control byte, as the sample frames are kept.
      if (mutate_files && input.size() > 1) file_seeds.push_back(input.substr(1));
    }
  }
  if (!file_seeds.empty()) {
    std::string all;
    for (const auto& seed : file_seeds) all += seed;
    file_seeds.push_back(all);
    seeds = file_seeds;
  }
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
  std::printf("%s: %zu inputs, no failure\n", argv[0], inputs);
  return 0;
}
