// The generic kernel family: any node no hand-written family takes, lowered through MLIR. The node
// becomes a func of linalg.generic ops on memrefs (text built here), MLIR lowers it to loops and
// then to LLVM IR (codegen/mlir/lower_to_llvm.cpp, the one MLIR translation unit), LLVM's O3
// pipeline unrolls and vectorizes the loops for the tier, and a small IRBuilder wrapper gives it
// the kernel ABI of kernels.h: it splits the rows over threads and passes memref descriptors.
//
// Numerics follow the reference evaluator literally: float math in double, rounded once to the
// output type; sums in the reference's order into a double accumulator. So these kernels are
// bitwise equal to the reference (the harness checks NMSE 0). They are correct first and fast
// second: a node that matters gets a hand-written family when a benchmark says so.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>

#include <llvm/Linker/Linker.h>

#include "codegen/kernel_registry.h"
#include "codegen/llvm/emit_ir.h"
#include "codegen/mlir/lower_to_llvm.h"
#include "ir/builder.h"
#include "ir/float_spec.h"
#include "ir/ops.h"

namespace ingot {
namespace {

Status unsupported(const Node& n, const std::string& why) {
  return Status::Error(StatusCode::unsupported, "codegen: " + n.name + " (" + std::string(n.op_name()) + "): the generic path " + why);
}

bool is_tokens(const Dim& d) { return d == Dim::symbol("tokens"); }

// Storage types the generic path handles, as MLIR spells them (booleans are bytes 0/1).
const char* mlir_type(ElementType t) {
  switch (t) {
    case ElementType::f32: return "f32";
    case ElementType::f16: return "f16";
    case ElementType::i64: return "i64";
    case ElementType::i32: return "i32";
    case ElementType::boolean: return "i8";
    default: return nullptr;
  }
}

std::string memref(const TensorType& t, const char* elem = nullptr) {
  std::string s = "memref<";
  for (size_t i = 0; i < t.shape.size(); ++i) s += (t.shape[i].is_static() ? std::to_string(t.shape[i].value()) : "?") + "x";
  return s + (elem ? elem : mlir_type(t.type)) + ">";
}

std::string f64_const(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "arith.constant 0x%016llX : f64", static_cast<unsigned long long>(bits));
  return buf;
}

std::string affine_map(int rank, const std::vector<std::string>& results) {
  std::string s = "affine_map<(";
  for (int i = 0; i < rank; ++i) s += (i ? ", d" : "d") + std::to_string(i);
  s += ") -> (";
  for (size_t i = 0; i < results.size(); ++i) s += (i ? ", " : "") + results[i];
  return s + ")>";
}

// Map of a (numpy-broadcast) input of rank r into an iteration space of rank R: right-aligned;
// a dim of 1 where the space's dim is not 1 reads index 0.
std::string broadcast_map(const Shape& in, const Shape& space) {
  const size_t R = space.size(), r = in.size();
  std::vector<std::string> res;
  for (size_t i = 0; i < r; ++i) {
    const size_t d = R - r + i;
    res.push_back(in[i] == Dim(1) && space[d] != Dim(1) ? "0" : "d" + std::to_string(d));
  }
  return affine_map(static_cast<int>(R), res);
}

std::string iterators(const std::vector<bool>& reduction) {
  std::string s = "[";
  for (size_t i = 0; i < reduction.size(); ++i) s += std::string(i ? ", " : "") + (reduction[i] ? "\"reduction\"" : "\"parallel\"");
  return s + "]";
}

// The body of a linalg.generic region: SSA values, one per line.
class Body {
 public:
  std::string let(const std::string& rhs) {
    const std::string v = "%v" + std::to_string(next_++);
    os_ << "      " << v << " = " << rhs << "\n";
    return v;
  }
  std::string f64(double v) { return let(f64_const(v)); }
  std::string text() const { return os_.str(); }

 private:
  std::ostringstream os_;
  int next_ = 0;
};

// A scalar loaded from storage type t, widened to the reference's math type: double for floats,
// int64 for integers, i1 for booleans.
std::string widen(Body& b, const std::string& v, ElementType t) {
  switch (t) {
    case ElementType::f32: return b.let("arith.extf " + v + " : f32 to f64");
    case ElementType::f16: return b.let("arith.extf " + v + " : f16 to f64");
    case ElementType::i32: return b.let("arith.extsi " + v + " : i32 to i64");
    case ElementType::boolean: return b.let("arith.cmpi ne, " + v + ", " + b.let("arith.constant 0 : i8") + " : i8");
    default: return v;
  }
}

// A math-type value rounded once to storage type t.
std::string narrow(Body& b, const std::string& v, ElementType t) {
  switch (t) {
    case ElementType::f32: return b.let("arith.truncf " + v + " : f64 to f32");
    // Through f32, as the reference stores an f16 (Tensor::set_f): two roundings.
    case ElementType::f16: return b.let("arith.truncf " + b.let("arith.truncf " + v + " : f64 to f32") + " : f32 to f16");
    case ElementType::i32: {  // saturating, as Tensor::set_i
      const std::string lo = b.let("arith.maxsi " + v + ", " + b.let("arith.constant -2147483648 : i64") + " : i64");
      const std::string hi = b.let("arith.minsi " + lo + ", " + b.let("arith.constant 2147483647 : i64") + " : i64");
      return b.let("arith.trunci " + hi + " : i64 to i32");
    }
    case ElementType::boolean: return b.let("arith.extui " + v + " : i1 to i8");
    default: return v;
  }
}

// GELU's tanh form, as the reference evaluates it in double.
std::string gelu_tanh(Body& b, const std::string& x) {
  const std::string x3 = b.let("arith.mulf " + b.let("arith.mulf " + x + ", " + x + " : f64") + ", " + x + " : f64");
  const std::string inner = b.let("arith.addf " + x + ", " + b.let("arith.mulf " + b.f64(0.044715) + ", " + x3 + " : f64") + " : f64");
  const std::string t = b.let("math.tanh " + b.let("arith.mulf " + b.f64(std::sqrt(2.0 / M_PI)) + ", " + inner + " : f64") + " : f64");
  const std::string half_x = b.let("arith.mulf " + b.f64(0.5) + ", " + x + " : f64");
  return b.let("arith.mulf " + half_x + ", " + b.let("arith.addf " + b.f64(1.0) + ", " + t + " : f64") + " : f64");
}

// One element of an element-wise op from its widened inputs; the result in the math type of the
// output. Mirrors the reference kernels of ir/ops.cpp expression by expression.
StatusOr<std::string> elementwise(Body& b, const Node& n, const std::vector<std::string>& x, const std::vector<ElementType>& types) {
  const bool fl = types[0] == ElementType::f32 || types[0] == ElementType::f16;
  const std::string ft = " : f64", it = " : i64";
  auto bin = [&](const char* fop, const char* iop) -> StatusOr<std::string> {
    if (fl) return b.let(std::string(fop) + " " + x[0] + ", " + x[1] + ft);
    if (!iop) return unsupported(n, "has no integer form of this op");
    return b.let(std::string(iop) + " " + x[0] + ", " + x[1] + it);
  };
  auto cmp = [&](const char* fpred, const char* ipred) {
    return fl ? b.let(std::string("arith.cmpf ") + fpred + ", " + x[0] + ", " + x[1] + ft)
              : b.let(std::string("arith.cmpi ") + ipred + ", " + x[0] + ", " + x[1] + it);
  };
  auto unary = [&](const char* op) -> StatusOr<std::string> {
    if (!fl) return unsupported(n, "computes this op on floats only");
    return b.let(std::string(op) + " " + x[0] + ft);
  };
  // max/min as the reference: NaN if either is NaN, else std::max(a, b) (a unless a < b).
  auto minmax = [&](bool is_max) -> StatusOr<std::string> {
    if (!fl) {
      const std::string lt = b.let("arith.cmpi slt, " + x[0] + ", " + x[1] + it);
      return b.let("arith.select " + lt + ", " + x[is_max ? 1 : 0] + ", " + x[is_max ? 0 : 1] + " : i64");
    }
    const std::string lt = is_max ? b.let("arith.cmpf olt, " + x[0] + ", " + x[1] + ft) : b.let("arith.cmpf olt, " + x[1] + ", " + x[0] + ft);
    const std::string pick = b.let("arith.select " + lt + ", " + x[1] + ", " + x[0] + " : f64");
    const std::string nan = b.let("arith.cmpf uno, " + x[0] + ", " + x[1] + ft);
    return b.let("arith.select " + nan + ", " + b.f64(NAN) + ", " + pick + " : f64");
  };
  switch (n.kind()) {
    case Op::Add: return bin("arith.addf", "arith.addi");
    case Op::Subtract: return bin("arith.subf", "arith.subi");
    case Op::Multiply: return bin("arith.mulf", "arith.muli");
    case Op::Divide: return bin("arith.divf", nullptr);  // integer floor division checks for zero: not here
    case Op::Power: return bin("math.powf", nullptr);
    case Op::Maximum: return minmax(true);
    case Op::Minimum: return minmax(false);
    case Op::Equal: return cmp("oeq", "eq");
    case Op::NotEqual: return cmp("une", "ne");
    case Op::Less: return cmp("olt", "slt");
    case Op::LessEqual: return cmp("ole", "sle");
    case Op::Greater: return cmp("ogt", "sgt");
    case Op::GreaterEqual: return cmp("oge", "sge");
    case Op::LogicalAnd: return b.let("arith.andi " + x[0] + ", " + x[1] + " : i1");
    case Op::LogicalOr: return b.let("arith.ori " + x[0] + ", " + x[1] + " : i1");
    case Op::LogicalNot: return b.let("arith.xori " + x[0] + ", " + b.let("arith.constant true") + " : i1");
    case Op::Sqrt: return unary("math.sqrt");
    case Op::Exp: return unary("math.exp");
    case Op::Log: return unary("math.log");
    case Op::Sin: return unary("math.sin");
    case Op::Cos: return unary("math.cos");
    case Op::Tanh: return unary("math.tanh");
    case Op::Erf: return unary("math.erf");
    case Op::Negative:
      return fl ? b.let("arith.negf " + x[0] + ft) : b.let("arith.subi " + b.let("arith.constant 0 : i64") + ", " + x[0] + it);
    case Op::Abs:
      if (fl) return b.let("math.absf " + x[0] + ft);
      return b.let("arith.select " + b.let("arith.cmpi slt, " + x[0] + ", " + b.let("arith.constant 0 : i64") + it) + ", " +
                   b.let("arith.subi " + b.let("arith.constant 0 : i64") + ", " + x[0] + it) + ", " + x[0] + " : i64");
    case Op::Sigmoid: {
      if (!fl) return unsupported(n, "computes Sigmoid on floats only");
      const std::string e = b.let("math.exp " + b.let("arith.negf " + x[0] + ft) + ft);
      return b.let("arith.divf " + b.f64(1.0) + ", " + b.let("arith.addf " + b.f64(1.0) + ", " + e + ft) + ft);
    }
    case Op::Gelu: {
      if (!fl) return unsupported(n, "computes Gelu on floats only");
      if (n.attr("approximation").as_string() == "ggml_f16") return unsupported(n, "computes llama.cpp's table GELU in the GeGLU kernel only");
      if (n.attr("approximation").as_string() == "tanh") return gelu_tanh(b, x[0]);
      const std::string e = b.let("math.erf " + b.let("arith.divf " + x[0] + ", " + b.f64(std::sqrt(2.0)) + ft) + ft);
      const std::string half_x = b.let("arith.mulf " + b.f64(0.5) + ", " + x[0] + ft);
      return b.let("arith.mulf " + half_x + ", " + b.let("arith.addf " + b.f64(1.0) + ", " + e + ft) + ft);
    }
    case Op::Select: {
      const char* t = type_info(types[1]).is_float ? "f64" : types[1] == ElementType::boolean ? "i1" : "i64";
      return b.let("arith.select " + x[0] + ", " + x[1] + ", " + x[2] + " : " + t);
    }
    default: return unsupported(n, "has no element-wise form of this op");
  }
}

enum class Lowering { elementwise, reduce, softmax, matmul, fused_matmul, attention, rms_norm, transpose, broadcast, slice, concat, gather, range, swiglu, rope, rope_table, embedding, none };

Lowering category(const Node& n) {
  if (n.is(Op::Convert) || n.is(Op::Select)) return Lowering::elementwise;
  if (op_def(n.kind()).has(kElementwise)) return Lowering::elementwise;
  switch (n.kind()) {
    case Op::ReduceSum: case Op::ReduceMean: case Op::ReduceMax: return Lowering::reduce;
    case Op::Softmax: return Lowering::softmax;
    case Op::MatMul: case Op::WeightMatMul: return Lowering::matmul;
    case Op::FusedMatMul: return Lowering::fused_matmul;
    case Op::Attention: return Lowering::attention;
    case Op::RopeTable: return Lowering::rope_table;
    case Op::Embedding: return Lowering::embedding;
    case Op::RMSNorm: return Lowering::rms_norm;
    case Op::Transpose: return Lowering::transpose;
    case Op::Broadcast: return Lowering::broadcast;
    case Op::Slice: return Lowering::slice;
    case Op::Concat: return Lowering::concat;
    case Op::Gather: return Lowering::gather;
    case Op::Range: return Lowering::range;
    case Op::SwiGLU: return Lowering::swiglu;
    case Op::RoPE: return Lowering::rope;
    default: return Lowering::none;
  }
}

// ---------------------------------------------------------------- the MLIR function of a node
// func @NAME_body(inputs..., outputs...): every memref has the node's static dims and `?` where
// the value has `tokens` rows.
class FuncText {
 public:
  // `extra`: parameters after the outputs (Attention: its two caches and %past).
  explicit FuncText(const KernelSpec& k, const std::string& extra = "") : s_(k.op) {
    os_ << "func.func @" << k.name << "_body(";
    int i = 0;
    for (const TensorType& t : s_.inputs) os_ << (i++ ? ", " : "") << "%in" << i - 1 << ": " << memref(t);
    for (size_t o = 0; o < s_.outputs.size(); ++o) os_ << (i++ ? ", " : "") << "%out" << o << ": " << memref(s_.outputs[o]);
    os_ << (extra.empty() ? "" : ", " + extra) << ") {\n";
    os_ << "    %c0 = arith.constant 0 : index\n";
  }

