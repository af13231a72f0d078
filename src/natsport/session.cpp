#include "session.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/serialize.hpp>
#include <vector>

#include "loft/nats/encode.hpp"
#include "loft/nats/error.hpp"
#include "loft/tls/tls.hpp"
#include "log.hpp"

namespace loft::natsport {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
// Replies and messages smaller than this share a buffer, so a client that pipelines a million
// PINGs costs its reply bytes, not a string each, and the writer sends them in few syscalls.
constexpr std::size_t kShareBelow = 64 << 10;
constexpr std::string_view kErrAuthenticationTimeout = "Authentication Timeout";

}  // namespace

Session::Session(SessionContext& context, tcp::socket socket, std::uint64_t client_id,
                 std::shared_ptr<asio::ssl::context> tls)
    : context_(context),
      socket_(std::move(socket)),
      tls_context_(std::move(tls)),
      client_id_(client_id),
      read_signal_(socket_.get_executor()),
      write_signal_(socket_.get_executor()),
      watchdog_(socket_.get_executor()),
      auth_delay_(socket_.get_executor()),
      accepted_at_(Clock::now()),
      max_outgoing_bytes_(context.options.max_outgoing_bytes),
      handshake_timeout_(context.options.handshake_timeout),
      parser_(nats::ParserLimits{context.options.max_control_line,
                                 std::min(context.options.max_payload, kPendingMaxPayload)}) {
  read_signal_.expires_at(asio::steady_timer::time_point::max());
  write_signal_.expires_at(asio::steady_timer::time_point::max());
  boost::system::error_code ec;
  const auto ep = socket_.remote_endpoint(ec);
  peer_address_ = ec ? std::string("?") : ep.address().to_string();
  peer_ = ec ? std::string("?") : peer_address_ + ":" + std::to_string(ep.port());
  peer_is_loopback_ = !ec && ep.address().is_loopback();
}

namespace {
void log_failure(const std::exception_ptr& e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    nats_log()->error("session coroutine failed error=\"{}\"", ex.what());
  }
}
}  // namespace

void Session::start() {
  if (!tls_context_) send_info();  // on TLS, the reader writes it before the handshake
  asio::co_spawn(socket_.get_executor(), reader(shared_from_this()), log_failure);
  asio::co_spawn(socket_.get_executor(), writer(shared_from_this()), log_failure);
  arm_watchdog();
}

void Session::refuse(std::string_view text) {
  refused_ = true;
  if (tls_context_) {
    reading_ = false;
    asio::co_spawn(socket_.get_executor(), writer(shared_from_this()), log_failure);
    return;
  }
  send_info();
  send_err(text);
  reading_ = false;
  fatal_ = true;  // flush, linger, close
  asio::co_spawn(socket_.get_executor(), writer(shared_from_this()), log_failure);
}

void Session::stop_reading() {
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_receive, ignored);
  reading_ = false;
  read_signal_.cancel();
  write_signal_.cancel();
}

void Session::close() {
  boost::system::error_code ignored;
  socket_.close(ignored);
  closed_ = true;
  reading_ = false;
  outgoing_.clear();
  outgoing_bytes_ = 0;
  read_signal_.cancel();
  write_signal_.cancel();
}

Session::Awaitable Session::reader(std::shared_ptr<Session> self) {
  try {
    if (!tls_context_ || co_await tls_handshake()) co_await read_loop();
  } catch (const std::exception& e) {
    // A bug or an allocation failure: this connection ends, the others go on.
    nats_log()->error("session reader failed peer={} error=\"{}\"", peer_, e.what());
    fatal({}, e.what());
  }
  if (timed_out_) {
    fatal(*timed_out_, admitted_ ? "an op not complete within frame_timeout"
                                 : "no CONNECT within handshake_timeout");
  }
  reading_ = false;
  reader_done_ = true;
  write_signal_.cancel();  // the writer may be waiting to learn that the reader is done
  (void)self;
}

