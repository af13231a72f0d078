#include "loft/config/config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

namespace loft::config {
namespace {

// Every key, as the file and apply_override spell it.
constexpr std::array<std::string_view, 26> kAllKeys{
    "listen",
    "max_inflight_requests",
    "max_send_queue",
    "shutdown_timeout",
    "max_connections",
    "handshake_timeout",
    "frame_timeout",
    "http_listen",
    "nats_listen",
    "nats_ping_interval",
    "nats_tls",
    "data_dir",
    "durability",
    "auto_create_topics",
    "max_frame_size",
    "max_message_size",
    "max_id_size",
    "max_key_size",
    "max_headers_size",
    "log_level",
    "log_pattern",
    "retention_max_age",
    "retention_max_bytes",
    "retention_max_messages",
    "retention_check_interval",
    "max_delivery_delay",
};

// Config has no operator== (the header is a shared contract); compare field by field.
void expect_same(const Config& a, const Config& b) {
  EXPECT_EQ(a.listen, b.listen);
  EXPECT_EQ(a.max_inflight_requests, b.max_inflight_requests);
  EXPECT_EQ(a.max_send_queue, b.max_send_queue);
  EXPECT_EQ(a.shutdown_timeout, b.shutdown_timeout);
  EXPECT_EQ(a.max_connections, b.max_connections);
  EXPECT_EQ(a.handshake_timeout, b.handshake_timeout);
  EXPECT_EQ(a.frame_timeout, b.frame_timeout);
  EXPECT_EQ(a.http_listen, b.http_listen);
  EXPECT_EQ(a.data_dir, b.data_dir);
  EXPECT_EQ(a.durability, b.durability);
  EXPECT_EQ(a.auto_create_topics, b.auto_create_topics);
  EXPECT_EQ(a.max_frame_size, b.max_frame_size);
  EXPECT_EQ(a.max_message_size, b.max_message_size);
  EXPECT_EQ(a.max_id_size, b.max_id_size);
  EXPECT_EQ(a.max_key_size, b.max_key_size);
  EXPECT_EQ(a.max_headers_size, b.max_headers_size);
  EXPECT_EQ(a.log_level, b.log_level);
  EXPECT_EQ(a.log_pattern, b.log_pattern);
  EXPECT_EQ(a.retention_max_age, b.retention_max_age);
  EXPECT_EQ(a.retention_max_bytes, b.retention_max_bytes);
  EXPECT_EQ(a.retention_max_messages, b.retention_max_messages);
  EXPECT_EQ(a.retention_check_interval, b.retention_check_interval);
  EXPECT_EQ(a.max_delivery_delay, b.max_delivery_delay);
  EXPECT_EQ(a.max_pending_connections, b.max_pending_connections);
  EXPECT_EQ(a.tls_listen, b.tls_listen);
  EXPECT_EQ(a.tls_cert_file, b.tls_cert_file);
  EXPECT_EQ(a.tls_key_file, b.tls_key_file);
  EXPECT_EQ(a.tls_ca_file, b.tls_ca_file);
  EXPECT_EQ(a.tls_client_auth, b.tls_client_auth);
  EXPECT_EQ(a.http_tls, b.http_tls);
  EXPECT_EQ(a.users_file, b.users_file);
  EXPECT_EQ(a.allow_anonymous, b.allow_anonymous);
  EXPECT_EQ(a.allow_plaintext_passwords, b.allow_plaintext_passwords);
  EXPECT_EQ(a.metrics_auth, b.metrics_auth);
  EXPECT_EQ(a.max_auth_failures, b.max_auth_failures);
}

std::string parse_error(std::string_view text) {
  const auto r = parse_config(text, "test.toml");
  if (r.has_value()) return "<parsed without error>";
  EXPECT_EQ(r.error().code, Errc::invalid_request) << r.error().detail;
  return r.error().detail;
}

std::string override_error(std::string_view key, std::string_view value) {
  Config c;
  const auto r = apply_override(c, key, value);
  if (r.has_value()) return "<applied without error>";
  EXPECT_EQ(r.error().code, Errc::invalid_request) << r.error().detail;
  return r.error().detail;
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(Config, DefaultsAreTheDocumentedOnes) {
  const Config c;
  EXPECT_EQ(c.listen, "127.0.0.1:7450");
  EXPECT_EQ(c.max_inflight_requests, 1024u);
  EXPECT_EQ(c.shutdown_timeout, 10s);
  EXPECT_EQ(c.max_connections, 4096u);
  EXPECT_EQ(c.handshake_timeout, 5s);
  EXPECT_EQ(c.frame_timeout, 30s);
  EXPECT_EQ(c.max_pending_connections, 256u);
  EXPECT_EQ(c.tls_listen, "");
  EXPECT_EQ(c.tls_client_auth, TlsClientAuth::none);
  EXPECT_FALSE(c.http_tls);
  EXPECT_EQ(c.users_file, "");
  EXPECT_FALSE(c.allow_anonymous);
  EXPECT_FALSE(c.allow_plaintext_passwords);
  EXPECT_EQ(c.metrics_auth, MetricsAuth::open);
  EXPECT_EQ(c.max_auth_failures, 3u);
  EXPECT_EQ(c.data_dir, "./loft-data");
  EXPECT_EQ(c.durability, Durability::fsync);
  EXPECT_FALSE(c.auto_create_topics);
  EXPECT_EQ(c.max_frame_size, 16u << 20);
  EXPECT_EQ(c.max_message_size, 1u << 20);
  EXPECT_EQ(c.max_id_size, 256u);
  EXPECT_EQ(c.max_key_size, 1024u);
  EXPECT_EQ(c.max_headers_size, 64u << 10);
  EXPECT_EQ(c.log_level, LogLevel::info);
  EXPECT_EQ(c.log_pattern, "[%Y-%m-%d %H:%M:%S.%e] [%l] [%n] %v");
  EXPECT_TRUE(validate(c).has_value());
}

TEST(ParseConfig, EmptyTextGivesTheDefaults) {
  const auto c = parse_config("");
  ASSERT_TRUE(c.has_value()) << c.error().detail;
  expect_same(*c, Config{});
}

TEST(ParseConfig, ReadsEveryKey) {
  const auto c = parse_config(R"(
listen = "[::1]:9000"
max_inflight_requests = 7
shutdown_timeout = "1500ms"
max_connections = 50
handshake_timeout = "2s"
frame_timeout = "250ms"
data_dir = "/var/lib/loft"
durability = "os"
auto_create_topics = true
max_frame_size = "32MiB"
max_message_size = 2097152
max_id_size = "1KiB"
max_key_size = 65535
max_headers_size = "128KB"
log_level = "debug"
log_pattern = "%v"
)");
  ASSERT_TRUE(c.has_value()) << c.error().detail;
  EXPECT_EQ(c->listen, "[::1]:9000");
  EXPECT_EQ(c->max_inflight_requests, 7u);
  EXPECT_EQ(c->shutdown_timeout, 1500ms);
  EXPECT_EQ(c->max_connections, 50u);
  EXPECT_EQ(c->handshake_timeout, 2s);
  EXPECT_EQ(c->frame_timeout, 250ms);
  EXPECT_EQ(c->data_dir, "/var/lib/loft");
  EXPECT_EQ(c->durability, Durability::os);
  EXPECT_TRUE(c->auto_create_topics);
  EXPECT_EQ(c->max_frame_size, 32u << 20);
  EXPECT_EQ(c->max_message_size, 2u << 20);
  EXPECT_EQ(c->max_id_size, 1024u);
  EXPECT_EQ(c->max_key_size, 65535u);
  EXPECT_EQ(c->max_headers_size, 128'000u);
  EXPECT_EQ(c->log_level, LogLevel::debug);
  EXPECT_EQ(c->log_pattern, "%v");
  EXPECT_TRUE(validate(*c).has_value());
}

TEST(ParseConfig, ReadsEveryLogLevel) {
  for (const auto level : {LogLevel::trace, LogLevel::debug, LogLevel::info, LogLevel::warn,
                           LogLevel::error, LogLevel::off}) {
    const auto c = parse_config("log_level = \"" + std::string(to_string(level)) + "\"");
    ASSERT_TRUE(c.has_value()) << c.error().detail;
    EXPECT_EQ(c->log_level, level);
  }
}

TEST(ShippedConfigFile, ParsesToExactlyTheDefaults) {
  const std::filesystem::path path = std::filesystem::path(LOFT_SOURCE_DIR) / "config/loftd.toml";
  const auto c = load_config_file(path);
  ASSERT_TRUE(c.has_value()) << c.error().detail;
  expect_same(*c, Config{});
}

TEST(ShippedConfigFile, WritesEveryKeyUncommented) {
  // Parsing alone cannot tell a key set to its default from a key left out.
  const auto text = read_text(std::filesystem::path(LOFT_SOURCE_DIR) / "config/loftd.toml");
  ASSERT_FALSE(text.empty());
  for (const auto key : kAllKeys) {
    EXPECT_THAT(text, HasSubstr("\n" + std::string(key) + " = ")) << key;
  }
}

TEST(LoadConfigFile, NamesAnUnreadablePath) {
  const auto r = load_config_file("/nonexistent/loft/loftd.toml");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::invalid_request);
  EXPECT_THAT(r.error().detail, HasSubstr("/nonexistent/loft/loftd.toml"));
}

TEST(LoadConfigFile, RejectsADirectory) {
  const auto r = load_config_file(LOFT_SOURCE_DIR);
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().detail, HasSubstr("directory"));
}

TEST(ParseConfig, UnknownKeyIsNamedWithASuggestion) {
  EXPECT_THAT(parse_error("max_frame_sise = \"1MiB\""),
              AllOf(HasSubstr("config key 'max_frame_sise' is unknown"),
                    HasSubstr("did you mean 'max_frame_size'?")));
  EXPECT_THAT(parse_error("colour = \"blue\""),
              AllOf(HasSubstr("config key 'colour' is unknown"), Not(HasSubstr("did you mean"))));
}

TEST(ParseConfig, TablesAreUnknownKeysBecauseTheFileIsFlat) {
  EXPECT_THAT(parse_error("[network]\nlisten = \"127.0.0.1:1\""),
              AllOf(HasSubstr("'network' is unknown"), HasSubstr("flat")));
}

TEST(ParseConfig, WrongTypeNamesKeyExpectedAndGiven) {
  EXPECT_EQ(parse_error("listen = 7450"),
            "config key 'listen': expected HOST:PORT like \"127.0.0.1:7450\" or \"[::1]:7450\", "
            "got 7450");
  EXPECT_EQ(parse_error("auto_create_topics = \"true\""),
            "config key 'auto_create_topics': expected true or false, got \"true\"");
  EXPECT_THAT(parse_error("max_inflight_requests = \"10\""),
              AllOf(HasSubstr("'max_inflight_requests'"), HasSubstr("an integer"),
                    HasSubstr("got \"10\"")));
  EXPECT_THAT(parse_error("shutdown_timeout = 10"),
              AllOf(HasSubstr("'shutdown_timeout'"), HasSubstr("duration"), HasSubstr("got 10")));
  EXPECT_THAT(parse_error("max_frame_size = 1.5"),
              AllOf(HasSubstr("'max_frame_size'"), HasSubstr("floating-point")));
  EXPECT_THAT(parse_error("durability = 2024-01-01"),
              AllOf(HasSubstr("'durability'"), HasSubstr("date")));
}

TEST(ParseConfig, TableOrArrayWhereAScalarBelongsIsAWrongType) {
  EXPECT_THAT(parse_error("listen = { host = \"a\", port = 1 }"),
              AllOf(HasSubstr("'listen'"), HasSubstr("got a table")));
  EXPECT_THAT(parse_error("log_level = [\"info\"]"),
              AllOf(HasSubstr("'log_level'"), HasSubstr("got an array")));
  EXPECT_THAT(parse_error("[listen]\nhost = \"a\""),
              AllOf(HasSubstr("'listen'"), HasSubstr("got a table")));
}

TEST(ParseConfig, BadValues) {
  EXPECT_EQ(parse_error("durability = \"always\""),
            "config key 'durability': expected \"fsync\" or \"os\", got \"always\"");
  EXPECT_THAT(parse_error("log_level = \"verbose\""),
              AllOf(HasSubstr("'log_level'"), HasSubstr("\"trace\""), HasSubstr("\"off\""),
                    HasSubstr("got \"verbose\"")));
  EXPECT_THAT(parse_error("max_message_size = \"12 furlongs\""),
              AllOf(HasSubstr("'max_message_size'"), HasSubstr("a size"),
                    HasSubstr("got \"12 furlongs\"")));
  EXPECT_THAT(parse_error("max_inflight_requests = -3"),
              AllOf(HasSubstr("'max_inflight_requests'"), HasSubstr("got -3")));
  EXPECT_THAT(parse_error("max_inflight_requests = 0"),
              AllOf(HasSubstr("'max_inflight_requests'"), HasSubstr("from 1")));
  EXPECT_THAT(parse_error("max_inflight_requests = 4294967296"),
              HasSubstr("'max_inflight_requests'"));
  EXPECT_THAT(parse_error("max_headers_size = -1"),
              AllOf(HasSubstr("'max_headers_size'"), HasSubstr("got -1")));
  EXPECT_THAT(parse_error("max_headers_size = \"4GiB\""),
              AllOf(HasSubstr("'max_headers_size'"), HasSubstr("got \"4GiB\"")));
  EXPECT_THAT(parse_error("shutdown_timeout = \"10 seconds\""),
              AllOf(HasSubstr("'shutdown_timeout'"), HasSubstr("got \"10 seconds\"")));
  EXPECT_THAT(parse_error("data_dir = \"\""), HasSubstr("'data_dir'"));
  EXPECT_THAT(parse_error("log_pattern = \"\""), HasSubstr("'log_pattern'"));
}

TEST(ParseConfig, IdAndKeySizesAreU16OnTheWire) {
  EXPECT_THAT(parse_error("max_id_size = 65536"),
              AllOf(HasSubstr("'max_id_size'"), HasSubstr("65535"), HasSubstr("got 65536")));
  EXPECT_THAT(parse_error("max_key_size = \"64KiB\""),
              AllOf(HasSubstr("'max_key_size'"), HasSubstr("65535"), HasSubstr("got \"64KiB\"")));
  EXPECT_EQ(parse_config("max_id_size = 65535").value().max_id_size, 65535u);
  EXPECT_EQ(parse_config("max_id_size = 0").value().max_id_size, 0u);
}

TEST(ParseConfig, FrameSizeIsFrom1KiBTo1GiB) {
  EXPECT_THAT(parse_error("max_frame_size = 1023"), HasSubstr("'max_frame_size'"));
  EXPECT_THAT(parse_error("max_frame_size = \"2GiB\""), HasSubstr("'max_frame_size'"));
  EXPECT_EQ(parse_config("max_frame_size = \"1KiB\"").value().max_frame_size, 1024u);
  EXPECT_EQ(parse_config("max_frame_size = \"1GiB\"").value().max_frame_size, 1u << 30);
}

TEST(ParseConfig, BadListenAddress) {
  EXPECT_THAT(
      parse_error("listen = \"127.0.0.1:70000\""),
      AllOf(HasSubstr("'listen'"), HasSubstr("got \"127.0.0.1:70000\""), HasSubstr("65535")));
  EXPECT_THAT(parse_error("listen = \"localhost\""),
              AllOf(HasSubstr("'listen'"), HasSubstr("port is missing")));
}

TEST(ParseConfig, HttpListenIsAnAddressOrOff) {
  EXPECT_EQ(Config{}.http_listen, "127.0.0.1:7451");
  EXPECT_TRUE(http_enabled(Config{}));
  for (const std::string_view off : {"off", ""}) {
    Config c;
    ASSERT_TRUE(apply_override(c, "http_listen", off).has_value()) << off;
    EXPECT_FALSE(http_enabled(c)) << off;
  }
  const auto c = parse_config("http_listen = \"[::1]:9001\"");
  ASSERT_TRUE(c.has_value()) << c.error().detail;
  EXPECT_EQ(c->http_listen, "[::1]:9001");
  EXPECT_TRUE(http_enabled(*c));
  EXPECT_THAT(
      parse_error("http_listen = \"localhost\""),
      AllOf(HasSubstr("'http_listen'"), HasSubstr("\"off\""), HasSubstr("port is missing")));
  EXPECT_THAT(parse_error("http_listen = 7451"), HasSubstr("'http_listen'"));
  EXPECT_THAT(override_error("http_listen", "127.0.0.1:99999"), HasSubstr("'http_listen'"));
}

TEST(ParseConfig, SyntaxErrorReportsSourceLineAndColumn) {
  const auto detail = parse_error("listen = \"127.0.0.1:1\"\n\ndurability = \"os\n");
  EXPECT_THAT(detail, HasSubstr("test.toml:3:")) << detail;
  EXPECT_THAT(detail, HasSubstr("syntax")) << detail;
}

TEST(ParseConfig, DuplicateKeyIsASyntaxError) {
  EXPECT_THAT(parse_error("durability = \"os\"\ndurability = \"fsync\"\n"),
              HasSubstr("test.toml:2:"));
}

TEST(ApplyOverride, OverridesWinOverTheFile) {
  auto c = parse_config("durability = \"fsync\"\nmax_frame_size = \"16MiB\"\nlisten = \"a:1\"");
  ASSERT_TRUE(c.has_value()) << c.error().detail;
  ASSERT_TRUE(apply_override(*c, "durability", "os").has_value());
  ASSERT_TRUE(apply_override(*c, "max_frame_size", "1MiB").has_value());
  ASSERT_TRUE(apply_override(*c, "listen", "127.0.0.1:0").has_value());
  EXPECT_EQ(c->durability, Durability::os);
  EXPECT_EQ(c->max_frame_size, 1u << 20);
  EXPECT_EQ(c->listen, "127.0.0.1:0");
}

TEST(ApplyOverride, TakesTheCommandLineFormOfEveryKey) {
  Config c;
  const std::array<std::pair<std::string_view, std::string_view>, 17> overrides{{
      {"listen", "localhost:0"},
      {"max_inflight_requests", "16"},
      {"shutdown_timeout", "2m"},
      {"max_connections", "200"},
      {"handshake_timeout", "300ms"},
      {"frame_timeout", "1s"},
      {"http_listen", "127.0.0.1:0"},
      {"data_dir", "/tmp/x"},
      {"durability", "os"},
      {"auto_create_topics", "true"},
      {"max_frame_size", "1048576"},
      {"max_message_size", "512KiB"},
      {"max_id_size", "64"},
      {"max_key_size", "128B"},
      {"max_headers_size", "4KiB"},
      {"log_level", "warn"},
      {"log_pattern", "%l %v"},
  }};
  for (const auto& [key, value] : overrides) {
    const auto r = apply_override(c, key, value);
    EXPECT_TRUE(r.has_value()) << key << ": " << r.error().detail;
  }
  EXPECT_EQ(c.listen, "localhost:0");
  EXPECT_EQ(c.max_inflight_requests, 16u);
  EXPECT_EQ(c.shutdown_timeout, 2min);
  EXPECT_EQ(c.max_connections, 200u);
  EXPECT_EQ(c.handshake_timeout, 300ms);
  EXPECT_EQ(c.frame_timeout, 1s);
  EXPECT_EQ(c.http_listen, "127.0.0.1:0");
  EXPECT_EQ(c.data_dir, "/tmp/x");
  EXPECT_EQ(c.durability, Durability::os);
  EXPECT_TRUE(c.auto_create_topics);
  EXPECT_EQ(c.max_frame_size, 1u << 20);
  EXPECT_EQ(c.max_message_size, 512u << 10);
  EXPECT_EQ(c.max_id_size, 64u);
  EXPECT_EQ(c.max_key_size, 128u);
  EXPECT_EQ(c.max_headers_size, 4u << 10);
  EXPECT_EQ(c.log_level, LogLevel::warn);
  EXPECT_EQ(c.log_pattern, "%l %v");
  EXPECT_TRUE(apply_override(c, "auto_create_topics", "false").has_value());
  EXPECT_FALSE(c.auto_create_topics);
}

TEST(ParseConfig, MaxDeliveryDelayIsADurationFrom1sTo36500dDefault30d) {
  EXPECT_EQ(Config{}.max_delivery_delay, std::chrono::hours(24 * 30));
  const auto c = parse_config("max_delivery_delay = \"7d\"\n");
  ASSERT_TRUE(c) << c.error().detail;
  EXPECT_EQ(c->max_delivery_delay, std::chrono::hours(24 * 7));
  for (const auto* bad : {"\"500ms\"", "\"36501d\"", "\"none\"", "12"}) {
    const auto r = parse_config(std::string("max_delivery_delay = ") + bad + "\n");
    ASSERT_FALSE(r) << bad;
    EXPECT_THAT(r.error().detail, HasSubstr("max_delivery_delay")) << bad;
  }
  Config o;
  ASSERT_TRUE(apply_override(o, "max_delivery_delay", "1h").has_value());
  EXPECT_EQ(o.max_delivery_delay, std::chrono::hours(1));
}

TEST(ParseConfig, RetentionKeysTakeNoneOrAValueAndRejectBadOnes) {
  Config defaults;
  EXPECT_EQ(defaults.retention_max_age.count(), 0);
  EXPECT_EQ(defaults.retention_max_bytes, 0u);
  EXPECT_EQ(defaults.retention_max_messages, 0u);
  EXPECT_EQ(defaults.retention_check_interval, 1s);
  const auto c = parse_config(
      "retention_max_age = \"7d\"\nretention_max_bytes = \"10GiB\"\n"
      "retention_max_messages = 1000000\nretention_check_interval = \"250ms\"\n");
  ASSERT_TRUE(c) << c.error().detail;
  EXPECT_EQ(c->retention_max_age, std::chrono::hours(24 * 7));
  EXPECT_EQ(c->retention_max_bytes, 10ULL << 30);
  EXPECT_EQ(c->retention_max_messages, 1'000'000u);
  EXPECT_EQ(c->retention_check_interval, 250ms);
  const auto none = parse_config(
      "retention_max_age = \"none\"\nretention_max_bytes = \"none\"\n"
      "retention_max_messages = \"none\"\n");
  ASSERT_TRUE(none) << none.error().detail;
  EXPECT_EQ(none->retention_max_age.count(), 0);
  // 0 means unlimited too, for every limit (as config/loftd.toml says).
  const auto zero =
      parse_config("retention_max_age = 0\nretention_max_bytes = 0\nretention_max_messages = 0\n");
  ASSERT_TRUE(zero) << zero.error().detail;
  EXPECT_EQ(zero->retention_max_age.count(), 0);
  EXPECT_EQ(zero->retention_max_bytes, 0u);
  EXPECT_EQ(zero->retention_max_messages, 0u);
  EXPECT_THAT(parse_error("retention_max_age = \"500ms\""),
              AllOf(HasSubstr("'retention_max_age'"), HasSubstr("from 1s")));
  EXPECT_THAT(parse_error("retention_max_bytes = \"lots\""), HasSubstr("'retention_max_bytes'"));
  EXPECT_THAT(parse_error("retention_max_messages = -1"), HasSubstr("'retention_max_messages'"));
  EXPECT_THAT(parse_error("retention_check_interval = \"1ms\""),
              AllOf(HasSubstr("'retention_check_interval'"), HasSubstr("10ms to 1h")));
  Config o;
  ASSERT_TRUE(apply_override(o, "retention_max_messages", "5"));
  EXPECT_EQ(o.retention_max_messages, 5u);
  ASSERT_TRUE(apply_override(o, "retention_max_age", "none"));
  EXPECT_EQ(o.retention_max_age.count(), 0);
  o.retention_max_age = std::chrono::hours(1);
  ASSERT_TRUE(apply_override(o, "retention_max_age", "0"));
  EXPECT_EQ(o.retention_max_age.count(), 0);
}

TEST(ApplyOverride, UnknownKeyFails) {
  EXPECT_THAT(override_error("colour", "blue"), HasSubstr("config key 'colour' is unknown"));
  EXPECT_THAT(override_error("durabilty", "os"), HasSubstr("did you mean 'durability'?"));
}

TEST(ApplyOverride, SameValidationAndMessagesAsTheFile) {
  EXPECT_EQ(override_error("durability", "always"), parse_error("durability = \"always\""));
  EXPECT_EQ(override_error("max_id_size", "70000"),
            "config key 'max_id_size': expected a size from 0B to 65535B (ids are u16-length on "
            "the wire) like \"64KiB\" or a byte count, got \"70000\"");
  EXPECT_THAT(override_error("auto_create_topics", "yes"),
              HasSubstr("config key 'auto_create_topics': expected true or false, got \"yes\""));
  EXPECT_THAT(override_error("max_inflight_requests", "-1"), HasSubstr("got \"-1\""));
  EXPECT_THAT(override_error("max_inflight_requests", "12x"), HasSubstr("got \"12x\""));
  EXPECT_THAT(override_error("max_frame_size", "12 furlongs"), HasSubstr("'max_frame_size'"));
  EXPECT_THAT(override_error("listen", "127.0.0.1:70000"), HasSubstr("'listen'"));
  EXPECT_THAT(override_error("shutdown_timeout", "10"), HasSubstr("'shutdown_timeout'"));
}

TEST(ApplyOverride, ConnectionLimitsRejectZero) {
  EXPECT_THAT(override_error("max_connections", "0"), HasSubstr("'max_connections'"));
  EXPECT_THAT(override_error("handshake_timeout", "0s"),
              AllOf(HasSubstr("'handshake_timeout'"), HasSubstr("at least \"10ms\"")));
  EXPECT_THAT(override_error("frame_timeout", "9ms"),
              AllOf(HasSubstr("'frame_timeout'"), HasSubstr("got \"9ms\"")));
  Config c;
  EXPECT_TRUE(apply_override(c, "frame_timeout", "10ms").has_value());
  c.frame_timeout = 0ms;
  const auto r = validate(c);
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().detail, HasSubstr("'frame_timeout' must be at least 10ms"));
}

TEST(ApplyOverride, FailureLeavesTheConfigUnchanged) {
  Config c;
  ASSERT_FALSE(apply_override(c, "max_frame_size", "4GiB").has_value());
  expect_same(c, Config{});
}

TEST(Validate, EveryMessageTheLimitsAllowMustFitInAFrame) {
  Config c;
  c.max_frame_size = 1u << 20;
  c.max_message_size = 1u << 20;
  const auto r = validate(c);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::invalid_request);
  for (const auto* key :
       {"max_message_size", "max_id_size", "max_key_size", "max_headers_size", "max_frame_size"}) {
    EXPECT_THAT(r.error().detail, HasSubstr(key));
  }

