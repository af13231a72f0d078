#include "loft/tls/engine.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <climits>
#include <new>

namespace loft::tls {

namespace asio = boost::asio;

namespace {

constexpr std::size_t kMaxCall = INT_MAX;  // BIO_read and BIO_write take an int length

}  // namespace

Engine::Engine(asio::ssl::context& context, Role role) {
  ssl_ = SSL_new(context.native_handle());
  network_in_ = BIO_new(BIO_s_mem());
  network_out_ = BIO_new(BIO_s_mem());
  if (ssl_ == nullptr || network_in_ == nullptr || network_out_ == nullptr) {
    BIO_free(network_in_);
    BIO_free(network_out_);
    SSL_free(ssl_);
    throw std::bad_alloc();
  }
  // An empty input means "not yet" (want_read), not the end of the stream: the owner reports
  // the end of its socket itself.
  BIO_set_mem_eof_return(network_in_, -1);
  SSL_set_bio(ssl_, network_in_, network_out_);  // ssl_ owns both from here
  // As Asio's ssl::stream does: an idle connection does not keep its record buffers.
  SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);
  if (role == Role::server) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
  }
}

Engine::~Engine() { SSL_free(ssl_); }

Engine::Status Engine::status_of(int result) {
  const int ssl_error = SSL_get_error(ssl_, result);
  // The first error of the step names it (as Asio's engine reports it); the rest is noise.
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  switch (ssl_error) {
    case SSL_ERROR_NONE:
      return Status::done;
    case SSL_ERROR_WANT_READ:
      return Status::want_read;
    case SSL_ERROR_ZERO_RETURN:
      error_ = asio::error::eof;
      return Status::closed;
    default:
      // SSL_ERROR_SSL, or SSL_ERROR_SYSCALL (which memory BIOs never cause; without an
      // OpenSSL error it means the stream ended early). WANT_WRITE cannot happen: the output
      // grows as needed.
      if (code != 0) {
        error_ = {static_cast<int>(code), asio::error::get_ssl_category()};
      } else if (ssl_error == SSL_ERROR_SYSCALL) {
        error_ = asio::ssl::error::stream_truncated;
      } else {
        error_ = asio::ssl::error::unspecified_system_error;
      }
      return Status::failed;
  }
}

Engine::Status Engine::handshake() {
  ERR_clear_error();
  const int r = SSL_do_handshake(ssl_);
  return r == 1 ? Status::done : status_of(r);
}

bool Engine::handshake_done() const { return SSL_is_init_finished(ssl_) == 1; }

void Engine::feed(std::span<const char> ciphertext) {
  while (!ciphertext.empty()) {
    const auto n = std::min(ciphertext.size(), kMaxCall);
    if (BIO_write(network_in_, ciphertext.data(), static_cast<int>(n)) != static_cast<int>(n)) {
      throw std::bad_alloc();  // a memory BIO fails only to grow
    }
    ciphertext = ciphertext.subspan(n);
  }
}

std::size_t Engine::input_size() const { return BIO_ctrl_pending(network_in_); }

Engine::Read Engine::read(std::span<char> out) {
  Read r;
  while (r.bytes < out.size()) {
    ERR_clear_error();
    std::size_t n = 0;
    const int ok = SSL_read_ex(ssl_, out.data() + r.bytes, out.size() - r.bytes, &n);
    if (ok != 1) {
      r.status = status_of(ok);
      return r;
    }
    r.bytes += n;
  }
  r.status = Status::done;
  return r;
}

bool Engine::write(std::span<const char> plaintext) {
  while (!plaintext.empty()) {
    ERR_clear_error();
    std::size_t n = 0;
    if (SSL_write_ex(ssl_, plaintext.data(), plaintext.size(), &n) != 1) {
      status_of(0);
      if (!error_) error_ = asio::ssl::error::unspecified_system_error;
      return false;
    }
    plaintext = plaintext.subspan(n);
  }
  return true;
}

std::size_t Engine::output_size() const { return BIO_ctrl_pending(network_out_); }

std::size_t Engine::take_output(std::span<char> out) {
  const int n =
      BIO_read(network_out_, out.data(), static_cast<int>(std::min(out.size(), kMaxCall)));
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

Engine::Status Engine::shutdown() {
  ERR_clear_error();
  const int r = SSL_shutdown(ssl_);
  if (r == 1) return Status::done;
  if (r == 0) return Status::want_read;  // ours is queued, the peer's not read yet
  return status_of(r);
}

}  // namespace loft::tls
