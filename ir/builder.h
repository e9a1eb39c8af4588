// GraphBuilder: terse graph construction for builders and tests. The first error sticks: later
// calls do nothing and return a null Value, and status() reports that first error.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ir/model.h"

namespace ingot {

class GraphBuilder {
 public:
  explicit GraphBuilder(Model& m) : m_(m) {}

  Value parameter(const std::string& name, ElementType t, Shape s);
  Value constant(std::shared_ptr<const Tensor> data, const std::string& name = "");
  Value scalar_f32(float v, const std::string& name = "");
  Value scalar_i64(int64_t v, const std::string& name = "");
  Value read_value(const std::string& variable, ElementType t, Shape s, const std::string& name = "");
  Node* assign(const std::string& variable, Value v, const std::string& name = "");
  Value result(Value v, const std::string& name = "");

  // Any op with one output.
  Value op(Op op, std::vector<Value> inputs, AttrMap attrs = {}, const std::string& name = "");
  // Any op, returning the node (for zero or several outputs).
  Node* node(Op op, std::vector<Value> inputs, AttrMap attrs = {}, const std::string& name = "");

  Value add(Value a, Value b) { return op(Op::Add, {a, b}); }
  Value sub(Value a, Value b) { return op(Op::Subtract, {a, b}); }
  Value mul(Value a, Value b) { return op(Op::Multiply, {a, b}); }
  Value div(Value a, Value b) { return op(Op::Divide, {a, b}); }
  Value reshape(Value a, Shape s) { return op(Op::Reshape, {a}, {{"shape", Attribute::Dims(std::move(s))}}); }
  Value transpose(Value a, std::vector<int64_t> perm) { return op(Op::Transpose, {a}, {{"perm", Attribute::Ints(std::move(perm))}}); }
  Value matmul(Value a, Value b, bool transpose_b = false) {
    return op(Op::MatMul, {a, b}, {{"transpose_b", Attribute::Bool(transpose_b)}});
  }
  Value slice(Value a, int64_t axis, int64_t begin, int64_t end) {
    return op(Op::Slice, {a}, {{"axes", Attribute::Ints({axis})}, {"begin", Attribute::Ints({begin})}, {"end", Attribute::Ints({end})}});
  }
  Value concat(std::vector<Value> vs, int64_t axis) { return op(Op::Concat, std::move(vs), {{"axis", Attribute::Int(axis)}}); }
  Value convert(Value a, ElementType t) { return op(Op::Convert, {a}, {{"to", Attribute::Type(t)}}); }

  const Status& status() const { return status_; }
  bool ok() const { return status_.ok(); }
  Model& model() { return m_; }

 private:
  Node* add(NodeSpec spec);
  Model& m_;
  Status status_;
};

}  // namespace ingot
