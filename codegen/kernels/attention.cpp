// The attention kernel family (the Attention op): the fused KV-cache write, then causal
// grouped-query attention with an online (flash-style) softmax over chunks of keys. See
// docs/codegen.md, "Attention".
#include <algorithm>
#include <cmath>
#include <limits>

#include "codegen/kernel_registry.h"
#include "codegen/llvm/emit_ir.h"
#include "ir/float_spec.h"

#include <llvm/IR/InlineAsm.h>

namespace ingot {
namespace {

using llvm::Value;
using ir_emit::Fn;

class AttentionEmitter {
 public:
  AttentionEmitter(Fn& f, const AttentionSpec& s, bool wide) : f(f), B(f.B), s(s), wide_(wide) {}

  void emit() {
    H_ = s.H;
    KV_ = s.KV;
    D_ = s.D;
    G_ = H_ / KV_;
    DV_ = D_ / 8;
    NQ_ = 1;  // the largest divisor of G up to kMaxHeadsPerPass
    for (int64_t n = 1; n <= kMaxHeadsPerPass; ++n)
      if (G_ % n == 0) NQ_ = n;
    es_ = s.cache == ElementType::f16 ? 2 : 4;
    S_ = attention_scratch(s);

    y_ = f.arg_ptr(kAttnY);
    T_ = f.dim(0);
    past_ = f.dim(1);
    if (s.packed) {
      Value* qkv = f.arg_ptr(kAttnQ);
      q_ = qkv;
      k_ = f.at(qkv, H_ * D_ * 4);
      v_ = f.at(qkv, (H_ + KV_) * D_ * 4);
      qstride_ = kstride_ = (H_ + 2 * KV_) * D_ * 4;
    } else {
      q_ = f.arg_ptr(kAttnQ);
      k_ = f.arg_ptr(kAttnK);
      v_ = f.arg_ptr(kAttnV);
      qstride_ = H_ * D_ * 4;
      kstride_ = KV_ * D_ * 4;
    }
    kc_ = f.arg_ptr(kAttnKCache);
    vc_ = f.arg_ptr(kAttnVCache);
    scratch_ = f.at(f.arg_ptr(kAttnScratch), f.thread(), S_.total);

    emit_cache_write();
    emit_attention();
    B.CreateRetVoid();
  }

 private:
  Fn& f;
  llvm::IRBuilder<>& B;
  const AttentionSpec& s;
  // AVX-512 tiers: the V accumulation may take two 8-lane vectors of a row per 16-lane instruction
  // (emit_queries_chunk); each lane's operations are the 8-lane ones, so the results are the same.
  const bool wide_;
  // Query heads of a group processed together per key chunk: 2 when G is even, else 1. A pair
  // holds its 16 query vectors, 8 score accumulators and a key vector in registers (D = 64).
  // emit_queries_chunk takes up to 8; 8 at once (the whole tinyllama group) was slower: a 10k-
  // instruction block per chunk (instruction fetch) and spilled scores.
  static constexpr int64_t kMaxHeadsPerPass = 2;
  int64_t H_ = 0, KV_ = 0, D_ = 0, G_ = 0, DV_ = 0, NQ_ = 1, es_ = 4;
  AttentionScratch S_;
  int64_t qstride_ = 0, kstride_ = 0;
  Value *y_ = nullptr, *T_ = nullptr, *past_ = nullptr, *q_ = nullptr, *k_ = nullptr, *v_ = nullptr;
  Value *kc_ = nullptr, *vc_ = nullptr, *scratch_ = nullptr;

  bool f16() const { return s.cache == ElementType::f16; }

  // Vector dv of a cache row at p, as f32.
  Value* load_cache(Value* p, int64_t dv) {
    if (f16()) return B.CreateFPExt(f.load(f.vec(f.f16, 8), f.at(p, dv * 16), 2), f.vf());
    return f.load(f.vf(), f.at(p, dv * 32), 4);
  }
  // A fresh f32 value as the cache will hold it (rounded to nearest even for an f16 cache).
  Value* as_cached(Value* v) { return f16() ? B.CreateFPExt(B.CreateFPTrunc(v, f.vec(f.f16, 8)), f.vf()) : v; }

