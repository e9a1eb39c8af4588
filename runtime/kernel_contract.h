// What a kernel reads and writes: one ArgContract per argument slot, in bytes as a function of
// the call's dims. The compiler states it for every kernel (KernelFamily::contract, from the
// spec the code was generated from) and stores it in the kernels object itself, as the data symbol
// `<kernel>_contract`; the engine reads it from there at load and checks every scheduled call's
// buffers against it. So a manifest edit cannot make a kernel touch memory outside the buffers it
// is given: the sizes the kernel relies on come with its code, not with the manifest.
// Dependency-free (no protobuf, no LLVM): codegen writes it, the runtime reads it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"

namespace ingot {

// The dims words of a kernel call (codegen/kernels.h, the C ABI): dims[0..3] the dynamic sizes,
// dims[kDimWorkCounter] the address of the call's work counter (an int64 the caller zeroes before
// the call; matmuls take their chunks of panels from it) or 0 for the split by thread index.
// Every caller passes kDimWords words.
inline constexpr int kDimWorkCounter = 4;
inline constexpr int kDimWords = 5;

enum class ArgAccess : uint64_t {
  none = 0,        // the kernel does not touch the slot (it may be null)
  read = 1,
  write = 2,
  read_write = 3,
  scratch = 4,     // bytes per thread: the slot holds nthreads of them
};

// bytes = fixed + per_row * round_up(min(rows, cap), multiple), rows = the sum of dims[i] over the
// bits i of dims_mask (cap 0: none). The forms the kernels need: x[T, K] is per_row = 4K of
// dims[0]; a KV cache written at positions past..past+T-1 is per_row = its row over dims[0] +
// dims[1]; a matmul's float-activation scratch holds min(T, block) tokens rounded to whole tiles.
struct ArgContract {
  ArgAccess access = ArgAccess::none;
  uint64_t align = 1;        // the pointer must be a multiple of this (a power of two)
  int64_t fixed = 0;
  int64_t per_row = 0;
  uint64_t dims_mask = 0;    // bits 0..3: dims[0..3]
  int64_t cap = 0;
  int64_t multiple = 1;
};

struct KernelContract {
  std::vector<ArgContract> args;  // slot i; slots past the end are untouched

  static ArgContract rows(ArgAccess a, int64_t bytes_per_row, uint64_t align = 4) {
    return {a, align, 0, bytes_per_row, 1, 0, 1};
  }
  static ArgContract fixed_bytes(ArgAccess a, int64_t bytes, uint64_t align = 4) { return {a, align, bytes, 0, 0, 0, 1}; }
};

// The symbol that holds a kernel's contract in the kernels object.
inline std::string contract_symbol(const std::string& kernel) { return kernel + "_contract"; }

// Little-endian 64-bit words: magic "INGOTKC1", the slot count, then 7 words per slot (the
// fields of ArgContract in order).
std::vector<uint8_t> encode_contract(const KernelContract& c);
// An error says what is malformed (the caller adds the bundle and kernel names).
StatusOr<KernelContract> decode_contract(std::span<const uint8_t> bytes);

// The bytes a slot needs when the sum of its dims is `rows` (>= 0); false on overflow past int64.
bool contract_bytes(const ArgContract& a, int64_t rows, int64_t* bytes);

}  // namespace ingot
