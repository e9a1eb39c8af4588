#include "ir/quant.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>

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

}  // namespace ingot
