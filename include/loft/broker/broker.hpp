#pragma once
// The broker: the table of topics and the single write path into storage.
//
// Ownership and threads. A Broker owns the Store and one writer thread. Every mutation (create
// topic, delete topic, publish) is queued to the writer, which takes everything that is pending,
// turns it into ONE storage WriteBatch, writes it with the configured durability (one sync for
// many requests: group commit) and then completes every request in queue order. Offsets are
// assigned on the writer thread, in queue order, only for requests in the batch being written;
// a failed write hands out no offsets, so a topic's log never has gaps.
//
// Completion callbacks run on the writer thread: they must be quick and must not call back
// into the Broker's mutating functions synchronously (post to your own executor instead).
// Reads (list, describe, fetch) may be called from any thread.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include "loft/common/error.hpp"
#include "loft/common/message.hpp"
#include "loft/storage/store.hpp"

namespace loft::broker {

using storage::TopicMeta;

struct Options {
  storage::Durability durability = storage::Durability::fsync;
  bool auto_create_topics = false;
  // Upper bound on what one group commit takes from the queue; the rest waits for the next.
  std::size_t max_commit_messages = 16384;
  std::size_t max_commit_bytes = 32 << 20;
  // Publish timestamps and topic creation times, in ms since the Unix epoch. Injected so
  // tests can fix time.
  std::function<std::int64_t()> now_ms;
};

// The outcome of a publish: `count` messages stored at first, first+1, ...
struct Appended {
  std::string topic;
  Offset first;
  std::size_t count = 0;
  bool created_topic = false;  // auto_create_topics created the topic for this publish
};

struct FetchResult {
  Offset first_offset;
  Offset next_offset;
  std::vector<StoredMessage> messages;
};

template <class T>
using Callback = std::function<void(Result<T>)>;

// Topic names: 1..249 bytes of [A-Za-z0-9._-], not "." or "..".
Result<void> validate_topic_name(std::string_view name);

// Counters since start, for logs and (later) metrics. Read with relaxed consistency.
struct WriterStats {
  std::uint64_t commits = 0;
  std::uint64_t requests = 0;
  std::uint64_t messages = 0;
  std::uint64_t failed_commits = 0;
};

class Broker {
 public:
  // Loads the topic table from `store` and starts the writer thread.
  static Result<std::unique_ptr<Broker>> open(std::unique_ptr<storage::Store> store,
                                              Options options);
  ~Broker();  // stop()s if still running
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  void create_topic(std::string name, Callback<TopicMeta> done);
  void delete_topic(std::string name, Callback<void> done);
  // REQUIRES: messages is not empty and within the configured limits (the session checks).
  void publish(std::string topic, std::vector<Message> messages, Callback<Appended> done);

  std::vector<TopicMeta> list_topics() const;  // sorted by name
  Result<TopicMeta> describe_topic(std::string_view name) const;
  Result<FetchResult> fetch(std::string_view topic, Offset from, storage::ReadLimits limits) const;

  // Completes everything already queued (confirm or fail), stops the writer, flushes the
  // store. Later requests fail at once with shutting_down (callback on the caller's thread).
  // Idempotent.
  void stop();

  WriterStats stats() const;

 private:
  struct CreateReq {
    std::string name;
    Callback<TopicMeta> done;
  };
  struct DeleteReq {
    std::string name;
    Callback<void> done;
  };
  struct PublishReq {
    std::string topic;
    std::vector<Message> messages;
    Callback<Appended> done;
  };
  using Request = std::variant<CreateReq, DeleteReq, PublishReq>;

  Broker(std::unique_ptr<storage::Store> store, Options options, std::vector<TopicMeta> topics,
         TopicId next_topic_id);
  void enqueue(Request req);
  void run_writer();
  void run_reclaimer();
  void commit(std::vector<Request>& batch);

  std::unique_ptr<storage::Store> store_;
  Options options_;

  mutable std::shared_mutex table_mutex_;  // guards topics_ (writer writes, anyone reads)
  std::map<std::string, TopicMeta, std::less<>> topics_;
  std::uint32_t next_topic_id_ = 1;  // writer thread only

  std::mutex queue_mutex_;  // guards queue_ and stopping_
  std::condition_variable queue_cv_;
  std::deque<Request> queue_;
  bool stopping_ = false;
  std::thread writer_;
  std::once_flag stop_once_;

  // Giving a dropped topic's disk space back is a compaction that can take seconds: it runs
  // on its own thread so it never holds up a commit.
  std::mutex reclaim_mutex_;  // guards reclaim_queue_ and reclaim_stopping_
  std::condition_variable reclaim_cv_;
  std::deque<TopicId> reclaim_queue_;
  bool reclaim_stopping_ = false;
  std::thread reclaimer_;

  mutable std::mutex stats_mutex_;
  WriterStats stats_;
};

}  // namespace loft::broker
