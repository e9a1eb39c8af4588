// Internal to the matmul kernel family: the emitter's state and helpers, shared by the driver
// (kernels/matmul.cpp: thread split, token blocks, activation packing or quantization, tiles,
// epilogues, RoPE) and the inner loops, one file each in kernels/matmul/ (the K loop of a register
// tile for one weight type and activation mode). Includes LLVM IR headers.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "codegen/kernel_registry.h"
#include "codegen/llvm/emit_ir.h"
#include "ir/quant.h"

namespace ingot::matmul {

using llvm::BasicBlock;
using llvm::Value;
using Emitter = ir_emit::Fn;

struct MatMulInnerLoop;

// Tokens per AMX step (the rows of an A and a C tile).
inline constexpr int kAmxTokens = 16;
// Fewer tokens than a step, from this many on, still take one AMX step with tiles configured for
// as many rows (8 streams of `ingot serve` decoding together, a short prompt, a token block's
// remainder); fewer go through the avx512 register tiles (a decode step reads each weight once
// either way). Chosen without a measurement on AMX hardware yet: docs/codegen.md.
inline constexpr int kAmxMinPartialTokens = 4;
// With the runtime's work counter each thread computes its even part of the first 3/4 of the
// panels (long ranges: the pairs' two streams, next-panel prefetch), then the last quarter goes in
// chunks taken in turn, two a thread: a thread that the OS or the VM's host slows takes fewer.
// Each chunk starts its streams cold (no prefetch reached it), so chunks cost: on a host whose
// threads ran alike (AMD Zen 5, tinyllama q4_0, the 8-stream step, three interleaved triples) two
// chunks a thread were within noise of the static split (22.5 ms both), four 2 % slower, sixteen
// 9 %, and all panels in chunks of an eighth 4 %.
inline constexpr int64_t kTailParts = 4;
inline constexpr int64_t kTailChunksPerThread = 2;
// Per-thread scratch after the q8 activations of 8-bit kernels on every tier (so that the
// bundle's scratch sizes do not depend on the tier): the amx tier's stored C tiles and unpacked
// B tiles of q4_0, q4_k and q6_k (matmul/amx_tiles.cpp).
int64_t amx_extra_scratch(const MatMulSpec& s, const MatMulLayout& L);

class MatMulEmitter {
 public:
  MatMulEmitter(Emitter& e, const MatMulSpec& s, const MatMulLayout& L, const CodegenOptions& o, const EmitContext& t)
      : e(e), B(e.B), s(s), L(L), opt(o), tgt(t) {}

  Status emit();  // the whole kernel (kernels/matmul.cpp)

  // The state the driver sets up and the inner loops read.
  Emitter& e;
  llvm::IRBuilder<>& B;
  const MatMulSpec& s;
  const MatMulLayout& L;
  const CodegenOptions& opt;
  const EmitContext& tgt;
  bool quant_ = false, int_dots_ = false, kquant_ = false;
  bool block32_ = false;  // q5_0, q4_1, q5_1, iq4_nl (matmul/int_dots_b32.cpp, dequant_fma_b32.cpp)
  // Lanes of the 8-bit inner loops' integer and f32 vectors (one per weight row), and vectors
  // per 16-row panel: 16 and 1 where the inner loop has a 512-bit VNNI form (wide_int_dots), else
  // 8 and 2. The integers and the f32 steps are the same either way, lane by lane.
  int il_ = 8, iv_ = 2;
  int64_t nout_ = 0, nb_ = 0, block_out_ = 0;
  int qb_ = 0, tail_valid_ = 0;
  Value *y_ = nullptr, *x_ = nullptr, *w_ = nullptr, *bias_ = nullptr, *res_ = nullptr, *M_ = nullptr, *act_ = nullptr;
  Value *xp_ = nullptr, *mb_ = nullptr;  // packed float activations of the current token block

  // Float activations of tokens [mb, mend) packed tile by tile as [tile][k][T], so that a tile's
  // broadcasts read one sequential stream; f16-rounded here for f16 weights in the q8 mode
  // (llama.cpp converts activations to f16 for its f16 dot products), bf16-rounded for bf16.
  void emit_pack_activations(Value* mb, Value* mend);
  Value* round_to_bf16(Value* v);  // bf16 weights in the q8 mode: activations rounded to bf16

