// loft topic create | alter | delete | list | describe.

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <limits>
#include <optional>

#include "commands.hpp"
#include "loft/common/units.hpp"
#include "loft/http/json.hpp"

namespace loft::cli {
namespace {

namespace json = boost::json;
using http::topic_json;

// A retention limit for text output: 0 is "unlimited".
std::string limit_text(std::uint64_t value, std::string (*format)(std::uint64_t)) {
  return value == 0 ? std::string("unlimited") : format(value);
}

void print_topic(const client::TopicInfo& t, bool as_json) {
  if (as_json) {
    std::cout << json::serialize(topic_json(t)) << "\n";
    return;
  }
  std::cout << "name:          " << t.name << "\n"
            << "first_offset:  " << t.first_offset.value << "\n"
            << "next_offset:   " << t.next_offset.value << "\n"
            << "messages:      " << t.messages << "\n"
            << "bytes:         " << t.bytes << "\n"
            << "created_at_ms: " << t.created_at_ms << "\n"
            << "dedup_window:  " << format_duration(std::chrono::milliseconds(t.dedup_window_ms))
            << "\n"
            << "dedup_conflict: "
            << (t.dedup_conflict == protocol::DedupConflict::error ? "error" : "duplicate") << "\n"
            << "max_age:       "
            << limit_text(
                   t.max_age_ms,
                   [](std::uint64_t ms) { return format_duration(std::chrono::milliseconds(ms)); })
            << "\n"
            << "max_bytes:     " << limit_text(t.max_bytes, format_size) << "\n"
            << "max_messages:  "
            << limit_text(t.max_messages, [](std::uint64_t n) { return std::to_string(n); }) << "\n"
            << "retention:     " << retention_mode_name(t.retention_mode) << "\n"
            << "scheduled:     " << t.scheduled << "\n";
  if (!t.subjects.empty()) {
    std::cout << "subjects:      ";
    for (std::size_t i = 0; i < t.subjects.size(); ++i) {
      std::cout << (i == 0 ? "" : ", ") << t.subjects[i];
    }
    std::cout << "\n";
  }
}

// --max-age, --max-bytes and --max-messages: the limits given ("none" or 0 = unlimited).
protocol::RetentionChange retention_flags(const Common& c) {
  protocol::RetentionChange change;
  const auto text = [&](const char* flag) -> std::optional<std::string> {
    if (!c.vm.count(flag)) return std::nullopt;
    return c.vm[flag].as<std::string>();
  };
  if (const auto v = text("max-age")) {
    if (*v == "none" || *v == "0") {
      change.max_age_ms = 0;
    } else {
      auto d = parse_duration(*v);
      if (!d) usage_error("--max-age: " + d.error().detail + " (or none/0 for unlimited)");
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*d).count();
      if (ms < 1000) usage_error("--max-age must be at least 1s, or none/0 for unlimited");
      change.max_age_ms = static_cast<std::uint64_t>(ms);
    }
  }
  if (const auto v = text("max-bytes")) {
    if (*v == "none") {
      change.max_bytes = 0;
    } else {
      auto n = parse_size(*v);
      if (!n) usage_error("--max-bytes: " + n.error().detail + " (or none/0 for unlimited)");
      change.max_bytes = *n;
    }
  }
  if (const auto v = text("max-messages")) {
    change.max_messages =
        *v == "none" ? 0
                     : number_flag(c, "max-messages", 0, std::numeric_limits<std::uint64_t>::max());
  }
  return change;
}

void list_topics(const Common& c) {
  expect_words(c, 2);
  const auto topics = check(connect(c)->list_topics());
  if (c.json) {
    json::array arr;
    for (const auto& t : topics) arr.push_back(topic_json(t));
    std::cout << json::serialize(arr) << "\n";
    return;
  }
  std::printf("%-40s %12s %14s %12s %12s\n", "NAME", "MESSAGES", "BYTES", "FIRST", "NEXT");
  for (const auto& t : topics) {
    std::printf("%-40s %12llu %14llu %12llu %12llu\n", t.name.c_str(),
                static_cast<unsigned long long>(t.messages),
                static_cast<unsigned long long>(t.bytes),
                static_cast<unsigned long long>(t.first_offset.value),
                static_cast<unsigned long long>(t.next_offset.value));
  }
}

void create_topic(const Common& c, const std::string& name) {
  std::uint64_t window_ms = 0;
  if (c.vm.count("dedup-window")) {
    auto d = parse_duration(c.vm["dedup-window"].as<std::string>());
    if (!d) usage_error("--dedup-window: " + d.error().detail);
    window_ms = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(*d).count());
    if (window_ms == 0) usage_error("--dedup-window must be at least 1s");
  }
  auto conflict = protocol::DedupConflict::duplicate;
  if (c.vm.count("dedup-conflict")) {
    const auto v = c.vm["dedup-conflict"].as<std::string>();
    if (v == "error") {
      conflict = protocol::DedupConflict::error;
    } else if (v != "duplicate") {
      usage_error("--dedup-conflict must be duplicate or error, got '" + v + "'");
    }
  }
  const auto mode =
      c.vm.count("work-queue") != 0 ? RetentionMode::work_queue : RetentionMode::limits;
  const auto t =
      check(connect(c)->create_topic(name, window_ms, conflict, retention_flags(c), mode));
  if (c.json) {
    print_topic(t, true);
  } else {
    std::cout << "created topic " << t.name << "\n";
  }
}

void alter_topic(const Common& c, const std::string& name) {
  if (c.vm.count("dedup-window") || c.vm.count("dedup-conflict")) {
    usage_error("dedup settings are fixed when a topic is created; alter changes retention");
  }
  if (c.vm.count("work-queue") != 0) {
    usage_error("--work-queue is fixed when a topic is created (topic create NAME --work-queue)");
  }
  const auto change = retention_flags(c);
  if (change.empty()) {
    usage_error("topic alter needs at least one of --max-age, --max-bytes, --max-messages");
  }
  const auto t = check(connect(c)->alter_topic(name, change));
  if (c.json) {
    print_topic(t, true);
  } else {
    std::cout << "altered topic " << t.name << "\n";
  }
}

void delete_topic(const Common& c, const std::string& name) {
  check(connect(c)->delete_topic(name));
  if (c.json) {
    std::cout << json::serialize(json::object{{"deleted", name}}) << "\n";
  } else {
    std::cout << "deleted topic " << name << "\n";
  }
}

}  // namespace

int topic_command(Common& c) {
  const auto& sub = word(c, 1, "topic command: create, alter, delete, list or describe");
  if (sub == "list") {
    list_topics(c);
    return 0;
  }
  const auto& name = word(c, 2, "topic name");
  expect_words(c, 3);
  if (sub == "create") {
    create_topic(c, name);
  } else if (sub == "alter") {
    alter_topic(c, name);
  } else if (sub == "delete") {
    delete_topic(c, name);
  } else if (sub == "describe") {
    print_topic(check(connect(c)->describe_topic(name)), c.json);
  } else {
    usage_error("unknown topic command '" + sub + "'");
  }
  return 0;
}

}  // namespace loft::cli
