// LLVM IR for the attention kernel (the Attention op): the fused KV-cache write, then causal
// grouped-query attention with an online (flash-style) softmax over chunks of keys. See
// docs/codegen.md, "Attention".
#include <cmath>
#include <limits>

#include "codegen/emit.h"
#include "codegen/llvm/emit_ir.h"

namespace ingot {
namespace {

using llvm::Value;
using ir_emit::Fn;

class AttentionEmitter {
 public:
  AttentionEmitter(Fn& f, const AttentionSpec& s) : f(f), B(f.B), s(s) {}

  void emit() {
    H_ = s.H;
    KV_ = s.KV;
    D_ = s.D;
    G_ = H_ / KV_;
    DV_ = D_ / 8;
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
  int64_t H_ = 0, KV_ = 0, D_ = 0, G_ = 0, DV_ = 0, es_ = 4;
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

  Value* lane_splat(Value* v, int lane) {
    return B.CreateShuffleVector(v, llvm::PoisonValue::get(f.vf()), std::vector<int>(8, lane));
  }

  // One query (row qrow, scratch slot i) against one chunk of keys: scores, online softmax update,
  // weighted V accumulation. nvalid: keys of the chunk this query sees (may exceed the chunk).
  // `stride` (bytes between key rows) is a constant, so every row address is base + constant.
  void emit_query_chunk(Value* qrow, Value* i, Value* kbase, Value* vbase, int64_t stride, Value* nvalid) {
    const int64_t CH = kAttentionKeyChunk;
    const int groups = static_cast<int>(CH / 8);
    std::vector<Value*> krow(CH), vrow(CH);
    for (int64_t j = 0; j < CH; ++j) {
      krow[j] = f.at(kbase, j * stride);
      vrow[j] = f.at(vbase, j * stride);
    }
    // Scores of 8 keys at a time: one accumulator per key, summed across lanes by a transpose tree.
    Value* nv32 = B.CreateTrunc(f.smin(nvalid, f.c64(CH)), f.i32);
    std::vector<Value*> sc(groups), mask(groups);
    Value* neg_inf = f.splat(f.cf(-std::numeric_limits<float>::infinity()));
    Value* scale = f.splat(f.cf(s.scale));
    for (int gr = 0; gr < groups; ++gr) {
      std::vector<Value*> acc(8, llvm::Constant::getNullValue(f.vf()));
      for (int64_t dv = 0; dv < DV_; ++dv) {
        Value* qv = f.load(f.vf(), f.at(qrow, dv * 32), 4);
        for (int j = 0; j < 8; ++j) acc[j] = f.fma(qv, f.load(f.vf(), f.at(krow[gr * 8 + j], dv * 32), 4), acc[j]);
      }
      Value* dots = B.CreateFMul(f.transpose_sum8(acc), scale);
      std::vector<llvm::Constant*> idx;
      for (int l = 0; l < 8; ++l) idx.push_back(B.getInt32(static_cast<uint32_t>(gr * 8 + l)));
      mask[gr] = B.CreateICmpSLT(llvm::ConstantVector::get(idx), f.splat(nv32));
      sc[gr] = B.CreateSelect(mask[gr], dots, neg_inf);
    }
    Value* cm = sc[0];
    for (int gr = 1; gr < groups; ++gr) cm = f.fmax(cm, sc[gr]);
    Value* cmax = B.CreateFPMaxReduce(cm);
    Value* mp = f.at(f.at(scratch_, S_.m), i, 4);
    Value* lp = f.at(f.at(scratch_, S_.l), i, 4);
    Value* mold = f.load(f.f32, mp, 4);
    Value* mnew = B.CreateBinaryIntrinsic(llvm::Intrinsic::maxnum, mold, cmax);
    // alpha = e^(m_old - m_new) rescales what was accumulated under the old maximum (0 at first).
    Value* alpha = B.CreateExtractElement(f.vexp(f.splat(B.CreateFSub(mold, mnew))), uint64_t{0});
    alpha = B.CreateSelect(B.CreateFCmpOEQ(mold, f.cf(-std::numeric_limits<float>::infinity())), f.cf(0.0f), alpha);
    Value* zero = llvm::Constant::getNullValue(f.vf());
    std::vector<Value*> p(groups);
    Value* psum = nullptr;
    for (int gr = 0; gr < groups; ++gr) {
      p[gr] = B.CreateSelect(mask[gr], f.vexp(B.CreateFSub(sc[gr], f.splat(mnew))), zero);
      psum = psum ? B.CreateFAdd(psum, p[gr]) : p[gr];
    }
    Value* lsum = B.CreateFAddReduce(f.cf(0.0f), psum);
    f.store(f.fma(f.load(f.f32, lp, 4), alpha, lsum), lp, 4);
    f.store(mnew, mp, 4);
    // acc = acc * alpha + sum_j p_j v_j, with independent chains when a row is short.
    Value* accp = f.at(f.at(scratch_, S_.acc), i, D_ * 4);
    const int64_t splits = DV_ >= 4 ? 1 : 4 / DV_;
    Value* valpha = f.splat(alpha);
    // Key-major: one p_j broadcast feeds DV independent accumulators (interleaved FMA chains).
    std::vector<std::vector<Value*>> a(static_cast<size_t>(DV_), std::vector<Value*>(static_cast<size_t>(splits), zero));
    for (int64_t dv = 0; dv < DV_; ++dv) a[dv][0] = B.CreateFMul(f.load(f.vf(), f.at(accp, dv * 32), 4), valpha);
    for (int64_t j = 0; j < CH; ++j) {
      Value* pj = lane_splat(p[j / 8], static_cast<int>(j % 8));
      for (int64_t dv = 0; dv < DV_; ++dv) {
        Value*& dst = a[dv][static_cast<size_t>(j % splits)];
        dst = f.fma(pj, f.load(f.vf(), f.at(vrow[j], dv * 32), 4), dst);
      }
    }
    for (int64_t dv = 0; dv < DV_; ++dv) {
      Value* sum = a[dv][0];
      for (int64_t k = 1; k < splits; ++k) sum = B.CreateFAdd(sum, a[dv][static_cast<size_t>(k)]);
      f.store(sum, f.at(accp, dv * 32), 4);
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
      f.loop(f.c64(0), limit, CH, [&](Value* c0) {
        emit_prefetch(B.CreateAdd(c0, f.c64(CH)), g);
        // The unit's queries against this chunk, reading key rows `stride` bytes apart.
        auto queries = [&](Value* kbase, Value* vbase, int64_t stride) {
          f.loop(f.c64(0), nt, 1, [&](Value* tt) {
            Value* t = B.CreateAdd(t0, tt);
            Value* vis = B.CreateAdd(B.CreateAdd(past_, t), f.c64(1));
            f.if_then(B.CreateICmpSLT(c0, vis), [&] {
              Value* nvalid = B.CreateSub(vis, c0);
              f.loop(f.c64(0), f.c64(G_), 1, [&](Value* hh) {
                Value* i = B.CreateAdd(B.CreateMul(tt, f.c64(G_)), hh);
                Value* h = B.CreateAdd(B.CreateMul(g, f.c64(G_)), hh);
                Value* qrow = f.at(f.at(q_, t, qstride_), h, D_ * 4);
                emit_query_chunk(qrow, i, kbase, vbase, stride, nvalid);
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

Status emit_attention(llvm::Module& module, const KernelSpec& spec) {
  const AttentionSpec& s = spec.attention;
  if (s.H <= 0 || s.KV <= 0 || s.H % s.KV != 0) return Status::Error("codegen: attention needs KV heads dividing query heads");
  if (s.D <= 0 || s.D % 8 != 0) return Status::Error("codegen: attention needs head_dim a multiple of 8");
  if (s.cache != ElementType::f32 && s.cache != ElementType::f16) return Status::Error("codegen: attention caches must be f32 or f16");
  Fn f(module, spec.name);
  AttentionEmitter(f, s).emit();
  return Status::Ok();
}

}  // namespace ingot
