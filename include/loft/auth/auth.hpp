#pragma once
// Users, password hashes and topic permissions: what every front end (the binary protocol, HTTP,
// later NATS) asks before it calls the broker. Pure C++ plus libsodium (hashes) and toml++ (the
// users file, inside users.cpp only): no Asio, no spdlog, no clock reads; failures are values
// that the caller logs. docs/security.md describes the file and the rules for users.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "loft/common/error.hpp"

namespace loft::auth {

// What a request needs on a topic.
enum class Operation : std::uint8_t {
  publish,    // PUBLISH
  subscribe,  // SUBSCRIBE, SETTLE, UNSUBSCRIBE, FETCH: consuming, in groups or not
  admin,      // create/alter/delete topics; create/reset/delete groups
};
std::string_view to_string(Operation op);

// Bounds on credentials, checked by parse_plain and Authenticator::verify before any hashing.
inline constexpr std::size_t kMaxUserName = 255;
inline constexpr std::size_t kMaxPassword = 1024;

// A topic pattern: an exact name, or a name with `*` wildcards, each matching any run of
// characters (also none, also dots): "orders.*" matches "orders.eu" and "orders.eu.x"; "*"
// matches every topic. Matching never backtracks: at most pattern length x topic length steps.
class TopicPattern {
 public:
  // Fails (invalid_request) for an empty pattern, one longer than a topic name may be (249
  // bytes), or one with a character no topic name has (names are [A-Za-z0-9._-]): such a
  // pattern could never match, so it is a typo.
  static Result<TopicPattern> parse(std::string_view text);
  bool matches(std::string_view topic) const;
  const std::string& text() const { return text_; }
  bool operator==(const TopicPattern&) const = default;

 private:
  std::string text_;
};

// One user's permission lists, as in the users file. `deny` wins over the three allow lists.
struct Permissions {
  std::vector<TopicPattern> publish;
  std::vector<TopicPattern> subscribe;
  std::vector<TopicPattern> admin;
  std::vector<TopicPattern> deny;

  bool allows(Operation op, std::string_view topic) const;
  // Any of the three on `topic` (what LIST_TOPICS shows and DESCRIBE_TOPIC/GROUP answer).
  bool may_see(std::string_view topic) const;
  // `op` on every topic that exists or may ever exist: a "*" in its list and nothing denied.
  // BACKUP needs admin on all (a backup holds every topic).
  bool allows_all(Operation op) const;
  bool operator==(const Permissions&) const = default;
};

struct User {
  std::string name;
  std::string password_hash;  // "$argon2id$..." or "$7$..." (scrypt); "" = no password login
  Permissions permissions;
  bool operator==(const User&) const = default;
};

// The users file, parsed and checked. Immutable: a reload makes a new one.
class Users {
 public:
  // Parses the TOML text ([[users]] tables with name, password_hash, publish, subscribe,
  // admin, deny). Fails with invalid_request naming the file, the user and the field: a
  // missing name, a duplicate name, an unknown field, a hash that is neither Argon2id nor
  // scrypt, a bad pattern; any top-level key but `users`. A name is 1 to kMaxUserName bytes
  // without control characters (a certificate's CN or SAN may name a user, so it is not limited
  // to topic-name characters).
  static Result<Users> parse(std::string_view toml_text, std::string_view source_name);
  static Result<Users> load(const std::filesystem::path& path);

  // nullptr if there is no such user. The pointer lives as long as this Users.
  const User* find(std::string_view name) const;
  const std::vector<User>& all() const { return users_; }
  bool empty() const { return users_.empty(); }

 private:
  std::vector<User> users_;
};

// The hash to put in the users file: Argon2id (libsodium's crypto_pwhash_str with its
// INTERACTIVE limits: 64 MiB, a few tens of ms). Fails only when the memory cannot be had.
Result<std::string> hash_password(std::string_view password);
// Constant-time for a given hash; slow by design (the hash's own cost). False for a malformed
// hash.
bool verify_password(std::string_view hash, std::string_view password);

// SASL PLAIN (RFC 4616): authzid NUL authcid NUL passwd. An authzid, if given, must equal the
// user: loft has no acting-as.
struct PlainCredentials {
  std::string user;
  std::string password;
};
Result<PlainCredentials> parse_plain(std::string_view payload);
std::string encode_plain(std::string_view user, std::string_view password);

// A user name as a client sent it, safe for one log line: at most 64 bytes, control bytes,
// quotes and backslashes escaped (\xNN). Front ends log names of failed logins with it.
std::string loggable_name(std::string_view name);

// How a password reached a front end, and whether it may be checked: not when it crossed the
// network in clear text (a plaintext connection from a non-loopback peer) unless the operator
// allows it (allow_plaintext_passwords). Every front end asks this before verify().
struct Transport {
  bool encrypted = false;      // TLS
  bool peer_loopback = false;  // the peer's address is a loopback address
};
bool password_allowed(Transport transport, bool allow_plaintext_passwords);

// What the names of a client certificate say about its user. A certificate may name a user by
// its CN or by any subject alternative name; when those name two different users, it names
// none of them (`ambiguous`): which one was meant cannot be told, so the connection gets no
// certificate login and must use a password.
struct CertificateIdentity {
  enum class Match : std::uint8_t { none, one, ambiguous };
  Match match = Match::none;
  std::shared_ptr<const User> user;  // with Match::one
  std::vector<std::string> users;    // the distinct users named, in the order of the names
};

// Names for one log line: each as loggable_name shows it, quoted, comma-separated; at most 8
// (then ",..."): a certificate may carry many alternative names.
std::string loggable_names(const std::vector<std::string>& names);

// Checks credentials against the current Users. Thread-safe: front ends call verify() from a
// worker thread (it is slow) while a reload calls replace() from the io thread.
//
// A successful password check is remembered (a keyed BLAKE2b digest of user and password,
// with a key drawn at start, never the password itself) so that a service that opens many
// connections, or an HTTP client that sends Basic credentials on every request, pays the
// Argon2id cost once per password, not once per connection. replace() forgets them all.
class Authenticator {
 public:
  explicit Authenticator(std::shared_ptr<const Users> users);
  ~Authenticator();

  void replace(std::shared_ptr<const Users> users);
  std::shared_ptr<const Users> users() const;
  // Bumped by every replace(): front ends holding a user re-resolve it when this changed.
  std::uint64_t generation() const { return generation_.load(); }

  // The user, or authentication_failed ("invalid user name or password": the same text for an
  // unknown user and a wrong password). An unknown user costs a hash verification too, so the
  // time does not tell which. Slow unless remembered: call off the io thread.
  Result<std::shared_ptr<const User>> verify(std::string_view user, std::string_view password);
  // The fast half of verify(): the user when this user and password were verified before (and
  // no replace() came since), else null. Cheap (one keyed BLAKE2b): front ends call it on their
  // io thread first and queue verify() only when it returns null.
  std::shared_ptr<const User> remembered(std::string_view user, std::string_view password) const;
  // For a certificate identity: the user the names of a verified TLS client certificate (its
  // CN, then its subject alternative names: tls::peer_names) point to. Every front end that
  // takes certificate identity asks this, so they all follow one rule.
  CertificateIdentity identify(const std::vector<std::string>& names) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<std::uint64_t> generation_{0};
};

}  // namespace loft::auth
