#include "ir/builder.h"

namespace ingot {

Node* GraphBuilder::add(NodeSpec spec) {
  if (!status_.ok()) return nullptr;
  for (auto& v : spec.inputs)
    if (!v.node) {
      status_ = Status::Error(std::string("GraphBuilder: null input to ") + op_name(spec.op));
      return nullptr;
    }
  auto n = m_.add_node(std::move(spec));
  if (!n.ok()) {
    status_ = n.status();
    return nullptr;
  }
  return *n;
}

static Value first(Node* n) { return n && !n->outputs.empty() ? Value{n, 0} : Value{}; }

Value GraphBuilder::parameter(const std::string& name, ElementType t, Shape s) {
  NodeSpec spec{Op::Parameter, {}, {}, name, {TensorType{t, std::move(s)}}, nullptr, ""};
  return first(add(std::move(spec)));
}

Value GraphBuilder::constant(std::shared_ptr<const Tensor> data, const std::string& name) {
  if (!data) {
    if (status_.ok()) status_ = Status::Error("GraphBuilder: constant '" + name + "' without data");
    return {};
  }
  TensorType t{data->type(), static_shape(data->shape())};
  NodeSpec spec{Op::Constant, {}, {}, name, {t}, std::move(data), ""};
  return first(add(std::move(spec)));
}

Value GraphBuilder::scalar_f32(float v, const std::string& name) {
  return constant(std::make_shared<Tensor>(Tensor::from_f32({}, {v})), name);
}

Value GraphBuilder::scalar_i64(int64_t v, const std::string& name) {
  return constant(std::make_shared<Tensor>(Tensor::scalar_i64(v)), name);
}

Value GraphBuilder::read_value(const std::string& variable, ElementType t, Shape s, const std::string& name) {
  NodeSpec spec{Op::ReadValue, {}, {{"variable", Attribute::String(variable)}}, name, {TensorType{t, std::move(s)}}, nullptr, ""};
  return first(add(std::move(spec)));
}

Node* GraphBuilder::assign(const std::string& variable, Value v, const std::string& name) {
  return add(NodeSpec{Op::Assign, {v}, {{"variable", Attribute::String(variable)}}, name, {}, nullptr, ""});
}

Value GraphBuilder::result(Value v, const std::string& name) {
  return first(add(NodeSpec{Op::Result, {v}, {}, name, {}, nullptr, ""}));
}

Value GraphBuilder::op(Op op, std::vector<Value> inputs, AttrMap attrs, const std::string& name) {
  return first(node(op, std::move(inputs), std::move(attrs), name));
}

Node* GraphBuilder::node(Op op, std::vector<Value> inputs, AttrMap attrs, const std::string& name) {
  return add(NodeSpec{op, std::move(inputs), std::move(attrs), name, {}, nullptr, ""});
}

}  // namespace ingot
