// The matmul inner loop for q2_k weights, q8_0 activations (see matmul_emitter.h).
#include "codegen/kernels/matmul/matmul_emitter.h"

namespace ingot::matmul {

// q2_k weights with q8_0 activations: per super-block the panel's d, dmin (f16), 16 scales and
// 16 mins (4-bit, as bytes), then per half h and group g one 32-byte vector of ggml's qs bytes
// (8 rows x 4 elements; bits 2k..2k+1: block 4h + k; layout.cpp). Unsigned 2-bit quants times
// signed activations with pmaddubsw, four groups (one 16-element half) summed in i16 (at most
// 4 * 2 * 3 * 127), pmaddwd to i32. The mins need each half's activation sum: the first half's
// is summed here once per token and block, the second is the block's sum (scratch) minus it.
// Each block adds, in the reference's order (q8_row_dot):
// d_a * (d * float(sc0*qa0 + sc1*qa1) - dmin * float(m0*asum0 + m1*asum1)), integers exact.
void MatMulEmitter::emit_int_dots_q2k(int T, Value* wp, Value* t0, const Accs& acc) {
  const int V = L.vectors, P = L.panel_rows;
  auto v32i8 = e.vec(e.i8, 32);
  auto v8i32 = e.vec(e.i32, 8);
  Value* ones = e.splat(B.getInt16(1), 16);
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
    Value* b0 = B.CreateMul(sb, e.c64(8));
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 4; ++k) {
        const int blk = 4 * h + k;
        prefetch_weights_part(T, bp, sb_bytes, blk, 8);
        Value* bi = B.CreateAdd(b0, e.c64(blk));
        // isum[half16][t][v]
        std::vector<std::vector<std::vector<Value*>>> isum(2, std::vector<std::vector<Value*>>(
                                                                  static_cast<size_t>(T), std::vector<Value*>(static_cast<size_t>(V), nullptr)));
        for (int g = 0; g < 8; ++g) {
          std::vector<Value*> q;
          for (int v = 0; v < V; ++v) {
            Value* qs = e.load(v32i8, e.at(qp, ((h * 8 + g) * P + v * 8) * 4), 1);
            q.push_back(B.CreateAnd(k == 0 ? qs : B.CreateLShr(qs, c8(2 * k)), c8(3)));
          }
          for (int t = 0; t < T; ++t) {
            Value* xb = e.bcast32(e.at(ar[static_cast<size_t>(t)], B.CreateAdd(B.CreateMul(bi, e.c64(32)), e.c64(4 * g))));
            for (int v = 0; v < V; ++v) {
              Value*& a16 = isum[static_cast<size_t>(g / 4)][static_cast<size_t>(t)][static_cast<size_t>(v)];
              if (e.vnni) {  // straight to i32 (vpdpbusd)
                a16 = e.dot4(a16, q[static_cast<size_t>(v)], xb);
                continue;
              }
              Value* m = e.maddubs(q[static_cast<size_t>(v)], xb);
              a16 = a16 ? B.CreateAdd(a16, m) : m;
            }
          }
        }
        std::vector<Value*> sc[2], mn[2];
        for (int half = 0; half < 2; ++half)
          for (int v = 0; v < V; ++v) {
            const int j = 2 * blk + half;
            sc[half].push_back(B.CreateZExt(e.load(e.vec(e.i8, 8), e.at(bp, 4 * P + j * P + v * 8), 1), v8i32));
            mn[half].push_back(B.CreateZExt(e.load(e.vec(e.i8, 8), e.at(bp, 20 * P + j * P + v * 8), 1), v8i32));
          }
        for (int t = 0; t < T; ++t) {
          Value* a = ar[static_cast<size_t>(t)];
          Value* da = e.splat(e.load(e.f32, e.at(a, B.CreateAdd(e.c64(s.K), B.CreateMul(bi, e.c64(4)))), 4));
          Value* s8 = e.load(e.i32, e.at(a, B.CreateAdd(e.c64(s.K + nb_ * 4), B.CreateMul(bi, e.c64(4)))), 4);
          Value* first = e.load(e.vec(e.i8, 16), e.at(a, B.CreateMul(bi, e.c64(32))), 1);
          Value* as0 = B.CreateAddReduce(B.CreateSExt(first, e.vec(e.i32, 16)));
          Value* as1 = B.CreateSub(B.CreateAShr(s8, B.getInt32(3)), as0);
          Value* as0v = e.splat(as0);
          Value* as1v = e.splat(as1);
          for (int v = 0; v < V; ++v) {
            Value* qa[2];
            for (int half = 0; half < 2; ++half) {
              Value* is = isum[static_cast<size_t>(half)][static_cast<size_t>(t)][static_cast<size_t>(v)];
              qa[half] = e.vnni ? is : e.maddwd(is, ones);
            }
            const size_t vs = static_cast<size_t>(v);
            Value* qsum = B.CreateAdd(B.CreateMul(sc[0][vs], qa[0]), B.CreateMul(sc[1][vs], qa[1]));
            Value* msum = B.CreateAdd(B.CreateMul(mn[0][vs], as0v), B.CreateMul(mn[1][vs], as1v));
            Value* inner = B.CreateFSub(B.CreateFMul(d[vs], B.CreateSIToFP(qsum, vf())), B.CreateFMul(dmin[vs], B.CreateSIToFP(msum, vf())));
            add_block_value(acc.at(t, v, 0), B.CreateFMul(da, inner));
          }
        }
      }
  }, "sblk2");
}

extern const MatMulInnerLoop kMatMulInner_int_dots_q2k = {"int_dots_q2k", "q2_k weights, q8_0 activations", [](const MatMulEmitter& m) { return m.int_dots_ && m.s.weight == ElementType::q2_k; },
                                               &MatMulEmitter::emit_int_dots_q2k};

}  // namespace ingot::matmul
