// The matmul inner loop for q3_k weights, q8_0 activations (see matmul_emitter.h).
#include "codegen/kernels/matmul/matmul_emitter.h"

namespace ingot::matmul {

// q3_k weights with q8_0 activations, q6_k's loop (int_dots_q6k.cpp) with 3-bit quants: per
// super-block the panel's d (f16) and 16 signed scales, then per half h and group g one 32-byte
// vector of ggml's qs bytes (8 rows x 4 elements; bits 2k..2k+1: block 4h + k) and per group one
// of hmask bytes (bit 4h + k: the same elements' high bits; layout.cpp). Per block the signed
// quant is rebuilt, w = (low | high << 2) - 4 (|w| <= 4), and |w| (unsigned) times x with w's
// sign (psignb) goes through pmaddubsw; four groups (one 16-element half, one scale) sum in i16,
// then pmaddwd to i32. Each block adds, in the reference's f32 order (q8_row_dot):
// d_a * ((d * sc0) * isum0 + (d * sc1) * isum1).
void MatMulEmitter::emit_int_dots_q3k(int T, Value* wp, Value* t0, const Accs& acc) {
  const int V = L.vectors, P = L.panel_rows;
  auto v32i8 = e.vec(e.i8, 32);
  Value* ones = e.splat(B.getInt16(1), 16);
  auto c8 = [&](int v) { return e.splat(B.getInt8(static_cast<uint8_t>(v)), 32); };
  const std::vector<Value*> ar = activation_rows(T, t0);
  const int64_t sb_bytes = static_cast<int64_t>(P) * (2 + 16 + 64 + 32);
  e.loop(e.c64(0), e.c64(s.K / kQK_K), 1, [&](Value* sb) {
    Value* bp = e.at(wp, B.CreateMul(sb, e.c64(sb_bytes)));
    Value* qp = e.at(bp, 18 * P);
    Value* hp = e.at(bp, 82 * P);
    prefetch_weights(T, bp, sb_bytes);
    std::vector<Value*> d;
    for (int v = 0; v < V; ++v) d.push_back(B.CreateFPExt(e.load(e.vec(e.f16, 8), e.at(bp, v * 16), 2), vf()));
    Value* b0 = B.CreateMul(sb, e.c64(8));
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 4; ++k) {
        const int blk = 4 * h + k;
        const int hbit = 4 * h + k;  // the hmask bit, moved to bit 2
        // isum[half16][t][v]
        std::vector<std::vector<std::vector<Value*>>> isum(2, std::vector<std::vector<Value*>>(
                                                                  static_cast<size_t>(T), std::vector<Value*>(static_cast<size_t>(V), nullptr)));
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
            add_block_value(acc.at(t, v, 0), B.CreateFMul(da, B.CreateFAdd(parts[0], parts[1])));
          }
        }
      }
  }, "sblk3");
}

extern const MatMulInnerLoop kMatMulInner_int_dots_q3k = {"int_dots_q3k", "q3_k weights, q8_0 activations", [](const MatMulEmitter& m) { return m.int_dots_ && m.s.weight == ElementType::q3_k; },
                                               &MatMulEmitter::emit_int_dots_q3k};

}  // namespace ingot::matmul
