// SentencePiece-style BPE (merges by score, byte fallback), byte-level BPE (merges by rank) and
// WordPiece, following llama.cpp's "llama", "gpt2" and "bert" vocabularies so that each gives
// llama.cpp's token ids.
#include "runtime/tokenizer.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <queue>
#include <unordered_map>

#include "runtime/unicode.h"

namespace ingot {
namespace {

using TokenType = TokenizerSpec::TokenType;

constexpr size_t kNone = std::numeric_limits<size_t>::max();
constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581 "▁", SentencePiece's space

// ------------------------------------------------------------------ small helpers

// std::string keys looked up by string_view without a copy.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenIndex = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

int32_t find_token(const TokenIndex& index, std::string_view text) {
  auto it = index.find(text);
  return it == index.end() ? -1 : it->second;
}

TokenType type_of(const TokenizerSpec& spec, size_t id) {
  return spec.types.empty() ? TokenType::Normal : static_cast<TokenType>(spec.types[id]);
}

// A token text for error messages: quoted, control bytes escaped, long texts cut.
std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < 40; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7F || c == '"' || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (text.size() > 40) out += "...";
  return out + "\"";
}

// "▁" -> " ": how SentencePiece and WordPiece tokens spell spaces.
std::string unescape_spaces(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, kSpaceMarker.size(), kSpaceMarker) == 0) {
      out.push_back(' ');
      i += kSpaceMarker.size();
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

// "<0xHH>" -> HH.
std::optional<uint8_t> parse_byte_token(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return std::nullopt;
  const auto hex_digit = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int high = hex_digit(text[3]), low = hex_digit(text[4]);
  if (high < 0 || low < 0) return std::nullopt;
  return static_cast<uint8_t>(high * 16 + low);
}

std::string byte_token_text(uint8_t byte) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "<0x%02X>", byte);
  return buf;
}

// A merge "left right": llama.cpp splits at the first space after the first character, so that a
// left part may itself be a space.
std::optional<std::pair<std::string_view, std::string_view>> split_merge(std::string_view merge) {
  const size_t space = merge.size() < 2 ? std::string_view::npos : merge.find(' ', 1);
  if (space == std::string_view::npos) return std::nullopt;
  return std::make_pair(merge.substr(0, space), merge.substr(space + 1));
}

