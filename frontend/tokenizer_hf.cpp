#include "frontend/tokenizer_hf.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <functional>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "frontend/hf_config.h"
#include "frontend/safetensors.h"
#include "runtime/unicode.h"
// protobuf's protobuf_generate() names the output after the .proto's path relative to the first
// import dir, which is frontend/ itself: the header lands in <out>/proto/. Accept either layout.
#if __has_include("sentencepiece_model.pb.h")
#include "sentencepiece_model.pb.h"
#else
#include <proto/sentencepiece_model.pb.h>
#endif

namespace ingot {

using nlohmann::json;

namespace {

constexpr const char* kMetaspace = "\xE2\x96\x81";  // "▁", SentencePiece's visible space
// Vocabularies of real models stay far below this; it bounds what a corrupt file can allocate.
constexpr int64_t kMaxTokens = int64_t{1} << 24;

using TokenLookup = std::function<std::optional<int32_t>(const std::string&)>;

Status error_at(std::string_view path, const std::string& message) {
  return Status::Error(std::string(path) + ": " + message);
}

// obj[key] when obj is an object and the value is not null.
const json* member(const json* obj, const char* key) {
  if (!obj || !obj->is_object()) return nullptr;
  auto it = obj->find(key);
  if (it == obj->end() || it->is_null()) return nullptr;
  return &*it;
}

std::string type_of(const json* node) {
  const json* t = member(node, "type");
  return t && t->is_string() ? t->get<std::string>() : "";
}

bool bool_member(const json* obj, const char* key, bool fallback) {
  const json* v = member(obj, key);
  return v && v->is_boolean() ? v->get<bool>() : fallback;
}

std::string string_member(const json* obj, const char* key) {
  const json* v = member(obj, key);
  return v && v->is_string() ? v->get<std::string>() : "";
}

// The parts of a normalizer, pre-tokenizer, decoder or post-processor: the list of a
// "Sequence", or the node itself.
std::vector<const json*> components(const json* node, const char* list_key) {
  std::vector<const json*> out;
  if (!node || !node->is_object()) return out;
  if (type_of(node) != "Sequence") return {node};
  const json* list = member(node, list_key);
  if (!list || !list->is_array()) return out;
  for (const json& c : *list) out.push_back(&c);
  return out;
}

std::string component_names(const std::vector<const json*>& parts) {
  std::string s;
  for (const json* p : parts) s += (s.empty() ? "" : ", ") + type_of(p);
  return "[" + s + "]";
}

// --- tokenizer_config.json ---------------------------------------------------------------------

struct TokenizerConfig {
  std::string path;
  std::optional<bool> add_bos, add_eos;
  std::optional<std::string> bos, eos, unk, pad;
};

// A special-token entry: "<s>", {"content": "<s>", ...} (an AddedToken), or null.
StatusOr<std::optional<std::string>> read_token_entry(const json& root, const char* key, const std::string& path) {
  const json* v = member(&root, key);
  if (!v) return std::optional<std::string>();
  if (v->is_string()) return std::optional<std::string>(v->get<std::string>());
  const json* content = member(v, "content");
  if (content && content->is_string()) return std::optional<std::string>(content->get<std::string>());
  return error_at(path, std::string("'") + key + "' must be a token string or an object with 'content', got " +
                            hf::json_type_name(*v));
}

StatusOr<std::optional<bool>> read_flag(const json& root, const char* key, const std::string& path) {
  const json* v = member(&root, key);
  if (!v) return std::optional<bool>();
  if (!v->is_boolean()) return error_at(path, std::string("'") + key + "' must be true or false, got " + hf::json_type_name(*v));
  return std::optional<bool>(v->get<bool>());
}

StatusOr<TokenizerConfig> read_tokenizer_config(std::optional<std::string_view> text, std::string_view path_view) {
  TokenizerConfig cfg;
  cfg.path = std::string(path_view);
  if (!text) return cfg;
  INGOT_ASSIGN_OR_RETURN(json root, hf::parse_json(*text, cfg.path));
  if (!root.is_object()) return error_at(cfg.path, "not a JSON object (got " + hf::json_type_name(root) + ")");
  INGOT_ASSIGN_OR_RETURN(cfg.add_bos, read_flag(root, "add_bos_token", cfg.path));
  INGOT_ASSIGN_OR_RETURN(cfg.add_eos, read_flag(root, "add_eos_token", cfg.path));
  INGOT_ASSIGN_OR_RETURN(cfg.bos, read_token_entry(root, "bos_token", cfg.path));
  INGOT_ASSIGN_OR_RETURN(cfg.eos, read_token_entry(root, "eos_token", cfg.path));
  INGOT_ASSIGN_OR_RETURN(cfg.unk, read_token_entry(root, "unk_token", cfg.path));
  INGOT_ASSIGN_OR_RETURN(cfg.pad, read_token_entry(root, "pad_token", cfg.path));
  return cfg;
}

// tokenizer_config.json names special tokens by text; transformers resolves them to ids, so
// they win over what tokenizer.json or tokenizer.model say. A name not in the vocabulary is an error.
Status apply_tokenizer_config(const TokenizerConfig& cfg, const TokenLookup& lookup, TokenizerSpec& spec) {
  auto resolve = [&](const std::optional<std::string>& name, const char* key, int32_t& id) -> Status {
    if (!name) return Status::Ok();
    std::optional<int32_t> found = lookup(*name);
    if (!found) return error_at(cfg.path, std::string(key) + " '" + *name + "' is not in the vocabulary");
    id = *found;
    return Status::Ok();
  };
  INGOT_RETURN_IF_ERROR(resolve(cfg.bos, "bos_token", spec.bos));
  INGOT_RETURN_IF_ERROR(resolve(cfg.eos, "eos_token", spec.eos));
  INGOT_RETURN_IF_ERROR(resolve(cfg.unk, "unk_token", spec.unk));
  INGOT_RETURN_IF_ERROR(resolve(cfg.pad, "pad_token", spec.pad));
  if (cfg.add_bos) spec.add_bos = *cfg.add_bos;
  if (cfg.add_eos) spec.add_eos = *cfg.add_eos;
  return Status::Ok();
}

// The last check of both readers: a flag to add a token that does not exist.
Status check_add_flags(const TokenizerSpec& spec, std::string_view path) {
  if (spec.add_bos && spec.bos < 0) return error_at(path, "BOS is to be added but the tokenizer has no BOS token");
  if (spec.add_eos && spec.eos < 0) return error_at(path, "EOS is to be added but the tokenizer has no EOS token");
  return Status::Ok();
}

// --- tokenizer.json: vocabulary and merges -----------------------------------------------------

enum class Origin : uint8_t { Gap, Model, Added, AddedSpecial };

struct Vocab {
  std::vector<std::string> tokens;
  std::vector<Origin> origin;
  std::unordered_map<std::string, int32_t> id_of;

