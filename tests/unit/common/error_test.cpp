#include "loft/common/error.hpp"

#include <gtest/gtest.h>

#include <set>

namespace loft {
namespace {

TEST(Error, EveryWireCodeHasItsOwnText) {
  std::set<std::string_view> texts;
  for (std::uint16_t v = 0; v < 200; ++v) {
    const auto code = static_cast<Errc>(v);
    if (errc_text(code) == "unknown error") {
      EXPECT_EQ(errc_from_wire(v), Errc::internal_error) << v;
      continue;
    }
    EXPECT_EQ(errc_from_wire(v), code) << v;
    EXPECT_TRUE(texts.insert(errc_text(code)).second) << "duplicate text for " << v;
  }
  EXPECT_EQ(texts.size(), 36u);  // ok, 35 error codes
}

TEST(Error, ToStringJoinsTextAndDetail) {
  EXPECT_EQ((Error{Errc::topic_not_found, "topic 'x' does not exist"}.to_string()),
            "topic not found: topic 'x' does not exist");
  EXPECT_EQ((Error{Errc::timeout, ""}.to_string()), "timeout");
}

TEST(Error, ToStringDoesNotRepeatATextTheDetailAlreadyStartsWith) {
  EXPECT_EQ((Error{Errc::storage_full, "storage full: disk full: no space"}.to_string()),
            "storage full: disk full: no space");
  EXPECT_EQ((Error{Errc::backup_failed, "backup failed: 'x' exists"}.to_string()),
            "backup failed: 'x' exists");
}

}  // namespace
}  // namespace loft
