#include "loft/nats/parser.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <string>

#include "loft/nats/encode.hpp"

namespace loft::nats {
namespace {

enum class OpName : std::uint8_t { connect, pub, hpub, sub, unsub, ping, pong };
constexpr std::array<std::string_view, 7> kOpNames = {"CONNECT", "PUB",  "HPUB", "SUB",
                                                      "UNSUB",   "PING", "PONG"};
constexpr std::size_t kLongestOpName = 7;

char upper(char c) noexcept { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

// Whether `token` is `name` (upper case) or, when `partial`, the start of it.
bool matches_name(std::string_view token, std::string_view name, bool partial) noexcept {
  if (token.size() > name.size() || (!partial && token.size() != name.size())) return false;
  for (std::size_t i = 0; i < token.size(); ++i) {
    if (upper(token[i]) != name[i]) return false;
  }
  return true;
}

bool is_blank(char c) noexcept { return c == ' ' || c == '\t'; }

// Up to 4 arguments separated by runs of blanks; more than 4 is always an error.
struct Args {
  std::array<std::string_view, 4> at;
  std::size_t count = 0;
  bool too_many = false;
};

Args split(std::string_view s) noexcept {
  Args args;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_blank(s[i])) ++i;
    if (i == s.size()) break;
    const std::size_t start = i;
    while (i < s.size() && !is_blank(s[i])) ++i;
    if (args.count == args.at.size()) {
      args.too_many = true;
      break;
    }
    args.at[args.count++] = s.substr(start, i - start);
  }
  return args;
}

// Decimal digits only (no sign, no space), without overflow.
std::optional<std::uint64_t> parse_number(std::string_view s) noexcept {
  if (s.empty()) return std::nullopt;
  std::uint64_t n = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (n > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return std::nullopt;
    n = n * 10 + digit;
  }
  return n;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

struct Parsed {
  Op op;
  std::size_t size = 0;  // bytes of the stream the op took
};

using ParseResult = Result<std::optional<Parsed>>;

ParseResult need_more() { return std::optional<Parsed>{}; }
ParseResult parsed(Op op, std::size_t size) { return std::optional<Parsed>(Parsed{op, size}); }

// The payload of PUB/HPUB after the control line that ends at `line_end` (its LF).
// `header_size`: the HPUB's header bytes at the start of the payload.
ParseResult with_payload(std::string_view in, std::size_t line_end, std::uint64_t size64,
                         std::uint64_t header_size, Op op) {
  if (size64 > std::numeric_limits<std::size_t>::max() / 2) {
    return fail(ErrorCode::max_payload, "payload size beyond the address space");
  }
  const auto size = static_cast<std::size_t>(size64);
  const std::size_t start = line_end + 1;
  const std::size_t end = start + size;  // where the CRLF must be
  if (in.size() > end && in[end] != '\r') {
    return fail(ErrorCode::unknown_operation, "no CRLF after the payload");
  }
  if (in.size() > end + 1 && in[end + 1] != '\n') {
    return fail(ErrorCode::unknown_operation, "no CRLF after the payload");
  }
  if (in.size() < end + 2) return need_more();
  const std::string_view body = in.substr(start, size);
  if (auto* pub = std::get_if<Pub>(&op)) {
    pub->payload = body;
  } else {
    auto& hpub = std::get<HPub>(op);
    hpub.headers = body.substr(0, static_cast<std::size_t>(header_size));
    hpub.payload = body.substr(static_cast<std::size_t>(header_size));
  }
  return parsed(op, end + 2);
}

ParseResult parse_one(std::string_view in, const ParserLimits& limits) {
  // The op name first, so garbage is refused before a whole line has arrived.
  std::size_t name_end = 0;
  while (name_end < in.size() && !is_blank(in[name_end]) && in[name_end] != '\r' &&
         in[name_end] != '\n') {
    ++name_end;
  }
  const std::string_view name = in.substr(0, name_end);
  const bool name_complete = name_end < in.size();
  std::optional<OpName> op;
  bool possible = false;
  for (std::size_t i = 0; i < kOpNames.size(); ++i) {
    if (matches_name(name, kOpNames[i], !name_complete)) {
      possible = true;
      if (name_complete) op = static_cast<OpName>(i);
    }
  }
  if (name.size() > kLongestOpName || (name_complete && name.empty()) || !possible) {
    return fail(ErrorCode::unknown_operation, "not a client protocol operation");
  }

  // A line of max_control_line bytes and its CRLF; more without an LF is too long already.
  const std::size_t with_crlf = std::max(limits.max_control_line, limits.max_control_line + 2);
  const std::size_t line_end = in.substr(0, with_crlf).find('\n');
  if (line_end == std::string_view::npos) {
    if (in.size() >= with_crlf) {
      return fail(ErrorCode::max_control_line,
                  "control line longer than " + std::to_string(limits.max_control_line));
    }
    return need_more();
  }
  std::string_view line = in.substr(0, line_end);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > limits.max_control_line) {
    return fail(ErrorCode::max_control_line,
                "control line longer than " + std::to_string(limits.max_control_line));
  }
  const std::string_view rest = line.substr(std::min(name_end, line.size()));
  const std::size_t consumed = line_end + 1;
  const auto bad = [&](std::string_view what) {
    return fail(ErrorCode::bad_arguments,
                std::string(kOpNames[static_cast<std::size_t>(*op)]) + ": " + std::string(what));
  };

  switch (*op) {
    case OpName::ping:
      return parsed(Ping{}, consumed);  // nats-server ignores the rest of the line too
    case OpName::pong:
      return parsed(Pong{}, consumed);
    case OpName::connect: {
      const std::string_view json = trim(rest);
      if (json.empty()) return bad("no options");
      return parsed(Connect{json}, consumed);
    }
    case OpName::sub: {
      const Args a = split(rest);
      if (a.too_many || a.count < 2 || a.count > 3) return bad("wrong number of arguments");
      if (a.count == 2) return parsed(Sub{a.at[0], {}, a.at[1]}, consumed);
      return parsed(Sub{a.at[0], a.at[1], a.at[2]}, consumed);
    }
    case OpName::unsub: {
      const Args a = split(rest);
      if (a.too_many || a.count < 1 || a.count > 2) return bad("wrong number of arguments");
      Unsub unsub{a.at[0], std::nullopt};
      if (a.count == 2) {
        unsub.max_msgs = parse_number(a.at[1]);
        if (!unsub.max_msgs) return bad("bad max_msgs");
      }
      return parsed(unsub, consumed);
    }
    case OpName::pub: {
      const Args a = split(rest);
      if (a.too_many || a.count < 2 || a.count > 3) return bad("wrong number of arguments");
      const auto size = parse_number(a.at[a.count - 1]);
      if (!size) return bad("bad or missing size");
      if (*size > limits.max_payload) {
        return fail(ErrorCode::max_payload, "PUB of " + std::to_string(*size) + " bytes, max " +
                                                std::to_string(limits.max_payload));
      }
      Pub pub{a.at[0], a.count == 3 ? a.at[1] : std::string_view{}, {}};
      return with_payload(in, line_end, *size, 0, pub);
    }
    case OpName::hpub: {
      const Args a = split(rest);
      if (a.too_many || a.count < 3) return bad("wrong number of arguments");
      const auto header_size = parse_number(a.at[a.count - 2]);
      const auto total_size = parse_number(a.at[a.count - 1]);
      if (!header_size || !total_size) return bad("bad or missing size");
      if (*header_size > *total_size) return bad("header size larger than total size");
      if (*total_size > limits.max_payload) {
        return fail(ErrorCode::max_payload, "HPUB of " + std::to_string(*total_size) +
                                                " bytes, max " +
                                                std::to_string(limits.max_payload));
      }
      HPub hpub{a.at[0], a.count == 4 ? a.at[1] : std::string_view{}, {}, {}};
      return with_payload(in, line_end, *total_size, *header_size, hpub);
    }
  }
  return bad("unreachable");
}

}  // namespace

