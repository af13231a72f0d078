#pragma once
// Frames with non-trivial contents, at least one of every Body alternative, shared by the
// protocol tests.

#include <string>
#include <string_view>
#include <vector>

#include "loft/protocol/frames.hpp"

namespace loft::protocol::testing {

std::vector<Frame> sample_frames();

// "0a ff 00" -> bytes; whitespace is ignored.
std::string from_hex(std::string_view hex);
std::string to_hex(std::string_view bytes);

}  // namespace loft::protocol::testing
