#pragma once
// loftd's configuration: one plain struct, every default in one place (here), loaded from the
// TOML file (config/loftd.toml documents every key) and then overridden by command-line flags.
// Pure: no IO besides reading the file's text in load_config_file.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loft/common/error.hpp"
#include "loft/common/topic.hpp"

namespace loft::config {

using loft::Durability;  // one definition, in loft/common/topic.hpp
enum class LogLevel { trace, debug, info, warn, error, off };
// Whether the TLS listeners ask a client for its certificate (checked against tls_ca_file).
enum class TlsClientAuth { none, optional, required };
// Whether GET /metrics needs a user (HTTP Basic), like the /v1 API does when users exist.
enum class MetricsAuth { open, users };

struct Config {
  // Network
  std::string listen = "127.0.0.1:7450";       // HOST:PORT; port 0 binds a free port
  std::uint32_t max_inflight_requests = 1024;  // per connection; reading pauses beyond it
  // Per connection: replies and deliveries not yet written to the socket. Beyond it the
  // connection gets no new deliveries and its requests are not read until it drains.
  std::uint32_t max_send_queue = 64 * 1024 * 1024;
  std::chrono::microseconds shutdown_timeout = std::chrono::seconds(10);
  // Open client connections; one more is sent ERROR too_many_connections and closed.
  std::uint32_t max_connections = 4096;
  // Of those, connections that have not completed HELLO (and, with users, AUTHENTICATE; with
  // TLS, the TLS handshake). At the limit the oldest pending one is closed to make room, so
  // sockets that never speak cannot lock out clients that do.
  std::uint32_t max_pending_connections = 256;
  // From accept to a completed HELLO; a connection that takes longer is closed.
  std::chrono::microseconds handshake_timeout = std::chrono::seconds(5);
  // From the first byte of a frame to its last; a connection idle between frames is never
  // closed for it (consumers may wait for messages for hours).
  std::chrono::microseconds frame_timeout = std::chrono::seconds(30);
  // HOST:PORT of the HTTP endpoint (metrics, health, /v1 API); "" or "off" turns it off.
  std::string http_listen = "127.0.0.1:7451";
  // HOST:PORT of the NATS-compatible port (docs/nats.md); "" or "off" (the default) = none.
  std::string nats_listen;
  // How often loftd PINGs each NATS client; one that leaves two PINGs unanswered is closed
  // (-ERR 'Stale Connection'), so a vanished peer does not keep its subscriptions for ever.
  std::chrono::microseconds nats_ping_interval = std::chrono::minutes(2);
  // The NATS port speaks TLS (INFO says tls_required, then the client's TLS handshake), with
  // tls_cert_file and tls_key_file; tls_client_auth applies.
  bool nats_tls = false;

  // Security (docs/security.md)
  // HOST:PORT of a second binary-protocol listener that speaks only TLS; "" or "off" = none.
  std::string tls_listen;
  std::filesystem::path tls_cert_file;  // PEM chain, the server's certificate first
  std::filesystem::path tls_key_file;   // PEM private key of that certificate
  std::filesystem::path tls_ca_file;    // PEM CA(s) that client certificates must chain to
  TlsClientAuth tls_client_auth = TlsClientAuth::none;
  bool http_tls = false;  // the HTTP listener speaks HTTPS, with tls_cert_file and tls_key_file
  // TOML file of [[users]] with password hashes and permissions; "" = no users (anonymous).
  std::filesystem::path users_file;
  // Lets loftd listen on a non-loopback address with no users_file: anyone who reaches the port
  // may do anything. Without it such a configuration refuses to start.
  bool allow_anonymous = false;
  // Lets a password arrive over a plaintext connection from a non-loopback address.
  bool allow_plaintext_passwords = false;
  MetricsAuth metrics_auth = MetricsAuth::open;
  // Failed AUTHENTICATE attempts after which a connection is closed (ERROR auth_failures).
  std::uint32_t max_auth_failures = 3;