  // Exactly at the limit is fine: 1 KiB for the subject (kMaxSubjectSize) and 1 KiB of framing.
  c.max_message_size =
      c.max_frame_size - c.max_id_size - c.max_key_size - c.max_headers_size - 1024 - 1024;
  EXPECT_TRUE(validate(c).has_value()) << validate(c).error().detail;
  ++c.max_message_size;
  EXPECT_FALSE(validate(c).has_value());
}

TEST(Validate, DoesNotOverflowOnHugeLimits) {
  Config c;
  c.max_message_size = 0xFFFF'FFFFu;
  c.max_headers_size = 0xFFFF'FFFFu;
  EXPECT_FALSE(validate(c).has_value());
}

TEST(Validate, ChecksSingleKeysOfConfigsBuiltInCode) {
  Config c;
  c.max_id_size = 70000;
  EXPECT_THAT(validate(c).error().detail, HasSubstr("max_id_size"));
  c = Config{};
  c.listen = "nope";
  EXPECT_THAT(validate(c).error().detail, HasSubstr("listen"));
  c = Config{};
  c.max_inflight_requests = 0;
  EXPECT_THAT(validate(c).error().detail, HasSubstr("max_inflight_requests"));
}

// A valid command-line value of every key that differs from its default.
constexpr std::array<std::pair<std::string_view, std::string_view>, 25> kChangedValues{{
    {"listen", "localhost:0"},
    {"max_inflight_requests", "16"},
    {"max_send_queue", "1MiB"},
    {"shutdown_timeout", "2m"},
    {"max_connections", "200"},
    {"handshake_timeout", "300ms"},
    {"frame_timeout", "1s"},
    {"http_listen", "off"},
    {"nats_listen", "127.0.0.1:4222"},
    {"nats_ping_interval", "10s"},
    {"nats_tls", "true"},
    {"data_dir", "/tmp/x"},
    {"durability", "os"},
    {"auto_create_topics", "true"},
    {"retention_max_age", "7d"},
    {"retention_max_bytes", "1GiB"},
    {"retention_max_messages", "1000"},
    {"retention_check_interval", "5s"},
    {"max_frame_size", "32MiB"},
    {"max_message_size", "512KiB"},
    {"max_id_size", "64"},
    {"max_key_size", "128B"},
    {"max_headers_size", "4KiB"},
    {"log_level", "warn"},
    {"log_pattern", "%l %v"},
}};

