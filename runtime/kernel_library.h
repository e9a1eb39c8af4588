// A shared object loaded from bytes in memory: the kernels section of a bundle. The bytes go into
// an anonymous memfd (memfd_create), which dlopen opens as /proc/self/fd/N; no file is ever
// created on disk, and the memory goes away with the library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"

namespace ingot {

class KernelLibrary {
 public:
  // `name` appears in messages (and as the memfd's name in /proc/self/maps).
  static StatusOr<std::unique_ptr<KernelLibrary>> load(const std::string& name, const uint8_t* data, size_t size);
  ~KernelLibrary();
  KernelLibrary(const KernelLibrary&) = delete;
  KernelLibrary& operator=(const KernelLibrary&) = delete;

  // The address of an exported symbol, or an error naming the missing symbol.
  StatusOr<void*> symbol(const std::string& name) const;

 private:
  KernelLibrary() = default;
  std::string name_;
  void* handle_ = nullptr;
};

}  // namespace ingot
