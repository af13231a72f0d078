#pragma once
// Frames with non-trivial contents, at least one of every Body alternative, shared by the
// protocol tests.

#include <string>
#include <string_view>
#include <vector>

#include "loft/protocol/frames.hpp"

namespace loft::protocol::testing {

// Frames of the newest protocol version: messages with subjects and delivery times, group
// configs with filters, among others.
std::vector<Frame> sample_frames();
// `frame` as a version 3 round trip gives it back: without a publish's delay, messages'
// deliver_at_ms and topics' scheduled counts, which versions before 4 have no field for.
Frame as_version_3(Frame frame);
// `frame` as a version 1 round trip gives it back: without message subjects and group filters,
// which version 1 has no field for (nor for what as_version_3 drops).
Frame as_version_1(Frame frame);

// "0a ff 00" -> bytes; whitespace is ignored.
std::string from_hex(std::string_view hex);
std::string to_hex(std::string_view bytes);

}  // namespace loft::protocol::testing
