#include "loft/nats/encode.hpp"

#include <array>
#include <charconv>

namespace loft::nats {
namespace {

// " <token>", nothing for an empty (absent) token.
void append_token(std::string& out, std::string_view token) {
  if (token.empty()) return;
  out += ' ';
  out += token;
}

// " <n>"
void append_size(std::string& out, std::uint64_t n) {
  std::array<char, 20> digits{};
  const auto r = std::to_chars(digits.data(), digits.data() + digits.size(), n);
  out += ' ';
  out.append(digits.data(), r.ptr);
}

// "<op> <a> <b> <c>", leaving out the empty (absent) ones.
void append_head(std::string& out, std::string_view op, std::string_view a, std::string_view b,
                 std::string_view c) {
  out += op;
  append_token(out, a);
  append_token(out, b);
  append_token(out, c);
}

void append_body(std::string& out, std::string_view headers, std::string_view payload) {
  out += headers;
  out += payload;
  out += "\r\n";
}

void append_line(std::string& out, std::string_view op, std::string_view text) {
  out += op;
  append_token(out, text);
  out += "\r\n";
}

}  // namespace

void append_info(std::string& out, std::string_view json) { append_line(out, "INFO", json); }

void append_msg_line(std::string& out, std::string_view subject, std::string_view sid,
                     std::string_view reply, std::size_t payload_size) {
  append_head(out, "MSG", subject, sid, reply);
  append_size(out, payload_size);
  out += "\r\n";
}

void append_msg(std::string& out, std::string_view subject, std::string_view sid,
                std::string_view reply, std::string_view payload) {
  append_msg_line(out, subject, sid, reply, payload.size());
  append_body(out, {}, payload);
}

void append_hmsg_line(std::string& out, std::string_view subject, std::string_view sid,
                      std::string_view reply, std::size_t headers_size, std::size_t total_size) {
  append_head(out, "HMSG", subject, sid, reply);
  append_size(out, headers_size);
  append_size(out, total_size);
  out += "\r\n";
}

void append_hmsg(std::string& out, std::string_view subject, std::string_view sid,
                 std::string_view reply, std::string_view headers, std::string_view payload) {
  append_hmsg_line(out, subject, sid, reply, headers.size(), headers.size() + payload.size());
  append_body(out, headers, payload);
}

void append_crlf(std::string& out) { out += "\r\n"; }
void append_ok(std::string& out) { out += "+OK\r\n"; }

void append_err(std::string& out, std::string_view text) {
  out += "-ERR '";
  out += text;
  out += "'\r\n";
}

void append_ping(std::string& out) { out += "PING\r\n"; }
void append_pong(std::string& out) { out += "PONG\r\n"; }

void append_connect(std::string& out, std::string_view json) { append_line(out, "CONNECT", json); }

void append_pub(std::string& out, std::string_view subject, std::string_view reply,
                std::string_view payload) {
  append_head(out, "PUB", subject, reply, {});
  append_size(out, payload.size());
  out += "\r\n";
  append_body(out, {}, payload);
}

void append_hpub(std::string& out, std::string_view subject, std::string_view reply,
                 std::string_view headers, std::string_view payload) {
  append_head(out, "HPUB", subject, reply, {});
  append_size(out, headers.size());
  append_size(out, headers.size() + payload.size());
  out += "\r\n";
  append_body(out, headers, payload);
}

void append_sub(std::string& out, std::string_view subject, std::string_view queue,
                std::string_view sid) {
  append_head(out, "SUB", subject, queue, sid);
  out += "\r\n";
}

void append_unsub(std::string& out, std::string_view sid, std::optional<std::uint64_t> max_msgs) {
  out += "UNSUB";
  append_token(out, sid);
  if (max_msgs) append_size(out, *max_msgs);
  out += "\r\n";
}

}  // namespace loft::nats
