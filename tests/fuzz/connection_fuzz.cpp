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

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "loft/broker/broker.hpp"
#include "loft/broker/groups.hpp"
#include "loft/net/group_runner.hpp"
#include "loft/net/server.hpp"
#include "loft/protocol/codec.hpp"
#include "loft/storage/store.hpp"

namespace {

using namespace loft;

void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "connection_fuzz: %s\n", what);
  __builtin_trap();
}

// The server side, started once: an io thread running the Server, the Broker's own threads.
class Harness {
 public:
  Harness() {
    spdlog::set_level(spdlog::level::off);  // every input ends a connection, many with a warning
    broker::Options bo;
    bo.durability = storage::Durability::os;
    bo.auto_create_topics = true;  // publishes reach the write path without a CREATE_TOPIC
    // Small limits, so inputs of a few KiB reach every limit check.
    bo.message_limits = MessageLimits{.max_message_size = 8 * 1024,
                                      .max_id_size = 64,
                                      .max_key_size = 64,
                                      .max_headers_size = 1024};
    auto b = broker::Broker::open(storage::make_memory_store(), bo);
    check(b.has_value(), "broker did not open");
    broker_ = std::move(*b);
    net::ServerOptions so;
    so.limits.max_frame_size = 64 * 1024;
    so.limits.message = bo.message_limits;
    so.max_inflight_requests = 16;
    so.max_outgoing_bytes = 256 * 1024;
    so.shutdown_timeout = std::chrono::seconds(5);
    groups_ = std::make_unique<broker::Groups>(*broker_, broker::GroupDefaults{}, runner_.poster());
    runner_.attach(*broker_, *groups_);
    server_ = std::make_unique<net::Server>(io_, *broker_, runner_, so);
    port_ = server_->listen("127.0.0.1", 0).port();
    thread_ = std::thread([this] { io_.run(); });
  }

  // Connections the server still holds, read on its own thread.
  std::size_t sessions() {
    std::promise<std::size_t> count;
    boost::asio::post(io_, [&] { count.set_value(server_->session_count()); });
    return count.get_future().get();
  }

  std::uint16_t port() const { return port_; }

 private:
  boost::asio::io_context io_{1};
  std::unique_ptr<broker::Broker> broker_;
  net::GroupRunner runner_{io_};
  std::unique_ptr<broker::Groups> groups_;
  std::unique_ptr<net::Server> server_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

// Never destroyed: libFuzzer ends with exit(), and by then every connection is gone (each
// input waits for that), so the server's threads are idle; it stays reachable, not leaked.
Harness& harness() {
  static Harness* h = new Harness();
  return *h;
}

// A HELLO that offers version 1 only, or versions 1 to 2 (the server then picks 2).
std::string hello_bytes(std::uint16_t max_version) {
  return protocol::encode(protocol::Frame{1, protocol::Hello{1, max_version, "fuzz"}});
}

constexpr std::chrono::milliseconds kDeadline{20'000};  // generous: ASan, a loaded machine

// Waits until `fd` has one of `events` and returns what it has; fails the run if nothing
// happens within kDeadline. A signal is not a timeout: libFuzzer's -timeout watchdog is a
// SIGALRM every half timeout, and when it lands on this thread poll() returns EINTR.
short wait_for(int fd, short events) {
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  for (;;) {
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    check(left.count() > 0, "the server neither read nor closed in time");
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n == 1) return p.revents;
    check(n == 0 || errno == EINTR, "poll() failed");
  }
}

int connect_to(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  check(fd >= 0, "socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    // Interrupted by a signal, the connection goes on being made: wait for its outcome.
    check(errno == EINTR, "the server stopped accepting connections");
    wait_for(fd, POLLOUT);
    int error = 0;
    socklen_t len = sizeof error;
    check(::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) == 0 && error == 0,
          "the server stopped accepting connections");
  }
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string input =
      (data[0] & 1) ? hello_bytes((data[0] & 2) ? protocol::kProtocolVersion : 1) : std::string();
  input.append(reinterpret_cast<const char*>(data + 1), size - 1);

  const int fd = connect_to(harness().port());
  std::string replies;
  char buf[64 * 1024];
  std::size_t sent = 0;
  bool write_open = true;
  // Write the input while reading replies (the server stops reading a client that does not
  // read); after the input, half-close and read until the server closes.
  for (;;) {
    if (write_open && sent == input.size()) {
      ::shutdown(fd, SHUT_WR);
      write_open = false;
    }
    const short ready = wait_for(fd, static_cast<short>(POLLIN | (write_open ? POLLOUT : 0)));
    if (ready & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // closed (or reset after a fatal error)
      replies.append(buf, static_cast<std::size_t>(n));
    }
    if (write_open && (ready & POLLOUT)) {
      const ssize_t n = ::send(fd, input.data() + sent, input.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        write_open = false;  // the server closed its side early: fine after a fatal error
      } else {
        sent += static_cast<std::size_t>(n);
      }
    }
  }
  ::close(fd);
  // The server lets go of the connection (no session outlives its socket).
  for (int waited_ms = 0; harness().sessions() != 0; waited_ms += 1) {
    check(waited_ms < kDeadline.count(), "the server still holds a closed connection");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // polling the server's state
  }

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
