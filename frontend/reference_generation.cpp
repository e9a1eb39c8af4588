#include "frontend/reference_generation.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <string>

#include "ir/evaluator.h"

namespace ingot {

namespace {

int32_t argmax(const std::vector<float>& v) {
  // The first maximum wins, as llama.cpp's greedy sampler does.
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

StatusOr<GreedyResult> generate_greedy(const Model& model, const std::vector<int32_t>& prompt_ids,
                                       const GreedyOptions& options) {
  if (prompt_ids.empty()) return Status::Error("the prompt has no tokens (not even BOS)");
  Evaluator ev(model);
  int64_t pos = 0;
  auto step = [&](const std::vector<int32_t>& ids) -> StatusOr<std::vector<float>> {
    std::vector<int64_t> wide(ids.begin(), ids.end());
    std::map<std::string, Tensor> in = {{"token_ids", Tensor::from_i64({static_cast<int64_t>(wide.size())}, wide)},
                                        {"pos", Tensor::scalar_i64(pos)}};
    INGOT_ASSIGN_OR_RETURN(auto out, ev.run(in));
    pos += static_cast<int64_t>(ids.size());
    if (out.empty()) return Status::Error("the model has no outputs");
    const Tensor& logits = out[0];
    if (logits.rank() != 2) return Status::Error("logits must be [rows, vocab], got " + dims_str(logits.shape()));
    // The last row: the next-token distribution after the last input token.
    std::vector<float> all = logits.to_f32_vector();
    int64_t vocab = logits.shape()[1];
    return std::vector<float>(all.end() - vocab, all.end());
  };

  GreedyResult r;
  auto t0 = std::chrono::steady_clock::now();
  INGOT_ASSIGN_OR_RETURN(std::vector<float> logits, step(prompt_ids));
  r.prefill_ms = ms_since(t0);
  r.logits_after_prompt = logits;
  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < options.max_new_tokens; ++i) {
    int32_t next = argmax(logits);
    r.ids.push_back(next);
    float second = -INFINITY;
    for (size_t k = 0; k < logits.size(); ++k)
      if (static_cast<int32_t>(k) != next) second = std::max(second, logits[k]);
    r.margins.push_back(logits[static_cast<size_t>(next)] - second);
    if (options.on_token) options.on_token(next);
    if (next == options.stop_token || i + 1 == options.max_new_tokens) break;
    INGOT_ASSIGN_OR_RETURN(logits, step({next}));
  }
  r.decode_ms = ms_since(t0);
  return r;
}

}  // namespace ingot