struct PreTokenizerName {
  const char* name;       // as tokenizer.ggml.pre spells it
  const char* canonical;  // the spec's name
  unicode::PreTokenizer kind;
};
// llama.cpp (llama-vocab.cpp, 34af94cd) maps each name to a list of regexes plus flags; a name is
// here when its regexes are one of ours and its other flags change only decoding (clean_spaces),
// or are the ones the canonical name implies (llama3: ignore_merges, BOS by default). Left out:
// names with add_sep (jina-v1-en, jina-v2-code, roberta-bpe) or ignore_merges on another regex.
constexpr PreTokenizerName kPreTokenizerNames[] = {
    {"gpt2", "gpt2", unicode::PreTokenizer::Gpt2},
    {"gpt-2", "gpt2", unicode::PreTokenizer::Gpt2},
    {"mpt", "gpt2", unicode::PreTokenizer::Gpt2},
    {"phi-2", "gpt2", unicode::PreTokenizer::Gpt2},
    {"olmo", "gpt2", unicode::PreTokenizer::Gpt2},
    {"jais", "gpt2", unicode::PreTokenizer::Gpt2},
    {"jina-es", "gpt2", unicode::PreTokenizer::Gpt2},
    {"jina-de", "gpt2", unicode::PreTokenizer::Gpt2},
    {"jina-v2-es", "gpt2", unicode::PreTokenizer::Gpt2},
    {"jina-v2-de", "gpt2", unicode::PreTokenizer::Gpt2},
    {"gigachat", "gpt2", unicode::PreTokenizer::Gpt2},
    {"a.x-4.0", "gpt2", unicode::PreTokenizer::Gpt2},
    {"mellum", "gpt2", unicode::PreTokenizer::Gpt2},
    {"modern-bert", "gpt2", unicode::PreTokenizer::Gpt2},
    {"exaone4", "gpt2", unicode::PreTokenizer::Gpt2},
    {"trillion", "gpt2", unicode::PreTokenizer::Gpt2},
    {"granite-docling", "gpt2", unicode::PreTokenizer::Gpt2},
    {"default", "default", unicode::PreTokenizer::Default},
    {"llama3", "llama3", unicode::PreTokenizer::Llama3},
    {"llama-bpe", "llama3", unicode::PreTokenizer::Llama3},
    {"llama-v3", "llama3", unicode::PreTokenizer::Llama3},
    {"falcon3", "llama3", unicode::PreTokenizer::Llama3},
    {"falcon-h1", "llama3", unicode::PreTokenizer::Llama3},
    {"pixtral", "llama3", unicode::PreTokenizer::Llama3},
    {"midm-2.0", "llama3", unicode::PreTokenizer::Llama3},
    {"lfm2", "llama3", unicode::PreTokenizer::Llama3},
    {"jina-v5-nano", "llama3", unicode::PreTokenizer::Llama3},
    {"qwen2", "qwen2", unicode::PreTokenizer::Qwen2},
    {"deepseek-r1-qwen", "qwen2", unicode::PreTokenizer::Qwen2},
    {"stablelm2", "qwen2", unicode::PreTokenizer::Qwen2},
    {"megrez", "qwen2", unicode::PreTokenizer::Qwen2},
    {"hunyuan", "qwen2", unicode::PreTokenizer::Qwen2},
    {"solar-open", "qwen2", unicode::PreTokenizer::Qwen2},
    {"kormo", "qwen2", unicode::PreTokenizer::Qwen2},
    {"f2llmv2", "qwen2", unicode::PreTokenizer::Qwen2},
    {"qwen35", "qwen35", unicode::PreTokenizer::Qwen35},
    {"tekken", "tekken", unicode::PreTokenizer::Tekken},
    {"deepseek-llm", "deepseek-llm", unicode::PreTokenizer::DeepseekLlm},
    {"deepseek-coder", "deepseek-coder", unicode::PreTokenizer::DeepseekCoder},
    {"falcon", "falcon", unicode::PreTokenizer::Falcon},
    {"refact", "refact", unicode::PreTokenizer::Refact},
    {"starcoder", "refact", unicode::PreTokenizer::Refact},
    {"smollm", "refact", unicode::PreTokenizer::Refact},
    {"command-r", "refact", unicode::PreTokenizer::Refact},
    {"codeshell", "refact", unicode::PreTokenizer::Refact},
    {"exaone", "refact", unicode::PreTokenizer::Refact},
    {"minerva-7b", "refact", unicode::PreTokenizer::Refact},
    {"mellum2", "refact", unicode::PreTokenizer::Refact},
};

const PreTokenizerName* find_pre_tokenizer(std::string_view name) {
  for (const PreTokenizerName& n : kPreTokenizerNames) {
    if (name == n.name) return &n;
  }
  return nullptr;
}

std::optional<unicode::PreTokenizer> pre_tokenizer_named(const std::string& name) {
  const PreTokenizerName* n = find_pre_tokenizer(name);
  if (!n) return std::nullopt;
  return n->kind;
}

// The BERT normalizer's two switches, by the spec's name for them.
struct BertNormalizer {
  bool lowercase = true;
  bool strip_accents = true;
};
constexpr std::pair<std::string_view, BertNormalizer> kBertNormalizers[] = {
    {"bert-uncased", {true, true}},
    {"bert-cased", {false, false}},
    {"bert-lowercase", {true, false}},
    {"bert-strip-accents", {false, true}},
};

// ------------------------------------------------------------------ spec validation

std::string check_sizes(const TokenizerSpec& spec) {
  const size_t n = spec.tokens.size();
  if (n == 0) return "the vocabulary has no tokens";
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max())) return "the vocabulary has more than 2^31-1 tokens";
  if (!spec.scores.empty() && spec.scores.size() != n)
    return "there are " + std::to_string(spec.scores.size()) + " scores for " + std::to_string(n) + " tokens";
  if (!spec.types.empty() && spec.types.size() != n)
    return "there are " + std::to_string(spec.types.size()) + " token types for " + std::to_string(n) + " tokens";
  return "";
}

std::string check_tokens(const TokenizerSpec& spec) {
  for (size_t id = 0; id < spec.tokens.size(); ++id) {
    const auto where = [&] { return "token " + std::to_string(id) + " " + quoted(spec.tokens[id]); };
    if (!spec.scores.empty() && std::isnan(spec.scores[id])) return where() + " has a NaN score";
    if (spec.types.empty()) continue;
    const int32_t type = spec.types[id];
    if (type < TokenType::Normal || type > TokenType::Byte)
      return where() + " has type " + std::to_string(type) +
             ", expected 1..6 (normal, unknown, control, user-defined, unused, byte)";
    if (type == TokenType::Byte && !parse_byte_token(spec.tokens[id]))
      return where() + " has the byte type but does not spell a byte as <0xHH>";
  }
  return "";
}

