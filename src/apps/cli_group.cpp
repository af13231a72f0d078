// loft sub and loft group: consume as a group member, and manage groups.

#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string_view>

#include "commands.hpp"
#include "loft/http/json.hpp"

namespace loft::cli {
namespace {

namespace json = boost::json;
using http::group_json;
using http::stall_text;

// --from / --to: earliest, latest, an offset, or @UNIX_MS (the first message published then or
// later).
protocol::StartPosition parse_position(const std::string& text, const char* flag) {
  if (text == "earliest") return {protocol::StartKind::earliest, 0};
  if (text == "latest") return {protocol::StartKind::latest, 0};
  const bool at = !text.empty() && text[0] == '@';
  const std::string digits = at ? text.substr(1) : text;
  std::uint64_t value = 0;
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc{} || ptr != digits.data() + digits.size()) {
    usage_error(std::string("--") + flag +
                " must be earliest, latest, an offset or @UNIX_MS, got '" + text + "'");
  }
  return {at ? protocol::StartKind::timestamp : protocol::StartKind::offset, value};
}

protocol::GroupConfig group_config(const Common& c) {
  protocol::GroupConfig config;
  config.ack_timeout_ms = duration_ms(c, "ack-timeout");
  config.filter = text_flag(c, "filter");
  config.ordering = ordering_flag(c);
  if (c.vm.count("key-lookahead")) {
    if (config.ordering != Ordering::key) usage_error("--key-lookahead needs --ordering key");
    config.key_lookahead =
        static_cast<std::uint32_t>(number_flag(c, "key-lookahead", 1, 1'000'000));
  }
  if (c.vm.count("max-deliveries"))
    config.max_deliveries =
        static_cast<std::uint32_t>(number_flag(c, "max-deliveries", 1, 1'000'000));
  return config;
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80           ? 1
                    : (c >> 5) == 0x6  ? 2
                    : (c >> 4) == 0xE  ? 3
                    : (c >> 3) == 0x1E ? 4
                                       : 0;
    if (n == 0 || i + n > s.size()) return false;
    std::uint32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (std::size_t k = 1; k < n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      return false;
    }
    i += n;
  }
  return true;
}

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const std::uint32_t v = (static_cast<unsigned char>(in[i]) << 16) |
                            (static_cast<unsigned char>(in[i + 1]) << 8) |
                            static_cast<unsigned char>(in[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out += kAlphabet[(v >> k) & 0x3F];
  }
  if (i < in.size()) {
    std::uint32_t v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 0x3F];
    out += kAlphabet[(v >> 12) & 0x3F];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 0x3F] : '=';
    out += '=';
  }
  return out;
}

// Puts `value` under `name` when it is UTF-8 text, otherwise base64 under `name`_base64.
void put_bytes(json::object& o, const std::string& name, const std::string& value) {
  if (valid_utf8(value)) {
    o[name] = value;
  } else {
    o[name + "_base64"] = base64(value);
  }
}

// `topic`: the subscription's, which a message without a subject is on.
json::object delivered_json(const client::DeliveredMessage& m, const std::string& topic) {
  json::object headers;
  json::object headers_b64;
  for (const auto& h : m.message.headers) {
    if (valid_utf8(h.value)) {
      headers[h.name] = h.value;
    } else {
      headers_b64[h.name] = base64(h.value);
    }
  }
  json::object o{{"offset", m.offset}, {"attempt", m.attempt}};
  put_bytes(o, "id", m.message.id);
  put_bytes(o, "key", m.message.key);
  put_bytes(o, "subject", m.message.subject.empty() ? topic : m.message.subject);
  o["timestamp_ms"] = m.timestamp_ms;
  // A message published with a delay: the time it was due (docs/semantics.md, "Delayed
  // delivery").
  if (m.message.deliver_at_ms != 0) o["deliver_at_ms"] = m.message.deliver_at_ms;
  o["headers"] = std::move(headers);
  if (!headers_b64.empty()) o["headers_base64"] = std::move(headers_b64);
  put_bytes(o, "payload", m.message.payload);
  return o;
}

void print_group(const client::GroupInfo& g, bool as_json) {
  if (as_json) {
    std::cout << json::serialize(group_json(g)) << "\n";
    return;
  }
  std::cout << "topic:             " << g.topic << "\n"
            << "group:             " << g.group << "\n"
            << "ack_floor:         " << g.ack_floor << "\n"
            << "end:               " << g.end << "\n"
            << "lag:               " << g.lag << "\n"
            << "in_flight:         " << g.in_flight << "\n"
            << "scheduled:         " << g.scheduled << "\n"
            << "dead_lettered:     " << g.dead_lettered << "\n"
            << "redelivered:       " << g.redelivered << "\n"
            << "skipped:           " << g.skipped << "\n"
            << "dead_letter_topic: " << g.config.dead_letter_topic << "\n"
            << "filter:            " << (g.config.filter.empty() ? "(none)" : g.config.filter)
            << "\n"
            << "ordering:          " << (g.config.ordering == Ordering::key ? "key" : "none")
            << "\n";
  if (g.config.ordering == Ordering::key) {
    std::cout << "key_lookahead:     " << g.config.key_lookahead << "\n"
              << "held_back:         " << g.held_back << "\n";
    if (!g.blocking_key.empty()) std::cout << "blocking_key:      " << g.blocking_key << "\n";
  }
  std::cout << "consumers:         " << g.consumers.size() << "\n";
  for (const auto& c : g.consumers) {
    std::cout << "  subscription " << c.subscription << " (" << c.client_name << "): in_flight "
              << c.in_flight << "/" << c.max_in_flight;
    if (c.stalled != protocol::StallReason::none)
      std::cout << ", stalled: " << stall_text(c.stalled);
    std::cout << "\n";
  }
}

}  // namespace

