#include "ir/quant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "ir/element_type.h"

// Two kinds of test per format:
//  * HandBuiltBlocks: raw bytes written at ggml's offsets, with expected values worked out from
//    ggml-quants.c's dequantize_row_* by hand (a few derivations are spelled out in comments).
//  * EncodedRow: logical values (one quant per element, per-sub-block scales) packed into bytes by
//    an element-at-a-time encoder written from ggml's quantize_row_*_ref packing, then decoded and
//    compared element by element against the plain formula. Three blocks per row, so block
//    strides and per-block scales are exercised.
// All chosen scales are small powers of two times small integers, so every expected value is
// exact in float and the comparisons are exact.

namespace ingot {
namespace {

struct Half {
  uint16_t bits;
  float value;
};
constexpr Half kOne{0x3C00, 1.0f};
constexpr Half kHalf{0x3800, 0.5f};
constexpr Half kQuarter{0x3400, 0.25f};
constexpr Half kTwo{0x4000, 2.0f};
constexpr Half kMinusOne{0xBC00, -1.0f};
constexpr Half kMinusTwo{0xC000, -2.0f};
constexpr Half kScaleCycle[] = {kOne, kHalf, kTwo, kMinusTwo, kQuarter, kMinusOne};

void put_half(uint8_t* p, uint16_t bits) {
  p[0] = static_cast<uint8_t>(bits & 0xFF);  // little endian, as in the file
  p[1] = static_cast<uint8_t>(bits >> 8);
}

// Dequantizes from an odd address (tensor data need not be aligned) into a buffer of exactly n
// floats, pre-filled with NaN so an element the decoder skips cannot pass by accident.
std::vector<float> dequantize(ElementType t, const std::vector<uint8_t>& bytes, int64_t n) {
  auto expected_bytes = storage_bytes(t, n);
  EXPECT_TRUE(expected_bytes.ok());
  EXPECT_EQ(static_cast<int64_t>(bytes.size()), *expected_bytes) << "test built the wrong number of bytes";
  std::vector<uint8_t> shifted(bytes.size() + 1);
  std::copy(bytes.begin(), bytes.end(), shifted.begin() + 1);
  std::vector<float> out(static_cast<size_t>(n), std::numeric_limits<float>::quiet_NaN());
  dequantize_row(t, shifted.data() + 1, out.data(), n);
  return out;
}

void expect_elements(const std::vector<float>& out, std::initializer_list<std::pair<int, float>> expected) {
  for (const auto& [index, value] : expected) {
    ASSERT_LT(static_cast<size_t>(index), out.size());
    EXPECT_EQ(out[index], value) << "element " << index;
  }
}

// Encodes every block, runs the decoder and compares every element with `expected(block, e)`.
template <typename Logical, typename Encode, typename Expected>
void check_encoded_row(ElementType t, const std::vector<Logical>& blocks, Encode encode, Expected expected) {
  const ElementTypeInfo& info = type_info(t);
  const int64_t n = info.block_elems * static_cast<int64_t>(blocks.size());
  std::vector<uint8_t> bytes(static_cast<size_t>(info.block_bytes) * blocks.size(), 0);
  for (size_t b = 0; b < blocks.size(); ++b) encode(blocks[b], bytes.data() + b * info.block_bytes);
  const std::vector<float> out = dequantize(t, bytes, n);
  for (size_t b = 0; b < blocks.size(); ++b) {
    for (int e = 0; e < info.block_elems; ++e) {
      ASSERT_EQ(out[b * info.block_elems + e], expected(blocks[b], e))
          << info.name << " block " << b << " element " << e;
    }
  }
}

// Cycles through every value in [0, range) with a stride coprime to it, shifted per block.
int pattern(int e, int block, int range) { return (e * 7 + 3 + 5 * block) % range; }

// --- Layouts -------------------------------------------------------------------------------

TEST(QuantLayout, FieldOffsetsMatchGgml) {
  EXPECT_EQ(offsetof(BlockQ8_0, qs), 2u);
  EXPECT_EQ(offsetof(BlockQ4_0, qs), 2u);
  EXPECT_EQ(offsetof(BlockQ4_1, m), 2u);
  EXPECT_EQ(offsetof(BlockQ4_1, qs), 4u);
  EXPECT_EQ(offsetof(BlockQ5_0, qh), 2u);
  EXPECT_EQ(offsetof(BlockQ5_0, qs), 6u);
  EXPECT_EQ(offsetof(BlockQ5_1, qh), 4u);
  EXPECT_EQ(offsetof(BlockQ5_1, qs), 8u);
  EXPECT_EQ(offsetof(BlockQ2_K, qs), 16u);
  EXPECT_EQ(offsetof(BlockQ2_K, d), 80u);
  EXPECT_EQ(offsetof(BlockQ2_K, dmin), 82u);
  EXPECT_EQ(offsetof(BlockQ3_K, qs), 32u);
  EXPECT_EQ(offsetof(BlockQ3_K, scales), 96u);
  EXPECT_EQ(offsetof(BlockQ3_K, d), 108u);
  EXPECT_EQ(offsetof(BlockQ4_K, scales), 4u);
  EXPECT_EQ(offsetof(BlockQ4_K, qs), 16u);
  EXPECT_EQ(offsetof(BlockQ5_K, qh), 16u);
  EXPECT_EQ(offsetof(BlockQ5_K, qs), 48u);
  EXPECT_EQ(offsetof(BlockQ6_K, qh), 128u);
  EXPECT_EQ(offsetof(BlockQ6_K, scales), 192u);
  EXPECT_EQ(offsetof(BlockQ6_K, d), 208u);
}

TEST(QuantLayout, BlockSizesMatchTheTypeTable) {
  EXPECT_EQ(type_info(ElementType::q8_0).block_bytes, static_cast<int64_t>(sizeof(BlockQ8_0)));
  EXPECT_EQ(type_info(ElementType::q4_0).block_bytes, static_cast<int64_t>(sizeof(BlockQ4_0)));
  EXPECT_EQ(type_info(ElementType::q4_1).block_bytes, static_cast<int64_t>(sizeof(BlockQ4_1)));
  EXPECT_EQ(type_info(ElementType::q5_0).block_bytes, static_cast<int64_t>(sizeof(BlockQ5_0)));
  EXPECT_EQ(type_info(ElementType::q5_1).block_bytes, static_cast<int64_t>(sizeof(BlockQ5_1)));
  EXPECT_EQ(type_info(ElementType::q2_k).block_bytes, static_cast<int64_t>(sizeof(BlockQ2_K)));
  EXPECT_EQ(type_info(ElementType::q3_k).block_bytes, static_cast<int64_t>(sizeof(BlockQ3_K)));
  EXPECT_EQ(type_info(ElementType::q4_k).block_bytes, static_cast<int64_t>(sizeof(BlockQ4_K)));
  EXPECT_EQ(type_info(ElementType::q5_k).block_bytes, static_cast<int64_t>(sizeof(BlockQ5_K)));
  EXPECT_EQ(type_info(ElementType::q6_k).block_bytes, static_cast<int64_t>(sizeof(BlockQ6_K)));
  EXPECT_EQ(type_info(ElementType::q4_0).block_elems, kQK);
  EXPECT_EQ(type_info(ElementType::q4_k).block_elems, kQK_K);
}

TEST(Dequantize, ZeroElementsWritesNothing) {
  float sentinel = 42.0f;
  const uint8_t unused = 0;
  dequantize_row(ElementType::q4_k, &unused, &sentinel, 0);
  EXPECT_EQ(sentinel, 42.0f);
}

TEST(DequantizeDeathTest, RejectsPlainTypesAndPartialBlocks) {
  std::vector<uint8_t> bytes(64, 0);
  std::vector<float> out(64);
  EXPECT_DEATH(dequantize_row(ElementType::f32, bytes.data(), out.data(), 4), "non-quantized");
  EXPECT_DEATH(dequantize_row(ElementType::q4_0, bytes.data(), out.data(), 33), "whole number");
}

// --- q8_0: int8 quants times d -------------------------------------------------------------

TEST(DequantizeQ8_0, HandBuiltBlocks) {
  std::vector<uint8_t> b(2 * 34, 0);
  put_half(&b[0], kHalf.bits);
  const uint8_t first[] = {0x80, 0x81, 0xFF, 0x00, 0x01, 0x7F};  // -128, -127, -1, 0, 1, 127
  for (int j = 0; j < 32; ++j) b[2 + j] = j < 6 ? first[j] : static_cast<uint8_t>(j);
  put_half(&b[34], kMinusTwo.bits);
  for (int j = 0; j < 32; ++j) b[36 + j] = static_cast<uint8_t>(j * 9 + 100);
  const auto out = dequantize(ElementType::q8_0, b, 64);
  expect_elements(out, {{0, -64.0f}, {1, -63.5f}, {2, -0.5f}, {3, 0.0f}, {4, 0.5f}, {5, 63.5f},
                        {6, 3.0f}, {31, 15.5f},
                        // block 1: d = -2; byte 100 -> 100, byte 109 -> 109, byte 223 -> -33
                        {32, -200.0f}, {33, -218.0f}, {45, 78.0f}, {63, -246.0f}});
}

struct Q8_0Block {
  Half d;
  std::array<int, 32> q;  // -128..127
};

TEST(DequantizeQ8_0, EncodedRow) {
  std::vector<Q8_0Block> blocks;
  for (int b = 0; b < 3; ++b) {
    Q8_0Block blk{kScaleCycle[b], {}};
    for (int e = 0; e < 32; ++e) blk.q[e] = pattern(e * 37, b, 256) - 128;
    blocks.push_back(blk);
  }
  check_encoded_row(
      ElementType::q8_0, blocks,
      [](const Q8_0Block& blk, uint8_t* p) {
        put_half(p, blk.d.bits);
        for (int e = 0; e < 32; ++e) p[2 + e] = static_cast<uint8_t>(blk.q[e]);
      },
      [](const Q8_0Block& blk, int e) { return blk.q[e] * blk.d.value; });
}

// --- q4_0 / q4_1: element j < 16 is the low nibble of qs[j], element j + 16 its high nibble ---

TEST(DequantizeQ4_0, HandBuiltBlocks) {
  std::vector<uint8_t> b(2 * 18, 0);
  put_half(&b[0], kOne.bits);
  for (int j = 0; j < 16; ++j) b[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  put_half(&b[18], kHalf.bits);
  for (int j = 0; j < 16; ++j) b[20 + j] = j % 2 == 0 ? 0x5A : 0xC3;
  const auto out = dequantize(ElementType::q4_0, b, 64);
  // Block 0: element j = j - 8, element 16 + j = (15 - j) - 8. Interleaving nibbles
  // (2j, 2j + 1) would give element 1 = 7 instead of -7.
  expect_elements(out, {{0, -8.0f}, {1, -7.0f}, {15, 7.0f}, {16, 7.0f}, {17, 6.0f}, {31, -8.0f},
                        // Block 1, d = 0.5: 0x5A -> low 10, high 5; 0xC3 -> low 3, high 12.
                        {32, 1.0f}, {33, -2.5f}, {47, -2.5f}, {48, -1.5f}, {49, 2.0f}, {63, 2.0f}});
}

struct Q4Block {
  Half d, m;
  std::array<int, 32> q;  // 0..15 (q4) or 0..31 (q5)
};

std::vector<Q4Block> make_q4_blocks(int range) {
  std::vector<Q4Block> blocks;
  for (int b = 0; b < 3; ++b) {
    Q4Block blk{kScaleCycle[b], kScaleCycle[b + 3], {}};
    for (int e = 0; e < 32; ++e) blk.q[e] = pattern(e, b, range);
    blocks.push_back(blk);
  }
  return blocks;
}

void encode_nibbles(const Q4Block& blk, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>((blk.q[j] & 0xF) | ((blk.q[j + 16] & 0xF) << 4));
}

// Fifth bits: element e -> bit e of a little-endian 32-bit word.
void encode_fifth_bits(const Q4Block& blk, uint8_t* qh) {
  for (int e = 0; e < 32; ++e) {
    if (blk.q[e] & 0x10) qh[e / 8] |= static_cast<uint8_t>(1u << (e % 8));
  }
}

TEST(DequantizeQ4_0, EncodedRow) {
  check_encoded_row(
      ElementType::q4_0, make_q4_blocks(16),
      [](const Q4Block& blk, uint8_t* p) {
        put_half(p, blk.d.bits);
        encode_nibbles(blk, p + 2);
      },
      [](const Q4Block& blk, int e) { return (blk.q[e] - 8) * blk.d.value; });
}

TEST(DequantizeQ4_1, HandBuiltBlocks) {
  std::vector<uint8_t> b(2 * 20, 0);
  put_half(&b[0], kHalf.bits);
  put_half(&b[2], kMinusOne.bits);
  for (int j = 0; j < 16; ++j) b[4 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  put_half(&b[20], kTwo.bits);
  put_half(&b[22], kOne.bits);
  for (int j = 0; j < 16; ++j) b[24 + j] = j % 2 == 0 ? 0x5A : 0xC3;
  const auto out = dequantize(ElementType::q4_1, b, 64);
  // x = q * d + m. Block 0: 0.5 q - 1; block 1: 2 q + 1.
  expect_elements(out, {{0, -1.0f}, {1, -0.5f}, {15, 6.5f}, {16, 6.5f}, {17, 6.0f}, {31, -1.0f},
                        {32, 21.0f}, {33, 7.0f}, {47, 7.0f}, {48, 11.0f}, {49, 25.0f}, {63, 25.0f}});
}

TEST(DequantizeQ4_1, EncodedRow) {
  check_encoded_row(
      ElementType::q4_1, make_q4_blocks(16),
      [](const Q4Block& blk, uint8_t* p) {
        put_half(p, blk.d.bits);
        put_half(p + 2, blk.m.bits);
        encode_nibbles(blk, p + 4);
      },
      [](const Q4Block& blk, int e) { return blk.q[e] * blk.d.value + blk.m.value; });
}

// --- q5_0 / q5_1: nibbles as q4, fifth bit from qh -----------------------------------------

TEST(DequantizeQ5_0, HandBuiltBlocks) {
  std::vector<uint8_t> b(2 * 22, 0);
  put_half(&b[0], kOne.bits);
  // qh = 0x40028001: bits 0, 15, 17 and 30 set.
  b[2] = 0x01, b[3] = 0x80, b[4] = 0x02, b[5] = 0x40;
  for (int j = 0; j < 16; ++j) b[6 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  put_half(&b[22], kHalf.bits);
  b[24] = 0xF0, b[25] = 0x0F, b[26] = 0xAA, b[27] = 0x55;  // qh = 0x55AA0FF0
  for (int j = 0; j < 16; ++j) b[28 + j] = j % 2 == 0 ? 0x5A : 0xC3;
  const auto out = dequantize(ElementType::q5_0, b, 64);
  // Block 0: element 0 = (0 | 16) - 16 = 0; element 16 = qs[0] high 15, bit 16 clear -> -1;
  // element 17 = 14 with bit 17 -> 30 - 16 = 14; element 30 = 1 with bit 30 -> 1.
  expect_elements(out, {{0, 0.0f}, {1, -15.0f}, {15, 15.0f}, {16, -1.0f}, {17, 14.0f}, {30, 1.0f},
                        {31, -16.0f},
                        // Block 1, d = 0.5: element 36 = 10 + bit 4 -> (26 - 16) / 2 = 5;
                        // element 49 = 12 + bit 17 -> (28 - 16) / 2 = 6.
                        {32, -3.0f}, {36, 5.0f}, {44, -3.0f}, {48, -5.5f}, {49, 6.0f}, {56, 2.5f},
                        {63, -2.0f}});
}

TEST(DequantizeQ5_0, EncodedRow) {
  check_encoded_row(
      ElementType::q5_0, make_q4_blocks(32),
      [](const Q4Block& blk, uint8_t* p) {
        put_half(p, blk.d.bits);
        encode_fifth_bits(blk, p + 2);
        encode_nibbles(blk, p + 6);
      },
      [](const Q4Block& blk, int e) { return (blk.q[e] - 16) * blk.d.value; });
}

TEST(DequantizeQ5_1, HandBuiltBlocks) {
  std::vector<uint8_t> b(2 * 24, 0);
  put_half(&b[0], kHalf.bits);
  put_half(&b[2], kTwo.bits);
  b[4] = 0x01, b[5] = 0x80, b[6] = 0x02, b[7] = 0x40;
  for (int j = 0; j < 16; ++j) b[8 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  put_half(&b[24], kOne.bits);
  put_half(&b[26], kMinusTwo.bits);
  b[28] = 0xF0, b[29] = 0x0F, b[30] = 0xAA, b[31] = 0x55;
  for (int j = 0; j < 16; ++j) b[32 + j] = j % 2 == 0 ? 0x5A : 0xC3;
  const auto out = dequantize(ElementType::q5_1, b, 64);
  // x = q * d + m with the fifth bit added, no offset: element 0 = 16 * 0.5 + 2 = 10.
  expect_elements(out, {{0, 10.0f}, {1, 2.5f}, {15, 17.5f}, {16, 9.5f}, {17, 17.0f}, {30, 10.5f},
                        {31, 2.0f}, {32, 8.0f}, {36, 24.0f}, {44, 8.0f}, {48, 3.0f}, {49, 26.0f},
                        {56, 19.0f}, {63, 10.0f}});
}

TEST(DequantizeQ5_1, EncodedRow) {
  check_encoded_row(
      ElementType::q5_1, make_q4_blocks(32),
      [](const Q4Block& blk, uint8_t* p) {
        put_half(p, blk.d.bits);
        put_half(p + 2, blk.m.bits);
        encode_fifth_bits(blk, p + 4);
        encode_nibbles(blk, p + 8);
      },
      [](const Q4Block& blk, int e) { return blk.q[e] * blk.d.value + blk.m.value; });
}

// --- k-quant helpers -----------------------------------------------------------------------

// q2_k and q3_k store 2-bit fields: within each 128-element half, element r goes to byte r % 32
// of that half's 32 bytes, at bit pair r / 32.
void put_2bit(uint8_t* qs, int e, int value) {
  qs[32 * (e / 128) + e % 32] |= static_cast<uint8_t>((value & 3) << (2 * ((e % 128) / 32)));
}

// q4_k and q5_k store nibbles: within each 64-element chunk, element r goes to byte r % 32 of
// that chunk's 32 bytes, low nibble for r < 32, high nibble otherwise.
void put_nibble(uint8_t* qs, int e, int value) {
  qs[32 * (e / 64) + e % 32] |= static_cast<uint8_t>((value & 0xF) << (4 * ((e % 64) / 32)));
}

// ggml's 12-byte packing of eight 6-bit scales and mins (quantize_row_q4_K_ref).
void pack_k4_scales(const std::array<int, 8>& scales, const std::array<int, 8>& mins, uint8_t* out) {
  for (int i = 0; i < 12; ++i) out[i] = 0;
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      out[j] = static_cast<uint8_t>(scales[j]);
      out[j + 4] = static_cast<uint8_t>(mins[j]);
    } else {
      out[j + 4] = static_cast<uint8_t>((scales[j] & 0xF) | ((mins[j] & 0xF) << 4));
      out[j - 4] |= static_cast<uint8_t>((scales[j] >> 4) << 6);
      out[j] |= static_cast<uint8_t>((mins[j] >> 4) << 6);
    }
  }
}

// --- q2_k: x = d * scale * q - dmin * min, 4-bit scale/min per 16 elements ------------------

TEST(DequantizeQ2_K, HandBuiltBlocks) {
  std::vector<uint8_t> b(2 * 84, 0);
  // Sub-block s: scale (s + 1) & 15 in the low nibble, min s in the high nibble.
  const uint8_t scales[16] = {0x01, 0x12, 0x23, 0x34, 0x45, 0x56, 0x67, 0x78,
                              0x89, 0x9A, 0xAB, 0xBC, 0xCD, 0xDE, 0xEF, 0xF0};
  for (int s = 0; s < 16; ++s) b[s] = scales[s];
  // 0xE4 = fields 0,1,2,3 from the low bits up: q is (e % 128) / 32 unless overridden.
  for (int i = 0; i < 64; ++i) b[16 + i] = 0xE4;
  b[16 + 5] = 0x1B;   // fields 3,2,1,0 for elements 5, 37, 69, 101
  b[16 + 52] = 0x00;  // elements 148, 180, 212, 244 are 0
  put_half(&b[80], kOne.bits);
  put_half(&b[82], kHalf.bits);
  // Block 1: every scale byte 0x53 (scale 3, min 5); every qs byte 0x4E (fields 2,3,0,1).
  for (int s = 0; s < 16; ++s) b[84 + s] = 0x53;
  for (int i = 0; i < 64; ++i) b[84 + 16 + i] = 0x4E;
  put_half(&b[84 + 80], kTwo.bits);
  put_half(&b[84 + 82], kOne.bits);
  const auto out = dequantize(ElementType::q2_k, b, 512);
  expect_elements(out, {
                           {0, 0.0f},     // sub 0 (scale 1, min 0), q 0
                           {5, 3.0f},     // q 3 from the override: 1 * 3 - 0
                           {16, -0.5f},   // sub 1 (scale 2, min 1), q 0: -0.5 * 1
                           {31, -0.5f},
                           {32, 2.0f},    // sub 2 (scale 3, min 2), q 1: 3 - 1
                           {37, 5.0f},    // override field 1 = 2: 6 - 1
                           {69, 3.0f},    // sub 4 (scale 5, min 4), override field 2 = 1: 5 - 2
                           {101, -3.0f},  // sub 6 (scale 7, min 6), override field 3 = 0
                           {127, 20.5f},  // sub 7 (scale 8, min 7), q 3: 24 - 3.5
                           {128, -4.0f},  // sub 8 (scale 9, min 8), second half restarts at q 0
                           {180, -5.5f},  // sub 11 (scale 12, min 11), zeroed byte
                           {255, -7.5f},  // sub 15 (scale 0, min 15)
                           {256, 7.0f},   // block 1: 2 * 3 * 2 - 1 * 5
                           {288, 13.0f},  // q 3
                           {320, -5.0f},  // q 0
                           {352, 1.0f},   // q 1
                           {511, 1.0f},
                       });
}

struct Q2KBlock {
  Half d, dmin;
  std::array<int, 16> scale, min;  // 0..15
  std::array<int, 256> q;          // 0..3
};

TEST(DequantizeQ2_K, EncodedRow) {
  std::vector<Q2KBlock> blocks;
  for (int b = 0; b < 3; ++b) {
    Q2KBlock blk{kScaleCycle[b], kScaleCycle[b + 1], {}, {}, {}};
    for (int s = 0; s < 16; ++s) {
      blk.scale[s] = (s * 5 + 3 + b) % 16;
      blk.min[s] = (s * 11 + 7 + 2 * b) % 16;
    }
    for (int e = 0; e < 256; ++e) blk.q[e] = pattern(e * 3 + e / 16, b, 4);
    blocks.push_back(blk);
  }
  check_encoded_row(
      ElementType::q2_k, blocks,
      [](const Q2KBlock& blk, uint8_t* p) {
        for (int s = 0; s < 16; ++s) p[s] = static_cast<uint8_t>(blk.scale[s] | (blk.min[s] << 4));
        for (int e = 0; e < 256; ++e) put_2bit(p + 16, e, blk.q[e]);
        put_half(p + 80, blk.d.bits);
        put_half(p + 82, blk.dmin.bits);
      },
      [](const Q2KBlock& blk, int e) {
        return blk.d.value * blk.scale[e / 16] * blk.q[e] - blk.dmin.value * blk.min[e / 16];
      });
}

// --- q3_k: x = d * (scale6 - 32) * (q2 - (hmask bit ? 0 : 4)) ---------------------------------

TEST(DequantizeQ3_K, HandBuiltBlocks) {
  std::vector<uint8_t> b(2 * 110, 0);
  // hmask: byte l, bit k covers element 32 k + l. All set (no -4) except:
  for (int i = 0; i < 32; ++i) b[i] = 0xFF;
  b[3] = 0x00;  // elements 3, 35, ..., 227 subtract 4
  b[10] = 0x5A;  // element 10 + 32 k subtracts 4 for k = 0, 2, 5, 7
  for (int i = 0; i < 64; ++i) b[32 + i] = 0xE4;  // low 2 bits are (e % 128) / 32
  const uint8_t scales[12] = {0x21, 0x43, 0x65, 0x87, 0xA9, 0xCB, 0xED, 0x0F, 0x1B, 0x6C, 0xE4, 0x93};
  for (int i = 0; i < 12; ++i) b[96 + i] = scales[i];
  put_half(&b[108], kHalf.bits);
  // Decoded 6-bit scales minus 32 (low nibble from byte j or the high nibble of byte j - 8,
  // top bits from byte 8 + j % 4 at bit pair j / 4):
  //   j=0: 0x1 | (0x1B & 3) << 4 = 49 -> 17     j=2: 0x5 | (0xE4 & 3) << 4 = 5 -> -27
  //   j=4: 0x9 | (0x1B >> 2 & 3) << 4 = 41 -> 9  j=6: 0xD | (0xE4 >> 2 & 3) << 4 = 29 -> -3
  //   j=8: 0x2 | (0x1B >> 4 & 3) << 4 = 18 -> -14 j=10: 0x6 | (0xE4 >> 4 & 3) << 4 = 38 -> 6
  //   j=15: 0x0 | (0x93 >> 6 & 3) << 4 = 32 -> 0
  // Block 1: hmask all clear, qs all 0x1B (fields 3,2,1,0), scale 0 = 0x0A | 2 << 4 = 42 -> 10,
  // every other scale 0 -> -32; d = 2.
  for (int i = 0; i < 64; ++i) b[110 + 32 + i] = 0x1B;
  b[110 + 96 + 0] = 0x0A;
  b[110 + 96 + 8] = 0x02;
  put_half(&b[110 + 108], kTwo.bits);
  const auto out = dequantize(ElementType::q3_k, b, 512);
  expect_elements(out, {
                           {0, 0.0f},      // scale 17, q 0
                           {3, -34.0f},    // 0.5 * 17 * (0 - 4)
                           {10, -34.0f},   // hmask[10] bit 0 clear
                           {16, 0.0f},
                           {35, 40.5f},    // scale j=2 (-27), q 1 - 4 = -3
                           {42, -13.5f},   // hmask[10] bit 1 set: -27 * 1 / 2
                           {64, 9.0f},     // scale j=4 (9), q 2
                           {74, -9.0f},    // hmask[10] bit 2 clear: 9 * (2 - 4) / 2
                           {100, -4.5f},   // scale j=6 (-3), q 3
                           {131, 28.0f},   // scale j=8 (-14), q 0 - 4
                           {138, 0.0f},
                           {170, -9.0f},   // scale j=10 (6), hmask bit 5 clear: 6 * (1 - 4) / 2
                           {200, -22.0f},
                           {234, -15.0f},
                           {255, 0.0f},    // scale j=15 is 0
                           {256, -20.0f},  // block 1: 2 * 10 * (3 - 4)
                           {272, 64.0f},   // 2 * -32 * (3 - 4)
                           {511, 256.0f},  // 2 * -32 * (0 - 4)
                       });
}

struct Q3KBlock {
  Half d;
  std::array<int, 16> scale;  // -32..31
  std::array<int, 256> q;     // -4..3
};

TEST(DequantizeQ3_K, EncodedRow) {
  std::vector<Q3KBlock> blocks;
  for (int b = 0; b < 3; ++b) {
    Q3KBlock blk{kScaleCycle[b], {}, {}};
    for (int s = 0; s < 16; ++s) blk.scale[s] = (s * 11 + 3 + 7 * b) % 64 - 32;
    for (int e = 0; e < 256; ++e) blk.q[e] = pattern(e * 3 + e / 32, b, 8) - 4;
    blocks.push_back(blk);
  }
  check_encoded_row(
      ElementType::q3_k, blocks,
      [](const Q3KBlock& blk, uint8_t* p) {
        for (int e = 0; e < 256; ++e) {
          const int biased = blk.q[e] + 4;  // 0..7: the high bit set means "no -4"
          if (biased & 4) p[e % 32] |= static_cast<uint8_t>(1u << (e / 32));
          put_2bit(p + 32, e, biased & 3);
        }
        uint8_t* scales = p + 96;
        for (int j = 0; j < 16; ++j) {
          const int v = blk.scale[j] + 32;
          if (j < 8) {
            scales[j] |= static_cast<uint8_t>(v & 0xF);
          } else {
            scales[j - 8] |= static_cast<uint8_t>((v & 0xF) << 4);
          }
          scales[8 + j % 4] |= static_cast<uint8_t>((v >> 4) << (2 * (j / 4)));
        }
        put_half(p + 108, blk.d.bits);
      },
      [](const Q3KBlock& blk, int e) { return blk.d.value * blk.scale[e / 16] * blk.q[e]; });
}

// --- q4_k / q5_k: x = d * scale * q - dmin * min, 6-bit scale/min per 32 elements -----------

// Shared by the q4_k and q5_k hand-built tests. Decoded (scale, min) per sub-block:
//   0: (1, 5)   1: (2, 6)   2: (3, 7)   3: (4, 8)      -- low six bits of bytes j and j + 4
//   4: (0x9A & 15 | (0x01 >> 6) << 4, 0x9A >> 4 | (0x05 >> 6) << 4) = (10, 9)
//   5: (0xC | 2 << 4, 0xB | 1 << 4) = (44, 27)
//   6: (0xE | 1 << 4, 0xD | 2 << 4) = (30, 45)
//   7: (0x1 | 3 << 4, 0xF | 3 << 4) = (49, 63)
constexpr uint8_t kK4Scales[12] = {0x01, 0x82, 0x43, 0xC4, 0x05, 0x46, 0x87, 0xC8, 0x9A, 0xBC, 0xDE, 0xF1};

TEST(DequantizeQ4_K, HandBuiltBlocks) {
  std::vector<uint8_t> b(2 * 144, 0);
  put_half(&b[0], kOne.bits);
  put_half(&b[2], kHalf.bits);
  for (int i = 0; i < 12; ++i) b[4 + i] = kK4Scales[i];
  for (int i = 0; i < 128; ++i) b[16 + i] = 0x21;  // low nibble 1, high nibble 2
  b[16 + 0] = 0xF0;                                // element 0 -> 0, element 32 -> 15
  b[16 + 96 + 7] = 0x9C;                           // element 199 -> 12, element 231 -> 9
  // Block 1: d = 2, dmin = 1, only sub-block 0 has a scale (3) and min (1); qs all 0x75.
  put_half(&b[144], kTwo.bits);
  put_half(&b[146], kOne.bits);
  b[144 + 4 + 0] = 0x03;
  b[144 + 4 + 4] = 0x01;
  for (int i = 0; i < 128; ++i) b[144 + 16 + i] = 0x75;
  const auto out = dequantize(ElementType::q4_k, b, 512);
  expect_elements(out, {
                           {0, -2.5f},    // 1 * 0 - 0.5 * 5
                           {1, -1.5f},    // 1 * 1 - 2.5
                           {32, 27.0f},   // sub 1: 2 * 15 - 0.5 * 6
                           {33, 1.0f},    // 2 * 2 - 3
                           {64, -0.5f},   // sub 2: 3 * 1 - 3.5
                           {96, 4.0f},    // sub 3: 4 * 2 - 4
                           {128, 5.5f},   // sub 4: 10 * 1 - 4.5
                           {160, 74.5f},  // sub 5: 44 * 2 - 13.5
                           {192, 7.5f},   // sub 6: 30 * 1 - 22.5
                           {199, 337.5f}, // 30 * 12 - 22.5
                           {224, 66.5f},  // sub 7: 49 * 2 - 31.5
                           {231, 409.5f}, // 49 * 9 - 31.5
                           {255, 66.5f},
                           {256, 29.0f},  // block 1: 2 * 3 * 5 - 1
                           {287, 29.0f},
                           {288, 0.0f},   // sub 1 has scale 0 and min 0
                           {511, 0.0f},
                       });
}

struct QKBlock {
  Half d, dmin;
  std::array<int, 8> scale, min;  // 0..63
  std::array<int, 256> q;         // 0..15 (q4_k) or 0..31 (q5_k)
};

std::vector<QKBlock> make_qk_blocks(int range) {
  std::vector<QKBlock> blocks;
  for (int b = 0; b < 3; ++b) {
    QKBlock blk{kScaleCycle[b], kScaleCycle[b + 1], {}, {}, {}};
    // Strides chosen so sub-blocks 4..7 see every combination of the two borrowed top bits.
    for (int s = 0; s < 8; ++s) {
      blk.scale[s] = (s * 13 + 5 + 9 * b) % 64;
      blk.min[s] = (s * 29 + 11 + 17 * b) % 64;
    }
    for (int e = 0; e < 256; ++e) blk.q[e] = pattern(e * 3 + e / 32, b, range);
    blocks.push_back(blk);
  }
  return blocks;
}

float qk_expected(const QKBlock& blk, int e) {
  return blk.d.value * blk.scale[e / 32] * blk.q[e] - blk.dmin.value * blk.min[e / 32];
}

TEST(DequantizeQ4_K, EncodedRow) {
  check_encoded_row(
      ElementType::q4_k, make_qk_blocks(16),
      [](const QKBlock& blk, uint8_t* p) {
        put_half(p, blk.d.bits);
        put_half(p + 2, blk.dmin.bits);
        pack_k4_scales(blk.scale, blk.min, p + 4);
        for (int e = 0; e < 256; ++e) put_nibble(p + 16, e, blk.q[e]);
      },
      qk_expected);
}

TEST(DequantizeQ5_K, HandBuiltBlocks) {
  std::vector<uint8_t> b(2 * 176, 0);
  put_half(&b[0], kOne.bits);
  put_half(&b[2], kHalf.bits);
  for (int i = 0; i < 12; ++i) b[4 + i] = kK4Scales[i];
  // qh byte l, bit k is the fifth bit of element 32 k + l.
  b[16 + 0] = 0xFF;   // element 0 of every sub-block
  b[16 + 7] = 0xC0;   // elements 199 and 231
  b[16 + 31] = 0x81;  // elements 31 and 255
  for (int i = 0; i < 128; ++i) b[48 + i] = 0x21;
  b[48 + 0] = 0xF0;
  b[48 + 96 + 7] = 0x9C;
  put_half(&b[176], kTwo.bits);
  put_half(&b[178], kOne.bits);
  b[176 + 4 + 0] = 0x03;
  b[176 + 4 + 4] = 0x01;
  for (int i = 0; i < 32; ++i) b[176 + 16 + i] = 0x01;  // fifth bit for all of sub-block 0
  for (int i = 0; i < 128; ++i) b[176 + 48 + i] = 0x75;
  const auto out = dequantize(ElementType::q5_k, b, 512);
  expect_elements(out, {
                           {0, 13.5f},     // (0 + 16) - 2.5
                           {7, -1.5f},     // 1 - 2.5, no fifth bit
                           {31, 14.5f},    // (1 + 16) - 2.5
                           {32, 59.0f},    // sub 1: 2 * (15 + 16) - 3
                           {39, 1.0f},
                           {64, 47.5f},    // sub 2: 3 * (1 + 16) - 3.5
                           {128, 165.5f},  // sub 4: 10 * 17 - 4.5
                           {160, 778.5f},  // sub 5: 44 * 18 - 13.5
                           {192, 487.5f},  // sub 6: 30 * 17 - 22.5
                           {199, 817.5f},  // 30 * (12 + 16) - 22.5
                           {224, 850.5f},  // sub 7: 49 * 18 - 31.5
                           {231, 1193.5f}, // 49 * (9 + 16) - 31.5
                           {255, 850.5f},  // 49 * (2 + 16) - 31.5
                           {256, 125.0f},  // block 1: 2 * 3 * (5 + 16) - 1
                           {287, 125.0f},
                           {288, 0.0f},
                           {511, 0.0f},
                       });
}

TEST(DequantizeQ5_K, EncodedRow) {
  check_encoded_row(
      ElementType::q5_k, make_qk_blocks(32),
      [](const QKBlock& blk, uint8_t* p) {
        put_half(p, blk.d.bits);
        put_half(p + 2, blk.dmin.bits);
        pack_k4_scales(blk.scale, blk.min, p + 4);
        for (int e = 0; e < 256; ++e) {
          if (blk.q[e] & 0x10) p[16 + e % 32] |= static_cast<uint8_t>(1u << (e / 32));
          put_nibble(p + 48, e, blk.q[e]);
        }
      },
      qk_expected);
}

// --- q6_k: x = d * scale8 * (q6 - 32), int8 scale per 16 elements ---------------------------

TEST(DequantizeQ6_K, HandBuiltBlocks) {
  std::vector<uint8_t> b(2 * 210, 0);
  for (int i = 0; i < 128; ++i) b[i] = 0x21;        // ql: low nibble 1, high nibble 2
  for (int i = 0; i < 64; ++i) b[128 + i] = 0xE4;   // qh: bit pair k is k
  b[64 + 5] = 0xF0;                                 // second half, ql byte 5
  b[128 + 32 + 5] = 0x1B;                           // second half, qh byte 5: pairs 3,2,1,0
  for (int j = 0; j < 16; ++j) b[192 + j] = static_cast<uint8_t>(j * 10 - 75);  // -75..75
  put_half(&b[208], kHalf.bits);
  // Block 1: all quants 0 (-> -32), scale 0 = -128, scale 15 = 127, others 1; d = -2.
  b[210 + 192 + 0] = 0x80;
  for (int j = 1; j < 15; ++j) b[210 + 192 + j] = 0x01;
  b[210 + 192 + 15] = 0x7F;
  put_half(&b[210 + 208], kMinusTwo.bits);
  const auto out = dequantize(ElementType::q6_k, b, 512);
  // Within each 128: element l + 32 k takes ql[l + 32 (k & 1)] (low nibble for k < 2, high
  // otherwise) and qh[l] bits 2k..2k+1.
  expect_elements(out, {
                           {0, 1162.5f},   // q (1 | 0 << 4) - 32 = -31, scale -75: 0.5 * -75 * -31
                           {15, 1162.5f},
                           {16, 1007.5f},  // scale -65
                           {32, 412.5f},   // q (1 | 1 << 4) - 32 = -15, scale -55
                           {64, -35.0f},   // q (2 | 2 << 4) - 32 = 2, scale -35
                           {96, -135.0f},  // q (2 | 3 << 4) - 32 = 18, scale -15
                           {127, -45.0f},  // scale -5
                           {128, -77.5f},  // q -31, scale 5
                           {133, 40.0f},   // ql 0xF0 low 0, pair 3: 48 - 32 = 16, scale 5
                           {165, 12.5f},   // ql[32 + 5] low 1, pair 2: 33 - 32 = 1, scale 25
                           {197, -22.5f},  // ql 0xF0 high 15, pair 1: 31 - 32 = -1, scale 45
                           {229, -975.0f}, // ql high 2, pair 0: 2 - 32 = -30, scale 65
                           {255, 675.0f},  // q 18, scale 75
                           {256, -8192.0f},  // block 1: -2 * -128 * -32
                           {511, 8128.0f},   // -2 * 127 * -32
                       });
}

struct Q6KBlock {
  Half d;
  std::array<int, 16> scale;  // -128..127
  std::array<int, 256> q;     // -32..31
};

TEST(DequantizeQ6_K, EncodedRow) {
  std::vector<Q6KBlock> blocks;
  for (int b = 0; b < 3; ++b) {
    Q6KBlock blk{kScaleCycle[b], {}, {}};
    for (int s = 0; s < 16; ++s) blk.scale[s] = (s * 37 + 50 * b) % 256 - 128;
    for (int e = 0; e < 256; ++e) blk.q[e] = pattern(e * 5 + e / 32, b, 64) - 32;
    blocks.push_back(blk);
  }
  check_encoded_row(
      ElementType::q6_k, blocks,
      [](const Q6KBlock& blk, uint8_t* p) {
        uint8_t* ql = p;
        uint8_t* qh = p + 128;
        for (int e = 0; e < 256; ++e) {
          const int biased = blk.q[e] + 32;  // 0..63
          const int half = e / 128, quarter = (e % 128) / 32, l = e % 32;
          ql[64 * half + 32 * (quarter & 1) + l] |= static_cast<uint8_t>((biased & 0xF) << (4 * (quarter >> 1)));
          qh[32 * half + l] |= static_cast<uint8_t>((biased >> 4) << (2 * quarter));
        }
        for (int s = 0; s < 16; ++s) p[192 + s] = static_cast<uint8_t>(blk.scale[s]);
        put_half(p + 208, blk.d.bits);
      },
      [](const Q6KBlock& blk, int e) { return blk.d.value * blk.scale[e / 16] * blk.q[e]; });
}

}  // namespace
}  // namespace ingot
