// The matmul inner loop for q8_0 and q4_0 weights, q8_0 activations (see matmul_emitter.h).
#include "codegen/kernels/matmul/matmul_emitter.h"

namespace ingot::matmul {

// q8_0 / q4_0 weights with q8_0 activations: integer block dots with AVX2's pmaddubsw/pmaddwd, or
// AVX-512 VNNI's vpdpbusd on the avx512 tier (the same exact integers).
// Packed per block: the panel's f16 scales, then [group][lanes][4 bytes]: one 32-byte load is
// 8 rows x 4 consecutive elements, dotted with 4 activation bytes broadcast to every row.
void MatMulEmitter::emit_int_dots(int T, Value* wp, Value* t0, const Accs& acc) {
  const int V = L.vectors, P = L.panel_rows;
  auto v32i8 = e.vec(e.i8, 32);
  auto v16i16 = e.vec(e.i16, 16);
  auto v8i32 = e.vec(e.i32, 8);
  Value* ones = e.splat(B.getInt16(1), 16);
  const std::vector<Value*> ar = activation_rows(T, t0);
  e.loop(e.c64(0), e.c64(nb_), 1, [&](Value* b) {
    Value* bp = e.at(wp, B.CreateMul(b, e.c64(block_out_)));
    Value* qp = e.at(bp, 2 * P);
    prefetch_weights(T, bp, block_out_);
    std::vector<Value*> dw, ab, dx, sx;
    for (int v = 0; v < V; ++v) dw.push_back(B.CreateFPExt(e.load(e.vec(e.f16, 8), e.at(bp, v * 16), 2), vf()));
    for (int t = 0; t < T; ++t) {
      Value* a = ar[static_cast<size_t>(t)];
      ab.push_back(e.at(a, B.CreateMul(b, e.c64(32))));
      dx.push_back(e.load(e.f32, e.at(a, B.CreateAdd(e.c64(s.K), B.CreateMul(b, e.c64(4)))), 4));
      sx.push_back(e.load(e.i32, e.at(a, B.CreateAdd(e.c64(s.K + nb_ * 4), B.CreateMul(b, e.c64(4)))), 4));
    }
    std::vector<std::vector<Value*>> isum(static_cast<size_t>(T), std::vector<Value*>(static_cast<size_t>(V), nullptr));
    // q8_0: two partial i32 sums (even and odd groups), so consecutive pmaddwd + add (or a
    // fused vpdpwssd) do not form one long dependency chain.
    std::vector<std::vector<Value*>> isum2 = isum;
    if (s.weight == ElementType::q4_0) {
      // Unsigned nibbles (0..15) times signed activations: each pmaddubsw lane is at most
      // 2 * 15 * 127 = 3810, so eight of them still fit in i16; the -8 offset is applied
      // once per block through the activation sum (8 * sum(x)).
      for (int gp = 0; gp < 4; ++gp) {
        std::vector<Value*> lo, hi;
        for (int v = 0; v < V; ++v) {
          Value* raw = e.load(v32i8, e.at(qp, (gp * P + v * 8) * 4), 1);
          lo.push_back(B.CreateAnd(raw, e.splat(B.getInt8(15), 32)));
          hi.push_back(B.CreateLShr(raw, e.splat(B.getInt8(4), 32)));
        }
        for (int t = 0; t < T; ++t) {
          Value* xl = e.bcast32(e.at(ab[static_cast<size_t>(t)], 4 * gp));
          Value* xh = e.bcast32(e.at(ab[static_cast<size_t>(t)], 16 + 4 * gp));
          for (int v = 0; v < V; ++v) {
            Value*& acc = isum[static_cast<size_t>(t)][static_cast<size_t>(v)];
            if (e.vnni) {  // straight to i32: two vpdpbusd
              acc = e.dot4(e.dot4(acc, lo[static_cast<size_t>(v)], xl), hi[static_cast<size_t>(v)], xh);
              continue;
            }
            Value* m = B.CreateAdd(e.maddubs(lo[static_cast<size_t>(v)], xl),
                                   e.maddubs(hi[static_cast<size_t>(v)], xh));
            acc = acc ? B.CreateAdd(acc, m) : m;
          }
        }
      }
      for (int t = 0; t < T; ++t)
        for (int v = 0; v < V; ++v) {
          Value*& s = isum[static_cast<size_t>(t)][static_cast<size_t>(v)];
          s = B.CreateSub(e.vnni ? s : e.maddwd(s, ones), e.splat(sx[static_cast<size_t>(t)]));
        }
    } else {
      // Signed weights: |w| (unsigned) times x with w's sign (psignb), then pairs to i32.
      (void)v16i16;
      for (int g = 0; g < 8; ++g) {
        std::vector<Value*> raw, aw;
        for (int v = 0; v < V; ++v) {
          raw.push_back(e.load(v32i8, e.at(qp, (g * P + v * 8) * 4), 1));
          aw.push_back(B.CreateBinaryIntrinsic(llvm::Intrinsic::abs, raw.back(), B.getFalse()));
        }
        for (int t = 0; t < T; ++t) {
          Value* xb = e.bcast32(e.at(ab[static_cast<size_t>(t)], 4 * g));
          for (int v = 0; v < V; ++v) {
            Value* sg = e.sign8(xb, raw[static_cast<size_t>(v)]);
            Value*& a32 = (g % 2 ? isum2 : isum)[static_cast<size_t>(t)][static_cast<size_t>(v)];
            a32 = e.dot4(a32, aw[static_cast<size_t>(v)], sg);
          }
        }
      }
      for (int t = 0; t < T; ++t)
        for (int v = 0; v < V; ++v)
          isum[static_cast<size_t>(t)][static_cast<size_t>(v)] =
              B.CreateAdd(isum[static_cast<size_t>(t)][static_cast<size_t>(v)], isum2[static_cast<size_t>(t)][static_cast<size_t>(v)]);
    }
    (void)v8i32;
    for (int t = 0; t < T; ++t) {
      Value* dxs = e.splat(dx[static_cast<size_t>(t)]);
      for (int v = 0; v < V; ++v) {
        // The reference's order (q8_row_dot): f32 block value, then an f32 add (no fused multiply-add).
        Value* scale = B.CreateFMul(dw[static_cast<size_t>(v)], dxs);
        Value* value = B.CreateFMul(B.CreateSIToFP(isum[static_cast<size_t>(t)][static_cast<size_t>(v)], vf()), scale);
        add_block_value(acc.at(t, v, 0), value);
      }
    }
  }, "blk");
}

extern const MatMulInnerLoop kMatMulInner_int_dots = {"int_dots", "q8_0 and q4_0 weights, q8_0 activations", [](const MatMulEmitter& m) { return m.int_dots_ && m.quant_; },
                                               &MatMulEmitter::emit_int_dots};

}  // namespace ingot::matmul
