// libFuzzer target for the kernels-object inspector (runtime/kernel_object.h), which reads an
// untrusted ELF before dlopen, and for the contract decoder (runtime/kernel_contract.h). Beyond
// "no crash, no sanitizer report": every error names the input, and every symbol an accepted
// object defines lies inside the input (data symbols' bytes are read).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>

#include "runtime/kernel_contract.h"
#include "runtime/kernel_object.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> image(data, size);
  // The tail doubles as a contract blob.
  (void)ingot::decode_contract(image.subspan(size / 2));
  auto info = ingot::inspect_kernel_object("fuzz.so", image);
  if (!info.ok()) {
    if (info.message().rfind("fuzz.so: ", 0) != 0) {
      std::fprintf(stderr, "error without the file name: %s\n", info.message().c_str());
      std::abort();
    }
    return 0;
  }
  unsigned sum = 0;
  for (const auto& [name, sym] : info->defined) {
    if (sym.function) continue;
    const auto bytes = info->data(image, name);
    if (bytes.size() != sym.size || (sym.size > 0 && (bytes.data() < data || bytes.data() + bytes.size() > data + size))) {
      std::fprintf(stderr, "data symbol %s lies outside the input\n", name.c_str());
      std::abort();
    }
    for (uint8_t b : bytes) sum += b;
    (void)ingot::decode_contract(bytes);
  }
  return static_cast<int>(sum & 0);
}
