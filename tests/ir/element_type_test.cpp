#include "ir/element_type.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace ingot {
namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

float f32_from_bits(uint32_t bits) { return std::bit_cast<float>(bits); }
uint32_t bits_of(float f) { return std::bit_cast<uint32_t>(f); }

ElementType type_at(int index) { return static_cast<ElementType>(index); }

// --- The type table ------------------------------------------------------------------------

TEST(ElementTypeTable, EveryRowDescribesItsOwnType) {
  for (int i = 0; i < kNumElementTypes; ++i) {
    EXPECT_EQ(type_info(type_at(i)).type, type_at(i)) << "row " << i;
  }
}

TEST(ElementTypeTable, NamesRoundTripThroughParse) {
  for (int i = 0; i < kNumElementTypes; ++i) {
    const ElementType t = type_at(i);
    const std::string name(type_name(t));
    auto parsed = parse_element_type(name);
    ASSERT_TRUE(parsed.has_value()) << name;
    EXPECT_EQ(*parsed, t) << name;
  }
}

TEST(ElementTypeTable, NamesAreTheIrSpellings) {
  EXPECT_EQ(type_name(ElementType::f32), "f32");
  EXPECT_EQ(type_name(ElementType::f16), "f16");
  EXPECT_EQ(type_name(ElementType::bf16), "bf16");
  EXPECT_EQ(type_name(ElementType::i64), "i64");
  EXPECT_EQ(type_name(ElementType::i32), "i32");
  EXPECT_EQ(type_name(ElementType::i8), "i8");
  EXPECT_EQ(type_name(ElementType::u8), "u8");
  EXPECT_EQ(type_name(ElementType::boolean), "bool");
  EXPECT_EQ(type_name(ElementType::q8_0), "q8_0");
  EXPECT_EQ(type_name(ElementType::q4_0), "q4_0");
  EXPECT_EQ(type_name(ElementType::q4_1), "q4_1");
  EXPECT_EQ(type_name(ElementType::q5_0), "q5_0");
  EXPECT_EQ(type_name(ElementType::q5_1), "q5_1");
  EXPECT_EQ(type_name(ElementType::q2_k), "q2_k");
  EXPECT_EQ(type_name(ElementType::q3_k), "q3_k");
  EXPECT_EQ(type_name(ElementType::q4_k), "q4_k");
  EXPECT_EQ(type_name(ElementType::q5_k), "q5_k");
  EXPECT_EQ(type_name(ElementType::q6_k), "q6_k");
}

TEST(ElementTypeTable, ParseRejectsUnknownNames) {
  EXPECT_FALSE(parse_element_type("").has_value());
  EXPECT_FALSE(parse_element_type("f64").has_value());
  EXPECT_FALSE(parse_element_type("boolean").has_value());  // the IR spells it "bool"
  EXPECT_FALSE(parse_element_type("f32 ").has_value());
  EXPECT_FALSE(parse_element_type("q8_1").has_value());
  EXPECT_FALSE(parse_element_type("q4").has_value());
}

struct ExpectedRow {
  ElementType type;
  int64_t block_elems;
  int64_t block_bytes;
  bool is_float, is_integer, is_quantized;
  int ggml_type;
};

// Written out from ggml's type list, independently of the implementation's table.
const ExpectedRow kExpectedRows[] = {
    {ElementType::f32, 1, 4, true, false, false, 0},
    {ElementType::f16, 1, 2, true, false, false, 1},
    {ElementType::bf16, 1, 2, true, false, false, 30},
    {ElementType::i64, 1, 8, false, true, false, 27},
    {ElementType::i32, 1, 4, false, true, false, 26},
    {ElementType::i8, 1, 1, false, true, false, 24},
    {ElementType::u8, 1, 1, false, true, false, -1},
    {ElementType::boolean, 1, 1, false, false, false, -1},
    {ElementType::q8_0, 32, 34, false, false, true, 8},
    {ElementType::q4_0, 32, 18, false, false, true, 2},
    {ElementType::q4_1, 32, 20, false, false, true, 3},
    {ElementType::q5_0, 32, 22, false, false, true, 6},
    {ElementType::q5_1, 32, 24, false, false, true, 7},
    {ElementType::q2_k, 256, 84, false, false, true, 10},
    {ElementType::q3_k, 256, 110, false, false, true, 11},
    {ElementType::q4_k, 256, 144, false, false, true, 12},
    {ElementType::q5_k, 256, 176, false, false, true, 13},
    {ElementType::q6_k, 256, 210, false, false, true, 14},
    {ElementType::iq4_nl, 32, 18, false, false, true, 20},
    {ElementType::iq4_xs, 256, 136, false, false, true, 23},
};

