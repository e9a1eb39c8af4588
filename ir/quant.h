// Reference dequantization of ggml's block-quantized formats (the numerical spec for kernels).
#pragma once

#include <cstdint>

#include "ir/element_type.h"

namespace ingot {

inline constexpr int kQK = 32;    // elements per block of q8_0, q4_0, q4_1, q5_0, q5_1
inline constexpr int kQK_K = 256;  // elements per super-block of the k-quants

// Byte layouts, identical to ggml's (all scales are IEEE half stored as uint16_t, little endian).
struct BlockQ8_0 { uint16_t d; int8_t qs[kQK]; };
struct BlockQ4_0 { uint16_t d; uint8_t qs[kQK / 2]; };
struct BlockQ4_1 { uint16_t d; uint16_t m; uint8_t qs[kQK / 2]; };
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[kQK / 2]; };
struct BlockQ5_1 { uint16_t d; uint16_t m; uint8_t qh[4]; uint8_t qs[kQK / 2]; };
struct BlockQ2_K { uint8_t scales[kQK_K / 16]; uint8_t qs[kQK_K / 4]; uint16_t d; uint16_t dmin; };
struct BlockQ3_K { uint8_t hmask[kQK_K / 8]; uint8_t qs[kQK_K / 4]; uint8_t scales[12]; uint16_t d; };
struct BlockQ4_K { uint16_t d; uint16_t dmin; uint8_t scales[12]; uint8_t qs[kQK_K / 2]; };
struct BlockQ5_K { uint16_t d; uint16_t dmin; uint8_t scales[12]; uint8_t qh[kQK_K / 8]; uint8_t qs[kQK_K / 2]; };
struct BlockQ6_K { uint8_t ql[kQK_K / 2]; uint8_t qh[kQK_K / 4]; int8_t scales[kQK_K / 16]; uint16_t d; };
// iq4_nl: 32 elements, value = d * kIq4nlValues[q]. iq4_xs: 256 elements in 8 blocks of 32, each
// with a 6-bit scale (low nibble in scales_l, top two bits in scales_h), value = d * (ls - 32) *
// kIq4nlValues[q]. Within a block of 32, element j < 16 is the low nibble of qs[j], j + 16 the high.
struct BlockIQ4_NL { uint16_t d; uint8_t qs[kQK / 2]; };
struct BlockIQ4_XS { uint16_t d; uint16_t scales_h; uint8_t scales_l[kQK_K / 64]; uint8_t qs[kQK_K / 2]; };
inline constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// ggml's activation blocks (never weights): q8_1 carries s = d * sum(q) (f16); q8_K a float scale
// and the sums of its 16-element groups.
struct BlockQ8_1 { uint16_t d; uint16_t s; int8_t qs[kQK]; };
struct BlockQ8_K { float d; int8_t qs[kQK_K]; int16_t bsums[kQK_K / 16]; };

static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockIQ4_NL) == 18);
static_assert(sizeof(BlockIQ4_XS) == 136);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ8_K) == 292);

// Dequantizes `n` elements (a whole number of blocks) of quantized type `t` from `src` into `dst`.
// Asserts that `t` is quantized and `n` is whole blocks: callers validate user data first.
void dequantize_row(ElementType t, const void* src, float* dst, int64_t n);

