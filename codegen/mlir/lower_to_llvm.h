// Internal to codegen/: MLIR text (func, linalg, memref, arith, math on memrefs) lowered to an LLVM
// module. The only header of the MLIR path, and it names no MLIR type: MLIR's headers stay inside
// lower_to_llvm.cpp, one translation unit (they cost about 14 s to compile).
#pragma once

#include <memory>
#include <string>

#include "base/status.h"

namespace llvm {
class LLVMContext;
class Module;
}  // namespace llvm

namespace ingot {

// Parses `mlir_text`, verifies it, lowers linalg to loops and everything to the LLVM dialect
// (math functions without an LLVM intrinsic become libm calls), and translates the result into
// an LLVM module in `context`. Errors carry MLIR's diagnostics.
StatusOr<std::unique_ptr<llvm::Module>> lower_mlir_to_llvm(const std::string& mlir_text, llvm::LLVMContext& context);

}  // namespace ingot
