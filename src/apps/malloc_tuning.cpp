#include "malloc_tuning.hpp"

#include <malloc.h>

#include <cstdlib>
#include <string_view>

namespace loft::apps {

void tune_malloc_for_commits() {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables != nullptr &&
      std::string_view(tunables).find("glibc.malloc.") != std::string_view::npos) {
    return;
  }
  constexpr int kMmapThreshold = 4 << 20;
  constexpr int kTrimThreshold = 64 << 20;
  // Both or neither: setting only the mmap threshold would leave the trim threshold at
  // 128 KiB, so the heap's top would be returned and faulted in again at every commit.
  if (mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1) mallopt(M_TRIM_THRESHOLD, kTrimThreshold);
}

}  // namespace loft::apps
