// loftd: flags, config, logging, signals and wiring. Nothing else lives here.

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/program_options.hpp>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "data_dir_lock.hpp"
#include "loft/auth/auth.hpp"
#include "loft/auth/login_limits.hpp"
#include "loft/broker/broker.hpp"
#include "loft/broker/groups.hpp"
#include "loft/common/units.hpp"
#include "loft/common/version.hpp"
#include "loft/config/config.hpp"
#include "loft/http/server.hpp"
#include "loft/natsport/server.hpp"
#include "loft/net/group_runner.hpp"
#include "loft/net/server.hpp"
#include "loft/storage/store.hpp"
#include "loft/tls/tls.hpp"
#include "malloc_tuning.hpp"

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

struct PortFiles {
  std::string binary;  // --port-file
  std::string http;    // --http-port-file
  std::string tls;     // --tls-port-file
  std::string nats;    // --nats-port-file
};

// What the command line asks for, kept for SIGHUP, which builds the config from it again.
struct CommandLine {
  std::optional<std::filesystem::path> config_file;  // --config
  // KEY=VALUE over the file, in the order applied: the flags, then each --set.
  std::vector<std::pair<std::string, std::string>> overrides;
  PortFiles port_files;
};

CommandLine parse_command_line(int argc, char** argv) {
  po::options_description desc("Options");
  // clang-format off
  desc.add_options()
    ("help,h", "print this help and exit")
    ("version", "print the version and exit")
    ("config,c", po::value<std::string>(), "TOML config file (see config/loftd.toml); flags override it; SIGHUP reloads it")
    ("listen,l", po::value<std::string>(), "HOST:PORT to listen on (default 127.0.0.1:7450; port 0 = any free port)")
    ("data-dir,d", po::value<std::string>(), "directory for the data (default ./loft-data)")
    ("log-level", po::value<std::string>(), "trace, debug, info, warn, error or off (default info)")
    ("port-file", po::value<std::string>(), "write the bound port to this file once listening")
    ("http-listen", po::value<std::string>(), "HOST:PORT of the HTTP endpoint (default 127.0.0.1:7451; port 0 = any free port; off = none)")
    ("http-port-file", po::value<std::string>(), "write the bound HTTP port to this file (before --port-file is written)")
    ("tls-port-file", po::value<std::string>(), "write the bound TLS port (tls_listen) to this file (before --port-file is written)")
    ("nats-listen", po::value<std::string>(), "HOST:PORT of the NATS-compatible port (default off; port 0 = any free port)")
    ("nats-port-file", po::value<std::string>(), "write the bound NATS port to this file (before --port-file is written)")
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
  CommandLine cl;
  if (vm.count("config")) cl.config_file = vm["config"].as<std::string>();
  for (const auto& [flag, key] :
       {std::pair{"listen", "listen"}, std::pair{"data-dir", "data_dir"},
        std::pair{"log-level", "log_level"}, std::pair{"http-listen", "http_listen"},
        std::pair{"nats-listen", "nats_listen"}}) {
    if (vm.count(flag)) cl.overrides.emplace_back(key, vm[flag].as<std::string>());
  }
  if (vm.count("set")) {
    for (const auto& kv : vm["set"].as<std::vector<std::string>>()) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) die("--set needs KEY=VALUE, got '" + kv + "'");
      cl.overrides.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    }
  }
  if (vm.count("port-file")) cl.port_files.binary = vm["port-file"].as<std::string>();
  if (vm.count("http-port-file")) cl.port_files.http = vm["http-port-file"].as<std::string>();
  if (vm.count("tls-port-file")) cl.port_files.tls = vm["tls-port-file"].as<std::string>();
  if (vm.count("nats-port-file")) cl.port_files.nats = vm["nats-port-file"].as<std::string>();
  return cl;
}

// The file (if any), then the command line over it, then the checks: at start-up and on SIGHUP.
Result<config::Config> build_config(const CommandLine& cl) {
  config::Config cfg;
  if (cl.config_file) {
    auto loaded = config::load_config_file(*cl.config_file);
    if (!loaded) return tl::unexpected(loaded.error());
    cfg = std::move(*loaded);
  }
  for (const auto& [key, value] : cl.overrides) {
    if (auto applied = config::apply_override(cfg, key, value); !applied) {
      return tl::unexpected(applied.error());
    }
  }
  if (auto valid = config::validate(cfg); !valid) return tl::unexpected(valid.error());
  return cfg;
}

