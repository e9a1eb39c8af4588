#include "codegen/target.h"

#include <algorithm>
#include <memory>

#include <llvm/ADT/StringMap.h>
#include <llvm/ADT/StringRef.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/MC/MCSubtargetInfo.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/TargetParser/Host.h>

#include "runtime/cpu_features.h"

namespace ingot {

TargetInfo host_target() {
  TargetInfo t;
  t.triple = llvm::sys::getProcessTriple();
  t.cpu = llvm::sys::getHostCPUName().str();
  for (auto& f : llvm::sys::getHostCPUFeatures())
    if (f.second) t.features.push_back(f.first().str());
  std::sort(t.features.begin(), t.features.end());
  t.llvm_version = LLVM_VERSION_STRING;
  return t;
}

bool named_target(const std::string& name, TargetInfo* out, std::string* error) {
  const CpuTier* tier = nullptr;
  if (name.empty() || name == "native") {
    // What this process can run, AMX included only with the OS's grant (which this asks for), so
    // that code compiled for `native` runs right here.
    tier = best_cpu_tier(usable_cpu_features());
    if (!tier) {
      *error = "--target native: this CPU is below every tier Ingot compiles for (" + cpu_tier_names() + ")";
      return false;
    }
  } else {
    tier = find_cpu_tier(name);
    if (!tier) {
      *error = "unknown target '" + name + "': use portable (every tier), native (the best tier this CPU runs) or tiers, "
               "comma-separated: " + cpu_tier_names();
      return false;
    }
  }
  TargetInfo t;
  t.triple = llvm::sys::getProcessTriple();
  t.tier = tier->name;
  t.cpu = tier->llvm_cpu;
  t.features = tier->features;
  t.llvm_version = LLVM_VERSION_STRING;
  *out = std::move(t);
  return true;
}

bool resolve_targets(const std::string& spec, std::vector<TargetInfo>* out, std::string* error) {
  const std::vector<CpuTier>& tiers = cpu_tiers();
  std::vector<bool> wanted(tiers.size(), false);
  for (size_t at = 0; at <= spec.size();) {
    const size_t comma = std::min(spec.find(',', at), spec.size());
    const std::string name = spec.substr(at, comma - at);
    at = comma + 1;
    if (name == "portable") {
      wanted.assign(tiers.size(), true);
      continue;
    }
    if (name.empty()) {
      *error = "--target '" + spec + "' has an empty name: use portable (every tier), native (the best tier this CPU "
               "runs) or tiers, comma-separated: " + cpu_tier_names();
      return false;
    }
    TargetInfo t;
    if (!named_target(name, &t, error)) return false;
    for (size_t i = 0; i < tiers.size(); ++i)
      if (t.tier == tiers[i].name) wanted[i] = true;
  }
  out->clear();
  for (size_t i = 0; i < tiers.size(); ++i) {
    if (!wanted[i]) continue;
    TargetInfo t;
    if (!named_target(tiers[i].name, &t, error)) return false;
    out->push_back(std::move(t));
  }
  return true;
}

std::vector<std::string> llvm_isa_features(const std::string& llvm_cpu, const std::string& feature_string) {
  llvm::InitializeNativeTarget();
  const std::string triple = llvm::sys::getProcessTriple();
  std::string why;
  const llvm::Target* target = llvm::TargetRegistry::lookupTarget(triple, why);
  if (!target) return {};
  std::unique_ptr<llvm::MCSubtargetInfo> sti(target->createMCSubtargetInfo(triple, llvm_cpu, feature_string));
  if (!sti || !sti->isCPUStringValid(llvm_cpu)) return {};
  // LLVM's host detection names the instruction-set features it knows (true or false); tuning
  // flags such as "fast-15bytenop" are not among them. It leaves out "evex512" on CPUs without
  // AVX-512 (AMD Zen 3), so the runtime's own list of detectable names counts too: the result
  // must not depend on the host.
  const auto detectable = llvm::sys::getHostCPUFeatures();
  std::vector<std::string> out;
  for (const llvm::SubtargetFeatureKV& kv : sti->getAllProcessorFeatures())
    if (sti->getFeatureBits().test(kv.Value) && (detectable.count(kv.Key) || CpuFeatures::known(kv.Key))) out.push_back(kv.Key);
  std::sort(out.begin(), out.end());
  return out;
}

std::string llvm_feature_string(const std::vector<std::string>& features) {
  std::string s;
  for (const std::string& f : features) s += (s.empty() ? "+" : ",+") + f;
  return s;
}

}  // namespace ingot
