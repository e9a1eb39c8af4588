// Tokenizers shared by the compiler and the runtime: SentencePiece-style BPE with scores and byte
// fallback (LLaMA), byte-level BPE with merges (GPT-2, LLaMA-3, Qwen2) and WordPiece (BERT). The runtime links no
// compiler, so this header depends on nothing but the standard library.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace ingot {

// Everything a tokenizer needs, as stored in GGUF's `tokenizer.ggml.*` keys or derived from
// tokenizer.json / tokenizer.model. Plain data: the bundle serializes it.
struct TokenizerSpec {
  enum class Kind { SentencePiece, ByteLevelBpe, WordPiece };
  // llama.cpp's token types (tokenizer.ggml.token_type).
  enum TokenType : int32_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

  Kind kind = Kind::SentencePiece;
  // Pre-tokenizer of byte-level BPE: "default" (llama.cpp's fallback), "gpt2", "llama3", "qwen2",
  // "qwen35", "tekken", "deepseek-llm", "deepseek-coder", "falcon" or "refact"
  // (canonical_pre_tokenizer() maps llama.cpp's other names). SentencePiece: "gemma4" splits off
  // runs of newlines (llama.cpp's Gemma 4); any other value means nothing.
  std::string pre = "default";
  std::vector<std::string> tokens;
  std::vector<float> scores;         // SentencePiece merge priorities (may be empty for BPE)
  std::vector<int32_t> types;        // TokenType per token (empty: all Normal)
  // "a b", highest priority first: byte-level BPE always; SentencePiece from tokenizer.json, which
  // then merges by rank as Hugging Face does (without merges: by score, as SentencePiece does).
  std::vector<std::string> merges;
  int32_t bos = -1, eos = -1, unk = -1, pad = -1;
  // WordPiece: bos is BERT's [CLS] and eos its [SEP], both added around the text.
  bool add_bos = false, add_eos = false;
  bool add_space_prefix = true;      // SentencePiece: a leading space is added to the text
  // Applied to the text between special tokens before anything else: "" (none) or "nfc"
  // (tokenizer.json's NFC normalizer; GGUF has no key for it, as llama.cpp ignores it). WordPiece
  // has BERT's normalizer, named by what it does besides splitting words: "bert-uncased"
  // (lowercase, strip accents), "bert-cased" (neither), "bert-lowercase", "bert-strip-accents".
  std::string normalizer;
};

// The spec name of a byte-level BPE pre-tokenizer from any name llama.cpp gives it ("default",
// "gpt-2", "mpt" -> "gpt2"; "llama-bpe" -> "llama3"; "starcoder" -> "refact"; ...): names whose
// llama.cpp vocabulary differs in nothing the tokenizer implements. "" for a name it does not know.
std::string canonical_pre_tokenizer(std::string_view name);
// Every name canonical_pre_tokenizer() accepts, comma-separated, for error messages.
std::string known_pre_tokenizers();
// What kind of tokenizer a spec is, for people: "SentencePiece", "byte-level BPE (llama3)",
// "WordPiece (bert-uncased)".
std::string describe_tokenizer_kind(const TokenizerSpec& spec);

class Tokenizer {
 public:
  // Validates the spec (ids in range, sizes agree, merges name known tokens). The error says what.
  static StatusOr<std::unique_ptr<Tokenizer>> create(TokenizerSpec spec);
  virtual ~Tokenizer() = default;

  // Text to ids. add_special: BOS (and EOS) as the spec says. parse_special: text such as "<s>"
  // that spells a control or user-defined token becomes that token.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special = false) const = 0;
  // The bytes of one token as text (byte tokens "<0x0A>" become their byte; control tokens "").
  virtual std::string token_to_piece(int32_t id) const = 0;
  // Ids to text: pieces concatenated; SentencePiece's leading space of the first piece is dropped
  // when `strip_leading_space` (decoding a continuation keeps it).
  virtual std::string decode(const std::vector<int32_t>& ids, bool strip_leading_space = false) const = 0;

  const TokenizerSpec& spec() const { return spec_; }
  int32_t vocab_size() const { return static_cast<int32_t>(spec_.tokens.size()); }

 protected:
  explicit Tokenizer(TokenizerSpec spec) : spec_(std::move(spec)) {}
  TokenizerSpec spec_;
};

}  // namespace ingot
