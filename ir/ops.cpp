// Every op of the Ingot IR: one entry each in kOps at the bottom of this file.
// An entry is: name, arity, attribute schema, shape inference, reference kernel.
// Reference kernels compute in double (floats) or int64 (integers) and round once on store:
// they are the numerical spec, written to be obviously correct rather than fast.
#include "ir/ops.h"
#include "ir/builder.h"
#include "ir/float_spec.h"

#include "ir/quant.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

namespace ingot {
namespace {

using Tensors = std::span<const Tensor>;
using Outputs = std::vector<Tensor>;

// ---------------------------------------------------------------- shape inference helpers

const TensorType& in_type(const Node& n, size_t i) { return n.inputs[i].type(); }

Status err(const std::string& msg) { return Status::Error(msg); }

bool is_float(ElementType t) { return type_info(t).is_float; }
bool is_quantized(ElementType t) { return type_info(t).is_quantized; }
bool is_numeric(ElementType t) { return type_info(t).is_float || type_info(t).is_integer; }

Status expect_float(const Node& n, size_t i) {
  if (!is_float(in_type(n, i).type))
    return err("input " + std::to_string(i) + " must be a float type (f32, f16, bf16), got " +
               in_type(n, i).str());
  return Status::Ok();
}

Status expect_numeric(const Node& n, size_t i) {
  if (!is_numeric(in_type(n, i).type))
    return err("input " + std::to_string(i) + " must be a float or integer type, got " + in_type(n, i).str());
  return Status::Ok();
}

Status expect_same_type(const Node& n, size_t a, size_t b) {
  if (in_type(n, a).type != in_type(n, b).type)
    return err("inputs " + std::to_string(a) + " and " + std::to_string(b) + " must have one element type, got " +
               in_type(n, a).str() + " and " + in_type(n, b).str());
  return Status::Ok();
}

// Two dims that must be equal at run time: the better-known one, or an error if provably different.
StatusOr<Dim> unify(const Dim& a, const Dim& b, const std::string& what) {
  if (a.is_unknown()) return b;
  if (b.is_unknown()) return a;
  if (a == b) return a;
  if (a.is_static() && !b.is_static()) return a;  // the symbol must take this value; checked at run time
  if (b.is_static() && !a.is_static()) return b;
  return err(what + ": " + a.str() + " vs " + b.str());
}

// Numpy broadcasting of two dims.
StatusOr<Dim> broadcast_dim(const Dim& a, const Dim& b) {
  if (a.is_static() && a.value() == 1) return b;
  if (b.is_static() && b.value() == 1) return a;
  if (a.is_unknown() || b.is_unknown()) return Dim::unknown();
  return unify(a, b, "dimensions do not broadcast");
}

StatusOr<Shape> broadcast_shapes(const Shape& a, const Shape& b) {
  size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    Dim da = i < r - a.size() ? Dim(1) : a[i - (r - a.size())];
    Dim db = i < r - b.size() ? Dim(1) : b[i - (r - b.size())];
    auto d = broadcast_dim(da, db);
    if (!d.ok()) return Status::Error(d.message() + " in shapes " + shape_str(a) + " and " + shape_str(b));
    out[i] = *d;
  }
  return out;
}

StatusOr<int64_t> normalize_axis(int64_t axis, int64_t rank, const std::string& what = "axis") {
  if (axis < -rank || axis >= rank)
    return err(what + " " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

void set_output(Node& n, ElementType t, Shape s) { n.outputs = {TensorType{t, std::move(s)}}; }

// ---------------------------------------------------------------- kernel helpers

std::vector<int64_t> strides_of(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (int64_t i = static_cast<int64_t>(shape.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

StatusOr<std::vector<int64_t>> broadcast_concrete(const std::vector<std::vector<int64_t>>& shapes) {
  size_t r = 0;
  for (auto& s : shapes) r = std::max(r, s.size());
  std::vector<int64_t> out(r, 1);
  for (auto& s : shapes) {
    for (size_t i = 0; i < s.size(); ++i) {
      int64_t& o = out[r - s.size() + i];
      int64_t d = s[i];
      if (o == 1) o = d;
      else if (d != 1 && d != o) {
        std::string all;
        for (auto& x : shapes) all += dims_str(x) + " ";
        return err("shapes do not broadcast at run time: " + all);
      }
    }
  }
  return out;
}

// Maps each output flat index to the flat index of each (broadcast) input.
template <typename F>
void for_each_broadcast(const std::vector<int64_t>& out_shape, const std::vector<std::vector<int64_t>>& in_shapes,
                        F&& fn) {
  size_t r = out_shape.size();
  std::vector<std::vector<int64_t>> in_strides;
  for (auto& s : in_shapes) {
    auto st = strides_of(s);
    std::vector<int64_t> aligned(r, 0);
    for (size_t i = 0; i < s.size(); ++i) aligned[r - s.size() + i] = s[i] == 1 ? 0 : st[i];
    in_strides.push_back(aligned);
  }
  int64_t total = numel_of(out_shape);
  std::vector<int64_t> idx(r, 0), in_idx(in_shapes.size(), 0);
  for (int64_t o = 0; o < total; ++o) {
    fn(o, in_idx);
    for (int64_t d = static_cast<int64_t>(r) - 1; d >= 0; --d) {
      if (++idx[d] < out_shape[d]) {
        for (size_t k = 0; k < in_idx.size(); ++k) in_idx[k] += in_strides[k][d];
        break;
      }
      for (size_t k = 0; k < in_idx.size(); ++k) in_idx[k] -= in_strides[k][d] * (out_shape[d] - 1);
      idx[d] = 0;
    }
  }
}

// memcpy that accepts empty ranges (whose pointers may be null).
void copy_bytes(void* dst, const void* src, size_t n) {
  if (n) std::memcpy(dst, src, n);
}

// out[i0, i1, ...] = x.flat[base + sum(i_d * strides[d])]: the strided view behind Transpose and Slice.
Tensor copy_strided(const Tensor& x, const std::vector<int64_t>& out_shape, int64_t base,
                    const std::vector<int64_t>& strides) {
  Tensor r = Tensor::zeros(x.type(), out_shape);
  size_t esize = static_cast<size_t>(type_info(x.type()).block_bytes);
  std::vector<int64_t> idx(out_shape.size(), 0);
  for (int64_t o = 0; o < r.numel(); ++o) {
    int64_t src = base;
    for (size_t d = 0; d < idx.size(); ++d) src += idx[d] * strides[d];
    copy_bytes(r.mutable_raw() + o * esize, x.raw() + src * esize, esize);
    for (int64_t d = static_cast<int64_t>(idx.size()) - 1; d >= 0; --d) {
      if (++idx[d] < out_shape[d]) break;
      idx[d] = 0;
    }
  }
  return r;
}

// Evaluates the dims of an attribute under the current symbol bindings.
StatusOr<std::vector<int64_t>> eval_dims(const Shape& dims, const EvalContext& ctx, const std::string& what) {
  std::vector<int64_t> r;
  for (auto& d : dims) {
    auto v = d.evaluate(*ctx.symbols);
    if (!v) return err(what + ": dimension " + d.str() + " has no value (unbound symbol)");
    r.push_back(*v);
  }
  return r;
}

// ---------------------------------------------------------------- source and sink ops

Status infer_parameter(Node& n) {
  if (n.outputs.size() != 1) return err("Parameter needs exactly one declared output type");
  if (is_quantized(n.outputs[0].type)) return err("Parameter cannot have a quantized type");
  return Status::Ok();
}

Status eval_parameter(const Node& n, EvalContext& ctx, Tensors, Outputs& out) {
  auto it = ctx.inputs->find(n.name);
  if (it == ctx.inputs->end()) return err("no input given for parameter '" + n.name + "'");
  if (it->second.type() != n.outputs[0].type)
    return err("input '" + n.name + "' must be " + std::string(type_name(n.outputs[0].type)) + ", got " +
               std::string(type_name(it->second.type())));
  out = {it->second};
  return Status::Ok();
}

Status infer_constant(Node& n) {
  if (n.outputs.size() != 1) return err("Constant needs exactly one declared output type");
  const TensorType& t = n.outputs[0];
  if (!is_static(t.shape)) return err("Constant shape must be static, got " + shape_str(t.shape));
  for (auto& d : t.shape)
    if (d.value() < 0) return err("Constant has a negative dimension");
  if (is_quantized(t.type)) {
    int64_t block = type_info(t.type).block_elems;
    if (t.shape.empty() || t.shape.back().value() % block != 0)
      return err("a " + std::string(type_name(t.type)) + " constant needs a last dimension that is a multiple of " +
                 std::to_string(block) + ", got " + shape_str(t.shape));
  }
  if (!n.constant) {
    if (n.constant_hash.empty()) return err("Constant has neither data nor a content hash");
    return Status::Ok();
  }
  std::vector<int64_t> dims;
  for (auto& d : t.shape) dims.push_back(d.value());
  if (n.constant->type() != t.type || n.constant->shape() != dims)
    return err("Constant data is " + std::string(type_name(n.constant->type())) + dims_str(n.constant->shape()) +
               " but declared " + t.str());
  auto bytes = storage_bytes(t.type, numel_of(dims));
  if (!bytes.ok() || *bytes != static_cast<int64_t>(n.constant->nbytes()))
    return err("Constant data has " + std::to_string(n.constant->nbytes()) + " bytes, " + t.str() + " needs " +
               (bytes.ok() ? std::to_string(*bytes) : bytes.message()));
  return Status::Ok();
}

Status eval_constant(const Node& n, EvalContext&, Tensors, Outputs& out) {
  if (!n.constant || !n.constant->defined())
    return err("constant '" + n.name + "' has no data (it was parsed from a summarized text)");
  out = {*n.constant};
  return Status::Ok();
}

Status infer_result(Node& n) {
  n.outputs = {in_type(n, 0)};
  return Status::Ok();
}

Status eval_identity(const Node&, EvalContext&, Tensors in, Outputs& out) {
  out = {in[0]};
  return Status::Ok();
}

Status infer_read_value(Node& n) {
  if (n.outputs.size() != 1) return err("ReadValue needs exactly one declared output type");
  if (is_quantized(n.outputs[0].type)) return err("ReadValue cannot have a quantized type");
  if (n.attr("variable").as_string().empty()) return err("ReadValue needs a variable name");
  return Status::Ok();
}

Status eval_read_value(const Node& n, EvalContext& ctx, Tensors, Outputs& out) {
  const std::string& var = n.attr("variable").as_string();
  auto it = ctx.state->find(var);
  if (it != ctx.state->end()) {
    out = {it->second};
    return Status::Ok();
  }
  // Initial state: static dims keep their size, symbolic dims (the growing ones) start at 0.
  std::vector<int64_t> dims;
  for (auto& d : n.outputs[0].shape) dims.push_back(d.is_static() ? d.value() : 0);
  out = {Tensor::zeros(n.outputs[0].type, dims)};
  return Status::Ok();
}

Status infer_assign(Node& n) {
  if (n.attr("variable").as_string().empty()) return err("Assign needs a variable name");
  if (is_quantized(in_type(n, 0).type)) return err("Assign cannot store a quantized type");
  n.outputs.clear();
  return Status::Ok();
}

Status eval_assign(const Node& n, EvalContext& ctx, Tensors in, Outputs& out) {
  (*ctx.next_state)[n.attr("variable").as_string()] = in[0];
  out.clear();
  return Status::Ok();
}

// ---------------------------------------------------------------- Convert

Status infer_convert(Node& n) {
  ElementType to = n.attr("to").as_type();
  if (is_quantized(to)) return err("Convert cannot produce a quantized type (quantization is a pass)");
  set_output(n, to, in_type(n, 0).shape);
  return Status::Ok();
}

Status eval_convert(const Node& n, EvalContext&, Tensors in, Outputs& out) {
  ElementType to = n.attr("to").as_type();
  Tensor src = is_quantized(in[0].type()) ? in[0].to_f32() : in[0];
  Tensor r = Tensor::zeros(to, src.shape());
  bool int_path = type_info(src.type()).is_integer || src.type() == ElementType::boolean;
  for (int64_t i = 0; i < src.numel(); ++i) {
    if (int_path) r.set_i(i, src.get_i(i));
    else r.set_f(i, src.get_f(i));
  }
  out = {r};
  return Status::Ok();
}

// ---------------------------------------------------------------- element-wise binary ops

Status infer_binary_arith(Node& n) {
  INGOT_RETURN_IF_ERROR(expect_numeric(n, 0));
  INGOT_RETURN_IF_ERROR(expect_same_type(n, 0, 1));
  INGOT_ASSIGN_OR_RETURN(Shape s, broadcast_shapes(in_type(n, 0).shape, in_type(n, 1).shape));
  set_output(n, in_type(n, 0).type, s);
  return Status::Ok();
}

Status infer_compare(Node& n) {
  INGOT_RETURN_IF_ERROR(expect_same_type(n, 0, 1));
  if (is_quantized(in_type(n, 0).type)) return err("cannot compare quantized values");
  INGOT_ASSIGN_OR_RETURN(Shape s, broadcast_shapes(in_type(n, 0).shape, in_type(n, 1).shape));
  set_output(n, ElementType::boolean, s);
  return Status::Ok();
}

Status infer_logical_binary(Node& n) {
  if (in_type(n, 0).type != ElementType::boolean || in_type(n, 1).type != ElementType::boolean)
    return err("inputs must be bool, got " + in_type(n, 0).str() + " and " + in_type(n, 1).str());
  INGOT_ASSIGN_OR_RETURN(Shape s, broadcast_shapes(in_type(n, 0).shape, in_type(n, 1).shape));
  set_output(n, ElementType::boolean, s);
  return Status::Ok();
}

// Float math in double, integer math in int64; the result is stored with the output type's rounding.
using FloatFn = double (*)(double, double);
using IntFn = StatusOr<int64_t> (*)(int64_t, int64_t);

Status eval_binary(const Node& n, Tensors in, Outputs& out, FloatFn ff, IntFn fi) {
  INGOT_ASSIGN_OR_RETURN(auto shape, broadcast_concrete({in[0].shape(), in[1].shape()}));
  ElementType out_type = n.outputs[0].type;
  Tensor r = Tensor::zeros(out_type, shape);
  bool int_math = !is_float(in[0].type());
  Status status = Status::Ok();
  for_each_broadcast(shape, {in[0].shape(), in[1].shape()}, [&](int64_t o, const std::vector<int64_t>& k) {
    if (!status.ok()) return;
    if (int_math) {
      auto v = fi(in[0].get_i(k[0]), in[1].get_i(k[1]));
      if (!v.ok()) { status = v.status(); return; }
      r.set_i(o, *v);
    } else {
      r.set_f(o, ff(in[0].get_f(k[0]), in[1].get_f(k[1])));
    }
  });
  INGOT_RETURN_IF_ERROR(status);
  out = {r};
  return Status::Ok();
}

StatusOr<int64_t> int_floor_div(int64_t a, int64_t b) {
  if (b == 0) return err("integer division by zero");
  if (a == std::numeric_limits<int64_t>::min() && b == -1) return err("integer division overflows");
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;  // floor, as Python does
  return q;
}

StatusOr<int64_t> int_pow(int64_t a, int64_t b) {
  if (b < 0) return err("integer Power with a negative exponent");
  int64_t r = 1;
  for (int64_t i = 0; i < b; ++i) {
    if (__builtin_mul_overflow(r, a, &r)) return err("integer Power overflows");
    if (r == 0 || r == 1) break;
  }
  return r;
}

#define INGOT_BINARY(NAME, FEXPR, IEXPR)                                                       \
  Status eval_##NAME(const Node& n, EvalContext&, Tensors in, Outputs& out) {                  \
    return eval_binary(                                                                        \
        n, in, out, [](double a, double b) -> double { return FEXPR; },                        \
        [](int64_t a, int64_t b) -> StatusOr<int64_t> { return IEXPR; });                      \
  }
// Integer add/sub/mul wrap around like two's complement hardware (computed unsigned: no UB).
INGOT_BINARY(add, a + b, static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b)))
INGOT_BINARY(sub, a - b, static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b)))
INGOT_BINARY(mul, a * b, static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b)))
INGOT_BINARY(div, a / b, int_floor_div(a, b))
INGOT_BINARY(pow, std::pow(a, b), int_pow(a, b))
INGOT_BINARY(max, std::isnan(a) || std::isnan(b) ? NAN : std::max(a, b), std::max(a, b))
INGOT_BINARY(min, std::isnan(a) || std::isnan(b) ? NAN : std::min(a, b), std::min(a, b))
INGOT_BINARY(eq, a == b, a == b)
INGOT_BINARY(ne, a != b, a != b)
INGOT_BINARY(lt, a < b, a < b)
INGOT_BINARY(le, a <= b, a <= b)
INGOT_BINARY(gt, a > b, a > b)
INGOT_BINARY(ge, a >= b, a >= b)
INGOT_BINARY(and, (a != 0) && (b != 0), (a != 0) && (b != 0))
INGOT_BINARY(or, (a != 0) || (b != 0), (a != 0) || (b != 0))
#undef INGOT_BINARY