  // The dynamic dim 0 (rows) of a memref value, for allocations.
  std::string rows_of(const std::string& v, const TensorType& t) {
    const std::string r = "%rows" + std::to_string(tmp_++);
    os_ << "    " << r << " = memref.dim " << v << ", %c0 : " << memref(t) << "\n";
    return r;
  }

  // A temporary f64 buffer of `shape` (rows taken from `like` when dim 0 is dynamic).
  std::string alloc_f64(const Shape& shape, const std::string& like, const TensorType& like_type, double fill) {
    const std::string v = "%acc" + std::to_string(tmp_++);
    TensorType t{ElementType::f32, shape};
    std::string dyn = !shape.empty() && !shape[0].is_static() ? rows_of(like, like_type) : "";
    os_ << "    " << v << " = memref.alloc(" << dyn << ") : " << memref(t, "f64") << "\n";
    const std::string c = "%fill" + std::to_string(tmp_++);
    os_ << "    " << c << " = " << f64_const(fill) << "\n";
    os_ << "    linalg.fill ins(" << c << " : f64) outs(" << v << " : " << memref(t, "f64") << ")\n";
    frees_.push_back(v + " : " + memref(t, "f64"));
    return v;
  }

  struct Operand {
    std::string value, type, map;
  };
  // linalg.generic over an iteration domain of reduction.size() dimensions with the body `body`
  // (block arguments %a0.. for ins, %o0.. for outs).
  void generic(const std::vector<bool>& reduction, const std::vector<Operand>& ins, const std::vector<Operand>& outs,
               const std::vector<std::string>& arg_types, const std::string& body, const std::string& yields,
               const std::string& yield_types) {
    os_ << "    linalg.generic {indexing_maps = [";
    bool first = true;
    for (const auto* list : {&ins, &outs})
      for (const Operand& o : *list) {
        os_ << (first ? "" : ", ") << o.map;
        first = false;
      }
    os_ << "], iterator_types = " << iterators(reduction) << "}";
    if (!ins.empty()) {
      os_ << " ins(";
      for (size_t i = 0; i < ins.size(); ++i) os_ << (i ? ", " : "") << ins[i].value;
      os_ << " : ";
      for (size_t i = 0; i < ins.size(); ++i) os_ << (i ? ", " : "") << ins[i].type;
      os_ << ")";
    }
    os_ << " outs(";
    for (size_t i = 0; i < outs.size(); ++i) os_ << (i ? ", " : "") << outs[i].value;
    os_ << " : ";
    for (size_t i = 0; i < outs.size(); ++i) os_ << (i ? ", " : "") << outs[i].type;
    os_ << ") {\n    ^bb0(";
    size_t a = 0;
    for (size_t i = 0; i < ins.size(); ++i, ++a) os_ << (a ? ", " : "") << "%a" << i << ": " << arg_types[a];
    for (size_t i = 0; i < outs.size(); ++i, ++a) os_ << (a ? ", " : "") << "%o" << i << ": " << arg_types[a];
    os_ << "):\n" << body << "      linalg.yield " << yields << " : " << yield_types << "\n    }\n";
  }

  // Raw lines (scf loops, loads, stores) into the function body.
  void raw(const std::string& text) { os_ << text; }

  // A temporary f32 buffer shaped like `shape` (rows from `like` when dim 0 is dynamic).
  std::string alloc_f32(const Shape& shape, const std::string& like, const TensorType& like_type) {
    const std::string v = "%tmp" + std::to_string(tmp_++);
    TensorType t{ElementType::f32, shape};
    std::string dyn = !shape.empty() && !shape[0].is_static() ? rows_of(like, like_type) : "";
    os_ << "    " << v << " = memref.alloc(" << dyn << ") : " << memref(t) << "\n";
    frees_.push_back(v + " : " + memref(t));
    return v;
  }

  std::string finish() {
    for (const auto& f : frees_) os_ << "    memref.dealloc " << f << "\n";
    os_ << "    return\n  }\n";
    return "module {\n  " + os_.str() + "}\n";
  }

