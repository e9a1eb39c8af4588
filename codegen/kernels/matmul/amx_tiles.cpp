// The matmul step of the amx tier for q8_0, q4_0, q4_k and q6_k weights with q8_0 activations (see
// matmul_emitter.h): 16 tokens x one panel per step, every 32-element block's integer dots from
// one AMX tile multiply (tdpbssd; q6_k: one per 16-element half, each half has its own scale),
// then scaled and added in f32 exactly as q8_row_dot does.
// Measured bound (bench/probes/amx_block_scaling.c, docs/benchmarks.md): the per-block tile store
// and the f32 scaling, not the tile multiply, limit this; neither overlaps the other.
#include "codegen/kernels/matmul/matmul_emitter.h"

namespace ingot::matmul {

namespace {
// Tile registers (the legacy AMX intrinsics name them by immediate): two of each kind, so the
// tile unit works on one block while the vector units scale the previous one.
constexpr int kTileC0 = 0, kTileA0 = 2, kTileB0 = 4;
}  // namespace

// q2_k, q3_k, q5_k, iq4_xs and the 32-element types other than q8_0/q4_0 have no tile step: on the amx tier they run the avx512 register
// tiles (the same numbers).
bool MatMulEmitter::amx_applies() const {
  const ElementType w = s.weight;
  const bool no_tiles = w == ElementType::q5_k || w == ElementType::q3_k || w == ElementType::q2_k || w == ElementType::iq4_xs;
  return tgt.amx && int_dots_ && !no_tiles && !block32_;
}

int64_t amx_extra_scratch(const MatMulSpec& s, const MatMulLayout& L) {
  // Two stored C tiles (16 rows of up to 64 bytes), then for 4-bit weights one panel's quants
  // unpacked to bytes (the B tiles of every block).
  int64_t bytes = 2 * kAmxTokens * 64;
  // q4_1, q5_0, q5_1, iq4_nl have no amx step, so no unpacked panel.
  if (s.weight != ElementType::q8_0 && block32_packed_row_bytes(s.weight, true) == 0) bytes += s.K * L.panel_rows;
  return bytes;
}

void MatMulEmitter::emit_amx_config() {
  const int P = L.panel_rows;
  auto cfg_t = llvm::ArrayType::get(e.i8, 64);
  llvm::AllocaInst* cfg = e.entryB.CreateAlloca(cfg_t);
  cfg->setAlignment(llvm::Align(64));
  B.CreateMemSet(cfg, B.getInt8(0), 64, llvm::MaybeAlign(64));
  e.store(B.getInt8(1), cfg);  // palette 1
  // colsb[t] (u16) at 16 + 2t, rows[t] at 48 + t.
  auto tile = [&](int t, int rows, int colsb) {
    e.store(B.getInt16(static_cast<uint16_t>(colsb)), e.at(cfg, 16 + 2 * t), 2);
    e.store(B.getInt8(static_cast<uint8_t>(rows)), e.at(cfg, 48 + t), 1);
  };
  // q6_k multiplies 16-element halves (K = 16), the others whole 32-element blocks.
  const int k = s.weight == ElementType::q6_k ? kQK / 2 : kQK;
  for (int i = 0; i < 2; ++i) {
    tile(kTileC0 + i, kAmxTokens, 4 * P);  // C: 16 tokens x P i32
    tile(kTileA0 + i, kAmxTokens, k);      // A: 16 tokens x k activation bytes
    tile(kTileB0 + i, k / 4, 4 * P);       // B: k/4 rows of 4 consecutive elements x P outputs
  }
  B.CreateIntrinsic(llvm::Intrinsic::x86_ldtilecfg, {}, {cfg});
}

void MatMulEmitter::emit_amx_release() { B.CreateIntrinsic(llvm::Intrinsic::x86_tilerelease, {}, {}); }

void MatMulEmitter::emit_amx_unpack(Value* p) {
  const int P = L.panel_rows;
  auto v = e.vec(e.i8, static_cast<unsigned>(4 * P));
  Value* wp = e.at(w_, B.CreateMul(p, e.c64(L.panel_bytes)));
  Value* mask = e.splat(B.getInt8(15), 4 * P);
  Value* four = e.splat(B.getInt8(4), 4 * P);
  if (s.weight == ElementType::q4_0) {
    // Block b's B tile at amx_b_ + b * 8 * 4P: rows 0..3 the low nibbles of groups 0..3
    // (elements 0..15), rows 4..7 the high ones (16..31), minus 8: q4_0's signed values, so
    // tdpbssd gives the reference's integer dot directly.
    Value* eight = e.splat(B.getInt8(8), 4 * P);
    e.loop(e.c64(0), e.c64(nb_), 1, [&](Value* b) {
      Value* qp = e.at(e.at(wp, B.CreateMul(b, e.c64(block_out_))), 2 * P);
      Value* dst = e.at(amx_b_, B.CreateMul(b, e.c64(8 * 4 * P)));
      for (int g = 0; g < 4; ++g) {
        Value* raw = e.load(v, e.at(qp, g * 4 * P), 1);
        e.store(B.CreateSub(B.CreateAnd(raw, mask), eight), e.at(dst, g * 4 * P), 1);
        e.store(B.CreateSub(B.CreateLShr(raw, four), eight), e.at(dst, (4 + g) * 4 * P), 1);
      }
    }, "amx.unpack");
    return;
  }
  if (s.weight == ElementType::q6_k) {
    // Block 4h + k of super-block sb, row g: the 6-bit quant from its nibble plane (part k / 2,
    // low or high nibble) and its two high bits (part 2, bits 2k..2k+1), minus 32: signed bytes.
    const int64_t sb_bytes = static_cast<int64_t>(P) * (2 + 16 + 192);
    Value* c30 = e.splat(B.getInt8(0x30), 4 * P);
    Value* c32 = e.splat(B.getInt8(32), 4 * P);
    auto c8 = [&](int n) { return e.splat(B.getInt8(static_cast<uint8_t>(n)), 4 * P); };
    e.loop(e.c64(0), e.c64(s.K / kQK_K), 1, [&](Value* sb) {
      Value* qp = e.at(e.at(wp, B.CreateMul(sb, e.c64(sb_bytes))), 18 * P);
      Value* dst = e.at(amx_b_, B.CreateMul(sb, e.c64(8 * 8 * 4 * P)));
      for (int h = 0; h < 2; ++h)
        for (int g = 0; g < 8; ++g) {
          Value* base = e.at(qp, (h * 8 + g) * 3 * P * 4);
          Value* nib[2] = {e.load(v, base, 1), e.load(v, e.at(base, P * 4), 1)};
          Value* hib = e.load(v, e.at(base, 2 * P * 4), 1);
          for (int k = 0; k < 4; ++k) {
            Value* lo = k % 2 == 0 ? B.CreateAnd(nib[k / 2], mask) : B.CreateLShr(nib[k / 2], four);
            Value* hi2 = k == 0 ? B.CreateShl(hib, c8(4)) : k == 1 ? B.CreateShl(hib, c8(2)) : k == 2 ? hib : B.CreateLShr(hib, c8(2));
            Value* w = B.CreateSub(B.CreateOr(lo, B.CreateAnd(hi2, c30)), c32);
            e.store(w, e.at(dst, ((4 * h + k) * 8 + g) * 4 * P), 1);
          }
        }
    }, "amx.unpack");
    return;
  }
  // q4_k: super-block sb, pair j: group g's low nibbles are row g of sub-block 2j's B tile, the
  // high nibbles row g of 2j + 1's (unsigned 0..15, which tdpbssd reads as the same bytes).
  const int64_t sb_bytes = static_cast<int64_t>(P) * (4 + 16 + 128);
  e.loop(e.c64(0), e.c64(s.K / kQK_K), 1, [&](Value* sb) {
    Value* qp = e.at(e.at(wp, B.CreateMul(sb, e.c64(sb_bytes))), 20 * P);
    Value* dst = e.at(amx_b_, B.CreateMul(sb, e.c64(8 * 8 * 4 * P)));
    for (int j = 0; j < 4; ++j)
      for (int g = 0; g < 8; ++g) {
        Value* raw = e.load(v, e.at(qp, (j * 8 + g) * 4 * P), 1);
        e.store(B.CreateAnd(raw, mask), e.at(dst, ((2 * j) * 8 + g) * 4 * P), 1);
        e.store(B.CreateLShr(raw, four), e.at(dst, ((2 * j + 1) * 8 + g) * 4 * P), 1);
      }
  }, "amx.unpack");
}

void MatMulEmitter::emit_amx_tile(Value* p, Value* t0) {
  const int P = L.panel_rows, T = kAmxTokens;
  auto vP = e.vec(e.f32, static_cast<unsigned>(P));
  auto viP = e.vec(e.i32, static_cast<unsigned>(P));
  std::vector<Value*> acc;
  for (int t = 0; t < T; ++t) acc.push_back(e.var(vP, llvm::Constant::getNullValue(vP)));
  Value* wp = e.at(w_, B.CreateMul(p, e.c64(L.panel_bytes)));
  Value* a0 = e.at(act_, B.CreateMul(t0, e.c64(L.scratch_per_token)));
  Value* a_stride = e.c64(L.scratch_per_token);
  Value* b_stride = e.c64(4 * P);
  auto halfs = e.vec(e.f16, static_cast<unsigned>(P));
  auto bytes = e.vec(e.i8, static_cast<unsigned>(P));
  auto splat = [&](Value* x) { return e.splat(x, static_cast<unsigned>(P)); };
  auto add_value = [&](int t, Value* value) {
    e.set(acc[static_cast<size_t>(t)], B.CreateFAdd(e.get(vP, acc[static_cast<size_t>(t)]), value));
  };

  // C tile `slot` = the A tile at ap (16 token rows) times the B tile at bq (tile unit only).
  auto tile_dot = [&](int slot, Value* ap, Value* bq) {
    const uint8_t c = static_cast<uint8_t>(kTileC0 + slot), a = static_cast<uint8_t>(kTileA0 + slot),
                  w = static_cast<uint8_t>(kTileB0 + slot);
    B.CreateIntrinsic(llvm::Intrinsic::x86_tilezero, {}, {B.getInt8(c)});
    B.CreateIntrinsic(llvm::Intrinsic::x86_tileloadd64, {}, {B.getInt8(a), ap, a_stride});
    B.CreateIntrinsic(llvm::Intrinsic::x86_tileloadd64, {}, {B.getInt8(w), bq, b_stride});
    B.CreateIntrinsic(llvm::Intrinsic::x86_tdpbssd, {}, {B.getInt8(c), B.getInt8(a), B.getInt8(w)});
  };
  // C tile `slot` to this thread's buffer for it (16 rows of P i32); returns the buffer.
  auto tile_store = [&](int slot) {
    Value* buf = e.at(amx_c_, slot * T * 64);
    B.CreateIntrinsic(llvm::Intrinsic::x86_tilestored64, {}, {B.getInt8(static_cast<uint8_t>(kTileC0 + slot)), buf, b_stride});
    return buf;
  };

  // Block b's integer dots into C tile `slot`.
  auto multiply = [&](Value* b, int slot) {
    Value* bq = s.weight != ElementType::q8_0 ? e.at(amx_b_, B.CreateMul(b, e.c64(8 * 4 * P)))
                                              : e.at(e.at(wp, B.CreateMul(b, e.c64(block_out_))), 2 * P);
    tile_dot(slot, e.at(a0, B.CreateMul(b, e.c64(kQK))), bq);
  };
  // Block b's dots, stored from C tile `slot`, scaled and added: the reference's order
  // (q8_row_dot): f32 block value float(dot) * (d_w * d_x), then an f32 add.
  auto scale_add = [&](Value* b, int slot) {
    Value* buf = tile_store(slot);
    Value* dxo = B.CreateAdd(e.c64(s.K), B.CreateMul(b, e.c64(4)));
    if (s.weight != ElementType::q4_k) {
      Value* dw = B.CreateFPExt(e.load(halfs, e.at(wp, B.CreateMul(b, e.c64(block_out_))), 2), vP);
      for (int t = 0; t < T; ++t) {
        Value* dx = e.load(e.f32, e.at(e.at(a0, t * L.scratch_per_token), dxo), 4);
        Value* dot = e.load(viP, e.at(buf, t * 4 * P), 64);
        add_value(t, B.CreateFMul(B.CreateSIToFP(dot, vP), B.CreateFMul(dw, splat(dx))));
      }
      return;
    }
    // q4_k sub-block b % 8 of super-block b / 8: d_a * ((d * sc) * qa - (dmin * m) * sum(a)).
    const int64_t sb_bytes = static_cast<int64_t>(P) * (4 + 16 + 128);
    Value* sub = B.CreateSRem(b, e.c64(8));
    Value* bp = e.at(wp, B.CreateMul(B.CreateSDiv(b, e.c64(8)), e.c64(sb_bytes)));
    Value* d = B.CreateFPExt(e.load(halfs, bp, 2), vP);
    Value* dmin = B.CreateFPExt(e.load(halfs, e.at(bp, 2 * P), 2), vP);
    Value* sc = B.CreateUIToFP(e.load(bytes, e.at(e.at(bp, 4 * P), B.CreateMul(sub, e.c64(P))), 1), vP);
    Value* mn = B.CreateUIToFP(e.load(bytes, e.at(e.at(bp, 12 * P), B.CreateMul(sub, e.c64(P))), 1), vP);
    Value* dl = B.CreateFMul(d, sc);
    Value* ml = B.CreateFMul(dmin, mn);
    Value* so = B.CreateAdd(e.c64(s.K + nb_ * 4), B.CreateMul(b, e.c64(4)));
    for (int t = 0; t < T; ++t) {
      Value* row = e.at(a0, t * L.scratch_per_token);
      Value* da = splat(e.load(e.f32, e.at(row, dxo), 4));
      Value* s8 = e.load(e.i32, e.at(row, so), 4);
      Value* asum = splat(B.CreateSIToFP(B.CreateAShr(s8, B.getInt32(3)), e.f32));
      Value* qa = B.CreateSIToFP(e.load(viP, e.at(buf, t * 4 * P), 64), vP);
      Value* inner = B.CreateFSub(B.CreateFMul(dl, qa), B.CreateFMul(ml, asum));
      add_value(t, B.CreateFMul(da, inner));
    }
  };
  if (s.weight == ElementType::q6_k) {
    // Per block the two 16-element halves in the two tile slots, then
    // d_a * ((d * sc0) * isum0 + (d * sc1) * isum1), the reference's order.
    const int64_t sb_bytes = static_cast<int64_t>(P) * (2 + 16 + 192);
    e.loop(e.c64(0), e.c64(nb_), 1, [&](Value* b) {
      for (int half = 0; half < 2; ++half)
        tile_dot(half, e.at(a0, B.CreateAdd(B.CreateMul(b, e.c64(kQK)), e.c64(16 * half))),
                 e.at(amx_b_, B.CreateAdd(B.CreateMul(b, e.c64(8 * 4 * P)), e.c64(half * 4 * 4 * P))));
      Value* buf[2] = {tile_store(0), tile_store(1)};
      Value* blk = B.CreateSRem(b, e.c64(8));
      Value* bp = e.at(wp, B.CreateMul(B.CreateSDiv(b, e.c64(8)), e.c64(sb_bytes)));
      Value* d = B.CreateFPExt(e.load(halfs, bp, 2), vP);
      Value* dsc[2];
      for (int half = 0; half < 2; ++half) {
        Value* sc = e.at(e.at(bp, 2 * P), B.CreateMul(B.CreateAdd(B.CreateMul(blk, e.c64(2)), e.c64(half)), e.c64(P)));
        dsc[half] = B.CreateFMul(d, B.CreateSIToFP(e.load(bytes, sc, 1), vP));
      }
      Value* dxo = B.CreateAdd(e.c64(s.K), B.CreateMul(b, e.c64(4)));
      for (int t = 0; t < T; ++t) {
        Value* da = splat(e.load(e.f32, e.at(e.at(a0, t * L.scratch_per_token), dxo), 4));
        Value* parts[2];
        for (int half = 0; half < 2; ++half) {
          Value* dot = e.load(viP, e.at(buf[half], t * 4 * P), 64);
          parts[half] = B.CreateFMul(dsc[half], B.CreateSIToFP(dot, vP));
        }
        add_value(t, B.CreateFMul(da, B.CreateFAdd(parts[0], parts[1])));
      }
    }, "amx.blk6", true);
  }
  const int64_t pairs = s.weight == ElementType::q6_k ? 0 : nb_ / 2;
  e.loop(e.c64(0), e.c64(pairs), 1, [&](Value* i) {
    Value* b = B.CreateMul(i, e.c64(2));
    Value* b1 = B.CreateAdd(b, e.c64(1));
    multiply(b, 0);
    multiply(b1, 1);
    scale_add(b, 0);
    scale_add(b1, 1);
  }, "amx.blk", true);
  if (nb_ % 2 && s.weight != ElementType::q6_k) {
    multiply(e.c64(nb_ - 1), 0);
    scale_add(e.c64(nb_ - 1), 0);
  }

  // The epilogue takes 8-lane sums: split each token's P lanes.
  std::vector<std::vector<Value*>> sums(static_cast<size_t>(T));
  for (int t = 0; t < T; ++t) {
    Value* a = e.get(vP, acc[static_cast<size_t>(t)]);
    for (int v = 0; v < L.vectors; ++v) {
      std::vector<int> lanes;
      for (int l = 0; l < 8; ++l) lanes.push_back(8 * v + l);
      sums[static_cast<size_t>(t)].push_back(P == 8 ? a : B.CreateShuffleVector(a, lanes));
    }
  }
  emit_epilogue(T, p, t0, sums);
}

}  // namespace ingot::matmul
