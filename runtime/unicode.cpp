#include "runtime/unicode.h"

#include <algorithm>
#include <array>
#include <iterator>

namespace ingot::unicode {
namespace {

struct CodePointRange {
  char32_t first;
  char32_t last;
};

struct CodePointTriple {
  char32_t a, b, c;
};

#include "runtime/unicode_tables.inc"

template <size_t N>
bool in_ranges(const CodePointRange (&ranges)[N], char32_t cp) {
  // The first range whose end is not below cp is the only one that can hold it.
  const CodePointRange* it = std::lower_bound(std::begin(ranges), std::end(ranges), cp,
                                              [](const CodePointRange& r, char32_t c) { return r.last < c; });
  return it != std::end(ranges) && it->first <= cp;
}

bool is_continuation(uint8_t byte) { return (byte & 0xC0) == 0x80; }

// The length of the well-formed UTF-8 sequence at text[offset] (Unicode's table 3-7), 0 if there
// is none. The second byte's range depends on the first: this rules out overlong forms,
// surrogates and values above U+10FFFF.
size_t well_formed_length(std::string_view text, size_t offset) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[offset + i]); };
  const size_t available = text.size() - offset;
  const uint8_t b0 = byte(0);
  if (b0 < 0x80) return 1;
  size_t length = 0;
  uint8_t second_min = 0x80, second_max = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    if (b0 == 0xE0) second_min = 0xA0;
    if (b0 == 0xED) second_max = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    if (b0 == 0xF0) second_min = 0x90;
    if (b0 == 0xF4) second_max = 0x8F;
  } else {
    return 0;
  }
  if (available < length) return 0;
  if (byte(1) < second_min || byte(1) > second_max) return 0;
  for (size_t i = 2; i < length; ++i) {
    if (!is_continuation(byte(i))) return 0;
  }
  return length;
}

// ------------------------------------------------------------------ pre-tokenizer matchers

enum class CharClass : uint8_t { Letter, Number, Whitespace, Other };

// marks_are_letters: Qwen3.5's regexes take [\p{L}\p{M}] where the others take \p{L}.
CharClass classify(char32_t cp, bool marks_are_letters) {
  if (is_letter(cp) || (marks_are_letters && is_mark(cp))) return CharClass::Letter;
  if (is_number(cp)) return CharClass::Number;
  if (is_whitespace(cp)) return CharClass::Whitespace;
  return CharClass::Other;
}

// The text as characters with their classes; each matcher takes the index of the character where
// a piece starts and returns the index one past its last character (always more than the start).
class CharSequence {
 public:
  explicit CharSequence(std::string_view text, bool marks_are_letters = false)
      : chars_(split_utf8(text)), limit_(chars_.size()) {
    classes_.reserve(chars_.size());
    for (const Utf8Char& c : chars_) classes_.push_back(classify(c.code_point, marks_are_letters));
  }

  // The end of the text as the matchers see it: a sequence pre-tokenizer matches within one piece
  // at a time, and the end of the piece is the end of the text for its regexes ($, (?!\S)).
  size_t size() const { return limit_; }
  void set_limit(size_t limit) { limit_ = std::min(limit, chars_.size()); }
  char32_t code_point(size_t i) const { return chars_[i].code_point; }
  const Utf8Char& operator[](size_t i) const { return chars_[i]; }

  bool is(size_t i, CharClass c) const { return i < size() && classes_[i] == c; }
  bool is_char(size_t i, char32_t cp) const { return i < size() && chars_[i].code_point == cp; }
  bool is_newline(size_t i) const { return is_char(i, '\r') || is_char(i, '\n'); }
  // One past the run of class `c` that starts at i (i itself if chars_[i] is not of that class).
  size_t run_end(size_t i, CharClass c) const {
    while (is(i, c)) ++i;
    return i;
  }

  // 's 't 're 've 'm 'll 'd at i: the length in characters, 0 if none matches.
  size_t contraction_length(size_t i, bool ignore_case) const {
    if (!is_char(i, '\'')) return 0;
    const auto letter = [&](size_t k) -> char32_t {
      if (k >= size()) return 0;
      char32_t cp = chars_[k].code_point;
      return ignore_case && cp >= 'A' && cp <= 'Z' ? cp + ('a' - 'A') : cp;
    };
    const char32_t a = letter(i + 1), b = letter(i + 2);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
  }

