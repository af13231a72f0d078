#include "loft/auth/password_checks.hpp"

namespace loft::auth {

bool PasswordChecks::try_begin(const std::string& address) {
  auto& mine = per_address[address];
  if (total >= kMaxTotal || mine >= kMaxPerAddress) {
    if (mine == 0) per_address.erase(address);
    return false;
  }
  ++mine;
  ++total;
  return true;
}

void PasswordChecks::end(const std::string& address) {
  --total;
  const auto it = per_address.find(address);
  if (it != per_address.end() && --it->second == 0) per_address.erase(it);
}

}  // namespace loft::auth