  std::optional<int32_t> find(const std::string& text) const {
    auto it = id_of.find(text);
    if (it == id_of.end()) return std::nullopt;
    return it->second;
  }
};

struct VocabEntry {
  std::string text;
  int64_t id;
  Origin origin;
};

StatusOr<int64_t> read_token_id(const json& v, const std::string& what, std::string_view path) {
  if (!v.is_number_unsigned() || v.get<uint64_t>() >= static_cast<uint64_t>(kMaxTokens))
    return error_at(path, what + " has id " + v.dump() + ", must be an integer in [0, " + std::to_string(kMaxTokens) + ")");
  return static_cast<int64_t>(v.get<uint64_t>());
}

StatusOr<std::vector<VocabEntry>> read_vocab_entries(const json& model, const json* added, std::string_view path) {
  const json* vocab = member(&model, "vocab");
  if (!vocab) return error_at(path, "model has no 'vocab'");
  if (!vocab->is_object()) return error_at(path, "'model.vocab' must be an object {token: id}, got " + hf::json_type_name(*vocab));
  std::vector<VocabEntry> entries;
  for (const auto& [text, id_json] : vocab->items()) {
    INGOT_ASSIGN_OR_RETURN(int64_t id, read_token_id(id_json, "token '" + text + "'", path));
    entries.push_back({text, id, Origin::Model});
  }
  if (!added) return entries;
  if (!added->is_array()) return error_at(path, "'added_tokens' must be a list, got " + hf::json_type_name(*added));
  for (size_t i = 0; i < added->size(); ++i) {
    const json& t = (*added)[i];
    const json* content = member(&t, "content");
    const json* id = member(&t, "id");
    if (!content || !content->is_string() || !id)
      return error_at(path, "added_tokens entry " + std::to_string(i) + " needs 'id' and 'content'");
    const std::string text = content->get<std::string>();
    INGOT_ASSIGN_OR_RETURN(int64_t token_id, read_token_id(*id, "added token '" + text + "'", path));
    // Hugging Face matches an added token in the text with these options; the runtime matches
    // the exact content only.
    for (const char* flag : {"lstrip", "rstrip", "single_word"}) {
      if (bool_member(&t, flag, false))
        return error_at(path, "added token '" + text + "' sets " + flag + "=true, which is not supported");
    }
    // A normalized added token is matched in the normalized text, the runtime matches it in the
    // text as given: the same when the normalizer leaves the token as it is. The supported
    // normalizers change spaces ('▁') and what NFC changes.
    if (bool_member(&t, "normalized", false) && (text.find(' ') != std::string::npos || unicode::nfc(text) != text))
      return error_at(path, "added token '" + text + "' sets normalized=true but a normalizer would change it, "
                            "which is not supported");
    entries.push_back({text, token_id, bool_member(&t, "special", false) ? Origin::AddedSpecial : Origin::Added});
  }
  return entries;
}

// Ids must be dense up to a few gaps (filled with "[PAD<id>]", as llama.cpp's converter does);
// one id may not name two different texts. An added token's id wins the text -> id lookup.
StatusOr<Vocab> build_vocab(std::vector<VocabEntry> entries, std::string_view path) {
  int64_t max_id = -1;
  for (const auto& e : entries) max_id = std::max(max_id, e.id);
  if (max_id < 0) return error_at(path, "the vocabulary is empty");
  const int64_t size = max_id + 1;
  if (size > static_cast<int64_t>(entries.size()) + 1024)
    return error_at(path, "token id " + std::to_string(max_id) + " leaves too many unused ids for " +
                              std::to_string(entries.size()) + " tokens");
  Vocab v;
  v.tokens.resize(static_cast<size_t>(size));
  v.origin.assign(static_cast<size_t>(size), Origin::Gap);
  for (auto& e : entries) {
    const auto i = static_cast<size_t>(e.id);
    if (v.origin[i] != Origin::Gap && v.tokens[i] != e.text)
      return error_at(path, "id " + std::to_string(e.id) + " is both '" + v.tokens[i] + "' and '" + e.text + "'");
    v.tokens[i] = e.text;
    v.origin[i] = std::max(v.origin[i], e.origin);  // added (special) overrides the model entry's origin
    if (e.origin != Origin::Model || !v.id_of.count(e.text)) v.id_of[e.text] = static_cast<int32_t>(e.id);
  }
  for (int64_t i = 0; i < size; ++i)
    if (v.origin[static_cast<size_t>(i)] == Origin::Gap) v.tokens[static_cast<size_t>(i)] = "[PAD" + std::to_string(i) + "]";
  return v;
}

using Merge = std::pair<std::string, std::string>;

// "a b" (one space) or ["a", "b"]; both parts and their concatenation must be tokens.
StatusOr<std::vector<Merge>> read_merges(const json& model, const Vocab& vocab, std::string_view path) {
  std::vector<Merge> merges;
  const json* list = member(&model, "merges");
  if (!list) return merges;
  if (!list->is_array()) return error_at(path, "'model.merges' must be a list, got " + hf::json_type_name(*list));
  merges.reserve(list->size());
  for (size_t r = 0; r < list->size(); ++r) {
    const json& m = (*list)[r];
    Merge merge;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        return error_at(path, "merge " + std::to_string(r) + " '" + s + "' is not two tokens separated by one space");
      merge = {s.substr(0, space), s.substr(space + 1)};
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merge = {m[0].get<std::string>(), m[1].get<std::string>()};
    } else {
      return error_at(path, "merge " + std::to_string(r) + " must be \"a b\" or [\"a\", \"b\"], got " + hf::json_type_name(m));
    }
    if (merge.first.empty() || merge.second.empty())
      return error_at(path, "merge " + std::to_string(r) + " has an empty token");
    for (const std::string& part : {merge.first, merge.second, merge.first + merge.second}) {
      if (!vocab.find(part))
        return error_at(path, "merge " + std::to_string(r) + " ('" + merge.first + " " + merge.second + "'): '" + part +
                                  "' is not in the vocabulary");
    }
    merges.push_back(std::move(merge));
  }
  return merges;
}

// "<0xHH>", either case, as the runtime reads byte tokens.
bool is_byte_token(const std::string& t) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); };
  return t.size() == 6 && t.compare(0, 3, "<0x") == 0 && hex(t[3]) && hex(t[4]) && t[5] == '>';
}

