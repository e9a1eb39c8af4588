// The matmul inner loop for q8_0 and q4_0 weights, q8_0 activations (see matmul_emitter.h).
#include "codegen/kernels/matmul/matmul_emitter.h"

namespace ingot::matmul {

// q8_0 / q4_0 weights with q8_0 activations: integer block dots with AVX2's pmaddubsw/pmaddwd, or
// AVX-512 VNNI's vpdpbusd on the avx512 and amx tiers (the same exact integers).
// Packed per block: the panel's f16 scales, then [group][lanes][4 bytes]: one 32-byte load is
// 8 rows x 4 consecutive elements (one 64-byte load the whole 16-row panel), dotted with 4
// activation bytes broadcast to every row.
// A paired tile (wp2_: decoding, the 512-bit form) has twice the vectors, the second half from
// the second panel's block, each with its own chains (the same ones as a single panel's).
void MatMulEmitter::emit_int_dots(int T, Value* wp, Value* t0, const Accs& acc) {
  const int VP = iv_, V = wp2_ ? 2 * iv_ : iv_, P = L.panel_rows, N = il_;
  const size_t TS = static_cast<size_t>(T), VS = static_cast<size_t>(V);
  auto vbytes = e.vec(e.i8, static_cast<unsigned>(4 * N));
  auto c8 = [&](int v) { return e.splat(B.getInt8(static_cast<uint8_t>(v)), static_cast<unsigned>(4 * N)); };
  Value* ones = e.splat(B.getInt16(1), 16);
  const std::vector<Value*> ar = activation_rows(T, t0);
  e.loop(e.c64(0), e.c64(nb_), 1, [&](Value* b) {
    Value* bp = e.at(wp, B.CreateMul(b, e.c64(block_out_)));
    Value* bp2 = wp2_ ? e.at(wp2_, B.CreateMul(b, e.c64(block_out_))) : nullptr;
    prefetch_weights(T, bp, block_out_);
    if (bp2) prefetch_weights(T, bp2, block_out_);
    // Vector v's panel block and its index within that panel.
    auto vblock = [&](int v) { return v < VP ? bp : bp2; };
    auto vquants = [&](int v, int64_t group_offset) {
      return e.at(e.at(vblock(v), 2 * P), group_offset + static_cast<int64_t>(v % VP) * N * 4);
    };
    std::vector<Value*> dw, ab, dx, sx;
    for (int v = 0; v < V; ++v) dw.push_back(f16_lanes(vblock(v), v % VP));
    for (int t = 0; t < T; ++t) {
      Value* a = ar[static_cast<size_t>(t)];
      ab.push_back(e.at(a, B.CreateMul(b, e.c64(32))));
      dx.push_back(e.load(e.f32, e.at(a, B.CreateAdd(e.c64(s.K), B.CreateMul(b, e.c64(4)))), 4));
      sx.push_back(e.load(e.i32, e.at(a, B.CreateAdd(e.c64(s.K + nb_ * 4), B.CreateMul(b, e.c64(4)))), 4));
    }
    auto xbytes = [&](int t, int offset) { return e.bcast32(e.at(ab[static_cast<size_t>(t)], offset), static_cast<unsigned>(N)); };
    std::vector<std::vector<Value*>> isum(TS, std::vector<Value*>(VS, nullptr));
    // Two partial i32 sums (even and odd groups; q4_0: low and high nibbles), so consecutive
    // integer dots do not form one long dependency chain; from 8 tokens on, the tokens' own
    // chains are enough (and a second set would not fit the registers); in a paired tile, from 4
    // tokens on (each token has a chain per panel).
    std::vector<std::vector<Value*>> isum2 = isum;
    const bool split = wp2_ ? T * V < 8 : T < 8;
    // Whether the activation row's per-block offset term (8 * sum(x), or 128 * sum(x) for q8_0
    // with VNNI: emit_quantize_activations) comes off each block's integer sum.
    bool subtract_offset = false;
    if (s.weight == ElementType::q4_0) {
      // Unsigned nibbles (0..15) times signed activations: each pmaddubsw lane is at most
      // 2 * 15 * 127 = 3810, so eight of them still fit in i16; the -8 offset is applied
      // once per block through the activation sum (8 * sum(x)).
      subtract_offset = true;
      for (int gp = 0; gp < 4; ++gp) {
        std::vector<Value*> lo, hi;
        for (int v = 0; v < V; ++v) {
          Value* raw = e.load(vbytes, vquants(v, static_cast<int64_t>(gp) * P * 4), 1);
          lo.push_back(B.CreateAnd(raw, c8(15)));
          hi.push_back(B.CreateLShr(raw, c8(4)));
        }
        for (int t = 0; t < T; ++t) {
          Value* xl = xbytes(t, 4 * gp);
          Value* xh = xbytes(t, 16 + 4 * gp);
          for (int v = 0; v < V; ++v) {
            const size_t ti = static_cast<size_t>(t), vi = static_cast<size_t>(v);
            if (e.vnni) {  // straight to i32: two vpdpbusd
              isum[ti][vi] = e.dot4(isum[ti][vi], lo[vi], xl);
              (split ? isum2 : isum)[ti][vi] = e.dot4((split ? isum2 : isum)[ti][vi], hi[vi], xh);
              continue;
            }
            Value* m = B.CreateAdd(e.maddubs(lo[vi], xl), e.maddubs(hi[vi], xh));
            isum[ti][vi] = isum[ti][vi] ? B.CreateAdd(isum[ti][vi], m) : m;
          }
        }
      }
      if (!e.vnni)
        for (auto& row : isum)
          for (Value*& v : row) v = e.maddwd(v, ones);
    } else if (e.vnni) {
      // Signed weights as unsigned w + 128 (the sign bit flipped, once per weight vector for all
      // tokens): vpdpbusd of (w + 128) and x, then 128 * sum(x) off per block (the activation row
      // holds it). At most 8 * 4 * 255 * 127 in magnitude.
      subtract_offset = true;
      for (int g = 0; g < 8; ++g) {
        std::vector<Value*> wu;
        for (int v = 0; v < V; ++v) wu.push_back(B.CreateXor(e.load(vbytes, vquants(v, static_cast<int64_t>(g) * P * 4), 1), c8(0x80)));
        for (int t = 0; t < T; ++t) {
          Value* xb = xbytes(t, 4 * g);
          for (int v = 0; v < V; ++v) {
            Value*& a32 = (g % 2 && split ? isum2 : isum)[static_cast<size_t>(t)][static_cast<size_t>(v)];
            a32 = e.dot4(a32, wu[static_cast<size_t>(v)], xb);
          }
        }
      }
    } else {
      // Signed weights: |w| (unsigned) times x with w's sign (psignb), then pairs to i32.
      for (int g = 0; g < 8; ++g) {
        std::vector<Value*> raw, aw;
        for (int v = 0; v < V; ++v) {
          raw.push_back(e.load(vbytes, vquants(v, static_cast<int64_t>(g) * P * 4), 1));
          aw.push_back(B.CreateBinaryIntrinsic(llvm::Intrinsic::abs, raw.back(), B.getFalse()));
        }
        for (int t = 0; t < T; ++t) {
          Value* xb = xbytes(t, 4 * g);
          for (int v = 0; v < V; ++v) {
            Value* sg = e.sign8(xb, raw[static_cast<size_t>(v)]);
            Value*& a32 = (g % 2 ? isum2 : isum)[static_cast<size_t>(t)][static_cast<size_t>(v)];
            a32 = e.dot4(a32, aw[static_cast<size_t>(v)], sg);
          }
        }
      }
    }
    for (int t = 0; t < T; ++t)
      for (int v = 0; v < V; ++v) {
        Value*& is = isum[static_cast<size_t>(t)][static_cast<size_t>(v)];
        if (Value* second = isum2[static_cast<size_t>(t)][static_cast<size_t>(v)]) is = B.CreateAdd(is, second);
        if (subtract_offset) is = B.CreateSub(is, e.splat(sx[static_cast<size_t>(t)], static_cast<unsigned>(N)));
      }
    for (int t = 0; t < T; ++t) {
      Value* dxs = e.splat(dx[static_cast<size_t>(t)], static_cast<unsigned>(N));
      for (int v = 0; v < V; ++v) {
        // The reference's order (q8_row_dot): f32 block value, then an f32 add (no fused multiply-add).
        Value* scale = B.CreateFMul(dw[static_cast<size_t>(v)], dxs);
        Value* value = B.CreateFMul(B.CreateSIToFP(isum[static_cast<size_t>(t)][static_cast<size_t>(v)], vfi()), scale);
        add_block_value(acc.at(t, v, 0), value);
      }
    }
  }, "blk");
}

extern const MatMulInnerLoop kMatMulInner_int_dots = {"int_dots", "q8_0 and q4_0 weights, q8_0 activations", [](const MatMulEmitter& m) { return m.int_dots_ && m.quant_; },
                                               &MatMulEmitter::emit_int_dots};

}  // namespace ingot::matmul
