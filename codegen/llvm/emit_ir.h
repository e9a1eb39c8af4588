// Internal to codegen/: the one IR-emission helper layer every hand-written kernel family
// (codegen/kernels/*.cpp) writes with, and the EmitContext the registry's emitters receive.
// Includes LLVM IR headers: include it only from codegen/ translation units.
#pragma once

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
#include <llvm/IR/IntrinsicsX86.h>
#include <llvm/IR/Metadata.h>
#include <llvm/IR/Module.h>

#include "codegen/kernels.h"
#include "ir/float_spec.h"

namespace ingot {

// What an emitter writes into and for which CPU tier (codegen/kernel_registry.h).
struct EmitContext {
  llvm::Module& module;
  const CodegenOptions& options;
  bool avx2 = false;     // the tier has AVX2 (x86-64-v3 and up): its integer intrinsics may be used
  bool avx512 = false;   // the tier has AVX-512 F/BW/DQ/VL (x86-64-v4)
  bool vnni = false;     // the tier has AVX-512 VNNI (tier avx512): vpdpbusd
  bool amx = false;      // the tier has AMX-INT8 (tier amx): tile dot products for prompt processing
  bool ssse3 = false;    // the tier has SSSE3 (x86-64-v2 and up): 128-bit pmaddubsw, psignb
};

}  // namespace ingot

namespace ingot::ir_emit {

// e^x on a float vector: exactly float_spec::expf (ir/float_spec.h), lane by lane. Every kernel
// that needs exp emits it through here, so all of them round as the reference does.
inline llvm::Value* emit_vexp(llvm::IRBuilder<>& B, llvm::Value* x) {
  namespace fs = float_spec;
  auto* vt = llvm::cast<llvm::FixedVectorType>(x->getType());
  const unsigned n = vt->getNumElements();
  auto c = [&](float v) { return B.CreateVectorSplat(n, llvm::ConstantFP::get(B.getFloatTy(), v)); };
  auto fma = [&](llvm::Value* a, llvm::Value* b, llvm::Value* d) { return B.CreateIntrinsic(llvm::Intrinsic::fma, {vt}, {a, b, d}); };
  x = B.CreateBinaryIntrinsic(llvm::Intrinsic::maxnum, x, c(fs::kExpMin));
  x = B.CreateBinaryIntrinsic(llvm::Intrinsic::minnum, x, c(fs::kExpMax));
  llvm::Value* k = B.CreateUnaryIntrinsic(llvm::Intrinsic::roundeven, B.CreateFMul(x, c(fs::kLog2e)));
  llvm::Value* r = fma(k, c(-fs::kLn2Hi), x);
  r = fma(k, c(-fs::kLn2Lo), r);
  llvm::Value* p = c(fs::kExpPoly[0]);
  for (int i = 1; i < 8; ++i) p = fma(p, r, c(fs::kExpPoly[i]));
  auto* it = llvm::FixedVectorType::get(B.getInt32Ty(), n);
  llvm::Value* e = B.CreateShl(B.CreateAdd(B.CreateFPToSI(k, it), B.CreateVectorSplat(n, B.getInt32(127))),
                               B.CreateVectorSplat(n, B.getInt32(23)));
  return B.CreateFMul(p, B.CreateBitCast(e, vt));
}

// One exported kernel function with the C ABI of kernels.h and helpers for loops, branches,
// thread ranges and 8-lane float math. Mutable values are entry-block allocas (SROA promotes them).
class Fn {
 public:
  Fn(llvm::Module& m, const std::string& name) : C(m.getContext()), M(m), B(C), entryB(C) {
    i8 = B.getInt8Ty();
    i16 = B.getInt16Ty();
    i32 = B.getInt32Ty();
    i64 = B.getInt64Ty();
    f32 = B.getFloatTy();
    f16 = B.getHalfTy();
    f64 = B.getDoubleTy();
    ptr = B.getPtrTy();
    auto* fty = llvm::FunctionType::get(B.getVoidTy(), {ptr, ptr, i32, i32}, false);
    F = llvm::Function::Create(fty, llvm::Function::ExternalLinkage, name, M);
    F->addFnAttr(llvm::Attribute::NoUnwind);
    F->addFnAttr(llvm::Attribute::NoFree);
    F->addFnAttr(llvm::Attribute::NoSync);
    llvm::BasicBlock* entry = llvm::BasicBlock::Create(C, "allocas", F);
    llvm::BasicBlock* start = llvm::BasicBlock::Create(C, "start", F);
    entryB.SetInsertPoint(llvm::BranchInst::Create(start, entry));
    B.SetInsertPoint(start);
  }

