// The CPU target kernels are generated for. No LLVM types leak out of codegen/.
#pragma once

#include <string>
#include <vector>

namespace ingot {

struct TargetInfo {
  std::string triple;                 // "x86_64-pc-linux-gnu"
  std::string cpu;                    // "znver3"
  std::vector<std::string> features;  // enabled features, sorted: "avx2", "fma", ...
  std::string llvm_version;
};

// What LLVM detects for the machine this runs on.
TargetInfo host_target();

}  // namespace ingot
