// The matmul inner loop for q6_k weights, q8_K activations (see matmul_emitter.h).
#include "codegen/kernels/matmul/matmul_emitter.h"

namespace ingot::matmul {

// q6_k weights with q8_K activations: per super-block the panel's d (f16) and 16 signed scales,
// then per half h, group g three 32-byte vectors (8 rows x 4 elements): the low nibbles of blocks
// 4h, 4h+1, of 4h+2, 4h+3, and the four blocks' high 2-bit pairs (layout.cpp). Per block the
// unsigned 6-bit quant q (0..63) is rebuilt and goes straight into pmaddubsw with the
// activations; two groups sum in i16 (at most 2 * 2 * 63 * 127 = 32004), then one pmaddwd by
// the 16-element half's signed scale (or vpdpbusd, then a multiply) into the super-block's i32
// sum of sc * q * a. The -32 of w = q - 32 comes once per super-block from the activation's
// 16-value sums: isum = sum(sc * q * a) - 32 * sum_j sc_j * bsum_j (pmaddwd of scale pairs with
// sum pairs), at most 16 * 128 * 16 * 63 * 127 in magnitude. One f32 step per super-block
// (q8k_row_dot): (d * da) * isum.
void MatMulEmitter::emit_int_dots_q6k(int T, Value* wp, Value* t0, const Accs& acc) {
  const int V = iv_, P = L.panel_rows, N = il_;
  auto v32i8 = e.vec(e.i8, static_cast<unsigned>(4 * N));
  auto c8 = [&](int v) { return e.splat(B.getInt8(static_cast<uint8_t>(v)), static_cast<unsigned>(4 * N)); };
  const std::vector<Value*> ar = activation_rows(T, t0);
  const int64_t sb_bytes = static_cast<int64_t>(P) * (2 + 16 + 192);
  e.loop(e.c64(0), e.c64(s.K / kQK_K), 1, [&](Value* sb) {
    Value* bp = e.at(wp, B.CreateMul(sb, e.c64(sb_bytes)));
    Value* qp = e.at(bp, 18 * P);
    std::vector<Value*> d;
    for (int v = 0; v < V; ++v) d.push_back(f16_lanes(bp, v));
    SuperSums sums = super_sums(T);
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 4; ++k) {
        const int blk = 4 * h + k;
        prefetch_weights_part(T, bp, sb_bytes, blk, 8);
        // Two groups per i16 sum (pmaddubsw), four (a whole half) per i32 sum with VNNI.
        const int per_sum = e.vnni ? 4 : 2;
        std::vector<std::vector<Value*>> part(static_cast<size_t>(T), std::vector<Value*>(static_cast<size_t>(V), nullptr));
        for (int g = 0; g < 8; ++g) {
          std::vector<Value*> q;
          for (int v = 0; v < V; ++v) {
            Value* base = e.at(qp, ((h * 8 + g) * 3 * P + v * N) * 4);
            Value* nib = e.load(v32i8, e.at(base, (k / 2) * P * 4), 1);
            Value* hib = e.load(v32i8, e.at(base, 2 * P * 4), 1);
            Value* lo = k % 2 == 0 ? B.CreateAnd(nib, c8(15)) : B.CreateLShr(nib, c8(4));
            // The block's two high bits, moved to bits 4..5.
            Value* hi2 = k == 0 ? B.CreateShl(hib, c8(4)) : k == 1 ? B.CreateShl(hib, c8(2)) : k == 2 ? hib : B.CreateLShr(hib, c8(2));
            q.push_back(B.CreateOr(lo, B.CreateAnd(hi2, c8(0x30))));
          }
          for (int t = 0; t < T; ++t) {
            Value* x = e.bcast32(q8k_byte_at(ar[static_cast<size_t>(t)], sb, blk, 4 * g), static_cast<unsigned>(N));
            for (int v = 0; v < V; ++v) {
              Value*& sum = part[static_cast<size_t>(t)][static_cast<size_t>(v)];
              if (e.vnni) {
                sum = e.dot4(sum, q[static_cast<size_t>(v)], x);
              } else {
                Value* m = e.maddubs(q[static_cast<size_t>(v)], x);
                sum = sum ? B.CreateAdd(sum, m) : m;
              }
            }
          }
          if ((g + 1) % per_sum) continue;
          // Groups g - per_sum + 1 .. g done: they lie in half g / 4 of the block.
          Value* sc = e.at(bp, 2 * P + (2 * blk + g / 4) * P);
          for (int t = 0; t < T; ++t)
            for (int v = 0; v < V; ++v) {
              Value*& sum = part[static_cast<size_t>(t)][static_cast<size_t>(v)];
              add_scaled(sums[static_cast<size_t>(t)][static_cast<size_t>(v)], sum, !e.vnni, e.at(sc, v * N), true);
              sum = nullptr;
            }
        }
      }
    // isum -= 32 * sum_j sc_j * bsum_j
    const SuperSums offs = min_sums(ar, sb, e.at(bp, 2 * P), 16, q8k_sums16_offset(), true);
    for (int t = 0; t < T; ++t)
      for (int v = 0; v < V; ++v) {
        Value*& sum = sums[static_cast<size_t>(t)][static_cast<size_t>(v)];
        sum = B.CreateSub(sum, B.CreateShl(offs[static_cast<size_t>(t)][static_cast<size_t>(v)], e.splat(B.getInt32(5), static_cast<unsigned>(N))));
      }
    add_super_block_values(ar, sb, d, nullptr, sums, nullptr, acc);
  }, "sblk6");
}

extern const MatMulInnerLoop kMatMulInner_int_dots_q6k = {"int_dots_q6k", "q6_k weights, q8_K activations", [](const MatMulEmitter& m) { return m.int_dots_ && m.s.weight == ElementType::q6_k; },
                                               &MatMulEmitter::emit_int_dots_q6k};

}  // namespace ingot::matmul
