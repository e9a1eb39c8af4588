// The matmul inner loop for q6_k weights, q8_K activations (see matmul_emitter.h).
#include "codegen/kernels/matmul/matmul_emitter.h"

namespace ingot::matmul {

// q6_k weights with q8_K activations: per super-block the panel's d (f16) and 16 signed scales,
// then per half h, group g three 32-byte vectors (8 rows x 4 elements): the low nibbles of blocks
// 4h, 4h+1, of 4h+2, 4h+3, and the four blocks' high 2-bit pairs (layout.cpp). Per block the 6-bit
// quant is rebuilt, w = q - 32 (|w| <= 32), and |w| (unsigned) times x with w's sign (psignb)
// goes through pmaddubsw; four groups (one 16-element half, one scale) sum in i16 (at most
// 4 * 2 * 32 * 127 = 32512), then one pmaddwd by the half's signed scale (or vpdpbusd, then a
// multiply) into the super-block's i32 sum (at most 16 * 128 * 16 * 32 * 127); one f32 step per
// super-block (q8k_row_dot): (d * da) * isum.
void MatMulEmitter::emit_int_dots_q6k(int T, Value* wp, Value* t0, const Accs& acc) {
  const int V = L.vectors, P = L.panel_rows;
  auto v32i8 = e.vec(e.i8, 32);
  auto c8 = [&](int v) { return e.splat(B.getInt8(static_cast<uint8_t>(v)), 32); };
  const std::vector<Value*> ar = activation_rows(T, t0);
  const int64_t sb_bytes = static_cast<int64_t>(P) * (2 + 16 + 192);
  e.loop(e.c64(0), e.c64(s.K / kQK_K), 1, [&](Value* sb) {
    Value* bp = e.at(wp, B.CreateMul(sb, e.c64(sb_bytes)));
    Value* qp = e.at(bp, 18 * P);
    std::vector<Value*> d;
    for (int v = 0; v < V; ++v) d.push_back(B.CreateFPExt(e.load(e.vec(e.f16, 8), e.at(bp, v * 16), 2), vf()));
    Value* b0 = B.CreateMul(sb, e.c64(8));  // 32-value blocks (accumulate_signed_group addresses activations in them)
    SuperSums sums = super_sums(T);
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 4; ++k) {
        const int blk = 4 * h + k;
        prefetch_weights_part(T, bp, sb_bytes, blk, 8);
        HalfSums isum = half_sums(T);  // [half16][t][v]
        for (int g = 0; g < 8; ++g) {
          std::vector<Value*> aw, wv;
          for (int v = 0; v < V; ++v) {
            Value* base = e.at(qp, ((h * 8 + g) * 3 * P + v * 8) * 4);
            Value* nib = e.load(v32i8, e.at(base, (k / 2) * P * 4), 1);
            Value* hib = e.load(v32i8, e.at(base, 2 * P * 4), 1);
            Value* lo = k % 2 == 0 ? B.CreateAnd(nib, c8(15)) : B.CreateLShr(nib, c8(4));
            // The block's two high bits, moved to bits 4..5.
            Value* hi2 = k == 0 ? B.CreateShl(hib, c8(4)) : k == 1 ? B.CreateShl(hib, c8(2)) : k == 2 ? hib : B.CreateLShr(hib, c8(2));
            Value* q = B.CreateOr(lo, B.CreateAnd(hi2, c8(0x30)));
            Value* w = B.CreateSub(q, c8(32));
            wv.push_back(w);
            aw.push_back(B.CreateBinaryIntrinsic(llvm::Intrinsic::abs, w, B.getFalse()));
          }
          accumulate_signed_group(ar, B.CreateAdd(b0, e.c64(blk)), g, wv, aw, isum[static_cast<size_t>(g / 4)]);
        }
        add_scaled_halves(sums, isum, e.at(bp, 2 * P + 2 * blk * P));
      }
    add_super_block_values(ar, sb, d, nullptr, sums, nullptr, acc);
  }, "sblk6");
}

extern const MatMulInnerLoop kMatMulInner_int_dots_q6k = {"int_dots_q6k", "q6_k weights, q8_K activations", [](const MatMulEmitter& m) { return m.int_dots_ && m.s.weight == ElementType::q6_k; },
                                               &MatMulEmitter::emit_int_dots_q6k};

}  // namespace ingot::matmul
