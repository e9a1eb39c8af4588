// The matmul kernel family (WeightMatMul, FusedMatMul): spec, arguments, packed weights, and the
// driver of its emitter; the inner loops are one file each in kernels/matmul/, chosen from
// kMatMulInnerLoops by their `applies`. LLVM IR written with IRBuilder. Loops whose bodies are
// register tiles are emitted fully unrolled from C++ loops (so every static size is a constant);
// mutable values live in entry-block allocas that SROA turns into registers.
#include <functional>
#include <string>
#include <vector>


#include "codegen/kernels/matmul/matmul_emitter.h"
#include "ir/ops.h"

namespace ingot::matmul {
#define INGOT_MATMUL_INNER(X) X(float_fma) X(dequant_fma) X(kquant_fma) X(int_dots) X(int_dots_q4k) X(int_dots_q6k) \
  X(int_dots_q5k) X(int_dots_q3k) X(int_dots_q2k) X(int_dots_iq4xs) X(int_dots_b32) X(dequant_fma_b32)
#define INGOT_DECLARE_INNER(n) extern const MatMulInnerLoop kMatMulInner_##n;
INGOT_MATMUL_INNER(INGOT_DECLARE_INNER)
#define INGOT_INNER_ADDRESS(n) &kMatMulInner_##n,
const MatMulInnerLoop* const kMatMulInnerLoops[12] = {INGOT_MATMUL_INNER(INGOT_INNER_ADDRESS)};
#undef INGOT_INNER_ADDRESS
#undef INGOT_DECLARE_INNER
#undef INGOT_MATMUL_INNER
}  // namespace ingot::matmul

