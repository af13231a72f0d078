#include "loft/net/server.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <optional>
#include <span>
#include <unordered_map>

#include "loft/protocol/codec.hpp"

namespace loft::net {

namespace asio = boost::asio;
using asio::ip::tcp;
using tcp_awaitable = asio::awaitable<void>;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

namespace {

std::shared_ptr<spdlog::logger> net_log() {
  static auto log = [] {
    auto existing = spdlog::get("net");
    return existing ? existing : spdlog::default_logger()->clone("net");
  }();
  return log;
}

// A connection over max_connections: ERROR too_many_connections (correlation id 0: nothing
// was read), then, as after any fatal error, FIN and a short drain of what the client already
// sent (its HELLO), so that the close does not reset the connection before the client has
// read the ERROR. Owns the socket; bounded in time and bytes.
asio::awaitable<void> refuse_connection(tcp::socket socket, std::string error_frame) {
  constexpr auto kLingerTime = std::chrono::seconds(1);
  constexpr std::size_t kLingerBytes = 64 << 10;
  boost::system::error_code ignored;
  auto [ec, n] = co_await asio::async_write(socket, asio::buffer(error_frame), kUseTuple);
  if (!ec) {
    socket.shutdown(tcp::socket::shutdown_send, ignored);
    asio::steady_timer deadline(socket.get_executor());
    deadline.expires_after(kLingerTime);
    // Runs with an error, touching nothing, if the drain ends first and destroys the timer.
    deadline.async_wait([&socket](boost::system::error_code e) {
      boost::system::error_code ignored_too;
      if (!e) socket.cancel(ignored_too);
    });
    std::array<char, 4096> sink{};
    for (std::size_t total = 0; total < kLingerBytes;) {
      std::tie(ec, n) = co_await socket.async_read_some(asio::buffer(sink), kUseTuple);
      if (ec) break;
      total += n;
    }
    deadline.cancel();
  }
  socket.close(ignored);
}

}  // namespace

// One client connection. Runs entirely on the server's single-threaded io_context: a reader
// coroutine (decode, dispatch) and a writer coroutine (flush the outgoing queue). Broker
// completions arrive on the broker's writer thread and are posted back here.
//
// Bounds: the reader pauses while `inflight_` >= max_inflight_requests or while unsent reply
// bytes exceed max_outgoing_bytes, so a client that floods requests or never reads its
// replies is throttled by TCP instead of growing our memory. A watchdog timer closes the
// session when HELLO does not complete within handshake_timeout, or a frame that has begun
// does not complete within frame_timeout; between frames a session may idle for ever.
class Session : public std::enable_shared_from_this<Session>, public broker::Subscriber {
 public:
  Session(Server& server, tcp::socket socket)
      : server_(server),
        socket_(std::move(socket)),
        read_signal_(socket_.get_executor()),
        write_signal_(socket_.get_executor()),
        watchdog_(socket_.get_executor()),
        accepted_at_(Clock::now()),
        max_inflight_requests_(server.options_.max_inflight_requests),
        max_outgoing_bytes_(server.options_.max_outgoing_bytes),
        handshake_timeout_(server.options_.handshake_timeout) {
    read_signal_.expires_at(asio::steady_timer::time_point::max());
    write_signal_.expires_at(asio::steady_timer::time_point::max());
    boost::system::error_code ec;
    const auto ep = socket_.remote_endpoint(ec);
    peer_ = ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  void start() {
    auto on_done = [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        net_log()->error("session coroutine failed error={}", ex.what());
      }
    };
    asio::co_spawn(socket_.get_executor(), reader(shared_from_this()), on_done);
    asio::co_spawn(socket_.get_executor(), writer(shared_from_this()), on_done);
    arm_watchdog();
  }

  // Graceful: no more requests are read; in-flight ones complete and are flushed.
  void stop_reading() {
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_receive, ec);
    reading_ = false;
    read_signal_.cancel();
  }