// INFO in clear (it tells the client to start TLS), then the server side of the handshake,
// under the handshake deadline. A failure (a plaintext client, a certificate the CA does not
// vouch for, a stall) closes the connection with one log line: no -ERR without TLS.
asio::awaitable<bool> Session::tls_handshake() {
  const auto info = info_text();
  auto [ec, written] = co_await asio::async_write(socket_, asio::buffer(info), kUseTuple);
  tls_.emplace(socket_, *tls_context_);
  if (!ec) std::tie(ec) = co_await tls_->async_handshake(asio::ssl::stream_base::server, kUseTuple);
  if (ec || closed_) {
    if (!closed_) {
      nats_log()->warn("closing connection peer={} reason=\"{}\"", peer_,
                       timed_out_ ? std::string("TLS handshake not complete within "
                                                "handshake_timeout")
                                  : "TLS handshake failed: " + ec.message());
    }
    timed_out_.reset();  // nothing to tell the client: no -ERR without TLS
    reading_ = false;
    co_return false;
  }
  tls_established_ = true;
  peer_names_ = tls::peer_names(tls_->native_handle());
  write_signal_.cancel();  // the writer may now write
  co_return true;
}

Session::Awaitable Session::read_loop() {
  while (reading_ && !closed_) {
    // Every complete op of what was read; their views stay valid until the next read.
    for (;;) {
      if (auth_pending_ || outgoing_bytes_ > max_outgoing_bytes_) {
        if (context_.js) context_.js->flush();  // what this read staged for streams
        // We are the ones waiting, not the client: an op partly read must not run into
        // op_timeout meanwhile. Its clock starts again when reading resumes.
        in_op_ = false;
        while (reading_ && !closed_ && (auth_pending_ || outgoing_bytes_ > max_outgoing_bytes_)) {
          co_await read_signal_.async_wait(kUseTuple);
        }
      }
      if (!reading_ || closed_) co_return;
      auto op = parser_.next();
      if (!op) {
        fatal(op.error().text(), op.error().detail);
        co_return;
      }
      if (!*op) break;
      handle(**op);
    }
    // The stream publishes of this read go to the broker as one publish per stream.
    if (context_.js) context_.js->flush();
    // Bytes left over are an op that has begun: its clock runs until it is complete.
    if (parser_.buffered() == 0) {
      in_op_ = false;
    } else if (!in_op_) {
      in_op_ = true;
      op_started_at_ = Clock::now();
      arm_watchdog();
    }
    if (!co_await read_more()) co_return;
  }
}

// Reads what the socket has, up to 64 KiB at a time (1 KiB until admitted: thousands of pending
// connections must not hold 64 KiB each); false on EOF or error.
asio::awaitable<bool> Session::read_more() {
  constexpr std::size_t kReadChunk = 64 << 10;
  constexpr std::size_t kPendingReadChunk = 1 << 10;
  const auto room = parser_.prepare(admitted_ ? kReadChunk : kPendingReadChunk);
  const auto buffer = asio::buffer(room.data(), room.size());
  auto [ec, n] = tls_ ? co_await tls_->async_read_some(buffer, kUseTuple)
                      : co_await socket_.async_read_some(buffer, kUseTuple);
  if (ec) co_return false;
  parser_.commit(n);
  spoke_ = true;
  pings_out_ = 0;  // the client is alive
  co_return true;
}

Session::Awaitable Session::writer(std::shared_ptr<Session> self) {
  try {
    co_await write_loop();
  } catch (const std::exception& e) {
    nats_log()->error("session writer failed peer={} error=\"{}\"", peer_, e.what());
    fatal_ = false;  // no linger: close now
  }
  if (tls_established_ && !closed_ && reader_done_) {
    // close_notify, then the client's (bounded): also after a fatal -ERR. Not with the reader
    // still in a read: a shutdown would be a second operation reading the TLS stream.
    co_await tls_close(self);
  } else if (fatal_ && !closed_ && !tls_) {
    co_await linger(self);
  }
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  closed_ = true;
  reading_ = false;
  read_signal_.cancel();
  watchdog_.cancel();
  auth_delay_.cancel();
  for (const auto& [sid, handle] : subscriptions_) context_.router.unsubscribe(handle);
  subscriptions_.clear();
  context_.on_closed(this);
}

