// Next-token sampling: penalties, then top-k, top-p, min-p and temperature, then a seeded draw.
// Temperature 0 is greedy (argmax after penalties), so a greedy run is exactly reproducible.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace ingot {

struct SamplingParams {
  float temperature = 0.8f;     // 0: greedy
  int32_t top_k = 40;           // 0: off
  float top_p = 0.95f;          // 1: off
  float min_p = 0.05f;          // 0: off; keep tokens with p >= min_p * p_max
  float repeat_penalty = 1.0f;  // 1: off; logits of recent tokens: positive / r, negative * r
  int32_t repeat_last_n = 64;   // how many recent tokens the penalties look at (-1: all)
  float presence_penalty = 0;   // subtracted once from the logit of every recent token
  float frequency_penalty = 0;  // subtracted from a recent token's logit once per occurrence (OpenAI's)
  uint64_t seed = 0;
  // An error message for out-of-range values ("" when valid).
  std::string validate() const;
};

class Sampler {
 public:
  explicit Sampler(SamplingParams p) : params_(p), rng_(p.seed) {}
  // Picks the next id from `logits` (one per vocabulary entry). `history` is every id so far
  // (prompt and generated); the penalties look at its last repeat_last_n entries.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);
  void reseed(uint64_t seed) { rng_.seed(seed); }
  // For speculative sampling (runtime/speculative.h). The distribution sample() draws from, one
  // probability per vocabulary entry (0 outside the candidates it keeps): the same penalties,
  // top-k, top-p, min-p and temperature. Greedy (temperature 0 or top-k 1): 1 at the argmax.
  // Keep in step with sample() (SamplerTest and SpeculativeTest compare the two).
  void probabilities(std::span<const float> logits, std::span<const int32_t> history, std::vector<float>* probs);
  // A draw from non-negative weights (normalized or not) with this sampler's random stream; the
  // last positive entry if rounding runs past the end, -1 if none is positive.
  int32_t draw(std::span<const float> weights);
  // A number in [0, 1) from this sampler's random stream.
  double random() { return uniform(); }
  const SamplingParams& params() const { return params_; }

 private:
  bool weigh(std::span<const float> logits, std::span<const int32_t> history, std::vector<double>* w);
  double uniform();  // [0, 1), the same sequence on every platform for a seed
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;  // reused buffer: (logit, id)
};

}  // namespace ingot
