#include "ir/quant.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

namespace ingot {
namespace {

// The block structs mirror ggml's little-endian files byte for byte; reading their uint16_t
// fields directly is only right on a little-endian host.
static_assert(std::endian::native == std::endian::little, "quant.cpp assumes a little-endian host");

// Tensor data may sit at any byte offset (e.g. inside a GGUF buffer), so blocks are copied out
// rather than dereferenced in place: a misaligned struct access would be undefined behaviour.
template <typename Block>
Block load_block(const uint8_t* src, int64_t index) {
  Block block;
  std::memcpy(&block, src + index * static_cast<int64_t>(sizeof(Block)), sizeof(Block));
  return block;
}

// Assembled byte by byte so the bit numbering is the file's, independent of host order.
uint32_t load_le32(const uint8_t bytes[4]) {
  return static_cast<uint32_t>(bytes[0]) | static_cast<uint32_t>(bytes[1]) << 8 |
         static_cast<uint32_t>(bytes[2]) << 16 | static_cast<uint32_t>(bytes[3]) << 24;
}

// --- 32-element blocks: element j < 16 comes from the low nibble of qs[j], j + 16 from its high one.

void dequantize_q8_0(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t b = 0; b < blocks; ++b, dst += kQK) {
    const auto block = load_block<BlockQ8_0>(src, b);
    const float d = f16_to_f32(block.d);
    for (int j = 0; j < kQK; ++j) dst[j] = block.qs[j] * d;
  }
}

void dequantize_q4_0(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t b = 0; b < blocks; ++b, dst += kQK) {
    const auto block = load_block<BlockQ4_0>(src, b);
    const float d = f16_to_f32(block.d);
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = (block.qs[j] & 0x0F) - 8;
      const int hi = (block.qs[j] >> 4) - 8;
      dst[j] = lo * d;
      dst[j + kQK / 2] = hi * d;
    }
  }
}

void dequantize_q4_1(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t b = 0; b < blocks; ++b, dst += kQK) {
    const auto block = load_block<BlockQ4_1>(src, b);
    const float d = f16_to_f32(block.d);
    const float m = f16_to_f32(block.m);
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = block.qs[j] & 0x0F;
      const int hi = block.qs[j] >> 4;
      dst[j] = lo * d + m;
      dst[j + kQK / 2] = hi * d + m;
    }
  }
}

// The fifth bit of element j is bit j of the 32-bit qh (elements 0..31 map to bits 0..31).
void dequantize_q5_0(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t b = 0; b < blocks; ++b, dst += kQK) {
    const auto block = load_block<BlockQ5_0>(src, b);
    const float d = f16_to_f32(block.d);
    const uint32_t qh = load_le32(block.qh);
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo_high_bit = static_cast<int>((qh >> j) & 1u) << 4;
      const int hi_high_bit = static_cast<int>((qh >> (j + kQK / 2)) & 1u) << 4;
      const int lo = ((block.qs[j] & 0x0F) | lo_high_bit) - 16;
      const int hi = ((block.qs[j] >> 4) | hi_high_bit) - 16;
      dst[j] = lo * d;
      dst[j + kQK / 2] = hi * d;
    }
  }
}

void dequantize_q5_1(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t b = 0; b < blocks; ++b, dst += kQK) {
    const auto block = load_block<BlockQ5_1>(src, b);
    const float d = f16_to_f32(block.d);
    const float m = f16_to_f32(block.m);
    const uint32_t qh = load_le32(block.qh);
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo_high_bit = static_cast<int>((qh >> j) & 1u) << 4;
      const int hi_high_bit = static_cast<int>((qh >> (j + kQK / 2)) & 1u) << 4;
      const int lo = (block.qs[j] & 0x0F) | lo_high_bit;
      const int hi = (block.qs[j] >> 4) | hi_high_bit;
      dst[j] = lo * d + m;
      dst[j + kQK / 2] = hi * d + m;
    }
  }
}

// --- k-quants: 256-element super-blocks. The 2-bit planes of q2_k/q3_k and the nibble planes
// of q4_k/q5_k walk the super-block in 128- or 64-element halves, one bit field at a time.

void dequantize_q2_k(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t b = 0; b < blocks; ++b) {
    const auto block = load_block<BlockQ2_K>(src, b);
    const float d = f16_to_f32(block.d);
    const float dmin = f16_to_f32(block.dmin);
    const uint8_t* q = block.qs;
    int scale_index = 0;
    for (int half = 0; half < kQK_K; half += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        // Each 32-byte group holds two 16-element sub-blocks, each with its own 4-bit scale/min.
        for (int sub = 0; sub < 2; ++sub) {
          const uint8_t sc = block.scales[scale_index++];
          const float dl = d * (sc & 0x0F);
          const float ml = dmin * (sc >> 4);
          for (int l = 0; l < 16; ++l) *dst++ = dl * ((q[16 * sub + l] >> shift) & 3) - ml;
        }
      }
    }
  }
}

// Sixteen 6-bit scales packed in 12 bytes: low nibbles in bytes 0..7 (scales 0..7 in the low
// nibble, 8..15 in the high one), top two bits in bytes 8..11 (byte 8 + j%4, bit pair j/4).
int q3_k_scale(const uint8_t packed[12], int j) {
  const int low = j < 8 ? (packed[j] & 0x0F) : (packed[j - 8] >> 4);
  const int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

void dequantize_q3_k(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t b = 0; b < blocks; ++b) {
    const auto block = load_block<BlockQ3_K>(src, b);
    const float d = f16_to_f32(block.d);
    const uint8_t* q = block.qs;
    // hmask[l] bit k holds the third bit of the k-th 32-element run; a clear bit means "minus 4".
    uint8_t mask = 1;
    int scale_index = 0;
    for (int half = 0; half < kQK_K; half += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, mask = static_cast<uint8_t>(mask << 1)) {
        for (int sub = 0; sub < 2; ++sub) {
          const float dl = d * q3_k_scale(block.scales, scale_index++);
          for (int l = 16 * sub; l < 16 * sub + 16; ++l) {
            const int low = (q[l] >> shift) & 3;
            const int value = low - ((block.hmask[l] & mask) ? 0 : 4);
            *dst++ = dl * value;
          }
        }
      }
    }
  }
}

