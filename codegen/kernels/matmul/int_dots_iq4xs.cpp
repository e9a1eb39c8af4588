// The matmul inner loop for iq4_xs weights, q8_K activations (see matmul_emitter.h).
#include "codegen/kernels/matmul/matmul_emitter.h"

namespace ingot::matmul {

// iq4_xs weights with q8_K activations: per super-block the panel's d (f16) and the eight
// blocks' signed scales (ls - 32), then [j][group][lanes][4 bytes] of 4-bit indices into ggml's
// kvalues_iq4nl (low nibble: block 2j, high: 2j + 1; layout.cpp). The indices become the signed
// int8 values with one byte shuffle (pshufb, the 16-entry table in both 128-bit lanes); |w|
// (unsigned) times x with w's sign (psignb) through pmaddubsw (a pair is at most 2 * 127 * 127 =
// 32258, within i16) and pmaddwd per group, or vpdpbusd; each block's i32 sum times its scale
// into the super-block's (at most 8 * 32 * 32 * 127 * 127); one f32 step per super-block
// (q8k_row_dot): (d * da) * isum.
void MatMulEmitter::emit_int_dots_iq4xs(int T, Value* wp, Value* t0, const Accs& acc) {
  const int V = L.vectors, P = L.panel_rows;
  auto v32i8 = e.vec(e.i8, 32);
  auto c8 = [&](int v) { return e.splat(B.getInt8(static_cast<uint8_t>(v)), 32); };
  std::vector<llvm::Constant*> entries;
  for (int i = 0; i < 32; ++i) entries.push_back(B.getInt8(static_cast<uint8_t>(kIq4nlValues[i % 16])));
  Value* table = llvm::ConstantVector::get(entries);
  // The table value of each index byte (0..15).
  auto lookup = [&](Value* idx) -> Value* {
    if (e.avx2) return e.x86(llvm::Intrinsic::x86_avx2_pshuf_b, table, idx);
    if (e.ssse3) return e.by_halves(llvm::Intrinsic::x86_ssse3_pshuf_b_128, table, idx);
    Value* out = c8(kIq4nlValues[0]);
    for (int i = 1; i < 16; ++i) out = B.CreateSelect(B.CreateICmpEQ(idx, c8(i)), c8(kIq4nlValues[i]), out);
    return out;
  };
  const std::vector<Value*> ar = activation_rows(T, t0);
  const int64_t sb_bytes = static_cast<int64_t>(P) * (2 + 8 + 128);
  e.loop(e.c64(0), e.c64(s.K / kQK_K), 1, [&](Value* sb) {
    Value* bp = e.at(wp, B.CreateMul(sb, e.c64(sb_bytes)));
    Value* qp = e.at(bp, 10 * P);
    std::vector<Value*> d;
    for (int v = 0; v < V; ++v) d.push_back(B.CreateFPExt(e.load(e.vec(e.f16, 8), e.at(bp, v * 16), 2), vf()));
    SuperSums sums = super_sums(T);
    for (int j = 0; j < 4; ++j) {
      prefetch_weights_part(T, bp, sb_bytes, j, 4);
      // isum[half][t][v]: half 0 = block 2j (low nibbles), 1 = 2j + 1 (high nibbles).
      std::vector<std::vector<std::vector<Value*>>> isum(2, std::vector<std::vector<Value*>>(
                                                                static_cast<size_t>(T), std::vector<Value*>(static_cast<size_t>(V), nullptr)));
      for (int g = 0; g < 8; ++g) {
        std::vector<Value*> w[2], aw[2];
        for (int v = 0; v < V; ++v) {
          Value* raw = e.load(v32i8, e.at(qp, ((j * 8 + g) * P + v * 8) * 4), 1);
          w[0].push_back(lookup(B.CreateAnd(raw, c8(15))));
          w[1].push_back(lookup(B.CreateLShr(raw, c8(4))));
          for (int half = 0; half < 2; ++half)
            aw[half].push_back(B.CreateBinaryIntrinsic(llvm::Intrinsic::abs, w[half].back(), B.getFalse()));
        }
        for (int t = 0; t < T; ++t) {
          Value* a = ar[static_cast<size_t>(t)];
          for (int half = 0; half < 2; ++half) {
            Value* xb = e.bcast32(q8k_byte_at(a, sb, 2 * j + half, 4 * g));
            for (int v = 0; v < V; ++v) {
              Value*& s32 = isum[static_cast<size_t>(half)][static_cast<size_t>(t)][static_cast<size_t>(v)];
              s32 = e.dot4(s32, aw[half][static_cast<size_t>(v)], e.sign8(xb, w[half][static_cast<size_t>(v)]));
            }
          }
        }
      }
      for (int half = 0; half < 2; ++half)
        for (int t = 0; t < T; ++t)
          for (int v = 0; v < V; ++v)
            add_scaled(sums[static_cast<size_t>(t)][static_cast<size_t>(v)], isum[static_cast<size_t>(half)][static_cast<size_t>(t)][static_cast<size_t>(v)],
                       false, e.at(bp, 2 * P + (2 * j + half) * P + v * 8), true);
    }
    add_super_block_values(ar, sb, d, nullptr, sums, nullptr, acc);
  }, "sblkiq4");
}

extern const MatMulInnerLoop kMatMulInner_int_dots_iq4xs = {"int_dots_iq4xs", "iq4_xs weights, q8_K activations", [](const MatMulEmitter& m) { return m.int_dots_ && m.s.weight == ElementType::iq4_xs; },
                                               &MatMulEmitter::emit_int_dots_iq4xs};

}  // namespace ingot::matmul