  llvm::Type* vf() { return e.vec(e.f32, 8); }
  llvm::Type* vfi() { return e.vec(e.f32, static_cast<unsigned>(il_)); }  // f32 at the inner loop's lanes

  // q8_0, q4_0, q4_k and q6_k with VNNI: zmm integer dots, a whole 16-row panel per vpdpbusd
  // (AMD Zen 5 runs two a cycle at 512 bits, three times the int8 rate of the 256-bit form).
  bool wide_int_dots() const {
    const ElementType t = s.weight;
    return int_dots_ && e.vnni && (t == ElementType::q8_0 || t == ElementType::q4_0 || t == ElementType::q4_k || t == ElementType::q6_k);
  }
  // The f16 values of vector v's il_ rows of a panel (row r at p + 2r), as f32.
  Value* f16_lanes(Value* p, int v) { return B.CreateFPExt(e.load(e.vec(e.f16, static_cast<unsigned>(il_)), e.at(p, v * il_ * 2), 2), vfi()); }

  // q8 activations of rows 0..M into this thread's scratch: per row K quant bytes, then nb f32
  // scales (f16-rounded, as ggml stores them), then nb i32 sums times 8 (the q4_0 offset).
  // k-quants and iq4_xs (q8_uses_q8_K): q8_K rows instead, see q8k_scale_at.
  void emit_quantize_activations();
  void emit_quantize_activations_q8k();

  // Accumulators of a tile: [token][vector][split]. With few tokens, several independent
  // accumulators per output vector (alternate k steps) hide the FMA latency: one token and one
  // accumulator chain would stall on every FMA.
  struct Accs {
    int T = 0, V = 0, S = 1;
    int W = 8;  // lanes per accumulator: 8, or 16 on AVX-512 tiers for float weights (one zmm per panel)
    std::vector<Value*> vars;
    Value* at(int t, int v, int s) const { return vars[static_cast<size_t>((t * V + v) * S + s)]; }
  };

  // One register tile: T tokens starting at t0, the whole panel p; with p2, panel p2 as well (its
  // own accumulators, loaded beside p's in the same k loop: decoding f32/f16/bf16 weights, where
  // one panel's chains, one FMA latency per 16 outputs, leave a thread short of its bandwidth;
  // q8_0/q4_0 at 512 bits decoding one to eight tokens, where two weight streams keep more reads
  // in flight).
  void emit_tile(int T, Value* p, Value* t0, Value* p2 = nullptr, int64_t next_panels = 1);
  // Steps of 2 to max_tokens tokens (q8_0/q4_0 at 512 bits): pairs of panels, one tile of all the
  // tokens.
  void emit_few_token_pairs(Value* p0, Value* p1, Value* pfirst, int max_tokens);
  Value* wp2_ = nullptr;  // the second panel's weights during a paired tile (float_fma)

  // The inner loops (one file each in matmul/): the K loop of one register tile.
  void emit_float_fma(int T, Value* wp, Value* t0, const Accs& acc);  // matmul/float_fma.cpp
  void emit_dequant_fma(int T, Value* wp, Value* t0, const Accs& acc);  // matmul/dequant_fma.cpp
  void emit_kquant_fma(int T, Value* wp, Value* t0, const Accs& acc);  // matmul/kquant_fma.cpp
  void emit_int_dots(int T, Value* wp, Value* t0, const Accs& acc);  // matmul/int_dots.cpp
  void emit_int_dots_q4k(int T, Value* wp, Value* t0, const Accs& acc);  // matmul/int_dots_q4k.cpp
  void emit_int_dots_q6k(int T, Value* wp, Value* t0, const Accs& acc);  // matmul/int_dots_q6k.cpp
  void emit_int_dots_q5k(int T, Value* wp, Value* t0, const Accs& acc);  // matmul/int_dots_q5k.cpp
  void emit_int_dots_q3k(int T, Value* wp, Value* t0, const Accs& acc);  // matmul/int_dots_q3k.cpp
  void emit_int_dots_q2k(int T, Value* wp, Value* t0, const Accs& acc);  // matmul/int_dots_q2k.cpp
  void emit_int_dots_iq4xs(int T, Value* wp, Value* t0, const Accs& acc);  // matmul/int_dots_iq4xs.cpp
  void emit_int_dots_b32(int T, Value* wp, Value* t0, const Accs& acc);  // matmul/int_dots_b32.cpp
  void emit_dequant_fma_b32(int T, Value* wp, Value* t0, const Accs& acc);  // matmul/dequant_fma_b32.cpp

