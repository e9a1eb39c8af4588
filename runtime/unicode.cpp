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

CharClass classify(char32_t cp) {
  if (is_letter(cp)) return CharClass::Letter;
  if (is_number(cp)) return CharClass::Number;
  if (is_whitespace(cp)) return CharClass::Whitespace;
  return CharClass::Other;
}

// The text as characters with their classes; each matcher takes the index of the character where
// a piece starts and returns the index one past its last character (always more than the start).
class CharSequence {
 public:
  explicit CharSequence(std::string_view text) : chars_(split_utf8(text)) {
    classes_.reserve(chars_.size());
    for (const Utf8Char& c : chars_) classes_.push_back(classify(c.code_point));
  }

  size_t size() const { return chars_.size(); }
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

std::vector<Span> pre_tokenize(std::string_view text, PreTokenizer kind) {
  const CharSequence chars(text);
  std::vector<Span> spans;
  for (size_t i = 0; i < chars.size();) {
    size_t end = 0;
    switch (kind) {
      case PreTokenizer::Gpt2: end = match_gpt2(chars, i); break;
      case PreTokenizer::Llama3: end = match_llama3(chars, i, 3); break;
      case PreTokenizer::Qwen2: end = match_llama3(chars, i, 1); break;
    }
    end = std::max(end, i + 1);  // every matcher consumes a character; this keeps the loop finite regardless
    const size_t first = chars[i].offset;
    const size_t last_end = chars[end - 1].offset + chars[end - 1].size;
    spans.push_back({first, last_end - first});
    i = end;
  }
  return spans;
}

}  // namespace ingot::unicode
