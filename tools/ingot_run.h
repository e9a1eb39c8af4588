// The ingot commands that run a bundle: run, bench, perplexity.
#pragma once

#include <cstdint>
#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "runtime/text_stream.h"  // continuation_text, find_stop
#include "tools/command_help.h"

namespace ingot {
class Tokenizer;
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

// Threads of run, bench and serve without --threads: the host's hardware threads, at most 8.
inline int default_threads() {
  const unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(std::min(hc, 8u));
}

// The bundle to load for `path`: itself, or for a GGUF file or Hugging Face folder its bundle
// compiled once by ingotc into $XDG_CACHE_HOME/ingot; "" with *error when that fails.
std::string bundle_path_for(const std::string& path, std::string* error);

int cmd_run(const std::vector<std::string>& args);
int cmd_bench(const std::vector<std::string>& args);
int cmd_perplexity(const std::vector<std::string>& args);
}  // namespace ingot
