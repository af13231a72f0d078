// Authenticator: the current Users, password checks and the cache of remembered successes.

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <mutex>
#include <unordered_set>

#include "loft/auth/auth.hpp"
#include "sodium.hpp"

namespace loft::auth {
namespace {

constexpr std::string_view kFailed = "invalid user name or password";
// Remembered successes kept at most; when full, all are forgotten (each costs one hash again).
constexpr std::size_t kMaxRemembered = 4096;

using Digest = std::array<unsigned char, crypto_generichash_BYTES>;  // 32 bytes
using Key = std::array<unsigned char, crypto_generichash_KEYBYTES>;  // 32 bytes

// The digest is keyed with a secret: its first bytes are as good as a random hash.
struct DigestHash {
  std::size_t operator()(const Digest& d) const {
    std::size_t h = 0;
    std::memcpy(&h, d.data(), sizeof h);
    return h;
  }
};
struct DigestEqual {
  bool operator()(const Digest& a, const Digest& b) const {
    return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
  }
};

// The hash an unknown user's password is checked against, so that a wrong name costs what a
// wrong password costs. Made once per process, from a random password nobody knows.
const std::string& dummy_hash() {
  static const std::string kHash = [] {
    detail::ensure_sodium();
    std::array<unsigned char, 32> random{};
    randombytes_buf(random.data(), random.size());
    auto h = hash_password(
        std::string_view(reinterpret_cast<const char*>(random.data()), random.size()));
    sodium_memzero(random.data(), random.size());
    // Without memory for one hash there is none for the real ones either; an empty hash
    // verifies nothing, which is still the right answer.
    return h ? *h : std::string();
  }();
  return kHash;
}

tl::unexpected<Error> failed() { return fail(Errc::authentication_failed, std::string(kFailed)); }

}  // namespace

struct Authenticator::Impl {
  mutable std::mutex mutex;
  std::shared_ptr<const Users> users;                              // guarded by mutex
  std::unordered_set<Digest, DigestHash, DigestEqual> remembered;  // guarded by mutex
  Key key{};                                                       // set once at construction

  Digest digest(std::string_view user, std::string_view password) const {
    Digest out{};
    crypto_generichash_state state;
    crypto_generichash_init(&state, key.data(), key.size(), out.size());
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(user.data()),
                              user.size());
    const unsigned char nul = 0;
    crypto_generichash_update(&state, &nul, 1);
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(password.data()),
                              password.size());
    crypto_generichash_final(&state, out.data(), out.size());
    sodium_memzero(&state, sizeof state);
    return out;
  }
};

namespace {

// A user that lives as long as the Users that holds it, whatever replace() does meanwhile.
std::shared_ptr<const User> hold(const std::shared_ptr<const Users>& users, const User* user) {
  return std::shared_ptr<const User>(users, user);
}

std::shared_ptr<const Users> or_empty(std::shared_ptr<const Users> users) {
  return users ? std::move(users) : std::make_shared<const Users>();
}

}  // namespace

Authenticator::Authenticator(std::shared_ptr<const Users> users) : impl_(std::make_unique<Impl>()) {
  detail::ensure_sodium();
  impl_->users = or_empty(std::move(users));
  randombytes_buf(impl_->key.data(), impl_->key.size());
}

Authenticator::~Authenticator() { sodium_memzero(impl_->key.data(), impl_->key.size()); }

void Authenticator::replace(std::shared_ptr<const Users> users) {
  std::lock_guard lock(impl_->mutex);
  impl_->users = or_empty(std::move(users));
  impl_->remembered.clear();
  generation_.fetch_add(1);
}

std::shared_ptr<const Users> Authenticator::users() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->users;
}

Result<std::shared_ptr<const User>> Authenticator::verify(std::string_view user,
                                                          std::string_view password) {
  // Out-of-bounds credentials name no user: refused before any hashing (the bounds are public,
  // so the quick answer tells nothing).
  if (user.empty() || user.size() > kMaxUserName || password.size() > kMaxPassword ||
      user.find('\0') != std::string_view::npos) {
    return failed();
  }
  const Digest digest = impl_->digest(user, password);
  std::shared_ptr<const Users> users;
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(impl_->mutex);
    users = impl_->users;
    generation = generation_.load();
    if (impl_->remembered.count(digest) != 0) {
      if (const User* found = users->find(user)) return hold(users, found);
    }
  }
  // The slow part runs unlocked, against the snapshot taken above.
  const User* found = users->find(user);
  const bool can_log_in = found != nullptr && !found->password_hash.empty();
  const bool ok = verify_password(can_log_in ? found->password_hash : dummy_hash(), password);
  if (!can_log_in || !ok) return failed();
  {
    std::lock_guard lock(impl_->mutex);
    // A replace() meanwhile may have changed this user's hash: remember only what is current.
    if (generation_.load() == generation) {
      if (impl_->remembered.size() >= kMaxRemembered) impl_->remembered.clear();
      impl_->remembered.insert(digest);
    }
  }
  return hold(users, found);
}

std::shared_ptr<const User> Authenticator::remembered(std::string_view user,
                                                      std::string_view password) const {
  if (user.empty() || user.size() > kMaxUserName || password.size() > kMaxPassword) return nullptr;
  const Digest digest = impl_->digest(user, password);
  std::lock_guard lock(impl_->mutex);
  if (impl_->remembered.count(digest) == 0) return nullptr;
  const User* found = impl_->users->find(user);
  return found == nullptr ? nullptr : hold(impl_->users, found);
}

CertificateIdentity Authenticator::identify(const std::vector<std::string>& names) const {
  const auto users = this->users();
  CertificateIdentity out;
  const User* first = nullptr;
  for (const auto& name : names) {
    const User* found = users->find(name);
    if (found == nullptr) continue;
    if (first == nullptr) first = found;
    if (std::find(out.users.begin(), out.users.end(), found->name) == out.users.end()) {
      out.users.push_back(found->name);
    }
  }
  if (out.users.size() > 1) {
    out.match = CertificateIdentity::Match::ambiguous;
  } else if (first != nullptr) {
    out.match = CertificateIdentity::Match::one;
    out.user = hold(users, first);
  }
  return out;
}

}  // namespace loft::auth
