#include "loft/common/subject.hpp"

#include <algorithm>
#include <cstdint>

namespace loft {
namespace {

bool is_whitespace(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

enum class Wildcards : std::uint8_t { allowed, refused };

bool valid_subject(std::string_view subject, Wildcards wildcards) noexcept {
  if (subject.empty()) return false;
  SubjectTokens tokens{subject};
  while (!tokens.done) {
    const std::string_view token = tokens.next();
    if (token.empty() || std::any_of(token.begin(), token.end(), is_whitespace)) return false;
    if (token == "*" || token == ">") {
      if (wildcards == Wildcards::refused) return false;
      if (token == ">" && !tokens.done) return false;
    }
  }
  return true;
}

}  // namespace

bool is_valid_publish_subject(std::string_view subject) noexcept {
  return valid_subject(subject, Wildcards::refused);
}

bool is_valid_filter_subject(std::string_view subject) noexcept {
  return valid_subject(subject, Wildcards::allowed);
}

bool subject_matches(std::string_view filter, std::string_view subject) noexcept {
  SubjectTokens f{filter};
  SubjectTokens s{subject};
  while (!f.done) {
    const std::string_view ft = f.next();
    if (s.done) return false;
    const std::string_view st = s.next();
    if (ft == ">") return true;
    if (ft != "*" && ft != st) return false;
  }
  return s.done;
}

bool subject_filters_overlap(std::string_view a, std::string_view b) noexcept {
  SubjectTokens x{a};
  SubjectTokens y{b};
  while (!x.done && !y.done) {
    const std::string_view xt = x.next();
    const std::string_view yt = y.next();
    // '>' takes one or more tokens: whatever the other filter asks of this token and of the
    // ones after it, some subject has them.
    if (xt == ">" || yt == ">") return true;
    if (xt != "*" && yt != "*" && xt != yt) return false;
  }
  return x.done && y.done;
}

}  // namespace loft