Session::Awaitable Session::write_loop() {
  constexpr std::size_t kMaxBuffers = 256;
  std::vector<std::string> sending;
  std::vector<asio::const_buffer> buffers;
  for (;;) {
    // On TLS nothing is written before the handshake has completed.
    while ((outgoing_.empty() || (tls_context_ && !tls_established_)) && !closed_ &&
           (reading_ || auth_pending_)) {
      co_await write_signal_.async_wait(kUseTuple);
    }
    if (closed_ || outgoing_.empty() || (tls_context_ && !tls_established_)) co_return;
    // `buffers` points into these strings: reserved before they are moved in, so that no
    // reallocation moves the bytes of a short (in-place) one.
    sending.reserve(kMaxBuffers);
    sending.clear();
    buffers.clear();
    while (!outgoing_.empty() && sending.size() < kMaxBuffers) {
      sending.push_back(std::move(outgoing_.front()));
      outgoing_.pop_front();
      buffers.emplace_back(asio::buffer(sending.back()));
    }
    auto [ec, n] = tls_ ? co_await asio::async_write(*tls_, buffers, kUseTuple)
                        : co_await asio::async_write(socket_, buffers, kUseTuple);
    outgoing_bytes_ -= std::min(outgoing_bytes_, n);
    read_signal_.cancel();  // room again for the reader
    if (ec) co_return;
  }
}

// After a fatal -ERR the client may still be sending. Closing with unread bytes would reset
// the connection and could destroy the -ERR before the client reads it, so: FIN, then read and
// discard for a bounded time and amount, then close.
Session::Awaitable Session::linger(std::shared_ptr<Session> self) {
  constexpr auto kLingerTime = std::chrono::seconds(2);
  constexpr std::size_t kLingerBytes = 32 << 20;
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
  asio::steady_timer deadline(socket_.get_executor());
  deadline.expires_after(kLingerTime);
  deadline.async_wait([self](boost::system::error_code ec) {
    boost::system::error_code ignored_too;
    if (!ec) self->socket_.cancel(ignored_too);
  });
  std::array<char, 16384> sink{};
  for (std::size_t total = 0; total < kLingerBytes;) {
    auto [ec, n] = co_await socket_.async_read_some(asio::buffer(sink), kUseTuple);
    if (ec) break;
    total += n;
  }
  deadline.cancel();
}

// TLS close: our close_notify, then the client's, bounded in time like the plaintext linger.
Session::Awaitable Session::tls_close(std::shared_ptr<Session> self) {
  constexpr auto kCloseTime = std::chrono::seconds(2);
  asio::steady_timer deadline(socket_.get_executor());
  deadline.expires_after(kCloseTime);
  deadline.async_wait([self](boost::system::error_code ec) {
    boost::system::error_code ignored;
    if (!ec) self->socket_.cancel(ignored);
  });
  std::ignore = co_await tls_->async_shutdown(kUseTuple);  // a failure: close anyway
  deadline.cancel();
}

std::string& Session::out() {
  if (outgoing_.empty() || outgoing_.back().size() >= kShareBelow) outgoing_.emplace_back();
  return outgoing_.back();
}

void Session::queued(std::size_t bytes) {
  outgoing_bytes_ += bytes;
  write_signal_.cancel();
}

std::string Session::info_text() const {
  auto info = context_.info;
  info["client_id"] = client_id_;
  info["client_ip"] = peer_address_;
  if (tls_context_) info["tls_required"] = true;
  std::string text;
  nats::append_info(text, boost::json::serialize(info));
  return text;
}

void Session::send_info() {
  auto text = info_text();
  const std::size_t n = text.size();
  outgoing_.push_back(std::move(text));
  queued(n);
}

void Session::send_ok() {
  if (closed_) return;
  auto& o = out();
  const std::size_t before = o.size();
  nats::append_ok(o);
  queued(o.size() - before);
}

void Session::send_err(std::string_view text) {
  if (closed_) return;
  auto& o = out();
  const std::size_t before = o.size();
  nats::append_err(o, text);
  queued(o.size() - before);
}

