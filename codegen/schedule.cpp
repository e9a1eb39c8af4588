#include "codegen/schedule.h"

#include <cstdint>
#include <map>
#include <set>

#include "codegen/bundle_plan.h"
#include "codegen/kernel_registry.h"

namespace ingot {
namespace {

class Scheduler {
 public:
  Scheduler(const Model& m, const MemoryPlan& plan, const BundleKernelPlan& kp, const std::vector<BundleTensor>& tensors,
            pb::Manifest& manifest)
      : m_(m), plan_(plan), kp_(kp), tensors_(tensors), manifest_(manifest) {}

  Status run() {
    pb::Schedule& sched = *manifest_.mutable_schedule();
    sched.Clear();
    INGOT_ASSIGN_OR_RETURN(std::vector<Node*> order, m_.topological_order());
    std::vector<std::string> missing;
    for (Node* n : order) {
      Status st = schedule(n, sched);
      if (!st.ok()) missing.push_back(st.message());
    }
    if (!missing.empty()) {
      sched.Clear();
      std::string msg = "no schedule: " + std::to_string(missing.size()) + " node(s) cannot run yet";
      std::set<std::string> distinct(missing.begin(), missing.end());
      for (const auto& why : distinct) msg += "\n  " + why;
      return Status::Error(msg);
    }
    for (const auto& c : sched.calls()) sched.set_max_scratch_per_thread(std::max(sched.max_scratch_per_thread(), c.scratch_per_thread()));
    // Model inputs and outputs: where they live in the arena.
    int i = 0;
    for (Node* p : m_.parameters()) {
      const MemoryPlan::Buffer* b = plan_.find(p->name, 0);
      if (!b) return Status::Error("schedule: input '" + p->name + "' has no buffer in the memory plan");
      manifest_.mutable_inputs(i)->set_arena_offset(b->offset);
      manifest_.mutable_inputs(i++)->set_max_bytes(b->bytes);
    }
    i = 0;
    for (Node* r : m_.results()) {
      const MemoryPlan::Buffer* b = plan_.find(r->name, 0);
      if (!b) return Status::Error("schedule: output '" + r->name + "' has no buffer in the memory plan");
      manifest_.mutable_outputs(i)->set_arena_offset(b->offset);
      manifest_.mutable_outputs(i++)->set_max_bytes(b->bytes);
    }
    return Status::Ok();
  }

 private:
  Status schedule(Node* n, pb::Schedule& sched) {
    if (n->is(Op::Constant) || n->is(Op::Parameter)) return Status::Ok();
    if (const MemoryPlan::Buffer* b = plan_.find(n->name, 0); b && b->view) return Status::Ok();  // Reshape, Result
    if (is_last_row_slice(*n)) return last_row_copy(n, sched);
    auto it = kp_.of_node.find(n);
    if (it == kp_.of_node.end()) return Status::Error(std::string(n->op_name()) + ": no kernel yet");
    const KernelSpec& spec = kp_.specs[it->second];
    pb::KernelCall& call = *sched.add_calls();
    call.set_symbol(spec.name);
    call.set_node(n->name);
    // dims[0] is the node's row count: the call's tokens, or 1 after the last-row slice
    const Shape& out_shape = n->outputs[0].shape;
    if (out_shape.empty()) return Status::Error(std::string(n->op_name()) + " '" + n->name + "': a scalar output has no rows");
    // (or the call's tokens when they appear elsewhere in the node's values, as in a transpose;
    // 1 for a node of static shapes).
    bool has_tokens = false;
    for (const Value& in : n->inputs)
      for (const Dim& d : in.type().shape) has_tokens |= d == Dim::symbol("tokens");
    for (const TensorType& t : n->outputs)
      for (const Dim& d : t.shape) has_tokens |= d == Dim::symbol("tokens");
    if (out_shape[0] == Dim::symbol("tokens")) call.add_dims(pb::DIM_TOKENS);
    else if (out_shape[0] == Dim(1) && !has_tokens) call.add_dims(pb::DIM_ONE);
    else if (has_tokens) call.add_dims(pb::DIM_TOKENS);
    else if (is_static(out_shape)) call.add_dims(pb::DIM_ONE);
    else return Status::Error(std::string(n->op_name()) + " '" + n->name + "': rows " + out_shape[0].str() + " are neither tokens nor 1");
    call.add_dims(pb::DIM_PAST);
    call.set_scratch_per_thread(scratch_bytes_per_thread(spec, plan_.max_batch));
    INGOT_ASSIGN_OR_RETURN(std::vector<KernelArg> args, family_of(spec).args(*n, spec));
    for (const KernelArg& a : args) INGOT_RETURN_IF_ERROR(arg_ref(n, spec, a, call, *call.add_args()));
    return Status::Ok();
  }