TEST(ElementTypeTable, SizesFlagsAndGgmlIds) {
  static_assert(std::size(kExpectedRows) == kNumElementTypes);
  for (const ExpectedRow& row : kExpectedRows) {
    const ElementTypeInfo& info = type_info(row.type);
    SCOPED_TRACE(info.name);
    EXPECT_EQ(info.block_elems, row.block_elems);
    EXPECT_EQ(info.block_bytes, row.block_bytes);
    EXPECT_EQ(info.is_float, row.is_float);
    EXPECT_EQ(info.is_integer, row.is_integer);
    EXPECT_EQ(info.is_quantized, row.is_quantized);
    EXPECT_EQ(info.ggml_type, row.ggml_type);
  }
}

TEST(ElementTypeTable, GgmlIdsRoundTrip) {
  for (const ExpectedRow& row : kExpectedRows) {
    if (row.ggml_type < 0) continue;
    auto t = element_type_from_ggml(row.ggml_type);
    ASSERT_TRUE(t.has_value()) << row.ggml_type;
    EXPECT_EQ(*t, row.type) << row.ggml_type;
  }
}

TEST(ElementTypeTable, GgmlIdsWeDoNotModelAreRejected) {
  EXPECT_FALSE(element_type_from_ggml(-1).has_value());  // the "no id" marker of u8 and bool
  EXPECT_FALSE(element_type_from_ggml(4).has_value());   // removed Q4_2
  EXPECT_FALSE(element_type_from_ggml(9).has_value());   // Q8_1
  EXPECT_FALSE(element_type_from_ggml(15).has_value());  // Q8_K
  EXPECT_FALSE(element_type_from_ggml(25).has_value());  // I16
  EXPECT_FALSE(element_type_from_ggml(28).has_value());  // F64
  EXPECT_FALSE(element_type_from_ggml(1000).has_value());
}

// --- storage_bytes -------------------------------------------------------------------------

int64_t bytes_or_die(ElementType t, int64_t elems) {
  auto result = storage_bytes(t, elems);
  EXPECT_TRUE(result.ok()) << result.message();
  return result.ok() ? *result : -1;
}

TEST(StorageBytes, PlainTypesAreElementsTimesSize) {
  EXPECT_EQ(bytes_or_die(ElementType::f32, 0), 0);
  EXPECT_EQ(bytes_or_die(ElementType::f32, 10), 40);
  EXPECT_EQ(bytes_or_die(ElementType::f16, 7), 14);
  EXPECT_EQ(bytes_or_die(ElementType::bf16, 3), 6);
  EXPECT_EQ(bytes_or_die(ElementType::i64, 5), 40);
  EXPECT_EQ(bytes_or_die(ElementType::i32, 1), 4);
  EXPECT_EQ(bytes_or_die(ElementType::i8, 33), 33);
  EXPECT_EQ(bytes_or_die(ElementType::u8, 9), 9);
  EXPECT_EQ(bytes_or_die(ElementType::boolean, 3), 3);
}

TEST(StorageBytes, QuantizedTypesCountWholeBlocks) {
  EXPECT_EQ(bytes_or_die(ElementType::q8_0, 0), 0);
  EXPECT_EQ(bytes_or_die(ElementType::q8_0, 32), 34);
  EXPECT_EQ(bytes_or_die(ElementType::q4_0, 64), 36);
  EXPECT_EQ(bytes_or_die(ElementType::q4_1, 96), 60);
  EXPECT_EQ(bytes_or_die(ElementType::q5_0, 32), 22);
  EXPECT_EQ(bytes_or_die(ElementType::q5_1, 4096), 128 * 24);
  EXPECT_EQ(bytes_or_die(ElementType::q2_k, 256), 84);
  EXPECT_EQ(bytes_or_die(ElementType::q3_k, 512), 220);
  EXPECT_EQ(bytes_or_die(ElementType::q4_k, 4096), 16 * 144);
  EXPECT_EQ(bytes_or_die(ElementType::q5_k, 256), 176);
  EXPECT_EQ(bytes_or_die(ElementType::q6_k, 768), 630);
}

