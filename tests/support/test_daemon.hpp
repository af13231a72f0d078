#pragma once
// Test-only helpers to run the real loftd binary: each TestDaemon has its own temporary data
// dir, listens on 127.0.0.1 with a port the kernel picks (--listen 127.0.0.1:0) and reports
// through --port-file. The destructor stops the daemon (SIGTERM, then SIGKILL after a grace
// period) and removes the dir, so a failing test leaves no process or dir behind.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loft/client/client.hpp"

namespace loft::testing {

// Polls `condition` until it holds or `timeout` passes. For waiting on another process;
// generous timeouts, because CI machines are loaded.
bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = std::chrono::seconds(30));

// The positive integer in environment variable `name` (a round count, say), else `fallback`.
int env_count(const char* name, int fallback);

// A fresh directory under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct ProcessResult {
  int exit_code = -1;  // -1: killed by a signal or timed out
  std::string out;
  std::string err;
};

// Runs `argv` (argv[0] is a path) with `input` on its standard input; kills it after
// `timeout`. Captures stdout and stderr.
ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input = "",
                          std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Every message of `topic`, from offset 0 to the end, read with FETCH.
Result<std::vector<StoredMessage>> fetch_all(client::Client& c, const std::string& topic);

// Registers a secret (a test user's password, a key's text) that no loftd may ever log. Every
// TestDaemon reads its whole log when it is destroyed and fails the running test for each
// registered secret it finds there: "no secret in any log line", checked over every test's
// log. Thread-safe; a secret stays registered for the rest of the process.
void never_log(std::string secret);

class TestDaemon {
 public:
  // `config_toml` is written to a file passed with --config; `extra_args` follow it.
  explicit TestDaemon(std::string config_toml = "", std::vector<std::string> extra_args = {});
  ~TestDaemon();
  TestDaemon(const TestDaemon&) = delete;
  TestDaemon& operator=(const TestDaemon&) = delete;

  // Starts loftd on the same data dir (again, after a stop) and waits until it listens.
  // `same_port`: listen on the port of the previous run, as a restarted broker would, so
  // clients can reconnect to the address they know.
  void start(bool same_port = false);
  // SIGTERM and wait for the exit; returns the exit code (-1 if killed by a signal).
  int stop();
  // SIGKILL and reap.
  void kill9();
  // Replaces the config file (atomically: a reload never reads half of it); a running loftd
  // reads it on SIGHUP.
  void write_config(const std::string& config_toml);
  // Sends `signo` (SIGHUP, SIGSTOP, ...) to the running daemon.
  void signal(int signo) const;
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // The daemon's peak resident memory so far (VmHWM in /proc/<pid>/status), in KiB; 0 when it
  // is not running or the kernel does not report it.
  std::uint64_t peak_rss_kib() const;
  // Its resident memory now (VmRSS), in KiB; 0 as above.
  std::uint64_t rss_kib() const;

  std::uint16_t port() const { return port_; }
  // The HTTP endpoint's port (--http-listen 127.0.0.1:0 unless extra_args give
  // --http-listen); 0 when it is off.
  std::uint16_t http_port() const { return http_port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // The TLS listener's port (tls_listen in the config, e.g. "127.0.0.1:0"); 0 when it is off.
  std::uint16_t tls_port() const { return tls_port_; }
  // The NATS port's (nats_listen in the config, e.g. "127.0.0.1:0"); 0 when it is off.
  std::uint16_t nats_port() const { return nats_port_; }
  const std::filesystem::path& data_dir() const { return data_dir_; }
  const std::filesystem::path& config_path() const { return config_path_; }
  std::string log() const;  // the daemon's stderr so far
  std::unique_ptr<client::Client> client(std::string name = "test") const;

  static std::string loftd_path();
  static std::string loft_path();
  // Runs the `loft` CLI against this daemon: loft --broker ADDRESS args..., `input` on stdin.
  ProcessResult loft(const std::vector<std::string>& args, const std::string& input = "") const;

 private:
  TempDir dir_;
  std::filesystem::path data_dir_;
  std::filesystem::path config_path_;
  std::filesystem::path port_file_;
  std::filesystem::path http_port_file_;
  std::filesystem::path tls_port_file_;
  std::filesystem::path nats_port_file_;
  std::filesystem::path log_path_;
  std::vector<std::string> extra_args_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::uint16_t http_port_ = 0;
  std::uint16_t tls_port_ = 0;
  std::uint16_t nats_port_ = 0;
};

}  // namespace loft::testing
