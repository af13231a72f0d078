#include "loft/common/units.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;

namespace loft {
namespace {

TEST(ParseDuration, AcceptsEveryUnit) {
  EXPECT_EQ(parse_duration("250us").value(), 250us);
  EXPECT_EQ(parse_duration("500ms").value(), 500ms);
  EXPECT_EQ(parse_duration("3s").value(), 3s);
  EXPECT_EQ(parse_duration("5m").value(), 5min);
  EXPECT_EQ(parse_duration("2h").value(), 2h);
  EXPECT_EQ(parse_duration("7d").value(), 7 * 24h);
  EXPECT_EQ(parse_duration("0s").value(), 0us);
}

TEST(ParseDuration, RejectsMissingUnitBadUnitAndGarbage) {
  for (const auto* bad : {"", "5", "s", "5 s", "5sec", "-5s", "1.5s", "5S", "99999999999999999999s",
                          "9999999999999999d"}) {
    const auto r = parse_duration(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code, Errc::invalid_request) << bad;
    EXPECT_NE(r.error().detail.find("duration"), std::string::npos) << bad;
  }
}

TEST(ParseSize, AcceptsBinaryAndDecimalUnits) {
  EXPECT_EQ(parse_size("512").value(), 512u);
  EXPECT_EQ(parse_size("512B").value(), 512u);
  EXPECT_EQ(parse_size("512KiB").value(), 512u * 1024);
  EXPECT_EQ(parse_size("16MiB").value(), 16u << 20);
  EXPECT_EQ(parse_size("10GiB").value(), 10ull << 30);
  EXPECT_EQ(parse_size("1TiB").value(), 1ull << 40);
  EXPECT_EQ(parse_size("3KB").value(), 3000u);
}

TEST(ParseSize, RejectsUnknownUnitsAndOverflow) {
  for (const auto* bad : {"", "KiB", "5kib", "5 KiB", "-1", "99999999999TiB", "1.5MiB"}) {
    EXPECT_FALSE(parse_size(bad).has_value()) << bad;
  }
}

TEST(FormatUnits, RoundTripThroughParse) {
  for (const std::chrono::microseconds d : {1us, 1500us, 500'000us, 3'000'000us, 90'000'000us}) {
    const auto text = format_duration(d);
    EXPECT_EQ(parse_duration(text).value(), d) << text;
  }
  for (const std::uint64_t n : {0ull, 1ull, 1000ull, 1024ull, 16ull << 20, 3ull << 30}) {
    EXPECT_EQ(parse_size(format_size(n)).value(), n) << format_size(n);
  }
  EXPECT_EQ(format_size(16u << 20), "16MiB");
  EXPECT_EQ(format_duration(1500ms), "1500ms");
}

}  // namespace
}  // namespace loft
