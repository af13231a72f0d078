#include "cli.hpp"

#include <boost/json/serialize.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <iostream>
#include <string_view>

#include "loft/common/units.hpp"
#include "loft/common/version.hpp"

namespace po = boost::program_options;

namespace loft::cli {
namespace {

constexpr const char* kUsage =
    R"(Usage: loft [--broker HOST:PORT] [--tls ...] [--user NAME] COMMAND [ARGS] [--json]

Commands:
  topic create NAME          create a topic
  topic delete NAME          delete a topic and all its messages
  topic list                 list topics
  topic describe NAME        show a topic's offsets, message count and size
  topic create NAME [--dedup-window DURATION] [--dedup-conflict duplicate|error]
                             how long message ids are remembered (default 2h), and what a
                             known id with a different payload gets
  topic create NAME [--max-age DURATION] [--max-bytes SIZE] [--max-messages N]
                             retention: the oldest messages past any limit are removed;
                             0 or none = unlimited; a limit not given is the broker's
                             default (retention_max_* in loftd.toml, unlimited unless set)
  topic alter NAME [--max-age DURATION] [--max-bytes SIZE] [--max-messages N]
                             change the limits given (0 or none = unlimited); others stay
  topic create NAME --work-queue
                             work-queue retention: a message is removed once every group
                             of the topic has acked or dead-lettered it (a topic without
                             groups keeps its messages); a new group starts at the oldest
                             retained message; fixed at creation
  pub TOPIC [MESSAGE]        publish MESSAGE, or each line of standard input as one message
      [--id ID] [--key KEY] [--subject SUBJECT] [--header K=V]...
                             --subject: a dotted subject such as orders.eu.new (no
                             whitespace, no empty token, no * or > token; at most 1024
                             bytes); without it a message is on its topic's name
      [--delay DURATION | --at @UNIX_MS]
                             deliver to groups no earlier than DURATION (ms, s, m, h, d)
                             after the broker receives the message (by the broker's clock),
                             or than the time @UNIX_MS (ms since the Unix epoch; a time in
                             the past is now); stored and confirmed at once. Refused (exit
                             1) past the broker's max_delivery_delay (default 30d)
      [--id-prefix PREFIX]   (standard input) line n gets id PREFIX-n: re-running stores
                             nothing twice; a duplicate prints its original offset and
                             'duplicate' ("duplicate":true with --json)
  fetch TOPIC [--offset N] [--max N]
                             print stored messages from offset N (a plain read, no group);
                             a scheduled message shows its delivery time after the payload
                             (deliver_at=@UNIX_MS; --json: "deliver_at_ms")
  sub TOPIC --group G        receive messages as a member of group G, ack each after printing
      [--from earliest|latest|OFFSET|@UNIX_MS] [--count N] [--max-in-flight N]
      [--ack-timeout DURATION] [--max-deliveries N] [--filter SUBJECT] [--no-ack]
      [--idle-exit DURATION]  (--json: one object per message, with its subject)
  group create TOPIC GROUP [--from ...] [--ack-timeout D] [--max-deliveries N]
      [--filter SUBJECT]     deliver only messages whose subject matches SUBJECT ('*' one
                             token, a last '>' one or more; a message without a subject is
                             on its topic's name); the others count as done. Like the other
                             settings, set when the group is created (also by sub)
      [--ordering none|key]  key: the messages of one non-empty key go out one at a time, in
                             offset order, the next once the previous is acked or
                             dead-lettered; other keys keep flowing (also for sub)
      [--key-lookahead N]    with --ordering key: hold back at most N messages behind keys
                             that have a message out (default 10000; also for sub)
  group list TOPIC
  group describe TOPIC GROUP
  group delete TOPIC GROUP
  group reset TOPIC GROUP --to earliest|latest|OFFSET|@UNIX_MS
  admin backup DIR           the broker copies its data directory into DIR (a new directory,
                             an absolute path on the broker's machine) while it keeps
                             serving; start loftd with --data-dir DIR to restore
  dlq redrive DLQ_TOPIC [--group G]
                             publish DLQ_TOPIC's dead letters back to their loft-dlq-topic,
                             without the loft-dlq-* headers (key, other headers and payload
                             kept) and with the id redrive:<hash of DLQ_TOPIC>:<offset>[:<id>]
                             (the original id is still known to the topic's dedup). With
                             --group only G's letters; the rest are skipped. Progress is kept
                             in group loft-redrive (loft-redrive.G): a rerun handles only new
                             letters, and a letter redriven again (another filter, or a crash
                             between publish and ack) is a duplicate, not a second copy, within
                             the topic's dedup window. Exits after 1s without new letters.
  user hash-password         the Argon2id hash of a password, for password_hash in the
                             users file: prompts twice without echo on a terminal, else
                             reads one line of standard input; no broker is contacted
  bench publish [--messages N | --duration D] [--size BYTES] [--batch B] [--window W]
      [--producers P] [--ids]
                             publish to a fresh topic; confirm latency per request
  bench consume [--messages N] [--size BYTES] [--consumers C] [--max-in-flight M]
      [--keys K] [--ordering none|key]
                             fill a fresh topic, then drain it with one group, acking each
                             message; --keys: messages keyed round-robin over K keys;
                             --ordering key: the group delivers per key in order
  bench e2e [--rate R] [--duration D] [--size BYTES] [--delay D]
                             publish at R msg/s while a consumer acks; publish-to-delivery
                             latency; --delay: each message due D after its send, latency
                             counted from that time (and "early": received before it)
  bench storage [--messages N] [--size BYTES] [--batch B] [--window W] [--ids]
      [--durability fsync|os] [--data-dir DIR]
                             the same appends through loft's storage and group-commit writer,
                             no network (a temporary data dir unless --data-dir)
  bench ... [--keep]         keep the bench topic (and data dir) afterwards. Defaults: 1000000
                             messages of 100 bytes, --batch 100 --window 10, e2e 10000 msg/s
                             for 10s. --json: one object with every parameter and figure
                             (msgs_per_sec, mb_per_sec, p50_us, p99_us, p999_us, max_us)

Global options:
  --broker HOST:PORT         broker address (default 127.0.0.1:7450)
  --tls                      connect with TLS (loftd's tls_listen port); the broker's
                             certificate is verified against the system's CAs
  --tls-ca FILE              PEM CA(s) the broker's certificate must chain to (implies --tls)
  --tls-cert FILE --tls-key FILE
                             a client certificate and its key (implies --tls)
  --tls-server-name NAME     the name the broker's certificate must carry (default: the
                             host of --broker; implies --tls)
  --user NAME                authenticate as NAME; the password is the first line of
                             --password-file FILE, else the environment variable LOFT_PASSWORD
  --allow-plaintext-password send the password without TLS to a host that is not loopback
  --json                     print JSON instead of text
  --help, --version
)";

// Every flag of every command; parse_command_line refuses those a command does not take.
po::options_description all_options() {
  po::options_description global("Global options");
  // clang-format off
  global.add_options()
    ("help,h", "")
    ("version", "")
    ("broker", po::value<std::string>()->default_value("127.0.0.1:7450"), "")
    ("tls", "")
    ("tls-ca", po::value<std::string>(), "")
    ("tls-cert", po::value<std::string>(), "")
    ("tls-key", po::value<std::string>(), "")
    ("tls-server-name", po::value<std::string>(), "")
    ("user", po::value<std::string>(), "")
    ("password-file", po::value<std::string>(), "")
    ("allow-plaintext-password", "")
    ("json", "");
  po::options_description cmd("Command options");
  cmd.add_options()
    ("id", po::value<std::string>(), "")
    ("id-prefix", po::value<std::string>(), "")
    ("dedup-window", po::value<std::string>(), "")
    ("dedup-conflict", po::value<std::string>(), "")
    ("max-age", po::value<std::string>(), "")
    ("max-bytes", po::value<std::string>(), "")
    ("max-messages", po::value<std::string>(), "")
    ("key", po::value<std::string>(), "")
    ("subject", po::value<std::string>(), "")
    ("delay", po::value<std::string>(), "")
    ("at", po::value<std::string>(), "")
    ("filter", po::value<std::string>(), "")
    ("ordering", po::value<std::string>(), "")
    ("key-lookahead", po::value<std::string>(), "")
    ("keys", po::value<std::string>(), "")
    ("header", po::value<std::vector<std::string>>()->composing(), "")
    ("batch", po::value<std::string>()->default_value("1000"), "")
    ("window", po::value<std::string>()->default_value("16"), "")
    ("offset", po::value<std::string>()->default_value("0"), "")
    ("max", po::value<std::string>()->default_value("100"), "")
    ("group", po::value<std::string>(), "")
    ("from", po::value<std::string>(), "")
    ("to", po::value<std::string>(), "")
    ("count", po::value<std::string>(), "")
    ("max-in-flight", po::value<std::string>(), "")
    ("ack-timeout", po::value<std::string>(), "")
    ("max-deliveries", po::value<std::string>(), "")
    ("no-ack", "")
    ("idle-exit", po::value<std::string>(), "")
    ("messages", po::value<std::string>(), "")
    ("duration", po::value<std::string>(), "")
    ("size", po::value<std::string>(), "")
    ("producers", po::value<std::string>(), "")
    ("ids", "")
    ("consumers", po::value<std::string>(), "")
    ("rate", po::value<std::string>(), "")
    ("data-dir", po::value<std::string>(), "")
    ("durability", po::value<std::string>(), "")
    ("keep", "")
    // Work-queue retention (topic create).
    ("work-queue", "")
    ("words", po::value<std::vector<std::string>>(), "");
  // clang-format on
  po::options_description all;
  all.add(global).add(cmd);
  return all;
}

// Flags that only make sense with some commands are refused elsewhere, not ignored.
void refuse_misplaced_flags(const Common& c) {
  const auto& command = c.words[0];
  auto only_for = [&](const char* flag, std::initializer_list<std::string_view> which) {
    if (!given(c, flag)) return;
    for (const auto w : which) {
      if (command == w) return;
    }
    usage_error(std::string("--") + flag + " only applies to 'loft " + std::string(*which.begin()) +
                "'");
  };
  for (const auto* flag : {"id", "id-prefix", "key", "subject", "header", "at"}) {
    only_for(flag, {"pub"});
  }
  only_for("delay", {"pub", "bench"});
  for (const auto* flag : {"batch", "window"}) only_for(flag, {"pub", "bench"});
  for (const auto* flag : {"messages", "duration", "size", "producers", "ids", "consumers", "rate",
                           "data-dir", "durability", "keep"}) {
    only_for(flag, {"bench"});
  }
  for (const auto* flag :
       {"dedup-window", "dedup-conflict", "max-age", "max-bytes", "max-messages"})
    only_for(flag, {"topic"});
  only_for("work-queue", {"topic"});
  for (const auto* flag : {"offset", "max"}) only_for(flag, {"fetch"});
  only_for("group", {"sub", "dlq"});
  for (const auto* flag : {"count", "no-ack", "idle-exit"}) only_for(flag, {"sub"});
  only_for("max-in-flight", {"sub", "bench"});
  for (const auto* flag : {"from", "ack-timeout", "max-deliveries", "filter"})
    only_for(flag, {"sub", "group"});
  only_for("to", {"group"});
  only_for("ordering", {"sub", "group", "bench"});
  only_for("key-lookahead", {"sub", "group"});
  only_for("keys", {"bench"});
}

// The first line of `path`, without its line end.
std::string read_password_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Failure{"cannot read --password-file " + path + ": " + std::strerror(errno), 1};
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// --tls..., --user and the password into the client's options (the bench's too).
void apply_connection_flags(Common& c) {
  auto& tls = c.options.tls;
  tls.enabled = c.vm.count("tls") > 0;
  for (const auto& [flag, field] :
       {std::pair{"tls-ca", &tls.ca_file}, std::pair{"tls-cert", &tls.cert_file},
        std::pair{"tls-key", &tls.key_file}, std::pair{"tls-server-name", &tls.server_name}}) {
    if (!c.vm.count(flag)) continue;
    *field = c.vm[flag].as<std::string>();
    tls.enabled = true;
  }
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    usage_error("--tls-cert and --tls-key go together");
  }
  c.options.allow_plaintext_password = c.vm.count("allow-plaintext-password") > 0;
  if (!c.vm.count("user")) {
    if (c.vm.count("password-file")) usage_error("--password-file needs --user");
    return;
  }
  c.options.user = c.vm["user"].as<std::string>();
  if (c.vm.count("password-file")) {
    c.options.password = read_password_file(c.vm["password-file"].as<std::string>());
  } else if (const char* env = std::getenv("LOFT_PASSWORD"); env != nullptr) {
    c.options.password = env;
  } else {
    usage_error("--user needs a password: --password-file FILE or LOFT_PASSWORD");
  }
}

}  // namespace

void usage_error(const std::string& message) { throw Failure{message + " (see loft --help)", 2}; }

bool given(const Common& c, const char* flag) {
  return c.vm.count(flag) && !c.vm[flag].defaulted();
}

std::string text_flag(const Common& c, const char* flag) {
  return c.vm.count(flag) ? c.vm[flag].as<std::string>() : std::string();
}

Ordering ordering_flag(const Common& c) {
  const auto text = text_flag(c, "ordering");
  if (text.empty() || text == "none") return Ordering::none;
  if (text == "key") return Ordering::key;
  usage_error("--ordering must be none or key, got '" + text + "'");
}

std::uint64_t number_flag(const Common& c, const char* flag, std::uint64_t min, std::uint64_t max) {
  const auto text = c.vm[flag].as<std::string>();
  std::uint64_t value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size() || value < min ||
      value > max) {
    usage_error(std::string("--") + flag + " must be a whole number from " + std::to_string(min) +
                " to " + std::to_string(max) + ", got '" + text + "'");
  }
  return value;
}

std::uint32_t duration_ms(const Common& c, const char* flag) {
  if (!c.vm.count(flag)) return 0;
  auto d = parse_duration(c.vm[flag].as<std::string>());
  if (!d) usage_error(std::string("--") + flag + ": " + d.error().detail);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*d).count();
  if (ms <= 0 || ms > 0xFFFFFFF0) usage_error(std::string("--") + flag + " is out of range");
  return static_cast<std::uint32_t>(ms);
}

const std::string& word(const Common& c, std::size_t i, const char* what) {
  if (c.words.size() <= i) usage_error(std::string("missing ") + what);
  return c.words[i];
}

void expect_words(const Common& c, std::size_t n) {
  if (c.words.size() > n) usage_error("unexpected argument '" + c.words[n] + "'");
}

std::unique_ptr<client::Client> connect(const Common& c) {
  return check(client::Client::connect(c.options));
}

std::optional<Common> parse_command_line(int argc, char** argv) {
  po::positional_options_description pos;
  pos.add("words", -1);
  Common c;
  c.argv.assign(argv, argv + argc);
  try {
    po::store(po::command_line_parser(argc, argv).options(all_options()).positional(pos).run(),
              c.vm);
    po::notify(c.vm);
  } catch (const po::error& e) {
    usage_error(e.what());
  }
  if (c.vm.count("help")) {
    std::cout << kUsage;
    return std::nullopt;
  }
  if (c.vm.count("version")) {
    std::cout << "loft " << kVersion << "\n";
    return std::nullopt;
  }
  check(client::parse_broker_address(c.vm["broker"].as<std::string>(), c.options));
  c.options.client_name = std::string("loft-cli ") + kVersion;
  apply_connection_flags(c);
  c.json = c.vm.count("json") > 0;
  if (c.vm.count("words")) c.words = c.vm["words"].as<std::vector<std::string>>();
  if (c.words.empty()) usage_error("missing command");
  refuse_misplaced_flags(c);
  return c;
}

apps::bench::Params bench_params(const Common& c) {
  namespace bench = apps::bench;
  const auto mode = bench::parse_mode(word(c, 1, "bench mode: publish, consume, e2e or storage"));
  if (!mode) usage_error(mode.error().detail);
  expect_words(c, 2);
  for (const auto* flag :
       {"messages", "duration", "size", "batch", "window", "producers", "ids", "consumers",
        "max-in-flight", "rate", "data-dir", "durability", "keep", "keys", "ordering", "delay"}) {
    if (given(c, flag) && !bench::flag_applies(*mode, flag)) {
      usage_error(std::string("--") + flag + " does not apply to 'loft bench " +
                  std::string(bench::to_string(*mode)) + "'");
    }
  }
  bench::Params p;
  p.mode = *mode;
  if (given(c, "messages") && given(c, "duration"))
    usage_error("give --messages or --duration, not both");
  if (given(c, "messages")) p.messages = number_flag(c, "messages", 1, 100'000'000'000);
  if (given(c, "duration")) p.duration = std::chrono::milliseconds(duration_ms(c, "duration"));
  if (p.mode == bench::Mode::e2e && !given(c, "duration")) p.duration = std::chrono::seconds(10);
  if (given(c, "size")) p.size = number_flag(c, "size", 0, 64 << 20);
  if (given(c, "batch")) p.batch = number_flag(c, "batch", 1, 1'000'000);
  if (given(c, "window")) p.window = number_flag(c, "window", 1, 4096);
  if (given(c, "producers")) p.producers = number_flag(c, "producers", 1, 256);
  if (given(c, "consumers")) p.consumers = number_flag(c, "consumers", 1, 256);
  if (given(c, "max-in-flight")) {
    p.max_in_flight = static_cast<std::uint32_t>(number_flag(c, "max-in-flight", 1, 1'000'000));
  }
  if (given(c, "keys")) p.keys = number_flag(c, "keys", 1, 1'000'000'000);
  p.ordering = ordering_flag(c);
  if (given(c, "rate")) p.rate = number_flag(c, "rate", 1, 10'000'000);
  if (given(c, "delay")) p.delay = std::chrono::milliseconds(duration_ms(c, "delay"));
  p.ids = given(c, "ids");
  p.keep = given(c, "keep");
  if (given(c, "data-dir")) p.data_dir = c.vm["data-dir"].as<std::string>();
  if (given(c, "durability")) {
    const auto d = c.vm["durability"].as<std::string>();
    if (d != "fsync" && d != "os") usage_error("--durability must be fsync or os, got '" + d + "'");
    p.durability = d == "os" ? Durability::os : Durability::fsync;
  }
  if (auto ok = bench::validate(p); !ok) usage_error(ok.error().detail);
  return p;
}

void print_report(const Common& c, const boost::json::object& report) {
  if (c.json) {
    std::cout << boost::json::serialize(report) << "\n";
  } else {
    apps::bench::print_table(report, std::cout);
  }
}

int run_cli(int argc, char** argv, int (*command)(Common&)) {
  std::ios::sync_with_stdio(false);
  try {
    auto c = parse_command_line(argc, argv);
    return c ? command(*c) : 0;
  } catch (const Failure& f) {
    std::cout.flush();
    std::cerr << "loft: " << f.message << "\n";
    return f.status;
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << "loft: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace loft::cli
