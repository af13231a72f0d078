#pragma once
// Subjects: the dotted names messages are published on and groups filter by, with the rules of
// NATS subjects, so that a subject published through any front end means the same thing
// everywhere. A subject is tokens separated by '.', none empty, no whitespace (space, tab, CR,
// LF). In a filter (a subscription subject) the token "*" matches any one token and ">" (last
// token only) one or more tokens; a '*' or '>' inside a longer token is an ordinary character.
// Pure functions: the broker (publish validation, group filters) and the NATS protocol library
// both use them.

#include <cstddef>
#include <string_view>

namespace loft {

// The most bytes a message's subject, or a group's filter, may have. Fixed, not a setting: the
// log, every wire and the group record carry it with room to spare (a u16 length on the wire).
inline constexpr std::size_t kMaxSubjectSize = 1024;

// A subject one may publish on: valid and without wildcard tokens.
bool is_valid_publish_subject(std::string_view subject) noexcept;
// A subject one may subscribe or filter with: valid, '>' only as the last token.
bool is_valid_filter_subject(std::string_view subject) noexcept;
// Whether `filter` (a filter subject) matches `subject` (a publish subject). Both are compared
// token by token as they are; the result for an invalid argument is defined (no crash) but
// meaningless.
bool subject_matches(std::string_view filter, std::string_view subject) noexcept;
// Whether some publish subject matches both filters `a` and `b` (valid filter subjects):
// "a.*" and "*.b" overlap (a.b), "a.>" and "a" do not. Symmetric. Defined but meaningless for
// an invalid argument.
bool subject_filters_overlap(std::string_view a, std::string_view b) noexcept;

// Takes a subject's tokens off its front, one by one: `done` once the last one was taken (a
// subject of n dots has n + 1 tokens; "" is one empty token).
struct SubjectTokens {
  std::string_view rest;
  bool done = false;

  std::string_view next() noexcept {
    const std::size_t dot = rest.find('.');
    const std::string_view token = rest.substr(0, dot);
    if (dot == std::string_view::npos) {
      done = true;
      rest = {};
    } else {
      rest.remove_prefix(dot + 1);
    }
    return token;
  }
};

}  // namespace loft