  llvm::LLVMContext& C;
  llvm::Module& M;
  llvm::IRBuilder<> B;
  llvm::IRBuilder<> entryB;
  llvm::Function* F = nullptr;
  llvm::Type *i8, *i16, *i32, *i64, *f32, *f16, *f64, *ptr;

  using V = llvm::Value;
  llvm::FixedVectorType* vec(llvm::Type* t, unsigned n = 8) { return llvm::FixedVectorType::get(t, n); }
  llvm::FixedVectorType* vf() { return vec(f32, 8); }
  V* c64(int64_t v) { return B.getInt64(static_cast<uint64_t>(v)); }
  V* cf(float v) { return llvm::ConstantFP::get(f32, v); }
  V* at(V* base, V* byte_offset) { return B.CreateGEP(i8, base, byte_offset); }
  V* at(V* base, int64_t byte_offset) { return byte_offset == 0 ? base : at(base, c64(byte_offset)); }
  // base + index * scale bytes
  V* at(V* base, V* index, int64_t scale) { return at(base, B.CreateMul(index, c64(scale))); }
  V* load(llvm::Type* t, V* p, unsigned align = 1) { return B.CreateAlignedLoad(t, p, llvm::Align(align)); }
  void store(V* v, V* p, unsigned align = 1) { B.CreateAlignedStore(v, p, llvm::Align(align)); }
  V* arg_ptr(int slot) { return load(ptr, at(F->getArg(0), slot * 8), 8); }
  V* dim(int i) { return load(i64, at(F->getArg(1), i * 8), 8); }
  V* thread() { return B.CreateSExt(F->getArg(2), i64); }
  V* nthreads() { return B.CreateSExt(F->getArg(3), i64); }

  V* var(llvm::Type* t, V* init) {
    V* a = entryB.CreateAlloca(t);
    B.CreateStore(init, a);
    return a;
  }
  V* get(llvm::Type* t, V* var) { return B.CreateLoad(t, var); }
  void set(V* var, V* v) { B.CreateStore(v, var); }

  V* splat(V* scalar, unsigned n = 8) { return B.CreateVectorSplat(n, scalar); }
  V* fma(V* a, V* b, V* c) { return B.CreateIntrinsic(llvm::Intrinsic::fma, {a->getType()}, {a, b, c}); }
  V* smin(V* a, V* b) { return B.CreateSelect(B.CreateICmpSLT(a, b), a, b); }
  V* smax(V* a, V* b) { return B.CreateSelect(B.CreateICmpSGT(a, b), a, b); }
  V* fmax(V* a, V* b) { return B.CreateBinaryIntrinsic(llvm::Intrinsic::maxnum, a, b); }

  // for (iv = lo; iv < hi; iv += step) body(iv); no_unroll for bodies that are already unrolled
  // straight-line code (unrolling them again only costs compile time and instruction cache).
  void loop(V* lo, V* hi, int64_t step, const std::function<void(V*)>& body, const char* name = "loop",
            bool no_unroll = false) {
    llvm::BasicBlock* pre = B.GetInsertBlock();
    llvm::BasicBlock* head = llvm::BasicBlock::Create(C, std::string(name) + ".head", F);
    llvm::BasicBlock* bodyb = llvm::BasicBlock::Create(C, std::string(name) + ".body", F);
    llvm::BasicBlock* exit = llvm::BasicBlock::Create(C, std::string(name) + ".exit", F);
    B.CreateBr(head);
    B.SetInsertPoint(head);
    llvm::PHINode* iv = B.CreatePHI(i64, 2, name);
    iv->addIncoming(lo, pre);
    B.CreateCondBr(B.CreateICmpSLT(iv, hi), bodyb, exit);
    B.SetInsertPoint(bodyb);
    body(iv);
    iv->addIncoming(B.CreateAdd(iv, c64(step)), B.GetInsertBlock());
    llvm::BranchInst* latch = B.CreateBr(head);
    if (no_unroll) {
      llvm::MDNode* disable = llvm::MDNode::get(C, {llvm::MDString::get(C, "llvm.loop.unroll.disable")});
      llvm::MDNode* id = llvm::MDNode::getDistinct(C, {nullptr, disable});
      id->replaceOperandWith(0, id);
      latch->setMetadata(llvm::LLVMContext::MD_loop, id);
    }
    B.SetInsertPoint(exit);
  }

