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
