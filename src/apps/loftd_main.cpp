// loftd: flags, config, logging, signals and wiring. Nothing else lives here.

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/program_options.hpp>
#include <cstdlib>
#include <iostream>
#include <vector>

#include "data_dir_lock.hpp"
#include "loft/broker/broker.hpp"
#include "loft/common/version.hpp"
#include "loft/config/config.hpp"
#include "loft/net/server.hpp"
#include "loft/storage/store.hpp"

namespace po = boost::program_options;
namespace asio = boost::asio;

namespace loft {
namespace {

constexpr const char* kUsage = "Usage: loftd [OPTIONS]\n\nThe loft message broker daemon.\n\n";

spdlog::level::level_enum to_spdlog(config::LogLevel level) {
  switch (level) {
    case config::LogLevel::trace:
      return spdlog::level::trace;
    case config::LogLevel::debug:
      return spdlog::level::debug;
    case config::LogLevel::info:
      return spdlog::level::info;
    case config::LogLevel::warn:
      return spdlog::level::warn;
    case config::LogLevel::error:
      return spdlog::level::err;
    case config::LogLevel::off:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

[[noreturn]] void die(const std::string& message) {
  std::cerr << "loftd: " << message << "\n";
  std::exit(1);
}

template <class T>
T or_die(Result<T> r) {
  if (!r) die(r.error().detail.empty() ? r.error().to_string() : r.error().detail);
  if constexpr (!std::is_void_v<T>) return std::move(*r);
}

config::Config load(int argc, char** argv, std::string& port_file) {
  po::options_description desc("Options");
  // clang-format off
  desc.add_options()
    ("help,h", "print this help and exit")
    ("version", "print the version and exit")
    ("config,c", po::value<std::string>(), "TOML config file (see config/loftd.toml); flags override it")
    ("listen,l", po::value<std::string>(), "HOST:PORT to listen on (default 127.0.0.1:7450; port 0 = any free port)")
    ("data-dir,d", po::value<std::string>(), "directory for the data (default ./loft-data)")
    ("log-level", po::value<std::string>(), "trace, debug, info, warn, error or off (default info)")
    ("port-file", po::value<std::string>(), "write the bound port to this file once listening")
    ("set", po::value<std::vector<std::string>>()->composing(),
     "KEY=VALUE: set any config file key (repeatable), e.g. --set durability=os");
  // clang-format on
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    die(std::string(e.what()) + " (see loftd --help)");
  }
  if (vm.count("help")) {
    std::cout << kUsage << desc << "\n";
    std::exit(0);
  }
  if (vm.count("version")) {
    std::cout << "loftd " << kVersion << "\n";
    std::exit(0);
  }
  config::Config cfg;
  if (vm.count("config")) cfg = or_die(config::load_config_file(vm["config"].as<std::string>()));
  for (const auto& [flag, key] : {std::pair{"listen", "listen"}, std::pair{"data-dir", "data_dir"},
                                  std::pair{"log-level", "log_level"}}) {
    if (vm.count(flag)) or_die(config::apply_override(cfg, key, vm[flag].as<std::string>()));
  }
  if (vm.count("set")) {
    for (const auto& kv : vm["set"].as<std::vector<std::string>>()) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) die("--set needs KEY=VALUE, got '" + kv + "'");
      or_die(config::apply_override(cfg, kv.substr(0, eq), kv.substr(eq + 1)));
    }
  }
  or_die(config::validate(cfg));
  if (vm.count("port-file")) port_file = vm["port-file"].as<std::string>();
  return cfg;
}

int run(int argc, char** argv) {
  std::string port_file;
  const config::Config cfg = load(argc, argv, port_file);

  auto logger = spdlog::stderr_color_mt("loftd");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern(cfg.log_pattern);
  spdlog::set_level(to_spdlog(cfg.log_level));

  apps::DataDirLock lock(cfg.data_dir);

  storage::RocksDbOptions store_options;
  constexpr const char* kStoreSubdir = "rocksdb";
  store_options.dir = cfg.data_dir / kStoreSubdir;
  auto store = or_die(storage::open_rocksdb_store(store_options));

  broker::Options broker_options;
  broker_options.durability = cfg.durability == config::Durability::fsync
                                  ? storage::Durability::fsync
                                  : storage::Durability::os;
  broker_options.auto_create_topics = cfg.auto_create_topics;
  broker_options.default_retention = {static_cast<std::uint64_t>(cfg.retention_max_age.count()),
                                      cfg.retention_max_bytes, cfg.retention_max_messages};
  broker_options.retention_interval = cfg.retention_check_interval;
  broker_options.backup_subdir = kStoreSubdir;
  auto broker = or_die(broker::Broker::open(std::move(store), broker_options));

  net::ServerOptions server_options;
  server_options.limits = protocol::Limits{
      cfg.max_frame_size, cfg.max_message_size, static_cast<std::uint16_t>(cfg.max_id_size),
      static_cast<std::uint16_t>(cfg.max_key_size), cfg.max_headers_size};
  server_options.max_inflight_requests = cfg.max_inflight_requests;
  server_options.max_outgoing_bytes = cfg.max_send_queue;
  server_options.shutdown_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(cfg.shutdown_timeout);
  server_options.server_name = std::string("loftd ") + kVersion;

  asio::io_context io(1);
  // Installed before the port file exists, so a SIGTERM sent as soon as we are up is handled.
  asio::signal_set signals(io, SIGINT, SIGTERM);
  net::Server server(io, *broker, server_options);
  const auto hp = or_die(config::parse_host_port(cfg.listen));
  asio::ip::tcp::endpoint bound;
  try {
    bound = server.listen(hp.host, hp.port);
  } catch (const std::exception& e) {
    die("cannot listen on " + cfg.listen + ": " + e.what());
  }
  if (!port_file.empty())
    apps::write_file_atomically(port_file, std::to_string(bound.port()) + "\n");
  spdlog::info(
      "loftd started version={} listen={}:{} data_dir={} durability={} auto_create_topics={}",
      kVersion, bound.address().to_string(), bound.port(), cfg.data_dir.string(),
      config::to_string(cfg.durability), cfg.auto_create_topics);

  bool stopping = false;
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec,
                                                                      int signo) {
    if (ec) return;
    if (stopping) {
      spdlog::warn("signal={} while stopping: still finishing in-flight requests", signo);
    } else {
      stopping = true;
      spdlog::info("stopping signal={} sessions={}", signo, server.session_count());
      server.stop([&] {
        signals.cancel();
        io.stop();
      });
    }
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);
  io.run();

  // Every session is closed: nothing can enqueue any more. Complete what is queued, flush.
  broker->stop();
  const auto stats = broker->stats();
  broker.reset();  // closes RocksDB
  spdlog::info("loftd stopped commits={} messages={} failed_commits={}", stats.commits,
               stats.messages, stats.failed_commits);
  return 0;
}

}  // namespace
}  // namespace loft

int main(int argc, char** argv) {
  try {
    return loft::run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "loftd: " << e.what() << "\n";
    return 1;
  }
}
