// The schedule: an optimized, memory-planned model lowered to the list of kernel calls the runtime
// makes for one forward pass, each argument resolved to an arena offset, a weight tensor of the
// bundle, a state slot or the scratch area. Plain C++, no LLVM.
#pragma once

#include <string>
#include <vector>

#include "codegen/bundle_writer.h"
#include "ir/memory_plan.h"
#include "ir/model.h"
#include "base/status.h"
#include "runtime/proto/bundle.pb.h"

namespace ingot {

// Fills manifest.schedule and the arena offsets of manifest.inputs/outputs. `tensors` is the
// bundle's tensor list in file order (indices are manifest tensor indices). An error names every
// node that has no kernel or builtin yet (the bundle can still be written, without a schedule).
// The Slice the runtime does as its builtin copy_last_row (the last row along axis 0 of a 2-D
// value, what last-position-first leaves before the final norm): no kernel is planned for it.
bool is_last_row_slice(const Node& n);

Status build_schedule(const Model& model, const MemoryPlan& plan, const BundleKernels& kernels,
                      const std::vector<BundleTensor>& tensors, pb::Manifest& manifest);

}  // namespace ingot