 private:
  const OpKernelSpec& s_;
  std::ostringstream os_;
  int tmp_ = 0;
  std::vector<std::string> frees_;
};

std::string in_name(size_t i) { return "%in" + std::to_string(i); }
std::string out_name(size_t i) { return "%out" + std::to_string(i); }
std::string identity(int rank) {
  std::vector<std::string> r;
  for (int i = 0; i < rank; ++i) r.push_back("d" + std::to_string(i));
  return affine_map(rank, r);
}

// One element of a node of an element-wise chain, in the math type of its output type.
StatusOr<std::string> scalar_op(Body& b, const Node& n, const std::vector<std::string>& xs, const std::vector<ElementType>& types) {
  if (!n.is(Op::Convert)) return elementwise(b, n, xs, types);
  const ElementType from = types[0], to = n.outputs[0].type;
  const bool int_from = from == ElementType::i64 || from == ElementType::i32;
  const bool int_to = to == ElementType::i64 || to == ElementType::i32;
  const bool float_from = from == ElementType::f32 || from == ElementType::f16;
  const bool float_to = to == ElementType::f32 || to == ElementType::f16;
  if (from == to || (int_from && int_to) || (float_from && float_to)) return xs[0];
  if (float_to && int_from) return b.let("arith.sitofp " + xs[0] + " : i64 to f64");
  if (float_to && from == ElementType::boolean) return b.let("arith.uitofp " + xs[0] + " : i1 to f64");
  if (to == ElementType::boolean && float_from) return b.let("arith.cmpf une, " + xs[0] + ", " + b.f64(0.0) + " : f64");
  if (to == ElementType::i64 && float_from) {
    // As Tensor::set_f: toward zero, saturating, NaN to 0.
    const std::string v = xs[0];
    const std::string t = b.let("arith.fptosi " + b.let("arith.select " + b.let("arith.cmpf uno, " + v + ", " + v + " : f64") + ", " +
                                                        b.f64(0.0) + ", " + v + " : f64") + " : f64 to i64");
    const std::string hi = b.let("arith.cmpf oge, " + v + ", " + b.f64(9.2233720368547758e18) + " : f64");
    const std::string lo = b.let("arith.cmpf ole, " + v + ", " + b.f64(-9.2233720368547758e18) + " : f64");
    const std::string r = b.let("arith.select " + hi + ", " + b.let("arith.constant 9223372036854775807 : i64") + ", " + t + " : i64");
    return b.let("arith.select " + lo + ", " + b.let("arith.constant -9223372036854775808 : i64") + ", " + r + " : i64");
  }
  return unsupported(n, "converts floats, integers and booleans among f32, f16, i64, i32 and bool, not this pair");
}

// Element-wise ops, alone or as the chain their op decomposes into (OpDef::decompose): one
// linalg.generic over the output's shape, each step rounded to its own type as the reference.
StatusOr<std::string> elementwise_func(const Node& n, const KernelSpec& k) {
  const OpKernelSpec& s = k.op;
  const TensorType& out = s.outputs[0];
  const int R = static_cast<int>(out.shape.size());
  Model sub;
  GraphBuilder gb(sub);
  std::vector<ingot::Value> params;
  for (size_t i = 0; i < s.inputs.size(); ++i) params.push_back(gb.parameter("in" + std::to_string(i), s.inputs[i].type, s.inputs[i].shape));
  ingot::Value result;
  if (const DecomposeFn decompose = op_def(n.kind()).decompose) {
    INGOT_ASSIGN_OR_RETURN(std::vector<ingot::Value> outs, decompose(n, gb, params));
    result = outs.at(0);
  } else {
    result = gb.node(n.kind(), params, n.attrs, "n")->out(0);
  }
  INGOT_RETURN_IF_ERROR(gb.status());
  INGOT_ASSIGN_OR_RETURN(std::vector<Node*> order, sub.topological_order());

  FuncText f(k);
  std::vector<FuncText::Operand> ins;
  std::vector<std::string> arg_types;
  Body b;
  std::map<const Node*, std::string> scalar;  // each value of the chain, widened
  for (size_t i = 0; i < s.inputs.size(); ++i) {
    ins.push_back({in_name(i), memref(s.inputs[i]), broadcast_map(s.inputs[i].shape, out.shape)});
    arg_types.push_back(mlir_type(s.inputs[i].type));
    scalar[params[i].node] = widen(b, "%a" + std::to_string(i), s.inputs[i].type);
  }
  arg_types.push_back(mlir_type(out.type));
  std::string y;
  for (Node* c : order) {
    if (c->is(Op::Parameter)) continue;
    if (c != result.node && c->outputs[0].shape != out.shape) return unsupported(n, "fuses element-wise chains of one shape only");
    if (category(*c) != Lowering::elementwise || op_def(c->kind()).decompose) return unsupported(n, "decomposes into a non-element-wise op");
    std::vector<std::string> xs;
    std::vector<ElementType> types;
    for (const ingot::Value& v : c->inputs) {
      xs.push_back(scalar.at(v.node));
      types.push_back(v.type().type);
    }
    INGOT_ASSIGN_OR_RETURN(std::string v, scalar_op(b, *c, xs, types));
    if (c == result.node) y = narrow(b, v, out.type);
    else scalar[c] = widen(b, narrow(b, v, c->outputs[0].type), c->outputs[0].type);  // rounded as the reference stores it
  }
  f.generic(std::vector<bool>(static_cast<size_t>(R), false), ins, {{out_name(0), memref(out), identity(R)}}, arg_types,
            b.text(), y, mlir_type(out.type));
  return f.finish();
}

// ReduceSum/Mean/Max: a double accumulator shaped like the input with the reduced axes 1,
// filled in the input's order, then rounded into the output.
StatusOr<std::string> reduce_func(const Node& n, const KernelSpec& k) {
  const OpKernelSpec& s = k.op;
  const TensorType& x = s.inputs[0];
  const TensorType& out = s.outputs[0];
  if (x.type != ElementType::f32) return unsupported(n, "reduces f32 only");
  const int r = static_cast<int>(x.shape.size());
  std::vector<int64_t> axes;
  for (int64_t a : s.attrs.at("axes").as_ints()) axes.push_back(a < 0 ? a + r : a);
  std::vector<bool> reduced(static_cast<size_t>(r), false);
  for (int64_t a : axes) reduced[static_cast<size_t>(a)] = true;
  Shape kept;
  std::vector<std::string> kept_map;
  int64_t count = 1;
  for (int i = 0; i < r; ++i) {
    kept.push_back(reduced[static_cast<size_t>(i)] ? Dim(1) : x.shape[static_cast<size_t>(i)]);
    kept_map.push_back(reduced[static_cast<size_t>(i)] ? "0" : "d" + std::to_string(i));
    if (reduced[static_cast<size_t>(i)]) {
      if (!x.shape[static_cast<size_t>(i)].is_static()) return unsupported(n, "reduces static axes only");
      count *= x.shape[static_cast<size_t>(i)].value();
    }
  }
  const bool is_max = n.is(Op::ReduceMax);
  FuncText f(k);
  const std::string acc = f.alloc_f64(kept, in_name(0), x, is_max ? -INFINITY : 0.0);
  const std::string acc_type = memref(TensorType{ElementType::f32, kept}, "f64");
  Body b;
  const std::string v = widen(b, "%a0", ElementType::f32);
  std::string next;
  if (is_max) {
    // NaN if either is NaN, else std::max(acc, v).
    const std::string lt = b.let("arith.cmpf olt, %o0, " + v + " : f64");
    const std::string pick = b.let("arith.select " + lt + ", " + v + ", %o0 : f64");
    const std::string nan = b.let("arith.cmpf uno, %o0, " + v + " : f64");
    next = b.let("arith.select " + nan + ", " + b.f64(NAN) + ", " + pick + " : f64");
  } else {
    next = b.let("arith.addf %o0, " + v + " : f64");
  }
  f.generic(reduced, {{in_name(0), memref(x), identity(r)}}, {{acc, acc_type, affine_map(r, kept_map)}}, {"f32", "f64"},
            b.text(), next, "f64");
  // acc (kept shape) -> out (kept or dropped axes).
  Body c;
  std::string y = "%a0";
  if (n.is(Op::ReduceMean)) y = c.let("arith.divf %a0, " + c.f64(static_cast<double>(count)) + " : f64");
  const std::string rounded = narrow(c, y, ElementType::f32);
  std::vector<std::string> out_map;
  for (int i = 0; i < r; ++i)
    if (!reduced[static_cast<size_t>(i)] || out.shape.size() == static_cast<size_t>(r)) out_map.push_back("d" + std::to_string(i));
  f.generic(std::vector<bool>(static_cast<size_t>(r), false), {{acc, acc_type, identity(r)}},
            {{out_name(0), memref(out), affine_map(r, out_map)}}, {"f64", "f32"}, c.text(), rounded, "f32");
  return f.finish();
}

// Softmax along one axis, as the reference: max (NaNs skipped, as std::max does), sum of exp(x -
// max) in order, then exp(x - max) / sum, all in double.
StatusOr<std::string> softmax_func(const Node& n, const KernelSpec& k) {
  const OpKernelSpec& s = k.op;
  const TensorType& x = s.inputs[0];
  if (x.type != ElementType::f32) return unsupported(n, "computes Softmax on f32 only");
  const int r = static_cast<int>(x.shape.size());
  int64_t axis = s.attrs.at("axis").as_int();
  if (axis < 0) axis += r;
  Shape kept = x.shape;
  kept[static_cast<size_t>(axis)] = Dim(1);
  std::vector<std::string> kept_map;
  std::vector<bool> red(static_cast<size_t>(r), false);
  red[static_cast<size_t>(axis)] = true;
  for (int i = 0; i < r; ++i) kept_map.push_back(i == axis ? "0" : "d" + std::to_string(i));
  const std::string km = affine_map(r, kept_map), id = identity(r);
  FuncText f(k);
  const std::string m = f.alloc_f64(kept, in_name(0), x, -INFINITY);
  const std::string sum = f.alloc_f64(kept, in_name(0), x, 0.0);
  const std::string kt = memref(TensorType{ElementType::f32, kept}, "f64");
  {
    Body b;
    const std::string v = widen(b, "%a0", ElementType::f32);
    const std::string lt = b.let("arith.cmpf olt, %o0, " + v + " : f64");
    const std::string next = b.let("arith.select " + lt + ", " + v + ", %o0 : f64");
    f.generic(red, {{in_name(0), memref(x), id}}, {{m, kt, km}}, {"f32", "f64"}, b.text(), next, "f64");
  }
  {
    Body b;
    const std::string v = widen(b, "%a0", ElementType::f32);
    const std::string e = b.let("math.exp " + b.let("arith.subf " + v + ", %a1 : f64") + " : f64");
    const std::string next = b.let("arith.addf %o0, " + e + " : f64");
    f.generic(red, {{in_name(0), memref(x), id}, {m, kt, km}}, {{sum, kt, km}}, {"f32", "f64", "f64"}, b.text(), next, "f64");
  }
  {
    Body b;
    const std::string v = widen(b, "%a0", ElementType::f32);
    const std::string e = b.let("math.exp " + b.let("arith.subf " + v + ", %a1 : f64") + " : f64");
    const std::string y = narrow(b, b.let("arith.divf " + e + ", %a2 : f64"), ElementType::f32);
    f.generic(std::vector<bool>(static_cast<size_t>(r), false), {{in_name(0), memref(x), id}, {m, kt, km}, {sum, kt, km}},
              {{out_name(0), memref(s.outputs[0]), id}}, {"f32", "f64", "f64", "f32"}, b.text(), y, "f32");
  }
  return f.finish();
}

// MatMul (batched, broadcast, transposes): sum over p of a * b in double, in p order.
StatusOr<std::string> matmul_func(const Node& n, const KernelSpec& k) {
  const OpKernelSpec& s = k.op;
  const TensorType& A = s.inputs[0];
  const TensorType& B = s.inputs[1];
  const TensorType& out = s.outputs[0];
  if (A.type != ElementType::f32) return unsupported(n, "multiplies f32 only");
  // WeightMatMul is x · wᵀ with w [N, K] (f32 or f16 weights here; quantized ones need a
  // hand-written kernel). With act_quant "q8" and f16 weights the reference rounds x to f16 and
  // accumulates f16 products in one f32 fused multiply-add chain (llama.cpp's f16 dot).
  const bool weight = n.is(Op::WeightMatMul);
  if (weight && B.type != ElementType::f32 && B.type != ElementType::f16)
    return unsupported(n, "multiplies by f32 and f16 weights only, not " + std::string(type_name(B.type)));
  const bool f16_chain = weight && B.type == ElementType::f16 && s.attrs.at("act_quant").as_string() != "none";
  const bool ta = !weight && s.attrs.count("transpose_a") && s.attrs.at("transpose_a").as_bool();
  const bool tb = weight || (s.attrs.count("transpose_b") && s.attrs.at("transpose_b").as_bool());
  const int R = static_cast<int>(out.shape.size());  // batch..., i, j; plus p
  const std::string di = "d" + std::to_string(R - 2), dj = "d" + std::to_string(R - 1), dp = "d" + std::to_string(R);
  auto operand_map = [&](const Shape& shape, bool transposed, bool is_a) {
    const size_t rk = shape.size();
    std::vector<std::string> res;
    for (size_t i = 0; i + 2 < rk; ++i) {
      const size_t d = static_cast<size_t>(R - 2) - (rk - 2) + i;
      res.push_back(shape[i] == Dim(1) && out.shape[d] != Dim(1) ? "0" : "d" + std::to_string(d));
    }
    const std::string outer = is_a ? di : dj;
    if (is_a != transposed) {  // A: [i, p]; B transposed: [j, p]
      res.push_back(outer);
      res.push_back(dp);
    } else {
      res.push_back(dp);
      res.push_back(outer);
    }
    return affine_map(R + 1, res);
  };
  std::vector<std::string> out_map;
  for (int i = 0; i < R; ++i) out_map.push_back("d" + std::to_string(i));
  std::vector<bool> red(static_cast<size_t>(R + 1), false);
  red[static_cast<size_t>(R)] = true;
  FuncText f(k);
  const std::string bt = mlir_type(B.type);
  if (f16_chain) {
    // Straight into the f32 output: zero it, then one fma per k in order.
    Body z;
    const std::string zero = z.let("arith.constant 0.0 : f32");
    f.generic(std::vector<bool>(static_cast<size_t>(R), false), {}, {{out_name(0), memref(out), identity(R)}}, {"f32"}, z.text(), zero, "f32");
    Body b;
    const std::string x16 = b.let("arith.extf " + b.let("arith.truncf %a0 : f32 to f16") + " : f16 to f32");
    const std::string next = b.let("math.fma " + x16 + ", " + b.let("arith.extf %a1 : f16 to f32") + ", %o0 : f32");
    f.generic(red, {{in_name(0), memref(A), operand_map(A.shape, ta, true)}, {in_name(1), memref(B), operand_map(B.shape, tb, false)}},
              {{out_name(0), memref(out), affine_map(R + 1, out_map)}}, {"f32", "f16", "f32"}, b.text(), next, "f32");
    return f.finish();
  }
  const std::string acc = f.alloc_f64(out.shape, in_name(0), A, 0.0);
  const std::string at = memref(TensorType{ElementType::f32, out.shape}, "f64");
  Body b;
  const std::string av = widen(b, "%a0", ElementType::f32), bv = widen(b, "%a1", B.type);
  const std::string next = b.let("arith.addf %o0, " + b.let("arith.mulf " + av + ", " + bv + " : f64") + " : f64");
  f.generic(red, {{in_name(0), memref(A), operand_map(A.shape, ta, true)}, {in_name(1), memref(B), operand_map(B.shape, tb, false)}},
            {{acc, at, affine_map(R + 1, out_map)}}, {"f32", bt, "f64"}, b.text(), next, "f64");
  Body c;
  const std::string y = narrow(c, "%a0", ElementType::f32);
  f.generic(std::vector<bool>(static_cast<size_t>(R), false), {{acc, at, identity(R)}}, {{out_name(0), memref(out), identity(R)}},
            {"f64", "f32"}, c.text(), y, "f32");
  return f.finish();
}

// RMSNorm in the reference's (llama.cpp's) f32 order: f32 squares summed in double, the mean and
// the scale in f32, then (x * scale) * w each rounded to f32.
StatusOr<std::string> rms_norm_func(const Node&, const KernelSpec& k) {
  const OpKernelSpec& s = k.op;
  const TensorType& x = s.inputs[0];
  const int r = static_cast<int>(x.shape.size());
  const int64_t D = x.shape.back().value();
  Shape kept = x.shape;
  kept.back() = Dim(1);
  std::vector<std::string> kept_map;
  std::vector<bool> red(static_cast<size_t>(r), false);
  red.back() = true;
  for (int i = 0; i < r; ++i) kept_map.push_back(i == r - 1 ? "0" : "d" + std::to_string(i));
  const std::string km = affine_map(r, kept_map), id = identity(r);
  FuncText f(k);
  const std::string ss = f.alloc_f64(kept, in_name(0), x, 0.0);
  const std::string kt = memref(TensorType{ElementType::f32, kept}, "f64");
  {
    Body b;
    const std::string sq = b.let("arith.extf " + b.let("arith.mulf %a0, %a0 : f32") + " : f32 to f64");
    const std::string next = b.let("arith.addf %o0, " + sq + " : f64");
    f.generic(red, {{in_name(0), memref(x), id}}, {{ss, kt, km}}, {"f32", "f64"}, b.text(), next, "f64");
  }
  Body b;
  const std::string mean = b.let("arith.truncf " + b.let("arith.divf %a1, " + b.f64(static_cast<double>(D)) + " : f64") + " : f64 to f32");
  float eps_f = static_cast<float>(s.attrs.at("eps").as_float());
  uint32_t eb;
  std::memcpy(&eb, &eps_f, 4);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "arith.constant 0x%08X : f32", eb);
  const std::string e = b.let(buf);
  const std::string scale = b.let("arith.divf " + b.let("arith.constant 1.0 : f32") + ", " +
                                  b.let("math.sqrt " + b.let("arith.addf " + mean + ", " + e + " : f32") + " : f32") + " : f32");
  const std::string y = b.let("arith.mulf " + b.let("arith.mulf %a0, " + scale + " : f32") + ", %a2 : f32");
  std::vector<std::string> wmap = {"d" + std::to_string(r - 1)};
  f.generic(std::vector<bool>(static_cast<size_t>(r), false),
            {{in_name(0), memref(x), id}, {ss, kt, km}, {in_name(1), memref(s.inputs[1]), affine_map(r, wmap)}},
            {{out_name(0), memref(s.outputs[0]), id}}, {"f32", "f64", "f32", "f32"}, b.text(), y, "f32");
  return f.finish();
}