  // Storage
  std::filesystem::path data_dir = "./loft-data";
  Durability durability = Durability::fsync;
  bool auto_create_topics = false;
  // Retention limits of a topic created without its own; 0 = unlimited ("none" in the file).
  std::chrono::milliseconds retention_max_age{0};
  std::uint64_t retention_max_bytes = 0;
  std::uint64_t retention_max_messages = 0;
  // How often loftd looks for messages past their topic's limits.
  std::chrono::milliseconds retention_check_interval = std::chrono::seconds(1);
  // Delayed delivery: how far ahead of now a publish's delivery time may be (docs/semantics.md,
  // "Delayed delivery"); one further ahead is refused with delay_too_long.
  std::chrono::milliseconds max_delivery_delay = std::chrono::hours(24 * 30);

  // Limits (bytes)
  std::uint32_t max_frame_size = 16 * 1024 * 1024;
  std::uint32_t max_message_size = 1024 * 1024;
  std::uint32_t max_id_size = 256;
  std::uint32_t max_key_size = 1024;
  std::uint32_t max_headers_size = 64 * 1024;

  // Logging
  LogLevel log_level = LogLevel::info;
  std::string log_pattern = "[%Y-%m-%d %H:%M:%S.%e] [%l] [%n] %v";
};

// Parses TOML text into a Config starting from the defaults. An unknown key, a wrong type or
// a bad value fails with invalid_request and a detail naming the key, e.g.
// "config key 'durability': expected \"fsync\" or \"os\", got \"always\"".
Result<Config> parse_config(std::string_view toml_text, std::string_view source_name = "config");
Result<Config> load_config_file(const std::filesystem::path& path);

// Applies one override as the command line gives it ("listen", "127.0.0.1:0"), with the same
// validation and messages as the file.
Result<void> apply_override(Config& config, std::string_view key, std::string_view value);

// Cross-field checks (e.g. max_message_size < max_frame_size); run after file and overrides.
Result<void> validate(const Config& config);

// Reload (loftd's SIGHUP): which keys a running loftd can take over without a restart. They are
// log_level, the connection limits (max_connections, max_pending_connections,
// handshake_timeout, frame_timeout, max_inflight_requests, max_send_queue) and the security
// files and policies (tls_cert_file, tls_key_file, tls_ca_file, tls_client_auth, users_file,
// allow_plaintext_passwords, metrics_auth, max_auth_failures). A SIGHUP also reads the
// certificate, key, CA and users files again even when their paths did not change. Every
// other key takes effect only at start-up.
bool is_reloadable(std::string_view key);

// The keys whose values differ between `running` and `loaded`, split by is_reloadable, each
// list in the order of the Config struct.
struct Diff {
  std::vector<std::string_view> reloadable;
  std::vector<std::string_view> needs_restart;
};
Diff diff(const Config& running, const Config& loaded);

// `running` with every reloadable key taken from `loaded`: what a reload applies. The keys that
// need a restart keep their running values.
Config apply_reloadable(Config running, const Config& loaded);

// False when http_listen turns the HTTP endpoint off ("" or "off").
bool http_enabled(const Config& config);
// False when tls_listen is "" or "off".
bool tls_listen_enabled(const Config& config);
// False when nats_listen is "" or "off".
bool nats_enabled(const Config& config);
// True for an IP literal in 127.0.0.0/8, ::1, or "localhost": an address only this machine
// reaches. Any other name counts as reachable from the network.
bool is_loopback_host(std::string_view host);
// Every listener of `config` that is on: ("listen", "127.0.0.1:7450"), ...
std::vector<std::pair<std::string_view, std::string>> listeners(const Config& config);

std::string_view to_string(Durability d);
std::string_view to_string(LogLevel l);
std::string_view to_string(TlsClientAuth a);
std::string_view to_string(MetricsAuth a);

// "host:port" split; port must be 0..65535. IPv6 as "[::1]:7450".
struct HostPort {
  std::string host;
  std::uint16_t port = 0;
};
Result<HostPort> parse_host_port(std::string_view text);

}  // namespace loft::config