std::string check_special_ids(const TokenizerSpec& spec) {
  const auto n = static_cast<int64_t>(spec.tokens.size());
  const std::pair<const char*, int32_t> ids[] = {
      {"bos", spec.bos}, {"eos", spec.eos}, {"unk", spec.unk}, {"pad", spec.pad}};
  for (const auto& [name, id] : ids) {
    if (id < -1 || id >= n)
      return std::string(name) + " id " + std::to_string(id) + " is out of range for " + std::to_string(n) + " tokens";
  }
  if (spec.add_bos && spec.bos < 0) return "add_bos is set but there is no bos token";
  if (spec.add_eos && spec.eos < 0) return "add_eos is set but there is no eos token";
  return "";
}

std::optional<BertNormalizer> bert_normalizer_named(std::string_view name) {
  for (const auto& [known, normalizer] : kBertNormalizers) {
    if (name == known) return normalizer;
  }
  return std::nullopt;
}

std::string check_kind(const TokenizerSpec& spec) {
  using Kind = TokenizerSpec::Kind;
  if (spec.kind != Kind::SentencePiece && spec.kind != Kind::ByteLevelBpe && spec.kind != Kind::WordPiece)
    return "unknown kind " + std::to_string(static_cast<int>(spec.kind));
  if (spec.kind == Kind::WordPiece) {
    if (!bert_normalizer_named(spec.normalizer))
      return "WordPiece needs a BERT normalizer, not " + quoted(spec.normalizer) +
             " (known: bert-uncased, bert-cased, bert-lowercase, bert-strip-accents)";
    if (spec.unk < 0) return "WordPiece needs an unk token";
    return "";
  }
  if (!spec.normalizer.empty() && spec.normalizer != "nfc")
    return "unknown normalizer " + quoted(spec.normalizer) + " (known: none, nfc)";
  if (spec.kind == TokenizerSpec::Kind::ByteLevelBpe && !pre_tokenizer_named(spec.pre))
    return "unknown pre-tokenizer " + quoted(spec.pre) + " (known: " + known_pre_tokenizers() + ")";
  return "";
}

// ------------------------------------------------------------------ the shared part

// A piece of the input: plain text, or a special token spelled in it.
struct Fragment {
  int32_t token = -1;  // -1: text
  size_t offset = 0, size = 0;
};

class TokenizerBase : public Tokenizer {
 public:
  explicit TokenizerBase(TokenizerSpec spec) : Tokenizer(std::move(spec)) {
    for (size_t id = 0; id < spec_.tokens.size(); ++id) all_tokens_[spec_.tokens[id]] = static_cast<int32_t>(id);
    find_special_tokens();
  }

  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const override {
    std::vector<int32_t> out;
    if (add_special && spec_.add_bos) out.push_back(spec_.bos);
    bool after_special = true;  // the start of the text counts as following a special token
    for (const Fragment& f : split_special(text, parse_special)) {
      if (f.token >= 0) {
        out.push_back(f.token);
        after_special = true;
      } else if (spec_.normalizer == "nfc") {
        encode_text(unicode::nfc(text.substr(f.offset, f.size)), after_special, out);
        after_special = false;
      } else {
        encode_text(text.substr(f.offset, f.size), after_special, out);
        after_special = false;
      }
    }
    if (add_special && spec_.add_eos) out.push_back(spec_.eos);
    return out;
  }

  std::string token_to_piece(int32_t id) const override {
    return id >= 0 && id < vocab_size() ? pieces_[id] : std::string();
  }

  std::string decode(const std::vector<int32_t>& ids, bool strip_leading_space) const override {
    std::string text;
    // Only a space the encoder added can be stripped: SentencePiece with add_space_prefix, and
    // WordPiece, whose every word starts with one.
    bool strip = strip_leading_space && ((spec_.kind == TokenizerSpec::Kind::SentencePiece && spec_.add_space_prefix) ||
                                         spec_.kind == TokenizerSpec::Kind::WordPiece);
    for (int32_t id : ids) {
      if (id < 0 || id >= vocab_size()) continue;
      std::string_view piece = pieces_[id];
      if (piece.empty()) continue;  // control tokens before the text (BOS) leave the strip pending
      if (strip && piece.front() == ' ') piece.remove_prefix(1);
      strip = false;
      text += piece;
    }
    return text;
  }

