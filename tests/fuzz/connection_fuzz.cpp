// libFuzzer target over a whole connection: the real net::Server and Broker (on the memory
// store) run in this process on 127.0.0.1; every input is sent on a fresh TCP connection, the
// client half-closes, and the server must:
// - never crash, over-read or leak (ASan, UBSan, LeakSanitizer);
// - close the connection after the client's end of stream, within a generous deadline;
// - send only well-formed frames back;
// - release the connection (no session left behind);
// - keep accepting new connections.
// The first input byte is a control byte: bit 0 set sends a valid HELLO first, so the fuzzer
// reaches every request handler without having to discover the handshake; bit 1 makes that
// HELLO offer protocol version 2 (clear: version 1 only, as the committed seeds were written).
//
//   CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DLOFT_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug
//   ninja -C build/fuzz connection_fuzz
//   build/fuzz/tests/fuzz/connection_fuzz -max_total_time=60 tests/fuzz/corpus/connection
//
// Without clang, connection_fuzz_corpus (a ctest, label fuzz) runs it over the committed
// corpus, sample frames and seeded mutations of them.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "in_process_broker.hpp"
#include "loft/net/server.hpp"
#include "loft/protocol/codec.hpp"

namespace {

using namespace loft;
using fuzz::check;

// The server side, made once: loft's protocol Server on the in-process broker's io thread.
struct Harness {
  Harness() {
    net::ServerOptions so;
    so.limits.max_frame_size = 64 * 1024;
    so.limits.message = fuzz::InProcessBroker::kLimits;
    so.max_inflight_requests = 16;
    so.max_outgoing_bytes = std::size_t{256} << 10;
    so.shutdown_timeout = std::chrono::seconds(5);
    server = std::make_unique<net::Server>(core.io(), core.broker(), core.runner(), so);
    port = server->listen("127.0.0.1", 0).port();
    core.run();
  }
  fuzz::InProcessBroker core;
  std::unique_ptr<net::Server> server;
  std::uint16_t port = 0;
};

// Never destroyed (see InProcessBroker).
Harness& harness() {
  static Harness* h = new Harness();
  return *h;
}

// A HELLO that offers version 1 only, or versions 1 to 2 (the server then picks 2).
std::string hello_bytes(std::uint16_t max_version) {
  return protocol::encode(protocol::Frame{1, protocol::Hello{1, max_version, "fuzz"}});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string input =
      (data[0] & 1) ? hello_bytes((data[0] & 2) ? protocol::kProtocolVersion : 1) : std::string();
  input.append(reinterpret_cast<const char*>(data + 1), size - 1);

  // Write the input while reading replies; after the input, half-close and read until the
  // server closes.
  const std::string replies = fuzz::exchange(harness().port, input);
  // The server lets go of the connection (no session outlives its socket).
  harness().core.wait_released([] { return harness().server->session_count(); });

  // Everything the server sent is well-formed frames (a reset may cut the last one short).
  protocol::Decoder decoder{1 << 30};
  decoder.feed(replies);
  for (;;) {
    auto next = decoder.next();
    check(next.has_value(), "the server sent a malformed frame");
    if (!next->has_value()) break;
    // What follows HELLO_OK is in the layouts of the version it names, as a client reads it.
    if (const auto* ok = std::get_if<protocol::HelloOk>(&(**next).body)) {
      decoder.set_version(ok->version);
    }
  }
  return 0;
}
