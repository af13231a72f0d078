// libFuzzer target over the NATS client-protocol library: any bytes, fed in pieces, must give
// ops or an error, never a crash, a hang or an over-read (ASan); and
// - every op encodes to bytes that parse to the same op, within the limits;
// - every HPUB headers block that parses encodes (loft's rule) to one that parses the same;
// - every valid SUB goes into a SubscriptionIndex and every valid PUB subject is matched
//   against it, with the same subscribers as subject_matches over the SUBs seen.
//
//   CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DLOFT_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug
//   ninja -C build/fuzz nats_parser_fuzz && build/fuzz/tests/fuzz/nats_parser_fuzz
//   -max_total_time=60
//
// Without clang, nats_parser_fuzz_corpus (a ctest, label fuzz) runs the same function over the
// seeds (tests/fuzz/corpus-nats_parser_fuzz, tests/fuzz/corpus) and seeded mutations of them.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "loft/nats/headers.hpp"
#include "loft/nats/parser.hpp"
#include "loft/nats/subject.hpp"

namespace {

using namespace loft::nats;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

constexpr ParserLimits kLimits{.max_control_line = 512, .max_payload = std::uint64_t{64} << 10};

void check_round_trip(const Op& op) {
  std::string wire;
  append_op(wire, op);
  Parser again{kLimits};
  again.feed(wire);
  const auto next = again.next();
  check(next.has_value() && next->has_value() && **next == op);
  check(again.buffered() == 0);
}

void check_headers(std::string_view block) {
  const auto parsed = parse_headers(block);
  if (!parsed) {
    check(parsed.error().code == ErrorCode::bad_header && !parsed.error().fatal());
    return;
  }
  std::string wire;
  append_headers(wire, parsed->status, parsed->description,
                 std::span<const loft::Header>(parsed->headers));
  check(wire.size() == headers_size(parsed->status, parsed->description,
                                    std::span<const loft::Header>(parsed->headers)));
  const auto again = parse_headers(wire);
  check(again.has_value() && *again == *parsed);
}

struct Subscriptions {
  SubscriptionIndex index;
  std::vector<std::pair<std::string, std::string>> subs;  // subject, queue; handle = position

  void add(const Sub& sub) {
    if (subs.size() >= 64) return;
    const bool valid = is_valid_subscription_subject(sub.subject) &&
                       (sub.queue.empty() || is_valid_queue_group(sub.queue));
    const auto handle = SubscriberHandle{subs.size()};
    const auto inserted = index.insert(sub.subject, sub.queue, handle);
    check(inserted.has_value() == valid);
    if (valid) subs.emplace_back(sub.subject, sub.queue);
  }

  void match(std::string_view subject) const {
    if (!is_valid_publish_subject(subject)) return;
    const MatchResult r = index.match(subject);
    std::size_t expected = 0;
    for (const auto& [pattern, queue] : subs) expected += subject_matches(pattern, subject);
    std::size_t got = r.plain.size();
    for (const auto& q : r.queues) got += q.members.size();
    check(got == expected);
    for (const auto handle : r.plain) {
      const auto& [pattern, queue] = subs.at(static_cast<std::size_t>(handle));
      check(queue.empty() && subject_matches(pattern, subject));
    }
    for (const auto& q : r.queues) {
      for (const auto handle : q.members) {
        const auto& [pattern, queue] = subs.at(static_cast<std::size_t>(handle));
        check(queue == q.group && subject_matches(pattern, subject));
      }
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte picks how the stream is cut, so splits are explored too.
  const std::size_t piece = data[0] % 17 + 1;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  Parser parser{kLimits};
  Subscriptions subscriptions;
  for (std::size_t at = 0; at < bytes.size(); at += piece) {
    parser.feed(bytes.substr(at, piece));
    for (;;) {
      const auto next = parser.next();
      if (!next) {
        check(next.error().fatal() && !next.error().text().empty());
        return 0;  // an error: the stream is unusable, as documented
      }
      if (!*next) break;
      const Op& op = **next;
      check_round_trip(op);
      if (const auto* pub = std::get_if<Pub>(&op)) {
        check(pub->payload.size() <= kLimits.max_payload);
        subscriptions.match(pub->subject);
      } else if (const auto* hpub = std::get_if<HPub>(&op)) {
        check(hpub->headers.size() + hpub->payload.size() <= kLimits.max_payload);
        check_headers(hpub->headers);
        subscriptions.match(hpub->subject);
      } else if (const auto* sub = std::get_if<Sub>(&op)) {
        subscriptions.add(*sub);
      }
    }
  }
  return 0;
}
