#include "session.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <span>

#include "loft/protocol/codec.hpp"
#include "loft/tls/tls.hpp"
#include "log.hpp"

namespace loft::net {

namespace asio = boost::asio;
using asio::ip::tcp;
namespace {

// Small frames share a buffer: a client that pipelines a million PINGs and reads nothing
// then costs about its reply bytes (what max_send_queue counts), not a string per reply.
constexpr std::size_t kShareBelow = 64 << 10;

// Frames a connection may send before it is admitted (HELLO and the like are tiny): a pending
// connection cannot make us buffer a max_frame_size frame.
constexpr std::uint32_t kPendingMaxFrameSize = 64 << 10;

}  // namespace

Session::Session(SessionContext& context, Stream stream)
    : context_(context),
      stream_(std::move(stream)),
      read_signal_(stream_.get_executor()),
      write_signal_(stream_.get_executor()),
      watchdog_(stream_.get_executor()),
      accepted_at_(Clock::now()),
      max_inflight_requests_(context.options.max_inflight_requests),
      max_outgoing_bytes_(context.options.max_outgoing_bytes),
      handshake_timeout_(context.options.handshake_timeout),
      decoder_(std::min(context.options.limits.max_frame_size, kPendingMaxFrameSize)),
      auth_delay_(stream_.get_executor()) {
  read_signal_.expires_at(asio::steady_timer::time_point::max());
  write_signal_.expires_at(asio::steady_timer::time_point::max());
  boost::system::error_code ec;
  const auto ep = stream_.socket().remote_endpoint(ec);
  peer_ = ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
  peer_is_loopback_ = !ec && ep.address().is_loopback();
  peer_address_ = ec ? std::string("?") : ep.address().to_string();
}

void Session::start() {
  auto on_done = [](const std::exception_ptr& e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      net_log()->error("session coroutine failed error={}", ex.what());
    }
  };
  asio::co_spawn(stream_.get_executor(), reader(shared_from_this()), on_done);
  asio::co_spawn(stream_.get_executor(), writer(shared_from_this()), on_done);
  arm_watchdog();
}

void Session::stop_reading() {
  boost::system::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_receive, ec);
  reading_ = false;
  read_signal_.cancel();
}

// Hard: drop everything now.
void Session::close() {
  boost::system::error_code ec;
  stream_.socket().close(ec);
  closed_ = true;
  read_signal_.cancel();
  write_signal_.cancel();
}

Session::Awaitable Session::reader(std::shared_ptr<Session> self) {
  try {
    if (!stream_.secure() || co_await tls_handshake()) co_await read_loop();
  } catch (const std::exception& e) {
    // A bug or an allocation failure: this connection ends, the others go on.
    net_log()->error("session reader failed peer={} error=\"{}\"", peer_, e.what());
    fatal(0, Error{Errc::internal_error, e.what()});
  }
  // The watchdog cancelled the read: say why before closing. The correlation id is 0: the
  // frame's header may not even be complete.
  if (timed_out_) fatal(0, *timed_out_);
  reading_ = false;
  write_signal_.cancel();  // the writer may be waiting to learn that the reader is done
  (void)self;
}

// The server side of the TLS handshake. A failure (a plaintext client, a certificate the CA
// does not vouch for, a client that stalls past handshake_timeout) ends the connection with
// one log line: without a completed handshake there is no way to send an ERROR frame.
asio::awaitable<bool> Session::tls_handshake() {
  const auto ec = co_await stream_.handshake();
  if (ec || closed_) {
    if (!closed_) {
      const std::string reason = timed_out_
                                     ? "TLS handshake not complete within handshake_timeout " +
                                           std::to_string(handshake_timeout_.count()) + "ms"
                                     : "TLS handshake failed: " + ec.message();
      net_log()->warn("closing connection peer={} reason=\"{}\"", peer_, reason);
    }
    timed_out_.reset();  // nothing to tell the client: no ERROR frame without TLS
    reading_ = false;
    co_return false;
  }
  tls_established_ = true;
  peer_names_ = tls::peer_names(stream_.ssl());
  authenticate_by_certificate();
  co_return true;
}

