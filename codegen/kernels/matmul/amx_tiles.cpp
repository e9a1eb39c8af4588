// The matmul step of the amx tier for 8-bit activations (see matmul_emitter.h): 16 tokens x one
// panel per step. q8_0 and q4_0: every 32-element block's integer dots from one AMX tile multiply
// (tdpbssd), then scaled and added in f32 exactly as q8_row_dot does. q4_k and q6_k (q8_K
// activations): one tile multiply per 32-element sub-block (q6_k: per 16-element half), the
// stored i32 dots multiplied by their integer scales into the super-block's sums, then one f32
// step per super-block, exactly as q8k_row_dot.
// Measured bound (bench/probes/amx_block_scaling.c, docs/benchmarks.md): the per-block tile store
// and the scaling, not the tile multiply, limit this; neither overlaps the other.
// CodegenOptions::emulate_amx replaces the tile instructions by the same arithmetic in plain IR,
// so that hosts without AMX run these steps in tests.
#include "codegen/kernels/matmul/matmul_emitter.h"

namespace ingot::matmul {

namespace {
// Tile registers (the legacy AMX intrinsics name them by immediate): two of each kind, so the
// tile unit works on one block while the vector units scale the previous one.
constexpr int kTileC0 = 0, kTileA0 = 2, kTileB0 = 4;
}  // namespace

// q2_k, q3_k, q5_k, iq4_xs and the 32-element types other than q8_0/q4_0 have no tile step: on
// the amx tier they run the avx512 register tiles (the same numbers).
bool MatMulEmitter::amx_applies() const {
  const ElementType w = s.weight;
  return (tgt.amx || opt.emulate_amx) && int_dots_ && (quant_ || w == ElementType::q4_k || w == ElementType::q6_k);
}

int64_t amx_extra_scratch(const MatMulSpec& s, const MatMulLayout& L) {
  // Two stored C tiles (16 rows of up to 64 bytes), then for 4-bit and 6-bit weights one panel's
  // quants unpacked to bytes (the B tiles of every block).
  int64_t bytes = 2 * kAmxTokens * 64;
  if (s.weight == ElementType::q4_0 || s.weight == ElementType::q4_k || s.weight == ElementType::q6_k) bytes += s.K * L.panel_rows;
  return bytes;
}

void MatMulEmitter::emit_amx_config(Value* rows) {
  const int P = L.panel_rows;
  auto cfg_t = llvm::ArrayType::get(e.i8, 64);
  llvm::AllocaInst* cfg = e.entryB.CreateAlloca(cfg_t);
  cfg->setAlignment(llvm::Align(64));
  B.CreateMemSet(cfg, B.getInt8(0), 64, llvm::MaybeAlign(64));
  e.store(B.getInt8(1), cfg);  // palette 1
  // colsb[t] (u16) at 16 + 2t, rows[t] at 48 + t.
  auto tile = [&](int t, Value* nrows, int colsb) {
    e.store(B.getInt16(static_cast<uint16_t>(colsb)), e.at(cfg, 16 + 2 * t), 2);
    e.store(nrows, e.at(cfg, 48 + t), 1);
  };
  Value* tokens = rows ? B.CreateTrunc(rows, e.i8) : B.getInt8(kAmxTokens);
  const int k = amx_k();
  for (int i = 0; i < 2; ++i) {
    tile(kTileC0 + i, tokens, 4 * P);       // C: 16 (or rows) tokens x P i32
    tile(kTileA0 + i, tokens, k);           // A: 16 (or rows) tokens x k activation bytes
    tile(kTileB0 + i, B.getInt8(static_cast<uint8_t>(k / 4)), 4 * P);  // B: k/4 rows of 4 consecutive elements x P outputs
  }
  if (!amx_emulated()) B.CreateIntrinsic(llvm::Intrinsic::x86_ldtilecfg, {}, {cfg});
}

void MatMulEmitter::emit_amx_release() {
  if (!amx_emulated()) B.CreateIntrinsic(llvm::Intrinsic::x86_tilerelease, {}, {});
}

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

// The emulated tile unit (CodegenOptions::emulate_amx): C tile `slot` lives in a stack buffer;
// C[m][n] = sum over k of A[m][k] * B[k / 4][4 n + k % 4], all signed bytes (tdpbssd).
void MatMulEmitter::emulated_tile_dot(int slot, Value* ap, Value* a_stride, Value* bq) {
  const int P = L.panel_rows, k = amx_k();
  if (!amx_emu_c_[slot]) {
    auto* buf = e.entryB.CreateAlloca(llvm::ArrayType::get(e.i8, static_cast<uint64_t>(kAmxTokens * 4 * P)));
    buf->setAlignment(llvm::Align(64));
    amx_emu_c_[slot] = buf;
  }
  Value* c = amx_emu_c_[slot];
  e.loop(e.c64(0), amx_rows_ ? amx_rows_ : e.c64(kAmxTokens), 1, [&](Value* m) {
    Value* arow = e.at(ap, B.CreateMul(m, a_stride));
    e.loop(e.c64(0), e.c64(P), 1, [&](Value* n) {
      Value* sum = B.getInt32(0);
      for (int kk = 0; kk < k; ++kk) {
        Value* a = B.CreateSExt(e.load(e.i8, e.at(arow, kk), 1), e.i32);
        Value* w = B.CreateSExt(e.load(e.i8, e.at(bq, B.CreateAdd(e.c64((kk / 4) * 4 * P + kk % 4), B.CreateMul(n, e.c64(4)))), 1), e.i32);
        sum = B.CreateAdd(sum, B.CreateMul(a, w));
      }
      e.store(sum, e.at(c, B.CreateMul(B.CreateAdd(B.CreateMul(m, e.c64(P)), n), e.c64(4))), 4);
    }, "amx.emu.n");
  }, "amx.emu.m");
}

// q4_k, q6_k on tiles: per super-block, one tile multiply per sub-block with its own scales
// (q4_k: 32 elements; q6_k: a 16-element half), the stored dots times the scales (i32 multiply)
// added to each token's super-block sum; then q8k_row_dot's f32 step:
// (d * da) * isum [- (dmin * da) * msum], msum from the activation's 32-value sums.
void MatMulEmitter::emit_amx_kquant_steps(Value* p, Value* a0, const std::function<void(int, Value*, Value*)>& tile_dot,
                                          const std::function<Value*(int)>& tile_store,
                                          const std::function<void(int, Value*)>& add_value) {
  const int P = L.panel_rows, T = kAmxTokens;
  const bool q6 = s.weight == ElementType::q6_k;
  auto vP = e.vec(e.f32, static_cast<unsigned>(P));
  auto viP = e.vec(e.i32, static_cast<unsigned>(P));
  auto bytes = e.vec(e.i8, static_cast<unsigned>(P));
  auto halfs = e.vec(e.f16, static_cast<unsigned>(P));
  const int64_t sb_bytes = static_cast<int64_t>(P) * (q6 ? 2 + 16 + 192 : 4 + 16 + 128);
  Value* wp = e.at(w_, B.CreateMul(p, e.c64(L.panel_bytes)));
  std::vector<Value*> isum;
  for (int t = 0; t < T; ++t) isum.push_back(e.var(viP, llvm::Constant::getNullValue(viP)));
  const int steps = q6 ? 16 : 8;  // tile multiplies per super-block
  e.loop(e.c64(0), e.c64(s.K / kQK_K), 1, [&](Value* sb) {
    for (int t = 0; t < T; ++t) e.set(isum[static_cast<size_t>(t)], llvm::Constant::getNullValue(viP));
    Value* bp = e.at(wp, B.CreateMul(sb, e.c64(sb_bytes)));
    // Step i: the A tile (activation bytes of 16 tokens) and the B tile (unpacked quants).
    auto multiply = [&](int i, int slot) {
      const int blk = q6 ? i / 2 : i, half = q6 ? i % 2 : 0;
      Value* b = B.CreateAdd(B.CreateMul(sb, e.c64(8)), e.c64(blk));
      tile_dot(slot, e.at(a0, B.CreateAdd(B.CreateMul(b, e.c64(kQK)), e.c64(16 * half))),
               e.at(amx_b_, B.CreateAdd(B.CreateMul(b, e.c64(8 * 4 * P)), e.c64(half * 4 * 4 * P))));
    };
    // Step i's dots times its scales (q4_k: unsigned bytes at 4P + i P; q6_k: signed at 2P + i P).
    auto add_scaled = [&](int i, int slot) {
      Value* buf = tile_store(slot);
      Value* raw = e.load(bytes, e.at(bp, (q6 ? 2 * P : 4 * P) + i * P), 1);
      Value* sc = q6 ? B.CreateSExt(raw, viP) : B.CreateZExt(raw, viP);
      for (int t = 0; t < T; ++t) {
        Value* dot = e.load(viP, e.at(buf, t * 4 * P), 64);
        e.set(isum[static_cast<size_t>(t)], B.CreateAdd(e.get(viP, isum[static_cast<size_t>(t)]), B.CreateMul(dot, sc)));
      }
    };
    for (int i = 0; i < steps; i += 2) {
      multiply(i, 0);
      multiply(i + 1, 1);
      add_scaled(i, 0);
      add_scaled(i + 1, 1);
    }
    Value* d = B.CreateFPExt(e.load(halfs, bp, 2), vP);
    Value* dmin = q6 ? nullptr : B.CreateFPExt(e.load(halfs, e.at(bp, 2 * P), 2), vP);
    std::vector<Value*> mins;
    if (!q6)
      for (int j = 0; j < 8; ++j) mins.push_back(B.CreateZExt(e.load(bytes, e.at(bp, 12 * P + j * P), 1), viP));
    for (int t = 0; t < T; ++t) {
      Value* row = amx_row(a0, t);
      Value* da = e.splat(e.load(e.f32, q8k_scale_at(row, sb), 4), static_cast<unsigned>(P));
      Value* value = B.CreateFMul(B.CreateFMul(d, da), B.CreateSIToFP(e.get(viP, isum[static_cast<size_t>(t)]), vP));
      if (!q6) {
        Value* msum = nullptr;
        for (int j = 0; j < 8; ++j) {
          Value* as = e.load(e.i16, e.at(row, B.CreateAdd(e.c64(q8k_sums32_offset() + 2 * j), B.CreateMul(sb, e.c64(16)))), 2);
          Value* m = B.CreateMul(mins[static_cast<size_t>(j)], e.splat(B.CreateSExt(as, e.i32), static_cast<unsigned>(P)));
          msum = msum ? B.CreateAdd(msum, m) : m;
        }
        value = B.CreateFSub(value, B.CreateFMul(B.CreateFMul(dmin, da), B.CreateSIToFP(msum, vP)));
      }
      add_value(t, value);
    }
  }, "amx.sblk", true);
}

void MatMulEmitter::emit_amx_tile(Value* p, Value* t0, Value* valid) {
  amx_rows_ = valid;
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
  auto splat = [&](Value* x) { return e.splat(x, static_cast<unsigned>(P)); };
  auto add_value = [&](int t, Value* value) {
    e.set(acc[static_cast<size_t>(t)], B.CreateFAdd(e.get(vP, acc[static_cast<size_t>(t)]), value));
  };

  // C tile `slot` = the A tile at ap (16 token rows of k bytes) times the B tile at bq (k / 4 rows
  // of 4P bytes): the tile unit only.
  auto tile_dot = [&](int slot, Value* ap, Value* bq) {
    if (amx_emulated()) return emulated_tile_dot(slot, ap, a_stride, bq);
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
    if (amx_emulated()) {
      // As tilestored64: the configured rows only.
      Value* n = amx_rows_ ? B.CreateMul(amx_rows_, e.c64(4 * P)) : e.c64(T * 4 * P);
      B.CreateMemCpy(buf, llvm::MaybeAlign(1), amx_emu_c_[slot], llvm::MaybeAlign(64), n);
      return buf;
    }
    B.CreateIntrinsic(llvm::Intrinsic::x86_tilestored64, {}, {B.getInt8(static_cast<uint8_t>(kTileC0 + slot)), buf, b_stride});
    return buf;
  };

  if (kquant_) {
    emit_amx_kquant_steps(p, a0, tile_dot, tile_store, add_value);
  } else {
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
      Value* dw = B.CreateFPExt(e.load(halfs, e.at(wp, B.CreateMul(b, e.c64(block_out_))), 2), vP);
      for (int t = 0; t < T; ++t) {
        Value* dx = e.load(e.f32, e.at(amx_row(a0, t), dxo), 4);
        Value* dot = e.load(viP, e.at(buf, t * 4 * P), 64);
        add_value(t, B.CreateFMul(B.CreateSIToFP(dot, vP), B.CreateFMul(dw, splat(dx))));
      }
    };
    const int64_t pairs = nb_ / 2;
    e.loop(e.c64(0), e.c64(pairs), 1, [&](Value* i) {
      Value* b = B.CreateMul(i, e.c64(2));
      Value* b1 = B.CreateAdd(b, e.c64(1));
      multiply(b, 0);
      multiply(b1, 1);
      scale_add(b, 0);
      scale_add(b1, 1);
    }, "amx.blk", true);
    if (nb_ % 2) {
      multiply(e.c64(nb_ - 1), 0);
      scale_add(e.c64(nb_ - 1), 0);
    }
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
  emit_epilogue(T, p, t0, sums, valid);
  amx_rows_ = nullptr;
}

}  // namespace ingot::matmul