// Transpose, Broadcast, Slice: out[i] = in[f(i)], one loop over the output that loads the input
// element by computed indices: f permutes, broadcasts or steps. (Not an input operand with an
// indexing map: linalg takes loop bounds from the first operand that indexes a dimension plainly,
// and a slice's input is wider than its output.)
StatusOr<std::string> copy_func(const Node& n, const KernelSpec& k) {
  const OpKernelSpec& s = k.op;
  const TensorType& x = s.inputs[0];
  const TensorType& out = s.outputs[0];
  const int R = static_cast<int>(out.shape.size()), r = static_cast<int>(x.shape.size());
  Body b;
  std::vector<std::string> idx;
  for (int d = 0; d < R; ++d) idx.push_back(b.let("linalg.index " + std::to_string(d) + " : index"));
  auto index_const = [&](int64_t v) { return b.let("arith.constant " + std::to_string(v) + " : index"); };
  std::vector<std::string> in_idx(static_cast<size_t>(r));
  if (n.is(Op::Transpose)) {
    const auto& perm = s.attrs.at("perm").as_ints();
    for (size_t j = 0; j < perm.size(); ++j) in_idx[static_cast<size_t>(perm[j])] = idx[j];
  } else if (n.is(Op::Broadcast)) {
    for (int i = 0; i < r; ++i) {
      const size_t d = static_cast<size_t>(R - r + i);
      in_idx[static_cast<size_t>(i)] = x.shape[static_cast<size_t>(i)] == Dim(1) && out.shape[d] != Dim(1) ? index_const(0) : idx[d];
    }
  } else {
    for (int d = 0; d < R; ++d) in_idx[static_cast<size_t>(d)] = idx[static_cast<size_t>(d)];
    const auto& axes = s.attrs.at("axes").as_ints();
    const auto& begin = s.attrs.at("begin").as_ints();
    const auto& step = s.attrs.at("step").as_ints();
    for (size_t i = 0; i < axes.size(); ++i) {
      const int64_t axis = axes[i] < 0 ? axes[i] + R : axes[i];
      const Dim& len = x.shape[static_cast<size_t>(axis)];
      if (!len.is_static()) return unsupported(n, "slices static axes only");
      const int64_t st = step.empty() ? 1 : step[i];
      // Python's clamping of the start, as the reference (slice_range in ir/ops.cpp).
      const int64_t L = len.value();
      auto clamp = [](int64_t v, int64_t lo, int64_t hi) { return std::min(std::max(v, lo), hi); };
      const int64_t start = st > 0 ? (begin[i] < 0 ? clamp(begin[i] + L, 0, L) : clamp(begin[i], 0, L))
                                   : (begin[i] < 0 ? clamp(begin[i] + L, -1, L - 1) : clamp(begin[i], -1, L - 1));
      const std::string& o = idx[static_cast<size_t>(axis)];
      in_idx[static_cast<size_t>(axis)] =
          b.let("arith.addi " + b.let("arith.muli " + o + ", " + index_const(st) + " : index") + ", " + index_const(start) + " : index");
    }
  }
  std::string subs;
  for (int i = 0; i < r; ++i) subs += std::string(i ? ", " : "") + in_idx[static_cast<size_t>(i)];
  const std::string v = b.let("memref.load " + in_name(0) + "[" + subs + "] : " + memref(x));
  FuncText f(k);
  f.generic(std::vector<bool>(static_cast<size_t>(R), false), {}, {{out_name(0), memref(out), identity(R)}}, {mlir_type(out.type)},
            b.text(), v, mlir_type(out.type));
  return f.finish();
}

// Concat: one loop over the output; each element loads from the input its index along the axis
// falls in (every input's index is clamped into range, so the loads not selected stay in bounds).
StatusOr<std::string> concat_func(const Node& n, const KernelSpec& k) {
  const OpKernelSpec& s = k.op;
  const TensorType& out = s.outputs[0];
  const int R = static_cast<int>(out.shape.size());
  int64_t axis = s.attrs.at("axis").as_int();
  if (axis < 0) axis += R;
  Body b;
  std::vector<std::string> idx;
  for (int d = 0; d < R; ++d) idx.push_back(b.let("linalg.index " + std::to_string(d) + " : index"));
  const std::string at = idx[static_cast<size_t>(axis)];
  std::string y;
  int64_t offset = 0;
  for (size_t i = 0; i < s.inputs.size(); ++i) {
    const Dim& len = s.inputs[i].shape[static_cast<size_t>(axis)];
    if (!len.is_static()) return unsupported(n, "concatenates along static axes only");
    const std::string local = b.let("arith.subi " + at + ", " + b.let("arith.constant " + std::to_string(offset) + " : index") + " : index");
    const std::string lo = b.let("arith.maxsi " + local + ", " + b.let("arith.constant 0 : index") + " : index");
    const std::string cl = b.let("arith.minsi " + lo + ", " + b.let("arith.constant " + std::to_string(len.value() - 1) + " : index") + " : index");
    std::string subs;
    for (int d = 0; d < R; ++d) subs += std::string(d ? ", " : "") + (d == axis ? cl : idx[static_cast<size_t>(d)]);
    const std::string v = b.let("memref.load " + in_name(i) + "[" + subs + "] : " + memref(s.inputs[i]));
    offset += len.value();
    if (y.empty()) {
      y = v;
    } else {
      const std::string here = b.let("arith.cmpi sge, " + local + ", " + b.let("arith.constant 0 : index") + " : index");
      y = b.let("arith.select " + here + ", " + v + ", " + y + " : " + mlir_type(out.type));
    }
  }
  FuncText f(k);
  f.generic(std::vector<bool>(static_cast<size_t>(R), false), {}, {{out_name(0), memref(out), identity(R)}}, {mlir_type(out.type)},
            b.text(), y, mlir_type(out.type));
  return f.finish();
}

// Gather along an axis: the index read per output element, normalized (negative counts from the
// end) and clamped into range (the reference reports an out-of-range index as an error; a kernel
// must not read outside the data, so it reads the nearest slice instead).
StatusOr<std::string> gather_func(const Node& n, const KernelSpec& k) {
  const OpKernelSpec& s = k.op;
  const TensorType& data = s.inputs[0];
  const TensorType& idx = s.inputs[1];
  const TensorType& out = s.outputs[0];
  const int R = static_cast<int>(out.shape.size());
  const int rd = static_cast<int>(data.shape.size()), ri = static_cast<int>(idx.shape.size());
  int64_t axis = s.attrs.at("axis").as_int();
  if (axis < 0) axis += rd;
  if (!data.shape[static_cast<size_t>(axis)].is_static()) return unsupported(n, "gathers along a static axis only");
  const int64_t len = data.shape[static_cast<size_t>(axis)].value();
  std::vector<std::string> imap;
  for (int j = 0; j < ri; ++j) imap.push_back("d" + std::to_string(axis + j));
  Body b;
  const std::string i64v = widen(b, "%a0", idx.type);
  const std::string neg = b.let("arith.cmpi slt, " + i64v + ", " + b.let("arith.constant 0 : i64") + " : i64");
  const std::string wrapped = b.let("arith.select " + neg + ", " + b.let("arith.addi " + i64v + ", " + b.let("arith.constant " + std::to_string(len) + " : i64") + " : i64") + ", " + i64v + " : i64");
  const std::string lo = b.let("arith.maxsi " + wrapped + ", " + b.let("arith.constant 0 : i64") + " : i64");
  const std::string cl = b.let("arith.minsi " + lo + ", " + b.let("arith.constant " + std::to_string(len - 1) + " : i64") + " : i64");
  const std::string at = b.let("arith.index_cast " + cl + " : i64 to index");
  std::string subs;
  for (int d = 0; d < rd; ++d) {
    std::string v;
    if (d < axis) v = b.let("linalg.index " + std::to_string(d) + " : index");
    else if (d == axis) v = at;
    else v = b.let("linalg.index " + std::to_string(d - 1 + ri) + " : index");
    subs += (d ? ", " : "") + v;
  }
  const std::string y = b.let("memref.load " + in_name(0) + "[" + subs + "] : " + memref(data));
  FuncText f(k);
  f.generic(std::vector<bool>(static_cast<size_t>(R), false), {{in_name(1), memref(idx), affine_map(R, imap)}},
            {{out_name(0), memref(out), identity(R)}}, {mlir_type(idx.type), mlir_type(out.type)}, b.text(), y, mlir_type(out.type));
  return f.finish();
}

// Range: start + i * step (floats in double, integers in int64 with a whole step).
StatusOr<std::string> range_func(const Node& n, const KernelSpec& k) {
  const OpKernelSpec& s = k.op;
  const TensorType& start = s.inputs[0];
  const TensorType& out = s.outputs[0];
  const double step = s.attrs.at("step").as_float();
  Body b;
  const std::string i = b.let("arith.index_cast " + b.let("linalg.index 0 : index") + " : index to i64");
  const std::string st = widen(b, "%a0", start.type);
  std::string y;
  if (type_info(start.type).is_float) y = b.let("arith.addf " + st + ", " + b.let("arith.mulf " + b.let("arith.sitofp " + i + " : i64 to f64") + ", " + b.f64(step) + " : f64") + " : f64");
  else y = b.let("arith.addi " + st + ", " + b.let("arith.muli " + i + ", " + b.let("arith.constant " + std::to_string(static_cast<int64_t>(step)) + " : i64") + " : i64") + " : i64");
  (void)n;
  const std::string r = narrow(b, y, out.type);
  FuncText f(k);
  f.generic({false}, {{in_name(0), memref(start), "affine_map<(d0) -> ()>"}}, {{out_name(0), memref(out), identity(1)}},
            {mlir_type(start.type), mlir_type(out.type)}, b.text(), r, mlir_type(out.type));
  return f.finish();
}

// float_spec::expf (ir/float_spec.h) on an f32 value, operation for operation.
std::string spec_expf(Body& b, const std::string& x0) {
  auto c = [&](float v) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    char buf[64];
    std::snprintf(buf, sizeof(buf), "arith.constant 0x%08X : f32", bits);
    return b.let(buf);
  };
  std::string x = b.let("arith.maxnumf " + x0 + ", " + c(float_spec::kExpMin) + " : f32");
  x = b.let("arith.minnumf " + x + ", " + c(float_spec::kExpMax) + " : f32");
  const std::string nn = b.let("math.roundeven " + b.let("arith.mulf " + x + ", " + c(float_spec::kLog2e) + " : f32") + " : f32");
  std::string r = b.let("math.fma " + nn + ", " + c(-float_spec::kLn2Hi) + ", " + x + " : f32");
  r = b.let("math.fma " + nn + ", " + c(-float_spec::kLn2Lo) + ", " + r + " : f32");
  std::string p = c(float_spec::kExpPoly[0]);
  for (int i = 1; i < 8; ++i) p = b.let("math.fma " + p + ", " + r + ", " + c(float_spec::kExpPoly[i]) + " : f32");
  const std::string e = b.let("arith.shli " + b.let("arith.addi " + b.let("arith.fptosi " + nn + " : f32 to i32") + ", " + b.let("arith.constant 127 : i32") + " : i32") + ", " + b.let("arith.constant 23 : i32") + " : i32");
  return b.let("arith.mulf " + p + ", " + b.let("arith.bitcast " + e + " : i32 to f32") + " : f32");
}

// silu(g) * u in f32 as the reference's swiglu(): g * float_spec::sigmoid(g), then times u.
std::string spec_swiglu(Body& b, const std::string& g, const std::string& u) {
  const std::string one = b.let("arith.constant 1.0 : f32");
  const std::string e = spec_expf(b, b.let("arith.negf " + g + " : f32"));
  const std::string sig = b.let("arith.divf " + one + ", " + b.let("arith.addf " + one + ", " + e + " : f32") + " : f32");
  return b.let("arith.mulf " + b.let("arith.mulf " + g + ", " + sig + " : f32") + ", " + u + " : f32");
}