void append_op(std::string& out, const Op& op) {
  struct Append {
    std::string& out;
    void operator()(const Connect& c) const { append_connect(out, c.json); }
    void operator()(const Pub& p) const { append_pub(out, p.subject, p.reply, p.payload); }
    void operator()(const HPub& p) const {
      append_hpub(out, p.subject, p.reply, p.headers, p.payload);
    }
    void operator()(const Sub& s) const { append_sub(out, s.subject, s.queue, s.sid); }
    void operator()(const Unsub& u) const { append_unsub(out, u.sid, u.max_msgs); }
    void operator()(const Ping&) const { append_ping(out); }
    void operator()(const Pong&) const { append_pong(out); }
  };
  std::visit(Append{out}, op);
}

std::span<char> Parser::prepare(std::size_t at_least) {
  if (begin_ > 0) {
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == 0 && buf_.size() > kKeepCapacity) std::vector<char>().swap(buf_);
  if (buf_.size() - end_ < at_least) buf_.resize(end_ + at_least);
  return {buf_.data() + end_, buf_.size() - end_};
}

void Parser::feed(std::string_view bytes) {
  if (error_ || bytes.empty()) return;
  const auto room = prepare(bytes.size());
  std::memcpy(room.data(), bytes.data(), bytes.size());
  commit(bytes.size());
}

Result<std::optional<Op>> Parser::next() {
  if (error_) return tl::unexpected(*error_);
  if (begin_ == end_) return std::optional<Op>{};
  auto r = parse_one(std::string_view(buf_.data() + begin_, end_ - begin_), limits_);
  if (!r) {
    error_ = r.error();
    return tl::unexpected(*error_);
  }
  if (!*r) return std::optional<Op>{};
  begin_ += (*r)->size;
  return std::optional<Op>((*r)->op);
}

}  // namespace loft::nats
