// `PROGRAM CMD --help` for both command-line tools: the usage lines of one command, cut from the
// program's usage text (its block starts with "  PROGRAM CMD" and ends before the next command).
#pragma once

#include <cstdio>
#include <string>

namespace ingot::cli {

// Prints the block and returns true; false when the usage text has no such command.
inline bool print_command_help(const std::string& usage, const std::string& program, const std::string& cmd) {
  const std::string prefix = "  " + program + " ";
  size_t at = usage.find(prefix + cmd + " ");
  if (at == std::string::npos) at = usage.find(prefix + cmd + "\n");
  if (at == std::string::npos) return false;
  size_t end = usage.find("\n" + prefix, at + 1);
  if (end == std::string::npos) end = usage.find("\n\n", at);
  std::fputs(("Usage:\n" + usage.substr(at, end == std::string::npos ? std::string::npos : end - at + 1)).c_str(), stdout);
  return true;
}

}  // namespace ingot::cli