  void fma_into(Value* a, Value* x, Value* y) { e.store(e.fma(x, y, e.load(x->getType(), a, 32)), a, 32); }

  // Lanes of the float accumulators (Accs::W): 16 where AVX-512 doubles the FMA width and a panel
  // is 16 rows (f32, f16 and bf16 weights), else 8.
  int float_lanes() const {
    if (int_dots_) return il_;
    return tgt.avx512 && float_weights() && L.vectors == 2 ? 16 : 8;
  }
  // f32, f16 or bf16 weights (the float_fma inner loop), in either activation mode.
  bool float_weights() const { return !int_dots_ && !quant_ && !kquant_ && !block32_; }

  // Token t of the tile at t0 in the packed activations ([tile][k][tile_tokens]; a tile of
  // 2 x tile_tokens spans two packed tiles); x_splat(row, k, lanes) broadcasts its element k.
  Value* x_row(Value* t0, int t) {
    const int T = L.tile_tokens;
    Value* first = B.CreateAdd(t0, e.c64(t / T * T));
    return e.at(xp_, B.CreateAdd(B.CreateMul(B.CreateSub(first, mb_), e.c64(s.K * 4)), e.c64(4 * (t % T))));
  }

  Value* x_splat(Value* xr, Value* k, unsigned lanes = 8) {
    return e.splat(e.load(e.f32, e.at(xr, B.CreateMul(k, e.c64(L.tile_tokens * 4))), 4), lanes);
  }

  // This thread's quantized activations of the tile's T tokens from t0 (one row each in scratch).
  std::vector<Value*> activation_rows(int T, Value* t0) {
    std::vector<Value*> rows;
    for (int t = 0; t < T; ++t) rows.push_back(e.at(act_, B.CreateMul(B.CreateAdd(t0, e.c64(t)), e.c64(L.scratch_per_token))));
    return rows;
  }

  // Decoding (a tile of one token) streams each weight byte once, and the hardware prefetchers
  // alone leave a thread short of its read bandwidth: every cache line of [p, p + bytes) is
  // also requested kWeightPrefetchDistance bytes ahead (1 KiB: tinyllama q4_0 tg64 37.5 -> 44
  // tok/s on the Intel host; 4 KiB ahead was slower than none).
  // A tile of several tokens (several streams decoding together, a short prompt) computes so long
  // per weight line that a line 1 KiB ahead is still too late and the hardware prefetchers stall
  // it: each memory miss then costs its whole latency (8 rows of q4_0 ran at half their in-cache
  // speed). So the tile that first reads a panel in a token block requests the same line of the
  // *next* panel (thousands of cycles ahead, into L2), and later tiles re-request their own
  // cached line (next_panel_delta_ is 0 for them), which costs one load slot. AMD Zen 5, 8 rows
  // from memory, 2 threads: q4_0 310 -> 480-580 G int8 ops/s, q4_k 310-385 -> 380-600, q6_k
  // 170-205 -> 230-420, q8_0 245-260 -> 295-355, f16 120-137 -> 144-155 G FLOP/s; 512 rows as before.
  static constexpr int64_t kWeightPrefetchDistance = 1024;
  static constexpr int kNextPanelLocality = 2;  // prefetcht1
  Value* next_panel_delta_ = nullptr;           // emit_tile: i64 panel_bytes or 0; nullptr for one-token tiles
  void prefetch_weights(int T, Value* p, int64_t bytes) { prefetch_weights_part(T, p, bytes, 0, 1); }
  // The lines of part `part` of `parts` of [p, p + bytes). A loop iteration that reads many lines
  // (a k-quant super-block: 1.6-3.4 KiB a panel) spreads its prefetches over its steps: issued at
  // once, more lines than the core's miss buffers hold were asked for and the prefetches did not
  // help (q4_k decode on the AMD Zen 2 host: 4.6 -> 8-9 GB/s a thread, q4_0's rate).
  void prefetch_weights_part(int T, Value* p, int64_t bytes, int part, int parts) {
    if (T != 1 && !next_panel_delta_) return;
    const int64_t lines = (bytes + 63) / 64;
    for (int64_t l = lines * part / parts; l < lines * (part + 1) / parts; ++l) {
      Value* at = T == 1 ? e.at(p, kWeightPrefetchDistance + 64 * l) : e.at(e.at(p, next_panel_delta_), 64 * l);
      B.CreateIntrinsic(llvm::Intrinsic::prefetch, {e.ptr},
                        {at, B.getInt32(0), B.getInt32(T == 1 ? 3 : kNextPanelLocality), B.getInt32(1)});
    }
  }

