#pragma once
// Who may call which HTTP endpoint when loftd has users (docs/operations.md, "HTTP"): the
// HTTP Basic header, what each endpoint needs, and the 403 for a user without the permission.
// Pure: no sockets, no clock; the server runs the slow password check and logs.

#include <string>
#include <string_view>

#include "loft/auth/auth.hpp"
#include "loft/common/error.hpp"
#include "loft/http/api.hpp"

namespace loft::http {

// The challenge of every 401 (RFC 7617).
inline constexpr std::string_view kBasicChallenge = "Basic realm=\"loft\"";

struct BasicCredentials {
  std::string user;
  std::string password;
};

// The value of an Authorization header: "Basic " and base64 of "user:password" (the scheme in
// any case, the user without ':', the password may have one). Fails (authentication_failed)
// with a detail that never contains the password: another scheme, bad base64, no ':', an empty
// user.
Result<BasicCredentials> parse_basic_authorization(std::string_view value);

// What an endpoint needs on a server with users.
enum class Access {
  open,           // /healthz, /readyz; /metrics unless metrics need a user
  user,           // any authenticated user: /metrics (metrics_auth = "users"), GET /v1/topics
  see_topic,      // GET /v1/topics/NAME and /groups: publish, subscribe or admin on NAME
  publish_topic,  // POST /v1/topics/NAME/messages
  admin_topic,    // PUT and DELETE /v1/topics/NAME: admin on NAME, as CREATE_/DELETE_TOPIC
};
Access access_of(Endpoint endpoint, bool metrics_need_user);

// Whether `user` may call the endpoint of `route` (Access see_topic, publish_topic or
// admin_topic); a
// forbidden error naming the user, the operation and the topic otherwise.
Result<void> authorize(const auth::User& user, const Route& route);

}  // namespace loft::http