// Weight quantizers with llama.cpp's reference numerics (its quantize_row_*_ref), so that the same
// f32 input gives bit-identical blocks. `n` is a whole number of blocks of 32.
//   q8_0: d = amax / 127, q = roundf(x / d)   (round half away from zero)
//   q4_0: d = (the value of largest magnitude) / -8, q = min(15, trunc(x / d + 8.5))
void quantize_row_q8_0(const float* x, BlockQ8_0* out, int64_t n);
void quantize_row_q4_0(const float* x, BlockQ4_0* out, int64_t n);
// q4_k with llama.cpp's reference search (quantize_row_q4_K_ref, no importance matrix): per
// sub-block of 32 a weighted least-squares scale/min search (weights |x| + rms of the sub-block,
// 20 trial scales), then the 8 scales and 8 mins quantized to 6 bits against the super-block's
// largest ones. `n` is a whole number of super-blocks of 256.
void quantize_row_q4_k(const float* x, BlockQ4_K* out, int64_t n);
// q5_k: as q4_k with 5-bit quants (15 trial scales from nmax - 0.5: quantize_row_q5_K_ref).
void quantize_row_q5_k(const float* x, BlockQ5_K* out, int64_t n);
// q6_k: per group of 16 a signed least-squares scale (make_qx_quants, weights x^2, 19 trial
// scales), the 16 scales as int8 against the largest (d = largest / -128), then 6-bit quants
// against the stored scales (quantize_row_q6_K_ref).
void quantize_row_q6_k(const float* x, BlockQ6_K* out, int64_t n);
// q5_0: d = (the value of largest magnitude) / -16, q = min(31, trunc(x / d + 16.5)).
// q5_1: d = (max - min) / 31, m = min, q = trunc((x - min) / d + 0.5). `n`: whole blocks of 32.
void quantize_row_q5_0(const float* x, BlockQ5_0* out, int64_t n);
void quantize_row_q5_1(const float* x, BlockQ5_1* out, int64_t n);

// Sub-block `sub` (0..7, 32 elements) of a q4_k super-block: its 6-bit scale and min (value =
// d * scale * q - dmin * min), and element i's 4-bit quant.
void q4_k_scale_min(const BlockQ4_K& b, int sub, uint8_t& scale, uint8_t& min);
inline int q4_k_quant(const BlockQ4_K& b, int sub, int i) {
  const uint8_t byte = b.qs[(sub / 2) * 32 + i];
  return sub % 2 == 0 ? (byte & 0x0F) : (byte >> 4);
}

// Quantizes `n` activations (whole blocks of 32) to q8_0 the way llama.cpp's CPU matmul does at
// run time (its AVX2 path): per block amax, id = 127 / amax, q = round-half-even(x * id),
// d = f16(amax / 127). This is the activation side of the "q8" act-quant numerics.
void quantize_row_q8_0_activations(const float* x, BlockQ8_0* out, int64_t n);

// Integer dot products of one block of weights with one q8_0 activation block, as ggml computes
// them: the sum of int products, before any scale is applied. Weight block types: q8_0, q4_0.
int32_t dot_block_q8_0_q8_0(const BlockQ8_0& w, const BlockQ8_0& a);
int32_t dot_block_q4_0_q8_0(const BlockQ4_0& w, const BlockQ8_0& a);
// q5_0: sum of (q - 16) * a; iq4_nl: sum of kIq4nlValues[q] * a.
int32_t dot_block_q5_0_q8_0(const BlockQ5_0& w, const BlockQ8_0& a);
int32_t dot_block_iq4_nl_q8_0(const BlockIQ4_NL& w, const BlockQ8_0& a);
// q4_1 / q5_1 (value = d * q + m): qa = sum of q * a (q unsigned), asum = sum of a.
void dot_block_q4_1_q8_0(const BlockQ4_1& w, const BlockQ8_0& a, int32_t& qa, int32_t& asum);
void dot_block_q5_1_q8_0(const BlockQ5_1& w, const BlockQ8_0& a, int32_t& qa, int32_t& asum);
// The k-quants' integer parts, one 32-element sub-block at a time: `a` holds 32 activation
// values (the "q8" mode passes slices of a q8_K super-block; a.d is not read). The "q8" mode's
// f32 arithmetic around them is q8k_row_dot's (ir/ops.cpp).
// q4_k: qa = sum of q * a and asum = sum of a over sub-block `sub`.
void dot_subblock_q4_k_q8_0(const BlockQ4_K& w, int sub, const BlockQ8_0& a, int32_t& qa, int32_t& asum);

// Element e (0..255) of a q6_k super-block as its unsigned 6-bit quant (value = d * scale * (q - 32)),
// and the index of its 16-element scale.
int q6_k_quant(const BlockQ6_K& b, int e);
inline int q6_k_scale_index(int e) { return e / 16; }
// q6_k, per 32-element block (`block` 0..7 of the super-block), whose two 16-element halves have
// their own scales: isum[h] = sum of (q - 32) * a over half h.
void dot_block_q6_k_q8_0(const BlockQ6_K& w, int block, const BlockQ8_0& a, int32_t isum[2]);

