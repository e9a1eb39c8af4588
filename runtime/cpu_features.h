// The host CPU's features under LLVM's names ("avx2", "fma", "avx512vnni", ...), detected with
// cpuid and xgetbv the way LLVM's host detection does (AVX and AVX-512 count only when the OS
// saves their registers). The bundle lists the features its kernels may use; the runtime checks
// them here before loading any code. No dependency on LLVM.
#pragma once

#include <string>
#include <vector>

namespace ingot {

struct CpuFeatures {
  std::vector<std::string> present;  // sorted
  // Whether this runtime knows how to detect `name` (an LLVM x86 feature name).
  static bool known(const std::string& name);
  bool has(const std::string& name) const;
};

// Detected once, then cached.
const CpuFeatures& host_cpu_features();

// Checks that the host has every feature of `required` (LLVM names; a leading '+' is allowed, and
// entries starting with '-' disable a feature, so they require nothing). Returns "" when all are
// present, otherwise a message naming each missing or unknown feature.
std::string check_cpu_features(const std::vector<std::string>& required);

}  // namespace ingot