 protected:
  // Appends the tokens of plain text (no special tokens in it).
  virtual void encode_text(std::string_view text, bool after_special, std::vector<int32_t>& out) const = 0;

  // Fills pieces_: what each token decodes to. `normal_piece` decodes a normal token's text; it
  // decodes user-defined tokens too, as Hugging Face's decoders do (Gemma's added token "▁▁" is
  // two spaces; DeepSeek's added "ø" is GPT-2's alphabet for the byte 0xF8).
  template <typename NormalPiece>
  void build_pieces(NormalPiece normal_piece) {
    pieces_.resize(spec_.tokens.size());
    for (size_t id = 0; id < spec_.tokens.size(); ++id) {
      const std::string& text = spec_.tokens[id];
      switch (type_of(spec_, id)) {
        case TokenType::Normal:
        case TokenType::UserDefined: pieces_[id] = normal_piece(text); break;
        case TokenType::Byte: pieces_[id] = std::string(1, static_cast<char>(*parse_byte_token(text))); break;
        case TokenType::Unknown:
        case TokenType::Control:
        case TokenType::Unused: break;  // nothing: these stand for no text
      }
    }
  }

  // The token of a symbol's bytes when the symbol itself is no token: one byte token per byte
  // (byte_tokens[b] = -1 when byte b has none); failing that, unk; failing that, nothing.
  void append_fallback(std::string_view bytes, const std::array<int32_t, 256>& byte_tokens,
                       std::vector<int32_t>& out) const {
    const auto token_of = [&](char c) { return byte_tokens[static_cast<uint8_t>(c)]; };
    if (std::all_of(bytes.begin(), bytes.end(), [&](char c) { return token_of(c) >= 0; })) {
      for (char c : bytes) out.push_back(token_of(c));
    } else if (spec_.unk >= 0) {
      out.push_back(spec_.unk);
    }
  }

  TokenIndex all_tokens_;  // text -> id; on duplicate texts the last id wins, as in llama.cpp
  std::vector<std::string> pieces_;

 private:
  // Tokens that text may spell: control and unknown tokens (with parse_special) and user-defined
  // tokens (always, as in llama.cpp and Hugging Face), longest first.
  void find_special_tokens() {
    for (size_t id = 0; id < spec_.tokens.size(); ++id) {
      const TokenType type = type_of(spec_, id);
      const bool special = type == TokenType::Control || type == TokenType::Unknown || type == TokenType::UserDefined;
      if (special && !spec_.tokens[id].empty()) special_tokens_.push_back(static_cast<int32_t>(id));
    }
    std::sort(special_tokens_.begin(), special_tokens_.end(), [&](int32_t a, int32_t b) {
      const size_t size_a = spec_.tokens[a].size(), size_b = spec_.tokens[b].size();
      return size_a != size_b ? size_a > size_b : a < b;
    });
  }

  // llama.cpp's tokenizer_st_partition: each special token in turn, longest first, splits every
  // text fragment at each of its occurrences.
  std::vector<Fragment> split_special(std::string_view text, bool parse_special) const {
    std::vector<Fragment> fragments;
    if (text.empty()) return fragments;
    fragments.push_back({-1, 0, text.size()});
    for (int32_t id : special_tokens_) {
      if (!parse_special && type_of(spec_, id) != TokenType::UserDefined) continue;
      const std::string& needle = spec_.tokens[id];
      std::vector<Fragment> next;
      for (const Fragment& f : fragments) {
        if (f.token >= 0) {
          next.push_back(f);
          continue;
        }
        size_t begin = f.offset;
        const size_t end = f.offset + f.size;
        for (size_t hit; (hit = text.substr(0, end).find(needle, begin)) != std::string_view::npos;) {
          if (hit > begin) next.push_back({-1, begin, hit - begin});
          next.push_back({id, hit, needle.size()});
          begin = hit + needle.size();
        }
        if (begin < end) next.push_back({-1, begin, end - begin});
      }
      fragments = std::move(next);
    }
    return fragments;
  }

  std::vector<int32_t> special_tokens_;
};

// A symbol of the BPE working sequence: a byte range of the word, linked to its neighbours.
// Merging appends the right symbol to the left one and empties the right one.
struct Symbol {
  size_t offset = 0, size = 0;
  size_t prev = kNone, next = kNone;
  int32_t token = -1;  // byte-level BPE: the token the symbol spells, -1 if none
};

std::vector<Symbol> link_symbols(std::vector<Symbol> symbols) {
  for (size_t i = 0; i < symbols.size(); ++i) {
    symbols[i].prev = i == 0 ? kNone : i - 1;
    symbols[i].next = i + 1 == symbols.size() ? kNone : i + 1;
  }
  return symbols;
}

