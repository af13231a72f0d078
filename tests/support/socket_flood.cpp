#include "socket_flood.hpp"

#include <sys/resource.h>
#include <sys/socket.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>

namespace loft::testing {

namespace asio = boost::asio;
using asio::ip::tcp;

std::uint64_t raise_open_files_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) ::getrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur;
}

SocketFlood::SocketFlood(std::uint16_t port, std::size_t count, std::chrono::milliseconds timeout,
                         std::string first_bytes)
    : established_(count, false), first_bytes_(std::move(first_bytes)) {
  const tcp::endpoint endpoint(asio::ip::address_v4::loopback(), port);
  sockets_.reserve(count);
  for (std::size_t i = 0; i < count; ++i) sockets_.emplace_back(io_);
  const auto fail = [this](const boost::system::error_code& ec) {
    if (first_error_.empty()) first_error_ = ec.message();
  };
  for (std::size_t i = 0; i < count; ++i) {
    sockets_[i].async_connect(endpoint, [this, i, fail](boost::system::error_code ec) {
      if (ec) return fail(ec);
      if (first_bytes_.empty()) {
        established_[i] = true;
        ++connected_;
        return;
      }
      asio::async_write(sockets_[i], asio::buffer(first_bytes_),
                        [this, i, fail](boost::system::error_code e, std::size_t) {
                          if (e) return fail(e);
                          established_[i] = true;
                          ++connected_;
                        });
    });
  }
  // Returns when every handler has run (nothing else is queued), or at the deadline.
  io_.run_for(timeout);
}

SocketFlood::~SocketFlood() { close(); }

std::size_t SocketFlood::closed_by_peer() {
  std::size_t closed = 0;
  for (std::size_t i = 0; i < sockets_.size(); ++i) {
    if (!established_[i] || !sockets_[i].is_open()) continue;
    char byte = 0;
    const auto n = ::recv(sockets_[i].native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) ++closed;
  }
  return closed;
}

void SocketFlood::close() {
  boost::system::error_code ignored;
  for (auto& s : sockets_) s.close(ignored);
}

}  // namespace loft::testing
