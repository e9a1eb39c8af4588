// WeightMatMul: the exact mode against MatMul, and the "q8" mode against hand-computed llama.cpp
// numerics (activations quantized to q8_0 blocks, integer block dots, f16 scales).
#include <gtest/gtest.h>

#include <cstring>

#include "ir/builder.h"
#include "ir/evaluator.h"
#include "ir/ops.h"
#include "ir/quant.h"

namespace ingot {
namespace {

StatusOr<Tensor> run_wmm(const Tensor& x, std::shared_ptr<Tensor> w, const std::string& act_quant) {
  Model m;
  GraphBuilder b(m);
  Value xv = b.parameter("x", ElementType::f32, static_shape(x.shape()));
  Value wv = b.constant(std::move(w), "w");
  b.result(b.op(Op::WeightMatMul, {xv, wv}, {{"act_quant", Attribute::String(act_quant)}}), "y");
  INGOT_RETURN_IF_ERROR(b.status());
  Evaluator ev(m);
  INGOT_ASSIGN_OR_RETURN(auto r, ev.run({{"x", x}}));
  return r[0];
}

template <typename Block>
std::shared_ptr<Tensor> blocks_tensor(ElementType t, std::vector<int64_t> shape, const std::vector<Block>& blocks) {
  auto buf = Buffer::allocate(blocks.size() * sizeof(Block));
  std::memcpy(buf->mutable_data(), blocks.data(), blocks.size() * sizeof(Block));
  auto r = Tensor::from_buffer(t, std::move(shape), buf);
  EXPECT_TRUE(r.ok()) << r.message();
  return std::make_shared<Tensor>(*r);
}

TEST(WeightMatMul, ExactModeMatchesMatMulOnF32) {
  Tensor x = Tensor::from_f32({2, 3}, {1, 2, 3, 4, 5, 6});
  auto w = std::make_shared<Tensor>(Tensor::from_f32({2, 3}, {1, 0, -1, 0.5f, 0.5f, 0.5f}));
  auto r = run_wmm(x, w, "none");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->shape(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(r->to_f32_vector(), (std::vector<float>{-2, 3, -2, 7.5f}));
}

TEST(WeightMatMul, ExactModeDequantizesQ8_0) {
  BlockQ8_0 blk;
  blk.d = 0x3800;  // 0.5
  for (int i = 0; i < 32; ++i) blk.qs[i] = static_cast<int8_t>(i - 16);
  std::vector<float> xv(32, 0.0f);
  xv[0] = 1.0f;    // picks w[0] = 0.5 * -16
  xv[31] = 0.25f;  // and 0.25 * w[31] = 0.25 * 0.5 * 15
  auto r = run_wmm(Tensor::from_f32({1, 32}, xv), blocks_tensor(ElementType::q8_0, {1, 32}, std::vector<BlockQ8_0>{blk}), "none");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_FLOAT_EQ(r->to_f32_vector()[0], -8.0f + 1.875f);
}

TEST(WeightMatMul, ActivationQuantizerRoundsHalfToEvenWithScale127OverAmax) {
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;  // amax 127: id = 1, d = 1
  x[1] = 62.5f;   // ties to even: 62
  x[2] = 63.5f;   // ties to even: 64
  x[3] = -2.4f;   // -2
  BlockQ8_0 q;
  quantize_row_q8_0_activations(x.data(), &q, 32);
  EXPECT_EQ(q.d, 0x3C00);  // f16(1.0)
  EXPECT_EQ(q.qs[0], 127);
  EXPECT_EQ(q.qs[1], 62);
  EXPECT_EQ(q.qs[2], 64);
  EXPECT_EQ(q.qs[3], -2);
  EXPECT_EQ(q.qs[4], 0);
  std::vector<float> zeros(32, 0.0f);
  quantize_row_q8_0_activations(zeros.data(), &q, 32);
  EXPECT_EQ(q.d, 0);
  EXPECT_EQ(q.qs[7], 0);
}

TEST(WeightMatMul, Q8ModeWithQ8_0WeightsUsesIntegerBlockDots) {
  // Activations are exact integers with amax 127, so they quantize to themselves with d = 1.
  std::vector<float> x(64, 0.0f);
  x[0] = 127.0f;
  x[5] = -3.0f;
  x[32] = 127.0f;
  x[40] = 10.4f;  // quantizes to 10: the q8 result differs from the exact one here
  std::vector<BlockQ8_0> w(2);
  w[0].d = 0x3800;  // 0.5
  w[1].d = 0x4000;  // 2.0
  for (int i = 0; i < 32; ++i) {
    w[0].qs[i] = static_cast<int8_t>(i);
    w[1].qs[i] = static_cast<int8_t>(-i);
  }
  // Block 0: 0.5 * (127*0 + -3*5) = -7.5. Block 1: 2.0 * (127*0 + 10*-8) = -160.
  auto r = run_wmm(Tensor::from_f32({1, 64}, x), blocks_tensor(ElementType::q8_0, {1, 64}, w), "q8");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_FLOAT_EQ(r->to_f32_vector()[0], -167.5f);
  auto exact = run_wmm(Tensor::from_f32({1, 64}, x), blocks_tensor(ElementType::q8_0, {1, 64}, w), "none");
  ASSERT_TRUE(exact.ok());
  EXPECT_NEAR(exact->to_f32_vector()[0], -7.5 + 2.0 * 10.4 * -8, 1e-4);
}

TEST(WeightMatMul, Q8ModeWithQ4_0Weights) {
  BlockQ4_0 w;
  w.d = 0x3C00;  // 1.0
  for (int i = 0; i < 16; ++i) w.qs[i] = static_cast<uint8_t>((15 << 4) | 9);  // low nibble 9 -> +1, high 15 -> +7
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;   // element 0 (low nibble): 127 * 1
  x[16] = -64.0f;  // element 16 (high nibble): -64 * 7
  auto r = run_wmm(Tensor::from_f32({1, 32}, x), blocks_tensor(ElementType::q4_0, {1, 32}, std::vector<BlockQ4_0>{w}), "q8");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_FLOAT_EQ(r->to_f32_vector()[0], 127.0f - 448.0f);
}

// Activations 127 at element 0 (a low nibble) and -64 at element 16 (the high nibble of the same
// byte), zero elsewhere: they quantize to themselves with d = 1.
std::vector<float> two_activations() {
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;
  x[16] = -64.0f;
  return x;
}

TEST(WeightMatMul, Q8ModeWithQ5_0Weights) {
  BlockQ5_0 w{};
  w.d = 0x3C00;  // 1.0
  // Element 0: nibble 15, fifth bit 1 -> 31 - 16 = 15; element 16: nibble 0, fifth bit 0 -> -16;
  // every other element 16 - 16 = 0.
  const uint32_t qh = 0xFFFEFFFFu;
  std::memcpy(w.qh, &qh, 4);
  w.qs[0] = 0x0F;
  auto r = run_wmm(Tensor::from_f32({1, 32}, two_activations()), blocks_tensor(ElementType::q5_0, {1, 32}, std::vector<BlockQ5_0>{w}), "q8");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->to_f32_vector()[0], 127.0f * 15 + 64.0f * 16);
}

TEST(WeightMatMul, Q8ModeWithQ4_1AndQ5_1WeightsAddsTheMinimumTimesTheActivationSum) {
  // Element 0: q = 15, element 16: q = 3 (q5_1: fifth bits 0), m = 0.5:
  // (d * da) * (127 * 15 - 64 * 3) + m * (da * (127 - 64)).
  const float want = (127.0f * 15 - 64.0f * 3) + 0.5f * 63;
  BlockQ4_1 w{};
  w.d = 0x3C00;
  w.m = 0x3800;
  w.qs[0] = 0x3F;
  auto r = run_wmm(Tensor::from_f32({1, 32}, two_activations()), blocks_tensor(ElementType::q4_1, {1, 32}, std::vector<BlockQ4_1>{w}), "q8");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->to_f32_vector()[0], want);
  BlockQ5_1 w5{};
  w5.d = 0x3C00;
  w5.m = 0x3800;
  w5.qs[0] = 0x3F;
  r = run_wmm(Tensor::from_f32({1, 32}, two_activations()), blocks_tensor(ElementType::q5_1, {1, 32}, std::vector<BlockQ5_1>{w5}), "q8");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->to_f32_vector()[0], want);
  // A fifth bit on element 16: q = 19.
  w5.qh[2] = 1;
  r = run_wmm(Tensor::from_f32({1, 32}, two_activations()), blocks_tensor(ElementType::q5_1, {1, 32}, std::vector<BlockQ5_1>{w5}), "q8");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->to_f32_vector()[0], (127.0f * 15 - 64.0f * 19) + 0.5f * 63);
}