// SwiGLU in f32 as the reference: silu(g) = g * float_spec::sigmoid(g), times up; the one-input
// form reads gate and up from the two halves of each row.
StatusOr<std::string> swiglu_func(const Node& n, const KernelSpec& k) {
  const OpKernelSpec& s = k.op;
  const TensorType& out = s.outputs[0];
  const int R = static_cast<int>(out.shape.size());
  if (!out.shape.back().is_static()) return unsupported(n, "needs a static last dimension");
  // Loop bounds come from the first operand that has a dimension as a plain index, so the halves
  // form reads gate and up by index (two loads) rather than as operands of twice the width.
  std::vector<FuncText::Operand> ins;
  std::vector<std::string> types;
  Body b;
  std::string g = "%a0", u = "%a1";
  if (s.inputs.size() == 2) {
    ins = {{in_name(0), memref(s.inputs[0]), identity(R)}, {in_name(1), memref(s.inputs[1]), identity(R)}};
    types = {"f32", "f32", "f32"};
  } else {
    std::string subs, up_subs;
    for (int d = 0; d < R; ++d) {
      const std::string i = b.let("linalg.index " + std::to_string(d) + " : index");
      subs += std::string(d ? ", " : "") + i;
      up_subs += std::string(d ? ", " : "") +
                 (d == R - 1 ? b.let("arith.addi " + i + ", " + b.let("arith.constant " + std::to_string(out.shape.back().value()) + " : index") + " : index") : i);
    }
    g = b.let("memref.load " + in_name(0) + "[" + subs + "] : " + memref(s.inputs[0]));
    u = b.let("memref.load " + in_name(0) + "[" + up_subs + "] : " + memref(s.inputs[0]));
    types = {"f32"};
  }
  const std::string y = spec_swiglu(b, g, u);
  FuncText f(k);
  f.generic(std::vector<bool>(static_cast<size_t>(R), false), ins, {{out_name(0), memref(out), identity(R)}}, types, b.text(), y, "f32");
  return f.finish();
}

// RoPE on x[T, H, D]: per pair (a, b) of each head, a = x_a c - x_b s, b = x_a s + x_b c, each
// product rounded to f32 (rope_row in ir/ops.cpp); interleaved pairs (2i, 2i+1), rotate-half
// pairs (i, i + D/2). One loop over (t, h, i) writes both elements of the pair.
StatusOr<std::string> rope_func(const Node& n, const KernelSpec& k) {
  const OpKernelSpec& s = k.op;
  const TensorType& x = s.inputs[0];
  const int64_t D = x.shape[2].value(), half = D / 2;
  const bool inter = s.attrs.at("layout").as_string() == "interleaved";
  const std::string ma = inter ? "affine_map<(d0, d1, d2) -> (d0, d1, d2 * 2)>" : "affine_map<(d0, d1, d2) -> (d0, d1, d2)>";
  const std::string mb = inter ? "affine_map<(d0, d1, d2) -> (d0, d1, d2 * 2 + 1)>"
                               : "affine_map<(d0, d1, d2) -> (d0, d1, d2 + " + std::to_string(half) + ")>";
  const std::string mt = "affine_map<(d0, d1, d2) -> (d0, d2)>";
  (void)n;
  Body b;
  // Operands: cos, sin (first: they give the loop over i its D/2 bound), x_a, x_b.
  const std::string x0c = b.let("arith.mulf %a2, %a0 : f32"), x1s = b.let("arith.mulf %a3, %a1 : f32");
  const std::string x0s = b.let("arith.mulf %a2, %a1 : f32"), x1c = b.let("arith.mulf %a3, %a0 : f32");
  const std::string ya = b.let("arith.subf " + x0c + ", " + x1s + " : f32"), yb = b.let("arith.addf " + x0s + ", " + x1c + " : f32");
  FuncText f(k);
  f.generic({false, false, false},
            {{in_name(1), memref(s.inputs[1]), mt}, {in_name(2), memref(s.inputs[2]), mt}, {in_name(0), memref(x), ma}, {in_name(0), memref(x), mb}},
            {{out_name(0), memref(s.outputs[0]), ma}, {out_name(0), memref(s.outputs[0]), mb}}, {"f32", "f32", "f32", "f32", "f32", "f32"},
            b.text(), ya + ", " + yb, "f32, f32");
  return f.finish();
}


// RopeTable: cos and sin of angle = f32(pos + t) * inv_freq[j] (an f32 product), each the double
// function of the angle rounded to f32, as eval_rope_table.
StatusOr<std::string> rope_table_func(const Node& n, const KernelSpec& k) {
  const OpKernelSpec& s = k.op;
  (void)n;
  Body b;
  const std::string t = b.let("arith.index_cast " + b.let("linalg.index 0 : index") + " : index to i64");
  const std::string pos = widen(b, "%a0", s.inputs[0].type);
  const std::string p = b.let("arith.sitofp " + b.let("arith.addi " + pos + ", " + t + " : i64") + " : i64 to f32");
  const std::string angle = b.let("arith.extf " + b.let("arith.mulf " + p + ", %a1 : f32") + " : f32 to f64");
  const std::string c = narrow(b, b.let("math.cos " + angle + " : f64"), ElementType::f32);
  const std::string sn = narrow(b, b.let("math.sin " + angle + " : f64"), ElementType::f32);
  FuncText f(k);
  f.generic({false, false}, {{in_name(0), memref(s.inputs[0]), "affine_map<(d0, d1) -> ()>"}, {in_name(1), memref(s.inputs[1]), "affine_map<(d0, d1) -> (d1)>"}},
            {{out_name(0), memref(s.outputs[0]), identity(2)}, {out_name(1), memref(s.outputs[1]), identity(2)}},
            {mlir_type(s.inputs[0].type), "f32", "f32", "f32"}, b.text(), c + ", " + sn, "f32, f32");
  return f.finish();
}

// Embedding of an f32 or f16 table: rows by id, converted to f32 (ids clamped into the
// vocabulary; the runtime validates token ids before a call, the reference reports them).
StatusOr<std::string> embedding_func(const Node& n, const KernelSpec& k) {
  const OpKernelSpec& s = k.op;
  const TensorType& table = s.inputs[0];
  const TensorType& ids = s.inputs[1];
  const TensorType& out = s.outputs[0];
  if (table.type != ElementType::f32 && table.type != ElementType::f16)
    return unsupported(n, "reads f32 and f16 tables only, not " + std::string(type_name(table.type)));
  const int R = static_cast<int>(out.shape.size());
  const int64_t V = table.shape[0].value();
  std::vector<std::string> imap;
  for (int d = 0; d + 1 < R; ++d) imap.push_back("d" + std::to_string(d));
  Body b;
  const std::string id = widen(b, "%a0", ids.type);
  const std::string lo = b.let("arith.maxsi " + id + ", " + b.let("arith.constant 0 : i64") + " : i64");
  const std::string cl = b.let("arith.minsi " + lo + ", " + b.let("arith.constant " + std::to_string(V - 1) + " : i64") + " : i64");
  const std::string row = b.let("arith.index_cast " + cl + " : i64 to index");
  const std::string col = b.let("linalg.index " + std::to_string(R - 1) + " : index");
  const std::string v = b.let("memref.load " + in_name(0) + "[" + row + ", " + col + "] : " + memref(table));
  const std::string y = narrow(b, widen(b, v, table.type), ElementType::f32);
  FuncText f(k);
  f.generic(std::vector<bool>(static_cast<size_t>(R), false), {{in_name(1), memref(ids), affine_map(R, imap)}},
            {{out_name(0), memref(out), identity(R)}}, {mlir_type(ids.type), "f32"}, b.text(), y, "f32");
  return f.finish();
}


// FusedMatMul with f32 or f16 weights: the WeightMatMul lowering, then the epilogues in the
// reference's order (eval_fused_matmul): + bias, RoPE on the first heads, SwiGLU over the two
// halves, + residual, each an f32 step in place.
StatusOr<std::string> fused_matmul_func(const Node& n, const KernelSpec& k) {
  const OpKernelSpec& s = k.op;
  const TensorType& x = s.inputs[0];
  const TensorType& w = s.inputs[1];
  const TensorType& out = s.outputs[0];
  if (x.type != ElementType::f32 || (w.type != ElementType::f32 && w.type != ElementType::f16))
    return unsupported(n, "multiplies by f32 and f16 weights only, not " + std::string(type_name(w.type)));
  if (x.shape.size() != 2) return unsupported(n, "needs 2-D activations");
  const bool swiglu = s.attrs.at("activation").as_string() == "swiglu";
  const bool bias = s.attrs.at("has_bias").as_bool(), residual = s.attrs.at("has_residual").as_bool();
  const std::string rope = s.attrs.at("rope").as_string();
  const int64_t N = w.shape[0].value();
  int next = 2;
  const int bias_in = bias ? next++ : -1;
  const int cos_in = rope != "none" ? next++ : -1;
  const int sin_in = rope != "none" ? next++ : -1;
  const int res_in = residual ? next++ : -1;
  const bool f16_chain = w.type == ElementType::f16 && s.attrs.at("act_quant").as_string() != "none";
  FuncText f(k);
  const TensorType full{ElementType::f32, {x.shape[0], Dim(N)}};
  const std::string y = swiglu ? f.alloc_f32(full.shape, in_name(0), x) : out_name(0);
  const std::string yt = memref(full);
  const std::string mm_in = "affine_map<(d0, d1, d2) -> (d0, d2)>", mm_w = "affine_map<(d0, d1, d2) -> (d1, d2)>";
  const std::string mm_out = "affine_map<(d0, d1, d2) -> (d0, d1)>";
  // x · wᵀ
  if (f16_chain) {
    Body z;
    const std::string zero = z.let("arith.constant 0.0 : f32");
    f.generic({false, false}, {}, {{y, yt, identity(2)}}, {"f32"}, z.text(), zero, "f32");
    Body b;
    const std::string x16 = b.let("arith.extf " + b.let("arith.truncf %a0 : f32 to f16") + " : f16 to f32");
    const std::string nx = b.let("math.fma " + x16 + ", " + b.let("arith.extf %a1 : f16 to f32") + ", %o0 : f32");
    f.generic({false, false, true}, {{in_name(0), memref(x), mm_in}, {in_name(1), memref(w), mm_w}}, {{y, yt, mm_out}},
              {"f32", "f16", "f32"}, b.text(), nx, "f32");
  } else {
    const std::string acc = f.alloc_f64(full.shape, in_name(0), x, 0.0);
    const std::string at = memref(full, "f64");
    Body b;
    const std::string nx = b.let("arith.addf %o0, " + b.let("arith.mulf " + widen(b, "%a0", ElementType::f32) + ", " + widen(b, "%a1", w.type) + " : f64") + " : f64");
    f.generic({false, false, true}, {{in_name(0), memref(x), mm_in}, {in_name(1), memref(w), mm_w}}, {{acc, at, mm_out}},
              {"f32", mlir_type(w.type), "f64"}, b.text(), nx, "f64");
    Body c;
    const std::string rounded = narrow(c, "%a0", ElementType::f32);
    f.generic({false, false}, {{acc, at, identity(2)}}, {{y, yt, identity(2)}}, {"f64", "f32"}, c.text(), rounded, "f32");
  }
  if (bias) {
    Body b;
    const std::string v = b.let("arith.addf %o0, %a0 : f32");
    f.generic({false, false}, {{in_name(static_cast<size_t>(bias_in)), memref(s.inputs[static_cast<size_t>(bias_in)]), "affine_map<(d0, d1) -> (d1)>"}},
              {{y, yt, identity(2)}}, {"f32", "f32"}, b.text(), v, "f32");
  }
  if (rope != "none") {
    const int64_t hd = s.attrs.at("head_dim").as_int(), half = hd / 2;
    const int64_t heads = s.attrs.at("rope_q_heads").as_int() + s.attrs.at("rope_k_heads").as_int();
    const bool inter = rope == "interleaved";
    // (t, head, i < hd/2) over the rotated heads; pairs as in rope_func.
    const std::string hb = "d1 * " + std::to_string(hd);
    const std::string ma = "affine_map<(d0, d1, d2) -> (d0, " + hb + (inter ? " + d2 * 2)>" : " + d2)>");
    const std::string mb = "affine_map<(d0, d1, d2) -> (d0, " + hb + (inter ? " + d2 * 2 + 1)>" : " + d2 + " + std::to_string(half) + ")>");
    const std::string mt = "affine_map<(d0, d1, d2) -> (d0, d2)>";
    // The head loop's bound: a [heads] operand (the bias-free way to give linalg the count).
    const std::string hcount = "%heads" + std::to_string(heads);
    f.raw("    " + hcount + " = memref.alloca() : memref<" + std::to_string(heads) + "xi8>\n");
    Body b;
    const std::string x0c = b.let("arith.mulf %o0, %a0 : f32"), x1s = b.let("arith.mulf %o1, %a1 : f32");
    const std::string x0s = b.let("arith.mulf %o0, %a1 : f32"), x1c = b.let("arith.mulf %o1, %a0 : f32");
    const std::string ya = b.let("arith.subf " + x0c + ", " + x1s + " : f32"), yb = b.let("arith.addf " + x0s + ", " + x1c + " : f32");
    f.generic({false, false, false},
              {{in_name(static_cast<size_t>(cos_in)), memref(s.inputs[static_cast<size_t>(cos_in)]), mt},
               {in_name(static_cast<size_t>(sin_in)), memref(s.inputs[static_cast<size_t>(sin_in)]), mt},
               {hcount, "memref<" + std::to_string(heads) + "xi8>", "affine_map<(d0, d1, d2) -> (d1)>"}},
              {{y, yt, ma}, {y, yt, mb}}, {"f32", "f32", "i8", "f32", "f32"}, b.text(), ya + ", " + yb, "f32, f32");
  }
  if (swiglu) {
    // out[t, j] = silu(y[t, j]) * y[t, j + N/2] with float_spec's sigmoid, as swiglu() does.
    Body b;
    const std::string t = b.let("linalg.index 0 : index"), j = b.let("linalg.index 1 : index");
    const std::string ju = b.let("arith.addi " + j + ", " + b.let("arith.constant " + std::to_string(N / 2) + " : index") + " : index");
    const std::string g = b.let("memref.load " + y + "[" + t + ", " + j + "] : " + yt);
    const std::string u = b.let("memref.load " + y + "[" + t + ", " + ju + "] : " + yt);
    const std::string v = spec_swiglu(b, g, u);
    f.generic({false, false}, {}, {{out_name(0), memref(out), identity(2)}}, {"f32"}, b.text(), v, "f32");
  }
  if (residual) {
    Body b;
    const std::string v = b.let("arith.addf %o0, %a0 : f32");
    f.generic({false, false}, {{in_name(static_cast<size_t>(res_in)), memref(s.inputs[static_cast<size_t>(res_in)]), identity(2)}},
              {{out_name(0), memref(out), identity(2)}}, {"f32", "f32"}, b.text(), v, "f32");
  }
  return f.finish();
}

