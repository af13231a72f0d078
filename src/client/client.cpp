#include "loft/client/client.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <climits>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include "loft/protocol/codec.hpp"
#include "loft/tls/engine.hpp"

namespace loft::client {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::ip::tcp;
using protocol::Body;

namespace {

// An address only this machine reaches: 127.0.0.0/8, ::1 or "localhost".
bool is_loopback(const std::string& host) {
  if (host == "localhost") return true;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  return !ec && address.is_loopback();
}

// An OpenSSL error as its reason ("certificate verify failed"), other errors as Asio says.
std::string error_text(const boost::system::error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category()) {
    const char* reason = ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
    if (reason != nullptr) return reason;
  }
  if (ec == ssl::error::stream_truncated) return "the connection closed during the TLS handshake";
  return ec.message();
}

// Whether a request carries what only protocol version 2 can: a message subject or a group
// filter. At version 1 the codec would leave them out, so such a request is refused instead.
bool needs_version_2(const Body& body) {
  if (const auto* p = std::get_if<protocol::Publish>(&body)) {
    return std::any_of(p->messages.begin(), p->messages.end(),
                       [](const Message& m) { return !m.subject.empty(); });
  }
  if (const auto* s = std::get_if<protocol::Subscribe>(&body)) return !s->config.filter.empty();
  if (const auto* c = std::get_if<protocol::CreateGroup>(&body)) return !c->config.filter.empty();
  return false;
}

// Whether a request carries what only protocol version 3 can: per-key ordering of a group.
bool needs_version_3(const Body& body) {
  if (const auto* s = std::get_if<protocol::Subscribe>(&body)) {
    return s->config.ordering != Ordering::none || s->config.key_lookahead != 0;
  }
  if (const auto* c = std::get_if<protocol::CreateGroup>(&body)) {
    return c->config.ordering != Ordering::none || c->config.key_lookahead != 0;
  }
  return false;
}

// Whether a request carries what only protocol version 4 can: a delivery time or a delay.
bool needs_version_4(const Body& body) {
  if (const auto* p = std::get_if<protocol::Publish>(&body)) {
    return p->delay_ms != 0 || std::any_of(p->messages.begin(), p->messages.end(),
                                           [](const Message& m) { return m.deliver_at_ms != 0; });
  }
  return false;
}

}  // namespace

Result<void> parse_broker_address(std::string_view text, Options& options) {
  auto bad = [&] {
    return fail(Errc::invalid_request, "broker address '" + std::string(text) +
                                           "' must be HOST:PORT, like 127.0.0.1:7450");
  };
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) return bad();
  std::string_view host = text.substr(0, colon);
  const std::string_view port = text.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return bad();
    host = host.substr(1, host.size() - 2);
  }
  unsigned value = 0;
  const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc{} || ptr != port.data() + port.size() || value > 65535) return bad();
  options.host = std::string(host);
  options.port = static_cast<std::uint16_t>(value);
  return {};
}

// Deliveries of one subscription, filled by the reader thread, drained by receive().
struct Subscription::Stream {
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<DeliveredMessage> messages;
  std::optional<Error> broken;      // the connection is gone
  std::optional<Error> last_error;  // of a background ack
};

class Client::Impl {
 public:
  using Completion = std::function<void(Result<Body>)>;

  explicit Impl(Options options) : options_(std::move(options)), socket_(io_) {}

  ~Impl() {
    close();
    // A reader that a close() from one of its completions detached may still be delivering
    // the frames it had buffered: wait until it is done with this object, unless this is it.
    std::unique_lock lock(mutex_);
    if (reader_started_ && std::this_thread::get_id() != reader_id_) {
      reader_done_cv_.wait_for(lock, options_.close_timeout, [this] { return reader_done_; });
    }
  }