  // One argument of the registry's bindings as the manifest's reference.
  Status arg_ref(Node* n, const KernelSpec& spec, const KernelArg& a, const pb::KernelCall& call, pb::ArgRef& ref) {
    switch (a.kind) {
      case KernelArg::Kind::null: ref.mutable_null(); return Status::Ok();
      case KernelArg::Kind::output: return value_ref(Value{n, a.index}, ref);
      case KernelArg::Kind::input:
        if (a.index >= static_cast<int>(n->inputs.size())) return Status::Error(n->name + ": kernel argument names a missing input");
        return value_ref(n->inputs[static_cast<size_t>(a.index)], ref);
      case KernelArg::Kind::packed_input: {
        // The constant in this kernel's packed layout.
        const Node* w = n->inputs.at(static_cast<size_t>(a.index)).node;
        for (size_t t = 0; t < tensors_.size(); ++t)
          if (tensors_[t].name == w->name && tensors_[t].layout != "ggml" && tensors_[t].kernel == spec.name) {
            ref.set_weight(static_cast<uint32_t>(t));
            return Status::Ok();
          }
        return Status::Error(n->name + ": its packed weight '" + w->name + "' is not in the bundle");
      }
      case KernelArg::Kind::state:
        for (size_t i = 0; i < plan_.state.size(); ++i)
          if (plan_.state[i].variable == a.variable) {
            ref.set_state_slot(static_cast<uint32_t>(i));
            return Status::Ok();
          }
        return Status::Error(n->name + ": state variable '" + a.variable + "' has no slot in the memory plan");
      case KernelArg::Kind::scratch:
        if (call.scratch_per_thread() > 0) ref.mutable_scratch();
        else ref.mutable_null();
        return Status::Ok();
    }
    return Status::Error(n->name + ": unknown kernel argument kind");
  }

  // Slice of the last row along axis 0 (what last-position-first leaves before the final norm).
  Status last_row_copy(Node* n, pb::Schedule& sched) {
    const TensorType& in = n->inputs[0].type();
    pb::KernelCall& call = *sched.add_calls();
    call.set_node(n->name);
    call.set_builtin("copy_last_row");
    call.set_row_bytes(in.shape[1].value() * type_info(in.type).block_bytes);
    call.add_dims(pb::DIM_TOKENS);
    INGOT_RETURN_IF_ERROR(value_ref(Value{n, 0}, *call.add_args()));
    return value_ref(n->inputs[0], *call.add_args());
  }

  // A value as an argument: its arena buffer, or the bundle's raw tensor for a constant.
  Status value_ref(Value v, pb::ArgRef& ref) {
    if (v.node->is(Op::Constant)) {
      for (size_t t = 0; t < tensors_.size(); ++t)
        if (tensors_[t].name == v.node->name && tensors_[t].layout == "ggml") {
          ref.set_weight(static_cast<uint32_t>(t));
          return Status::Ok();
        }
      return Status::Error("constant '" + v.node->name + "' is not in the bundle");
    }
    const MemoryPlan::Buffer* b = plan_.find(v.node->name, v.index);
    if (!b) return Status::Error("value '" + memory_value_name(v.node->name, v.index) + "' has no buffer");
    ref.set_arena_offset(b->offset);
    return Status::Ok();
  }

  const Model& m_;
  const MemoryPlan& plan_;
  const BundleKernelPlan& kp_;
  const std::vector<BundleTensor>& tensors_;
  pb::Manifest& manifest_;
};

}  // namespace

bool is_last_row_slice(const Node& n) {
  if (!n.is(Op::Slice)) return false;
  const TensorType& in = n.inputs[0].type();
  const TensorType& out = n.outputs[0];
  const auto& axes = n.attr("axes").as_ints();
  const auto& begin = n.attr("begin").as_ints();
  const auto& end = n.attr("end").as_ints();
  const auto& step = n.attr("step").as_ints();
  return axes == std::vector<int64_t>{0} && begin == std::vector<int64_t>{-1} && end.size() == 1 && end[0] == INT64_MAX &&
         (step.empty() || step == std::vector<int64_t>{1}) && out.shape.size() == 2 && out.shape[0] == Dim(1) &&
         in.shape.size() == 2 && in.shape[1].is_static() && in.type == out.type;
}

Status build_schedule(const Model& model, const MemoryPlan& plan, const BundleKernels& kernels,
                      const std::vector<BundleTensor>& tensors, pb::Manifest& manifest) {
  static const BundleKernelPlan kEmpty;
  Scheduler s(model, plan, kernels.plan ? *kernels.plan : kEmpty, tensors, manifest);
  return s.run();
}

}  // namespace ingot