  void if_then(V* cond, const std::function<void()>& then) {
    llvm::BasicBlock* tb = llvm::BasicBlock::Create(C, "then", F);
    llvm::BasicBlock* jb = llvm::BasicBlock::Create(C, "endif", F);
    B.CreateCondBr(cond, tb, jb);
    B.SetInsertPoint(tb);
    then();
    B.CreateBr(jb);
    B.SetInsertPoint(jb);
  }

  void if_else(V* cond, const std::function<void()>& then, const std::function<void()>& otherwise) {
    llvm::BasicBlock* tb = llvm::BasicBlock::Create(C, "then", F);
    llvm::BasicBlock* eb = llvm::BasicBlock::Create(C, "else", F);
    llvm::BasicBlock* jb = llvm::BasicBlock::Create(C, "endif", F);
    B.CreateCondBr(cond, tb, eb);
    B.SetInsertPoint(tb);
    then();
    B.CreateBr(jb);
    B.SetInsertPoint(eb);
    otherwise();
    B.CreateBr(jb);
    B.SetInsertPoint(jb);
  }

  // This thread's share [lo, hi) of `count` units split evenly over nthreads.
  std::pair<V*, V*> thread_range(V* count) {
    V* t = thread();
    V* n = nthreads();
    return {B.CreateSDiv(B.CreateMul(count, t), n), B.CreateSDiv(B.CreateMul(count, B.CreateAdd(t, c64(1))), n)};
  }

  // Calls body(lo, hi) for each of this thread's shares of `count` units. Without the caller's
  // work counter (dims[kDimWorkCounter] null): thread_range's even split, once. With it: first this
  // thread's even part of the first (1 - 1/tail_parts) of the units, then chunks of the rest
  // (tail_chunks a thread) taken in turn from the counter until none are left, so a thread that
  // runs slower (another process on its core, a neighbour on the VM's host) takes fewer of them
  // while most of the work keeps long ranges (the pairs' two streams, next-panel prefetch). The
  // body is emitted once (its bounds are phis).
  void for_each_share(V* count, int64_t tail_parts, int64_t tail_chunks, const std::function<void(V*, V*)>& body) {
    V* counter = load(ptr, at(F->getArg(1), kDimWorkCounter * 8), 8);
    V* shared = B.CreateICmpNE(counter, llvm::ConstantPointerNull::get(llvm::PointerType::get(C, 0)));
    V* tail = B.CreateSDiv(count, c64(tail_parts));
    V* head = B.CreateSelect(shared, B.CreateSub(count, tail), count);
    auto [s0, s1] = thread_range(head);
    V* parts = B.CreateMul(nthreads(), c64(tail_chunks));
    V* chunk = smax(B.CreateSDiv(B.CreateAdd(tail, B.CreateSub(parts, c64(1))), parts), c64(1));
    llvm::BasicBlock* pre = B.GetInsertBlock();
    llvm::BasicBlock* grab = llvm::BasicBlock::Create(C, "share.grab", F);
    llvm::BasicBlock* run = llvm::BasicBlock::Create(C, "share.body", F);
    llvm::BasicBlock* done = llvm::BasicBlock::Create(C, "share.done", F);
    B.CreateBr(run);
    B.SetInsertPoint(grab);
    // Monotonic: the counter orders nothing else; the caller zeroes it before the call and joins
    // the threads after it.
    V* g0 = B.CreateAdd(head, B.CreateAtomicRMW(llvm::AtomicRMWInst::Add, counter, chunk, llvm::MaybeAlign(8),
                                                llvm::AtomicOrdering::Monotonic));
    V* g1 = smin(B.CreateAdd(g0, chunk), count);
    B.CreateCondBr(B.CreateICmpSLT(g0, count), run, done);
    B.SetInsertPoint(run);
    llvm::PHINode* lo = B.CreatePHI(i64, 2, "share.lo");
    llvm::PHINode* hi = B.CreatePHI(i64, 2, "share.hi");
    lo->addIncoming(s0, pre);
    hi->addIncoming(s1, pre);
    lo->addIncoming(g0, grab);
    hi->addIncoming(g1, grab);
    body(lo, hi);
    B.CreateCondBr(shared, grab, done);
    B.SetInsertPoint(done);
  }

