#include "loft/common/text_file.hpp"

#include <cerrno>
#include <fstream>
#include <iterator>
#include <system_error>

namespace loft {

Result<std::string> read_text_file(const std::filesystem::path& path, std::string_view what) {
  const std::string named = "cannot read " + std::string(what) + " '" + path.string() + "'";
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return fail(Errc::invalid_request, named + ": it is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    return fail(Errc::invalid_request, named + ": " + std::generic_category().message(err));
  }
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) return fail(Errc::invalid_request, named);
  return text;
}

tl::unexpected<Error> toml_syntax_error(std::string_view source, std::size_t line,
                                        std::size_t column, std::string_view description) {
  std::string detail(source);
  // Piecewise: g++ 12 -O3 flags `"lit" + std::string` with a false -Wrestrict.
  detail += ':';
  detail += std::to_string(line);
  detail += ':';
  detail += std::to_string(column);
  detail += ": TOML syntax error: ";
  detail += description;
  return fail(Errc::invalid_request, std::move(detail));
}

}  // namespace loft
