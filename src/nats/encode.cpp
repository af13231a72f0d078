#include "loft/nats/encode.hpp"

#include <array>
#include <charconv>

namespace loft::nats {
namespace {

void append_number(std::string& out, std::uint64_t n) {
  std::array<char, 20> digits{};
  const auto r = std::to_chars(digits.data(), digits.data() + digits.size(), n);
  out.append(digits.data(), r.ptr);
}

// " <token>" when the token is present.
void append_optional(std::string& out, std::string_view token) {
  if (token.empty()) return;
  out += ' ';
  out += token;
}

void append_line(std::string& out, std::string_view op, std::string_view text) {
  out += op;
  out += ' ';
  out += text;
  out += "\r\n";
}

}  // namespace

void append_info(std::string& out, std::string_view json) { append_line(out, "INFO", json); }

void append_msg_line(std::string& out, std::string_view subject, std::string_view sid,
                     std::string_view reply, std::size_t payload_size) {
  out += "MSG ";
  out += subject;
  out += ' ';
  out += sid;
  append_optional(out, reply);
  out += ' ';
  append_number(out, payload_size);
  out += "\r\n";
}

void append_msg(std::string& out, std::string_view subject, std::string_view sid,
                std::string_view reply, std::string_view payload) {
  append_msg_line(out, subject, sid, reply, payload.size());
  out += payload;
  out += "\r\n";
}

void append_hmsg_line(std::string& out, std::string_view subject, std::string_view sid,
                      std::string_view reply, std::size_t headers_size, std::size_t total_size) {
  out += "HMSG ";
  out += subject;
  out += ' ';
  out += sid;
  append_optional(out, reply);
  out += ' ';
  append_number(out, headers_size);
  out += ' ';
  append_number(out, total_size);
  out += "\r\n";
}

void append_hmsg(std::string& out, std::string_view subject, std::string_view sid,
                 std::string_view reply, std::string_view headers, std::string_view payload) {
  append_hmsg_line(out, subject, sid, reply, headers.size(), headers.size() + payload.size());
  out += headers;
  out += payload;
  out += "\r\n";
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
  out += "PUB ";
  out += subject;
  append_optional(out, reply);
  out += ' ';
  append_number(out, payload.size());
  out += "\r\n";
  out += payload;
  out += "\r\n";
}

void append_hpub(std::string& out, std::string_view subject, std::string_view reply,
                 std::string_view headers, std::string_view payload) {
  out += "HPUB ";
  out += subject;
  append_optional(out, reply);
  out += ' ';
  append_number(out, headers.size());
  out += ' ';
  append_number(out, headers.size() + payload.size());
  out += "\r\n";
  out += headers;
  out += payload;
  out += "\r\n";
}

void append_sub(std::string& out, std::string_view subject, std::string_view queue,
                std::string_view sid) {
  out += "SUB ";
  out += subject;
  append_optional(out, queue);
  out += ' ';
  out += sid;
  out += "\r\n";
}

void append_unsub(std::string& out, std::string_view sid, std::optional<std::uint64_t> max_msgs) {
  out += "UNSUB ";
  out += sid;
  if (max_msgs) {
    out += ' ';
    append_number(out, *max_msgs);
  }
  out += "\r\n";
}

}  // namespace loft::nats
