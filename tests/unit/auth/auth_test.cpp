// The auth module: topic patterns, permissions, the users file, password hashes, SASL PLAIN and
// the Authenticator. Argon2id at its INTERACTIVE cost takes tens of milliseconds and 64 MiB per
// hash, more under the sanitizers: the hashes are made once for the whole executable.

#include "loft/auth/auth.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sodium.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "loft/auth/login_limits.hpp"

namespace loft::auth {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::string_view kPassword = "correct horse battery staple";
constexpr std::string_view kOtherPassword = "a different one";

// Made once: hashing is the slow part of this suite.
const std::string& hash_of_password() {
  static const std::string h = hash_password(kPassword).value();
  return h;
}
const std::string& hash_of_other_password() {
  static const std::string h = hash_password(kOtherPassword).value();
  return h;
}

TopicPattern pattern(std::string_view text) { return TopicPattern::parse(text).value(); }

std::vector<TopicPattern> patterns(std::initializer_list<std::string_view> texts) {
  std::vector<TopicPattern> out;
  for (const auto t : texts) out.push_back(pattern(t));
  return out;
}

// ---- Topic patterns -------------------------------------------------------------------------

TEST(TopicPattern, MatchesAsDocumented) {
  struct Case {
    std::string_view pattern;
    std::string_view topic;
    bool matches;
  };
  const Case cases[] = {
      {"orders", "orders", true},
      {"orders", "orders2", false},
      {"orders", "order", false},
      {"orders", "", false},
      {"*", "anything.at_all-9", true},
      {"*", "", true},
      {"orders.*", "orders.eu", true},
      {"orders.*", "orders.eu.x", true},
      {"orders.*", "orders.", true},
      {"orders.*", "orders", false},
      {"orders.*", "invoices.eu", false},
      {"*.eu", "orders.eu", true},
      {"*.eu", "a.b.eu", true},
      {"*.eu", "orders.eu.x", false},
      {"*.eu", "eu", false},
      {"a*b*c", "abc", true},
      {"a*b*c", "aXbYc", true},
      {"a*b*c", "abbbcc", true},
      {"a*b*c", "acb", false},
      {"a*b*c", "abcd", false},
      {"a**b", "ab", true},
      {"*a*", "bab", true},
      {"*a*", "bbb", false},
      {"ab*ba", "aba", false},  // head and tail may not share a byte
      {"ab*ba", "abba", true},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(pattern(c.pattern).matches(c.topic), c.matches)
        << "'" << c.pattern << "' against '" << c.topic << "'";
  }
}

// A backtracking matcher needs exponential time here; this one answers at once. No timing is
// asserted (the ctest timeout would catch a hang); the many calls make a slow matcher obvious.
TEST(TopicPattern, PathologicalPatternIsFast) {
  const auto p = pattern("*a*a*a*a*a*a*a*a*a*a*b");
  const std::string topic(249, 'a');
  for (int i = 0; i < 1000; ++i) ASSERT_FALSE(p.matches(topic));
  EXPECT_TRUE(p.matches(topic.substr(0, 248) + "b"));
}

TEST(TopicPattern, RejectsBadPatterns) {
  EXPECT_EQ(TopicPattern::parse("").error().code, Errc::invalid_request);
  EXPECT_TRUE(TopicPattern::parse(std::string(249, 'x')).has_value());
  const auto too_long = TopicPattern::parse(std::string(250, 'x'));
  ASSERT_FALSE(too_long);
  EXPECT_THAT(too_long.error().detail, HasSubstr("249"));
  for (const auto bad : {"orders/eu", "orders eu", "?", "orders.#", "a\nb"}) {
    const auto r = TopicPattern::parse(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_THAT(r.error().detail, HasSubstr("may only contain")) << bad;
  }
}

// ---- Permissions ----------------------------------------------------------------------------

TEST(Permissions, AllowListsPerOperationAndDenyWins) {
  Permissions p;
  p.publish = patterns({"invoices", "orders.*"});
  p.subscribe = patterns({"orders.*"});
  p.deny = patterns({"orders.secret"});
  EXPECT_TRUE(p.allows(Operation::publish, "invoices"));
  EXPECT_TRUE(p.allows(Operation::publish, "orders.eu"));
  EXPECT_FALSE(p.allows(Operation::subscribe, "invoices"));
  EXPECT_TRUE(p.allows(Operation::subscribe, "orders.eu"));
  EXPECT_FALSE(p.allows(Operation::admin, "orders.eu"));
  EXPECT_FALSE(p.allows(Operation::publish, "orders.secret"));
  EXPECT_FALSE(p.allows(Operation::subscribe, "orders.secret"));
  EXPECT_FALSE(p.allows(Operation::publish, "other"));

  p.admin = patterns({"*"});
  EXPECT_TRUE(p.allows(Operation::admin, "anything"));
  EXPECT_FALSE(p.allows(Operation::admin, "orders.secret"));
}

TEST(Permissions, MaySeeAnyAllowedTopicButNoDeniedOne) {
  Permissions p;
  p.publish = patterns({"invoices"});
  p.subscribe = patterns({"orders.*"});
  p.admin = patterns({"admin.*"});
  p.deny = patterns({"orders.secret"});
  EXPECT_TRUE(p.may_see("invoices"));
  EXPECT_TRUE(p.may_see("orders.eu"));
  EXPECT_TRUE(p.may_see("admin.x"));
  EXPECT_FALSE(p.may_see("orders.secret"));
  EXPECT_FALSE(p.may_see("payroll"));
  EXPECT_FALSE(Permissions{}.may_see("invoices"));
}

TEST(Permissions, AllowsAllNeedsStarAndNoDeny) {
  Permissions p;
  EXPECT_FALSE(p.allows_all(Operation::admin));
  p.admin = patterns({"orders.*"});
  EXPECT_FALSE(p.allows_all(Operation::admin));
  p.admin = patterns({"orders.*", "*"});
  EXPECT_TRUE(p.allows_all(Operation::admin));
  EXPECT_FALSE(p.allows_all(Operation::publish));
  p.deny = patterns({"payroll"});
  EXPECT_FALSE(p.allows_all(Operation::admin));
}

TEST(Operation, Names) {
  EXPECT_EQ(to_string(Operation::publish), "publish");
  EXPECT_EQ(to_string(Operation::subscribe), "subscribe");
  EXPECT_EQ(to_string(Operation::admin), "admin");
}

// ---- The users file -------------------------------------------------------------------------

TEST(Users, ParsesTheDocumentedShape) {
  const std::string text = R"(
[[users]]
name = "billing"
password_hash = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA"
publish = ["invoices", "orders.*"]
subscribe = ["orders.*"]
admin = []
deny = ["orders.secret"]

[[users]]
name = "backup"
password_hash = "$7$C6..../....salt$hash"
admin = ["*"]

[[users]]
name = "CN=service.example"
subscribe = ["*"]
)";
  const auto users = Users::parse(text, "users.toml");
  ASSERT_TRUE(users) << users.error().detail;
  ASSERT_EQ(users->all().size(), 3u);
  const User* billing = users->find("billing");
  ASSERT_NE(billing, nullptr);
  EXPECT_EQ(billing->password_hash, "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA");
  EXPECT_EQ(billing->permissions.publish, patterns({"invoices", "orders.*"}));
  EXPECT_EQ(billing->permissions.subscribe, patterns({"orders.*"}));
  EXPECT_TRUE(billing->permissions.admin.empty());
  EXPECT_EQ(billing->permissions.deny, patterns({"orders.secret"}));
  EXPECT_TRUE(users->find("backup")->permissions.allows_all(Operation::admin));
  EXPECT_EQ(users->find("CN=service.example")->password_hash, "");
  EXPECT_EQ(users->find("nobody"), nullptr);

  const auto empty = Users::parse("", "users.toml");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

// Each kind of mistake: an error naming the file, the user (number and name) and the field.
TEST(Users, RejectsEachKindOfMistakeNamingWhere) {
  struct Case {
    std::string toml;
    std::vector<std::string> detail_has;
  };
  const std::string ok_user = "[[users]]\nname = \"ok\"\n";
  const std::vector<Case> cases = {
      {"[[users]\n", {"users.toml:1:", "TOML syntax error"}},
      {"listen = \"x\"\n", {"users.toml", "unknown key 'listen'"}},
      {"users = 1\n", {"users.toml", "array of tables"}},
      {"users = [1]\n", {"users.toml", "user 1", "must be a table"}},
      {ok_user + "[[users]]\npublish = [\"a\"]\n", {"users.toml", "user 2", "'name'", "missing"}},
      {"[[users]]\nname = \"\"\n", {"user 1", "'name'", "empty"}},
      {"[[users]]\nname = 7\n", {"user 1", "'name'", "string"}},
      {"[[users]]\nname = \"a\\u0000b\"\n", {"user 1", "'name'", "control"}},
      {"[[users]]\nname = \"" + std::string(256, 'n') + "\"\n", {"user 1", "'name'", "255"}},
      {ok_user + ok_user, {"users.toml:4:", "user 2 ('ok')", "'name'", "earlier user"}},
      {ok_user + "pasword_hash = \"$argon2id$x\"\n",
       {"users.toml:3:", "user 1 ('ok')", "'pasword_hash'", "unknown field"}},
      {ok_user + "password_hash = \"secret\"\n", {"user 1 ('ok')", "'password_hash'", "Argon2id"}},
      {ok_user + "password_hash = 1\n", {"user 1 ('ok')", "'password_hash'", "string"}},
      {ok_user + "password_hash = \"$7$" + std::string(200, 'x') + "\"\n",
       {"user 1 ('ok')", "'password_hash'", "well-formed"}},
      {ok_user + "publish = \"orders\"\n", {"user 1 ('ok')", "'publish'", "array"}},
      {ok_user + "subscribe = [1]\n", {"user 1 ('ok')", "'subscribe'", "string"}},
      {ok_user + "admin = [\"\"]\n", {"user 1 ('ok')", "'admin'", "empty"}},
      {ok_user + "deny = [\"orders/x\"]\n", {"user 1 ('ok')", "'deny'", "may only contain"}},
  };
  for (const auto& c : cases) {
    const auto r = Users::parse(c.toml, "users.toml");
    ASSERT_FALSE(r) << c.toml;
    EXPECT_EQ(r.error().code, Errc::invalid_request);
    for (const auto& part : c.detail_has) {
      EXPECT_THAT(r.error().detail, HasSubstr(part)) << c.toml;
    }
  }
  // The hash in a bad password_hash is not repeated: it may be a password pasted by mistake.
  const auto r = Users::parse(ok_user + "password_hash = \"hunter2\"\n", "users.toml");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().detail, Not(HasSubstr("hunter2")));
}

TEST(Users, LoadReportsAMissingFile) {
  const auto r = Users::load("/nonexistent/loft-users.toml");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().detail, HasSubstr("/nonexistent/loft-users.toml"));
}

