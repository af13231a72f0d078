// loft dlq redrive: publish a dead-letter topic's letters back to where they came from.

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "commands.hpp"

namespace loft::cli {
namespace {

namespace json = boost::json;

// A dead letter split into what loftd added and the original message. loftd appends
// loft-dlq-topic and then the other loft-dlq-* headers; a letter dead-lettered again from a
// DLQ carries two such sets, and only the last one belongs to this DLQ, so the set starts at
// the last loft-dlq-topic header.
struct DeadLetter {
  std::string topic;  // where the original was published: the redrive target
  std::string group;  // the group that gave up on it
  Message original;
};

std::optional<DeadLetter> parse_dead_letter(Message m) {
  auto& headers = m.headers;
  const auto last_topic = std::find_if(headers.rbegin(), headers.rend(),
                                       [](const Header& h) { return h.name == "loft-dlq-topic"; });
  if (last_topic == headers.rend()) return std::nullopt;
  const auto first = std::prev(last_topic.base());
  DeadLetter letter;
  letter.topic = first->value;
  for (auto it = first; it != headers.end(); ++it) {
    if (it->name == "loft-dlq-group") letter.group = it->value;
  }
  headers.erase(std::remove_if(first, headers.end(),
                               [](const Header& h) { return h.name.starts_with("loft-dlq-"); }),
                headers.end());
  letter.original = std::move(m);
  return letter;
}

// The id a redriven message is published with. Not the original's: the topic still knows that
// one (within its dedup window) and would answer the redrive as a duplicate. It names the dead
// letter instead (a stable hash of the DLQ topic and the letter's offset, then the original
// id), so a redrive that is run again after a crash between publish and ack stores it once.
std::string redrive_id(std::string_view dlq_topic, std::uint64_t dlq_offset,
                       std::string_view original_id, std::size_t max_size) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a, 64 bits: stable across builds
  for (const char ch : dlq_topic) {
    h ^= static_cast<unsigned char>(ch);
    h *= 1099511628211ULL;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  std::string id = "redrive:" + std::string(hex) + ":" + std::to_string(dlq_offset);
  if (!original_id.empty()) {
    id += ":";
    id += original_id;
  }
  if (id.size() > max_size) id.resize(max_size);
  return id;
}

// One run of `loft dlq redrive`: reads the DLQ through the redrive group, publishes each
// letter's original back to its topic and acks the letters that are settled. Runs on the
// calling thread; the client's threads only complete its futures.
class Redrive {
 public:
  Redrive(client::Client& cl, client::Subscription& subscription, std::string dlq_topic,
          std::optional<std::string> only_group)
      : cl_(cl),
        subscription_(subscription),
        dlq_topic_(std::move(dlq_topic)),
        only_group_(std::move(only_group)),
        batch_bytes_(cl.server().limits.max_frame_size / 2) {}

  // Redrives one batch of letters, then acks those settled.
  void handle(std::vector<client::DeliveredMessage> letters) {
    for (auto& m : letters) {
      auto letter = parse_dead_letter(std::move(m.message));
      if (!letter) {
        publish_run();
        fail("dead letter at offset " + std::to_string(m.offset) + " of '" + dlq_topic_ +
             "' has no loft-dlq-topic header");
      }
      if (only_group_ && letter->group != *only_group_) {
        settled_.push_back(m.offset);
        ++skipped_;
        continue;
      }
      const std::size_t bytes = letter->original.size_bytes() + 64;
      if (letter->topic != target_ || run_bytes_ + bytes > batch_bytes_) {
        publish_run();
        target_ = letter->topic;
      }
      run_bytes_ += bytes;
      letter->original.id = redrive_id(dlq_topic_, m.offset, letter->original.id,
                                       cl_.server().limits.message.max_id_size);
      run_.push_back(std::move(letter->original));
      run_offsets_.push_back(m.offset);
    }
    publish_run();
    check(subscription_.ack_confirmed(std::exchange(settled_, {})));
  }

  std::uint64_t redriven() const { return redriven_; }
  std::uint64_t skipped() const { return skipped_; }

 private:
  // Before failing, settle what is done, so a rerun does not redrive it again.
  [[noreturn]] void fail(std::string message) {
    if (!settled_.empty()) {
      std::ignore = subscription_.ack_confirmed(settled_);  // best effort: failing anyway
    }
    throw Failure{std::move(message), 1};
  }

  // Consecutive letters for the same topic go out as one publish.
  void publish_run() {
    if (run_.empty()) return;
    const auto n = run_.size();
    auto results = cl_.publish(target_, std::move(run_));
    run_.clear();
    run_bytes_ = 0;
    if (!results) fail("redrive to '" + target_ + "' failed: " + results.error().to_string());
    if (results->size() != n) fail("broker returned a wrong number of results");
    for (const auto& r : *results) {
      if (r.code != Errc::ok) {
        fail("redrive to '" + target_ + "' rejected: " + std::string(errc_text(r.code)));
      }
    }
    settled_.insert(settled_.end(), run_offsets_.begin(), run_offsets_.end());
    run_offsets_.clear();
    redriven_ += n;
  }

  client::Client& cl_;
  client::Subscription& subscription_;
  const std::string dlq_topic_;
  const std::optional<std::string> only_group_;  // --group: redrive only this group's letters
  const std::size_t batch_bytes_;
  // Offsets of letters that are done with: redriven (publish confirmed) or skipped. Acked
  // only after the publishes, so a crash in between redrives a letter twice, never loses it.
  std::vector<std::uint64_t> settled_;
  std::string target_;  // the topic of the run being gathered
  std::vector<Message> run_;
  std::vector<std::uint64_t> run_offsets_;
  std::size_t run_bytes_ = 0;
  std::uint64_t redriven_ = 0;
  std::uint64_t skipped_ = 0;
};

}  // namespace

int dlq_command(Common& c) {
  const auto& sub = word(c, 1, "dlq command: redrive");
  if (sub != "redrive") usage_error("unknown dlq command '" + sub + "'");
  const auto& dlq_topic = word(c, 2, "dead-letter topic name");
  expect_words(c, 3);
  std::optional<std::string> only_group;
  if (c.vm.count("group")) {
    only_group = c.vm["group"].as<std::string>();
    if (only_group->empty()) usage_error("--group needs a group name");
  }
  client::SubscribeOptions options;
  options.topic = dlq_topic;
  // One redrive group per filter: its progress is what makes a rerun skip redriven letters.
  options.group = only_group ? "loft-redrive." + *only_group : "loft-redrive";
  options.start = {protocol::StartKind::earliest, 0};
  options.max_in_flight = 10'000;
  auto cl = connect(c);
  auto subscription = check(cl->subscribe(options));
  Redrive redrive(*cl, *subscription, dlq_topic, only_group);
  constexpr auto kIdle = std::chrono::seconds(1);
  auto last_letter = std::chrono::steady_clock::now();
  while (true) {
    auto letters = check(subscription->receive(std::chrono::milliseconds(200), 1000));
    if (letters.empty()) {
      if (std::chrono::steady_clock::now() - last_letter >= kIdle) break;
      continue;
    }
    last_letter = std::chrono::steady_clock::now();
    redrive.handle(std::move(letters));
  }
  check(subscription->unsubscribe());
  if (c.json) {
    std::cout << json::serialize(
                     json::object{{"redriven", redrive.redriven()}, {"skipped", redrive.skipped()}})
              << "\n";
  } else {
    std::cout << "redriven " << redrive.redriven() << ", skipped " << redrive.skipped() << "\n";
  }
  return 0;
}

}  // namespace loft::cli
