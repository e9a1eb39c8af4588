// The kernel the code generator's registry chooses for each node of a model, without generating
// code (`ingotc viz` and `ingotc diff` of a MODEL). Its own translation unit: codegen's headers and
// the frontend's cannot meet in one.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ir/model.h"

namespace ingot {

struct KernelInfo {
  std::string symbol, kind, description;
};

// Fills kernel_of (node name -> kernel) and kernels (one entry per distinct spec, in node order).
void plan_node_kernels(const Model& m, std::map<std::string, KernelInfo>* kernel_of, std::vector<KernelInfo>* kernels);

}  // namespace ingot
