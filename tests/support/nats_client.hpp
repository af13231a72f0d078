#pragma once
// Test-only: a small blocking NATS client over a raw TCP socket, for tests of loftd's NATS port
// (and, pointed at a nats-server, of what the reference sends). It sends exactly the bytes it
// is told to (helpers encode the common ops) and reads what the server sends as events: INFO,
// MSG, HMSG, +OK, -ERR, PING, PONG, or the close. Every read waits with poll and a deadline,
// so nothing here can hang.

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

struct ssl_ctx_st;
struct ssl_st;

namespace loft::testing {

struct NatsEvent {
  enum class Kind { info, msg, ok, err, ping, pong, closed, timeout, garbage };
  Kind kind = Kind::timeout;
  std::string text;  // INFO: the JSON; -ERR: the text between the quotes; garbage: the line
  // MSG and HMSG:
  std::string subject;
  std::string sid;
  std::string reply;
  std::string headers;  // HMSG: the whole header block; MSG: empty
  std::string payload;
  bool hmsg = false;
};
std::string_view to_string(NatsEvent::Kind kind);

// TLS for a NatsConnection: after INFO, the client's TLS handshake (OpenSSL, blocking with a
// timeout), as NATS clients do when INFO says tls_required.
struct NatsTls {
  std::string ca_file;    // verify the server against it; "" = no verification
  std::string cert_file;  // a client certificate (with key_file), or ""
  std::string key_file;
};

class NatsConnection {
 public:
  static constexpr std::string_view kConnect =
      R"({"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"name":"test"})";

  // Connects to 127.0.0.1:port and reads the INFO line (info() holds its JSON; empty if none
  // came within `timeout`). `receive_buffer` > 0 shrinks the socket's receive buffer (a consumer
  // that should fall behind quickly).
  explicit NatsConnection(std::uint16_t port,
                          std::chrono::milliseconds timeout = std::chrono::seconds(10),
                          int receive_buffer = 0, std::optional<NatsTls> tls = std::nullopt);
  ~NatsConnection();
  NatsConnection(const NatsConnection&) = delete;
  NatsConnection& operator=(const NatsConnection&) = delete;

  bool connected() const { return fd_ >= 0 && !info_.empty() && (!tls_ || ssl_ != nullptr); }
  const std::string& info() const { return info_; }

  bool send(std::string_view bytes);
  // CONNECT `json`, then PING; true when PONG comes back (before any -ERR or close).
  bool handshake(std::string_view json = kConnect);
  bool pub(std::string_view subject, std::string_view payload, std::string_view reply = {});
  bool hpub(std::string_view subject, std::string_view headers, std::string_view payload,
            std::string_view reply = {});
  bool sub(std::string_view subject, std::string_view sid, std::string_view queue = {});
  bool unsub(std::string_view sid, std::optional<std::uint64_t> max = std::nullopt);
  // PING, then waits for its PONG: everything sent before has been handled by the server. The
  // messages that arrive meanwhile are kept for next(). False on -ERR, close or timeout.
  bool flush(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // The next event (kept ones first). With auto_pong (the default) a server PING is answered
  // with PONG and not returned.
  NatsEvent next(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // The next MSG/HMSG, skipping +OK; nullopt on anything else (which `last()` then holds).
  std::optional<NatsEvent> next_msg(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  const NatsEvent& last() const { return last_; }
  // Reads (and drops) until the server closes: true if it did within `timeout`. The -ERR texts
  // seen on the way are in errors_seen().
  bool closed_by_server(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  const std::string& errors_seen() const { return errors_seen_; }
  // The -ERR that comes next (skipping messages, +OK, PONG), then the close: the text, or
  // nullopt if either did not come.
  std::optional<std::string> error_then_close(
      std::chrono::milliseconds timeout = std::chrono::seconds(10));

  void set_auto_pong(bool on) { auto_pong_ = on; }
  // Half-closes the sending side (the server sees EOF); reading still works.
  void shutdown_write();
  void close();

 private:
  // Reads more into buf_ until `deadline`; false on timeout or close (closed_ tells which).
  bool fill(std::chrono::steady_clock::time_point deadline);
  std::optional<NatsEvent> parse();
  // The next event from the socket (not from kept_).
  NatsEvent read_event(std::chrono::steady_clock::time_point deadline);

  bool start_tls(const NatsTls& tls);
  // recv or SSL_read: > 0 bytes, 0 at EOF, < 0 on an error.
  long read_some(char* data, std::size_t size);

  int fd_ = -1;
  bool tls_ = false;
  ssl_ctx_st* context_ = nullptr;
  ssl_st* ssl_ = nullptr;
  bool closed_ = false;
  bool auto_pong_ = true;
  std::string buf_;
  std::string info_;
  std::deque<NatsEvent> kept_;  // read by flush() before its PONG
  NatsEvent last_;
  std::string errors_seen_;
};

}  // namespace loft::testing
