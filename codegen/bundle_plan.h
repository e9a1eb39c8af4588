// Which kernel computes which node of a model: made by build_bundle_kernels, read by the bundle's
// tensors (packing) and the schedule. Separate from bundle_writer.h to keep kernels.h out of it.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "codegen/kernels.h"

namespace ingot {

class Node;

struct BundleKernelPlan {
  std::vector<KernelSpec> specs;                // one per distinct kernel; specs[i].name is its symbol
  std::vector<std::vector<std::string>> nodes;  // per spec: the nodes it computes
  std::map<const Node*, size_t> of_node;        // node -> spec index
  int unsupported = 0;
  std::map<std::string, int> unsupported_reasons;
};

}  // namespace ingot