// ---- Password hashes ------------------------------------------------------------------------

TEST(Password, HashVerifiesItsPasswordOnly) {
  const auto& hash = hash_of_password();
  EXPECT_EQ(hash.rfind("$argon2id$", 0), 0u) << hash;
  EXPECT_TRUE(verify_password(hash, kPassword));
  EXPECT_FALSE(verify_password(hash, kOtherPassword));
  EXPECT_NE(hash, hash_of_other_password());
}

TEST(Password, VerifiesScryptHashes) {
  ASSERT_GE(sodium_init(), 0);
  char out[crypto_pwhash_scryptsalsa208sha256_STRBYTES];
  ASSERT_EQ(crypto_pwhash_scryptsalsa208sha256_str(
                out, kPassword.data(), kPassword.size(),
                crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_INTERACTIVE,
                crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_INTERACTIVE),
            0);
  const std::string hash(out);
  EXPECT_EQ(hash.rfind("$7$", 0), 0u) << hash;
  EXPECT_TRUE(verify_password(hash, kPassword));
  EXPECT_FALSE(verify_password(hash, kOtherPassword));
  // A scrypt hash is a valid users-file hash too.
  EXPECT_TRUE(Users::parse("[[users]]\nname = \"u\"\npassword_hash = \"" + hash + "\"\n", "f"));
}

