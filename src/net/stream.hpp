#pragma once
// The byte stream of one connection (module-private to net): plain TCP, or TLS over TCP
// (Asio's ssl::stream on OpenSSL). Reads and writes pass straight to the one or the other:
// the plaintext path is the socket call it always was, behind one branch. Socket-level calls
// (shutdown, cancel, close, available, remote_endpoint) act on the TCP socket underneath.
//
// Io thread only. A TLS stream allows one read and one write in flight at a time, as a socket
// does; its handshake() must complete before either.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <memory>
#include <optional>

namespace loft::net {

class Stream {
 public:
  using Tcp = boost::asio::ip::tcp::socket;
  using Tls = boost::asio::ssl::stream<Tcp>;

  explicit Stream(Tcp socket) : plain_(std::move(socket)) {}
  // TLS with `context`, which the stream keeps alive (a reload swaps the listener's context,
  // not this one's).
  Stream(Tcp socket, std::shared_ptr<boost::asio::ssl::context> context)
      : context_(std::move(context)), tls_(std::in_place, std::move(socket), *context_) {}

  bool secure() const { return tls_.has_value(); }
  // The TCP socket (the lowest layer of a TLS stream).
  Tcp& socket() { return tls_ ? tls_->next_layer() : *plain_; }
  const Tcp& socket() const { return tls_ ? tls_->next_layer() : *plain_; }
  // REQUIRES: secure().
  Tls& tls() { return *tls_; }
  SSL* ssl() { return tls_ ? tls_->native_handle() : nullptr; }

  auto get_executor() { return socket().get_executor(); }

  template <class Buffers, class Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    if (tls_) return tls_->async_read_some(buffers, std::forward<Token>(token));
    return plain_->async_read_some(buffers, std::forward<Token>(token));
  }
  // All of `buffers` (asio::async_write).
  template <class Buffers, class Token>
  auto async_write(const Buffers& buffers, Token&& token) {
    if (tls_) return boost::asio::async_write(*tls_, buffers, std::forward<Token>(token));
    return boost::asio::async_write(*plain_, buffers, std::forward<Token>(token));
  }

 private:
  std::optional<Tcp> plain_;
  std::shared_ptr<boost::asio::ssl::context> context_;
  std::optional<Tls> tls_;
};

}  // namespace loft::net