MessageLimits message_limits_of(const config::Config& cfg) {
  return MessageLimits{cfg.max_message_size, static_cast<std::uint16_t>(cfg.max_id_size),
                       static_cast<std::uint16_t>(cfg.max_key_size), cfg.max_headers_size};
}

net::ServerOptions server_options_of(const config::Config& cfg) {
  net::ServerOptions o;
  o.limits = protocol::Limits{cfg.max_frame_size, message_limits_of(cfg)};
  o.max_inflight_requests = cfg.max_inflight_requests;
  o.max_outgoing_bytes = cfg.max_send_queue;
  o.shutdown_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.shutdown_timeout);
  o.max_connections = cfg.max_connections;
  o.max_pending_connections = cfg.max_pending_connections;
  o.handshake_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(cfg.handshake_timeout);
  o.frame_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.frame_timeout);
  o.server_name = std::string("loftd ") + kVersion;
  o.security.allow_plaintext_passwords = cfg.allow_plaintext_passwords;
  o.security.max_auth_failures = cfg.max_auth_failures;
  return o;
}

// server_options_of plus what does not come from the config: the users, where their
// passwords are checked, and the bound on checks waiting (shared with the HTTP endpoint).
net::ServerOptions server_options_of(const config::Config& cfg,
                                     std::shared_ptr<auth::Authenticator> authenticator,
                                     asio::thread_pool& slow,
                                     std::shared_ptr<auth::PasswordCheckLimiter> password_checks) {
  auto o = server_options_of(cfg);
  o.security.authenticator = std::move(authenticator);
  o.security.slow_executor = slow.get_executor();
  o.security.password_checks = std::move(password_checks);
  return o;
}

// The NATS port's options (docs/nats.md): the binary port's connection limits and users, its
// payloads bounded by the broker's max_message_size.
natsport::ServerOptions nats_options_of(const config::Config& cfg) {
  natsport::ServerOptions o;
  o.max_payload = cfg.max_message_size;
  o.max_outgoing_bytes = cfg.max_send_queue;
  o.max_connections = cfg.max_connections;
  o.max_pending_connections = cfg.max_pending_connections;
  o.handshake_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(cfg.handshake_timeout);
  o.op_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.frame_timeout);
  o.ping_interval = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.nats_ping_interval);
  o.shutdown_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.shutdown_timeout);
  o.server_name = "loftd";
  o.loft_version = kVersion;
  o.security.allow_plaintext_passwords = cfg.allow_plaintext_passwords;
  return o;
}

std::string joined(const std::vector<std::string_view>& keys) {
  if (keys.empty()) return "none";
  std::string s;
  for (const auto key : keys) {
    if (!s.empty()) s += ',';
    s += key;
  }
  return s;
}

// The users file at start-up: a file that does not load stops loftd (the operator asked for
// users; running without them would be anonymous). Null without users_file.
std::shared_ptr<auth::Authenticator> load_users(const config::Config& cfg) {
  if (cfg.users_file.empty()) return nullptr;
  auto users = auth::Users::load(cfg.users_file);
  if (!users) die("cannot load users_file: " + users.error().detail);
  spdlog::info("users loaded file={} users={}", cfg.users_file.string(), users->all().size());
  return std::make_shared<auth::Authenticator>(
      std::make_shared<const auth::Users>(std::move(*users)));
}

// SIGHUP: reads the users file again. A file that does not load is logged and changes nothing;
// connections whose user changed are closed (net::Server::on_users_reloaded). Whether users
// exist at all is fixed at start: turning users_file on or off needs a restart.
void reload_users(config::Config& running, const config::Config& before,
                  auth::Authenticator* authenticator, net::Server& server) {
  if (running.users_file.empty() != before.users_file.empty()) {
    spdlog::warn("users_file turned {} needs a restart to take effect; keeping users_file={}",
                 running.users_file.empty() ? "off" : "on", before.users_file.string());
    running.users_file = before.users_file;
  }
  if (authenticator == nullptr) return;
  auto users = auth::Users::load(running.users_file);
  if (!users) {
    spdlog::error("users reload failed, keeping the previous users file={} error=\"{}\"",
                  running.users_file.string(), users.error().detail);
    running.users_file = before.users_file;
    return;
  }
  const auto count = users->all().size();
  authenticator->replace(std::make_shared<const auth::Users>(std::move(*users)));
  server.on_users_reloaded();
  spdlog::info("users reloaded file={} users={}", running.users_file.string(), count);
}