  // broker::Subscriber
  bool ready() const override { return !closed_ && outgoing_bytes_ <= max_outgoing_bytes_; }
  // Encodes the batch straight from the stored bytes into DELIVER frames of at most
  // max_frame_size, with the SUBSCRIBE's correlation id.
  void deliver(const broker::DeliveryBatch& batch) override {
    const auto it = subscriptions_.find(batch.subscription);
    if (it == subscriptions_.end()) return;
    const std::uint32_t cid = it->second;
    protocol::DeliverWriter frame{batch.subscription, batch.topic, batch.group};
    const auto flush = [&] {
      auto bytes = frame.take();
      protocol::set_correlation_id(bytes, cid);
      send_encoded(std::move(bytes));
    };
    const std::size_t max_frame = server_.options_.limits.max_frame_size;
    for (const auto& m : batch.messages) {
      const std::size_t n = protocol::DeliverWriter::encoded_size(*m.message);
      if (frame.count() > 0 && frame.size() + n > max_frame) flush();
      frame.add(m.attempt, *m.message);
    }
    if (frame.count() > 0) flush();
    if (!ready()) backed_up_ = true;
  }
  std::string client_name() const override { return client_name_; }

  // Hard: drop everything now.
  void close() {
    boost::system::error_code ec;
    socket_.close(ec);
    closed_ = true;
    read_signal_.cancel();
    write_signal_.cancel();
  }

