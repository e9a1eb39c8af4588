// The matmul kernel family (WeightMatMul, FusedMatMul): spec, arguments, packed weights, the
// emitter and harness cases. LLVM IR written with IRBuilder. Loops whose bodies are
// register tiles are emitted fully unrolled from C++ loops (so every static size is a constant);
// mutable values live in entry-block allocas that SROA turns into registers.
#include <functional>
#include <string>
#include <vector>

#include <llvm/IR/BasicBlock.h>
#include <llvm/IR/Constants.h>
#include <llvm/IR/DerivedTypes.h>
#include <llvm/IR/Function.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/Metadata.h>
#include <llvm/IR/IntrinsicsX86.h>
#include <llvm/IR/Module.h>

#include "codegen/kernel_registry.h"
#include "codegen/llvm/emit_ir.h"
#include "ir/quant.h"

namespace ingot {
namespace {

using llvm::BasicBlock;
using llvm::Value;

using Emitter = ir_emit::Fn;

// ---------------------------------------------------------------- matmul
class MatMulEmitter {
 public:
  MatMulEmitter(Emitter& e, const MatMulSpec& s, const MatMulLayout& L, const CodegenOptions& o, const EmitContext& t)
      : e(e), B(e.B), s(s), L(L), opt(o), tgt(t) {}

  Status emit() {
    quant_ = s.weight == ElementType::q8_0 || s.weight == ElementType::q4_0;
    kquant_ = s.weight == ElementType::q4_k || s.weight == ElementType::q6_k;
    int_dots_ = (quant_ || kquant_) && s.act_q8;
    e.avx2 = tgt.avx2;
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

    auto [u0, u1] = e.thread_range(e.c64(L.units));
    Value* p0 = B.CreateMul(u0, e.c64(L.panels_per_unit));
    Value* p1 = e.smin(B.CreateMul(u1, e.c64(L.panels_per_unit)), e.c64(L.panels));

    if (int_dots_) {
      Value* scratch = e.arg_ptr(kMatMulScratch);
      Value* tid = B.CreateSExt(e.F->getArg(2), e.i64);
      act_ = e.at(scratch, B.CreateMul(B.CreateMul(tid, M_), e.c64(L.scratch_per_token)));
      emit_quantize_activations();
    } else {
      // This thread's packed activations: round_up(min(M, tokens_per_block), T) tokens.
      Value* scratch = e.arg_ptr(kMatMulScratch);
      Value* tid = B.CreateSExt(e.F->getArg(2), e.i64);
      const int64_t T = L.tile_tokens;
      Value* cap = B.CreateMul(B.CreateSDiv(B.CreateAdd(e.smin(M_, e.c64(L.tokens_per_block)), e.c64(T - 1)), e.c64(T)), e.c64(T));
      xp_ = e.at(scratch, B.CreateMul(B.CreateMul(tid, cap), e.c64(L.scratch_per_token)));
    }

    const int T = L.tile_tokens;
    e.loop(e.c64(0), M_, L.tokens_per_block, [&](Value* mb) {
      Value* mend = e.smin(B.CreateAdd(mb, e.c64(L.tokens_per_block)), M_);
      mb_ = mb;
      if (!int_dots_) emit_pack_activations(mb, mend);
      e.loop(p0, p1, 1, [&](Value* p) {
        Value* full = B.CreateMul(B.CreateSDiv(B.CreateSub(mend, mb), e.c64(T)), e.c64(T));
        Value* tfull = B.CreateAdd(mb, full);
        e.loop(mb, tfull, T, [&](Value* t) { emit_tile(T, p, t); }, "tile");
        if (T > 1) {
          Value* rem = B.CreateSub(mend, tfull);
          BasicBlock* done = BasicBlock::Create(e.C, "rem.done", e.F);
          llvm::SwitchInst* sw = B.CreateSwitch(rem, done, static_cast<unsigned>(T - 1));
          for (int r = 1; r < T; ++r) {
            BasicBlock* cb = BasicBlock::Create(e.C, "rem" + std::to_string(r), e.F);
            sw->addCase(B.getInt64(static_cast<uint64_t>(r)), cb);
            B.SetInsertPoint(cb);
            emit_tile(r, p, tfull);
            B.CreateBr(done);
          }
          B.SetInsertPoint(done);
        }
      }, "panel");
    }, "mblock");

    if (s.rope != RopeLayout::none) emit_rope(p0, p1);
    B.CreateRetVoid();
    return Status::Ok();
  }