// q5_k: q4_k's scales, mins and nibbles plus a fifth bit (qh[l] bit `sub` of element l of
// sub-block sub): q = 0..31, value = d * scale * q - dmin * min. Integer parts as q4_k's.
int q5_k_quant(const BlockQ5_K& b, int e);
void q5_k_scale_min(const BlockQ5_K& b, int sub, uint8_t& scale, uint8_t& min);
void dot_subblock_q5_k_q8_0(const BlockQ5_K& w, int sub, const BlockQ8_0& a, int32_t& qa, int32_t& asum);
// q3_k: element e (0..255) as its signed quant -4..3 (2 low bits in qs, minus 4 where its hmask
// bit is clear) and the signed 6-bit scale (-32..31) of 16-element sub-block j (0..15); value =
// d * scale * q. Integer parts as q6_k's: isum[h] = sum of q * a over half h of 32-element `block`.
int q3_k_quant(const BlockQ3_K& b, int e);
int q3_k_sub_scale(const BlockQ3_K& b, int j);
void dot_block_q3_k_q8_0(const BlockQ3_K& w, int block, const BlockQ8_0& a, int32_t isum[2]);
// q2_k: element e as its 2-bit quant 0..3; 16-element sub-block j has a 4-bit scale (scales[j] &
// 15) and min (scales[j] >> 4): value = d * scale * q - dmin * min. Per 32-element block, halves
// h = 0, 1: qa[h] = sum of q * a, asum[h] = sum of a.
int q2_k_quant(const BlockQ2_K& b, int e);
void dot_block_q2_k_q8_0(const BlockQ2_K& w, int block, const BlockQ8_0& a, int32_t qa[2], int32_t asum[2]);
// iq4_xs: block ib (0..7) of 32 has a 6-bit scale ls, element j's value is d * (ls - 32) *
// kIq4nlValues[q]. Per 32-element block: isum = sum of kIq4nlValues[q] * a.
int iq4_xs_quant(const BlockIQ4_XS& b, int e);  // the 4-bit index 0..15 of element e
int iq4_xs_block_scale(const BlockIQ4_XS& b, int ib);  // ls - 32
int32_t dot_block_iq4_xs_q8_0(const BlockIQ4_XS& w, int block, const BlockQ8_0& a);

// ---- ggml's numerics (act_quant "ggml"): the activation format ggml's CPU backend pairs with each
// weight type (its vec_dot_type) and the arithmetic of its scalar dot products
// (ggml_vec_dot_*_generic in ggml-cpu/quants.c), evaluated as written: every float operation
// rounded to f32, no contraction into fused multiply-adds.
enum class GgmlActFormat { q8_0, q8_1, q8_K };
// q8_0: q8_0, q4_0, q5_0, iq4_nl; q8_1: q4_1, q5_1; q8_K: q2_k..q6_k, iq4_xs.
// Asserts that `w` is quantized.
GgmlActFormat ggml_act_format(ElementType w);
// Bytes of one row of `n` activations in that format (n whole blocks).
int64_t ggml_act_row_bytes(GgmlActFormat f, int64_t n);
// Activation quantizers as ggml's CPU backend runs them on x86: q8_0 and q8_1 its AVX path
// (round half to even; q8_1's s = f16(d * sum q) with d = amax / 127 unrounded), q8_K its only
// one (quantize_row_q8_K_ref: the value of largest magnitude maps to -127, d = 1 / iscale in f32;
// an all-zero block gets d = 0 and zero sums).
void quantize_row_q8_1_activations(const float* x, BlockQ8_1* out, int64_t n);
void quantize_row_q8_K(const float* x, BlockQ8_K* out, int64_t n);
// Quantizes `n` activations into `out` (ggml_act_row_bytes bytes) in the format of weight type `w`.
void ggml_quantize_activations(ElementType w, const float* x, void* out, int64_t n);
// One weight row of `n` elements (type `w`) times one activation row in ggml_act_format(w):
// ggml's generic dot product, bit for bit.
float ggml_vec_dot(ElementType w, const void* weight_row, const void* act_row, int64_t n);

}  // namespace ingot