 private:
  tcp_awaitable reader(std::shared_ptr<Session> self) {
    try {
      co_await read_loop();
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

  tcp_awaitable read_loop() {
    const auto paused = [this] {
      return inflight_ >= max_inflight_requests_ ||
             inflight_bytes_ >= server_.options_.max_inflight_bytes ||
             outgoing_bytes_ > max_outgoing_bytes_;
    };
    while (reading_ && !closed_) {
      if (paused()) {
        // We are the ones waiting, not the client: a frame partly in the buffer must not run
        // into frame_timeout meanwhile. Its clock starts again when reading resumes.
        in_frame_ = false;
        while (reading_ && !closed_ && paused()) co_await read_signal_.async_wait(kUseTuple);
        if (in_begin_ < in_.size()) begin_frame();
      }
      if (!reading_ || closed_) break;
      if (!co_await fill(protocol::kHeaderSize)) break;
      const std::span<const char> head(in_.data() + in_begin_, protocol::kHeaderSize);
      auto header = protocol::decode_header(head, server_.options_.limits.max_frame_size);
      if (!header) {
        // The length cannot be trusted, so the stream cannot be resynchronised: report with
        // the correlation id the client sent, then close.
        fatal(protocol::peek_header(head).correlation_id, header.error());
        break;
      }
      const std::size_t frame_size = std::size_t{header->length} + 4;
      if (!co_await fill(frame_size)) break;
      const std::span<const char> body(in_.data() + in_begin_ + protocol::kHeaderSize,
                                       frame_size - protocol::kHeaderSize);
      auto frame_body = protocol::decode_body(*header, body);
      consume(frame_size);
      if (!frame_body) {
        fatal(header->correlation_id, frame_body.error());
        break;
      }
      // What the request holds in memory until it is answered: its bytes, plus the decoded
      // form of each message (tiny messages decode to far more than their wire size).
      current_cost_ = body.size();
      if (const auto* p = std::get_if<protocol::Publish>(&*frame_body)) {
        current_cost_ += p->messages.size() * sizeof(Message);
      }
      dispatch(header->correlation_id, std::move(*frame_body));
    }
  }

  // Reads until at least `need` bytes are buffered; false on EOF or error. Reads in chunks of
  // up to 64 KiB, so one syscall brings in thousands of tiny pipelined frames instead of two
  // syscalls per frame. The bytes that arrive into an empty buffer start a frame.
  asio::awaitable<bool> fill(std::size_t need) {
    constexpr std::size_t kReadChunk = 64 << 10;
    while (in_.size() - in_begin_ < need) {
      if (in_begin_ > 0) {
        in_.erase(0, in_begin_);  // only the start of one frame is left
        in_begin_ = 0;
      }
      const std::size_t have = in_.size();
      in_.resize(std::max(have + kReadChunk, need));
      auto [ec, n] = co_await socket_.async_read_some(
          asio::buffer(in_.data() + have, in_.size() - have), kUseTuple);
      in_.resize(have + n);
      if (ec) co_return false;
      if (have == 0) begin_frame();
    }
    co_return true;
  }

  // Drops a decoded frame from the buffer. Bytes left over belong to the next frame, which
  // has therefore begun.
  void consume(std::size_t frame_size) {
    in_begin_ += frame_size;
    if (in_begin_ < in_.size()) return begin_frame();
    in_.clear();
    in_begin_ = 0;
    in_frame_ = false;
  }

  tcp_awaitable writer(std::shared_ptr<Session> self) {
    try {
      co_await write_loop();
    } catch (const std::exception& e) {
      net_log()->error("session writer failed peer={} error=\"{}\"", peer_, e.what());
      fatal_ = false;  // no linger: close now
    }
    boost::system::error_code ignored;
    if (fatal_ && !closed_) co_await linger(self);
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    closed_ = true;
    reading_ = false;
    read_signal_.cancel();
    watchdog_.cancel();
    // Its subscriptions end: what was in flight to them goes to the group's other consumers.
    server_.groups_->drop_subscriber(this, Server::now());
    server_.arm_groups_timer();
    server_.on_session_closed(this);
  }

  tcp_awaitable write_loop() {
    // Reserved once: `buffers` points into these strings, and a reallocation would move the
    // bytes of a short (in-place) one, such as a 12-byte frame with an empty body.
    constexpr std::size_t kMaxBuffers = 256;
    std::vector<std::string> sending;
    sending.reserve(kMaxBuffers);
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
      sending.clear();
      buffers.clear();
      while (!outgoing_.empty() && sending.size() < kMaxBuffers) {
        sending.push_back(std::move(outgoing_.front()));
        outgoing_.pop_front();
        buffers.emplace_back(asio::buffer(sending.back()));
      }
      auto [ec, n] = co_await asio::async_write(socket_, buffers, kUseTuple);
      outgoing_bytes_ -= std::min(outgoing_bytes_, n);
      read_signal_.cancel();  // room again for the reader
      if (ec) break;
      if (backed_up_ && ready()) {
        backed_up_ = false;
        server_.groups_->on_ready(this, Server::now());
        server_.arm_groups_timer();
      }
    }
  }

  // After a fatal error the client may still be sending (the body of an oversized frame, more
  // pipelined requests). Closing with unread bytes would reset the connection and could
  // destroy our ERROR frame before the client reads it, so: FIN, then read and discard for a
  // bounded time and amount before closing.
  tcp_awaitable linger(std::shared_ptr<Session> self) {
    constexpr auto kLingerTime = std::chrono::seconds(2);
    constexpr std::size_t kLingerBytes = 32 << 20;
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    asio::steady_timer deadline(socket_.get_executor());
    deadline.expires_after(kLingerTime);
    deadline.async_wait([self](boost::system::error_code ec) {
      boost::system::error_code ignored;
      if (!ec) self->socket_.cancel(ignored);
    });
    std::array<char, 16384> sink{};
    for (std::size_t total = 0; total < kLingerBytes;) {
      auto [ec, n] = co_await socket_.async_read_some(asio::buffer(sink), kUseTuple);
      if (ec) break;
      total += n;
    }
    deadline.cancel();
  }

  using Clock = std::chrono::steady_clock;

  void begin_frame() {
    in_frame_ = true;
    frame_started_at_ = Clock::now();
    arm_watchdog();
  }

  // When the watchdog must look next: the handshake deadline until HELLO completes, then the
  // deadline of the frame being read, if any.
  std::optional<Clock::time_point> watchdog_due() const {
    if (!handshaken_) return accepted_at_ + handshake_timeout_;
    if (in_frame_) return frame_started_at_ + server_.options_.frame_timeout;
    return std::nullopt;
  }

  // At most one wait is pending, and a frame that starts while one is pending does not re-arm
  // it: the timer is touched about once per timeout, not once per frame. A wait due later than
  // the frame's own deadline (the handshake deadline) only makes that one frame's check late.
  void arm_watchdog() {
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

  void on_watchdog() {
    if (closed_ || !reading_ || timed_out_) return;
    const auto now = Clock::now();
    const auto due = watchdog_due();
    if (!due) return;
    if (now < *due) return arm_watchdog();  // a newer frame began since the wait was set
    // Bytes waiting in the kernel mean the client is sending and we are behind (a busy or
    // starved io thread): not a stall. Give the frame another period.
    boost::system::error_code ec;
    if (in_frame_ && socket_.available(ec) > 0 && !ec) {
      frame_started_at_ = now;
      return arm_watchdog();
    }
    timed_out_ =
        !handshaken_
            ? Error{Errc::handshake_timeout, "no HELLO within handshake_timeout " +
                                                 std::to_string(handshake_timeout_.count()) + "ms"}
            : Error{Errc::frame_timeout,
                    "frame not complete within frame_timeout " +
                        std::to_string(server_.options_.frame_timeout.count()) + "ms"};
    // Ends the pending read (and a pending write: a client that stalls a frame and does not
    // read either gets no ERROR); the reader then reports timed_out_.
    boost::system::error_code ignored;
    socket_.cancel(ignored);
  }

  // Nothing more will be sent: the reader is done and every request has been answered.
  bool finished() const { return !reading_ && inflight_ == 0 && !pending_fatal_; }

  // Small frames share a buffer: a client that pipelines a million PINGs and reads nothing
  // then costs about its reply bytes (what max_send_queue counts), not a string per reply.
  static constexpr std::size_t kShareBelow = 64 << 10;

  // A frame encoded elsewhere (DELIVER): appended to the last buffer if both are small,
  // queued as it is otherwise.
  void send_encoded(std::string frame) {
    if (closed_) return;
    outgoing_bytes_ += frame.size();
    if (!outgoing_.empty() && outgoing_.back().size() < kShareBelow && frame.size() < kShareBelow) {
      outgoing_.back().append(frame);
    } else {
      outgoing_.push_back(std::move(frame));
    }
    write_signal_.cancel();
  }

  void send(std::uint32_t correlation_id, protocol::Body body) {
    if (closed_) return;
    if (outgoing_.empty() || outgoing_.back().size() >= kShareBelow) outgoing_.emplace_back();
    auto& out = outgoing_.back();
    const std::size_t before = out.size();
    protocol::encode(protocol::Frame{correlation_id, std::move(body)}, out);
    outgoing_bytes_ += out.size() - before;
    write_signal_.cancel();
  }

  void send_error(std::uint32_t correlation_id, const Error& error) {
    send(correlation_id, protocol::ErrorReply{error.code, error.to_string()});
  }

  void fatal(std::uint32_t correlation_id, const Error& error) {
    net_log()->warn("closing connection peer={} code={} reason=\"{}\"", peer_,
                    static_cast<int>(error.code), error.to_string());
    pending_fatal_ = std::pair{correlation_id, error};
    reading_ = false;
    fatal_ = true;
    write_signal_.cancel();
  }

  // For a request the broker answers later, from its writer thread.
  template <class T, class Reply>
  broker::Callback<T> completion(std::uint32_t correlation_id, Reply make_reply) {
    // The broker completes on its writer thread: hop to this session's thread first.
    return [executor = socket_.get_executor(),
            reply = local<T>(correlation_id, std::move(make_reply))](Result<T> result) mutable {
      asio::post(executor, [reply = std::move(reply), result = std::move(result)]() mutable {
        reply(std::move(result));
      });
    };
  }

  // For requests the groups answer on this thread (at once, or later through a post): no
  // second post, so a SUBSCRIBE_OK is queued before the first DELIVER of that subscription.
  template <class T, class Reply>
  broker::Callback<T> local(std::uint32_t correlation_id, Reply make_reply) {
    ++inflight_;
    inflight_bytes_ += current_cost_;
    return [self = shared_from_this(), correlation_id, cost = current_cost_,
            make_reply = std::move(make_reply)](Result<T> result) mutable {
      --self->inflight_;
      self->inflight_bytes_ -= cost;
      if (result) {
        self->send(correlation_id, make_reply(std::move(result)));
      } else {
        self->send_error(correlation_id, result.error());
      }
      self->read_signal_.cancel();
      self->write_signal_.cancel();
    };
  }

  // Consumer-group requests. Returns false if `body` is not one.
  bool dispatch_group(std::uint32_t cid, protocol::Body& body) {
    auto& groups = *server_.groups_;
    const auto now = Server::now();
    const bool handled = std::visit(
        [&](auto& req) -> bool {
          using R = std::decay_t<decltype(req)>;
          if constexpr (std::is_same_v<R, protocol::Subscribe>) {
            groups.subscribe(
                broker::SubscribeRequest{std::move(req.topic), std::move(req.group), req.start,
                                         req.max_in_flight, std::move(req.config)},
                this, now, local<broker::Subscribed>(cid, [this, cid](auto r) {
                  subscriptions_[r->subscription] = cid;
                  return protocol::Body{
                      protocol::SubscribeOk{r->subscription, r->created, r->ack_floor.value}};
                }));
          } else if constexpr (std::is_same_v<R, protocol::Settle>) {
            std::optional<std::uint32_t> delay;
            if (req.delay_ms != protocol::kBackoffDelay) delay = req.delay_ms;
            groups.settle(broker::SettleRequest{req.subscription, req.action, req.confirm, delay,
                                                std::move(req.runs)},
                          this, now, local<broker::Settled>(cid, [](auto r) {
                            return protocol::Body{protocol::SettleOk{r->applied, r->ignored}};
                          }));
          } else if constexpr (std::is_same_v<R, protocol::Unsubscribe>) {
            auto r = groups.unsubscribe(req.subscription, this, now);
            if (!r) {
              send_error(cid, r.error());
            } else {
              subscriptions_.erase(req.subscription);
              send(cid, protocol::UnsubscribeOk{});
            }
          } else if constexpr (std::is_same_v<R, protocol::CreateGroup>) {
            groups.create_group(
                broker::CreateGroupRequest{std::move(req.topic), std::move(req.group), req.start,
                                           std::move(req.config)},
                now, local<GroupInfo>(cid, [](auto r) {
                  return protocol::Body{protocol::CreateGroupOk{std::move(*r)}};
                }));
          } else if constexpr (std::is_same_v<R, protocol::ListGroups>) {
            auto r = groups.list_groups(req.topic);
            if (!r) return send_error(cid, r.error()), true;
            send(cid, protocol::ListGroupsOk{std::move(*r)});
          } else if constexpr (std::is_same_v<R, protocol::DescribeGroup>) {
            auto r = groups.describe_group(req.topic, req.group);
            if (!r) return send_error(cid, r.error()), true;
            send(cid, protocol::DescribeGroupOk{std::move(*r)});
          } else if constexpr (std::is_same_v<R, protocol::DeleteGroup>) {
            groups.delete_group(
                std::move(req.topic), std::move(req.group), now,
                local<void>(cid, [](auto) { return protocol::Body{protocol::DeleteGroupOk{}}; }));
          } else if constexpr (std::is_same_v<R, protocol::ResetGroup>) {
            groups.reset_group(std::move(req.topic), std::move(req.group), req.to, now,
                               local<GroupInfo>(cid, [](auto r) {
                                 return protocol::Body{protocol::ResetGroupOk{std::move(*r)}};
                               }));
          } else {
            return false;
          }
          return true;
        },
        body);
    if (handled) server_.arm_groups_timer();
    return handled;
  }

  void dispatch(std::uint32_t cid, protocol::Body body) {
    const auto type = protocol::type_of(body);
    if (!handshaken_) {
      if (type != protocol::FrameType::hello) {
        return fatal(cid, Error{Errc::handshake_required, "the first frame must be HELLO"});
      }
      const auto& hello = std::get<protocol::Hello>(body);
      if (hello.min_version > protocol::kProtocolVersion ||
          hello.max_version < protocol::kProtocolVersion || hello.min_version > hello.max_version) {
        return fatal(cid,
                     Error{Errc::unsupported_version,
                           "client speaks versions " + std::to_string(hello.min_version) + ".." +
                               std::to_string(hello.max_version) + ", server speaks 1..1"});
      }
      handshaken_ = true;
      client_name_ = hello.client_name;
      net_log()->debug("handshake peer={} client=\"{}\"", peer_, hello.client_name);
      return send(cid,
                  protocol::HelloOk{protocol::kProtocolVersion, server_.options_.limits,
                                    server_.options_.server_name, server_.broker_.durability()});
    }
    if (dispatch_group(cid, body)) return;
    auto& broker = server_.broker_;
    std::visit(
        [&](auto& req) {
          using R = std::decay_t<decltype(req)>;
          if constexpr (std::is_same_v<R, protocol::Hello>) {
            send_error(cid, Error{Errc::invalid_request, "HELLO was already sent"});
          } else if constexpr (std::is_same_v<R, protocol::Ping>) {
            send(cid, protocol::Pong{});
          } else if constexpr (std::is_same_v<R, protocol::CreateTopic>) {
            const broker::TopicSettings settings{req.dedup_window_ms, req.dedup_conflict,
                                                 req.retention};
            broker.create_topic(std::move(req.name), settings,
                                completion<TopicInfo>(cid, [](auto r) -> protocol::Body {
                                  return protocol::CreateTopicOk{std::move(*r)};
                                }));
          } else if constexpr (std::is_same_v<R, protocol::AlterTopic>) {
            broker.alter_topic(std::move(req.name), req.retention,
                               completion<TopicInfo>(cid, [](auto r) -> protocol::Body {
                                 return protocol::AlterTopicOk{std::move(*r)};
                               }));
          } else if constexpr (std::is_same_v<R, protocol::Backup>) {
            net_log()->info("backup requested peer={} dir=\"{}\"", peer_, req.dir);
            broker.backup(req.dir, completion<void>(cid, [dir = req.dir](auto) -> protocol::Body {
                            return protocol::BackupOk{dir};
                          }));
          } else if constexpr (std::is_same_v<R, protocol::DeleteTopic>) {
            broker.delete_topic(std::move(req.name),
                                completion<void>(cid, [](auto) -> protocol::Body {
                                  return protocol::DeleteTopicOk{};
                                }));
          } else if constexpr (std::is_same_v<R, protocol::ListTopics>) {
            send(cid, protocol::ListTopicsOk{broker.list_topics()});
          } else if constexpr (std::is_same_v<R, protocol::DescribeTopic>) {
            auto meta = broker.describe_topic(req.name);
            if (!meta) return send_error(cid, meta.error());
            send(cid, protocol::DescribeTopicOk{std::move(*meta)});
          } else if constexpr (std::is_same_v<R, protocol::Publish>) {
            // PUBLISH_OK must fit in a frame too.
            const std::size_t max_results =
                protocol::max_publish_results(server_.options_.limits.max_frame_size);
            if (req.messages.size() > max_results) {
              return send_error(cid, Error{Errc::invalid_request,
                                           "publish: " + std::to_string(req.messages.size()) +
                                               " messages in one request, at most " +
                                               std::to_string(max_results) + " fit in the reply"});
            }
            broker.publish(std::move(req.topic), std::move(req.messages),
                           completion<broker::Appended>(cid, [](auto r) -> protocol::Body {
                             protocol::PublishOk ok;
                             ok.results.reserve(r->results.size());
                             for (const auto& m : r->results) {
                               ok.results.push_back({m.code, m.duplicate, m.offset.value});
                             }
                             return ok;
                           }));
          } else if constexpr (std::is_same_v<R, protocol::Fetch>) {
            handle_fetch(cid, req);
          } else {
            fatal(cid, Error{Errc::unknown_frame_type, "frame type " +
                                                           std::to_string(static_cast<int>(type)) +
                                                           " is a reply, not a request"});
          }
        },
        body);
  }

  void handle_fetch(std::uint32_t cid, const protocol::Fetch& req) {
    constexpr std::uint32_t kDefaultMessages = 1000;
    constexpr std::uint32_t kMaxMessages = 10000;
    const auto& limits = server_.options_.limits;
    storage::ReadLimits read;
    read.max_messages =
        req.max_messages == 0 ? kDefaultMessages : std::min(req.max_messages, kMaxMessages);
    // The byte budget counts message bytes; framing is added below, where the reply is cut
    // to fit max_frame_size exactly.
    read.max_bytes = req.max_bytes == 0 ? (1u << 20) : req.max_bytes;
    read.max_bytes = std::min<std::size_t>(read.max_bytes, limits.max_frame_size);
    auto result = server_.broker_.fetch(req.topic, Offset{req.offset}, read);
    if (!result) return send_error(cid, result.error());
    // Keep the reply within max_frame_size, counting each message's exact encoded size.
    protocol::FetchOk ok{result->first_offset.value, result->next_offset.value,
                         std::move(result->messages)};
    std::size_t size = protocol::kFetchOkBaseSize;
    std::size_t keep = 0;
    for (; keep < ok.messages.size(); ++keep) {
      const std::size_t next = protocol::encoded_size(ok.messages[keep]);
      if (size + next > limits.max_frame_size) break;
      size += next;
    }
    ok.messages.resize(keep);
    send(cid, std::move(ok));
  }

  Server& server_;
  tcp::socket socket_;
  asio::steady_timer read_signal_;   // cancelled when the reader may be able to go on
  asio::steady_timer write_signal_;  // cancelled when there is something to write
  asio::steady_timer watchdog_;      // handshake and frame deadlines
  bool watchdog_armed_ = false;
  Clock::time_point accepted_at_;
  // Fixed at accept: a reload (Server::update_limits) changes them for later connections only.
  const std::uint32_t max_inflight_requests_;
  const std::size_t max_outgoing_bytes_;
  const std::chrono::milliseconds handshake_timeout_;
  Clock::time_point frame_started_at_{};
  bool in_frame_ = false;           // a frame's first byte has arrived, not yet its last
  std::optional<Error> timed_out_;  // why the watchdog ended the reading
  std::string in_;                  // read from the socket: [in_begin_, size) not yet decoded
  std::size_t in_begin_ = 0;
  std::deque<std::string> outgoing_;
  std::size_t outgoing_bytes_ = 0;
  std::uint32_t inflight_ = 0;
  std::size_t inflight_bytes_ = 0;  // memory held by requests not yet answered
  std::size_t current_cost_ = 0;    // of the request being dispatched
  bool handshaken_ = false;
  bool reading_ = true;
  bool closed_ = false;
  bool fatal_ = false;      // a fatal ERROR was queued: linger, then close
  bool backed_up_ = false;  // a delivery found the send queue over its bound
  std::optional<std::pair<std::uint32_t, Error>> pending_fatal_;  // sent once inflight_ == 0
  std::string client_name_;
  std::unordered_map<std::uint64_t, std::uint32_t> subscriptions_;  // id -> SUBSCRIBE's cid
  std::string peer_;
};

Server::Server(asio::io_context& io, broker::Broker& broker, ServerOptions options)
    : io_(io),
      broker_(broker),
      options_(std::move(options)),
      acceptor_(io),
      stop_timer_(io),
      groups_timer_(io),
      accept_retry_(io) {
  // Completions of group writes run on the io thread; each may change what waits on time.
  groups_ =
      std::make_unique<broker::Groups>(broker_, options_.groups, [this](std::function<void()> f) {
        asio::post(io_, [this, f = std::move(f)] {
          f();
          arm_groups_timer();
        });
      });
  groups_->load();
  broker_.set_topic_listener([this](std::vector<broker::TopicEvent> events) {
    asio::post(io_, [this, events = std::move(events)] {
      groups_->on_topic_events(events, now());
      arm_groups_timer();
    });
  });
  arm_groups_timer();
}

// The broker's topic listener posts to io_: the owner stops the broker (so no more commits
// happen) before it destroys the io_context, and handlers never run after that.
Server::~Server() = default;

delivery::TimePoint Server::now() {
  return std::chrono::time_point_cast<delivery::Duration>(std::chrono::steady_clock::now());
}

void Server::arm_groups_timer() {
  const auto next = groups_->next_deadline();
  if (!next) return;
  if (groups_timer_at_ && *groups_timer_at_ <= *next) return;  // an earlier wake-up is set
  groups_timer_at_ = next;
  groups_timer_.expires_at(std::chrono::steady_clock::time_point(next->time_since_epoch()));
  groups_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    groups_timer_at_.reset();
    groups_->on_timer(now());
    arm_groups_timer();
  });
}