// ---------------------------------------------------------------- element-wise unary ops

Status infer_unary_float(Node& n) {
  INGOT_RETURN_IF_ERROR(expect_float(n, 0));
  n.outputs = {in_type(n, 0)};
  return Status::Ok();
}

Status infer_unary_numeric(Node& n) {
  INGOT_RETURN_IF_ERROR(expect_numeric(n, 0));
  n.outputs = {in_type(n, 0)};
  return Status::Ok();
}

Status infer_gelu(Node& n) {
  const std::string& a = n.attr("approximation").as_string();
  if (a != "erf" && a != "tanh" && a != "ggml_f16")
    return err("Gelu approximation must be \"erf\", \"tanh\" or \"ggml_f16\", got \"" + a + "\"");
  return infer_unary_float(n);
}

Status infer_logical_not(Node& n) {
  if (in_type(n, 0).type != ElementType::boolean) return err("input must be bool, got " + in_type(n, 0).str());
  n.outputs = {in_type(n, 0)};
  return Status::Ok();
}

template <typename F>
Status eval_unary(Tensors in, Outputs& out, F f) {
  Tensor r = Tensor::zeros(in[0].type(), in[0].shape());
  for (int64_t i = 0; i < r.numel(); ++i) r.set_f(i, f(in[0].get_f(i)));
  out = {r};
  return Status::Ok();
}

#define INGOT_UNARY(NAME, EXPR)                                                 \
  Status eval_##NAME(const Node&, EvalContext&, Tensors in, Outputs& out) {     \
    return eval_unary(in, out, [](double x) -> double { return EXPR; });        \
  }
INGOT_UNARY(sqrt, std::sqrt(x))
INGOT_UNARY(exp, std::exp(x))
INGOT_UNARY(log, std::log(x))
INGOT_UNARY(sin, std::sin(x))
INGOT_UNARY(cos, std::cos(x))
INGOT_UNARY(tanh, std::tanh(x))
INGOT_UNARY(erf, std::erf(x))
INGOT_UNARY(sigmoid, 1.0 / (1.0 + std::exp(-x)))
INGOT_UNARY(logical_not, x == 0.0)
#undef INGOT_UNARY

// Integer negation and absolute value stay exact in int64 (wrapping at the minimum).
Status eval_negative(const Node&, EvalContext&, Tensors in, Outputs& out) {
  Tensor r = Tensor::zeros(in[0].type(), in[0].shape());
  bool ints = !is_float(in[0].type());
  for (int64_t i = 0; i < r.numel(); ++i) {
    if (ints) r.set_i(i, static_cast<int64_t>(0 - static_cast<uint64_t>(in[0].get_i(i))));
    else r.set_f(i, -in[0].get_f(i));
  }
  out = {r};
  return Status::Ok();
}

Status eval_abs(const Node&, EvalContext&, Tensors in, Outputs& out) {
  Tensor r = Tensor::zeros(in[0].type(), in[0].shape());
  bool ints = !is_float(in[0].type());
  for (int64_t i = 0; i < r.numel(); ++i) {
    if (ints) {
      int64_t v = in[0].get_i(i);
      r.set_i(i, v < 0 ? static_cast<int64_t>(0 - static_cast<uint64_t>(v)) : v);
    } else {
      r.set_f(i, std::fabs(in[0].get_f(i)));
    }
  }
  out = {r};
  return Status::Ok();
}

Status eval_gelu(const Node& n, EvalContext&, Tensors in, Outputs& out) {
  if (n.attr("approximation").as_string() == "ggml_f16")
    return eval_unary(in, out, [](double x) { return static_cast<double>(float_spec::gelu_ggml_f16(static_cast<float>(x))); });
  if (n.attr("approximation").as_string() == "tanh")
    return eval_unary(in, out, [](double x) {
      const double k = std::sqrt(2.0 / M_PI);
      return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
    });
  return eval_unary(in, out, [](double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); });
}

// ---------------------------------------------------------------- reductions and softmax

StatusOr<std::vector<int64_t>> reduce_axes(const Node& n, int64_t rank) {
  const auto& axes = n.attr("axes").as_ints();
  if (axes.empty()) return err("axes must not be empty");
  std::vector<int64_t> r;
  for (int64_t a : axes) {
    INGOT_ASSIGN_OR_RETURN(int64_t ax, normalize_axis(a, rank));
    if (std::find(r.begin(), r.end(), ax) != r.end()) return err("axis " + std::to_string(a) + " repeats");
    r.push_back(ax);
  }
  std::sort(r.begin(), r.end());
  return r;
}

Status infer_reduce(Node& n) {
  bool mean = n.is(Op::ReduceMean);
  INGOT_RETURN_IF_ERROR(mean ? expect_float(n, 0) : expect_numeric(n, 0));
  const TensorType& t = in_type(n, 0);
  INGOT_ASSIGN_OR_RETURN(auto axes, reduce_axes(n, static_cast<int64_t>(t.shape.size())));
  bool keep = n.attr("keep_dims").as_bool();
  Shape s;
  for (size_t i = 0; i < t.shape.size(); ++i) {
    bool reduced = std::find(axes.begin(), axes.end(), static_cast<int64_t>(i)) != axes.end();
    if (!reduced) s.push_back(t.shape[i]);
    else if (keep) s.push_back(Dim(1));
  }
  set_output(n, t.type, s);
  return Status::Ok();
}

Status eval_reduce(const Node& n, EvalContext&, Tensors in, Outputs& out) {
  const Tensor& x = in[0];
  INGOT_ASSIGN_OR_RETURN(auto axes, reduce_axes(n, x.rank()));
  bool keep = n.attr("keep_dims").as_bool();
  std::vector<int64_t> out_shape, kept_shape;
  for (int64_t i = 0; i < x.rank(); ++i) {
    bool reduced = std::find(axes.begin(), axes.end(), i) != axes.end();
    kept_shape.push_back(reduced ? 1 : x.shape()[i]);
    if (!reduced) out_shape.push_back(x.shape()[i]);
    else if (keep) out_shape.push_back(1);
  }
  int64_t groups = numel_of(kept_shape);
  int64_t count = groups == 0 ? 0 : x.numel() / std::max<int64_t>(groups, 1);
  bool is_max = n.is(Op::ReduceMax), is_mean = n.is(Op::ReduceMean);
  if ((is_max || is_mean) && count == 0 && groups > 0)
    return err(std::string(n.op_name()) + " over an empty axis");
  bool ints = !is_float(x.type());
  std::vector<double> acc(static_cast<size_t>(groups), is_max ? -INFINITY : 0.0);
  std::vector<int64_t> iacc(static_cast<size_t>(groups), is_max ? std::numeric_limits<int64_t>::min() : 0);
  // Walk the input; the group index is the input index with reduced axes collapsed.
  auto kstr = strides_of(kept_shape);
  std::vector<int64_t> idx(static_cast<size_t>(x.rank()), 0);
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t g = 0;
    for (int64_t d = 0; d < x.rank(); ++d) g += (kept_shape[d] == 1 ? 0 : idx[d]) * kstr[d];
    if (ints) {
      int64_t v = x.get_i(i);
      iacc[g] = is_max ? std::max(iacc[g], v) : static_cast<int64_t>(static_cast<uint64_t>(iacc[g]) + static_cast<uint64_t>(v));
    } else {
      double v = x.get_f(i);
      acc[g] = is_max ? (std::isnan(v) || std::isnan(acc[g]) ? NAN : std::max(acc[g], v)) : acc[g] + v;
    }
    for (int64_t d = x.rank() - 1; d >= 0; --d) {
      if (++idx[d] < x.shape()[d]) break;
      idx[d] = 0;
    }
  }
  Tensor r = Tensor::zeros(x.type(), out_shape);
  for (int64_t g = 0; g < groups; ++g) {
    if (ints) r.set_i(g, iacc[g]);
    else r.set_f(g, is_mean ? acc[g] / static_cast<double>(count) : acc[g]);
  }
  out = {r};
  return Status::Ok();
}

Status infer_softmax(Node& n) {
  INGOT_RETURN_IF_ERROR(expect_float(n, 0));
  INGOT_RETURN_IF_ERROR(normalize_axis(n.attr("axis").as_int(), static_cast<int64_t>(in_type(n, 0).shape.size())).status());
  n.outputs = {in_type(n, 0)};
  return Status::Ok();
}

Status eval_softmax(const Node& n, EvalContext&, Tensors in, Outputs& out) {
  const Tensor& x = in[0];
  INGOT_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(n.attr("axis").as_int(), x.rank()));
  int64_t len = x.shape()[axis];
  int64_t inner = numel_of(std::vector<int64_t>(x.shape().begin() + axis + 1, x.shape().end()));
  int64_t outer = numel_of(std::vector<int64_t>(x.shape().begin(), x.shape().begin() + axis));
  Tensor r = Tensor::zeros(x.type(), x.shape());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t in_i = 0; in_i < inner; ++in_i) {
      auto at = [&](int64_t k) { return (o * len + k) * inner + in_i; };
      double m = -INFINITY;
      for (int64_t k = 0; k < len; ++k) m = std::max(m, x.get_f(at(k)));
      double sum = 0;
      for (int64_t k = 0; k < len; ++k) sum += std::exp(x.get_f(at(k)) - m);
      // A row that is all -inf (fully masked) gives NaN, as exp(-inf - -inf) does: made visible, not hidden.
      for (int64_t k = 0; k < len; ++k) r.set_f(at(k), std::exp(x.get_f(at(k)) - m) / sum);
    }
  }
  out = {r};
  return Status::Ok();
}

// ---------------------------------------------------------------- MatMul

Status infer_matmul(Node& n) {
  INGOT_RETURN_IF_ERROR(expect_float(n, 0));
  INGOT_RETURN_IF_ERROR(expect_same_type(n, 0, 1));
  const Shape& a = in_type(n, 0).shape;
  const Shape& b = in_type(n, 1).shape;
  if (a.size() < 2 || b.size() < 2)
    return err("MatMul inputs need rank >= 2, got " + shape_str(a) + " and " + shape_str(b));
  bool ta = n.attr("transpose_a").as_bool(), tb = n.attr("transpose_b").as_bool();
  Dim m = a[a.size() - (ta ? 1 : 2)], ka = a[a.size() - (ta ? 2 : 1)];
  Dim kb = b[b.size() - (tb ? 1 : 2)], nn = b[b.size() - (tb ? 2 : 1)];
  auto k = unify(ka, kb, "MatMul contraction dimensions differ");
  if (!k.ok()) return Status::Error(k.message() + " (" + shape_str(a) + " x " + shape_str(b) + ")");
  INGOT_ASSIGN_OR_RETURN(Shape batch, broadcast_shapes(Shape(a.begin(), a.end() - 2), Shape(b.begin(), b.end() - 2)));
  batch.push_back(m);
  batch.push_back(nn);
  set_output(n, in_type(n, 0).type, batch);
  return Status::Ok();
}

