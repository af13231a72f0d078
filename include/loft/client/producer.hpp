#pragma once
// A producer that survives broker restarts without duplicates.
//
// Every message gets a message id (unless it has one), so a publish can be retried safely:
// within the topic's dedup window the broker stores an id once and answers a retry with the
// original offset (duplicate = true). The producer keeps every publish that has no answer
// yet; when the connection breaks it reconnects with exponential backoff and sends them
// again, in their original order, with the same ids. An application that keeps publishing
// through a broker restart therefore ends with every message stored exactly once, in its
// publish order.
//
// Generated ids: "<16 hex digits>-<n>": a random 64-bit producer id (from
// std::random_device) and a counter from 1. Unique per producer instance; two producers
// never share the random part in practice (64 random bits).
//
// Threads: publish() may be called from any thread. The futures complete on the producer's
// connection threads.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "loft/client/client.hpp"

namespace loft::client {

struct ProducerOptions {
  Options connection;
  bool generate_ids = true;  // give every message without an id a generated one
  // Reconnect backoff: starts at min, doubles, stays at max.
  std::chrono::milliseconds reconnect_min{50};
  std::chrono::milliseconds reconnect_max{2'000};
  // Give up (fail every unconfirmed publish with the last error) after trying this long
  // without a connection. 0 = fail fast: never reconnect.
  std::chrono::milliseconds give_up_after{60'000};
};

class Producer {
 public:
  // Connects once (fails at once if that fails).
  static Result<std::unique_ptr<Producer>> connect(ProducerOptions options);
  ~Producer();  // fails what is unconfirmed with connection_error
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // Completes when the broker confirmed the batch (results carry `duplicate` for retried
  // ids), or with an error the broker gave (not retried: e.g. topic_not_found), or when the
  // producer gives up reconnecting.
  std::future<Result<std::vector<PublishResult>>> publish(std::string topic,
                                                          std::vector<Message> messages);

  // Waits until nothing is unconfirmed, or `timeout` passes (timeout error).
  Result<void> flush(std::chrono::milliseconds timeout);

  std::uint64_t reconnects() const;
  const std::string& id_prefix() const { return id_prefix_; }

 private:
  struct Pending {
    std::uint64_t seq;
    std::string topic;
    std::vector<Message> messages;
    std::shared_ptr<std::promise<Result<std::vector<PublishResult>>>> promise;
  };

  // A sent publish whose reply has not been looked at yet. Replies on one connection come in
  // request order (the broker commits one connection's publishes in order), so one thread
  // takes them in FIFO order.
  struct InFlight {
    std::uint64_t seq;
    std::uint64_t generation;
    std::future<Result<std::vector<PublishResult>>> reply;
  };

  explicit Producer(ProducerOptions options);
  // REQUIRES: mutex_ held.
  void send(const Pending& p);
  void run_reconnector();
  void run_completer();

  ProducerOptions options_;
  std::string id_prefix_;

  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable cv_;
  std::unique_ptr<Client> client_;
  std::uint64_t generation_ = 0;  // bumped on every new connection
  bool broken_ = false;
  bool stopping_ = false;
  std::uint64_t next_seq_ = 1;
  std::uint64_t next_id_ = 1;
  std::uint64_t reconnects_ = 0;
  std::deque<Pending> pending_;  // in publish order
  std::deque<InFlight> in_flight_;
  std::thread reconnector_;
  std::thread completer_;
};

}  // namespace loft::client