// Eight 6-bit scales and eight 6-bit mins in 12 bytes (ggml's get_scale_min_k4): j < 4 sit in
// the low six bits of bytes j and j+4; j >= 4 keep their low nibbles in byte j+4 and borrow the
// spare top two bits of bytes j-4 (scale) and j (min).
void k4_scale_min(const uint8_t packed[12], int j, uint8_t& scale, uint8_t& min) {
  if (j < 4) {
    scale = packed[j] & 63;
    min = packed[j + 4] & 63;
  } else {
    scale = static_cast<uint8_t>((packed[j + 4] & 0x0F) | ((packed[j - 4] >> 6) << 4));
    min = static_cast<uint8_t>((packed[j + 4] >> 4) | ((packed[j] >> 6) << 4));
  }
}

void dequantize_q4_k(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t b = 0; b < blocks; ++b) {
    const auto block = load_block<BlockQ4_K>(src, b);
    const float d = f16_to_f32(block.d);
    const float dmin = f16_to_f32(block.dmin);
    const uint8_t* q = block.qs;
    // Each 32 bytes hold 64 elements: low nibbles are sub-block 2k, high nibbles 2k+1.
    for (int sub = 0; sub < 8; sub += 2, q += 32) {
      uint8_t sc, m;
      k4_scale_min(block.scales, sub, sc, m);
      const float d1 = d * sc, m1 = dmin * m;
      k4_scale_min(block.scales, sub + 1, sc, m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *dst++ = d1 * (q[l] & 0x0F) - m1;
      for (int l = 0; l < 32; ++l) *dst++ = d2 * (q[l] >> 4) - m2;
    }
  }
}

void dequantize_q5_k(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t b = 0; b < blocks; ++b) {
    const auto block = load_block<BlockQ5_K>(src, b);
    const float d = f16_to_f32(block.d);
    const float dmin = f16_to_f32(block.dmin);
    const uint8_t* ql = block.qs;
    // qh[l] bit k is the fifth bit of element l of sub-block k.
    for (int sub = 0; sub < 8; sub += 2, ql += 32) {
      uint8_t sc, m;
      k4_scale_min(block.scales, sub, sc, m);
      const float d1 = d * sc, m1 = dmin * m;
      k4_scale_min(block.scales, sub + 1, sc, m);
      const float d2 = d * sc, m2 = dmin * m;
      const uint8_t bit1 = static_cast<uint8_t>(1u << sub);
      const uint8_t bit2 = static_cast<uint8_t>(1u << (sub + 1));
      for (int l = 0; l < 32; ++l) *dst++ = d1 * ((ql[l] & 0x0F) + ((block.qh[l] & bit1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *dst++ = d2 * ((ql[l] >> 4) + ((block.qh[l] & bit2) ? 16 : 0)) - m2;
    }
  }
}

void dequantize_q6_k(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t b = 0; b < blocks; ++b) {
    const auto block = load_block<BlockQ6_K>(src, b);
    const float d = f16_to_f32(block.d);
    const uint8_t* ql = block.ql;
    const uint8_t* qh = block.qh;
    const int8_t* sc = block.scales;
    // Per 128 elements: 64 ql bytes (two nibble planes of 32) and 32 qh bytes (four 2-bit planes);
    // element l + 32k takes qh[l] bits 2k..2k+1 as its top two bits.
    for (int half = 0; half < kQK_K; half += 128, ql += 64, qh += 32, sc += 8, dst += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        dst[l] = d * sc[is + 0] * q1;
        dst[l + 32] = d * sc[is + 2] * q2;
        dst[l + 64] = d * sc[is + 4] * q3;
        dst[l + 96] = d * sc[is + 6] * q4;
      }
    }
  }
}

void dequantize_iq4_nl(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t b = 0; b < blocks; ++b, dst += kQK) {
    const auto block = load_block<BlockIQ4_NL>(src, b);
    const float d = f16_to_f32(block.d);
    for (int j = 0; j < kQK / 2; ++j) {
      dst[j] = d * kIq4nlValues[block.qs[j] & 0x0F];
      dst[j + kQK / 2] = d * kIq4nlValues[block.qs[j] >> 4];
    }
  }
}

// The 6-bit scale of block `ib` (0..7) of an iq4_xs super-block, before the -32 offset.
int iq4_xs_scale(const BlockIQ4_XS& b, int ib) {
  return ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0F) | (((b.scales_h >> (2 * ib)) & 3) << 4);
}

void dequantize_iq4_xs(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t b = 0; b < blocks; ++b) {
    const auto block = load_block<BlockIQ4_XS>(src, b);
    const float d = f16_to_f32(block.d);
    for (int ib = 0; ib < 8; ++ib, dst += 32) {
      const float dl = d * static_cast<float>(iq4_xs_scale(block, ib) - 32);
      const uint8_t* qs = block.qs + 16 * ib;
      for (int j = 0; j < 16; ++j) {
        dst[j] = dl * kIq4nlValues[qs[j] & 0x0F];
        dst[j + 16] = dl * kIq4nlValues[qs[j] >> 4];
      }
    }
  }
}

}  // namespace

void dequantize_row(ElementType t, const void* src, float* dst, int64_t n) {
  const ElementTypeInfo& info = type_info(t);
  INGOT_ASSERT(info.is_quantized, std::string("dequantize_row called with non-quantized type ") + info.name);
  INGOT_ASSERT(n >= 0 && n % info.block_elems == 0,
               std::to_string(n) + " elements is not a whole number of " + info.name + " blocks");
  const auto* bytes = static_cast<const uint8_t*>(src);
  const int64_t blocks = n / info.block_elems;
  switch (t) {
    case ElementType::q8_0: return dequantize_q8_0(bytes, dst, blocks);
    case ElementType::q4_0: return dequantize_q4_0(bytes, dst, blocks);
    case ElementType::q4_1: return dequantize_q4_1(bytes, dst, blocks);
    case ElementType::q5_0: return dequantize_q5_0(bytes, dst, blocks);
    case ElementType::q5_1: return dequantize_q5_1(bytes, dst, blocks);
    case ElementType::q2_k: return dequantize_q2_k(bytes, dst, blocks);
    case ElementType::q3_k: return dequantize_q3_k(bytes, dst, blocks);
    case ElementType::q4_k: return dequantize_q4_k(bytes, dst, blocks);
    case ElementType::q5_k: return dequantize_q5_k(bytes, dst, blocks);
    case ElementType::q6_k: return dequantize_q6_k(bytes, dst, blocks);
    case ElementType::iq4_nl: return dequantize_iq4_nl(bytes, dst, blocks);
    case ElementType::iq4_xs: return dequantize_iq4_xs(bytes, dst, blocks);
    default: break;
  }
  INGOT_ASSERT(false, std::string("no dequantizer for ") + info.name);
}

