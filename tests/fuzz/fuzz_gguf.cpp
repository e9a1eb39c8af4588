// libFuzzer target for the GGUF reader. Beyond "no crash, no sanitizer report": every error names
// the file and an offset, and a file that parses has printable metadata and tensors whose views
// lie inside the input (the first and last byte of each are read).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "frontend/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = ingot::MappedFile::from_bytes("fuzz.gguf", std::string(reinterpret_cast<const char*>(data), size));
  auto gguf = ingot::GgufFile::parse(file);
  if (!gguf.ok()) {
    if (gguf.message().rfind("fuzz.gguf: offset ", 0) != 0) {
      std::fprintf(stderr, "error without file and offset: %s\n", gguf.message().c_str());
      std::abort();
    }
    return 0;
  }
  size_t printed = 0;
  for (const auto& [key, value] : (*gguf)->metadata()) printed += key.size() + value.summary().size();
  unsigned sum = 0;
  for (const auto& info : (*gguf)->tensors()) {
    auto t = (*gguf)->tensor(info.name);
    if (!t.ok()) {
      std::fprintf(stderr, "tensor %s listed but not viewable: %s\n", info.name.c_str(), t.message().c_str());
      std::abort();
    }
    const uint8_t* raw = (*t)->raw();
    if ((*t)->nbytes() != info.bytes || raw < file->data() || raw + info.bytes > file->data() + file->size()) {
      std::fprintf(stderr, "tensor %s lies outside the input\n", info.name.c_str());
      std::abort();
    }
    sum += raw[0] + raw[info.bytes - 1];
  }
  // An opaque use keeps the reads above from being optimized away.
  asm volatile("" : : "r"(printed + sum) : "memory");
  return 0;
}
