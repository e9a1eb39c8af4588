// q4_k: the reference quantizer (scale/min search) and the k-quants' dots with 8-bit activations
// (32-element integer dots, and the "q8" mode's q8_K super-block arithmetic).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "ir/builder.h"
#include "ir/evaluator.h"
#include "ir/quant.h"

namespace ingot {
namespace {

std::vector<float> gaussian(int64_t n, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

// The values the "q8" mode's k-quant dots see: x quantized to q8_K (ggml's quantize_row_q8_K),
// each d * q in f32.
std::vector<float> q8_K_values(const float* x, int64_t n) {
  std::vector<BlockQ8_K> q(static_cast<size_t>(n / kQK_K));
  quantize_row_q8_K(x, q.data(), n);
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = q[static_cast<size_t>(i / kQK_K)].d * q[static_cast<size_t>(i / kQK_K)].qs[i % kQK_K];
  return out;
}

double rms_error(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return std::sqrt(s / static_cast<double>(a.size()));
}

std::vector<float> roundtrip_q4_k(const std::vector<float>& x) {
  std::vector<BlockQ4_K> q(x.size() / kQK_K);
  quantize_row_q4_k(x.data(), q.data(), static_cast<int64_t>(x.size()));
  std::vector<float> y(x.size());
  dequantize_row(ElementType::q4_k, q.data(), y.data(), static_cast<int64_t>(x.size()));
  return y;
}

std::vector<float> roundtrip_q4_0(const std::vector<float>& x) {
  std::vector<BlockQ4_0> q(x.size() / kQK);
  quantize_row_q4_0(x.data(), q.data(), static_cast<int64_t>(x.size()));
  std::vector<float> y(x.size());
  dequantize_row(ElementType::q4_0, q.data(), y.data(), static_cast<int64_t>(x.size()));
  return y;
}

TEST(QuantizeQ4K, GaussianErrorIsBelowQ4_0AndBounded) {
  // 4-bit quants with a 6-bit scale and min per 32 values: the rms error of unit gaussian data is
  // about 0.07-0.09 of its rms; q4_0 (no min, scale fixed by the extreme value) does worse.
  const auto x = gaussian(16 * kQK_K, 7);
  const double e_k = rms_error(x, roundtrip_q4_k(x));
  const double e_0 = rms_error(x, roundtrip_q4_0(x));
  EXPECT_LT(e_k, 0.1);
  EXPECT_LT(e_k, e_0);
}

TEST(QuantizeQ4K, NegativeShiftedDataUsesTheMin) {
  // All values in [-2, -1]: q4_0 has to span [-2, 2] (step 0.25); q4_k's min (an offset below
  // zero) lets 16 levels cover [-2, -1]: step 1/15, so rounding error <= 0.033, plus the error of
  // the 6-bit min (<= 2/63/2) and scale.
  std::vector<float> x(kQK_K);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-2.0f, -1.0f);
  for (float& v : x) v = u(rng);
  const auto y = roundtrip_q4_k(x);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], x[i], 0.06) << i;
  EXPECT_LT(rms_error(x, y), 0.5 * rms_error(x, roundtrip_q4_0(x)));
}

TEST(QuantizeQ4K, ZerosAndConstantsAreExactOrNearlySo) {
  std::vector<float> zeros(2 * kQK_K, 0.0f);
  EXPECT_EQ(roundtrip_q4_k(zeros), zeros);
  std::vector<float> neg(kQK_K, -0.75f);  // max == min < 0: every quant 0, the min carries it
  for (float v : roundtrip_q4_k(neg)) EXPECT_NEAR(v, -0.75f, 0.75f / 63 / 2 + 1e-3);
}

TEST(QuantizeQ4K, IsDeterministicAndKeepsSixBitScalesInRange) {
  const auto x = gaussian(4 * kQK_K, 11, 0.02f);
  std::vector<BlockQ4_K> a(4), b(4);
  quantize_row_q4_k(x.data(), a.data(), 4 * kQK_K);
  quantize_row_q4_k(x.data(), b.data(), 4 * kQK_K);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), sizeof(BlockQ4_K) * 4), 0);
  // The largest sub-block scale maps to 63 (within rounding).
  for (auto& blk : a) {
    int max_sc = 0;
    for (int s = 0; s < 8; ++s) {
      uint8_t sc, m;
      q4_k_scale_min(blk, s, sc, m);
      max_sc = std::max<int>(max_sc, sc);
    }
    EXPECT_EQ(max_sc, 63);
  }
}