  // \s+(?!\S)|\s+ at a whitespace character: the whole run if it ends the text; otherwise the run
  // but its last character, which is left to start the next piece (" world"); at least one.
  size_t whitespace_end(size_t i) const {
    const size_t end = run_end(i, CharClass::Whitespace);
    if (end == size()) return end;
    return std::max(end - 1, i + 1);
  }

  // ' ?X+' for X a letter, number or other class: an optional space and a run of one class.
  // Returns i when there is no such run.
  size_t optional_space_run_end(size_t i, CharClass c) const {
    const size_t start = is_char(i, ' ') ? i + 1 : i;
    return is(start, c) ? run_end(start, c) : i;
  }

 private:
  std::vector<Utf8Char> chars_;
  std::vector<CharClass> classes_;
  size_t limit_;
};

size_t match_gpt2(const CharSequence& s, size_t i) {
  if (size_t n = s.contraction_length(i, /*ignore_case=*/false)) return i + n;
  for (CharClass c : {CharClass::Letter, CharClass::Number, CharClass::Other}) {
    if (size_t end = s.optional_space_run_end(i, c); end != i) return end;
  }
  return s.whitespace_end(i);
}

size_t match_llama3(const CharSequence& s, size_t i, size_t max_digits) {
  if (size_t n = s.contraction_length(i, /*ignore_case=*/true)) return i + n;
  // [^\r\n\p{L}\p{N}]?\p{L}+
  const bool may_lead_letters = !s.is_newline(i) && !s.is(i, CharClass::Letter) && !s.is(i, CharClass::Number);
  if (may_lead_letters && s.is(i + 1, CharClass::Letter)) return s.run_end(i + 1, CharClass::Letter);
  if (s.is(i, CharClass::Letter)) return s.run_end(i, CharClass::Letter);
  // \p{N}{1,max_digits}
  if (s.is(i, CharClass::Number)) return std::min(s.run_end(i, CharClass::Number), i + max_digits);
  // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
  if (size_t end = s.optional_space_run_end(i, CharClass::Other); end != i) {
    while (s.is_newline(end)) ++end;
    return end;
  }
  // Only whitespace is left. \s*[\r\n]+ ends after the last newline of the whitespace run.
  const size_t run = s.run_end(i, CharClass::Whitespace);
  for (size_t end = run; end > i; --end) {
    if (s.is_newline(end - 1)) return end;
  }
  return s.whitespace_end(i);
}

// Mistral's "tekken" as llama.cpp runs it (its regex on text whose non-ASCII characters stand for
// their category, so case is ASCII case):
//   [^\r\n\p{L}\p{N}]?U*L+ | [^\r\n\p{L}\p{N}]?U+L* | \p{N} | ?[^\s\p{L}\p{N}]+[\r\n/]* | \s*[\r\n]+ | \s+(?!\S) | \s+
// with U a letter but a-z and L a letter but A-Z (a non-ASCII letter is both). The alternatives
// are tried in order, quantifiers greedy with backtracking, as std::regex does.
size_t match_tekken(const CharSequence& s, size_t i) {
  const auto upper = [&](size_t k) {
    return s.is(k, CharClass::Letter) && !(s.code_point(k) >= 'a' && s.code_point(k) <= 'z');
  };
  const auto lower = [&](size_t k) {
    return s.is(k, CharClass::Letter) && !(s.code_point(k) >= 'A' && s.code_point(k) <= 'Z');
  };
  const auto lower_run_end = [&](size_t k) {
    while (lower(k)) ++k;
    return k;
  };
  const bool may_lead = i < s.size() && !s.is_newline(i) && !s.is(i, CharClass::Letter) && !s.is(i, CharClass::Number);
  const size_t start = may_lead && s.is(i + 1, CharClass::Letter) ? i + 1 : i;
  if (s.is(start, CharClass::Letter)) {
    size_t upper_end = start;
    while (upper(upper_end)) ++upper_end;
    // U*L+: the longest U run after which L+ can start (backtracking gives back U characters
    // that are also L, i.e. non-ASCII letters).
    for (size_t k = upper_end + 1; k-- > start;) {
      if (lower(k)) return lower_run_end(k);
    }
    return lower_run_end(upper_end);  // U+L* (the U run is not empty: the letter at start is U or L)
  }
  if (s.is(i, CharClass::Number)) return i + 1;
  if (size_t end = s.optional_space_run_end(i, CharClass::Other); end != i) {
    while (s.is_newline(end) || s.is_char(end, '/')) ++end;
    return end;
  }
  const size_t run = s.run_end(i, CharClass::Whitespace);
  for (size_t end = run; end > i; --end) {
    if (s.is_newline(end - 1)) return end;
  }
  return s.whitespace_end(i);
}

