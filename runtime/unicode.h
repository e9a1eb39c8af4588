// Unicode for the tokenizers: UTF-8 decoding that accepts any bytes, the character classes of the
// byte-level BPE pre-tokenizers (\p{L}, \p{N}, \s), GPT-2's byte alphabet, and the pre-tokenizers
// themselves, written as small matchers over code points instead of regular expressions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ingot::unicode {

constexpr char32_t kReplacementCharacter = 0xFFFD;

// One character of a UTF-8 string: its code point and where its bytes are.
struct Utf8Char {
  char32_t code_point = 0;
  size_t offset = 0;
  size_t size = 0;
};

// The character starting at text[offset] (offset < text.size()). A byte that does not begin a
// complete, shortest-form UTF-8 sequence of a scalar value is a one-byte character whose code
// point is U+FFFD; decoding therefore never fails and every byte belongs to exactly one character.
Utf8Char decode_utf8(std::string_view text, size_t offset);
std::vector<Utf8Char> split_utf8(std::string_view text);
// Appends the UTF-8 encoding of a scalar value (surrogates and values above U+10FFFF become U+FFFD).
void append_utf8(std::string& out, char32_t code_point);

bool is_letter(char32_t code_point);      // general category L*
bool is_number(char32_t code_point);      // general category N*
bool is_whitespace(char32_t code_point);  // White_Space property
bool is_punctuation(char32_t code_point); // general category P*
bool is_mark(char32_t code_point);        // general category M* (accents and other combining marks)
bool is_control(char32_t code_point);     // general categories Cc Cf Co Cs (not unassigned Cn)
bool is_ascii_symbol(char32_t code_point); // general category S* below U+007F: $ + < = > ^ ` | ~
// The simple lowercase mapping of UnicodeData.txt (one code point to one; U+0130 -> U+0069).
char32_t to_lower(char32_t code_point);
// The first code point of the character's canonical decomposition (NFD): what is left of a
// character when its accents are stripped. llama.cpp's BERT normalizer maps each code point so.
char32_t nfd_first(char32_t code_point);

// Unicode Normalization Form C (canonical decomposition, canonical ordering, canonical
// composition), Hugging Face's NFC normalizer. Bytes that are not UTF-8 stay as they are and block
// composition across them. A text without characters NFC can change is returned unchanged.
std::string nfc(std::string_view text);

// GPT-2's byte-to-unicode alphabet: printable Latin-1 bytes stand for themselves, the other 68
// bytes for U+0100.. in byte order, so that every byte is a visible character.
char32_t byte_to_alphabet(uint8_t byte);
// The byte an alphabet character stands for, or -1 for a character outside the alphabet.
int alphabet_to_byte(char32_t code_point);

// Byte-level BPE pre-tokenizers. Gpt2, Llama3, Qwen2, Qwen35 and Tekken are one regex each,
// equivalent to its Hugging Face pattern (Tekken: to llama.cpp's rewrite of Mistral's, which
// differs for non-ASCII letters and marks):
//   Gpt2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   Llama3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   Qwen2:  Llama3 with \p{N} instead of \p{N}{1,3}
//   Qwen35: Qwen2 with [\p{L}\p{M}] for \p{L} in the letter run and in the punctuation class
//           (Qwen3.5's tokenizer.json: combining marks stay in their word)
//   Tekken: Mistral's: an optional non-letter, then an upper-then-lower run of letters (by ASCII
//           case, as llama.cpp runs it: a non-ASCII letter is both), single digits, punctuation
//           runs with trailing newlines and slashes, LLaMA 3's whitespace rules (match_tekken)
// (the case-insensitive contractions match ASCII letters only, as in llama.cpp). The others are
// sequences of regexes, as llama.cpp (34af94cd, llama-vocab.cpp) defines them: each regex in turn
// splits every piece the previous ones left into its matches and the text between them
// (Hugging Face's Split with behavior "Isolated"):
//   DeepseekLlm: [\r\n] | \s?[Latin, Greek, Cyrillic, ... letters]+ | \s?[ASCII and full-width
//                punctuation]+ | \s+$ | [U+0800..U+9FA5 U+AC00..U+D7FF]+ | \p{N}+
//   DeepseekCoder: [\r\n] | \s?\p{L}+ | \s?\p{P}+ | [U+0800..U+9FA5 U+AC00..U+D7FF]+ | \p{N}
//   Falcon:      [\p{P}$+<=>^~|`]+ | Gpt2 | [0-9][0-9][0-9]
//   Default:     [\p{P}$+<=>^~|]+ | Gpt2 | \p{N}+ | [0-9][0-9][0-9]   (a GGUF without a
//                pre-tokenizer name, or "default": llama.cpp's fallback, not GPT-2's regex)
//   Refact:      \p{N} | Gpt2            (also llama.cpp's "starcoder")
// ("mpt" is Gpt2.) Invalid UTF-8 bytes count as U+FFFD, i.e. neither letter, number nor
// whitespace.
enum class PreTokenizer { Gpt2, Llama3, Qwen2, Qwen35, Tekken, DeepseekLlm, DeepseekCoder, Falcon, Refact, Default };

// A piece of the text as a byte range.
struct Span {
  size_t offset = 0;
  size_t size = 0;
};

// The pieces, in order; together they cover the text exactly.
std::vector<Span> pre_tokenize(std::string_view text, PreTokenizer kind);

}  // namespace ingot::unicode
