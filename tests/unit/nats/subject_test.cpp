// Subjects: validation, wildcard matching, and the subscription index against brute force.

#include "loft/nats/subject.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace loft::nats {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

SubscriberHandle h(std::uint64_t n) { return SubscriberHandle{n}; }

TEST(NatsSubject, Validation) {
  for (const char* s : {"a", "orders.eu", "a.b.c", "a*b.c>", "$JS.API.INFO", "_INBOX.x-1"}) {
    EXPECT_TRUE(is_valid_publish_subject(s)) << s;
    EXPECT_TRUE(is_valid_subscription_subject(s)) << s;
  }
  for (const char* s : {"*", ">", "a.*", "a.>", "*.b.>", "a.*.c"}) {
    EXPECT_FALSE(is_valid_publish_subject(s)) << s;
    EXPECT_TRUE(is_valid_subscription_subject(s)) << s;
  }
  for (const char* s :
       {"", ".", "a.", ".a", "a..b", "a b", "a\tb", "a\r", "a\nb", ">.a", "a.>.b", "a.b c.d"}) {
    EXPECT_FALSE(is_valid_publish_subject(s)) << s;
    EXPECT_FALSE(is_valid_subscription_subject(s)) << s;
  }
  EXPECT_TRUE(is_valid_queue_group("workers"));
  EXPECT_FALSE(is_valid_queue_group(""));
  EXPECT_FALSE(is_valid_queue_group("a b"));
}

TEST(NatsSubject, Matches) {
  EXPECT_TRUE(subject_matches("a.b", "a.b"));
  EXPECT_FALSE(subject_matches("a.b", "a.c"));
  EXPECT_FALSE(subject_matches("a.b", "a.b.c"));
  EXPECT_FALSE(subject_matches("a.b.c", "a.b"));
  EXPECT_TRUE(subject_matches("a.*", "a.b"));
  EXPECT_FALSE(subject_matches("a.*", "a"));
  EXPECT_FALSE(subject_matches("a.*", "a.b.c"));
  EXPECT_TRUE(subject_matches("*.b", "a.b"));
  EXPECT_TRUE(subject_matches("a.>", "a.b"));
  EXPECT_TRUE(subject_matches("a.>", "a.b.c"));
  EXPECT_FALSE(subject_matches("a.>", "a"));
  EXPECT_TRUE(subject_matches(">", "a"));
  EXPECT_TRUE(subject_matches("*.*.>", "a.b.c"));
  EXPECT_FALSE(subject_matches("*.*.>", "a.b"));
  EXPECT_FALSE(subject_matches("a*", "ab"));  // '*' inside a token is literal
}

TEST(NatsSubscriptionIndex, PlainAndQueueSubscribers) {
  SubscriptionIndex index;
  ASSERT_TRUE(index.insert("orders.eu", "", h(1)));
  ASSERT_TRUE(index.insert("orders.*", "", h(2)));
  ASSERT_TRUE(index.insert("orders.>", "workers", h(3)));
  ASSERT_TRUE(index.insert("orders.eu", "workers", h(4)));
  ASSERT_TRUE(index.insert("orders.eu", "audit", h(5)));
  ASSERT_TRUE(index.insert("other", "", h(6)));
  EXPECT_EQ(index.size(), 6u);

  const MatchResult r = index.match("orders.eu");
  EXPECT_THAT(r.plain, UnorderedElementsAre(h(1), h(2)));
  ASSERT_EQ(r.queues.size(), 2u);
  std::map<std::string, std::vector<SubscriberHandle>> groups;
  for (const auto& q : r.queues) groups[std::string(q.group)] = q.members;
  // One group "workers" across both subjects: the caller picks one of its two members.
  EXPECT_THAT(groups["workers"], UnorderedElementsAre(h(3), h(4)));
  EXPECT_THAT(groups["audit"], ElementsAre(h(5)));

  const MatchResult deep = index.match("orders.eu.de");
  EXPECT_THAT(deep.plain, IsEmpty());
  ASSERT_EQ(deep.queues.size(), 1u);
  EXPECT_THAT(deep.queues[0].members, ElementsAre(h(3)));
  EXPECT_THAT(index.match("orders").plain, IsEmpty());
  EXPECT_THAT(index.match("nothing").queues, IsEmpty());
}