Session::Awaitable Session::read_loop() {
  const auto paused = [this] {
    return inflight_ >= max_inflight_requests_ ||
           inflight_bytes_ >= context_.options.max_inflight_bytes ||
           outgoing_bytes_ > max_outgoing_bytes_;
  };
  // Pausing is judged between frames only, as a client expects: a frame it has begun to send is
  // read to its end (its bytes are bounded by max_frame_size).
  bool at_boundary = true;
  while (reading_ && !closed_) {
    if (at_boundary && paused()) {
      // We are the ones waiting, not the client: a frame partly in the buffer must not run
      // into frame_timeout meanwhile. Its clock starts again when reading resumes.
      in_frame_ = false;
      while (reading_ && !closed_ && paused()) co_await read_signal_.async_wait(kUseTuple);
      if (decoder_.buffered() > 0) begin_frame();
    }
    if (!reading_ || closed_) break;
    auto frame = decoder_.next();
    if (!frame) {
      // A bad header's length cannot be trusted, so the stream cannot be resynchronised:
      // report with the correlation id the client sent, then close.
      fatal(decoder_.failed_correlation_id(), frame.error());
      break;
    }
    if (!*frame) {
      if (!co_await read_more()) break;
      at_boundary = decoder_.buffered() == 0;
      continue;
    }
    at_boundary = true;
    // Bytes left over belong to the next frame, which has therefore begun.
    if (decoder_.buffered() > 0) {
      begin_frame();
    } else {
      in_frame_ = false;
    }
    // What the request holds in memory until it is answered: its bytes, plus the decoded
    // form of each message (tiny messages decode to far more than their wire size).
    current_cost_ = decoder_.last_frame_size() - protocol::kHeaderSize;
    if (const auto* p = std::get_if<protocol::Publish>(&(*frame)->body)) {
      current_cost_ += p->messages.size() * sizeof(Message);
    }
    dispatch((*frame)->correlation_id, std::move((*frame)->body));
  }
}

// Reads what the socket has, up to 64 KiB at a time (so one syscall brings in thousands of tiny
// pipelined frames), straight into the decoder's buffer; false on EOF or error. The bytes that
// arrive into an empty buffer start a frame. Until admitted, a session reads in small chunks:
// thousands of pending connections that send nothing must not hold 64 KiB each.
asio::awaitable<bool> Session::read_more() {
  constexpr std::size_t kReadChunk = 64 << 10;
  constexpr std::size_t kPendingReadChunk = 1 << 10;
  const bool was_empty = decoder_.buffered() == 0;
  const auto room = decoder_.prepare(admitted_ ? kReadChunk : kPendingReadChunk);
  auto [ec, n] = co_await stream_.read_some(asio::buffer(room.data(), room.size()));
  if (ec) co_return false;
  decoder_.commit(n);
  spoke_ = spoke_ || n > 0;
  if (was_empty) begin_frame();
  co_return true;
}

Session::Awaitable Session::writer(std::shared_ptr<Session> self) {
  try {
    co_await write_loop();
  } catch (const std::exception& e) {
    net_log()->error("session writer failed peer={} error=\"{}\"", peer_, e.what());
    fatal_ = false;  // no linger: close now
  }
  boost::system::error_code ignored;
  if (fatal_ && !closed_) {
    co_await linger(self);
  } else if (tls_established_ && !closed_ && !reading_) {
    // Not after a failed write with the reader still waiting: the connection is broken, and
    // a shutdown would be a second operation reading the TLS stream.
    co_await tls_shutdown(self);
  }
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.socket().close(ignored);
  closed_ = true;
  reading_ = false;
  read_signal_.cancel();
  watchdog_.cancel();
  auth_delay_.cancel();
  // Its subscriptions end: what was in flight to them goes to the group's other consumers.
  context_.groups.groups().drop_subscriber(this, GroupRunner::now());
  context_.groups.arm();
  context_.on_closed(this);
}

