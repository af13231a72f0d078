// loft: the command-line tool. Parses commands and flags, calls the client library, prints.

#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <deque>
#include <future>
#include <iostream>
#include <string>
#include <vector>

#include "loft/client/client.hpp"
#include "loft/common/version.hpp"

namespace po = boost::program_options;
namespace json = boost::json;

namespace loft {
namespace {

constexpr const char* kUsage = R"(Usage: loft [--broker HOST:PORT] COMMAND [ARGS] [--json]

Commands:
  topic create NAME          create a topic
  topic delete NAME          delete a topic and all its messages
  topic list                 list topics
  topic describe NAME        show a topic's offsets, message count and size
  pub TOPIC [MESSAGE]        publish MESSAGE, or each line of standard input as one message
      [--id ID] [--key KEY] [--header K=V]...
  fetch TOPIC [--offset N] [--max N]
                             print stored messages from offset N (a plain read, no group)

Global options:
  --broker HOST:PORT         broker address (default 127.0.0.1:7450)
  --json                     print JSON instead of text
  --help, --version
)";

// A failure to report: one line on stderr, then exit with `status`.
struct Failure {
  std::string message;
  int status = 1;
};

[[noreturn]] void usage_error(const std::string& message) {
  throw Failure{message + " (see loft --help)", 2};
}

template <class T>
T check(Result<T> r) {
  if (!r) throw Failure{r.error().to_string(), 1};
  if constexpr (!std::is_void_v<T>) return std::move(*r);
}

struct Common {
  client::Options options;
  bool json = false;
  std::vector<std::string> words;  // positional words, command included
  po::variables_map vm;
};

json::object topic_json(const client::TopicInfo& t) {
  return json::object{{"name", t.name},
                      {"first_offset", t.first_offset},
                      {"next_offset", t.next_offset},
                      {"messages", t.messages},
                      {"bytes", t.bytes},
                      {"created_at_ms", t.created_at_ms}};
}

void print_topic(const client::TopicInfo& t, bool as_json) {
  if (as_json) {
    std::cout << json::serialize(topic_json(t)) << "\n";
    return;
  }
  std::cout << "name:          " << t.name << "\n"
            << "first_offset:  " << t.first_offset << "\n"
            << "next_offset:   " << t.next_offset << "\n"
            << "messages:      " << t.messages << "\n"
            << "bytes:         " << t.bytes << "\n"
            << "created_at_ms: " << t.created_at_ms << "\n";
}

std::unique_ptr<client::Client> connect(const Common& c) {
  return check(client::Client::connect(c.options));
}

const std::string& word(const Common& c, std::size_t i, const char* what) {
  if (c.words.size() <= i) usage_error(std::string("missing ") + what);
  return c.words[i];
}

void expect_words(const Common& c, std::size_t n) {
  if (c.words.size() > n) usage_error("unexpected argument '" + c.words[n] + "'");
}

int topic_command(Common& c) {
  const auto& sub = word(c, 1, "topic command: create, delete, list or describe");
  if (sub == "list") {
    expect_words(c, 2);
    const auto topics = check(connect(c)->list_topics());
    if (c.json) {
      json::array arr;
      for (const auto& t : topics) arr.push_back(topic_json(t));
      std::cout << json::serialize(arr) << "\n";
      return 0;
    }
    std::printf("%-40s %12s %14s %12s %12s\n", "NAME", "MESSAGES", "BYTES", "FIRST", "NEXT");
    for (const auto& t : topics) {
      std::printf("%-40s %12llu %14llu %12llu %12llu\n", t.name.c_str(),
                  static_cast<unsigned long long>(t.messages),
                  static_cast<unsigned long long>(t.bytes),
                  static_cast<unsigned long long>(t.first_offset),
                  static_cast<unsigned long long>(t.next_offset));
    }
    return 0;
  }
  const auto& name = word(c, 2, "topic name");
  expect_words(c, 3);
  if (sub == "create") {
    const auto t = check(connect(c)->create_topic(name));
    if (c.json) {
      print_topic(t, true);
    } else {
      std::cout << "created topic " << t.name << "\n";
    }
  } else if (sub == "delete") {
    check(connect(c)->delete_topic(name));
    if (c.json) {
      std::cout << json::serialize(json::object{{"deleted", name}}) << "\n";
    } else {
      std::cout << "deleted topic " << name << "\n";
    }
  } else if (sub == "describe") {
    print_topic(check(connect(c)->describe_topic(name)), c.json);
  } else {
    usage_error("unknown topic command '" + sub + "'");
  }
  return 0;
}

void print_result(const client::PublishResult& r, bool as_json) {
  if (as_json) {
    std::cout << R"({"offset":)" << r.offset << R"(,"duplicate":)"
              << (r.duplicate ? "true" : "false") << "}\n";
  } else if (r.duplicate) {
    std::cout << r.offset << " duplicate\n";
  } else {
    std::cout << r.offset << "\n";
  }
}

// Checks every result of a confirmed batch and prints it; a per-message error stops.
void print_results(const std::vector<client::PublishResult>& results, std::size_t expected,
                   bool as_json) {
  if (results.size() != expected) throw Failure{"broker returned a wrong number of results", 1};
  for (const auto& r : results) {
    if (r.code != Errc::ok) {
      std::cout.flush();
      throw Failure{"message rejected: " + std::string(errc_text(r.code)), 1};
    }
    print_result(r, as_json);
  }
  std::cout.flush();
}

int pub_command(Common& c) {
  const auto& topic = word(c, 1, "topic name");
  Message base;
  base.key = c.vm.count("key") ? c.vm["key"].as<std::string>() : "";
  if (c.vm.count("header")) {
    for (const auto& kv : c.vm["header"].as<std::vector<std::string>>()) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) usage_error("--header needs K=V, got '" + kv + "'");
      base.headers.push_back({kv.substr(0, eq), kv.substr(eq + 1)});
    }
  }
  const std::string id = c.vm.count("id") ? c.vm["id"].as<std::string>() : "";
  auto cl = connect(c);

  if (c.words.size() >= 3) {
    expect_words(c, 3);
    Message m = base;
    m.id = id;
    m.payload = c.words[2];
    print_results({check(cl->publish(topic, std::move(m)))}, 1, c.json);
    return 0;
  }
  if (!id.empty()) usage_error("--id needs a MESSAGE argument (standard input has many messages)");

  // Standard input: batches of lines, a window of batches in flight, results printed in
  // input order as soon as they are confirmed.
  const auto& limits = cl->server().limits;
  const std::size_t batch_messages = c.vm["batch"].as<std::size_t>();
  const std::size_t window = c.vm["window"].as<std::size_t>();
  if (batch_messages == 0 || window == 0) usage_error("--batch and --window must be at least 1");
  const std::size_t batch_bytes = limits.max_frame_size / 2;
  struct InFlight {
    std::future<Result<std::vector<client::PublishResult>>> reply;
    std::size_t count;
  };
  std::deque<InFlight> inflight;
  auto complete_front = [&] {
    auto& f = inflight.front();
    print_results(check(f.reply.get()), f.count, c.json);
    inflight.pop_front();
  };

  std::vector<Message> batch;
  std::size_t bytes = 0;
  std::size_t line_no = 0;
  auto flush_batch = [&] {
    if (batch.empty()) return;
    const auto n = batch.size();
    inflight.push_back({cl->publish_async(topic, std::move(batch)), n});
    batch.clear();
    bytes = 0;
    while (!inflight.empty() &&
           (inflight.size() > window || inflight.front().reply.wait_for(std::chrono::seconds(0)) ==
                                            std::future_status::ready)) {
      complete_front();
    }
  };
  std::string line;
  while (std::getline(std::cin, line)) {
    ++line_no;
    if (line.size() > limits.max_message_size) {
      while (!inflight.empty()) complete_front();
      throw Failure{"line " + std::to_string(line_no) + " is " + std::to_string(line.size()) +
                        " bytes, over the broker's max_message_size of " +
                        std::to_string(limits.max_message_size),
                    1};
    }
    Message m = base;
    m.payload = std::move(line);
    bytes += m.size_bytes() + 64;
    batch.push_back(std::move(m));
    if (batch.size() >= batch_messages || bytes >= batch_bytes) flush_batch();
  }
  flush_batch();
  while (!inflight.empty()) complete_front();
  return 0;
}

