// Compiled kernel sets kept between compiles, like ccache for LLVM: a bundle's kernels for one
// tier are a pure function of the compiler, the tier and the kernel specs, so a second compile of
// the same model shape and types (another quantization of the rest, another context length,
// another chat template, a re-signed bundle, the test suite compiling stories260K twenty times)
// takes the shared object from the cache instead of running LLVM again.
//
// The cache is a folder named by $INGOT_KERNEL_CACHE (unset or empty: no cache). An entry is one
// file, <key>.so, whose key is the SHA-256 of:
//   - the compiler: the running executable's path, size and modification time (as ccache's
//     default compiler check: a rebuilt compiler misses every older entry);
//   - the tier;
//   - every kernel's symbol and family key (KernelFamily::key: everything that distinguishes two
//     kernels, the same key that merges identical kernels inside a bundle).
// Entries are written atomically (a temporary renamed into place), so concurrent compiles share
// a folder safely; nothing is ever evicted (delete the folder to empty it). The folder is trusted
// as the compiler itself is: its shared objects go into bundles unchanged, and the bundle written
// is still opened and checked as `ingot` opens it; an entry that is not an ELF file is taken for
// a miss and replaced. A cache that cannot be read or written is skipped with no error: the
// kernels are compiled as without one.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
  // The shared object stored under `key`, if any.
  std::optional<std::string> load(const std::string& key) const;
  // Stores `object` under `key` (best effort: a failure leaves the cache as it was).
  void store(const std::string& key, std::string_view object) const;

 private:
  std::string dir_;
};

}  // namespace ingot
