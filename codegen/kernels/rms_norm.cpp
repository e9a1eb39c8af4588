// The RMSNorm kernel family: rows split over threads; per row llama.cpp's order, which the
// reference specifies (ir/float_spec.h); scalar loops vectorized by LLVM's loop vectorizer (the
// sum of squares is reassociable). Bitwise equal to the reference.
#include "codegen/kernel_registry.h"
#include "codegen/llvm/emit_ir.h"

namespace ingot {
namespace {

using llvm::Value;
using Emitter = ir_emit::Fn;

Status emit_rms_norm(Emitter& e, const RMSNormSpec& s) {
  auto& B = e.B;
  Value* y = e.arg_ptr(kRMSNormY);
  Value* x = e.arg_ptr(kRMSNormX);
  Value* w = e.arg_ptr(kRMSNormW);
  Value* rows = s.static_rows > 0 ? e.c64(s.static_rows) : B.CreateMul(e.load(e.i64, e.F->getArg(1), 8), e.c64(s.rows_per_dim0));
  auto [r0, r1] = e.thread_range(rows);
  llvm::FastMathFlags fm;
  fm.setAllowReassoc();
  e.loop(r0, r1, 1, [&](Value* r) {
    Value* xr = e.at(x, B.CreateMul(r, e.c64(s.D * 4)));
    Value* yr = e.at(y, B.CreateMul(r, e.c64(s.D * 4)));
    // llama.cpp's rounding order (the reference evaluator's spec): f32 squares summed in double
    // (reassociated, so vectorized; the order moves the double sum by far less than an f32 ulp),
    // the mean rounded to f32.
    llvm::Type* f64 = B.getDoubleTy();
    Value* ss = e.var(f64, llvm::ConstantFP::get(f64, 0.0));
    e.loop(e.c64(0), e.c64(s.D), 1, [&](Value* i) {
      Value* v = e.load(e.f32, e.at(xr, B.CreateMul(i, e.c64(4))), 4);
      Value* sum = B.CreateFAdd(B.CreateLoad(f64, ss), B.CreateFPExt(B.CreateFMul(v, v), f64));
      llvm::cast<llvm::Instruction>(sum)->setFastMathFlags(fm);
      B.CreateStore(sum, ss);
    }, "ss");
    Value* mean = B.CreateFPTrunc(B.CreateFDiv(B.CreateLoad(f64, ss), llvm::ConstantFP::get(f64, static_cast<double>(s.D))), e.f32);
    Value* inv = B.CreateFDiv(e.cf(1.0f), B.CreateUnaryIntrinsic(llvm::Intrinsic::sqrt, B.CreateFAdd(mean, e.cf(s.eps))));
    e.loop(e.c64(0), e.c64(s.D), 1, [&](Value* i) {
      Value* off = B.CreateMul(i, e.c64(4));
      Value* v = e.load(e.f32, e.at(xr, off), 4);
      Value* wv = e.load(e.f32, e.at(w, off), 4);
      e.store(B.CreateFMul(B.CreateFMul(v, inv), wv), e.at(yr, off), 4);
    }, "scale");
  }, "row");
  B.CreateRetVoid();
  return Status::Ok();
}


bool rms_norm_computes(const Node& n) { return n.is(Op::RMSNorm); }

StatusOr<KernelSpec> rms_norm_spec(const Node& n, const Model*) {
  KernelSpec k;
  const Dim& d = n.inputs[1].type().shape[0];
  if (!d.is_static()) return Status::Error("codegen: " + n.name + ": the normalized dimension must be static, got " + d.str());
  k.rms_norm.D = d.value();
  k.rms_norm.eps = static_cast<float>(n.attr("eps").as_float());
  const Shape& x = n.inputs[0].type().shape;
  if (x.empty() || !x.back().is_static() || x.back().value() != d.value())
    return Status::Error("codegen: " + n.name + ": RMSNorm of " + shape_str(x) + " by a weight of " + d.str() + " values");
  for (size_t i = 1; i + 1 < x.size(); ++i) {
    if (!x[i].is_static()) return Status::Error("codegen: " + n.name + ": RMSNorm needs static dims but the first, got " + shape_str(x));
    k.rms_norm.rows_per_dim0 *= x[i].value();
  }
  // Rank 2 reads its rows from dims[0] (the schedule's tokens, or 1 for a static [1, D]); a
  // static shape of higher rank runs all its rows.
  if (x.size() >= 3 && x[0].is_static()) k.rms_norm.static_rows = x[0].value() * k.rms_norm.rows_per_dim0;
  if (x.size() == 1) k.rms_norm.static_rows = 1;
  return k;
}

std::string rms_norm_key(const KernelSpec& k) {
  char buf[96];
  std::snprintf(buf, sizeof(buf), "rms_norm D=%lld eps=%a rows=%lldx/%lld", static_cast<long long>(k.rms_norm.D),
                static_cast<double>(k.rms_norm.eps), static_cast<long long>(k.rms_norm.rows_per_dim0),
                static_cast<long long>(k.rms_norm.static_rows));
  return buf;
}

StatusOr<std::vector<KernelArg>> rms_norm_args(const Node&, const KernelSpec&) {
  std::vector<KernelArg> a(kRMSNormArgCount);
  a[kRMSNormY] = KernelArg::output(0);
  a[kRMSNormX] = KernelArg::input(0);
  a[kRMSNormW] = KernelArg::input(1);
  return a;
}

StatusOr<KernelContract> rms_norm_contract(const KernelSpec& spec) {
  KernelContract c;
  c.args.resize(kRMSNormArgCount);
  const RMSNormSpec& s = spec.rms_norm;
  for (auto [slot, access] : {std::pair{kRMSNormY, ArgAccess::write}, std::pair{kRMSNormX, ArgAccess::read}})
    c.args[slot] = s.static_rows > 0 ? KernelContract::fixed_bytes(access, s.static_rows * s.D * 4)
                                     : KernelContract::rows(access, s.rows_per_dim0 * s.D * 4);
  c.args[kRMSNormW] = KernelContract::fixed_bytes(ArgAccess::read, spec.rms_norm.D * 4);
  return c;
}

Status rms_norm_emit(EmitContext& ctx, const KernelSpec& spec) {
  if (spec.rms_norm.D <= 0) return Status::Error("codegen: RMSNorm needs D > 0");
  Emitter e(ctx.module, spec.name);
  return emit_rms_norm(e, spec.rms_norm);
}

// Odd widths (vector tails), one row and many; NMSE 0: the kernel follows the reference's order.
std::vector<KernelCase> rms_norm_cases() {
  std::vector<KernelCase> cases;
  for (int64_t D : {1, 7, 8, 67, 288}) {
    for (int64_t rows : {1, 5}) {
      cases.push_back(node_case("rms_norm_d" + std::to_string(D) + "_m" + std::to_string(rows), rows, Op::RMSNorm,
                                {{ElementType::f32, Shape{Dim::symbol("tokens"), Dim(D)}}, {ElementType::f32, static_shape({D})}},
                                {{"eps", Attribute::Float(1e-5)}}));
    }
  }
  // Per-head norms (Qwen3's Q/K): x[tokens, heads, D] by w[D]; and a fully static shape.
  for (int64_t rows : {1, 4})
    cases.push_back(node_case("rms_norm_heads3_d16_m" + std::to_string(rows), rows, Op::RMSNorm,
                              {{ElementType::f32, Shape{Dim::symbol("tokens"), Dim(3), Dim(16)}}, {ElementType::f32, static_shape({16})}},
                              {{"eps", Attribute::Float(1e-6)}}));
  cases.push_back(node_case("rms_norm_static_2x3x8", 1, Op::RMSNorm, {{ElementType::f32, static_shape({2, 3, 8})}, {ElementType::f32, static_shape({8})}},
                            {{"eps", Attribute::Float(1e-6)}}));
  return cases;
}

}  // namespace

extern const KernelFamily kRMSNormFamily = {
    "rms_norm", "x / sqrt(mean(x²) + eps) · w over the last axis, in the reference's order",
    rms_norm_computes, rms_norm_spec, rms_norm_key, rms_norm_args, rms_norm_contract, nullptr, rms_norm_emit, rms_norm_cases};

}  // namespace ingot
