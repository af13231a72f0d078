#include "bench.hpp"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstdio>
#include <string>

namespace loft::apps::bench {

namespace json = boost::json;

Result<Mode> parse_mode(std::string_view text) {
  for (const auto m : {Mode::publish, Mode::consume, Mode::e2e, Mode::storage}) {
    if (text == to_string(m)) return m;
  }
  return fail(Errc::invalid_request,
              "unknown bench mode '" + std::string(text) + "': publish, consume, e2e or storage");
}

std::string_view to_string(Mode mode) {
  switch (mode) {
    case Mode::publish:
      return "publish";
    case Mode::consume:
      return "consume";
    case Mode::e2e:
      return "e2e";
    case Mode::storage:
      return "storage";
  }
  return "?";
}

bool flag_applies(Mode mode, std::string_view name) {
  if (name == "size" || name == "keep") return true;
  switch (mode) {
    case Mode::publish:
      return name == "messages" || name == "duration" || name == "batch" || name == "window" ||
             name == "producers" || name == "ids";
    case Mode::consume:
      return name == "messages" || name == "consumers" || name == "max-in-flight" ||
             name == "keys" || name == "ordering";
    case Mode::e2e:
      return name == "rate" || name == "duration" || name == "delay";
    case Mode::storage:
      return name == "messages" || name == "batch" || name == "window" || name == "ids" ||
             name == "data-dir" || name == "durability";
  }
  return false;
}

Result<void> validate(const Params& p) {
  if (p.mode == Mode::e2e && p.size < sizeof(std::chrono::steady_clock::rep)) {
    return fail(Errc::invalid_request, "bench e2e needs --size of at least " +
                                           std::to_string(sizeof(std::chrono::steady_clock::rep)) +
                                           " (the payload carries the publish time)");
  }
  if (p.delay.count() < 0) return fail(Errc::invalid_request, "--delay must not be negative");
  if (p.mode == Mode::e2e && p.duration.count() <= 0) {
    return fail(Errc::invalid_request, "bench e2e needs a --duration");
  }
  if (p.mode == Mode::e2e &&
      static_cast<double>(p.rate) * std::chrono::duration<double>(p.duration).count() < 1) {
    return fail(Errc::invalid_request, "--rate times --duration is less than one message");
  }
  return {};
}

void print_table(const json::object& report, std::ostream& out) {
  std::size_t width = 0;
  for (const auto& kv : report) width = std::max(width, kv.key().size());
  for (const auto& kv : report) {
    std::string value;
    if (kv.value().is_string()) {
      value = kv.value().as_string().c_str();
    } else if (kv.value().is_double()) {
      char buf[64];
      std::snprintf(buf, sizeof buf,
                    kv.key().ends_with("_s") || kv.key() == "mb_per_sec" ? "%.3f" : "%.1f",
                    kv.value().as_double());
      value = buf;
    } else if (kv.value().is_bool()) {
      value = kv.value().as_bool() ? "yes" : "no";
    } else {
      value = json::serialize(kv.value());
    }
    out << std::string(kv.key()) << std::string(width + 2 - kv.key().size(), ' ') << value << "\n";
  }
}

}  // namespace loft::apps::bench