  // Integer sums of a tile, [half][token][vector]: i16 pairs (pmaddubsw), or i32 with VNNI.
  using HalfSums = std::vector<std::vector<std::vector<Value*>>>;
  HalfSums half_sums(int T) const {
    return HalfSums(2, std::vector<std::vector<Value*>>(static_cast<size_t>(T), std::vector<Value*>(static_cast<size_t>(iv_), nullptr)));
  }

  // sums[t][v] += the dot of group g (4 consecutive elements of 8 rows per vector) of activation
  // block `blk` of each token with signed weights w (|w| in aw, |w| <= 32): x takes w's sign
  // (psignb), then |w| * x through pmaddubsw (i16; four groups stay below 2^15) or vpdpbusd.
  void accumulate_signed_group(const std::vector<Value*>& rows, Value* blk, int g, const std::vector<Value*>& w,
                               const std::vector<Value*>& aw, std::vector<std::vector<Value*>>& sums) {
    for (size_t t = 0; t < rows.size(); ++t) {
      Value* xb = e.bcast32(e.at(rows[t], B.CreateAdd(B.CreateMul(blk, e.c64(32)), e.c64(4 * g))), static_cast<unsigned>(il_));
      for (int v = 0; v < iv_; ++v) {
        Value* sg = e.sign8(xb, w[static_cast<size_t>(v)]);
        Value*& sum = sums[t][static_cast<size_t>(v)];
        if (e.vnni) {  // straight to i32 (vpdpbusd)
          sum = e.dot4(sum, aw[static_cast<size_t>(v)], sg);
          continue;
        }
        Value* m = e.maddubs(aw[static_cast<size_t>(v)], sg);
        sum = sum ? B.CreateAdd(sum, m) : m;
      }
    }
  }

  // ---- k-quants and iq4_xs: q8_K activations (q8k_row_dot in ir/ops.cpp)
  // A q8_K activation row in scratch: K quant bytes, then per super-block its f32 scale, then the
  // i16 sums of every 16 values (q2_k's mins), then the i16 sums of every 32 (q4_k's, q5_k's).
  // Fits the q8_0 row's size (K + K/32 * 8), so scratch does not depend on the format.
  Value* q8k_scale_at(Value* row, Value* sb) { return e.at(row, B.CreateAdd(e.c64(s.K), B.CreateMul(sb, e.c64(4)))); }
  int64_t q8k_sums16_offset() const { return s.K + s.K / kQK_K * 4; }
  int64_t q8k_sums32_offset() const { return q8k_sums16_offset() + s.K / 16 * 2; }
  // Quant byte `i` of super-block sb, sub-block `sub` (32 values) of an activation row.
  Value* q8k_byte_at(Value* row, Value* sb, int sub, int i) {
    return e.at(row, B.CreateAdd(B.CreateMul(sb, e.c64(kQK_K)), e.c64(32 * sub + i)));
  }

  // Integer super-block sums of a tile, [token][vector] (<8 x i32>, one lane per weight row).
  using SuperSums = std::vector<std::vector<Value*>>;
  SuperSums super_sums(int T) const {
    return SuperSums(static_cast<size_t>(T), std::vector<Value*>(static_cast<size_t>(iv_), nullptr));
  }

  // The scale bytes of the il_ rows of one vector at p, as <2 il_ x i16> with each row's scale in
  // both lanes of its pair (for pmaddwd) or as <il_ x i32>.
  Value* scale_pairs(Value* p, bool is_signed) {
    const unsigned n = static_cast<unsigned>(il_);
    Value* b = e.load(e.vec(e.i8, n), p, 1);
    Value* w = is_signed ? B.CreateSExt(b, e.vec(e.i16, n)) : B.CreateZExt(b, e.vec(e.i16, n));
    std::vector<int> pairs;
    for (int i = 0; i < il_; ++i) pairs.insert(pairs.end(), {i, i});
    return B.CreateShuffleVector(w, w, pairs);
  }
  Value* scale_lanes(Value* p, bool is_signed) {
    const unsigned n = static_cast<unsigned>(il_);
    Value* b = e.load(e.vec(e.i8, n), p, 1);
    return is_signed ? B.CreateSExt(b, e.vec(e.i32, n)) : B.CreateZExt(b, e.vec(e.i32, n));
  }