  Result<void> connect() {
    if (!options_.user.empty() && !options_.tls.enabled && !options_.allow_plaintext_password &&
        !is_loopback(options_.host)) {
      return fail(Errc::invalid_request,
                  "refusing to send the password of user '" + options_.user + "' to " + address() +
                      " in clear text: use TLS, or allow a plaintext password explicitly");
    }
    const auto started = std::chrono::steady_clock::now();
    boost::system::error_code ec;
    tcp::resolver resolver(io_);
    const auto endpoints = resolver.resolve(options_.host, std::to_string(options_.port), ec);
    if (ec) return connection_failed("cannot resolve " + options_.host, ec);
    bool done = false;
    boost::system::error_code connect_ec;
    asio::async_connect(socket_, endpoints, [&](boost::system::error_code e, const tcp::endpoint&) {
      connect_ec = e;
      done = true;
    });
    io_.run_for(options_.connect_timeout);
    if (!done) {
      socket_.close(ec);
      return fail(Errc::timeout, "connecting to " + address() + " took longer than " +
                                     std::to_string(options_.connect_timeout.count()) + "ms");
    }
    if (connect_ec) return connection_failed("cannot connect to " + address(), connect_ec);
    socket_.set_option(tcp::no_delay(true), ec);
    if (options_.tls.enabled) {
      if (auto ok = tls_handshake(started + options_.connect_timeout); !ok) {
        socket_.close(ec);
        return ok;
      }
    }
    // Blocking from here on (async_connect made the socket non-blocking): the reader thread
    // then waits inside recv itself instead of a failed recv followed by a poll.
    socket_.non_blocking(false, ec);
    socket_.native_non_blocking(false, ec);
    connected_ = true;
    {
      std::lock_guard lock(mutex_);
      reader_ = std::thread([this] { read_loop(); });
      reader_id_ = reader_.get_id();
      reader_started_ = true;
    }

    // Every version this client speaks: a server that knows only version 1 is served too
    // (without subjects and group filters, which need 2).
    auto reply = wait(request(protocol::Hello{protocol::kMinProtocolVersion,
                                              protocol::kProtocolVersion, options_.client_name}));
    if (!reply) return tl::unexpected(reply.error());
    auto* ok = std::get_if<protocol::HelloOk>(&*reply);
    if (!ok) return fail(Errc::invalid_request, "server did not answer HELLO with HELLO_OK");
    if (ok->version < protocol::kMinProtocolVersion || ok->version > protocol::kProtocolVersion) {
      std::string text = "server chose protocol version ";
      text += std::to_string(ok->version);
      return fail(Errc::unsupported_version, std::move(text));
    }
    hello_ = *ok;
    version_ = ok->version;
    if (!options_.user.empty()) return authenticate();
    return {};
  }

  // PLAIN (RFC 4616): an empty authorization identity, the user, the password.
  Result<void> authenticate() {
    std::string payload;
    payload.reserve(options_.user.size() + options_.password.size() + 2);
    payload += '\0';
    payload += options_.user;
    payload += '\0';
    payload += options_.password;
    auto reply = wait(request(protocol::Authenticate{"PLAIN", std::move(payload)}));
    if (!reply) return tl::unexpected(reply.error());
    if (!std::holds_alternative<protocol::AuthenticateOk>(*reply)) {
      return fail(Errc::invalid_request, "server did not answer AUTHENTICATE with AUTHENTICATE_OK");
    }
    return {};
  }

  std::future<Result<Body>> request(Body body) {
    auto promise = std::make_shared<std::promise<Result<Body>>>();
    auto future = promise->get_future();
    request(std::move(body), [promise](Result<Body> r) { promise->set_value(std::move(r)); });
    return future;
  }

  // `done` runs on the reader thread (or at once, on the caller's, if the connection is
  // already broken). DELIVER frames that carry this request's correlation id go to `stream`.
  void request(Body body, Completion done, std::shared_ptr<Subscription::Stream> stream = nullptr) {
    std::uint32_t id = 0;
    {
      std::lock_guard lock(mutex_);
      id = next_id_++;
      if (next_id_ >= 0x80000000u) next_id_ = 1;
    }
    if (version_ < 2 && needs_version_2(body)) {
      return done(fail(Errc::invalid_request,
                       "the broker speaks protocol version 1, which has no message subjects "
                       "or group filters"));
    }
    if (version_ < 3 && needs_version_3(body)) {
      return done(fail(Errc::invalid_request, "the broker speaks protocol version " +
                                                  std::to_string(version_) +
                                                  ", which has no per-key ordering of groups"));
    }
    if (version_ < 4 && needs_version_4(body)) {
      return done(fail(Errc::invalid_request,
                       "the broker speaks protocol version " + std::to_string(version_) +
                           ", which has no delayed delivery (deliver_at_ms, delay)"));
    }
    std::string bytes;
    try {
      protocol::encode(protocol::Frame{id, std::move(body)}, bytes, version_);
    } catch (const std::length_error& e) {
      // A field over what its length prefix can carry (a 70000-byte topic name, say).
      return done(fail(Errc::invalid_request, std::string("cannot encode request: ") + e.what()));
    }
    if (stream) {
      std::lock_guard lock(mutex_);
      streams_[id] = std::move(stream);
    }
    send(id, std::move(bytes), std::move(done));
  }

  void send(std::uint32_t id, std::string bytes, Completion done) {
    {
      std::unique_lock lock(mutex_);
      if (broken_) {
        auto error = *broken_;
        lock.unlock();
        return done(tl::unexpected(std::move(error)));
      }
      pending_.emplace(id, std::move(done));
    }
    std::lock_guard write_lock(write_mutex_);
    const auto ec = tls_ ? tls_write(bytes) : write_all(bytes);
    if (ec) fail_all(Error{Errc::connection_error, "write failed: " + error_text(ec)});
  }

