#include "js_ack.hpp"

#include <algorithm>
#include <array>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <charconv>
#include <limits>
#include <vector>

#include "js_api.hpp"
#include "loft/broker/groups.hpp"

namespace loft::natsport::js {

namespace {

template <class T>
std::optional<T> number(std::string_view text) {
  T value{};
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end || text.empty()) return std::nullopt;
  return value;
}

void append_number(std::string& out, std::int64_t v) {
  std::array<char, 24> buf{};
  const auto [ptr, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  out.append(buf.data(), ptr);
}
void append_number(std::string& out, std::uint64_t v) {
  std::array<char, 24> buf{};
  const auto [ptr, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  out.append(buf.data(), ptr);
}

std::vector<std::string_view> split(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    const auto dot = s.find('.', start);
    out.push_back(s.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) return out;
    start = dot + 1;
  }
}

// A Go duration of one number and one unit ("250ms", "5s", "1m"): what a client may send
// after -NAK instead of JSON.
std::optional<std::chrono::nanoseconds> go_duration(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const auto n = number<std::int64_t>(text.substr(0, digits));
  if (!n) return std::nullopt;
  const auto unit = text.substr(digits);
  constexpr std::array<std::pair<std::string_view, std::int64_t>, 7> kUnits{
      {{"ns", 1},
       {"us", 1'000},
       {"µs", 1'000},
       {"ms", 1'000'000},
       {"s", 1'000'000'000},
       {"m", 60'000'000'000},
       {"h", 3'600'000'000'000}}};
  for (const auto& [name, scale] : kUnits) {
    if (unit != name) continue;
    if (*n > std::numeric_limits<std::int64_t>::max() / scale) return std::nullopt;
    return std::chrono::nanoseconds{*n * scale};
  }
  return std::nullopt;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// -NAK's argument: {"delay": <ns>} or a Go duration; nullopt delay for none or one that does
// not parse (nats-server then naks without a delay too).
std::optional<std::chrono::nanoseconds> nak_delay(std::string_view arg) {
  arg = trim(arg);
  if (arg.empty()) return std::nullopt;
  if (arg.front() == '{') {
    boost::system::error_code ec;
    const auto v = boost::json::parse(arg, ec);
    if (ec || !v.is_object()) return std::nullopt;
    const auto* d = v.get_object().if_contains("delay");
    if (d == nullptr) return std::nullopt;
    if (d->is_int64() && d->get_int64() > 0) return std::chrono::nanoseconds{d->get_int64()};
    if (d->is_uint64()) {
      return std::chrono::nanoseconds{static_cast<std::int64_t>(
          std::min<std::uint64_t>(d->get_uint64(), std::numeric_limits<std::int64_t>::max()))};
    }
    return std::nullopt;
  }
  return go_duration(arg);
}

}  // namespace

std::string ack_reply_subject(const AckReply& r) {
  std::string out;
  out.reserve(kAckPrefix.size() + r.stream.size() + r.consumer.size() + 80);
  out += kAckPrefix;
  out += r.stream;
  out += '.';
  out += r.consumer;
  for (const std::uint64_t v : {r.delivered, r.stream_seq, r.consumer_seq}) {
    out += '.';
    append_number(out, v);
  }
  out += '.';
  append_number(out, r.timestamp_ns);
  out += '.';
  append_number(out, r.pending);
  return out;
}

std::optional<AckReply> parse_ack_reply_subject(std::string_view subject) {
  if (!subject.starts_with(kAckPrefix)) return std::nullopt;
  const auto tokens = split(subject);
  if (std::any_of(tokens.begin(), tokens.end(), [](auto t) { return t.empty(); })) {
    return std::nullopt;
  }
  std::size_t at = 2;  // the stream's token
  AckReply r;
  if (tokens.size() == 11 || tokens.size() == 12) {
    r.domain = tokens[2] == "_" ? std::string() : std::string(tokens[2]);
    at = 4;  // after <domain>.<account hash>
  } else if (tokens.size() != 9) {
    return std::nullopt;
  }
  r.stream = tokens[at];
  r.consumer = tokens[at + 1];
  const auto delivered = number<std::uint64_t>(tokens[at + 2]);
  const auto stream_seq = number<std::uint64_t>(tokens[at + 3]);
  const auto consumer_seq = number<std::uint64_t>(tokens[at + 4]);
  const auto timestamp = number<std::int64_t>(tokens[at + 5]);
  const auto pending = number<std::uint64_t>(tokens[at + 6]);
  if (!delivered || !stream_seq || !consumer_seq || !timestamp || !pending) return std::nullopt;
  r.delivered = *delivered;
  r.stream_seq = *stream_seq;
  r.consumer_seq = *consumer_seq;
  r.timestamp_ns = *timestamp;
  r.pending = *pending;
  return r;
}

std::optional<AckCommand> parse_ack_payload(std::string_view payload) {
  const auto verb_is = [&](std::string_view verb) {
    return payload.starts_with(verb) &&
           (payload.size() == verb.size() || payload[verb.size()] == ' ');
  };
  const auto rest = [&](std::string_view verb) {
    return payload.size() > verb.size() ? payload.substr(verb.size() + 1) : std::string_view{};
  };
  if (payload.empty() || verb_is("+ACK")) return AckCommand{AckVerb::ack, {}, {}};
  if (verb_is("-NAK")) return AckCommand{AckVerb::nak, nak_delay(rest("-NAK")), {}};
  if (verb_is("+WPI")) return AckCommand{AckVerb::progress, {}, {}};
  if (verb_is("+TERM")) return AckCommand{AckVerb::term, {}, {}};
  if (verb_is("+NXT")) return AckCommand{AckVerb::next, {}, std::string(trim(rest("+NXT")))};
  return std::nullopt;
}

SettleAction settle_action(AckVerb verb) {
  switch (verb) {
    case AckVerb::nak:
      return SettleAction::nack;
    case AckVerb::progress:
      return SettleAction::extend;
    case AckVerb::term:
      return SettleAction::reject;
    case AckVerb::ack:
    case AckVerb::next:
      break;
  }
  return SettleAction::ack;
}

void append_offset(std::vector<OffsetRun>& runs, std::uint64_t offset) {
  if (!runs.empty() && runs.back().first + runs.back().count == offset &&
      runs.back().count < std::numeric_limits<std::uint32_t>::max()) {
    ++runs.back().count;
  } else {
    runs.push_back({offset, 1});
  }
}

std::vector<OffsetRun> ack_all_runs(std::uint64_t floor, std::uint64_t stream_seq,
                                    std::uint32_t chunk) {
  const std::uint64_t end = stream_seq;  // one past the acked message's offset
  std::uint64_t from = std::min(floor, end - 1);
  std::vector<OffsetRun> runs;
  for (; end - from > chunk; from += chunk) runs.push_back({from, chunk});
  runs.push_back({from, static_cast<std::uint32_t>(end - from)});
  return runs;
}

std::uint32_t delay_ms(std::chrono::nanoseconds delay) {
  constexpr std::int64_t kNsPerMs = 1'000'000;
  const std::int64_t ns = std::max<std::int64_t>(delay.count(), 0);
  const std::int64_t ms = ns / kNsPerMs + (ns % kNsPerMs != 0 ? 1 : 0);
  return static_cast<std::uint32_t>(std::min<std::int64_t>(ms, broker::GroupLimits::kMaxBackoffMs));
}

}  // namespace loft::natsport::js