void merge_into_left(std::vector<Symbol>& symbols, size_t left) {
  Symbol& l = symbols[left];
  Symbol& r = symbols[l.next];
  l.size += r.size;
  r.size = 0;
  l.next = r.next;
  if (l.next != kNone) symbols[l.next].prev = left;
}


// Hugging Face's BPE model: merges ranked by their order, over token ids. Symbols carry the token
// they spell; the adjacent pair of lowest rank merges first, the leftmost among equal ranks.
class RankedMerges {
 public:
  // Indexes "left right" merges; `token_of` maps a text to its token (-1 if none). The first
  // occurrence of a pair keeps its (better) rank. Returns why a merge is invalid, "" if none is.
  template <typename TokenOf>
  std::string index(const std::vector<std::string>& merges, TokenOf token_of) {
    merges_.reserve(merges.size());
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const auto where = [&] { return "merge " + std::to_string(rank) + " " + quoted(merges[rank]); };
      const auto parts = split_merge(merges[rank]);
      if (!parts) return where() + " is not two tokens separated by a space";
      const int32_t left = token_of(parts->first), right = token_of(parts->second);
      for (auto [part, id] : {std::pair{parts->first, left}, std::pair{parts->second, right}}) {
        if (id < 0) return where() + " names " + quoted(part) + ", which is not a token";
      }
      std::string merged(parts->first);
      merged += parts->second;
      merges_.emplace(pair_key(left, right), Merge{static_cast<int32_t>(rank), token_of(merged)});
    }
    return "";
  }

  bool empty() const { return merges_.empty(); }

  // Merges linked symbols in place; a symbol whose token is -1 never merges.
  void apply(std::vector<Symbol>& symbols) const {
    std::priority_queue<Candidate> queue;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) push_candidate(symbols, i, queue);
    while (!queue.empty()) {
      const Candidate c = queue.top();
      queue.pop();
      const Symbol& l = symbols[c.left];
      const bool stale = l.next != c.right || l.size != c.left_size || symbols[c.right].size != c.right_size;
      if (stale) continue;
      merge_into_left(symbols, c.left);
      symbols[c.left].token = c.result;
      push_candidate(symbols, symbols[c.left].prev, queue);
      push_candidate(symbols, c.left, queue);
    }
  }

 private:
  struct Merge {
    int32_t rank;
    int32_t result;  // the token the merged text spells, -1 if it is none
  };
  // A possible merge of `left` with its right neighbour, valid while both keep their sizes.
  struct Candidate {
    int32_t rank;
    int32_t result;
    size_t left, right;
    size_t left_size, right_size;
    bool operator<(const Candidate& o) const {  // priority: lowest rank, then leftmost
      return rank != o.rank ? rank > o.rank : left > o.left;
    }
  };

  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }

  void push_candidate(const std::vector<Symbol>& symbols, size_t left, std::priority_queue<Candidate>& queue) const {
    if (left == kNone || symbols[left].next == kNone) return;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[l.next];
    if (l.token < 0 || r.token < 0) return;
    auto it = merges_.find(pair_key(l.token, r.token));
    if (it != merges_.end()) queue.push({it->second.rank, it->second.result, left, l.next, l.size, r.size});
  }

  std::unordered_map<uint64_t, Merge> merges_;
};

// ------------------------------------------------------------------ SentencePiece

class SentencePieceTokenizer final : public TokenizerBase {
 public:
  explicit SentencePieceTokenizer(TokenizerSpec spec) : TokenizerBase(std::move(spec)) {
    for (size_t id = 0; id < spec_.tokens.size(); ++id) {
      const TokenType type = type_of(spec_, id);
      // Control, unknown and byte tokens never come from merging text (SentencePiece's rule).
      if (type != TokenType::Control && type != TokenType::Unknown && type != TokenType::Byte)
        mergeable_[spec_.tokens[id]] = static_cast<int32_t>(id);
    }
    for (int b = 0; b < 256; ++b) byte_tokens_[b] = find_token(all_tokens_, byte_token_text(static_cast<uint8_t>(b)));
    build_pieces([](const std::string& text) { return unescape_spaces(text); });
  }

  // Indexes the merges, if the spec has any, or says why a merge is invalid. Called once by create().
  std::string index_merges() {
    return merges_.index(spec_.merges, [this](std::string_view text) { return find_token(mergeable_, text); });
  }

