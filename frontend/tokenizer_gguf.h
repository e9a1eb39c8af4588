// The tokenizer stored in a GGUF file's `tokenizer.ggml.*` keys, as a TokenizerSpec.
#pragma once

#include "frontend/gguf.h"
#include "base/status.h"
#include "runtime/tokenizer.h"

namespace ingot {

// Reads tokenizer.ggml.model ("llama": SentencePiece, "gpt2": byte-level BPE), pre, tokens, scores,
// token_type, merges, the bos/eos/unknown/padding token ids and the add_bos_token, add_eos_token
// and add_space_prefix flags. Absent keys take llama.cpp's defaults: a "llama" vocabulary adds
// BOS and a leading space and has bos 1, eos 2, unk 0; a "gpt2" vocabulary adds neither (except
// BOS for the llama3 pre-tokenizer) and has no special ids. Errors name the file and the key.
// Token texts, merges and ids are checked fully by Tokenizer::create.
StatusOr<TokenizerSpec> tokenizer_from_gguf(const GgufFile& f);

}  // namespace ingot