constexpr std::array<std::string_view, 6> kReloadableKeys{
    "max_inflight_requests", "max_send_queue", "max_connections",
    "handshake_timeout",     "frame_timeout",  "log_level",
};

bool in(const auto& keys, std::string_view key) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

TEST(Diff, SameConfigsDifferInNothing) {
  const auto d = diff(Config{}, Config{});
  EXPECT_TRUE(d.reloadable.empty());
  EXPECT_TRUE(d.needs_restart.empty());
}

TEST(Diff, NamesEveryKeyChangedAloneInTheListOfHowItTakesEffect) {
  for (const auto& [key, value] : kChangedValues) {
    Config changed;
    ASSERT_TRUE(apply_override(changed, key, value).has_value()) << key;
    const auto d = diff(Config{}, changed);
    const bool reloadable = in(kReloadableKeys, key);
    EXPECT_EQ(is_reloadable(key), reloadable) << key;
    EXPECT_THAT(reloadable ? d.reloadable : d.needs_restart, ::testing::ElementsAre(key));
    EXPECT_TRUE((reloadable ? d.needs_restart : d.reloadable).empty()) << key;
  }
  EXPECT_FALSE(is_reloadable("no_such_key"));
}

TEST(Diff, ListsSeveralChangesInTheOrderOfTheConfig) {
  Config changed;
  for (const auto& [key, value] : {std::pair{"log_level", "debug"}, std::pair{"durability", "os"},
                                   std::pair{"max_connections", "2"}, std::pair{"listen", "a:1"}}) {
    ASSERT_TRUE(apply_override(changed, key, value).has_value()) << key;
  }
  const auto d = diff(Config{}, changed);
  EXPECT_THAT(d.reloadable, ::testing::ElementsAre("max_connections", "log_level"));
  EXPECT_THAT(d.needs_restart, ::testing::ElementsAre("listen", "durability"));
}

