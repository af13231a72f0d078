#include "test_password.hpp"

#include <sodium.h>

namespace loft::testing {

std::string cheap_password_hash(std::string_view password) {
  if (sodium_init() < 0) return {};
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_MIN,
                            crypto_pwhash_MEMLIMIT_MIN, crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return {};
  }
  return out;
}

}  // namespace loft::testing
