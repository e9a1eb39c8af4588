// The matmul inner loop for q2_k weights, q8_K activations (see matmul_emitter.h).
#include "codegen/kernels/matmul/matmul_emitter.h"

namespace ingot::matmul {

// q2_k weights with q8_K activations: per super-block the panel's d, dmin (f16), 16 scales and
// 16 mins (4-bit, as bytes), then per half h and group g one 32-byte vector of ggml's qs bytes
// (8 rows x 4 elements; bits 2k..2k+1: block 4h + k; layout.cpp). Unsigned 2-bit quants times
// signed activations with pmaddubsw, four groups (one 16-element half) summed in i16 (at most
// 4 * 2 * 3 * 127), then one pmaddwd by the half's scale (or vpdpbusd, then a multiply) into the
// super-block's i32 sum; the mins meet the activation's 16-value sums once per super-block. One
// f32 step per super-block (q8k_row_dot), ggml's own q2_K arithmetic:
// (d * da) * isum - (dmin * da) * msum.
void MatMulEmitter::emit_int_dots_q2k(int T, Value* wp, Value* t0, const Accs& acc) {
  const int V = L.vectors, P = L.panel_rows;
  auto v32i8 = e.vec(e.i8, 32);
  auto c8 = [&](int v) { return e.splat(B.getInt8(static_cast<uint8_t>(v)), 32); };
  const std::vector<Value*> ar = activation_rows(T, t0);
  const int64_t sb_bytes = static_cast<int64_t>(P) * (4 + 16 + 16 + 64);
  e.loop(e.c64(0), e.c64(s.K / kQK_K), 1, [&](Value* sb) {
    Value* bp = e.at(wp, B.CreateMul(sb, e.c64(sb_bytes)));
    Value* qp = e.at(bp, 36 * P);
    std::vector<Value*> d, dmin;
    for (int v = 0; v < V; ++v) {
      d.push_back(B.CreateFPExt(e.load(e.vec(e.f16, 8), e.at(bp, v * 16), 2), vf()));
      dmin.push_back(B.CreateFPExt(e.load(e.vec(e.f16, 8), e.at(bp, 2 * P + v * 16), 2), vf()));
    }
    SuperSums sums = super_sums(T);
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 4; ++k) {
        const int blk = 4 * h + k;
        prefetch_weights_part(T, bp, sb_bytes, blk, 8);
        // dot[half16][t][v]
        std::vector<std::vector<std::vector<Value*>>> dot(2, std::vector<std::vector<Value*>>(
                                                                static_cast<size_t>(T), std::vector<Value*>(static_cast<size_t>(V), nullptr)));
        for (int g = 0; g < 8; ++g) {
          std::vector<Value*> q;
          for (int v = 0; v < V; ++v) {
            Value* qs = e.load(v32i8, e.at(qp, ((h * 8 + g) * P + v * 8) * 4), 1);
            q.push_back(B.CreateAnd(k == 0 ? qs : B.CreateLShr(qs, c8(2 * k)), c8(3)));
          }
          for (int t = 0; t < T; ++t) {
            Value* xb = e.bcast32(q8k_byte_at(ar[static_cast<size_t>(t)], sb, blk, 4 * g));
            for (int v = 0; v < V; ++v) {
              Value*& a16 = dot[static_cast<size_t>(g / 4)][static_cast<size_t>(t)][static_cast<size_t>(v)];
              if (e.vnni) {  // straight to i32 (vpdpbusd)
                a16 = e.dot4(a16, q[static_cast<size_t>(v)], xb);
                continue;
              }
              Value* m = e.maddubs(q[static_cast<size_t>(v)], xb);
              a16 = a16 ? B.CreateAdd(a16, m) : m;
            }
          }
        }
        for (int half = 0; half < 2; ++half)
          for (int t = 0; t < T; ++t)
            for (int v = 0; v < V; ++v)
              add_scaled(sums[static_cast<size_t>(t)][static_cast<size_t>(v)], dot[static_cast<size_t>(half)][static_cast<size_t>(t)][static_cast<size_t>(v)],
                         !e.vnni, e.at(bp, 4 * P + (2 * blk + half) * P + v * 8), false);
      }
    const SuperSums msum = min_sums(ar, sb, e.at(bp, 20 * P), 16, q8k_sums16_offset());
    add_super_block_values(ar, sb, d, &dmin, sums, &msum, acc);
  }, "sblk2");
}

extern const MatMulInnerLoop kMatMulInner_int_dots_q2k = {"int_dots_q2k", "q2_k weights, q8_K activations", [](const MatMulEmitter& m) { return m.int_dots_ && m.s.weight == ElementType::q2_k; },
                                               &MatMulEmitter::emit_int_dots_q2k};

}  // namespace ingot::matmul