TEST(StorageBytes, PartialBlockIsAnError) {
  auto r = storage_bytes(ElementType::q4_0, 33);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("q4_0"), std::string::npos) << r.message();
  EXPECT_NE(r.message().find("32"), std::string::npos) << r.message();
  EXPECT_NE(r.message().find("33"), std::string::npos) << r.message();

  EXPECT_FALSE(storage_bytes(ElementType::q8_0, 16).ok());
  EXPECT_FALSE(storage_bytes(ElementType::q2_k, 128).ok());  // a multiple of 32 is not enough for k-quants
  EXPECT_FALSE(storage_bytes(ElementType::q6_k, 257).ok());
  auto k = storage_bytes(ElementType::q4_k, 300);
  ASSERT_FALSE(k.ok());
  EXPECT_NE(k.message().find("256"), std::string::npos) << k.message();
}

TEST(StorageBytes, NegativeCountIsAnError) {
  auto r = storage_bytes(ElementType::f32, -1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("negative"), std::string::npos) << r.message();
  // -32 is a "multiple" of the block size; it must still be rejected as negative.
  EXPECT_FALSE(storage_bytes(ElementType::q4_0, -32).ok());
  EXPECT_FALSE(storage_bytes(ElementType::u8, std::numeric_limits<int64_t>::min()).ok());
}

TEST(StorageBytes, OverflowIsAnErrorNotAWrap) {
  // Largest counts that still fit.
  EXPECT_EQ(bytes_or_die(ElementType::u8, kInt64Max), kInt64Max);
  EXPECT_EQ(bytes_or_die(ElementType::i64, kInt64Max / 8), (kInt64Max / 8) * 8);

  auto r = storage_bytes(ElementType::i64, kInt64Max / 8 + 1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("overflow"), std::string::npos) << r.message();
  EXPECT_FALSE(storage_bytes(ElementType::f32, kInt64Max / 2).ok());

  // Quantized: the block count fits but blocks * 34 does not (34 > 32 elements per block).
  const int64_t whole_q8_blocks = (kInt64Max / 32) * 32;
  EXPECT_FALSE(storage_bytes(ElementType::q8_0, whole_q8_blocks).ok());
  // q4_0 stores fewer bytes than elements, so even the largest whole-block count fits.
  EXPECT_EQ(bytes_or_die(ElementType::q4_0, whole_q8_blocks), (kInt64Max / 32) * 18);
}

// --- f16 -----------------------------------------------------------------------------------

TEST(F16, KnownEncodings) {
  EXPECT_EQ(f32_to_f16(0.0f), 0x0000);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(1.0f), 0x3C00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xC000);
  EXPECT_EQ(f32_to_f16(0.5f), 0x3800);
  EXPECT_EQ(f32_to_f16(2.0f), 0x4000);
  EXPECT_EQ(f32_to_f16(0.333333333f), 0x3555);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(-65504.0f), 0xFBFF);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1023.0f, -24)), 0x03FF);  // largest subnormal
}

TEST(F16, KnownDecodings) {
  EXPECT_EQ(f16_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xC000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x3800), 0.5f);
  EXPECT_EQ(f16_to_f32(0x7BFF), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x0400), std::ldexp(1.0f, -14));
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x03FF), std::ldexp(1023.0f, -24));
  EXPECT_EQ(f16_to_f32(0x0200), std::ldexp(1.0f, -15));
  EXPECT_EQ(f16_to_f32(0x3555), 0.333251953125f);
  EXPECT_EQ(bits_of(f16_to_f32(0x0000)), 0x00000000u);
  EXPECT_EQ(bits_of(f16_to_f32(0x8000)), 0x80000000u);  // -0.0 keeps its sign
  EXPECT_EQ(f16_to_f32(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(f16_to_f32(0xFC00), -std::numeric_limits<float>::infinity());
}

TEST(F16, OverflowRoundsToInfinityAtTheHalfwayPoint) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(f32_to_f16(65519.996f), 0x7BFF);  // just below halfway: stays finite
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);    // halfway, odd mantissa 0x3FF: ties to even = inf
  EXPECT_EQ(f32_to_f16(-65520.0f), 0xFC00);
  EXPECT_EQ(f32_to_f16(1e6f), 0x7C00);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::max()), 0x7C00);
  EXPECT_EQ(f32_to_f16(inf), 0x7C00);
  EXPECT_EQ(f32_to_f16(-inf), 0xFC00);
}

