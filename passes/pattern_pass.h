// A pass made of rewrite patterns, applied greedily to a fixed point: the shape of the
// simplification pass (passes/simplify.cpp); a sketch of how a fusion would look:
//
//   std::unique_ptr<Pass> create_fuse_rms_norm_pass() {
//     return make_pattern_pass("fuse-rms-norm", {{"rms-norm", rms_norm_pattern(), rewrite_rms_norm}});
//   }
//
// (Nine of the fourteen LLM fusions in passes/fusion/ are patterns; the rest not yet.)
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "passes/pass_manager.h"
#include "passes/pattern.h"

namespace ingot {

std::unique_ptr<Pass> make_pattern_pass(std::string name, std::vector<RewritePattern> patterns, int max_iterations = 16);

}  // namespace ingot