tcp::endpoint Server::listen(const std::string& host, std::uint16_t port) {
  tcp::resolver resolver(io_);
  const auto results = resolver.resolve(host, std::to_string(port));  // throws on failure
  const tcp::endpoint endpoint = *results.begin();
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  start_accept();
  return acceptor_.local_endpoint();
}

void Server::start_accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping_) return;
      // Out of file descriptors or memory: accepting again at once would spin. Wait a little.
      net_log()->warn("accept failed error=\"{}\", retrying in 100ms", ec.message());
      accept_retry_.expires_after(std::chrono::milliseconds(100));
      accept_retry_.async_wait([this](boost::system::error_code e) {
        if (!e && !stopping_) start_accept();
      });
      return;
    }
    if (stopping_) return;
    if (sessions_.size() >= options_.max_connections) {
      refuse(std::move(socket));
      start_accept();
      return;
    }
    if (refused_unlogged_ > 0) {
      net_log()->info("accepting connections again sessions={} refused={} refused_total={}",
                      sessions_.size(), refused_unlogged_, refused_total_);
      refused_unlogged_ = 0;
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto session = std::make_shared<Session>(*this, std::move(socket));
    sessions_.insert(session);
    session->start();
    start_accept();
  });
}

void Server::refuse(tcp::socket socket) {
  constexpr auto kRefusalLogInterval = std::chrono::seconds(10);
  // Each refusal in progress holds a socket for up to a second; beyond this many, close at once.
  constexpr std::size_t kMaxRefusing = 256;
  ++refused_total_;
  ++refused_unlogged_;
  const auto now = std::chrono::steady_clock::now();
  if (refusal_logged_at_ == std::chrono::steady_clock::time_point{} ||
      now - refusal_logged_at_ >= kRefusalLogInterval) {
    boost::system::error_code ec;
    const auto peer = socket.remote_endpoint(ec);
    net_log()->warn(
        "connection refused peer={} reason=max_connections max_connections={} refused={} "
        "refused_total={}",
        ec ? std::string("?") : peer.address().to_string() + ":" + std::to_string(peer.port()),
        options_.max_connections, refused_unlogged_, refused_total_);
    refused_unlogged_ = 0;
    refusal_logged_at_ = now;
  }
  if (refusing_ >= kMaxRefusing) {
    boost::system::error_code ignored;
    socket.close(ignored);
    return;
  }
  const Error error{
      Errc::too_many_connections,
      "max_connections " + std::to_string(options_.max_connections) + " reached; try again later"};
  std::string frame;
  protocol::encode(protocol::Frame{0, protocol::ErrorReply{error.code, error.to_string()}}, frame);
  ++refusing_;
  asio::co_spawn(io_, refuse_connection(std::move(socket), std::move(frame)),
                 [this](const std::exception_ptr&) { --refusing_; });
}

