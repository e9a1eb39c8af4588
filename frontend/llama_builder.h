// Builds LLaMA-family decoder graphs from primitive ops, the way a generic converter emits them:
// RMS norm as power/mean/add/sqrt/divide/multiply, attention as matmul/scale/mask/softmax/matmul,
// the KV cache as state variables (ReadValue -> Concat -> Assign). Fusion is the passes' job.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "ir/model.h"
#include "ir/status.h"

namespace ingot {

enum class RopeLayout {
  Interleaved,  // GGUF / llama.cpp: rotate adjacent pairs (x0, x1), (x2, x3), ...
  RotateHalf,   // Hugging Face: rotate (x[i], x[i + d/2])
};

struct LlamaConfig {
  int64_t vocab = 0;
  int64_t dim = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t ffn = 0;
  int64_t max_context = 0;
  double rms_eps = 1e-5;
  double rope_base = 10000.0;
  RopeLayout rope_layout = RopeLayout::Interleaved;
  bool all_logits = false;  // false: logits for the last position only
  int64_t head_dim() const { return n_heads ? dim / n_heads : 0; }
  Status validate() const;
};

// Weights by llama.cpp's GGUF tensor names ("token_embd.weight", "blk.0.attn_q.weight", ...),
// each 2-D as [out, in] (1-D for norms). The builder adds the Constant nodes it is handed; any
// non-f32 weight gets a Convert to f32 after it.
using WeightProvider = std::function<StatusOr<std::shared_ptr<const Tensor>>(const std::string& name,
                                                                             const std::vector<int64_t>& shape)>;

// The graph: inputs `token_ids` i64[tokens] and `pos` i64[] (the position of the first new
// token, which must equal the number of tokens already in the KV cache); output `logits`
// f32[1, vocab] (or [tokens, vocab] with all_logits); per layer two state variables
// "kv.<layer>.k" and "kv.<layer>.v" of f32[max_context, n_kv_heads, head_dim].
StatusOr<std::unique_ptr<Model>> build_llama(const LlamaConfig& config, const WeightProvider& weights,
                                             const std::string& model_name);

}  // namespace ingot
