// The ingot commands that run a bundle: run, bench, perplexity.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "tools/command_help.h"

namespace ingot {
// Bad usage: the message, a pointer to --help, exit status 2.
inline int usage_error(const std::string& msg) {
  std::fprintf(stderr, "ingot: %s\nRun 'ingot --help' for usage.\n", cli::with_suggestion(msg, "ingot").c_str());
  return 2;
}
// A bad bundle or input: exit status 1.
inline int fail(const std::string& msg) {
  std::fprintf(stderr, "ingot: error: %s\n", msg.c_str());
  return 1;
}

int cmd_run(const std::vector<std::string>& args);
int cmd_bench(const std::vector<std::string>& args);
int cmd_perplexity(const std::vector<std::string>& args);
}  // namespace ingot