namespace ingot::matmul {

// ---------------------------------------------------------------- the driver

// ---------------------------------------------------------------- matmul
Status MatMulEmitter::emit() {
  quant_ = s.weight == ElementType::q8_0 || s.weight == ElementType::q4_0;
  kquant_ = s.weight == ElementType::q4_k || s.weight == ElementType::q6_k || s.weight == ElementType::q5_k ||
            s.weight == ElementType::q3_k || s.weight == ElementType::q2_k || s.weight == ElementType::iq4_xs;
  block32_ = block32_packed_row_bytes(s.weight, s.act_q8) > 0;
  int_dots_ = (quant_ || kquant_ || block32_) && s.act_q8;
  e.avx2 = tgt.avx2;
  e.ssse3 = tgt.ssse3;
  // The VNNI branches of the inner loops: on a tier with VNNI (vpdpbusd), or emulated for tests
  // (Fn::dot4 then computes vpdpbusd's integers in generic vector IR).
  e.vnni = tgt.vnni || opt.emulate_vnni;
  e.vnni_instructions = tgt.vnni;
  e.avx512 = tgt.avx512;
  if (wide_int_dots()) il_ = 16;
  iv_ = L.panel_rows / il_;
  nout_ = s.swiglu ? s.N / 2 : s.N;
  nb_ = s.K / kQK;
  qb_ = s.weight == ElementType::q8_0 ? 32 : 16;
  block_out_ = 2 * L.panel_rows + static_cast<int64_t>(L.panel_rows) * qb_;
  tail_valid_ = static_cast<int>(nout_ - (L.panels - 1) * L.out_cols);

  y_ = e.arg_ptr(kMatMulY);
  x_ = e.arg_ptr(kMatMulX);
  w_ = e.arg_ptr(kMatMulW);
  bias_ = s.bias ? e.arg_ptr(kMatMulBias) : nullptr;
  res_ = s.residual ? e.arg_ptr(kMatMulResidual) : nullptr;
  M_ = e.load(e.i64, e.F->getArg(1), 8);

  if (int_dots_) {
    Value* scratch = e.arg_ptr(kMatMulScratch);
    Value* tid = B.CreateSExt(e.F->getArg(2), e.i64);
    // The amx step's scratch (q8_0, q4_0, q4_k, q6_k) follows the activations on every tier.
    Value* acts = B.CreateMul(M_, e.c64(L.scratch_per_token));
    act_ = e.at(scratch, B.CreateMul(tid, B.CreateAdd(acts, e.c64(amx_extra_scratch(s, L)))));
    amx_c_ = e.at(act_, acts);
    amx_b_ = e.at(amx_c_, 2 * kAmxTokens * 64);
    emit_quantize_activations();
  } else {
    // This thread's packed activations: round_up(min(M, tokens_per_block), T) tokens.
    Value* scratch = e.arg_ptr(kMatMulScratch);
    Value* tid = B.CreateSExt(e.F->getArg(2), e.i64);
    const int64_t T = L.tile_tokens;
    const int64_t tpb = std::max(L.tokens_per_block, L.tokens_per_block_avx512);  // as matmul_scratch
    Value* cap = B.CreateMul(B.CreateSDiv(B.CreateAdd(e.smin(M_, e.c64(tpb)), e.c64(T - 1)), e.c64(T)), e.c64(T));
    xp_ = e.at(scratch, B.CreateMul(B.CreateMul(tid, cap), e.c64(L.scratch_per_token)));
  }

  const int T = L.tile_tokens;
  // The amx tier takes 16 tokens at a time while at least 16 remain, then a rest of at least
  // kAmxMinPartialTokens as one step on tiles of fewer rows; a smaller rest (and decoding) goes
  // through the register tiles below, which compute the same numbers.
  const bool amx = amx_applies();
  Value* use_tiles = amx ? B.CreateICmpSGE(M_, e.c64(kAmxMinPartialTokens)) : nullptr;
  if (amx) e.if_then(use_tiles, [&] { emit_amx_config(); });
  // Every token block streams the weights once more. The amx tier computes a block so much
  // faster that streaming them dominates with the portable size: there a block's activations may
  // fill more of the L2 (AMX CPUs have 2 MiB a core), unless a test asked for small blocks.
  int64_t tokens_per_block = tgt.avx512 ? L.tokens_per_block_avx512 : L.tokens_per_block;
  if (amx && s.block_tokens == 0) {
    const int64_t steps = (int64_t{1} << 20) / (L.scratch_per_token * kAmxTokens);
    tokens_per_block = std::max(tokens_per_block, steps * kAmxTokens);
  }
  // Each share of the units (whole heads when RoPE is fused) as its own range of panels: the
  // pairs and tiles below, then RoPE on its heads.
  e.for_each_share(e.c64(L.units), kTailParts, kTailChunksPerThread, [&](Value* u0, Value* u1) {
  Value* p0 = B.CreateMul(u0, e.c64(L.panels_per_unit));
  Value* p1 = e.smin(B.CreateMul(u1, e.c64(L.panels_per_unit)), e.c64(L.panels));
  // The panels token_blocks sweeps start here: p0, or after the pairs of a few tokens' step below.
  Value* pfirst = e.var(e.i64, p0);
  auto token_blocks = [&] {
  Value* pa = e.load(e.i64, pfirst, 8);
  e.loop(e.c64(0), M_, tokens_per_block, [&](Value* mb) {
    Value* mend = e.smin(B.CreateAdd(mb, e.c64(tokens_per_block)), M_);
    mb_ = mb;
    if (!int_dots_) emit_pack_activations(mb, mend);
    // The tiles of tokens [tstart, mend) on panel p (with p2: both panels' chains in each tile):
    // tiles of each of `widths` tokens while whole ones fit, then of T, then one of the 1..T-1
    // left (each a separately generated straight-line variant).
    auto token_tiles = [&](Value* p, Value* p2, int64_t next_panels, Value* tstart, const std::vector<int>& widths,
                           const std::string& tag) {
      for (int w : widths) {
        Value* tw = B.CreateAdd(tstart, B.CreateMul(B.CreateSDiv(B.CreateSub(mend, tstart), e.c64(w)), e.c64(w)));
        e.loop(tstart, tw, w, [&](Value* t) { emit_tile(w, p, t, p2, next_panels); },
               (tag + (w == 2 * T ? "tile2" : w == 8 ? "tile8" : "tile4")).c_str());
        tstart = tw;
      }
      Value* tfull = B.CreateAdd(tstart, B.CreateMul(B.CreateSDiv(B.CreateSub(mend, tstart), e.c64(T)), e.c64(T)));
      e.loop(tstart, tfull, T, [&](Value* t) { emit_tile(T, p, t, p2, next_panels); }, (tag + "tile").c_str());
      if (T == 1) return;
      Value* rem = B.CreateSub(mend, tfull);
      BasicBlock* done = BasicBlock::Create(e.C, tag + "rem.done", e.F);
      llvm::SwitchInst* sw = B.CreateSwitch(rem, done, static_cast<unsigned>(T - 1));
      for (int r = 1; r < T; ++r) {
        BasicBlock* cb = BasicBlock::Create(e.C, tag + "rem" + std::to_string(r), e.F);
        sw->addCase(B.getInt64(static_cast<uint64_t>(r)), cb);
        B.SetInsertPoint(cb);
        emit_tile(r, p, tfull, p2, next_panels);
        B.CreateBr(done);
      }
      B.SetInsertPoint(done);
    };
    // f32/f16/bf16 weights at 16 lanes (AVX-512): adjacent panels in pairs, each tile with both
    // panels' chains (the same chains, in the same k order, as one panel at a time), an odd panel
    // left to the loop below. A tile of 12 tokens then keeps 24 accumulators, and each broadcast
    // activation feeds two FMAs instead of one (AMD Zen 5, tinyllama f16 pp512 149 -> 161-167
    // tok/s in one window, s110m f16 1425-1463 -> 1582-1630).
    Value* pair_end = pa;
    if (float_weights() && float_lanes() == 16) {
      pair_end = B.CreateAdd(pa, B.CreateMul(B.CreateSDiv(B.CreateSub(p1, pa), e.c64(2)), e.c64(2)));
      e.loop(pa, pair_end, 2, [&](Value* p) { token_tiles(p, B.CreateAdd(p, e.c64(1)), 2, mb, {2 * T}, "p"); }, "ppanel");
    }
    e.loop(pair_end, p1, 1, [&](Value* p) {
      Value* tstart = mb;
      if (amx) {
        Value* t16 = B.CreateAdd(mb, B.CreateMul(B.CreateSDiv(B.CreateSub(mend, mb), e.c64(kAmxTokens)), e.c64(kAmxTokens)));
        Value* rest = B.CreateSub(mend, t16);
        Value* partial = B.CreateICmpSGE(rest, e.c64(kAmxMinPartialTokens));
        if (s.weight != ElementType::q8_0) e.if_then(B.CreateOr(B.CreateICmpSGT(t16, mb), partial), [&] { emit_amx_unpack(p); });
        e.loop(mb, t16, kAmxTokens, [&](Value* t) { emit_amx_tile(p, t); }, "amx.tile");
        // The rest as one step on tiles of fewer rows, then the 16-row tiles again.
        e.if_then(partial, [&] {
          emit_amx_config(rest);
          emit_amx_tile(p, t16, rest);
          emit_amx_config();
        });
        tstart = B.CreateSelect(partial, mend, t16);
      }
      std::vector<int> widths;
      if (float_lanes() == 16 || (int_dots_ && tgt.avx512)) {
        // One zmm per token and panel leaves registers for tiles of 2T tokens (two packed tiles);
        // 8-bit dots on AVX-512's 32 registers too (their activations are rows, not packed
        // tiles): each unpacked weight vector then serves twice the tokens.
        // q8_0 and q4_0 at 512 bits (one zmm per token): tiles of 4T tokens first, each weight
        // vector then serves twelve tokens; then one of 8, so that the batched decode step of 8
        // streams reads each panel once instead of as a tile of 6 and one of 2 (AMD Zen 5, 8 rows
        // from memory, 2 threads: q4_0 540-630 -> 580-760 G int8 ops/s, q8_0 370-430 -> 390-455).
        widths = {2 * T};
        if (il_ == 16 && quant_) widths.insert(widths.begin(), {4 * T, 8});
      }
      token_tiles(p, nullptr, 1, tstart, widths, "");
    }, "panel");
  }, "mblock");
  };
  if (float_weights() || (quant_ && wide_int_dots())) {
    // Decoding with f32/f16/bf16 weights, or q8_0/q4_0 at 512 bits: panels in pairs, p with p +
    // half of this thread's range, each one token's tile with both panels' chains in one k loop
    // (the same chains and order as one panel at a time). One panel's chain waits an FMA latency
    // per 16 outputs; two far apart also give the core two weight streams (AMD Zen 5: tinyllama
    // f16 tg64 16 -> 25-26 tok/s, a thread 19 -> 31 GB/s).
    e.if_else(B.CreateICmpEQ(M_, e.c64(1)), [&] {
      mb_ = e.c64(0);
      if (!int_dots_) emit_pack_activations(e.c64(0), e.c64(1));
      Value* half = B.CreateSDiv(B.CreateSub(p1, p0), e.c64(2));
      Value* mid = B.CreateAdd(p0, half);
      e.loop(p0, mid, 1, [&](Value* p) { emit_tile(1, p, e.c64(0), B.CreateAdd(p, half)); }, "panel.pair");
      e.if_then(B.CreateICmpNE(B.CreateAdd(mid, half), p1), [&] { emit_tile(1, B.CreateSub(p1, e.c64(1)), e.c64(0)); });
    }, [&] {
      if (int_dots_) emit_few_token_pairs(p0, p1, pfirst, amx ? kAmxMinPartialTokens - 1 : 8);
      token_blocks();
    });
  } else {
    token_blocks();
  }
  if (s.rope != RopeLayout::none) emit_rope(p0, p1);
  });

  if (amx) e.if_then(use_tiles, [&] { emit_amx_release(); });
  B.CreateRetVoid();
  return Status::Ok();
}

// A step of 2 to 8 tokens (several streams decoding together) with q8_0/q4_0 weights at 512 bits:
// panels in pairs as in decoding, p with p + half of this thread's range, each pair one tile of
// all M tokens with both panels' chains (the same chains and order as one panel at a time). Two
// weight streams a thread keep more of the memory's reads in flight than one, and one tile of M
// reads each panel once where the tiles of token_blocks (12, 8, 6, 3 and a rest) read it up to
// three times (AMD Zen 5, `codegen_bench --only prefill --tokens M`, weights from memory, 2
// threads, q4_0 G int8 ops/s: 8 tokens 434-699 -> 516-793, 4 tokens 266-394 -> 398-563, 2 tokens
// 176-261 -> 225-274; tinyllama q4_0 batched steps: docs/benchmarks.md). An odd panel is left to
// token_blocks: `pfirst` moves past the pairs. Up to `max_tokens` tokens: on the amx tier a
// step of kAmxMinPartialTokens or more takes the tile step instead.
void MatMulEmitter::emit_few_token_pairs(Value* p0, Value* p1, Value* pfirst, int max_tokens) {
  BasicBlock* done = BasicBlock::Create(e.C, "pairs.done", e.F);
  Value* half = B.CreateSDiv(B.CreateSub(p1, p0), e.c64(2));
  llvm::SwitchInst* sw = B.CreateSwitch(M_, done, static_cast<unsigned>(max_tokens - 1));
  for (int m = 2; m <= max_tokens; ++m) {
    BasicBlock* cb = BasicBlock::Create(e.C, "pairs" + std::to_string(m), e.F);
    sw->addCase(B.getInt64(static_cast<uint64_t>(m)), cb);
    B.SetInsertPoint(cb);
    mb_ = e.c64(0);  // the tile at token 0 streams its panels: it prefetches the next ones
    e.loop(p0, B.CreateAdd(p0, half), 1, [&](Value* p) { emit_tile(m, p, e.c64(0), B.CreateAdd(p, half)); }, "panel.pairs");
    B.CreateStore(B.CreateAdd(p0, B.CreateMul(half, e.c64(2))), pfirst);
    B.CreateBr(done);
  }
  B.SetInsertPoint(done);
}

void MatMulEmitter::emit_pack_activations(Value* mb, Value* mend) {
  const int64_t T = L.tile_tokens;
  const bool round16 = s.act_q8 && s.weight == ElementType::f16;
  const bool round_bf16 = s.act_q8 && s.weight == ElementType::bf16;
  e.loop(mb, mend, 1, [&](Value* t) {
    Value* rel = B.CreateSub(t, mb);
    Value* tile = B.CreateSDiv(rel, e.c64(T));
    Value* tt = B.CreateSRem(rel, e.c64(T));
    Value* dst = e.at(xp_, B.CreateMul(B.CreateAdd(B.CreateMul(tile, e.c64(s.K * T)), tt), e.c64(4)));
    Value* src = e.at(x_, B.CreateMul(t, e.c64(s.K * 4)));
    e.loop(e.c64(0), e.c64(s.K), 1, [&](Value* k) {
      Value* v = e.load(e.f32, e.at(src, B.CreateMul(k, e.c64(4))), 4);
      if (round16) v = B.CreateFPExt(B.CreateFPTrunc(v, e.f16), e.f32);
      if (round_bf16) v = round_to_bf16(v);
      e.store(v, e.at(dst, B.CreateMul(k, e.c64(T * 4))), 4);
    }, "pack.k");
  }, "pack.t");
}

// ir/element_type.cpp's f32_to_bf16 then bf16_to_f32 in integers: round to nearest even, a NaN
// kept quiet (LLVM's fptrunc to bfloat would need a runtime library call on most tiers).
Value* MatMulEmitter::round_to_bf16(Value* v) {
  Value* bits = B.CreateBitCast(v, e.i32);
  Value* lsb = B.CreateAnd(B.CreateLShr(bits, B.getInt32(16)), B.getInt32(1));
  Value* rounded = B.CreateAnd(B.CreateAdd(bits, B.CreateAdd(B.getInt32(0x7FFF), lsb)), B.getInt32(0xFFFF0000u));
  Value* nan = B.CreateICmpUGT(B.CreateAnd(bits, B.getInt32(0x7FFFFFFF)), B.getInt32(0x7F800000));
  Value* quiet = B.CreateOr(B.CreateAnd(bits, B.getInt32(0xFFFF0000u)), B.getInt32(0x00400000));
  return B.CreateBitCast(B.CreateSelect(nan, quiet, rounded), e.f32);
}

void MatMulEmitter::emit_quantize_activations() {
  if (q8_uses_q8_K(s.weight)) return emit_quantize_activations_q8k();
  e.loop(e.c64(0), M_, 1, [&](Value* t) {
    Value* xr = e.at(x_, B.CreateMul(t, e.c64(s.K * 4)));
    Value* ar = e.at(act_, B.CreateMul(t, e.c64(L.scratch_per_token)));
    e.loop(e.c64(0), e.c64(nb_), 1, [&](Value* b) {
      Value* xb = e.at(xr, B.CreateMul(b, e.c64(kQK * 4)));
      Value* v[4];
      Value* m = nullptr;
      for (int j = 0; j < 4; ++j) {
        v[j] = e.load(vf(), e.at(xb, j * 32), 4);
        Value* a = B.CreateUnaryIntrinsic(llvm::Intrinsic::fabs, v[j]);
        m = m ? B.CreateBinaryIntrinsic(llvm::Intrinsic::maxnum, m, a) : a;
      }
      Value* amax = B.CreateFPMaxReduce(m);
      Value* d = B.CreateFDiv(amax, e.cf(127.0f));
      Value* id = B.CreateSelect(B.CreateFCmpONE(amax, e.cf(0.0f)), B.CreateFDiv(e.cf(127.0f), amax), e.cf(0.0f));
      Value* dx = B.CreateFPExt(B.CreateFPTrunc(d, e.f16), e.f32);
      e.store(dx, e.at(ar, B.CreateAdd(e.c64(s.K), B.CreateMul(b, e.c64(4)))), 4);
      Value* sum = nullptr;
      for (int j = 0; j < 4; ++j) {
        Value* r = B.CreateUnaryIntrinsic(llvm::Intrinsic::roundeven, B.CreateFMul(v[j], e.splat(id)));
        Value* q = B.CreateFPToSI(r, e.vec(e.i32, 8));
        sum = sum ? B.CreateAdd(sum, q) : q;
        e.store(B.CreateTrunc(q, e.vec(e.i8, 8)), e.at(ar, B.CreateAdd(B.CreateMul(b, e.c64(32)), e.c64(8 * j))), 1);
      }
      // The offset terms of the integer dots (emit_int_dots): 8 * sum(x) for q4_0's nibbles (and
      // the types that scale it: int_dots_b32.cpp), 128 * sum(x) for q8_0's w + 128 with VNNI.
      const uint32_t offset = s.weight == ElementType::q8_0 && e.vnni ? 128 : 8;
      Value* s8 = B.CreateMul(B.CreateAddReduce(sum), B.getInt32(offset));
      e.store(s8, e.at(ar, B.CreateAdd(e.c64(s.K + nb_ * 4), B.CreateMul(b, e.c64(4)))), 4);
    }, "qblk");
  }, "qrow");
}

// q8_K rows (quantize_row_q8_K, ggml's only one): per 256 values amax, iscale = 127 / amax,
// q = roundeven(x * iscale), d = 1 / iscale (0 for an all-zero super-block); the 16- and 32-value
// sums as i16. ggml takes the sign of the first value of largest magnitude for iscale and d, so
// its q and d may both be negated: every product d * q, and so every dot, is the same.
void MatMulEmitter::emit_quantize_activations_q8k() {
  e.loop(e.c64(0), M_, 1, [&](Value* t) {
    Value* xr = e.at(x_, B.CreateMul(t, e.c64(s.K * 4)));
    Value* ar = e.at(act_, B.CreateMul(t, e.c64(L.scratch_per_token)));
    e.loop(e.c64(0), e.c64(s.K / kQK_K), 1, [&](Value* sb) {
      Value* xb = e.at(xr, B.CreateMul(sb, e.c64(kQK_K * 4)));
      Value* m = nullptr;
      for (int j = 0; j < kQK_K / 8; ++j) {
        Value* a = B.CreateUnaryIntrinsic(llvm::Intrinsic::fabs, e.load(vf(), e.at(xb, j * 32), 4));
        m = m ? B.CreateBinaryIntrinsic(llvm::Intrinsic::maxnum, m, a) : a;
      }
      Value* amax = B.CreateFPMaxReduce(m);
      Value* nonzero = B.CreateFCmpONE(amax, e.cf(0.0f));
      Value* iscale = B.CreateSelect(nonzero, B.CreateFDiv(e.cf(127.0f), amax), e.cf(0.0f));
      Value* d = B.CreateSelect(nonzero, B.CreateFDiv(e.cf(1.0f), iscale), e.cf(0.0f));
      e.store(d, q8k_scale_at(ar, sb), 4);
      Value* sum16 = nullptr;
      for (int j = 0; j < kQK_K / 8; ++j) {
        Value* x = e.load(vf(), e.at(xb, j * 32), 4);
        Value* r = B.CreateUnaryIntrinsic(llvm::Intrinsic::roundeven, B.CreateFMul(x, e.splat(iscale)));
        Value* q = B.CreateFPToSI(r, e.vec(e.i32, 8));
        e.store(B.CreateTrunc(q, e.vec(e.i8, 8)), e.at(ar, B.CreateAdd(B.CreateMul(sb, e.c64(kQK_K)), e.c64(8 * j))), 1);
        sum16 = j % 2 ? B.CreateAdd(sum16, q) : q;
        if (j % 2 == 0) continue;
        // Values 16i .. 16i + 15 (i = j / 2) done: their sum, and at odd i the 32-value sum.
        const int i = j / 2;
        Value* s16 = B.CreateTrunc(B.CreateAddReduce(sum16), e.i16);
        e.store(s16, e.at(ar, B.CreateAdd(e.c64(q8k_sums16_offset() + 2 * i), B.CreateMul(sb, e.c64(32)))), 2);
        if (i % 2 == 0) continue;
        Value* prev = e.load(e.i16, e.at(ar, B.CreateAdd(e.c64(q8k_sums16_offset() + 2 * (i - 1)), B.CreateMul(sb, e.c64(32)))), 2);
        e.store(B.CreateAdd(prev, s16), e.at(ar, B.CreateAdd(e.c64(q8k_sums32_offset() + 2 * (i / 2)), B.CreateMul(sb, e.c64(16)))), 2);
      }
    }, "q8kblk");
  }, "q8krow");
}

void MatMulEmitter::emit_tile(int T, Value* p, Value* t0, Value* p2, int64_t next_panels) {
  Accs acc;
  acc.T = T;
  acc.W = float_lanes();
  acc.V = L.vectors * 8 / acc.W * (p2 ? 2 : 1);
  // One chain per output, k in order, for every weight type and activation mode: every tile size
  // then rounds alike, so a token's row does not depend on how many tokens share the call (a
  // batch of sessions equals each alone; the reference specifies this order where it specifies
  // one). Splitting a small tile's chains would hide FMA latency, but a decode step waits on
  // memory, not on the chain.
  acc.S = 1;
  llvm::Type* vacc = e.vec(e.f32, static_cast<unsigned>(acc.W));
  for (int i = 0; i < T * acc.V * acc.S; ++i) acc.vars.push_back(e.var(vacc, llvm::Constant::getNullValue(vacc)));
  Value* wp = e.at(w_, B.CreateMul(p, e.c64(L.panel_bytes)));
  wp2_ = p2 ? e.at(w_, B.CreateMul(p2, e.c64(L.panel_bytes))) : nullptr;
  const MatMulInnerLoop* inner = nullptr;
  for (const MatMulInnerLoop* v : kMatMulInnerLoops)
    if (v->applies(*this)) {
      INGOT_ASSERT(inner == nullptr, "two matmul inner loops apply to one spec");
      inner = v;
    }
  INGOT_ASSERT(inner != nullptr, "no matmul inner loop for this weight type and activation mode");
  // The first tile of a token block (t0 == mb) streams the panel: it prefetches the next one.
  if (T > 1 && mb_) next_panel_delta_ = B.CreateSelect(B.CreateICmpEQ(t0, mb_), e.c64(next_panels * L.panel_bytes), e.c64(0));
  (this->*(inner->emit))(T, wp, t0, acc);
  wp2_ = nullptr;
  next_panel_delta_ = nullptr;
  std::vector<std::vector<Value*>> sums(static_cast<size_t>(T)), sums2(static_cast<size_t>(T));
  for (int t = 0; t < T; ++t)
    for (int v = 0; v < acc.V; ++v) {
      Value* sum = e.load(vacc, acc.at(t, v, 0), 32);
      for (int k = 1; k < acc.S; ++k) sum = B.CreateFAdd(sum, e.load(vacc, acc.at(t, v, k), 32));
      // The epilogue works on 8-lane vectors.
      auto& out = (p2 && v >= acc.V / 2 ? sums2 : sums)[static_cast<size_t>(t)];
      for (int h = 0; h < acc.W / 8; ++h) {
        if (acc.W == 8) {
          out.push_back(sum);
          continue;
        }
        std::vector<int> lanes;
        for (int l = 0; l < 8; ++l) lanes.push_back(8 * h + l);
        out.push_back(B.CreateShuffleVector(sum, lanes));
      }
    }
  emit_epilogue(T, p, t0, sums);
  if (p2) emit_epilogue(T, p2, t0, sums2);
}

void MatMulEmitter::emit_epilogue(int T, Value* p, Value* t0, const std::vector<std::vector<Value*>>& sums, Value* valid) {
  auto body = [&](bool tail) {
    std::vector<BasicBlock*> stops;
    const int V = L.vectors;
    const int OV = s.swiglu ? V / 2 : V;  // output vectors
    Value* col0 = B.CreateMul(p, e.c64(L.out_cols));
    auto lanes = [&](int v) {  // valid output lanes of vector v in this panel
      if (!tail) return 8;
      return std::max(0, std::min(8, tail_valid_ - 8 * v));
    };
    for (int t = 0; t < T; ++t) {
      if (valid && t > 0) {  // a partial amx step: stop at the first token it did not compute
        BasicBlock* next = BasicBlock::Create(e.C, "epi.tok", e.F);
        BasicBlock* stop = BasicBlock::Create(e.C, "epi.stop", e.F);
        B.CreateCondBr(B.CreateICmpSLT(e.c64(t), valid), next, stop);
        stops.push_back(stop);
        B.SetInsertPoint(next);
      }
      std::vector<Value*> pre = sums[static_cast<size_t>(t)];
      if (s.bias) {
        for (int v = 0; v < V; ++v) {
          const int ov = s.swiglu ? v % OV : v;
          const int n = lanes(ov);
          if (n == 0) continue;
          Value* idx = B.CreateAdd(col0, e.c64(8 * ov + (s.swiglu && v >= OV ? s.N / 2 : 0)));
          Value* bp = e.at(bias_, B.CreateMul(idx, e.c64(4)));
          Value* bv = n == 8 ? e.load(vf(), bp, 4)
                             : B.CreateMaskedLoad(vf(), bp, llvm::Align(4), e.mask(8, n), llvm::Constant::getNullValue(vf()));
          pre[static_cast<size_t>(v)] = B.CreateFAdd(pre[static_cast<size_t>(v)], bv);
        }
      }
      std::vector<Value*> out;
      if (s.swiglu) {
        for (int v = 0; v < OV; ++v) {
          Value* g = pre[static_cast<size_t>(v)];
          Value* u = pre[static_cast<size_t>(v + OV)];
          Value* ex = e.vexp(B.CreateFNeg(g));
          Value* sig = B.CreateFDiv(e.splat(e.cf(1.0f)), B.CreateFAdd(e.splat(e.cf(1.0f)), ex));
          out.push_back(B.CreateFMul(B.CreateFMul(g, sig), u));
        }
      } else {
        out = pre;
      }
      Value* row = B.CreateMul(B.CreateAdd(t0, e.c64(t)), e.c64(nout_));
      for (int v = 0; v < OV; ++v) {
        int n = lanes(v);
        // Debug: one lane past the last valid one (an off-by-one in the tail).
        if (tail && opt.debug_tail_overrun && tail_valid_ >= 8 * v && tail_valid_ < 8 * v + 8) n += 1;
        if (n == 0) continue;
        Value* off = B.CreateMul(B.CreateAdd(row, B.CreateAdd(col0, e.c64(8 * v))), e.c64(4));
        Value* val = out[static_cast<size_t>(v)];
        if (s.residual) {
          Value* rp = e.at(res_, off);
          Value* rv = n == 8 ? e.load(vf(), rp, 4)
                             : B.CreateMaskedLoad(vf(), rp, llvm::Align(4), e.mask(8, n), llvm::Constant::getNullValue(vf()));
          val = B.CreateFAdd(val, rv);
        }
        Value* yp = e.at(y_, off);
        if (n == 8)
          e.store(val, yp, 4);
        else
          B.CreateMaskedStore(val, yp, llvm::Align(4), e.mask(8, n));
      }
    }
    if (!stops.empty()) {
      BasicBlock* done = BasicBlock::Create(e.C, "epi.done", e.F);
      B.CreateBr(done);
      for (BasicBlock* stop : stops) {
        B.SetInsertPoint(stop);
        B.CreateBr(done);
      }
      B.SetInsertPoint(done);
    }
  };
  if (tail_valid_ == L.out_cols) {
    body(false);
  } else {
    e.if_else(B.CreateICmpEQ(p, e.c64(L.panels - 1)), [&] { body(true); }, [&] { body(false); });
  }
}

void MatMulEmitter::emit_rope(Value* p0, Value* p1) {
  const int64_t hd = s.head_dim, half = hd / 2;
  Value* h0 = B.CreateSDiv(B.CreateMul(p0, e.c64(L.out_cols)), e.c64(hd));
  Value* h1 = e.smin(B.CreateSDiv(B.CreateMul(p1, e.c64(L.out_cols)), e.c64(hd)), e.c64(s.rope_heads));
  Value* cosp = e.arg_ptr(kMatMulCos);
  Value* sinp = e.arg_ptr(kMatMulSin);
  const bool inter = s.rope == RopeLayout::interleaved;
  e.loop(e.c64(0), M_, 1, [&](Value* t) {
    Value* cr = e.at(cosp, B.CreateMul(t, e.c64(half * 4)));
    Value* sr = e.at(sinp, B.CreateMul(t, e.c64(half * 4)));
    e.loop(h0, h1, 1, [&](Value* h) {
      Value* base = e.at(y_, B.CreateMul(B.CreateAdd(B.CreateMul(t, e.c64(s.N)), B.CreateMul(h, e.c64(hd))), e.c64(4)));
      e.loop(e.c64(0), e.c64(half), 1, [&](Value* i) {
        Value* ia = inter ? B.CreateMul(i, e.c64(2)) : i;
        Value* ib = inter ? B.CreateAdd(ia, e.c64(1)) : B.CreateAdd(i, e.c64(half));
        Value* pa = e.at(base, B.CreateMul(ia, e.c64(4)));
        Value* pb = e.at(base, B.CreateMul(ib, e.c64(4)));
        Value* x0 = e.load(e.f32, pa, 4);
        Value* x1 = e.load(e.f32, pb, 4);
        Value* c = e.load(e.f32, e.at(cr, B.CreateMul(i, e.c64(4))), 4);
        Value* sn = e.load(e.f32, e.at(sr, B.CreateMul(i, e.c64(4))), 4);
        e.store(B.CreateFSub(B.CreateFMul(x0, c), B.CreateFMul(x1, sn)), pa, 4);
        e.store(B.CreateFAdd(B.CreateFMul(x0, sn), B.CreateFMul(x1, c)), pb, 4);
      }, "rope.i");
    }, "rope.h");
  }, "rope.t");
}


}  // namespace ingot::matmul

