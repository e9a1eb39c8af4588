// Helpers shared by ingotc's commands (tools/ingotc.cpp, tools/compile_command.cpp): messages and
// exit codes, "--name VALUE" / "--name=VALUE" options (atomic writes: runtime/atomic_file.h; whole-file
// reads: hf::read_file in frontend/hf_config.h).
#pragma once

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "tools/command_help.h"

#include "base/status.h"

namespace ingot::cli {

// Bad usage: the message, a pointer to --help, exit status 2.
inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

inline int usage_error(const std::string& msg) {
  std::fprintf(stderr, "ingotc: %s\nRun 'ingotc --help' for usage.\n", cli::with_suggestion(msg, "ingotc").c_str());
  return 2;
}

// A user error (bad file, bad model): exit status 1.
inline int fail(const Status& st) {
  std::fprintf(stderr, "ingotc: error: %s\n", st.message().c_str());
  return 1;
}

// Reads "--name=VALUE" or "--name VALUE" at args[i] (advancing i past a separate value). Returns
// false when args[i] is not that option; sets *error when its value is missing.
inline bool option_value(const std::vector<std::string>& args, size_t& i, const std::string& name, std::string* value,
                         std::string* error) {
  const std::string& a = args[i];
  if (a.rfind(name + "=", 0) == 0) {
    *value = a.substr(name.size() + 1);
    return true;
  }
  if (a != name) return false;
  if (i + 1 >= args.size()) *error = name + " needs a value";
  else *value = args[++i];
  return true;
}

// The files a command reads from `path`: the file itself, or a folder's regular files (a Hugging
// Face checkpoint). An output may not be any of them (runtime/atomic_file.h).
inline std::vector<std::string> input_files(const std::string& path) {
  std::vector<std::string> files = {path};
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    for (const auto& e : std::filesystem::directory_iterator(path, ec))
      if (e.is_regular_file(ec)) files.push_back(e.path().string());
  return files;
}

}  // namespace ingot::cli
