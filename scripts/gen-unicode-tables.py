#!/usr/bin/env python3
"""Generates runtime/unicode_tables.inc: the Unicode classes the tokenizers' pre-tokenizers need.

The byte-level BPE pre-tokenizers are regular expressions over \\p{L}, \\p{N}, \\p{P} and \\s. The runtime
implements them by hand, so it needs those classes as sorted, inclusive code point ranges:

  letter      general category L* (Lu, Ll, Lt, Lm, Lo)     = \\p{L}
  number      general category N* (Nd, Nl, No)             = \\p{N}
  punctuation general category P* (Pc Pd Ps Pe Pi Pf Po)   = \\p{P} (Falcon's pre-tokenizer)
  whitespace  the White_Space property                     = \\s in Unicode regex engines

Python's unicodedata has no White_Space property. str.isspace() is White_Space plus U+001C..U+001F
(bidi classes B/S), so those four are removed and the result is checked against the property's
fixed list.

For NFC (the normalizer of Qwen2/Qwen3's tokenizer.json) it also writes the canonical combining
classes, the canonical decompositions (one step each), the primary compositions (pairs whose
composite NFC keeps: composition exclusions, singletons and non-starter decompositions are not
composed) and the characters NFC may change or that may combine with their neighbours (a text
without any of them is already in NFC). Hangul syllables are algorithmic and not in the tables.

For the WordPiece (BERT) normalizer, as llama.cpp implements it, it writes general categories M*
(accent marks, stripped) and Cc Cf Co Cs (llama.cpp's \\p{C} flag: removed; unassigned code points
are not in it) and the simple lowercase mapping of UnicodeData.txt as runs (first, last, lowercase
of first) in which each next code point maps to the next lowercase one. Python's str.lower() is the
full mapping; it differs from the simple one only for U+0130, whose simple lowercase is U+0069.

Usage: scripts/gen-unicode-tables.py [output]   (default: runtime/unicode_tables.inc)
"""
import os
import sys
import unicodedata

MAX_CODE_POINT = 0x10FFFF