// Attention with its KV cache (state slots: [max_context, KV, D] in the variables' type): the
// fresh keys and values are appended at rows past..past+T-1 (rounded to the cache type), then
// query t of head h attends to keys 0..past+t of KV head h / (H / KV): scores q·k in double
// times scale, softmax in double, the weighted sum of values in double, rounded once. The
// reference's f32 order (an online softmax over chunks of keys, ir/float_spec.h) is not
// reproduced: results differ by f32 rounding (NMSE 2e-15 to 7e-15 on the cases); the bound is 1e-9.
// One thread computes the node (the thread that appends a row is the one that reads it).
StatusOr<std::string> attention_func(const Node& n, const KernelSpec& k) {
  const OpKernelSpec& s = k.op;
  const bool packed = s.inputs.size() == 1;
  int64_t H, KV, D;
  if (packed) {
    H = s.attrs.at("q_heads").as_int();
    KV = s.attrs.at("kv_heads").as_int();
    D = s.attrs.at("head_dim").as_int();
  } else {
    H = s.inputs[0].shape[1].value();
    KV = s.inputs[1].shape[1].value();
    D = s.inputs[0].shape[2].value();
  }
  const ElementType ct = s.state[0].type;
  if (ct != ElementType::f32 && ct != ElementType::f16) return unsupported(n, "keeps f32 and f16 caches only");
  const TensorType cache{ct, static_shape(s.state[0].max_shape)};
  const std::string cty = memref(cache), c_el = mlir_type(ct);
  FuncText f(k, "%kc: " + cty + ", %vc: " + cty + ", %past: index");
  std::ostringstream o;
  auto ci = [](int64_t v) { return "%ci" + std::to_string(v); };
  std::vector<int64_t> consts = {0, 1, D, H, KV, H / KV, (H + KV) * D, H * D};
  std::sort(consts.begin(), consts.end());
  consts.erase(std::unique(consts.begin(), consts.end()), consts.end());
  for (int64_t v : consts) o << "    " << ci(v) << " = arith.constant " << v << " : index\n";
  o << "    %T = memref.dim %in0, " << ci(0) << " : " << memref(s.inputs[0]) << "\n";
  const std::string scale = f64_const(static_cast<double>(static_cast<float>(s.attrs.at("scale").as_float())));
  o << "    %scale = " << scale << "\n    %zero = arith.constant 0.0 : f64\n    %ninf = arith.constant 0xFFF0000000000000 : f64\n";
  // Loads of q, k, v element (t, head, d) from the separate or packed inputs.
  auto load = [&](int which, const std::string& t, const std::string& h, const std::string& d, const std::string& tag) {
    std::ostringstream l;
    if (!packed) {
      l << "      %" << tag << " = memref.load " << in_name(static_cast<size_t>(which)) << "[" << t << ", " << h << ", " << d << "] : "
        << memref(s.inputs[static_cast<size_t>(which)]) << "\n";
    } else {
      const int64_t base = which == 0 ? 0 : which == 1 ? H * D : (H + KV) * D;
      l << "      %" << tag << "_c0 = arith.muli " << h << ", " << ci(D) << " : index\n";
      l << "      %" << tag << "_c1 = arith.addi %" << tag << "_c0, " << d << " : index\n";
      l << "      %" << tag << "_b = arith.constant " << base << " : index\n";
      l << "      %" << tag << "_c = arith.addi %" << tag << "_c1, %" << tag << "_b : index\n";
      l << "      %" << tag << " = memref.load " << in_name(0) << "[" << t << ", %" << tag << "_c] : " << memref(s.inputs[0]) << "\n";
    }
    return l.str();
  };
  // 1. Append.
  o << "    scf.for %t = " << ci(0) << " to %T step " << ci(1) << " {\n";
  o << "     %pt = arith.addi %past, %t : index\n";
  o << "     scf.for %j = " << ci(0) << " to " << ci(KV) << " step " << ci(1) << " {\n";
  o << "      scf.for %d = " << ci(0) << " to " << ci(D) << " step " << ci(1) << " {\n";
  for (int c = 0; c < 2; ++c) {
    const std::string tag = c == 0 ? "kx" : "vx";
    o << load(1 + c, "%t", "%j", "%d", tag);
    const std::string v = ct == ElementType::f16 ? "%" + tag + "_h" : "%" + tag;
    if (ct == ElementType::f16) o << "      %" << tag << "_h = arith.truncf %" << tag << " : f32 to f16\n";
    o << "      memref.store " << v << ", " << (c == 0 ? "%kc" : "%vc") << "[%pt, %j, %d] : " << cty << "\n";
  }
  o << "      }\n     }\n    }\n";
  // 2. Attend.
  const TensorType& out = s.outputs[0];
  o << "    %acc = memref.alloca() : memref<" << D << "xf64>\n";
  o << "    scf.for %t = " << ci(0) << " to %T step " << ci(1) << " {\n";
  o << "     %vis0 = arith.addi %past, %t : index\n     %vis = arith.addi %vis0, " << ci(1) << " : index\n";
  o << "     scf.for %h = " << ci(0) << " to " << ci(H) << " step " << ci(1) << " {\n";
  o << "      %kvh = arith.divui %h, " << ci(H / KV) << " : index\n";
  auto widen_c = [&](const std::string& v, const std::string& tag) {
    return ct == ElementType::f16 ? "      %" + tag + " = arith.extf " + v + " : f16 to f64\n" : "      %" + tag + " = arith.extf " + v + " : f32 to f64\n";
  };
  auto score = [&](const std::string& j, const std::string& tag) {
    std::ostringstream l;
    l << "      %" << tag << "_dot = scf.for %d = " << ci(0) << " to " << ci(D) << " step " << ci(1) << " iter_args(%sum = %zero) -> (f64) {\n";
    l << load(0, "%t", "%h", "%d", tag + "_q");
    l << "      %" << tag << "_qd = arith.extf %" << tag << "_q : f32 to f64\n";
    l << "      %" << tag << "_k = memref.load %kc[" << j << ", %kvh, %d] : " << cty << "\n";
    l << widen_c("%" + tag + "_k", tag + "_kd");
    l << "      %" << tag << "_p = arith.mulf %" << tag << "_qd, %" << tag << "_kd : f64\n";
    l << "      %" << tag << "_s = arith.addf %sum, %" << tag << "_p : f64\n";
    l << "      scf.yield %" << tag << "_s : f64\n      }\n";
    l << "      %" << tag << " = arith.mulf %" << tag << "_dot, %scale : f64\n";
    return l.str();
  };
  // max
  o << "      %m = scf.for %j = " << ci(0) << " to %vis step " << ci(1) << " iter_args(%mx = %ninf) -> (f64) {\n";
  o << score("%j", "s1");
  o << "      %mn = arith.maximumf %mx, %s1 : f64\n      scf.yield %mn : f64\n      }\n";
  // sum and weighted values
  o << "      scf.for %d = " << ci(0) << " to " << ci(D) << " step " << ci(1) << " {\n       memref.store %zero, %acc[%d] : memref<" << D << "xf64>\n      }\n";
  o << "      %l = scf.for %j = " << ci(0) << " to %vis step " << ci(1) << " iter_args(%ls = %zero) -> (f64) {\n";
  o << score("%j", "s2");
  o << "      %e0 = arith.subf %s2, %m : f64\n      %e = math.exp %e0 : f64\n";
  o << "      scf.for %d = " << ci(0) << " to " << ci(D) << " step " << ci(1) << " {\n";
  o << "       %v = memref.load %vc[%j, %kvh, %d] : " << cty << "\n";
  o << widen_c("%v", "vd");
  o << "       %a = memref.load %acc[%d] : memref<" << D << "xf64>\n       %ev = arith.mulf %e, %vd : f64\n";
  o << "       %a2 = arith.addf %a, %ev : f64\n       memref.store %a2, %acc[%d] : memref<" << D << "xf64>\n      }\n";
  o << "      %ls2 = arith.addf %ls, %e : f64\n      scf.yield %ls2 : f64\n      }\n";
  // out
  o << "      scf.for %d = " << ci(0) << " to " << ci(D) << " step " << ci(1) << " {\n";
  o << "       %a = memref.load %acc[%d] : memref<" << D << "xf64>\n       %yv = arith.divf %a, %l : f64\n";
  o << "       %yf = arith.truncf %yv : f64 to f32\n";
  if (packed) {
    o << "       %oc0 = arith.muli %h, " << ci(D) << " : index\n       %oc = arith.addi %oc0, %d : index\n";
    o << "       memref.store %yf, " << out_name(0) << "[%t, %oc] : " << memref(out) << "\n";
  } else {
    o << "       memref.store %yf, " << out_name(0) << "[%t, %h, %d] : " << memref(out) << "\n";
  }
  o << "      }\n     }\n    }\n";
  f.raw(o.str());
  return f.finish();
}

StatusOr<std::string> func_text(const Node& n, const KernelSpec& k) {
  switch (category(n)) {
    case Lowering::elementwise: return elementwise_func(n, k);
    case Lowering::reduce: return reduce_func(n, k);
    case Lowering::softmax: return softmax_func(n, k);
    case Lowering::matmul: return matmul_func(n, k);
    case Lowering::rms_norm: return rms_norm_func(n, k);
    case Lowering::transpose: case Lowering::broadcast: case Lowering::slice: return copy_func(n, k);
    case Lowering::concat: return concat_func(n, k);
    case Lowering::gather: return gather_func(n, k);
    case Lowering::range: return range_func(n, k);
    case Lowering::swiglu: return swiglu_func(n, k);
    case Lowering::rope: return rope_func(n, k);
    case Lowering::rope_table: return rope_table_func(n, k);
    case Lowering::fused_matmul: return fused_matmul_func(n, k);
    case Lowering::attention: return attention_func(n, k);
    case Lowering::embedding: return embedding_func(n, k);
    case Lowering::none: break;
  }
  return unsupported(n, "has no lowering for this op yet");
}