  Result<Body> wait(std::future<Result<Body>> future) {
    if (future.wait_for(options_.request_timeout) != std::future_status::ready) {
      return fail(Errc::timeout, "no reply from " + address() + " within " +
                                     std::to_string(options_.request_timeout.count()) + "ms");
    }
    return future.get();
  }

  void close() {
    {
      std::lock_guard lock(mutex_);
      if (closed_) return;
      closed_ = true;
    }
    boost::system::error_code ec;
    const bool on_reader = reader_.joinable() && reader_.get_id() == std::this_thread::get_id();
    if (!on_reader && connected()) {
      // Graceful: tell the broker we are done sending and let it answer what it has read.
      // It closes once every request is answered; closing first (with replies unread) would
      // reset the connection and could drop requests the broker had not read yet, such as
      // fire-and-forget acks. Over TLS too: the FIN is TCP's, the broker reads it as the end of
      // our requests and closes with its close_notify (frames carry their own lengths, so
      // nothing can be cut short unnoticed).
      {
        // Between two frames if we can; but a writer blocked in send() to a broker that has
        // stopped reading holds the lock for good, and the shutdown is what wakes it (EPIPE).
        // (Polled with try_lock, not a timed_mutex: ThreadSanitizer does not see the locks a
        // timed wait takes.)
        std::unique_lock write_lock(write_mutex_, std::defer_lock);
        const auto deadline = std::chrono::steady_clock::now() + options_.close_timeout;
        while (!write_lock.try_lock() && std::chrono::steady_clock::now() < deadline) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        socket_.shutdown(tcp::socket::shutdown_send, ec);
      }
      std::unique_lock lock(mutex_);
      reader_done_cv_.wait_for(lock, options_.close_timeout, [this] { return reader_done_; });
    }
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    if (reader_.joinable()) {
      if (on_reader) {
        reader_.detach();  // close() from a completion: the reader ends by itself
      } else {
        reader_.join();
      }
    }
    {
      // A writer past its broken_ check must not write to a closed (and maybe reused) fd.
      std::lock_guard write_lock(write_mutex_);
      socket_.close(ec);
    }
    fail_all(Error{Errc::connection_error, "the client was closed"});
  }

  bool connected() const {
    std::lock_guard lock(mutex_);
    return connected_ && !broken_;
  }

  const protocol::HelloOk& hello() const { return hello_; }
  const Options& options() const { return options_; }

 private:
  std::string address() const { return options_.host + ":" + std::to_string(options_.port); }

  tl::unexpected<Error> connection_failed(const std::string& what, boost::system::error_code ec) {
    return fail(Errc::connection_error, what + ": " + ec.message());
  }

  void read_loop() {
    read_frames();
    // Notified under the lock: a destructor waiting for this cannot free the object before
    // the reader is done touching it.
    std::lock_guard lock(mutex_);
    reader_done_ = true;
    reader_done_cv_.notify_all();
  }

  // Reads in chunks of up to 64 KiB on a blocking socket, straight into the decoder's buffer,
  // and delivers every complete frame a chunk holds: one recv per burst of replies and
  // deliveries, where reading each frame's header and body separately on the non-blocking
  // socket took a recv that failed, a poll and two more recvs per frame (system calls are the
  // costly part of a reply here: docs/performance-log.md, "Fewer system calls per reply in the
  // client"). Over TLS the chunk is decrypted into the decoder's buffer (tls_read).
  void read_frames() {
    auto& decoder = decoder_;
    for (;;) {
      if (!deliver_frames()) return;
      const std::span<char> room = decoder.prepare(kReadChunk);
      boost::system::error_code ec;
      decoder.commit(tls_ ? tls_read(room, ec)
                          : socket_.read_some(asio::buffer(room.data(), room.size()), ec));
      // Interrupted by a signal (a handler of the program's installed without SA_RESTART):
      // the connection is fine, read again.
      if (ec == asio::error::interrupted) continue;
      if (ec) return fail_all(Error{Errc::connection_error, disconnect_text(ec)});
    }
  }

  // Every complete frame in the decoder; false (after failing everything) on a malformed one.
  bool deliver_frames() {
    for (;;) {
      auto frame = decoder_.next();
      if (!frame) {
        fail_all(frame.error());
        return false;
      }
      if (!frame->has_value()) return true;
      // The frames after HELLO_OK are in the layouts of the version it names.
      if (const auto* ok = std::get_if<protocol::HelloOk>(&(*frame)->body)) {
        decoder_.set_version(ok->version);
      }
      deliver((*frame)->correlation_id, std::move((*frame)->body));
    }
  }

  std::string disconnect_text(boost::system::error_code ec) const {
    if (ec == asio::error::eof || ec == ssl::error::stream_truncated) {
      return "the broker at " + address() + " closed the connection";
    }
    return "connection to " + address() + " lost: " + error_text(ec);
  }

