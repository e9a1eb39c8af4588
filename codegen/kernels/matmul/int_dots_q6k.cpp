// The matmul inner loop for q6_k weights, q8_0 activations (see matmul_emitter.h).
#include "codegen/kernels/matmul/matmul_emitter.h"

namespace ingot::matmul {

// q6_k weights with q8_0 activations: per super-block the panel's d (f16) and 16 signed scales,
// then per half h, group g three 32-byte vectors (8 rows x 4 elements): the low nibbles of blocks
// 4h, 4h+1, of 4h+2, 4h+3, and the four blocks' high 2-bit pairs (layout.cpp). Per block the 6-bit
// quant is rebuilt, w = q - 32 (|w| <= 32), and |w| (unsigned) times x with w's sign (psignb)
// goes through pmaddubsw; four groups (one 16-element half, one scale) sum in i16 (at most
// 4 * 2 * 32 * 127 = 32512), then pmaddwd to i32. Each block adds, in the reference's f32 order
// (q8_row_dot): d_a * ((d * sc0) * isum0 + (d * sc1) * isum1).
void MatMulEmitter::emit_int_dots_q6k(int T, Value* wp, Value* t0, const Accs& acc) {
  const int V = L.vectors, P = L.panel_rows;
  auto v32i8 = e.vec(e.i8, 32);
  Value* ones = e.splat(B.getInt16(1), 16);
  auto c8 = [&](int v) { return e.splat(B.getInt8(static_cast<uint8_t>(v)), 32); };
  const std::vector<Value*> ar = activation_rows(T, t0);
  const int64_t sb_bytes = static_cast<int64_t>(P) * (2 + 16 + 192);
  e.loop(e.c64(0), e.c64(s.K / kQK_K), 1, [&](Value* sb) {
    Value* bp = e.at(wp, B.CreateMul(sb, e.c64(sb_bytes)));
    Value* qp = e.at(bp, 18 * P);
    prefetch_weights(T, bp, sb_bytes);
    std::vector<Value*> d;
    for (int v = 0; v < V; ++v) d.push_back(B.CreateFPExt(e.load(e.vec(e.f16, 8), e.at(bp, v * 16), 2), vf()));
    Value* b0 = B.CreateMul(sb, e.c64(8));
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 4; ++k) {
        const int blk = 4 * h + k;
        // isum[half16][t][v]
        std::vector<std::vector<std::vector<Value*>>> isum(2, std::vector<std::vector<Value*>>(
                                                                  static_cast<size_t>(T), std::vector<Value*>(static_cast<size_t>(V), nullptr)));
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
          for (int t = 0; t < T; ++t) {
            Value* xb = e.bcast32(e.at(ar[static_cast<size_t>(t)], B.CreateAdd(B.CreateMul(B.CreateAdd(b0, e.c64(blk)), e.c64(32)), e.c64(4 * g))));
            for (int v = 0; v < V; ++v) {
              Value* sg = e.sign8(xb, wv[static_cast<size_t>(v)]);
              Value*& a16 = isum[static_cast<size_t>(g / 4)][static_cast<size_t>(t)][static_cast<size_t>(v)];
              if (e.vnni) {  // straight to i32 (vpdpbusd)
                a16 = e.dot4(a16, aw[static_cast<size_t>(v)], sg);
                continue;
              }
              Value* m = e.maddubs(aw[static_cast<size_t>(v)], sg);
              a16 = a16 ? B.CreateAdd(a16, m) : m;
            }
          }
        }
        std::vector<Value*> dsc[2];
        for (int half = 0; half < 2; ++half)
          for (int v = 0; v < V; ++v) {
            Value* sc = B.CreateSIToFP(e.load(e.vec(e.i8, 8), e.at(bp, 2 * P + (2 * blk + half) * P + v * 8), 1), vf());
            dsc[half].push_back(B.CreateFMul(d[static_cast<size_t>(v)], sc));
          }
        Value* bi = B.CreateAdd(b0, e.c64(blk));
        for (int t = 0; t < T; ++t) {
          Value* da = e.splat(e.load(e.f32, e.at(ar[static_cast<size_t>(t)], B.CreateAdd(e.c64(s.K), B.CreateMul(bi, e.c64(4)))), 4));
          for (int v = 0; v < V; ++v) {
            Value* parts[2];
            for (int half = 0; half < 2; ++half) {
              Value* is = isum[static_cast<size_t>(half)][static_cast<size_t>(t)][static_cast<size_t>(v)];
              Value* i32 = e.vnni ? is : e.maddwd(is, ones);
              parts[half] = B.CreateFMul(dsc[half][static_cast<size_t>(v)], B.CreateSIToFP(i32, vf()));
            }
            Value* value = B.CreateFMul(da, B.CreateFAdd(parts[0], parts[1]));
            add_block_value(acc.at(t, v, 0), value);
          }
        }
      }
  }, "sblk6");
}

extern const MatMulInnerLoop kMatMulInner_int_dots_q6k = {"int_dots_q6k", "q6_k weights, q8_0 activations", [](const MatMulEmitter& m) { return m.int_dots_ && m.s.weight == ElementType::q6_k; },
                                               &MatMulEmitter::emit_int_dots_q6k};

}  // namespace ingot::matmul