namespace {
float block_amax(const float* xb) {
  float amax = 0.0f;
  for (int i = 0; i < kQK; ++i) amax = std::max(amax, std::fabs(xb[i]));
  return amax;
}
}  // namespace

void quantize_row_q8_0(const float* x, BlockQ8_0* out, int64_t n) {
  INGOT_ASSERT(n % kQK == 0, "q8_0 needs whole blocks of 32");
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    const float amax = block_amax(xb);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = f32_to_f16(d);
    for (int i = 0; i < kQK; ++i) out[b].qs[i] = static_cast<int8_t>(std::roundf(xb[i] * id));
  }
}

void quantize_row_q4_0(const float* x, BlockQ4_0* out, int64_t n) {
  INGOT_ASSERT(n % kQK == 0, "q4_0 needs whole blocks of 32");
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    // The signed value of largest magnitude (the first one on ties) sets the scale, so that it
    // maps exactly to -8.
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < kQK; ++i) {
      if (amax < std::fabs(xb[i])) {
        amax = std::fabs(xb[i]);
        max = xb[i];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = f32_to_f16(d);
    for (int i = 0; i < kQK / 2; ++i) {
      const int lo = std::min(15, static_cast<int>(static_cast<int8_t>(xb[i] * id + 8.5f)));
      const int hi = std::min(15, static_cast<int>(static_cast<int8_t>(xb[i + kQK / 2] * id + 8.5f)));
      out[b].qs[i] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void quantize_row_q8_0_activations(const float* x, BlockQ8_0* out, int64_t n) {
  INGOT_ASSERT(n % kQK == 0, "q8_0 activations need whole blocks of 32");
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    const float amax = block_amax(xb);
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    out[b].d = f32_to_f16(d);
    for (int i = 0; i < kQK; ++i) out[b].qs[i] = static_cast<int8_t>(std::nearbyint(xb[i] * id));
  }
}

int32_t dot_block_q8_0_q8_0(const BlockQ8_0& w, const BlockQ8_0& a) {
  int32_t sum = 0;
  for (int i = 0; i < kQK; ++i) sum += static_cast<int32_t>(w.qs[i]) * static_cast<int32_t>(a.qs[i]);
  return sum;
}

int32_t dot_block_q4_0_q8_0(const BlockQ4_0& w, const BlockQ8_0& a) {
  int32_t sum = 0;
  for (int i = 0; i < kQK / 2; ++i) {
    sum += ((w.qs[i] & 0x0F) - 8) * static_cast<int32_t>(a.qs[i]);
    sum += ((w.qs[i] >> 4) - 8) * static_cast<int32_t>(a.qs[i + kQK / 2]);
  }
  return sum;
}

int32_t dot_block_q5_0_q8_0(const BlockQ5_0& w, const BlockQ8_0& a) {
  const uint32_t qh = load_le32(w.qh);
  int32_t sum = 0;
  for (int i = 0; i < kQK / 2; ++i) {
    const int lo = ((w.qs[i] & 0x0F) | static_cast<int>(((qh >> i) & 1u) << 4)) - 16;
    const int hi = ((w.qs[i] >> 4) | static_cast<int>(((qh >> (i + kQK / 2)) & 1u) << 4)) - 16;
    sum += lo * static_cast<int32_t>(a.qs[i]) + hi * static_cast<int32_t>(a.qs[i + kQK / 2]);
  }
  return sum;
}

namespace {
// q4_1 (qh == nullptr) and q5_1: the unsigned quants times a, and the sum of a.
void dot_block_unsigned_q8_0(const uint8_t* qs, const uint8_t* qh_bytes, const BlockQ8_0& a, int32_t& qa, int32_t& asum) {
  const uint32_t qh = qh_bytes ? load_le32(qh_bytes) : 0;
  qa = 0;
  asum = 0;
  for (int i = 0; i < kQK / 2; ++i) {
    const int lo = (qs[i] & 0x0F) | static_cast<int>(((qh >> i) & 1u) << 4);
    const int hi = (qs[i] >> 4) | static_cast<int>(((qh >> (i + kQK / 2)) & 1u) << 4);
    qa += lo * static_cast<int32_t>(a.qs[i]) + hi * static_cast<int32_t>(a.qs[i + kQK / 2]);
    asum += static_cast<int32_t>(a.qs[i]) + static_cast<int32_t>(a.qs[i + kQK / 2]);
  }
}
}  // namespace

void dot_block_q4_1_q8_0(const BlockQ4_1& w, const BlockQ8_0& a, int32_t& qa, int32_t& asum) {
  dot_block_unsigned_q8_0(w.qs, nullptr, a, qa, asum);
}

void dot_block_q5_1_q8_0(const BlockQ5_1& w, const BlockQ8_0& a, int32_t& qa, int32_t& asum) {
  dot_block_unsigned_q8_0(w.qs, w.qh, a, qa, asum);
}

int32_t dot_block_iq4_nl_q8_0(const BlockIQ4_NL& w, const BlockQ8_0& a) {
  int32_t sum = 0;
  for (int i = 0; i < kQK / 2; ++i)
    sum += kIq4nlValues[w.qs[i] & 0x0F] * static_cast<int32_t>(a.qs[i]) +
           kIq4nlValues[w.qs[i] >> 4] * static_cast<int32_t>(a.qs[i + kQK / 2]);
  return sum;
}

namespace {

// Rounds to nearest, ties to even, for |v| < 2^22: adding 1.5 * 2^23 leaves the rounded integer
// in the low mantissa bits. (std::nearbyint is a library call on baseline x86-64, and this loop
// runs ~20 times per weight in q4_k's search.)
int nearest_int(float v) {
  const float shifted = v + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &shifted, sizeof(bits));
  return (bits & 0x007FFFFF) - 0x00400000;
}

// Finds scale and min (x ~ scale * L - min, 0 <= L <= nmax) for one sub-block by weighted least
// squares over a sweep of trial scales, keeping the best weighted squared error. Returns the
// scale; `min_out` gets the (non-negative) min. The search and its float arithmetic follow
// llama.cpp's make_qkx2_quants (rdelta 0.1, squared error; q4_k: rmin -1, 20 steps; q5_k: rmin
// -0.5, 15 steps).
float search_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, uint8_t* Laux,
                       float& min_out, float kRmin = -1.0f, int kSteps = 20) {
  constexpr float kRdelta = 0.1f;
  float min = x[0], max = x[0];
  float sum_w = w[0], sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    min = std::min(min, x[i]);
    max = std::max(max, x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::fill(L, L + n, 0);
    min_out = -min;
    return 0.0f;
  }
  float iscale = nmax / (max - min);
  float scale = 1.0f / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax));
    const float diff = scale * L[i] + min - x[i];
    best_error += w[i] * diff * diff;
  }
  for (int step = 0; step <= kSteps; ++step) {
    iscale = (kRmin + kRdelta * step + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
      Laux[i] = static_cast<uint8_t>(l);
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D <= 0) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    if (this_min > 0) {
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    float error = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = this_scale * Laux[i] + this_min - x[i];
      error += w[i] * diff * diff;
    }
    if (error < best_error) {
      std::copy(Laux, Laux + n, L);
      best_error = error;
      scale = this_scale;
      min = this_min;
    }
  }
  min_out = -min;
  return scale;
}

