#include "js_message.hpp"

#include <charconv>
#include <vector>

#include "loft/nats/headers.hpp"

namespace loft::natsport::js {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::optional<std::uint64_t> number(std::string_view text) {
  std::uint64_t n = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, n);
  if (ec != std::errc{} || ptr != end) return std::nullopt;
  return n;
}

template <class H>
std::string block_of(std::string_view id, std::span<const H> headers) {
  if (id.empty() && headers.empty()) return {};
  std::vector<HeaderView> all;
  all.reserve(headers.size() + 1);
  if (!id.empty()) all.push_back(HeaderView{kMsgIdHeader, id});
  for (const auto& h : headers) all.push_back(HeaderView{h.name, h.value});
  std::string out;
  nats::append_headers(out, 0, "", std::span<const HeaderView>(all));
  return out;
}

}  // namespace

nats::Result<Incoming> incoming_message(std::string_view subject, std::string_view header_block,
                                        std::string_view payload) {
  Incoming in;
  in.message.subject = std::string(subject);
  in.message.payload = std::string(payload);
  if (header_block.empty()) return in;
  auto block = nats::parse_headers(header_block);
  if (!block) return tl::unexpected(block.error());
  for (auto& h : block->headers) {
    // NATS clients spell these names exactly so; nats-server compares them exactly too, and loft
    // takes any case so that a header meant as a check is never stored as data.
    if (iequals(h.name, kMsgIdHeader)) {
      in.message.id = std::move(h.value);
    } else if (iequals(h.name, kExpectedStream)) {
      in.expect.stream = std::move(h.value);
    } else if (iequals(h.name, kExpectedLastMsgId)) {
      in.expect.last_msg_id = std::move(h.value);
    } else if (iequals(h.name, kExpectedLastSequence) ||
               iequals(h.name, kExpectedLastSubjectSequence)) {
      const auto n = number(h.value);
      if (!n) return nats::fail(nats::ErrorCode::bad_header, h.name + " is not a number");
      (iequals(h.name, kExpectedLastSequence) ? in.expect.last_sequence
                                              : in.expect.last_subject_sequence) = *n;
    } else {
      in.message.headers.push_back(std::move(h));
    }
  }
  return in;
}

std::string nats_header_block(std::string_view id, std::span<const Header> headers) {
  return block_of(id, headers);
}

std::string nats_header_block(std::string_view id, std::span<const HeaderView> headers) {
  return block_of(id, headers);
}

}  // namespace loft::natsport::js
