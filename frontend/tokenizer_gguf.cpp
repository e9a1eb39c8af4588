#include "frontend/tokenizer_gguf.h"

#include "frontend/limits.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace ingot {
namespace {

constexpr const char* kModelKey = "tokenizer.ggml.model";
constexpr const char* kPreKey = "tokenizer.ggml.pre";
constexpr const char* kTokensKey = "tokenizer.ggml.tokens";
constexpr const char* kScoresKey = "tokenizer.ggml.scores";
constexpr const char* kTypesKey = "tokenizer.ggml.token_type";
constexpr const char* kMergesKey = "tokenizer.ggml.merges";
constexpr const char* kBosKey = "tokenizer.ggml.bos_token_id";
constexpr const char* kEosKey = "tokenizer.ggml.eos_token_id";
constexpr const char* kUnkKey = "tokenizer.ggml.unknown_token_id";
constexpr const char* kPadKey = "tokenizer.ggml.padding_token_id";
constexpr const char* kAddBosKey = "tokenizer.ggml.add_bos_token";
constexpr const char* kAddEosKey = "tokenizer.ggml.add_eos_token";
constexpr const char* kAddSpacePrefixKey = "tokenizer.ggml.add_space_prefix";
// BERT's (llama.cpp's spelling of "separator" included; like llama.cpp, [CLS] is read as bos).
constexpr const char* kSepKey = "tokenizer.ggml.seperator_token_id";
constexpr const char* kLowercaseKey = "tokenizer.ggml.normalizer.lowercase";
constexpr const char* kStripAccentsKey = "tokenizer.ggml.normalizer.strip_accents";

// Reads keys of one file; every error names the file and the key.
class KeyReader {
 public:
  explicit KeyReader(const GgufFile& f) : f_(f) {}

  Status error(const std::string& key, const std::string& problem) const {
    return Status::Error(f_.path() + ": " + key + ": " + problem);
  }

  // A string; `fallback` when absent, an error when absent without one.
  StatusOr<std::string> string(const std::string& key, std::optional<std::string> fallback = std::nullopt) const {
    const GgufValue* v = f_.find(key);
    if (!v) return fallback ? StatusOr<std::string>(*fallback) : missing(key);
    return with_key(key, v->as_string());
  }

  StatusOr<std::vector<std::string>> strings(const std::string& key, bool required) const {
    const GgufValue* v = f_.find(key);
    if (!v) return required ? missing(key) : StatusOr<std::vector<std::string>>(std::vector<std::string>{});
    return with_key(key, v->as_strings());
  }

  StatusOr<std::vector<float>> floats(const std::string& key) const {
    const GgufValue* v = f_.find(key);
    if (!v) return std::vector<float>{};
    INGOT_ASSIGN_OR_RETURN(std::vector<double> values, with_key(key, v->as_floats()));
    return std::vector<float>(values.begin(), values.end());
  }

  StatusOr<std::vector<int32_t>> int32s(const std::string& key) const {
    const GgufValue* v = f_.find(key);
    if (!v) return std::vector<int32_t>{};
    INGOT_ASSIGN_OR_RETURN(std::vector<int64_t> values, with_key(key, v->as_ints()));
    std::vector<int32_t> out;
    out.reserve(values.size());
    for (int64_t x : values) {
      if (x < std::numeric_limits<int32_t>::min() || x > std::numeric_limits<int32_t>::max())
        return error(key, "value " + std::to_string(x) + " does not fit in int32");
      out.push_back(static_cast<int32_t>(x));
    }
    return out;
  }

  StatusOr<bool> boolean(const std::string& key, bool fallback) const {
    const GgufValue* v = f_.find(key);
    if (!v) return fallback;
    return with_key(key, v->as_bool());
  }

