// The matmul inner loop for q5_0, q4_1, q5_1 and iq4_nl weights, f32 activations (see
// matmul_emitter.h).
#include "codegen/kernels/matmul/matmul_emitter.h"

namespace ingot::matmul {

// Per block the panel's f16 d (q4_1/q5_1: and m), then [k][lanes] int8 quants ready to scale
// (layout.cpp, pack_block32_lane): each weight is dequantized in registers with the reference's
// rounding (q5_0 (q - 16) * d, iq4_nl d * value, q4_1/q5_1 q * d + m: a multiply, then an add),
// then multiplied into the f32 accumulators.
void MatMulEmitter::emit_dequant_fma_b32(int T, Value* wp, Value* t0, const Accs& acc) {
  const int V = L.vectors, P = L.panel_rows;
  const bool has_min = s.weight == ElementType::q4_1 || s.weight == ElementType::q5_1;
  const int64_t blk_bytes = block32_packed_row_bytes(s.weight, false) * P;
  std::vector<Value*> xr;
  for (int t = 0; t < T; ++t) xr.push_back(x_row(t0, t));
  e.loop(e.c64(0), e.c64(nb_), 1, [&](Value* b) {
    Value* bp = e.at(wp, B.CreateMul(b, e.c64(blk_bytes)));
    Value* qp = e.at(bp, (has_min ? 4 : 2) * P);
    prefetch_weights(T, bp, blk_bytes);
    std::vector<Value*> d, m;
    for (int v = 0; v < V; ++v) {
      d.push_back(B.CreateFPExt(e.load(e.vec(e.f16, 8), e.at(bp, v * 16), 2), vf()));
      if (has_min) m.push_back(B.CreateFPExt(e.load(e.vec(e.f16, 8), e.at(bp, 2 * P + v * 16), 2), vf()));
    }
    Value* kb = B.CreateMul(b, e.c64(kQK));
    for (int k = 0; k < kQK; ++k) {
      std::vector<Value*> w;
      for (int v = 0; v < V; ++v) {
        Value* q = B.CreateSIToFP(B.CreateSExt(e.load(e.vec(e.i8, 8), e.at(qp, k * P + v * 8), 1), e.vec(e.i32, 8)), vf());
        Value* x = B.CreateFMul(q, d[static_cast<size_t>(v)]);
        w.push_back(has_min ? B.CreateFAdd(x, m[static_cast<size_t>(v)]) : x);
      }
      for (int t = 0; t < T; ++t) {
        Value* xs = x_splat(xr[static_cast<size_t>(t)], B.CreateAdd(kb, e.c64(k)));
        for (int v = 0; v < V; ++v) fma_into(acc.at(t, v, k % acc.S), w[static_cast<size_t>(v)], xs);
      }
    }
  }, "blk32");
}

extern const MatMulInnerLoop kMatMulInner_dequant_fma_b32 = {
    "dequant_fma_b32", "q5_0, q4_1, q5_1 and iq4_nl weights, f32 activations",
    [](const MatMulEmitter& m) { return m.block32_ && !m.int_dots_; }, &MatMulEmitter::emit_dequant_fma_b32};

}  // namespace ingot::matmul
