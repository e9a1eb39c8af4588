// The matmul inner loop for q4_k and q6_k weights, f32 activations (see matmul_emitter.h).
#include "codegen/kernels/matmul/matmul_emitter.h"

namespace ingot::matmul {

// q4_k / q6_k weights with f32 activations, dequantized in registers with the reference's
// rounding: q4_k (d*sc)*q - dmin*m as one FMA (d*sc*q is exact in f32), q6_k (d*sc) * (q - 32).
// Layouts in layout.cpp (pack_kquant_lane).
void MatMulEmitter::emit_kquant_fma(int T, Value* wp, Value* t0, const Accs& acc) {
  const int V = L.vectors, P = L.panel_rows;
  const bool q4 = s.weight == ElementType::q4_k;
  const int64_t rb = q4 ? 148 : 210;
  auto v8i32 = e.vec(e.i32, 8);
  std::vector<Value*> xr;
  for (int t = 0; t < T; ++t) xr.push_back(x_row(t0, t));
  auto lane_bytes_at = [&](Value* p, Value* off, int v, bool sign) {
    Value* b = e.load(e.vec(e.i8, 8), e.at(p, B.CreateAdd(off, e.c64(v * 8))), 1);
    return sign ? B.CreateSExt(b, v8i32) : B.CreateZExt(b, v8i32);
  };
  auto lane_bytes = [&](Value* p, int64_t off, int v, bool sign) { return lane_bytes_at(p, e.c64(off), v, sign); };
  auto tofloat = [&](Value* i) { return B.CreateSIToFP(i, vf()); };
  auto c32 = [&](int v) { return e.splat(B.getInt32(static_cast<uint32_t>(v))); };
  e.loop(e.c64(0), e.c64(s.K / kQK_K), 1, [&](Value* sb) {
    Value* bp = e.at(wp, B.CreateMul(sb, e.c64(rb * P)));
    Value* kb = B.CreateMul(sb, e.c64(kQK_K));
    // Every weight vector of a k step, then each token's broadcast once for all of them.
    // k = kb + k0 + k1 (k1 runtime, a multiple of 4); `split` picks the accumulator.
    auto fma_all = [&](Value* k1, int64_t k0, int split, const std::vector<Value*>& w) {
      Value* k = B.CreateAdd(B.CreateAdd(kb, k1), e.c64(k0));
      for (int t = 0; t < T; ++t) {
        Value* xs = x_splat(xr[static_cast<size_t>(t)], k);
        for (int v = 0; v < V; ++v) fma_into(acc.at(t, v, split % acc.S), w[static_cast<size_t>(v)], xs);
      }
    };
    std::vector<Value*> d(static_cast<size_t>(V));
    for (int v = 0; v < V; ++v) d[static_cast<size_t>(v)] = B.CreateFPExt(e.load(e.vec(e.f16, 8), e.at(bp, v * 16), 2), vf());
    if (q4) {
      std::vector<Value*> dmin(static_cast<size_t>(V));
      for (int v = 0; v < V; ++v)
        dmin[static_cast<size_t>(v)] = B.CreateFPExt(e.load(e.vec(e.f16, 8), e.at(bp, 2 * P + v * 16), 2), vf());
      for (int j = 0; j < 4; ++j) {
        std::vector<Value*> sc[2], mn[2];
        for (int h = 0; h < 2; ++h)
          for (int v = 0; v < V; ++v) {
            sc[h].push_back(B.CreateFMul(d[static_cast<size_t>(v)], tofloat(lane_bytes(bp, 4 * P + (2 * j + h) * P, v, false))));
            mn[h].push_back(B.CreateFNeg(B.CreateFMul(dmin[static_cast<size_t>(v)], tofloat(lane_bytes(bp, 12 * P + (2 * j + h) * P, v, false)))));
          }
        // l = l4 + u: a runtime loop unrolled by 4 keeps the code (and compile time) small.
        e.loop(e.c64(0), e.c64(32), 4, [&](Value* l4) {
          for (int u = 0; u < 4; ++u) {
            std::vector<Value*> lo, hi;
            Value* off = B.CreateAdd(e.c64(20 * P + (j * 32 + u) * P), B.CreateMul(l4, e.c64(P)));
            for (int v = 0; v < V; ++v) {
              Value* q = lane_bytes_at(bp, off, v, false);
              lo.push_back(e.fma(tofloat(B.CreateAnd(q, c32(15))), sc[0][static_cast<size_t>(v)], mn[0][static_cast<size_t>(v)]));
              hi.push_back(e.fma(tofloat(B.CreateLShr(q, c32(4))), sc[1][static_cast<size_t>(v)], mn[1][static_cast<size_t>(v)]));
            }
            fma_all(l4, 64 * j + u, u, lo);
            fma_all(l4, 64 * j + 32 + u, u, hi);
          }
        }, "l", true);
      }
    } else {
      std::vector<std::vector<Value*>> dsc(16);
      for (int j = 0; j < 16; ++j)
        for (int v = 0; v < V; ++v)
          dsc[static_cast<size_t>(j)].push_back(B.CreateFMul(d[static_cast<size_t>(v)], tofloat(lane_bytes(bp, 2 * P + j * P, v, true))));
      for (int h = 0; h < 2; ++h)
        for (int l16 = 0; l16 < 32; l16 += 16)  // the scale changes at l = 16
        e.loop(e.c64(0), e.c64(16), 4, [&](Value* l4) {
        for (int u = 0; u < 4; ++u) {
          const int l = l16 + u;  // plus l4
          std::vector<Value*> w[4];
          Value* o = B.CreateAdd(e.c64(18 * P + ((h * 32 + l) * 3) * P), B.CreateMul(l4, e.c64(3 * P)));
          for (int v = 0; v < V; ++v) {
            Value* a = lane_bytes_at(bp, o, v, false);
            Value* b = lane_bytes_at(bp, B.CreateAdd(o, e.c64(P)), v, false);
            Value* c = lane_bytes_at(bp, B.CreateAdd(o, e.c64(2 * P)), v, false);
            Value* q[4] = {
                B.CreateOr(B.CreateAnd(a, c32(15)), B.CreateShl(B.CreateAnd(c, c32(3)), c32(4))),
                B.CreateOr(B.CreateAnd(b, c32(15)), B.CreateShl(B.CreateAnd(B.CreateLShr(c, c32(2)), c32(3)), c32(4))),
                B.CreateOr(B.CreateLShr(a, c32(4)), B.CreateShl(B.CreateAnd(B.CreateLShr(c, c32(4)), c32(3)), c32(4))),
                B.CreateOr(B.CreateLShr(b, c32(4)), B.CreateShl(B.CreateLShr(c, c32(6)), c32(4))),
            };
            // Element 128h + 32i + l uses scale 8h + 2i + l/16.
            for (int i = 0; i < 4; ++i)
              w[i].push_back(B.CreateFMul(tofloat(B.CreateSub(q[i], c32(32))), dsc[static_cast<size_t>(8 * h + 2 * i + l / 16)][static_cast<size_t>(v)]));
          }
          for (int i = 0; i < 4; ++i) fma_all(l4, 128 * h + 32 * i + l, u, w[i]);
        }
        }, "l", true);
    }
  }, "sblk");
}

extern const MatMulInnerLoop kMatMulInner_kquant_fma = {"kquant_fma", "q4_k and q6_k weights, f32 activations", [](const MatMulEmitter& m) { return m.kquant_ && !m.int_dots_; },
                                               &MatMulEmitter::emit_kquant_fma};

}  // namespace ingot::matmul