void Server::update_limits(const ServerOptions& options) {
  options_.max_connections = options.max_connections;
  options_.handshake_timeout = options.handshake_timeout;
  options_.frame_timeout = options.frame_timeout;
  options_.max_inflight_requests = options.max_inflight_requests;
  options_.max_outgoing_bytes = options.max_outgoing_bytes;
}

void Server::on_session_closed(Session* session) {
  for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
    if (it->get() == session) {
      sessions_.erase(it);
      break;
    }
  }
  maybe_stopped();
}

void Server::stop(std::function<void()> on_stopped) {
  if (stopping_) return;
  stopping_ = true;
  on_stopped_ = std::move(on_stopped);
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for (const auto& s : sessions_) s->stop_reading();
  stop_timer_.expires_after(options_.shutdown_timeout);
  stop_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || sessions_.empty()) return;
    net_log()->warn("shutdown timeout: closing sessions={}", sessions_.size());
    auto remaining = sessions_;
    for (const auto& s : remaining) s->close();
  });
  maybe_stopped();
}

void Server::maybe_stopped() {
  if (!stopping_ || !sessions_.empty() || !on_stopped_) return;
  stop_timer_.cancel();
  groups_timer_.cancel();
  // Every connection is gone: queue each group's latest progress, so acks batched behind a
  // write still in flight are not lost when the io loop ends (the broker writes group
  // progress even while it stops).
  groups_->write_all_on_stop();
  auto done = std::move(on_stopped_);
  on_stopped_ = nullptr;
  done();
}

}  // namespace loft::net