// Finds a signed scale for one group (x ~ scale * (L - nmax), -nmax <= L - nmax < nmax) by
// weighted least squares (weights x^2) over 19 trial scales around -nmax / (the value of largest
// magnitude): llama.cpp's make_qx_quants with rmse_type 1 and no importance weights, in its f32
// order. L gets the biased quants (0 .. 2 nmax - 1).
float search_signed_scale(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < 1e-15f) {  // ggml's GROUP_MAX_EPS: an all-zero group
    std::fill(L, L + n, 0);
    return 0.0f;
  }
  auto clamp_q = [nmax](int l) { return std::max(-nmax, std::min(nmax - 1, l)); };
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_q(nearest_int(iscale * x[i]));
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_q(nearest_int(iscale * x[i]));
      const float w = x[i] * x[i];
      sumlx += w * x[i] * static_cast<float>(l);
      suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(nmax + clamp_q(nearest_int(iscale * x[i])));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// The eight 6-bit scales and mins of a q4_k/q5_k super-block against its largest ones (ggml's
// packing into 12 bytes), then d and dmin.
void pack_k4_scales(const float* scales, const float* mins, uint8_t* packed, uint16_t& d, uint16_t& dmin) {
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  std::memset(packed, 0, 12);
  for (int j = 0; j < 8; ++j) {
    const uint8_t ls = static_cast<uint8_t>(std::min(63, nearest_int(inv_scale * scales[j])));
    const uint8_t lm = static_cast<uint8_t>(std::min(63, nearest_int(inv_min * mins[j])));
    if (j < 4) {
      packed[j] = ls;
      packed[j + 4] = lm;
    } else {
      packed[j + 4] = static_cast<uint8_t>((ls & 0x0F) | ((lm & 0x0F) << 4));
      packed[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
      packed[j] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
  }
  d = f32_to_f16(max_scale / 63.0f);
  dmin = f32_to_f16(max_min / 63.0f);
}

}  // namespace

void q4_k_scale_min(const BlockQ4_K& b, int sub, uint8_t& scale, uint8_t& min) {
  k4_scale_min(b.scales, sub, scale, min);
}

namespace {

// One super-block of q4_k or q5_k (quants 0..nmax): per sub-block of 32 the weighted scale/min
// search (weights |x| + rms of the sub-block), the 6-bit scales and mins, then the final quants
// against the stored scales (L: 256 levels). llama.cpp's quantize_row_q{4,5}_K_ref.
void quantize_k4_super_block(const float* x, int nmax, float rmin, int steps, uint8_t* scales12, uint16_t& d16,
                             uint16_t& dmin16, uint8_t* L) {
  uint8_t Laux[32];
  float weights[32], scales[8], mins[8];
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] = search_scale_min(32, nmax, xs, weights, L + 32 * j, Laux, mins[j], rmin, steps);
  }
  pack_k4_scales(scales, mins, scales12, d16, dmin16);
  // Re-quantize against the 6-bit scales actually stored.
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    k4_scale_min(scales12, j, sc, m);
    const float d = f16_to_f32(d16) * sc;
    if (d == 0.0f) continue;
    const float dm = f16_to_f32(dmin16) * m;
    for (int i = 0; i < 32; ++i)
      L[32 * j + i] = static_cast<uint8_t>(std::clamp(nearest_int((x[32 * j + i] + dm) / d), 0, nmax));
  }
}

}  // namespace

void quantize_row_q4_k(const float* x, BlockQ4_K* out, int64_t n) {
  INGOT_ASSERT(n % kQK_K == 0, "q4_k needs whole super-blocks of 256");
  for (int64_t sb = 0; sb < n / kQK_K; ++sb, x += kQK_K) {
    BlockQ4_K& y = out[sb];
    uint8_t L[kQK_K];
    quantize_k4_super_block(x, 15, -1.0f, 20, y.scales, y.d, y.dmin, L);
    for (int g = 0; g < 4; ++g)
      for (int l = 0; l < 32; ++l)
        y.qs[32 * g + l] = static_cast<uint8_t>(L[64 * g + l] | (L[64 * g + 32 + l] << 4));
  }
}

void quantize_row_q5_k(const float* x, BlockQ5_K* out, int64_t n) {
  INGOT_ASSERT(n % kQK_K == 0, "q5_k needs whole super-blocks of 256");
  for (int64_t sb = 0; sb < n / kQK_K; ++sb, x += kQK_K) {
    BlockQ5_K& y = out[sb];
    uint8_t L[kQK_K];
    quantize_k4_super_block(x, 31, -0.5f, 15, y.scales, y.d, y.dmin, L);
    // Low nibbles as q4_k; the fifth bit of element 64g + l in qh[l] bit 2g, of 64g + 32 + l in bit 2g + 1.
    std::memset(y.qh, 0, sizeof(y.qh));
    for (int g = 0; g < 4; ++g)
      for (int l = 0; l < 32; ++l) {
        const int lo = L[64 * g + l], hi = L[64 * g + 32 + l];
        y.qs[32 * g + l] = static_cast<uint8_t>((lo & 15) | ((hi & 15) << 4));
        y.qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * g)) | ((hi >> 4) << (2 * g + 1)));
      }
  }
}

