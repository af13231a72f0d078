#pragma once
// The loft C++ client: one TCP connection to loftd, speaking protocol version 4 (or the newest
// an older server knows: with version 1 a message subject or group filter, with versions 1 and
// 2 a work-queue topic, and with versions 1 to 3 a delayed publish, is refused with
// invalid_request rather than dropped).
//
// The core is asynchronous: every request gets a correlation id and a std::future, and many
// requests may be in flight at once (pipelining) — publish_async() is how a producer keeps a
// window of unconfirmed batches. The blocking calls (publish, create_topic, ...) are that
// future plus a wait with the request timeout.
//
// Threads: a Client may be used from several threads at once. It owns one reader thread that
// matches replies to requests. When the connection breaks, every pending and later request
// fails with Errc::connection_error (or the fatal error the server sent). A signal that
// interrupts the client's blocking reads or writes (a handler of the program's installed
// without SA_RESTART) does not break it: the call is retried.

#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loft/common/error.hpp"
#include "loft/common/message.hpp"
#include "loft/protocol/frames.hpp"

namespace loft::client {

struct TlsOptions {
  bool enabled = false;
  // PEM CA(s) the server's certificate must chain to; "" = the system's trust store.
  std::string ca_file;
  // A client certificate and its key, for a server with tls_client_auth (both or neither).
  std::string cert_file;
  std::string key_file;
  // The name the server's certificate must carry (and SNI); "" = `host`.
  std::string server_name;
};

struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 7450;
  std::string client_name = "loft-cpp";
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds request_timeout{30'000};
  // close() waits this long for the broker to answer what it has already received.
  std::chrono::milliseconds close_timeout{5'000};
  TlsOptions tls;
  // With `user` set, the handshake authenticates (AUTHENTICATE, mechanism PLAIN) after HELLO;
  // a failure fails connect() with authentication_failed. Without TLS, a password is sent to a
  // loopback host only, unless allow_plaintext_password.
  std::string user;
  std::string password;
  bool allow_plaintext_password = false;
};

// "HOST:PORT" (or "[v6]:PORT") into options.host/port.
Result<void> parse_broker_address(std::string_view text, Options& options);

using protocol::DeliveredMessage;
using protocol::FetchOk;
using protocol::GroupInfo;
using protocol::PublishResult;
using protocol::SettleOk;
using protocol::TopicInfo;

struct SubscribeOptions {
  std::string topic;
  std::string group;
  protocol::StartPosition start;    // for a group created by this subscribe
  std::uint32_t max_in_flight = 0;  // 0 = the server's default (1000)
  protocol::GroupConfig config;     // for a group created by this subscribe
  // Acks are sent in one SETTLE once this many are pending (and by flush() and receive()).
  std::size_t ack_batch = 256;
};

// How a publish call's messages are sent. A message's own Message::deliver_at_ms is the
// absolute form of a delivery time (ms since the Unix epoch by loftd's clock).
struct PublishOptions {
  // Deliver every message of the call this long after loftd receives the publish, measured by
  // loftd's clock, so this client's clock skew does not matter (0 = at once). May not be
  // combined with a message's own deliver_at_ms; a negative delay, or one further ahead than
  // loftd's max_delivery_delay, is refused (invalid_request; delay_too_long per message).
  // Needs protocol version 4: against an older loftd it fails with invalid_request, sending
  // nothing.
  std::chrono::milliseconds delay{0};
};

class Subscription;

class Client {
 public:
  // Connects and performs the handshake.
  static Result<std::unique_ptr<Client>> connect(const Options& options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const protocol::HelloOk& server() const;

  // Async core: the future is ready when the reply arrives or the connection fails.
  std::future<Result<std::vector<PublishResult>>> publish_async(std::string topic,
                                                                std::vector<Message> messages,
                                                                PublishOptions options = {});

  // Blocking facade.
  Result<std::vector<PublishResult>> publish(std::string topic, std::vector<Message> messages,
                                             PublishOptions options = {});
  Result<PublishResult> publish(std::string topic, Message message, PublishOptions options = {});
  Result<TopicInfo> create_topic(std::string name);
  // dedup_window_ms 0 = the broker's default (2 h).
  // retention: the limits to set; a limit left nullopt gets the broker's configured default.
  // retention_mode work_queue needs protocol version 3: against an older loftd it fails with
  // invalid_request, sending nothing.
  Result<TopicInfo> create_topic(std::string name, std::uint64_t dedup_window_ms,
                                 protocol::DedupConflict dedup_conflict,
                                 protocol::RetentionChange retention = {},
                                 RetentionMode retention_mode = RetentionMode::limits);
  // Changes the limits that are set in `retention` (0 = unlimited); the others stay.
  Result<TopicInfo> alter_topic(std::string name, protocol::RetentionChange retention);
  // The broker copies its data directory into `dir` (a path on the broker's machine: absolute,
  // not existing yet) while it keeps serving.
  Result<std::string> backup(std::string dir);
  Result<void> delete_topic(std::string name);
  Result<std::vector<TopicInfo>> list_topics();
  Result<TopicInfo> describe_topic(std::string name);
  Result<FetchOk> fetch(std::string topic, std::uint64_t offset, std::uint32_t max_messages = 0,
                        std::uint32_t max_bytes = 0);
  Result<void> ping();

  // Consumer groups. The subscription stays valid while this Client lives.
  Result<std::unique_ptr<Subscription>> subscribe(SubscribeOptions options);
  Result<GroupInfo> create_group(std::string topic, std::string group,
                                 protocol::StartPosition start = {},
                                 protocol::GroupConfig config = {});
  Result<std::vector<GroupInfo>> list_groups(std::string topic);
  Result<GroupInfo> describe_group(std::string topic, std::string group);
  Result<void> delete_group(std::string topic, std::string group);
  Result<GroupInfo> reset_group(std::string topic, std::string group, protocol::StartPosition to);

  // Sends `bytes` as they are (tests of malformed input) and waits for the reply carrying
  // `correlation_id`. Use ids >= 0x80000000: the client numbers its own requests from 1.
  Result<protocol::Body> raw_request(std::string bytes, std::uint32_t correlation_id);

  // Closes the connection; pending requests fail with connection_error. Idempotent.
  void close();
  bool connected() const;

  class Impl;
  Impl& impl() { return *impl_; }

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One subscription of a consumer group. Deliveries arrive in the background (the client's
// reader thread queues them); receive() hands them out. Settles: ack() is batched (sent when
// `ack_batch` are pending, and by flush() and receive()); nack/extend/reject and
// ack_confirmed() are sent at once and wait for the broker's answer.
// Not thread-safe: use one Subscription from one thread.
class Subscription {
 public:
  ~Subscription();  // sends pending acks (without waiting)
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

  std::uint64_t id() const { return id_; }
  bool created_group() const { return created_; }

  // Waits up to `timeout` for at least one message; returns up to `max` (may be empty on
  // timeout). Fails when the connection is gone.
  Result<std::vector<DeliveredMessage>> receive(std::chrono::milliseconds timeout,
                                                std::size_t max = 1000);

  void ack(std::uint64_t offset);
  // Sends the pending acks and waits for the broker's answer.
  Result<void> flush();
  // Acks and waits until the ack is durable (it cannot be lost any more).
  Result<SettleOk> ack_confirmed(std::vector<std::uint64_t> offsets);
  // Redeliver after `delay`, or after the group's backoff when none is given.
  Result<SettleOk> nack(std::uint64_t offset,
                        std::optional<std::chrono::milliseconds> delay = std::nullopt);
  Result<SettleOk> extend(std::uint64_t offset);
  Result<SettleOk> reject(std::uint64_t offset);
  // Ends the subscription; unsettled messages go to the group's other consumers.
  Result<void> unsubscribe();

  struct Stream;

 private:
  friend class Client;
  Subscription(Client& client, std::uint64_t id, bool created, std::shared_ptr<Stream> stream,
               std::size_t ack_batch);
  Result<SettleOk> settle(protocol::SettleAction action, std::vector<std::uint64_t> offsets,
                          bool confirm, std::uint32_t delay_ms);
  void send_pending_acks();

  Client& client_;
  std::uint64_t id_;
  bool created_;
  std::shared_ptr<Stream> stream_;
  std::size_t ack_batch_;
  std::vector<std::uint64_t> pending_acks_;
  bool unsubscribed_ = false;
};

// Runs of consecutive offsets, as SETTLE carries them (offsets are sorted first).
std::vector<protocol::OffsetRun> to_runs(std::vector<std::uint64_t> offsets);

}  // namespace loft::client