TEST(F16, NormalTiesRoundToEven) {
  // 1 + 2^-11 is halfway between 0x3C00 (even) and 0x3C01 (odd).
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
  // 1 + 3 * 2^-11 is halfway between 0x3C01 (odd) and 0x3C02 (even).
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  // A hair above the tie rounds up, a hair below rounds down.
  EXPECT_EQ(f32_to_f16(f32_from_bits(bits_of(1.0f + std::ldexp(1.0f, -11)) + 1)), 0x3C01);
  EXPECT_EQ(f32_to_f16(f32_from_bits(bits_of(1.0f + 3 * std::ldexp(1.0f, -11)) - 1)), 0x3C01);
  // A mantissa carry moves into the exponent: 2 - 2^-12 is halfway between 0x3BFF and 0x4000.
  EXPECT_EQ(f32_to_f16(2.0f - std::ldexp(1.0f, -12)), 0x4000);
  EXPECT_EQ(f32_to_f16(-(1.0f + 3 * std::ldexp(1.0f, -11))), 0xBC02);
}

TEST(F16, SubnormalRounding) {
  const float unit = std::ldexp(1.0f, -24);  // value of 0x0001
  EXPECT_EQ(f32_to_f16(0.5f * unit), 0x0000);   // tie between 0 and 1: even is 0
  EXPECT_EQ(f32_to_f16(-0.5f * unit), 0x8000);  // and keeps the sign
  EXPECT_EQ(f32_to_f16(f32_from_bits(bits_of(0.5f * unit) + 1)), 0x0001);
  EXPECT_EQ(f32_to_f16(0.49f * unit), 0x0000);
  EXPECT_EQ(f32_to_f16(1.5f * unit), 0x0002);   // tie between 1 and 2: even is 2
  EXPECT_EQ(f32_to_f16(2.5f * unit), 0x0002);   // tie between 2 and 3: even is 2
  EXPECT_EQ(f32_to_f16(1023.5f * unit), 0x0400);  // tie between largest subnormal and smallest normal
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(f32_to_f16(-std::numeric_limits<float>::denorm_min()), 0x8000);
  EXPECT_EQ(f32_to_f16(1e-30f), 0x0000);
}

TEST(F16, NanStaysAQuietNan) {
  const uint16_t h = f32_to_f16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(h & 0x7C00, 0x7C00);
  EXPECT_NE(h & 0x03FF, 0);
  EXPECT_NE(h & 0x0200, 0);  // quiet bit
  // A signalling NaN whose payload is only in the low 13 bits would truncate to infinity.
  const uint16_t low_payload = f32_to_f16(f32_from_bits(0x7F800001u));
  EXPECT_NE(low_payload & 0x03FF, 0);
  EXPECT_NE(low_payload & 0x0200, 0);
  EXPECT_EQ(f32_to_f16(f32_from_bits(0xFF800001u)) & 0x8000, 0x8000);  // sign survives

  EXPECT_TRUE(std::isnan(f16_to_f32(0x7E00)));
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7C01)));  // signalling half NaN
  EXPECT_TRUE(std::isnan(f16_to_f32(0xFE00)));
  EXPECT_NE(bits_of(f16_to_f32(0x7C01)) & 0x00400000u, 0u);  // comes back quiet
}

TEST(F16, EveryHalfRoundTripsExactly) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    const bool is_nan = (h & 0x7C00) == 0x7C00 && (h & 0x03FF) != 0;
    if (is_nan) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
      ASSERT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f)))) << std::hex << h;
    } else {
      ASSERT_EQ(f32_to_f16(f), h) << std::hex << h;
    }
  }
}

// Decodes a half from its fields with ldexp: a reference that shares no code with f16_to_f32.
double half_value(uint16_t h) {
  const int exp = (h >> 10) & 0x1F;
  const int mant = h & 0x3FF;
  const double magnitude = exp == 0 ? std::ldexp(mant, -24) : std::ldexp(1024 + mant, exp - 25);
  return (h & 0x8000) ? -magnitude : magnitude;
}

TEST(F16, EveryTieBetweenNeighboursRoundsToEven) {
  for (uint16_t h = 0; h < 0x7BFF; ++h) {
    // Neighbouring halves differ by at most 11 significant bits, so the midpoint is an exact float.
    const float mid = static_cast<float>((half_value(h) + half_value(h + 1)) / 2);
    const uint16_t even = (h & 1) ? h + 1 : h;
    ASSERT_EQ(f32_to_f16(mid), even) << std::hex << h;
    ASSERT_EQ(f32_to_f16(-mid), even | 0x8000) << std::hex << h;
    ASSERT_EQ(f32_to_f16(std::nextafter(mid, 0.0f)), h) << std::hex << h;
    ASSERT_EQ(f32_to_f16(std::nextafter(mid, 1e9f)), h + 1) << std::hex << h;
  }
}

