// libFuzzer target for what follows the GGUF reader: the importer and architecture builder (GGUF
// metadata and tensors to IR, with the caps of frontend/limits.h), the GGUF tokenizer reader and
// the tokenizer constructor, then one encode and decode. The input is written to an anonymous
// memfd and imported by its /proc path, as `ingotc` imports a file. Beyond "no crash, no sanitizer
// report, no hang": every error names the file.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "frontend/importer.h"
#include "runtime/tokenizer.h"

namespace {

void must_name(const std::string& message, const std::string& path) {
  if (message.find(path) == std::string::npos && message.find("fuzz") == std::string::npos) {
    std::fprintf(stderr, "error without the file name: %s\n", message.c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = ::memfd_create("fuzz.gguf", MFD_CLOEXEC);
  if (fd < 0) return 0;
  size_t done = 0;
  while (done < size) {
    const ssize_t w = ::write(fd, data + done, size - done);
    if (w <= 0) break;
    done += static_cast<size_t>(w);
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  auto model = ingot::import_model(path);
  if (!model.ok()) must_name(model.message(), path);
  auto spec = ingot::import_tokenizer(path);
  if (!spec.ok()) {
    must_name(spec.message(), path);
  } else if (auto tok = ingot::Tokenizer::create(std::move(*spec)); tok.ok()) {
    std::vector<int32_t> ids = (*tok)->encode("Hello world, 123 ünïcode!", true);
    (void)(*tok)->decode(ids);
  }
  ::close(fd);
  return 0;
}
