// The matmul inner loop for f32, f16 and bf16 weights, f32 activations (see matmul_emitter.h).
#include "codegen/kernels/matmul/matmul_emitter.h"

namespace ingot::matmul {

// f32 / f16 / bf16 weights: [k][panel_rows] vectors; acc[t][v] += w[k][v] * x[t][k], with vectors
// of acc.W lanes (16 on AVX-512: each lane still one output's chain in k order). bf16 widens to
// f32 exactly by a shift left of 16 bits. A paired tile (wp2_) has twice the vectors: the second
// half from the second panel.
void MatMulEmitter::emit_float_fma(int T, Value* wp, Value* t0, const Accs& acc) {
  const int V = acc.V;
  const int VP = wp2_ ? V / 2 : V;  // vectors of one panel
  const unsigned W = static_cast<unsigned>(acc.W);
  const int es = s.weight == ElementType::f32 ? 4 : 2;
  std::vector<Value*> xr;
  for (int t = 0; t < T; ++t) xr.push_back(x_row(t0, t));
  auto step = [&](Value* k, int split) {
    std::vector<Value*> wv;
    for (int v = 0; v < V; ++v) {
      Value* wk = e.at(v < VP ? wp : wp2_, B.CreateMul(k, e.c64(static_cast<int64_t>(L.panel_rows) * es)));
      const int vv = v % VP;
      if (es == 4) {
        wv.push_back(e.load(e.vec(e.f32, W), e.at(wk, vv * W * 4), 4));
      } else if (s.weight == ElementType::bf16) {
        Value* raw = B.CreateZExt(e.load(e.vec(e.i16, W), e.at(wk, vv * W * 2), 2), e.vec(e.i32, W));
        wv.push_back(B.CreateBitCast(B.CreateShl(raw, e.splat(B.getInt32(16), W)), e.vec(e.f32, W)));
      } else {
        wv.push_back(B.CreateFPExt(e.load(e.vec(e.f16, W), e.at(wk, vv * W * 2), 2), e.vec(e.f32, W)));
      }
    }
    for (int t = 0; t < T; ++t) {
      Value* xs = x_splat(xr[static_cast<size_t>(t)], k, W);
      for (int v = 0; v < V; ++v) fma_into(acc.at(t, v, split % acc.S), wv[static_cast<size_t>(v)], xs);
    }
  };
  const int U = 4;
  const int64_t main = s.K / U * U;
  e.loop(e.c64(0), e.c64(main), U, [&](Value* k) {
    for (Value* w : {wp, wp2_})
      if (w) prefetch_weights(T, e.at(w, B.CreateMul(k, e.c64(static_cast<int64_t>(L.panel_rows) * es))), U * L.panel_rows * es);
    for (int u = 0; u < U; ++u) step(B.CreateAdd(k, e.c64(u)), u);
  }, "k");
  for (int64_t k = main; k < s.K; ++k) step(e.c64(k), static_cast<int>(k));
}

extern const MatMulInnerLoop kMatMulInner_float_fma = {"float_fma", "f32, f16 and bf16 weights, f32 activations", [](const MatMulEmitter& m) { return m.float_weights(); },
                                               &MatMulEmitter::emit_float_fma};

}  // namespace ingot::matmul
