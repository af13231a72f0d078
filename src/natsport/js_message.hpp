#pragma once
// A JetStream message in loft's terms (module-private; docs/nats.md, "JetStream"): a PUB/HPUB
// captured by a stream becomes a loft Message (the subject stored with it, `Nats-Msg-Id` as its
// id, the `Nats-Expected-*` headers taken out as checks, the other headers as loft headers by
// include/loft/nats/headers.hpp's rule), and a stored message gets its NATS header block back
// (with `Nats-Msg-Id` when it has an id). Shared by the stream side (publish, MSG.GET) and the
// consumer side (deliveries).

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "loft/common/message.hpp"
#include "loft/nats/error.hpp"

namespace loft::natsport::js {

inline constexpr std::string_view kMsgIdHeader = "Nats-Msg-Id";
inline constexpr std::string_view kExpectedStream = "Nats-Expected-Stream";
inline constexpr std::string_view kExpectedLastSequence = "Nats-Expected-Last-Sequence";
inline constexpr std::string_view kExpectedLastMsgId = "Nats-Expected-Last-Msg-Id";
inline constexpr std::string_view kExpectedLastSubjectSequence =
    "Nats-Expected-Last-Subject-Sequence";

// The Nats-Expected-* checks of a publish (nullopt: not asked).
struct Expectations {
  std::optional<std::string> stream;
  std::optional<std::uint64_t> last_sequence;
  std::optional<std::string> last_msg_id;
  std::optional<std::uint64_t> last_subject_sequence;
  bool any() const { return stream || last_sequence || last_msg_id || last_subject_sequence; }
};

struct Incoming {
  Message message;
  Expectations expect;
};

// A captured PUB/HPUB as a loft message. Errors: bad_header (a block that does not parse, or an
// expected sequence that is not a number).
nats::Result<Incoming> incoming_message(std::string_view subject, std::string_view header_block,
                                        std::string_view payload);

// The NATS header block of a stored message: `Nats-Msg-Id` (its id, if any) then its headers;
// empty when it has neither.
std::string nats_header_block(std::string_view id, std::span<const Header> headers);
std::string nats_header_block(std::string_view id, std::span<const HeaderView> headers);

}  // namespace loft::natsport::js