  // Cache row of position `pos`, KV head `g`.
  Value* cache_row(Value* cache, Value* pos, Value* g) {
    return f.at(cache, B.CreateAdd(B.CreateMul(pos, f.c64(KV_)), g), D_ * es_);
  }
  // Fresh k or v row of token t, KV head g, in the input.
  Value* input_row(Value* base, Value* t, Value* g) {
    return f.at(f.at(base, t, kstride_), g, D_ * 4);
  }

  // The fused KV write: rows (t, g) of the T fresh tokens, split over threads; positions
  // past..past+T-1, which no thread reads in this call.
  void emit_cache_write() {
    auto [w0, w1] = f.thread_range(B.CreateMul(T_, f.c64(KV_)));
    f.loop(w0, w1, 1, [&](Value* u) {
      Value* t = B.CreateSDiv(u, f.c64(KV_));
      Value* g = B.CreateSRem(u, f.c64(KV_));
      Value* pos = B.CreateAdd(past_, t);
      for (int c = 0; c < 2; ++c) {
        Value* src = input_row(c == 0 ? k_ : v_, t, g);
        Value* dst = cache_row(c == 0 ? kc_ : vc_, pos, g);
        for (int64_t dv = 0; dv < DV_; ++dv) {
          Value* x = f.load(f.vf(), f.at(src, dv * 32), 4);
          if (f16())
            f.store(B.CreateFPTrunc(x, f.vec(f.f16, 8)), f.at(dst, dv * 16), 2);
          else
            f.store(x, f.at(dst, dv * 32), 4);
        }
      }
    }, "kvwrite");
  }

  // Keys c0..c0+CH-1 of KV head g staged as f32 rows in scratch: cache rows below past, fresh rows
  // (from the input, rounded as the cache holds them) below limit, zeros after.
  void emit_stage(Value* c0, Value* limit, Value* g) {
    const int64_t CH = kAttentionKeyChunk;
    f.loop(f.c64(0), f.c64(CH), 1, [&](Value* j) {
      Value* sp = B.CreateAdd(c0, j);
      Value* dk = f.at(f.at(scratch_, S_.k), j, D_ * 4);
      Value* dvp = f.at(f.at(scratch_, S_.v), j, D_ * 4);
      auto put = [&](const std::function<Value*(int, int64_t)>& get) {
        for (int c = 0; c < 2; ++c)
          for (int64_t dv = 0; dv < DV_; ++dv) f.store(get(c, dv), f.at(c == 0 ? dk : dvp, dv * 32), 4);
      };
      f.if_else(B.CreateICmpSLT(sp, past_), [&] {
        Value* rows[2] = {cache_row(kc_, sp, g), cache_row(vc_, sp, g)};
        put([&](int c, int64_t dv) { return load_cache(rows[c], dv); });
      }, [&] {
        f.if_else(B.CreateICmpSLT(sp, limit), [&] {
          Value* t = B.CreateSub(sp, past_);
          Value* rows[2] = {input_row(k_, t, g), input_row(v_, t, g)};
          put([&](int c, int64_t dv) { return as_cached(f.load(f.vf(), f.at(rows[c], dv * 32), 4)); });
        }, [&] {
          put([&](int, int64_t) { return llvm::Constant::getNullValue(f.vf()); });
        });
      });
    }, "stage");
  }

  // Software prefetch of the cache rows of the chunk at c1 (positions c1..c1+CH-1 of KV head g):
  // the rows of one head are D * es bytes every KV * D * es bytes, a pattern the hardware
  // prefetchers follow poorly; one chunk ahead hides the memory latency in decode. Prefetches past
  // the valid rows are harmless (they never fault and change nothing).
  void emit_prefetch(Value* c1, Value* g) {
    const int64_t CH = kAttentionKeyChunk;
    const int64_t row = D_ * es_;
    for (int c = 0; c < 2; ++c) {
      Value* base = cache_row(c == 0 ? kc_ : vc_, c1, g);
      for (int64_t j = 0; j < CH; ++j)
        for (int64_t off = 0; off < row; off += 64)
          B.CreateIntrinsic(llvm::Intrinsic::prefetch, {f.ptr},
                            {f.at(base, j * KV_ * row + off), B.getInt32(0), B.getInt32(3), B.getInt32(1)});
    }
  }