// ------------------------------------------------------------------ sequences of regexes

// A range of characters [begin, end).
struct Piece {
  size_t begin, end;
};

// One regex of a sequence: splits the piece [begin, end) into its matches and the text between
// them, in order, as std::regex_iterator over the piece finds them (leftmost match, then on from
// its end).
using Stage = void (*)(CharSequence& s, size_t begin, size_t end, std::vector<Piece>& out);

// A regex that matches where `match` says: match(s, i) is the end of the match starting at i, or i
// when none starts there. Matches never look before i, so trying each position in turn finds
// the leftmost one.
template <size_t (*match)(const CharSequence&, size_t)>
void split_by_matches(CharSequence& s, size_t begin, size_t end, std::vector<Piece>& out) {
  s.set_limit(end);
  size_t gap = begin;
  for (size_t i = begin; i < end;) {
    const size_t match_end = match(s, i);
    if (match_end <= i) {
      ++i;
      continue;
    }
    if (gap < i) out.push_back({gap, i});
    out.push_back({i, match_end});
    i = gap = match_end;
  }
  if (gap < end) out.push_back({gap, end});
}

// One past the run of characters from i on that satisfy `pred` (i if there is none).
template <typename Pred>
size_t run_while(const CharSequence& s, size_t i, Pred pred) {
  while (i < s.size() && pred(s.code_point(i))) ++i;
  return i;
}

// \s?[C]+ for a class C that holds no whitespace: an optional whitespace character, then a run.
template <typename Pred>
size_t optional_whitespace_run(const CharSequence& s, size_t i, Pred in_class) {
  const size_t start = s.is(i, CharClass::Whitespace) ? i + 1 : i;
  const size_t end = run_while(s, start, in_class);
  return end > start ? end : i;
}

// DeepSeek LLM's classes, copied range by range from its regexes in llama.cpp. llama.cpp runs
// these regexes (std::wregex) on text whose non-ASCII whitespace was replaced by U+000B, so a
// whitespace character is never in a class even where a range spans it (U+3000 in the
// punctuation class, the spaces between U+0800 and U+9FA5 in the CJK class).
constexpr CodePointRange kDeepseekLetterRanges[] = {
    {0x41, 0x5A}, {0x61, 0x7A}, {0xB5, 0xB5}, {0xC0, 0xD6}, {0xD8, 0xF6}, {0xF8, 0x1BA},
    {0x1BC, 0x1BF}, {0x1C4, 0x293}, {0x295, 0x2AF}, {0x370, 0x373}, {0x376, 0x377}, {0x37B, 0x37D},
    {0x37F, 0x37F}, {0x386, 0x386}, {0x388, 0x38A}, {0x38C, 0x38C}, {0x38E, 0x3A1}, {0x3A3, 0x3F5},
    {0x3F7, 0x481}, {0x48A, 0x52F}, {0x531, 0x556}, {0x10A0, 0x10C5}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD},
    {0x1C90, 0x1CBA}, {0x1CBD, 0x1CBF}, {0x1D00, 0x1D2B}, {0x1D6B, 0x1D77}, {0x1D79, 0x1D9A}, {0x1E00, 0x1F15},
    {0x1F18, 0x1F1D}, {0x1F20, 0x1F45}, {0x1F48, 0x1F4D}, {0x1F50, 0x1F57}, {0x1F59, 0x1F59}, {0x1F5B, 0x1F5B},
    {0x1F5D, 0x1F5D}, {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC}, {0x1FBE, 0x1FBE}, {0x1FC2, 0x1FC4},
    {0x1FC6, 0x1FCC}, {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB}, {0x1FE0, 0x1FEC}, {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC},
    {0x2102, 0x2102}, {0x2107, 0x2107}, {0x210A, 0x2113}, {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124},
    {0x2126, 0x2126}, {0x2128, 0x2128}, {0x212A, 0x212D}, {0x212F, 0x2134}, {0x2139, 0x2139}, {0x213C, 0x213F},
    {0x2145, 0x2149}, {0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2C7B}, {0x2C7E, 0x2CE4}, {0x2CEB, 0x2CEE},
    {0x2CF2, 0x2CF3}, {0xA640, 0xA66D}, {0xA680, 0xA69B}, {0xA722, 0xA76F}, {0xA771, 0xA787}, {0xA78B, 0xA78E},
    {0xAB70, 0xABBF}, {0xFB00, 0xFB06}, {0xFB13, 0xFB17}, {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0x10400, 0x1044F},
    {0x104B0, 0x104D3}, {0x104D8, 0x104FB}, {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};
