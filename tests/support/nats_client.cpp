#include "nats_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <csignal>
#include <vector>

#include "loft/nats/encode.hpp"

namespace loft::testing {

using Clock = std::chrono::steady_clock;

std::string_view to_string(NatsEvent::Kind kind) {
  switch (kind) {
    case NatsEvent::Kind::info:
      return "INFO";
    case NatsEvent::Kind::msg:
      return "MSG";
    case NatsEvent::Kind::ok:
      return "+OK";
    case NatsEvent::Kind::err:
      return "-ERR";
    case NatsEvent::Kind::ping:
      return "PING";
    case NatsEvent::Kind::pong:
      return "PONG";
    case NatsEvent::Kind::closed:
      return "closed";
    case NatsEvent::Kind::timeout:
      return "timeout";
    case NatsEvent::Kind::garbage:
      return "garbage";
  }
  return "?";
}

NatsConnection::NatsConnection(std::uint16_t port, std::chrono::milliseconds timeout,
                               int receive_buffer, std::optional<NatsTls> tls)
    : tls_(tls.has_value()) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return;
  if (receive_buffer > 0) {
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
  }
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close();
    return;
  }
  const auto e = next(timeout);
  if (e.kind == NatsEvent::Kind::info) info_ = e.text;
  if (tls && !info_.empty() && !start_tls(*tls)) close();
}

bool NatsConnection::start_tls(const NatsTls& tls) {
  std::signal(SIGPIPE, SIG_IGN);  // SSL_write to a closed connection
  const timeval timeout{10, 0};   // a blocking handshake cannot hang
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  context_ = SSL_CTX_new(TLS_client_method());
  if (!tls.ca_file.empty()) {
    SSL_CTX_load_verify_locations(context_, tls.ca_file.c_str(), nullptr);
    SSL_CTX_set_verify(context_, SSL_VERIFY_PEER, nullptr);
  }
  if (!tls.cert_file.empty()) {
    SSL_CTX_use_certificate_chain_file(context_, tls.cert_file.c_str());
    SSL_CTX_use_PrivateKey_file(context_, tls.key_file.c_str(), SSL_FILETYPE_PEM);
  }
  ssl_ = SSL_new(context_);
  SSL_set_fd(ssl_, fd_);
  if (SSL_connect(ssl_) != 1) {
    ERR_clear_error();
    SSL_free(ssl_);
    ssl_ = nullptr;
    return false;
  }
  return true;
}

long NatsConnection::read_some(char* data, std::size_t size) {
  if (ssl_ == nullptr) return ::recv(fd_, data, size, 0);  // plaintext, or INFO before TLS
  const int n = SSL_read(ssl_, data, static_cast<int>(size));
  if (n > 0) return n;
  const int error = SSL_get_error(ssl_, n);
  ERR_clear_error();
  if (error == SSL_ERROR_WANT_READ) {
    errno = EAGAIN;
    return -1;
  }
  return error == SSL_ERROR_ZERO_RETURN ? 0 : -2;
}

NatsConnection::~NatsConnection() { close(); }

void NatsConnection::close() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  if (context_ != nullptr) SSL_CTX_free(context_);
  ssl_ = nullptr;
  context_ = nullptr;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void NatsConnection::shutdown_write() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

bool NatsConnection::send(std::string_view bytes) {
  while (!bytes.empty()) {
    if (fd_ < 0) return false;
    const long n = ssl_ != nullptr ? SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()))
                                   : ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool NatsConnection::handshake(std::string_view json) {
  std::string out;
  nats::append_connect(out, json);
  nats::append_ping(out);
  if (!send(out)) return false;
  for (;;) {
    const auto e = next();
    if (e.kind == NatsEvent::Kind::pong) return true;
    if (e.kind != NatsEvent::Kind::ok) return false;
  }
}

bool NatsConnection::pub(std::string_view subject, std::string_view payload,
                         std::string_view reply) {
  std::string out;
  nats::append_pub(out, subject, reply, payload);
  return send(out);
}

bool NatsConnection::hpub(std::string_view subject, std::string_view headers,
                          std::string_view payload, std::string_view reply) {
  std::string out;
  nats::append_hpub(out, subject, reply, headers, payload);
  return send(out);
}

bool NatsConnection::sub(std::string_view subject, std::string_view sid, std::string_view queue) {
  std::string out;
  nats::append_sub(out, subject, queue, sid);
  return send(out);
}

bool NatsConnection::unsub(std::string_view sid, std::optional<std::uint64_t> max) {
  std::string out;
  nats::append_unsub(out, sid, max);
  return send(out);
}

bool NatsConnection::flush(std::chrono::milliseconds timeout) {
  if (!send("PING\r\n")) return false;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto e = read_event(deadline);
    if (e.kind == NatsEvent::Kind::pong) return true;
    if (e.kind != NatsEvent::Kind::msg && e.kind != NatsEvent::Kind::ok) {
      last_ = std::move(e);
      return false;
    }
    kept_.push_back(std::move(e));
  }
}

