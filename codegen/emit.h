// Internal to codegen/: the IR emitters called by the compiler driver (compile.cpp). Forward
// declarations only, so this header pulls in no LLVM headers.
#pragma once

#include "codegen/kernels.h"

namespace llvm {
class Module;
}  // namespace llvm

namespace ingot {

struct EmitTarget {
  bool avx2 = false;  // x86 AVX2 integer intrinsics (pmaddubsw, pmaddwd, psignb) may be used
};

// Adds the exported function `spec.name` (the C ABI of kernels.h) to `module`.
Status emit_kernel(llvm::Module& module, const KernelSpec& spec, const CodegenOptions& options, const EmitTarget& target);

// The generators of emit_attention.cpp and emit_misc.cpp, dispatched by emit_kernel.
Status emit_attention(llvm::Module& module, const KernelSpec& spec);
Status emit_embedding(llvm::Module& module, const KernelSpec& spec);
Status emit_rope_table(llvm::Module& module, const KernelSpec& spec);

}  // namespace ingot
