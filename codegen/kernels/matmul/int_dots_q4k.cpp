// The matmul inner loop for q4_k weights, q8_K activations (see matmul_emitter.h).
#include "codegen/kernels/matmul/matmul_emitter.h"

namespace ingot::matmul {

// q4_k weights with q8_K activations: per super-block the panel's d, dmin (f16) and the eight
// sub-blocks' 6-bit scales and mins (bytes), then [j][group][lanes][4 bytes] of quants whose low
// nibbles belong to sub-block 2j and high nibbles to 2j + 1. Unsigned nibbles times signed
// activations with pmaddubsw (eight groups of pairs: at most 8 * 2 * 15 * 127 = 30480, fits i16),
// then one pmaddwd by the sub-block's scales (or vpdpbusd, then a multiply) into the super-block's
// i32 sum (at most 8 * 63 * 32 * 15 * 127). The mins meet the activation's 32-value sums once per
// super-block; then one f32 step (q8k_row_dot): (d * da) * isum - (dmin * da) * msum.
void MatMulEmitter::emit_int_dots_q4k(int T, Value* wp, Value* t0, const Accs& acc) {
  const int V = iv_, P = L.panel_rows, N = il_;
  auto vbytes = e.vec(e.i8, static_cast<unsigned>(4 * N));
  const std::vector<Value*> ar = activation_rows(T, t0);
  const int64_t sb_bytes = static_cast<int64_t>(P) * (4 + 16 + 128);
  e.loop(e.c64(0), e.c64(s.K / kQK_K), 1, [&](Value* sb) {
    Value* bp = e.at(wp, B.CreateMul(sb, e.c64(sb_bytes)));
    Value* qp = e.at(bp, 20 * P);
    std::vector<Value*> d, dmin;
    for (int v = 0; v < V; ++v) {
      d.push_back(f16_lanes(bp, v));
      dmin.push_back(f16_lanes(e.at(bp, 2 * P), v));
    }
    SuperSums isum = super_sums(T);
    for (int j = 0; j < 4; ++j) {
      // One sub-block at a time (2j from the low nibbles, then 2j + 1 from the high ones, the
      // same 32-byte loads again from L1): fewer sums live at once, which keeps AVX2's 16
      // registers from spilling (q4_k decode ran at half of q4_0's rate on Zen 2).
      for (int half = 0; half < 2; ++half) {
        const int sub = 2 * j + half;
        prefetch_weights_part(T, bp, sb_bytes, sub, 8);
        std::vector<std::vector<Value*>> dot(static_cast<size_t>(T), std::vector<Value*>(static_cast<size_t>(V), nullptr));
        for (int g = 0; g < 8; ++g) {
          std::vector<Value*> q;
          for (int v = 0; v < V; ++v) {
            Value* raw = e.load(vbytes, e.at(qp, ((j * 8 + g) * P + v * N) * 4), 1);
            const unsigned nb = static_cast<unsigned>(4 * N);
            q.push_back(half == 0 ? B.CreateAnd(raw, e.splat(B.getInt8(15), nb)) : B.CreateLShr(raw, e.splat(B.getInt8(4), nb)));
          }
          for (int t = 0; t < T; ++t) {
            Value* x = e.bcast32(q8k_byte_at(ar[static_cast<size_t>(t)], sb, sub, 4 * g), static_cast<unsigned>(N));
            for (int v = 0; v < V; ++v) {
              Value*& sum = dot[static_cast<size_t>(t)][static_cast<size_t>(v)];
              if (e.vnni) {  // straight to i32 (vpdpbusd)
                sum = e.dot4(sum, q[static_cast<size_t>(v)], x);
                continue;
              }
              Value* m = e.maddubs(q[static_cast<size_t>(v)], x);
              sum = sum ? B.CreateAdd(sum, m) : m;
            }
          }
        }
        for (int t = 0; t < T; ++t)
          for (int v = 0; v < V; ++v)
            add_scaled(isum[static_cast<size_t>(t)][static_cast<size_t>(v)], dot[static_cast<size_t>(t)][static_cast<size_t>(v)], !e.vnni,
                       e.at(bp, 4 * P + sub * P + v * N), false);
      }
    }
    const SuperSums msum = min_sums(ar, sb, e.at(bp, 12 * P), 8, q8k_sums32_offset());
    add_super_block_values(ar, sb, d, &dmin, isum, &msum, acc);
  }, "sblk4");
}

extern const MatMulInnerLoop kMatMulInner_int_dots_q4k = {"int_dots_q4k", "q4_k weights, q8_K activations", [](const MatMulEmitter& m) { return m.int_dots_ && m.s.weight == ElementType::q4_k; },
                                               &MatMulEmitter::emit_int_dots_q4k};

}  // namespace ingot::matmul
