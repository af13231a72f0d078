// Password hashes (libsodium) and SASL PLAIN credentials.

#include <sodium.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "loft/auth/auth.hpp"
#include "sodium.hpp"

namespace loft::auth {

namespace detail {

void ensure_sodium() {
  // sodium_init() is itself safe to call from several threads; the static makes it run once.
  static const int kStatus = sodium_init();
  if (kStatus < 0) throw std::runtime_error("libsodium could not be initialised");
}

}  // namespace detail

namespace {

constexpr std::string_view kArgon2idPrefix = "$argon2id$";
constexpr std::string_view kScryptPrefix = "$7$";

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

Result<std::string> hash_password(std::string_view password) {
  detail::ensure_sodium();
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(),
                            crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return fail(Errc::internal_error,
                "password hashing failed: not enough memory for Argon2id (64 MiB)");
  }
  return std::string(out);
}

bool verify_password(std::string_view hash, std::string_view password) {
  detail::ensure_sodium();
  // libsodium reads the hash as a C string within its fixed-size buffer: refuse anything that
  // would not fit or that hides a NUL, rather than let it read past the end.
  if (hash.find('\0') != std::string_view::npos) return false;
  const std::string terminated(hash);
  if (starts_with(hash, kArgon2idPrefix)) {
    if (hash.size() >= crypto_pwhash_argon2id_STRBYTES) return false;
    return crypto_pwhash_argon2id_str_verify(terminated.c_str(), password.data(),
                                             password.size()) == 0;
  }
  if (starts_with(hash, kScryptPrefix)) {
    if (hash.size() >= crypto_pwhash_scryptsalsa208sha256_STRBYTES) return false;
    return crypto_pwhash_scryptsalsa208sha256_str_verify(terminated.c_str(), password.data(),
                                                         password.size()) == 0;
  }
  return false;
}

// Details name the rule that failed, never the bytes: the payload carries the password.
Result<PlainCredentials> parse_plain(std::string_view payload) {
  constexpr std::string_view kShape = "PLAIN payload must be authzid NUL user NUL password";
  if (std::count(payload.begin(), payload.end(), '\0') != 2) {
    return fail(Errc::invalid_request, std::string(kShape) + " (exactly two NUL bytes)");
  }
  const auto first = payload.find('\0');
  const auto second = payload.find('\0', first + 1);
  const std::string_view authzid = payload.substr(0, first);
  const std::string_view user = payload.substr(first + 1, second - first - 1);
  const std::string_view password = payload.substr(second + 1);
  if (user.empty()) return fail(Errc::invalid_request, std::string(kShape) + ": the user is empty");
  if (user.size() > kMaxUserName) {
    return fail(Errc::invalid_request, "PLAIN user name is " + std::to_string(user.size()) +
                                           " bytes long; at most " + std::to_string(kMaxUserName));
  }
  if (!authzid.empty() && authzid != user) {
    return fail(Errc::invalid_request,
                "PLAIN authorization identity must be empty or the user itself: loft has no "
                "acting as another user");
  }
  if (password.empty()) {
    return fail(Errc::invalid_request, std::string(kShape) + ": the password is empty");
  }
  if (password.size() > kMaxPassword) {
    return fail(Errc::invalid_request,
                "PLAIN password is longer than " + std::to_string(kMaxPassword) + " bytes");
  }
  return PlainCredentials{std::string(user), std::string(password)};
}

std::string loggable_name(std::string_view name) {
  constexpr std::size_t kMax = 64;
  constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char c : name.substr(0, kMax)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '"' || c == '\\') {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  if (name.size() > kMax) out += "...";
  return out;
}

std::string loggable_names(const std::vector<std::string>& names) {
  constexpr std::size_t kMaxNames = 8;
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < kMaxNames; ++i) {
    if (i > 0) out += ',';
    out += '"';
    out += loggable_name(names[i]);
    out += '"';
  }
  if (names.size() > kMaxNames) out += ",...";
  return out;
}

bool password_allowed(Transport transport, bool allow_plaintext_passwords) {
  return transport.encrypted || transport.peer_loopback || allow_plaintext_passwords;
}

std::string encode_plain(std::string_view user, std::string_view password) {
  std::string out;
  out.reserve(user.size() + password.size() + 2);
  out += '\0';
  out += user;
  out += '\0';
  out += password;
  return out;
}

}  // namespace loft::auth
