#include "codegen/target.h"

#include <algorithm>

#include <llvm/ADT/StringMap.h>
#include <llvm/ADT/StringRef.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/MC/MCSubtargetInfo.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/Target/TargetOptions.h>
#include <llvm/TargetParser/Host.h>
#include <memory>

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

bool named_target(const std::string& cpu, TargetInfo* out, std::string* error) {
  if (cpu.empty() || cpu == "native") {
    *out = host_target();
    return true;
  }
  llvm::InitializeNativeTarget();
  TargetInfo t;
  t.triple = llvm::sys::getProcessTriple();
  t.cpu = cpu;
  t.llvm_version = LLVM_VERSION_STRING;
  std::string why;
  const llvm::Target* target = llvm::TargetRegistry::lookupTarget(t.triple, why);
  if (!target) {
    *error = "no LLVM target for " + t.triple + ": " + why;
    return false;
  }
  std::unique_ptr<llvm::MCSubtargetInfo> sti(target->createMCSubtargetInfo(t.triple, cpu, ""));
  if (!sti || !sti->isCPUStringValid(cpu)) {
    *error = "unknown target cpu '" + cpu + "' (use native, or an LLVM CPU name such as x86-64-v3, znver3, skylake-avx512)";
    return false;
  }
  // Instruction-set features only: the ones LLVM can detect on a host (its tuning flags such as
  // "fast-15bytenop" say nothing about whether a CPU can run the code).
  const auto detectable = llvm::sys::getHostCPUFeatures();
  for (const llvm::SubtargetFeatureKV& kv : sti->getAllProcessorFeatures())
    if (sti->getFeatureBits().test(kv.Value) && detectable.count(kv.Key)) t.features.push_back(kv.Key);
  std::sort(t.features.begin(), t.features.end());
  *out = std::move(t);
  return true;
}

}  // namespace ingot