  // <0, 1, ..., 7> as i64 lanes.
  V* iota64() {
    std::vector<llvm::Constant*> c;
    for (int i = 0; i < 8; ++i) c.push_back(B.getInt64(static_cast<uint64_t>(i)));
    return llvm::ConstantVector::get(c);
  }

  V* shuffle(V* a, V* b, std::initializer_list<int> idx) { return B.CreateShuffleVector(a, b, std::vector<int>(idx)); }

  // Horizontal sums of eight <8 x float> vectors as one vector: lane j = sum of v[j]'s lanes
  // (pairwise add tree: 4 + 2 + 1 shuffle pairs instead of eight separate reductions).
  V* transpose_sum8(const std::vector<V*>& v) {
    auto hadd = [&](V* a, V* b) {
      return B.CreateFAdd(shuffle(a, b, {0, 2, 8, 10, 4, 6, 12, 14}), shuffle(a, b, {1, 3, 9, 11, 5, 7, 13, 15}));
    };
    V* t01 = hadd(v[0], v[1]);
    V* t23 = hadd(v[2], v[3]);
    V* t45 = hadd(v[4], v[5]);
    V* t67 = hadd(v[6], v[7]);
    V* a = hadd(t01, t23);  // v0..v3 low halves, then v0..v3 high halves
    V* b = hadd(t45, t67);
    return B.CreateFAdd(shuffle(a, b, {0, 1, 2, 3, 8, 9, 10, 11}), shuffle(a, b, {4, 5, 6, 7, 12, 13, 14, 15}));
  }

  V* vexp(V* x) { return emit_vexp(B, x); }

  // A constant <lanes x i1> mask: the first `count` lanes set.
  V* mask(int lanes, int count) {
    std::vector<llvm::Constant*> bits;
    for (int i = 0; i < lanes; ++i) bits.push_back(B.getInt1(i < count));
    return llvm::ConstantVector::get(bits);
  }

  // Broadcast of 4 bytes at p to all `lanes` i32 lanes, as <4 lanes x i8>.
  V* bcast32(V* p, unsigned lanes = 8) {
    V* v = load(i32, p, 1);
    return B.CreateBitCast(splat(v, lanes), vec(i8, 4 * lanes));
  }
  static unsigned lanes_of(V* v) { return llvm::cast<llvm::FixedVectorType>(v->getType())->getNumElements(); }
  V* x86(llvm::Intrinsic::ID id, V* a, V* b) { return B.CreateIntrinsic(id, {}, {a, b}); }