// --- tokenizer.json: post-processor template ---------------------------------------------------

struct TemplateSpecials {
  std::optional<std::string> bos, eos;  // special tokens before / after the sequence "A"
};

// TemplateProcessing's "single" (possibly inside a Sequence of processors, as in Llama 3).
TemplateSpecials read_template(const json* post_processor) {
  TemplateSpecials out;
  for (const json* p : components(post_processor, "processors")) {
    if (type_of(p) != "TemplateProcessing") continue;
    const json* single = member(p, "single");
    if (!single || !single->is_array()) continue;
    bool seen_sequence = false;
    for (const json& item : *single) {
      if (member(&item, "Sequence")) seen_sequence = true;
      const json* special = member(&item, "SpecialToken");
      std::string id = string_member(special, "id");
      if (id.empty()) continue;
      if (!seen_sequence && !out.bos) out.bos = id;
      if (seen_sequence) out.eos = id;
    }
  }
  return out;
}

// --- tokenizer.json: the two kinds -------------------------------------------------------------

bool uses_metaspace(const json& root) {
  for (const json* n : components(member(&root, "normalizer"), "normalizers")) {
    const json* pattern = member(n, "pattern");
    if (type_of(n) == "Replace" && string_member(pattern, "String") == " " && string_member(n, "content") == kMetaspace)
      return true;
  }
  for (const json* p : components(member(&root, "pre_tokenizer"), "pretokenizers"))
    if (type_of(p) == "Metaspace") return true;
  return false;
}

