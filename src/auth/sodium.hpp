#pragma once
// libsodium, initialised once. Every function of this module that calls libsodium calls
// ensure_sodium() first; it is cheap after the first call.

namespace loft::auth::detail {

// Runs sodium_init() once per process (thread-safe). Throws std::runtime_error if libsodium
// cannot start (no source of randomness): a start-up failure, not a request error.
void ensure_sodium();

}  // namespace loft::auth::detail
