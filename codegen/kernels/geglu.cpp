// The GeGLU kernel family (Gemma's feed-forward activation): y = Gelu_tanh(gate) * up, rows split
// over threads, 8 lanes at a time with a masked tail. GELU's tanh form is computed as
// g * sigmoid(2u), u = sqrt(2/pi) (g + 0.044715 g³) (the same function: 0.5 (1 + tanh u) =
// sigmoid(2u)), in f32 with the specified exp (ir/float_spec.h), which has no cancellation for
// negative g. The reference computes GELU in double with libm's tanh, so the two differ by a few
// f32 ulps per element: the harness bound is NMSE 1e-10 (a few ulps is about 1e-13).
// approximation "ggml_f16" (llama.cpp's GELU, ir/float_spec.h): gate rounded to f16 indexes a
// 65536-entry f32 table baked into the object (float_spec::ggml_gelu_table, the reference's own),
// with x <= -10 -> 0 and x >= 10 -> x: exact (NMSE 0).
#include <cmath>

#include "ir/float_spec.h"

#include "codegen/kernel_registry.h"
#include "codegen/llvm/emit_ir.h"

namespace ingot {
namespace {

bool geglu_computes(const Node& n) { return n.is(Op::GeGLU); }

StatusOr<KernelSpec> geglu_spec(const Node& n, const Model*) {
  KernelSpec k;
  k.op = {n.kind(), n.attrs, {n.inputs[0].type(), n.inputs[1].type()}, n.outputs};
  const Shape& s = n.outputs[0].shape;
  if (s.empty()) return Status::Error("codegen: " + n.name + ": GeGLU needs rank >= 1");
  for (size_t d = 0; d < s.size(); ++d)
    if (!s[d].is_static() && !(d == 0 && s[d] == Dim::symbol("tokens")))
      return Status::Error("codegen: " + n.name + ": GeGLU needs static dims but for `tokens` rows, got " + shape_str(s));
  return k;
}

bool ggml_table(const KernelSpec& k) {
  auto a = k.op.attrs.find("approximation");
  return a != k.op.attrs.end() && a->second.as_string() == "ggml_f16";
}

std::string geglu_key(const KernelSpec& k) { return std::string(ggml_table(k) ? "geglu_ggml " : "geglu ") + k.op.outputs[0].str(); }

StatusOr<std::vector<KernelArg>> geglu_args(const Node&, const KernelSpec&) {
  return std::vector<KernelArg>{KernelArg::output(0), KernelArg::input(0), KernelArg::input(1)};
}

Status geglu_emit(EmitContext& ctx, const KernelSpec& k) {
  using llvm::Value;
  const Shape& s = k.op.outputs[0].shape;
  const int64_t D = s.back().value();
  int64_t rows_per_dim0 = 1;  // rows (of D) per unit of dims[0]; a fully static shape runs as one unit
  for (size_t d = s[0].is_static() ? 0 : 1; d + 1 < s.size(); ++d) rows_per_dim0 *= s[d].value();
  ir_emit::Fn f(ctx.module, k.name);
  auto& B = f.B;
  Value* y = f.arg_ptr(0);
  Value* gate = f.arg_ptr(1);
  Value* up = f.arg_ptr(2);
  Value* rows = s[0].is_static() ? f.c64(rows_per_dim0) : B.CreateMul(f.dim(0), f.c64(rows_per_dim0));
  auto [r0, r1] = f.thread_range(rows);
  auto c = [&](float v) { return f.splat(f.cf(v)); };
  llvm::GlobalVariable* table = nullptr;
  if (ggml_table(k)) {
    const std::string name = "ingot.ggml_gelu_table";
    table = ctx.module.getNamedGlobal(name);
    if (!table) {
      const float* t = float_spec::ggml_gelu_table();
      auto* init = llvm::ConstantDataArray::get(ctx.module.getContext(), llvm::ArrayRef<float>(t, 65536));
      table = new llvm::GlobalVariable(ctx.module, init->getType(), true, llvm::GlobalValue::InternalLinkage, init, name);
      table->setAlignment(llvm::Align(64));
    }
  }
  // ggml: x <= -10 -> 0, x >= 10 -> x, else table[f16 bits of x] (a gather of 8 lanes).
  auto ggml_geglu = [&](Value* g, Value* u) {
    Value* bits = B.CreateZExt(B.CreateBitCast(B.CreateFPTrunc(g, f.vec(f.f16, 8)), f.vec(f.i16, 8)), f.vec(f.i32, 8));
    Value* ptrs = B.CreateGEP(f.f32, table, bits);
    Value* looked = B.CreateMaskedGather(f.vf(), ptrs, llvm::Align(4), llvm::Constant::getAllOnesValue(f.vec(B.getInt1Ty(), 8)),
                                         llvm::Constant::getNullValue(f.vf()));
    Value* gelu = B.CreateSelect(B.CreateFCmpOLE(g, c(-10.0f)), c(0.0f), B.CreateSelect(B.CreateFCmpOGE(g, c(10.0f)), g, looked));
    return B.CreateFMul(gelu, u);
  };
  auto geglu = [&](Value* g, Value* u) {
    if (table) return ggml_geglu(g, u);
    Value* g3 = B.CreateFMul(B.CreateFMul(g, g), g);
    Value* inner = B.CreateFMul(c(static_cast<float>(std::sqrt(2.0 / M_PI))), B.CreateFAdd(g, B.CreateFMul(c(0.044715f), g3)));
    Value* e = f.vexp(B.CreateFMul(c(-2.0f), inner));
    return B.CreateFMul(B.CreateFDiv(g, B.CreateFAdd(c(1.0f), e)), u);
  };
  const int64_t full = D / 8, tail = D % 8;
  f.loop(r0, r1, 1, [&](Value* r) {
    Value* base = B.CreateMul(r, f.c64(D * 4));
    Value *yr = f.at(y, base), *gr = f.at(gate, base), *ur = f.at(up, base);
    if (full > 0)
      f.loop(f.c64(0), f.c64(full), 1, [&](Value* v) {
        Value* off = B.CreateMul(v, f.c64(32));
        f.store(geglu(f.load(f.vf(), f.at(gr, off), 4), f.load(f.vf(), f.at(ur, off), 4)), f.at(yr, off), 4);
      }, "vec");
    if (tail > 0) {
      Value* mask = f.mask(8, static_cast<int>(tail));
      Value* zero = llvm::Constant::getNullValue(f.vf());
      Value* g = B.CreateMaskedLoad(f.vf(), f.at(gr, full * 32), llvm::Align(4), mask, zero);
      Value* u = B.CreateMaskedLoad(f.vf(), f.at(ur, full * 32), llvm::Align(4), mask, zero);
      B.CreateMaskedStore(geglu(g, u), f.at(yr, full * 32), llvm::Align(4), mask);
    }
  }, "row");
  B.CreateRetVoid();
  return Status::Ok();
}

// Widths below, at and past one vector, odd ones (masked tails); one row and several; a 3-D shape.
std::vector<KernelCase> geglu_cases() {
  std::vector<KernelCase> cases;
  const Dim T = Dim::symbol("tokens");
  for (Shape shape : {Shape{T, Dim(1)}, Shape{T, Dim(8)}, Shape{T, Dim(45)}, Shape{T, Dim(256)}, Shape{T, Dim(3), Dim(13)}})
    for (int64_t rows : {1, 5})
      cases.push_back(node_case("geglu_" + shape_str(shape) + "_m" + std::to_string(rows), rows, Op::GeGLU,
                                {{ElementType::f32, shape}, {ElementType::f32, shape}}, {}, 1e-10));
  // llama.cpp's table: exact (the harness's random inputs index the table; the clamps at +-10 are
  // checked against the reference in tests/ir).
  for (Shape shape : {Shape{T, Dim(45)}, Shape{T, Dim(3), Dim(13)}})
    cases.push_back(node_case("geglu_ggml_" + shape_str(shape) + "_m3", 3, Op::GeGLU, {{ElementType::f32, shape}, {ElementType::f32, shape}},
                              {{"approximation", Attribute::String("ggml_f16")}}, 0.0));
  return cases;
}

}  // namespace

StatusOr<KernelContract> geglu_contract(const KernelSpec& k) {
  KernelContract c;
  INGOT_ASSIGN_OR_RETURN(ArgContract y, tensor_contract(k.op.outputs[0], ArgAccess::write));
  c.args.push_back(y);
  for (const TensorType& t : k.op.inputs) {
    INGOT_ASSIGN_OR_RETURN(ArgContract x, tensor_contract(t, ArgAccess::read));
    c.args.push_back(x);
  }
  return c;
}

extern const KernelFamily kGeGLUFamily = {
    "geglu", "Gelu(gate) * up (tanh form, or llama.cpp's f16 table), 8 lanes at a time",
    geglu_computes, geglu_spec, geglu_key, geglu_args, geglu_contract, nullptr, geglu_emit, geglu_cases};

}  // namespace ingot
