#include "test_daemon.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <future>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>

namespace loft::testing {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = 1ms;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "loft-test-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

namespace {

// Waits for `pid` up to `timeout`; returns the exit code, -1 for a signal, nullopt on timeout.
std::optional<int> wait_for_exit(pid_t pid, std::chrono::milliseconds timeout) {
  std::optional<int> code;
  eventually(
      [&] {
        int status = 0;
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) {
          code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
          return true;
        }
        return r < 0;  // not our child any more
      },
      timeout);
  return code;
}

[[noreturn]] void exec_child(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execv(args[0], args.data());
  ::_exit(127);
}

// Forks every loftd from one thread that lives as long as the test process, and each child
// asks for SIGKILL when that thread ends (PR_SET_PDEATHSIG). A test process that a sanitizer
// aborts (no destructors run) thus takes its daemons with it, SIGSTOPped ones included.
// Forking from the calling thread would not do: tests restart daemons from helper threads
// that end long before the daemon should.
class Spawner {
 public:
  // Never destroyed: its thread must outlive every daemon.
  static Spawner& instance() {
    static Spawner* spawner = new Spawner;
    return *spawner;
  }

  // Starts argv[0] with stdout and stderr on `out_fd`; the child's pid.
  pid_t spawn(std::vector<std::string> argv, int out_fd) {
    Job job{std::move(argv), out_fd, {}};
    auto pid = job.pid.get_future();
    {
      std::lock_guard lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
    return pid.get();
  }

 private:
  struct Job {
    std::vector<std::string> argv;
    int out_fd = -1;
    std::promise<pid_t> pid;
  };

  Spawner() {
    std::thread([this] { run(); }).detach();
  }

  [[noreturn]] void run() {
    for (;;) {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return !jobs_.empty(); });
      Job job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      std::vector<char*> args;  // built before fork: the child only execs
      for (auto& a : job.argv) args.push_back(a.data());
      args.push_back(nullptr);
      const pid_t parent = ::getpid();
      const pid_t pid = ::fork();
      if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(127);  // the parent is already gone
        ::dup2(job.out_fd, 1);
        ::dup2(job.out_fd, 2);
        ::execv(args[0], args.data());
        ::_exit(127);
      }
      job.pid.set_value(pid);
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
};

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input,
                          std::chrono::milliseconds timeout) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC)) {
    throw std::runtime_error("pipe failed");
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    exec_child(argv);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  // Feed stdin from a thread so a child that writes a lot before reading cannot deadlock us.
  std::thread feeder([fd = in[1], &input] {
    std::size_t off = 0;
    ::signal(SIGPIPE, SIG_IGN);
    while (off < input.size()) {
      const auto n = ::write(fd, input.data() + off, input.size() - off);
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
    ::close(fd);
  });
  ProcessResult result;
  std::array<pollfd, 2> fds{{{out[0], POLLIN, 0}, {err[0], POLLIN, 0}}};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int open = 2;
  char buf[65536];
  while (open > 0 && std::chrono::steady_clock::now() < deadline) {
    if (::poll(fds.data(), fds.size(), 100) <= 0) continue;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const auto n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
        continue;
      }
      (i == 0 ? result.out : result.err).append(buf, static_cast<std::size_t>(n));
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  auto code = wait_for_exit(pid, std::max<std::chrono::milliseconds>(
                                     1ms, std::chrono::duration_cast<std::chrono::milliseconds>(
                                              deadline - std::chrono::steady_clock::now())));
  if (!code) {
    ::kill(pid, SIGKILL);
    code = wait_for_exit(pid, 10s);
    result.exit_code = -1;
  } else {
    result.exit_code = *code;
  }
  feeder.join();
  return result;
}

int env_count(const char* name, int fallback) {
  const char* env = std::getenv(name);
  const int n = env ? std::atoi(env) : 0;
  return n > 0 ? n : fallback;
}

Result<std::vector<StoredMessage>> fetch_all(client::Client& c, const std::string& topic) {
  std::vector<StoredMessage> out;
  for (std::uint64_t offset = 0;;) {
    auto got = c.fetch(topic, offset, 1000);
    if (!got) return tl::unexpected(got.error());
    if (got->messages.empty()) return out;
    for (auto& m : got->messages) out.push_back(std::move(m));
    offset = out.back().offset.value + 1;
  }
}

std::string TestDaemon::loftd_path() { return LOFT_LOFTD_PATH; }
std::string TestDaemon::loft_path() { return LOFT_LOFT_PATH; }

ProcessResult TestDaemon::loft(const std::vector<std::string>& args,
                               const std::string& input) const {
  std::vector<std::string> argv{loft_path(), "--broker", address()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, input);
}

TestDaemon::TestDaemon(std::string config_toml, std::vector<std::string> extra_args)
    : data_dir_(dir_.path() / "data"),
      config_path_(dir_.path() / "loftd.toml"),
      port_file_(dir_.path() / "port"),
      http_port_file_(dir_.path() / "http_port"),
      tls_port_file_(dir_.path() / "tls_port"),
      nats_port_file_(dir_.path() / "nats_port"),
      log_path_(dir_.path() / "loftd.log"),
      extra_args_(std::move(extra_args)) {
  write_config(config_toml);
}

void TestDaemon::write_config(const std::string& config_toml) {
  const fs::path temp = config_path_.string() + ".tmp";
  {
    std::ofstream out(temp);
    out << config_toml;
    if (!out.flush()) throw std::runtime_error("cannot write " + temp.string());
  }
  fs::rename(temp, config_path_);
}

void TestDaemon::signal(int signo) const {
  if (pid_ <= 0) throw std::runtime_error("loftd is not running");
  ::kill(pid_, signo);
}

namespace {

std::mutex secrets_mutex;
std::vector<std::string>& secrets() {
  static std::vector<std::string> registered;  // guarded by secrets_mutex
  return registered;
}

}  // namespace

void never_log(std::string secret) {
  if (secret.empty()) return;
  std::lock_guard lock(secrets_mutex);
  if (std::find(secrets().begin(), secrets().end(), secret) == secrets().end()) {
    secrets().push_back(std::move(secret));
  }
}

TestDaemon::~TestDaemon() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    if (!wait_for_exit(pid_, 20s)) {
      ::kill(pid_, SIGKILL);
      wait_for_exit(pid_, 10s);
    }
  }
  // After the exit: the shutdown's own lines are checked too.
  const auto text = log();
  std::lock_guard lock(secrets_mutex);
  for (const auto& secret : secrets()) {
    const auto at = text.find(secret);
    if (at == std::string::npos) continue;
    const auto newline = text.rfind('\n', at);
    const auto begin = newline == std::string::npos ? 0 : newline + 1;
    auto line = text.substr(begin, text.find('\n', at) - begin);
    for (auto p = line.find(secret); p != std::string::npos; p = line.find(secret, p)) {
      line.replace(p, secret.size(), "<SECRET>");
    }
    ADD_FAILURE() << "loftd logged a secret: " << line;
  }
}