bool uses_byte_level(const json& root) {
  for (const json* p : components(member(&root, "pre_tokenizer"), "pretokenizers"))
    if (type_of(p) == "ByteLevel") return true;
  return type_of(member(&root, "decoder")) == "ByteLevel";
}

// SentencePiece adds a leading '▁' when the normalizer prepends it or the Metaspace
// pre-tokenizer's prepend_scheme is "always"/"first" (older files: add_prefix_space).
bool spm_adds_space_prefix(const json& root) {
  for (const json* n : components(member(&root, "normalizer"), "normalizers"))
    if (type_of(n) == "Prepend" && string_member(n, "prepend") == kMetaspace) return true;
  for (const json* p : components(member(&root, "pre_tokenizer"), "pretokenizers")) {
    if (type_of(p) != "Metaspace") continue;
    const std::string scheme = string_member(p, "prepend_scheme");
    if (!scheme.empty()) return scheme != "never";
    return bool_member(p, "add_prefix_space", true);
  }
  return false;
}

// The spec stores merges as "a b": byte-level tokens spell spaces as 'Ġ', SentencePiece's as '▁',
// so a space cannot occur in either part.
Status store_merges(const std::vector<Merge>& merges, std::string_view path, TokenizerSpec& spec) {
  spec.merges.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) {
    if (merges[r].first.find(' ') != std::string::npos || merges[r].second.find(' ') != std::string::npos)
      return error_at(path, "merge " + std::to_string(r) + " has a token with a space, which the tokenizer cannot store");
    spec.merges.push_back(merges[r].first + " " + merges[r].second);
  }
  return Status::Ok();
}

// tokenizer.json has BPE merges, not SentencePiece scores. SentencePiece's BPE (llama.cpp's
// "llama" tokenizer) repeatedly joins the adjacent pair whose joined token scores highest, so
// scores that decrease with the rank of the first merge producing a token make it join pairs in
// merge order. Normal tokens get -0, -1, -2, ... in that order, then the tokens no merge produces
// (single characters) in id order; other types get 0. For vocabularies converted from
// SentencePiece (ids in score order, merges in score order) this reproduces tokenizer.model's
// scores exactly. llama.cpp's converter, with tokenizer.json alone, writes -1000 for every token
// instead, which loses the merge order.
std::vector<float> scores_from_merges(const Vocab& vocab, const std::vector<Merge>& merges,
                                      const std::vector<int32_t>& types) {
  const size_t n = vocab.tokens.size();
  std::vector<int64_t> first_rank(n, -1);
  for (size_t r = 0; r < merges.size(); ++r) {
    const size_t id = static_cast<size_t>(*vocab.find(merges[r].first + merges[r].second));
    if (first_rank[id] < 0) first_rank[id] = static_cast<int64_t>(r);
  }
  std::vector<size_t> merged, rest;
  for (size_t id = 0; id < n; ++id) {
    if (types[id] != TokenizerSpec::Normal) continue;
    (first_rank[id] >= 0 ? merged : rest).push_back(id);
  }
  std::sort(merged.begin(), merged.end(), [&](size_t a, size_t b) { return first_rank[a] < first_rank[b]; });
  std::vector<float> scores(n, 0.0f);
  float next = 0.0f;
  for (size_t id : merged) scores[id] = -(next++);
  for (size_t id : rest) scores[id] = -(next++);
  return scores;
}

// SentencePiece-style tokenizer.json: what the runtime reproduces is '▁' for spaces (a Replace
// normalizer or a Metaspace pre-tokenizer without splitting), an optional leading '▁' (a Prepend
// normalizer or Metaspace's prepend_scheme), then BPE over the whole text. Anything else is
// refused by name.
Status check_sentencepiece_pipeline(const json& root, std::string_view path) {
  bool replaces_spaces = false;
  for (const json* n : components(member(&root, "normalizer"), "normalizers")) {
    const std::string t = type_of(n);
    if (t == "Prepend" && string_member(n, "prepend") == kMetaspace) continue;
    if (t == "Replace" && string_member(member(n, "pattern"), "String") == " " && string_member(n, "content") == kMetaspace) {
      replaces_spaces = true;
      continue;
    }
    return error_at(path, "normalizer '" + t + "' is not supported for a SentencePiece-style BPE (supported: Prepend '" +
                              kMetaspace + "', Replace ' ' -> '" + kMetaspace + "')");
  }
  for (const json* p : components(member(&root, "pre_tokenizer"), "pretokenizers")) {
    const std::string t = type_of(p);
    if (t == "Metaspace") {
      if (bool_member(p, "split", false))
        return error_at(path, "Metaspace pre-tokenizer with split=true is not supported (the runtime does not split at '" +
                                  std::string(kMetaspace) + "')");
      continue;
    }
    // Gemma's Split on " " after the normalizer turned every space into '▁': it never splits.
    if (t == "Split" && replaces_spaces && string_member(member(p, "pattern"), "String") == " ") continue;
    return error_at(path, "pre-tokenizer '" + t + "' is not supported for a SentencePiece-style BPE (supported: none, "
                          "Metaspace without split, Split on ' ' after a Replace ' ' -> '" + kMetaspace + "' normalizer)");
  }
  return Status::Ok();
}

