// libFuzzer target over a whole NATS session: loftd's NATS port (natsport::Server, JetStream
// on) and a Broker with its groups on the memory store run in this process on 127.0.0.1; every
// input is sent on a fresh TCP connection, the client half-closes, and the server must:
// - never crash, over-read or leak (ASan, UBSan, LeakSanitizer);
// - close the connection after the client's end of stream, within a generous deadline;
// - send only well-formed server ops: INFO first (a JSON object), MSG and HMSG whose sizes
//   hold (an HMSG's header block a `NATS/1.0` one), +OK, -ERR '...', PING, PONG, and every
//   JetStream API answer (a payload naming an `io.nats.jetstream.api.v1.` type) valid JSON;
// - release the connection (no session left behind) and keep accepting new ones.
// The first input byte is a control byte:
// - bit 0 sends a CONNECT first (headers and no_responders on);
// - bit 1 then creates the stream FUZZ (subjects fuzz.>) and its durable pull consumer C, and
//   subscribes to _INBOX.fuzz.> (sid 1), so inputs reach publish, MSG.NEXT and $JS.ACK at once;
// - bit 2 sends the first 4 KiB in pieces of 1 to 8 bytes (bits 3-5 + 1), each its own TCP
//   segment, so the session reads ops split at every byte.
// The seeds (tests/fuzz/corpus-nats_session_fuzz) are what nats.js and cnats sent in the
// scenarios of tests/nats, recorded with a loopback proxy, behind a 0 control byte.
//
//   CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DLOFT_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug
//   ninja -C build/fuzz nats_session_fuzz
//   build/fuzz/tests/fuzz/nats_session_fuzz -max_total_time=60 tests/fuzz/corpus-nats_session_fuzz
//
// Without clang, nats_session_fuzz_corpus (a ctest, label fuzz) runs it over the seeds and
// seeded mutations of them.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json/parse.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "loft/broker/broker.hpp"
#include "loft/broker/groups.hpp"
#include "loft/natsport/server.hpp"
#include "loft/net/group_runner.hpp"
#include "loft/storage/store.hpp"

namespace {

using namespace loft;

void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "nats_session_fuzz: %s\n", what);
  __builtin_trap();
}

// The server side, started once: an io thread running the NATS port, the groups' timer and
// the broker's callbacks; the Broker's own threads.
class Harness {
 public:
  Harness() {
    spdlog::set_level(spdlog::level::off);  // many inputs end a connection with a warning
    broker::Options bo;
    bo.durability = storage::Durability::os;
    // Small limits, so inputs of a few KiB reach every limit check.
    bo.message_limits = MessageLimits{.max_message_size = 8 * 1024,
                                      .max_id_size = 64,
                                      .max_key_size = 64,
                                      .max_headers_size = 1024};
    auto b = broker::Broker::open(storage::make_memory_store(), bo);
    check(b.has_value(), "broker did not open");
    broker_ = std::move(*b);
    groups_ = std::make_unique<broker::Groups>(*broker_, broker::GroupDefaults{}, runner_.poster());
    runner_.attach(*broker_, *groups_);
    natsport::ServerOptions so;
    so.max_payload = std::uint64_t{16} << 10;
    so.max_control_line = 1024;
    so.max_outgoing_bytes = std::size_t{256} << 10;
    so.shutdown_timeout = std::chrono::seconds(5);
    so.jetstream.broker = broker_.get();
    so.jetstream.groups = groups_.get();
    so.jetstream.groups_changed = [this] { runner_.arm(); };
    so.jetstream.message_limits = bo.message_limits;
    server_ = std::make_unique<natsport::Server>(io_, std::move(so));
    port_ = server_->listen("127.0.0.1", 0).port();
    thread_ = std::thread([this] { io_.run(); });
  }

  // Connections the server still holds (admitted or pending), read on its own thread.
  std::uint64_t connections() {
    std::promise<std::uint64_t> count;
    boost::asio::post(io_, [&] {
      const auto f = server_->figures();
      count.set_value(f.connections_open + f.connections_pending);
    });
    return count.get_future().get();
  }

  std::uint16_t port() const { return port_; }

