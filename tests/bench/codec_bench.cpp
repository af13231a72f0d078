// The protocol codec's cost per frame and per message: encode and decode of the frames on the
// hot paths (PUBLISH with a batch, DELIVER with a batch, SETTLE with runs), and the
// incremental decoder fed a stream in pieces as a socket would. Not a test: run it and read
// the numbers (last figures: docs/performance-log.md, "Micro-benchmarks: codec and delivery
// state machine").
//
//   build-release/tests/bench/codec_bench
//
// items/s counts messages (SETTLE: offsets settled); bytes/s counts frame bytes.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "loft/protocol/codec.hpp"
#include "loft/protocol/frames.hpp"

namespace {

using namespace loft;
using namespace loft::protocol;

constexpr std::uint32_t kMaxFrame = 16 * 1024 * 1024;

Message message_of(std::size_t payload_size, std::uint64_t n, bool with_id) {
  Message m;
  m.payload.assign(payload_size, static_cast<char>('a' + n % 26));
  if (with_id) m.id = "producer-0123456789abcdef-" + std::to_string(n);
  return m;
}

// PUBLISH of range(0) messages of range(1) bytes; range(2) != 0 gives each message an id.
Frame publish_frame(const benchmark::State& state) {
  Publish p{"bench", {}};
  for (std::int64_t i = 0; i < state.range(0); ++i) {
    p.messages.push_back(message_of(static_cast<std::size_t>(state.range(1)),
                                    static_cast<std::uint64_t>(i), state.range(2) != 0));
  }
  return Frame{7, std::move(p)};
}

// DELIVER of range(0) messages of range(1) bytes.
Frame deliver_frame(const benchmark::State& state) {
  Deliver d{42, "bench", "workers", {}};
  for (std::int64_t i = 0; i < state.range(0); ++i) {
    const auto offset = static_cast<std::uint64_t>(1'000'000 + i);
    d.messages.push_back(
        DeliveredMessage{offset, 1, 1'700'000'000'000 + i,
                         message_of(static_cast<std::size_t>(state.range(1)), offset, false)});
  }
  return Frame{0, std::move(d)};
}

// SETTLE (ack) of range(0) runs of range(1) offsets each, with a gap between runs (as acks
// that arrive out of order leave them).
Frame settle_frame(const benchmark::State& state) {
  Settle s;
  s.subscription = 42;
  std::uint64_t first = 1'000'000;
  for (std::int64_t i = 0; i < state.range(0); ++i) {
    s.runs.push_back(OffsetRun{first, static_cast<std::uint32_t>(state.range(1))});
    first += static_cast<std::uint64_t>(state.range(1)) + 1;
  }
  return Frame{9, std::move(s)};
}

std::int64_t items_in(const Frame& frame) {
  if (const auto* p = std::get_if<Publish>(&frame.body)) return std::ssize(p->messages);
  if (const auto* d = std::get_if<Deliver>(&frame.body)) return std::ssize(d->messages);
  std::int64_t n = 0;
  for (const auto& run : std::get<Settle>(frame.body).runs) n += run.count;
  return n;
}

void encode_bench(benchmark::State& state, const Frame& frame) {
  std::string out;
  for (auto _ : state) {
    out.clear();  // keeps the capacity, as a session's outgoing buffer does
    encode(frame, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * items_in(frame));
  state.SetBytesProcessed(state.iterations() * std::ssize(out));
}

void decode_bench(benchmark::State& state, const Frame& frame) {
  const std::string wire = encode(frame);
  const std::span<const char> bytes{wire};
  for (auto _ : state) {
    const auto header = decode_header(bytes, kMaxFrame);
    if (!header) {
      state.SkipWithError("decode_header failed");
      break;
    }
    const auto body = decode_body(*header, bytes.subspan(kHeaderSize));
    if (!body) {
      state.SkipWithError("decode_body failed");
      break;
    }
    benchmark::DoNotOptimize(body->index());
  }
  state.SetItemsProcessed(state.iterations() * items_in(frame));
  state.SetBytesProcessed(state.iterations() * std::ssize(wire));
}

void BM_EncodePublish(benchmark::State& s) { encode_bench(s, publish_frame(s)); }
void BM_DecodePublish(benchmark::State& s) { decode_bench(s, publish_frame(s)); }
void BM_EncodeDeliver(benchmark::State& s) { encode_bench(s, deliver_frame(s)); }
void BM_DecodeDeliver(benchmark::State& s) { decode_bench(s, deliver_frame(s)); }
void BM_EncodeSettle(benchmark::State& s) { encode_bench(s, settle_frame(s)); }
void BM_DecodeSettle(benchmark::State& s) { decode_bench(s, settle_frame(s)); }

// A stream of 16 PUBLISH frames (100 x 100 B each) fed to protocol::Decoder in pieces of
// range(0) bytes, taking every complete frame after each piece.
void BM_DecoderFedInPieces(benchmark::State& state) {
  const auto piece = static_cast<std::size_t>(state.range(0));
  Publish p{"bench", {}};
  for (std::uint64_t i = 0; i < 100; ++i) p.messages.push_back(message_of(100, i, false));
  const Frame frame{7, std::move(p)};
  constexpr int kFrames = 16;
  std::string stream;
  for (int i = 0; i < kFrames; ++i) encode(frame, stream);
  for (auto _ : state) {
    Decoder decoder{kMaxFrame};
    int frames = 0;
    for (std::size_t at = 0; at < stream.size(); at += piece) {
      decoder.feed(std::span<const char>{stream}.subspan(at, std::min(piece, stream.size() - at)));
      for (;;) {
        auto next = decoder.next();
        if (!next || !*next) break;
        ++frames;
      }
    }
    if (frames != kFrames) {
      state.SkipWithError("the decoder did not return every frame");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * kFrames * 100);
  state.SetBytesProcessed(state.iterations() * std::ssize(stream));
}

// {messages, payload bytes, with ids}
BENCHMARK(BM_EncodePublish)->Args({100, 100, 0})->Args({100, 100, 1})->Args({1, 100, 0});
BENCHMARK(BM_DecodePublish)->Args({100, 100, 0})->Args({100, 100, 1})->Args({1, 100, 0});
// {messages, payload bytes}
BENCHMARK(BM_EncodeDeliver)->Args({100, 100})->Args({1, 100});
BENCHMARK(BM_DecodeDeliver)->Args({100, 100})->Args({1, 100});
// {runs, offsets per run}: one run of 1000 (in-order acks), 100 single offsets (out of order)
BENCHMARK(BM_EncodeSettle)->Args({1, 1000})->Args({100, 1});
BENCHMARK(BM_DecodeSettle)->Args({1, 1000})->Args({100, 1});
// piece size in bytes: a small read, a TCP segment, a 64 KiB read
BENCHMARK(BM_DecoderFedInPieces)->Arg(64)->Arg(1460)->Arg(64 * 1024);

}  // namespace

BENCHMARK_MAIN();
