#pragma once
// The byte stream of one connection (module-private to net): plain TCP, or TLS over TCP.
//
// Plaintext reads and writes are the socket calls they always were, behind one branch. TLS is
// OpenSSL's (tls::Engine: an SSL from the listener's context over memory buffers), and this
// class moves its bytes: a write encrypts a whole batch of frames and sends the records with
// one socket write per kSendChunk (Asio's ssl::stream sent every 16 KiB record with a system
// call of its own, and woke the client once per record); a read takes what the socket has in
// one call and decrypts all of it that fits the caller's buffer, the rest on the next call
// without a system call. Socket-level calls (shutdown, cancel, close, available,
// remote_endpoint) act on the TCP socket.
//
// Io thread only. One read (the session's reader) and one write (its writer) may be in flight
// at a time, as on a socket. The TLS handshake (the reader's, before any write) must complete
// before either; after it the reader never writes to the socket: what OpenSSL produces while
// reading (an alert) leaves with the next write or the shutdown. The shutdown is the writer's,
// once reading has stopped; it cancels a read still pending so that it alone reads the socket.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstddef>
#include <memory>
#include <span>
#include <tuple>
#include <vector>

#include "loft/tls/engine.hpp"

namespace loft::net {

// The completion token of net's coroutines: IO errors come back as values.
inline constexpr auto kUseTuple = boost::asio::as_tuple(boost::asio::use_awaitable);

class Stream {
 public:
  using Tcp = boost::asio::ip::tcp::socket;
  using IoResult = std::tuple<boost::system::error_code, std::size_t>;
  template <class T>
  using Awaitable = boost::asio::awaitable<T>;

  explicit Stream(Tcp socket);
  // TLS (the server's side) with `context`, which the stream keeps alive (a reload swaps the
  // listener's context, not this one's).
  Stream(Tcp socket, std::shared_ptr<boost::asio::ssl::context> context);
  Stream(Stream&&) noexcept;
  Stream& operator=(Stream&&) = delete;
  ~Stream();

  bool secure() const { return tls_ != nullptr; }
  Tcp& socket() { return socket_; }
  const Tcp& socket() const { return socket_; }
  // The TLS connection's SSL (for the peer's certificate); null without TLS.
  SSL* ssl();

  auto get_executor() { return socket_.get_executor(); }

  // Some bytes into `buffer` (0 only for an empty buffer); an error at the end of the stream.
  Awaitable<IoResult> read_some(boost::asio::mutable_buffer buffer) {
    if (tls_) return tls_read_some(buffer);
    return socket_.async_read_some(buffer, kUseTuple);
  }
  // All of `buffers` (as asio::async_write); n counts plaintext bytes. `buffers` must outlive
  // the operation.
  Awaitable<IoResult> write(const std::vector<boost::asio::const_buffer>& buffers) {
    if (tls_) return tls_write(buffers);
    return boost::asio::async_write(socket_, buffers, kUseTuple);
  }

  // TLS only (REQUIRES: secure()).
  // The server's side of the handshake; an error (with the alert sent that tells the client
  // why) when it fails or the socket does. Bounded by whoever cancels the socket.
  Awaitable<boost::system::error_code> handshake();
  // Our close_notify, then the client's (application data that arrives meanwhile is dropped
  // by OpenSSL), until the client's arrives, the stream ends or the socket is cancelled.
  Awaitable<void> shutdown();

  // Over TLS, records leave in socket writes of about this much (8 records of 16 KiB), and a
  // larger buffer is encrypted this much at a time (the output never holds much more).
  static constexpr std::size_t kSendChunk = 128 << 10;

 private:
  struct Tls;

  Awaitable<IoResult> tls_read_some(boost::asio::mutable_buffer buffer);
  Awaitable<IoResult> tls_write(std::span<const boost::asio::const_buffer> buffers);
  // One socket read of up to `max` bytes, fed to the engine.
  Awaitable<boost::system::error_code> fill(std::size_t max);
  // Sends all the engine's output, kSendChunk per socket write.
  Awaitable<boost::system::error_code> flush();

  Tcp socket_;
  std::unique_ptr<Tls> tls_;
};

}  // namespace loft::net
