#pragma once
// Test-only: many TCP connections to a server that say nothing (or only a few first bytes) and
// stay open, opened quickly with non-blocking connects from one io_context. For tests of what
// such a flood does to the server: silent sockets that never send HELLO, and, with
// `first_bytes` (say, the start of a TLS ClientHello), sockets stalled in a handshake.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace loft::testing {

// Raises this process's soft RLIMIT_NOFILE to its hard limit (a child such as TestDaemon's
// loftd inherits it); returns the new soft limit.
std::uint64_t raise_open_files_limit();

class SocketFlood {
 public:
  // Opens `count` connections to 127.0.0.1:port and sends each `first_bytes` (if any). Returns
  // once every connect (and write) has completed or failed, or `timeout` has passed.
  SocketFlood(std::uint16_t port, std::size_t count, std::chrono::milliseconds timeout,
              std::string first_bytes = "");
  ~SocketFlood();
  SocketFlood(const SocketFlood&) = delete;
  SocketFlood& operator=(const SocketFlood&) = delete;

  // Connections established (and `first_bytes` written).
  std::size_t connected() const { return connected_; }
  // The first connect or write error, empty if none.
  const std::string& first_error() const { return first_error_; }
  // Of the established connections, how many the server has closed (EOF or reset seen now,
  // without reading any data the server sent).
  std::size_t closed_by_peer();
  // Closes every socket.
  void close();

 private:
  boost::asio::io_context io_;
  std::vector<boost::asio::ip::tcp::socket> sockets_;
  std::vector<bool> established_;
  std::size_t connected_ = 0;
  std::string first_bytes_;
  std::string first_error_;
};

}  // namespace loft::testing
