#pragma once
// Encoders of the NATS protocol, appending to a caller's buffer (the connection's outgoing
// buffer): no allocation of their own, numbers written with std::to_chars.
//
// REQUIRES for every subject, reply, sid and queue: one token of the control line (no space,
// tab, CR or LF), reply and queue empty for none. The front end sends only subjects it has
// validated or made itself.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace loft::nats {

// What the server sends.
void append_info(std::string& out, std::string_view json);
// `MSG <subject> <sid> [reply] <#bytes>\r\n<payload>\r\n`
void append_msg(std::string& out, std::string_view subject, std::string_view sid,
                std::string_view reply, std::string_view payload);
// The control line only (with its CRLF): the caller appends the payload and append_crlf, e.g.
// from stored message views without assembling the payload first.
void append_msg_line(std::string& out, std::string_view subject, std::string_view sid,
                     std::string_view reply, std::size_t payload_size);
// `HMSG <subject> <sid> [reply] <#header bytes> <#total bytes>\r\n<headers><payload>\r\n`;
// `headers` is a complete block (append_headers).
void append_hmsg(std::string& out, std::string_view subject, std::string_view sid,
                 std::string_view reply, std::string_view headers, std::string_view payload);
void append_hmsg_line(std::string& out, std::string_view subject, std::string_view sid,
                      std::string_view reply, std::size_t headers_size, std::size_t total_size);
void append_crlf(std::string& out);
void append_ok(std::string& out);
// `-ERR '<text>'`; `text` is one of the kErr* texts (error.hpp) or Error::text().
void append_err(std::string& out, std::string_view text);
void append_ping(std::string& out);
void append_pong(std::string& out);

// What a client sends (tests, fuzzing, and loft's own tools).
void append_connect(std::string& out, std::string_view json);
void append_pub(std::string& out, std::string_view subject, std::string_view reply,
                std::string_view payload);
void append_hpub(std::string& out, std::string_view subject, std::string_view reply,
                 std::string_view headers, std::string_view payload);
void append_sub(std::string& out, std::string_view subject, std::string_view queue,
                std::string_view sid);
void append_unsub(std::string& out, std::string_view sid,
                  std::optional<std::uint64_t> max_msgs = std::nullopt);

}  // namespace loft::nats
