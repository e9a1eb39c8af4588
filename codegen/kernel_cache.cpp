#include "codegen/kernel_cache.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "codegen/kernel_registry.h"
#include "codegen/kernels.h"
#include "runtime/atomic_file.h"
#include "runtime/sha256.h"

namespace ingot {
namespace {

// The running compiler, as ccache's default compiler check sees it: path, size and modification
// time of the executable. Read once: it cannot change while the process runs.
const std::string& compiler_identity() {
  static const std::string identity = [] {
    char path[4096];
    const ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    std::string id = n > 0 ? std::string(path, static_cast<size_t>(n)) : std::string("unknown");
    struct stat st {};
    if (n > 0 && stat(id.c_str(), &st) == 0)
      id += "\n" + std::to_string(st.st_size) + "\n" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
    return id;
  }();
  return identity;
}

// Length-prefixed, so that no two lists of fields hash alike.
void feed(Sha256& h, std::string_view field) {
  const uint64_t n = field.size();
  h.update(&n, sizeof n);
  h.update(field);
}

}  // namespace

KernelCache KernelCache::from_environment() {
  const char* dir = std::getenv("INGOT_KERNEL_CACHE");
  return KernelCache(dir ? dir : "");
}

std::string KernelCache::key(const std::vector<KernelSpec>& specs, const std::string& tier) {
  Sha256 h;
  feed(h, "ingot kernel set 1");
  feed(h, compiler_identity());
  feed(h, tier);
  for (const KernelSpec& spec : specs) {
    feed(h, spec.name);
    feed(h, spec.kind);
    feed(h, family_of(spec).key(spec));
  }
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (uint8_t b : h.finish()) {
    hex += kHex[b >> 4];
    hex += kHex[b & 15];
  }
  return hex;
}

std::optional<std::string> KernelCache::load(const std::string& key) const {
  if (!enabled()) return std::nullopt;
  std::ifstream f(dir_ + "/" + key + ".so", std::ios::binary);
  if (!f) return std::nullopt;
  std::ostringstream bytes;
  bytes << f.rdbuf();
  // Not an ELF file (an empty or foreign file put there by hand): a miss, compiled and replaced.
  if (f.bad() || bytes.str().compare(0, 4, "\x7f" "ELF") != 0) return std::nullopt;
  return bytes.str();
}

void KernelCache::store(const std::string& key, std::string_view object) const {
  if (!enabled()) return;
  mkdir(dir_.c_str(), 0755);  // an existing folder is fine; any other failure shows in the write
  (void)write_file_atomic(dir_ + "/" + key + ".so", object);
}

}  // namespace ingot
