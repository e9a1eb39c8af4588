// A shared object loaded from bytes in memory: the kernels section of a bundle. The bytes are first
// checked (inspect_kernel_object: nothing in them may run at load), then go into an anonymous memfd
// (memfd_create), which dlopen opens as /proc/self/fd/N; no file is ever created on disk, and the
// memory goes away with the library. Symbols resolve only to the object's own definitions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"
#include "runtime/kernel_object.h"

namespace ingot {

class KernelLibrary {
 public:
  // `name` appears in messages (and as the memfd's name in /proc/self/maps).
  static StatusOr<std::unique_ptr<KernelLibrary>> load(const std::string& name, const uint8_t* data, size_t size);
  ~KernelLibrary();
  KernelLibrary(const KernelLibrary&) = delete;
  KernelLibrary& operator=(const KernelLibrary&) = delete;

  // The address of a function the object itself defines and exports, or an error naming the
  // symbol. Never searches other libraries (dlsym would also find libc's `system`).
  StatusOr<void*> symbol(const std::string& name) const;
  const KernelObjectInfo& info() const { return info_; }

 private:
  KernelLibrary() = default;
  std::string name_;
  void* handle_ = nullptr;
  int fd_ = -1;  // the memfd, open until dlclose (see load)
  uintptr_t base_ = 0;  // where the loader mapped the object (link_map l_addr)
  KernelObjectInfo info_;
};

}  // namespace ingot