  // A blocking write of all of `bytes`. A signal that interrupts it (a handler installed
  // without SA_RESTART) is not a failure: write the rest. REQUIRES: write_mutex_ held.
  boost::system::error_code write_all(std::span<const char> bytes) {
    boost::system::error_code ec;
    for (std::size_t written = 0;;) {
      written +=
          asio::write(socket_, asio::buffer(bytes.data() + written, bytes.size() - written), ec);
      if (ec != asio::error::interrupted) return ec;
    }
  }

  // TLS. OpenSSL allows one thread at a time in an SSL object, and runs on memory here
  // (tls::Engine), so no thread holds its lock (tls_mutex_) across a system call: the reader
  // thread decrypts what it has read into the decoder's buffer, and a caller encrypts its frame
  // and sends the records itself, under write_mutex_ so that records leave in the order they
  // were made. Reading never writes: what OpenSSL produces while reading (an alert) leaves with
  // the next frame.

  // On the caller's thread, before the reader starts; the socket is non-blocking (connect()),
  // and every wait ends at `deadline`.
  Result<void> tls_handshake(std::chrono::steady_clock::time_point deadline) {
    const auto& t = options_.tls;
    const std::string name = t.server_name.empty() ? options_.host : t.server_name;
    auto bad_file = [](std::string_view what, const std::string& file,
                       const boost::system::error_code& e) {
      return fail(Errc::invalid_request,
                  "cannot load TLS " + std::string(what) + " file " + file + ": " + error_text(e));
    };
    tls_context_.emplace(ssl::context::tls_client);
    auto& context = *tls_context_;
    boost::system::error_code ec;
    context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                        ssl::context::no_sslv3 | ssl::context::no_compression);
    // The broker never renegotiates; a request to would have this side write while reading.
    SSL_CTX_set_options(context.native_handle(), SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_2_VERSION);
    context.set_verify_mode(ssl::verify_peer);
    if (!t.ca_file.empty()) {
      if (context.load_verify_file(t.ca_file, ec); ec) return bad_file("CA", t.ca_file, ec);
    } else if (context.set_default_verify_paths(ec); ec) {
      return fail(Errc::invalid_request,
                  "cannot load the system's CA certificates: " + error_text(ec));
    }
    if (t.cert_file.empty() != t.key_file.empty()) {
      return fail(Errc::invalid_request,
                  "a TLS client certificate needs both a certificate and a key file");
    }
    if (!t.cert_file.empty()) {
      if (context.use_certificate_chain_file(t.cert_file, ec); ec) {
        return bad_file("certificate", t.cert_file, ec);
      }
      if (context.use_private_key_file(t.key_file, ssl::context::pem, ec); ec) {
        return bad_file("key", t.key_file, ec);
      }
    }
    auto engine = std::make_unique<tls::Engine>(context, tls::Engine::Role::client);
    SSL* handle = engine->native_handle();
    // The name check is OpenSSL's own (X509_VERIFY_PARAM, as asio::ssl::host_name_verification
    // does it), set on the SSL object so that a mismatch is reported as the verify result
    // ("hostname mismatch") and not as an unexplained failure of a callback.
    asio::ip::make_address(name, ec);
    // A name check that cannot be set up must fail the connection, not be skipped.
    const bool name_set =
        !ec ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(handle), name.c_str()) == 1
            : SSL_set1_host(handle, name.c_str()) == 1;
    if (!name_set) {
      return fail(Errc::invalid_request,
                  "cannot check the broker's certificate for the name '" + name + "'");
    }
    if (ec) SSL_set_tlsext_host_name(handle, name.c_str());  // SNI: for names, not addresses

    socket_.non_blocking(true, ec);
    std::array<char, 16 << 10> buffer{};
    for (;;) {
      ec.clear();
      const auto status = engine->handshake();
      // Out first, after a failure too: the output is then the alert that tells the broker why.
      while (const std::size_t n = engine->take_output(buffer)) {
        std::size_t sent = 0;
        ec = exchange_before(deadline, POLLOUT, [&] {
          boost::system::error_code e;
          sent += socket_.write_some(asio::buffer(buffer.data() + sent, n - sent), e);
          return !e && sent < n ? asio::error::would_block : e;
        });
        if (ec) break;
      }
      if (status == tls::Engine::Status::done && !ec) break;
      if (status == tls::Engine::Status::closed || status == tls::Engine::Status::failed) {
        ec = engine->error();
      } else if (!ec) {
        std::size_t n = 0;
        ec = exchange_before(deadline, POLLIN, [&] {
          boost::system::error_code e;
          n = socket_.read_some(asio::buffer(buffer), e);
          return e;
        });
        engine->feed({buffer.data(), n});
        if (ec == asio::error::eof) ec = ssl::error::stream_truncated;
      }
      if (ec == asio::error::timed_out) {
        return fail(Errc::timeout, "TLS handshake with " + address() + " took longer than " +
                                       std::to_string(options_.connect_timeout.count()) + "ms");
      }
      if (ec) {
        std::string detail = "TLS handshake with " + address() + " failed: " + error_text(ec);
        if (const long v = SSL_get_verify_result(handle); v != X509_V_OK) {
          detail += std::string(" (") + X509_verify_cert_error_string(v) + ")";
        }
        return fail(Errc::connection_error, detail);
      }
    }
    tls_ = std::move(engine);
    return {};
  }

  // Runs `io` (a socket call that returns would_block until it is done) again each time the
  // socket is ready for `events`; timed_out once `deadline` has passed.
  template <class Io>
  boost::system::error_code exchange_before(std::chrono::steady_clock::time_point deadline,
                                            short events, Io io) {
    for (;;) {
      auto ec = io();
      if (ec != asio::error::would_block && ec != asio::error::try_again &&
          ec != asio::error::interrupted) {
        return ec;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return asio::error::timed_out;
      pollfd p{socket_.native_handle(), events, 0};
      ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), INT_MAX)));
    }
  }

  // Reader thread: plaintext into `room`, what the engine holds first, else after one blocking
  // socket read of up to kTlsReadChunk (every record it completes is decrypted, the rest of
  // them on the next calls without a system call). 0 with `ec` set at the end.
  std::size_t tls_read(std::span<char> room, boost::system::error_code& ec) {
    constexpr std::size_t kTlsReadChunk = 128 << 10;
    for (;;) {
      tls::Engine::Read r;
      {
        std::lock_guard lock(tls_mutex_);
        r = tls_->read(room);
        if (r.status == tls::Engine::Status::closed || r.status == tls::Engine::Status::failed) {
          ec = tls_->error();
        }
      }
      // Bytes first: a status that ends the stream is seen again by the next call.
      if (r.bytes > 0) {
        ec.clear();
        return r.bytes;
      }
      if (r.status != tls::Engine::Status::want_read) return 0;
      if (tls_in_.size() < kTlsReadChunk) tls_in_.resize(kTlsReadChunk);
      const std::size_t n = socket_.read_some(asio::buffer(tls_in_), ec);
      if (n > 0) {
        std::lock_guard lock(tls_mutex_);
        tls_->feed({tls_in_.data(), n});
      }
      if (ec == asio::error::interrupted) continue;
      if (ec == asio::error::eof) ec = ssl::error::stream_truncated;  // no close_notify
      if (ec) return 0;
    }
  }

  // A caller's frame, encrypted and sent a piece at a time (the engine's lock is not held while
  // sending, so the reader goes on decrypting). REQUIRES: write_mutex_ held.
  boost::system::error_code tls_write(std::span<const char> bytes) {
    constexpr std::size_t kPiece = 128 << 10;
    // Also when `bytes` is empty: what reading left in the output leaves now.
    do {
      std::size_t n = 0;
      const auto piece = bytes.first(std::min(bytes.size(), kPiece));
      bytes = bytes.subspan(piece.size());
      {
        std::lock_guard lock(tls_mutex_);
        if (!tls_->write(piece)) return tls_->error();
        const std::size_t size = tls_->output_size();
        if (tls_out_.size() < size) tls_out_.resize(size);
        n = tls_->take_output({tls_out_.data(), size});
      }
      if (auto ec = write_all({tls_out_.data(), n}); ec) return ec;
    } while (!bytes.empty());
    return {};
  }

  void deliver(std::uint32_t id, Body body) {
    if (auto* frame = std::get_if<protocol::Deliver>(&body)) {
      std::shared_ptr<Subscription::Stream> stream;
      {
        std::lock_guard lock(mutex_);
        const auto it = streams_.find(id);
        if (it != streams_.end()) stream = it->second;
      }
      if (!stream) return;  // unsubscribed meanwhile: the broker redelivers to others
      {
        std::lock_guard lock(stream->mutex);
        for (auto& m : frame->messages) stream->messages.push_back(std::move(m));
      }
      stream->cv.notify_all();
      return;
    }
    Completion promise;
    {
      std::lock_guard lock(mutex_);
      auto it = pending_.find(id);
      if (it != pending_.end()) {
        promise = std::move(it->second);
        pending_.erase(it);
      }
    }
    if (auto* err = std::get_if<protocol::ErrorReply>(&body)) {
      Error error{err->code, err->message};
      if (promise) promise(tl::unexpected(error));
      // After a fatal error the server closes: everything else pending fails with it.
      if (protocol::is_fatal(err->code)) fail_all(error);
      return;
    }
    if (promise) promise(std::move(body));
  }

  void fail_all(const Error& error) {
    std::unordered_map<std::uint32_t, Completion> pending;
    std::unordered_map<std::uint32_t, std::shared_ptr<Subscription::Stream>> streams;
    {
      std::lock_guard lock(mutex_);
      if (!broken_) broken_ = error;
      pending.swap(pending_);
      streams.swap(streams_);
    }
    for (auto& [_, done] : pending) done(tl::unexpected(error));
    for (auto& [_, stream] : streams) {
      {
        std::lock_guard lock(stream->mutex);
        stream->broken = error;
      }
      stream->cv.notify_all();
    }
  }

  static constexpr std::size_t kReadChunk = 64 << 10;
  // Replies may legitimately be large (a fetch); the server's own limit bounds them.
  static constexpr std::uint32_t kMaxReply = 1u << 30;

  Options options_;
  asio::io_context io_;  // connect() only
  tcp::socket socket_;
  protocol::Decoder decoder_{kMaxReply};  // the reader thread's
  // TLS only: OpenSSL over memory (tls::Engine), the bytes moved by the reader thread and by
  // callers under write_mutex_.
  std::optional<ssl::context> tls_context_;
  std::unique_ptr<tls::Engine> tls_;
  std::mutex tls_mutex_;       // one thread at a time in tls_ (reader or writer): CPU only
  std::vector<char> tls_in_;   // the reader thread's: ciphertext read, not yet fed
  std::vector<char> tls_out_;  // under write_mutex_: ciphertext being sent
  std::thread reader_;
  protocol::HelloOk hello_;
  // The protocol version agreed in the handshake; set by connect() before any request but
  // HELLO is sent, and not changed after.
  std::uint16_t version_ = protocol::kProtocolVersion;

  mutable std::mutex mutex_;  // guards everything below
  std::unordered_map<std::uint32_t, Completion> pending_;
  std::unordered_map<std::uint32_t, std::shared_ptr<Subscription::Stream>> streams_;
  std::uint32_t next_id_ = 1;
  std::optional<Error> broken_;
  bool connected_ = false;
  bool closed_ = false;
  bool reader_done_ = false;
  bool reader_started_ = false;
  std::thread::id reader_id_;  // still known once reader_ is detached
  std::condition_variable reader_done_cv_;
  std::mutex write_mutex_;  // one frame at a time on the socket
};

