// The CPU target kernels are generated for: a CPU tier (runtime/cpu_features.h) resolved into
// what LLVM needs. No LLVM types leak out of codegen/.
#pragma once

#include <string>
#include <vector>

namespace ingot {

struct TargetInfo {
  std::string triple;                 // "x86_64-pc-linux-gnu"
  std::string tier;                   // "x86-64-v3"; empty for host_target()
  std::string cpu;                    // the LLVM CPU name: "x86-64-v3" (host_target(): "znver3")
  std::vector<std::string> features;  // instruction-set features the code may use, sorted
  std::string llvm_version;
};

// What LLVM detects for the machine this runs on (for `ingotc --version`; never a compile target).
TargetInfo host_target();

// Resolves a --target name: a tier name (x86-64-v2, x86-64-v3, x86-64-v4, avx512) or "native", the most
// demanding tier this host runs (detected as the runtime detects it). `features` is exactly the
// tier's list. An unknown name is an error listing the tiers. Returns false with *error set.
bool named_target(const std::string& name, TargetInfo* out, std::string* error);

// `ingotc compile` without --target: every tier, so the bundle runs on any x86-64-v2 CPU and uses
// the best code each CPU can run.
inline constexpr const char* kDefaultTarget = "portable";

// Resolves a --target value: a tier name, "native", "portable" (every tier) or a comma-separated
// list of those. Duplicates collapse and the result is in cpu_tiers() order (most portable first).
// An unknown or empty name is an error listing the choices. Returns false with *error set.
bool resolve_targets(const std::string& spec, std::vector<TargetInfo>* out, std::string* error);

// The instruction-set features (LLVM's host-detectable names) LLVM enables for `llvm_cpu` plus
// `feature_string` ("+avx2,+fma"), sorted: what code generated for that target may use.
// Empty on an unknown CPU name.
std::vector<std::string> llvm_isa_features(const std::string& llvm_cpu, const std::string& feature_string);

// "+a,+b,..." for LLVM from a feature list.
std::string llvm_feature_string(const std::vector<std::string>& features);

}  // namespace ingot
