// What a kernels section may contain, checked on its bytes before anything maps or runs it.
//
// A kernels section is an ELF shared object (codegen links it with -nostartfiles). The runtime
// loads it with dlopen, and the dynamic loader would run any constructor the object declares, call
// IFUNC resolvers, follow library search paths and load other libraries. inspect_kernel_object
// refuses an object that would make loading run any code or load anything but libc and libm, and
// returns the object's own defined symbols: the runtime resolves kernels only among these (never
// with dlsym, which also searches the libraries the object needs). See docs/security.md.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>

#include "base/status.h"

namespace ingot {

struct KernelObjectSymbol {
  uint64_t value = 0;        // address relative to the object's load base
  uint64_t size = 0;         // bytes
  bool function = false;     // STT_FUNC in an executable segment; otherwise data (STT_OBJECT)
  uint64_t file_offset = 0;  // data: where its bytes are in the image
};

struct KernelObjectInfo {
  std::map<std::string, KernelObjectSymbol> defined;  // the object's own exported definitions
  // The bytes of a defined data symbol (empty if there is no such symbol or it is a function).
  std::span<const uint8_t> data(std::span<const uint8_t> image, const std::string& symbol) const;
};

// `name` names the bundle in messages. Codes: invalid_argument.
StatusOr<KernelObjectInfo> inspect_kernel_object(const std::string& name, std::span<const uint8_t> image);

}  // namespace ingot
