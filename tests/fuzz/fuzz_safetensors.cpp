// libFuzzer target for the Hugging Face readers. The same bytes go to the safetensors parser
// (touching every byte of every tensor it accepts), the sharded-checkpoint index parser, the
// config.json and generation_config.json parsers, and both tokenizer parsers. Beyond "no crash,
// no sanitizer report" it checks that an accepted tokenizer is one the runtime accepts too.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "frontend/hf_config.h"
#include "frontend/safetensors.h"
#include "frontend/tokenizer_hf.h"
#include "tests/common/status.h"

namespace {

void fuzz_safetensors(const std::string& bytes) {
  auto file = ingot::SafetensorsFile::parse(ingot::MappedFile::from_bytes("fuzz.safetensors", bytes));
  if (!file.ok()) return;
  uint64_t checksum = 0;
  for (const auto& info : (*file)->tensors()) {
    auto t = (*file)->tensor(info.name);
    if (!t.ok()) {
      std::fprintf(stderr, "accepted tensor '%s' cannot be read: %s\n", info.name.c_str(), t.message().c_str());
      std::abort();
    }
    if ((*t)->nbytes() != info.bytes) std::abort();
    for (size_t i = 0; i < (*t)->nbytes(); ++i) checksum += (*t)->raw()[i];  // ASan checks every byte
  }
  if (checksum == 1) std::fputc('\0', stderr);  // keep the loop from being optimized away
}

// An accepted spec must be valid for the runtime, and encoding must not crash.
void check_tokenizer(const ingot::StatusOr<ingot::TokenizerSpec>& spec) {
  if (!spec.ok()) return;
  std::string error;
  auto tok = take(ingot::Tokenizer::create(*spec), &error);
  if (!tok) {
    std::fprintf(stderr, "accepted tokenizer is rejected by the runtime: %s\n", error.c_str());
    std::abort();
  }
  (void)tok->encode("Hello world, 123 <s>", /*add_special=*/true, /*parse_special=*/true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  fuzz_safetensors(bytes);
  // Shards resolve in a folder that does not exist: only the index's validation runs.
  (void)ingot::SafetensorsCheckpoint::parse_index(bytes, "fuzz.index.json", "/nonexistent-ingot-fuzz-dir");
  (void)ingot::parse_hf_config(bytes, "config.json");
  (void)ingot::parse_hf_generation_config(bytes, "generation_config.json");
  check_tokenizer(ingot::parse_hf_tokenizer_json(bytes, "tokenizer.json"));
  check_tokenizer(ingot::parse_sentencepiece_model(bytes, "tokenizer.model"));
  return 0;
}
