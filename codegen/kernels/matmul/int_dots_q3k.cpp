// The matmul inner loop for q3_k weights, q8_K activations (see matmul_emitter.h).
#include "codegen/kernels/matmul/matmul_emitter.h"

namespace ingot::matmul {

// q3_k weights with q8_K activations, q6_k's loop (int_dots_q6k.cpp) with 3-bit quants: per
// super-block the panel's d (f16) and 16 signed scales, then per half h and group g one 32-byte
// vector of ggml's qs bytes (8 rows x 4 elements; bits 2k..2k+1: block 4h + k) and per group one
// of hmask bytes (bit 4h + k: the same elements' high bits; layout.cpp). Per block the signed
// quant is rebuilt, w = (low | high << 2) - 4 (|w| <= 4), and |w| (unsigned) times x with w's
// sign (psignb) goes through pmaddubsw; four groups (one 16-element half, one scale) sum in i16,
// then one pmaddwd by the half's signed scales (or vpdpbusd, then a multiply) into the
// super-block's i32 sum; one f32 step per super-block (q8k_row_dot): (d * da) * isum.
void MatMulEmitter::emit_int_dots_q3k(int T, Value* wp, Value* t0, const Accs& acc) {
  const int V = L.vectors, P = L.panel_rows;
  auto v32i8 = e.vec(e.i8, 32);
  auto c8 = [&](int v) { return e.splat(B.getInt8(static_cast<uint8_t>(v)), 32); };
  const std::vector<Value*> ar = activation_rows(T, t0);
  const int64_t sb_bytes = static_cast<int64_t>(P) * (2 + 16 + 64 + 32);
  e.loop(e.c64(0), e.c64(s.K / kQK_K), 1, [&](Value* sb) {
    Value* bp = e.at(wp, B.CreateMul(sb, e.c64(sb_bytes)));
    Value* qp = e.at(bp, 18 * P);
    Value* hp = e.at(bp, 82 * P);
    std::vector<Value*> d;
    for (int v = 0; v < V; ++v) d.push_back(B.CreateFPExt(e.load(e.vec(e.f16, 8), e.at(bp, v * 16), 2), vf()));
    Value* b0 = B.CreateMul(sb, e.c64(8));  // 32-value blocks (accumulate_signed_group addresses activations in them)
    SuperSums sums = super_sums(T);
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 4; ++k) {
        const int blk = 4 * h + k;
        prefetch_weights_part(T, bp, sb_bytes, blk, 8);
        const int hbit = 4 * h + k;  // the hmask bit, moved to bit 2
        HalfSums isum = half_sums(T);  // [half16][t][v]
        for (int g = 0; g < 8; ++g) {
          std::vector<Value*> aw, wv;
          for (int v = 0; v < V; ++v) {
            Value* qs = e.load(v32i8, e.at(qp, ((h * 8 + g) * P + v * 8) * 4), 1);
            Value* hm = e.load(v32i8, e.at(hp, (g * P + v * 8) * 4), 1);
            Value* low = B.CreateAnd(k == 0 ? qs : B.CreateLShr(qs, c8(2 * k)), c8(3));
            Value* high = hbit < 2 ? B.CreateShl(hm, c8(2 - hbit)) : hbit == 2 ? hm : B.CreateLShr(hm, c8(hbit - 2));
            Value* w = B.CreateSub(B.CreateOr(low, B.CreateAnd(high, c8(4))), c8(4));
            wv.push_back(w);
            aw.push_back(B.CreateBinaryIntrinsic(llvm::Intrinsic::abs, w, B.getFalse()));
          }
          accumulate_signed_group(ar, B.CreateAdd(b0, e.c64(blk)), g, wv, aw, isum[static_cast<size_t>(g / 4)]);
        }
        add_scaled_halves(sums, isum, e.at(bp, 2 * P + 2 * blk * P));
      }
    add_super_block_values(ar, sb, d, nullptr, sums, nullptr, acc);
  }, "sblk3");
}

extern const MatMulInnerLoop kMatMulInner_int_dots_q3k = {"int_dots_q3k", "q3_k weights, q8_K activations", [](const MatMulEmitter& m) { return m.int_dots_ && m.s.weight == ElementType::q3_k; },
                                               &MatMulEmitter::emit_int_dots_q3k};

}  // namespace ingot::matmul
