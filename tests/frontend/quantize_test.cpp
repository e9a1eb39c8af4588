// Our q8_0 and q4_0 quantizers against llama.cpp's: quantizing stories260K.gguf's f32 weights must
// give, byte for byte, the blocks that llama.cpp's quantizer wrote into stories260K-q8_0.gguf and
// stories260K-q4_0.gguf (the issue 5 quantization pass builds on these functions).
#include <gtest/gtest.h>

#include <cstring>

#include "frontend/gguf.h"
#include "ir/quant.h"
#include "tests/common/models.h"

namespace ingot {
namespace {

// Quantizes every f32 tensor of `f32_path` that `quant_path` stores as q8_0 or q4_0 and compares
// the bytes. Returns the number of tensors compared for each type.
void expect_identical_blocks(const std::string& f32_path, const std::string& quant_path, int* q8, int* q4) {
  auto ref = GgufFile::open(f32_path);
  auto quant = GgufFile::open(quant_path);
  ASSERT_TRUE(ref.ok() && quant.ok()) << ref.message() << quant.message();
  *q8 = *q4 = 0;
  for (const GgufTensorInfo& qi : (*quant)->tensors()) {
    if (qi.type != ElementType::q8_0 && qi.type != ElementType::q4_0) continue;
    auto src = (*ref)->tensor(qi.name);
    ASSERT_TRUE(src.ok()) << qi.name;
    ASSERT_EQ((*src)->type(), ElementType::f32) << qi.name;
    std::vector<float> x = (*src)->to_f32_vector();
    auto got = (*quant)->tensor(qi.name);
    ASSERT_TRUE(got.ok());
    std::vector<uint8_t> mine(static_cast<size_t>(qi.bytes));
    if (qi.type == ElementType::q8_0) {
      quantize_row_q8_0(x.data(), reinterpret_cast<BlockQ8_0*>(mine.data()), static_cast<int64_t>(x.size()));
      ++*q8;
    } else {
      quantize_row_q4_0(x.data(), reinterpret_cast<BlockQ4_0*>(mine.data()), static_cast<int64_t>(x.size()));
      ++*q4;
    }
    ASSERT_EQ(mine.size(), (*got)->nbytes()) << qi.name;
    size_t first_diff = 0;
    while (first_diff < mine.size() && mine[first_diff] == (*got)->raw()[first_diff]) ++first_diff;
    EXPECT_EQ(first_diff, mine.size()) << qi.name << " (" << type_name(qi.type) << "): first different byte at " << first_diff;
  }
}

TEST(Quantize, Q8_0MatchesLlamaCppBitForBit) {
  INGOT_MODEL_PATH(f32, "stories260K.gguf");
  INGOT_MODEL_PATH(q8, "stories260K-q8_0.gguf");
  int n8 = 0, n4 = 0;
  expect_identical_blocks(f32, q8, &n8, &n4);
  EXPECT_GT(n8, 20);  // every attention and gate/up weight of 5 layers, plus the embeddings
}

TEST(Quantize, Q4_0MatchesLlamaCppBitForBit) {
  INGOT_MODEL_PATH(f32, "stories260K.gguf");
  INGOT_MODEL_PATH(q4, "stories260K-q4_0.gguf");
  int n8 = 0, n4 = 0;
  expect_identical_blocks(f32, q4, &n8, &n4);
  EXPECT_GT(n4, 20);
  EXPECT_GE(n8, 1);  // output.weight stays q8_0 in llama.cpp's 4-bit recipe
}

TEST(Quantize, HandComputedBlocks) {
  // q8_0: amax 127 gives d = 1; 2.5 rounds away from zero to 3.
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;
  x[1] = 2.5f;
  x[2] = -2.5f;
  BlockQ8_0 q8;
  quantize_row_q8_0(x.data(), &q8, 32);
  EXPECT_EQ(q8.d, 0x3C00);
  EXPECT_EQ(q8.qs[1], 3);
  EXPECT_EQ(q8.qs[2], -3);
  // q4_0: the largest magnitude -16 gives d = 2 and maps to nibble 0; 14 maps to 15 (clamped).
  std::vector<float> y(32, 0.0f);
  y[0] = -16.0f;
  y[16] = 14.0f;
  y[1] = 3.0f;
  BlockQ4_0 q4;
  quantize_row_q4_0(y.data(), &q4, 32);
  EXPECT_EQ(q4.d, 0x4000);                // 2.0
  EXPECT_EQ(q4.qs[0] & 0x0F, 0);          // -16 / 2 + 8.5 = 0.5 -> 0
  EXPECT_EQ(q4.qs[0] >> 4, 15);           // 14 / 2 + 8.5 = 15.5 -> 15
  EXPECT_EQ(q4.qs[1] & 0x0F, 10);         // 3 / 2 + 8.5 = 10
  EXPECT_EQ(q4.qs[5] & 0x0F, 8);          // zero -> 8
}

}  // namespace
}  // namespace ingot