  // float_spec::tanhf on 8 lanes: both branches, selected by |x| < kTanhSmall.
  Value* vtanh(Value* x) {
    namespace fs = float_spec;
    auto c = [&](float v) { return f.splat(f.cf(v)); };
    Value* a = B.CreateUnaryIntrinsic(llvm::Intrinsic::fabs, x);
    Value* u = B.CreateFMul(x, x);
    Value* p = c(fs::kTanhPoly[0]);
    for (int i = 1; i < 6; ++i) p = f.fma(p, u, c(fs::kTanhPoly[i]));
    Value* small = f.fma(B.CreateFMul(x, u), p, x);
    Value* e = f.vexp(B.CreateFMul(c(-2.0f), a));
    Value* big = B.CreateBinaryIntrinsic(llvm::Intrinsic::copysign, B.CreateFDiv(B.CreateFSub(c(1.0f), e), B.CreateFAdd(c(1.0f), e)), x);
    return B.CreateSelect(B.CreateFCmpOLT(a, c(fs::kTanhSmall)), small, big);
  }

  // A scaled score as the reference has it: soft-capped when the spec says so.
  Value* capped(Value* score) {
    if (s.softcap <= 0) return score;
    const float inv = 1.0f / s.softcap;
    return B.CreateFMul(f.splat(f.cf(s.softcap)), vtanh(B.CreateFMul(score, f.splat(f.cf(inv)))));
  }

  Value* lane_splat(Value* v, int lane, unsigned lanes = 8) {
    return B.CreateShuffleVector(v, llvm::PoisonValue::get(f.vf()), std::vector<int>(lanes, lane));
  }

  // Lane-pair sums of a and b: one step of the transpose-add tree of ir_emit::Fn::transpose_sum8.
  Value* hadd(Value* a, Value* b) {
    return B.CreateFAdd(f.shuffle(a, b, {0, 2, 8, 10, 4, 6, 12, 14}), f.shuffle(a, b, {1, 3, 9, 11, 5, 7, 13, 15}));
  }