Status eval_matmul(const Node& n, EvalContext&, Tensors in, Outputs& out) {
  const Tensor& A = in[0];
  const Tensor& B = in[1];
  bool ta = n.attr("transpose_a").as_bool(), tb = n.attr("transpose_b").as_bool();
  int64_t ra = A.rank(), rb = B.rank();
  int64_t M = A.shape()[ra - (ta ? 1 : 2)], K = A.shape()[ra - (ta ? 2 : 1)];
  int64_t Kb = B.shape()[rb - (tb ? 1 : 2)], N = B.shape()[rb - (tb ? 2 : 1)];
  if (K != Kb) return err("MatMul contraction dimensions differ at run time: " + std::to_string(K) + " vs " + std::to_string(Kb));
  std::vector<int64_t> ba(A.shape().begin(), A.shape().end() - 2), bb(B.shape().begin(), B.shape().end() - 2);
  INGOT_ASSIGN_OR_RETURN(auto batch, broadcast_concrete({ba, bb}));
  std::vector<int64_t> out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor r = Tensor::zeros(A.type(), out_shape);
  int64_t a_mat = M * K, b_mat = K * N;
  std::vector<std::vector<int64_t>> bshapes = {ba, bb};
  for_each_broadcast(batch, bshapes, [&](int64_t o, const std::vector<int64_t>& k) {
    int64_t a0 = k[0] * a_mat, b0 = k[1] * b_mat, c0 = o * M * N;
    for (int64_t i = 0; i < M; ++i) {
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t p = 0; p < K; ++p) {
          double av = A.get_f(a0 + (ta ? p * M + i : i * K + p));
          double bv = B.get_f(b0 + (tb ? j * K + p : p * N + j));
          s += av * bv;
        }
        r.set_f(c0 + i * N + j, s);
      }
    }
  });
  out = {r};
  return Status::Ok();
}

// ---------------------------------------------------------------- WeightMatMul
// x[..., K] times a weight matrix w[N, K] stored in any type (f32, f16, bf16, quantized), the
// layout of llama.cpp's tensors. act_quant "none": exact (w dequantized, sums in double).
// act_quant "q8": llama.cpp's CPU numerics: activations are rounded to f16/bf16 for f16/bf16
// weights (one f32 FMA chain in k order over the rounded activations times the weights) and
// quantized for every block-quantized type with kernels, in the format ggml pairs with it where
// that is q8_0 or q8_K: q8_0 blocks of 32 for q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl (q8_row_dot:
// blocks dotted in integers, scaled in f32 and added to an f32 sum in block order), q8_K
// super-blocks of 256 for q2_k, q3_k, q4_k, q5_k, q6_k, iq4_xs (q8k_row_dot: the scales of the
// sub-blocks applied in integers, one f32 step per super-block). The kernels reproduce these f32
// orders bit for bit.
// act_quant "ggml": ggml's own numerics for every GGUF type: the activation format ggml pairs with
// the weight type (q8_0, q8_1 or q8_K) and its generic dot product's arithmetic (ggml_vec_dot in
// ir/quant.h); float weights as in "q8". The reference evaluator's mode; no kernels yet.


// One weight row (K / 32 activation blocks) times q8_0 activations: an integer dot per 32-element
// block, times the product of the weight's and the activation's scales (rounded to f32), added to
// an f32 sum block after block (a separate multiply and add, not a fused multiply-add). The
// generated kernels accumulate in exactly this order, so they match this bit for bit. (Of the
// exact orders the kernels can afford, this one reproduces llama.cpp's greedy ids on the q8_0
// test model; a fused multiply-add per block flips one near-tie.)
// The block value by weight type (da = f16(a.d), d and dmin the weight's f16 scales as f32; qa,
// asum, isum exact integer sums over the block or, for 16-element sub-blocks, over half h; every
// product and sum rounded to f32 in this association, no FMA):
//   q8_0, q4_0, q5_0, iq4_nl  float(isum) * (d * da)     (ggml's q5_0/iq4_nl x q8_0 dots)
//   q4_1, q5_1 (q unsigned)  (d * da) * float(isum) + m * (da * float(asum))
//     (ggml's q4_1 x q8_1 dot with q8_1's s = d_a * sum(q_a) taken from the q8_0 block)
//   q4_k, q5_k     da * ((d * sc) * qa - (dmin * m) * asum)            (6-bit sc, m of the sub-block)
//   q6_k, q3_k     da * ((d * sc0) * isum0 + (d * sc1) * isum1)        (signed 16-element scales)
//   q2_k           da * (d * float(sc0*qa0 + sc1*qa1) - dmin * float(m0*asum0 + m1*asum1))
//   iq4_xs         da * ((d * (ls - 32)) * isum)                       (isum over kvalues_iq4nl[q] * a)
float q8_row_dot(ElementType wt, const uint8_t* row, const BlockQ8_0* act, int64_t blocks) {
  float sum = 0;
  for (int64_t b = 0; b < blocks; ++b) {
    const float da = f16_to_f32(act[b].d);
    if (wt == ElementType::q8_0) {
      BlockQ8_0 blk;
      std::memcpy(&blk, row + b * sizeof(BlockQ8_0), sizeof(blk));
      sum += static_cast<float>(dot_block_q8_0_q8_0(blk, act[b])) * (f16_to_f32(blk.d) * da);
    } else if (wt == ElementType::q4_0) {
      BlockQ4_0 blk;
      std::memcpy(&blk, row + b * sizeof(BlockQ4_0), sizeof(blk));
      sum += static_cast<float>(dot_block_q4_0_q8_0(blk, act[b])) * (f16_to_f32(blk.d) * da);
    } else if (wt == ElementType::q5_0) {
      BlockQ5_0 blk;
      std::memcpy(&blk, row + b * sizeof(BlockQ5_0), sizeof(blk));
      sum += static_cast<float>(dot_block_q5_0_q8_0(blk, act[b])) * (f16_to_f32(blk.d) * da);
    } else if (wt == ElementType::iq4_nl) {
      BlockIQ4_NL blk;
      std::memcpy(&blk, row + b * sizeof(BlockIQ4_NL), sizeof(blk));
      sum += static_cast<float>(dot_block_iq4_nl_q8_0(blk, act[b])) * (f16_to_f32(blk.d) * da);
    } else {
      INGOT_ASSERT(wt == ElementType::q4_1 || wt == ElementType::q5_1, "q8_row_dot: unsupported weight type");
      int32_t qa, asum;
      float d, m;
      if (wt == ElementType::q4_1) {
        BlockQ4_1 blk;
        std::memcpy(&blk, row + b * sizeof(BlockQ4_1), sizeof(blk));
        dot_block_q4_1_q8_0(blk, act[b], qa, asum);
        d = f16_to_f32(blk.d);
        m = f16_to_f32(blk.m);
      } else {
        BlockQ5_1 blk;
        std::memcpy(&blk, row + b * sizeof(BlockQ5_1), sizeof(blk));
        dot_block_q5_1_q8_0(blk, act[b], qa, asum);
        d = f16_to_f32(blk.d);
        m = f16_to_f32(blk.m);
      }
      sum += (d * da) * static_cast<float>(qa) + m * (da * static_cast<float>(asum));
    }
  }
  return sum;
}

// One weight row of a k-quant or iq4_xs (K / 256 super-blocks) times q8_K activations (ggml's
// format for them: 256 values, an f32 scale da, quantize_row_q8_K). Per super-block the
// sub-blocks' integer dots are multiplied by their integer scales and summed exactly (isum), the
// mins likewise with the activation sums (msum); then one f32 step, added to an f32 sum in
// super-block order (d and dmin the weight's f16 scales as f32; each product and difference
// rounded to f32 in this association, no FMA):
//   q4_k, q5_k, q2_k   (d * da) * float(isum) - (dmin * da) * float(msum)
//   q6_k, q3_k, iq4_xs (d * da) * float(isum)
// isum: q4_k, q5_k sum_j sc_j * sum(q * a) over 32-element sub-block j (6-bit sc, unsigned q);
// q6_k, q3_k sum_j sc_j * sum(q * a) over 16-element sub-blocks (signed sc, signed q); q2_k the
// same with 4-bit sc and q 0..3; iq4_xs sum_j (ls_j - 32) * sum(kvalues_iq4nl[q] * a) over
// 32-element blocks. msum: sum_j m_j * sum(a) over the sub-block of each min.
// q2_k's is ggml's own generic arithmetic (ggml_vec_dot_q2_K_q8_K), bit for bit. The others sum
// what ggml sums, but ggml's generic code splits isum into 8 lanes (element index mod 8) scaled
// and accumulated separately; one lane costs the kernels a float step per super-block instead of
// eight lanes' worth, and lets every tier (pmaddwd, vpdpbusd) form isum in integers.
float q8k_row_dot(ElementType wt, const uint8_t* row, const BlockQ8_K* act, int64_t superblocks) {
  float sum = 0;
  for (int64_t sb = 0; sb < superblocks; ++sb) {
    const BlockQ8_K& a = act[sb];
    // The integer helpers take 32-element q8_0 blocks (their scale unused): slices of a.
    BlockQ8_0 part[8];
    for (int j = 0; j < 8; ++j) {
      part[j].d = 0;
      std::memcpy(part[j].qs, a.qs + 32 * j, 32);
    }
    int32_t isum = 0, msum = 0;
    float d = 0, dmin = 0;
    bool has_min = false;
    // q4_k and q5_k share scales, mins and the sub-block structure.
    auto scale_min_sums = [&](const auto& blk, auto scale_min, auto dot) {
      for (int j = 0; j < 8; ++j) {
        uint8_t sc, mn;
        int32_t qa, asum;
        scale_min(blk, j, sc, mn);
        dot(blk, j, part[j], qa, asum);
        isum += sc * qa;
        msum += mn * asum;
      }
      d = f16_to_f32(blk.d);
      dmin = f16_to_f32(blk.dmin);
      has_min = true;
    };
    // q6_k and q3_k: two 16-element halves per 32-element block, each with a signed scale.
    auto half_scale_sums = [&](const auto& blk, auto dot, auto scale) {
      for (int j = 0; j < 8; ++j) {
        int32_t half[2];
        dot(blk, j, part[j], half);
        isum += scale(blk, 2 * j) * half[0] + scale(blk, 2 * j + 1) * half[1];
      }
      d = f16_to_f32(blk.d);
    };
    if (wt == ElementType::q4_k) {
      BlockQ4_K blk;
      std::memcpy(&blk, row + sb * sizeof(BlockQ4_K), sizeof(blk));
      scale_min_sums(blk, q4_k_scale_min, dot_subblock_q4_k_q8_0);
    } else if (wt == ElementType::q5_k) {
      BlockQ5_K blk;
      std::memcpy(&blk, row + sb * sizeof(BlockQ5_K), sizeof(blk));
      scale_min_sums(blk, q5_k_scale_min, dot_subblock_q5_k_q8_0);
    } else if (wt == ElementType::q6_k) {
      BlockQ6_K blk;
      std::memcpy(&blk, row + sb * sizeof(BlockQ6_K), sizeof(blk));
      half_scale_sums(blk, dot_block_q6_k_q8_0, [](const BlockQ6_K& w, int i) { return int32_t{w.scales[i]}; });
    } else if (wt == ElementType::q3_k) {
      BlockQ3_K blk;
      std::memcpy(&blk, row + sb * sizeof(BlockQ3_K), sizeof(blk));
      half_scale_sums(blk, dot_block_q3_k_q8_0, q3_k_sub_scale);
    } else if (wt == ElementType::q2_k) {
      has_min = true;
      BlockQ2_K blk;
      std::memcpy(&blk, row + sb * sizeof(BlockQ2_K), sizeof(blk));
      for (int j = 0; j < 8; ++j) {
        int32_t qa[2], asum[2];
        dot_block_q2_k_q8_0(blk, j, part[j], qa, asum);
        const uint8_t s0 = blk.scales[2 * j], s1 = blk.scales[2 * j + 1];
        isum += (s0 & 15) * qa[0] + (s1 & 15) * qa[1];
        msum += (s0 >> 4) * asum[0] + (s1 >> 4) * asum[1];
      }
      d = f16_to_f32(blk.d);
      dmin = f16_to_f32(blk.dmin);
    } else {
      INGOT_ASSERT(wt == ElementType::iq4_xs, "q8k_row_dot: unsupported weight type");
      BlockIQ4_XS blk;
      std::memcpy(&blk, row + sb * sizeof(BlockIQ4_XS), sizeof(blk));
      for (int j = 0; j < 8; ++j) isum += iq4_xs_block_scale(blk, j) * dot_block_iq4_xs_q8_0(blk, j, part[j]);
      d = f16_to_f32(blk.d);
    }
    float value = (d * a.d) * static_cast<float>(isum);
    if (has_min) value = value - (dmin * a.d) * static_cast<float>(msum);
    sum += value;
  }
  return sum;
}

Status infer_weight_matmul(Node& n) {
  const TensorType& x = in_type(n, 0);
  const TensorType& w = in_type(n, 1);
  if (x.type != ElementType::f32) return err("WeightMatMul input must be f32, got " + x.str());
  if (x.shape.empty()) return err("WeightMatMul input needs rank >= 1");
  if (w.shape.size() != 2) return err("WeightMatMul weights must be [N, K], got " + w.str());
  if (type_info(w.type).is_integer || w.type == ElementType::boolean)
    return err("WeightMatMul weights must be float or quantized, got " + w.str());
  const std::string& aq = n.attr("act_quant").as_string();
  if (aq != "none" && aq != "q8" && aq != "ggml")
    return err("act_quant must be \"none\", \"q8\" or \"ggml\", got \"" + aq + "\"");
  if (aq == "q8" && !weight_matmul_supports_act_q8(w.type))
    return err("act_quant \"q8\" is not implemented for " + std::string(type_name(w.type)) + " weights");
  if (aq == "ggml" && !weight_matmul_supports_act_ggml(w.type))
    return err("act_quant \"ggml\" is not implemented for " + std::string(type_name(w.type)) + " weights");
  auto k = unify(x.shape.back(), w.shape[1], "WeightMatMul contraction dimensions differ");
  if (!k.ok()) return Status::Error(k.message() + " (" + x.str() + " x " + w.str() + "^T)");
  Shape s(x.shape.begin(), x.shape.end() - 1);
  s.push_back(w.shape[0]);
  set_output(n, ElementType::f32, s);
  return Status::Ok();
}