 private:
  boost::asio::io_context io_{1};
  std::unique_ptr<broker::Broker> broker_;
  net::GroupRunner runner_{io_};
  std::unique_ptr<broker::Groups> groups_;
  std::unique_ptr<natsport::Server> server_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

// Never destroyed: libFuzzer ends with exit(), and by then every connection is gone (each
// input waits for that), so the server's threads are idle; it stays reachable, not leaked.
Harness& harness() {
  static Harness* h = new Harness();
  return *h;
}

constexpr std::string_view kConnect =
    "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true}\r\n";
// A PUB with its sizes right.
std::string pub(std::string_view subject, std::string_view reply, std::string_view payload) {
  std::string out = "PUB ";
  out += subject;
  out += ' ';
  out += reply;
  out += ' ';
  out += std::to_string(payload.size());
  out += "\r\n";
  out += payload;
  out += "\r\n";
  return out;
}

// Create is idempotent for the same config, so every input may send it again.
const std::string& jetstream_setup() {
  static const std::string kSetup =
      "SUB _INBOX.fuzz.> 1\r\n" +
      pub("$JS.API.STREAM.CREATE.FUZZ", "_INBOX.fuzz.s",
          R"({"name":"FUZZ","subjects":["fuzz.>"]})") +
      pub("$JS.API.CONSUMER.DURABLE.CREATE.FUZZ.C", "_INBOX.fuzz.c",
          R"({"stream_name":"FUZZ","config":{"durable_name":"C","ack_policy":"explicit"}})");
  return kSetup;
}
constexpr std::size_t kPiecewiseBytes = 4096;

constexpr std::chrono::milliseconds kDeadline{20'000};  // generous: ASan, a loaded machine

// Waits until `fd` has one of `events` and returns what it has; fails the run if nothing
// happens within kDeadline. A signal is not a timeout (libFuzzer's -timeout watchdog).
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
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // each piece its own segment
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    check(errno == EINTR, "the server stopped accepting connections");
    wait_for(fd, POLLOUT);
    int error = 0;
    socklen_t len = sizeof error;
    check(::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) == 0 && error == 0,
          "the server stopped accepting connections");
  }
  return fd;
}

std::vector<std::string_view> split_args(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

bool to_size(std::string_view s, std::size_t& out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

// Well-formed JSON. Not checked (yet): that its strings are UTF-8. loft echoes a request's
// subject, any bytes a client sent, into some errors as it is ("unknown JetStream API: ..."),
// which is not UTF-8 when the subject is not.
void check_json_answer(std::string_view payload) {
  if (payload.find("\"io.nats.jetstream.api.v1.") == std::string_view::npos) return;
  boost::json::parse_options options;
  options.allow_invalid_utf8 = true;
  boost::system::error_code ec;
  const auto value = boost::json::parse(payload, ec, {}, options);
  check(!ec && value.is_object(), "a JetStream API answer is not a JSON object");
}

// Everything the server sent parses as server ops. A connection closed hard (a slow consumer)
// may cut the last op short, so an op that runs past the end ends the check.
void check_replies(std::string_view in) {
  bool first = true;
  while (!in.empty()) {
    const auto eol = in.find("\r\n");
    if (eol == std::string_view::npos) return;
    const std::string_view line = in.substr(0, eol);
    in.remove_prefix(eol + 2);
    if (first) {
      check(line.starts_with("INFO {"), "the server's first op is not INFO");
      boost::system::error_code ec;
      const auto info = boost::json::parse(line.substr(5), ec);
      check(!ec && info.is_object(), "INFO is not a JSON object");
      first = false;
      continue;
    }
    if (line == "+OK" || line == "PING" || line == "PONG") continue;
    if (line.starts_with("-ERR ")) {
      check(line.size() >= 7 && line[5] == '\'' && line.back() == '\'', "a malformed -ERR");
      continue;
    }
    const auto args = split_args(line);
    check(!args.empty(), "an empty line from the server");
    std::size_t headers = 0;
    std::size_t total = 0;
    if (args[0] == "MSG") {
      check(args.size() == 4 || args.size() == 5, "MSG with the wrong number of arguments");
      check(to_size(args.back(), total), "MSG with a bad size");
    } else if (args[0] == "HMSG") {
      check(args.size() == 5 || args.size() == 6, "HMSG with the wrong number of arguments");
      check(to_size(args[args.size() - 2], headers) && to_size(args.back(), total) &&
                headers <= total,
            "HMSG with bad sizes");
    } else {
      check(false, "the server sent an op that is not a server op");
    }
    if (in.size() < total + 2) return;  // cut short by a hard close
    const std::string_view block = in.substr(0, headers);
    check(headers == 0 || (block.starts_with("NATS/1.0") && block.ends_with("\r\n\r\n")),
          "an HMSG header block that is not NATS/1.0 ... CRLF CRLF");
    check(in.substr(total, 2) == "\r\n", "a message not followed by CRLF");
    check_json_answer(in.substr(headers, total - headers));
    in.remove_prefix(total + 2);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t control = data[0];
  std::string input;
  if (control & 1) {
    input += kConnect;
    if (control & 2) input += jetstream_setup();
  }
  input.append(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::size_t piece = (control & 4) ? ((control >> 3) & 7) + 1 : input.size();

  const int fd = connect_to(harness().port());
  std::string replies;
  std::vector<char> buf(std::size_t{64} << 10);
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
      const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // closed (or reset after a slow consumer)
      replies.append(buf.data(), static_cast<std::size_t>(n));
    }
    if (write_open && (ready & POLLOUT)) {
      const std::size_t chunk = sent < kPiecewiseBytes ? piece : input.size();
      const ssize_t n =
          ::send(fd, input.data() + sent, std::min(chunk, input.size() - sent), MSG_NOSIGNAL);
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
  for (int waited_ms = 0; harness().connections() != 0; waited_ms += 1) {
    check(waited_ms < kDeadline.count(), "the server still holds a closed connection");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // polling the server's state
  }
  check_replies(replies);
  return 0;
}