TEST(Password, MalformedHashesVerifyNothing) {
  EXPECT_FALSE(verify_password("", kPassword));
  EXPECT_FALSE(verify_password("plain", "plain"));
  EXPECT_FALSE(verify_password("$argon2id$", kPassword));
  EXPECT_FALSE(verify_password("$7$", kPassword));
  EXPECT_FALSE(verify_password(std::string("$argon2id$") + std::string(300, 'x'), kPassword));
  std::string with_nul = hash_of_password();
  with_nul.insert(12, 1, '\0');
  EXPECT_FALSE(verify_password(with_nul, kPassword));
}

// ---- SASL PLAIN -----------------------------------------------------------------------------

TEST(Plain, EncodeAndParseRoundTrip) {
  const std::string wire = encode_plain("billing", "s3cret");
  EXPECT_EQ(wire, std::string("\0billing\0s3cret", 15));
  const auto c = parse_plain(wire);
  ASSERT_TRUE(c) << c.error().detail;
  EXPECT_EQ(c->user, "billing");
  EXPECT_EQ(c->password, "s3cret");

  const auto same = parse_plain(std::string("billing\0billing\0s3cret", 22));
  ASSERT_TRUE(same);
  EXPECT_EQ(same->user, "billing");

  const auto longest =
      parse_plain(encode_plain(std::string(kMaxUserName, 'u'), std::string(kMaxPassword, 'p')));
  EXPECT_TRUE(longest);
}

