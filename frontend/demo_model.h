// The built-in demo model: a deterministic tiny LLaMA with a byte-level vocabulary and random
// weights, so that `make demo` and tests have a real decoder graph without any model file.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "frontend/llama_builder.h"
#include "ir/model.h"

namespace ingot {

inline constexpr int64_t kDemoBos = 256;
inline constexpr int64_t kDemoEos = 257;

LlamaConfig demo_config();
// Same seed, same weights, on every machine.
StatusOr<std::unique_ptr<Model>> build_demo_model(uint64_t seed = 42);

// Byte-level tokenizer of the demo: BOS, then one token per byte.
std::vector<int64_t> demo_tokenize(const std::string& text);
// "a", "\n" shown as "<0x0A>", "<bos>", "<eos>".
std::string demo_token_text(int64_t id);

}  // namespace ingot
