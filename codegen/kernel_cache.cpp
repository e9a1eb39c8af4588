#include "codegen/kernel_cache.h"

#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "codegen/kernel_registry.h"
#include "codegen/kernels.h"
#include "runtime/atomic_file.h"
#include "runtime/sha256.h"

namespace ingot {
namespace {

namespace fs = std::filesystem;

// Length-prefixed, so that no two lists of fields hash alike.
void feed(Sha256& h, std::string_view field) {
  const uint64_t n = field.size();
  h.update(&n, sizeof n);
  h.update(field);
}

void feed_stat(Sha256& h, const std::string& path, const char* stat_path) {
  feed(h, path);
  struct stat st {};
  if (stat(stat_path, &st) != 0) {
    feed(h, "unreadable");
    return;
  }
  feed(h, std::to_string(st.st_dev) + " " + std::to_string(st.st_ino) + " " + std::to_string(st.st_size) + " " +
              std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec));
}

std::string hex(const Sha256::Digest& d, size_t bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < bytes; ++i) {
    s += kHex[d[i] >> 4];
    s += kHex[d[i] & 15];
  }
  return s;
}

// The first executable file named `program` in a folder of $PATH, as the linker driver is found.
std::string find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

struct CompilerIdentity {
  std::string hash;  // 32 hex digits: the subfolder's name
  std::string exe;   // the executable's path
};

CompilerIdentity compute_identity() {
  Sha256 h;
  feed(h, "ingot kernel cache 1");
  CompilerIdentity id;
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  id.exe = n > 0 ? std::string(path, static_cast<size_t>(n)) : std::string("unknown");
  // Through /proc/self/exe: the running file, even when its path has since been replaced.
  feed_stat(h, id.exe, "/proc/self/exe");
  std::vector<std::string> libraries;
  dl_iterate_phdr(
      [](struct dl_phdr_info* info, size_t, void* out) {
        if (info->dlpi_name && *info->dlpi_name) static_cast<std::vector<std::string>*>(out)->push_back(info->dlpi_name);
        return 0;
      },
      &libraries);
  for (const std::string& lib : libraries) feed_stat(h, lib, lib.c_str());
  const std::string cc = find_on_path(CodegenOptions{}.linker);
  feed_stat(h, cc, cc.c_str());
  id.hash = hex(h.finish(), 16);
  return id;
}

// Read when the process starts, before any compile: the files it names are the ones this process
// runs, not ones replaced while it ran.
const CompilerIdentity g_identity = compute_identity();

std::optional<std::string> read_whole(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  std::ostringstream bytes;
  bytes << f.rdbuf();
  if (f.bad()) return std::nullopt;
  return bytes.str();
}

}  // namespace

KernelCache KernelCache::from_environment() {
  const char* dir = std::getenv("INGOT_KERNEL_CACHE");
  return KernelCache(dir ? dir : "");
}

std::string KernelCache::folder() const { return dir_ + "/" + g_identity.hash; }

std::string KernelCache::key(const std::vector<KernelSpec>& specs, const std::string& tier) {
  Sha256 h;
  feed(h, tier);
  for (const KernelSpec& spec : specs) {
    feed(h, spec.name);
    feed(h, spec.kind);
    feed(h, family_of(spec).key(spec));
  }
  return hex(h.finish(), 32);
}

std::optional<std::string> KernelCache::load(const std::string& key) const {
  if (!enabled()) return std::nullopt;
  std::optional<std::string> entry = read_whole(folder() + "/" + key + ".so");
  constexpr size_t kDigest = sizeof(Sha256::Digest);
  if (!entry || entry->size() <= kDigest) return std::nullopt;
  const Sha256::Digest digest = Sha256::hash(entry->data() + kDigest, entry->size() - kDigest);
  if (std::memcmp(digest.data(), entry->data(), kDigest) != 0) return std::nullopt;  // damaged: a miss
  return entry->substr(kDigest);
}

Status KernelCache::store(const std::string& key, std::string_view object) const {
  if (!enabled()) return Status::Ok();
  const std::string sub = folder();
  std::error_code ec;
  if (!fs::is_directory(sub, ec)) {
    fs::create_directories(sub, ec);
    if (ec) return Status::Error("kernel cache " + dir_ + ": cannot create " + sub + ": " + ec.message());
    INGOT_RETURN_IF_ERROR(write_file_atomic(sub + "/compiler", g_identity.exe + "\n"));
    // Older builds of this executable (same path, other identity) will not be run again.
    for (const auto& other : fs::directory_iterator(dir_, ec)) {
      if (other.path() == fs::path(sub) || !other.is_directory(ec)) continue;
      if (read_whole((other.path() / "compiler").string()) == g_identity.exe + "\n") fs::remove_all(other.path(), ec);
    }
  }
  const Sha256::Digest digest = Sha256::hash(object.data(), object.size());
  std::string entry(reinterpret_cast<const char*>(digest.data()), digest.size());
  entry += object;
  return write_file_atomic(sub + "/" + key + ".so", entry).with_context("kernel cache " + dir_);
}

}  // namespace ingot