TEST(WeightMatMul, Q8ModeWithIQ4_NLWeightsUsesTheTableValues) {
  BlockIQ4_NL w{};
  w.d = 0x3C00;
  w.qs[0] = 0x0F;  // element 0: index 15 (113), element 16: index 0 (-127)
  auto r = run_wmm(Tensor::from_f32({1, 32}, two_activations()), blocks_tensor(ElementType::iq4_nl, {1, 32}, std::vector<BlockIQ4_NL>{w}), "q8");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->to_f32_vector()[0], 127.0f * 113 + 64.0f * 127);
}

TEST(WeightMatMul, Q8ModeWithBF16WeightsIsAnF32FmaChainOverBF16Activations) {
  // 1 + 2^-9 is not a bf16: it rounds to 1.0 first.
  auto one = std::make_shared<Tensor>(Tensor::from_values(ElementType::bf16, {1, 1}, {1.0}));
  auto q8 = run_wmm(Tensor::from_f32({1, 1}, {1.0f + 1.0f / 512}), one, "q8");
  ASSERT_TRUE(q8.ok()) << q8.message();
  EXPECT_EQ(q8->to_f32_vector()[0], 1.0f);
  // 1 + 2^-24 + 2^-24: an f32 chain rounds each step back to 1 (ties to even); ggml's generic
  // bf16 dot (the "ggml" mode) sums in double.
  auto ones = std::make_shared<Tensor>(Tensor::from_values(ElementType::bf16, {1, 3}, {1.0, 1.0, 1.0}));
  Tensor x = Tensor::from_f32({1, 3}, {1.0f, 1.0f / 16777216, 1.0f / 16777216});
  q8 = run_wmm(x, ones, "q8");
  auto ggml = run_wmm(x, ones, "ggml");
  ASSERT_TRUE(q8.ok() && ggml.ok());
  EXPECT_EQ(q8->to_f32_vector()[0], 1.0f);
  EXPECT_EQ(ggml->to_f32_vector()[0], 1.0f + 1.0f / 8388608);
}