Status eval_weight_matmul(const Node& n, EvalContext&, Tensors in, Outputs& out) {
  const Tensor& x = in[0];
  const Tensor& w = in[1];
  const int64_t K = x.shape().back(), N = w.shape()[0];
  if (w.shape()[1] != K) return err("WeightMatMul contraction dimensions differ at run time");
  const int64_t M = K == 0 ? 0 : x.numel() / K;
  std::vector<int64_t> out_shape(x.shape().begin(), x.shape().end() - 1);
  out_shape.push_back(N);
  Tensor r = Tensor::zeros(ElementType::f32, out_shape);
  float* y = reinterpret_cast<float*>(r.mutable_raw());
  const float* xf = reinterpret_cast<const float*>(x.raw());
  const std::string& aq = n.attr("act_quant").as_string();
  // Float weights meet the same activations in both llama.cpp modes (f16/bf16 rounding).
  const bool q8 = aq == "q8" || aq == "ggml";
  const ElementType wt = w.type();

  if (aq == "ggml" && is_quantized(wt)) {
    // ggml's formats and generic dot products, one weight row at a time (ggml_vec_dot).
    const ElementTypeInfo& wi = type_info(wt);
    const GgmlActFormat fmt = ggml_act_format(wt);
    const int64_t act_block = fmt == GgmlActFormat::q8_K ? kQK_K : kQK;
    if (K % wi.block_elems != 0 || K % act_block != 0)
      return err("WeightMatMul: K = " + std::to_string(K) + " is not a whole number of " + wi.name + " blocks");
    const int64_t row_bytes = K / wi.block_elems * wi.block_bytes;
    std::vector<uint8_t> act(static_cast<size_t>(ggml_act_row_bytes(fmt, K)));
    for (int64_t m = 0; m < M; ++m) {
      ggml_quantize_activations(wt, xf + m * K, act.data(), K);
      for (int64_t j = 0; j < N; ++j) y[m * N + j] = ggml_vec_dot(wt, w.raw() + j * row_bytes, act.data(), K);
    }
    out = {r};
    return Status::Ok();
  }

  if (q8 && is_quantized(wt) && q8_uses_q8_K(wt)) {
    if (K % kQK_K != 0) return err("WeightMatMul: K is not a whole number of " + std::string(type_name(wt)) + " super-blocks");
    const int64_t superblocks = K / kQK_K;
    const int64_t row_bytes = superblocks * type_info(wt).block_bytes;
    std::vector<BlockQ8_K> act(static_cast<size_t>(superblocks));
    for (int64_t m = 0; m < M; ++m) {
      quantize_row_q8_K(xf + m * K, act.data(), K);
      for (int64_t j = 0; j < N; ++j) y[m * N + j] = q8k_row_dot(wt, w.raw() + j * row_bytes, act.data(), superblocks);
    }
    out = {r};
    return Status::Ok();
  }

  if (q8 && is_quantized(wt)) {
    if (K % kQK != 0) return err("q8 activations need K to be a multiple of 32");
    const int64_t blocks = K / kQK;
    const ElementTypeInfo& wi = type_info(wt);
    if (K % wi.block_elems != 0) return err("WeightMatMul: K is not a whole number of weight blocks");
    const int64_t row_bytes = K / wi.block_elems * wi.block_bytes;
    std::vector<BlockQ8_0> act(static_cast<size_t>(blocks));
    for (int64_t m = 0; m < M; ++m) {
      quantize_row_q8_0_activations(xf + m * K, act.data(), K);
      for (int64_t j = 0; j < N; ++j)
        y[m * N + j] = q8_row_dot(wt, w.raw() + j * row_bytes, act.data(), blocks);
    }
    out = {r};
    return Status::Ok();
  }

  // Weights as f32 (dequantized), activations as f32 or rounded like llama.cpp's f16/bf16 path.
  std::vector<float> wf = w.to_f32_vector();
  std::vector<double> row(static_cast<size_t>(K));
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t k = 0; k < K; ++k) {
      float v = xf[m * K + k];
      if (q8 && wt == ElementType::f16) v = f16_to_f32(f32_to_f16(v));
      if (q8 && wt == ElementType::bf16) v = bf16_to_f32(f32_to_bf16(v));
      row[static_cast<size_t>(k)] = v;
    }
    for (int64_t j = 0; j < N; ++j) {
      const float* wr = wf.data() + j * K;
      if ((q8 && wt == ElementType::f16) || (aq == "q8" && wt == ElementType::bf16)) {
        // llama.cpp's f16 dot: f16 x f16 products (exact in f32) accumulated in f32, here in one
        // fused multiply-add chain in k order, as the kernels do in this mode. bf16 in the q8 mode
        // likewise (its products are exact in f32 too); bf16 in the "ggml" mode sums in double
        // like ggml's generic bf16 dot.
        float sum = 0;
        for (int64_t k = 0; k < K; ++k) sum = std::fma(static_cast<float>(row[static_cast<size_t>(k)]), wr[k], sum);
        y[m * N + j] = sum;
        continue;
      }
      double sum = 0;
      for (int64_t k = 0; k < K; ++k) sum += row[static_cast<size_t>(k)] * static_cast<double>(wr[k]);
      y[m * N + j] = static_cast<float>(sum);
    }
  }
  out = {r};
  return Status::Ok();
}

// ---------------------------------------------------------------- RopeTable
// RopeTable(pos i64[], inv_freq f32[H]) {length = [L]} -> (cos, sin) f32[L, H]: the rotary angles
// of positions pos .. pos+L-1, as the primitive graph computes them (Range, Convert to f32,
// Multiply, Cos, Sin, each rounded to f32), so the fused form is bitwise the same.

Status infer_rope_table(Node& n) {
  const TensorType& pos = in_type(n, 0);
  const TensorType& inv = in_type(n, 1);
  if (!pos.shape.empty() || (pos.type != ElementType::i64 && pos.type != ElementType::i32))
    return err("RopeTable position must be an i64 or i32 scalar, got " + pos.str());
  if (inv.type != ElementType::f32 || inv.shape.size() != 1) return err("RopeTable inverse frequencies must be f32[H], got " + inv.str());
  const auto& len = n.attr("length").as_dims();
  if (len.size() != 1) return err("RopeTable length must be one dimension");
  const Shape s = {len[0], inv.shape[0]};
  n.outputs = {TensorType{ElementType::f32, s}, TensorType{ElementType::f32, s}};
  return Status::Ok();
}

Status eval_rope_table(const Node& n, EvalContext& ctx, Tensors in, Outputs& out) {
  INGOT_ASSIGN_OR_RETURN(auto len, eval_dims(n.attr("length").as_dims(), ctx, "RopeTable"));
  if (len[0] < 0) return err("RopeTable length is negative at run time");
  const int64_t L = len[0], H = in[1].numel(), pos = in[0].get_i(0);
  Tensor c = Tensor::zeros(ElementType::f32, {L, H}), s = Tensor::zeros(ElementType::f32, {L, H});
  float* cp = reinterpret_cast<float*>(c.mutable_raw());
  float* sp = reinterpret_cast<float*>(s.mutable_raw());
  for (int64_t t = 0; t < L; ++t) {
    const float p = static_cast<float>(pos + t);
    for (int64_t j = 0; j < H; ++j) {
      const float angle = static_cast<float>(static_cast<double>(p) * in[1].get_f(j));
      cp[t * H + j] = static_cast<float>(std::cos(static_cast<double>(angle)));
      sp[t * H + j] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
  out = {c, s};
  return Status::Ok();
}

// ---------------------------------------------------------------- Embedding
// Embedding(table[V, D], ids[...]) -> f32[..., D]: rows of a table in any float or quantized type,
// dequantized. The fused form of Gather(Convert(table, f32), ids, axis 0): only the looked-up
// rows are converted, never the whole table.

Status infer_embedding(Node& n) {
  const TensorType& table = in_type(n, 0);
  const TensorType& idx = in_type(n, 1);
  if (table.shape.size() != 2) return err("Embedding table must be [vocab, dim], got " + table.str());
  if (type_info(table.type).is_integer || table.type == ElementType::boolean)
    return err("Embedding table must be float or quantized, got " + table.str());
  if (idx.type != ElementType::i64 && idx.type != ElementType::i32) return err("Embedding ids must be i32 or i64, got " + idx.str());
  if (table.shape[1].is_static() && table.shape[1].value() % type_info(table.type).block_elems != 0)
    return err("Embedding rows are not whole blocks of " + std::string(type_name(table.type)));
  Shape s = idx.shape;
  s.push_back(table.shape[1]);
  set_output(n, ElementType::f32, s);
  return Status::Ok();
}

Status eval_embedding(const Node& n, EvalContext&, Tensors in, Outputs& out) {
  const Tensor& table = in[0];
  const Tensor& idx = in[1];
  const int64_t V = table.shape()[0], D = table.shape()[1];
  const ElementTypeInfo& ti = type_info(table.type());
  const int64_t row_bytes = D / ti.block_elems * ti.block_bytes;
  std::vector<int64_t> out_shape = idx.shape();
  out_shape.push_back(D);
  Tensor r = Tensor::zeros(ElementType::f32, out_shape);
  float* y = reinterpret_cast<float*>(r.mutable_raw());
  for (int64_t j = 0; j < idx.numel(); ++j) {
    const int64_t id = idx.get_i(j);
    if (id < 0 || id >= V) return err("token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(V));
    const uint8_t* row = table.raw() + id * row_bytes;
    if (ti.is_quantized) {
      dequantize_row(table.type(), row, y + j * D, D);
    } else {
      for (int64_t k = 0; k < D; ++k) y[j * D + k] = static_cast<float>(table.get_f(id * D + k));
    }
  }
  out = {r};
  return Status::Ok();
}

// ---------------------------------------------------------------- data movement

Status infer_gather(Node& n) {
  const TensorType& data = in_type(n, 0);
  const TensorType& idx = in_type(n, 1);
  if (is_quantized(data.type)) return err("Gather data cannot be quantized (Convert it first), got " + data.str());
  if (idx.type != ElementType::i64 && idx.type != ElementType::i32)
    return err("Gather indices must be i32 or i64, got " + idx.str());
  INGOT_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(n.attr("axis").as_int(), static_cast<int64_t>(data.shape.size())));
  Shape s(data.shape.begin(), data.shape.begin() + axis);
  s.insert(s.end(), idx.shape.begin(), idx.shape.end());
  s.insert(s.end(), data.shape.begin() + axis + 1, data.shape.end());
  set_output(n, data.type, s);
  return Status::Ok();
}

Status eval_gather(const Node& n, EvalContext&, Tensors in, Outputs& out) {
  const Tensor& data = in[0];
  const Tensor& idx = in[1];
  INGOT_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(n.attr("axis").as_int(), data.rank()));
  int64_t outer = numel_of(std::vector<int64_t>(data.shape().begin(), data.shape().begin() + axis));
  int64_t len = data.shape()[axis];
  int64_t inner = numel_of(std::vector<int64_t>(data.shape().begin() + axis + 1, data.shape().end()));
  std::vector<int64_t> out_shape(data.shape().begin(), data.shape().begin() + axis);
  out_shape.insert(out_shape.end(), idx.shape().begin(), idx.shape().end());
  out_shape.insert(out_shape.end(), data.shape().begin() + axis + 1, data.shape().end());
  Tensor r = Tensor::zeros(data.type(), out_shape);
  size_t esize = static_cast<size_t>(type_info(data.type()).block_bytes);
  int64_t ni = idx.numel();
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j = 0; j < ni; ++j) {
      int64_t k = idx.get_i(j);
      if (k < -len || k >= len)
        return err("Gather index " + std::to_string(k) + " is out of range for a dimension of " + std::to_string(len));
      if (k < 0) k += len;
      copy_bytes(r.mutable_raw() + ((o * ni + j) * inner) * esize, data.raw() + ((o * len + k) * inner) * esize,
                  static_cast<size_t>(inner) * esize);
    }
  }
  out = {r};
  return Status::Ok();
}

// Finds the static c with p * c == t, for linear expressions.
std::optional<Dim> divide_dims(const Dim& t, const Dim& p) {
  if (t.is_unknown() || p.is_unknown()) return Dim::unknown();
  if (p.is_static()) {
    if (p.value() == 0) return std::nullopt;
    return t.divide_exact(p.value());
  }
  const auto& [name, coef] = p.terms()[0];
  for (auto& [tn, tc] : t.terms()) {
    if (tn != name) continue;
    if (tc % coef != 0) return std::nullopt;
    Dim c(tc / coef);
    if (p * c == t) return c;
  }
  return std::nullopt;
}

Status infer_reshape(Node& n) {
  const TensorType& x = in_type(n, 0);
  if (is_quantized(x.type)) return err("Reshape of a quantized tensor");
  const Shape& target = n.attr("shape").as_dims();
  int infer_at = -1;
  Dim known(1);
  for (size_t i = 0; i < target.size(); ++i) {
    const Dim& d = target[i];
    if (d.is_static() && d.value() == -1) {
      if (infer_at >= 0) return err("Reshape shape has more than one -1: " + shape_str(target));
      infer_at = static_cast<int>(i);
    } else if (d.is_static() && d.value() < 0) {
      return err("Reshape shape has a negative dimension: " + shape_str(target));
    } else {
      known = known * d;
    }
  }
  Dim total = num_elements(x.shape);
  Shape s = target;
  if (infer_at >= 0) {
    auto q = divide_dims(total, known);
    if (!q) return err("cannot reshape " + x.str() + " to " + shape_str(target) + ": " + total.str() +
                       " elements do not divide by " + known.str());
    s[static_cast<size_t>(infer_at)] = *q;
  } else if (!total.is_unknown() && !known.is_unknown() && total != known) {
    return err("cannot reshape " + x.str() + " to " + shape_str(target) + ": element counts " + total.str() +
               " and " + known.str() + " differ");
  }
  set_output(n, x.type, s);
  return Status::Ok();
}