// Whether thread t may compute rows [lo, hi) of the output from rows [lo, hi) of the inputs that
// have rows: true unless the op mixes rows (a reduction or softmax over axis 0, a matmul whose
// rows are not the output's rows).
bool rows_independent(const Node& n, const OpKernelSpec& s) {
  if (s.outputs.size() != 1 || s.outputs[0].shape.empty() || !is_tokens(s.outputs[0].shape[0])) return false;
  if (category(n) == Lowering::rope) return true;  // x, cos and sin all have a row per token
  const size_t R = s.outputs[0].shape.size();
  for (size_t i = 0; i < s.inputs.size(); ++i)
    if (!s.inputs[i].shape.empty() && is_tokens(s.inputs[i].shape[0]) && s.inputs[i].shape.size() != R) return false;
  switch (category(n)) {
    case Lowering::reduce: {
      for (int64_t a : s.attrs.at("axes").as_ints())
        if (a == 0 || a == -static_cast<int64_t>(s.inputs[0].shape.size())) return false;
      return s.outputs[0].shape.size() == s.inputs[0].shape.size();
    }
    case Lowering::softmax: {
      const int64_t a = s.attrs.at("axis").as_int();
      return a != 0 && a != -static_cast<int64_t>(s.inputs[0].shape.size());
    }
    case Lowering::transpose: return s.attrs.at("perm").as_ints().at(0) == 0;
    case Lowering::slice: {
      for (int64_t a : s.attrs.at("axes").as_ints())
        if (a == 0 || a == -static_cast<int64_t>(R)) return false;
      return true;
    }
    case Lowering::concat: {
      const int64_t a = s.attrs.at("axis").as_int();
      return a != 0 && a != -static_cast<int64_t>(R);
    }
    case Lowering::range: case Lowering::rope_table: return false;  // element i depends on its global index
    case Lowering::attention: return false;  // rows read the keys other rows append
    case Lowering::fused_matmul: return true;
    case Lowering::embedding: return s.inputs[1].shape.size() == 1;  // one id per row
    case Lowering::gather: return false;  // rows of the indices are not rows of the data
    case Lowering::matmul: {
      const bool ta = s.attrs.count("transpose_a") && s.attrs.at("transpose_a").as_bool();
      for (const Dim& d : s.inputs[1].shape)
        if (!d.is_static()) return false;
      return R > 2 || !ta;
    }
    default: return true;
  }
}

// ---------------------------------------------------------------- the family

bool generic_computes(const Node& n) {
  const OpDef& def = op_def(n.kind());
  // Attention is the one stateful op lowered: its caches are arguments (state slots).
  // llama.cpp's table GELU (Gemma) has no MLIR form: its kernel is the GeGLU family's.
  if ((n.is(Op::Gelu) || n.is(Op::GeGLU)) && n.attr("approximation").as_string() == "ggml_f16") return false;
  return !def.has(kSource) && !def.has(kSink) && !def.has(kView) && (!def.has(kStateful) || n.is(Op::Attention)) &&
         category(n) != Lowering::none;
}

StatusOr<KernelSpec> generic_spec(const Node& n, const Model* model) {
  KernelSpec k;
  k.op.op = n.kind();
  k.op.attrs = n.attrs;
  for (const Value& v : n.inputs) k.op.inputs.push_back(v.type());
  k.op.outputs = n.outputs;
  for (const char* attr : op_def(n.kind()).state_attrs) {
    const StateVariable* var = model ? model->find_variable(n.attr(attr).as_string()) : nullptr;
    if (!var) return unsupported(n, std::string("needs the model's declaration of its state variable (") + attr + ")");
    k.op.state.push_back(*var);
  }
  // `tokens` may stand anywhere in the ops that allocate no temporaries; elsewhere only in dim 0.
  const Lowering how = category(n);
  const bool anywhere = how == Lowering::elementwise || how == Lowering::transpose || how == Lowering::broadcast ||
                        how == Lowering::slice || how == Lowering::concat || how == Lowering::gather || how == Lowering::range;
  bool any_rows = false;
  for (const auto* list : {&k.op.inputs, &k.op.outputs})
    for (const TensorType& t : *list) {
      if (!mlir_type(t.type)) return unsupported(n, "does not handle " + std::string(type_name(t.type)) + " values");
      for (size_t d = 0; d < t.shape.size(); ++d) {
        if (t.shape[d].is_static()) continue;
        if (!is_tokens(t.shape[d]) || (d != 0 && !anywhere))
          return unsupported(n, "needs static shapes but for `tokens` rows, got " + t.str());
        any_rows = true;
      }
    }
  if (any_rows && !anywhere && (k.op.outputs[0].shape.empty() || !is_tokens(k.op.outputs[0].shape[0])))
    return unsupported(n, "needs an output with `tokens` rows when an input has them");
  // The MLIR text is built now, so that a node the path cannot lower is refused at planning.
  k.name = "probe";
  INGOT_RETURN_IF_ERROR(func_text(n, k).status());
  return k;
}

std::string generic_key(const KernelSpec& k) {
  std::string key = std::string("generic ") + op_name(k.op.op);
  for (const auto& [name, a] : k.op.attrs) key += " " + name + "=" + a.str();
  for (const TensorType& t : k.op.inputs) key += " in:" + t.str();
  for (const TensorType& t : k.op.outputs) key += " out:" + t.str();
  for (const StateVariable& v : k.op.state) key += " state:" + std::string(type_name(v.type)) + shape_str(static_shape(v.max_shape));
  return key;
}

// Outputs first, then inputs, in node order, then the state variables (OpDef::state_attrs order).
StatusOr<std::vector<KernelArg>> generic_args(const Node& n, const KernelSpec& k) {
  std::vector<KernelArg> a;
  for (size_t o = 0; o < n.outputs.size(); ++o) a.push_back(KernelArg::output(static_cast<int>(o)));
  for (size_t i = 0; i < n.inputs.size(); ++i) a.push_back(KernelArg::input(static_cast<int>(i)));
  for (const StateVariable& v : k.op.state) a.push_back(KernelArg::state(v.name));
  return a;
}

// The slots of generic_args. A state variable (Attention's caches) is written at positions
// past..past+T-1 and read below past: T + past rows of its max shape without the first dim.
StatusOr<KernelContract> generic_contract(const KernelSpec& k) {
  KernelContract c;
  for (const TensorType& t : k.op.outputs) {
    INGOT_ASSIGN_OR_RETURN(ArgContract a, tensor_contract(t, ArgAccess::write));
    c.args.push_back(a);
  }
  for (const TensorType& t : k.op.inputs) {
    INGOT_ASSIGN_OR_RETURN(ArgContract a, tensor_contract(t, ArgAccess::read));
    c.args.push_back(a);
  }
  for (const StateVariable& v : k.op.state) {
    const ElementTypeInfo& ti = type_info(v.type);
    int64_t row = ti.block_bytes;
    for (size_t d = 1; d < v.max_shape.size(); ++d) row *= v.max_shape[d];
    ArgContract a = KernelContract::rows(ArgAccess::read_write, row, static_cast<uint64_t>(ti.block_bytes));
    a.dims_mask = 0b11;
    c.args.push_back(a);
  }
  return c;
}

// A node with the spec's op, attributes and input types, to build the MLIR text from.
struct SpecNode {
  Model model;
  Node* node = nullptr;
};
StatusOr<std::unique_ptr<SpecNode>> node_of(const KernelSpec& k) {
  auto s = std::make_unique<SpecNode>();
  for (const StateVariable& v : k.op.state) INGOT_RETURN_IF_ERROR(s->model.add_variable(v));
  GraphBuilder b(s->model);
  std::vector<ingot::Value> ins;
  for (size_t i = 0; i < k.op.inputs.size(); ++i)
    ins.push_back(b.parameter("in" + std::to_string(i), k.op.inputs[i].type, k.op.inputs[i].shape));
  s->node = b.node(k.op.op, ins, k.op.attrs, k.name);
  INGOT_RETURN_IF_ERROR(b.status());
  return s;
}

Status generic_emit(EmitContext& ctx, const KernelSpec& k) {
  INGOT_ASSIGN_OR_RETURN(auto sn, node_of(k));
  const Node& n = *sn->node;
  INGOT_ASSIGN_OR_RETURN(std::string text, func_text(n, k));
  // INGOT_DEBUG_MLIR=1: every generated MLIR function on stderr (lines numbered as MLIR reports them).
  if (const char* dbg = std::getenv("INGOT_DEBUG_MLIR"); dbg && *dbg == '1') std::fprintf(stderr, "// %s\n%s", k.name.c_str(), text.c_str());
  INGOT_ASSIGN_OR_RETURN(std::unique_ptr<llvm::Module> body, lower_mlir_to_llvm(text, ctx.module.getContext()));
  body->setDataLayout(ctx.module.getDataLayout());
  body->setTargetTriple(ctx.module.getTargetTriple());
  if (llvm::Linker::linkModules(ctx.module, std::move(body)))
    return Status::Error(StatusCode::internal, "codegen: " + k.name + ": linking the MLIR kernel failed");
  llvm::Function* inner = ctx.module.getFunction(k.name + "_body");
  if (!inner) return Status::Error(StatusCode::internal, "codegen: " + k.name + ": the MLIR kernel has no body function");
  inner->setLinkage(llvm::GlobalValue::InternalLinkage);

  // The ABI wrapper: rows split over threads (or thread 0 alone), memref descriptors
  // (allocated, aligned, offset, sizes..., strides...) built from the argument slots.
  ir_emit::Fn f(ctx.module, k.name);
  auto& B = f.B;
  const bool split = rows_independent(n, k.op);
  llvm::Value* rows = f.dim(0);
  llvm::Value *lo = f.c64(0), *hi = rows;
  if (split) {
    std::tie(lo, hi) = f.thread_range(rows);
  } else {
    llvm::BasicBlock* work = llvm::BasicBlock::Create(f.C, "work", f.F);
    llvm::BasicBlock* done = llvm::BasicBlock::Create(f.C, "done", f.F);
    B.CreateCondBr(B.CreateICmpEQ(f.thread(), f.c64(0)), work, done);
    B.SetInsertPoint(done);
    B.CreateRetVoid();
    B.SetInsertPoint(work);
  }
  std::vector<llvm::Value*> call_args;
  // Sizes and strides at run time: every `tokens` dim is dims[0] rows (dim 0 of a split kernel:
  // this thread's hi - lo, starting at row lo).
  auto add_memref = [&](int slot, const TensorType& t) {
    llvm::Value* p = f.arg_ptr(slot);
    const size_t r = t.shape.size();
    std::vector<llvm::Value*> sizes(r), strides(r);
    for (size_t d = 0; d < r; ++d) sizes[d] = t.shape[d].is_static() ? f.c64(t.shape[d].value()) : rows;
    llvm::Value* stride = f.c64(1);
    for (size_t d = r; d-- > 0;) {
      strides[d] = stride;
      stride = B.CreateMul(stride, sizes[d]);
    }
    const int64_t elem = type_info(t.type).block_bytes;
    if (r > 0 && !t.shape[0].is_static() && split) {
      p = f.at(p, B.CreateMul(B.CreateMul(lo, strides[0]), f.c64(elem)));
      sizes[0] = B.CreateSub(hi, lo);
    }
    call_args.push_back(p);
    call_args.push_back(p);
    call_args.push_back(f.c64(0));
    for (size_t d = 0; d < r; ++d) call_args.push_back(sizes[d]);
    for (size_t d = 0; d < r; ++d) call_args.push_back(strides[d]);
  };
  const int outs = static_cast<int>(k.op.outputs.size());
  for (size_t i = 0; i < k.op.inputs.size(); ++i) add_memref(outs + static_cast<int>(i), k.op.inputs[i]);
  for (int o = 0; o < outs; ++o) add_memref(o, k.op.outputs[static_cast<size_t>(o)]);
  if (!k.op.state.empty()) {
    // The caches (whole, static: [max_context, ...]) and the tokens already in them (dims[1]).
    const int first = outs + static_cast<int>(k.op.inputs.size());
    for (size_t v = 0; v < k.op.state.size(); ++v)
      add_memref(first + static_cast<int>(v), TensorType{k.op.state[v].type, static_shape(k.op.state[v].max_shape)});
    call_args.push_back(f.dim(1));
  }
  if (call_args.size() != inner->arg_size())
    return Status::Error(StatusCode::internal, "codegen: " + k.name + ": the MLIR kernel takes " + std::to_string(inner->arg_size()) +
                                                   " values, the wrapper passes " + std::to_string(call_args.size()));
  B.CreateCall(inner, call_args);
  B.CreateRetVoid();
  return Status::Ok();
}

