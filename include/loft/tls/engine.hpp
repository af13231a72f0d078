#pragma once
// OpenSSL's TLS for one connection, run over memory instead of a socket, so that its owner
// decides how bytes travel: what arrives from the network goes in with feed() and read()
// decrypts it; write() encrypts into an output buffer that take_output() empties, so a whole
// batch of records can leave with one system call (Asio's ssl::stream sends each 16 KiB record
// with a write of its own and wakes the peer once per record).
//
// All of TLS is OpenSSL's: SSL_do_handshake, SSL_read, SSL_write and SSL_shutdown on an SSL
// made from the given context (so its certificates, verification and options apply), over two
// memory BIOs. Nothing of the protocol is done here; the owner only moves bytes.
//
// Not thread-safe: one thread at a time (an io thread, or callers under one lock). Errors are
// reported as Asio reports them for its ssl::stream: error() holds an error_code of Asio's SSL
// category (an OpenSSL error code, so ERR_reason_error_string(value) names it), or
// asio::ssl::error::stream_truncated.

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <span>

typedef struct ssl_st SSL;
typedef struct bio_st BIO;

namespace loft::tls {

class Engine {
 public:
  enum class Role { client, server };
  // What the last step came to.
  enum class Status {
    done,       // complete (read: `out` is full, more may be waiting: call again)
    want_read,  // needs more bytes from the peer: feed() them, then call again
    closed,     // the peer sent close_notify
    failed,     // a TLS error (error() says which); the connection is over
  };
  struct Read {
    std::size_t bytes = 0;  // decrypted into `out`, whatever the status
    Status status = Status::done;
  };

  // An SSL from `context` (which must outlive the engine: OpenSSL keeps a reference to its
  // SSL_CTX, the caller keeps the Asio object alive). Throws std::bad_alloc when OpenSSL cannot
  // allocate it.
  Engine(boost::asio::ssl::context& context, Role role);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // For settings before the handshake (SNI, the name to verify) and reading the peer's
  // certificate after it.
  SSL* native_handle() { return ssl_; }

  // One step of the handshake: done, want_read (flush the output, feed what the peer sends),
  // or failed (flush the output too: it may hold the alert that tells the peer why).
  Status handshake();
  bool handshake_done() const;

  // Bytes received from the network, in order.
  void feed(std::span<const char> ciphertext);
  // Ciphertext fed and not yet decrypted (a partial record).
  std::size_t input_size() const;

  // Decrypts into `out` as much as the fed bytes hold, record after record, until `out` is full
  // (done) or a partial record is left (want_read). REQUIRES: handshake_done().
  Read read(std::span<char> out);

  // Encrypts all of `plaintext` into the output (never partly: the output grows as needed);
  // false on failure (error()). REQUIRES: handshake_done().
  bool write(std::span<const char> plaintext);

  // Ciphertext waiting to be sent.
  std::size_t output_size() const;
  // Moves up to out.size() bytes of it into `out`; returns how many.
  std::size_t take_output(std::span<char> out);

  // Queues our close_notify (want_read until the peer's has been read, done after; failed
  // after an error). Idempotent.
  Status shutdown();

  // Why the last step failed (or closed: asio::error::eof).
  const boost::system::error_code& error() const { return error_; }

 private:
  // Turns the result of an SSL_* call into a Status, setting error_.
  Status status_of(int result);

  SSL* ssl_ = nullptr;
  BIO* network_in_ = nullptr;   // owned by ssl_: what feed() adds, SSL reads
  BIO* network_out_ = nullptr;  // owned by ssl_: what SSL writes, take_output() removes
  boost::system::error_code error_;
};

}  // namespace loft::tls
