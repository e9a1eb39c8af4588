#include "runtime/text_stream.h"

#include <algorithm>

namespace ingot {

std::string continuation_text(const Tokenizer& tok, const std::vector<int32_t>& prompt, const std::string& prompt_text,
                              const std::vector<int32_t>& gen) {
  if (gen.empty()) return "";
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), gen.begin(), gen.end());
  const std::string after = tok.decode(all, true);
  if (after.compare(0, prompt_text.size(), prompt_text) == 0) return after.substr(prompt_text.size());
  return tok.decode(gen, false);  // the prompt's text changed with what followed: the pieces alone
}

size_t find_stop(const std::string& text, const std::vector<std::string>& stops, size_t* hold) {
  size_t first = std::string::npos;
  *hold = 0;
  for (const std::string& st : stops) {
    if (st.empty()) continue;
    first = std::min(first, text.find(st));
    for (size_t k = std::min(st.size() - 1, text.size()); k > 0; --k)
      if (text.compare(text.size() - k, k, st, 0, k) == 0) {
        *hold = std::max(*hold, k);
        break;
      }
  }
  return first;
}

size_t utf8_incomplete_tail(const std::string& text) {
  // Look back over at most 3 continuation bytes for the lead byte of the last character.
  const size_t n = text.size();
  for (size_t back = 1; back <= std::min<size_t>(4, n); ++back) {
    const unsigned char c = static_cast<unsigned char>(text[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: keep looking
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;  // only continuation bytes (invalid UTF-8): nothing to wait for
}

TextStream::TextStream(const Tokenizer& tok, std::vector<int32_t> prompt, std::vector<std::string> stops)
    : tok_(tok), prompt_(std::move(prompt)), stops_(std::move(stops)) {
  prompt_text_ = tok_.decode(prompt_, true);
}

std::string TextStream::push(int32_t id) {
  if (stopped_) return "";
  gen_.push_back(id);
  text_ = continuation_text(tok_, prompt_, prompt_text_, gen_);
  size_t hold = 0;
  const size_t at = find_stop(text_, stops_, &hold);
  if (at != std::string::npos) {
    text_.resize(at);
    stopped_ = true;
    hold = 0;
  }
  size_t ready = text_.size() - hold;
  ready -= utf8_incomplete_tail(text_.substr(0, ready));
  // The decoded text may change behind what was streamed (a piece that merges with the next);
  // only text that extends what was streamed goes out.
  if (ready <= streamed_.size() || text_.compare(0, streamed_.size(), streamed_) != 0) return "";
  std::string out = text_.substr(streamed_.size(), ready - streamed_.size());
  streamed_ = text_.substr(0, ready);
  return out;
}

std::string TextStream::finish() {
  if (text_.size() <= streamed_.size() || text_.compare(0, streamed_.size(), streamed_) != 0) return "";
  std::string out = text_.substr(streamed_.size());
  streamed_ = text_;
  return out;
}

}  // namespace ingot
