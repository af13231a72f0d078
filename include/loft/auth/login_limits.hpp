#pragma once
// Bounds on logins that every front end (the binary protocol, HTTP, later NATS) applies alike:
// how many password checks may wait for the slow executor, and how long a failed login waits
// for its answer. Pure: no Asio, no clock reads; the front ends queue, time and log.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace loft::auth {

// The delay before a failed login is answered: 100 ms, doubling with each failure of the
// connection, at most 3.2 s (below the default handshake_timeout of 5 s). `failures` counts the
// failure being answered (1 for the first).
std::chrono::milliseconds login_failure_delay(std::uint32_t failures);

// Password checks queued on (or running on) the slow executor, overall and per client address.
// Argon2id costs tens of milliseconds and 64 MiB per check: a flood of logins with passwords
// nobody knows (which no cache can answer) must not queue unbounded work, and one address must
// not take all of it. One limiter is shared by every front end of a loftd, so the bound holds
// whatever port the logins come to.
//
// Thread-safe. A Permit counts one check from try_begin() until it is released or destroyed;
// it keeps the counts alive, so it may outlive the limiter. Copies of a limiter share its
// counts.
class PasswordCheckLimiter {
 public:
  static constexpr std::uint32_t kMaxTotal = 64;
  static constexpr std::uint32_t kMaxPerAddress = 4;

  class Permit {
   public:
    Permit(Permit&& other) noexcept = default;
    Permit& operator=(Permit&& other) noexcept;
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit();
    // Ends the count now (the destructor does otherwise). Idempotent.
    void release();

   private:
    friend class PasswordCheckLimiter;
    struct Counts;
    Permit(std::shared_ptr<Counts> counts, std::string address);

    std::shared_ptr<Counts> counts_;  // null once released or moved from
    std::string address_;
  };

  explicit PasswordCheckLimiter(std::uint32_t max_total = kMaxTotal,
                                std::uint32_t max_per_address = kMaxPerAddress);

  // A permit for one check from `address` (the peer's IP address, without the port), or
  // nullopt when max_total checks, or max_per_address from this address, are counted already.
  std::optional<Permit> try_begin(const std::string& address);
  // Checks counted now, overall and from `address`.
  std::uint32_t in_progress() const;
  std::uint32_t in_progress(const std::string& address) const;

 private:
  std::shared_ptr<Permit::Counts> counts_;
};

}  // namespace loft::auth