TEST(ApplyReloadable, TakesTheReloadableKeysAndKeepsTheOthers) {
  Config loaded;
  for (const auto& [key, value] : kChangedValues) {
    ASSERT_TRUE(apply_override(loaded, key, value).has_value()) << key;
  }
  const Config running;
  const Config applied = apply_reloadable(running, loaded);
  const auto from_loaded = diff(loaded, applied);
  EXPECT_TRUE(from_loaded.reloadable.empty()) << from_loaded.reloadable.front();
  EXPECT_EQ(from_loaded.needs_restart.size(), kChangedValues.size() - kReloadableKeys.size());
  const auto from_running = diff(running, applied);
  EXPECT_EQ(from_running.reloadable.size(), kReloadableKeys.size());
  EXPECT_TRUE(from_running.needs_restart.empty()) << from_running.needs_restart.front();
  EXPECT_EQ(applied.max_connections, 200u);
  EXPECT_EQ(applied.log_level, LogLevel::warn);
  EXPECT_EQ(applied.durability, Durability::fsync);
}

// The comment lines right above a key's line (past the key lines of a shared comment).
std::string comment_above(const std::string& text, std::string_view key) {
  const auto at = text.find("\n" + std::string(key) + " = ");
  if (at == std::string::npos) return {};
  std::vector<std::string> lines;
  std::istringstream in(text.substr(0, at));
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::string comment;
  auto it = lines.rbegin();
  while (it != lines.rend() && !it->empty() && it->front() != '#') ++it;  // sibling keys
  for (; it != lines.rend() && !it->empty() && it->front() == '#'; ++it)
    comment = *it + "\n" + comment;
  return comment;
}

