// The ingot commands that run a bundle: run, bench, perplexity.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

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

// The continuation's text as the user reads it after the prompt: the decoded prompt + generated
// ids minus `prompt_text` (the decoded prompt), so that SentencePiece's word-start space of the
// first new piece is kept (" and a boy" after "The cat", as llama.cpp prints it).
std::string continuation_text(const Tokenizer& tok, const std::vector<int32_t>& prompt, const std::string& prompt_text,
                              const std::vector<int32_t>& gen);

int cmd_run(const std::vector<std::string>& args);
int cmd_bench(const std::vector<std::string>& args);
int cmd_perplexity(const std::vector<std::string>& args);
}  // namespace ingot