  // A token id. GGUF writers store "none" as -1 or as uint32 0xFFFFFFFF; both become -1. A default
  // that the vocabulary is too small for becomes -1 too.
  StatusOr<int32_t> token_id(const std::string& key, int32_t fallback, size_t n_tokens) const {
    const GgufValue* v = f_.find(key);
    if (!v) return fallback >= 0 && static_cast<size_t>(fallback) < n_tokens ? fallback : -1;
    INGOT_ASSIGN_OR_RETURN(int64_t id, with_key(key, v->as_int()));
    if (id < 0 || id == std::numeric_limits<uint32_t>::max()) return -1;
    if (static_cast<uint64_t>(id) >= n_tokens)
      return error(key, "token id " + std::to_string(id) + " is out of range for " + std::to_string(n_tokens) +
                            " tokens");
    return static_cast<int32_t>(id);
  }

 private:
  Status missing(const std::string& key) const { return error(key, "missing"); }

  template <typename T>
  StatusOr<T> with_key(const std::string& key, StatusOr<T> value) const {
    if (!value.ok()) return error(key, value.message());
    return value;
  }

  const GgufFile& f_;
};

Status check_size(const KeyReader& keys, const std::string& key, size_t size, size_t n_tokens) {
  if (size == 0 || size == n_tokens) return Status::Ok();
  return keys.error(key, std::to_string(size) + " entries for " + std::to_string(n_tokens) + " tokens");
}

// BERT's special tokens and normalizer, with llama.cpp's defaults: [CLS] 101 (bos_token_id), [SEP]
// 102, [UNK] 100, [PAD] 0; both switches of the normalizer on unless the file turns them off
// (strip_accents follows lowercase when only that is given). [CLS] and [SEP] always frame the text.
StatusOr<TokenizerSpec> finish_word_piece(const KeyReader& keys, TokenizerSpec spec) {
  const size_t n = spec.tokens.size();
  INGOT_ASSIGN_OR_RETURN(spec.bos, keys.token_id(kBosKey, 101, n));
  INGOT_ASSIGN_OR_RETURN(spec.eos, keys.token_id(kSepKey, 102, n));
  INGOT_ASSIGN_OR_RETURN(spec.unk, keys.token_id(kUnkKey, 100, n));
  INGOT_ASSIGN_OR_RETURN(spec.pad, keys.token_id(kPadKey, 0, n));
  if (spec.bos < 0) return keys.error(kBosKey, "the vocabulary has no [CLS] token");
  if (spec.eos < 0) return keys.error(kSepKey, "the vocabulary has no [SEP] token");
  if (spec.unk < 0) return keys.error(kUnkKey, "the vocabulary has no [UNK] token");
  spec.add_bos = spec.add_eos = true;
  spec.add_space_prefix = false;
  INGOT_ASSIGN_OR_RETURN(const bool lowercase, keys.boolean(kLowercaseKey, true));
  INGOT_ASSIGN_OR_RETURN(const bool strip_accents, keys.boolean(kStripAccentsKey, lowercase));
  spec.normalizer = lowercase ? (strip_accents ? "bert-uncased" : "bert-lowercase")
                              : (strip_accents ? "bert-strip-accents" : "bert-cased");
  return spec;
}

}  // namespace

