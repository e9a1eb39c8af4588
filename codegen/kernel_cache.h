// Compiled kernel sets kept between compiles, like ccache for LLVM: a bundle's kernels for one
// tier are a function of the compiler (ingotc and the LLVM/MLIR libraries it runs), the linker,
// the tier and the kernel specs, so a second compile of the same model shape and types (another
// quantization of the rest, another context length, another chat template, a re-signed bundle)
// takes the shared object from the cache instead of running LLVM again.
//
// The cache is a folder named by $INGOT_KERNEL_CACHE (unset or empty: no cache). Each compiler
// has a subfolder named by its identity, the SHA-256 of:
//   - the running executable and every shared library loaded into it (LLVM, MLIR, libstdc++...):
//     each one's path, device, inode, size and modification time, read when the process starts
//     (ccache's default compiler check, extended to the libraries: an upgraded libLLVM misses);
//   - the linker driver `cc` found on PATH, the same way.
// The subfolder also holds `compiler`, the executable's path; when a compiler makes its subfolder,
// it removes the subfolders of older builds of the same executable path (a developer's rebuilt
// ingotc), and keeps those of other executables.
// An entry is <key>.so, key = SHA-256 of the tier and every kernel's symbol, kind and family key
// (KernelFamily::key: everything that distinguishes two kernels, the same key that merges
// identical kernels inside a bundle); its bytes are the SHA-256 of the shared object, then the
// shared object. An entry whose digest does not match (damaged, truncated, put there by hand) is a
// miss and is replaced. Entries are written atomically (a temporary renamed into place), so
// concurrent compiles share a folder safely. The folder is trusted as the compiler itself is: its
// shared objects go into bundles unchanged. A cache that cannot be written changes no bundle: the
// kernels are compiled as without one, and the first failure is reported (store's status).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace ingot {

struct KernelSpec;

class KernelCache {
 public:
  // The cache of $INGOT_KERNEL_CACHE; off when it is unset or empty.
  static KernelCache from_environment();
  explicit KernelCache(std::string dir = {}) : dir_(std::move(dir)) {}

  bool enabled() const { return !dir_.empty(); }
  const std::string& dir() const { return dir_; }

  // The entry's key (64 hex digits) for these specs compiled for `tier`.
  static std::string key(const std::vector<KernelSpec>& specs, const std::string& tier);
  // The shared object stored under `key`, if a whole one is there.
  std::optional<std::string> load(const std::string& key) const;
  // Stores `object` under `key`; an error says why it could not (the cache is then as it was).
  Status store(const std::string& key, std::string_view object) const;

 private:
  std::string folder() const;  // this compiler's subfolder
  std::string dir_;
};

}  // namespace ingot
