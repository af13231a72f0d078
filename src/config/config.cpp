#include "loft/config/config.hpp"

// toml++ is used with its default TOML_EXCEPTIONS (on): the installed shared library only exports
// the throwing parser. The one parse_error is caught right at the call and becomes a Result, so
// no exception leaves this file. Keep toml++ out of every other translation unit.
#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "loft/common/subject.hpp"
#include "loft/common/text_file.hpp"
#include "loft/common/units.hpp"

namespace loft::config {
namespace {

constexpr std::uint64_t kU16Max = std::numeric_limits<std::uint16_t>::max();
constexpr std::uint64_t kU32Max = std::numeric_limits<std::uint32_t>::max();
constexpr std::uint64_t kMinFrameSize = 1ULL << 10;
constexpr std::uint64_t kMaxFrameSize = 1ULL << 30;
// Room in a frame for everything but the message's own bytes (frame header, topic name, lengths).
constexpr std::uint64_t kFrameOverhead = 1ULL << 10;

// A value as the file or the command line gives it, before a key's parser reads it. The command
// line always gives text, which each key interprets in its own way ("true", "1MiB", "1024"); the
// file gives typed TOML values and a value of the wrong TOML type is rejected.
struct Input {
  enum class Kind { text, integer, boolean, other };
  Kind kind = Kind::other;
  std::string text;
  std::int64_t integer = 0;
  bool boolean = false;
  bool from_command_line = false;
  std::string shown;  // how messages show the value: "\"os\"", "12", "a table"
};

std::string in_quotes(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  out += s;
  out += '"';
  return out;
}

tl::unexpected<Error> bad_value(std::string_view key, std::string_view expected, const Input& in,
                                std::string_view why = {}) {
  std::string detail = "config key '" + std::string(key) + "': expected " + std::string(expected) +
                       ", got " + in.shown;
  if (!why.empty()) detail += " (" + std::string(why) + ")";
  return fail(Errc::invalid_request, std::move(detail));
}

// Each reader returns the value or the error for `key`; the setters below only assign on success,
// so a failed key leaves the Config as it was.

Result<std::string> read_text(std::string_view key, const Input& in, std::string_view expected) {
  if (in.kind != Input::Kind::text) return bad_value(key, expected, in);
  return in.text;
}

Result<std::string> read_non_empty_text(std::string_view key, const Input& in,
                                        std::string_view expected) {
  auto text = read_text(key, in, expected);
  if (text && text->empty()) return bad_value(key, expected, in);
  return text;
}

Result<bool> read_bool(std::string_view key, const Input& in) {
  constexpr std::string_view kExpected = "true or false";
  if (in.kind == Input::Kind::boolean) return in.boolean;
  if (in.kind == Input::Kind::text && in.from_command_line) {
    if (in.text == "true") return true;
    if (in.text == "false") return false;
  }
  return bad_value(key, kExpected, in);
}

std::string integer_range(std::uint64_t min, std::uint64_t max) {
  return "an integer from " + std::to_string(min) + " to " + std::to_string(max);
}

Result<std::uint64_t> read_integer(std::string_view key, const Input& in, std::uint64_t min,
                                   std::uint64_t max) {
  const std::string expected = integer_range(min, max);
  std::uint64_t n = 0;
  if (in.kind == Input::Kind::integer) {
    if (in.integer < 0) return bad_value(key, expected, in);
    n = static_cast<std::uint64_t>(in.integer);
  } else if (in.kind == Input::Kind::text && in.from_command_line) {
    const auto* end = in.text.data() + in.text.size();
    const auto [ptr, ec] = std::from_chars(in.text.data(), end, n);
    if (ec != std::errc{} || ptr != end || in.text.empty()) return bad_value(key, expected, in);
  } else {
    return bad_value(key, expected, in);
  }
  if (n < min || n > max) return bad_value(key, expected, in);
  return n;
}

// Sizes are a size string ("16MiB") or, in the file, a plain TOML integer of bytes.
Result<std::uint64_t> read_size(std::string_view key, const Input& in, std::uint64_t min,
                                std::uint64_t max, std::string_view why_bounds = {}) {
  std::string expected = "a size from " + format_size(min) + " to " + format_size(max);
  if (!why_bounds.empty()) expected += " (" + std::string(why_bounds) + ")";
  expected += " like \"64KiB\" or a byte count";
  std::uint64_t n = 0;
  if (in.kind == Input::Kind::integer) {
    if (in.integer < 0) return bad_value(key, expected, in);
    n = static_cast<std::uint64_t>(in.integer);
  } else if (in.kind == Input::Kind::text) {
    auto size = parse_size(in.text);
    if (!size) return bad_value(key, expected, in, size.error().detail);
    n = *size;
  } else {
    return bad_value(key, expected, in);
  }
  if (n < min || n > max) return bad_value(key, expected, in);
  return n;
}

Result<std::chrono::microseconds> read_duration(std::string_view key, const Input& in) {
  constexpr std::string_view kExpected = "a duration like \"500ms\", \"10s\" or \"2m\"";
  if (in.kind != Input::Kind::text) return bad_value(key, kExpected, in);
  auto d = parse_duration(in.text);
  if (!d) return bad_value(key, kExpected, in, d.error().detail);
  return *d;
}

// Per-key bounds, shared by the parsers and validate() (which also sees Configs built in code).
struct SizeBounds {
  std::uint64_t min;
  std::uint64_t max;
  std::string_view why;
};
constexpr SizeBounds kFrameBounds{kMinFrameSize, kMaxFrameSize, ""};
constexpr SizeBounds kMessageBounds{1, kU32Max, ""};
constexpr SizeBounds kIdBounds{0, kU16Max, "ids are u16-length on the wire"};
constexpr SizeBounds kKeyBounds{0, kU16Max, "keys are u16-length on the wire"};
constexpr SizeBounds kHeadersBounds{0, kU32Max, ""};
constexpr SizeBounds kSendQueueBounds{std::uint64_t{64} * 1024, std::uint64_t{1024} * 1024 * 1024,
                                      ""};

Result<void> set_size(std::string_view key, const Input& in, const SizeBounds& b,
                      std::uint32_t& out) {
  auto n = read_size(key, in, b.min, b.max, b.why);
  if (!n) return tl::unexpected(n.error());
  out = static_cast<std::uint32_t>(*n);
  return {};
}

// A count of at least 1 (requests, connections).
Result<void> set_count(std::string_view key, const Input& in, std::uint32_t& out) {
  auto n = read_integer(key, in, 1, kU32Max);
  if (!n) return tl::unexpected(n.error());
  out = static_cast<std::uint32_t>(*n);
  return {};
}

// A connection timeout of zero would close every connection at once.
constexpr std::chrono::microseconds kMinConnectionTimeout = std::chrono::milliseconds(10);

Result<void> set_timeout(std::string_view key, const Input& in, std::chrono::microseconds& out) {
  auto d = read_duration(key, in);
  if (!d) return tl::unexpected(d.error());
  if (*d < kMinConnectionTimeout) {
    return bad_value(key, "a duration of at least \"10ms\"", in);
  }
  out = *d;
  return {};
}

constexpr std::array<std::pair<std::string_view, Durability>, 2> kDurabilities{{
    {"fsync", Durability::fsync},
    {"os", Durability::os},
}};

constexpr std::array<std::pair<std::string_view, LogLevel>, 6> kLogLevels{{
    {"trace", LogLevel::trace},
    {"debug", LogLevel::debug},
    {"info", LogLevel::info},
    {"warn", LogLevel::warn},
    {"error", LogLevel::error},
    {"off", LogLevel::off},
}};

constexpr std::array<std::pair<std::string_view, TlsClientAuth>, 3> kTlsClientAuths{{
    {"none", TlsClientAuth::none},
    {"optional", TlsClientAuth::optional},
    {"required", TlsClientAuth::required},
}};

constexpr std::array<std::pair<std::string_view, MetricsAuth>, 2> kMetricsAuths{{
    {"open", MetricsAuth::open},
    {"users", MetricsAuth::users},
}};

// "\"a\", \"b\" or \"c\""
template <class Table>
std::string one_of(const Table& table) {
  std::string s;
  for (std::size_t i = 0; i < table.size(); ++i) {
    if (i > 0) s += (i + 1 == table.size()) ? " or " : ", ";
    s += in_quotes(table[i].first);
  }
  return s;
}

template <class Enum, class Table>
Result<void> set_enum(std::string_view key, const Input& in, const Table& table, Enum& out) {
  const std::string expected = one_of(table);
  auto text = read_text(key, in, expected);
  if (!text) return tl::unexpected(text.error());
  for (const auto& [name, value] : table) {
    if (*text == name) {
      out = value;
      return {};
    }
  }
  return bad_value(key, expected, in);
}

// "none" (any key that takes it) means 0: unlimited.
// "none", or 0 as the file's integer or the command line's text: no limit.
bool is_none(const Input& in) {
  return (in.kind == Input::Kind::text && (in.text == "none" || in.text == "0")) ||
         (in.kind == Input::Kind::integer && in.integer == 0);
}

constexpr std::chrono::milliseconds kMinMaxAge{1000};
constexpr std::chrono::milliseconds kMaxMaxAge{100LL * 365 * 24 * 3600 * 1000};

constexpr std::string_view kListenExpected = "HOST:PORT like \"127.0.0.1:7450\" or \"[::1]:7450\"";

bool is_off(std::string_view listen) { return listen.empty() || listen == "off"; }

// A HOST:PORT that may also be "off" or "" (an optional listener).
Result<void> set_optional_listen(std::string_view key, const Input& in, std::string& out) {
  const std::string expected = "HOST:PORT, or \"off\" (or \"\") to turn it off";
  auto text = read_text(key, in, expected);
  if (!text) return tl::unexpected(text.error());
  if (!is_off(*text)) {
    auto hp = parse_host_port(*text);
    if (!hp) return bad_value(key, expected, in, hp.error().detail);
  }
  out = std::move(*text);
  return {};
}

// A file path; "" means none.
Result<void> set_path(std::string_view key, const Input& in, std::filesystem::path& out) {
  auto text = read_text(key, in, "a file path, or \"\" for none");
  if (!text) return tl::unexpected(text.error());
  out = std::move(*text);
  return {};
}

Result<void> set_bool(std::string_view key, const Input& in, bool& out) {
  auto b = read_bool(key, in);
  if (!b) return tl::unexpected(b.error());
  out = *b;
  return {};
}

using Setter = Result<void> (*)(Config&, std::string_view key, const Input&);

// The Config member a key sets, for diff and apply_reloadable.
struct Field {
  bool (*same)(const Config&, const Config&);
  void (*copy)(Config& to, const Config& from);
};

template <auto Member>
constexpr Field field() {
  return {[](const Config& a, const Config& b) { return a.*Member == b.*Member; },
          [](Config& to, const Config& from) { to.*Member = from.*Member; }};
}

// How a changed key takes effect in a running loftd.
enum class Reload { live, restart };

struct Key {
  std::string_view name;
  Setter set;
  Field field;
  Reload reload;
};

// Every key of the file and of apply_override, in the order of the Config struct.
const std::array<Key, 38> kKeys{{
    {"listen",
     [](Config& c, std::string_view key, const Input& in) -> Result<void> {
       auto text = read_text(key, in, kListenExpected);
       if (!text) return tl::unexpected(text.error());
       auto hp = parse_host_port(*text);
       if (!hp) return bad_value(key, kListenExpected, in, hp.error().detail);
       c.listen = std::move(*text);
       return {};
     },
     field<&Config::listen>(), Reload::restart},
    {"max_inflight_requests",
     [](Config& c, std::string_view key, const Input& in) {
       return set_count(key, in, c.max_inflight_requests);
     },
     field<&Config::max_inflight_requests>(), Reload::live},
    {"max_send_queue",
     [](Config& c, std::string_view key, const Input& in) {
       return set_size(key, in, kSendQueueBounds, c.max_send_queue);
     },
     field<&Config::max_send_queue>(), Reload::live},
    {"shutdown_timeout",
     [](Config& c, std::string_view key, const Input& in) -> Result<void> {
       auto d = read_duration(key, in);
       if (!d) return tl::unexpected(d.error());
       c.shutdown_timeout = *d;
       return {};
     },
     field<&Config::shutdown_timeout>(), Reload::restart},
    {"max_connections",
     [](Config& c, std::string_view key, const Input& in) {
       return set_count(key, in, c.max_connections);
     },
     field<&Config::max_connections>(), Reload::live},
    {"max_pending_connections",
     [](Config& c, std::string_view key, const Input& in) {
       return set_count(key, in, c.max_pending_connections);
     },
     field<&Config::max_pending_connections>(), Reload::live},
    {"handshake_timeout",
     [](Config& c, std::string_view key, const Input& in) {
       return set_timeout(key, in, c.handshake_timeout);
     },
     field<&Config::handshake_timeout>(), Reload::live},
    {"frame_timeout",
     [](Config& c, std::string_view key, const Input& in) {
       return set_timeout(key, in, c.frame_timeout);
     },
     field<&Config::frame_timeout>(), Reload::live},
    {"http_listen",
     [](Config& c, std::string_view key, const Input& in) -> Result<void> {
       constexpr std::string_view kExpected =
           "HOST:PORT like \"127.0.0.1:7451\", or \"off\" (or \"\") to turn HTTP off";
       auto text = read_text(key, in, kExpected);
       if (!text) return tl::unexpected(text.error());
       if (!text->empty() && *text != "off") {
         auto hp = parse_host_port(*text);
         if (!hp) return bad_value(key, kExpected, in, hp.error().detail);
       }
       c.http_listen = std::move(*text);
       return {};
     },
     field<&Config::http_listen>(), Reload::restart},
    {"nats_listen",
     [](Config& c, std::string_view key, const Input& in) {
       return set_optional_listen(key, in, c.nats_listen);
     },
     field<&Config::nats_listen>(), Reload::restart},
    {"nats_ping_interval",
     [](Config& c, std::string_view key, const Input& in) {
       return set_timeout(key, in, c.nats_ping_interval);
     },
     field<&Config::nats_ping_interval>(), Reload::restart},
    {"nats_tls",
     [](Config& c, std::string_view key, const Input& in) { return set_bool(key, in, c.nats_tls); },
     field<&Config::nats_tls>(), Reload::restart},
    {"tls_listen",
     [](Config& c, std::string_view key, const Input& in) {
       return set_optional_listen(key, in, c.tls_listen);
     },
     field<&Config::tls_listen>(), Reload::restart},
    {"tls_cert_file",
     [](Config& c, std::string_view key, const Input& in) {
       return set_path(key, in, c.tls_cert_file);
     },
     field<&Config::tls_cert_file>(), Reload::live},
    {"tls_key_file",
     [](Config& c, std::string_view key, const Input& in) {
       return set_path(key, in, c.tls_key_file);
     },
     field<&Config::tls_key_file>(), Reload::live},
    {"tls_ca_file",
     [](Config& c, std::string_view key, const Input& in) {
       return set_path(key, in, c.tls_ca_file);
     },
     field<&Config::tls_ca_file>(), Reload::live},
    {"tls_client_auth",
     [](Config& c, std::string_view key, const Input& in) {
       return set_enum(key, in, kTlsClientAuths, c.tls_client_auth);
     },
     field<&Config::tls_client_auth>(), Reload::live},
    {"http_tls",
     [](Config& c, std::string_view key, const Input& in) { return set_bool(key, in, c.http_tls); },
     field<&Config::http_tls>(), Reload::restart},
    {"users_file",
     [](Config& c, std::string_view key, const Input& in) {
       return set_path(key, in, c.users_file);
     },
     field<&Config::users_file>(), Reload::live},
    {"allow_anonymous",
     [](Config& c, std::string_view key, const Input& in) {
       return set_bool(key, in, c.allow_anonymous);
     },
     field<&Config::allow_anonymous>(), Reload::restart},
    {"allow_plaintext_passwords",
     [](Config& c, std::string_view key, const Input& in) {
       return set_bool(key, in, c.allow_plaintext_passwords);
     },
     field<&Config::allow_plaintext_passwords>(), Reload::live},
    {"metrics_auth",
     [](Config& c, std::string_view key, const Input& in) {
       return set_enum(key, in, kMetricsAuths, c.metrics_auth);
     },
     field<&Config::metrics_auth>(), Reload::live},
    {"max_auth_failures",
     [](Config& c, std::string_view key, const Input& in) {
       return set_count(key, in, c.max_auth_failures);
     },
     field<&Config::max_auth_failures>(), Reload::live},
    {"data_dir",
     [](Config& c, std::string_view key, const Input& in) -> Result<void> {
       auto text = read_non_empty_text(key, in, "a non-empty directory path");
       if (!text) return tl::unexpected(text.error());
       c.data_dir = std::move(*text);
       return {};
     },
     field<&Config::data_dir>(), Reload::restart},
    {"durability",
     [](Config& c, std::string_view key, const Input& in) {
       return set_enum(key, in, kDurabilities, c.durability);
     },
     field<&Config::durability>(), Reload::restart},
    {"auto_create_topics",
     [](Config& c, std::string_view key, const Input& in) {
       return set_bool(key, in, c.auto_create_topics);
     },
     field<&Config::auto_create_topics>(), Reload::restart},
    {"retention_max_age",
     [](Config& c, std::string_view key, const Input& in) -> Result<void> {
       if (is_none(in)) return c.retention_max_age = {}, Result<void>{};
       auto d = read_duration(key, in);
       if (!d) return tl::unexpected(d.error());
       const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
       if (ms.count() != 0 && (ms < kMinMaxAge || ms > kMaxMaxAge)) {
         return bad_value(key, "\"none\" or a duration from 1s to 36500d", in);
       }
       c.retention_max_age = ms;
       return {};
     },
     field<&Config::retention_max_age>(), Reload::restart},
    {"retention_max_bytes",
     [](Config& c, std::string_view key, const Input& in) -> Result<void> {
       if (is_none(in)) return c.retention_max_bytes = 0, Result<void>{};
       auto n = read_size(key, in, 0, std::numeric_limits<std::uint64_t>::max(), "0 = unlimited");
       if (!n) return tl::unexpected(n.error());
       c.retention_max_bytes = *n;
       return {};
     },
     field<&Config::retention_max_bytes>(), Reload::restart},
    {"retention_max_messages",
     [](Config& c, std::string_view key, const Input& in) -> Result<void> {
       if (is_none(in)) return c.retention_max_messages = 0, Result<void>{};
       auto n = read_integer(key, in, 0, std::numeric_limits<std::int64_t>::max());
       if (!n) return tl::unexpected(n.error());
       c.retention_max_messages = *n;
       return {};
     },
     field<&Config::retention_max_messages>(), Reload::restart},
    {"retention_check_interval",
     [](Config& c, std::string_view key, const Input& in) -> Result<void> {
       auto d = read_duration(key, in);
       if (!d) return tl::unexpected(d.error());
       const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
       if (ms < std::chrono::milliseconds{10} || ms > std::chrono::hours{1}) {
         return bad_value(key, "a duration from 10ms to 1h", in);
       }
       c.retention_check_interval = ms;
       return {};
     },
     field<&Config::retention_check_interval>(), Reload::restart},
    {"max_delivery_delay",
     [](Config& c, std::string_view key, const Input& in) -> Result<void> {
       auto d = read_duration(key, in);
       if (!d) return tl::unexpected(d.error());
       const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
       if (ms < std::chrono::seconds{1} || ms > kMaxMaxAge) {
         return bad_value(key, "a duration from 1s to 36500d", in);
       }
       c.max_delivery_delay = ms;
       return {};
     },
     field<&Config::max_delivery_delay>(), Reload::restart},
    {"max_frame_size",
     [](Config& c, std::string_view key, const Input& in) {
       return set_size(key, in, kFrameBounds, c.max_frame_size);
     },
     field<&Config::max_frame_size>(), Reload::restart},
    {"max_message_size",
     [](Config& c, std::string_view key, const Input& in) {
       return set_size(key, in, kMessageBounds, c.max_message_size);
     },
     field<&Config::max_message_size>(), Reload::restart},
    {"max_id_size",
     [](Config& c, std::string_view key, const Input& in) {
       return set_size(key, in, kIdBounds, c.max_id_size);
     },
     field<&Config::max_id_size>(), Reload::restart},
    {"max_key_size",
     [](Config& c, std::string_view key, const Input& in) {
       return set_size(key, in, kKeyBounds, c.max_key_size);
     },
     field<&Config::max_key_size>(), Reload::restart},
    {"max_headers_size",
     [](Config& c, std::string_view key, const Input& in) {
       return set_size(key, in, kHeadersBounds, c.max_headers_size);
     },
     field<&Config::max_headers_size>(), Reload::restart},
    {"log_level",
     [](Config& c, std::string_view key, const Input& in) {
       return set_enum(key, in, kLogLevels, c.log_level);
     },
     field<&Config::log_level>(), Reload::live},
    {"log_pattern",
     [](Config& c, std::string_view key, const Input& in) -> Result<void> {
       auto text = read_non_empty_text(key, in, "a non-empty spdlog pattern");
       if (!text) return tl::unexpected(text.error());
       c.log_pattern = std::move(*text);
       return {};
     },
     field<&Config::log_pattern>(), Reload::restart},
}};

// Plain Levenshtein distance; keys are short, so the O(n*m) table is nothing.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

const Key* find_key(std::string_view name) {
  for (const auto& key : kKeys) {
    if (key.name == name) return &key;
  }
  return nullptr;
}

tl::unexpected<Error> unknown_key(std::string_view name, bool is_table) {
  std::string detail = "config key '" + std::string(name) + "' is unknown";
  const Key* best = nullptr;
  std::size_t best_distance = 3;  // suggest only within edit distance 2
  for (const auto& key : kKeys) {
    const std::size_t d = edit_distance(name, key.name);
    if (d < best_distance) {
      best = &key;
      best_distance = d;
    }
  }
  if (best != nullptr) {
    detail += "; did you mean '" + std::string(best->name) + "'?";
  } else if (is_table) {
    detail += "; the config file is flat: write every key at the top level, without [tables]";
  }
  return fail(Errc::invalid_request, std::move(detail));
}

Input input_from_node(const toml::node& node) {
  Input in;
  std::ostringstream shown;
  switch (node.type()) {
    case toml::node_type::string:
      in.kind = Input::Kind::text;
      in.text = node.as_string()->get();
      in.shown = in_quotes(in.text);
      return in;
    case toml::node_type::integer:
      in.kind = Input::Kind::integer;
      in.integer = node.as_integer()->get();
      in.shown = std::to_string(in.integer);
      return in;
    case toml::node_type::boolean:
      in.kind = Input::Kind::boolean;
      in.boolean = node.as_boolean()->get();
      in.shown = in.boolean ? "true" : "false";
      return in;
    case toml::node_type::table:
      in.shown = "a table";
      return in;
    case toml::node_type::array:
      in.shown = "an array";
      return in;
    case toml::node_type::floating_point:
      shown << "the floating-point number " << *node.as_floating_point();
      break;
    case toml::node_type::date:
      shown << "the date " << *node.as_date();
      break;
    case toml::node_type::time:
      shown << "the time " << *node.as_time();
      break;
    case toml::node_type::date_time:
      shown << "the date-time " << *node.as_date_time();
      break;
    case toml::node_type::none:
      shown << "nothing";
      break;
  }
  in.shown = shown.str();
  return in;
}

bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

bool is_ipv6_char(char c) {
  return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' ||
         c == '.';
}

}  // namespace

Result<Config> parse_config(std::string_view toml_text, std::string_view source_name) {
  toml::table table;
  try {
    table = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return toml_syntax_error(source_name, where.line, where.column, e.description());
  }
  Config config;
  for (const auto& [name, node] : table) {
    const Key* key = find_key(name.str());
    if (key == nullptr) return unknown_key(name.str(), node.is_table());
    auto applied = key->set(config, key->name, input_from_node(node));
    if (!applied) return tl::unexpected(applied.error());
  }
  return config;
}

Result<Config> load_config_file(const std::filesystem::path& path) {
  auto text = read_text_file(path, "config file");
  if (!text) return tl::unexpected(text.error());
  return parse_config(*text, path.string());
}

Result<void> apply_override(Config& config, std::string_view key, std::string_view value) {
  const Key* k = find_key(key);
  if (k == nullptr) return unknown_key(key, false);
  Input in;
  in.kind = Input::Kind::text;
  in.text = std::string(value);
  in.from_command_line = true;
  in.shown = in_quotes(value);
  return k->set(config, k->name, in);
}

namespace {

// TLS settings that belong together, and the secure default: no listener reachable from the
// network without users, unless the operator says so.
Result<void> validate_security(const Config& config) {
  for (const auto& [key, address] : {std::pair{"tls_listen", &config.tls_listen},
                                     std::pair{"nats_listen", &config.nats_listen}}) {
    if (is_off(*address)) continue;
    if (auto hp = parse_host_port(*address); !hp) {
      return fail(Errc::invalid_request,
                  "config key '" + std::string(key) + "': " + hp.error().detail);
    }
  }
  const bool tls = tls_listen_enabled(config) || config.http_tls || config.nats_tls;
  if (tls && (config.tls_cert_file.empty() || config.tls_key_file.empty())) {
    return fail(Errc::invalid_request,
                std::string(tls_listen_enabled(config) ? "tls_listen"
                            : config.http_tls          ? "http_tls"
                                                       : "nats_tls") +
                    " needs tls_cert_file and tls_key_file (PEM files; docs/security.md says "
                    "how to make them)");
  }
  if (config.http_tls && !http_enabled(config)) {
    return fail(Errc::invalid_request, "http_tls = true needs http_listen on");
  }
  if (config.nats_tls && !nats_enabled(config)) {
    return fail(Errc::invalid_request, "nats_tls = true needs nats_listen on");
  }
  if (config.tls_client_auth != TlsClientAuth::none && config.tls_ca_file.empty()) {
    return fail(Errc::invalid_request, "tls_client_auth = \"" +
                                           std::string(to_string(config.tls_client_auth)) +
                                           "\" needs tls_ca_file (the CA of client certificates)");
  }
  if (config.users_file.empty() && !config.allow_anonymous) {
    for (const auto& [key, address] : listeners(config)) {
      auto hp = parse_host_port(address);
      if (!hp || is_loopback_host(hp->host)) continue;
      return fail(Errc::invalid_request,
                  std::string(key) + " " + address +
                      " is reachable from the network and no users are configured: set "
                      "users_file (docs/security.md), or allow_anonymous = true to let anyone "
                      "who reaches the port do anything");
    }
  }
  return {};
}

}  // namespace

Result<void> validate(const Config& config) {
  // Single-key checks again: a Config may also have been built in code, not parsed.
  if (auto hp = parse_host_port(config.listen); !hp) {
    return fail(Errc::invalid_request, "config key 'listen': " + hp.error().detail);
  }
  if (config.max_inflight_requests < 1) {
    return fail(Errc::invalid_request, "config key 'max_inflight_requests' must be at least 1");
  }
  if (config.max_connections < 1) {
    return fail(Errc::invalid_request, "config key 'max_connections' must be at least 1");
  }
  for (const auto& [key, value] : {std::pair{"handshake_timeout", config.handshake_timeout},
                                   std::pair{"frame_timeout", config.frame_timeout}}) {
    if (value < kMinConnectionTimeout) {
      return fail(Errc::invalid_request,
                  "config key '" + std::string(key) + "' must be at least 10ms");
    }
  }
  if (config.max_pending_connections < 1) {
    return fail(Errc::invalid_request, "config key 'max_pending_connections' must be at least 1");
  }
  if (config.max_auth_failures < 1) {
    return fail(Errc::invalid_request, "config key 'max_auth_failures' must be at least 1");
  }
  if (auto ok = validate_security(config); !ok) return ok;
  if (config.data_dir.empty()) {
    return fail(Errc::invalid_request, "config key 'data_dir' must not be empty");
  }
  if (config.log_pattern.empty()) {
    return fail(Errc::invalid_request, "config key 'log_pattern' must not be empty");
  }
  const std::array<std::tuple<std::string_view, std::uint32_t, SizeBounds>, 6> sizes{{
      {"max_send_queue", config.max_send_queue, kSendQueueBounds},
      {"max_frame_size", config.max_frame_size, kFrameBounds},
      {"max_message_size", config.max_message_size, kMessageBounds},
      {"max_id_size", config.max_id_size, kIdBounds},
      {"max_key_size", config.max_key_size, kKeyBounds},
      {"max_headers_size", config.max_headers_size, kHeadersBounds},
  }};
  for (const auto& [key, value, bounds] : sizes) {
    if (value < bounds.min || value > bounds.max) {
      return fail(Errc::invalid_request, "config key '" + std::string(key) + "' is " +
                                             format_size(value) + ", must be from " +
                                             format_size(bounds.min) + " to " +
                                             format_size(bounds.max));
    }
  }

  // Any message the limits admit must fit in one frame, or a valid publish could never be sent.
  // A subject (at most kMaxSubjectSize, fixed) comes on top of the configurable limits.
  const std::uint64_t needed = std::uint64_t{config.max_message_size} + config.max_id_size +
                               config.max_key_size + config.max_headers_size + kMaxSubjectSize +
                               kFrameOverhead;
  if (needed > config.max_frame_size) {
    return fail(Errc::invalid_request,
                "config keys do not fit together: max_message_size (" +
                    format_size(config.max_message_size) + ") + max_id_size (" +
                    format_size(config.max_id_size) + ") + max_key_size (" +
                    format_size(config.max_key_size) + ") + max_headers_size (" +
                    format_size(config.max_headers_size) + ") + " + format_size(kMaxSubjectSize) +
                    " of subject + " + format_size(kFrameOverhead) +
                    " of frame overhead = " + format_size(needed) +
                    " must be at most max_frame_size (" + format_size(config.max_frame_size) +
                    "); raise max_frame_size or lower the others");
  }
  return {};
}

bool is_reloadable(std::string_view key) {
  const Key* k = find_key(key);
  return k != nullptr && k->reload == Reload::live;
}

Diff diff(const Config& running, const Config& loaded) {
  Diff d;
  for (const auto& key : kKeys) {
    if (key.field.same(running, loaded)) continue;
    (key.reload == Reload::live ? d.reloadable : d.needs_restart).push_back(key.name);
  }
  return d;
}

Config apply_reloadable(Config running, const Config& loaded) {
  for (const auto& key : kKeys) {
    if (key.reload == Reload::live) key.field.copy(running, loaded);
  }
  return running;
}

bool http_enabled(const Config& config) { return !is_off(config.http_listen); }

bool tls_listen_enabled(const Config& config) { return !is_off(config.tls_listen); }

bool nats_enabled(const Config& config) { return !is_off(config.nats_listen); }

bool is_loopback_host(std::string_view host) {
  if (host == "localhost" || host == "::1") return true;
  // An IPv4 literal 127.x.y.z: four decimal parts, the first 127.
  if (!host.starts_with("127.")) return false;
  int parts = 0;
  std::size_t i = 0;
  while (i <= host.size()) {
    const auto dot = std::min(host.find('.', i), host.size());
    const auto part = host.substr(i, dot - i);
    unsigned value = 0;
    const auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (part.empty() || ec != std::errc{} || ptr != part.data() + part.size() || value > 255) {
      return false;
    }
    ++parts;
    i = dot + 1;
  }
  return parts == 4;
}

std::vector<std::pair<std::string_view, std::string>> listeners(const Config& config) {
  std::vector<std::pair<std::string_view, std::string>> out{{"listen", config.listen}};
  if (tls_listen_enabled(config)) out.emplace_back("tls_listen", config.tls_listen);
  if (http_enabled(config)) out.emplace_back("http_listen", config.http_listen);
  if (nats_enabled(config)) out.emplace_back("nats_listen", config.nats_listen);
  return out;
}

std::string_view to_string(Durability d) {
  for (const auto& [name, value] : kDurabilities) {
    if (value == d) return name;
  }
  return "unknown";
}

std::string_view to_string(TlsClientAuth a) {
  for (const auto& [name, value] : kTlsClientAuths) {
    if (value == a) return name;
  }
  return "unknown";
}

std::string_view to_string(MetricsAuth a) {
  for (const auto& [name, value] : kMetricsAuths) {
    if (value == a) return name;
  }
  return "unknown";
}

std::string_view to_string(LogLevel l) {
  for (const auto& [name, value] : kLogLevels) {
    if (value == l) return name;
  }
  return "unknown";
}

Result<HostPort> parse_host_port(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return fail(Errc::invalid_request,
                "listen address '" + std::string(text) + "' is invalid: " + std::string(why));
  };
  std::string_view host;
  std::string_view rest;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return bad("'[' without a closing ']'");
    host = text.substr(1, close - 1);
    rest = text.substr(close + 1);
    if (host.empty()) return bad("the host is empty");
    if (!std::all_of(host.begin(), host.end(), is_ipv6_char)) {
      return bad("the bracketed host is not an IPv6 address");
    }
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("the port is missing (write HOST:PORT)");
    host = text.substr(0, colon);
    rest = text.substr(colon);
    if (host.empty()) return bad("the host is empty");
    if (host.find(':') != std::string_view::npos) {
      return bad("an IPv6 host needs brackets, like [::1]:7450");
    }
    if (!std::all_of(host.begin(), host.end(), is_host_char)) {
      return bad("the host has characters a hostname or IPv4 address cannot have");
    }
  }
  if (rest.empty() || rest.front() != ':') return bad("the port is missing (write HOST:PORT)");
  const auto port_text = rest.substr(1);
  if (port_text.empty()) return bad("the port is missing (write HOST:PORT)");
  std::uint64_t port = 0;
  const auto* end = port_text.data() + port_text.size();
  const auto [ptr, ec] = std::from_chars(port_text.data(), end, port);
  if (ec == std::errc::result_out_of_range || (ec == std::errc{} && ptr == end && port > 65535)) {
    return bad("the port must be from 0 to 65535");
  }
  if (ec != std::errc{} || ptr != end) return bad("the port is not a number");
  return HostPort{std::string(host), static_cast<std::uint16_t>(port)};
}

}  // namespace loft::config
