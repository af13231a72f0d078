// loft-bench-storage: `loft bench storage`, run as its own binary so that the `loft` CLI links
// no broker, storage or RocksDB code. `loft` execs it from its own directory with the same
// arguments (`loft [--json] bench storage [flags]`), so it parses loft's command line and
// reports errors as loft does.

#include "bench_storage.hpp"
#include "cli.hpp"

namespace loft::cli {
namespace {

int storage_command(Common& c) {
  if (c.words[0] != "bench") usage_error("loft-bench-storage runs 'loft bench storage' only");
  const auto p = bench_params(c);
  if (p.mode != apps::bench::Mode::storage) {
    usage_error("loft-bench-storage runs 'loft bench storage' only");
  }
  print_report(c, check(apps::bench::run_storage(p)));
  return 0;
}

}  // namespace
}  // namespace loft::cli

int main(int argc, char** argv) {
  return loft::cli::run_cli(argc, argv, loft::cli::storage_command);
}
