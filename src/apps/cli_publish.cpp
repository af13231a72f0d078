// loft pub and loft fetch: write messages to a topic and read them back by offset.

#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <deque>
#include <future>
#include <iostream>

#include "commands.hpp"
#include "loft/common/units.hpp"

namespace loft::cli {
namespace {

namespace json = boost::json;

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

// --at @UNIX_MS: an absolute delivery time (ms since the Unix epoch by loftd's clock). A time
// in the past is delivered at once (the broker takes it as now).
std::int64_t at_flag(const Common& c) {
  const auto text = text_flag(c, "at");
  const std::string_view digits = text.empty() ? text : std::string_view(text).substr(1);
  std::int64_t value = 0;
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (text.empty() || text[0] != '@' || digits.empty() || ec != std::errc{} ||
      ptr != digits.data() + digits.size() || value < 0) {
    usage_error("--at must be @UNIX_MS (milliseconds since the Unix epoch, like @" +
                std::to_string(1'800'000'000'000) + "), got '" + text + "'");
  }
  return value;
}

// --delay DURATION ("10s", "500ms", "5m", "2h", "7d"): counted by loftd's clock from when it
// receives each publish, so this machine's clock does not matter.
std::chrono::milliseconds delay_flag(const Common& c) {
  const auto text = text_flag(c, "delay");
  auto d = parse_duration(text);
  if (!d) usage_error("--delay: " + d.error().detail);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
  if (ms != *d) usage_error("--delay must be whole milliseconds, got '" + text + "'");
  return ms;
}

// --key, --subject, --header and --at: what every message of this `pub` carries.
Message message_template(const Common& c) {
  Message base;
  if (given(c, "at")) {
    if (given(c, "delay")) usage_error("--delay and --at go one at a time: give one of them");
    base.deliver_at_ms = at_flag(c);
  }
  base.key = text_flag(c, "key");
  base.subject = text_flag(c, "subject");
  if (c.vm.count("header")) {
    for (const auto& kv : c.vm["header"].as<std::vector<std::string>>()) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) usage_error("--header needs K=V, got '" + kv + "'");
      base.headers.push_back({kv.substr(0, eq), kv.substr(eq + 1)});
    }
  }
  return base;
}

// Standard input: batches of lines, a window of batches in flight, results printed in
// input order as soon as they are confirmed.
void publish_lines(const Common& c, client::Client& cl, const std::string& topic,
                   const Message& base, const std::string& id_prefix,
                   client::PublishOptions options) {
  const auto& limits = cl.server().limits;
  const std::size_t batch_messages = number_flag(c, "batch", 1, 1'000'000);
  const std::size_t window = number_flag(c, "window", 1, 4096);
  const std::size_t batch_bytes = limits.max_frame_size / 2;
  struct InFlight {
    std::future<Result<std::vector<client::PublishResult>>> reply;
    std::size_t count;
  };
  std::deque<InFlight> inflight;
  auto complete_front = [&] {
    auto& f = inflight.front();
    if (f.reply.wait_for(c.options.request_timeout) != std::future_status::ready) {
      std::cout.flush();
      throw Failure{"no confirm from the broker within " +
                        std::to_string(c.options.request_timeout.count()) + "ms",
                    1};
    }
    print_results(check(f.reply.get()), f.count, c.json);
    inflight.pop_front();
  };

  std::vector<Message> batch;
  std::size_t bytes = 0;
  std::size_t line_no = 0;
  auto flush_batch = [&] {
    if (batch.empty()) return;
    const auto n = batch.size();
    inflight.push_back({cl.publish_async(topic, std::move(batch), options), n});
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
    if (line.size() > limits.message.max_message_size) {
      while (!inflight.empty()) complete_front();
      throw Failure{"line " + std::to_string(line_no) + " is " + std::to_string(line.size()) +
                        " bytes, over the broker's max_message_size of " +
                        std::to_string(limits.message.max_message_size),
                    1};
    }
    Message m = base;
    m.payload = std::move(line);
    // Line n gets the id PREFIX-n, so re-running the same import stores nothing twice.
    if (!id_prefix.empty()) m.id = id_prefix + "-" + std::to_string(line_no);
    bytes += m.size_bytes() + 64;
    batch.push_back(std::move(m));
    if (batch.size() >= batch_messages || bytes >= batch_bytes) flush_batch();
  }
  flush_batch();
  while (!inflight.empty()) complete_front();
}

}  // namespace

int pub_command(Common& c) {
  const auto& topic = word(c, 1, "topic name");
  const Message base = message_template(c);
  client::PublishOptions options;
  if (given(c, "delay")) options.delay = delay_flag(c);
  const std::string id = text_flag(c, "id");
  const std::string id_prefix = text_flag(c, "id-prefix");
  if (!id_prefix.empty() && c.words.size() >= 3) {
    usage_error("--id-prefix is for standard input; give one message an id with --id");
  }
  auto cl = connect(c);

  if (c.words.size() >= 3) {
    expect_words(c, 3);
    Message m = base;
    m.id = id;
    m.payload = c.words[2];
    print_results({check(cl->publish(topic, std::move(m), options))}, 1, c.json);
    return 0;
  }
  if (!id.empty()) usage_error("--id needs a MESSAGE argument (standard input has many messages)");
  publish_lines(c, *cl, topic, base, id_prefix, options);
  return 0;
}

int fetch_command(Common& c) {
  const auto& topic = word(c, 1, "topic name");
  expect_words(c, 2);
  auto cl = connect(c);
  std::uint64_t offset = number_flag(c, "offset", 0, UINT64_MAX);
  std::uint64_t remaining = number_flag(c, "max", 0, UINT64_MAX);
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
                       // A message without a subject is on its topic's name.
                       {"subject", m.message.subject.empty() ? topic : m.message.subject},
                       {"headers", std::move(headers)},
                       {"payload", m.message.payload}};
        // Only a scheduled message has one (docs/semantics.md, "Delayed delivery").
        if (m.message.deliver_at_ms != 0) o["deliver_at_ms"] = m.message.deliver_at_ms;
        std::cout << json::serialize(o) << "\n";
      } else {
        std::cout << m.offset.value << "\t" << m.message.payload;
        // After the payload, so that `cut -f2` still gives an unscheduled message's payload.
        if (m.message.deliver_at_ms != 0) {
          std::cout << "\tdeliver_at=@" << m.message.deliver_at_ms;
        }
        std::cout << "\n";
      }
      offset = m.offset.value + 1;
      --remaining;
    }
  }
  return 0;
}

}  // namespace loft::cli