Status eval_reshape(const Node& n, EvalContext& ctx, Tensors in, Outputs& out) {
  INGOT_ASSIGN_OR_RETURN(auto dims, eval_dims(n.attr("shape").as_dims(), ctx, "Reshape"));
  int64_t known = 1;
  int at = -1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == -1) at = static_cast<int>(i);
    else known *= dims[i];
  }
  if (at >= 0) {
    if (known == 0 || in[0].numel() % known != 0)
      return err("Reshape: " + std::to_string(in[0].numel()) + " elements do not fit " + dims_str(dims));
    dims[static_cast<size_t>(at)] = in[0].numel() / known;
  }
  if (numel_of(dims) != in[0].numel())
    return err("Reshape: " + std::to_string(in[0].numel()) + " elements do not fit " + dims_str(dims));
  // Same bytes, new shape: share the buffer.
  INGOT_ASSIGN_OR_RETURN(Tensor r, Tensor::from_buffer(in[0].type(), dims, in[0].buffer()));
  out = {r};
  return Status::Ok();
}

Status check_perm(const std::vector<int64_t>& perm, size_t rank) {
  if (perm.size() != rank) return err("Transpose perm has " + std::to_string(perm.size()) + " entries for rank " + std::to_string(rank));
  std::vector<bool> seen(rank, false);
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(rank) || seen[static_cast<size_t>(p)])
      return err("Transpose perm " + Attribute::Ints(perm).str() + " is not a permutation");
    seen[static_cast<size_t>(p)] = true;
  }
  return Status::Ok();
}

Status infer_transpose(Node& n) {
  const TensorType& x = in_type(n, 0);
  if (is_quantized(x.type)) return err("Transpose of a quantized tensor");
  const auto& perm = n.attr("perm").as_ints();
  INGOT_RETURN_IF_ERROR(check_perm(perm, x.shape.size()));
  Shape s;
  for (int64_t p : perm) s.push_back(x.shape[static_cast<size_t>(p)]);
  set_output(n, x.type, s);
  return Status::Ok();
}

Status eval_transpose(const Node& n, EvalContext&, Tensors in, Outputs& out) {
  const Tensor& x = in[0];
  const auto& perm = n.attr("perm").as_ints();
  INGOT_RETURN_IF_ERROR(check_perm(perm, static_cast<size_t>(x.rank())));
  std::vector<int64_t> out_shape;
  for (int64_t p : perm) out_shape.push_back(x.shape()[p]);
  auto xs = strides_of(x.shape());
  std::vector<int64_t> strides;
  for (int64_t p : perm) strides.push_back(xs[p]);
  out = {copy_strided(x, out_shape, 0, strides)};
  return Status::Ok();
}

Status infer_concat(Node& n) {
  const TensorType& first = in_type(n, 0);
  if (is_quantized(first.type)) return err("Concat of quantized tensors");
  int64_t rank = static_cast<int64_t>(first.shape.size());
  INGOT_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(n.attr("axis").as_int(), rank));
  Shape s = first.shape;
  for (size_t i = 1; i < n.inputs.size(); ++i) {
    const TensorType& t = in_type(n, i);
    if (t.type != first.type || static_cast<int64_t>(t.shape.size()) != rank)
      return err("Concat inputs must share element type and rank: " + first.str() + " and " + t.str());
    for (int64_t d = 0; d < rank; ++d) {
      if (d == axis) s[d] = s[d] + t.shape[d];
      else {
        auto u = unify(s[d], t.shape[d], "Concat inputs differ in dimension " + std::to_string(d));
        if (!u.ok()) return u.status();
        s[d] = *u;
      }
    }
  }
  set_output(n, first.type, s);
  return Status::Ok();
}

Status eval_concat(const Node& n, EvalContext&, Tensors in, Outputs& out) {
  int64_t rank = in[0].rank();
  INGOT_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(n.attr("axis").as_int(), rank));
  std::vector<int64_t> shape = in[0].shape();
  shape[axis] = 0;
  for (auto& t : in) {
    for (int64_t d = 0; d < rank; ++d)
      if (d != axis && t.shape()[d] != in[0].shape()[d])
        return err("Concat inputs differ at run time: " + dims_str(in[0].shape()) + " and " + dims_str(t.shape()));
    shape[axis] += t.shape()[axis];
  }
  Tensor r = Tensor::zeros(in[0].type(), shape);
  size_t esize = static_cast<size_t>(type_info(in[0].type()).block_bytes);
  int64_t outer = numel_of(std::vector<int64_t>(shape.begin(), shape.begin() + axis));
  int64_t inner = numel_of(std::vector<int64_t>(shape.begin() + axis + 1, shape.end()));
  int64_t offset = 0;
  for (auto& t : in) {
    int64_t len = t.shape()[axis];
    for (int64_t o = 0; o < outer; ++o)
      copy_bytes(r.mutable_raw() + ((o * shape[axis] + offset) * inner) * esize,
                  t.raw() + (o * len * inner) * esize, static_cast<size_t>(len * inner) * esize);
    offset += len;
  }
  out = {r};
  return Status::Ok();
}

// Python slice semantics on one dimension of concrete length `len`.
struct SliceRange { int64_t start, count, step; };
SliceRange slice_range(int64_t begin, int64_t end, int64_t step, int64_t len) {
  auto clamp = [&](int64_t v, int64_t lo, int64_t hi) { return std::min(std::max(v, lo), hi); };
  int64_t s, e;
  if (step > 0) {
    s = begin < 0 ? clamp(begin + len, 0, len) : clamp(begin, 0, len);
    e = end < 0 ? clamp(end + len, 0, len) : clamp(end, 0, len);
    return {s, e > s ? (e - s + step - 1) / step : 0, step};
  }
  s = begin < 0 ? clamp(begin + len, -1, len - 1) : clamp(begin, -1, len - 1);
  e = end < 0 ? clamp(end + len, -1, len - 1) : clamp(end, -1, len - 1);
  return {s, s > e ? (s - e + (-step) - 1) / (-step) : 0, step};
}

Status check_slice_attrs(const Node& n, int64_t rank, std::vector<int64_t>* axes_out) {
  const auto& b = n.attr("begin").as_ints();
  const auto& e = n.attr("end").as_ints();
  const auto& st = n.attr("step").as_ints();
  const auto& ax = n.attr("axes").as_ints();
  if (b.size() != ax.size() || e.size() != ax.size() || (!st.empty() && st.size() != ax.size()))
    return err("Slice begin, end, step and axes must have one entry per axis");
  std::vector<int64_t> axes;
  for (size_t i = 0; i < ax.size(); ++i) {
    INGOT_ASSIGN_OR_RETURN(int64_t a, normalize_axis(ax[i], rank));
    if (std::find(axes.begin(), axes.end(), a) != axes.end()) return err("Slice axis " + std::to_string(ax[i]) + " repeats");
    if (!st.empty() && st[i] == 0) return err("Slice step must not be 0");
    axes.push_back(a);
  }
  *axes_out = axes;
  return Status::Ok();
}

Status infer_slice(Node& n) {
  const TensorType& x = in_type(n, 0);
  if (is_quantized(x.type)) return err("Slice of a quantized tensor");
  std::vector<int64_t> axes;
  INGOT_RETURN_IF_ERROR(check_slice_attrs(n, static_cast<int64_t>(x.shape.size()), &axes));
  const auto& b = n.attr("begin").as_ints();
  const auto& e = n.attr("end").as_ints();
  const auto& st = n.attr("step").as_ints();
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  Shape s = x.shape;
  for (size_t i = 0; i < axes.size(); ++i) {
    const Dim& d = x.shape[axes[i]];
    int64_t step = st.empty() ? 1 : st[i];
    if (d.is_static()) {
      s[axes[i]] = Dim(slice_range(b[i], e[i], step, d.value()).count);
    } else if (d.is_unknown() || step != 1) {
      s[axes[i]] = Dim::unknown();
    } else if (b[i] >= 0 && e[i] == kMax) {
      s[axes[i]] = d - Dim(b[i]);  // assumes len >= begin; checked at run time
    } else if (b[i] < 0 && e[i] == kMax) {
      s[axes[i]] = Dim(-b[i]);  // the last -begin elements; assumes len >= -begin
    } else if ((b[i] >= 0) == (e[i] >= 0)) {
      s[axes[i]] = Dim(std::max<int64_t>(e[i] - b[i], 0));  // assumes the range lies inside
    } else if (b[i] >= 0 && e[i] < 0) {
      s[axes[i]] = d + Dim(e[i]) - Dim(b[i]);
    } else {
      s[axes[i]] = Dim::unknown();
    }
  }
  set_output(n, x.type, s);
  return Status::Ok();
}

Status eval_slice(const Node& n, EvalContext&, Tensors in, Outputs& out) {
  const Tensor& x = in[0];
  std::vector<int64_t> axes;
  INGOT_RETURN_IF_ERROR(check_slice_attrs(n, x.rank(), &axes));
  const auto& b = n.attr("begin").as_ints();
  const auto& e = n.attr("end").as_ints();
  const auto& st = n.attr("step").as_ints();
  std::vector<SliceRange> ranges;
  for (int64_t d = 0; d < x.rank(); ++d) ranges.push_back({0, x.shape()[d], 1});
  for (size_t i = 0; i < axes.size(); ++i)
    ranges[axes[i]] = slice_range(b[i], e[i], st.empty() ? 1 : st[i], x.shape()[axes[i]]);
  std::vector<int64_t> out_shape;
  for (auto& r : ranges) out_shape.push_back(r.count);
  auto xs = strides_of(x.shape());
  int64_t base = 0;
  std::vector<int64_t> strides;
  for (size_t d = 0; d < ranges.size(); ++d) {
    base += ranges[d].start * xs[d];
    strides.push_back(ranges[d].step * xs[d]);
  }
  out = {copy_strided(x, out_shape, base, strides)};
  return Status::Ok();
}

Status infer_broadcast(Node& n) {
  const TensorType& x = in_type(n, 0);
  if (is_quantized(x.type)) return err("Broadcast of a quantized tensor");
  const Shape& target = n.attr("shape").as_dims();
  if (target.size() < x.shape.size())
    return err("Broadcast target " + shape_str(target) + " has lower rank than " + x.str());
  INGOT_ASSIGN_OR_RETURN(Shape s, broadcast_shapes(x.shape, target));
  // The output is the target shape; the input may only stretch its 1-dims.
  for (size_t i = 0; i < target.size(); ++i)
    if (target[i].is_static() && s[i].is_static() && s[i] != target[i])
      return err("cannot broadcast " + x.str() + " to " + shape_str(target));
  set_output(n, x.type, target);
  return Status::Ok();
}

Status eval_broadcast(const Node& n, EvalContext& ctx, Tensors in, Outputs& out) {
  INGOT_ASSIGN_OR_RETURN(auto target, eval_dims(n.attr("shape").as_dims(), ctx, "Broadcast"));
  INGOT_ASSIGN_OR_RETURN(auto shape, broadcast_concrete({in[0].shape(), target}));
  if (shape != target) return err("cannot broadcast " + dims_str(in[0].shape()) + " to " + dims_str(target));
  Tensor r = Tensor::zeros(in[0].type(), shape);
  size_t esize = static_cast<size_t>(type_info(in[0].type()).block_bytes);
  for_each_broadcast(shape, {in[0].shape()}, [&](int64_t o, const std::vector<int64_t>& k) {
    copy_bytes(r.mutable_raw() + o * esize, in[0].raw() + k[0] * esize, esize);
  });
  out = {r};
  return Status::Ok();
}

Status infer_select(Node& n) {
  if (in_type(n, 0).type != ElementType::boolean) return err("Select condition must be bool, got " + in_type(n, 0).str());
  INGOT_RETURN_IF_ERROR(expect_same_type(n, 1, 2));
  if (is_quantized(in_type(n, 1).type)) return err("Select of quantized values");
  INGOT_ASSIGN_OR_RETURN(Shape s, broadcast_shapes(in_type(n, 0).shape, in_type(n, 1).shape));
  INGOT_ASSIGN_OR_RETURN(s, broadcast_shapes(s, in_type(n, 2).shape));
  set_output(n, in_type(n, 1).type, s);
  return Status::Ok();
}

Status eval_select(const Node&, EvalContext&, Tensors in, Outputs& out) {
  std::vector<std::vector<int64_t>> shapes = {in[0].shape(), in[1].shape(), in[2].shape()};
  INGOT_ASSIGN_OR_RETURN(auto shape, broadcast_concrete(shapes));
  Tensor r = Tensor::zeros(in[1].type(), shape);
  size_t esize = static_cast<size_t>(type_info(in[1].type()).block_bytes);
  for_each_broadcast(shape, shapes, [&](int64_t o, const std::vector<int64_t>& k) {
    const Tensor& src = in[0].get_i(k[0]) ? in[1] : in[2];
    copy_bytes(r.mutable_raw() + o * esize, src.raw() + (in[0].get_i(k[0]) ? k[1] : k[2]) * esize, esize);
  });
  out = {r};
  return Status::Ok();
}

Status infer_range(Node& n) {
  const TensorType& start = in_type(n, 0);
  if (!start.shape.empty()) return err("Range start must be a scalar, got " + start.str());
  if (!is_numeric(start.type)) return err("Range start must be a number, got " + start.str());
  const Shape& len = n.attr("length").as_dims();
  if (len.size() != 1) return err("Range length must be one dimension, got " + shape_str(len));
  if (len[0].is_static() && len[0].value() < 0) return err("Range length must not be negative");
  set_output(n, start.type, len);
  return Status::Ok();
}

Status eval_range(const Node& n, EvalContext& ctx, Tensors in, Outputs& out) {
  INGOT_ASSIGN_OR_RETURN(auto len, eval_dims(n.attr("length").as_dims(), ctx, "Range"));
  if (len[0] < 0) return err("Range length is negative at run time");
  double step = n.attr("step").as_float();
  Tensor r = Tensor::zeros(in[0].type(), len);
  bool ints = !is_float(in[0].type());
  for (int64_t i = 0; i < len[0]; ++i) {
    if (ints) r.set_i(i, in[0].get_i(0) + i * static_cast<int64_t>(step));
    else r.set_f(i, in[0].get_f(0) + static_cast<double>(i) * step);
  }
  out = {r};
  return Status::Ok();
}