TEST(ShippedConfigFile, SaysOfEveryKeyWhetherSighupReloadsIt) {
  const auto text = read_text(std::filesystem::path(LOFT_SOURCE_DIR) / "config/loftd.toml");
  for (const auto key : kAllKeys) {
    const auto comment = comment_above(text, key);
    if (is_reloadable(key)) {
      EXPECT_THAT(comment, AllOf(HasSubstr("Reloaded on SIGHUP"), Not(HasSubstr("Restart needed"))))
          << key;
    } else {
      EXPECT_THAT(comment, AllOf(HasSubstr("Restart needed"), Not(HasSubstr("Reloaded on SIGHUP"))))
          << key;
    }
  }
}

TEST(ToString, RoundTripsThroughTheParser) {
  for (const auto d : {Durability::fsync, Durability::os}) {
    Config c;
    ASSERT_TRUE(apply_override(c, "durability", to_string(d)).has_value());
    EXPECT_EQ(c.durability, d);
  }
  EXPECT_EQ(to_string(Durability::fsync), "fsync");
  EXPECT_EQ(to_string(LogLevel::warn), "warn");
}

TEST(ParseHostPort, AcceptsHostnamesIPv4AndBracketedIPv6) {
  auto hp = parse_host_port("127.0.0.1:7450");
  ASSERT_TRUE(hp.has_value()) << hp.error().detail;
  EXPECT_EQ(hp->host, "127.0.0.1");
  EXPECT_EQ(hp->port, 7450);

  hp = parse_host_port("localhost:0");
  ASSERT_TRUE(hp.has_value()) << hp.error().detail;
  EXPECT_EQ(hp->host, "localhost");
  EXPECT_EQ(hp->port, 0);

  hp = parse_host_port("[::1]:7450");
  ASSERT_TRUE(hp.has_value()) << hp.error().detail;
  EXPECT_EQ(hp->host, "::1");
  EXPECT_EQ(hp->port, 7450);

  hp = parse_host_port("0.0.0.0:65535");
  ASSERT_TRUE(hp.has_value()) << hp.error().detail;
  EXPECT_EQ(hp->port, 65535);
}