namespace ingot {

// ---------------------------------------------------------------- the family
namespace {

using matmul::MatMulEmitter;
using matmul::Emitter;

StatusOr<int64_t> static_dim(const Node& n, const Dim& d, const char* what) {
  if (!d.is_static()) return Status::Error("codegen: " + n.name + ": " + what + " must be static, got " + d.str());
  return d.value();
}

bool matmul_computes(const Node& n) { return n.is(Op::FusedMatMul) || n.is(Op::WeightMatMul); }

StatusOr<KernelSpec> matmul_spec(const Node& n, const Model*) {
  KernelSpec k;
  MatMulSpec& s = k.matmul;
  const TensorType& w = n.inputs[1].type();
  s.weight = w.type;
  INGOT_ASSIGN_OR_RETURN(s.N, static_dim(n, w.shape[0], "N"));
  INGOT_ASSIGN_OR_RETURN(s.K, static_dim(n, w.shape[1], "K"));
  s.act_q8 = n.attr("act_quant").as_string() == "q8";
  if (n.attr("act_quant").as_string() == "ggml")
    return Status::Error("codegen: " + n.name + ": act_quant \"ggml\" (ggml's exact numerics) is implemented by the reference "
                         "evaluator only; compile with --act-quant auto, q8 or off");
  if (n.is(Op::FusedMatMul)) {
    s.bias = n.attr("has_bias").as_bool();
    const std::string rope = n.attr("rope").as_string();
    s.rope = rope == "interleaved" ? RopeLayout::interleaved : rope == "rotate_half" ? RopeLayout::rotate_half : RopeLayout::none;
    s.rope_heads = n.attr("rope_q_heads").as_int() + n.attr("rope_k_heads").as_int();
    s.head_dim = n.attr("head_dim").as_int();
    s.swiglu = n.attr("activation").as_string() == "swiglu";
    s.residual = n.attr("has_residual").as_bool();
  }
  INGOT_RETURN_IF_ERROR(matmul_layout(s).status());
  return k;
}

std::string matmul_key(const KernelSpec& k) {
  const MatMulSpec& m = k.matmul;
  std::string key = "matmul " + std::string(type_name(m.weight)) + " N=" + std::to_string(m.N) + " K=" + std::to_string(m.K) +
                    " act=" + (m.act_q8 ? "q8" : "f32");
  if (m.bias) key += " bias";
  if (m.rope != RopeLayout::none)
    key += std::string(m.rope == RopeLayout::interleaved ? " rope=interleaved" : " rope=rotate_half") +
           " heads=" + std::to_string(m.rope_heads) + " head_dim=" + std::to_string(m.head_dim);
  if (m.swiglu) key += " swiglu";
  if (m.residual) key += " residual";
  if (m.block_tokens) key += " block_tokens=" + std::to_string(m.block_tokens);  // tests' tuning; 0 in bundles
  return key;
}

// The slots of MatMulArg; the optional inputs follow FusedMatMul's order: bias, cos, sin, residual.
StatusOr<std::vector<KernelArg>> matmul_args(const Node&, const KernelSpec& spec) {
  std::vector<KernelArg> a(kMatMulArgCount);
  a[kMatMulY] = KernelArg::output(0);
  a[kMatMulX] = KernelArg::input(0);
  a[kMatMulW] = KernelArg::packed(1);
  int next = 2;
  if (spec.matmul.bias) a[kMatMulBias] = KernelArg::input(next++);
  if (spec.matmul.rope != RopeLayout::none) {
    a[kMatMulCos] = KernelArg::input(next++);
    a[kMatMulSin] = KernelArg::input(next++);
  }
  if (spec.matmul.residual) a[kMatMulResidual] = KernelArg::input(next++);
  a[kMatMulScratch] = KernelArg::scratch();
  return a;
}

// x[M, K] and y, residual [M, Nout]; cos and sin [M, head_dim/2]; the packed weight; per thread,
// the activations (q8: all M tokens quantized; float: one token block, whole tiles) and the amx
// step's buffers.
StatusOr<KernelContract> matmul_contract(const KernelSpec& spec) {
  INGOT_ASSIGN_OR_RETURN(MatMulLayout L, matmul_layout(spec.matmul));
  const MatMulSpec& s = spec.matmul;
  const int64_t nout = s.swiglu ? s.N / 2 : s.N;
  KernelContract c;
  c.args.resize(kMatMulArgCount);
  c.args[kMatMulY] = KernelContract::rows(ArgAccess::write, nout * 4);
  c.args[kMatMulX] = KernelContract::rows(ArgAccess::read, s.K * 4);
  c.args[kMatMulW] = KernelContract::fixed_bytes(ArgAccess::read, L.packed_bytes, 64);
  if (s.bias) c.args[kMatMulBias] = KernelContract::fixed_bytes(ArgAccess::read, s.N * 4);
  if (s.rope != RopeLayout::none) {
    c.args[kMatMulCos] = KernelContract::rows(ArgAccess::read, s.head_dim / 2 * 4);
    c.args[kMatMulSin] = KernelContract::rows(ArgAccess::read, s.head_dim / 2 * 4);
  }
  if (s.residual) c.args[kMatMulResidual] = KernelContract::rows(ArgAccess::read, nout * 4);
  const bool int_dots = s.act_q8 && (s.weight == ElementType::q8_0 || s.weight == ElementType::q4_0 ||
                                     s.weight == ElementType::q4_k || s.weight == ElementType::q6_k ||
                                     s.weight == ElementType::q5_k || s.weight == ElementType::q3_k ||
                                     s.weight == ElementType::q2_k || s.weight == ElementType::iq4_xs ||
                                     block32_packed_row_bytes(s.weight, true) > 0);
  ArgContract& scratch = c.args[kMatMulScratch];
  scratch = KernelContract::rows(ArgAccess::scratch, L.scratch_per_token, 64);
  scratch.fixed = int_dots ? matmul::amx_extra_scratch(s, L) : 0;
  if (L.scratch_per_block) {
    scratch.cap = std::max(L.tokens_per_block, L.tokens_per_block_avx512);  // every tier's blocks fit
    scratch.multiple = L.tile_tokens;
  }
  return c;
}

std::optional<PackedWeight> matmul_packed(const KernelSpec& spec, int input) {
  if (input != 1) return std::nullopt;
  auto L = matmul_layout(spec.matmul);
  if (!L.ok()) return std::nullopt;
  MatMulSpec ms = spec.matmul;
  return PackedWeight{"matmul-packed", L->packed_bytes,
                      [ms](const void* src, size_t bytes) { return pack_matmul_weights(ms, src, bytes); }};
}

Status matmul_emit(EmitContext& ctx, const KernelSpec& spec) {
  INGOT_ASSIGN_OR_RETURN(MatMulLayout L, matmul_layout(spec.matmul));
  Emitter e(ctx.module, spec.name);
  return MatMulEmitter(e, spec.matmul, L, ctx.options, ctx).emit();
}

}  // namespace

// Cases: tests/codegen/codegen_test.cpp (MatMulCase: every weight type, activation mode, epilogue,
// odd sizes and every CPU tier) drives this family through the same harness.
extern const KernelFamily kMatMulFamily = {
    "matmul", "x·wᵀ with bias, RoPE, SwiGLU and residual epilogues; weights f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, "
    "iq4_nl, q4_k, q6_k; q2_k, q3_k, q5_k, iq4_xs with 8-bit activations",
    matmul_computes, matmul_spec, matmul_key, matmul_args, matmul_contract, matmul_packed, matmul_emit, nullptr};

}  // namespace ingot