  // isum += sc * dot for the 8 rows of a vector: `dot` as pmaddubsw's i16 pair sums (one pmaddwd
  // by the scale pairs does the multiply and the pair sum), or as i32 lanes (VNNI's, or dot4's):
  // one multiply. Exact: callers keep |sc * dot| and isum far below 2^31.
  void add_scaled(Value*& isum, Value* dot, bool dot_is_i16, Value* sc_bytes, bool sc_signed) {
    Value* v = dot_is_i16 ? e.maddwd(dot, scale_pairs(sc_bytes, sc_signed)) : B.CreateMul(dot, scale_lanes(sc_bytes, sc_signed));
    isum = isum ? B.CreateAdd(isum, v) : v;
  }

  // q6_k, q3_k: the two 16-element halves' dots of a 32-element block (accumulate_signed_group)
  // times their signed scales (half h's for the il_ rows of vector v at sc + h P + il_ v) into sums.
  void add_scaled_halves(SuperSums& sums, const HalfSums& isum, Value* sc) {
    const int P = L.panel_rows;
    for (int half = 0; half < 2; ++half)
      for (size_t t = 0; t < sums.size(); ++t)
        for (int v = 0; v < iv_; ++v)
          add_scaled(sums[t][static_cast<size_t>(v)], isum[static_cast<size_t>(half)][t][static_cast<size_t>(v)], !e.vnni,
                     e.at(sc, half * P + v * il_), true);
  }

  // msum[t][v] = sum_j m_j * asum_j over the `count` mins of a super-block (unsigned bytes, min j
  // of the il_ rows of vector v at mins + j P + il_ v) and the activation's i16 sums of the same
  // values (from byte offset `sums` of each row, `count` per super-block): pmaddwd of the mins of
  // j = 2i, 2i + 1 (interleaved) with the two sums broadcast.
  // With scales_signed, the bytes are signed scales (q6_k's -32 offset term: sum_j sc_j * bsum_j).
  SuperSums min_sums(const std::vector<Value*>& rows, Value* sb, Value* mins, int count, int64_t sums, bool scales_signed = false) {
    const int P = L.panel_rows;
    SuperSums msum = super_sums(static_cast<int>(rows.size()));
    const unsigned n = static_cast<unsigned>(il_);
    std::vector<int> interleave;
    for (int i = 0; i < il_; ++i) {
      interleave.push_back(i);
      interleave.push_back(il_ + i);
    }
    for (int i = 0; i < count / 2; ++i) {
      std::vector<Value*> mp;
      for (int v = 0; v < iv_; ++v) {
        auto widen = [&](Value* b) { return scales_signed ? B.CreateSExt(b, e.vec(e.i16, n)) : B.CreateZExt(b, e.vec(e.i16, n)); };
        Value* m0 = widen(e.load(e.vec(e.i8, n), e.at(mins, (2 * i) * P + v * il_), 1));
        Value* m1 = widen(e.load(e.vec(e.i8, n), e.at(mins, (2 * i + 1) * P + v * il_), 1));
        mp.push_back(B.CreateShuffleVector(m0, m1, interleave));
      }
      for (size_t t = 0; t < rows.size(); ++t) {
        Value* pair = e.at(rows[t], B.CreateAdd(e.c64(sums + 4 * i), B.CreateMul(sb, e.c64(2 * count))));
        Value* a = B.CreateBitCast(e.bcast32(pair, n), e.vec(e.i16, 2 * n));
        for (int v = 0; v < iv_; ++v) {
          Value* prod = e.maddwd(mp[static_cast<size_t>(v)], a);
          Value*& m = msum[t][static_cast<size_t>(v)];
          m = m ? B.CreateAdd(m, prod) : prod;
        }
      }
    }
    return msum;
  }