TEST(ParseHostPort, RejectsBadAddresses) {
  for (const auto* bad :
       {"", "127.0.0.1", "127.0.0.1:", ":7450", "[]:7450", "[::1]", "[::1]7450", "[::1:7450",
        "::1:7450", "host:70000", "host:99999999999999999999", "host:-1", "host:abc", "host:80x",
        "host: 80", "ho st:80", "[zz]:80", "garbage"}) {
    const auto r = parse_host_port(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code, Errc::invalid_request) << bad;
    EXPECT_THAT(r.error().detail, HasSubstr("'" + std::string(bad) + "'")) << bad;
  }
  EXPECT_THAT(parse_host_port("127.0.0.1:70000").error().detail, HasSubstr("0 to 65535"));
  EXPECT_THAT(parse_host_port("127.0.0.1").error().detail, HasSubstr("port is missing"));
  EXPECT_THAT(parse_host_port(":1").error().detail, HasSubstr("host is empty"));
}

TEST(ParseConfig, ReadsTheSecurityKeys) {
  const auto c = parse_config(R"(
tls_listen = "0.0.0.0:7453"
tls_cert_file = "/etc/loft/server.pem"
tls_key_file = "/etc/loft/server.key"
tls_ca_file = "/etc/loft/ca.pem"
tls_client_auth = "required"
http_tls = true
users_file = "/etc/loft/users.toml"
allow_plaintext_passwords = true
metrics_auth = "users"
max_auth_failures = 5
max_pending_connections = 100
)");
  ASSERT_TRUE(c.has_value()) << c.error().detail;
  EXPECT_EQ(c->tls_listen, "0.0.0.0:7453");
  EXPECT_EQ(c->tls_cert_file, "/etc/loft/server.pem");
  EXPECT_EQ(c->tls_key_file, "/etc/loft/server.key");
  EXPECT_EQ(c->tls_ca_file, "/etc/loft/ca.pem");
  EXPECT_EQ(c->tls_client_auth, TlsClientAuth::required);
  EXPECT_TRUE(c->http_tls);
  EXPECT_EQ(c->users_file, "/etc/loft/users.toml");
  EXPECT_TRUE(c->allow_plaintext_passwords);
  EXPECT_EQ(c->metrics_auth, MetricsAuth::users);
  EXPECT_EQ(c->max_auth_failures, 5u);
  EXPECT_EQ(c->max_pending_connections, 100u);
  EXPECT_TRUE(validate(*c).has_value()) << validate(*c).error().detail;
}