Status infer_range_checked(Node& n) {
  INGOT_RETURN_IF_ERROR(infer_range(n));
  double step = n.attr("step").as_float();
  if (!type_info(in_type(n, 0).type).is_float && step != std::floor(step))
    return err("an integer Range needs a whole step, got " + format_double(step));
  return Status::Ok();
}

// ---------------------------------------------------------------- fused ops
// What the fusion passes produce. Each reference kernel computes what the primitive subgraph it
// replaces computes (RMSNorm, RoPE, attention with its KV cache, SwiGLU, matmul epilogues), so a
// fused graph and its unfused original agree to within f32 rounding.

Status expect_f32(const Node& n, size_t i) {
  if (in_type(n, i).type != ElementType::f32)
    return err("input " + std::to_string(i) + " must be f32, got " + in_type(n, i).str());
  return Status::Ok();
}

// RMSNorm(x[..., D], w[D]) {eps}: x / sqrt(mean(x^2) + eps) * w.
Status infer_rms_norm(Node& n) {
  INGOT_RETURN_IF_ERROR(expect_f32(n, 0));
  INGOT_RETURN_IF_ERROR(expect_f32(n, 1));
  const TensorType& x = in_type(n, 0);
  const TensorType& w = in_type(n, 1);
  if (x.shape.empty() || w.shape.size() != 1) return err("RMSNorm needs x[..., D] and w[D], got " + x.str() + " and " + w.str());
  INGOT_RETURN_IF_ERROR(unify(x.shape.back(), w.shape[0], "RMSNorm weight length differs from the last dimension").status());
  if (!(n.attr("eps").as_float() > 0)) return err("RMSNorm eps must be positive");
  n.outputs = {x};
  return Status::Ok();
}

Status eval_rms_norm(const Node& n, EvalContext&, Tensors in, Outputs& out) {
  const Tensor& x = in[0];
  const int64_t D = x.shape().back();
  if (in[1].numel() != D) return err("RMSNorm weight length differs at run time");
  const double eps = n.attr("eps").as_float();
  Tensor r = Tensor::zeros(ElementType::f32, x.shape());
  const int64_t rows = D == 0 ? 0 : x.numel() / D;
  // llama.cpp's rounding order, which the kernels reproduce exactly: f32 squares summed in double,
  // the mean and the scale in f32, then x * scale and * w, each rounded to f32.
  const float eps_f = static_cast<float>(eps);
  for (int64_t row = 0; row < rows; ++row) {
    double ss = 0;
    for (int64_t i = 0; i < D; ++i) {
      const float v = static_cast<float>(x.get_f(row * D + i));
      ss += static_cast<double>(v * v);
    }
    const float mean = static_cast<float>(ss / static_cast<double>(D));
    const float scale = 1.0f / std::sqrt(mean + eps_f);
    for (int64_t i = 0; i < D; ++i) {
      const float scaled = static_cast<float>(x.get_f(row * D + i)) * scale;
      r.set_f(row * D + i, scaled * static_cast<float>(in[1].get_f(i)));
    }
  }
  out = {r};
  return Status::Ok();
}

Status check_rope_layout(const std::string& layout) {
  if (layout != "interleaved" && layout != "rotate_half")
    return err("RoPE layout must be \"interleaved\" or \"rotate_half\", got \"" + layout + "\"");
  return Status::Ok();
}

// Rotates `heads` heads of `hd` values at y (one row, i.e. one token) by the angles whose cosines
// and sines are c[0..hd/2) and s[0..hd/2). Values are read and written through the f32 tensor.
void rope_row(Tensor& y, int64_t base, int64_t heads, int64_t hd, const Tensor& cos, const Tensor& sin, int64_t row,
              bool interleaved) {
  const int64_t half = hd / 2;
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t o = base + h * hd;
    for (int64_t i = 0; i < half; ++i) {
      // f32 arithmetic, every product and sum rounded (no fused multiply-add), as llama.cpp's
      // rope and the kernels' RoPE epilogue compute it.
      const float c = static_cast<float>(cos.get_f(row * half + i)), s = static_cast<float>(sin.get_f(row * half + i));
      const int64_t a = interleaved ? o + 2 * i : o + i;
      const int64_t b = interleaved ? o + 2 * i + 1 : o + i + half;
      const float x0 = static_cast<float>(y.get_f(a)), x1 = static_cast<float>(y.get_f(b));
      const float x0c = x0 * c, x1s = x1 * s, x0s = x0 * s, x1c = x1 * c;
      y.set_f(a, x0c - x1s);
      y.set_f(b, x0s + x1c);
    }
  }
}

Status check_rope_tables(const TensorType& cos, const TensorType& sin, const Dim& rows, int64_t hd) {
  if (cos != sin) return err("RoPE cos and sin tables differ in type: " + cos.str() + " vs " + sin.str());
  if (cos.type != ElementType::f32 || cos.shape.size() != 2) return err("RoPE tables must be f32[tokens, head_dim/2], got " + cos.str());
  INGOT_RETURN_IF_ERROR(unify(cos.shape[0], rows, "RoPE tables have a different number of rows").status());
  INGOT_RETURN_IF_ERROR(unify(cos.shape[1], Dim(hd / 2), "RoPE tables must have head_dim/2 columns").status());
  return Status::Ok();
}

// RoPE(x[T, H, D], cos[T, D/2], sin[T, D/2]) {layout}.
Status infer_rope(Node& n) {
  INGOT_RETURN_IF_ERROR(expect_f32(n, 0));
  INGOT_RETURN_IF_ERROR(check_rope_layout(n.attr("layout").as_string()));
  const TensorType& x = in_type(n, 0);
  if (x.shape.size() != 3 || !x.shape[2].is_static() || x.shape[2].value() % 2 != 0)
    return err("RoPE needs x[tokens, heads, head_dim] with a static, even head_dim, got " + x.str());
  INGOT_RETURN_IF_ERROR(check_rope_tables(in_type(n, 1), in_type(n, 2), x.shape[0], x.shape[2].value()));
  n.outputs = {x};
  return Status::Ok();
}

Status eval_rope(const Node& n, EvalContext&, Tensors in, Outputs& out) {
  const Tensor& x = in[0];
  const int64_t T = x.shape()[0], H = x.shape()[1], D = x.shape()[2];
  if (in[1].shape() != std::vector<int64_t>{T, D / 2} || in[2].shape() != in[1].shape())
    return err("RoPE tables do not match the input at run time");
  Tensor y = Tensor::zeros(ElementType::f32, x.shape());
  copy_bytes(y.mutable_raw(), x.raw(), x.nbytes());
  const bool interleaved = n.attr("layout").as_string() == "interleaved";
  for (int64_t t = 0; t < T; ++t) rope_row(y, t * H * D, H, D, in[1], in[2], t, interleaved);
  out = {y};
  return Status::Ok();
}

// SwiGLU(gate, up) = silu(gate) * up; SwiGLU(x[..., 2F]) splits x into gate and up halves.
Status infer_swiglu(Node& n) {
  INGOT_RETURN_IF_ERROR(expect_f32(n, 0));
  const TensorType& x = in_type(n, 0);
  if (x.shape.empty()) return err("SwiGLU needs rank >= 1");
  if (n.inputs.size() == 2) {
    INGOT_RETURN_IF_ERROR(expect_f32(n, 1));
    if (in_type(n, 1) != x) return err("SwiGLU gate and up differ: " + x.str() + " vs " + in_type(n, 1).str());
    n.outputs = {x};
    return Status::Ok();
  }
  auto half = x.shape.back().divide_exact(2);
  if (!half) return err("SwiGLU of one input needs an even last dimension, got " + x.str());
  Shape s = x.shape;
  s.back() = *half;
  set_output(n, ElementType::f32, s);
  return Status::Ok();
}

// y[row, i] = silu(gate) * up, with gate/up either separate tensors or the two halves of one row.
Tensor swiglu(const Tensor& gate_or_both, const Tensor* up) {
  std::vector<int64_t> shape = gate_or_both.shape();
  const int64_t F = up ? shape.back() : shape.back() / 2;
  shape.back() = F;
  Tensor r = Tensor::zeros(ElementType::f32, shape);
  const int64_t rows = F == 0 ? 0 : r.numel() / F;
  for (int64_t row = 0; row < rows; ++row)
    for (int64_t i = 0; i < F; ++i) {
      // f32 throughout with the specified exp (ir/float_spec.h), as the kernels' epilogue: the
      // sigmoid, g * sigmoid and the product with up each round to f32.
      const float g = static_cast<float>(up ? gate_or_both.get_f(row * F + i) : gate_or_both.get_f(row * 2 * F + i));
      const float u = static_cast<float>(up ? up->get_f(row * F + i) : gate_or_both.get_f(row * 2 * F + F + i));
      const float act = g * float_spec::sigmoid(g);
      r.set_f(row * F + i, act * u);
    }
  return r;
}

Status eval_swiglu(const Node& n, EvalContext&, Tensors in, Outputs& out) {
  if (in.size() == 2 && in[0].shape() != in[1].shape()) return err("SwiGLU gate and up differ at run time");
  if (in.size() == 1 && in[0].shape().back() % 2 != 0) return err("SwiGLU input has an odd last dimension");
  out = {swiglu(in[0], in.size() == 2 ? &in[1] : nullptr)};
  return Status::Ok();
}

// GeGLU(gate, up) = Gelu(gate) * up (Gemma's feed-forward, llama.cpp's ggml_geglu): each step
// rounded to f32, exactly its decomposition. approximation "tanh" (the default), or "ggml_f16":
// llama.cpp's table (float_spec::gelu_ggml_f16), so that Gemma's outputs are llama.cpp's.
Status infer_geglu(Node& n) {
  const std::string& a = n.attr("approximation").as_string();
  if (a != "tanh" && a != "ggml_f16") return err("GeGLU approximation must be \"tanh\" or \"ggml_f16\", got \"" + a + "\"");
  INGOT_RETURN_IF_ERROR(expect_f32(n, 0));
  INGOT_RETURN_IF_ERROR(expect_f32(n, 1));
  if (in_type(n, 1) != in_type(n, 0)) return err("GeGLU gate and up differ: " + in_type(n, 0).str() + " vs " + in_type(n, 1).str());
  n.outputs = {in_type(n, 0)};
  return Status::Ok();
}

Status eval_geglu(const Node& n, EvalContext&, Tensors in, Outputs& out) {
  if (in[0].shape() != in[1].shape()) return err("GeGLU gate and up differ at run time");
  Tensor r = Tensor::zeros(ElementType::f32, in[0].shape());
  const double k = std::sqrt(2.0 / M_PI);
  const bool ggml = n.attr("approximation").as_string() == "ggml_f16";
  for (int64_t i = 0; i < r.numel(); ++i) {
    const double g = in[0].get_f(i);
    const float gelu = ggml ? float_spec::gelu_ggml_f16(static_cast<float>(g))
                            : static_cast<float>(0.5 * g * (1.0 + std::tanh(k * (g + 0.044715 * g * g * g))));  // Gelu's
    r.set_f(i, static_cast<double>(gelu) * in[1].get_f(i));                                                // Multiply's
  }
  out = {r};
  return Status::Ok();
}

StatusOr<std::vector<Value>> decompose_geglu(const Node& n, GraphBuilder& b, const std::vector<Value>& in) {
  Value gelu = b.op(Op::Gelu, {in[0]}, {{"approximation", n.attr("approximation")}});
  Value y = b.mul(gelu, in[1]);
  INGOT_RETURN_IF_ERROR(b.status());
  return std::vector<Value>{y};
}

// FusedMatMul(x, w, [bias], [cos, sin], [residual]): WeightMatMul, then in order: + bias;
// RoPE on the first rope_q_heads + rope_k_heads heads of head_dim values of each row (rows are
// tokens); SwiGLU over the two halves; + residual. Which optional inputs exist follows the
// attributes, in that order.
struct FusedMatMulInputs {
  int bias = -1, cos = -1, sin = -1, residual = -1, count = 2;
};

FusedMatMulInputs fused_inputs(const Node& n) {
  FusedMatMulInputs f;
  if (n.attr("has_bias").as_bool()) f.bias = f.count++;
  if (n.attr("rope").as_string() != "none") {
    f.cos = f.count++;
    f.sin = f.count++;
  }
  if (n.attr("has_residual").as_bool()) f.residual = f.count++;
  return f;
}

Status infer_fused_matmul(Node& n) {
  const FusedMatMulInputs f = fused_inputs(n);
  if (static_cast<int>(n.inputs.size()) != f.count)
    return err("FusedMatMul with these attributes takes " + std::to_string(f.count) + " inputs, got " +
               std::to_string(n.inputs.size()));
  INGOT_RETURN_IF_ERROR(infer_weight_matmul(n));
  Shape s = n.outputs[0].shape;
  const Dim N = s.back();
  if (f.bias >= 0) {
    const TensorType& b = in_type(n, static_cast<size_t>(f.bias));
    if (b.type != ElementType::f32 || b.shape.size() != 1) return err("FusedMatMul bias must be f32[N], got " + b.str());
    INGOT_RETURN_IF_ERROR(unify(b.shape[0], N, "FusedMatMul bias length differs from N").status());
  }
  const std::string rope = n.attr("rope").as_string();
  if (rope != "none") {
    INGOT_RETURN_IF_ERROR(check_rope_layout(rope));
    const int64_t hd = n.attr("head_dim").as_int(), q = n.attr("rope_q_heads").as_int(), k = n.attr("rope_k_heads").as_int();
    if (hd <= 0 || hd % 2 != 0 || q < 0 || k < 0) return err("FusedMatMul RoPE needs an even head_dim and head counts >= 0");
    if (s.size() != 2) return err("FusedMatMul RoPE needs x[tokens, K]");
    if (N.is_static() && (q + k) * hd > N.value()) return err("FusedMatMul RoPE heads exceed the output width");
    INGOT_RETURN_IF_ERROR(check_rope_tables(in_type(n, static_cast<size_t>(f.cos)), in_type(n, static_cast<size_t>(f.sin)), s[0], hd));
  }
  const std::string act = n.attr("activation").as_string();
  if (act != "none" && act != "swiglu") return err("FusedMatMul activation must be \"none\" or \"swiglu\", got \"" + act + "\"");
  if (act == "swiglu") {
    auto half = N.divide_exact(2);
    if (!half) return err("FusedMatMul SwiGLU needs an even N, got " + N.str());
    s.back() = *half;
  }
  if (f.residual >= 0 && in_type(n, static_cast<size_t>(f.residual)) != TensorType{ElementType::f32, s})
    return err("FusedMatMul residual must be " + TensorType{ElementType::f32, s}.str() + ", got " +
               in_type(n, static_cast<size_t>(f.residual)).str());
  set_output(n, ElementType::f32, s);
  return Status::Ok();
}