int sub_command(Common& c) {
  const auto& topic = word(c, 1, "topic name");
  expect_words(c, 2);
  if (!c.vm.count("group")) usage_error("sub needs --group G");
  client::SubscribeOptions options;
  options.topic = topic;
  options.group = c.vm["group"].as<std::string>();
  if (c.vm.count("from")) options.start = parse_position(c.vm["from"].as<std::string>(), "from");
  if (c.vm.count("max-in-flight")) {
    options.max_in_flight =
        static_cast<std::uint32_t>(number_flag(c, "max-in-flight", 1, 1'000'000));
  }
  options.config = group_config(c);
  const bool no_ack = c.vm.count("no-ack") > 0;
  const std::uint64_t count = c.vm.count("count") ? number_flag(c, "count", 1, UINT64_MAX) : 0;
  const std::uint32_t idle_ms = duration_ms(c, "idle-exit");
  if (count > 0) {
    // Take no more than it will print: messages it held unprinted at exit would go back to
    // the group as redeliveries.
    const auto cap = static_cast<std::uint32_t>(std::min<std::uint64_t>(count, 1000));
    options.max_in_flight = options.max_in_flight ? std::min(options.max_in_flight, cap) : cap;
  }
  auto cl = connect(c);
  auto sub = check(cl->subscribe(options));
  std::uint64_t received = 0;
  auto last_message = std::chrono::steady_clock::now();
  while (count == 0 || received < count) {
    const auto batch =
        check(sub->receive(std::chrono::milliseconds(200),
                           count ? static_cast<std::size_t>(count - received) : std::size_t{1000}));
    if (batch.empty()) {
      if (idle_ms > 0 &&
          std::chrono::steady_clock::now() - last_message >= std::chrono::milliseconds(idle_ms)) {
        break;
      }
      continue;
    }
    last_message = std::chrono::steady_clock::now();
    for (const auto& m : batch) {
      if (c.json) {
        std::cout << json::serialize(delivered_json(m, topic)) << "\n";
      } else {
        std::cout << m.offset << "\t" << m.message.payload << "\n";
      }
    }
    std::cout.flush();
    // Ack what was printed, and wait for the broker to take it before reading on: at most
    // one batch is ever printed but not acked.
    if (!no_ack) {
      for (const auto& m : batch) sub->ack(m.offset);
      check(sub->flush());
    }
    received += batch.size();
  }
  check(sub->unsubscribe());
  return 0;
}

int group_command(Common& c) {
  const auto& sub = word(c, 1, "group command: create, list, describe, delete or reset");
  const auto& topic = word(c, 2, "topic name");
  if (sub == "list") {
    expect_words(c, 3);
    const auto groups = check(connect(c)->list_groups(topic));
    if (c.json) {
      json::array arr;
      for (const auto& g : groups) arr.push_back(group_json(g));
      std::cout << json::serialize(arr) << "\n";
      return 0;
    }
    std::printf("%-40s %12s %12s %10s %10s\n", "GROUP", "ACK_FLOOR", "LAG", "IN_FLIGHT",
                "CONSUMERS");
    for (const auto& g : groups) {
      std::printf("%-40s %12llu %12llu %10llu %10zu\n", g.group.c_str(),
                  static_cast<unsigned long long>(g.ack_floor),
                  static_cast<unsigned long long>(g.lag),
                  static_cast<unsigned long long>(g.in_flight), g.consumers.size());
    }
    return 0;
  }
  const auto& group = word(c, 3, "group name");
  expect_words(c, 4);
  if (sub == "create") {
    protocol::StartPosition start;
    if (c.vm.count("from")) start = parse_position(c.vm["from"].as<std::string>(), "from");
    const auto g = check(connect(c)->create_group(topic, group, start, group_config(c)));
    if (c.json) {
      print_group(g, true);
    } else {
      std::cout << "created group " << group << " of topic " << topic << " at offset "
                << g.ack_floor << "\n";
    }
  } else if (sub == "describe") {
    print_group(check(connect(c)->describe_group(topic, group)), c.json);
  } else if (sub == "delete") {
    check(connect(c)->delete_group(topic, group));
    if (c.json) {
      std::cout << json::serialize(json::object{{"deleted", group}}) << "\n";
    } else {
      std::cout << "deleted group " << group << " of topic " << topic << "\n";
    }
  } else if (sub == "reset") {
    if (!c.vm.count("to")) usage_error("group reset needs --to earliest|latest|OFFSET|@UNIX_MS");
    const auto g = check(
        connect(c)->reset_group(topic, group, parse_position(c.vm["to"].as<std::string>(), "to")));
    if (c.json) {
      print_group(g, true);
    } else {
      std::cout << "group " << group << " of topic " << topic << " now at offset " << g.ack_floor
                << "\n";
    }
  } else {
    usage_error("unknown group command '" + sub + "'");
  }
  return 0;
}

}  // namespace loft::cli