WHITE_SPACE = (
    [(0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
     (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000)])


def ranges_of(predicate):
    """Sorted inclusive (first, last) ranges of the code points where predicate holds."""
    ranges = []
    start = None
    for cp in range(MAX_CODE_POINT + 2):
        inside = cp <= MAX_CODE_POINT and predicate(cp)
        if inside and start is None:
            start = cp
        elif not inside and start is not None:
            ranges.append((start, cp - 1))
            start = None
    return ranges


def category_starts_with(prefix):
    return lambda cp: unicodedata.category(chr(cp)).startswith(prefix)


def is_white_space(cp):
    return chr(cp).isspace() and not 0x1C <= cp <= 0x1F


def emit_table(name, comment, ranges, per_line=6):
    lines = [f"// {comment}: {len(ranges)} ranges.",
             f"constexpr CodePointRange {name}[] = {{"]
    for i in range(0, len(ranges), per_line):
        chunk = ranges[i:i + per_line]
        lines.append("    " + " ".join(f"{{0x{a:X}, 0x{b:X}}}," for a, b in chunk))
    lines.append("};")
    return "\n".join(lines)


def emit_triples(name, comment, triples, per_line=4):
    lines = [f"// {comment}: {len(triples)} entries.",
             f"constexpr CodePointTriple {name}[] = {{"]
    for i in range(0, len(triples), per_line):
        chunk = triples[i:i + per_line]
        lines.append("    " + " ".join(f"{{0x{a:X}, 0x{b:X}, 0x{c:X}}}," for a, b, c in chunk))
    lines.append("};")
    return "\n".join(lines)


def is_hangul_syllable(cp):
    return 0xAC00 <= cp < 0xAC00 + 11172


def canonical_decompositions():
    """(code point, first, second or 0) for each canonical one-step decomposition."""
    out = []
    for cp in range(MAX_CODE_POINT + 1):
        d = unicodedata.decomposition(chr(cp))
        if not d or d.startswith("<") or is_hangul_syllable(cp):
            continue
        parts = [int(x, 16) for x in d.split()]
        assert len(parts) in (1, 2), (hex(cp), d)
        out.append((cp, parts[0], parts[1] if len(parts) == 2 else 0))
    return out


def simple_lowercase_runs():
    runs = []
    for cp in range(MAX_CODE_POINT + 1):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        full = chr(cp).lower()
        if len(full) != 1:
            assert cp == 0x130, hex(cp)  # the only one-to-many lowercase mapping
            full = "i"
        lower = ord(full)
        if lower == cp:
            continue
        if runs and runs[-1][1] == cp - 1 and runs[-1][2] + (cp - runs[-1][0]) == lower:
            runs[-1][1] = cp
        else:
            runs.append([cp, cp, lower])
    return [tuple(r) for r in runs]


def is_control(cp):
    return unicodedata.category(chr(cp)) in ("Cc", "Cf", "Co", "Cs")


def nfc_tables():
    decompositions = canonical_decompositions()
    compositions = sorted((a, b, cp) for cp, a, b in decompositions
                          if b and unicodedata.normalize("NFC", chr(cp)) == chr(cp))
    seconds = {b for _, b, _ in compositions}
    # Hangul: L+V and LV+T compose.
    seconds.update(range(0x1161, 0x1176))
    seconds.update(range(0x11A8, 0x11C3))

    def unstable(cp):
        c = chr(cp)
        return (unicodedata.combining(c) != 0 or cp in seconds or
                (not is_hangul_syllable(cp) and unicodedata.normalize("NFC", c) != c))

    ccc = []
    start = None
    for cp in range(MAX_CODE_POINT + 2):
        value = unicodedata.combining(chr(cp)) if cp <= MAX_CODE_POINT else 0
        if start is not None and value != start[1]:
            ccc.append((start[0], cp - 1, start[1]))
            start = None
        if value and start is None:
            start = (cp, value)
    return [
        emit_triples("kCombiningClasses", "Canonical combining class (first, last, class) of the non-zero ranges", ccc),
        emit_triples("kDecompositions", "Canonical decomposition, one step (code point, first, second or 0)",
                     decompositions),
        emit_triples("kCompositions", "Primary compositions (first, second, composite), sorted", compositions),
        emit_table("kNfcUnstableRanges", "Characters NFC may change or combine with a neighbour",
                   ranges_of(unstable)),
    ]


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "runtime", "unicode_tables.inc")

    whitespace = ranges_of(is_white_space)
    if whitespace != WHITE_SPACE:
        sys.exit(f"White_Space derived from str.isspace() changed: {whitespace}")

    tables = [
        emit_table("kLetterRanges", "General category L (Lu Ll Lt Lm Lo)", ranges_of(category_starts_with("L"))),
        emit_table("kNumberRanges", "General category N (Nd Nl No)", ranges_of(category_starts_with("N"))),
        emit_table("kPunctuationRanges", "General category P (Pc Pd Ps Pe Pi Pf Po)",
                   ranges_of(category_starts_with("P"))),
        emit_table("kWhitespaceRanges", "White_Space property", whitespace),
    ] + nfc_tables() + [
        emit_table("kMarkRanges", "General category M (Mn Mc Me)", ranges_of(category_starts_with("M"))),
        emit_table("kControlRanges", "General categories Cc Cf Co Cs", ranges_of(is_control)),
        emit_triples("kLowercaseRuns", "Simple lowercase mapping, runs (first, last, lowercase of first)",
                     simple_lowercase_runs()),
    ]
    header = (
        f"// Generated by scripts/gen-unicode-tables.py from Python's unicodedata (Unicode "
        f"{unicodedata.unidata_version}). Do not edit.\n"
        "// Sorted, inclusive code point ranges and triples; included by runtime/unicode.cpp, which "
        "defines CodePointRange and CodePointTriple.\n")
    with open(out, "w", encoding="ascii") as f:
        f.write(header + "\n" + "\n\n".join(tables) + "\n")


if __name__ == "__main__":
    main()
