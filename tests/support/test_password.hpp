// Password hashes for tests of logins and permissions.
#pragma once

#include <string>
#include <string_view>

namespace loft::testing {

// An Argon2id hash of `password` at libsodium's lowest cost (one pass over 8 KiB), which loftd
// checks in microseconds: a users file for a test of who may do what, where the real cost
// (auth::hash_password: 64 MiB, about a second under a loaded machine's sanitizers, for each
// hash and each check) would only add time. Tests of the hashing itself, and of the queue of
// password checks, which needs checks that take a while, use the real one (an unknown user is
// checked against loftd's own hash at the real cost). Empty if libsodium fails.
std::string cheap_password_hash(std::string_view password);

}  // namespace loft::testing
