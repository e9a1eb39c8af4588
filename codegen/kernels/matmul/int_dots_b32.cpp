// The matmul inner loop for q5_0, q4_1, q5_1 and iq4_nl weights, q8_0 activations (see
// matmul_emitter.h).
#include "codegen/kernels/matmul/matmul_emitter.h"

namespace ingot::matmul {

namespace {

// pshufb: byte i of `table` (16 bytes, repeated in both 128-bit halves) at index idx[i] (0..15).
Value* lookup16(Emitter& e, Value* table, Value* idx) {
  if (e.avx2) return e.x86(llvm::Intrinsic::x86_avx2_pshuf_b, table, idx);
  if (e.ssse3) return e.by_halves(llvm::Intrinsic::x86_ssse3_pshuf_b_128, table, idx);
  Value* out = llvm::Constant::getNullValue(idx->getType());
  for (int i = 0; i < 16; ++i) {
    Value* entry = e.splat(e.B.CreateExtractElement(table, static_cast<uint64_t>(i)), 32);
    out = e.B.CreateSelect(e.B.CreateICmpEQ(idx, e.splat(e.B.getInt8(static_cast<uint8_t>(i)), 32)), entry, out);
  }
  return out;
}

}  // namespace

// 32-element blocks with q8_0 activations (the format of every 32-element block type). Packed per block
// (layout.cpp, pack_block32_lane): the panel's f16 d (and q4_1/q5_1 f16 m), the nibbles as q4_0's
// ([group][lanes][4 bytes]: one 32-byte load is 8 rows x 4 elements, low nibbles elements 4g..,
// high ones 16 + 4g..), for q5_0/q5_1 one byte of fifth bits per group and row. Integer dots:
//   q5_0, q4_1, q5_1: unsigned quants (0..31) times signed activations (pmaddubsw, or vpdpbusd
//     with VNNI); q5_0's -16 offset comes off once per block as 16 * sum(x) = 2 * (8 * sum(x))
//     from the activation row. In i16, eight pmaddubsw lanes of 4-bit quants stay below
//     8 * 2 * 15 * 127 = 30480 and four of 5-bit ones below 4 * 2 * 31 * 127 = 31496, so 5-bit
//     quants go to i32 (pmaddwd) every two groups.
//   iq4_nl: the indices look up kIq4nlValues (pshufb). AVX2: |w| (unsigned) times x with w's sign
//     (psignb), each group to i32 at once (a pair is at most 2 * 127 * 127); VNNI: w + 128
//     (unsigned, 1..241) looked up directly, then 128 * sum(x) = 16 * (8 * sum(x)) subtracted.
// Each block then adds its f32 value in the reference's order (q8_row_dot): float(isum) * (d * da),
// or for q4_1/q5_1 (d * da) * float(isum) + m * (da * float(sum(x))).
void MatMulEmitter::emit_int_dots_b32(int T, Value* wp, Value* t0, const Accs& acc) {
  const int V = L.vectors, P = L.panel_rows;
  const ElementType wt = s.weight;
  const bool has_min = wt == ElementType::q4_1 || wt == ElementType::q5_1;
  const bool five = wt == ElementType::q5_0 || wt == ElementType::q5_1;
  const bool iq4 = wt == ElementType::iq4_nl;
  const int64_t row_bytes = block32_packed_row_bytes(wt, true);
  const int64_t blk_bytes = row_bytes * P;
  auto v32i8 = e.vec(e.i8, 32);
  auto v8i32 = e.vec(e.i32, 8);
  Value* ones = e.splat(B.getInt16(1), 16);
  auto c8 = [&](int v) { return e.splat(B.getInt8(static_cast<uint8_t>(v)), 32); };
  auto c32 = [&](uint32_t v) { return e.splat(B.getInt32(v)); };
  Value* table = nullptr;
  if (iq4) {
    std::vector<llvm::Constant*> t;
    for (int h = 0; h < 2; ++h)
      for (int i = 0; i < 16; ++i) t.push_back(B.getInt8(static_cast<uint8_t>(kIq4nlValues[i] + (e.vnni ? 128 : 0))));
    table = llvm::ConstantVector::get(t);
  }
  const std::vector<Value*> ar = activation_rows(T, t0);
  const size_t TS = static_cast<size_t>(T), VS = static_cast<size_t>(V);
  e.loop(e.c64(0), e.c64(nb_), 1, [&](Value* b) {
    Value* bp = e.at(wp, B.CreateMul(b, e.c64(blk_bytes)));
    Value* qp = e.at(bp, (has_min ? 4 : 2) * P);
    Value* hp = e.at(qp, 16 * P);
    prefetch_weights(T, bp, blk_bytes);
    std::vector<Value*> dw, mw, ab, dx, sx;
    for (int v = 0; v < V; ++v) {
      dw.push_back(B.CreateFPExt(e.load(e.vec(e.f16, 8), e.at(bp, v * 16), 2), vf()));
      if (has_min) mw.push_back(B.CreateFPExt(e.load(e.vec(e.f16, 8), e.at(bp, 2 * P + v * 16), 2), vf()));
    }
    for (int t = 0; t < T; ++t) {
      Value* a = ar[static_cast<size_t>(t)];
      ab.push_back(e.at(a, B.CreateMul(b, e.c64(32))));
      dx.push_back(e.load(e.f32, e.at(a, B.CreateAdd(e.c64(s.K), B.CreateMul(b, e.c64(4)))), 4));
      sx.push_back(e.load(e.i32, e.at(a, B.CreateAdd(e.c64(s.K + nb_ * 4), B.CreateMul(b, e.c64(4)))), 4));
    }
    // i32 sums of the block, and (AVX2, unsigned quants) the open i16 sums.
    std::vector<std::vector<Value*>> isum(TS, std::vector<Value*>(VS, nullptr)), i16sum = isum;
    auto close16 = [&] {
      for (size_t t = 0; t < TS; ++t)
        for (size_t v = 0; v < VS; ++v) {
          if (!i16sum[t][v]) continue;
          Value* w = e.maddwd(i16sum[t][v], ones);
          isum[t][v] = isum[t][v] ? B.CreateAdd(isum[t][v], w) : w;
          i16sum[t][v] = nullptr;
        }
    };
    for (int g = 0; g < 4; ++g) {
      std::vector<Value*> lo, hi;
      for (int v = 0; v < V; ++v) {
        Value* raw = e.load(v32i8, e.at(qp, (g * P + v * 8) * 4), 1);
        Value* l = B.CreateAnd(raw, c8(15));
        Value* h = B.CreateLShr(raw, c8(4));
        if (five) {
          // Row byte bits i and 4 + i to bit 4 of byte i of the row's dword: hb | hb << 7 |
          // hb << 14 | hb << 21 puts bit i at bit 8i (times 7i) and bit 4 + i at bit 8i + 4.
          Value* hb = B.CreateZExt(e.load(e.vec(e.i8, 8), e.at(hp, g * P + v * 8), 1), v8i32);
          Value* spread = hb;
          for (int k = 1; k < 4; ++k) spread = B.CreateOr(spread, B.CreateShl(hb, c32(static_cast<uint32_t>(7 * k))));
          Value* hi5 = B.CreateBitCast(B.CreateAnd(spread, c32(0x10101010u)), v32i8);
          Value* lo5 = B.CreateBitCast(B.CreateAnd(B.CreateShl(spread, c32(4)), c32(0x10101010u)), v32i8);
          l = B.CreateOr(l, lo5);
          h = B.CreateOr(h, hi5);
        }
        if (iq4) {
          l = lookup16(e, table, l);
          h = lookup16(e, table, h);
        }
        lo.push_back(l);
        hi.push_back(h);
      }
      for (int t = 0; t < T; ++t) {
        Value* xl = e.bcast32(e.at(ab[static_cast<size_t>(t)], 4 * g));
        Value* xh = e.bcast32(e.at(ab[static_cast<size_t>(t)], 16 + 4 * g));
        for (int v = 0; v < V; ++v) {
          Value*& a32 = isum[static_cast<size_t>(t)][static_cast<size_t>(v)];
          Value* wl = lo[static_cast<size_t>(v)];
          Value* wh = hi[static_cast<size_t>(v)];
          if (e.vnni) {  // unsigned quants (iq4_nl: offset by 128) straight to i32
            a32 = e.dot4(e.dot4(a32, wl, xl), wh, xh);
            continue;
          }
          if (iq4) {
            a32 = e.dot4(a32, B.CreateBinaryIntrinsic(llvm::Intrinsic::abs, wl, B.getFalse()), e.sign8(xl, wl));
            a32 = e.dot4(a32, B.CreateBinaryIntrinsic(llvm::Intrinsic::abs, wh, B.getFalse()), e.sign8(xh, wh));
            continue;
          }
          Value*& a16 = i16sum[static_cast<size_t>(t)][static_cast<size_t>(v)];
          Value* m = B.CreateAdd(e.maddubs(wl, xl), e.maddubs(wh, xh));
          a16 = a16 ? B.CreateAdd(a16, m) : m;
        }
      }
      if (five && g % 2 == 1) close16();
    }
    close16();
    for (int t = 0; t < T; ++t) {
      Value* dxs = e.splat(dx[static_cast<size_t>(t)]);
      Value* s8 = sx[static_cast<size_t>(t)];
      // The offset of the integer dots, in multiples of 8 * sum(x).
      const int offset8 = wt == ElementType::q5_0 ? 2 : iq4 && e.vnni ? 16 : 0;
      Value* off = offset8 ? e.splat(B.CreateMul(s8, B.getInt32(static_cast<uint32_t>(offset8)))) : nullptr;
      Value* msum = nullptr;
      if (has_min) msum = B.CreateFMul(dxs, e.splat(B.CreateSIToFP(B.CreateAShr(s8, B.getInt32(3)), e.f32)));
      for (int v = 0; v < V; ++v) {
        Value* is = isum[static_cast<size_t>(t)][static_cast<size_t>(v)];
        if (off) is = B.CreateSub(is, off);
        // The reference's order (q8_row_dot): f32 block value, then an f32 add (no fused multiply-add).
        Value* scale = B.CreateFMul(dw[static_cast<size_t>(v)], dxs);
        Value* qf = B.CreateSIToFP(is, vf());
        Value* value = has_min ? B.CreateFAdd(B.CreateFMul(scale, qf), B.CreateFMul(mw[static_cast<size_t>(v)], msum))
                               : B.CreateFMul(qf, scale);
        add_block_value(acc.at(t, v, 0), value);
      }
    }
  }, "blk32");
}

extern const MatMulInnerLoop kMatMulInner_int_dots_b32 = {
    "int_dots_b32", "q5_0, q4_1, q5_1 and iq4_nl weights, q8_0 activations",
    [](const MatMulEmitter& m) { return m.int_dots_ && m.block32_; }, &MatMulEmitter::emit_int_dots_b32};

}  // namespace ingot::matmul
