#pragma once
// loftd's HTTP endpoint (Boost.Beast): /metrics, /healthz, /readyz, the /v1 JSON API and
// HTTP publish.
//
// Thread: it runs on loftd's single io thread, the one that serves the binary protocol and
// owns the consumer groups, so it reads group state and connection counts without locks or
// posting. Broker completions (publishes) arrive on the writer thread and are posted back.
//
// Lifecycle: listen() binds (throws on failure: a startup error) and accepts until stop(),
// which closes the acceptor and every connection. One coroutine per connection: read a
// request (bounded header and body, a deadline), answer, repeat while keep-alive.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "loft/broker/broker.hpp"
#include "loft/broker/groups.hpp"
#include "loft/http/api.hpp"

namespace loft::http {

struct ServerOptions {
  // A request body may be up to this many bytes (loftd: max_frame_size).
  std::uint32_t max_body_bytes = 16 * 1024 * 1024;
  std::uint32_t max_header_bytes = 16 * 1024;
  // Connections beyond it are closed at once, so idle or slow clients cannot pile up.
  std::size_t max_connections = 64;
  // To read a whole request (or to wait for the next one on a keep-alive connection), and to
  // write a response: a slow or silent client is disconnected after it.
  std::chrono::milliseconds request_timeout{30'000};
  std::string server_name = "loftd";
};

// Where the endpoint's figures come from, all read on the io thread.
struct Sources {
  broker::Broker& broker;
  const broker::Groups& groups;
  std::function<NetFigures()> net;
};

// 200 on /readyz: the broker is running, not stopping, and can take writes.
bool ready(const broker::Broker& broker);

class Connection;

class Server {
 public:
  Server(boost::asio::io_context& io, Sources sources, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port (port 0 = any free port) and starts accepting; returns the bound endpoint.
  boost::asio::ip::tcp::endpoint listen(const std::string& host, std::uint16_t port);
  void stop();

 private:
  friend class Connection;
  boost::asio::awaitable<void> accept_loop();

  boost::asio::io_context& io_;
  Sources sources_;
  ServerOptions options_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::set<std::shared_ptr<Connection>> connections_;
  bool stopping_ = false;
};

}  // namespace loft::http
