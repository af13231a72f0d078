#pragma once
// What every `loft` command shares: the parsed command line, flag readers that turn a bad value
// into a usage error, and the main loop's error reporting. Also used by loft-bench-storage, which
// parses the same command line as `loft` (it is `loft bench storage` run as its own binary).
//
// Errors: a command throws Failure (one line on stderr, then its exit status); only run_cli
// catches it.

#include <boost/program_options.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "bench.hpp"
#include "loft/client/client.hpp"
#include "loft/common/error.hpp"

namespace loft::cli {

// A failure to report: one line on stderr ("loft: MESSAGE"), then exit with `status`.
struct Failure {
  std::string message;
  int status = 1;
};

// A wrong command line: exit status 2.
[[noreturn]] void usage_error(const std::string& message);

template <class T>
T check(Result<T> r) {
  if (!r) throw Failure{r.error().to_string(), 1};
  if constexpr (!std::is_void_v<T>) return std::move(*r);
}

struct Common {
  client::Options options;
  bool json = false;
  std::vector<std::string> words;  // positional words, command included
  std::vector<std::string> argv;   // the command line as given, argv[0] included
  boost::program_options::variables_map vm;
};

// Whether `flag` was given on the command line (not just defaulted).
bool given(const Common& c, const char* flag);
// The flag's value, or "" when it was not given.
std::string text_flag(const Common& c, const char* flag);
// An unsigned flag value in [min, max]; "-1" or "12x" is a usage error, not a huge number.
std::uint64_t number_flag(const Common& c, const char* flag, std::uint64_t min, std::uint64_t max);
// --ordering: none (also when not given) or key.
Ordering ordering_flag(const Common& c);
// A duration flag in whole milliseconds, 0 when not given; out of (0, 0xFFFFFFF0] is an error.
std::uint32_t duration_ms(const Common& c, const char* flag);
// Positional word `i`, or a usage error naming `what` is missing.
const std::string& word(const Common& c, std::size_t i, const char* what);
// A usage error if there are more than `n` positional words.
void expect_words(const Common& c, std::size_t n);

std::unique_ptr<client::Client> connect(const Common& c);

// Parses loft's command line. Returns nothing after printing --help or --version. Flags given
// to a command they do not apply to are usage errors.
std::optional<Common> parse_command_line(int argc, char** argv);

// `loft bench MODE` flags as benchmark parameters (words[1] is the mode).
apps::bench::Params bench_params(const Common& c);
// Prints a benchmark report as JSON or as a table.
void print_report(const Common& c, const boost::json::object& report);

// Runs `command` on the parsed command line and reports a Failure or exception on stderr;
// the process's exit status.
int run_cli(int argc, char** argv, int (*command)(Common&));

}  // namespace loft::cli
