#pragma once
// RocksDB's diagnostic log (the LOG file in the store's directory), written by loft instead of
// RocksDB's default logger. Why: on a full disk the default logger's second failed write trips
// an assertion in RocksDB's WritableFileWriter (the Debian build keeps assertions), which
// aborted loftd the moment the disk filled up. This logger ignores write errors: while the disk
// is full its lines are lost, nothing else happens.
//
// Rotation as RocksDB does it with max_log_file_size: at open, and whenever `max_file_bytes`
// (0: never) more have reached the LOG, it becomes LOG.old.<microseconds> and a new one is
// started with RocksDB's header lines (version, Options) again; only the newest
// `keep_files - 1` old files are kept. Thread-safe (a mutex around
// each line's write(2) and the rotation; RocksDB logs a few lines a second at most).

#include <rocksdb/env.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>

namespace loft::storage {

// nullptr if the file cannot be opened (RocksDB then falls back to its own logger).
std::shared_ptr<rocksdb::Logger> open_info_log(const std::filesystem::path& dir,
                                               std::size_t keep_files,
                                               std::uint64_t max_file_bytes);

}  // namespace loft::storage