 protected:
  void encode_text(std::string_view text, bool after_special, std::vector<int32_t>& out) const override {
    std::string normalized;
    if (spec_.add_space_prefix && after_special) normalized += kSpaceMarker;
    for (char c : text) {
      if (c == ' ') normalized += kSpaceMarker; else normalized.push_back(c);
    }
    if (spec_.pre != "gemma4") {
      encode_normalized(normalized, out);
      return;
    }
    // Gemma 4 as llama.cpp splits it: runs of newlines apart from the rest, and a run of newlines
    // that is a token as a whole is that token, whatever the merges would build.
    std::string_view rest = normalized;
    while (!rest.empty()) {
      const bool newlines = rest.front() == '\n';
      size_t n = 0;
      while (n < rest.size() && (rest[n] == '\n') == newlines) ++n;
      const std::string_view run = rest.substr(0, n);
      const int32_t whole = newlines ? find_token(mergeable_, run) : -1;
      if (whole >= 0) out.push_back(whole); else encode_normalized(run, out);
      rest.remove_prefix(n);
    }
  }

 private:
  // A possible merge of `left` with its right neighbour into a token of score `score`.
  struct Candidate {
    float score;
    size_t left;
    size_t size;  // bytes of the merged text: a changed neighbour makes the candidate stale
    bool operator<(const Candidate& o) const {  // priority: highest score, then leftmost
      return score != o.score ? score < o.score : left > o.left;
    }
  };

  float score_of(int32_t id) const { return spec_.scores.empty() ? 0.0f : spec_.scores[id]; }

  void push_candidate(std::string_view text, const std::vector<Symbol>& symbols, size_t left,
                      std::priority_queue<Candidate>& queue) const {
    if (left == kNone || symbols[left].next == kNone) return;
    const Symbol& l = symbols[left];
    const size_t size = l.size + symbols[l.next].size;
    const int32_t id = find_token(mergeable_, text.substr(l.offset, size));
    if (id >= 0) queue.push({score_of(id), left, size});
  }

  // Repeatedly merges the adjacent pair that spells the best-scoring token (with merges: the
  // pair of lowest merge rank); then each symbol is a token, or a single character that falls
  // back to byte tokens.
  void encode_normalized(std::string_view text, std::vector<int32_t>& out) const {
    std::vector<Symbol> symbols;
    for (const unicode::Utf8Char& c : unicode::split_utf8(text)) {
      symbols.push_back({c.offset, c.size, kNone, kNone, find_token(mergeable_, text.substr(c.offset, c.size))});
    }
    if (symbols.empty()) return;
    symbols = link_symbols(std::move(symbols));
    if (!merges_.empty()) {
      merges_.apply(symbols);
      for (size_t i = 0; i != kNone; i = symbols[i].next) {
        if (symbols[i].token >= 0) out.push_back(symbols[i].token);
        else append_fallback(text.substr(symbols[i].offset, symbols[i].size), byte_tokens_, out);
      }
      return;
    }

    std::priority_queue<Candidate> queue;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) push_candidate(text, symbols, i, queue);
    while (!queue.empty()) {
      const Candidate c = queue.top();
      queue.pop();
      const Symbol& l = symbols[c.left];
      if (l.size == 0 || l.next == kNone || l.size + symbols[l.next].size != c.size) continue;  // stale
      merge_into_left(symbols, c.left);
      push_candidate(text, symbols, symbols[c.left].prev, queue);
      push_candidate(text, symbols, c.left, queue);
    }

    for (size_t i = 0; i != kNone; i = symbols[i].next) {
      const std::string_view piece = text.substr(symbols[i].offset, symbols[i].size);
      const int32_t id = find_token(mergeable_, piece);
      if (id >= 0) {
        out.push_back(id);
      } else {
        append_fallback(piece, byte_tokens_, out);
      }
    }
  }

  TokenIndex mergeable_;  // text -> id of the tokens plain text may become
  std::array<int32_t, 256> byte_tokens_{};
  RankedMerges merges_;   // empty: merge by score
};

// ------------------------------------------------------------------ byte-level BPE

