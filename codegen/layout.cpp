// Matmul layouts and compile-time weight packing, attention scratch. Plain C++: no LLVM.
#include <cstring>
#include <numeric>

#include "codegen/kernel_registry.h"
#include "ir/model.h"
#include "ir/quant.h"

namespace ingot {
namespace {

Status err(const std::string& m) { return Status::Error(m); }

bool is_quant(ElementType t) { return t == ElementType::q8_0 || t == ElementType::q4_0; }

// Bytes of quants of one row in one 32-element block: q8_0 32, q4_0 16 (two elements a byte).
int quant_bytes(ElementType t) { return t == ElementType::q8_0 ? 32 : 16; }

// 256-element super-block types with kernels for 8-bit activations only (pack_kquant_q8_lane).
bool is_kquant_q8_only(ElementType t) {
  return t == ElementType::q5_k || t == ElementType::q3_k || t == ElementType::q2_k || t == ElementType::iq4_xs;
}

bool is_kquant(ElementType t) { return t == ElementType::q4_k || t == ElementType::q6_k || is_kquant_q8_only(t); }

// Packed bytes of one row of one 256-element super-block: q4_k d, dmin (f16), 8 scales, 8 mins
// (one byte each, unpacked from ggml's 12-byte 6-bit form), 128 quant bytes; q6_k d (f16), 16
// scales, 192 quant bytes (ggml's sizes: 144 and 210).
int64_t kquant_row_bytes(ElementType t) {
  switch (t) {
    case ElementType::q4_k: return 4 + 16 + 128;
    case ElementType::q5_k: return 4 + 16 + 128 + 32;  // q4_k's, then the 32 qh bytes
    case ElementType::q3_k: return 2 + 16 + 64 + 32;   // d, 16 scales, qs, hmask (ggml: 110)
    case ElementType::q2_k: return 4 + 16 + 16 + 64;   // d, dmin, 16 scales, 16 mins, qs (ggml: 84)
    case ElementType::iq4_xs: return 2 + 8 + 128;      // d, 8 scales, qs (ggml: 136)
    default: return 2 + 16 + 192;
  }
}

// ggml's get_scale_min_k4: eight 6-bit scales and mins in 12 bytes.
void k4_scale_min(const uint8_t* q, int j, uint8_t& sc, uint8_t& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = static_cast<uint8_t>((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
    m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// q5_0, q4_1, q5_1, iq4_nl: 32-element blocks, packed by pack_block32_lane.
bool is_block32(ElementType t) {
  return t == ElementType::q5_0 || t == ElementType::q4_1 || t == ElementType::q5_1 || t == ElementType::iq4_nl;
}
bool block32_has_min(ElementType t) { return t == ElementType::q4_1 || t == ElementType::q5_1; }
bool block32_has_high(ElementType t) { return t == ElementType::q5_0 || t == ElementType::q5_1; }

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// One lane (row r, or padding when r < 0: scale and min 0) of a panel of 32-element blocks. Per
// block, with P lanes: d[P] f16, for q4_1/q5_1 m[P] f16, then
//   8-bit activations: the 16 nibble bytes as q4_0's, [g 0..4][P][4] bytes qs[4g + i] (low nibble
//     element 4g + i, high 16 + 4g + i; iq4_nl: indices into kIq4nlValues), then for q5_0/q5_1
//     the fifth bits as [g 0..4][P] bytes: bit i = element 4g + i's, bit 4 + i = 16 + 4g + i's;
//   f32 activations: [k 0..32][P] int8 quants ready to scale: q5_0 q - 16, iq4_nl
//     kIq4nlValues[q], q4_1/q5_1 q (value = d * q, plus m).
// Both are ggml's block sizes with 8-bit activations (q5_0 22, q4_1 20, q5_1 24, iq4_nl 18).
void pack_block32_lane(const MatMulSpec& s, const uint8_t* src, int64_t r, int l, int P, uint8_t* panel) {
  const int64_t blocks = s.K / kQK;
  const ElementTypeInfo& ti = type_info(s.weight);
  const int64_t rb = block32_packed_row_bytes(s.weight, s.act_q8);
  const bool has_min = block32_has_min(s.weight), has_high = block32_has_high(s.weight);
  for (int64_t b = 0; b < blocks; ++b) {
    uint8_t* d = panel + b * P * rb;
    uint8_t raw[24] = {};  // the largest block, q5_1
    if (r >= 0) std::memcpy(raw, src + (r * blocks + b) * ti.block_bytes, static_cast<size_t>(ti.block_bytes));
    // ggml's field order: d, [m], [qh[4]], qs[16].
    std::memcpy(d + 2 * l, raw, 2);
    if (has_min) std::memcpy(d + 2 * P + 2 * l, raw + 2, 2);
    const uint8_t* qh_bytes = raw + (has_min ? 4 : 2);
    const uint8_t* qs = qh_bytes + (has_high ? 4 : 0);
    const uint32_t qh = has_high ? static_cast<uint32_t>(qh_bytes[0]) | static_cast<uint32_t>(qh_bytes[1]) << 8 |
                                       static_cast<uint32_t>(qh_bytes[2]) << 16 | static_cast<uint32_t>(qh_bytes[3]) << 24
                                 : 0;
    uint8_t* q = d + (has_min ? 4 : 2) * P;
    if (s.act_q8) {
      for (int g = 0; g < 4; ++g)
        for (int i = 0; i < 4; ++i) q[(static_cast<int64_t>(g) * P + l) * 4 + i] = qs[4 * g + i];
      if (has_high)
        for (int g = 0; g < 4; ++g) {
          uint8_t bits = 0;
          for (int i = 0; i < 4; ++i)
            bits |= static_cast<uint8_t>(((qh >> (4 * g + i)) & 1u) << i | ((qh >> (16 + 4 * g + i)) & 1u) << (4 + i));
          q[16 * P + g * P + l] = bits;
        }
      continue;
    }
    for (int k = 0; k < kQK; ++k) {
      int v = k < 16 ? (qs[k] & 0x0F) : (qs[k - 16] >> 4);
      v |= static_cast<int>((qh >> k) & 1u) << 4;
      if (s.weight == ElementType::q5_0) v -= 16;
      if (s.weight == ElementType::iq4_nl) v = kIq4nlValues[v];
      q[static_cast<int64_t>(k) * P + l] = static_cast<uint8_t>(static_cast<int8_t>(v));
    }
  }
}

// Source row of panel p, lane l; -1 for padding. With SwiGLU a panel holds out_cols gate rows
// followed by the out_cols matching up rows.
int64_t source_row(const MatMulSpec& s, const MatMulLayout& L, int64_t p, int l) {
  if (!s.swiglu) {
    const int64_t r = p * L.panel_rows + l;
    return r < s.N ? r : -1;
  }
  const int64_t half = s.N / 2;
  const int64_t c = p * L.out_cols + (l < L.out_cols ? l : l - L.out_cols);
  if (c >= half) return -1;
  return l < L.out_cols ? c : half + c;
}

// One lane (row r, or padding when r < 0) of a k-quant panel. Per super-block, with P lanes:
//   q4_k: d[P] f16, dmin[P] f16, sc[8][P], m[8][P], then [j 0..4][l 0..32][P] bytes qs[32j + l]
//         (low nibble: element 64j + l of sub-block 2j; high: 64j + 32 + l of sub-block 2j + 1);
//         with 8-bit activations the quants are [j 0..4][g 0..8][P][4] bytes qs[32j + 4g + i],
//         so one 32-byte load is 8 rows x 4 consecutive elements of sub-blocks 2j and 2j + 1
//   q6_k: d[P] f16, sc[16][P] i8, then [h 0..2][l 0..32][3][P] bytes ql[64h + l],
//         ql[64h + l + 32], qh[32h + l] (the four elements 128h + l + 32i, i = 0..3);
//         with 8-bit activations the quants are [h 0..2][g 0..8][part 0..3][P][4 bytes]: for the
//         four elements l = 4g + i of the 32-element blocks 4h + k (k = 0..3), part 0 holds
//         k = 0 (low nibble) and 1 (high), part 1 k = 2 and 3, part 2 the four high 2-bit pairs
//         (bits 2k..2k+1), so one 32-byte load is 8 rows x 4 elements
//   q5_k (8-bit activations only): q4_k's d, dmin, sc, m and quants, then [g 0..8][P][4] bytes
//         qh[4g + i] (bit k: the fifth bit of element 4g + i of sub-block k)
//   q3_k: d[P] f16, sc[16][P] i8 (the signed scales, -32..31), then [h 0..2][g 0..8][P][4] bytes
//         qs[32h + 4g + i] (bits 2k..2k+1: element 128h + 32k + 4g + i), then [g 0..8][P][4]
//         bytes hmask[4g + i] (bit 4h + k: the same element's high bit)
//   q2_k: d[P], dmin[P] f16, sc[16][P], m[16][P] (the 4-bit scales and mins as bytes), then
//         q3_k's qs layout
//   iq4_xs: d[P] f16, sc[8][P] i8 (ls - 32), then [j 0..4][g 0..8][P][4] bytes whose low nibble
//         is the index of element 4g + i of block 2j and high nibble of block 2j + 1
// so that, as for q4_k and q6_k, one 32-byte load is 8 rows x 4 consecutive elements.
void pack_kquant_q8_lane(const MatMulSpec& s, const uint8_t* src, int64_t r, int l, int P, uint8_t* panel) {
  const int64_t sbs = s.K / kQK_K;
  const int64_t rb = kquant_row_bytes(s.weight);
  auto quad = [&](uint8_t* base, int64_t group, int i) -> uint8_t& { return base[(group * P + l) * 4 + i]; };
  for (int64_t b = 0; b < sbs; ++b) {
    uint8_t* d = panel + b * P * rb;
    switch (s.weight) {
      case ElementType::q5_k: {
        BlockQ5_K blk{};
        if (r >= 0) std::memcpy(&blk, src + (r * sbs + b) * sizeof(BlockQ5_K), sizeof(blk));
        std::memcpy(d + 2 * l, &blk.d, 2);
        std::memcpy(d + 2 * P + 2 * l, &blk.dmin, 2);
        for (int j = 0; j < 8; ++j) k4_scale_min(blk.scales, j, d[4 * P + j * P + l], d[12 * P + j * P + l]);
        for (int j = 0; j < 4; ++j)
          for (int i = 0; i < 32; ++i) quad(d + 20 * P, j * 8 + i / 4, i % 4) = blk.qs[32 * j + i];
        for (int i = 0; i < 32; ++i) quad(d + 148 * P, i / 4, i % 4) = blk.qh[i];
        break;
      }
      case ElementType::q3_k: {
        BlockQ3_K blk{};
        if (r >= 0) std::memcpy(&blk, src + (r * sbs + b) * sizeof(BlockQ3_K), sizeof(blk));
        std::memcpy(d + 2 * l, &blk.d, 2);
        for (int j = 0; j < 16; ++j) d[2 * P + j * P + l] = static_cast<uint8_t>(static_cast<int8_t>(q3_k_sub_scale(blk, j)));
        for (int i = 0; i < 64; ++i) quad(d + 18 * P, i / 4, i % 4) = blk.qs[i];
        for (int i = 0; i < 32; ++i) quad(d + 82 * P, i / 4, i % 4) = blk.hmask[i];
        break;
      }
      case ElementType::q2_k: {
        BlockQ2_K blk{};
        if (r >= 0) std::memcpy(&blk, src + (r * sbs + b) * sizeof(BlockQ2_K), sizeof(blk));
        std::memcpy(d + 2 * l, &blk.d, 2);
        std::memcpy(d + 2 * P + 2 * l, &blk.dmin, 2);
        for (int j = 0; j < 16; ++j) {
          d[4 * P + j * P + l] = blk.scales[j] & 15;
          d[20 * P + j * P + l] = blk.scales[j] >> 4;
        }
        for (int i = 0; i < 64; ++i) quad(d + 36 * P, i / 4, i % 4) = blk.qs[i];
        break;
      }
      default: {
        INGOT_ASSERT(s.weight == ElementType::iq4_xs, "pack_kquant_q8_lane: unexpected weight type");
        BlockIQ4_XS blk{};
        if (r >= 0) std::memcpy(&blk, src + (r * sbs + b) * sizeof(BlockIQ4_XS), sizeof(blk));
        std::memcpy(d + 2 * l, &blk.d, 2);
        for (int j = 0; j < 8; ++j) d[2 * P + j * P + l] = static_cast<uint8_t>(static_cast<int8_t>(iq4_xs_block_scale(blk, j)));
        for (int j = 0; j < 4; ++j)
          for (int i = 0; i < 32; ++i)
            quad(d + 10 * P, j * 8 + i / 4, i % 4) =
                static_cast<uint8_t>(iq4_xs_quant(blk, 64 * j + i) | (iq4_xs_quant(blk, 64 * j + 32 + i) << 4));
        break;
      }
    }
  }
}

void pack_kquant_lane(const MatMulSpec& s, const uint8_t* src, int64_t r, int l, int P, uint8_t* panel) {
  if (is_kquant_q8_only(s.weight)) return pack_kquant_q8_lane(s, src, r, l, P, panel);
  const int64_t sbs = s.K / kQK_K;
  const int64_t rb = kquant_row_bytes(s.weight);
  for (int64_t b = 0; b < sbs; ++b) {
    uint8_t* d = panel + b * P * rb;
    if (s.weight == ElementType::q4_k) {
      BlockQ4_K blk{};
      if (r >= 0) std::memcpy(&blk, src + (r * sbs + b) * sizeof(BlockQ4_K), sizeof(blk));
      std::memcpy(d + 2 * l, &blk.d, 2);
      std::memcpy(d + 2 * P + 2 * l, &blk.dmin, 2);
      for (int j = 0; j < 8; ++j) {
        uint8_t sc, m;
        k4_scale_min(blk.scales, j, sc, m);
        d[4 * P + j * P + l] = sc;
        d[12 * P + j * P + l] = m;
      }
      uint8_t* q = d + 20 * P;
      for (int j = 0; j < 4; ++j)
        for (int i = 0; i < 32; ++i) {
          if (s.act_q8)
            q[((j * 8 + i / 4) * P + l) * 4 + i % 4] = blk.qs[32 * j + i];
          else
            q[(j * 32 + i) * P + l] = blk.qs[32 * j + i];
        }
    } else {
      BlockQ6_K blk{};
      if (r >= 0) std::memcpy(&blk, src + (r * sbs + b) * sizeof(BlockQ6_K), sizeof(blk));
      std::memcpy(d + 2 * l, &blk.d, 2);
      for (int j = 0; j < 16; ++j) d[2 * P + j * P + l] = static_cast<uint8_t>(blk.scales[j]);
      uint8_t* q = d + 18 * P;
      if (s.act_q8) {
        for (int h = 0; h < 2; ++h)
          for (int g = 0; g < 8; ++g)
            for (int i = 0; i < 4; ++i) {
              int qv[4];
              for (int k = 0; k < 4; ++k) qv[k] = q6_k_quant(blk, 128 * h + 32 * k + 4 * g + i);
              uint8_t* o = q + ((static_cast<int64_t>(h * 8 + g) * 3) * P + l) * 4 + i;
              o[0] = static_cast<uint8_t>((qv[0] & 15) | ((qv[1] & 15) << 4));
              o[static_cast<int64_t>(P) * 4] = static_cast<uint8_t>((qv[2] & 15) | ((qv[3] & 15) << 4));
              o[static_cast<int64_t>(P) * 8] =
                  static_cast<uint8_t>((qv[0] >> 4) | ((qv[1] >> 4) << 2) | ((qv[2] >> 4) << 4) | ((qv[3] >> 4) << 6));
            }
        continue;
      }
      for (int h = 0; h < 2; ++h)
        for (int i = 0; i < 32; ++i) {
          uint8_t* o = q + ((h * 32 + i) * 3) * P + l;
          o[0] = blk.ql[64 * h + i];
          o[P] = blk.ql[64 * h + i + 32];
          o[2 * P] = blk.qh[32 * h + i];
        }
    }
  }
}

}  // namespace

int64_t block32_packed_row_bytes(ElementType t, bool act_q8) {
  if (!is_block32(t)) return 0;
  const int64_t scales = block32_has_min(t) ? 4 : 2;
  return act_q8 ? scales + 16 + (block32_has_high(t) ? 4 : 0) : scales + 32;
}

StatusOr<MatMulLayout> matmul_layout(const MatMulSpec& s) {
  const ElementType t = s.weight;
  if (t != ElementType::f32 && t != ElementType::f16 && t != ElementType::bf16 && !is_quant(t) && !is_kquant(t) && !is_block32(t))
    return err("codegen: matmul weights of type " + std::string(type_name(t)) + " are not implemented yet");
  if (s.N <= 0 || s.K <= 0) return err("codegen: matmul needs N, K > 0");
  if ((is_quant(t) || is_block32(t)) && s.K % kQK != 0) return err("codegen: quantized weights need K to be a multiple of 32");
  if (is_kquant(t) && s.K % kQK_K != 0) return err("codegen: k-quant weights need K to be a multiple of 256");
  if (is_kquant_q8_only(t) && !s.act_q8)
    return err("codegen: matmul weights of type " + std::string(type_name(t)) +
               " have kernels for 8-bit activations only (act_quant \"q8\")");
  if (s.swiglu && s.N % 2 != 0) return err("codegen: SwiGLU needs an even N");
  if (s.rope != RopeLayout::none) {
    if (s.head_dim <= 0 || s.head_dim % 2 != 0 || s.rope_heads < 0 || s.rope_heads * s.head_dim > s.N)
      return err("codegen: RoPE needs an even head_dim and rope_heads * head_dim <= N");
    if (s.swiglu || s.residual) return err("codegen: RoPE together with SwiGLU or a residual is not implemented");
  }
  MatMulLayout L;
  const bool int_dots = (is_quant(t) || is_kquant(t) || is_block32(t)) && s.act_q8;
  if (int_dots) {
    // Panels of 16 rows on every tier, the amx tier's B tiles (16 outputs x 4 bytes a row; an AMX
    // tile store costs the same per row at 8 outputs as at 16).
    L.vectors = 2;
    L.tile_tokens = 3;
    L.group = 4;
  } else {
    L.vectors = 2;
    L.tile_tokens = 6;
    L.group = 1;
  }
  L.panel_rows = 8 * L.vectors;
  L.out_cols = s.swiglu ? L.panel_rows / 2 : L.panel_rows;
  const int64_t nout = s.swiglu ? s.N / 2 : s.N;
  L.panels = (nout + L.out_cols - 1) / L.out_cols;
  if (is_kquant(t))
    L.panel_bytes = s.K / kQK_K * L.panel_rows * kquant_row_bytes(t);
  else if (is_quant(t))
    L.panel_bytes = s.K / kQK * (2 * L.panel_rows + static_cast<int64_t>(L.panel_rows) * quant_bytes(t));
  else if (is_block32(t))
    L.panel_bytes = s.K / kQK * L.panel_rows * block32_packed_row_bytes(t, s.act_q8);
  else
    L.panel_bytes = s.K * L.panel_rows * (t == ElementType::f32 ? 4 : 2);
  L.packed_bytes = L.panels * L.panel_bytes;
  if (s.rope != RopeLayout::none) {
    // A thread owns whole heads, so it can rotate them after computing them.
    const int64_t cols = std::lcm<int64_t>(s.head_dim, L.out_cols);
    L.panels_per_unit = cols / L.out_cols;
  }
  L.units = (L.panels + L.panels_per_unit - 1) / L.panels_per_unit;
  int64_t row_bytes = s.K * 4;
  if (int_dots) {
    L.scratch_per_token = round_up(s.K + s.K / kQK * 8, 64);
    row_bytes = L.scratch_per_token;
  } else {
    L.scratch_per_token = s.K * 4;
    L.scratch_per_block = true;
  }
  // Activations of one token block stay in L2 (half of Zen3's 512 KiB) while a panel sweeps them;
  // AVX-512 CPUs have at least 1 MiB of L2 a core, and there half of it saves streams of the
  // weights (f16 tinyllama pp512 +10% on the Intel host).
  const int64_t budget = 256 * 1024;
  // At least 4 tiles a block: with long rows (tinyllama's down projection, K = 5632, 22 KiB of
  // f32 a token) the budget would allow one tile of 6 tokens, and the weights would then stream
  // once per 6 tokens (f16 down 2048 x 5632 on Zen 2: 57 -> 71 G FLOP/s a thread at 4 tiles);
  // the activations then come from L3.
  L.tokens_per_block = std::max<int64_t>(4, budget / (row_bytes * L.tile_tokens)) * L.tile_tokens;
  L.tokens_per_block_avx512 = std::max<int64_t>(4, 2 * budget / (row_bytes * L.tile_tokens)) * L.tile_tokens;
  // The amx tier's steps take 16 tokens (kAmxTokens): whole steps per block, on every tier alike.
  if (int_dots) {
    L.tokens_per_block = round_up(L.tokens_per_block, std::lcm<int64_t>(16, L.tile_tokens));
    L.tokens_per_block_avx512 = round_up(L.tokens_per_block_avx512, std::lcm<int64_t>(16, L.tile_tokens));
  }
  if (s.block_tokens > 0) L.tokens_per_block = L.tokens_per_block_avx512 = round_up(s.block_tokens, L.tile_tokens);
  return L;
}

StatusOr<std::vector<uint8_t>> pack_matmul_weights(const MatMulSpec& s, const void* src_v, size_t src_bytes) {
  INGOT_ASSIGN_OR_RETURN(MatMulLayout L, matmul_layout(s));
  INGOT_ASSIGN_OR_RETURN(int64_t want, storage_bytes(s.weight, s.N * s.K));
  if (static_cast<int64_t>(src_bytes) != want)
    return err("codegen: weight has " + std::to_string(src_bytes) + " bytes, expected " + std::to_string(want));
  const auto* src = static_cast<const uint8_t*>(src_v);
  std::vector<uint8_t> out(static_cast<size_t>(L.packed_bytes), 0);
  const int P = L.panel_rows;
  for (int64_t p = 0; p < L.panels; ++p) {
    uint8_t* panel = out.data() + p * L.panel_bytes;
    for (int l = 0; l < P; ++l) {
      const int64_t r = source_row(s, L, p, l);
      if (s.weight == ElementType::f32 || s.weight == ElementType::f16 || s.weight == ElementType::bf16) {
        // [k][lane] of f32, f16 or bf16.
        const int es = s.weight == ElementType::f32 ? 4 : 2;
        for (int64_t k = 0; k < s.K; ++k) {
          uint8_t* d = panel + (k * P + l) * es;
          if (r >= 0) std::memcpy(d, src + (r * s.K + k) * es, static_cast<size_t>(es));
        }
        continue;
      }
      if (is_kquant(s.weight)) {
        pack_kquant_lane(s, src, r, l, P, panel);
        continue;
      }
      if (is_block32(s.weight)) {
        pack_block32_lane(s, src, r, l, P, panel);
        continue;
      }
      // Quantized: per block, the panel's f16 scales, then the quants as [group][lane][G bytes].
      const int qb = quant_bytes(s.weight);
      const int64_t blocks = s.K / kQK;
      const int64_t bsz = s.weight == ElementType::q8_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_0);
      const int64_t block_out = 2 * P + static_cast<int64_t>(P) * qb;
      const int G = L.group;
      for (int64_t b = 0; b < blocks; ++b) {
        uint8_t* d = panel + b * block_out;
        uint16_t scale = 0;
        uint8_t qs[32];
        std::memset(qs, s.weight == ElementType::q4_0 ? 0x88 : 0, sizeof(qs));  // a padded row is 0
        if (r >= 0) {
          const uint8_t* blk = src + (r * blocks + b) * bsz;
          std::memcpy(&scale, blk, 2);
          std::memcpy(qs, blk + 2, static_cast<size_t>(qb));
        }
        std::memcpy(d + 2 * l, &scale, 2);
        uint8_t* q = d + 2 * P;
        for (int g = 0; g < qb / G; ++g)
          for (int i = 0; i < G; ++i) q[(static_cast<int64_t>(g) * P + l) * G + i] = qs[g * G + i];
      }
    }
  }
  return out;
}

AttentionScratch attention_scratch(const AttentionSpec& s) {
  AttentionScratch a;
  const int64_t group = s.KV > 0 ? s.H / s.KV : 0;
  a.queries = group * kAttentionTokenBlock;
  const int64_t chunk = kAttentionKeyChunk * s.D * 4;
  a.k = 0;
  a.v = chunk;
  a.acc = 2 * chunk;
  a.m = a.acc + a.queries * s.D * 4;
  a.l = a.m + a.queries * 4;
  a.total = round_up(a.l + a.queries * 4, 64);
  return a;
}

}  // namespace ingot

namespace ingot {
int64_t scratch_bytes_per_thread(const KernelSpec& spec, int64_t tokens) {
  const KernelFamily& f = family_of(spec);
  auto contract = f.contract(spec);
  if (!contract.ok()) return 0;
  for (const ArgContract& a : contract->args) {
    int64_t bytes = 0;
    if (a.access == ArgAccess::scratch) return contract_bytes(a, tokens, &bytes) ? bytes : 0;
  }
  return 0;
}
}  // namespace ingot