constexpr CodePointRange kDeepseekPunctuationRanges[] = {
    {0x21, 0x2F}, {0x3A, 0x7E}, {0x2018, 0x201F}, {0x3000, 0x3002}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E},
};
constexpr CodePointRange kDeepseekCjkRanges[] = {{0x800, 0x9FA5}, {0xAC00, 0xD7FF}};

bool deepseek_letter(char32_t cp) { return in_ranges(kDeepseekLetterRanges, cp); }
bool deepseek_punctuation(char32_t cp) { return in_ranges(kDeepseekPunctuationRanges, cp) && !is_whitespace(cp); }
bool deepseek_cjk(char32_t cp) { return in_ranges(kDeepseekCjkRanges, cp) && !is_whitespace(cp); }

// [\r\n]
size_t match_newline(const CharSequence& s, size_t i) { return s.is_newline(i) ? i + 1 : i; }
size_t match_deepseek_letters(const CharSequence& s, size_t i) { return optional_whitespace_run(s, i, deepseek_letter); }
size_t match_deepseek_punctuation(const CharSequence& s, size_t i) {
  return optional_whitespace_run(s, i, deepseek_punctuation);
}
size_t match_deepseek_cjk(const CharSequence& s, size_t i) { return run_while(s, i, deepseek_cjk); }
// \s?\p{L}+ and \s?\p{P}+ (DeepSeek Coder). llama.cpp matches these on its "collapsed" text, where
// \p{L} is A-Za-z or a non-ASCII letter and \p{P} the ASCII punctuation of general category P or
// a non-ASCII one: the categories themselves.
size_t match_space_letters(const CharSequence& s, size_t i) { return optional_whitespace_run(s, i, is_letter); }
size_t match_space_punctuation(const CharSequence& s, size_t i) { return optional_whitespace_run(s, i, is_punctuation); }
// \p{N}+ and \p{N}
size_t match_numbers(const CharSequence& s, size_t i) { return s.run_end(i, CharClass::Number); }
size_t match_number(const CharSequence& s, size_t i) { return s.is(i, CharClass::Number) ? i + 1 : i; }

// \s+$: the whitespace that ends the piece, if any. (Matching at each position in turn would
// rescan a long whitespace run from every one of its characters.)
void split_trailing_whitespace(CharSequence& s, size_t begin, size_t end, std::vector<Piece>& out) {
  s.set_limit(end);
  size_t start = end;
  while (start > begin && s.is(start - 1, CharClass::Whitespace)) --start;
  if (start > begin) out.push_back({begin, start});
  if (start < end) out.push_back({start, end});
}

// [\p{P}\$\+<=>\^~\|`]+: llama.cpp matches ASCII by the listed characters and its own list of
// ASCII \p{P} (together: every ASCII punctuation and symbol character), other characters by
// general category P.
bool falcon_punctuation(char32_t cp) {
  if (cp < 0x80) return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) || (cp >= 0x5B && cp <= 0x60) ||
                        (cp >= 0x7B && cp <= 0x7E);
  return is_punctuation(cp);
}
size_t match_falcon_punctuation(const CharSequence& s, size_t i) { return run_while(s, i, falcon_punctuation); }
// [\p{P}\$\+<=>\^~\|]+, llama.cpp's "default": Falcon's without the backtick.
bool default_punctuation(char32_t cp) { return cp != '`' && falcon_punctuation(cp); }
size_t match_default_punctuation(const CharSequence& s, size_t i) { return run_while(s, i, default_punctuation); }
// [0-9][0-9][0-9]
size_t match_three_digits(const CharSequence& s, size_t i) {
  const auto digit = [&](size_t k) { return k < s.size() && s.code_point(k) >= '0' && s.code_point(k) <= '9'; };
  return digit(i) && digit(i + 1) && digit(i + 2) ? i + 3 : i;
}