// The HTTP endpoint's users: the binary protocol's, checked on the same slow executor; the
// policies are reloadable (SIGHUP).
http::Security http_security_of(const config::Config& cfg,
                                std::shared_ptr<auth::Authenticator> authenticator,
                                asio::thread_pool& slow) {
  http::Security s;
  s.authenticator = std::move(authenticator);
  s.slow_executor = slow.get_executor();
  s.allow_plaintext_passwords = cfg.allow_plaintext_passwords;
  s.max_auth_failures = cfg.max_auth_failures;
  s.metrics = cfg.metrics_auth == config::MetricsAuth::users ? http::MetricsAccess::users
                                                             : http::MetricsAccess::open;
  return s;
}

// SIGHUP, on the io thread: build the config again as at start-up, take over the reloadable
// keys (config::is_reloadable), keep the rest and name them. A bad file changes nothing.
void reload(const CommandLine& cl, config::Config& running, net::Server& server,
            natsport::Server* nats, auth::Authenticator* authenticator) {
  if (!cl.config_file) {
    // The command line cannot have changed, so there is nothing new to apply.
    spdlog::info("SIGHUP: loftd runs without --config, nothing to reload");
    return;
  }
  const auto file = cl.config_file->string();
  auto loaded = build_config(cl);
  if (!loaded) {
    spdlog::error(
        "config reload failed, running on with the previous settings file={} error=\"{}\"", file,
        loaded.error().detail.empty() ? loaded.error().to_string() : loaded.error().detail);
    return;
  }
  const auto changed = config::diff(running, *loaded);
  for (const auto key : changed.needs_restart) {
    spdlog::warn("config key needs a restart to take effect key={}", key);
  }
  const auto old_level = running.log_level;
  const config::Config before = running;
  running = config::apply_reloadable(std::move(running), *loaded);
  reload_users(running, before, authenticator, server);
  if (nats != nullptr && authenticator != nullptr) nats->on_users_reloaded();
  server.update_limits(server_options_of(running));
  if (nats != nullptr) nats->update_limits(nats_options_of(running));
  // Under the more verbose of the old and the new level: a reload to a quieter level (warn)
  // still confirms itself.
  spdlog::set_level(to_spdlog(std::min(old_level, running.log_level)));
  spdlog::info(
      "config reloaded file={} applied={} needs_restart={} log_level={} max_connections={} "
      "max_pending_connections={} handshake_timeout={} frame_timeout={} "
      "max_inflight_requests={} max_send_queue={}",
      file, joined(changed.reloadable), joined(changed.needs_restart),
      config::to_string(running.log_level), running.max_connections,
      running.max_pending_connections, format_duration(running.handshake_timeout),
      format_duration(running.frame_timeout), running.max_inflight_requests,
      format_size(running.max_send_queue));
  spdlog::set_level(to_spdlog(running.log_level));
}

tls::ServerFiles tls_files_of(const config::Config& cfg) {
  tls::ServerFiles f{cfg.tls_cert_file, cfg.tls_key_file, cfg.tls_ca_file, tls::ClientAuth::none};
  switch (cfg.tls_client_auth) {
    case config::TlsClientAuth::none:
      break;
    case config::TlsClientAuth::optional:
      f.client_auth = tls::ClientAuth::optional;
      break;
    case config::TlsClientAuth::required:
      f.client_auth = tls::ClientAuth::required;
      break;
  }
  return f;
}

// SIGHUP, after the config: read the certificate, key and CA files again (their contents may
// have changed even when their paths did not). New TLS connections get the new context, open
// ones keep theirs; files that do not load change nothing.
void reload_tls(const config::Config& cfg, std::optional<tls::ServerContext>& context) {
  if (!context) return;
  if (auto ok = context->reload(tls_files_of(cfg)); !ok) {
    spdlog::error("tls reload failed, keeping the previous certificate error=\"{}\"",
                  ok.error().detail);
    return;
  }
  spdlog::info("tls reloaded {} client_auth={}", tls::describe_certificate(*context->current()),
               config::to_string(cfg.tls_client_auth));
}

void set_up_logging(const config::Config& cfg) {
  auto logger = spdlog::stderr_color_mt("loftd");
  spdlog::set_default_logger(logger);
  // Registered, so that spdlog::set_level (SIGHUP) reaches every layer's logger.
  for (const char* layer : {"net", "http", "nats"}) {
    spdlog::register_logger(logger->clone(layer));
  }
  spdlog::set_pattern(cfg.log_pattern);
  spdlog::set_level(to_spdlog(cfg.log_level));
}

