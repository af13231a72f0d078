// Login bounds shared by the front ends (login_limits.hpp).

#include "loft/auth/login_limits.hpp"

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace loft::auth {

std::chrono::milliseconds login_failure_delay(std::uint32_t failures) {
  const std::uint32_t doublings = failures == 0 ? 0 : std::min<std::uint32_t>(failures - 1, 5);
  return std::chrono::milliseconds(100) * (1u << doublings);
}

struct PasswordCheckLimiter::Permit::Counts {
  Counts(std::uint32_t total, std::uint32_t per_address)
      : max_total(total), max_per_address(per_address) {}

  const std::uint32_t max_total;
  const std::uint32_t max_per_address;
  mutable std::mutex mutex;
  std::uint32_t total = 0;                                 // guarded by mutex
  std::unordered_map<std::string, std::uint32_t> by_peer;  // guarded by mutex; no zero entries
};

PasswordCheckLimiter::Permit::Permit(std::shared_ptr<Counts> counts, std::string address)
    : counts_(std::move(counts)), address_(std::move(address)) {}

PasswordCheckLimiter::Permit& PasswordCheckLimiter::Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    release();
    counts_ = std::move(other.counts_);
    address_ = std::move(other.address_);
  }
  return *this;
}

PasswordCheckLimiter::Permit::~Permit() { release(); }

void PasswordCheckLimiter::Permit::release() {
  if (counts_ == nullptr) return;
  {
    std::lock_guard lock(counts_->mutex);
    --counts_->total;
    const auto it = counts_->by_peer.find(address_);
    if (it != counts_->by_peer.end() && --it->second == 0) counts_->by_peer.erase(it);
  }
  counts_.reset();
}

PasswordCheckLimiter::PasswordCheckLimiter(std::uint32_t max_total, std::uint32_t max_per_address)
    : counts_(std::make_shared<Permit::Counts>(max_total, max_per_address)) {}

std::optional<PasswordCheckLimiter::Permit> PasswordCheckLimiter::try_begin(
    const std::string& address) {
  {
    std::lock_guard lock(counts_->mutex);
    if (counts_->total >= counts_->max_total) return std::nullopt;
    const auto it = counts_->by_peer.find(address);
    const std::uint32_t mine = it == counts_->by_peer.end() ? 0 : it->second;
    if (mine >= counts_->max_per_address) return std::nullopt;
    ++counts_->total;
    ++counts_->by_peer[address];
  }
  return Permit(counts_, address);
}

std::uint32_t PasswordCheckLimiter::in_progress() const {
  std::lock_guard lock(counts_->mutex);
  return counts_->total;
}

std::uint32_t PasswordCheckLimiter::in_progress(const std::string& address) const {
  std::lock_guard lock(counts_->mutex);
  const auto it = counts_->by_peer.find(address);
  return it == counts_->by_peer.end() ? 0 : it->second;
}

}  // namespace loft::auth
