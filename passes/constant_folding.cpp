// constant-folding: a node whose inputs are all Constants with data is evaluated once, by the
// reference evaluator on a tiny model (Constants -> op -> Results), and replaced by Constants.
// The reference kernels are the numerical spec, so folding never changes a result.
//
// Not folded:
// - sources, sinks and state (Parameter, Constant, ReadValue, Assign, Result);
// - nodes whose output shapes are not static (they depend on run-time lengths: Range {length =
//   [past+tokens]}, Reshape {shape = [tokens, -1]});
// - results bigger than their inputs, unless small (kAlwaysFoldBytes): folding a Broadcast or a
//   Convert of a weight to f32 would only make the model bigger. Shape arithmetic on small i64
//   tensors always folds;
// - work above kMaxFoldBytes of inputs and outputs: the reference kernels are slow, and a model
//   that big is better left to generated code;
// - nodes whose evaluation fails (an integer division by zero, an index out of range): the error
//   stays where it will be reported at run time.
#include "ir/evaluator.h"
#include "ir/ops.h"
#include "passes/generic_passes.h"

namespace ingot {
namespace {

constexpr int64_t kAlwaysFoldBytes = 256;
constexpr int64_t kMaxFoldBytes = int64_t{64} << 20;

bool is_foldable_op(const Node& n) {
  // Sources (inputs, constants, state reads) and sinks (results, state writes) are not computations.
  return !(n.op().has(kSource) || n.op().has(kSink)) &&
         !n.inputs.empty() && !n.outputs.empty();
}

bool has_data(const Node& n) { return n.is(Op::Constant) && n.constant && n.constant->defined(); }

// Bytes of the outputs when every shape is static; nullopt otherwise.
std::optional<int64_t> static_output_bytes(const Node& n) {
  int64_t total = 0;
  for (const TensorType& t : n.outputs) {
    if (!is_static(t.shape)) return std::nullopt;
    int64_t elems = 1;
    for (const Dim& d : t.shape)
      if (__builtin_mul_overflow(elems, d.value(), &elems)) return std::nullopt;
    auto bytes = storage_bytes(t.type, elems);
    if (!bytes.ok() || __builtin_add_overflow(total, *bytes, &total)) return std::nullopt;
  }
  return total;
}

bool worth_folding(const Node& n) {
  if (!is_foldable_op(n)) return false;
  int64_t in_bytes = 0;
  for (const Value& v : n.inputs) {
    if (!has_data(*v.node)) return false;
    in_bytes += static_cast<int64_t>(v.node->constant->nbytes());
  }
  auto out_bytes = static_output_bytes(n);
  if (!out_bytes) return false;
  if (in_bytes + *out_bytes > kMaxFoldBytes) return false;
  return *out_bytes <= kAlwaysFoldBytes || *out_bytes <= in_bytes;
}

// Evaluates `n` on its constant inputs through a model of its own; nullopt if evaluation fails.
std::optional<std::vector<Tensor>> evaluate(const Node& n) {
  Model tiny("fold");
  NodeSpec spec{n.kind(), {}, n.attrs, "", {}, nullptr, ""};
  for (const Value& v : n.inputs) {
    auto c = tiny.add_node(NodeSpec{Op::Constant, {}, {}, "", {v.node->outputs[0]}, v.node->constant, ""});
    if (!c.ok()) return std::nullopt;
    spec.inputs.push_back(Value{*c, v.index});
  }
  auto op = tiny.add_node(std::move(spec));
  if (!op.ok() || (*op)->outputs != n.outputs) return std::nullopt;
  for (size_t i = 0; i < n.outputs.size(); ++i)
    if (!tiny.add_node(NodeSpec{Op::Result, {Value{*op, static_cast<int>(i)}}, {}, "", {}, nullptr, ""}).ok())
      return std::nullopt;
  Evaluator ev(tiny);
  auto out = ev.run({});
  if (!out.ok() || out->size() != n.outputs.size()) return std::nullopt;
  return std::move(*out);
}

class ConstantFolding : public Pass {
 public:
  const char* name() const override { return "constant-folding"; }

  StatusOr<bool> run(Model& m) override {
    INGOT_ASSIGN_OR_RETURN(std::vector<Node*> order, m.topological_order());
    bool changed = false;
    // In topological order a folded node's users see Constant inputs next: chains fold in one walk.
    for (Node* n : order) {
      if (!worth_folding(*n)) continue;
      auto values = evaluate(*n);
      if (!values) continue;
      for (size_t i = 0; i < values->size(); ++i) {
        auto data = std::make_shared<const Tensor>(std::move((*values)[i]));
        INGOT_ASSIGN_OR_RETURN(Node * c, m.add_node(NodeSpec{Op::Constant, {}, {}, "", {n->outputs[i]}, data, ""}));
        INGOT_RETURN_IF_ERROR(replace_value(m, Value{n, static_cast<int>(i)}, c->out()));
        // Single-output nodes hand their name to the constant: the IR still reads "%positions = ...".
        if (n->outputs.size() == 1) take_name(n, c);
      }
      changed = true;
    }
    if (changed) m.remove_dead_nodes();
    return changed;
  }
};

}  // namespace

std::unique_ptr<Pass> create_constant_folding_pass() { return std::make_unique<ConstantFolding>(); }

}  // namespace ingot