constexpr const char* kStoreSubdir = "rocksdb";

std::unique_ptr<broker::Broker> open_broker(const config::Config& cfg) {
  storage::RocksDbOptions store_options;
  store_options.dir = cfg.data_dir / kStoreSubdir;
  auto store = or_die(storage::open_rocksdb_store(store_options));
  broker::Options o;
  o.durability = cfg.durability;
  o.message_limits = message_limits_of(cfg);
  o.auto_create_topics = cfg.auto_create_topics;
  // Once per episode (the broker calls it when writability changes), not once per failed write.
  o.on_storage_health = [](const broker::StorageHealth& h) {
    if (h.writable) {
      spdlog::info("storage writable again: publishes are stored again failed_writes={}",
                   h.failed_writes);
    } else {
      spdlog::error(
          "storage unwritable: publishes and group progress fail until it recovers (retried "
          "every second) error=\"{}\"",
          h.last_error);
    }
  };
  o.default_retention = {static_cast<std::uint64_t>(cfg.retention_max_age.count()),
                         cfg.retention_max_bytes, cfg.retention_max_messages};
  o.retention_interval = cfg.retention_check_interval;
  o.max_delivery_delay_ms = static_cast<std::uint64_t>(cfg.max_delivery_delay.count());
  o.backup_subdir = kStoreSubdir;
  return or_die(broker::Broker::open(std::move(store), o));
}

