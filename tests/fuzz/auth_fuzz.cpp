// libFuzzer target over what an unauthenticated peer and the users file feed the auth module:
// - the input as a frame stream (the first byte picks how it is cut, as in decoder_fuzz): the
//   payload of every AUTHENTICATE frame goes through parse_plain, whose credentials must keep
//   its documented bounds and encode back to a payload that parses the same;
// - the whole input as a users file: Users::parse gives users or an error, never a crash, and
//   the users it gives keep the file's rules (unique non-empty names, valid patterns).
// No password hashing here: it is libsodium's, and too slow to fuzz.
//
//   CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DLOFT_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug
//   ninja -C build/fuzz auth_fuzz && build/fuzz/tests/fuzz/auth_fuzz -max_total_time=60
//
// Without clang, auth_fuzz_corpus (a ctest, label fuzz) runs the same function over the seeds
// (tests/fuzz/corpus and tests/fuzz/corpus-auth_fuzz) and seeded random mutations of them.

#include <cstddef>
#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "loft/auth/auth.hpp"
#include "loft/protocol/codec.hpp"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void check_plain(std::string_view payload) {
  using namespace loft::auth;
  const auto c = parse_plain(payload);
  if (!c) {
    check(!c.error().detail.empty());
    return;
  }
  check(!c->user.empty() && c->user.size() <= kMaxUserName);
  check(!c->password.empty() && c->password.size() <= kMaxPassword);
  check(c->user.find('\0') == std::string::npos && c->password.find('\0') == std::string::npos);
  const auto again = parse_plain(encode_plain(c->user, c->password));
  check(again.has_value() && again->user == c->user && again->password == c->password);
}

// A pattern matches its own text with the stars taken out (each star matching nothing).
bool matches_itself(const loft::auth::TopicPattern& p) {
  std::string literal;
  for (const char ch : p.text()) {
    if (ch != '*') literal += ch;
  }
  return p.matches(literal);
}

void check_users(std::string_view text) {
  using namespace loft::auth;
  const auto users = Users::parse(text, "fuzz.toml");
  if (!users) {
    check(!users.error().detail.empty());
    return;
  }
  std::set<std::string> names;
  for (const auto& user : users->all()) {
    check(!user.name.empty() && names.insert(user.name).second);
    check(users->find(user.name) == &user);
    const auto& p = user.permissions;
    for (const auto* list : {&p.publish, &p.subscribe, &p.admin, &p.deny}) {
      for (const auto& pattern : *list) {
        const auto reparsed = TopicPattern::parse(pattern.text());
        check(reparsed.has_value() && *reparsed == pattern && matches_itself(pattern));
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace loft::protocol;
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  check_users(raw);
  if (size == 0) return 0;
  check_plain(raw.substr(1));
  const std::size_t piece = data[0] % 17 + 1;
  const std::string_view bytes = raw.substr(1);
  Decoder decoder{1 << 20};
  for (std::size_t at = 0; at < bytes.size(); at += piece) {
    const auto chunk = bytes.substr(at, piece);
    decoder.feed(std::span<const char>(chunk.data(), chunk.size()));
    for (;;) {
      auto next = decoder.next();
      if (!next) return 0;  // an error: the stream is unusable, as documented
      if (!next->has_value()) break;
      if (const auto* auth = std::get_if<Authenticate>(&(**next).body)) check_plain(auth->payload);
    }
  }
  return 0;
}
