// The matmul inner loop for q8_0 and q4_0 weights, f32 activations (see matmul_emitter.h).
#include "codegen/kernels/matmul/matmul_emitter.h"

namespace ingot::matmul {

// q8_0 / q4_0 weights with f32 activations: per block the panel's scales, then [k][lanes] bytes
// (q4_0: the low nibble is element k, the high one k + 16); dequantized in registers.
void MatMulEmitter::emit_dequant_fma(int T, Value* wp, Value* t0, const Accs& acc) {
  const int V = L.vectors, P = L.panel_rows;
  std::vector<Value*> xr;
  for (int t = 0; t < T; ++t) xr.push_back(x_row(t0, t));
  e.loop(e.c64(0), e.c64(nb_), 1, [&](Value* b) {
    Value* bp = e.at(wp, B.CreateMul(b, e.c64(block_out_)));
    std::vector<Value*> sc, m8;
    for (int v = 0; v < V; ++v) {
      sc.push_back(B.CreateFPExt(e.load(e.vec(e.f16, 8), e.at(bp, v * 16), 2), vf()));
      m8.push_back(B.CreateFMul(sc.back(), e.splat(e.cf(-8.0f))));
    }
    Value* kb = B.CreateMul(b, e.c64(kQK));
    auto fma_all = [&](int64_t k, const std::vector<Value*>& wv) {
      for (int t = 0; t < T; ++t) {
        Value* xs = x_splat(xr[static_cast<size_t>(t)], B.CreateAdd(kb, e.c64(k)));
        for (int v = 0; v < V; ++v) fma_into(acc.at(t, v, static_cast<int>(k % acc.S)), wv[static_cast<size_t>(v)], xs);
      }
    };
    for (int kk = 0; kk < qb_; ++kk) {
      std::vector<Value*> lo, hi;
      for (int v = 0; v < V; ++v) {
        Value* bytes = e.load(e.vec(e.i8, 8), e.at(bp, 2 * P + kk * P + v * 8), 1);
        if (s.weight == ElementType::q8_0) {
          lo.push_back(B.CreateFMul(B.CreateSIToFP(B.CreateSExt(bytes, e.vec(e.i32, 8)), vf()), sc[static_cast<size_t>(v)]));
        } else {
          Value* w32 = B.CreateZExt(bytes, e.vec(e.i32, 8));
          Value* l4 = B.CreateAnd(w32, e.splat(B.getInt32(15)));
          Value* h4 = B.CreateLShr(w32, e.splat(B.getInt32(4)));
          // (q - 8) * d, rounded once, as the reference dequantization.
          lo.push_back(e.fma(B.CreateSIToFP(l4, vf()), sc[static_cast<size_t>(v)], m8[static_cast<size_t>(v)]));
          hi.push_back(e.fma(B.CreateSIToFP(h4, vf()), sc[static_cast<size_t>(v)], m8[static_cast<size_t>(v)]));
        }
      }
      fma_all(kk, lo);
      if (!hi.empty()) fma_all(kk + 16, hi);
    }
  }, "blk");
}

extern const MatMulInnerLoop kMatMulInner_dequant_fma = {"dequant_fma", "q8_0 and q4_0 weights, f32 activations", [](const MatMulEmitter& m) { return m.quant_ && !m.int_dots_; },
                                               &MatMulEmitter::emit_dequant_fma};

}  // namespace ingot::matmul
