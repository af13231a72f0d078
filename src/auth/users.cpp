// The users file: TOML, [[users]] tables, checked field by field.

// toml++ is used with its default TOML_EXCEPTIONS (on), as in src/config/config.cpp: the
// installed shared library only exports the throwing parser. The one parse_error is caught right
// at the call and becomes a Result, so no exception leaves this file. Keep toml++ out of every
// other translation unit of this module.
#include <toml++/toml.h>

#include <cerrno>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <unordered_set>

#include "loft/auth/auth.hpp"
#include "loft/common/text_file.hpp"

namespace loft::auth {
namespace {

constexpr std::string_view kArgon2idHashPrefix = "$argon2id$";
constexpr std::string_view kScryptHashPrefix = "$7$";
// libsodium's hash strings, NUL included, fit in 128 bytes.
constexpr std::size_t kMaxHash = 127;

// Where an error is: "users.toml:12: user 2 ('billing')". Knows the user's name once it is read.
class Where {
 public:
  Where(std::string_view source, std::size_t index) : source_(source), index_(index) {}
  void set_name(std::string name) { name_ = std::move(name); }

  tl::unexpected<Error> fail(const toml::node& node, std::string_view field,
                             const std::string& problem) const {
    std::string out(source_);
    // Appended piece by piece: g++ 12 at -O3 warns (-Wrestrict, wrongly) on "literal" + string.
    if (const auto line = node.source().begin.line; line > 0) {
      out += ':';
      out += std::to_string(line);
    }
    out += ": user ";
    out += std::to_string(index_);
    if (!name_.empty()) out += " ('" + name_ + "')";
    if (!field.empty()) out += ", field '" + std::string(field) + "'";
    out += ": " + problem;
    return loft::fail(Errc::invalid_request, std::move(out));
  }

 private:
  std::string_view source_;
  std::size_t index_;
  std::string name_;
};

bool has_control_char(std::string_view s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

Result<std::vector<TopicPattern>> patterns(const Where& where, std::string_view field,
                                           const toml::node& node) {
  const auto* array = node.as_array();
  if (array == nullptr) {
    return where.fail(node, field, "must be an array of topic patterns, e.g. [\"orders.*\"]");
  }
  std::vector<TopicPattern> out;
  for (const auto& element : *array) {
    const auto* text = element.as_string();
    if (text == nullptr) {
      return where.fail(element, field, "every element must be a string (a topic pattern)");
    }
    auto pattern = TopicPattern::parse(text->get());
    if (!pattern) return where.fail(element, field, pattern.error().detail);
    out.push_back(std::move(*pattern));
  }
  return out;
}

Result<User> parse_user(const Where& where_in, const toml::table& table) {
  Where where = where_in;
  User user;
  const auto* name_node = table.get("name");
  if (name_node == nullptr) return where.fail(table, "name", "is missing");
  const auto* name = name_node->as_string();
  if (name == nullptr) return where.fail(*name_node, "name", "must be a string");
  const std::string& text = name->get();
  if (text.empty()) return where.fail(*name_node, "name", "cannot be empty");
  if (text.size() > kMaxUserName) {
    return where.fail(*name_node, "name",
                      "is longer than " + std::to_string(kMaxUserName) + " bytes");
  }
  if (has_control_char(text)) {
    return where.fail(*name_node, "name", "cannot contain control characters");
  }
  user.name = text;
  where.set_name(text);

  for (const auto& [key, node] : table) {
    const std::string_view field = key.str();
    if (field == "name") continue;
    if (field == "password_hash") {
      const auto* hash = node.as_string();
      if (hash == nullptr) return where.fail(node, field, "must be a string");
      const std::string& h = hash->get();
      if (!h.starts_with(kArgon2idHashPrefix) && !h.starts_with(kScryptHashPrefix)) {
        return where.fail(node, field,
                          "must be an Argon2id hash (\"$argon2id$...\") or a scrypt hash "
                          "(\"$7$...\"), as `loft user hash-password` prints");
      }
      if (h.size() > kMaxHash || has_control_char(h)) {
        return where.fail(node, field, "is not a well-formed password hash");
      }
      user.password_hash = h;
      continue;
    }
    std::vector<TopicPattern>* list = nullptr;
    if (field == "publish") list = &user.permissions.publish;
    if (field == "subscribe") list = &user.permissions.subscribe;
    if (field == "admin") list = &user.permissions.admin;
    if (field == "deny") list = &user.permissions.deny;
    if (list == nullptr) {
      return where.fail(node, field,
                        "unknown field; a user has name, password_hash, publish, subscribe, "
                        "admin and deny");
    }
    auto parsed = patterns(where, field, node);
    if (!parsed) return tl::unexpected(parsed.error());
    *list = std::move(*parsed);
  }
  return user;
}

}  // namespace

Result<Users> Users::parse(std::string_view toml_text, std::string_view source_name) {
  toml::table table;
  try {
    table = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return toml_syntax_error(source_name, where.line, where.column, e.description());
  }
  Users users;
  for (const auto& [key, node] : table) {
    if (key.str() != "users") {
      return fail(Errc::invalid_request, std::string(source_name) + ": unknown key '" +
                                             std::string(key.str()) +
                                             "'; the file holds only [[users]] tables");
    }
    const auto* array = node.as_array();
    if (array == nullptr) {
      return fail(Errc::invalid_request,
                  std::string(source_name) + ": 'users' must be an array of tables ([[users]])");
    }
    std::unordered_set<std::string> seen;
    std::size_t index = 0;
    for (const auto& element : *array) {
      ++index;
      Where where(source_name, index);
      const auto* user_table = element.as_table();
      if (user_table == nullptr) return where.fail(element, "", "must be a table ([[users]])");
      auto user = parse_user(where, *user_table);
      if (!user) return tl::unexpected(user.error());
      if (!seen.insert(user->name).second) {
        where.set_name(user->name);
        return where.fail(*user_table->get("name"), "name", "an earlier user has this name");
      }
      users.users_.push_back(std::move(*user));
    }
  }
  return users;
}

Result<Users> Users::load(const std::filesystem::path& path) {
  auto text = read_text_file(path, "users file");
  if (!text) return tl::unexpected(text.error());
  return parse(*text, path.string());
}

const User* Users::find(std::string_view name) const {
  for (const auto& user : users_) {
    if (user.name == name) return &user;
  }
  return nullptr;
}

}  // namespace loft::auth