TEST(Plain, RejectsMalformedPayloadsWithoutEchoingThePassword) {
  const std::string pw = "TopSecret42";
  const std::vector<std::string> bad = {
      "",
      pw,
      std::string("billing\0", 8) + pw,                            // one NUL
      std::string("\0billing\0", 9) + pw + std::string("\0x", 2),  // three NULs
      std::string("\0\0", 2) + pw,                                 // empty user
      std::string("\0billing\0", 9),                               // empty password
      std::string("other\0billing\0", 14) + pw,                    // acting as another user
      std::string("\0", 1) + std::string(kMaxUserName + 1, 'u') + std::string("\0", 1) + pw,
      encode_plain("billing", pw + std::string(kMaxPassword, 'p')),
  };
  for (const auto& payload : bad) {
    const auto r = parse_plain(payload);
    ASSERT_FALSE(r) << payload.size();
    EXPECT_EQ(r.error().code, Errc::invalid_request);
    EXPECT_FALSE(r.error().detail.empty());
    EXPECT_THAT(r.error().detail, Not(HasSubstr(pw)));
  }
}

// ---- Authenticator --------------------------------------------------------------------------

std::shared_ptr<const Users> users_with(const std::string& hash) {
  const std::string toml = "[[users]]\nname = \"billing\"\npassword_hash = \"" + hash +
                           "\"\npublish = [\"orders.*\"]\n"
                           "[[users]]\nname = \"cert-only\"\nsubscribe = [\"*\"]\n";
  return std::make_shared<const Users>(Users::parse(toml, "users.toml").value());
}

TEST(Authenticator, AcceptsTheRightPasswordAndRemembersIt) {
  Authenticator auth(users_with(hash_of_password()));
  const auto first = auth.verify("billing", kPassword);
  ASSERT_TRUE(first) << first.error().detail;
  EXPECT_EQ((*first)->name, "billing");
  EXPECT_TRUE((*first)->permissions.allows(Operation::publish, "orders.eu"));
  const auto again = auth.verify("billing", kPassword);  // remembered: no hash this time
  ASSERT_TRUE(again);
  EXPECT_EQ(again->get(), first->get());
  // Remembering one user's password lets nobody else in with it.
  EXPECT_FALSE(auth.verify("cert-only", kPassword));
}

TEST(Authenticator, UnknownUserAndWrongPasswordFailAlike) {
  Authenticator auth(users_with(hash_of_password()));
  const auto wrong = auth.verify("billing", kOtherPassword);
  const auto unknown = auth.verify("nobody", kPassword);
  ASSERT_FALSE(wrong);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(wrong.error().code, Errc::authentication_failed);
  EXPECT_EQ(unknown.error().code, Errc::authentication_failed);
  EXPECT_EQ(wrong.error().detail, "invalid user name or password");
  EXPECT_EQ(unknown.error().detail, wrong.error().detail);
  // No password hash: no password login, whatever the password.
  const auto no_hash = auth.verify("cert-only", "");
  ASSERT_FALSE(no_hash);
  EXPECT_EQ(no_hash.error().detail, wrong.error().detail);
  // Out of bounds: refused the same way.
  EXPECT_FALSE(auth.verify("", kPassword));
  EXPECT_FALSE(auth.verify(std::string(kMaxUserName + 1, 'u'), kPassword));
  EXPECT_FALSE(auth.verify("billing", std::string(kMaxPassword + 1, 'p')));
}

