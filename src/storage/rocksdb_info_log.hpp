#pragma once
// RocksDB's diagnostic log (the LOG file in the store's directory), written by loft instead of
// RocksDB's default logger. Why: on a full disk the default logger's second failed write trips
// an assertion in RocksDB's WritableFileWriter (the Debian build keeps assertions), which
// aborted loftd the moment the disk filled up. This logger ignores write errors: while the disk
// is full its lines are lost, nothing else happens.
//
// Rotation as RocksDB does it: at open, an existing LOG becomes LOG.old.<microseconds>, and
// only the newest `keep_files - 1` old files are kept. No size-based rotation. Thread-safe
// (one write(2) per line on an O_APPEND descriptor).

#include <rocksdb/env.h>

#include <cstddef>
#include <filesystem>
#include <memory>

namespace loft::storage {

// nullptr if the file cannot be opened (RocksDB then falls back to its own logger).
std::shared_ptr<rocksdb::Logger> open_info_log(const std::filesystem::path& dir,
                                               std::size_t keep_files);

}  // namespace loft::storage