 private:
  Emitter& e;
  llvm::IRBuilder<>& B;
  const MatMulSpec& s;
  const MatMulLayout& L;
  const CodegenOptions& opt;
  const EmitContext& tgt;
  bool quant_ = false, int_dots_ = false, kquant_ = false;
  int64_t nout_ = 0, nb_ = 0, block_out_ = 0;
  int qb_ = 0, tail_valid_ = 0;
  Value *y_ = nullptr, *x_ = nullptr, *w_ = nullptr, *bias_ = nullptr, *res_ = nullptr, *M_ = nullptr, *act_ = nullptr;
  Value *xp_ = nullptr, *mb_ = nullptr;  // packed float activations of the current token block

  // Float activations of tokens [mb, mend) packed tile by tile as [tile][k][T], so that a tile's
  // broadcasts read one sequential stream; f16-rounded here for f16 weights in the q8 mode
  // (llama.cpp converts activations to f16 for its f16 dot products).
  void emit_pack_activations(Value* mb, Value* mend) {
    const int64_t T = L.tile_tokens;
    const bool round16 = s.act_q8 && s.weight == ElementType::f16;
    e.loop(mb, mend, 1, [&](Value* t) {
      Value* rel = B.CreateSub(t, mb);
      Value* tile = B.CreateSDiv(rel, e.c64(T));
      Value* tt = B.CreateSRem(rel, e.c64(T));
      Value* dst = e.at(xp_, B.CreateMul(B.CreateAdd(B.CreateMul(tile, e.c64(s.K * T)), tt), e.c64(4)));
      Value* src = e.at(x_, B.CreateMul(t, e.c64(s.K * 4)));
      e.loop(e.c64(0), e.c64(s.K), 1, [&](Value* k) {
        Value* v = e.load(e.f32, e.at(src, B.CreateMul(k, e.c64(4))), 4);
        if (round16) v = B.CreateFPExt(B.CreateFPTrunc(v, e.f16), e.f32);
        e.store(v, e.at(dst, B.CreateMul(k, e.c64(T * 4))), 4);
      }, "pack.k");
    }, "pack.t");
  }

  llvm::Type* vf() { return e.vec(e.f32, 8); }

