// Command-line conventions shared by both tools: `PROGRAM CMD --help` (the usage lines of one
// command, cut from the program's usage text: its block starts with "  PROGRAM CMD" and ends
// before the next command), `--opt=value` spelled either way, and "did you mean" for mistyped
// options, suggested from the same usage text.
#pragma once

#include <algorithm>
#include <cstdio>
#include <regex>
#include <string>
#include <vector>

namespace ingot::cli {

// The usage block of `cmd`, or "" when the usage text has no such command.
inline std::string command_usage(const std::string& usage, const std::string& program, const std::string& cmd) {
  const std::string prefix = "  " + program + " ";
  size_t at = usage.find(prefix + cmd + " ");
  if (at == std::string::npos) at = usage.find(prefix + cmd + "\n");
  if (at == std::string::npos) return "";
  size_t end = usage.find("\n" + prefix, at + 1);
  if (end == std::string::npos) end = usage.find("\n\n", at);
  return usage.substr(at, end == std::string::npos ? std::string::npos : end - at + 1);
}

// Prints the block and returns true; false when the usage text has no such command.
inline bool print_command_help(const std::string& usage, const std::string& program, const std::string& cmd) {
  const std::string block = command_usage(usage, program, cmd);
  if (block.empty()) return false;
  std::fputs(("Usage:\n" + block).c_str(), stdout);
  return true;
}

// "--name=value" -> "--name", "value" (the first '=' splits), so that every option takes either
// spelling; a lone "-" or anything not starting with "--" is left alone.
inline std::vector<std::string> split_option_values(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (const std::string& a : args) {
    const size_t eq = a.find('=');
    if (a.rfind("--", 0) == 0 && a.size() > 2 && eq != std::string::npos && eq > 2) {
      out.push_back(a.substr(0, eq));
      out.push_back(a.substr(eq + 1));
    } else {
      out.push_back(a);
    }
  }
  return out;
}

inline size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// The option of `cmd`'s usage closest to `typed` (at most two edits, or a unique prefix), or "".
inline std::string closest_option(const std::string& usage, const std::string& program, const std::string& cmd,
                                  const std::string& typed) {
  const std::string block = command_usage(usage, program, cmd);
  static const std::regex option(R"((^|[\s\[|(])(--?[A-Za-z][A-Za-z0-9-]*))");
  std::string best;
  size_t best_d = 3;
  for (auto it = std::sregex_iterator(block.begin(), block.end(), option); it != std::sregex_iterator(); ++it) {
    const std::string o = (*it)[2];
    if (o == typed) continue;
    const size_t d = edit_distance(o, typed);
    if (d < best_d || (typed.size() > 3 && o.rfind(typed, 0) == 0 && best_d > 1)) {
      best = o;
      best_d = std::min(d, size_t{1});
    }
  }
  return best;
}

// The program's usage text, registered by main, so that usage errors can suggest options.
inline const char*& registered_usage() {
  static const char* usage = nullptr;
  return usage;
}

// "CMD: unknown option 'X'" gets " (did you mean --Y?)" when the usage of CMD has a close option.
inline std::string with_suggestion(const std::string& msg, const std::string& program) {
  static const std::regex unknown(R"(^([a-z-]+): unknown option '([^']*)'$)");
  std::smatch m;
  if (!registered_usage() || !std::regex_match(msg, m, unknown)) return msg;
  const std::string typed = m[2].str().substr(0, m[2].str().find('='));
  const std::string best = closest_option(registered_usage(), program, m[1], typed);
  return best.empty() ? msg : msg + " (did you mean " + best + "?)";
}

}  // namespace ingot::cli
