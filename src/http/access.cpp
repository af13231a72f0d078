#include "loft/http/access.hpp"

#include <boost/beast/core/detail/base64.hpp>
#include <cctype>

namespace loft::http {
namespace {

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

tl::unexpected<Error> bad(std::string detail) {
  return fail(Errc::authentication_failed, std::move(detail));
}

}  // namespace

Result<BasicCredentials> parse_basic_authorization(std::string_view value) {
  const auto space = value.find(' ');
  if (space == std::string_view::npos || !iequals(value.substr(0, space), "Basic")) {
    return bad("the Authorization header must use the Basic scheme (HTTP Basic authentication)");
  }
  std::string_view token = value.substr(space);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  // Beast's decoder stops quietly at a character it does not know: check every one first.
  std::size_t padding = 0;
  while (padding < 2 && padding < token.size() && token[token.size() - 1 - padding] == '=') {
    ++padding;
  }
  bool valid = !token.empty() && token.size() % 4 == 0;
  for (std::size_t i = 0; valid && i + padding < token.size(); ++i) {
    valid = is_base64_char(token[i]);
  }
  if (!valid) return bad("the Basic credentials are not valid base64");
  std::string decoded(boost::beast::detail::base64::decoded_size(token.size()), '\0');
  const auto [written, read] =
      boost::beast::detail::base64::decode(decoded.data(), token.data(), token.size());
  (void)read;  // every character was checked above
  decoded.resize(written);
  const auto colon = decoded.find(':');
  if (colon == std::string::npos) {
    return bad("the Basic credentials must be user:password (no ':' found)");
  }
  if (colon == 0) return bad("the Basic credentials have an empty user name");
  BasicCredentials out{decoded.substr(0, colon), decoded.substr(colon + 1)};
  // The decoded text held the password: do not leave it in freed memory.
  decoded.assign(decoded.size(), '\0');
  return out;
}

Access access_of(Endpoint endpoint, bool metrics_need_user) {
  switch (endpoint) {
    case Endpoint::healthz:
    case Endpoint::readyz:
      return Access::open;
    case Endpoint::metrics:
      return metrics_need_user ? Access::user : Access::open;
    case Endpoint::topics:
      return Access::user;
    case Endpoint::topic:
    case Endpoint::topic_groups:
      return Access::see_topic;
    case Endpoint::topic_messages:
      return Access::publish_topic;
    case Endpoint::create_topic:
    case Endpoint::delete_topic:
      return Access::admin_topic;
  }
  return Access::user;
}

Result<void> authorize(const auth::User& user, const Route& route) {
  switch (access_of(route.endpoint, false)) {
    case Access::open:
    case Access::user:
      return {};
    case Access::see_topic:
      if (user.permissions.may_see(route.topic)) return {};
      return fail(Errc::forbidden, "user '" + user.name + "' may not see topic '" + route.topic +
                                       "' (it needs publish, subscribe or admin on it)");
    case Access::publish_topic:
      if (user.permissions.allows(auth::Operation::publish, route.topic)) return {};
      return fail(Errc::forbidden,
                  "user '" + user.name + "' may not publish to topic '" + route.topic + "'");
    case Access::admin_topic:
      if (user.permissions.allows(auth::Operation::admin, route.topic)) return {};
      return fail(Errc::forbidden,
                  "user '" + user.name + "' may not " +
                      (route.endpoint == Endpoint::create_topic ? "create" : "delete") +
                      " topic '" + route.topic + "' (it needs admin on it)");
  }
  return {};
}

}  // namespace loft::http
