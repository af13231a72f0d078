// loft admin backup: the broker copies its data directory while it keeps serving.

#include <boost/json.hpp>
#include <chrono>
#include <iostream>

#include "commands.hpp"

namespace loft::cli {

namespace json = boost::json;

int admin_command(Common& c) {
  const auto& sub = word(c, 1, "admin command: backup");
  if (sub != "backup") usage_error("unknown admin command '" + sub + "'");
  const auto& dir = word(c, 2, "backup directory");
  expect_words(c, 3);
  // A backup flushes and copies files while loftd keeps serving: give it time.
  c.options.request_timeout = std::chrono::minutes(30);
  const auto done = check(connect(c)->backup(dir));
  if (c.json) {
    std::cout << json::serialize(json::object{{"backup", done}}) << "\n";
  } else {
    std::cout << "backup written to " << done << "\n";
  }
  return 0;
}

}  // namespace loft::cli