void Session::fatal(std::string_view text, std::string_view reason) {
  if (closed_ || fatal_) return;
  if (tls_context_ && !tls_established_) {
    // No TLS session to carry a -ERR yet: just close.
    reading_ = false;
    read_signal_.cancel();
    write_signal_.cancel();
    return;
  }
  nats_log()->warn("closing connection peer={} name=\"{}\" error=\"{}\" reason=\"{}\"", peer_,
                   auth::loggable_name(name_), text, reason);
  if (!text.empty()) send_err(text);
  reading_ = false;
  fatal_ = true;
  read_signal_.cancel();
  write_signal_.cancel();
}

void Session::admit() {
  if (admitted_) return;
  admitted_ = true;
  parser_.set_max_payload(context_.options.max_payload);
  context_.on_admitted(this);
  arm_watchdog();
}

void Session::on_ping_interval() {
  if (closed_ || fatal_ || !admitted_) return;
  if (pings_out_ >= 2) return fatal(nats::kErrStaleConnection, "two PINGs unanswered");
  ++pings_out_;
  auto& o = out();
  const std::size_t before = o.size();
  nats::append_ping(o);
  queued(o.size() - before);
}

bool Session::deliver(const Subscription& sub, const Outbound& m) {
  if (closed_ || fatal_) return false;
  // A wildcard subscription was admitted for its pattern; a `deny` of the user may still cut
  // out some of the subjects it matches.
  if (sub.wildcard && users_required() && !may_subscribe(m.subject)) return false;
  auto& o = out();
  const std::size_t before = o.size();
  if (headers_ && !m.headers.empty()) {
    nats::append_hmsg(o, m.subject, sub.sid, m.reply, m.headers, m.payload);
  } else {
    // A client that did not ask for headers gets the payload alone, as from nats-server.
    nats::append_msg(o, m.subject, sub.sid, m.reply, m.payload);
  }
  const std::size_t n = o.size() - before;
  ++context_.figures.messages_out;
  context_.figures.bytes_out += m.headers.size() + m.payload.size();
  queued(n);
  if (!m.reply.empty()) remember_reply(m.reply);
  if (outgoing_bytes_ > max_outgoing_bytes_) {
    ++context_.figures.slow_consumers;
    nats_log()->warn(
        "slow consumer closed peer={} name=\"{}\" queued={} max_send_queue={} subject={}", peer_,
        auth::loggable_name(name_), outgoing_bytes_, max_outgoing_bytes_,
        auth::loggable_name(m.subject));
    close();
  }
  return true;
}

void Session::on_subscription_finished(const Subscription& sub) { subscriptions_.erase(sub.sid); }

// The handshake deadline until admitted, then the deadline of the op being read, if any.
std::optional<Session::Clock::time_point> Session::watchdog_due() const {
  if (!admitted_) return accepted_at_ + handshake_timeout_;
  if (in_op_) return op_started_at_ + context_.options.op_timeout;
  return std::nullopt;
}

// At most one wait is pending; an op that starts while one is pending does not re-arm it, so
// the timer is touched about once per timeout, not once per op.
void Session::arm_watchdog() {
  if (watchdog_armed_ || closed_ || !reading_) return;
  const auto due = watchdog_due();
  if (!due) return;
  watchdog_armed_ = true;
  watchdog_.expires_at(*due);
  watchdog_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    self->watchdog_armed_ = false;
    if (!ec) self->on_watchdog();
  });
}

void Session::on_watchdog() {
  if (closed_ || !reading_ || timed_out_) return;
  const auto now = Clock::now();
  const auto due = watchdog_due();
  if (!due) return;
  if (now < *due) return arm_watchdog();
  // Bytes waiting in the kernel mean the client is sending and we are behind: not a stall.
  boost::system::error_code ec;
  if (admitted_ && socket_.available(ec) > 0 && !ec) {
    op_started_at_ = now;
    return arm_watchdog();
  }
  timed_out_ = std::string(admitted_ ? nats::kErrStaleConnection : kErrAuthenticationTimeout);
  if (auth_pending_) {
    // The reader waits for the login, not for the socket: end it here.
    fatal(*timed_out_, "no CONNECT within handshake_timeout");
    return;
  }
  boost::system::error_code ignored;
  socket_.cancel(ignored);  // ends the pending read; the reader then reports timed_out_
}

}  // namespace loft::natsport