// What loftd runs, made in dependency order here (and nowhere else): the broker with its
// store, the consumer groups over it, and the front ends over both. Destroyed in reverse; the
// broker is stopped first (see stop()).
struct Daemon {
  Daemon(asio::io_context& io, const config::Config& cfg)
      : core(open_broker(cfg)),
        group_runner(io),
        groups(*core, broker::GroupDefaults{}, group_runner.poster()),
        authenticator(load_users(cfg)),
        server(io, *core, group_runner,
               server_options_of(cfg, authenticator, slow, password_checks)) {
    group_runner.attach(*core, groups);
  }
  // Also on an early exit (an exception from listen()): the writer thread calls into the groups
  // and posts to the io_context, so the broker stops while they all still exist. Idempotent.
  ~Daemon() { core->stop(); }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Binds the binary port and, if configured, the HTTP one; writes the port files (the
  // binary one last: whoever waits for it may use both ports once it exists).
  void listen(asio::io_context& io, const config::Config& cfg, const PortFiles& port_files) {
    const auto hp = or_die(config::parse_host_port(cfg.listen));
    try {
      bound = server.listen(hp.host, hp.port);
    } catch (const std::exception& e) {
      die("cannot listen on " + cfg.listen + ": " + e.what());
    }
    if (config::tls_listen_enabled(cfg)) listen_tls(cfg, port_files);
    if (config::nats_enabled(cfg)) listen_nats(io, cfg, port_files);
    if (config::http_enabled(cfg)) listen_http(io, cfg, port_files);
    if (!port_files.binary.empty())
      apps::write_file_atomically(port_files.binary, std::to_string(bound.port()) + "\n");
  }

  void listen_tls(const config::Config& cfg, const PortFiles& port_files) {
    tls_context = or_die(tls::ServerContext::load(tls_files_of(cfg)));
    const auto hp = or_die(config::parse_host_port(cfg.tls_listen));
    try {
      const auto ep = server.listen_tls(hp.host, hp.port, *tls_context);
      tls_bound = ep.address().to_string() + ":" + std::to_string(ep.port());
      if (!port_files.tls.empty())
        apps::write_file_atomically(port_files.tls, std::to_string(ep.port()) + "\n");
    } catch (const std::exception& e) {
      die("cannot listen for TLS on " + cfg.tls_listen + ": " + e.what());
    }
    spdlog::info("tls listening address={} {} client_auth={}", tls_bound,
                 tls::describe_certificate(*tls_context->current()),
                 config::to_string(cfg.tls_client_auth));
  }

  void listen_nats(asio::io_context& io, const config::Config& cfg, const PortFiles& port_files) {
    auto options = nats_options_of(cfg);
    options.security.authenticator = authenticator;
    options.security.slow_executor = slow.get_executor();
    options.security.password_checks = password_checks;
    options.jetstream.broker = core.get();
    options.jetstream.groups = &groups;
    options.jetstream.groups_changed = [this] { group_runner.arm(); };
    options.jetstream.message_limits = message_limits_of(cfg);
    nats_server.emplace(io, std::move(options));
    if (cfg.nats_tls && !tls_context)
      tls_context = or_die(tls::ServerContext::load(tls_files_of(cfg)));
    const auto hp = or_die(config::parse_host_port(cfg.nats_listen));
    try {
      const auto ep = nats_server->listen(hp.host, hp.port, cfg.nats_tls ? &*tls_context : nullptr);
      nats_bound = ep.address().to_string() + ":" + std::to_string(ep.port());
      if (!port_files.nats.empty())
        apps::write_file_atomically(port_files.nats, std::to_string(ep.port()) + "\n");
    } catch (const std::exception& e) {
      die("cannot listen for NATS on " + cfg.nats_listen + ": " + e.what());
    }
    if (cfg.nats_tls) {
      spdlog::info("nats tls listening address={} {} client_auth={}", nats_bound,
                   tls::describe_certificate(*tls_context->current()),
                   config::to_string(cfg.tls_client_auth));
    }
  }

  void listen_http(asio::io_context& io, const config::Config& cfg, const PortFiles& port_files) {
    http::ServerOptions options;
    options.max_body_bytes = cfg.max_frame_size;
    options.server_name = std::string("loftd ") + kVersion;
    options.security = http_security_of(cfg, authenticator, slow);
    options.security.password_checks = password_checks;  // a reload keeps it
    if (cfg.http_tls) {
      // HTTPS with the TLS listener's certificate (loaded here when tls_listen is off); each
      // connection takes the current context, so a SIGHUP reload reaches new connections.
      if (!tls_context) tls_context = or_die(tls::ServerContext::load(tls_files_of(cfg)));
      options.tls_context = [this] { return tls_context->current(); };
    }
    const auto figures = [this] {
      const auto logins = server.auth_counters();
      http::NetFigures f;
      f.connections_open = server.session_count();
      f.connections_refused = server.refused_connections();
      f.auth_succeeded = logins.succeeded;
      f.auth_failed = logins.failed;
      f.connections_pending = server.pending_count();
      f.connections_evicted = server.evicted_pending();
      if (nats_server) {
        const auto n = nats_server->figures();
        f.nats =
            http::NatsFigures{n.connections_open, n.subscriptions, n.messages_in,   n.messages_out,
                              n.bytes_in,         n.bytes_out,     n.slow_consumers};
        f.auth_succeeded += n.auth_succeeded;
        f.auth_failed += n.auth_failed;
      }
      return f;
    };
    http_server.emplace(io, http::Sources{*core, groups, figures}, options);
    const auto hp = or_die(config::parse_host_port(cfg.http_listen));
    try {
      const auto ep = http_server->listen(hp.host, hp.port);
      http_bound = ep.address().to_string() + ":" + std::to_string(ep.port());
      if (!port_files.http.empty())
        apps::write_file_atomically(port_files.http, std::to_string(ep.port()) + "\n");
    } catch (const std::exception& e) {
      die("cannot listen for HTTP on " + cfg.http_listen + ": " + e.what());
    }
    if (cfg.http_tls) {
      spdlog::info("https listening address={} {}", http_bound,
                   tls::describe_certificate(*tls_context->current()));
    }
  }

  // After io.run() returned: every session is closed, nothing can enqueue any more. Completes
  // what is queued, flushes, closes RocksDB.
  broker::WriterStats stop() {
    core->stop();
    return core->stats();
  }

  std::unique_ptr<broker::Broker> core;           // the broker, with its store
  std::optional<tls::ServerContext> tls_context;  // with tls_listen, http_tls or nats_tls
  net::GroupRunner group_runner;
  broker::Groups groups;
  // Password checks (Argon2id, tens of ms and 64 MiB each) run here, one at a time, off the io
  // thread. Declared before the front ends: it is joined after they are gone.
  asio::thread_pool slow{1};
  std::shared_ptr<auth::Authenticator> authenticator;  // null without users_file
  // One bound on queued password checks for every front end: a flood of logins cannot queue
  // more on `slow` by spreading over the binary, the HTTP and the NATS port.
  std::shared_ptr<auth::PasswordCheckLimiter> password_checks =
      std::make_shared<auth::PasswordCheckLimiter>();
  net::Server server;
  std::optional<http::Server> http_server;
  std::optional<natsport::Server> nats_server;  // with nats_listen
  asio::ip::tcp::endpoint bound;
  std::string http_bound = "off";
  std::string tls_bound = "off";
  std::string nats_bound = "off";
};

// SIGINT / SIGTERM stop loftd gracefully (a second one only logs); SIGHUP reloads the config.
class Signals {
 public:
  Signals(asio::io_context& io, asio::signal_set& hup, const CommandLine& cl, config::Config& cfg,
          Daemon& daemon)
      : io_(io), stop_(io, SIGINT, SIGTERM), hup_(hup), cl_(cl), cfg_(cfg), daemon_(daemon) {
    wait_stop();
    wait_hup();
  }