TEST(WeightMatMul, Q8ModeRoundsActivationsToHalfForF16Weights) {
  // 1 + 2^-12 is not an f16: it rounds to 1.0 before the dot product.
  Tensor x = Tensor::from_f32({1, 1}, {1.0f + 1.0f / 4096.0f});
  auto w = std::make_shared<Tensor>(Tensor::from_values(ElementType::f16, {1, 1}, {1.0}));
  auto q8 = run_wmm(x, w, "q8");
  auto exact = run_wmm(x, w, "none");
  ASSERT_TRUE(q8.ok() && exact.ok());
  EXPECT_EQ(q8->to_f32_vector()[0], 1.0f);
  EXPECT_EQ(exact->to_f32_vector()[0], 1.0f + 1.0f / 4096.0f);
}

TEST(WeightMatMul, Errors) {
  Tensor x = Tensor::from_f32({1, 256}, std::vector<float>(256, 1.0f));
  // Every quantized type that has no "q8" mode (yet) says so by name.
  for (int i = 0; i < kNumElementTypes; ++i) {
    const ElementType t = static_cast<ElementType>(i);
    const ElementTypeInfo& ti = type_info(t);
    if (!ti.is_quantized || weight_matmul_supports_act_q8(t)) continue;
    std::vector<uint8_t> k(static_cast<size_t>(256 / ti.block_elems * ti.block_bytes), 0);
    auto not_implemented = run_wmm(x, blocks_tensor(t, {1, 256}, k), "q8");
    ASSERT_FALSE(not_implemented.ok()) << ti.name;
    EXPECT_NE(not_implemented.message().find(std::string("not implemented for ") + ti.name), std::string::npos)
        << not_implemented.message();
  }
  auto bad_k = run_wmm(Tensor::from_f32({1, 3}, {1, 2, 3}), std::make_shared<Tensor>(Tensor::from_f32({1, 2}, {1, 2})), "none");
  ASSERT_FALSE(bad_k.ok());
  EXPECT_NE(bad_k.message().find("contraction"), std::string::npos) << bad_k.message();
  auto bad_mode = run_wmm(Tensor::from_f32({1, 2}, {1, 2}), std::make_shared<Tensor>(Tensor::from_f32({1, 2}, {1, 2})), "q4");
  ASSERT_FALSE(bad_mode.ok());
  EXPECT_NE(bad_mode.message().find("act_quant must be"), std::string::npos) << bad_mode.message();
}

}  // namespace
}  // namespace ingot
