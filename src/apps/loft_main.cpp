// loft: the command-line tool. Parses commands and flags, calls the client library, prints.
// One file per command family (cli_*.cpp); this one dispatches on the command's first word.

#include <string_view>

#include "commands.hpp"

namespace loft::cli {
namespace {

struct Command {
  std::string_view name;
  int (*run)(Common&);
};

constexpr Command kCommands[] = {
    {"topic", topic_command}, {"pub", pub_command},     {"fetch", fetch_command},
    {"sub", sub_command},     {"group", group_command}, {"dlq", dlq_command},
    {"bench", bench_command}, {"admin", admin_command}, {"user", user_command},
};

int dispatch(Common& c) {
  const auto& command = c.words[0];
  for (const auto& k : kCommands) {
    if (command == k.name) return k.run(c);
  }
  usage_error("unknown command '" + command + "'");
}

}  // namespace
}  // namespace loft::cli

int main(int argc, char** argv) { return loft::cli::run_cli(argc, argv, loft::cli::dispatch); }