TEST(Validate, RefusesANetworkListenerWithoutUsersUnlessAnonymousIsAllowed) {
  Config c;
  c.listen = "0.0.0.0:7450";
  const auto r = validate(c);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().detail.find("allow_anonymous"), std::string::npos) << r.error().detail;
  EXPECT_NE(r.error().detail.find("listen 0.0.0.0:7450"), std::string::npos);
  c.allow_anonymous = true;
  EXPECT_TRUE(validate(c).has_value());
  c.allow_anonymous = false;
  c.users_file = "/etc/loft/users.toml";
  EXPECT_TRUE(validate(c).has_value());
  // The HTTP listener counts too.
  Config h;
  h.http_listen = "[::]:7451";
  EXPECT_FALSE(validate(h).has_value());
  h.http_listen = "localhost:7451";
  EXPECT_TRUE(validate(h).has_value());
  // And the NATS port.
  Config n;
  n.nats_listen = "0.0.0.0:4222";
  EXPECT_THAT(validate(n).error().detail, HasSubstr("nats_listen 0.0.0.0:4222"));
  n.nats_listen = "127.0.0.1:4222";
  EXPECT_TRUE(validate(n).has_value());
  n.nats_listen = "nope";
  EXPECT_THAT(validate(n).error().detail, HasSubstr("nats_listen"));
}

