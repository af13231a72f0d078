#pragma once
// JetStream acks (module-private, pure): the `$JS.ACK...` reply subject a consumer's message
// carries, and the ack verbs a client publishes to it, as loft settle actions (docs/nats.md,
// "Consumers").
//
// loft writes the 9-token form
//   $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<timestamp ns>.<pending>
// and reads it back, and also the newer form clients may have been handed by other servers
// (11 or 12 tokens: $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<stream
// seq>.<consumer seq>.<timestamp ns>.<pending>[.<random token>]). <delivered> is the attempt
// number (loft's attempt), <stream seq> the offset + 1.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loft/common/group.hpp"

namespace loft::natsport::js {

struct AckReply {
  std::string stream;
  std::string consumer;
  std::uint64_t delivered = 1;  // attempt number, 1 on the first delivery
  std::uint64_t stream_seq = 0;
  std::uint64_t consumer_seq = 0;
  std::int64_t timestamp_ns = 0;  // publish time, ns since the Unix epoch
  std::uint64_t pending = 0;      // messages left for the consumer after this one
  std::string domain;             // the newer form only ("_" or empty: none)
  bool operator==(const AckReply&) const = default;
};

// The 9-token subject. REQUIRES: stream and consumer are single tokens (no '.', space,
// wildcard): stream and consumer names are checked at create.
std::string ack_reply_subject(const AckReply& reply);
// nullopt for a subject that is not an ack reply of either form (wrong prefix, token count,
// empty token, a number that does not parse).
std::optional<AckReply> parse_ack_reply_subject(std::string_view subject);

enum class AckVerb : std::uint8_t {
  ack,       // "+ACK" or an empty payload
  nak,       // "-NAK", optionally " {\"delay\": <ns>}" (or a Go duration string)
  progress,  // "+WPI": working on it, restart the ack timer
  term,      // "+TERM", optionally " <reason>": stop redelivering
  next,      // "+NXT", optionally " <batch>" or " {pull request}": ack, then a next request
};

struct AckCommand {
  AckVerb verb = AckVerb::ack;
  std::optional<std::chrono::nanoseconds> delay;  // nak only
  std::string next_request;                       // next only: its argument as sent (may be "")
  bool operator==(const AckCommand&) const = default;
};

// An ack payload; nullopt for one that is none of the verbs (nats-server ignores those).
std::optional<AckCommand> parse_ack_payload(std::string_view payload);

// The loft settle that carries out `verb` (next: an ack; the caller adds the request).
SettleAction settle_action(AckVerb verb);
// Appends `offset` to `runs`, extending the last run when the offset follows it.
void append_offset(std::vector<OffsetRun>& runs, std::uint64_t offset);

// ack_policy all: what an ack of `stream_seq` settles, every offset from the group's ack floor
// (`floor`, an offset) to the message's own, as runs of at most `chunk` offsets (one settle
// each, in order); the last run ends with the acked message. One run of the message alone
// when the floor is past it. REQUIRES: stream_seq > 0, chunk > 0.
std::vector<OffsetRun> ack_all_runs(std::uint64_t floor, std::uint64_t stream_seq,
                                    std::uint32_t chunk);

// A nak delay in loft's milliseconds: rounded up, so a redelivery never comes early; capped
// at the largest delay loft accepts (GroupLimits::kMaxBackoffMs).
std::uint32_t delay_ms(std::chrono::nanoseconds delay);

}  // namespace loft::natsport::js