Status eval_fused_matmul(const Node& n, EvalContext& ctx, Tensors in, Outputs& out) {
  const FusedMatMulInputs f = fused_inputs(n);
  Outputs mm;
  INGOT_RETURN_IF_ERROR(eval_weight_matmul(n, ctx, in.subspan(0, 2), mm));
  Tensor y = mm[0];
  const int64_t N = y.shape().back(), rows = N == 0 ? 0 : y.numel() / N;
  if (f.bias >= 0) {
    const Tensor& b = in[static_cast<size_t>(f.bias)];
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < N; ++j) y.set_f(r * N + j, y.get_f(r * N + j) + b.get_f(j));
  }
  const std::string rope = n.attr("rope").as_string();
  if (rope != "none") {
    const int64_t hd = n.attr("head_dim").as_int();
    const int64_t heads = n.attr("rope_q_heads").as_int() + n.attr("rope_k_heads").as_int();
    const Tensor& cos = in[static_cast<size_t>(f.cos)];
    if (cos.shape() != std::vector<int64_t>{rows, hd / 2}) return err("FusedMatMul RoPE tables do not match at run time");
    for (int64_t r = 0; r < rows; ++r) rope_row(y, r * N, heads, hd, cos, in[static_cast<size_t>(f.sin)], r, rope == "interleaved");
  }
  if (n.attr("activation").as_string() == "swiglu") y = swiglu(y, nullptr);
  if (f.residual >= 0) {
    const Tensor& res = in[static_cast<size_t>(f.residual)];
    if (res.shape() != y.shape()) return err("FusedMatMul residual shape differs at run time");
    for (int64_t i = 0; i < y.numel(); ++i) y.set_f(i, y.get_f(i) + res.get_f(i));
  }
  out = {y};
  return Status::Ok();
}

// Attention(q[T, H, D], k[T, KV, D], v[T, KV, D]) {k_variable, v_variable, scale}: the stateful
// scaled-dot-product attention that owns its KV cache. It reads the cached keys and values
// [past, KV, D] of its two state variables, appends the new ones, writes them back (like
// ReadValue -> Concat -> Assign), and attends causally: query t (at position past + t) sees keys
// 0 .. past + t; with window W > 0 only the last W of them, past + t - W + 1 .. past + t (sliding-
// window layers, llama.cpp's standard SWA). With softcap c > 0 each scaled score s becomes
// c * tanh(s / c) (float_spec::softcap). Query head h uses KV head h / (H / KV).
// Packed form: Attention(qkv[T, (H + 2*KV) * D]) {q_heads, kv_heads, head_dim, ...}: q, k and v
// side by side in each row (what a merged QKV projection produces); the output is [T, H * D].
struct AttentionDims {
  int64_t H = 0, KV = 0, D = 0;
};

StatusOr<AttentionDims> packed_attention_dims(const Node& n) {
  AttentionDims a{n.attr("q_heads").as_int(), n.attr("kv_heads").as_int(), n.attr("head_dim").as_int()};
  if (a.H <= 0 || a.KV <= 0 || a.D <= 0 || a.H % a.KV != 0)
    return err("packed Attention needs q_heads, kv_heads (dividing q_heads) and head_dim > 0");
  return a;
}

Status infer_attention(Node& n) {
  for (size_t i = 0; i < n.inputs.size(); ++i) INGOT_RETURN_IF_ERROR(expect_f32(n, i));
  if (n.attr("k_variable").as_string().empty() || n.attr("v_variable").as_string().empty())
    return err("Attention needs k_variable and v_variable");
  if (n.attr("window").as_int() < 0) return err("Attention window must not be negative");
  if (!(n.attr("softcap").as_float() >= 0)) return err("Attention softcap must not be negative");
  if (n.inputs.size() == 1) {
    INGOT_ASSIGN_OR_RETURN(AttentionDims a, packed_attention_dims(n));
    const TensorType& qkv = in_type(n, 0);
    if (qkv.shape.size() != 2) return err("packed Attention needs qkv[T, (H + 2*KV) * D], got " + qkv.str());
    INGOT_RETURN_IF_ERROR(unify(qkv.shape[1], Dim((a.H + 2 * a.KV) * a.D), "packed Attention row width").status());
    set_output(n, ElementType::f32, {qkv.shape[0], a.H * a.D});
    return Status::Ok();
  }
  if (n.inputs.size() != 3) return err("Attention takes q, k, v or one packed qkv input");
  const TensorType& q = in_type(n, 0);
  const TensorType& k = in_type(n, 1);
  const TensorType& v = in_type(n, 2);
  if (q.shape.size() != 3 || k.shape.size() != 3 || v.shape.size() != 3)
    return err("Attention needs q[T, H, D], k[T, KV, D], v[T, KV, D], got " + q.str() + ", " + k.str() + ", " + v.str());
  if (k != v) return err("Attention k and v differ: " + k.str() + " vs " + v.str());
  INGOT_RETURN_IF_ERROR(unify(q.shape[0], k.shape[0], "Attention q and k differ in tokens").status());
  INGOT_RETURN_IF_ERROR(unify(q.shape[2], k.shape[2], "Attention q and k differ in head_dim").status());
  if (q.shape[1].is_static() && k.shape[1].is_static() &&
      (k.shape[1].value() == 0 || q.shape[1].value() % k.shape[1].value() != 0))
    return err("Attention query heads must be a multiple of KV heads, got " + q.shape[1].str() + " and " + k.shape[1].str());
  n.outputs = {q};
  return Status::Ok();
}

// Splits a packed qkv[T, (H + 2KV) * D] into q[T, H, D], k[T, KV, D], v[T, KV, D].
std::array<Tensor, 3> unpack_qkv(const Tensor& qkv, const AttentionDims& a) {
  const int64_t T = qkv.shape()[0], W = qkv.shape()[1];
  std::array<Tensor, 3> r = {Tensor::zeros(ElementType::f32, {T, a.H, a.D}), Tensor::zeros(ElementType::f32, {T, a.KV, a.D}),
                             Tensor::zeros(ElementType::f32, {T, a.KV, a.D})};
  const int64_t widths[3] = {a.H * a.D, a.KV * a.D, a.KV * a.D};
  for (int64_t t = 0; t < T; ++t) {
    int64_t col = 0;
    for (int p = 0; p < 3; ++p) {
      copy_bytes(r[p].mutable_raw() + t * widths[p] * 4, qkv.raw() + (t * W + col) * 4, static_cast<size_t>(widths[p]) * 4);
      col += widths[p];
    }
  }
  return r;
}

// One query row against `visible` keys (rows `stride` floats apart), in f32 with the order the
// attention kernel uses, so that it matches bit for bit: keys in chunks of kAttentionKeyChunk; per
// chunk the scores (dot8, times scale), the new running maximum m, the chunk's exps summed lane
// by lane over its 8-key groups then across the lanes in order, the running sum l = l * alpha +
// that (one fused multiply-add, alpha = e^(m_old - m_new)) and the output accumulator
// acc * alpha + sum p_j v_j, the latter in `splits` interleaved fused multiply-add chains per
// 8-lane vector (4 / (D / 8) of them when D < 32, so short rows still pipeline). Finally acc / l.
// Keys below `first` are not seen (a sliding window): chunks stay aligned at multiples of the
// chunk size from key 0; chunks wholly below `first` are skipped, and keys below it in the first
// chunk seen are masked (score -inf, weight 0) exactly like keys past the end. softcap > 0:
// scores are soft-capped after scaling.
void attention_row(const float* qrow, const float* k0, const float* v0, int64_t stride, int64_t first, int64_t visible, int64_t D,
                   float scale, float softcap, float* y) {
  namespace fs = float_spec;
  constexpr int64_t CH = fs::kAttentionKeyChunk;
  const int64_t DV = (D + 7) / 8;
  const int64_t splits = DV >= 4 ? 1 : 4 / DV;
  const float inv_cap = softcap > 0 ? 1.0f / softcap : 0.0f;
  float m = -INFINITY, l = 0;
  std::vector<float> acc(static_cast<size_t>(D), 0.0f), part(static_cast<size_t>(D * splits));
  float sc[CH], p[CH];
  for (int64_t c0 = first / CH * CH; c0 < visible; c0 += CH) {
    const int64_t n = std::min(CH, visible - c0), lo = std::max<int64_t>(0, first - c0);
    float cmax = -INFINITY;
    for (int64_t j = 0; j < n; ++j) {
      sc[j] = fs::dot8(qrow, k0 + (c0 + j) * stride, D) * scale;
      if (softcap > 0) sc[j] = fs::softcap(sc[j], softcap, inv_cap);
      if (j < lo) sc[j] = -INFINITY;
      cmax = std::fmax(cmax, sc[j]);
    }
    const float mnew = std::fmax(m, cmax);
    const float alpha = m == -INFINITY ? 0.0f : fs::expf(m - mnew);
    float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t j = 0; j < CH; ++j) {
      p[j] = j >= lo && j < n ? fs::expf(sc[j] - mnew) : 0.0f;
      lanes[j % 8] = j < 8 ? p[j] : lanes[j % 8] + p[j];
    }
    float lsum = 0;
    for (float v : lanes) lsum += v;
    l = std::fma(l, alpha, lsum);
    m = mnew;
    std::fill(part.begin(), part.end(), 0.0f);
    for (int64_t d = 0; d < D; ++d) part[static_cast<size_t>(d)] = acc[static_cast<size_t>(d)] * alpha;
    for (int64_t j = 0; j < n; ++j)
      for (int64_t d = 0; d < D; ++d) {
        float& a = part[static_cast<size_t>((j % splits) * D + d)];
        a = std::fma(p[j], v0[(c0 + j) * stride + d], a);  // p_j = 0 below `first`: the kernel's masked FMA
      }
    for (int64_t d = 0; d < D; ++d) {
      float sum = part[static_cast<size_t>(d)];
      for (int64_t k = 1; k < splits; ++k) sum += part[static_cast<size_t>(k * D + d)];
      acc[static_cast<size_t>(d)] = sum;
    }
  }
  for (int64_t d = 0; d < D; ++d) y[d] = acc[static_cast<size_t>(d)] / l;
}

Status eval_attention_qkv(const Node& n, EvalContext& ctx, Tensors in, Outputs& out);

Status eval_attention(const Node& n, EvalContext& ctx, Tensors in, Outputs& out) {
  if (in.size() == 3) return eval_attention_qkv(n, ctx, in, out);
  INGOT_ASSIGN_OR_RETURN(AttentionDims a, packed_attention_dims(n));
  if (in[0].shape()[1] != (a.H + 2 * a.KV) * a.D) return err("packed Attention row width differs at run time");
  std::array<Tensor, 3> qkv = unpack_qkv(in[0], a);
  Outputs o;
  INGOT_RETURN_IF_ERROR(eval_attention_qkv(n, ctx, qkv, o));
  INGOT_ASSIGN_OR_RETURN(Tensor flat, Tensor::from_buffer(ElementType::f32, {in[0].shape()[0], a.H * a.D}, o[0].buffer()));
  out = {flat};
  return Status::Ok();
}

Status eval_attention_qkv(const Node& n, EvalContext& ctx, Tensors in, Outputs& out) {
  const Tensor& q = in[0];
  const int64_t T = q.shape()[0], H = q.shape()[1], D = q.shape()[2], KV = in[1].shape()[1];
  if (in[1].shape()[0] != T || in[1].shape()[2] != D || KV == 0 || H % KV != 0)
    return err("Attention shapes disagree at run time");
  // Append the new keys and values to the cache, exactly as Concat along axis 0 would.
  Tensor cache[2];
  const std::string vars[2] = {n.attr("k_variable").as_string(), n.attr("v_variable").as_string()};
  for (int c = 0; c < 2; ++c) {
    auto it = ctx.state->find(vars[c]);
    std::vector<int64_t> old_shape = {0, KV, D};
    ElementType type = ElementType::f32;
    if (it != ctx.state->end()) {
      old_shape = it->second.shape();
      type = it->second.type();
    } else if (auto decl = ctx.variable_type(vars[c])) {
      type = *decl;
    }
    if (old_shape.size() != 3 || old_shape[1] != KV || old_shape[2] != D)
      return err("state '" + vars[c] + "' holds " + dims_str(old_shape) + ", not [past, " + std::to_string(KV) + ", " + std::to_string(D) + "]");
    const int64_t past = old_shape[0];
    Tensor all = Tensor::zeros(type, {past + T, KV, D});
    if (it != ctx.state->end()) copy_bytes(all.mutable_raw(), it->second.raw(), it->second.nbytes());
    for (int64_t i = 0; i < T * KV * D; ++i) all.set_f(past * KV * D + i, in[1 + c].get_f(i));
    cache[c] = all;
  }
  const int64_t S = cache[0].shape()[0], past = S - T, group = H / KV;
  if (cache[1].shape()[0] != S) return err("Attention key and value caches have different lengths");
  const float scale = static_cast<float>(n.attr("scale").as_float());
  const float softcap = static_cast<float>(n.attr("softcap").as_float());
  const int64_t window = n.attr("window").as_int();
  Tensor y = Tensor::zeros(ElementType::f32, q.shape());
  // f32 rows of the keys and values (as the cache holds them) and of the queries.
  const std::vector<float> keys = cache[0].to_f32_vector(), values = cache[1].to_f32_vector(), queries = q.to_f32_vector();
  std::vector<float> row(static_cast<size_t>(D));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t first = window > 0 ? std::max<int64_t>(0, past + t + 1 - window) : 0;
      attention_row(queries.data() + (t * H + h) * D, keys.data() + (h / group) * D, values.data() + (h / group) * D, KV * D,
                    first, past + t + 1, D, scale, softcap, row.data());
      for (int64_t d = 0; d < D; ++d) y.set_f((t * H + h) * D + d, row[static_cast<size_t>(d)]);
    }
  (*ctx.next_state)[vars[0]] = cache[0];
  (*ctx.next_state)[vars[1]] = cache[1];
  out = {y};
  return Status::Ok();
}