// ---------------------------------------------------------------- harness cases
// Odd sizes, broadcasts in both directions, scalars; NMSE 0: double math rounded once, as the
// reference.
std::vector<KernelCase> generic_cases() {
  const Dim T = Dim::symbol("tokens");
  const ElementType F = ElementType::f32;
  std::vector<KernelCase> c;
  // One case: a name suffix, its rows, the op, its inputs' types and shapes, its attributes.
  auto one = [&](const std::string& suffix, int64_t rows, Op op, std::vector<TensorType> ins, AttrMap attrs) {
    c.push_back(node_case("generic_" + std::string(op_name(op)) + suffix, rows, op, std::move(ins), std::move(attrs)));
  };
  for (Op op : {Op::Sqrt, Op::Exp, Op::Log, Op::Negative, Op::Abs, Op::Sin, Op::Cos, Op::Sigmoid, Op::Tanh, Op::Erf})
    one("", 5, op, {{F, Shape{T, Dim(67)}}}, {});
  for (const char* form : {"tanh", "erf"})
    one(std::string("_") + form, 5, Op::Gelu, {{F, Shape{T, Dim(67)}}}, {{"approximation", Attribute::String(form)}});
  for (Op op : {Op::Add, Op::Subtract, Op::Multiply, Op::Divide, Op::Maximum, Op::Minimum, Op::Power, Op::Less, Op::Equal})
    one("", 3, op, {{F, Shape{T, Dim(37)}}, {F, Shape{Dim(37)}}}, {});
  one("_column", 3, Op::Add, {{F, Shape{T, Dim(1)}}, {F, Shape{T, Dim(19)}}}, {});
  one("_scalar", 3, Op::Multiply, {{F, Shape{T, Dim(3), Dim(9)}}, {F, Shape{}}}, {});
  one("_i64", 3, Op::Add, {{ElementType::i64, Shape{T, Dim(11)}}, {ElementType::i64, Shape{T, Dim(11)}}}, {});
  one("_i32", 3, Op::GreaterEqual, {{ElementType::i32, Shape{T, Dim(11)}}, {ElementType::i32, Shape{Dim(11)}}}, {});
  one("_last", 4, Op::ReduceSum, {{F, Shape{T, Dim(5), Dim(33)}}}, {{"axes", Attribute::Ints({-1})}, {"keep_dims", Attribute::Bool(true)}});
  one("_dropped", 4, Op::ReduceMean, {{F, Shape{T, Dim(5), Dim(33)}}}, {{"axes", Attribute::Ints({1, 2})}, {"keep_dims", Attribute::Bool(false)}});
  one("_middle", 6, Op::ReduceMax, {{F, Shape{T, Dim(7), Dim(3)}}}, {{"axes", Attribute::Ints({1})}, {"keep_dims", Attribute::Bool(false)}});
  one("", 5, Op::Softmax, {{F, Shape{T, Dim(3), Dim(29)}}}, {{"axis", Attribute::Int(-1)}});
  one("_tb", 7, Op::MatMul, {{F, Shape{T, Dim(35)}}, {F, static_shape({13, 35})}}, {{"transpose_b", Attribute::Bool(true)}});
  one("_batched", 3, Op::MatMul, {{F, Shape{T, Dim(4), Dim(9)}}, {F, static_shape({1, 9, 6})}}, {});
  one("_inner", 4, Op::Transpose, {{F, Shape{T, Dim(3), Dim(5)}}}, {{"perm", Attribute::Ints({0, 2, 1})}});
  one("_rows", 4, Op::Transpose, {{F, Shape{T, Dim(3), Dim(5)}}}, {{"perm", Attribute::Ints({1, 0, 2})}});
  one("", 3, Op::Broadcast, {{F, Shape{T, Dim(1)}}}, {{"shape", Attribute::Dims({T, Dim(7)})}});
  one("_rank", 3, Op::Broadcast, {{F, Shape{Dim(5)}}}, {{"shape", Attribute::Dims({Dim(2), Dim(1), Dim(5)})}});
  one("_half", 5, Op::Slice, {{F, Shape{T, Dim(344)}}},
      {{"axes", Attribute::Ints({-1})}, {"begin", Attribute::Ints({0})}, {"end", Attribute::Ints({172})}});
  one("_step", 3, Op::Slice, {{F, Shape{T, Dim(11)}}},
      {{"axes", Attribute::Ints({1})}, {"begin", Attribute::Ints({1})}, {"end", Attribute::Ints({9})}, {"step", Attribute::Ints({3})}});
  one("_reverse", 3, Op::Slice, {{F, Shape{T, Dim(11)}}},
      {{"axes", Attribute::Ints({-1})}, {"begin", Attribute::Ints({-2})}, {"end", Attribute::Ints({-12})}, {"step", Attribute::Ints({-2})}});
  one("", 5, Op::Concat, {{F, Shape{T, Dim(3)}}, {F, Shape{T, Dim(5)}}, {F, Shape{T, Dim(1)}}}, {{"axis", Attribute::Int(1)}});
  one("_static", 1, Op::Concat, {{F, static_shape({2, 3})}, {F, static_shape({4, 3})}}, {{"axis", Attribute::Int(0)}});
  one("_rows", 6, Op::Gather, {{F, static_shape({41, 3})}, {ElementType::i64, Shape{T}}}, {{"axis", Attribute::Int(0)}});
  one("_inner", 2, Op::Gather, {{F, Shape{T, Dim(41)}}, {ElementType::i32, static_shape({2, 3})}}, {{"axis", Attribute::Int(1)}});
  for (ElementType t : {F, ElementType::i64})
    c.push_back({std::string("generic_Range_") + std::string(type_name(t)), 6, [t, T](Model& m) -> StatusOr<Node*> {
                   GraphBuilder b(m);
                   b.parameter("ids", ElementType::i64, Shape{T});  // binds `tokens`, as a model's token ids do
                   Node* n = b.node(Op::Range, {b.parameter("start", t, Shape{})},
                                    {{"length", Attribute::Dims({T})}, {"step", Attribute::Float(t == F ? 0.75 : 3.0)}}, "n");
                   INGOT_RETURN_IF_ERROR(b.status());
                   return n;
                 }, 0.0});
  one("", 5, Op::SwiGLU, {{F, Shape{T, Dim(19)}}, {F, Shape{T, Dim(19)}}}, {});
  one("_halves", 5, Op::SwiGLU, {{F, Shape{T, Dim(38)}}}, {});
  one("_interleaved", 5, Op::RoPE, {{F, Shape{T, Dim(3), Dim(8)}}, {F, Shape{T, Dim(4)}}, {F, Shape{T, Dim(4)}}},
      {{"layout", Attribute::String("interleaved")}});
  one("_rotate_half", 5, Op::RoPE, {{F, Shape{T, Dim(3), Dim(8)}}, {F, Shape{T, Dim(4)}}, {F, Shape{T, Dim(4)}}},
      {{"layout", Attribute::String("rotate_half")}});
  one("_f32_f16", 3, Op::Convert, {{F, Shape{T, Dim(13)}}}, {{"to", Attribute::Type(ElementType::f16)}});
  one("_f16_f32", 3, Op::Convert, {{ElementType::f16, Shape{T, Dim(13)}}}, {{"to", Attribute::Type(F)}});
  one("_f32_i64", 3, Op::Convert, {{F, Shape{T, Dim(13)}}}, {{"to", Attribute::Type(ElementType::i64)}});
  one("_f16", 3, Op::Add, {{ElementType::f16, Shape{T, Dim(13)}}, {ElementType::f16, Shape{Dim(13)}}}, {});
  one("", 3, Op::Select, {{ElementType::boolean, Shape{T, Dim(9)}}, {F, Shape{T, Dim(9)}}, {F, Shape{Dim(9)}}}, {});
  one("_f32", 5, Op::WeightMatMul, {{F, Shape{T, Dim(35)}}, {F, static_shape({13, 35})}}, {{"act_quant", Attribute::String("none")}});
  one("_f16", 5, Op::WeightMatMul, {{F, Shape{T, Dim(35)}}, {ElementType::f16, static_shape({13, 35})}}, {{"act_quant", Attribute::String("none")}});
  one("_f16_q8", 5, Op::WeightMatMul, {{F, Shape{T, Dim(35)}}, {ElementType::f16, static_shape({13, 35})}}, {{"act_quant", Attribute::String("q8")}});
  one("_i64_to_i32", 3, Op::Convert, {{ElementType::i64, Shape{T, Dim(5)}}}, {{"to", Attribute::Type(ElementType::i32)}});
  for (ElementType t : {ElementType::i64, ElementType::i32})
    c.push_back({std::string("generic_") + op_name(Op::RopeTable) + "_" + std::string(type_name(t)), 6, [t, T](Model& m) -> StatusOr<Node*> {
                   GraphBuilder b(m);
                   b.parameter("ids", ElementType::i64, Shape{T});
                   Node* n = b.node(Op::RopeTable, {b.parameter("pos", t, Shape{}), b.parameter("inv_freq", ElementType::f32, static_shape({7}))},
                                    {{"length", Attribute::Dims({T})}}, "n");
                   INGOT_RETURN_IF_ERROR(b.status());
                   return n;
                 }, 0.0});
  for (ElementType t : {ElementType::f32, ElementType::f16})
    one(std::string("_") + std::string(type_name(t)), 4, Op::Embedding, {{t, static_shape({41, 6})}, {ElementType::i64, Shape{T}}}, {});
  // Attention over a KV cache of 16 rows: separate and packed inputs, f32 and f16 caches, 3 query
  // heads per KV head; two calls (the harness repeats the inputs after the first call's rows).
  // Bound 1e-9: the reference's f32 online softmax against this double one (2e-15 to 7e-15 measured).
  for (bool packed : {false, true})
    for (ElementType ct : {F, ElementType::f16})
      c.push_back({std::string("generic_") + op_name(Op::Attention) + (packed ? "_packed_" : "_") + std::string(type_name(ct)), 3,
                   [packed, ct, T](Model& m) -> StatusOr<Node*> {
                     const int64_t H = 6, KV = 2, D = 12;
                     INGOT_RETURN_IF_ERROR(m.add_variable({"kc", ct, {16, KV, D}}));
                     INGOT_RETURN_IF_ERROR(m.add_variable({"vc", ct, {16, KV, D}}));
                     GraphBuilder b(m);
                     AttrMap attrs = {{"k_variable", Attribute::String("kc")}, {"v_variable", Attribute::String("vc")},
                                      {"scale", Attribute::Float(0.3)}};
                     std::vector<ingot::Value> ins;
                     if (packed) {
                       ins = {b.parameter("qkv", F, Shape{T, Dim((H + 2 * KV) * D)})};
                       attrs["q_heads"] = Attribute::Int(H);
                       attrs["kv_heads"] = Attribute::Int(KV);
                       attrs["head_dim"] = Attribute::Int(D);
                     } else {
                       ins = {b.parameter("q", F, Shape{T, Dim(H), Dim(D)}), b.parameter("k", F, Shape{T, Dim(KV), Dim(D)}),
                              b.parameter("v", F, Shape{T, Dim(KV), Dim(D)})};
                     }
                     Node* n = b.node(Op::Attention, ins, attrs, "n");
                     INGOT_RETURN_IF_ERROR(b.status());
                     return n;
                   }, 1e-9});
  one("_f32", 5, Op::FusedMatMul, {{F, Shape{T, Dim(35)}}, {F, static_shape({26, 35})}, {F, static_shape({26})}, {F, Shape{T, Dim(13)}}},
      {{"act_quant", Attribute::String("none")}, {"has_bias", Attribute::Bool(true)}, {"activation", Attribute::String("swiglu")},
       {"has_residual", Attribute::Bool(true)}});
  for (const char* layout : {"interleaved", "rotate_half"})
    one(std::string("_rope_") + layout, 5, Op::FusedMatMul,
        {{F, Shape{T, Dim(35)}}, {ElementType::f16, static_shape({40, 35})}, {F, Shape{T, Dim(4)}}, {F, Shape{T, Dim(4)}}},
        {{"act_quant", Attribute::String("q8")}, {"rope", Attribute::String(layout)}, {"rope_q_heads", Attribute::Int(3)},
         {"rope_k_heads", Attribute::Int(1)}, {"head_dim", Attribute::Int(8)}});
  one("", 5, Op::RMSNorm, {{F, Shape{T, Dim(67)}}, {F, static_shape({67})}}, {{"eps", Attribute::Float(1e-6)}});
  return c;
}

}  // namespace

extern const KernelFamily kGenericFamily = {
    "generic", "any element-wise op, reduction, Softmax, MatMul or RMSNorm without a hand-written kernel, through MLIR",
    generic_computes, generic_spec, generic_key, generic_args, generic_contract, nullptr, generic_emit, generic_cases};

}  // namespace ingot
