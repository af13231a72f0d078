// Subjects as loft's broker uses them (publish validation, group filters). The NATS library's
// API forwards to these; tests/unit/nats/subject_test.cpp covers it through that API.

#include "loft/common/subject.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace loft {
namespace {

TEST(Subject, PublishSubjectsHaveNoWildcardTokensAndFiltersMayEndInGreaterThan) {
  for (const char* s : {"a", "orders.eu", "a.b.c", "a*b.c>", "$JS.API.INFO", "x-1_y"}) {
    EXPECT_TRUE(is_valid_publish_subject(s)) << s;
    EXPECT_TRUE(is_valid_filter_subject(s)) << s;
  }
  for (const char* s : {"*", ">", "a.*", "a.>", "*.b.>", "a.*.c"}) {
    EXPECT_FALSE(is_valid_publish_subject(s)) << s;
    EXPECT_TRUE(is_valid_filter_subject(s)) << s;
  }
  for (const char* s :
       {"", ".", "a.", ".a", "a..b", "a b", "a\tb", "a\r", "a\nb", ">.a", "a.>.b"}) {
    EXPECT_FALSE(is_valid_publish_subject(s)) << s;
    EXPECT_FALSE(is_valid_filter_subject(s)) << s;
  }
}

TEST(Subject, MatchesTokenByToken) {
  EXPECT_TRUE(subject_matches("a.b", "a.b"));
  EXPECT_FALSE(subject_matches("a.b", "a.b.c"));
  EXPECT_FALSE(subject_matches("a.b.c", "a.b"));
  EXPECT_TRUE(subject_matches("a.*", "a.b"));
  EXPECT_FALSE(subject_matches("a.*", "a"));
  EXPECT_FALSE(subject_matches("a.*", "a.b.c"));
  EXPECT_TRUE(subject_matches("*.b", "a.b"));
  EXPECT_TRUE(subject_matches("a.>", "a.b.c"));
  EXPECT_FALSE(subject_matches("a.>", "a"));
  EXPECT_TRUE(subject_matches(">", "orders"));
  EXPECT_FALSE(subject_matches("a*", "ab"));  // '*' inside a token is an ordinary character
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