TEST(Authenticator, ReplaceForgetsRememberedPasswords) {
  Authenticator auth(users_with(hash_of_password()));
  const auto before = auth.verify("billing", kPassword);
  ASSERT_TRUE(before);
  const auto generation = auth.generation();
  auth.replace(users_with(hash_of_other_password()));
  EXPECT_EQ(auth.generation(), generation + 1);
  // The remembered success is gone: the old password fails, the new one works.
  const auto old_password = auth.verify("billing", kPassword);
  ASSERT_FALSE(old_password);
  EXPECT_EQ(old_password.error().code, Errc::authentication_failed);
  const auto after = auth.verify("billing", kOtherPassword);
  ASSERT_TRUE(after) << after.error().detail;
  // The user from before the reload is still there to read (ASan would see a dangling one).
  EXPECT_EQ((*before)->name, "billing");
  EXPECT_EQ((*before)->password_hash, hash_of_password());
  EXPECT_NE(before->get(), after->get());
}

using Match = CertificateIdentity::Match;

TEST(Authenticator, ACertificateNamingOneUserIdentifiesIt) {
  Authenticator auth(users_with(hash_of_password()));
  // Names that are no user are passed over; the same user named twice is still one user.
  const auto one = auth.identify({"CN=unknown", "cert-only", "other", "cert-only"});
  EXPECT_EQ(one.match, Match::one);
  ASSERT_NE(one.user, nullptr);
  EXPECT_EQ(one.user->name, "cert-only");
  EXPECT_THAT(one.users, ::testing::ElementsAre("cert-only"));
  const auto none = auth.identify({"CN=unknown", "other"});
  EXPECT_EQ(none.match, Match::none);
  EXPECT_EQ(none.user, nullptr);
  EXPECT_TRUE(none.users.empty());
  EXPECT_EQ(auth.identify({}).match, Match::none);
}

// CN and an alternative name that are two different users: which was meant cannot be told, so
// the certificate identifies nobody, whatever the order of the names.
TEST(Authenticator, ACertificateNamingTwoUsersIdentifiesNone) {
  Authenticator auth(users_with(hash_of_password()));
  for (const auto& names :
       std::vector<std::vector<std::string>>{{"billing", "cert-only"},
                                             {"cert-only", "x", "billing"},
                                             {"billing", "billing", "cert-only"}}) {
    const auto identity = auth.identify(names);
    EXPECT_EQ(identity.match, Match::ambiguous) << names.front();
    EXPECT_EQ(identity.user, nullptr);
    EXPECT_THAT(identity.users, ::testing::UnorderedElementsAre("billing", "cert-only"));
  }
}

TEST(Authenticator, NullUsersMeansNoUsers) {
  Authenticator auth(nullptr);
  ASSERT_NE(auth.users(), nullptr);
  EXPECT_TRUE(auth.users()->empty());
  EXPECT_EQ(auth.identify({"billing"}).match, Match::none);
}

// Readers keep working while reloads swap the users under them (ASan/TSan check the sharing).
TEST(Authenticator, IdentifyDuringReplace) {
  Authenticator auth(users_with(hash_of_password()));
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        const auto u = auth.identify({"cert-only"});
        ASSERT_NE(u.user, nullptr);
        ASSERT_EQ(u.user->name, "cert-only");
      }
    });
  }
  for (int i = 0; i < 200; ++i) auth.replace(users_with(hash_of_password()));
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(auth.generation(), 200u);
}

TEST(LoggableNames, QuotedEscapedAndBounded) {
  EXPECT_EQ(loggable_names({}), "");
  EXPECT_EQ(loggable_names({"alice", "bob@x"}), "\"alice\",\"bob@x\"");
  EXPECT_EQ(loggable_names({"a\"b\n"}), "\"a\\x22b\\x0a\"");
  const std::vector<std::string> many(20, "n");
  EXPECT_EQ(loggable_names(many), "\"n\",\"n\",\"n\",\"n\",\"n\",\"n\",\"n\",\"n\",...");
}

