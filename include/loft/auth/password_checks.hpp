#pragma once
// A bound on the password checks a front end has queued on its slow executor (Argon2id takes
// tens of milliseconds and 64 MiB each): overall and per peer address, so a flood of logins
// cannot queue more work than kMaxTotal checks, and one address cannot take all of them.
// Not thread-safe: owned by one front end, used on its io thread (try_begin before posting a
// check, end when its result is back).

#include <cstdint>
#include <string>
#include <unordered_map>

namespace loft::auth {

struct PasswordChecks {
  static constexpr std::uint32_t kMaxTotal = 64;
  static constexpr std::uint32_t kMaxPerAddress = 4;
  std::uint32_t total = 0;
  std::unordered_map<std::string, std::uint32_t> per_address;

  // False (and nothing counted) when either bound is reached: the caller refuses the login
  // without checking it.
  bool try_begin(const std::string& address);
  // REQUIRES: a try_begin(address) that returned true and has not ended.
  void end(const std::string& address);
};

}  // namespace loft::auth