class ByteLevelBpeTokenizer final : public TokenizerBase {
 public:
  explicit ByteLevelBpeTokenizer(TokenizerSpec spec) : TokenizerBase(std::move(spec)) {
    pre_ = *pre_tokenizer_named(spec_.pre);
    // LLaMA-3's and Mistral's (tekken) tokenizer.json set ignore_merges: a pre-token that is a token
    // stays whole.
    ignore_merges_ = pre_ == unicode::PreTokenizer::Llama3 || pre_ == unicode::PreTokenizer::Tekken;
    // The BPE model's own tokens are the normal ones. An added token may spell the same text
    // (DeepSeek adds "ø" as a user-defined token beside the byte token "ø"); text that reaches
    // the BPE model must become the model's token, which decodes to the same bytes.
    for (size_t id = 0; id < spec_.tokens.size(); ++id) {
      if (type_of(spec_, id) == TokenType::Normal) model_tokens_.emplace(spec_.tokens[id], static_cast<int32_t>(id));
    }
    for (int b = 0; b < 256; ++b) {
      std::string ch;
      unicode::append_utf8(ch, unicode::byte_to_alphabet(static_cast<uint8_t>(b)));
      byte_tokens_[b] = model_token(ch);
    }
    build_pieces([](const std::string& text) { return alphabet_to_bytes(text); });
  }

  // Indexes the merges, or says why a merge is invalid. Called once by create().
  std::string index_merges() {
    return merges_.index(spec_.merges, [this](std::string_view text) { return model_token(text); });
  }

 protected:
  void encode_text(std::string_view text, bool /*after_special*/, std::vector<int32_t>& out) const override {
    for (const unicode::Span& word : unicode::pre_tokenize(text, pre_)) {
      encode_word(text.substr(word.offset, word.size), out);
    }
  }

 private:
  // A token's text spells bytes in GPT-2's alphabet. Hugging Face's ByteLevel decoder takes a
  // token with a character outside the alphabet as it is (e.g. an added token "<|im_start|>\n").
  static std::string alphabet_to_bytes(const std::string& text) {
    std::string out;
    for (const unicode::Utf8Char& c : unicode::split_utf8(text)) {
      const int byte = unicode::alphabet_to_byte(c.code_point);
      if (byte < 0) return text;
      out.push_back(static_cast<char>(byte));
    }
    return out;
  }

  static std::string bytes_to_alphabet(std::string_view bytes) {
    std::string out;
    for (char c : bytes) unicode::append_utf8(out, unicode::byte_to_alphabet(static_cast<uint8_t>(c)));
    return out;
  }

  // BPE over the bytes of one pre-token: repeatedly merge the adjacent pair of lowest rank.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const {
    if (ignore_merges_) {
      if (int32_t id = model_token(bytes_to_alphabet(word)); id >= 0) {
        out.push_back(id);
        return;
      }
    }
    std::vector<Symbol> symbols(word.size());
    for (size_t i = 0; i < word.size(); ++i) {
      symbols[i] = {i, 1, kNone, kNone, byte_tokens_[static_cast<uint8_t>(word[i])]};
    }
    if (symbols.empty()) return;
    symbols = link_symbols(std::move(symbols));
    merges_.apply(symbols);
    for (size_t i = 0; i != kNone; i = symbols[i].next) {
      if (symbols[i].token >= 0) {
        out.push_back(symbols[i].token);
      } else {
        append_fallback(word.substr(symbols[i].offset, symbols[i].size), byte_tokens_, out);
      }
    }
  }

  // The normal token spelling `text`, else any token spelling it (-1 if none).
  int32_t model_token(std::string_view text) const {
    const int32_t id = find_token(model_tokens_, text);
    return id >= 0 ? id : find_token(all_tokens_, text);
  }

  unicode::PreTokenizer pre_ = unicode::PreTokenizer::Gpt2;
  bool ignore_merges_ = false;
  TokenIndex model_tokens_;  // text -> id of the normal tokens; on duplicates the first id wins
  std::array<int32_t, 256> byte_tokens_{};  // the token of each byte's alphabet character
  RankedMerges merges_;
};

// ------------------------------------------------------------------ WordPiece

// llama.cpp's "bert" vocabulary (its WPM tokenizer): words from BERT's normalizer, each split
// greedily, longest token first, into tokens; the first token of a word carries "▁" (llama.cpp's
// converter writes BERT's "##" continuation pieces bare and word starts with "▁").
class WordPieceTokenizer final : public TokenizerBase {
 public:
  explicit WordPieceTokenizer(TokenizerSpec spec) : TokenizerBase(std::move(spec)) {
    normalizer_ = *bert_normalizer_named(spec_.normalizer);
    for (const std::string& token : spec_.tokens) max_token_size_ = std::max(max_token_size_, token.size());
    build_pieces([](const std::string& text) { return unescape_spaces(text); });
  }

 protected:
  void encode_text(std::string_view text, bool /*after_special*/, std::vector<int32_t>& out) const override {
    for (const std::string& word : words(text)) encode_word(std::string(kSpaceMarker) + word, out);
  }

