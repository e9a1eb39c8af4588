#include "ir/element_type.h"

#include <array>
#include <bit>
#include <cstring>
#include <string>

namespace ingot {
namespace {

using ET = ElementType;

// Indexed by the enum value; the static_asserts below keep the order honest.
constexpr std::array<ElementTypeInfo, kNumElementTypes> kTypeTable = {{
    // type      name     elems bytes float  int    quant  ggml
    {ET::f32, "f32", 1, 4, true, false, false, 0},
    {ET::f16, "f16", 1, 2, true, false, false, 1},
    {ET::bf16, "bf16", 1, 2, true, false, false, 30},
    {ET::i64, "i64", 1, 8, false, true, false, 27},
    {ET::i32, "i32", 1, 4, false, true, false, 26},
    {ET::i8, "i8", 1, 1, false, true, false, 24},
    {ET::u8, "u8", 1, 1, false, true, false, -1},  // ggml has no unsigned byte type
    {ET::boolean, "bool", 1, 1, false, false, false, -1},
    {ET::q8_0, "q8_0", 32, 34, false, false, true, 8},
    {ET::q4_0, "q4_0", 32, 18, false, false, true, 2},
    {ET::q4_1, "q4_1", 32, 20, false, false, true, 3},
    {ET::q5_0, "q5_0", 32, 22, false, false, true, 6},
    {ET::q5_1, "q5_1", 32, 24, false, false, true, 7},
    {ET::q2_k, "q2_k", 256, 84, false, false, true, 10},
    {ET::q3_k, "q3_k", 256, 110, false, false, true, 11},
    {ET::q4_k, "q4_k", 256, 144, false, false, true, 12},
    {ET::q5_k, "q5_k", 256, 176, false, false, true, 13},
    {ET::q6_k, "q6_k", 256, 210, false, false, true, 14},
    {ET::iq4_nl, "iq4_nl", 32, 18, false, false, true, 20},
    {ET::iq4_xs, "iq4_xs", 256, 136, false, false, true, 23},
}};

constexpr bool table_is_in_enum_order() {
  for (int i = 0; i < kNumElementTypes; ++i) {
    if (static_cast<int>(kTypeTable[i].type) != i) return false;
  }
  return true;
}
static_assert(table_is_in_enum_order(), "kTypeTable rows must follow the ElementType enum order");
static_assert(static_cast<int>(ET::iq4_xs) + 1 == kNumElementTypes, "kNumElementTypes is stale");

}  // namespace

const ElementTypeInfo& type_info(ElementType t) {
  const int index = static_cast<int>(t);
  INGOT_ASSERT(index >= 0 && index < kNumElementTypes, "element type out of range: " + std::to_string(index));
  return kTypeTable[index];
}

std::optional<ElementType> parse_element_type(std::string_view name) {
  for (const ElementTypeInfo& info : kTypeTable) {
    if (name == info.name) return info.type;
  }
  return std::nullopt;
}

std::optional<ElementType> element_type_from_ggml(int ggml_type) {
  if (ggml_type < 0) return std::nullopt;  // -1 marks "no ggml id", never a real id
  for (const ElementTypeInfo& info : kTypeTable) {
    if (info.ggml_type == ggml_type) return info.type;
  }
  return std::nullopt;
}

StatusOr<int64_t> storage_bytes(ElementType t, int64_t elems) {
  const ElementTypeInfo& info = type_info(t);
  if (elems < 0) {
    return Status::Error("negative element count " + std::to_string(elems) + " for type " + info.name);
  }
  if (elems % info.block_elems != 0) {
    return Status::Error(std::string(info.name) + " stores whole blocks of " + std::to_string(info.block_elems) +
                         " elements, but " + std::to_string(elems) + " elements is not a multiple of " +
                         std::to_string(info.block_elems));
  }
  int64_t bytes = 0;
  if (__builtin_mul_overflow(elems / info.block_elems, info.block_bytes, &bytes)) {
    return Status::Error("storage size of " + std::to_string(elems) + " elements of type " + info.name +
                         " overflows 64 bits");
  }
  return bytes;
}

// --- binary16 -------------------------------------------------------------------------------
// Layout reminders: f32 = 1 sign, 8 exponent (bias 127), 23 mantissa;
//                   f16 = 1 sign, 5 exponent (bias 15), 10 mantissa.

uint16_t f32_to_f16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7FFFFFFFu;

  if (abs > 0x7F800000u) {
    // NaN: keep the top payload bits and force the quiet bit, so a payload that lives only in
    // the low 13 bits cannot collapse into an infinity.
    return static_cast<uint16_t>(sign | 0x7C00u | 0x0200u | ((abs >> 13) & 0x03FFu));
  }
  // 65520 is halfway between 65504 (the largest half, odd mantissa) and 2^16; ties to even
  // therefore round it, and everything above, to infinity.
  if (abs >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);

  if (abs < 0x38800000u) {
    // Below 2^-14: the result is a half subnormal (or zero), in units of 2^-24.
    // value = mant * 2^(exp - 150), so in units of 2^-24 it is mant >> (126 - exp).
    const uint32_t exp = abs >> 23;
    const uint32_t shift = 126u - exp;  // >= 14 because exp <= 112
    if (shift > 24) return sign;        // below half the smallest subnormal (2^-25): rounds to zero
    const uint32_t mant = (abs & 0x007FFFFFu) | 0x00800000u;
    uint32_t half_units = mant >> shift;
    const uint32_t rest = mant & ((1u << shift) - 1u);
    const uint32_t halfway = 1u << (shift - 1u);
    if (rest > halfway || (rest == halfway && (half_units & 1u))) ++half_units;
    // A carry into 0x400 is exactly the smallest normal encoding, so no special case is needed.
    return static_cast<uint16_t>(sign | half_units);
  }

  // Normal: rebias the exponent (127 -> 15) and drop 13 mantissa bits with round to nearest even.
  // A mantissa carry correctly bumps the exponent; the overflow check above keeps it finite.
  uint32_t h = (abs - 0x38000000u) >> 13;
  const uint32_t rest = abs & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x03FFu;

  uint32_t bits;
  if (exp == 0x1Fu) {
    bits = sign | 0x7F800000u | (mant << 13);
    if (mant != 0) bits |= 0x00400000u;  // NaN: quiet it, as hardware conversions do
  } else if (exp == 0) {
    if (mant == 0) {
      bits = sign;  // signed zero
    } else {
      // Subnormal half = mant * 2^-24: normalize so the leading 1 becomes the implicit bit.
      uint32_t f32_exp = 127 - 14;
      while ((mant & 0x0400u) == 0) {
        mant <<= 1;
        --f32_exp;
      }
      bits = sign | (f32_exp << 23) | ((mant & 0x03FFu) << 13);
    }
  } else {
    bits = sign | ((exp + (127 - 15)) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

// --- bfloat16: the top half of an f32 -------------------------------------------------------

uint16_t f32_to_bf16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) {
    // NaN: truncate and force the quiet bit, so a low-bits-only payload stays a NaN.
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  }
  // Round to nearest even: adding 0x7FFF plus the kept lsb carries exactly when the dropped
  // half is above halfway, or at halfway with an odd kept part. Cannot wrap: |bits| <= inf.
  const uint32_t lsb = (bits >> 16) & 1u;
  return static_cast<uint16_t>((bits + 0x7FFFu + lsb) >> 16);
}

float bf16_to_f32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) bits |= 0x00400000u;  // NaN: quiet it
  return std::bit_cast<float>(bits);
}

}  // namespace ingot
