#pragma once
// glibc malloc settings for the commit path, applied by loftd at start-up and by
// `loft bench storage` (which runs the same writer in-process, so the two stay comparable).

namespace loft::apps {

// Keeps the per-commit buffers (write batches and records of up to a few MiB) on the heap and
// keeps freed heap memory instead of giving it back to the kernel after each commit. glibc's
// defaults serve an allocation over 128 KiB with mmap and return it with munmap when freed, so
// every commit touched fresh pages, and each first touch is a page fault (about 40 % of a
// storage run's page faults, and costly on this virtual machine: docs/performance-log.md,
// "Fewer page faults per commit"). Settings: blocks under 4 MiB come from the heap; up to 64 MiB
// of free memory at the top of the heap is kept. RocksDB's memtable arenas (8 MiB blocks) are
// still mapped on their own and returned when a memtable is flushed.
// Leaves malloc alone when GLIBC_TUNABLES names a malloc setting: the operator's choice wins.
// Call before starting threads.
void tune_malloc_for_commits();

}  // namespace loft::apps
