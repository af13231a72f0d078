#pragma once
// The loft C++ client: one TCP connection to loftd speaking protocol v1.
//
// The core is asynchronous: every request gets a correlation id and a std::future, and many
// requests may be in flight at once (pipelining) — publish_async() is how a producer keeps a
// window of unconfirmed batches. The blocking calls (publish, create_topic, ...) are that
// future plus a wait with the request timeout.
//
// Threads: a Client may be used from several threads at once. It owns one reader thread that
// matches replies to requests. When the connection breaks, every pending and later request
// fails with Errc::connection_error (or the fatal error the server sent).

#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "loft/common/error.hpp"
#include "loft/common/message.hpp"
#include "loft/protocol/frames.hpp"

namespace loft::client {

struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 7450;
  std::string client_name = "loft-cpp";
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds request_timeout{30'000};
};

// "HOST:PORT" (or "[v6]:PORT") into options.host/port.
Result<void> parse_broker_address(std::string_view text, Options& options);

using protocol::FetchOk;
using protocol::PublishResult;
using protocol::TopicInfo;

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
                                                                std::vector<Message> messages);

  // Blocking facade.
  Result<std::vector<PublishResult>> publish(std::string topic, std::vector<Message> messages);
  Result<PublishResult> publish(std::string topic, Message message);
  Result<TopicInfo> create_topic(std::string name);
  Result<void> delete_topic(std::string name);
  Result<std::vector<TopicInfo>> list_topics();
  Result<TopicInfo> describe_topic(std::string name);
  Result<FetchOk> fetch(std::string topic, std::uint64_t offset, std::uint32_t max_messages = 0,
                        std::uint32_t max_bytes = 0);
  Result<void> ping();

  // Sends `bytes` as they are (tests of malformed input) and waits for the reply carrying
  // `correlation_id`. Use ids >= 0x80000000: the client numbers its own requests from 1.
  Result<protocol::Body> raw_request(std::string bytes, std::uint32_t correlation_id);

  // Closes the connection; pending requests fail with connection_error. Idempotent.
  void close();
  bool connected() const;

  class Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace loft::client
