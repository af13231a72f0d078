#pragma once
// Reading a whole configuration-like file (loftd.toml, the users file) with one kind of error:
// invalid_request, naming what the file is, its path and why ("cannot read users file
// '/etc/loft/users.toml': No such file or directory"), and the one shape of its syntax errors.

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "loft/common/error.hpp"

namespace loft {

// `what` names the file in the error: "config file", "users file".
Result<std::string> read_text_file(const std::filesystem::path& path, std::string_view what);

// invalid_request "SOURCE:LINE:COLUMN: TOML syntax error: DESCRIPTION": what the parsers of
// loftd.toml and the users file answer for text that is not TOML (each catches toml++'s
// parse_error itself, so toml++ stays out of this module).
tl::unexpected<Error> toml_syntax_error(std::string_view source, std::size_t line,
                                        std::size_t column, std::string_view description);

}  // namespace loft
