// Tokenizers of Hugging Face model folders, as a TokenizerSpec (runtime/tokenizer.h):
//  - tokenizer.json, model "BPE":
//      SentencePiece-style (byte_fallback and '▁' for spaces, via a Metaspace pre-tokenizer or a
//      Replace ' ' -> '▁' normalizer) -> Kind::SentencePiece with the file's merges, which the
//      runtime applies by rank as Hugging Face does; scores derived from the merges (score order
//      equals merge order) are kept too, and replaced by tokenizer.model's real ones when that
//      file beside it has the same tokens (then the merges are dropped, as llama.cpp reads it).
//      ByteLevel pre-tokenizer -> Kind::ByteLevelBpe with merges; `pre` ("gpt2", "llama3",
//      "qwen2") from the pre-tokenizer's split pattern; an NFC normalizer -> normalizer "nfc".
//      Normalizers, pre-tokenizers and added-token options the runtime does not reproduce are
//      refused (see docs/architecture.md, "Tokenizers").
//  - tokenizer.model (SentencePiece protobuf), model type BPE -> Kind::SentencePiece.
// tokenizer_config.json, when given, sets BOS/EOS/UNK/PAD by token text and add_bos/add_eos.
// Errors name the file and what is unsupported or wrong.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "runtime/tokenizer.h"

namespace ingot {

// DIR/tokenizer.json if present, else DIR/tokenizer.model; DIR/tokenizer_config.json if present.
// A SentencePiece-style tokenizer.json takes its scores from DIR/tokenizer.model when that file
// holds exactly the same tokens, and then merges by score as llama.cpp does.
StatusOr<TokenizerSpec> tokenizer_from_hf_folder(const std::string& dir);

// tokenizer.json text (and tokenizer_config.json text when there is one); paths prefix errors.
StatusOr<TokenizerSpec> parse_hf_tokenizer_json(std::string_view json, std::string_view path,
                                                std::optional<std::string_view> tokenizer_config = std::nullopt,
                                                std::string_view tokenizer_config_path = "tokenizer_config.json");

// tokenizer.model bytes (a SentencePiece ModelProto).
StatusOr<TokenizerSpec> parse_sentencepiece_model(std::string_view bytes, std::string_view path,
                                                  std::optional<std::string_view> tokenizer_config = std::nullopt,
                                                  std::string_view tokenizer_config_path = "tokenizer_config.json");

// Grows the vocabulary to `vocab_size` (config.json's, which may exceed the tokenizer's, e.g.
// Qwen2) with "[PAD<id>]" tokens of type Unused, as llama.cpp's converter does. An error if the
// tokenizer already has more tokens.
Status pad_tokenizer_vocab(TokenizerSpec& spec, int64_t vocab_size);

}  // namespace ingot