  // NQ <= 8 queries of one token (rows qrows[h], scratch slots i0 + h: heads of the same KV head)
  // against one chunk of keys: scores, online softmax update, weighted V accumulation. nvalid: keys
  // of the chunk the token sees (may exceed the chunk); keys of the chunk below `lo` (a sliding
  // window's start, relative to the chunk, >= 0) are masked like those past nvalid. `stride`
  // (bytes between key rows) is a constant, so every row address is base + constant.
  //
  // Every query's floating-point operations are exactly those of one query alone (the reference's
  // attention_row); only the schedule is shared. Scores and the V accumulation run over pairs of
  // queries, each key or value vector loaded once for both (half the loads per FMA of one query at
  // a time); the softmax updates of all NQ queries sit between them, lane by lane in shared vectors
  // (the scalars m, alpha, l of query h in lane h), where their independent dependency chains overlap.
  void emit_queries_chunk(const std::vector<Value*>& qrows, Value* i0, Value* kbase, Value* vbase, int64_t stride,
                          Value* nvalid, Value* lo) {
    const int64_t CH = kAttentionKeyChunk;
    const int groups = static_cast<int>(CH / 8);
    const size_t NQ = qrows.size();
    std::vector<Value*> krow(CH), vrow(CH);
    for (int64_t j = 0; j < CH; ++j) {
      krow[j] = f.at(kbase, j * stride);
      vrow[j] = f.at(vbase, j * stride);
    }
    // Pairs of queries (a single one last when NQ is odd).
    std::vector<std::pair<size_t, size_t>> pairs;
    for (size_t h = 0; h < NQ; h += 2) pairs.push_back({h, std::min(NQ, h + 2)});

    // Scores of 8 keys at a time: per query one accumulator per key (an FMA chain over dv), summed
    // across lanes by the transpose tree of transpose_sum8. The accumulators of 4 keys are done and
    // reduced to one vector (the tree's first two levels) before the next 4 start, so a pair holds
    // its 2 x 8 query vectors, 8 accumulators and one key vector in registers.
    Value* nv32 = B.CreateTrunc(f.smin(nvalid, f.c64(CH)), f.i32);
    std::vector<std::vector<Value*>> sc(NQ, std::vector<Value*>(groups));
    std::vector<Value*> mask(groups);
    Value* neg_inf = f.splat(f.cf(-std::numeric_limits<float>::infinity()));
    Value* scale = f.splat(f.cf(s.scale));
    Value* zero = llvm::Constant::getNullValue(f.vf());
    for (int gr = 0; gr < groups; ++gr) {
      std::vector<llvm::Constant*> idx;
      for (int l = 0; l < 8; ++l) idx.push_back(B.getInt32(static_cast<uint32_t>(gr * 8 + l)));
      mask[gr] = B.CreateICmpSLT(llvm::ConstantVector::get(idx), f.splat(nv32));
      if (lo) mask[gr] = B.CreateAnd(mask[gr], B.CreateICmpSGE(llvm::ConstantVector::get(idx), f.splat(B.CreateTrunc(lo, f.i32))));
    }
    for (auto [h0, h1] : pairs) {
      std::vector<std::vector<Value*>> qv(NQ);
      for (size_t h = h0; h < h1; ++h)
        for (int64_t dv = 0; dv < DV_; ++dv) qv[h].push_back(f.load(f.vf(), f.at(qrows[h], dv * 32), 4));
      for (int gr = 0; gr < groups; ++gr) {
        std::vector<std::vector<Value*>> half(NQ, std::vector<Value*>(2));
        for (int hf = 0; hf < 2; ++hf) {
          std::vector<std::vector<Value*>> acc(NQ, std::vector<Value*>(4, zero));
          for (int64_t dv = 0; dv < DV_; ++dv)
            for (int j = 0; j < 4; ++j) {
              Value* kv = f.load(f.vf(), f.at(krow[gr * 8 + hf * 4 + j], dv * 32), 4);
              for (size_t h = h0; h < h1; ++h) acc[h][j] = f.fma(qv[h][dv], kv, acc[h][j]);
            }
          for (size_t h = h0; h < h1; ++h) half[h][hf] = hadd(hadd(acc[h][0], acc[h][1]), hadd(acc[h][2], acc[h][3]));
        }
        for (size_t h = h0; h < h1; ++h) {
          Value* a = half[h][0];
          Value* b = half[h][1];
          Value* dots = B.CreateFAdd(f.shuffle(a, b, {0, 1, 2, 3, 8, 9, 10, 11}), f.shuffle(a, b, {4, 5, 6, 7, 12, 13, 14, 15}));
          sc[h][gr] = B.CreateSelect(mask[gr], capped(B.CreateFMul(dots, scale)), neg_inf);
        }
      }
    }

    // Softmax update. The per-query scalars of query h live in lane h of 8-lane vectors: one vexp
    // computes every alpha, one FMA every l (lane-wise, the same operations as one query's scalars).
    Value* mp = f.at(f.at(scratch_, S_.m), i0, 4);
    Value* lp = f.at(f.at(scratch_, S_.l), i0, 4);
    Value* mold = zero;
    Value* lold = zero;
    Value* cmax = zero;
    for (size_t h = 0; h < NQ; ++h) {
      const int64_t hb = static_cast<int64_t>(h) * 4;
      mold = B.CreateInsertElement(mold, f.load(f.f32, f.at(mp, hb), 4), static_cast<uint64_t>(h));
      lold = B.CreateInsertElement(lold, f.load(f.f32, f.at(lp, hb), 4), static_cast<uint64_t>(h));
      Value* cm = sc[h][0];
      for (int gr = 1; gr < groups; ++gr) cm = f.fmax(cm, sc[h][gr]);
      cmax = B.CreateInsertElement(cmax, B.CreateFPMaxReduce(cm), static_cast<uint64_t>(h));
    }
    Value* mnew = f.fmax(mold, cmax);
    // alpha = e^(m_old - m_new) rescales what was accumulated under the old maximum (0 at first).
    Value* alpha = f.vexp(B.CreateFSub(mold, mnew));
    alpha = B.CreateSelect(B.CreateFCmpOEQ(mold, neg_inf), zero, alpha);
    std::vector<std::vector<Value*>> p(NQ, std::vector<Value*>(groups));
    Value* lsum = zero;
    for (size_t h = 0; h < NQ; ++h) {
      Value* mh = lane_splat(mnew, static_cast<int>(h));
      Value* psum = nullptr;
      for (int gr = 0; gr < groups; ++gr) {
        p[h][gr] = B.CreateSelect(mask[gr], f.vexp(B.CreateFSub(sc[h][gr], mh)), zero);
        psum = psum ? B.CreateFAdd(psum, p[h][gr]) : p[h][gr];
      }
      lsum = B.CreateInsertElement(lsum, B.CreateFAddReduce(f.cf(0.0f), psum), static_cast<uint64_t>(h));
    }
    Value* lnew = f.fma(lold, alpha, lsum);
    // The weights p go through a stack buffer, so that the V accumulation broadcasts p_j with a
    // load (vbroadcastss from memory: no shuffle on a vector pipe the FMAs need). The buffer is
    // read through an opaque copy of its address, or the optimizer would forward the stored vectors
    // and broadcast from registers again.
    Value* pbuf = f.entryB.CreateAlloca(llvm::ArrayType::get(f.f32, static_cast<uint64_t>(NQ * CH)));
    llvm::cast<llvm::AllocaInst>(pbuf)->setAlignment(llvm::Align(32));
    for (size_t h = 0; h < NQ; ++h)
      for (int gr = 0; gr < groups; ++gr) f.store(p[h][gr], f.at(pbuf, (static_cast<int64_t>(h) * CH + gr * 8) * 4), 32);
    auto* launder = llvm::InlineAsm::get(llvm::FunctionType::get(f.ptr, {f.ptr}, false), "", "=r,0", false);
    Value* pread = B.CreateCall(launder, {pbuf});
    for (size_t h = 0; h < NQ; ++h) {
      const int64_t hb = static_cast<int64_t>(h) * 4;
      f.store(B.CreateExtractElement(lnew, static_cast<uint64_t>(h)), f.at(lp, hb), 4);
      f.store(B.CreateExtractElement(mnew, static_cast<uint64_t>(h)), f.at(mp, hb), 4);
    }

    // acc = acc * alpha + sum_j p_j v_j, with independent chains when a row is short. Key-major:
    // one value vector feeds the pair's queries, one p_j broadcast feeds a block of up to 8
    // accumulators per query (all of D = 64); longer rows take several passes over the keys (each
    // accumulator's chain is unchanged). On AVX-512 tiers (wide_), rows of an even count of at
    // least 4 8-lane vectors go 16 lanes at a time, vectors dv and dv + 1 in one zmm, up to 4 zmm
    // per query and pass: each lane's multiply by alpha and FMA chain are the 8-lane ones.
    const int64_t splits = DV_ >= 4 ? 1 : 4 / DV_;
    const unsigned lanes = wide_ && splits == 1 && DV_ % 2 == 0 ? 16 : 8;
    const int64_t NV = DV_ * 8 / lanes;  // vectors a row
    const int64_t VB = lanes == 16 ? std::min<int64_t>(NV, 4) : std::max<int64_t>(1, std::min<int64_t>(DV_, 8 / splits));
    const int64_t vbytes = lanes * 4;
    llvm::Type* vt = f.vec(f.f32, lanes);
    for (auto [h0, h1] : pairs) {
      std::vector<Value*> accp(NQ), valpha(NQ);
      for (size_t h = h0; h < h1; ++h) {
        accp[h] = f.at(f.at(f.at(scratch_, S_.acc), i0, D_ * 4), static_cast<int64_t>(h) * D_ * 4);
        valpha[h] = lane_splat(alpha, static_cast<int>(h), lanes);
      }
      for (int64_t d0 = 0; d0 < NV; d0 += VB) {
        const int64_t d1 = std::min(NV, d0 + VB);
        std::vector<std::vector<std::vector<Value*>>> a(
            NQ, std::vector<std::vector<Value*>>(static_cast<size_t>(d1 - d0),
                                                 std::vector<Value*>(static_cast<size_t>(splits), llvm::Constant::getNullValue(vt))));
        for (size_t h = h0; h < h1; ++h)
          for (int64_t dv = d0; dv < d1; ++dv) a[h][dv - d0][0] = B.CreateFMul(f.load(vt, f.at(accp[h], dv * vbytes), 4), valpha[h]);
        for (int64_t j = 0; j < CH; ++j) {
          std::vector<Value*> pj(NQ);
          for (size_t h = h0; h < h1; ++h)
            pj[h] = f.splat(f.load(f.f32, f.at(pread, (static_cast<int64_t>(h) * CH + j) * 4), 4), lanes);
          for (int64_t dv = d0; dv < d1; ++dv) {
            Value* vv = f.load(vt, f.at(vrow[j], dv * vbytes), 4);
            for (size_t h = h0; h < h1; ++h) {
              Value*& dst = a[h][dv - d0][static_cast<size_t>(j % splits)];
              dst = f.fma(pj[h], vv, dst);
            }
          }
        }
        for (size_t h = h0; h < h1; ++h)
          for (int64_t dv = d0; dv < d1; ++dv) {
            Value* sum = a[h][dv - d0][0];
            for (int64_t k = 1; k < splits; ++k) sum = B.CreateFAdd(sum, a[h][dv - d0][static_cast<size_t>(k)]);
            f.store(sum, f.at(accp[h], dv * vbytes), 4);
          }
      }
    }
  }

