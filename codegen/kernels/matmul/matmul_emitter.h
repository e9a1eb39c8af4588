// Internal to the matmul kernel family: the emitter's state and helpers, shared by the driver
// (kernels/matmul.cpp: thread split, token blocks, activation packing or quantization, tiles,
// epilogues, RoPE) and the inner loops, one file each in kernels/matmul/ (the K loop of a register
// tile for one weight type and activation mode). Includes LLVM IR headers.
#pragma once

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

  // q8 activations of rows 0..M into this thread's scratch: per row K quant bytes, then nb f32
  // scales (f16-rounded, as ggml stores them), then nb i32 sums times 8 (the q4_0 offset).
  void emit_quantize_activations();

  // Accumulators of a tile: [token][vector][split]. With few tokens, several independent
  // accumulators per output vector (alternate k steps) hide the FMA latency: one token and one
  // accumulator chain would stall on every FMA.
  struct Accs {
    int T = 0, V = 0, S = 1;
    int W = 8;  // lanes per accumulator: 8, or 16 on AVX-512 tiers for float weights (one zmm per panel)
    std::vector<Value*> vars;
    Value* at(int t, int v, int s) const { return vars[static_cast<size_t>((t * V + v) * S + s)]; }
  };

  // One register tile: T tokens starting at t0, the whole panel p.
  void emit_tile(int T, Value* p, Value* t0);

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
  int float_lanes() const { return tgt.avx512 && !quant_ && !kquant_ && !block32_ && L.vectors == 2 ? 16 : 8; }

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
  // tok/s on the Intel host; 4 KiB ahead was slower than none). Larger tiles reuse each weight
  // for several tokens and need no help.
  static constexpr int64_t kWeightPrefetchDistance = 1024;
  void prefetch_weights(int T, Value* p, int64_t bytes) {
    if (T != 1) return;
    for (int64_t off = 0; off < bytes; off += 64)
      B.CreateIntrinsic(llvm::Intrinsic::prefetch, {e.ptr},
                        {e.at(p, kWeightPrefetchDistance + off), B.getInt32(0), B.getInt32(3), B.getInt32(1)});
  }

  // acc += value: one f32 add per block, the reference's order (q8_row_dot), no fused multiply-add.
  void add_block_value(Value* accp, Value* value) { e.store(B.CreateFAdd(e.load(vf(), accp, 32), value), accp, 32); }

  // Bias, SwiGLU, residual, store; the last panel with constant lane masks when it is partial.
  void emit_epilogue(int T, Value* p, Value* t0, const std::vector<std::vector<Value*>>& sums);

  // RoPE on the heads this thread computed, after all its panels (a thread owns whole heads).
  void emit_rope(Value* p0, Value* p1);

  // The amx tier (matmul/amx_tiles.cpp): q8_0, q4_0, q4_k and q6_k weights, q8 activations, 16
  // tokens at a time (the other 8-bit kernels stay on the register tiles, with the same numbers).
  bool amx_applies() const;
  Value *amx_c_ = nullptr, *amx_b_ = nullptr;  // this thread's stored C tiles, unpacked q4_0/q4_k/q6_k panel
  void emit_amx_config();   // ldtilecfg: the tile shapes for this kernel's panel width
  void emit_amx_release();  // tilerelease
  void emit_amx_unpack(Value* p);  // q4_0, q4_k, q6_k: panel p's quants as bytes in B-tile order
  void emit_amx_tile(Value* p, Value* t0);  // tokens t0..t0+15, panel p, epilogue included
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
