#include "tools/graph_kernels.h"

#include "codegen/kernel_registry.h"

namespace ingot {

void plan_node_kernels(const Model& m, std::map<std::string, KernelInfo>* kernel_of, std::vector<KernelInfo>* kernels) {
  std::map<std::string, int> symbol_of_key;
  auto order = m.topological_order();
  if (!order.ok()) return;
  for (Node* n : *order) {
    bool computes = false;
    for (const KernelFamily* f : kernel_families()) computes = computes || f->computes(*n);
    if (!computes) continue;
    auto spec = kernel_for_node(*n, &m);
    if (!spec.ok()) {
      (*kernel_of)[n->name] = KernelInfo{"", "none", "no kernel: " + spec.message()};
      continue;
    }
    const std::string key = family_of(*spec).key(*spec);
    auto [it, added] = symbol_of_key.emplace(key, static_cast<int>(symbol_of_key.size()));
    KernelInfo ki{"(planned) " + spec->kind + " #" + std::to_string(it->second), spec->kind, key};
    if (added) kernels->push_back(ki);
    (*kernel_of)[n->name] = ki;
  }
}

}  // namespace ingot
