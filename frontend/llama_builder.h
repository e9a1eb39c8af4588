// Builds LLaMA-family decoder graphs from primitive ops, the way a generic converter emits them:
// RMS norm as power/mean/add/sqrt/divide/multiply, attention as matmul/scale/mask/softmax/matmul,
// the KV cache as state variables (ReadValue -> Concat -> Assign). Fusion is the passes' job.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "ir/model.h"
#include "base/status.h"

namespace ingot {

// Which elements RoPE rotates together (codegen has its own RopeLayout for kernel specs).
enum class RopePairs {
  Interleaved,  // GGUF / llama.cpp: rotate adjacent pairs (x0, x1), (x2, x3), ...
  RotateHalf,   // Hugging Face: rotate (x[i], x[i + d/2])
};

struct RopeScaling {
  enum class Type { None, Linear, Llama3 };
  Type type = Type::None;
  double factor = 1.0;
  // llama3 only: frequencies below/above these wavelength bands are scaled/kept, smoothly between.
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_context = 8192;
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
  RopePairs rope_layout = RopePairs::Interleaved;
  RopeScaling rope_scaling;
  std::vector<double> rope_freq_factors;  // GGUF "rope_freqs.weight": each frequency is divided by its factor
  // Phi-3 LongRoPE: each frequency divided by its long factor when max_context exceeds
  // rope_original_context, else by its short one (llama.cpp picks by its context size the same
  // way), and cos, sin times rope_attn_factor, which scales q.k by its square: the builder folds
  // that into the score scale.
  std::vector<double> rope_factors_long, rope_factors_short;
  int64_t rope_original_context = 0;
  double rope_attn_factor = 1.0;
  int64_t head_dim_override = 0;  // 0: dim / n_heads
  bool qkv_bias = false;          // qwen2: attn_q/k/v carry biases ("blk.N.attn_q.bias", ...)
  // Qwen3, Gemma 3: RMSNorm over each head of Q and K ("attn_q_norm", "attn_k_norm", [head_dim])
  // before RoPE.
  bool qk_norm = false;
  // Phi-3: one [(heads + 2 kv) * head_dim, dim] projection "attn_qkv" for Q, K and V, and one
  // [2 ffn, dim] "ffn_up" holding gate then up.
  bool fused_qkv = false;
  bool fused_gate_up = false;
  // Gemma: embeddings times sqrt(dim) (0: none), a second RMSNorm after attention and after the
  // feed-forward ("post_attention_norm", "post_ffw_norm"), GeGLU with ggml's GELU in place of
  // SwiGLU, and soft-capping cap * tanh(x / cap) of attention scores and final logits (0: none).
  double embed_scale = 0.0;
  bool post_norms = false;
  bool geglu = false;
  double attn_softcap = 0.0;
  double final_softcap = 0.0;
  // Scores are q.k times this (0: 1 / sqrt(head_dim)). Gemma: 1 / sqrt(query_pre_attn_scalar).
  double attn_scale = 0.0;
  // Hugging Face Gemma stores RMSNorm weights w for x * (1 + w); llama.cpp's converter adds the 1.
  double norm_weight_offset = 0.0;
  // Sliding-window attention (off when sliding_window is 0): layer l attends to the last
  // `sliding_window` positions when swa_period is 0 or l % swa_period < swa_period - 1 (llama.cpp's
  // pattern: Gemma 2 even layers, Gemma 3 five of every six), with RoPE base rope_base_swa (0:
  // rope_base).
  int64_t sliding_window = 0;
  int64_t swa_period = 0;
  double rope_base_swa = 0.0;
  bool tied_embeddings = false;   // the output projection reuses token_embd.weight
  bool all_logits = false;        // false: logits for the last position only
  // "none": weights of other types get a Convert to f32 and a MatMul, as a generic converter
  // emits them. "q8": WeightMatMul with llama.cpp's activation formats (q8_0 activations for
  // q8_0/q4_0 weights, q8_K for k-quants, f16 activations for f16 weights; ir/ops.cpp).
  std::string act_quant = "none";
  // The KV cache's element type: f32, or f16 (half the memory; llama.cpp's default). With f16 and
  // act_quant "q8", queries and attention probabilities are rounded to f16 before they meet the
  // cache, as llama.cpp's f16 dot products do.
  ElementType kv_type = ElementType::f32;
  int64_t head_dim() const { return head_dim_override ? head_dim_override : (n_heads ? dim / n_heads : 0); }
  bool is_swa_layer(int64_t layer) const {
    return sliding_window > 0 && (swa_period == 0 || layer % swa_period < swa_period - 1);
  }
  // RoPE inverse frequencies after scaling: head_dim / 2 values (of local layers with `swa`).
  std::vector<double> rope_inv_freq(bool swa = false) const;
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