TEST(QuantizeQ4K, SubBlockDotEqualsDequantizedProduct) {
  // qa and asum must reproduce sum(dequant(w) * dequant(a)) exactly up to float rounding:
  // d*sc*q - dmin*m summed against a*da.
  const auto w = gaussian(kQK_K, 5);
  const auto a = gaussian(kQK_K, 6);
  BlockQ4_K wq;
  quantize_row_q4_k(w.data(), &wq, kQK_K);
  std::vector<BlockQ8_0> aq(8);
  quantize_row_q8_0_activations(a.data(), aq.data(), kQK_K);
  std::vector<float> wd(kQK_K), ad(kQK_K);
  dequantize_row(ElementType::q4_k, &wq, wd.data(), kQK_K);
  dequantize_row(ElementType::q8_0, aq.data(), ad.data(), kQK_K);
  for (int s = 0; s < 8; ++s) {
    uint8_t sc, m;
    q4_k_scale_min(wq, s, sc, m);
    int32_t qa, asum;
    dot_subblock_q4_k_q8_0(wq, s, aq[s], qa, asum);
    const double via_ints = f16_to_f32(aq[s].d) * (double(f16_to_f32(wq.d)) * sc * qa - double(f16_to_f32(wq.dmin)) * m * asum);
    double direct = 0;
    for (int i = 0; i < 32; ++i) direct += double(wd[32 * s + i]) * ad[32 * s + i];
    EXPECT_NEAR(via_ints, direct, 1e-5 * (1 + std::fabs(direct))) << s;
  }
}

TEST(QuantizeQ4K, WeightMatMulQ8ModeMatchesDequantizedProductOnOddRows) {
  const int64_t N = 5, K = 2 * kQK_K, M = 3;
  const auto wf = gaussian(N * K, 21);
  auto buf = Buffer::allocate(static_cast<size_t>(N * K / kQK_K) * sizeof(BlockQ4_K));
  quantize_row_q4_k(wf.data(), reinterpret_cast<BlockQ4_K*>(buf->mutable_data()), N * K);
  auto w = Tensor::from_buffer(ElementType::q4_k, {N, K}, buf);
  ASSERT_TRUE(w.ok()) << w.message();
  const auto xf = gaussian(M * K, 22);

  Model m;
  GraphBuilder b(m);
  Value xv = b.parameter("x", ElementType::f32, static_shape({M, K}));
  Value wv = b.constant(std::make_shared<Tensor>(*w), "w");
  b.result(b.op(Op::WeightMatMul, {xv, wv}, {{"act_quant", Attribute::String("q8")}}), "y");
  ASSERT_TRUE(b.status().ok()) << b.status().message();
  Evaluator ev(m);
  auto r = ev.run({{"x", Tensor::from_f32({M, K}, xf)}});
  ASSERT_TRUE(r.ok()) << r.message();
  const auto y = (*r)[0].to_f32_vector();

  std::vector<float> wd(static_cast<size_t>(N * K));
  dequantize_row(ElementType::q4_k, w->raw(), wd.data(), N * K);
  for (int64_t row = 0; row < M; ++row) {
    const std::vector<float> ad = q8_K_values(xf.data() + row * K, K);
    for (int64_t j = 0; j < N; ++j) {
      double direct = 0;
      for (int64_t k = 0; k < K; ++k) direct += double(wd[j * K + k]) * ad[k];
      EXPECT_NEAR(y[row * N + j], direct, 1e-4 * (1 + std::fabs(direct)));
    }
  }
}

}  // namespace
}  // namespace ingot

