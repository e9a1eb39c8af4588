// Running a command line from a test: its exit status (128 + the signal when killed) and its
// stdout and stderr together.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace ingot::testing {

struct CmdResult {
  int status = -1;
  std::string out;
};

inline CmdResult run_command(const std::string& cmd) {
  CmdResult r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  return r;
}

inline CmdResult run(const std::string& cmd) { return run_command(cmd); }

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The tools under test, in test programs built with their paths (INGOT_INGOTC, INGOT_INGOT).
#ifdef INGOT_INGOTC
inline const std::string kIngotc = INGOT_INGOTC;
#endif
#ifdef INGOT_INGOT
inline const std::string kIngot = INGOT_INGOT;
#endif
// A command prefix that keeps the user's trusted keys, forced tier and configuration out of a run.
inline const std::string kCleanEnv = "env -u INGOT_TRUSTED_KEYS -u INGOT_TIER XDG_CONFIG_HOME=/nonexistent ";

}  // namespace ingot::testing