void quantize_row_q6_k(const float* x, BlockQ6_K* out, int64_t n) {
  INGOT_ASSERT(n % kQK_K == 0, "q6_k needs whole super-blocks of 256");
  for (int64_t sb = 0; sb < n / kQK_K; ++sb, x += kQK_K) {
    BlockQ6_K& y = out[sb];
    int8_t L[kQK_K];
    float scales[16];
    float max_scale = 0, max_abs_scale = 0;
    for (int g = 0; g < 16; ++g) {
      scales[g] = search_signed_scale(16, 32, x + 16 * g, L + 16 * g);
      if (std::fabs(scales[g]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[g]);
        max_scale = scales[g];
      }
    }
    if (max_abs_scale < 1e-15f) {  // an all-zero super-block
      std::memset(&y, 0, sizeof(y));
      continue;
    }
    const float iscale = -128.0f / max_scale;
    y.d = f32_to_f16(1 / iscale);
    for (int g = 0; g < 16; ++g) y.scales[g] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[g])));
    for (int g = 0; g < 16; ++g) {
      const float d = f16_to_f32(y.d) * static_cast<float>(y.scales[g]);
      if (d == 0.0f) continue;
      for (int i = 0; i < 16; ++i)
        L[16 * g + i] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * g + i] / d), -32, 31) + 32);
    }
    // Per half of 128: ql[l] = q(l) | q(l + 64) << 4, ql[l + 32] = q(l + 32) | q(l + 96) << 4, and
    // the top two bits of q(l + 32i) in bits 2i of qh[l].
    for (int h = 0; h < 2; ++h) {
      const int8_t* q = L + 128 * h;
      for (int l = 0; l < 32; ++l) {
        y.ql[64 * h + l] = static_cast<uint8_t>((q[l] & 15) | ((q[l + 64] & 15) << 4));
        y.ql[64 * h + l + 32] = static_cast<uint8_t>((q[l + 32] & 15) | ((q[l + 96] & 15) << 4));
        y.qh[32 * h + l] = static_cast<uint8_t>((q[l] >> 4) | ((q[l + 32] >> 4) << 2) | ((q[l + 64] >> 4) << 4) | ((q[l + 96] >> 4) << 6));
      }
    }
  }
}

void quantize_row_q5_0(const float* x, BlockQ5_0* out, int64_t n) {
  INGOT_ASSERT(n % kQK == 0, "q5_0 needs whole blocks of 32");
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    float amax = 0, max = 0;
    for (int j = 0; j < kQK; ++j)
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    const float d = max / -16, id = d != 0 ? 1.0f / d : 0.0f;
    out[b].d = f32_to_f16(d);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      // Truncation toward zero of x / d + 16.5, as ggml's (int8_t) cast.
      const uint8_t q0 = static_cast<uint8_t>(std::min(31, static_cast<int>(x[j] * id + 16.5f)));
      const uint8_t q1 = static_cast<uint8_t>(std::min(31, static_cast<int>(x[j + 16] * id + 16.5f)));
      out[b].qs[j] = static_cast<uint8_t>((q0 & 15) | ((q1 & 15) << 4));
      qh |= static_cast<uint32_t>(q0 >> 4) << j;
      qh |= static_cast<uint32_t>(q1 >> 4) << (j + 16);
    }
    std::memcpy(out[b].qh, &qh, sizeof(qh));
  }
}

void quantize_row_q5_1(const float* x, BlockQ5_1* out, int64_t n) {
  INGOT_ASSERT(n % kQK == 0, "q5_1 needs whole blocks of 32");
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    float min = x[0], max = x[0];
    for (int j = 1; j < kQK; ++j) {
      min = std::min(min, x[j]);
      max = std::max(max, x[j]);
    }
    const float d = (max - min) / 31, id = d != 0 ? 1.0f / d : 0.0f;
    out[b].d = f32_to_f16(d);
    out[b].m = f32_to_f16(min);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const uint8_t q0 = static_cast<uint8_t>((x[j] - min) * id + 0.5f);
      const uint8_t q1 = static_cast<uint8_t>((x[j + 16] - min) * id + 0.5f);
      out[b].qs[j] = static_cast<uint8_t>((q0 & 15) | ((q1 & 15) << 4));
      qh |= static_cast<uint32_t>(q0 >> 4) << j;
      qh |= static_cast<uint32_t>(q1 >> 4) << (j + 16);
    }
    std::memcpy(out[b].qh, &qh, sizeof(qh));
  }
}

int q6_k_quant(const BlockQ6_K& b, int e) {
  const int half = e / 128, r = e % 128, k = r / 32, l = r % 32;
  const uint8_t lo = b.ql[half * 64 + l + 32 * (k % 2)];
  const int nibble = k < 2 ? (lo & 0x0F) : (lo >> 4);
  return nibble | (((b.qh[half * 32 + l] >> (2 * k)) & 3) << 4);
}

void dot_block_q6_k_q8_0(const BlockQ6_K& w, int block, const BlockQ8_0& a, int32_t isum[2]) {
  isum[0] = isum[1] = 0;
  for (int i = 0; i < kQK; ++i) isum[i / 16] += (q6_k_quant(w, block * kQK + i) - 32) * static_cast<int32_t>(a.qs[i]);
}

int q5_k_quant(const BlockQ5_K& b, int e) {
  const int sub = e / 32, l = e % 32;
  const uint8_t byte = b.qs[(sub / 2) * 32 + l];
  const int nibble = sub % 2 == 0 ? (byte & 0x0F) : (byte >> 4);
  return nibble | (((b.qh[l] >> sub) & 1) << 4);
}

void q5_k_scale_min(const BlockQ5_K& b, int sub, uint8_t& scale, uint8_t& min) { k4_scale_min(b.scales, sub, scale, min); }

void dot_subblock_q5_k_q8_0(const BlockQ5_K& w, int sub, const BlockQ8_0& a, int32_t& qa, int32_t& asum) {
  qa = 0;
  asum = 0;
  for (int i = 0; i < kQK; ++i) {
    qa += q5_k_quant(w, sub * kQK + i) * static_cast<int32_t>(a.qs[i]);
    asum += a.qs[i];
  }
}

