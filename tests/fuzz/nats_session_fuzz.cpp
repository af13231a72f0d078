// libFuzzer target over a whole NATS session: loftd's NATS port (natsport::Server, JetStream
// on) and a Broker with its groups on the memory store run in this process on 127.0.0.1; every
// input is sent on a fresh TCP connection, the client half-closes, and the server must:
// - never crash, over-read or leak (ASan, UBSan, LeakSanitizer);
// - close the connection after the client's end of stream, within a generous deadline;
// - send only well-formed server ops: INFO first (a JSON object), MSG and HMSG whose sizes
//   hold (an HMSG's header block a `NATS/1.0` one), +OK, -ERR '...', PING, PONG, and every
//   JetStream API answer (a payload naming an `io.nats.jetstream.api.v1.` type) well-formed
//   JSON text, valid UTF-8 included (check_json_answer);
// - release the connection (no session left behind) and keep accepting new ones.
// The first input byte is a control byte:
// - bit 0 sends a CONNECT first (headers and no_responders on);
// - bit 1 then creates the stream FUZZ (subjects fuzz.>) and its durable pull consumer C, and
//   subscribes to _INBOX.fuzz.> (sid 1), so inputs reach publish, MSG.NEXT and $JS.ACK at once;
// - bit 2 sends the first 4 KiB in pieces of 1 to 8 bytes (bits 3-5 + 1), each its own TCP
//   segment, so the session reads ops split at every byte.
// The seeds (tests/fuzz/corpus-nats_session_fuzz) are what nats.js and cnats sent in the
// scenarios of tests/nats, recorded with a loopback proxy (record_nats_seeds.mjs), behind a 0
// control byte.
//
//   CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DLOFT_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug
//   ninja -C build/fuzz nats_session_fuzz
//   build/fuzz/tests/fuzz/nats_session_fuzz -max_total_time=60 tests/fuzz/corpus-nats_session_fuzz
//
// Without clang, nats_session_fuzz_corpus (a ctest, label fuzz) runs it over the seeds and
// seeded mutations of them.

#include <boost/json/parse.hpp>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "in_process_broker.hpp"
#include "loft/nats/encode.hpp"
#include "loft/natsport/server.hpp"

namespace {

using namespace loft;
using fuzz::check;

// The server side, made once: the NATS port with JetStream on the in-process broker's io
// thread.
struct Harness {
  Harness() {
    natsport::ServerOptions so;
    so.max_payload = std::uint64_t{16} << 10;
    so.max_control_line = 1024;
    so.max_outgoing_bytes = std::size_t{256} << 10;
    so.shutdown_timeout = std::chrono::seconds(5);
    so.jetstream.broker = &core.broker();
    so.jetstream.groups = &core.groups();
    so.jetstream.groups_changed = [this] { core.runner().arm(); };
    so.jetstream.message_limits = fuzz::InProcessBroker::kLimits;
    server = std::make_unique<natsport::Server>(core.io(), std::move(so));
    port = server->listen("127.0.0.1", 0).port();
    core.run();
  }
  // Connections the server holds, admitted or pending (on the io thread).
  std::size_t connections() const {
    const auto f = server->figures();
    return f.connections_open + f.connections_pending;
  }
  fuzz::InProcessBroker core;
  std::unique_ptr<natsport::Server> server;
  std::uint16_t port = 0;
};

// Never destroyed (see InProcessBroker).
Harness& harness() {
  static Harness* h = new Harness();
  return *h;
}

// CONNECT (headers, no_responders); with `jetstream` also the stream FUZZ, its consumer C and
// the inbox subscription. Creating them again is idempotent, so every input may send them.
std::string preamble(bool jetstream) {
  std::string out;
  nats::append_connect(out,
                       R"({"verbose":false,"pedantic":false,"headers":true,"no_responders":true})");
  if (!jetstream) return out;
  nats::append_sub(out, "_INBOX.fuzz.>", "", "1");
  nats::append_pub(out, "$JS.API.STREAM.CREATE.FUZZ", "_INBOX.fuzz.s",
                   R"({"name":"FUZZ","subjects":["fuzz.>"]})");
  nats::append_pub(
      out, "$JS.API.CONSUMER.DURABLE.CREATE.FUZZ.C", "_INBOX.fuzz.c",
      R"({"stream_name":"FUZZ","config":{"durable_name":"C","ack_policy":"explicit"}})");
  return out;
}

constexpr std::size_t kPiecewiseBytes = 4096;

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

// Well-formed JSON text, valid UTF-8 included (Boost.JSON's parser refuses invalid UTF-8 in
// strings): loft echoes client bytes (a subject, a name) into some answers, made valid first.
void check_json_answer(std::string_view payload) {
  if (payload.find("\"io.nats.jetstream.api.v1.") == std::string_view::npos) return;
  boost::system::error_code ec;
  const auto value = boost::json::parse(payload, ec);
  check(!ec && value.is_object(), "a JetStream API answer is not valid JSON text (an object)");
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
  std::string input = (control & 1) ? preamble((control & 2) != 0) : std::string();
  input.append(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::size_t piece = (control & 4) ? ((control >> 3) & 7) + 1 : 0;
  const std::string replies = fuzz::exchange(harness().port, input, piece, kPiecewiseBytes);
  // The server lets go of the connection (no session outlives its socket).
  harness().core.wait_released([] { return harness().connections(); });
  check_replies(replies);
  return 0;
}
