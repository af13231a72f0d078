#pragma once
// Reading a whole configuration-like file (loftd.toml, the users file) with one kind of error:
// invalid_request, naming what the file is, its path and why ("cannot read users file
// '/etc/loft/users.toml': No such file or directory").

#include <filesystem>
#include <string>
#include <string_view>

#include "loft/common/error.hpp"

namespace loft {

// `what` names the file in the error: "config file", "users file".
Result<std::string> read_text_file(const std::filesystem::path& path, std::string_view what);

}  // namespace loft
