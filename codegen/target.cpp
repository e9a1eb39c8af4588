#include "codegen/target.h"

#include <algorithm>

#include <llvm/ADT/StringMap.h>
#include <llvm/ADT/StringRef.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/TargetParser/Host.h>

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

}  // namespace ingot