int q3_k_quant(const BlockQ3_K& b, int e) {
  const int h = e / 128, s = (e % 128) / 32, l = e % 32;
  const int low = (b.qs[32 * h + l] >> (2 * s)) & 3;
  return low - ((b.hmask[l] >> (4 * h + s)) & 1 ? 0 : 4);
}

int q3_k_sub_scale(const BlockQ3_K& b, int j) { return q3_k_scale(b.scales, j); }

void dot_block_q3_k_q8_0(const BlockQ3_K& w, int block, const BlockQ8_0& a, int32_t isum[2]) {
  isum[0] = isum[1] = 0;
  for (int i = 0; i < kQK; ++i) isum[i / 16] += q3_k_quant(w, block * kQK + i) * static_cast<int32_t>(a.qs[i]);
}

int q2_k_quant(const BlockQ2_K& b, int e) {
  const int h = e / 128, s = (e % 128) / 32, l = e % 32;
  return (b.qs[32 * h + l] >> (2 * s)) & 3;
}

void dot_block_q2_k_q8_0(const BlockQ2_K& w, int block, const BlockQ8_0& a, int32_t qa[2], int32_t asum[2]) {
  qa[0] = qa[1] = asum[0] = asum[1] = 0;
  for (int i = 0; i < kQK; ++i) {
    qa[i / 16] += q2_k_quant(w, block * kQK + i) * static_cast<int32_t>(a.qs[i]);
    asum[i / 16] += a.qs[i];
  }
}

int iq4_xs_quant(const BlockIQ4_XS& b, int e) {
  const int ib = e / 32, j = e % 32;
  const uint8_t byte = b.qs[16 * ib + j % 16];
  return j < 16 ? (byte & 0x0F) : (byte >> 4);
}

int iq4_xs_block_scale(const BlockIQ4_XS& b, int ib) { return iq4_xs_scale(b, ib) - 32; }

int32_t dot_block_iq4_xs_q8_0(const BlockIQ4_XS& w, int block, const BlockQ8_0& a) {
  int32_t isum = 0;
  for (int i = 0; i < kQK; ++i) isum += kIq4nlValues[iq4_xs_quant(w, block * kQK + i)] * static_cast<int32_t>(a.qs[i]);
  return isum;
}

void dot_subblock_q4_k_q8_0(const BlockQ4_K& w, int sub, const BlockQ8_0& a, int32_t& qa, int32_t& asum) {
  qa = 0;
  asum = 0;
  for (int i = 0; i < kQK; ++i) {
    qa += q4_k_quant(w, sub, i) * static_cast<int32_t>(a.qs[i]);
    asum += a.qs[i];
  }
}

}  // namespace ingot

// ---------------------------------------------------------------- ggml's numerics
// The activation formats and scalar dot products of ggml's CPU backend (ggml-cpu/quants.c,
// ggml_vec_dot_*_generic). Integer sums are exact in any order; every float expression below is
// written in ggml's order and association, and ir/ is compiled with -ffp-contract=off, so each
// multiply and add rounds to f32 exactly as the C source says.

