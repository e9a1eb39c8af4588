// Factories of the generic passes, one file each; registered in passes/registry.cpp.
#pragma once

#include <memory>
#include <vector>

#include "passes/pass_manager.h"
#include "passes/pattern.h"

namespace ingot {

std::unique_ptr<Pass> create_dce_pass();               // passes/dce.cpp
std::unique_ptr<Pass> create_cse_pass();               // passes/cse.cpp
std::unique_ptr<Pass> create_constant_folding_pass();  // passes/constant_folding.cpp
std::unique_ptr<Pass> create_simplify_pass();          // passes/simplify.cpp

// The rules of `simplify`, for tests and for pipelines that want them next to other patterns.
std::vector<RewritePattern> simplify_patterns();

}  // namespace ingot