  // q8 activations of rows 0..M into this thread's scratch: per row K quant bytes, then nb f32
  // scales (f16-rounded, as ggml stores them), then nb i32 sums times 8 (the q4_0 offset).
  void emit_quantize_activations() {
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
        Value* s8 = B.CreateMul(B.CreateAddReduce(sum), B.getInt32(8));
        e.store(s8, e.at(ar, B.CreateAdd(e.c64(s.K + nb_ * 4), B.CreateMul(b, e.c64(4)))), 4);
      }, "qblk");
    }, "qrow");
  }

  // Accumulators of a tile: [token][vector][split]. With few tokens, several independent
  // accumulators per output vector (alternate k steps) hide the FMA latency: one token and one
  // accumulator chain would stall on every FMA.
  struct Accs {
    int T = 0, V = 0, S = 1;
    std::vector<Value*> vars;
    Value* at(int t, int v, int s) const { return vars[static_cast<size_t>((t * V + v) * S + s)]; }
  };

  // One register tile: T tokens starting at t0, the whole panel p.
  void emit_tile(int T, Value* p, Value* t0) {
    Accs acc;
    acc.T = T;
    acc.V = L.vectors;
    // One chain per output where the reference specifies the order (8-bit activations; f16
    // weights in the q8 mode: k in order), so every tile size rounds alike.
    const bool ordered = int_dots_ || (s.act_q8 && s.weight == ElementType::f16);
    acc.S = ordered ? 1 : std::max(1, std::min(4, 8 / (T * L.vectors)));
    for (int i = 0; i < T * acc.V * acc.S; ++i) acc.vars.push_back(e.var(vf(), llvm::Constant::getNullValue(vf())));
    Value* wp = e.at(w_, B.CreateMul(p, e.c64(L.panel_bytes)));
    if (int_dots_ && s.weight == ElementType::q4_k)
      emit_int_dots_q4k(T, wp, t0, acc);
    else if (int_dots_ && s.weight == ElementType::q6_k)
      emit_int_dots_q6k(T, wp, t0, acc);
    else if (int_dots_)
      emit_int_dots(T, wp, t0, acc);
    else if (kquant_)
      emit_kquant_fma(T, wp, t0, acc);
    else if (quant_)
      emit_dequant_fma(T, wp, t0, acc);
    else
      emit_float_fma(T, wp, t0, acc);
    std::vector<std::vector<Value*>> sums(static_cast<size_t>(T));
    for (int t = 0; t < T; ++t)
      for (int v = 0; v < acc.V; ++v) {
        Value* sum = e.load(vf(), acc.at(t, v, 0), 32);
        for (int k = 1; k < acc.S; ++k) sum = B.CreateFAdd(sum, e.load(vf(), acc.at(t, v, k), 32));
        sums[static_cast<size_t>(t)].push_back(sum);
      }
    emit_epilogue(T, p, t0, sums);
  }

  void fma_into(Value* a, Value* x, Value* y) { e.store(e.fma(x, y, e.load(vf(), a, 32)), a, 32); }

  // Token t of the tile at t0 in the packed activations; x_splat(row, k) broadcasts its element k.
  Value* x_row(Value* t0, int t) {
    return e.at(xp_, B.CreateAdd(B.CreateMul(B.CreateSub(t0, mb_), e.c64(s.K * 4)), e.c64(4 * t)));
  }

  Value* x_splat(Value* xr, Value* k) {
    return e.splat(e.load(e.f32, e.at(xr, B.CreateMul(k, e.c64(L.tile_tokens * 4))), 4));
  }

  // f32 / f16 weights: [k][panel_rows] vectors; acc[t][v] += w[k][v] * x[t][k].
  void emit_float_fma(int T, Value* wp, Value* t0, const Accs& acc) {
    const int V = L.vectors;
    const int es = s.weight == ElementType::f32 ? 4 : 2;
    std::vector<Value*> xr;
    for (int t = 0; t < T; ++t) xr.push_back(x_row(t0, t));
    auto step = [&](Value* k, int split) {
      std::vector<Value*> wv;
      Value* wk = e.at(wp, B.CreateMul(k, e.c64(static_cast<int64_t>(L.panel_rows) * es)));
      for (int v = 0; v < V; ++v) {
        if (es == 4) {
          wv.push_back(e.load(vf(), e.at(wk, v * 32), 4));
        } else {
          wv.push_back(B.CreateFPExt(e.load(e.vec(e.f16, 8), e.at(wk, v * 16), 2), vf()));
        }
      }
      for (int t = 0; t < T; ++t) {
        Value* xs = x_splat(xr[static_cast<size_t>(t)], k);
        for (int v = 0; v < V; ++v) fma_into(acc.at(t, v, split % acc.S), wv[static_cast<size_t>(v)], xs);
      }
    };
    const int U = 4;
    const int64_t main = s.K / U * U;
    e.loop(e.c64(0), e.c64(main), U, [&](Value* k) {
      for (int u = 0; u < U; ++u) step(B.CreateAdd(k, e.c64(u)), u);
    }, "k");
    for (int64_t k = main; k < s.K; ++k) step(e.c64(k), static_cast<int>(k));
  }

  // q8_0 / q4_0 weights with f32 activations: per block the panel's scales, then [k][lanes] bytes
  // (q4_0: the low nibble is element k, the high one k + 16); dequantized in registers.
  void emit_dequant_fma(int T, Value* wp, Value* t0, const Accs& acc) {
    const int V = L.vectors, P = L.panel_rows;
    std::vector<Value*> xr;
    for (int t = 0; t < T; ++t) xr.push_back(x_row(t0, t));
    e.loop(e.c64(0), e.c64(nb_), 1, [&](Value* b) {
      Value* bp = e.at(wp, B.CreateMul(b, e.c64(block_out_)));
      std::vector<Value*> sc, m8;
      for (int v = 0; v < V; ++v) {
        sc.push_back(B.CreateFPExt(e.load(e.vec(e.f16, 8), e.at(bp, v * 16), 2), vf()));
        m8.push_back(B.CreateFMul(sc.back(), e.splat(e.cf(-8.0f))));
      }
      Value* kb = B.CreateMul(b, e.c64(kQK));
      auto fma_all = [&](int64_t k, const std::vector<Value*>& wv) {
        for (int t = 0; t < T; ++t) {
          Value* xs = x_splat(xr[static_cast<size_t>(t)], B.CreateAdd(kb, e.c64(k)));
          for (int v = 0; v < V; ++v) fma_into(acc.at(t, v, static_cast<int>(k % acc.S)), wv[static_cast<size_t>(v)], xs);
        }
      };
      for (int kk = 0; kk < qb_; ++kk) {
        std::vector<Value*> lo, hi;
        for (int v = 0; v < V; ++v) {
          Value* bytes = e.load(e.vec(e.i8, 8), e.at(bp, 2 * P + kk * P + v * 8), 1);
          if (s.weight == ElementType::q8_0) {
            lo.push_back(B.CreateFMul(B.CreateSIToFP(B.CreateSExt(bytes, e.vec(e.i32, 8)), vf()), sc[static_cast<size_t>(v)]));
          } else {
            Value* w32 = B.CreateZExt(bytes, e.vec(e.i32, 8));
            Value* l4 = B.CreateAnd(w32, e.splat(B.getInt32(15)));
            Value* h4 = B.CreateLShr(w32, e.splat(B.getInt32(4)));
            // (q - 8) * d, rounded once, as the reference dequantization.
            lo.push_back(e.fma(B.CreateSIToFP(l4, vf()), sc[static_cast<size_t>(v)], m8[static_cast<size_t>(v)]));
            hi.push_back(e.fma(B.CreateSIToFP(h4, vf()), sc[static_cast<size_t>(v)], m8[static_cast<size_t>(v)]));
          }
        }
        fma_all(kk, lo);
        if (!hi.empty()) fma_all(kk + 16, hi);
      }
    }, "blk");
  }

  // q4_k / q6_k weights with f32 activations, dequantized in registers with the reference's
  // rounding: q4_k (d*sc)*q - dmin*m as one FMA (d*sc*q is exact in f32), q6_k (d*sc) * (q - 32).
  // Layouts in layout.cpp (pack_kquant_lane).
  void emit_kquant_fma(int T, Value* wp, Value* t0, const Accs& acc) {
    const int V = L.vectors, P = L.panel_rows;
    const bool q4 = s.weight == ElementType::q4_k;
    const int64_t rb = q4 ? 148 : 210;
    auto v8i32 = e.vec(e.i32, 8);
    std::vector<Value*> xr;
    for (int t = 0; t < T; ++t) xr.push_back(x_row(t0, t));
    auto lane_bytes_at = [&](Value* p, Value* off, int v, bool sign) {
      Value* b = e.load(e.vec(e.i8, 8), e.at(p, B.CreateAdd(off, e.c64(v * 8))), 1);
      return sign ? B.CreateSExt(b, v8i32) : B.CreateZExt(b, v8i32);
    };
    auto lane_bytes = [&](Value* p, int64_t off, int v, bool sign) { return lane_bytes_at(p, e.c64(off), v, sign); };
    auto tofloat = [&](Value* i) { return B.CreateSIToFP(i, vf()); };
    auto c32 = [&](int v) { return e.splat(B.getInt32(static_cast<uint32_t>(v))); };
    e.loop(e.c64(0), e.c64(s.K / kQK_K), 1, [&](Value* sb) {
      Value* bp = e.at(wp, B.CreateMul(sb, e.c64(rb * P)));
      Value* kb = B.CreateMul(sb, e.c64(kQK_K));
      // Every weight vector of a k step, then each token's broadcast once for all of them.
      // k = kb + k0 + k1 (k1 runtime, a multiple of 4); `split` picks the accumulator.
      auto fma_all = [&](Value* k1, int64_t k0, int split, const std::vector<Value*>& w) {
        Value* k = B.CreateAdd(B.CreateAdd(kb, k1), e.c64(k0));
        for (int t = 0; t < T; ++t) {
          Value* xs = x_splat(xr[static_cast<size_t>(t)], k);
          for (int v = 0; v < V; ++v) fma_into(acc.at(t, v, split % acc.S), w[static_cast<size_t>(v)], xs);
        }
      };
      std::vector<Value*> d(static_cast<size_t>(V));
      for (int v = 0; v < V; ++v) d[static_cast<size_t>(v)] = B.CreateFPExt(e.load(e.vec(e.f16, 8), e.at(bp, v * 16), 2), vf());
      if (q4) {
        std::vector<Value*> dmin(static_cast<size_t>(V));
        for (int v = 0; v < V; ++v)
          dmin[static_cast<size_t>(v)] = B.CreateFPExt(e.load(e.vec(e.f16, 8), e.at(bp, 2 * P + v * 16), 2), vf());
        for (int j = 0; j < 4; ++j) {
          std::vector<Value*> sc[2], mn[2];
          for (int h = 0; h < 2; ++h)
            for (int v = 0; v < V; ++v) {
              sc[h].push_back(B.CreateFMul(d[static_cast<size_t>(v)], tofloat(lane_bytes(bp, 4 * P + (2 * j + h) * P, v, false))));
              mn[h].push_back(B.CreateFNeg(B.CreateFMul(dmin[static_cast<size_t>(v)], tofloat(lane_bytes(bp, 12 * P + (2 * j + h) * P, v, false)))));
            }
          // l = l4 + u: a runtime loop unrolled by 4 keeps the code (and compile time) small.
          e.loop(e.c64(0), e.c64(32), 4, [&](Value* l4) {
            for (int u = 0; u < 4; ++u) {
              std::vector<Value*> lo, hi;
              Value* off = B.CreateAdd(e.c64(20 * P + (j * 32 + u) * P), B.CreateMul(l4, e.c64(P)));
              for (int v = 0; v < V; ++v) {
                Value* q = lane_bytes_at(bp, off, v, false);
                lo.push_back(e.fma(tofloat(B.CreateAnd(q, c32(15))), sc[0][static_cast<size_t>(v)], mn[0][static_cast<size_t>(v)]));
                hi.push_back(e.fma(tofloat(B.CreateLShr(q, c32(4))), sc[1][static_cast<size_t>(v)], mn[1][static_cast<size_t>(v)]));
              }
              fma_all(l4, 64 * j + u, u, lo);
              fma_all(l4, 64 * j + 32 + u, u, hi);
            }
          }, "l", true);
        }
      } else {
        std::vector<std::vector<Value*>> dsc(16);
        for (int j = 0; j < 16; ++j)
          for (int v = 0; v < V; ++v)
            dsc[static_cast<size_t>(j)].push_back(B.CreateFMul(d[static_cast<size_t>(v)], tofloat(lane_bytes(bp, 2 * P + j * P, v, true))));
        for (int h = 0; h < 2; ++h)
          for (int l16 = 0; l16 < 32; l16 += 16)  // the scale changes at l = 16
          e.loop(e.c64(0), e.c64(16), 4, [&](Value* l4) {
          for (int u = 0; u < 4; ++u) {
            const int l = l16 + u;  // plus l4
            std::vector<Value*> w[4];
            Value* o = B.CreateAdd(e.c64(18 * P + ((h * 32 + l) * 3) * P), B.CreateMul(l4, e.c64(3 * P)));
            for (int v = 0; v < V; ++v) {
              Value* a = lane_bytes_at(bp, o, v, false);
              Value* b = lane_bytes_at(bp, B.CreateAdd(o, e.c64(P)), v, false);
              Value* c = lane_bytes_at(bp, B.CreateAdd(o, e.c64(2 * P)), v, false);
              Value* q[4] = {
                  B.CreateOr(B.CreateAnd(a, c32(15)), B.CreateShl(B.CreateAnd(c, c32(3)), c32(4))),
                  B.CreateOr(B.CreateAnd(b, c32(15)), B.CreateShl(B.CreateAnd(B.CreateLShr(c, c32(2)), c32(3)), c32(4))),
                  B.CreateOr(B.CreateLShr(a, c32(4)), B.CreateShl(B.CreateAnd(B.CreateLShr(c, c32(4)), c32(3)), c32(4))),
                  B.CreateOr(B.CreateLShr(b, c32(4)), B.CreateShl(B.CreateLShr(c, c32(6)), c32(4))),
              };
              // Element 128h + 32i + l uses scale 8h + 2i + l/16.
              for (int i = 0; i < 4; ++i)
                w[i].push_back(B.CreateFMul(tofloat(B.CreateSub(q[i], c32(32))), dsc[static_cast<size_t>(8 * h + 2 * i + l / 16)][static_cast<size_t>(v)]));
            }
            for (int i = 0; i < 4; ++i) fma_all(l4, 128 * h + 32 * i + l, u, w[i]);
          }
          }, "l", true);
      }
    }, "sblk");
  }

  // This thread's quantized activations of the tile's T tokens from t0 (one row each in scratch).
  std::vector<Value*> activation_rows(int T, Value* t0) {
    std::vector<Value*> rows;
    for (int t = 0; t < T; ++t) rows.push_back(e.at(act_, B.CreateMul(B.CreateAdd(t0, e.c64(t)), e.c64(L.scratch_per_token))));
    return rows;
  }

  // acc += value: one f32 add per block, the reference's order (q8_row_dot), no fused multiply-add.
  void add_block_value(Value* accp, Value* value) { e.store(B.CreateFAdd(e.load(vf(), accp, 32), value), accp, 32); }

  // q8_0 / q4_0 weights with q8_0 activations: integer block dots with AVX2's pmaddubsw/pmaddwd.
  // Packed per block: the panel's f16 scales, then [group][lanes][4 bytes]: one 32-byte load is
  // 8 rows x 4 consecutive elements, dotted with 4 activation bytes broadcast to every row.
  void emit_int_dots(int T, Value* wp, Value* t0, const Accs& acc) {
    const int V = L.vectors, P = L.panel_rows;
    auto v32i8 = e.vec(e.i8, 32);
    auto v16i16 = e.vec(e.i16, 16);
    auto v8i32 = e.vec(e.i32, 8);
    Value* ones = e.splat(B.getInt16(1), 16);
    const std::vector<Value*> ar = activation_rows(T, t0);
    e.loop(e.c64(0), e.c64(nb_), 1, [&](Value* b) {
      Value* bp = e.at(wp, B.CreateMul(b, e.c64(block_out_)));
      Value* qp = e.at(bp, 2 * P);
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
              Value* m = B.CreateAdd(e.maddubs(lo[static_cast<size_t>(v)], xl),
                                     e.maddubs(hi[static_cast<size_t>(v)], xh));
              Value*& acc16 = isum[static_cast<size_t>(t)][static_cast<size_t>(v)];
              acc16 = acc16 ? B.CreateAdd(acc16, m) : m;
            }
          }
        }
        for (int t = 0; t < T; ++t)
          for (int v = 0; v < V; ++v) {
            Value*& s16 = isum[static_cast<size_t>(t)][static_cast<size_t>(v)];
            s16 = B.CreateSub(e.maddwd(s16, ones), e.splat(sx[static_cast<size_t>(t)]));
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
              Value* m = e.maddwd(
                               e.maddubs(aw[static_cast<size_t>(v)], sg), ones);
              Value*& a32 = (g % 2 ? isum2 : isum)[static_cast<size_t>(t)][static_cast<size_t>(v)];
              a32 = a32 ? B.CreateAdd(a32, m) : m;
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

  // q4_k weights with q8_0 activations: per super-block the panel's d, dmin (f16) and the eight
  // sub-blocks' 6-bit scales and mins (bytes), then [j][group][lanes][4 bytes] of quants whose low
  // nibbles belong to sub-block 2j and high nibbles to 2j + 1. Unsigned nibbles times signed
  // activations with pmaddubsw (eight groups of pairs: at most 8 * 2 * 15 * 127 = 30480, fits i16),
  // pairs to i32 with pmaddwd. Each sub-block then adds, in the reference's f32 order (q8_row_dot),
  // d_a * ((d * sc) * qa - (dmin * m) * sum(a)).
  void emit_int_dots_q4k(int T, Value* wp, Value* t0, const Accs& acc) {
    const int V = L.vectors, P = L.panel_rows;
    auto v32i8 = e.vec(e.i8, 32);
    Value* ones = e.splat(B.getInt16(1), 16);
    const std::vector<Value*> ar = activation_rows(T, t0);
    const int64_t sb_bytes = static_cast<int64_t>(P) * (4 + 16 + 128);
    e.loop(e.c64(0), e.c64(s.K / kQK_K), 1, [&](Value* sb) {
      Value* bp = e.at(wp, B.CreateMul(sb, e.c64(sb_bytes)));
      Value* qp = e.at(bp, 20 * P);
      std::vector<Value*> d, dmin;
      for (int v = 0; v < V; ++v) {
        d.push_back(B.CreateFPExt(e.load(e.vec(e.f16, 8), e.at(bp, v * 16), 2), vf()));
        dmin.push_back(B.CreateFPExt(e.load(e.vec(e.f16, 8), e.at(bp, 2 * P + v * 16), 2), vf()));
      }
      Value* b0 = B.CreateMul(sb, e.c64(8));  // the first activation block of this super-block
      for (int j = 0; j < 4; ++j) {
        // isum[half][t][v]: half 0 = sub-block 2j (low nibbles), 1 = 2j + 1 (high nibbles).
        std::vector<std::vector<std::vector<Value*>>> isum(2, std::vector<std::vector<Value*>>(
                                                                  static_cast<size_t>(T), std::vector<Value*>(static_cast<size_t>(V), nullptr)));
        for (int g = 0; g < 8; ++g) {
          std::vector<Value*> lo, hi;
          for (int v = 0; v < V; ++v) {
            Value* raw = e.load(v32i8, e.at(qp, ((j * 8 + g) * P + v * 8) * 4), 1);
            lo.push_back(B.CreateAnd(raw, e.splat(B.getInt8(15), 32)));
            hi.push_back(B.CreateLShr(raw, e.splat(B.getInt8(4), 32)));
          }
          for (int t = 0; t < T; ++t) {
            Value* a = ar[static_cast<size_t>(t)];
            Value* xl = e.bcast32(e.at(a, B.CreateAdd(B.CreateMul(B.CreateAdd(b0, e.c64(2 * j)), e.c64(32)), e.c64(4 * g))));
            Value* xh = e.bcast32(e.at(a, B.CreateAdd(B.CreateMul(B.CreateAdd(b0, e.c64(2 * j + 1)), e.c64(32)), e.c64(4 * g))));
            for (int v = 0; v < V; ++v) {
              Value*& sl = isum[0][static_cast<size_t>(t)][static_cast<size_t>(v)];
              Value*& sh = isum[1][static_cast<size_t>(t)][static_cast<size_t>(v)];
              Value* ml = e.maddubs(lo[static_cast<size_t>(v)], xl);
              Value* mh = e.maddubs(hi[static_cast<size_t>(v)], xh);
              sl = sl ? B.CreateAdd(sl, ml) : ml;
              sh = sh ? B.CreateAdd(sh, mh) : mh;
            }
          }
        }
        for (int half = 0; half < 2; ++half) {
          const int sub = 2 * j + half;
          std::vector<Value*> dl, mlv;
          for (int v = 0; v < V; ++v) {
            Value* sc = B.CreateUIToFP(e.load(e.vec(e.i8, 8), e.at(bp, 4 * P + sub * P + v * 8), 1), vf());
            Value* mn = B.CreateUIToFP(e.load(e.vec(e.i8, 8), e.at(bp, 12 * P + sub * P + v * 8), 1), vf());
            dl.push_back(B.CreateFMul(d[static_cast<size_t>(v)], sc));
            mlv.push_back(B.CreateFMul(dmin[static_cast<size_t>(v)], mn));
          }
          Value* blk = B.CreateAdd(b0, e.c64(sub));
          for (int t = 0; t < T; ++t) {
            Value* a = ar[static_cast<size_t>(t)];
            Value* da = e.splat(e.load(e.f32, e.at(a, B.CreateAdd(e.c64(s.K), B.CreateMul(blk, e.c64(4)))), 4));
            Value* s8 = e.load(e.i32, e.at(a, B.CreateAdd(e.c64(s.K + nb_ * 4), B.CreateMul(blk, e.c64(4)))), 4);
            Value* asum = e.splat(B.CreateSIToFP(B.CreateAShr(s8, B.getInt32(3)), e.f32));
            for (int v = 0; v < V; ++v) {
              Value* qa = B.CreateSIToFP(
                  e.maddwd(isum[static_cast<size_t>(half)][static_cast<size_t>(t)][static_cast<size_t>(v)], ones), vf());
              Value* inner = B.CreateFSub(B.CreateFMul(dl[static_cast<size_t>(v)], qa), B.CreateFMul(mlv[static_cast<size_t>(v)], asum));
              Value* value = B.CreateFMul(da, inner);
              add_block_value(acc.at(t, v, 0), value);
            }
          }
        }
      }
    }, "sblk8");
  }

  // q6_k weights with q8_0 activations: per super-block the panel's d (f16) and 16 signed scales,
  // then per half h, group g three 32-byte vectors (8 rows x 4 elements): the low nibbles of blocks
  // 4h, 4h+1, of 4h+2, 4h+3, and the four blocks' high 2-bit pairs (layout.cpp). Per block the 6-bit
  // quant is rebuilt, w = q - 32 (|w| <= 32), and |w| (unsigned) times x with w's sign (psignb)
  // goes through pmaddubsw; four groups (one 16-element half, one scale) sum in i16 (at most
  // 4 * 2 * 32 * 127 = 32512), then pmaddwd to i32. Each block adds, in the reference's f32 order
  // (q8_row_dot): d_a * ((d * sc0) * isum0 + (d * sc1) * isum1).
  void emit_int_dots_q6k(int T, Value* wp, Value* t0, const Accs& acc) {
    const int V = L.vectors, P = L.panel_rows;
    auto v32i8 = e.vec(e.i8, 32);
    Value* ones = e.splat(B.getInt16(1), 16);
    auto c8 = [&](int v) { return e.splat(B.getInt8(static_cast<uint8_t>(v)), 32); };
    const std::vector<Value*> ar = activation_rows(T, t0);
    const int64_t sb_bytes = static_cast<int64_t>(P) * (2 + 16 + 192);
    e.loop(e.c64(0), e.c64(s.K / kQK_K), 1, [&](Value* sb) {
      Value* bp = e.at(wp, B.CreateMul(sb, e.c64(sb_bytes)));
      Value* qp = e.at(bp, 18 * P);
      std::vector<Value*> d;
      for (int v = 0; v < V; ++v) d.push_back(B.CreateFPExt(e.load(e.vec(e.f16, 8), e.at(bp, v * 16), 2), vf()));
      Value* b0 = B.CreateMul(sb, e.c64(8));
      for (int h = 0; h < 2; ++h)
        for (int k = 0; k < 4; ++k) {
          const int blk = 4 * h + k;
          // isum[half16][t][v]
          std::vector<std::vector<std::vector<Value*>>> isum(2, std::vector<std::vector<Value*>>(
                                                                    static_cast<size_t>(T), std::vector<Value*>(static_cast<size_t>(V), nullptr)));
          for (int g = 0; g < 8; ++g) {
            std::vector<Value*> aw, wv;
            for (int v = 0; v < V; ++v) {
              Value* base = e.at(qp, ((h * 8 + g) * 3 * P + v * 8) * 4);
              Value* nib = e.load(v32i8, e.at(base, (k / 2) * P * 4), 1);
              Value* hib = e.load(v32i8, e.at(base, 2 * P * 4), 1);
              Value* lo = k % 2 == 0 ? B.CreateAnd(nib, c8(15)) : B.CreateLShr(nib, c8(4));
              // The block's two high bits, moved to bits 4..5.
              Value* hi2 = k == 0 ? B.CreateShl(hib, c8(4)) : k == 1 ? B.CreateShl(hib, c8(2)) : k == 2 ? hib : B.CreateLShr(hib, c8(2));
              Value* q = B.CreateOr(lo, B.CreateAnd(hi2, c8(0x30)));
              Value* w = B.CreateSub(q, c8(32));
              wv.push_back(w);
              aw.push_back(B.CreateBinaryIntrinsic(llvm::Intrinsic::abs, w, B.getFalse()));
            }
            for (int t = 0; t < T; ++t) {
              Value* xb = e.bcast32(e.at(ar[static_cast<size_t>(t)], B.CreateAdd(B.CreateMul(B.CreateAdd(b0, e.c64(blk)), e.c64(32)), e.c64(4 * g))));
              for (int v = 0; v < V; ++v) {
                Value* sg = e.sign8(xb, wv[static_cast<size_t>(v)]);
                Value* m = e.maddubs(aw[static_cast<size_t>(v)], sg);
                Value*& a16 = isum[static_cast<size_t>(g / 4)][static_cast<size_t>(t)][static_cast<size_t>(v)];
                a16 = a16 ? B.CreateAdd(a16, m) : m;
              }
            }
          }
          std::vector<Value*> dsc[2];
          for (int half = 0; half < 2; ++half)
            for (int v = 0; v < V; ++v) {
              Value* sc = B.CreateSIToFP(e.load(e.vec(e.i8, 8), e.at(bp, 2 * P + (2 * blk + half) * P + v * 8), 1), vf());
              dsc[half].push_back(B.CreateFMul(d[static_cast<size_t>(v)], sc));
            }
          Value* bi = B.CreateAdd(b0, e.c64(blk));
          for (int t = 0; t < T; ++t) {
            Value* da = e.splat(e.load(e.f32, e.at(ar[static_cast<size_t>(t)], B.CreateAdd(e.c64(s.K), B.CreateMul(bi, e.c64(4)))), 4));
            for (int v = 0; v < V; ++v) {
              Value* parts[2];
              for (int half = 0; half < 2; ++half) {
                Value* i32 = e.maddwd(isum[static_cast<size_t>(half)][static_cast<size_t>(t)][static_cast<size_t>(v)], ones);
                parts[half] = B.CreateFMul(dsc[half][static_cast<size_t>(v)], B.CreateSIToFP(i32, vf()));
              }
              Value* value = B.CreateFMul(da, B.CreateFAdd(parts[0], parts[1]));
              add_block_value(acc.at(t, v, 0), value);
            }
          }
        }
    }, "sblk6");
  }

  // Bias, SwiGLU, residual, store; the last panel with constant lane masks when it is partial.
  void emit_epilogue(int T, Value* p, Value* t0, const std::vector<std::vector<Value*>>& sums) {
    auto body = [&](bool tail) {
      const int V = L.vectors;
      const int OV = s.swiglu ? V / 2 : V;  // output vectors
      Value* col0 = B.CreateMul(p, e.c64(L.out_cols));
      auto lanes = [&](int v) {  // valid output lanes of vector v in this panel
        if (!tail) return 8;
        return std::max(0, std::min(8, tail_valid_ - 8 * v));
      };
      for (int t = 0; t < T; ++t) {
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
    };
    if (tail_valid_ == L.out_cols) {
      body(false);
    } else {
      e.if_else(B.CreateICmpEQ(p, e.c64(L.panels - 1)), [&] { body(true); }, [&] { body(false); });
    }
  }

  // RoPE on the heads this thread computed, after all its panels (a thread owns whole heads).
  void emit_rope(Value* p0, Value* p1) {
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
};

}  // namespace

// ---------------------------------------------------------------- the family
namespace {

Status err(const std::string& m) { return Status::Error(m); }

StatusOr<int64_t> static_dim(const Node& n, const Dim& d, const char* what) {
  if (!d.is_static()) return err("codegen: " + n.name + ": " + what + " must be static, got " + d.str());
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

int64_t matmul_scratch(const KernelSpec& spec, int64_t tokens) {
  auto L = matmul_layout(spec.matmul);
  if (!L.ok()) return 0;
  if (L->scratch_per_block) tokens = (std::min(tokens, L->tokens_per_block) + L->tile_tokens - 1) / L->tile_tokens * L->tile_tokens;
  return L->scratch_per_token * tokens;
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
  MatMulEmitter m(e, spec.matmul, L, ctx.options, ctx);
  Status st = m.emit();
  if (!st.ok()) e.F->eraseFromParent();
  return st;
}

}  // namespace

// Cases: tests/codegen/codegen_test.cpp (MatMulCase: every weight type, activation mode, epilogue,
// odd sizes and every CPU tier) drives this family through the same harness.
extern const KernelFamily kMatMulFamily = {
    "matmul", "x·wᵀ with bias, RoPE, SwiGLU and residual epilogues; weights f32, f16, q8_0, q4_0, q4_k, q6_k",
    matmul_computes, matmul_spec, matmul_key, matmul_args, matmul_scratch, matmul_packed, matmul_emit, nullptr};

}  // namespace ingot