bool NatsConnection::fill(Clock::time_point deadline) {
  if (fd_ < 0 || closed_) return false;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    // TLS may hold decrypted bytes the socket no longer shows.
    if (ssl_ == nullptr || SSL_pending(ssl_) == 0) {
      pollfd p{fd_, POLLIN, 0};
      const int r = ::poll(&p, 1, static_cast<int>(left));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
    }
    char chunk[65536];
    const long n = read_some(chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      closed_ = true;  // EOF or reset
      return false;
    }
    buf_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
}

namespace {

std::vector<std::string_view> split(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

std::optional<std::size_t> number(std::string_view s) {
  std::size_t n = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc{} || ptr != s.data() + s.size()) return std::nullopt;
  return n;
}

}  // namespace

// One event from the front of buf_, or nullopt when it is not complete yet.
std::optional<NatsEvent> NatsConnection::parse() {
  const auto eol = buf_.find("\r\n");
  if (eol == std::string::npos) return std::nullopt;
  const std::string line = buf_.substr(0, eol);
  NatsEvent e;
  std::size_t used = eol + 2;
  if (line.starts_with("INFO ")) {
    e.kind = NatsEvent::Kind::info;
    e.text = line.substr(5);
  } else if (line == "+OK") {
    e.kind = NatsEvent::Kind::ok;
  } else if (line == "PING") {
    e.kind = NatsEvent::Kind::ping;
  } else if (line == "PONG") {
    e.kind = NatsEvent::Kind::pong;
  } else if (line.starts_with("-ERR '") && line.ends_with("'")) {
    e.kind = NatsEvent::Kind::err;
    e.text = line.substr(6, line.size() - 7);
  } else if (line.starts_with("MSG ") || line.starts_with("HMSG ")) {
    const bool h = line.starts_with("HMSG ");
    const auto args = split(std::string_view(line).substr(h ? 5 : 4));
    const std::size_t sizes = h ? 2 : 1;
    if (args.size() < 2 + sizes || args.size() > 3 + sizes) {
      e.kind = NatsEvent::Kind::garbage;
      e.text = line;
    } else {
      const auto total = number(args.back());
      const auto header = h ? number(args[args.size() - 2]) : std::optional<std::size_t>(0);
      if (!total || !header || *header > *total) {
        e.kind = NatsEvent::Kind::garbage;
        e.text = line;
      } else {
        if (buf_.size() < used + *total + 2) return std::nullopt;
        e.kind = NatsEvent::Kind::msg;
        e.hmsg = h;
        e.subject = args[0];
        e.sid = args[1];
        if (args.size() == 3 + sizes) e.reply = args[2];
        e.headers = buf_.substr(used, *header);
        e.payload = buf_.substr(used + *header, *total - *header);
        if (buf_.compare(used + *total, 2, "\r\n") != 0) {
          e.kind = NatsEvent::Kind::garbage;
          e.text = line;
        }
        used += *total + 2;
      }
    }
  } else {
    e.kind = NatsEvent::Kind::garbage;
    e.text = line;
  }
  buf_.erase(0, used);
  return e;
}

NatsEvent NatsConnection::read_event(Clock::time_point deadline) {
  for (;;) {
    auto e = parse();
    if (e && e->kind == NatsEvent::Kind::ping && auto_pong_) {
      send("PONG\r\n");
      continue;
    }
    if (e) {
      if (e->kind == NatsEvent::Kind::err) errors_seen_ += e->text + "\n";
      return std::move(*e);
    }
    if (!fill(deadline)) {
      NatsEvent none;
      none.kind = closed_ ? NatsEvent::Kind::closed : NatsEvent::Kind::timeout;
      return none;
    }
  }
}

NatsEvent NatsConnection::next(std::chrono::milliseconds timeout) {
  if (!kept_.empty()) {
    last_ = std::move(kept_.front());
    kept_.pop_front();
  } else {
    last_ = read_event(Clock::now() + timeout);
  }
  return last_;
}

std::optional<NatsEvent> NatsConnection::next_msg(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto e = next(std::max(left, std::chrono::milliseconds(0)));
    if (e.kind == NatsEvent::Kind::ok) continue;
    if (e.kind == NatsEvent::Kind::msg) return e;
    return std::nullopt;
  }
}

bool NatsConnection::closed_by_server(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    const auto e = next(std::max(left, std::chrono::milliseconds(0)));
    if (e.kind == NatsEvent::Kind::closed) return true;
    if (e.kind == NatsEvent::Kind::timeout) return false;
  }
}

std::optional<std::string> NatsConnection::error_then_close(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::optional<std::string> error;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    const auto e = next(std::max(left, std::chrono::milliseconds(0)));
    if (e.kind == NatsEvent::Kind::err && !error) error = e.text;
    if (e.kind == NatsEvent::Kind::closed) return error;
    if (e.kind == NatsEvent::Kind::timeout) return std::nullopt;
  }
}

}  // namespace loft::testing
