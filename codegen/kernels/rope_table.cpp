// The RopeTable kernel family: cos and sin of the rotary angles (pos + t) * inv_freq[j], in the
// reference's order (float_spec). See docs/codegen.md.
#include "codegen/kernel_registry.h"
#include "codegen/llvm/emit_ir.h"

namespace ingot {
namespace {

using llvm::Value;
using ir_emit::Fn;

// ---------------------------------------------------------------- RopeTable
// cos/sin[t, j] of angle = f32(f32(pos + t) * inv_freq[j]), through libm's double cos and sin and
// rounded to f32: the reference's exact computation, so the tables are bitwise equal to it (with the
// same libm). A few dozen values per token: not worth a vectorized approximation.
Status emit_rope_table_body(Fn& f, const RopeTableSpec& s) {
  auto& B = f.B;
  if (s.H <= 0) return Status::Error("codegen: RopeTable needs H > 0");
  llvm::FunctionType* dd = llvm::FunctionType::get(f.f64, {f.f64}, false);
  llvm::FunctionCallee cos_fn = f.M.getOrInsertFunction("cos", dd);
  llvm::FunctionCallee sin_fn = f.M.getOrInsertFunction("sin", dd);
  Value* cp = f.arg_ptr(kRopeTableCos);
  Value* sp = f.arg_ptr(kRopeTableSin);
  Value* posp = f.arg_ptr(kRopeTablePos);
  Value* inv = f.arg_ptr(kRopeTableInvFreq);
  Value* T = f.dim(0);
  Value* pos = s.pos_i32 ? B.CreateSExt(f.load(f.i32, posp, 4), f.i64) : f.load(f.i64, posp, 8);
  auto [e0, e1] = f.thread_range(B.CreateMul(T, f.c64(s.H)));
  f.loop(e0, e1, 1, [&](Value* e) {
    Value* t = B.CreateSDiv(e, f.c64(s.H));
    Value* j = B.CreateSRem(e, f.c64(s.H));
    Value* p = B.CreateSIToFP(B.CreateAdd(pos, t), f.f32);
    Value* angle = B.CreateFPExt(B.CreateFMul(p, f.load(f.f32, f.at(inv, j, 4), 4)), f.f64);
    f.store(B.CreateFPTrunc(B.CreateCall(cos_fn, {angle}), f.f32), f.at(cp, e, 4), 4);
    f.store(B.CreateFPTrunc(B.CreateCall(sin_fn, {angle}), f.f32), f.at(sp, e, 4), 4);
  }, "elem");
  B.CreateRetVoid();
  return Status::Ok();
}


bool rope_table_computes(const Node& n) { return n.is(Op::RopeTable); }

StatusOr<KernelSpec> rope_table_spec(const Node& n, const Model*) {
  KernelSpec k;
  const Dim& h = n.inputs[1].type().shape[0];
  if (!h.is_static()) return Status::Error("codegen: " + n.name + ": the inverse frequencies must be static, got " + h.str());
  k.rope_table.H = h.value();
  k.rope_table.pos_i32 = n.inputs[0].type().type == ElementType::i32;
  return k;
}

std::string rope_table_key(const KernelSpec& k) {
  return "rope_table H=" + std::to_string(k.rope_table.H) + " pos=" + (k.rope_table.pos_i32 ? "i32" : "i64");
}

StatusOr<std::vector<KernelArg>> rope_table_args(const Node&, const KernelSpec&) {
  std::vector<KernelArg> a(kRopeTableArgCount);
  a[kRopeTableCos] = KernelArg::output(0);
  a[kRopeTableSin] = KernelArg::output(1);
  a[kRopeTablePos] = KernelArg::input(0);
  a[kRopeTableInvFreq] = KernelArg::input(1);
  return a;
}

Status rope_table_emit(EmitContext& ctx, const KernelSpec& spec) {
  Fn f(ctx.module, spec.name);
  return emit_rope_table_body(f, spec.rope_table);
}

}  // namespace

// Cases: tests/codegen/attention_test.cpp (RopeTableKernel: positions, odd H, i32 and i64).
StatusOr<KernelContract> rope_table_contract(const KernelSpec& spec) {
  const RopeTableSpec& s = spec.rope_table;
  KernelContract c;
  c.args.resize(kRopeTableArgCount);
  c.args[kRopeTableCos] = KernelContract::rows(ArgAccess::write, s.H * 4);
  c.args[kRopeTableSin] = KernelContract::rows(ArgAccess::write, s.H * 4);
  c.args[kRopeTablePos] = KernelContract::fixed_bytes(ArgAccess::read, s.pos_i32 ? 4 : 8, s.pos_i32 ? 4 : 8);
  c.args[kRopeTableInvFreq] = KernelContract::fixed_bytes(ArgAccess::read, s.H * 4);
  return c;
}

extern const KernelFamily kRopeTableFamily = {
    "rope_table", "cos and sin of the rotary angles for the call's positions",
    rope_table_computes, rope_table_spec, rope_table_key, rope_table_args, rope_table_contract, nullptr, rope_table_emit, nullptr};

}  // namespace ingot
