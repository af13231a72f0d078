// `loft user hash-password`, the built binary, with the password on standard input (not a
// terminal). No loftd: the command never contacts a broker.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "loft/auth/auth.hpp"
#include "test_daemon.hpp"

namespace loft::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

ProcessResult hash_password(const std::string& input) {
  return run_process({TestDaemon::loft_path(), "user", "hash-password"}, input);
}

TEST(UserCli, HashPasswordPrintsAVerifiableArgon2idHash) {
  const auto r = hash_password("Tr0ub4dor&3\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_THAT(r.out, StartsWith("$argon2id$"));
  ASSERT_EQ(r.out.back(), '\n');
  const std::string hash = r.out.substr(0, r.out.size() - 1);
  EXPECT_EQ(hash.find('\n'), std::string::npos) << r.out;
  EXPECT_TRUE(auth::verify_password(hash, "Tr0ub4dor&3"));  // the line end is not part of it
  EXPECT_FALSE(auth::verify_password(hash, "Tr0ub4dor&3\n"));
  EXPECT_THAT(r.err, Not(HasSubstr("Tr0ub4dor")));
  // The hash is accepted by the users file as it is printed.
  const auto users =
      auth::Users::parse("[[users]]\nname = \"u\"\npassword_hash = \"" + hash + "\"\n", "t");
  EXPECT_TRUE(users) << users.error().detail;
}

TEST(UserCli, HashPasswordReadsOnlyTheFirstLine) {
  const auto r = hash_password("first line\r\nsecond line\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string hash = r.out.substr(0, r.out.size() - 1);
  EXPECT_TRUE(auth::verify_password(hash, "first line"));
}

TEST(UserCli, HashPasswordRefusesAnEmptyPassword) {
  for (const std::string input : {"", "\n"}) {
    const auto r = hash_password(input);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "loft: the password is empty\n");
  }
  const auto r = run_process({TestDaemon::loft_path(), "user", "hash-pasword"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown user command 'hash-pasword'"));
}

}  // namespace
}  // namespace loft::testing
