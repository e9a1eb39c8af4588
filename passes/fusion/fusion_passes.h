// The LLM fusions as registered passes (passes/registry.cpp lists them with the generic ones).
#pragma once

#include <span>

#include "passes/pass_manager.h"

namespace ingot::fusion {

// name, summary and factory of every fusion pass, in pipeline order.
std::span<const PassInfo> fusion_passes();
// The fusion part of the default pipeline, in order.
std::vector<std::string> fusion_pipeline();

}  // namespace ingot::fusion