namespace ingot {
namespace {

// The 256 quants of a k-quant super-block as small signed integers (without scales), in element
// order, and the scale of each element's sub-block: the integer parts of ggml's aux8 arrays.
void q3_k_quants(const BlockQ3_K& x, int8_t a[kQK_K]) {
  for (int e = 0; e < kQK_K; ++e) {
    const int h = e / 128, s = (e % 128) / 32, l = e % 32;
    const int low = (x.qs[32 * h + l] >> (2 * s)) & 3;
    a[e] = static_cast<int8_t>(low - ((x.hmask[l] & (1u << (4 * h + s))) ? 0 : 4));
  }
}
void q4_k_quants(const uint8_t* qs, const uint8_t* qh, int8_t a[kQK_K]) {
  for (int e = 0; e < kQK_K; ++e) {
    const int g = e / 64, hi = (e % 64) / 32, l = e % 32;
    const uint8_t byte = qs[32 * g + l];
    int q = hi ? (byte >> 4) : (byte & 0x0F);
    if (qh && (qh[l] & (1u << (2 * g + hi)))) q += 16;
    a[e] = static_cast<int8_t>(q);
  }
}

// sum over e of scale(e) * q8[e] * a[e], per lane e % 8 (ggml's aux32), exact.
template <typename Scale>
void lane_sums(const int8_t* q8, const int8_t* a, Scale scale, int32_t aux32[8]) {
  for (int l = 0; l < 8; ++l) aux32[l] = 0;
  for (int e = 0; e < kQK_K; ++e) aux32[e % 8] += scale(e) * (static_cast<int32_t>(q8[e]) * a[e]);
}

float dot_q8_0(const BlockQ8_0* x, const BlockQ8_0* y, int64_t nb) {
  float sumf = 0;
  for (int64_t i = 0; i < nb; ++i) {
    int sumi = 0;
    for (int j = 0; j < kQK; ++j) sumi += x[i].qs[j] * y[i].qs[j];
    sumf += static_cast<float>(sumi) * (f16_to_f32(x[i].d) * f16_to_f32(y[i].d));
  }
  return sumf;
}

float dot_q4_0(const BlockQ4_0* x, const BlockQ8_0* y, int64_t nb) {
  float sumf = 0;
  for (int64_t i = 0; i < nb; ++i) {
    int sumi = 0;
    for (int j = 0; j < kQK / 2; ++j)
      sumi += ((x[i].qs[j] & 0x0F) - 8) * y[i].qs[j] + ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + kQK / 2];
    sumf += static_cast<float>(sumi) * f16_to_f32(x[i].d) * f16_to_f32(y[i].d);  // (sumi * dx) * dy
  }
  return sumf;
}

template <typename Block, bool kHasHigh>
float dot_q4_1_q5_1(const Block* x, const BlockQ8_1* y, int64_t nb) {
  float sumf = 0;
  for (int64_t i = 0; i < nb; ++i) {
    uint32_t qh = 0;
    if constexpr (kHasHigh) qh = load_le32(x[i].qh);
    int sumi = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const int x0 = (x[i].qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int x1 = (x[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      sumi += x0 * y[i].qs[j] + x1 * y[i].qs[j + kQK / 2];
    }
    sumf += (f16_to_f32(x[i].d) * f16_to_f32(y[i].d)) * static_cast<float>(sumi) + f16_to_f32(x[i].m) * f16_to_f32(y[i].s);
  }
  return sumf;
}

float dot_q5_0(const BlockQ5_0* x, const BlockQ8_0* y, int64_t nb) {
  float sumf = 0;
  for (int64_t i = 0; i < nb; ++i) {
    const uint32_t qh = load_le32(x[i].qh);
    int sumi = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const int x0 = ((x[i].qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4)) - 16;
      const int x1 = ((x[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4)) - 16;
      sumi += x0 * y[i].qs[j] + x1 * y[i].qs[j + kQK / 2];
    }
    sumf += (f16_to_f32(x[i].d) * f16_to_f32(y[i].d)) * static_cast<float>(sumi);
  }
  return sumf;
}

float dot_iq4_nl(const BlockIQ4_NL* x, const BlockQ8_0* y, int64_t nb) {
  float sumf = 0;
  for (int64_t i = 0; i < nb; ++i) {
    const float d = f16_to_f32(y[i].d) * f16_to_f32(x[i].d);
    int sumi = 0;
    for (int j = 0; j < kQK / 2; ++j)
      sumi += y[i].qs[j] * kIq4nlValues[x[i].qs[j] & 0x0F] + y[i].qs[j + kQK / 2] * kIq4nlValues[x[i].qs[j] >> 4];
    sumf += d * static_cast<float>(sumi);
  }
  return sumf;
}

float dot_q2_k(const BlockQ2_K* x, const BlockQ8_K* y, int64_t nb) {
  float sumf = 0;
  for (int64_t i = 0; i < nb; ++i) {
    int summs = 0;
    for (int j = 0; j < 16; ++j) summs += y[i].bsums[j] * (x[i].scales[j] >> 4);
    const float dall = y[i].d * f16_to_f32(x[i].d);
    const float dmin = y[i].d * f16_to_f32(x[i].dmin);
    int isum = 0;
    for (int e = 0; e < kQK_K; ++e) {
      const int h = e / 128, s = (e % 128) / 32, l = e % 32;
      isum += (x[i].scales[e / 16] & 0x0F) * (y[i].qs[e] * ((x[i].qs[32 * h + l] >> (2 * s)) & 3));
    }
    sumf += dall * static_cast<float>(isum) - dmin * static_cast<float>(summs);
  }
  return sumf;
}

// The k-quants with ggml's eight float lanes: sums[l] += d * aux32[l] per super-block, the lanes
// added to sumf (which holds q4_k/q5_k's min terms) at the end.
float finish_lanes(float sumf, const float sums[8]) {
  for (int l = 0; l < 8; ++l) sumf += sums[l];
  return sumf;
}

float dot_q3_k(const BlockQ3_K* x, const BlockQ8_K* y, int64_t nb) {
  float sums[8] = {};
  for (int64_t i = 0; i < nb; ++i) {
    int8_t a[kQK_K];
    q3_k_quants(x[i], a);
    int32_t aux32[8];
    lane_sums(y[i].qs, a, [&](int e) { return q3_k_scale(x[i].scales, e / 16); }, aux32);
    const float d = f16_to_f32(x[i].d) * y[i].d;
    for (int l = 0; l < 8; ++l) sums[l] += d * static_cast<float>(aux32[l]);
  }
  return finish_lanes(0.0f, sums);
}

template <typename Block>
float dot_q4_q5_k(const Block* x, const BlockQ8_K* y, int64_t nb) {
  float sums[8] = {};
  float sumf = 0;
  for (int64_t i = 0; i < nb; ++i) {
    int8_t a[kQK_K];
    if constexpr (std::is_same_v<Block, BlockQ5_K>) q4_k_quants(x[i].qs, x[i].qh, a);
    else q4_k_quants(x[i].qs, nullptr, a);
    uint8_t scales[8], mins[8];
    for (int j = 0; j < 8; ++j) k4_scale_min(x[i].scales, j, scales[j], mins[j]);
    int sumi = 0;
    for (int j = 0; j < 16; ++j) sumi += y[i].bsums[j] * mins[j / 2];
    int32_t aux32[8];
    lane_sums(y[i].qs, a, [&](int e) { return static_cast<int32_t>(scales[e / 32]); }, aux32);
    const float d = f16_to_f32(x[i].d) * y[i].d;
    for (int l = 0; l < 8; ++l) sums[l] += d * static_cast<float>(aux32[l]);
    const float dmin = f16_to_f32(x[i].dmin) * y[i].d;
    sumf -= dmin * static_cast<float>(sumi);
  }
  return finish_lanes(sumf, sums);
}

float dot_q6_k(const BlockQ6_K* x, const BlockQ8_K* y, int64_t nb) {
  float sums[8] = {};
  for (int64_t i = 0; i < nb; ++i) {
    int8_t a[kQK_K];
    for (int e = 0; e < kQK_K; ++e) a[e] = static_cast<int8_t>(q6_k_quant(x[i], e) - 32);
    int32_t aux32[8];
    lane_sums(y[i].qs, a, [&](int e) { return static_cast<int32_t>(x[i].scales[e / 16]); }, aux32);
    const float d = f16_to_f32(x[i].d) * y[i].d;
    for (int l = 0; l < 8; ++l) sums[l] += d * static_cast<float>(aux32[l]);
  }
  return finish_lanes(0.0f, sums);
}

float dot_iq4_xs(const BlockIQ4_XS* x, const BlockQ8_K* y, int64_t nb) {
  float sumf = 0;
  for (int64_t i = 0; i < nb; ++i) {
    const float d4d8 = f16_to_f32(x[i].d) * y[i].d;
    for (int ib = 0; ib < 8; ++ib) {
      const float dl = d4d8 * static_cast<float>(iq4_xs_scale(x[i], ib) - 32);
      const uint8_t* qs = x[i].qs + 16 * ib;
      const int8_t* q8 = y[i].qs + 32 * ib;
      int sumi = 0;
      for (int j = 0; j < 16; ++j) sumi += q8[j] * kIq4nlValues[qs[j] & 0x0F] + q8[j + 16] * kIq4nlValues[qs[j] >> 4];
      sumf += dl * static_cast<float>(sumi);
    }
  }
  return sumf;
}

// Weight rows may sit at any byte offset; the dot products read whole aligned copies.
template <typename Block>
std::vector<Block> copy_blocks(const void* src, int64_t nb) {
  std::vector<Block> v(static_cast<size_t>(nb));
  std::memcpy(v.data(), src, static_cast<size_t>(nb) * sizeof(Block));
  return v;
}

}  // namespace

GgmlActFormat ggml_act_format(ElementType w) {
  switch (w) {
    case ElementType::q8_0: case ElementType::q4_0: case ElementType::q5_0: case ElementType::iq4_nl:
      return GgmlActFormat::q8_0;
    case ElementType::q4_1: case ElementType::q5_1:
      return GgmlActFormat::q8_1;
    case ElementType::q2_k: case ElementType::q3_k: case ElementType::q4_k: case ElementType::q5_k:
    case ElementType::q6_k: case ElementType::iq4_xs:
      return GgmlActFormat::q8_K;
    default: break;
  }
  INGOT_ASSERT(false, std::string("ggml_act_format: no activation format for ") + std::string(type_name(w)));
  return GgmlActFormat::q8_0;
}

int64_t ggml_act_row_bytes(GgmlActFormat f, int64_t n) {
  switch (f) {
    case GgmlActFormat::q8_0: return n / kQK * static_cast<int64_t>(sizeof(BlockQ8_0));
    case GgmlActFormat::q8_1: return n / kQK * static_cast<int64_t>(sizeof(BlockQ8_1));
    case GgmlActFormat::q8_K: return n / kQK_K * static_cast<int64_t>(sizeof(BlockQ8_K));
  }
  return 0;
}

void quantize_row_q8_1_activations(const float* x, BlockQ8_1* out, int64_t n) {
  INGOT_ASSERT(n % kQK == 0, "q8_1 activations need whole blocks of 32");
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    const float amax = block_amax(xb);
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    out[b].d = f32_to_f16(d);
    int sum = 0;
    for (int i = 0; i < kQK; ++i) {
      out[b].qs[i] = static_cast<int8_t>(std::nearbyint(xb[i] * id));
      sum += out[b].qs[i];
    }
    out[b].s = f32_to_f16(d * static_cast<float>(sum));
  }
}

void quantize_row_q8_K(const float* x, BlockQ8_K* out, int64_t n) {
  INGOT_ASSERT(n % kQK_K == 0, "q8_K needs whole super-blocks of 256");
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    BlockQ8_K& y = out[b];
    float max = 0, amax = 0;
    for (int j = 0; j < kQK_K; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (amax == 0.0f) {
      std::memset(&y, 0, sizeof(y));
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < kQK_K; ++j) y.qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
    for (int g = 0; g < kQK_K / 16; ++g) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += y.qs[16 * g + i];
      y.bsums[g] = static_cast<int16_t>(sum);
    }
    y.d = 1 / iscale;
  }
}

