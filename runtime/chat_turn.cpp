#include "runtime/chat_turn.h"

#include <algorithm>

namespace ingot {

std::vector<int32_t> end_of_turn_ids(const Tokenizer& tok) {
  std::vector<int32_t> ids;
  const TokenizerSpec& spec = tok.spec();
  if (spec.eos >= 0) ids.push_back(spec.eos);
  for (const char* marker : {"<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>", "<|endoftext|>", "</s>", "<|eom_id|>"}) {
    const auto it = std::find(spec.tokens.begin(), spec.tokens.end(), std::string(marker));
    if (it != spec.tokens.end()) ids.push_back(static_cast<int32_t>(it - spec.tokens.begin()));
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

void set_chat_special_tokens(const Tokenizer& tok, ChatInputs& in) {
  const TokenizerSpec& spec = tok.spec();
  auto text = [&](int32_t id) {
    return id >= 0 && static_cast<size_t>(id) < spec.tokens.size() ? spec.tokens[static_cast<size_t>(id)] : std::string();
  };
  in.bos_token = text(spec.bos);
  in.eos_token = text(spec.eos);
}

std::vector<int32_t> chat_prompt_ids(const Tokenizer& tok, const std::string& text) {
  const TokenizerSpec& spec = tok.spec();
  const std::string bos = spec.bos >= 0 && static_cast<size_t>(spec.bos) < spec.tokens.size() ? spec.tokens[static_cast<size_t>(spec.bos)] : "";
  const bool has_bos_text = !bos.empty() && text.rfind(bos, 0) == 0;
  return tok.encode(text, !has_bos_text, /*parse_special=*/true);
}

StatusOr<std::vector<int32_t>> reuse_session_prefix(Session& session, const std::vector<int32_t>& ids, int64_t* reused) {
  if (ids.empty()) return Status::Error("the rendered conversation has no tokens");
  const std::vector<int32_t>& held = session.history();
  size_t common = 0;
  while (common < held.size() && common < ids.size() && held[common] == ids[common]) ++common;
  common = std::min(common, ids.size() - 1);
  INGOT_RETURN_IF_ERROR(session.truncate(static_cast<int64_t>(common)));
  if (reused) *reused = static_cast<int64_t>(common);
  return std::vector<int32_t>(ids.begin() + static_cast<std::ptrdiff_t>(common), ids.end());
}

}  // namespace ingot
