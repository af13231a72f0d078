// loft user hash-password: the Argon2id hash of a password, for the users file.

#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iostream>
#include <string>

#include "commands.hpp"
#include "loft/auth/auth.hpp"

namespace loft::cli {
namespace {

// The terminal's settings while echo is off, for the signal handler to put back.
termios saved_terminal{};

void restore_and_reraise(int sig) {
  tcsetattr(STDIN_FILENO, TCSANOW, &saved_terminal);
  signal(sig, SIG_DFL);
  raise(sig);
}

// Echo off on standard input (a terminal) for as long as it lives; restored on every way out,
// Ctrl-C included.
class NoEcho {
 public:
  NoEcho() {
    if (tcgetattr(STDIN_FILENO, &saved_terminal) != 0) throw Failure{"cannot read the terminal"};
    termios quiet = saved_terminal;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;  // the newline typed still shows, so the next prompt starts a line
    signal(SIGINT, restore_and_reraise);
    signal(SIGTERM, restore_and_reraise);
    signal(SIGHUP, restore_and_reraise);
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0) {
      restore_signals();
      throw Failure{"cannot turn off the terminal's echo"};
    }
  }
  ~NoEcho() {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_terminal);
    restore_signals();
  }
  NoEcho(const NoEcho&) = delete;
  NoEcho& operator=(const NoEcho&) = delete;

 private:
  static void restore_signals() {
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
  }
};

// One line from standard input, without its line end; false at end of input before any byte.
// Reads byte by byte with read(2): nothing stays behind in a buffer.
bool read_line(std::string& line) {
  line.clear();
  bool any = false;
  for (;;) {
    char c = 0;
    const auto n = ::read(STDIN_FILENO, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Failure{"cannot read the password from standard input"};
    if (n == 0) break;
    any = true;
    if (c == '\n') break;
    line += c;
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return any;
}

std::string prompt(const char* text) {
  std::cerr << text << std::flush;
  std::string line;
  if (!read_line(line)) {
    std::cerr << "\n";
    throw Failure{"no password given"};
  }
  return line;
}

// Overwrites a password before its memory is freed.
void wipe(std::string& s) {
  std::fill(s.begin(), s.end(), '\0');
  s.clear();
}

std::string read_password() {
  std::string password;
  if (isatty(STDIN_FILENO) == 0) {
    read_line(password);
    return password;
  }
  std::string repeat;
  {
    NoEcho no_echo;
    password = prompt("Password: ");
    if (!password.empty()) repeat = prompt("Repeat: ");
  }
  const bool same = password == repeat;
  wipe(repeat);
  if (!password.empty() && !same) {
    wipe(password);
    throw Failure{"the passwords do not match"};
  }
  return password;
}

int hash_password_command() {
  std::string password = read_password();
  if (password.empty()) throw Failure{"the password is empty"};
  if (password.size() > auth::kMaxPassword) {
    wipe(password);
    throw Failure{"the password is longer than " + std::to_string(auth::kMaxPassword) + " bytes"};
  }
  auto hash = auth::hash_password(password);
  wipe(password);
  std::cout << check(std::move(hash)) << "\n";
  return 0;
}

}  // namespace

int user_command(Common& c) {
  const auto& sub = word(c, 1, "user command: hash-password");
  if (sub != "hash-password") usage_error("unknown user command '" + sub + "'");
  expect_words(c, 2);
  if (c.json) usage_error("--json does not apply to 'loft user hash-password'");
  return hash_password_command();
}

}  // namespace loft::cli
