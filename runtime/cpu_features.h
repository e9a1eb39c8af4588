// The host CPU's features under LLVM's names ("avx2", "fma", "avx512vnni", ...), detected with
// cpuid and xgetbv the way LLVM's host detection does (AVX and AVX-512 count only when the OS
// saves their registers), and the CPU tiers kernels are compiled for. A bundle names its tier and
// that tier's feature list; the runtime checks exactly that list here before loading any code.
// No dependency on LLVM.
#pragma once

#include <string>
#include <vector>

namespace ingot {

struct CpuFeatures {
  std::vector<std::string> present;  // sorted
  // cpuid reports AMX tiles, but the OS did not enable tile state (XCR0) or refused this
  // process's request for it (arch_prctl): the AMX features are then absent from `present`.
  bool amx_refused = false;
  // Whether this runtime knows how to detect `name` (an LLVM x86 feature name).
  static bool known(const std::string& name);
  bool has(const std::string& name) const;
};

// Detected once, then cached. AMX counts when the CPU has it and the OS enabled its tile state;
// running tile instructions also needs this process's grant: see usable_cpu_features().
const CpuFeatures& host_cpu_features();
// host_cpu_features(), after asking Linux for AMX tile state when they include AMX (once per
// process; arch_prctl ARCH_REQ_XCOMP_PERM): without the grant, a copy without the AMX features and
// with amx_refused set. Call it only when code that may use AMX is about to be chosen: the grant
// enlarges every signal frame of the process by the 8 KiB of tile state, and a sandbox may refuse it.
const CpuFeatures& usable_cpu_features();
// usable_cpu_features().amx_refused: the CPU has AMX, but this process may not use it.
bool amx_grant_refused();

// A CPU tier: a stable name, the LLVM CPU the kernels are generated for, and every instruction-set
// feature (LLVM names) that code may use. Tiers nest: each has every feature of the ones before it.
// The names are the x86-64 psABI micro-architecture levels, so any x86-64 CPU of that level runs
// the code, whoever made it; host-only extras (AVX-512 FP16, "avx10.1-256") are in no tier. AMX counts only once the OS granted
// this process tile state (detection asks for it).
struct CpuTier {
  const char* name;                   // "x86-64-v3"
  const char* llvm_cpu;               // the LLVM CPU name whose ISA, plus the tier's additions, is `features`
  const char* summary;                // "AVX2, FMA, F16C (Haswell, Zen 1 and later)"
  std::vector<std::string> features;  // sorted
};

// Every tier, from the most portable to the most demanding.
const std::vector<CpuTier>& cpu_tiers();
// nullptr for an unknown name.
const CpuTier* find_cpu_tier(const std::string& name);
// The most demanding tier whose every feature `cpu` has (nullptr if not even the first).
const CpuTier* best_cpu_tier(const CpuFeatures& cpu);
// "x86-64-v2, x86-64-v3, x86-64-v4, avx512"
std::string cpu_tier_names();

// Checks that the host has every feature of `required` (LLVM names; a leading '+' is allowed, and
// entries starting with '-' disable a feature, so they require nothing). Returns "" when all are
// present, otherwise a message naming each missing or unknown feature, the tier the kernels were
// compiled for (`tier`, when not empty) and the best tier this host runs.
std::string check_cpu_features(const std::vector<std::string>& required, const std::string& tier = "");
// The same against a given CPU instead of the host (for tests).
std::string check_cpu_features(const std::vector<std::string>& required, const std::string& tier,
                               const CpuFeatures& cpu);

}  // namespace ingot