constexpr Stage kDeepseekLlmStages[] = {
    split_by_matches<match_newline>,      split_by_matches<match_deepseek_letters>,
    split_by_matches<match_deepseek_punctuation>, split_trailing_whitespace,
    split_by_matches<match_deepseek_cjk>, split_by_matches<match_numbers>,
};
constexpr Stage kDeepseekCoderStages[] = {
    split_by_matches<match_newline>,      split_by_matches<match_space_letters>, split_by_matches<match_space_punctuation>,
    split_by_matches<match_deepseek_cjk>, split_by_matches<match_number>,
};
constexpr Stage kFalconStages[] = {
    split_by_matches<match_falcon_punctuation>,
    split_by_matches<match_gpt2>,
    split_by_matches<match_three_digits>,
};
constexpr Stage kDefaultStages[] = {
    split_by_matches<match_default_punctuation>,
    split_by_matches<match_gpt2>,
    split_by_matches<match_numbers>,
    split_by_matches<match_three_digits>,
};
constexpr Stage kRefactStages[] = {
    split_by_matches<match_number>,
    split_by_matches<match_gpt2>,
};

template <size_t N>
std::vector<Piece> run_stages(CharSequence& s, const Stage (&stages)[N]) {
  std::vector<Piece> pieces;
  if (s.size() > 0) pieces.push_back({0, s.size()});
  std::vector<Piece> next;
  for (Stage stage : stages) {
    next.clear();
    for (const Piece& p : pieces) stage(s, p.begin, p.end, next);
    pieces.swap(next);
  }
  return pieces;
}

}  // namespace

Utf8Char decode_utf8(std::string_view text, size_t offset) {
  const size_t length = well_formed_length(text, offset);
  if (length == 0) return {kReplacementCharacter, offset, 1};
  const auto byte = [&](size_t i) { return static_cast<char32_t>(static_cast<uint8_t>(text[offset + i])); };
  char32_t cp = 0;
  switch (length) {
    case 1: cp = byte(0); break;
    case 2: cp = ((byte(0) & 0x1F) << 6) | (byte(1) & 0x3F); break;
    case 3: cp = ((byte(0) & 0x0F) << 12) | ((byte(1) & 0x3F) << 6) | (byte(2) & 0x3F); break;
    default: cp = ((byte(0) & 0x07) << 18) | ((byte(1) & 0x3F) << 12) | ((byte(2) & 0x3F) << 6) | (byte(3) & 0x3F);
  }
  return {cp, offset, length};
}

