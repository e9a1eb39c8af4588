// libFuzzer target for the bundle loader's parsing (runtime/bundle.h). Beyond "no crash, no
// sanitizer report": every error names the input, a bundle that opens has every section and every
// tensor inside the input (their first and last bytes are read), and verify() either passes or
// names a section. Kernels are never loaded: that would run the input as code.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "runtime/bundle.h"
#include "tests/common/status.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string error;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto b = take(ingot::Bundle::from_bytes("fuzz.ingot", bytes, ingot::BundleOpenOptions{.check_cpu = false, .tier = {}}), &error);
  if (!b) {
    if (error.rfind("fuzz.ingot: ", 0) != 0) {
      std::fprintf(stderr, "error without the file name: %s\n", error.c_str());
      std::abort();
    }
    return 0;
  }
  unsigned sum = 0;
  for (const auto& s : b->sections()) {
    if (s.offset + s.size > size) {
      std::fprintf(stderr, "a section lies outside the input\n");
      std::abort();
    }
    auto span = b->bytes(s);
    if (!span.empty()) sum += span.front() + span.back();
  }
  for (int i = 0; i < b->tensor_count(); ++i) {
    const auto& t = b->manifest().tensors(i);
    const uint8_t* p = b->tensor_data(i);
    if (t.size() == 0) continue;
    if (!p) {
      std::fprintf(stderr, "tensor %d has bytes but no data\n", i);
      std::abort();
    }
    sum += p[0] + p[t.size() - 1];
  }
  if (!succeeded(b->verify(), &error) && error.find("fuzz.ingot: section ") != 0) {
    std::fprintf(stderr, "verify error without a section: %s\n", error.c_str());
    std::abort();
  }
  sum += static_cast<unsigned>(b->check_cpu().size());
  // Every kernel set names a kernels section of the file (or none, in a bundle without kernels).
  for (int i = 0; i < static_cast<int>(b->kernel_sets().size()); ++i) {
    const ingot::KernelSet& k = b->kernel_sets()[size_t(i)];
    if (k.section >= static_cast<int>(b->sections().size()) ||
        (k.section >= 0 && b->sections()[size_t(k.section)].kind != uint32_t(ingot::bundle::SectionKind::kernels))) {
      std::fprintf(stderr, "kernel set %d names section %d, not a kernels section\n", i, k.section);
      std::abort();
    }
    sum += static_cast<unsigned>(b->check_cpu(i).size());
  }
  asm volatile("" : : "r"(sum) : "memory");
  return 0;
}