namespace ingot {
namespace {

// Random q6_k super-blocks: random quant bits, signed scales, a small f16 d.
std::vector<BlockQ6_K> random_q6_k(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<BlockQ6_K> v(n);
  for (auto& b : v) {
    for (auto& q : b.ql) q = static_cast<uint8_t>(rng());
    for (auto& q : b.qh) q = static_cast<uint8_t>(rng());
    for (auto& s : b.scales) s = static_cast<int8_t>(static_cast<int>(rng() % 128) - 64);
    b.d = f32_to_f16(0.001f * static_cast<float>(1 + rng() % 7));
  }
  return v;
}

TEST(Q6K, QuantsAndBlockDotsAgreeWithDequantization) {
  const auto w = random_q6_k(1, 31);
  std::vector<float> wd(kQK_K);
  dequantize_row(ElementType::q6_k, w.data(), wd.data(), kQK_K);
  for (int e = 0; e < kQK_K; ++e) {
    const float want = f16_to_f32(w[0].d) * w[0].scales[q6_k_scale_index(e)] * (q6_k_quant(w[0], e) - 32);
    ASSERT_EQ(wd[static_cast<size_t>(e)], want) << e;
  }
  std::mt19937 rng(32);
  std::normal_distribution<float> g;
  std::vector<float> a(kQK_K);
  for (auto& x : a) x = g(rng);
  std::vector<BlockQ8_0> aq(8);
  quantize_row_q8_0_activations(a.data(), aq.data(), kQK_K);
  std::vector<float> ad(kQK_K);
  dequantize_row(ElementType::q8_0, aq.data(), ad.data(), kQK_K);
  for (int blk = 0; blk < 8; ++blk) {
    int32_t isum[2];
    dot_block_q6_k_q8_0(w[0], blk, aq[static_cast<size_t>(blk)], isum);
    const double d = f16_to_f32(w[0].d), da = f16_to_f32(aq[static_cast<size_t>(blk)].d);
    const double via_ints = da * d * (w[0].scales[2 * blk] * double(isum[0]) + w[0].scales[2 * blk + 1] * double(isum[1]));
    double direct = 0;
    for (int i = 0; i < 32; ++i) direct += double(wd[static_cast<size_t>(32 * blk + i)]) * ad[static_cast<size_t>(32 * blk + i)];
    EXPECT_NEAR(via_ints, direct, 1e-9 * (1 + std::fabs(direct))) << blk;
  }
}

TEST(Q6K, WeightMatMulQ8ModeIsCloseToTheExactProduct) {
  const int64_t N = 3, K = 2 * kQK_K, M = 2;
  const auto blocks = random_q6_k(static_cast<size_t>(N * K / kQK_K), 41);
  auto buf = Buffer::allocate(blocks.size() * sizeof(BlockQ6_K));
  std::memcpy(buf->mutable_data(), blocks.data(), blocks.size() * sizeof(BlockQ6_K));
  auto w = Tensor::from_buffer(ElementType::q6_k, {N, K}, buf);
  ASSERT_TRUE(w.ok()) << w.message();
  std::mt19937 rng(42);
  std::normal_distribution<float> g;
  std::vector<float> xf(static_cast<size_t>(M * K));
  for (auto& x : xf) x = g(rng);
  auto run = [&](const char* mode) {
    Model m;
    GraphBuilder b(m);
    Value xv = b.parameter("x", ElementType::f32, static_shape({M, K}));
    Value wv = b.constant(std::make_shared<Tensor>(*w), "w");
    b.result(b.op(Op::WeightMatMul, {xv, wv}, {{"act_quant", Attribute::String(mode)}}), "y");
    EXPECT_TRUE(b.status().ok()) << b.status().message();
    Evaluator ev(m);
    auto r = ev.run({{"x", Tensor::from_f32({M, K}, xf)}});
    EXPECT_TRUE(r.ok()) << r.message();
    return (*r)[0].to_f32_vector();
  };
  const auto q8 = run("q8"), exact = run("none");
  double err = 0, norm = 0;
  for (size_t i = 0; i < q8.size(); ++i) {
    err += (q8[i] - exact[i]) * double(q8[i] - exact[i]);
    norm += exact[i] * double(exact[i]);
  }
  // 8-bit activations: about (1/127)^2 / 3 relative noise per term, ~2e-5 as NMSE; 1e-3 catches
  // a wrong scale or half (an error of order 1).
  EXPECT_LT(err / norm, 1e-3);
  EXPECT_GT(err / norm, 0.0);  // it is the 8-bit path, not the exact one
}

}  // namespace
}  // namespace ingot

