// Greedy generation with the reference evaluator over an imported decoder graph (inputs
// `token_ids` and `pos`, output `logits`). Slow and exact: the oracle the compiled code must match.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "ir/model.h"
#include "base/status.h"

namespace ingot {

struct GreedyResult {
  std::vector<int32_t> ids;                  // generated ids (the prompt excluded)
  std::vector<float> logits_after_prompt;    // next-token logits after the prompt
  std::vector<float> margins;                // per generated token: top-1 minus top-2 logit
  double prefill_ms = 0, decode_ms = 0;
};

struct GreedyOptions {
  int max_new_tokens = 16;
  int32_t stop_token = -1;                       // stop after producing this id (-1: never)
  std::function<void(int32_t)> on_token;         // streaming callback
};

// Prefills the prompt in one call, then decodes one token per call with the KV cache in state.
StatusOr<GreedyResult> generate_greedy(const Model& model, const std::vector<int32_t>& prompt_ids,
                                       const GreedyOptions& options);

}  // namespace ingot
