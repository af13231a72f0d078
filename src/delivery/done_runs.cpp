// The ack-floor rule (see done_runs.hpp).

#include "loft/delivery/done_runs.hpp"

#include <iterator>

namespace loft::delivery {

bool is_done(Offset floor, const DoneRuns& runs, Offset offset) {
  if (offset < floor) return true;
  auto it = runs.upper_bound(offset.value);
  if (it == runs.begin()) return false;
  return offset.value < std::prev(it)->second;
}

void mark_done(Offset& floor, DoneRuns& runs, Offset offset) {
  if (is_done(floor, runs, offset)) return;
  const auto o = offset.value;
  if (offset == floor) {
    floor = Offset{o + 1};
    if (auto it = runs.find(floor.value); it != runs.end()) {
      floor = Offset{it->second};
      runs.erase(it);
    }
    return;
  }
  auto after = runs.find(o + 1);
  auto it = runs.upper_bound(o);
  if (it != runs.begin()) {
    auto prev = std::prev(it);
    if (prev->second == o) {  // extends the run before it
      prev->second = o + 1;
      if (after != runs.end()) {
        prev->second = after->second;
        runs.erase(after);
      }
      return;
    }
  }
  if (after != runs.end()) {  // extends the run after it downwards
    const auto end = after->second;
    runs.erase(after);
    runs.emplace(o, end);
    return;
  }
  runs.emplace(o, o + 1);
}

}  // namespace loft::delivery
