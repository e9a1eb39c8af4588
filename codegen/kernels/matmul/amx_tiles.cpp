// The matmul step of the amx tier for q8_0 and q4_0 weights with q8_0 activations (see
// matmul_emitter.h): 16 tokens x one panel per step, every 32-element block's integer dots from
// one AMX tile multiply (tdpbssd), then scaled and added in f32 exactly as q8_row_dot does.
// Measured bound (bench/probes/amx_block_scaling.c, docs/benchmarks.md): the per-block tile store
// and the f32 scaling, not the tile multiply, limit this; neither overlaps the other.
// The k-quants (q8_K activations, integer scales per sub-block, one f32 step per super-block)
// have no tile step yet: on the amx tier they run the avx512 register tiles.
#include "codegen/kernels/matmul/matmul_emitter.h"

namespace ingot::matmul {

namespace {
// Tile registers (the legacy AMX intrinsics name them by immediate): two of each kind, so the
// tile unit works on one block while the vector units scale the previous one.
constexpr int kTileC0 = 0, kTileA0 = 2, kTileB0 = 4;
}  // namespace

// Only q8_0 and q4_0 have a tile step; the others run the avx512 register tiles on the amx tier
// (the same numbers).
bool MatMulEmitter::amx_applies() const {
  return tgt.amx && int_dots_ && quant_;
}

int64_t amx_extra_scratch(const MatMulSpec& s, const MatMulLayout& L) {
  // Two stored C tiles (16 rows of up to 64 bytes), then for q4_0 one panel's quants unpacked
  // to bytes (the B tiles of every block).
  int64_t bytes = 2 * kAmxTokens * 64;
  if (s.weight == ElementType::q4_0) bytes += s.K * L.panel_rows;
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
  const int k = kQK;
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
  INGOT_ASSERT(s.weight == ElementType::q4_0, "amx unpack: only q4_0 weights are unpacked");
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
    Value* dw = B.CreateFPExt(e.load(halfs, e.at(wp, B.CreateMul(b, e.c64(block_out_))), 2), vP);
    for (int t = 0; t < T; ++t) {
      Value* dx = e.load(e.f32, e.at(e.at(a0, t * L.scratch_per_token), dxo), 4);
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