Status fill_sentencepiece_kind(const json& root, const json& model, const Vocab& vocab, std::string_view path,
                               TokenizerSpec& spec) {
  spec.kind = TokenizerSpec::Kind::SentencePiece;
  INGOT_RETURN_IF_ERROR(check_sentencepiece_pipeline(root, path));
  spec.pre = "default";
  const std::string unk = string_member(&model, "unk_token");
  if (!unk.empty()) {
    std::optional<int32_t> id = vocab.find(unk);
    if (!id) return error_at(path, "model.unk_token '" + unk + "' is not in the vocabulary");
    spec.unk = *id;
  }
  spec.types.resize(vocab.tokens.size());
  for (size_t i = 0; i < vocab.tokens.size(); ++i) {
    const Origin o = vocab.origin[i];
    if (static_cast<int32_t>(i) == spec.unk) spec.types[i] = TokenizerSpec::Unknown;
    else if (o == Origin::Gap) spec.types[i] = TokenizerSpec::Unused;
    else if (o == Origin::AddedSpecial) spec.types[i] = TokenizerSpec::Control;
    else if (o == Origin::Added) spec.types[i] = TokenizerSpec::UserDefined;
    else if (is_byte_token(vocab.tokens[i])) spec.types[i] = TokenizerSpec::Byte;
    else spec.types[i] = TokenizerSpec::Normal;
  }
  INGOT_ASSIGN_OR_RETURN(std::vector<Merge> merges, read_merges(model, vocab, path));
  spec.scores = scores_from_merges(vocab, merges, spec.types);
  // The merges themselves too: the runtime merges by rank, as Hugging Face's BPE model does.
  INGOT_RETURN_IF_ERROR(store_merges(merges, path, spec));
  spec.add_space_prefix = spm_adds_space_prefix(root);
  return Status::Ok();
}

