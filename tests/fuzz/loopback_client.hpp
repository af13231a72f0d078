#pragma once
// The client half of the fuzz targets that feed a server in this process over loopback TCP
// (connection_fuzz, nats_session_fuzz): connect, send an input while reading what the server
// sends, half-close, read until the server closes. Every wait is bounded by kDeadline; a
// failure names itself on stderr and traps, as a fuzz target fails.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace loft::fuzz {

inline void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz target: %s\n", what);
  __builtin_trap();
}

inline constexpr std::chrono::milliseconds kDeadline{20'000};  // generous: ASan, a loaded machine

// Waits until `fd` has one of `events` and returns what it has; fails the run if nothing
// happens within kDeadline. A signal is not a timeout: libFuzzer's -timeout watchdog is a
// SIGALRM every half timeout, and when it lands on this thread poll() returns EINTR.
inline short wait_for(int fd, short events) {
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

// A connection to 127.0.0.1:port, with TCP_NODELAY (each send its own segment).
inline int connect_to(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  check(fd >= 0, "socket() failed");
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
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

// Sends `input` on a fresh connection while reading what the server sends (a server stops
// reading a client that does not read), then half-closes and reads until the server closes;
// returns what it sent. The first `piecewise` bytes go `piece` bytes per send().
inline std::string exchange(std::uint16_t port, std::string_view input, std::size_t piece = 0,
                            std::size_t piecewise = 0) {
  const int fd = connect_to(port);
  std::string replies;
  std::vector<char> buf(std::size_t{64} << 10);
  std::size_t sent = 0;
  bool write_open = true;
  for (;;) {
    if (write_open && sent == input.size()) {
      ::shutdown(fd, SHUT_WR);
      write_open = false;
    }
    const short ready = wait_for(fd, static_cast<short>(POLLIN | (write_open ? POLLOUT : 0)));
    if (ready & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // closed (or reset after a fatal error)
      replies.append(buf.data(), static_cast<std::size_t>(n));
    }
    if (write_open && (ready & POLLOUT)) {
      const std::size_t chunk = piece > 0 && sent < piecewise ? piece : input.size();
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
  return replies;
}

}  // namespace loft::fuzz