// A start may replay a write-ahead log under a sanitizer on a loaded 2-core machine: generous.
constexpr std::chrono::seconds kStartTimeout{120};

void TestDaemon::start(bool same_port) {
  if (pid_ > 0) throw std::runtime_error("loftd already running");
  std::error_code ec;
  fs::remove(port_file_, ec);
  fs::remove(http_port_file_, ec);
  fs::remove(tls_port_file_, ec);
  fs::remove(nats_port_file_, ec);
  const std::string listen =
      same_port && port_ != 0 ? "127.0.0.1:" + std::to_string(port_) : "127.0.0.1:0";
  std::vector<std::string> argv{loftd_path(),       "--config",    config_path_.string(),
                                "--listen",         listen,        "--data-dir",
                                data_dir_.string(), "--port-file", port_file_.string()};
  // Never the default HTTP port: daemons of concurrent tests would fight over it. A free one
  // on every start, even with same_port: no test needs the old one, and it may be taken.
  if (std::find(extra_args_.begin(), extra_args_.end(), "--http-listen") == extra_args_.end()) {
    argv.insert(argv.end(), {"--http-listen", "127.0.0.1:0"});
  }
  argv.insert(argv.end(), {"--http-port-file", http_port_file_.string()});
  argv.insert(argv.end(), {"--tls-port-file", tls_port_file_.string()});
  argv.insert(argv.end(), {"--nats-port-file", nats_port_file_.string()});
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const pid_t pid = Spawner::instance().spawn(argv, log_fd);
  ::close(log_fd);
  if (pid < 0) throw std::runtime_error("fork failed");
  pid_ = pid;
  std::optional<int> exited;
  const bool up = eventually(
      [&] {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
          exited = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
          return true;
        }
        return fs::exists(port_file_);
      },
      kStartTimeout);
  if (exited || !up) {
    if (!exited) {
      ::kill(pid_, SIGKILL);
      wait_for_exit(pid_, 10s);
    }
    pid_ = -1;
    throw std::runtime_error("loftd did not start (" +
                             (exited ? "exit " + std::to_string(*exited) : std::string("timeout")) +
                             "): " + log());
  }
  const auto read_port = [](const fs::path& file) {
    std::ifstream in(file);
    int port = 0;
    in >> port;  // no file (HTTP off): 0
    return static_cast<std::uint16_t>(port);
  };
  port_ = read_port(port_file_);
  http_port_ = read_port(http_port_file_);
  tls_port_ = read_port(tls_port_file_);
  nats_port_ = read_port(nats_port_file_);
}

int TestDaemon::stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  auto code = wait_for_exit(pid_, 60s);
  if (!code) {
    ::kill(pid_, SIGKILL);
    wait_for_exit(pid_, 10s);
    code = -2;
  }
  pid_ = -1;
  return *code;
}

void TestDaemon::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  wait_for_exit(pid_, 30s);
  pid_ = -1;
}

namespace {

// A "Name:  1234 kB" line of /proc/<pid>/status, in KiB; 0 when absent.
std::uint64_t status_kib(pid_t pid, std::string_view name) {
  if (pid <= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.size() > name.size() && line.compare(0, name.size(), name) == 0 &&
        line[name.size()] == ':') {
      return std::stoull(line.substr(name.size() + 1));
    }
  }
  return 0;
}

}  // namespace

std::uint64_t TestDaemon::peak_rss_kib() const { return status_kib(pid_, "VmHWM"); }

std::uint64_t TestDaemon::rss_kib() const { return status_kib(pid_, "VmRSS"); }

std::string TestDaemon::log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<client::Client> TestDaemon::client(std::string name) const {
  client::Options options;
  options.host = "127.0.0.1";
  options.port = port_;
  options.client_name = std::move(name);
  options.request_timeout = 60s;
  auto c = client::Client::connect(options);
  if (!c) throw std::runtime_error("cannot connect to loftd: " + c.error().to_string());
  return std::move(*c);
}

}  // namespace loft::testing