namespace {

// Unpacks the expected reply type, or turns an unexpected one into an error.
template <class T>
Result<T> expect(Result<Body> reply) {
  if (!reply) return tl::unexpected(reply.error());
  if (auto* value = std::get_if<T>(&*reply)) return std::move(*value);
  return fail(Errc::invalid_request, "unexpected reply type from the broker");
}

Result<std::vector<PublishResult>> to_results(Result<Body> reply) {
  auto ok = expect<protocol::PublishOk>(std::move(reply));
  if (!ok) return tl::unexpected(ok.error());
  return std::move(ok->results);
}

}  // namespace

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::connect(const Options& options) {
  auto impl = std::make_unique<Impl>(options);
  if (auto ok = impl->connect(); !ok) return tl::unexpected(ok.error());
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

const protocol::HelloOk& Client::server() const { return impl_->hello(); }

std::future<Result<std::vector<PublishResult>>> Client::publish_async(std::string topic,
                                                                      std::vector<Message> messages,
                                                                      PublishOptions options) {
  auto promise = std::make_shared<std::promise<Result<std::vector<PublishResult>>>>();
  auto future = promise->get_future();
  impl_->request(
      protocol::Publish{std::move(topic), std::move(messages), options.delay.count()},
      [promise](Result<Body> reply) { promise->set_value(to_results(std::move(reply))); });
  return future;
}

Result<std::vector<PublishResult>> Client::publish(std::string topic, std::vector<Message> messages,
                                                   PublishOptions options) {
  return to_results(impl_->wait(impl_->request(
      protocol::Publish{std::move(topic), std::move(messages), options.delay.count()})));
}

Result<PublishResult> Client::publish(std::string topic, Message message, PublishOptions options) {
  std::vector<Message> batch;
  batch.push_back(std::move(message));
  auto results = publish(std::move(topic), std::move(batch), options);
  if (!results) return tl::unexpected(results.error());
  if (results->size() != 1)
    return fail(Errc::invalid_request, "broker returned wrong result count");
  return results->front();
}

Result<TopicInfo> Client::create_topic(std::string name) {
  return create_topic(std::move(name), 0, protocol::DedupConflict::duplicate);
}

Result<TopicInfo> Client::create_topic(std::string name, std::uint64_t dedup_window_ms,
                                       protocol::DedupConflict dedup_conflict,
                                       protocol::RetentionChange retention,
                                       RetentionMode retention_mode) {
  if (retention_mode != RetentionMode::limits && server().version < 3) {
    return fail(Errc::invalid_request,
                "work-queue retention needs protocol version 3; this loftd speaks version " +
                    std::to_string(server().version));
  }
  auto ok = expect<protocol::CreateTopicOk>(impl_->wait(impl_->request(protocol::CreateTopic{
      std::move(name), dedup_window_ms, dedup_conflict, retention, retention_mode})));
  if (!ok) return tl::unexpected(ok.error());
  return std::move(ok->topic);
}

Result<TopicInfo> Client::alter_topic(std::string name, protocol::RetentionChange retention) {
  auto ok = expect<protocol::AlterTopicOk>(
      impl_->wait(impl_->request(protocol::AlterTopic{std::move(name), retention})));
  if (!ok) return tl::unexpected(ok.error());
  return std::move(ok->topic);
}

Result<std::string> Client::backup(std::string dir) {
  auto ok =
      expect<protocol::BackupOk>(impl_->wait(impl_->request(protocol::Backup{std::move(dir)})));
  if (!ok) return tl::unexpected(ok.error());
  return std::move(ok->dir);
}

Result<void> Client::delete_topic(std::string name) {
  auto ok = expect<protocol::DeleteTopicOk>(
      impl_->wait(impl_->request(protocol::DeleteTopic{std::move(name)})));
  if (!ok) return tl::unexpected(ok.error());
  return {};
}

Result<std::vector<TopicInfo>> Client::list_topics() {
  auto ok = expect<protocol::ListTopicsOk>(impl_->wait(impl_->request(protocol::ListTopics{})));
  if (!ok) return tl::unexpected(ok.error());
  return std::move(ok->topics);
}

Result<TopicInfo> Client::describe_topic(std::string name) {
  auto ok = expect<protocol::DescribeTopicOk>(
      impl_->wait(impl_->request(protocol::DescribeTopic{std::move(name)})));
  if (!ok) return tl::unexpected(ok.error());
  return std::move(ok->topic);
}

Result<FetchOk> Client::fetch(std::string topic, std::uint64_t offset, std::uint32_t max_messages,
                              std::uint32_t max_bytes) {
  return expect<protocol::FetchOk>(impl_->wait(
      impl_->request(protocol::Fetch{std::move(topic), offset, max_messages, max_bytes})));
}

Result<void> Client::ping() {
  auto ok = expect<protocol::Pong>(impl_->wait(impl_->request(protocol::Ping{})));
  if (!ok) return tl::unexpected(ok.error());
  return {};
}

Result<protocol::Body> Client::raw_request(std::string bytes, std::uint32_t correlation_id) {
  auto promise = std::make_shared<std::promise<Result<Body>>>();
  auto future = promise->get_future();
  impl_->send(correlation_id, std::move(bytes),
              [promise](Result<Body> r) { promise->set_value(std::move(r)); });
  return impl_->wait(std::move(future));
}

Result<std::unique_ptr<Subscription>> Client::subscribe(SubscribeOptions options) {
  auto stream = std::make_shared<Subscription::Stream>();
  auto promise = std::make_shared<std::promise<Result<Body>>>();
  auto future = promise->get_future();
  impl_->request(
      protocol::Subscribe{std::move(options.topic), std::move(options.group), options.start,
                          options.max_in_flight, std::move(options.config)},
      [promise](Result<Body> r) { promise->set_value(std::move(r)); }, stream);
  auto ok = expect<protocol::SubscribeOk>(impl_->wait(std::move(future)));
  if (!ok) return tl::unexpected(ok.error());
  return std::unique_ptr<Subscription>(
      new Subscription(*this, ok->subscription, ok->created, std::move(stream),
                       std::max<std::size_t>(1, options.ack_batch)));
}

Result<GroupInfo> Client::create_group(std::string topic, std::string group,
                                       protocol::StartPosition start,
                                       protocol::GroupConfig config) {
  auto ok = expect<protocol::CreateGroupOk>(impl_->wait(impl_->request(
      protocol::CreateGroup{std::move(topic), std::move(group), start, std::move(config)})));
  if (!ok) return tl::unexpected(ok.error());
  return std::move(ok->group);
}

Result<std::vector<GroupInfo>> Client::list_groups(std::string topic) {
  auto ok = expect<protocol::ListGroupsOk>(
      impl_->wait(impl_->request(protocol::ListGroups{std::move(topic)})));
  if (!ok) return tl::unexpected(ok.error());
  return std::move(ok->groups);
}

Result<GroupInfo> Client::describe_group(std::string topic, std::string group) {
  auto ok = expect<protocol::DescribeGroupOk>(
      impl_->wait(impl_->request(protocol::DescribeGroup{std::move(topic), std::move(group)})));
  if (!ok) return tl::unexpected(ok.error());
  return std::move(ok->group);
}

Result<void> Client::delete_group(std::string topic, std::string group) {
  auto ok = expect<protocol::DeleteGroupOk>(
      impl_->wait(impl_->request(protocol::DeleteGroup{std::move(topic), std::move(group)})));
  if (!ok) return tl::unexpected(ok.error());
  return {};
}

Result<GroupInfo> Client::reset_group(std::string topic, std::string group,
                                      protocol::StartPosition to) {
  auto ok = expect<protocol::ResetGroupOk>(
      impl_->wait(impl_->request(protocol::ResetGroup{std::move(topic), std::move(group), to})));
  if (!ok) return tl::unexpected(ok.error());
  return std::move(ok->group);
}

std::vector<protocol::OffsetRun> to_runs(std::vector<std::uint64_t> offsets) {
  std::sort(offsets.begin(), offsets.end());
  offsets.erase(std::unique(offsets.begin(), offsets.end()), offsets.end());
  std::vector<protocol::OffsetRun> runs;
  for (const auto o : offsets) {
    if (!runs.empty() && runs.back().first + runs.back().count == o &&
        runs.back().count < UINT32_MAX) {
      ++runs.back().count;
    } else {
      runs.push_back({o, 1});
    }
  }
  return runs;
}

Subscription::Subscription(Client& client, std::uint64_t id, bool created,
                           std::shared_ptr<Stream> stream, std::size_t ack_batch)
    : client_(client),
      id_(id),
      created_(created),
      stream_(std::move(stream)),
      ack_batch_(ack_batch) {}

Subscription::~Subscription() {
  // Fire and forget: the broker applies them when the frame arrives.
  if (client_.connected()) send_pending_acks();
}

Result<std::vector<DeliveredMessage>> Subscription::receive(std::chrono::milliseconds timeout,
                                                            std::size_t max) {
  send_pending_acks();
  std::unique_lock lock(stream_->mutex);
  if (stream_->last_error) {
    auto e = *stream_->last_error;
    stream_->last_error.reset();
    return tl::unexpected(std::move(e));
  }
  stream_->cv.wait_for(lock, timeout,
                       [&] { return !stream_->messages.empty() || stream_->broken.has_value(); });
  if (stream_->messages.empty() && stream_->broken) return tl::unexpected(*stream_->broken);
  std::vector<DeliveredMessage> out;
  while (!stream_->messages.empty() && out.size() < max) {
    out.push_back(std::move(stream_->messages.front()));
    stream_->messages.pop_front();
  }
  return out;
}

void Subscription::ack(std::uint64_t offset) {
  pending_acks_.push_back(offset);
  if (pending_acks_.size() >= ack_batch_) send_pending_acks();
}

// Sends, does not wait: a consumer keeps working while its acks travel. An error comes back
// from the next receive().
void Subscription::send_pending_acks() {
  if (pending_acks_.empty()) return;
  auto stream = stream_;
  client_.impl().request(
      protocol::Settle{id_, protocol::SettleAction::ack, false, protocol::kBackoffDelay,
                       to_runs(std::move(pending_acks_))},
      [stream](Result<Body> r) {
        if (r) return;
        std::lock_guard lock(stream->mutex);
        stream->last_error = r.error();
      });
  pending_acks_.clear();
}

Result<void> Subscription::flush() {
  if (pending_acks_.empty()) return {};
  auto acks = std::move(pending_acks_);
  pending_acks_.clear();
  auto r = settle(protocol::SettleAction::ack, std::move(acks), false, protocol::kBackoffDelay);
  if (!r) return tl::unexpected(r.error());
  return {};
}

Result<SettleOk> Subscription::settle(protocol::SettleAction action,
                                      std::vector<std::uint64_t> offsets, bool confirm,
                                      std::uint32_t delay_ms) {
  return expect<protocol::SettleOk>(client_.impl().wait(client_.impl().request(
      protocol::Settle{id_, action, confirm, delay_ms, to_runs(std::move(offsets))})));
}

Result<SettleOk> Subscription::ack_confirmed(std::vector<std::uint64_t> offsets) {
  return settle(protocol::SettleAction::ack, std::move(offsets), true, protocol::kBackoffDelay);
}

Result<SettleOk> Subscription::nack(std::uint64_t offset,
                                    std::optional<std::chrono::milliseconds> delay) {
  const std::uint32_t ms =
      delay ? static_cast<std::uint32_t>(std::min<std::int64_t>(delay->count(), 0xFFFFFFFE))
            : protocol::kBackoffDelay;
  return settle(protocol::SettleAction::nack, {offset}, false, ms);
}

Result<SettleOk> Subscription::extend(std::uint64_t offset) {
  return settle(protocol::SettleAction::extend, {offset}, false, protocol::kBackoffDelay);
}

Result<SettleOk> Subscription::reject(std::uint64_t offset) {
  return settle(protocol::SettleAction::reject, {offset}, false, protocol::kBackoffDelay);
}

Result<void> Subscription::unsubscribe() {
  if (unsubscribed_) return {};
  if (auto r = flush(); !r) return r;
  unsubscribed_ = true;
  auto ok = expect<protocol::UnsubscribeOk>(
      client_.impl().wait(client_.impl().request(protocol::Unsubscribe{id_})));
  if (!ok) return tl::unexpected(ok.error());
  return {};
}

void Client::close() { impl_->close(); }
bool Client::connected() const { return impl_->connected(); }

}  // namespace loft::client
