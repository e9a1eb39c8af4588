// The largest model shapes Ingot imports. Generous (405B-class models have 126 layers, hidden size
// 16384, ffn 53248, 128 heads, a 128k vocabulary and a 128k context) but finite, so that a forged or
// corrupt file is rejected at once with a message naming the file and the field, instead of
// building millions of layers or sizing a KV cache of terabytes. docs/architecture.md ("Import")
// lists them.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace ingot {

struct ModelLimit {
  int64_t max;
  const char* noun;  // "layers": "... is more than the 4096 layers Ingot accepts"
};

inline constexpr ModelLimit kMaxLayers{4096, "layers"};
inline constexpr ModelLimit kMaxEmbedding{int64_t{1} << 17, "embedding dimensions"};        // 131072
inline constexpr ModelLimit kMaxFeedForward{int64_t{1} << 20, "feed-forward dimensions"};  // 1048576
inline constexpr ModelLimit kMaxHeads{4096, "attention heads"};
inline constexpr ModelLimit kMaxHeadDim{4096, "dimensions per head"};
inline constexpr ModelLimit kMaxVocab{int64_t{1} << 22, "vocabulary entries"};  // 4194304
inline constexpr ModelLimit kMaxContext{int64_t{1} << 22, "context positions"};  // 4194304 tokens

// "FILE: FIELD = VALUE is more than the MAX NOUN Ingot accepts", or "... must be positive"; Ok
// when 1 <= value <= max. `where` names the file (empty: no prefix).
inline Status check_model_limit(const std::string& where, const std::string& field, int64_t value, const ModelLimit& limit) {
  const std::string prefix = where.empty() ? std::string() : where + ": ";
  if (value < 1) return Status::Error(prefix + field + " = " + std::to_string(value) + " must be positive");
  if (value > limit.max)
    return Status::Error(prefix + field + " = " + std::to_string(value) + " is more than the " + std::to_string(limit.max) +
                         " " + limit.noun + " Ingot accepts");
  return Status::Ok();
}

}  // namespace ingot