 private:
  // CJK ideographs as BERT's tokenizer splits them (its ranges, including Hugging Face's
  // U+2B920 where the CJK Extension E block begins at U+2B820).
  static bool is_cjk_ideograph(char32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
           (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
  }

  // BERT's normalizer and pre-tokenizer: whitespace separates words; NUL, U+FFFD (and so bytes
  // that are not UTF-8) and control characters vanish; accents vanish when stripped (each code
  // point becomes the first of its NFD); punctuation, ASCII symbols and CJK ideographs are words
  // of their own.
  std::vector<std::string> words(std::string_view text) const {
    std::vector<std::string> out(1);
    const auto end_word = [&] {
      if (!out.back().empty()) out.emplace_back();
    };
    for (const unicode::Utf8Char& c : unicode::split_utf8(text)) {
      char32_t cp = c.code_point;
      if (normalizer_.strip_accents) cp = unicode::nfd_first(cp);
      if (unicode::is_whitespace(cp)) {
        end_word();
        continue;
      }
      if (cp == 0 || cp == unicode::kReplacementCharacter || unicode::is_control(cp)) continue;
      if (normalizer_.strip_accents && unicode::is_mark(cp)) continue;
      if (normalizer_.lowercase) cp = unicode::to_lower(cp);
      if (unicode::is_punctuation(cp) || unicode::is_ascii_symbol(cp) || is_cjk_ideograph(cp)) {
        end_word();
        unicode::append_utf8(out.back(), cp);
        out.emplace_back();
      } else {
        unicode::append_utf8(out.back(), cp);
      }
    }
    if (out.back().empty()) out.pop_back();
    return out;
  }

  // Longest token at each position; a word with any position no token starts at is unk as a whole.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const {
    const size_t first = out.size();
    for (size_t i = 0; i < word.size();) {
      int32_t id = -1;
      size_t size = std::min(word.size() - i, max_token_size_);
      for (; size > 0; --size) {
        if ((id = find_token(all_tokens_, word.substr(i, size))) >= 0) break;
      }
      if (id < 0) {
        out.resize(first);
        out.push_back(spec_.unk);
        return;
      }
      out.push_back(id);
      i += size;
    }
  }

  BertNormalizer normalizer_;
  size_t max_token_size_ = 0;
};

}  // namespace

std::string canonical_pre_tokenizer(std::string_view name) {
  const PreTokenizerName* n = find_pre_tokenizer(name);
  return n ? n->canonical : "";
}

std::string known_pre_tokenizers() {
  std::string out;
  for (const PreTokenizerName& n : kPreTokenizerNames) out += (out.empty() ? "" : ", ") + std::string(n.name);
  return out;
}

std::string describe_tokenizer_kind(const TokenizerSpec& spec) {
  switch (spec.kind) {
    case TokenizerSpec::Kind::SentencePiece: return "SentencePiece";
    case TokenizerSpec::Kind::ByteLevelBpe: return "byte-level BPE (" + spec.pre + ")";
    case TokenizerSpec::Kind::WordPiece: return "WordPiece (" + spec.normalizer + ")";
  }
  return "unknown kind " + std::to_string(static_cast<int>(spec.kind));
}

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::create(TokenizerSpec spec) {
  const auto fail = [&](const std::string& message) -> StatusOr<std::unique_ptr<Tokenizer>> {
    return Status::Error("invalid tokenizer: " + message);
  };
  // In order: later checks index the arrays whose sizes the earlier ones checked.
  for (auto check : {check_sizes, check_tokens, check_special_ids, check_kind}) {
    if (std::string problem = check(spec); !problem.empty()) return fail(problem);
  }
  if (spec.kind == TokenizerSpec::Kind::SentencePiece) {
    auto spm = std::make_unique<SentencePieceTokenizer>(std::move(spec));
    if (std::string problem = spm->index_merges(); !problem.empty()) return fail(problem);
    return std::unique_ptr<Tokenizer>(std::move(spm));
  }
  if (spec.kind == TokenizerSpec::Kind::WordPiece) return std::unique_ptr<Tokenizer>(std::make_unique<WordPieceTokenizer>(std::move(spec)));
  auto bpe = std::make_unique<ByteLevelBpeTokenizer>(std::move(spec));
  if (std::string problem = bpe->index_merges(); !problem.empty()) return fail(problem);
  return std::unique_ptr<Tokenizer>(std::move(bpe));
}

}  // namespace ingot