 private:
  void wait_stop() {
    stop_.async_wait([this](boost::system::error_code ec, int signo) {
      if (ec) return;
      if (stopping_) {
        spdlog::warn("signal={} while stopping: still finishing in-flight requests", signo);
      } else {
        stopping_ = true;
        spdlog::info("stopping signal={} sessions={}", signo, daemon_.server.session_count());
        if (daemon_.http_server) daemon_.http_server->stop();
        // Both front ends drain at once; the io loop ends when the last one is done.
        const auto done = [this] {
          if (--front_ends_ > 0) return;
          stop_.cancel();
          hup_.cancel();
          io_.stop();
        };
        front_ends_ = daemon_.nats_server ? 2 : 1;
        if (daemon_.nats_server) daemon_.nats_server->stop(done);
        daemon_.server.stop(done);
      }
      wait_stop();
    });
  }
  void wait_hup() {
    hup_.async_wait([this](boost::system::error_code ec, int) {
      if (ec || stopping_) return;
      reload(cl_, cfg_, daemon_.server, daemon_.nats_server ? &*daemon_.nats_server : nullptr,
             daemon_.authenticator.get());
      reload_tls(cfg_, daemon_.tls_context);
      if (daemon_.http_server) {
        daemon_.http_server->update_security(
            http_security_of(cfg_, daemon_.authenticator, daemon_.slow));
      }
      wait_hup();
    });
  }

  asio::io_context& io_;
  asio::signal_set stop_;
  asio::signal_set& hup_;
  const CommandLine& cl_;
  config::Config& cfg_;
  Daemon& daemon_;
  bool stopping_ = false;
  int front_ends_ = 0;  // still draining while stopping
};

int run(int argc, char** argv) {
  const CommandLine cl = parse_command_line(argc, argv);
  config::Config cfg = or_die(build_config(cl));
  set_up_logging(cfg);

  asio::io_context io(1);
  // Before storage opens (which may take a while): a SIGHUP from now on is no longer fatal; it
  // waits, and is handled once loftd serves.
  asio::signal_set hup(io, SIGHUP);
  apps::DataDirLock lock(cfg.data_dir);
  auto daemon = std::make_unique<Daemon>(io, cfg);
  // Installed before the port file exists, so a SIGTERM sent as soon as we are up is handled.
  Signals signals(io, hup, cl, cfg, *daemon);
  daemon->listen(io, cfg, cl.port_files);
  spdlog::info(
      "loftd started version={} listen={}:{} tls_listen={} http_listen={} nats_listen={} "
      "data_dir={} durability={} auto_create_topics={} users={}",
      kVersion, daemon->bound.address().to_string(), daemon->bound.port(), daemon->tls_bound,
      daemon->http_bound, daemon->nats_bound, cfg.data_dir.string(),
      config::to_string(cfg.durability), cfg.auto_create_topics,
      cfg.users_file.empty() ? std::string("none (anonymous)") : cfg.users_file.string());
  if (cfg.users_file.empty() && cfg.allow_anonymous) {
    for (const auto& [key, address] : config::listeners(cfg)) {
      const auto hp = config::parse_host_port(address);
      if (hp && !config::is_loopback_host(hp->host)) {
        spdlog::warn(
            "{} {} is reachable from the network without users (allow_anonymous = true): anyone "
            "who reaches it may read, publish and delete every topic",
            key, address);
      }
    }
  }
  io.run();

  const auto stats = daemon->stop();
  daemon.reset();  // closes RocksDB
  spdlog::info("loftd stopped commits={} messages={} failed_commits={}", stats.commits,
               stats.messages, stats.failed_commits);
  return 0;
}

}  // namespace
}  // namespace loft

int main(int argc, char** argv) {
  loft::apps::tune_malloc_for_commits();
  try {
    return loft::run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "loftd: " << e.what() << "\n";
    return 1;
  }
}
