// The list of kernel families (codegen/kernel_registry.h). A family is one file in
// codegen/kernels/ that defines one KernelFamily; adding one is a line here.
#include "codegen/kernel_registry.h"

#include "ir/builder.h"

// X(name): the family `k<name>Family`, defined in codegen/kernels/. Order matters: the first
// family that computes a node gets it, so hand-written kernels come before the generic path.
#define INGOT_KERNEL_FAMILIES(X) X(MatMul) X(RMSNorm) X(Attention) X(Embedding) X(RopeTable) X(GeGLU) X(Generic)

namespace ingot {

#define INGOT_DECLARE_FAMILY(name) extern const KernelFamily k##name##Family;
INGOT_KERNEL_FAMILIES(INGOT_DECLARE_FAMILY)
#undef INGOT_DECLARE_FAMILY

std::span<const KernelFamily* const> kernel_families() {
#define INGOT_FAMILY_ADDRESS(name) &k##name##Family,
  static const KernelFamily* const kFamilies[] = {INGOT_KERNEL_FAMILIES(INGOT_FAMILY_ADDRESS)};
#undef INGOT_FAMILY_ADDRESS
  return kFamilies;
}

const KernelFamily* find_kernel_family(std::string_view kind) {
  for (const KernelFamily* f : kernel_families())
    if (kind == f->kind) return f;
  return nullptr;
}

const KernelFamily& family_of(const KernelSpec& spec) {
  const KernelFamily* f = find_kernel_family(spec.kind);
  INGOT_ASSERT(f != nullptr, "kernel spec of unknown family");
  return *f;
}

StatusOr<KernelSpec> kernel_for_node(const Node& node, const Model* model) {
  std::string why;
  for (const KernelFamily* f : kernel_families()) {
    if (!f->computes(node)) continue;
    StatusOr<KernelSpec> spec = f->spec_for(node, model);
    if (spec.ok()) {
      spec->kind = f->kind;
      return spec;
    }
    why += (why.empty() ? "" : "; ") + spec.message();
  }
  if (why.empty()) return Status::Error("codegen: no kernel for op " + std::string(node.op_name()));
  return Status::Error(why);
}

StatusOr<ArgContract> tensor_contract(const TensorType& t, ArgAccess access) {
  const ElementTypeInfo& ti = type_info(t.type);
  const Dim n = num_elements(t.shape);
  int64_t per_row = 0;
  for (const auto& [symbol, coefficient] : n.terms()) {
    if (symbol != "tokens" || coefficient < 0)
      return Status::Error("codegen: no contract for a tensor of shape " + shape_str(t.shape) + " (only `tokens` may vary)");
    per_row = coefficient;
  }
  if (n.is_unknown() || n.constant() < 0 || n.constant() % ti.block_elems != 0 || per_row % ti.block_elems != 0)
    return Status::Error("codegen: no contract for a tensor of type " + t.str());
  ArgContract a;
  a.access = access;
  a.align = static_cast<uint64_t>(ti.block_elems == 1 ? ti.block_bytes : 1);
  a.fixed = n.constant() / ti.block_elems * ti.block_bytes;
  a.per_row = per_row / ti.block_elems * ti.block_bytes;
  a.dims_mask = per_row > 0 ? 1 : 0;
  return a;
}

KernelCase node_case(std::string name, int64_t rows, Op op, std::vector<TensorType> inputs, AttrMap attrs, double max_nmse) {
  return {std::move(name), rows,
          [op, inputs = std::move(inputs), attrs = std::move(attrs)](Model& m) -> StatusOr<Node*> {
            GraphBuilder b(m);
            std::vector<Value> params;
            for (size_t i = 0; i < inputs.size(); ++i) params.push_back(b.parameter("in" + std::to_string(i), inputs[i].type, inputs[i].shape));
            Node* n = b.node(op, params, attrs, "n");
            INGOT_RETURN_IF_ERROR(b.status());
            return n;
          },
          max_nmse};
}

StatusOr<KernelSpec> kernel_spec_for(const Node& node, const std::string& symbol) { return kernel_spec_for(node, symbol, nullptr); }

StatusOr<KernelSpec> kernel_spec_for(const Node& node, const std::string& symbol, const Model* model) {
  INGOT_ASSIGN_OR_RETURN(KernelSpec spec, kernel_for_node(node, model));
  spec.name = symbol;
  return spec;
}

}  // namespace ingot
