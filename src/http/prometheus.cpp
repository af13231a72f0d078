#include "loft/http/prometheus.hpp"

#include <array>
#include <charconv>
#include <cmath>

namespace loft::http {

namespace {

enum class Quote { keep, escape };

// Backslash and newline always; the double quote only inside label values.
std::string escape(std::string_view text, Quote quote) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote == Quote::escape) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string escape_label_value(std::string_view value) { return escape(value, Quote::escape); }
std::string escape_help(std::string_view help) { return escape(help, Quote::keep); }

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  std::array<char, 32> buf{};
  const auto [end, ec] =
      std::to_chars(buf.data(), buf.data() + buf.size(), value, std::chars_format::general);
  if (ec != std::errc{}) return "NaN";  // cannot happen: 32 bytes hold any double
  return std::string(buf.data(), end);
}

void Exposition::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += escape_help(help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void Exposition::start_sample(std::string_view name, Labels labels) {
  out_ += name;
  if (labels.size() > 0) {
    out_ += '{';
    bool first = true;
    for (const auto& [label, value] : labels) {
      if (!first) out_ += ',';
      first = false;
      out_ += label;
      out_ += "=\"";
      out_ += escape_label_value(value);
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ';
}

void Exposition::sample(std::string_view name, Labels labels, std::uint64_t value) {
  start_sample(name, labels);
  out_ += std::to_string(value);
  out_ += '\n';
}

void Exposition::sample(std::string_view name, Labels labels, double value) {
  start_sample(name, labels);
  out_ += format_value(value);
  out_ += '\n';
}

}  // namespace loft::http