  // The super-block's one f32 step, the reference's order (q8k_row_dot):
  // acc += (d * da) * float(isum) [- (dmin * da) * float(msum)], d and dmin per row (il_ lanes).
  void add_super_block_values(const std::vector<Value*>& rows, Value* sb, const std::vector<Value*>& d, const std::vector<Value*>* dmin,
                              const SuperSums& isum, const SuperSums* msum, const Accs& acc) {
    for (size_t t = 0; t < rows.size(); ++t) {
      Value* da = e.splat(e.load(e.f32, q8k_scale_at(rows[t], sb), 4), static_cast<unsigned>(il_));
      for (int v = 0; v < iv_; ++v) {
        const size_t vi = static_cast<size_t>(v);
        Value* value = B.CreateFMul(B.CreateFMul(d[vi], da), B.CreateSIToFP(isum[t][vi], vfi()));
        if (dmin)
          value = B.CreateFSub(value, B.CreateFMul(B.CreateFMul((*dmin)[vi], da), B.CreateSIToFP((*msum)[t][vi], vfi())));
        add_block_value(acc.at(static_cast<int>(t), v, 0), value);
      }
    }
  }

  // acc += value: one f32 add per block, the reference's order (q8_row_dot), no fused multiply-add.
  void add_block_value(Value* accp, Value* value) { e.store(B.CreateFAdd(e.load(vfi(), accp, 32), value), accp, 32); }

  // Bias, SwiGLU, residual, store; the last panel with constant lane masks when it is partial.
  // With `valid` (run-time), only tokens below it are stored (a partial amx step).
  void emit_epilogue(int T, Value* p, Value* t0, const std::vector<std::vector<Value*>>& sums, Value* valid = nullptr);

  // RoPE on the heads this thread computed, after all its panels (a thread owns whole heads).
  void emit_rope(Value* p0, Value* p1);

  // The amx tier (matmul/amx_tiles.cpp): q8_0, q4_0, q4_k and q6_k weights, q8 activations, 16
  // tokens at a time (the other 8-bit kernels stay on the register tiles, with the same numbers).
  bool amx_applies() const;
  Value *amx_c_ = nullptr, *amx_b_ = nullptr;  // this thread's stored C tiles, unpacked q4_0/q4_k/q6_k panel
  // ldtilecfg: the tile shapes for this kernel's panel width; A and C tiles of 16 token rows, or
  // of `rows` (a run-time i64 below 16) for a partial step.
  void emit_amx_config(Value* rows = nullptr);
  void emit_amx_release();  // tilerelease
  void emit_amx_unpack(Value* p);  // q4_0, q4_k, q6_k: panel p's quants as bytes in B-tile order
  // Tokens t0..t0+15, panel p, epilogue included; with `valid` (run-time, 1..15) a partial step
  // of that many tokens (the tiles configured for as many rows): the other rows are neither read
  // nor stored.
  void emit_amx_tile(Value* p, Value* t0, Value* valid = nullptr);
  Value* amx_rows_ = nullptr;  // the rows of the current step's A and C tiles when partial
  // Token t's activation row of the step at a0 (a partial step reads its last valid row again
  // for the rows it does not compute).
  Value* amx_row(Value* a0, int t) {
    if (!amx_rows_) return e.at(a0, t * L.scratch_per_token);
    Value* tt = e.smin(e.c64(t), B.CreateSub(amx_rows_, e.c64(1)));
    return e.at(a0, B.CreateMul(tt, e.c64(L.scratch_per_token)));
  }
  // q4_k, q6_k: the super-blocks of one amx step (q8_K activations), tile_dot/tile_store/add_value
  // from emit_amx_tile.
  void emit_amx_kquant_steps(Value* p, Value* a0, const std::function<void(int, Value*, Value*)>& tile_dot,
                             const std::function<Value*(int)>& tile_store, const std::function<void(int, Value*)>& add_value);
  // K bytes of one tile multiply: 16 for q6_k (a half with its own scale), else 32.
  int amx_k() const { return s.weight == ElementType::q6_k ? kQK / 2 : kQK; }
  // CodegenOptions::emulate_amx on a tier without AMX: the tile unit in plain IR (tests).
  bool amx_emulated() const { return opt.emulate_amx && !tgt.amx; }
  Value* amx_emu_c_[2] = {nullptr, nullptr};  // the emulated C tiles
  void emulated_tile_dot(int slot, Value* ap, Value* a_stride, Value* bq);
};

// One inner loop and when it applies (exactly one applies to any supported spec).
struct MatMulInnerLoop {
  const char* name;
  const char* what;
  bool (*applies)(const MatMulEmitter& m);
  void (MatMulEmitter::*emit)(int T, Value* wp, Value* t0, const MatMulEmitter::Accs& acc);
};

// Every inner loop, from kernels/matmul/*.cpp.
extern const MatMulInnerLoop* const kMatMulInnerLoops[12];

}  // namespace ingot::matmul
