#pragma once
// The ack-floor rule, in one place: how marking one offset done moves a group's ack floor and
// its runs of done offsets above it. GroupState applies it to its live state, and the broker
// to a progress record it is about to write (a dead letter's original, retired in the same
// write as its dead-letter append), so both always agree.

#include <cstdint>
#include <map>

#include "loft/common/ids.hpp"

namespace loft::delivery {

// Done offsets above a floor, as runs first -> end ([first, end)): disjoint, non-adjacent,
// none starting at or below the floor (such a run is folded into the floor).
using DoneRuns = std::map<std::uint64_t, std::uint64_t>;

// Marks `offset` done: the floor moves past it (and past a run that then touches the floor)
// if it is the floor, otherwise it joins or extends the runs, merging neighbours. An offset
// below the floor or already done changes nothing.
void mark_done(Offset& floor, DoneRuns& runs, Offset offset);

// Whether `offset` is below the floor or in one of the runs.
bool is_done(Offset floor, const DoneRuns& runs, Offset offset);

}  // namespace loft::delivery