StatusOr<TokenizerSpec> tokenizer_from_gguf(const GgufFile& f) {
  const KeyReader keys(f);
  TokenizerSpec spec;

  INGOT_ASSIGN_OR_RETURN(const std::string model, keys.string(kModelKey));
  if (model == "llama") {
    spec.kind = TokenizerSpec::Kind::SentencePiece;
  } else if (model == "gpt2" || model == "gemma4") {
    spec.kind = TokenizerSpec::Kind::ByteLevelBpe;
  } else if (model == "bert") {
    spec.kind = TokenizerSpec::Kind::WordPiece;
  } else {
    return keys.error(kModelKey, "unsupported tokenizer model \"" + model + "\" (supported: llama, gpt2, gemma4, bert)");
  }
  INGOT_ASSIGN_OR_RETURN(spec.pre, keys.string(kPreKey, std::string("default")));
  // Gemma 4's vocabulary is a "gpt2" one in name only: raw UTF-8 tokens, spaces as "▁", ranked
  // merges, byte fallback: SentencePiece-style BPE with ranked merges, as Gemma 3's tokenizer.json,
  // plus llama.cpp's newline rule (pre "gemma4": SentencePieceTokenizer::encode_text).
  if (model == "gemma4") spec.pre = "gemma4";  // llama.cpp's model "gemma4" implies its pre-tokenizer
  const bool gemma4 = model == "gemma4" || (model == "gpt2" && (spec.pre == "gemma4" || spec.pre == "granite-embed-multi-311m"));
  if (gemma4) spec.kind = TokenizerSpec::Kind::SentencePiece;
  const bool spm = spec.kind == TokenizerSpec::Kind::SentencePiece && !gemma4;
  const bool bpe = spec.kind == TokenizerSpec::Kind::ByteLevelBpe;
  if (bpe) {
    const std::string pre = canonical_pre_tokenizer(spec.pre);
    if (pre.empty())
      return keys.error(kPreKey, "unsupported pre-tokenizer \"" + spec.pre + "\" (supported: " + known_pre_tokenizers() + ")");
    spec.pre = pre;
  }

  INGOT_ASSIGN_OR_RETURN(spec.tokens, keys.strings(kTokensKey, /*required=*/true));
  const size_t n = spec.tokens.size();
  if (n == 0) return keys.error(kTokensKey, "no tokens");
  if (n > static_cast<size_t>(kMaxVocab.max))
    return keys.error(kTokensKey, std::to_string(n) + " tokens is more than the " + std::to_string(kMaxVocab.max) + " " +
                                      kMaxVocab.noun + " Ingot accepts");
  INGOT_ASSIGN_OR_RETURN(spec.scores, keys.floats(kScoresKey));
  INGOT_RETURN_IF_ERROR(check_size(keys, kScoresKey, spec.scores.size(), n));
  INGOT_ASSIGN_OR_RETURN(spec.types, keys.int32s(kTypesKey));
  INGOT_RETURN_IF_ERROR(check_size(keys, kTypesKey, spec.types.size(), n));
  INGOT_ASSIGN_OR_RETURN(spec.merges, keys.strings(kMergesKey, /*required=*/false));

  if (spec.kind == TokenizerSpec::Kind::WordPiece) return finish_word_piece(keys, std::move(spec));

  // llama.cpp's defaults: SentencePiece vocabularies are LLaMA's (<unk> <s> </s>); byte-level
  // ones have no default ids.
  INGOT_ASSIGN_OR_RETURN(spec.bos, keys.token_id(kBosKey, spm ? 1 : -1, n));
  INGOT_ASSIGN_OR_RETURN(spec.eos, keys.token_id(kEosKey, spm ? 2 : -1, n));
  INGOT_ASSIGN_OR_RETURN(spec.unk, keys.token_id(kUnkKey, spm ? 0 : -1, n));
  INGOT_ASSIGN_OR_RETURN(spec.pad, keys.token_id(kPadKey, -1, n));

  const bool bos_by_default = spm || spec.pre == "llama3" || spec.pre == "tekken";
  INGOT_ASSIGN_OR_RETURN(spec.add_bos, keys.boolean(kAddBosKey, bos_by_default && spec.bos >= 0));
  INGOT_ASSIGN_OR_RETURN(spec.add_eos, keys.boolean(kAddEosKey, false));
  INGOT_ASSIGN_OR_RETURN(spec.add_space_prefix, keys.boolean(kAddSpacePrefixKey, spm));
  if (gemma4) {
    if (spec.bos < 0) return keys.error(kBosKey, "missing (Gemma 4's vocabulary always starts with BOS)");
    spec.add_bos = true;  // llama.cpp overrides a file that says otherwise
    spec.add_space_prefix = false;
    if (spec.merges.empty()) return keys.error(kMergesKey, "missing (Gemma 4's vocabulary merges by rank)");
  }
  if (spec.add_bos && spec.bos < 0) return keys.error(kAddBosKey, "true, but the vocabulary has no bos token");
  if (spec.add_eos && spec.eos < 0) return keys.error(kAddEosKey, "true, but the vocabulary has no eos token");
  return spec;
}

}  // namespace ingot
