// `ingotc check BUNDLE MODEL`: every kernel of a bundle against the reference evaluator, step by step.
#pragma once

#include <string>
#include <vector>

namespace ingot {

int cmd_check(const std::vector<std::string>& args);

}  // namespace ingot