TEST(NatsSubscriptionIndex, RemoveUndoesInsertAndPrunes) {
  SubscriptionIndex index;
  ASSERT_TRUE(index.insert("a.b.c", "", h(1)));
  ASSERT_TRUE(index.insert("a.*.c", "q", h(2)));
  ASSERT_TRUE(index.insert("a.>", "", h(3)));
  EXPECT_FALSE(index.remove("a.b.c", "", h(2)));   // another handle
  EXPECT_FALSE(index.remove("a.b.c", "q", h(1)));  // another group
  EXPECT_FALSE(index.remove("a.b", "", h(1)));     // another subject
  EXPECT_FALSE(index.remove("a..b", "", h(1)));    // invalid
  EXPECT_TRUE(index.remove("a.b.c", "", h(1)));
  EXPECT_FALSE(index.remove("a.b.c", "", h(1)));
  EXPECT_TRUE(index.remove("a.*.c", "q", h(2)));
  EXPECT_TRUE(index.remove("a.>", "", h(3)));
  EXPECT_EQ(index.size(), 0u);
  const MatchResult r = index.match("a.b.c");
  EXPECT_THAT(r.plain, IsEmpty());
  EXPECT_THAT(r.queues, IsEmpty());
}

TEST(NatsSubscriptionIndex, RefusesInvalidSubjects) {
  SubscriptionIndex index;
  for (const char* s : {"", "a..b", "a.>.b", "a b"}) {
    const auto r = index.insert(s, "", h(1));
    ASSERT_FALSE(r.has_value()) << s;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_subject);
    EXPECT_EQ(r.error().text(), "Invalid Subject");
  }
  EXPECT_FALSE(index.insert("a", "bad group", h(1)).has_value());
  EXPECT_EQ(index.size(), 0u);
}

TEST(NatsSubscriptionIndex, SameHandleTwiceIsTwoSubscriptions) {
  SubscriptionIndex index;
  ASSERT_TRUE(index.insert("a", "", h(1)));
  ASSERT_TRUE(index.insert("a", "", h(1)));
  EXPECT_THAT(index.match("a").plain, ElementsAre(h(1), h(1)));
  EXPECT_TRUE(index.remove("a", "", h(1)));
  EXPECT_THAT(index.match("a").plain, ElementsAre(h(1)));
}

// Random subscriptions over a small alphabet of tokens, inserted and removed at random,
// checked after every step against subject_matches over the list of live subscriptions.
TEST(NatsSubscriptionIndex, AgreesWithBruteForce) {
  std::mt19937 rng{2026};
  const std::vector<std::string> tokens{"a", "b", "c"};
  const auto random_subject = [&](bool wildcards) {
    std::string s;
    const std::size_t n = 1 + rng() % 4;
    for (std::size_t i = 0; i < n; ++i) {
      if (i > 0) s += '.';
      const auto pick = rng() % 10;
      if (wildcards && pick == 0) {
        s += '*';
      } else if (wildcards && pick == 1 && i + 1 == n) {
        s += '>';
      } else {
        s += tokens[rng() % tokens.size()];
      }
    }
    return s;
  };
  struct Live {
    std::string subject;
    std::string queue;
    SubscriberHandle handle;
  };
  std::vector<Live> live;
  SubscriptionIndex index;
  MatchResult result;
  std::uint64_t next_handle = 1;
  for (int step = 0; step < 1000; ++step) {
    // Grow to a few hundred subscriptions, then insert and remove alike.
    if (live.empty() || step < 200 || rng() % 2 == 0) {
      Live l{random_subject(true), rng() % 3 == 0 ? std::string(1, "xy"[rng() % 2]) : "",
             h(next_handle++)};
      ASSERT_TRUE(index.insert(l.subject, l.queue, l.handle));
      live.push_back(l);
    } else {
      const std::size_t at = rng() % live.size();
      ASSERT_TRUE(index.remove(live[at].subject, live[at].queue, live[at].handle));
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(at));
    }
    ASSERT_EQ(index.size(), live.size());
    const std::string subject = random_subject(false);
    std::vector<SubscriberHandle> plain;
    std::map<std::string, std::vector<SubscriberHandle>> queues;
    for (const auto& l : live) {
      if (!subject_matches(l.subject, subject)) continue;
      if (l.queue.empty()) {
        plain.push_back(l.handle);
      } else {
        queues[l.queue].push_back(l.handle);
      }
    }
    index.match(subject, result);
    auto got_plain = result.plain;
    std::sort(got_plain.begin(), got_plain.end());
    std::sort(plain.begin(), plain.end());
    ASSERT_EQ(got_plain, plain) << "step " << step << " subject " << subject;
    std::map<std::string, std::vector<SubscriberHandle>> got_queues;
    for (const auto& q : result.queues) {
      auto members = q.members;
      std::sort(members.begin(), members.end());
      ASSERT_TRUE(got_queues.emplace(std::string(q.group), members).second) << "group twice";
    }
    for (auto& [group, members] : queues) std::sort(members.begin(), members.end());
    ASSERT_EQ(got_queues, queues) << "step " << step << " subject " << subject;
  }
}

}  // namespace
}  // namespace loft::nats
