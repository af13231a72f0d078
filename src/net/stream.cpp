#include "stream.hpp"

#include <algorithm>
#include <boost/asio/ssl/error.hpp>

namespace loft::net {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// Socket reads during the handshake and the shutdown (a ClientHello is a few hundred bytes):
// a connection that stalls there holds little.
constexpr std::size_t kSmallRead = 4 << 10;

}  // namespace

struct Stream::Tls {
  explicit Tls(std::shared_ptr<asio::ssl::context> c)
      : context(std::move(c)), engine(*context, tls::Engine::Role::server) {}

  std::shared_ptr<asio::ssl::context> context;
  tls::Engine engine;
  std::vector<char> in;   // ciphertext read from the socket, before feed()
  std::vector<char> out;  // ciphertext being sent
  bool reading = false;   // a socket read is in flight (the reader's, or the shutdown's)
};

Stream::Stream(Tcp socket) : socket_(std::move(socket)) {}

Stream::Stream(Tcp socket, std::shared_ptr<asio::ssl::context> context)
    : socket_(std::move(socket)), tls_(std::make_unique<Tls>(std::move(context))) {}

Stream::Stream(Stream&&) noexcept = default;
Stream::~Stream() = default;

SSL* Stream::ssl() { return tls_ ? tls_->engine.native_handle() : nullptr; }

Stream::Awaitable<error_code> Stream::handshake() {
  auto& t = *tls_;
  for (;;) {
    const auto status = t.engine.handshake();
    // Out first, after a failure too: the output is then the alert that tells the client why.
    const auto sent = co_await flush();
    switch (status) {
      case tls::Engine::Status::done:
        co_return sent;
      case tls::Engine::Status::want_read:
        if (sent) co_return sent;
        if (auto ec = co_await fill(kSmallRead); ec) co_return ec;
        break;
      case tls::Engine::Status::closed:
      case tls::Engine::Status::failed:
        co_return t.engine.error();
    }
  }
}

Stream::Awaitable<Stream::IoResult> Stream::tls_read_some(asio::mutable_buffer buffer) {
  auto& t = *tls_;
  for (;;) {
    const auto r = t.engine.read({static_cast<char*>(buffer.data()), buffer.size()});
    // Bytes first; a status that ends the stream is seen again by the next call.
    if (r.bytes > 0 || buffer.size() == 0) co_return IoResult{error_code{}, r.bytes};
    switch (r.status) {
      case tls::Engine::Status::done:
        co_return IoResult{error_code{}, 0};
      case tls::Engine::Status::want_read:
        break;
      case tls::Engine::Status::closed:
        co_return IoResult{asio::error::eof, 0};
      case tls::Engine::Status::failed:
        co_return IoResult{t.engine.error(), 0};
    }
    if (auto ec = co_await fill(std::max(buffer.size(), kSmallRead)); ec) {
      co_return IoResult{ec, 0};
    }
  }
}

Stream::Awaitable<Stream::IoResult> Stream::tls_write(std::span<const asio::const_buffer> buffers) {
  auto& t = *tls_;
  std::size_t total = 0;
  std::size_t unsent = 0;  // plaintext encrypted since the last socket write
  for (const auto& b : buffers) {
    std::span<const char> rest{static_cast<const char*>(b.data()), b.size()};
    while (!rest.empty()) {
      const auto piece = rest.first(std::min(rest.size(), kSendChunk - unsent));
      if (!t.engine.write(piece)) co_return IoResult{t.engine.error(), total};
      total += piece.size();
      unsent += piece.size();
      rest = rest.subspan(piece.size());
      if (unsent == kSendChunk) {
        if (auto ec = co_await flush(); ec) co_return IoResult{ec, total};
        unsent = 0;
      }
    }
  }
  co_return IoResult{co_await flush(), total};
}

Stream::Awaitable<error_code> Stream::fill(std::size_t max) {
  auto& t = *tls_;
  if (t.in.size() < max) t.in.resize(max);
  t.reading = true;
  auto [ec, n] = co_await socket_.async_read_some(asio::buffer(t.in.data(), max), kUseTuple);
  t.reading = false;
  if (n > 0) t.engine.feed({t.in.data(), n});
  // The end of the TCP stream before a close_notify, as Asio's ssl::stream reports it.
  if (ec == asio::error::eof) ec = asio::ssl::error::stream_truncated;
  co_return ec;
}

Stream::Awaitable<error_code> Stream::flush() {
  auto& t = *tls_;
  // A little more than a chunk: the records of kSendChunk bytes of plaintext, whole.
  constexpr std::size_t kMaxSend = kSendChunk + (kSendChunk >> 4);
  while (t.engine.output_size() > 0) {
    const std::size_t want = std::min(t.engine.output_size(), kMaxSend);
    if (t.out.size() < want) t.out.resize(want);
    const std::size_t n = t.engine.take_output({t.out.data(), want});
    auto [ec, sent] = co_await asio::async_write(socket_, asio::buffer(t.out.data(), n), kUseTuple);
    if (ec) co_return ec;
  }
  co_return error_code{};
}

Stream::Awaitable<void> Stream::shutdown() {
  auto& t = *tls_;
  if (t.reading) {
    // The reader's last read, still waiting for bytes: it ends (operation_aborted, no bytes
    // taken), and from here only this coroutine reads.
    error_code ignored;
    socket_.cancel(ignored);
  }
  for (;;) {
    const auto status = t.engine.shutdown();
    if (auto ec = co_await flush(); ec) co_return;
    if (status != tls::Engine::Status::want_read) co_return;
    if (auto ec = co_await fill(kSmallRead); ec) co_return;
  }
}

}  // namespace loft::net