// ---------------------------------------------------------------- in place
// The inputs whose bytes an op's output may take (memory planning). In place: the kernel must read
// an input element before it writes the output element at the same index, and never write an
// element it has yet to read. Memory planning takes an input only when it has exactly the output's
// shape, the same plain element size and no later reader.
//  - Element-wise ops (unary, binary, Select, Convert between types of one size) read element i
//    only to write element i.
//  - RMSNorm and Softmax are row-wise: the kernel reduces a whole row (Softmax: a lane along its
//    axis) before writing any of it, and rows are disjoint. Kernels must keep to that order.
//  - RoPE reads both values of a rotated pair before writing either.
//  - FusedMatMul's residual: its epilogue reads residual[i] just before it writes out[i], once,
//    from the accumulated tile (kernels must not store partial sums in the output). Its other
//    inputs are read whole-row for every output element: never taken.
//  - Views (Reshape, Result) write nothing: Reshape keeps the flat order of its input, and a
//    Result is its value.

std::vector<int> first_input(const Node&) { return {0}; }
std::vector<int> every_input(const Node& n) {
  std::vector<int> all(n.inputs.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  return all;
}
// FusedMatMul's residual is its last input when has_residual is set.
std::vector<int> residual_input(const Node& n) {
  if (!n.attr("has_residual").as_bool()) return {};
  return {static_cast<int>(n.inputs.size()) - 1};
}
// SwiGLU's two-input form is element-wise; the one-input form halves each row.
std::vector<int> swiglu_inputs(const Node& n) { return n.inputs.size() == 2 ? every_input(n) : std::vector<int>{}; }

// ---------------------------------------------------------------- the table

AttrSpec req(const char* name, AttrKind k) { return AttrSpec{name, k, true, Attribute()}; }
AttrSpec opt(const char* name, Attribute def) { return AttrSpec{name, def.kind(), false, def}; }

const std::vector<OpDef>& op_table() {
  using A = Attribute;
  using K = AttrKind;
  static const std::vector<OpDef> kOps = {
      // kind, min in, max in, attributes, infer, reference kernel, summary, traits, in-place inputs
      {Op::Parameter, 0, 0, {}, infer_parameter, eval_parameter, "a model input", kSource},
      {Op::Constant, 0, 0, {}, infer_constant, eval_constant, "a constant tensor (may point into a mapped file)", kSource},
      {Op::Result, 1, 1, {}, infer_result, eval_identity, "a model output", kSink | kView, first_input},
      {Op::ReadValue, 0, 0, {req("variable", K::String)}, infer_read_value, eval_read_value, "reads a state variable", kSource | kStateful},
      {Op::Assign, 1, 1, {req("variable", K::String)}, infer_assign, eval_assign, "writes a state variable at the end of the call", kSink | kStateful},
      {Op::Convert, 1, 1, {req("to", K::Type)}, infer_convert, eval_convert, "element type conversion; dequantizes", kElementwise, first_input},
      {Op::Add, 2, 2, {}, infer_binary_arith, eval_add, "a + b, numpy broadcasting", kElementwise | kCommutative, every_input},
      {Op::Subtract, 2, 2, {}, infer_binary_arith, eval_sub, "a - b", kElementwise, every_input},
      {Op::Multiply, 2, 2, {}, infer_binary_arith, eval_mul, "a * b", kElementwise | kCommutative, every_input},
      {Op::Divide, 2, 2, {}, infer_binary_arith, eval_div, "a / b (integers: floor division)", kElementwise, every_input},
      {Op::Power, 2, 2, {}, infer_binary_arith, eval_pow, "a ** b", kElementwise, every_input},
      {Op::Maximum, 2, 2, {}, infer_binary_arith, eval_max, "max(a, b)", kElementwise | kCommutative, every_input},
      {Op::Minimum, 2, 2, {}, infer_binary_arith, eval_min, "min(a, b)", kElementwise | kCommutative, every_input},
      {Op::Equal, 2, 2, {}, infer_compare, eval_eq, "a == b -> bool", kElementwise | kCommutative, every_input},
      {Op::NotEqual, 2, 2, {}, infer_compare, eval_ne, "a != b -> bool", kElementwise | kCommutative, every_input},
      {Op::Less, 2, 2, {}, infer_compare, eval_lt, "a < b -> bool", kElementwise, every_input},
      {Op::LessEqual, 2, 2, {}, infer_compare, eval_le, "a <= b -> bool", kElementwise, every_input},
      {Op::Greater, 2, 2, {}, infer_compare, eval_gt, "a > b -> bool", kElementwise, every_input},
      {Op::GreaterEqual, 2, 2, {}, infer_compare, eval_ge, "a >= b -> bool", kElementwise, every_input},
      {Op::LogicalAnd, 2, 2, {}, infer_logical_binary, eval_and, "a && b", kElementwise | kCommutative, every_input},
      {Op::LogicalOr, 2, 2, {}, infer_logical_binary, eval_or, "a || b", kElementwise | kCommutative, every_input},
      {Op::LogicalNot, 1, 1, {}, infer_logical_not, eval_logical_not, "!a", kElementwise, first_input},
      {Op::Sqrt, 1, 1, {}, infer_unary_float, eval_sqrt, "square root", kElementwise, first_input},
      {Op::Exp, 1, 1, {}, infer_unary_float, eval_exp, "e ** x", kElementwise, first_input},
      {Op::Log, 1, 1, {}, infer_unary_float, eval_log, "natural logarithm", kElementwise, first_input},
      {Op::Negative, 1, 1, {}, infer_unary_numeric, eval_negative, "-x", kElementwise, first_input},
      {Op::Abs, 1, 1, {}, infer_unary_numeric, eval_abs, "|x|", kElementwise, first_input},
      {Op::Sin, 1, 1, {}, infer_unary_float, eval_sin, "sine", kElementwise, first_input},
      {Op::Cos, 1, 1, {}, infer_unary_float, eval_cos, "cosine", kElementwise, first_input},
      {Op::Sigmoid, 1, 1, {}, infer_unary_float, eval_sigmoid, "1 / (1 + e ** -x)", kElementwise, first_input},
      {Op::Tanh, 1, 1, {}, infer_unary_float, eval_tanh, "hyperbolic tangent", kElementwise, first_input},
      {Op::Erf, 1, 1, {}, infer_unary_float, eval_erf, "error function", kElementwise, first_input},
      {Op::Gelu, 1, 1, {opt("approximation", A::String("erf"))}, infer_gelu, eval_gelu, "GELU, exact (erf), tanh form or llama.cpp's f16 table (ggml_f16)", kElementwise, first_input},
      {Op::ReduceMean, 1, 1, {req("axes", K::Ints), opt("keep_dims", A::Bool(false))}, infer_reduce, eval_reduce, "mean over axes"},
      {Op::ReduceSum, 1, 1, {req("axes", K::Ints), opt("keep_dims", A::Bool(false))}, infer_reduce, eval_reduce, "sum over axes"},
      {Op::ReduceMax, 1, 1, {req("axes", K::Ints), opt("keep_dims", A::Bool(false))}, infer_reduce, eval_reduce, "maximum over axes"},
      {Op::Softmax, 1, 1, {opt("axis", A::Int(-1))}, infer_softmax, eval_softmax, "numerically stable softmax", 0, first_input},
      {Op::MatMul, 2, 2, {opt("transpose_a", A::Bool(false)), opt("transpose_b", A::Bool(false))}, infer_matmul, eval_matmul, "batched matrix product, batch dims broadcast"},
      {Op::WeightMatMul, 2, 2, {opt("act_quant", A::String("none"))}, infer_weight_matmul, eval_weight_matmul, "x[..., K] x w[N, K]^T with w in any weight type; act_quant \"q8\": llama.cpp-like numerics of the kernels, \"ggml\": ggml's exactly"},
      {Op::RMSNorm, 2, 2, {req("eps", K::Float)}, infer_rms_norm, eval_rms_norm, "x / sqrt(mean(x^2) + eps) * w over the last axis", 0, first_input},
      {Op::RoPE, 3, 3, {req("layout", K::String)}, infer_rope, eval_rope, "rotary embedding of x[T, H, D] by cos/sin[T, D/2]; interleaved or rotate_half", 0, first_input},
      {Op::SwiGLU, 1, 2, {}, infer_swiglu, eval_swiglu, "silu(gate) * up; one input: its two halves", 0, swiglu_inputs},
      {Op::GeGLU, 2, 2, {opt("approximation", A::String("tanh"))}, infer_geglu, eval_geglu, "Gelu(gate) * up; tanh form or llama.cpp's f16 table", kElementwise, first_input, {}, decompose_geglu},
      {Op::RopeTable, 2, 2, {req("length", K::Dims)}, infer_rope_table, eval_rope_table, "cos and sin of positions pos.. times inverse frequencies (fused rotary tables)"},
      {Op::Embedding, 2, 2, {}, infer_embedding, eval_embedding, "rows of a float or quantized table, as f32 (fused Gather of a converted table)"},
      {Op::FusedMatMul, 2, 6, {opt("act_quant", A::String("none")), opt("has_bias", A::Bool(false)), opt("rope", A::String("none")), opt("rope_q_heads", A::Int(0)), opt("rope_k_heads", A::Int(0)), opt("head_dim", A::Int(0)), opt("activation", A::String("none")), opt("has_residual", A::Bool(false))}, infer_fused_matmul, eval_fused_matmul, "WeightMatMul + bias, RoPE, SwiGLU, residual epilogues", 0, residual_input},
      {Op::Attention, 1, 3, {req("k_variable", K::String), req("v_variable", K::String), req("scale", K::Float), opt("q_heads", A::Int(0)), opt("kv_heads", A::Int(0)), opt("head_dim", A::Int(0)), opt("softcap", A::Float(0.0)), opt("window", A::Int(0))}, infer_attention, eval_attention, "causal attention that appends to and reads its KV cache state; optional sliding window and soft-capped scores", kStateful, nullptr, {"k_variable", "v_variable"}},
      {Op::Gather, 2, 2, {opt("axis", A::Int(0))}, infer_gather, eval_gather, "take slices along axis at indices"},
      {Op::Reshape, 1, 1, {req("shape", K::Dims)}, infer_reshape, eval_reshape, "new shape, same elements; one -1 is inferred", kView, first_input},
      {Op::Transpose, 1, 1, {req("perm", K::Ints)}, infer_transpose, eval_transpose, "permute dimensions"},
      {Op::Concat, 1, -1, {req("axis", K::Int)}, infer_concat, eval_concat, "join along axis"},
      {Op::Slice, 1, 1, {req("begin", K::Ints), req("end", K::Ints), req("axes", K::Ints), opt("step", A::Ints({}))}, infer_slice, eval_slice, "python-style slice per axis"},
      {Op::Broadcast, 1, 1, {req("shape", K::Dims)}, infer_broadcast, eval_broadcast, "numpy broadcast to a shape"},
      {Op::Select, 3, 3, {}, infer_select, eval_select, "cond ? a : b, numpy broadcasting", kElementwise, every_input},
      {Op::Range, 1, 1, {req("length", K::Dims), opt("step", A::Float(1.0))}, infer_range_checked, eval_range, "start + i * step for i < length"},
  };
  // One entry per kind, in the enum's order (op_def indexes the table).
  static const bool in_order = [] {
    INGOT_ASSERT(kOps.size() == static_cast<size_t>(kNumOps), "the op table has an entry per Op");
    for (size_t i = 0; i < kOps.size(); ++i)
      INGOT_ASSERT(kOps[i].kind == static_cast<Op>(i), "the op table follows ir/op_list.h's order");
    return true;
  }();
  (void)in_order;
  return kOps;
}

}  // namespace

std::optional<ElementType> EvalContext::variable_type(const std::string& name) const {
  const StateVariable* v = model ? model->find_variable(name) : nullptr;
  if (!v) return std::nullopt;
  return v->type;
}

const OpDef& op_def(Op kind) { return op_table()[static_cast<size_t>(kind)]; }

const OpDef* find_op(std::string_view name) {
  for (auto& op : op_table())
    if (name == op.name()) return &op;
  return nullptr;
}

std::span<const OpDef> all_ops() { return op_table(); }

bool weight_matmul_supports_act_ggml(ElementType w) {
  switch (w) {
    case ElementType::f32: case ElementType::f16: case ElementType::bf16:
    case ElementType::q8_0: case ElementType::q4_0: case ElementType::q4_1: case ElementType::q5_0:
    case ElementType::q5_1: case ElementType::q2_k: case ElementType::q3_k: case ElementType::q4_k:
    case ElementType::q5_k: case ElementType::q6_k: case ElementType::iq4_nl: case ElementType::iq4_xs:
      return true;
    default:
      return false;
  }
}

bool q8_uses_q8_K(ElementType w) {
  return w == ElementType::q2_k || w == ElementType::q3_k || w == ElementType::q4_k || w == ElementType::q5_k ||
         w == ElementType::q6_k || w == ElementType::iq4_xs;
}

bool weight_matmul_supports_act_q8(ElementType w) {
  switch (w) {
    case ElementType::f32: case ElementType::f16: case ElementType::bf16:
    case ElementType::q8_0: case ElementType::q4_0: case ElementType::q4_k: case ElementType::q6_k:
    case ElementType::q5_k: case ElementType::q3_k: case ElementType::q2_k: case ElementType::iq4_xs:
    case ElementType::q5_0: case ElementType::q4_1: case ElementType::q5_1: case ElementType::iq4_nl:
      return true;
    default:
      return false;
  }
}

}  // namespace ingot