Session::Awaitable Session::write_loop() {
  // Reserved once, at the first write (not before: a pending connection that is never answered
  // must stay cheap): `buffers` points into these strings, and a reallocation would move the
  // bytes of a short (in-place) one, such as a 12-byte frame with an empty body.
  constexpr std::size_t kMaxBuffers = 256;
  std::vector<std::string> sending;
  std::vector<asio::const_buffer> buffers;
  for (;;) {
    while (outgoing_.empty() && !closed_ && !(finished())) {
      // A fatal error is answered after every request before it (docs/protocol.md 7.3).
      if (pending_fatal_ && inflight_ == 0) {
        auto [cid, error] = std::move(*pending_fatal_);
        pending_fatal_.reset();
        send_error(cid, error);
        continue;
      }
      co_await write_signal_.async_wait(kUseTuple);
    }
    if (closed_ || outgoing_.empty()) break;
    sending.reserve(kMaxBuffers);
    sending.clear();
    buffers.clear();
    while (!outgoing_.empty() && sending.size() < kMaxBuffers) {
      sending.push_back(std::move(outgoing_.front()));
      outgoing_.pop_front();
      buffers.emplace_back(asio::buffer(sending.back()));
    }
    auto [ec, n] = co_await stream_.write(buffers);
    outgoing_bytes_ -= std::min(outgoing_bytes_, n);
    read_signal_.cancel();  // room again for the reader
    if (ec) break;
    if (backed_up_ && ready()) {
      backed_up_ = false;
      context_.groups.groups().on_ready(this, GroupRunner::now());
      context_.groups.arm();
    }
  }
}

// After a fatal error the client may still be sending (the body of an oversized frame, more
// pipelined requests). Closing with unread bytes would reset the connection and could
// destroy our ERROR frame before the client reads it, so: FIN, then read and discard for a
// bounded time and amount before closing.
// Over TLS the same in TLS terms: close_notify, then read (and discard) until the client's
// close_notify, its FIN or the same bound.
Session::Awaitable Session::linger(std::shared_ptr<Session> self) {
  constexpr auto kLingerTime = std::chrono::seconds(2);
  constexpr std::size_t kLingerBytes = 32 << 20;
  if (stream_.secure()) {
    if (tls_established_) co_await tls_shutdown(self);
    co_return;
  }
  boost::system::error_code ignored;
  auto& socket = stream_.socket();
  socket.shutdown(tcp::socket::shutdown_send, ignored);
  asio::steady_timer deadline(socket.get_executor());
  deadline.expires_after(kLingerTime);
  deadline.async_wait([self](boost::system::error_code ec) {
    boost::system::error_code ignored;
    if (!ec) self->stream_.socket().cancel(ignored);
  });
  std::array<char, 16384> sink{};
  for (std::size_t total = 0; total < kLingerBytes;) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(sink), kUseTuple);
    if (ec) break;
    total += n;
  }
  deadline.cancel();
}

void Session::admit() {
  if (admitted_) return;
  admitted_ = true;
  decoder_.set_max_frame_size(context_.options.limits.max_frame_size);
  context_.on_admitted(this);
}

// TLS close: our close_notify, then the client's (OpenSSL discards application data that
// arrives meanwhile), bounded in time like the plaintext linger.
Session::Awaitable Session::tls_shutdown(std::shared_ptr<Session> self) {
  constexpr auto kShutdownTime = std::chrono::seconds(2);
  asio::steady_timer deadline(stream_.get_executor());
  deadline.expires_after(kShutdownTime);
  deadline.async_wait([self](boost::system::error_code ec) {
    boost::system::error_code ignored;
    if (!ec) self->stream_.socket().cancel(ignored);
  });
  co_await stream_.shutdown();  // a failure: close anyway
  deadline.cancel();
}

void Session::begin_frame() {
  in_frame_ = true;
  frame_started_at_ = Clock::now();
  arm_watchdog();
}

// When the watchdog must look next: the handshake deadline until HELLO completes, then the
// deadline of the frame being read, if any.
std::optional<Session::Clock::time_point> Session::watchdog_due() const {
  if (!handshaken_ || !authenticated()) return accepted_at_ + handshake_timeout_;
  if (in_frame_) return frame_started_at_ + context_.options.frame_timeout;
  return std::nullopt;
}

