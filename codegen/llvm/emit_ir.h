// Internal to codegen/: a small IRBuilder helper shared by the attention, embedding and RopeTable
// generators (emit_attention.cpp, emit_misc.cpp). Includes LLVM IR headers: include it only from
// codegen/ translation units that already depend on LLVM.
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
#include <llvm/IR/Module.h>

#include "ir/float_spec.h"

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

  // for (iv = lo; iv < hi; iv += step) body(iv)
  void loop(V* lo, V* hi, int64_t step, const std::function<void(V*)>& body, const char* name = "loop") {
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
    B.CreateBr(head);
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
};

}  // namespace ingot::ir_emit
