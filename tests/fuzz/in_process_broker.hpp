#pragma once
// The broker side of the fuzz targets that run a server in this process (connection_fuzz,
// nats_session_fuzz): a Broker on the memory store with small message limits (inputs of a few
// KiB reach every limit check), its Groups driven by a GroupRunner, and one io thread that the
// caller's server and the groups' timer run on. Made once per process and never destroyed:
// libFuzzer ends with exit(), and by then every connection is gone (each input waits for
// that), so the threads are idle; it stays reachable, not leaked.

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <thread>

#include "loft/broker/broker.hpp"
#include "loft/broker/groups.hpp"
#include "loft/net/group_runner.hpp"
#include "loft/storage/store.hpp"
#include "loopback_client.hpp"

namespace loft::fuzz {

class InProcessBroker {
 public:
  static constexpr MessageLimits kLimits{.max_message_size = 8 * 1024,
                                         .max_id_size = 64,
                                         .max_key_size = 64,
                                         .max_headers_size = 1024};

  InProcessBroker() {
    spdlog::set_level(spdlog::level::off);  // most inputs end a connection with a warning
    broker::Options bo;
    bo.durability = storage::Durability::os;
    bo.auto_create_topics = true;  // publishes reach the write path without a CREATE_TOPIC
    bo.message_limits = kLimits;
    auto b = broker::Broker::open(storage::make_memory_store(), bo);
    check(b.has_value(), "broker did not open");
    broker_ = std::move(*b);
    groups_ = std::make_unique<broker::Groups>(*broker_, broker::GroupDefaults{}, runner_.poster());
    runner_.attach(*broker_, *groups_);
  }
  InProcessBroker(const InProcessBroker&) = delete;
  InProcessBroker& operator=(const InProcessBroker&) = delete;

  boost::asio::io_context& io() { return io_; }
  broker::Broker& broker() { return *broker_; }
  broker::Groups& groups() { return *groups_; }
  net::GroupRunner& runner() { return runner_; }

  // Starts the io thread; call once the servers on io() are listening.
  void run() {
    thread_ = std::thread([this] { io_.run(); });
  }

  // `count` (a server's open connections) read on the io thread, until it is 0: fails the run
  // if a connection is still held after kDeadline.
  void wait_released(const std::function<std::size_t()>& count) {
    for (int waited_ms = 0; on_io(count) != 0; waited_ms += 1) {
      check(waited_ms < kDeadline.count(), "the server still holds a closed connection");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // polling the server's state
    }
  }

 private:
  std::size_t on_io(const std::function<std::size_t()>& f) {
    std::promise<std::size_t> result;
    boost::asio::post(io_, [&] { result.set_value(f()); });
    return result.get_future().get();
  }

  boost::asio::io_context io_{1};
  std::unique_ptr<broker::Broker> broker_;
  net::GroupRunner runner_{io_};
  std::unique_ptr<broker::Groups> groups_;
  std::thread thread_;
};

}  // namespace loft::fuzz
