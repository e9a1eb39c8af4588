#include "runtime/kernel_library.h"

#include <cerrno>
#include <cstring>

#include <dlfcn.h>
#include <link.h>
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
  INGOT_ASSIGN_OR_RETURN(KernelObjectInfo info, inspect_kernel_object(name, {data, size}));
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
  // The descriptor stays open as long as the library: glibc recognizes an already loaded library
  // by its name, and a closed descriptor's number (so its /proc/self/fd path) is reused by the
  // next memfd, which would make a second dlopen return this library again.
  if (!handle) {
    ::close(fd);
    const char* msg = ::dlerror();
    return Status::Error(name + ": cannot load the kernels: " + (msg ? msg : "dlopen failed"));
  }
  std::unique_ptr<KernelLibrary> lib(new KernelLibrary());
  lib->name_ = name;
  lib->handle_ = handle;
  lib->fd_ = fd;
  lib->info_ = std::move(info);
  struct link_map* map = nullptr;
  if (::dlinfo(handle, RTLD_DI_LINKMAP, &map) != 0 || !map || !map->l_name || path != map->l_name)
    return Status::Error(name + ": cannot find where the kernels were loaded");
  lib->base_ = static_cast<uintptr_t>(map->l_addr);
  return lib;
}

KernelLibrary::~KernelLibrary() {
  if (handle_) ::dlclose(handle_);
  if (fd_ >= 0) ::close(fd_);
}

StatusOr<void*> KernelLibrary::symbol(const std::string& name) const {
  auto it = info_.defined.find(name);
  if (it == info_.defined.end() || !it->second.function)
    return Status::Error(name_ + ": the kernels object does not define a function '" + name + "'");
  return reinterpret_cast<void*>(base_ + it->second.value);
}

}  // namespace ingot
