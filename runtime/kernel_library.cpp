#include "runtime/kernel_library.h"

#include <cerrno>
#include <cstring>

#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

namespace ingot {
namespace {

bool write_all(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

StatusOr<std::unique_ptr<KernelLibrary>> KernelLibrary::load(const std::string& name, const uint8_t* data, size_t size) {
  if (size == 0) return Status::Error(name + ": the kernels section is empty");
  const int fd = ::memfd_create("ingot-kernels", MFD_CLOEXEC);
  if (fd < 0) return Status::Error(StatusCode::io, name + ": memfd_create failed: " + std::strerror(errno));
  if (!write_all(fd, data, size)) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    return Status::Error(StatusCode::io, name + ": writing the kernels to memory failed: " + why);
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  // RTLD_LOCAL: two bundles loaded at once may export the same symbol names.
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  // The loader mapped what it needs; the descriptor is no longer needed either way.
  ::close(fd);
  if (!handle) {
    const char* msg = ::dlerror();
    return Status::Error(name + ": cannot load the kernels: " + (msg ? msg : "dlopen failed"));
  }
  std::unique_ptr<KernelLibrary> lib(new KernelLibrary());
  lib->name_ = name;
  lib->handle_ = handle;
  return lib;
}

KernelLibrary::~KernelLibrary() {
  if (handle_) ::dlclose(handle_);
}

StatusOr<void*> KernelLibrary::symbol(const std::string& name) const {
  ::dlerror();
  void* p = ::dlsym(handle_, name.c_str());
  if (!p) return Status::Error(name_ + ": the kernels do not export '" + name + "'");
  return p;
}

}  // namespace ingot
