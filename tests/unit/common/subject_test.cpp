// Subjects as loft's broker uses them (publish validation, group filters). The NATS library's
// API forwards to these; tests/unit/nats/subject_test.cpp covers it through that API.

#include "loft/common/subject.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace loft {
namespace {

TEST(Subject, PublishSubjectsHaveNoWildcardTokensAndFiltersMayEndInGreaterThan) {
  struct Case {
    const char* text;
    bool publish;  // a valid publish subject
    bool filter;   // a valid filter
  };
  for (const auto& c : std::vector<Case>{{"orders.eu.new", true, true},
                                         {"x", true, true},
                                         {"a*b.c>.$d", true, true},
                                         {"orders.*.new", false, true},
                                         {"orders.>", false, true},
                                         {">", false, true},
                                         {"*.*", false, true},
                                         {"", false, false},
                                         {"orders..eu", false, false},
                                         {"orders.", false, false},
                                         {".orders", false, false},
                                         {"orders.>.eu", false, false},
                                         {"orders eu", false, false},
                                         {"orders\teu", false, false},
                                         {"orders\r\n", false, false}}) {
    EXPECT_EQ(is_valid_publish_subject(c.text), c.publish) << c.text;
    EXPECT_EQ(is_valid_filter_subject(c.text), c.filter) << c.text;
  }
}

TEST(Subject, MatchesTokenByToken) {
  const std::vector<std::pair<const char*, const char*>> match{{"orders.eu", "orders.eu"},
                                                               {"orders.*", "orders.eu"},
                                                               {"*.eu.*", "orders.eu.new"},
                                                               {"orders.>", "orders.eu.new"},
                                                               {">", "orders"}};
  for (const auto& [filter, subject] : match) {
    EXPECT_TRUE(subject_matches(filter, subject)) << filter << " " << subject;
  }
  const std::vector<std::pair<const char*, const char*>> no_match{
      {"orders.eu", "orders.eu.new"}, {"orders.eu.new", "orders.eu"}, {"orders.*", "orders"},
      {"orders.*", "orders.eu.new"},  {"orders.>", "orders"},         {"ord*", "orders"}};
  for (const auto& [filter, subject] : no_match) {
    EXPECT_FALSE(subject_matches(filter, subject)) << filter << " " << subject;
  }
  // A topic name stands in for a missing subject; names like "a..b" are not subjects, but a
  // match against one is still defined (token by token) and never reads out of bounds.
  EXPECT_TRUE(subject_matches("a.*.b", "a..b"));
  EXPECT_FALSE(subject_matches("a.b", "a..b"));
}

// Two filters overlap when some publish subject matches both; checked both ways round, and
// against a witness: for each overlapping pair, a subject the test builds matches both.
TEST(Subject, FiltersOverlapWhenSomeSubjectMatchesBoth) {
  struct Case {
    const char* a;
    const char* b;
    const char* witness;  // a subject both match; nullptr when they do not overlap
  };
  for (const auto& c : std::vector<Case>{
           {"orders.eu", "orders.eu", "orders.eu"},
           {"orders.*", "orders.eu", "orders.eu"},
           {"orders.*", "*.eu", "orders.eu"},
           {"orders.>", "orders.eu.new", "orders.eu.new"},
           {"orders.>", "*.*.*", "orders.x.y"},
           {">", "a", "a"},
           {">", "a.*.c", "a.b.c"},
           {"a.*.c", "a.b.*", "a.b.c"},
           {"*.>", "a.>", "a.b"},
           {"a.>", "a.*", "a.b"},
           {"orders.eu", "orders.us", nullptr},
           {"orders.*", "orders", nullptr},
           {"orders.>", "orders", nullptr},
           {"orders.*", "orders.eu.new", nullptr},
           {"a.*.c", "a.b.d", nullptr},
           {"*.*", "*", nullptr},
           {"*.*", "*.*.>", nullptr},
           {"a.>", "b.>", nullptr},
           {"ord*", "orders", nullptr},
       }) {
    const bool expect = c.witness != nullptr;
    EXPECT_EQ(subject_filters_overlap(c.a, c.b), expect) << c.a << " / " << c.b;
    EXPECT_EQ(subject_filters_overlap(c.b, c.a), expect) << c.b << " / " << c.a;
    if (expect) {
      EXPECT_TRUE(subject_matches(c.a, c.witness) && subject_matches(c.b, c.witness)) << c.witness;
    }
  }
}

TEST(Subject, TokensSplitAtEveryDot) {
  std::vector<std::string> got;
  for (SubjectTokens t{"a..b.c"}; !t.done;) got.emplace_back(t.next());
  EXPECT_EQ(got, (std::vector<std::string>{"a", "", "b", "c"}));
  SubjectTokens empty{""};
  EXPECT_EQ(empty.next(), "");
  EXPECT_TRUE(empty.done);
}

}  // namespace
}  // namespace loft