void ggml_quantize_activations(ElementType w, const float* x, void* out, int64_t n) {
  switch (ggml_act_format(w)) {
    case GgmlActFormat::q8_0: return quantize_row_q8_0_activations(x, static_cast<BlockQ8_0*>(out), n);
    case GgmlActFormat::q8_1: return quantize_row_q8_1_activations(x, static_cast<BlockQ8_1*>(out), n);
    case GgmlActFormat::q8_K: return quantize_row_q8_K(x, static_cast<BlockQ8_K*>(out), n);
  }
}

float ggml_vec_dot(ElementType w, const void* weight_row, const void* act_row, int64_t n) {
  const ElementTypeInfo& info = type_info(w);
  INGOT_ASSERT(info.is_quantized && n % info.block_elems == 0 && n % kQK == 0,
               "ggml_vec_dot: " + std::to_string(n) + " is not a whole number of " + info.name + " blocks");
  const int64_t nb = n / info.block_elems;
  const int64_t na = ggml_act_format(w) == GgmlActFormat::q8_K ? n / kQK_K : n / kQK;
  switch (w) {
    case ElementType::q8_0: return dot_q8_0(copy_blocks<BlockQ8_0>(weight_row, nb).data(), copy_blocks<BlockQ8_0>(act_row, na).data(), nb);
    case ElementType::q4_0: return dot_q4_0(copy_blocks<BlockQ4_0>(weight_row, nb).data(), copy_blocks<BlockQ8_0>(act_row, na).data(), nb);
    case ElementType::q5_0: return dot_q5_0(copy_blocks<BlockQ5_0>(weight_row, nb).data(), copy_blocks<BlockQ8_0>(act_row, na).data(), nb);
    case ElementType::iq4_nl: return dot_iq4_nl(copy_blocks<BlockIQ4_NL>(weight_row, nb).data(), copy_blocks<BlockQ8_0>(act_row, na).data(), nb);
    case ElementType::q4_1:
      return dot_q4_1_q5_1<BlockQ4_1, false>(copy_blocks<BlockQ4_1>(weight_row, nb).data(), copy_blocks<BlockQ8_1>(act_row, na).data(), nb);
    case ElementType::q5_1:
      return dot_q4_1_q5_1<BlockQ5_1, true>(copy_blocks<BlockQ5_1>(weight_row, nb).data(), copy_blocks<BlockQ8_1>(act_row, na).data(), nb);
    case ElementType::q2_k: return dot_q2_k(copy_blocks<BlockQ2_K>(weight_row, nb).data(), copy_blocks<BlockQ8_K>(act_row, na).data(), nb);
    case ElementType::q3_k: return dot_q3_k(copy_blocks<BlockQ3_K>(weight_row, nb).data(), copy_blocks<BlockQ8_K>(act_row, na).data(), nb);
    case ElementType::q4_k: return dot_q4_q5_k(copy_blocks<BlockQ4_K>(weight_row, nb).data(), copy_blocks<BlockQ8_K>(act_row, na).data(), nb);
    case ElementType::q5_k: return dot_q4_q5_k(copy_blocks<BlockQ5_K>(weight_row, nb).data(), copy_blocks<BlockQ8_K>(act_row, na).data(), nb);
    case ElementType::q6_k: return dot_q6_k(copy_blocks<BlockQ6_K>(weight_row, nb).data(), copy_blocks<BlockQ8_K>(act_row, na).data(), nb);
    case ElementType::iq4_xs: return dot_iq4_xs(copy_blocks<BlockIQ4_XS>(weight_row, nb).data(), copy_blocks<BlockQ8_K>(act_row, na).data(), nb);
    default: break;
  }
  INGOT_ASSERT(false, std::string("ggml_vec_dot: no dot product for ") + info.name);
  return 0;
}

}  // namespace ingot
