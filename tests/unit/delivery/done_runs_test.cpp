#include "loft/delivery/done_runs.hpp"

#include <gtest/gtest.h>

namespace loft::delivery {
namespace {

struct Progress {
  Offset floor{10};
  DoneRuns runs;
  void mark(std::uint64_t o) { mark_done(floor, runs, Offset{o}); }
};

TEST(DoneRuns, TheFloorMovesOverConsecutiveOffsets) {
  Progress p;
  p.mark(10);
  p.mark(11);
  EXPECT_EQ(p.floor, Offset{12});
  EXPECT_TRUE(p.runs.empty());
}

TEST(DoneRuns, OffsetsAboveTheFloorFormRunsThatMerge) {
  Progress p;
  p.mark(15);
  EXPECT_EQ(p.runs, (DoneRuns{{15, 16}}));
  p.mark(17);  // a second run
  EXPECT_EQ(p.runs, (DoneRuns{{15, 16}, {17, 18}}));
  p.mark(16);  // joins both
  EXPECT_EQ(p.runs, (DoneRuns{{15, 18}}));
  p.mark(14);  // extends a run downwards
  EXPECT_EQ(p.runs, (DoneRuns{{14, 18}}));
  p.mark(18);  // extends a run upwards
  EXPECT_EQ(p.runs, (DoneRuns{{14, 19}}));
  EXPECT_EQ(p.floor, Offset{10});
}

TEST(DoneRuns, ReachingARunFoldsItIntoTheFloor) {
  Progress p;
  p.mark(12);
  p.mark(13);
  p.mark(11);
  EXPECT_EQ(p.floor, Offset{10});
  EXPECT_EQ(p.runs, (DoneRuns{{11, 14}}));
  p.mark(10);
  EXPECT_EQ(p.floor, Offset{14});
  EXPECT_TRUE(p.runs.empty());
}

TEST(DoneRuns, DoneOrBelowTheFloorChangesNothing) {
  Progress p;
  p.mark(12);
  p.mark(9);   // below the floor
  p.mark(12);  // already done
  EXPECT_EQ(p.floor, Offset{10});
  EXPECT_EQ(p.runs, (DoneRuns{{12, 13}}));
}

TEST(DoneRuns, IsDoneBelowTheFloorAndInRunsOnly) {
  Progress p;
  p.mark(12);
  p.mark(13);
  EXPECT_TRUE(is_done(p.floor, p.runs, Offset{0}));
  EXPECT_TRUE(is_done(p.floor, p.runs, Offset{9}));
  EXPECT_FALSE(is_done(p.floor, p.runs, Offset{10}));
  EXPECT_FALSE(is_done(p.floor, p.runs, Offset{11}));
  EXPECT_TRUE(is_done(p.floor, p.runs, Offset{12}));
  EXPECT_TRUE(is_done(p.floor, p.runs, Offset{13}));
  EXPECT_FALSE(is_done(p.floor, p.runs, Offset{14}));
}

}  // namespace
}  // namespace loft::delivery
