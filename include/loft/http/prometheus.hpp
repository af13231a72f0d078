#pragma once
// Prometheus text exposition format (version 0.0.4): HELP and TYPE lines, then samples with
// escaped label values. Pure: builds a string, no IO.

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace loft::http {

using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

// Label values escape backslash, double quote and newline; HELP text escapes backslash and
// newline (the exposition format's rules).
std::string escape_label_value(std::string_view value);
std::string escape_help(std::string_view help);
// Shortest text that reads back as the same double; "+Inf", "-Inf", "NaN" for the specials.
std::string format_value(double value);

class Exposition {
 public:
  // Starts a family: `# HELP name help` and `# TYPE name type` ("counter", "gauge",
  // "histogram"). REQUIRES: each family once, its samples right after it.
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, Labels labels, std::uint64_t value);
  void sample(std::string_view name, Labels labels, double value);
  // A family of one sample without labels.
  void single(std::string_view name, std::string_view type, std::string_view help,
              std::uint64_t value) {
    family(name, type, help);
    sample(name, {}, value);
  }

  const std::string& text() const { return out_; }

 private:
  void start_sample(std::string_view name, Labels labels);
  std::string out_;
};

}  // namespace loft::http
