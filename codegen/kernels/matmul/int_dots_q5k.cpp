// The matmul inner loop for q5_k weights, q8_K activations (see matmul_emitter.h).
#include "codegen/kernels/matmul/matmul_emitter.h"

namespace ingot::matmul {

// q5_k weights with q8_K activations: q4_k's loop (int_dots_q4k.cpp) with the fifth bit of each
// quant: per super-block the panel's d, dmin (f16), eight scales and mins (bytes), the quant
// nibbles [j][group][lanes][4 bytes] (low: sub-block 2j, high: 2j + 1) and [group][lanes][4 bytes]
// of qh (bit k: sub-block k). Unsigned 5-bit quants times signed activations with pmaddubsw: a
// pair is at most 2 * 31 * 127 = 7874, so four groups sum in i16 (31496) before pmaddwd by the
// sub-block's scales takes them to the super-block's i32 sum. Then, as q4_k, one f32 step per
// super-block (q8k_row_dot): (d * da) * isum - (dmin * da) * msum.
void MatMulEmitter::emit_int_dots_q5k(int T, Value* wp, Value* t0, const Accs& acc) {
  const int V = L.vectors, P = L.panel_rows;
  auto v32i8 = e.vec(e.i8, 32);
  auto c8 = [&](int v) { return e.splat(B.getInt8(static_cast<uint8_t>(v)), 32); };
  // Bit k of every byte of qh moved to bit 4 (the quant's fifth bit), the rest cleared.
  auto fifth_bit = [&](Value* qh, int k) {
    Value* moved = k < 4 ? B.CreateShl(qh, c8(4 - k)) : k == 4 ? qh : B.CreateLShr(qh, c8(k - 4));
    return B.CreateAnd(moved, c8(16));
  };
  const std::vector<Value*> ar = activation_rows(T, t0);
  const int64_t sb_bytes = static_cast<int64_t>(P) * (4 + 16 + 128 + 32);
  e.loop(e.c64(0), e.c64(s.K / kQK_K), 1, [&](Value* sb) {
    Value* bp = e.at(wp, B.CreateMul(sb, e.c64(sb_bytes)));
    Value* qp = e.at(bp, 20 * P);
    Value* hp = e.at(bp, 148 * P);
    std::vector<Value*> d, dmin;
    for (int v = 0; v < V; ++v) {
      d.push_back(B.CreateFPExt(e.load(e.vec(e.f16, 8), e.at(bp, v * 16), 2), vf()));
      dmin.push_back(B.CreateFPExt(e.load(e.vec(e.f16, 8), e.at(bp, 2 * P + v * 16), 2), vf()));
    }
    SuperSums sums = super_sums(T);
    for (int j = 0; j < 4; ++j) {
      prefetch_weights_part(T, bp, sb_bytes, j, 4);
      // isum[half][part][t][v]: half 0 = sub-block 2j, 1 = 2j + 1; part = group / 4 (i16 sums of
      // four groups; with VNNI one i32 sum in part 0).
      std::vector<std::vector<std::vector<std::vector<Value*>>>> isum(
          2, std::vector<std::vector<std::vector<Value*>>>(
                 2, std::vector<std::vector<Value*>>(static_cast<size_t>(T), std::vector<Value*>(static_cast<size_t>(V), nullptr))));
      for (int g = 0; g < 8; ++g) {
        const size_t part = e.vnni ? 0 : static_cast<size_t>(g / 4);
        std::vector<Value*> lo, hi;
        for (int v = 0; v < V; ++v) {
          Value* raw = e.load(v32i8, e.at(qp, ((j * 8 + g) * P + v * 8) * 4), 1);
          Value* qh = e.load(v32i8, e.at(hp, (g * P + v * 8) * 4), 1);
          lo.push_back(B.CreateOr(B.CreateAnd(raw, c8(15)), fifth_bit(qh, 2 * j)));
          hi.push_back(B.CreateOr(B.CreateLShr(raw, c8(4)), fifth_bit(qh, 2 * j + 1)));
        }
        for (int t = 0; t < T; ++t) {
          Value* a = ar[static_cast<size_t>(t)];
          Value* xl = e.bcast32(q8k_byte_at(a, sb, 2 * j, 4 * g));
          Value* xh = e.bcast32(q8k_byte_at(a, sb, 2 * j + 1, 4 * g));
          for (int v = 0; v < V; ++v) {
            Value*& sl = isum[0][part][static_cast<size_t>(t)][static_cast<size_t>(v)];
            Value*& sh = isum[1][part][static_cast<size_t>(t)][static_cast<size_t>(v)];
            if (e.vnni) {  // straight to i32 (vpdpbusd)
              sl = e.dot4(sl, lo[static_cast<size_t>(v)], xl);
              sh = e.dot4(sh, hi[static_cast<size_t>(v)], xh);
              continue;
            }
            Value* ml = e.maddubs(lo[static_cast<size_t>(v)], xl);
            Value* mh = e.maddubs(hi[static_cast<size_t>(v)], xh);
            sl = sl ? B.CreateAdd(sl, ml) : ml;
            sh = sh ? B.CreateAdd(sh, mh) : mh;
          }
        }
      }
      for (int half = 0; half < 2; ++half) {
        const auto& parts = isum[static_cast<size_t>(half)];
        for (int t = 0; t < T; ++t)
          for (int v = 0; v < V; ++v) {
            const size_t ti = static_cast<size_t>(t), vi = static_cast<size_t>(v);
            Value* sc = e.at(bp, 4 * P + (2 * j + half) * P + v * 8);
            for (size_t part = 0; part < (e.vnni ? 1u : 2u); ++part) add_scaled(sums[ti][vi], parts[part][ti][vi], !e.vnni, sc, false);
          }
      }
    }
    const SuperSums msum = min_sums(ar, sb, e.at(bp, 12 * P), 8, q8k_sums32_offset());
    add_super_block_values(ar, sb, d, &dmin, sums, &msum, acc);
  }, "sblk5");
}

extern const MatMulInnerLoop kMatMulInner_int_dots_q5k = {"int_dots_q5k", "q5_k weights, q8_K activations", [](const MatMulEmitter& m) { return m.int_dots_ && m.s.weight == ElementType::q5_k; },
                                               &MatMulEmitter::emit_int_dots_q5k};

}  // namespace ingot::matmul
