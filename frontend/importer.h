// Model import: a GGUF file or a Hugging Face folder becomes an Ingot IR graph of primitive ops,
// its tokenizer and its metadata. Weights stay in the mapped files (zero copy).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "frontend/llama_builder.h"
#include "ir/model.h"
#include "base/status.h"
#include "runtime/tokenizer.h"

namespace ingot {

struct ImportOptions {
  bool all_logits = false;        // logits for every position, not just the last
  // "q8": llama.cpp's activation numerics for quantized weights (8-bit activations); "none": f32
  // activations; "auto": "q8" when the stored projection weights are block-quantized and every
  // one has 8-bit-activation kernels, otherwise "none". The choice is in ImportedModel::config.
  // "ggml": ggml's own numerics bit for bit (activation formats q8_0/q8_1/q8_K and its generic
  // dot products; every GGUF type; the reference evaluator only, no kernels yet).
  // "auto" is "ggml" for the reference evaluator (eval, dump) when the matmul weights are
  // block-quantized, and "q8" where possible when `kernels` (compile).
  std::string act_quant = "auto";
  bool kernels = false;           // the graph becomes a bundle: "auto" picks the kernels' numerics
  int64_t max_context = 0;        // 0: the model's own context length
  ElementType kv_type = ElementType::f32;  // the KV cache: f32 or f16
};

struct TensorSummary {
  std::string name;
  ElementType type;
  std::vector<int64_t> shape;
  uint64_t bytes;
};

struct GenerationDefaults {
  std::optional<double> temperature, top_p, repetition_penalty;
  std::optional<int64_t> top_k, max_new_tokens;
};

struct ImportedModel {
  std::unique_ptr<Model> model;
  LlamaConfig config;
  TokenizerSpec tokenizer;
  std::string architecture;   // "llama", "qwen2", ... (GGUF names; HF classes map onto them)
  std::string format;         // "gguf" ("gguf, split in N files"), "safetensors", ...
  std::string path;
  std::vector<TensorSummary> tensors;
  std::vector<std::pair<std::string, std::string>> metadata;  // key, short printable value
  GenerationDefaults generation;
};

// MODEL is a .gguf file or a Hugging Face folder (config.json + safetensors + tokenizer).
StatusOr<ImportedModel> import_model(const std::string& path, const ImportOptions& options = {});

// What act_quant "auto" becomes for a model whose tensors are `tensors` (see ImportOptions).
// kernels: "q8" when every matmul weight has 8-bit-activation kernels and one is block-quantized,
// else "none"; otherwise "ggml" when every one has ggml numerics and one is block-quantized.
std::string resolve_act_quant(const std::string& requested, const std::vector<TensorSummary>& tensors, bool kernels = false);

// Only the tokenizer: a model or a vocabulary-only GGUF, or a Hugging Face folder.
StatusOr<TokenizerSpec> import_tokenizer(const std::string& path);

// A tensor's Hugging Face name for architecture `arch` (llama, qwen2, qwen3, mistral, gemma2,
// gemma3, phi3) from its llama.cpp GGUF name: "blk.3.attn_q.weight" ->
// "model.layers.3.self_attn.q_proj.weight". Gemma's "post_attention_layernorm" is the norm after
// attention, its pre-feed-forward norm has its own name; Phi-3 fuses QKV and gate-up. A name with
// no counterpart is returned unchanged.
std::string hf_tensor_name(const std::string& name, const std::string& arch);

}  // namespace ingot
