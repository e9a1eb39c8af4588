// libFuzzer target for the IR text parser. Beyond "no crash, no sanitizer report", it checks the
// round-trip property on every input that parses: print(parse(print(m))) == print(m).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ir/text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto model = ingot::parse_model(text, "fuzz");
  if (!model.ok()) return 0;
  std::string printed = ingot::print_model(**model);
  auto again = ingot::parse_model(printed, "reprinted");
  if (!again.ok()) {
    std::fprintf(stderr, "printed text does not parse: %s\n%s\n", again.message().c_str(), printed.c_str());
    std::abort();
  }
  if (ingot::print_model(**again) != printed) {
    std::fprintf(stderr, "round trip differs for:\n%s\n", printed.c_str());
    std::abort();
  }
  return 0;
}
