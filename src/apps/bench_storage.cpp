#include "bench_storage.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <utility>

#include "bench_support.hpp"
#include "data_dir_lock.hpp"
#include "loft/broker/broker.hpp"
#include "loft/storage/store.hpp"
#include "malloc_tuning.hpp"

namespace loft::apps::bench {
namespace {

namespace json = boost::json;

// A temporary dir (removed unless kept) or the user's.
class DataDir {
 public:
  static Result<DataDir> make(const std::optional<std::filesystem::path>& given, bool keep) {
    if (given) return DataDir(*given, false);
    std::string tmpl = (std::filesystem::temp_directory_path() / "loft-bench-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return fail(Errc::storage_error,
                  "cannot create a temporary dir: " + std::string(std::strerror(errno)));
    }
    return DataDir(tmpl, !keep);
  }
  ~DataDir() {
    if (!remove_) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);  // best effort: a leftover temp dir is harmless
  }
  DataDir(DataDir&& o) noexcept
      : path_(std::move(o.path_)), remove_(std::exchange(o.remove_, false)) {}
  DataDir& operator=(DataDir&&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  DataDir(std::filesystem::path path, bool remove) : path_(std::move(path)), remove_(remove) {}
  std::filesystem::path path_;
  bool remove_;
};

// The broker completes on its writer thread; a promise hands the outcome to the caller's.
template <class T>
std::pair<std::future<Result<T>>, broker::Callback<T>> completion() {
  auto promise = std::make_shared<std::promise<Result<T>>>();
  auto future = promise->get_future();
  return {std::move(future), [promise](Result<T> r) { promise->set_value(std::move(r)); }};
}

}  // namespace

Result<json::object> run_storage(const Params& p) {
  tune_malloc_for_commits();  // as loftd does, so the ceiling is measured the same way
  auto dir = DataDir::make(p.data_dir, p.keep);
  if (!dir) return tl::unexpected(dir.error());
  std::optional<DataDirLock> lock;
  try {
    lock.emplace(dir->path());  // a loftd running on this dir would be corrupted by us
  } catch (const std::exception& e) {
    return fail(Errc::storage_error, e.what());
  }
  storage::RocksDbOptions so;
  so.dir = dir->path() / "rocksdb";
  auto store = storage::open_rocksdb_store(so);
  if (!store) return tl::unexpected(store.error());
  broker::Options bo;
  bo.durability = p.durability;
  auto opened = broker::Broker::open(std::move(*store), bo);
  if (!opened) return tl::unexpected(opened.error());
  auto& broker = **opened;

  const auto topic = fresh_topic(p.mode);
  {
    auto created = completion<TopicInfo>();
    broker.create_topic(topic, created.second);
    auto r = wait_reply(created.first, "create topic");
    if (!r) return tl::unexpected(r.error());
  }
  PublishPlan plan;
  plan.limit = p.messages;
  plan.size = p.size;
  plan.batch = p.batch;
  plan.window = p.window;
  if (p.ids) plan.id_prefix = topic + "-";
  std::atomic<std::uint64_t> progress{0};
  LatencyHistogram latency;
  Result<std::uint64_t> done = std::uint64_t{0};
  Clock::duration elapsed{};
  {
    Progress line("storage", progress, p.messages);
    const auto start = Clock::now();
    done = publish_loop(
        plan,
        [&](std::vector<Message> messages) {
          auto [future, done] = completion<std::vector<broker::MessageResult>>();
          broker.publish(topic, std::move(messages),
                         [done = std::move(done)](Result<broker::Appended> r) {
                           if (!r) return done(tl::unexpected(r.error()));
                           done(std::move(r->results));
                         });
          return std::move(future);
        },
        &latency, progress);
    elapsed = Clock::now() - start;
  }
  if (!done) return tl::unexpected(done.error());
  if (!p.keep) {
    auto deleted = completion<void>();
    broker.delete_topic(topic, deleted.second);
    std::ignore = wait_reply(deleted.first, "delete topic");  // the figures are measured already
  }
  broker.stop();

  json::object o = common_params(p, durability_text(p.durability), topic);
  o["data_dir"] = p.data_dir ? dir->path().string() : (p.keep ? dir->path().string() : "temporary");
  o["batch"] = p.batch;
  o["window"] = p.window;
  o["ids"] = p.ids;
  o["messages"] = *done;
  put_rates(o, *done, p.size, elapsed);
  put_latency(o, latency);
  return o;
}

}  // namespace loft::apps::bench