std::vector<Utf8Char> split_utf8(std::string_view text) {
  std::vector<Utf8Char> chars;
  chars.reserve(text.size());
  for (size_t offset = 0; offset < text.size();) {
    chars.push_back(decode_utf8(text, offset));
    offset += chars.back().size;
  }
  return chars;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = kReplacementCharacter;
  const auto put = [&](char32_t v) { out.push_back(static_cast<char>(v)); };
  if (cp < 0x80) {
    put(cp);
  } else if (cp < 0x800) {
    put(0xC0 | (cp >> 6));
    put(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    put(0xE0 | (cp >> 12));
    put(0x80 | ((cp >> 6) & 0x3F));
    put(0x80 | (cp & 0x3F));
  } else {
    put(0xF0 | (cp >> 18));
    put(0x80 | ((cp >> 12) & 0x3F));
    put(0x80 | ((cp >> 6) & 0x3F));
    put(0x80 | (cp & 0x3F));
  }
}

bool is_letter(char32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  return in_ranges(kLetterRanges, cp);
}

bool is_number(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return in_ranges(kNumberRanges, cp);
}

bool is_whitespace(char32_t cp) { return in_ranges(kWhitespaceRanges, cp); }

bool is_punctuation(char32_t cp) { return in_ranges(kPunctuationRanges, cp); }

bool is_mark(char32_t cp) { return cp >= 0x300 && in_ranges(kMarkRanges, cp); }

bool is_control(char32_t cp) { return in_ranges(kControlRanges, cp); }

bool is_ascii_symbol(char32_t cp) {
  return cp == '$' || cp == '+' || cp == '<' || cp == '=' || cp == '>' || cp == '^' || cp == '`' || cp == '|' ||
         cp == '~';
}

char32_t to_lower(char32_t cp) {
  if (cp < 0x80) return cp >= 'A' && cp <= 'Z' ? cp + ('a' - 'A') : cp;
  const auto* end = std::end(kLowercaseRuns);
  const auto* it = std::lower_bound(std::begin(kLowercaseRuns), end, cp,
                                    [](const CodePointTriple& t, char32_t c) { return t.b < c; });
  return it != end && it->a <= cp ? it->c + (cp - it->a) : cp;
}

namespace {

// GPT-2's bytes_to_unicode(): bytes that are printable Latin-1 keep their code point.
bool is_self_mapped(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

struct ByteAlphabet {
  std::array<char32_t, 256> to_alphabet{};
  std::array<int16_t, 324> to_byte{};  // indexed by code point; the alphabet ends below U+0144

  ByteAlphabet() {
    to_byte.fill(-1);
    char32_t next_extra = 0x100;
    for (int b = 0; b < 256; ++b) {
      to_alphabet[b] = is_self_mapped(b) ? static_cast<char32_t>(b) : next_extra++;
      to_byte[to_alphabet[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet alphabet;
  return alphabet;
}

}  // namespace

char32_t byte_to_alphabet(uint8_t byte) { return byte_alphabet().to_alphabet[byte]; }

int alphabet_to_byte(char32_t cp) {
  const auto& to_byte = byte_alphabet().to_byte;
  return cp < to_byte.size() ? to_byte[cp] : -1;
}


// ------------------------------------------------------------------ NFC

namespace {

constexpr char32_t kHangulFirst = 0xAC00, kHangulL = 0x1100, kHangulV = 0x1161, kHangulT = 0x11A7;
constexpr char32_t kHangulVCount = 21, kHangulTCount = 28, kHangulCount = 11172;
// Bytes that are no UTF-8 stay bytes: kept as code points past U+10FFFF, starters that never compose.
constexpr char32_t kRawByte = 0x110000;

uint8_t combining_class(char32_t cp) {
  if (cp < 0x300) return 0;
  const auto* end = std::end(kCombiningClasses);
  const auto* it = std::lower_bound(std::begin(kCombiningClasses), end, cp,
                                    [](const CodePointTriple& t, char32_t c) { return t.b < c; });
  return it != end && it->a <= cp ? static_cast<uint8_t>(it->c) : 0;
}

void decompose(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= kHangulFirst && cp < kHangulFirst + kHangulCount) {
    const char32_t index = cp - kHangulFirst;
    out.push_back(kHangulL + index / (kHangulVCount * kHangulTCount));
    out.push_back(kHangulV + (index % (kHangulVCount * kHangulTCount)) / kHangulTCount);
    if (index % kHangulTCount != 0) out.push_back(kHangulT + index % kHangulTCount);
    return;
  }
  const auto* end = std::end(kDecompositions);
  const auto* it = std::lower_bound(std::begin(kDecompositions), end, cp,
                                    [](const CodePointTriple& t, char32_t c) { return t.a < c; });
  if (it == end || it->a != cp) {
    out.push_back(cp);
    return;
  }
  decompose(it->b, out);
  if (it->c != 0) decompose(it->c, out);
}

// The primary composite of a starter and a following character, 0 if there is none.
char32_t compose(char32_t first, char32_t second) {
  if (first >= kHangulL && first < kHangulL + 19 && second >= kHangulV && second < kHangulV + kHangulVCount)
    return kHangulFirst + ((first - kHangulL) * kHangulVCount + (second - kHangulV)) * kHangulTCount;
  if (first >= kHangulFirst && first < kHangulFirst + kHangulCount && (first - kHangulFirst) % kHangulTCount == 0 &&
      second > kHangulT && second < kHangulT + kHangulTCount)
    return first + (second - kHangulT);
  const auto* end = std::end(kCompositions);
  const auto* it = std::lower_bound(std::begin(kCompositions), end, std::pair{first, second},
                                    [](const CodePointTriple& t, std::pair<char32_t, char32_t> key) {
                                      return t.a != key.first ? t.a < key.first : t.b < key.second;
                                    });
  return it != end && it->a == first && it->b == second ? it->c : 0;
}

}  // namespace

char32_t nfd_first(char32_t cp) {
  if (cp < 0xC0) return cp;
  std::vector<char32_t> decomposed;
  decompose(cp, decomposed);
  // Canonical ordering sorts each run of non-starters by class, stably; only a run at the start
  // changes which code point comes first: the first one of the lowest class in it.
  auto run_end = decomposed.begin();
  while (run_end != decomposed.end() && combining_class(*run_end) != 0) ++run_end;
  if (run_end == decomposed.begin()) return decomposed.front();
  return *std::min_element(decomposed.begin(), run_end,
                           [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
}

std::string nfc(std::string_view text) {
  const std::vector<Utf8Char> chars = split_utf8(text);
  const auto invalid = [](const Utf8Char& c) { return c.size == 1 && c.code_point == kReplacementCharacter; };
  const bool stable = std::all_of(chars.begin(), chars.end(), [&](const Utf8Char& c) {
    return c.code_point < 0x300 || invalid(c) || !in_ranges(kNfcUnstableRanges, c.code_point);
  });
  if (stable) return std::string(text);

  // Canonical decomposition.
  std::vector<char32_t> cps;
  cps.reserve(chars.size());
  for (const Utf8Char& c : chars) {
    if (invalid(c)) cps.push_back(kRawByte + static_cast<uint8_t>(text[c.offset]));
    else decompose(c.code_point, cps);
  }
  // Canonical ordering: each run of non-starters sorted by combining class, stably.
  for (size_t i = 1; i < cps.size(); ++i) {
    const uint8_t cc = combining_class(cps[i]);
    if (cc == 0) continue;
    for (size_t k = i; k > 0 && combining_class(cps[k - 1]) > cc; --k) std::swap(cps[k - 1], cps[k]);
  }
  // Canonical composition: a character joins the last starter unless blocked by a character of
  // the same or a higher class (or a starter) in between.
  size_t starter = 0, out = 0;
  int last_class = -1;  // -1: no starter yet; 0: the previous kept character is the starter
  for (size_t i = 0; i < cps.size(); ++i) {
    const char32_t cp = cps[i];
    const uint8_t cc = cp >= kRawByte ? 0 : combining_class(cp);
    if (last_class >= 0 && (last_class == 0 || last_class < cc) && cps[starter] < kRawByte && cp < kRawByte) {
      if (const char32_t composite = compose(cps[starter], cp)) {
        cps[starter] = composite;
        continue;
      }
    }
    if (cc == 0) {
      starter = out;
      last_class = 0;
    } else if (last_class >= 0) {
      last_class = cc;
    }
    cps[out++] = cp;
  }
  cps.resize(out);

  std::string result;
  result.reserve(text.size());
  for (char32_t cp : cps) {
    if (cp >= kRawByte) result.push_back(static_cast<char>(cp - kRawByte));
    else append_utf8(result, cp);
  }
  return result;
}

std::vector<Span> pre_tokenize(std::string_view text, PreTokenizer kind) {
  CharSequence chars(text, /*marks_are_letters=*/kind == PreTokenizer::Qwen35);
  const auto span_of = [&](size_t begin, size_t end) {
    const size_t first = chars[begin].offset;
    return Span{first, chars[end - 1].offset + chars[end - 1].size - first};
  };
  std::vector<Span> spans;
  std::vector<Piece> pieces;
  switch (kind) {
    case PreTokenizer::DeepseekLlm: pieces = run_stages(chars, kDeepseekLlmStages); break;
    case PreTokenizer::DeepseekCoder: pieces = run_stages(chars, kDeepseekCoderStages); break;
    case PreTokenizer::Falcon: pieces = run_stages(chars, kFalconStages); break;
    case PreTokenizer::Default: pieces = run_stages(chars, kDefaultStages); break;
    case PreTokenizer::Refact: pieces = run_stages(chars, kRefactStages); break;
    case PreTokenizer::Gpt2:
    case PreTokenizer::Llama3:
    case PreTokenizer::Qwen2:
    case PreTokenizer::Qwen35:
    case PreTokenizer::Tekken:
      for (size_t i = 0; i < chars.size();) {
        size_t end = 0;
        if (kind == PreTokenizer::Gpt2) end = match_gpt2(chars, i);
        else if (kind == PreTokenizer::Tekken) end = match_tekken(chars, i);
        else end = match_llama3(chars, i, kind == PreTokenizer::Llama3 ? 3 : 1);
        end = std::max(end, i + 1);  // every matcher consumes a character; this keeps the loop finite regardless
        spans.push_back(span_of(i, end));
        i = end;
      }
      return spans;
  }
  spans.reserve(pieces.size());
  for (const Piece& p : pieces) spans.push_back(span_of(p.begin, p.end));
  return spans;
}

}  // namespace ingot::unicode