TEST(Validate, NatsTlsNeedsTheNatsPortAndACertificate) {
  Config c;
  c.nats_tls = true;
  c.tls_cert_file = "cert.pem";
  c.tls_key_file = "key.pem";
  EXPECT_THAT(validate(c).error().detail, HasSubstr("nats_tls = true needs nats_listen"));
  c.nats_listen = "127.0.0.1:0";
  EXPECT_TRUE(validate(c).has_value());
  c.tls_key_file.clear();
  EXPECT_THAT(validate(c).error().detail, HasSubstr("nats_tls needs tls_cert_file"));
}

TEST(Validate, TlsNeedsACertificateAndClientAuthNeedsACa) {
  Config c;
  c.tls_listen = "127.0.0.1:0";
  EXPECT_NE(validate(c).error().detail.find("tls_cert_file"), std::string::npos);
  c.tls_cert_file = "cert.pem";
  c.tls_key_file = "key.pem";
  EXPECT_TRUE(validate(c).has_value());
  c.tls_client_auth = TlsClientAuth::optional;
  EXPECT_NE(validate(c).error().detail.find("tls_ca_file"), std::string::npos);
  c.tls_ca_file = "ca.pem";
  EXPECT_TRUE(validate(c).has_value());
  Config h;
  h.http_tls = true;
  EXPECT_FALSE(validate(h).has_value());
  h.http_listen = "off";
  h.tls_cert_file = "cert.pem";
  h.tls_key_file = "key.pem";
  EXPECT_NE(validate(h).error().detail.find("http_listen"), std::string::npos);
}

TEST(IsLoopbackHost, OnlyAddressesThisMachineAloneReaches) {
  for (const char* host : {"127.0.0.1", "127.1.2.3", "::1", "localhost"}) {
    EXPECT_TRUE(is_loopback_host(host)) << host;
  }
  for (const char* host : {"0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "127.0.0", "127.0.0.256",
                           "127.0.0.1.5", "example.com", "127.example.com", ""}) {
    EXPECT_FALSE(is_loopback_host(host)) << host;
  }
}

TEST(Reload, SecurityFilesAndPoliciesAreReloadableListenersAreNot) {
  for (const char* key : {"tls_cert_file", "tls_key_file", "tls_ca_file", "tls_client_auth",
                          "users_file", "allow_plaintext_passwords", "metrics_auth",
                          "max_auth_failures", "max_pending_connections"}) {
    EXPECT_TRUE(is_reloadable(key)) << key;
  }
  for (const char* key : {"tls_listen", "http_tls", "allow_anonymous"}) {
    EXPECT_FALSE(is_reloadable(key)) << key;
  }
}

}  // namespace
}  // namespace loft::config
