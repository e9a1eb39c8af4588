// Streaming a generation's text: the continuation as the user reads it after the prompt, stop
// strings held back while they may still match, and bytes of an unfinished UTF-8 character held
// back until it is complete. Shared by `ingot run`, `ingot chat` and `ingot serve`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/tokenizer.h"

namespace ingot {

// The continuation's text as the user reads it after the prompt: the decoded prompt + generated
// ids minus `prompt_text` (the decoded prompt), so that SentencePiece's word-start space of the
// first new piece is kept (" and a boy" after "The cat", as llama.cpp prints it).
std::string continuation_text(const Tokenizer& tok, const std::vector<int32_t>& prompt, const std::string& prompt_text,
                              const std::vector<int32_t>& gen);

// Where the first stop string starts in `text` (npos if none), and how many trailing bytes of
// `text` could still become one (held back from the stream until they cannot).
size_t find_stop(const std::string& text, const std::vector<std::string>& stops, size_t* hold);

// How many trailing bytes of `text` are the start of a UTF-8 character whose remaining bytes are
// still to come (0 to 3).
size_t utf8_incomplete_tail(const std::string& text);

// A generation's text as it streams: push() each new id; ready() is the text that can be shown
// (no stop string can start in it any more, no character is cut). Once a stop string is found,
// stopped() is true and the text ends before it.
class TextStream {
 public:
  TextStream(const Tokenizer& tok, std::vector<int32_t> prompt, std::vector<std::string> stops);
  // Adds an id; returns the text that became ready with it (possibly "").
  std::string push(int32_t id);
  // The rest, at the end of the generation (held-back bytes that did not become a stop string).
  std::string finish();
  bool stopped() const { return stopped_; }
  const std::vector<int32_t>& generated() const { return gen_; }
  const std::string& streamed() const { return streamed_; }

 private:
  const Tokenizer& tok_;
  std::vector<int32_t> prompt_, gen_;
  std::string prompt_text_;
  std::vector<std::string> stops_;
  std::string text_, streamed_;
  bool stopped_ = false;
};

}  // namespace ingot