  // Work units: (KV head g, block of up to TB query tokens), KV-head-major, split over threads. A
  // unit handles the G query heads of g for its tokens: every key chunk is loaded (or staged) once
  // and used by G * TB queries. Decode (T <= TB) has one unit per KV head: each thread streams the
  // cache of its KV heads once.
  void emit_attention() {
    const int64_t TB = kAttentionTokenBlock, CH = kAttentionKeyChunk;
    Value* nblk = B.CreateSDiv(B.CreateAdd(T_, f.c64(TB - 1)), f.c64(TB));
    auto [u0, u1] = f.thread_range(B.CreateMul(nblk, f.c64(KV_)));
    f.loop(u0, u1, 1, [&](Value* u) {
      Value* g = B.CreateSDiv(u, nblk);
      Value* t0 = B.CreateMul(B.CreateSRem(u, nblk), f.c64(TB));
      Value* t1 = f.smin(B.CreateAdd(t0, f.c64(TB)), T_);
      Value* nt = B.CreateSub(t1, t0);
      Value* nq = B.CreateMul(nt, f.c64(G_));
      f.loop(f.c64(0), nq, 1, [&](Value* i) {
        f.store(f.cf(-std::numeric_limits<float>::infinity()), f.at(f.at(scratch_, S_.m), i, 4), 4);
        f.store(f.cf(0.0f), f.at(f.at(scratch_, S_.l), i, 4), 4);
        Value* accp = f.at(f.at(scratch_, S_.acc), i, D_ * 4);
        for (int64_t dv = 0; dv < DV_; ++dv) f.store(llvm::Constant::getNullValue(f.vf()), f.at(accp, dv * 32), 4);
      }, "init");
      Value* limit = B.CreateAdd(past_, t1);  // keys the unit's last token sees
      // The first key token t sees: past + t + 1 - window with a window, else 0.
      auto first_key = [&](Value* t) {
        return s.window > 0 ? f.smax(B.CreateSub(B.CreateAdd(past_, t), f.c64(s.window - 1)), f.c64(0)) : f.c64(0);
      };
      // Chunks start at multiples of CH from key 0 (the reference's order), from the one holding
      // the unit's first token's first key.
      Value* cstart = s.window > 0 ? B.CreateMul(B.CreateSDiv(first_key(t0), f.c64(CH)), f.c64(CH)) : f.c64(0);
      f.loop(cstart, limit, CH, [&](Value* c0) {
        emit_prefetch(B.CreateAdd(c0, f.c64(CH)), g);
        // The unit's queries against this chunk, reading key rows `stride` bytes apart.
        auto queries = [&](Value* kbase, Value* vbase, int64_t stride) {
          f.loop(f.c64(0), nt, 1, [&](Value* tt) {
            Value* t = B.CreateAdd(t0, tt);
            Value* vis = B.CreateAdd(B.CreateAdd(past_, t), f.c64(1));
            Value* first = first_key(t);
            Value* sees = B.CreateICmpSLT(c0, vis);
            if (s.window > 0) sees = B.CreateAnd(sees, B.CreateICmpSGT(B.CreateAdd(c0, f.c64(CH)), first));
            f.if_then(sees, [&] {
              Value* nvalid = B.CreateSub(vis, c0);
              Value* lo = s.window > 0 ? f.smax(B.CreateSub(first, c0), f.c64(0)) : nullptr;
              // NQ query heads of the group at a time, sharing every key and value load.
              f.loop(f.c64(0), f.c64(G_), NQ_, [&](Value* hh) {
                Value* i0 = B.CreateAdd(B.CreateMul(tt, f.c64(G_)), hh);
                Value* h0 = B.CreateAdd(B.CreateMul(g, f.c64(G_)), hh);
                Value* q0 = f.at(f.at(q_, t, qstride_), h0, D_ * 4);
                std::vector<Value*> qrows;
                for (int64_t h = 0; h < NQ_; ++h) qrows.push_back(f.at(q0, h * D_ * 4));
                emit_queries_chunk(qrows, i0, kbase, vbase, stride, nvalid, lo);
              }, "head");
            });
          }, "qtok");
        };
        auto staged = [&] {
          emit_stage(c0, limit, g);
          queries(f.at(scratch_, S_.k), f.at(scratch_, S_.v), D_ * 4);
        };
        if (f16()) {
          staged();
        } else {
          // Whole chunks of an f32 cache below past are read in place (two copies of the query
          // loop, each with constant row strides); others are staged.
          f.if_else(B.CreateICmpSLE(B.CreateAdd(c0, f.c64(CH)), past_),
                    [&] { queries(cache_row(kc_, c0, g), cache_row(vc_, c0, g), KV_ * D_ * es_); }, staged);
        }
      }, "chunk");
      // y = acc / l
      f.loop(f.c64(0), nq, 1, [&](Value* i) {
        Value* tt = B.CreateSDiv(i, f.c64(G_));
        Value* hh = B.CreateSRem(i, f.c64(G_));
        Value* t = B.CreateAdd(t0, tt);
        Value* h = B.CreateAdd(B.CreateMul(g, f.c64(G_)), hh);
        Value* yrow = f.at(y_, B.CreateAdd(B.CreateMul(t, f.c64(H_)), h), D_ * 4);
        Value* accp = f.at(f.at(scratch_, S_.acc), i, D_ * 4);
        Value* l = f.splat(f.load(f.f32, f.at(f.at(scratch_, S_.l), i, 4), 4));
        for (int64_t dv = 0; dv < DV_; ++dv)
          f.store(B.CreateFDiv(f.load(f.vf(), f.at(accp, dv * 32), 4), l), f.at(yrow, dv * 32), 4);
      }, "out");
    }, "unit");
  }
};

}  // namespace

namespace {

bool attention_computes(const Node& n) { return n.is(Op::Attention); }

StatusOr<KernelSpec> attention_spec(const Node& n, const Model* model) {
  auto static_dim = [&](const Dim& d, const char* what) -> StatusOr<int64_t> {
    if (!d.is_static()) return Status::Error("codegen: " + n.name + ": " + what + " must be static, got " + d.str());
    return d.value();
  };
  KernelSpec k;
  AttentionSpec& a = k.attention;
  a.packed = n.inputs.size() == 1;
  if (a.packed) {
    a.H = n.attr("q_heads").as_int();
    a.KV = n.attr("kv_heads").as_int();
    a.D = n.attr("head_dim").as_int();
  } else {
    INGOT_ASSIGN_OR_RETURN(a.H, static_dim(n.inputs[0].type().shape[1], "query heads"));
    INGOT_ASSIGN_OR_RETURN(a.KV, static_dim(n.inputs[1].type().shape[1], "KV heads"));
    INGOT_ASSIGN_OR_RETURN(a.D, static_dim(n.inputs[0].type().shape[2], "head_dim"));
  }
  a.scale = static_cast<float>(n.attr("scale").as_float());
  a.softcap = static_cast<float>(n.attr("softcap").as_float());
  a.window = n.attr("window").as_int();
  if (a.softcap < 0 || a.window < 0) return Status::Error("codegen: " + n.name + ": negative softcap or window");
  if (a.H <= 0 || a.KV <= 0 || a.H % a.KV != 0) return Status::Error("codegen: " + n.name + ": bad head counts");
  if (a.D <= 0 || a.D % 8 != 0)
    return Status::Error("codegen: " + n.name + ": attention needs head_dim a multiple of 8, got " + std::to_string(a.D));
  if (!model) return Status::Error("codegen: " + n.name + ": the attention kernel needs the model (its cache variables)");
  const StateVariable* kv[2] = {model->find_variable(n.attr("k_variable").as_string()),
                                model->find_variable(n.attr("v_variable").as_string())};
  if (!kv[0] || !kv[1]) return Status::Error("codegen: " + n.name + ": unknown cache variable");
  if (kv[0]->type != kv[1]->type) return Status::Error("codegen: " + n.name + ": K and V caches differ in type");
  a.cache = kv[0]->type;
  if (a.cache != ElementType::f32 && a.cache != ElementType::f16)
    return Status::Error("codegen: " + n.name + ": attention caches must be f32 or f16, got " + std::string(type_name(a.cache)));
  return k;
}

std::string attention_key(const KernelSpec& k) {
  const AttentionSpec& a = k.attention;
  char buf[224];
  std::snprintf(buf, sizeof(buf), "attention H=%lld KV=%lld D=%lld %s cache=%s scale=%a softcap=%a window=%lld",
                static_cast<long long>(a.H), static_cast<long long>(a.KV), static_cast<long long>(a.D), a.packed ? "packed" : "separate",
                std::string(type_name(a.cache)).c_str(), static_cast<double>(a.scale), static_cast<double>(a.softcap),
                static_cast<long long>(a.window));
  return buf;
}

// The inputs, the state slots of its cache variables (the kernel appends the fresh rows itself)
// and the call's scratch.
StatusOr<std::vector<KernelArg>> attention_args(const Node& n, const KernelSpec& spec) {
  std::vector<KernelArg> a(kAttnArgCount);
  a[kAttnY] = KernelArg::output(0);
  a[kAttnQ] = KernelArg::input(0);
  if (!spec.attention.packed) {
    a[kAttnK] = KernelArg::input(1);
    a[kAttnV] = KernelArg::input(2);
  }
  a[kAttnKCache] = KernelArg::state(n.attr("k_variable").as_string());
  a[kAttnVCache] = KernelArg::state(n.attr("v_variable").as_string());
  a[kAttnScratch] = KernelArg::scratch();
  return a;
}

// The caches are written at positions past..past+T-1 and read below past: T + past rows of
// KV*D elements (dims[0] + dims[1]).
StatusOr<KernelContract> attention_contract(const KernelSpec& spec) {
  const AttentionSpec& s = spec.attention;
  KernelContract c;
  c.args.resize(kAttnArgCount);
  c.args[kAttnY] = KernelContract::rows(ArgAccess::write, s.H * s.D * 4);
  c.args[kAttnQ] = KernelContract::rows(ArgAccess::read, (s.packed ? s.H + 2 * s.KV : s.H) * s.D * 4);
  if (!s.packed) {
    c.args[kAttnK] = KernelContract::rows(ArgAccess::read, s.KV * s.D * 4);
    c.args[kAttnV] = KernelContract::rows(ArgAccess::read, s.KV * s.D * 4);
  }
  const int64_t row = s.KV * s.D * static_cast<int64_t>(type_info(s.cache).block_bytes);
  for (int slot : {kAttnKCache, kAttnVCache}) {
    c.args[slot] = KernelContract::rows(ArgAccess::read_write, row, 2);
    c.args[slot].dims_mask = 0b11;
  }
  c.args[kAttnScratch] = KernelContract::fixed_bytes(ArgAccess::scratch, attention_scratch(s).total, 64);
  return c;
}

Status attention_emit(EmitContext& ctx, const KernelSpec& spec) {
  const AttentionSpec& s = spec.attention;
  if (s.H <= 0 || s.KV <= 0 || s.H % s.KV != 0) return Status::Error("codegen: attention needs KV heads dividing query heads");
  if (s.D <= 0 || s.D % 8 != 0) return Status::Error("codegen: attention needs head_dim a multiple of 8");
  if (s.cache != ElementType::f32 && s.cache != ElementType::f16) return Status::Error("codegen: attention caches must be f32 or f16");
  Fn f(ctx.module, spec.name);
  AttentionEmitter(f, s, ctx.avx512).emit();
  return Status::Ok();
}

}  // namespace

// Cases: tests/codegen/attention_test.cpp (attention_cases.h: head layouts, cache types, odd
// lengths, several calls over a growing cache, every CPU tier); the state makes them multi-call.
extern const KernelFamily kAttentionFamily = {
    "attention", "causal grouped-query attention over the KV cache, which it appends to",
    attention_computes, attention_spec, attention_key, attention_args, attention_contract, nullptr, attention_emit,
    nullptr};

}  // namespace ingot