namespace ingot {
namespace {

// q2_k, q3_k, q5_k, q6_k, iq4_xs in the "q8" mode (q8k_row_dot): every output equals the product
// of the dequantized weights and the dequantized q8_K activations up to f32 rounding. This checks
// the integer dots, the scale and min indices and the element order against dequantize_row
// (bitwise ggml's), independently of the kernels that reproduce q8k_row_dot.
TEST(KQuantsQ8Mode, WeightMatMulEqualsDequantizedProducts) {
  for (ElementType t : {ElementType::q5_k, ElementType::q6_k, ElementType::q3_k, ElementType::q2_k, ElementType::iq4_xs}) {
    const int64_t N = 5, K = 3 * kQK_K, M = 2;
    const ElementTypeInfo& ti = type_info(t);
    auto buf = Buffer::allocate(static_cast<size_t>(N * K / kQK_K * ti.block_bytes));
    uint8_t* p = buf->mutable_data();
    std::mt19937 rng(static_cast<uint32_t>(t) + 77);
    for (size_t i = 0; i < buf->size(); ++i) p[i] = static_cast<uint8_t>(rng());
    // Small f16 scales (every other byte pattern is a valid block).
    for (int64_t b = 0; b < N * K / kQK_K; ++b) {
      const uint16_t d = f32_to_f16(0.001f * static_cast<float>(1 + rng() % 7));
      const uint16_t dmin = f32_to_f16(0.002f * static_cast<float>(1 + rng() % 5));
      uint8_t* blk = p + b * ti.block_bytes;
      if (t == ElementType::q5_k) {
        std::memcpy(blk, &d, 2);
        std::memcpy(blk + 2, &dmin, 2);
      } else if (t == ElementType::q3_k) {
        std::memcpy(blk + 108, &d, 2);
      } else if (t == ElementType::q6_k) {
        std::memcpy(blk + 208, &d, 2);
      } else if (t == ElementType::q2_k) {
        std::memcpy(blk + 80, &d, 2);
        std::memcpy(blk + 82, &dmin, 2);
      } else {
        std::memcpy(blk, &d, 2);
      }
    }
    auto w = Tensor::from_buffer(t, {N, K}, buf);
    ASSERT_TRUE(w.ok()) << w.message();
    const auto xf = gaussian(M * K, 91);
    Model m;
    GraphBuilder b(m);
    Value xv = b.parameter("x", ElementType::f32, static_shape({M, K}));
    Value wv = b.constant(std::make_shared<Tensor>(*w), "w");
    b.result(b.op(Op::WeightMatMul, {xv, wv}, {{"act_quant", Attribute::String("q8")}}), "y");
    ASSERT_TRUE(b.status().ok()) << b.status().message();
    Evaluator ev(m);
    auto r = ev.run({{"x", Tensor::from_f32({M, K}, xf)}});
    ASSERT_TRUE(r.ok()) << ti.name << ": " << r.message();
    const auto y = (*r)[0].to_f32_vector();
    std::vector<float> wd(static_cast<size_t>(N * K));
    dequantize_row(t, w->raw(), wd.data(), N * K);
    for (int64_t row = 0; row < M; ++row) {
      const std::vector<float> ad = q8_K_values(xf.data() + row * K, K);
      for (int64_t j = 0; j < N; ++j) {
        double direct = 0, magnitude = 0;
        for (int64_t k = 0; k < K; ++k) {
          direct += double(wd[j * K + k]) * ad[k];
          magnitude += std::fabs(double(wd[j * K + k]) * ad[k]);
        }
        EXPECT_NEAR(y[row * N + j], direct, 1e-5 * magnitude) << ti.name << " row " << row << " col " << j;
      }
    }
  }
}


// q2_k in the "q8" mode is ggml's own arithmetic (ggml_vec_dot_q2_K_q8_K_generic: one f32 step
// per super-block), so "q8" and "ggml" agree bit for bit; for q4_k they share the activations
// and integers but not the f32 order (ggml's 8 lanes), and differ in the last bits.
TEST(KQuantsQ8Mode, Q2KEqualsGgmlsArithmeticBitwise) {
  const int64_t N = 7, K = 4 * kQK_K, M = 3;
  auto wq = Buffer::allocate(static_cast<size_t>(N * K / kQK_K) * sizeof(BlockQ2_K));
  std::mt19937 rng(5);
  for (size_t i = 0; i < wq->size(); ++i) wq->mutable_data()[i] = static_cast<uint8_t>(rng());
  for (int64_t b = 0; b < N * K / kQK_K; ++b) {
    const uint16_t d = f32_to_f16(0.01f * static_cast<float>(1 + rng() % 9)), dmin = f32_to_f16(0.003f * static_cast<float>(1 + rng() % 9));
    std::memcpy(wq->mutable_data() + b * sizeof(BlockQ2_K) + 80, &d, 2);
    std::memcpy(wq->mutable_data() + b * sizeof(BlockQ2_K) + 82, &dmin, 2);
  }
  auto w = Tensor::from_buffer(ElementType::q2_k, {N, K}, wq);
  ASSERT_TRUE(w.ok()) << w.message();
  const auto xf = gaussian(M * K, 6);
  std::vector<float> y[2];
  const char* modes[2] = {"q8", "ggml"};
  for (int i = 0; i < 2; ++i) {
    Model m;
    GraphBuilder b(m);
    Value xv = b.parameter("x", ElementType::f32, static_shape({M, K}));
    Value wv = b.constant(std::make_shared<Tensor>(*w), "w");
    b.result(b.op(Op::WeightMatMul, {xv, wv}, {{"act_quant", Attribute::String(modes[i])}}), "y");
    ASSERT_TRUE(b.status().ok()) << b.status().message();
    Evaluator ev(m);
    auto r = ev.run({{"x", Tensor::from_f32({M, K}, xf)}});
    ASSERT_TRUE(r.ok()) << r.message();
    y[i] = (*r)[0].to_f32_vector();
  }
  ASSERT_EQ(y[0].size(), static_cast<size_t>(M * N));
  for (size_t i = 0; i < y[0].size(); ++i) EXPECT_EQ(std::memcmp(&y[0][i], &y[1][i], 4), 0) << i << ": " << y[0][i] << " vs " << y[1][i];
}

}  // namespace
}  // namespace ingot