  // The integer dot steps of the 8-bit kernels: AVX2's instructions when the tier has them, the
  // 128-bit SSSE3/SSE2 ones on each half of the vector on x86-64-v2, otherwise the same
  // arithmetic in generic vector IR that any LLVM target lowers (NEON...; on x86 LLVM expands it
  // into long sequences, slow to compile and to run). The callers keep every sum in range, so the
  // saturation of pmaddubsw never applies and all of them are exact.
  bool avx2 = true;
  bool ssse3 = false;
  bool avx512 = false;  // 512-bit forms (the 16-lane 8-bit dots of the avx512 and amx tiers)
  // op on the two 128-bit halves of 256-bit a and b, the results joined.
  V* by_halves(llvm::Intrinsic::ID id, V* a, V* b) {
    const unsigned n = llvm::cast<llvm::FixedVectorType>(a->getType())->getNumElements();
    std::vector<int> lo, hi, all;
    for (unsigned i = 0; i < n / 2; ++i) {
      lo.push_back(static_cast<int>(i));
      hi.push_back(static_cast<int>(n / 2 + i));
    }
    V* rl = x86(id, B.CreateShuffleVector(a, lo), B.CreateShuffleVector(b, lo));
    V* rh = x86(id, B.CreateShuffleVector(a, hi), B.CreateShuffleVector(b, hi));
    const unsigned m = llvm::cast<llvm::FixedVectorType>(rl->getType())->getNumElements();
    for (unsigned i = 0; i < 2 * m; ++i) all.push_back(static_cast<int>(i));
    return B.CreateShuffleVector(rl, rh, all);
  }
  // <32 x i8> unsigned a, signed b -> <16 x i16>: a[2i] b[2i] + a[2i+1] b[2i+1] (pmaddubsw).
  V* maddubs(V* a, V* b) {
    if (avx2) return x86(llvm::Intrinsic::x86_avx2_pmadd_ub_sw, a, b);
    if (ssse3) return by_halves(llvm::Intrinsic::x86_ssse3_pmadd_ub_sw_128, a, b);
    auto v = vec(i16, 32);
    return pair_sums(B.CreateMul(B.CreateZExt(a, v), B.CreateSExt(b, v)), 16);
  }
  // <16 x i16> a, b -> <8 x i32>: a[2i] b[2i] + a[2i+1] b[2i+1] (pmaddwd).
  // <32 x i16> (16 lanes) -> <16 x i32> likewise: AVX-512BW's vpmaddwd, or generic IR.
  V* maddwd(V* a, V* b) {
    if (lanes_of(a) == 32) {
      if (avx512) return x86(llvm::Intrinsic::x86_avx512_pmaddw_d_512, a, b);
      auto v = vec(i32, 32);
      return pair_sums(B.CreateMul(B.CreateSExt(a, v), B.CreateSExt(b, v)), 16);
    }
    if (avx2) return x86(llvm::Intrinsic::x86_avx2_pmadd_wd, a, b);
    if (ssse3) return by_halves(llvm::Intrinsic::x86_sse2_pmadd_wd, a, b);
    auto v = vec(i32, 16);
    return pair_sums(B.CreateMul(B.CreateSExt(a, v), B.CreateSExt(b, v)), 8);
  }
  // <32 x i8>: x where w > 0, -x where w < 0, 0 where w == 0 (psignb).
  // At 64 lanes (AVX-512 has no psignb) and without SSSE3: generic IR (on AVX-512BW a mask from
  // w's sign bits and a masked subtract).
  V* sign8(V* x, V* w) {
    if (lanes_of(x) == 32 && avx2) return x86(llvm::Intrinsic::x86_avx2_psign_b, x, w);
    if (lanes_of(x) == 32 && ssse3) return by_halves(llvm::Intrinsic::x86_ssse3_psign_b_128, x, w);
    V* zero = llvm::Constant::getNullValue(w->getType());
    return B.CreateSelect(B.CreateICmpSLT(w, zero), B.CreateNeg(x), B.CreateSelect(B.CreateICmpEQ(w, zero), zero, x));
  }
  // acc (<n x i32>, or null for 0) + the sums of 4 adjacent products of unsigned a and signed b
  // (<4n x i8>): one vpdpbusd with VNNI (n = 8 or 16), else pmaddubsw + pmaddwd + add (n = 8).
  // Exact either way where the callers use it (every pair sum fits i16; VNNI has no intermediate
  // i16 at all).
  bool vnni = false;              // callers take their VNNI branches (i32 sums straight from dot4)
  bool vnni_instructions = false;  // and dot4 may emit vpdpbusd (false: those branches emulated, for tests)
  V* dot4(V* acc, V* a, V* b) {
    const unsigned n = lanes_of(a) / 4;
    if (vnni && vnni_instructions) {
      auto vi = vec(i32, n);
      V* start = acc ? acc : llvm::Constant::getNullValue(vi);
      return B.CreateIntrinsic(n == 16 ? llvm::Intrinsic::x86_avx512_vpdpbusd_512 : llvm::Intrinsic::x86_avx512_vpdpbusd_256, {},
                               {start, B.CreateBitCast(a, vi), B.CreateBitCast(b, vi)});
    }
    if (vnni) {  // emulated: vpdpbusd's arithmetic exactly (its callers may exceed pmaddubsw's i16)
      auto wide = vec(i32, 4 * n);
      V* s = pair_sums(pair_sums(B.CreateMul(B.CreateZExt(a, wide), B.CreateSExt(b, wide)), static_cast<int>(2 * n)), static_cast<int>(n));
      return acc ? B.CreateAdd(acc, s) : s;
    }
    std::vector<llvm::Constant*> one(16, B.getInt16(1));
    V* m = maddwd(maddubs(a, b), llvm::ConstantVector::get(one));
    return acc ? B.CreateAdd(acc, m) : m;
  }

  // Sums of adjacent pairs of a 2n-lane vector: n lanes.
  V* pair_sums(V* v, int n) {
    std::vector<int> even, odd;
    for (int i = 0; i < n; ++i) {
      even.push_back(2 * i);
      odd.push_back(2 * i + 1);
    }
    return B.CreateAdd(B.CreateShuffleVector(v, even), B.CreateShuffleVector(v, odd));
  }
};

}  // namespace ingot::ir_emit
