// One assistant turn of a conversation on a session: the chat template rendered over the whole
// conversation, tokenized as the session should hold it, and only the tokens after the prefix the
// session already holds fed to it (Session::truncate drops a cached tail that the re-tokenized
// history no longer has). Shared by `ingot chat`, the C API's ingot_chat_turn and the Python
// module, so that a turn computes what one pass over the rendered history would.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "runtime/chat_template.h"
#include "runtime/engine.h"

namespace ingot {

// The ids that end an assistant turn: the model's EOS and the end-of-turn markers of common
// templates that the vocabulary holds as single tokens (<|eot_id|>, <|im_end|>, <end_of_turn>, ...).
std::vector<int32_t> end_of_turn_ids(const Tokenizer& tok);

// The template's bos_token and eos_token: the texts of the tokenizer's BOS and EOS ("" if none).
void set_chat_special_tokens(const Tokenizer& tok, ChatInputs& in);

// A rendered prompt as the session should hold it: special tokens parsed, BOS added unless the
// text already starts with the BOS token's text.
std::vector<int32_t> chat_prompt_ids(const Tokenizer& tok, const std::string& text);

// Keeps the longest prefix of `ids` that the session holds (leaving at least one token to feed,
// so that the logits are current after feeding) and returns the rest; *reused gets the prefix's
// length.
StatusOr<std::vector<int32_t>> reuse_session_prefix(Session& session, const std::vector<int32_t>& ids, int64_t* reused);

}  // namespace ingot