struct KnownPattern {
  const char* pre;
  const char* regex;
};
// The Split regexes of the pre-tokenizers the runtime implements, as tokenizer.json spells them
// (llama.cpp's spelling of the contractions too).
constexpr KnownPattern kKnownPatterns[] = {
    {"gpt2", R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)re"},
    {"gpt2", R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))re"},
    {"llama3",
     R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
    {"llama3",
     R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
    {"qwen2",
     R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
    {"qwen2",
     R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
    {"qwen35",
     R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
    {"qwen35",
     R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
};

std::string shorten(const std::string& s) { return s.size() > 120 ? s.substr(0, 117) + "..." : s; }

// "gpt2" for a lone ByteLevel pre-tokenizer with its built-in regex; otherwise one Split with a
// known regex followed by ByteLevel without its own regex.
StatusOr<std::string> byte_level_pre(const json& root, std::string_view path) {
  const std::vector<const json*> parts = components(member(&root, "pre_tokenizer"), "pretokenizers");
  const json* byte_level = nullptr;
  std::vector<const json*> splits, others;
  for (const json* p : parts) {
    const std::string t = type_of(p);
    if (t == "ByteLevel") byte_level = p;
    else if (t == "Split") splits.push_back(p);
    else others.push_back(p);
  }
  if (!byte_level) return error_at(path, "byte-level BPE needs a ByteLevel pre-tokenizer, found " + component_names(parts));
  if (bool_member(byte_level, "add_prefix_space", false))
    return error_at(path, "ByteLevel pre-tokenizer with add_prefix_space=true is not supported");
  const bool own_regex = bool_member(byte_level, "use_regex", true);
  if (parts.size() == 1 && own_regex) return std::string("gpt2");
  // SmolLM's (and StarCoder's): every digit on its own, then GPT-2's regex: llama.cpp's "smollm".
  if (parts.size() == 2 && own_regex && type_of(parts[0]) == "Digits" && bool_member(parts[0], "individual_digits", false))
    return std::string("smollm");
  if (splits.size() == 1 && others.empty() && !own_regex) {
    const json* split = splits[0];
    const std::string regex = string_member(member(split, "pattern"), "Regex");
    const std::string behavior = string_member(split, "behavior");
    if (regex.empty()) return error_at(path, "the Split pre-tokenizer has no Regex pattern");
    if (behavior != "Isolated" || bool_member(split, "invert", false))
      return error_at(path, "Split pre-tokenizer with behavior '" + behavior + "' is not supported (supported: Isolated)");
    for (const auto& k : kKnownPatterns)
      if (regex == k.regex) return std::string(k.pre);
    return error_at(path, "pre-tokenizer Split pattern '" + shorten(regex) +
                              "' is not a known one (known: gpt2, llama3, qwen2, qwen35)");
  }
  return error_at(path, "pre-tokenizer " + component_names(parts) +
                            " is not a known byte-level BPE pre-tokenizer (known: gpt2, llama3, qwen2, qwen35, smollm)");
}

Status fill_byte_level_kind(const json& root, const json& model, const Vocab& vocab, std::string_view path,
                            TokenizerSpec& spec) {
  spec.kind = TokenizerSpec::Kind::ByteLevelBpe;
  INGOT_ASSIGN_OR_RETURN(spec.pre, byte_level_pre(root, path));
  const json* normalizer = member(&root, "normalizer");
  if (normalizer && type_of(normalizer) != "NFC")
    return error_at(path, "normalizer '" + type_of(normalizer) + "' is not supported for byte-level BPE (supported: none, NFC)");
  if (normalizer) spec.normalizer = "nfc";
  spec.types.resize(vocab.tokens.size());
  for (size_t i = 0; i < vocab.tokens.size(); ++i) {
    const Origin o = vocab.origin[i];
    spec.types[i] = o == Origin::Gap            ? TokenizerSpec::Unused
                    : o == Origin::AddedSpecial ? TokenizerSpec::Control
                    : o == Origin::Added        ? TokenizerSpec::UserDefined
                                                : TokenizerSpec::Normal;
  }
  INGOT_ASSIGN_OR_RETURN(std::vector<Merge> merges, read_merges(model, vocab, path));
  INGOT_RETURN_IF_ERROR(store_merges(merges, path, spec));
  spec.add_space_prefix = false;
  return Status::Ok();
}

// BOS/EOS and add_bos/add_eos from the post-processor template; for SentencePiece also the
// conventional "<s>"/"</s>" when nothing names them. tokenizer_config.json is applied after.
Status fill_specials_from_template(const json& root, const Vocab& vocab, std::string_view path, TokenizerSpec& spec) {
  const TemplateSpecials t = read_template(member(&root, "post_processor"));
  auto lookup = [&](const std::optional<std::string>& text, int32_t& id) -> Status {
    if (!text) return Status::Ok();
    std::optional<int32_t> found = vocab.find(*text);
    if (!found) return error_at(path, "post_processor names special token '" + *text + "', which is not in the vocabulary");
    id = *found;
    return Status::Ok();
  };
  INGOT_RETURN_IF_ERROR(lookup(t.bos, spec.bos));
  INGOT_RETURN_IF_ERROR(lookup(t.eos, spec.eos));
  spec.add_bos = t.bos.has_value();
  spec.add_eos = t.eos.has_value();
  if (spec.kind == TokenizerSpec::Kind::SentencePiece) {
    if (spec.bos < 0 && vocab.find("<s>")) spec.bos = *vocab.find("<s>");
    if (spec.eos < 0 && vocab.find("</s>")) spec.eos = *vocab.find("</s>");
  }
  return Status::Ok();
}

StatusOr<TokenizerSpec> spec_from_tokenizer_json(const json& root, std::string_view path, const TokenizerConfig& cfg) {
  if (!root.is_object()) return error_at(path, "not a JSON object (got " + hf::json_type_name(root) + ")");
  const json* model = member(&root, "model");
  if (!model || !model->is_object()) return error_at(path, "missing object 'model'");
  const std::string model_type = type_of(model).empty() && member(model, "merges") ? "BPE" : type_of(model);
  if (model_type != "BPE")
    return error_at(path, "model type '" + model_type + "' is not supported (supported: BPE)");
  INGOT_ASSIGN_OR_RETURN(std::vector<VocabEntry> entries, read_vocab_entries(*model, member(&root, "added_tokens"), path));
  INGOT_ASSIGN_OR_RETURN(Vocab vocab, build_vocab(std::move(entries), path));

  TokenizerSpec spec;
  const bool byte_fallback = bool_member(model, "byte_fallback", false);
  if (uses_byte_level(root) && !byte_fallback) {
    INGOT_RETURN_IF_ERROR(fill_byte_level_kind(root, *model, vocab, path, spec));
  } else if (uses_metaspace(root)) {
    INGOT_RETURN_IF_ERROR(fill_sentencepiece_kind(root, *model, vocab, path, spec));
  } else {
    return error_at(path, "unsupported BPE tokenizer: neither a ByteLevel pre-tokenizer nor SentencePiece's '\xE2\x96\x81' "
                          "(a Metaspace pre-tokenizer or a Replace ' ' -> '\xE2\x96\x81' normalizer)");
  }
  INGOT_RETURN_IF_ERROR(fill_specials_from_template(root, vocab, path, spec));
  spec.tokens = std::move(vocab.tokens);
  TokenLookup lookup = [&vocab](const std::string& text) { return vocab.find(text); };
  INGOT_RETURN_IF_ERROR(apply_tokenizer_config(cfg, lookup, spec));
  INGOT_RETURN_IF_ERROR(check_add_flags(spec, path));
  return spec;
}

// --- tokenizer.model ---------------------------------------------------------------------------

int32_t token_type_of(sentencepiece::ModelProto::SentencePiece::Type t) {
  using P = sentencepiece::ModelProto::SentencePiece;
  switch (t) {
    case P::NORMAL: return TokenizerSpec::Normal;
    case P::UNKNOWN: return TokenizerSpec::Unknown;
    case P::CONTROL: return TokenizerSpec::Control;
    case P::USER_DEFINED: return TokenizerSpec::UserDefined;
    case P::UNUSED: return TokenizerSpec::Unused;
    case P::BYTE: return TokenizerSpec::Byte;
  }
  return TokenizerSpec::Normal;
}

const char* model_type_name(sentencepiece::TrainerSpec::ModelType t) {
  switch (t) {
    case sentencepiece::TrainerSpec::UNIGRAM: return "UNIGRAM";
    case sentencepiece::TrainerSpec::BPE: return "BPE";
    case sentencepiece::TrainerSpec::WORD: return "WORD";
    case sentencepiece::TrainerSpec::CHAR: return "CHAR";
  }
  return "unknown";
}

Status read_pieces(const sentencepiece::ModelProto& proto, std::string_view path, TokenizerSpec& spec,
                   std::unordered_map<std::string, int32_t>& id_of) {
  if (proto.pieces_size() == 0) return error_at(path, "the model has no pieces");
  if (proto.pieces_size() > kMaxTokens) return error_at(path, "too many pieces");
  for (int i = 0; i < proto.pieces_size(); ++i) {
    const auto& p = proto.pieces(i);
    const std::string& text = p.piece();
    if (text.empty()) return error_at(path, "piece " + std::to_string(i) + " is empty");
    if (find_invalid_utf8(text) != std::string_view::npos)
      return error_at(path, "piece " + std::to_string(i) + " is not valid UTF-8");
    if (std::isnan(p.score())) return error_at(path, "piece " + std::to_string(i) + " has a NaN score");
    if (p.type() == sentencepiece::ModelProto::SentencePiece::BYTE && !is_byte_token(text))
      return error_at(path, "piece " + std::to_string(i) + " '" + text + "' has type BYTE but does not spell a byte as <0xHH>");
    auto [it, inserted] = id_of.emplace(text, i);
    if (!inserted)
      return error_at(path, "pieces " + std::to_string(it->second) + " and " + std::to_string(i) + " are both '" + text + "'");
    spec.tokens.push_back(text);
    spec.scores.push_back(p.score());
    spec.types.push_back(token_type_of(p.type()));
  }
  return Status::Ok();
}

// trainer_spec's ids: -1 (none) or a piece index.
Status read_special_id(int32_t id, const char* name, std::string_view path, size_t n, int32_t& out) {
  if (id < -1 || id >= static_cast<int64_t>(n))
    return error_at(path, std::string("trainer_spec.") + name + " " + std::to_string(id) + " is out of range (" +
                              std::to_string(n) + " pieces)");
  out = id;
  return Status::Ok();
}

}  // namespace

namespace {

// A tokenizer.json converted from SentencePiece keeps the merges but not the scores, and its
// merge order depends on the converter's version (Llama 2's whitespace pieces score -1e9 in
// tokenizer.model). When tokenizer.model is beside it with the very same tokens, its real scores
// replace the derived ones, as llama.cpp's converter reads them. Otherwise (unreadable, or a
// different vocabulary) the derived scores stay: tokenizer.json is the primary source.
void use_sentencepiece_scores(const std::string& model_path, TokenizerSpec& spec) {
  StatusOr<std::string> bytes = hf::read_file(model_path);
  if (!bytes.ok()) return;
  StatusOr<TokenizerSpec> model = parse_sentencepiece_model(*bytes, model_path);
  if (model.ok() && model->tokens == spec.tokens) {
    spec.scores = std::move(model->scores);
    spec.merges.clear();  // merge by the real scores, as llama.cpp does
  }
}

}  // namespace

// --- public entry points -----------------------------------------------------------------------

StatusOr<TokenizerSpec> parse_hf_tokenizer_json(std::string_view text, std::string_view path,
                                                std::optional<std::string_view> tokenizer_config,
                                                std::string_view tokenizer_config_path) {
  INGOT_ASSIGN_OR_RETURN(TokenizerConfig cfg, read_tokenizer_config(tokenizer_config, tokenizer_config_path));
  INGOT_ASSIGN_OR_RETURN(json root, hf::parse_json(text, path));
  try {
    return spec_from_tokenizer_json(root, path, cfg);
  } catch (const std::exception& e) {  // every access checks types first; a safety net
    return error_at(path, std::string("unexpected JSON content: ") + e.what());
  }
}

StatusOr<TokenizerSpec> parse_sentencepiece_model(std::string_view bytes, std::string_view path,
                                                  std::optional<std::string_view> tokenizer_config,
                                                  std::string_view tokenizer_config_path) {
  INGOT_ASSIGN_OR_RETURN(TokenizerConfig cfg, read_tokenizer_config(tokenizer_config, tokenizer_config_path));
  if (bytes.size() > static_cast<size_t>(INT_MAX)) return error_at(path, "file is too large for a SentencePiece model");
  sentencepiece::ModelProto proto;
  if (!proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return error_at(path, "not a SentencePiece model (protobuf parsing failed)");
  const auto model_type = proto.trainer_spec().model_type();
  if (model_type != sentencepiece::TrainerSpec::BPE)
    return error_at(path, std::string("SentencePiece model type ") + model_type_name(model_type) +
                              " is not supported (supported: BPE)");
  TokenizerSpec spec;
  spec.kind = TokenizerSpec::Kind::SentencePiece;
  spec.pre = "default";
  std::unordered_map<std::string, int32_t> id_of;
  INGOT_RETURN_IF_ERROR(read_pieces(proto, path, spec, id_of));
  const auto& trainer = proto.trainer_spec();
  const size_t n = spec.tokens.size();
  INGOT_RETURN_IF_ERROR(read_special_id(trainer.unk_id(), "unk_id", path, n, spec.unk));
  INGOT_RETURN_IF_ERROR(read_special_id(trainer.bos_id(), "bos_id", path, n, spec.bos));
  INGOT_RETURN_IF_ERROR(read_special_id(trainer.eos_id(), "eos_id", path, n, spec.eos));
  INGOT_RETURN_IF_ERROR(read_special_id(trainer.pad_id(), "pad_id", path, n, spec.pad));
  // remove_extra_whitespaces is not represented: llama.cpp ignores it as well.
  spec.add_space_prefix = proto.normalizer_spec().add_dummy_prefix();
  // SentencePiece LLaMA tokenizers add BOS unless tokenizer_config.json says otherwise.
  spec.add_bos = spec.bos >= 0;
  spec.add_eos = false;
  TokenLookup lookup = [&id_of](const std::string& text) -> std::optional<int32_t> {
    auto it = id_of.find(text);
    if (it == id_of.end()) return std::nullopt;
    return it->second;
  };
  INGOT_RETURN_IF_ERROR(apply_tokenizer_config(cfg, lookup, spec));
  INGOT_RETURN_IF_ERROR(check_add_flags(spec, path));
  return spec;
}

StatusOr<TokenizerSpec> tokenizer_from_hf_folder(const std::string& dir) {
  const std::string config_path = hf::join_path(dir, "tokenizer_config.json");
  std::optional<std::string> config_text;
  if (hf::file_exists(config_path)) {
    INGOT_ASSIGN_OR_RETURN(config_text, hf::read_file(config_path));
  }
  std::optional<std::string_view> config_view;
  if (config_text) config_view = *config_text;

  const std::string json_path = hf::join_path(dir, "tokenizer.json");
  const std::string model_path = hf::join_path(dir, "tokenizer.model");
  if (hf::file_exists(json_path)) {
    INGOT_ASSIGN_OR_RETURN(std::string text, hf::read_file(json_path));
    INGOT_ASSIGN_OR_RETURN(TokenizerSpec spec, parse_hf_tokenizer_json(text, json_path, config_view, config_path));
    if (spec.kind == TokenizerSpec::Kind::SentencePiece && hf::file_exists(model_path))
      use_sentencepiece_scores(model_path, spec);
    return spec;
  }
  if (hf::file_exists(model_path)) {
    INGOT_ASSIGN_OR_RETURN(std::string bytes, hf::read_file(model_path));
    return parse_sentencepiece_model(bytes, model_path, config_view, config_path);
  }
  return Status::Error(dir + ": no tokenizer.json or tokenizer.model");
}

Status pad_tokenizer_vocab(TokenizerSpec& spec, int64_t vocab_size) {
  const auto have = static_cast<int64_t>(spec.tokens.size());
  if (have > vocab_size)
    return Status::Error("the tokenizer has " + std::to_string(have) + " tokens, more than the model's vocab_size " +
                         std::to_string(vocab_size));
  if (vocab_size > kMaxTokens) return Status::Error("vocab_size " + std::to_string(vocab_size) + " is too large");
  if (spec.types.empty()) spec.types.assign(spec.tokens.size(), TokenizerSpec::Normal);
  const bool has_scores = !spec.scores.empty();
  for (int64_t i = have; i < vocab_size; ++i) {
    spec.tokens.push_back("[PAD" + std::to_string(i) + "]");
    spec.types.push_back(TokenizerSpec::Unused);
    if (has_scores) spec.scores.push_back(0.0f);
  }
  return Status::Ok();
}

}  // namespace ingot