TEST(F16, MatchesNearestHalfAcrossManyFloats) {
  std::vector<double> positive_halves;  // ascending, 0x0000..0x7BFF
  for (uint16_t h = 0; h <= 0x7BFF; ++h) positive_halves.push_back(half_value(h));

  auto reference = [&](float f) -> uint16_t {
    const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
    const double a = std::fabs(static_cast<double>(f));
    if (a >= 65520.0) return sign | 0x7C00;
    const auto it = std::lower_bound(positive_halves.begin(), positive_halves.end(), a);
    if (it == positive_halves.end()) return sign | 0x7BFF;  // (65504, 65520): nearest is 65504
    const auto hi = static_cast<uint16_t>(it - positive_halves.begin());
    if (positive_halves[hi] == a || hi == 0) return sign | hi;
    const uint16_t lo = hi - 1;
    const double below = a - positive_halves[lo], above = positive_halves[hi] - a;
    if (below < above) return sign | lo;
    if (above < below) return sign | hi;
    return sign | ((lo & 1) ? hi : lo);
  };

  // A stride coprime to 2^32 visits every exponent, both signs, and many mantissas.
  for (uint64_t bits = 0; bits <= 0xFFFFFFFFull; bits += 2003) {
    const float f = f32_from_bits(static_cast<uint32_t>(bits));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), reference(f)) << std::hex << bits;
  }
}

// --- bf16 ----------------------------------------------------------------------------------

TEST(BF16, KnownEncodingsAndDecodings) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(f32_to_bf16(-2.0f), 0xC000);
  EXPECT_EQ(f32_to_bf16(0.0f), 0x0000);
  EXPECT_EQ(f32_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_bf16(3.0f), 0x4040);
  EXPECT_EQ(f32_to_bf16(1e20f), 0x60AD);  // 1e20f = 0x60AD78EC: rounds down
  EXPECT_EQ(bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xC000), -2.0f);
  EXPECT_EQ(bf16_to_f32(0x4049), 3.140625f);
  EXPECT_EQ(bits_of(bf16_to_f32(0x8000)), 0x80000000u);
  EXPECT_EQ(bf16_to_f32(0x0001), f32_from_bits(0x00010000u));  // subnormals are kept
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x00010000u)), 0x0001);
}

TEST(BF16, TiesRoundToEven) {
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3F808000u)), 0x3F80);  // tie, 0x3F80 even
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3F818000u)), 0x3F82);  // tie, 0x3F81 odd -> up
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3F808001u)), 0x3F81);  // above tie
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3F817FFFu)), 0x3F81);  // below tie
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0xBF818000u)), 0xBF82);
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3FFF8000u)), 0x4000);  // carry into the exponent
  for (uint32_t b = 0; b < 0x7F80; b += 3) {
    const uint16_t even = (b & 1) ? b + 1 : b;
    ASSERT_EQ(f32_to_bf16(f32_from_bits((b << 16) | 0x8000u)), even) << std::hex << b;
  }
}

TEST(BF16, InfinityAndOverflow) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(f32_to_bf16(inf), 0x7F80);
  EXPECT_EQ(f32_to_bf16(-inf), 0xFF80);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7F80);  // above the last tie
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x7F7F7FFFu)), 0x7F7F);
  EXPECT_EQ(bf16_to_f32(0x7F80), inf);
  EXPECT_EQ(bf16_to_f32(0xFF80), -inf);
}

TEST(BF16, NanStaysNan) {
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  // Payload only in the dropped half: plain truncation would give infinity.
  const uint16_t low_payload = f32_to_bf16(f32_from_bits(0x7F800001u));
  EXPECT_EQ(low_payload & 0x7F80, 0x7F80);
  EXPECT_NE(low_payload & 0x007F, 0);
  // Rounding must not carry a NaN into the sign bit or the next exponent: 0x7FFFFFFF is a NaN.
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(f32_from_bits(0x7FFFFFFFu)))));
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(f32_from_bits(0xFFC00000u)))));
  EXPECT_TRUE(std::isnan(bf16_to_f32(0x7F81)));
  EXPECT_TRUE(std::isnan(bf16_to_f32(0xFFC0)));
}

TEST(BF16, EveryBf16RoundTripsExactly) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float f = bf16_to_f32(static_cast<uint16_t>(h));
    const bool is_nan = (h & 0x7F80) == 0x7F80 && (h & 0x007F) != 0;
    if (is_nan) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
    } else {
      ASSERT_EQ(bits_of(f), h << 16) << std::hex << h;
      ASSERT_EQ(f32_to_bf16(f), h) << std::hex << h;
    }
  }
}

}  // namespace
}  // namespace ingot
