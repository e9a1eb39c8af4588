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

// The target `cpu` names ("native": the host; otherwise an LLVM CPU name such as x86-64-v3,
// znver3, skylake-avx512) with every feature that CPU has. An unknown name is an error listing
// what to use instead. Returns false with *error set.
bool named_target(const std::string& cpu, TargetInfo* out, std::string* error);

}  // namespace ingot
