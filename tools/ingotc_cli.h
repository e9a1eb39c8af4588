// Helpers shared by ingotc's commands (tools/ingotc.cpp, tools/compile_command.cpp): messages and
// exit codes, "--name VALUE" / "--name=VALUE" options and atomic writes (whole-file reads:
// hf::read_file in frontend/hf_config.h).
#pragma once

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/status.h"

namespace ingot::cli {

// Bad usage: the message, a pointer to --help, exit status 2.
inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

inline int usage_error(const std::string& msg) {
  std::fprintf(stderr, "ingotc: %s\nRun 'ingotc --help' for usage.\n", msg.c_str());
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

// Writes through a temporary file and a rename, so a failure never leaves a partial output.
inline Status write_file_atomic(const std::string& path, const std::string& data) {
  const std::string tmp = path + ".tmp-ingotc";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return Status::Error(path + ": cannot create file");
    f << data;
    f.flush();
    if (!f) {
      std::remove(tmp.c_str());
      return Status::Error(path + ": write failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Status::Error(path + ": cannot replace file");
  }
  return Status::Ok();
}

}  // namespace ingot::cli