// At most one wait is pending, and a frame that starts while one is pending does not re-arm
// it: the timer is touched about once per timeout, not once per frame. A wait due later than
// the frame's own deadline (the handshake deadline) only makes that one frame's check late.
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
  if (now < *due) return arm_watchdog();  // a newer frame began since the wait was set
  // Bytes waiting in the kernel mean the client is sending and we are behind (a busy or
  // starved io thread): not a stall. Give the frame another period.
  boost::system::error_code ec;
  if (in_frame_ && stream_.socket().available(ec) > 0 && !ec) {
    frame_started_at_ = now;
    return arm_watchdog();
  }
  const auto timeout_ms = std::to_string(handshake_timeout_.count()) + "ms";
  timed_out_ =
      !handshaken_
          ? Error{Errc::handshake_timeout, "no HELLO within handshake_timeout " + timeout_ms}
      : !authenticated() ? Error{Errc::handshake_timeout,
                                 "not authenticated within handshake_timeout " + timeout_ms}
                         : Error{Errc::frame_timeout,
                                 "frame not complete within frame_timeout " +
                                     std::to_string(context_.options.frame_timeout.count()) + "ms"};
  // Ends the pending read (and a pending write: a client that stalls a frame and does not
  // read either gets no ERROR); the reader then reports timed_out_.
  boost::system::error_code ignored;
  stream_.socket().cancel(ignored);
}

// A frame encoded elsewhere (DELIVER): appended to the last buffer if both are small,
// queued as it is otherwise.
void Session::send_encoded(std::string frame) {
  if (closed_) return;
  outgoing_bytes_ += frame.size();
  if (!outgoing_.empty() && outgoing_.back().size() < kShareBelow && frame.size() < kShareBelow) {
    outgoing_.back().append(frame);
  } else {
    outgoing_.push_back(std::move(frame));
  }
  write_signal_.cancel();
}

void Session::send(std::uint32_t correlation_id, protocol::Body body) {
  if (closed_) return;
  if (outgoing_.empty() || outgoing_.back().size() >= kShareBelow) outgoing_.emplace_back();
  auto& out = outgoing_.back();
  const std::size_t before = out.size();
  protocol::encode(protocol::Frame{correlation_id, std::move(body)}, out);
  outgoing_bytes_ += out.size() - before;
  write_signal_.cancel();
}

void Session::send_error(std::uint32_t correlation_id, const Error& error) {
  send(correlation_id, protocol::ErrorReply{error.code, error.to_string()});
}

void Session::fatal(std::uint32_t correlation_id, const Error& error) {
  net_log()->warn("closing connection peer={} code={} reason=\"{}\"", peer_,
                  static_cast<int>(error.code), error.to_string());
  if (stream_.secure() && !tls_established_) {
    // No TLS session to carry an ERROR frame yet: just close.
    reading_ = false;
    write_signal_.cancel();
    return;
  }
  pending_fatal_ = std::pair{correlation_id, error};
  reading_ = false;
  fatal_ = true;
  write_signal_.cancel();
}

// Encodes the batch straight from the stored bytes into DELIVER frames of at most
// max_frame_size, with the SUBSCRIBE's correlation id.
void Session::deliver(const broker::DeliveryBatch& batch) {
  const auto it = subscriptions_.find(batch.subscription);
  if (it == subscriptions_.end()) return;
  const std::uint32_t cid = it->second;
  protocol::DeliverWriter frame{batch.subscription, batch.topic, batch.group};
  const auto flush = [&] {
    auto bytes = frame.take();
    protocol::set_correlation_id(bytes, cid);
    send_encoded(std::move(bytes));
  };
  const std::size_t max_frame = context_.options.limits.max_frame_size;
  for (const auto& m : batch.messages) {
    const std::size_t n = protocol::DeliverWriter::encoded_size(*m.message);
    if (frame.count() > 0 && frame.size() + n > max_frame) flush();
    frame.add(m.attempt, *m.message);
  }
  if (frame.count() > 0) flush();
  if (!ready()) backed_up_ = true;
}

}  // namespace loft::net
