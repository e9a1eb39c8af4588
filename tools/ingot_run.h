// The ingot commands that run a bundle: run, bench, perplexity.
#pragma once

#include <string>
#include <vector>

namespace ingot {
int cmd_run(const std::vector<std::string>& args);
int cmd_bench(const std::vector<std::string>& args);
int cmd_perplexity(const std::vector<std::string>& args);
}  // namespace ingot