int fetch_command(Common& c) {
  const auto& topic = word(c, 1, "topic name");
  expect_words(c, 2);
  auto cl = connect(c);
  std::uint64_t offset = c.vm["offset"].as<std::uint64_t>();
  std::uint64_t remaining = c.vm["max"].as<std::uint64_t>();
  while (remaining > 0) {
    const auto chunk = static_cast<std::uint32_t>(std::min<std::uint64_t>(remaining, 1000));
    const auto got = check(cl->fetch(topic, offset, chunk));
    if (got.messages.empty()) break;
    for (const auto& m : got.messages) {
      if (c.json) {
        json::object headers;
        for (const auto& h : m.message.headers) headers[h.name] = h.value;
        json::object o{{"offset", m.offset.value},
                       {"timestamp_ms", m.timestamp_ms},
                       {"id", m.message.id},
                       {"key", m.message.key},
                       {"headers", std::move(headers)},
                       {"payload", m.message.payload}};
        std::cout << json::serialize(o) << "\n";
      } else {
        std::cout << m.offset.value << "\t" << m.message.payload << "\n";
      }
      offset = m.offset.value + 1;
      --remaining;
    }
  }
  return 0;
}

int run(int argc, char** argv) {
  po::options_description global("Global options");
  // clang-format off
  global.add_options()
    ("help,h", "")
    ("version", "")
    ("broker", po::value<std::string>()->default_value("127.0.0.1:7450"), "")
    ("json", "");
  po::options_description cmd("Command options");
  cmd.add_options()
    ("id", po::value<std::string>(), "")
    ("key", po::value<std::string>(), "")
    ("header", po::value<std::vector<std::string>>()->composing(), "")
    ("batch", po::value<std::size_t>()->default_value(1000), "")
    ("window", po::value<std::size_t>()->default_value(16), "")
    ("offset", po::value<std::uint64_t>()->default_value(0), "")
    ("max", po::value<std::uint64_t>()->default_value(100), "")
    ("words", po::value<std::vector<std::string>>(), "");
  // clang-format on
  po::options_description all;
  all.add(global).add(cmd);
  po::positional_options_description pos;
  pos.add("words", -1);

  Common c;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), c.vm);
    po::notify(c.vm);
  } catch (const po::error& e) {
    usage_error(e.what());
  }
  if (c.vm.count("help")) {
    std::cout << kUsage;
    return 0;
  }
  if (c.vm.count("version")) {
    std::cout << "loft " << kVersion << "\n";
    return 0;
  }
  check(client::parse_broker_address(c.vm["broker"].as<std::string>(), c.options));
  c.options.client_name = std::string("loft-cli ") + kVersion;
  c.json = c.vm.count("json") > 0;
  if (c.vm.count("words")) c.words = c.vm["words"].as<std::vector<std::string>>();
  if (c.words.empty()) usage_error("missing command");
  const auto& command = c.words[0];
  // Flags that only make sense with `pub` or `fetch` are refused elsewhere, not ignored.
  auto only_for = [&](const char* flag, const char* which) {
    if (c.vm.count(flag) && !c.vm[flag].defaulted() && command != which) {
      usage_error(std::string("--") + flag + " only applies to 'loft " + which + "'");
    }
  };
  for (const auto* flag : {"id", "key", "header", "batch", "window"}) only_for(flag, "pub");
  for (const auto* flag : {"offset", "max"}) only_for(flag, "fetch");
  if (command == "topic") return topic_command(c);
  if (command == "pub") return pub_command(c);
  if (command == "fetch") return fetch_command(c);
  usage_error("unknown command '" + command + "'");
}

}  // namespace
}  // namespace loft

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  try {
    return loft::run(argc, argv);
  } catch (const loft::Failure& f) {
    std::cout.flush();
    std::cerr << "loft: " << f.message << "\n";
    return f.status;
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << "loft: " << e.what() << "\n";
    return 1;
  }
}
