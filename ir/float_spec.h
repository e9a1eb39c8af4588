// The f32 arithmetic that fused ops specify exactly, so that generated kernels can match the
// reference evaluator bit for bit: one exp approximation, one 8-lane summation tree, and the
// attention algorithm's constants. Kernels (codegen/) emit these same operations in the same
// order on vectors; ir/ops.cpp uses them in the reference kernels of SwiGLU, Sigmoid and
// Attention. Why exactness matters: with 8-bit activations a last-bit difference can move a
// value across a rounding boundary of the next quantization, and greedy decoding then drifts.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace ingot::float_spec {

// Attention visits the keys of a query in chunks of this many (online softmax: the running
// maximum, sum and output are rescaled once per chunk); see attention_reference in ir/ops.cpp.
constexpr int64_t kAttentionKeyChunk = 32;

// e^x in f32: x clamped to [kExpMin, kExpMax]; x = n ln2 + r (n = roundeven(x log2 e), r by two
// fused multiply-adds with ln2 split in a high part exact in 16 bits and the rest); e^r by a
// degree-7 Horner polynomial in fused multiply-adds; times 2^n built in the exponent field (2^n
// stays normal on the clamped range). Within 2 ulp of e^x there. Callers that need exp(-inf) = 0
// select it themselves. The kernels' vexp emits exactly these operations.
constexpr float kExpMin = -87.3f, kExpMax = 88.3f;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693145751953125f, kLn2Lo = 1.4286068203094173e-06f;
constexpr float kExpPoly[8] = {1.0f / 5040, 1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f};

inline float expf(float x) {
  x = std::fmax(x, kExpMin);
  x = std::fmin(x, kExpMax);
  const float n = std::nearbyint(x * kLog2e);  // the default rounding mode: to nearest even
  float r = std::fma(n, -kLn2Hi, x);
  r = std::fma(n, -kLn2Lo, r);
  float p = kExpPoly[0];
  for (int i = 1; i < 8; ++i) p = std::fma(p, r, kExpPoly[i]);
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

// 1 / (1 + e^-x), each step rounded to f32.
inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// tanh in f32, within a few ulp: below |x| = kTanhSmall the odd Taylor series x + x^3 P(x^2) to
// x^13 (Horner in fused multiply-adds; the first omitted term is under 1e-10 relative there), else
// (1 - e) / (1 + e) with e = expf(-2|x|) and x's sign (no cancellation: e <= 0.55). Attention's
// soft-capping (Gemma 2) uses it; the attention kernel emits the same operations on vectors.
constexpr float kTanhSmall = 0.3f;
constexpr float kTanhPoly[6] = {static_cast<float>(21844.0 / 6081075.0), static_cast<float>(-1382.0 / 155925.0),
                                static_cast<float>(62.0 / 2835.0),       static_cast<float>(-17.0 / 315.0),
                                static_cast<float>(2.0 / 15.0),          static_cast<float>(-1.0 / 3.0)};

inline float tanhf(float x) {
  const float a = std::fabs(x);
  if (a < kTanhSmall) {
    const float u = x * x;
    float p = kTanhPoly[0];
    for (int i = 1; i < 6; ++i) p = std::fma(p, u, kTanhPoly[i]);
    return std::fma(x * u, p, x);
  }
  const float e = expf(-2.0f * a);
  return std::copysign((1.0f - e) / (1.0f + e), x);
}

// cap * tanh(x * (1 / cap)) as the attention kernel computes a soft-capped score (inv_cap is
// 1 / cap rounded to f32).
inline float softcap(float x, float cap, float inv_cap) { return cap * tanhf(x * inv_cap); }

// The sum of 8 lanes as the kernels' transpose tree adds them: ((0+1)+(2+3))+((4+5)+(6+7)).
inline float sum8(const float* v) { return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7])); }

// Dot product of a query and a key row of D values as the attention kernel computes it: lane l
// accumulates elements d = l (mod 8) in order with fused multiply-adds, then the lanes are summed
// by sum8. D need not be a multiple of 8 (missing elements contribute nothing).
inline float dot8(const float* a, const float* b, int64_t D) {
  float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t d = 0; d < D; ++d) lanes[d % 8] = std::fma(a[d], b[d], lanes[d % 8]);
  return sum8(lanes);
}

// llama.cpp's GELU on f32 (ggml_vec_gelu_f32 with GGML_GELU_FP16, its default): 0 at x <= -10, x
// at x >= 10, else a 65536-entry table indexed by x rounded to f16, whose entry is
// 0.5 x (1 + tanhf(sqrt(2/pi) x (1 + 0.044715 x^2))) in f32 rounded to f16. Gemma's GeGLU with
// approximation "ggml_f16" multiplies this by up; kernels read the same table (ggml_gelu_table).
float gelu_ggml_f16(float x);
// The table as f32 values, indexed by the f16 bits of x (65536 entries).
const float* ggml_gelu_table();

}  // namespace ingot::float_spec