TEST(LoginFailureDelay, DoublesFromATenthOfASecondUpToThreePointTwoSeconds) {
  using std::chrono::milliseconds;
  EXPECT_EQ(login_failure_delay(1), milliseconds(100));
  EXPECT_EQ(login_failure_delay(2), milliseconds(200));
  EXPECT_EQ(login_failure_delay(6), milliseconds(3200));
  EXPECT_EQ(login_failure_delay(7), milliseconds(3200));
  EXPECT_EQ(login_failure_delay(1000), milliseconds(3200));
}

TEST(PasswordCheckLimiter, BoundsChecksOverallAndPerAddress) {
  PasswordCheckLimiter limiter(5, 2);
  std::vector<PasswordCheckLimiter::Permit> held;
  for (int i = 0; i < 2; ++i) {
    auto p = limiter.try_begin("10.0.0.1");
    ASSERT_TRUE(p.has_value()) << i;
    held.push_back(std::move(*p));
  }
  EXPECT_FALSE(limiter.try_begin("10.0.0.1").has_value()) << "over the per-address bound";
  EXPECT_EQ(limiter.in_progress("10.0.0.1"), 2u);
  for (const char* address : {"10.0.0.2", "10.0.0.3", "10.0.0.3"}) {
    auto p = limiter.try_begin(address);
    ASSERT_TRUE(p.has_value()) << address;
    held.push_back(std::move(*p));
  }
  EXPECT_EQ(limiter.in_progress(), 5u);
  EXPECT_FALSE(limiter.try_begin("10.0.0.4").has_value()) << "over the overall bound";
  // A released permit makes room for its address and overall; releasing twice counts once.
  held.front().release();
  held.front().release();
  EXPECT_EQ(limiter.in_progress(), 4u);
  EXPECT_EQ(limiter.in_progress("10.0.0.1"), 1u);
  EXPECT_TRUE(limiter.try_begin("10.0.0.1").has_value());  // released again at once
  held.clear();
  EXPECT_EQ(limiter.in_progress(), 0u);
  EXPECT_EQ(limiter.in_progress("10.0.0.3"), 0u);
}

TEST(PasswordCheckLimiter, APermitMovedOrOutlivingTheLimiterCountsOnce) {
  auto limiter = std::make_unique<PasswordCheckLimiter>(1, 1);
  auto first = limiter->try_begin("a");
  ASSERT_TRUE(first.has_value());
  PasswordCheckLimiter::Permit moved = std::move(*first);
  first.reset();  // the moved-from permit releases nothing
  EXPECT_EQ(limiter->in_progress(), 1u);
  EXPECT_FALSE(limiter->try_begin("b").has_value());
  auto copy = *limiter;  // copies share the counts
  EXPECT_EQ(copy.in_progress(), 1u);
  limiter.reset();
  moved.release();  // after the limiter is gone: no dangling counts
  EXPECT_EQ(copy.in_progress(), 0u);
}

// The limits as loftd uses them: 64 overall, 4 per address.
TEST(PasswordCheckLimiter, DefaultsAreSixtyFourAndFourPerAddress) {
  PasswordCheckLimiter limiter;
  std::vector<PasswordCheckLimiter::Permit> held;
  for (int i = 0; i < 100; ++i) {
    if (auto p = limiter.try_begin("10.0." + std::to_string(i / 4) + ".1")) {
      held.push_back(std::move(*p));
    }
  }
  EXPECT_EQ(held.size(), 64u);
  EXPECT_EQ(limiter.in_progress("10.0.0.1"), 4u);
}

}  // namespace
TEST(PasswordAllowed, OnlyWhereItDidNotCrossTheNetworkInClearText) {
  EXPECT_TRUE(password_allowed({.encrypted = true, .peer_loopback = false}, false));
  EXPECT_TRUE(password_allowed({.encrypted = false, .peer_loopback = true}, false));
  EXPECT_FALSE(password_allowed({.encrypted = false, .peer_loopback = false}, false));
  EXPECT_TRUE(password_allowed({.encrypted = false, .peer_loopback = false}, true));
}

TEST(LoggableName, EscapesWhatCouldForgeALogLineAndCutsLongNames) {
  EXPECT_EQ(loggable_name("billing"), "billing");
  EXPECT_EQ(loggable_name("a\"b\\c\nd"), "a\\x22b\\x5cc\\x0ad");
  EXPECT_EQ(loggable_name(std::string(100, 'x')), std::string(64, 'x') + "...");
}

}  // namespace loft::auth
