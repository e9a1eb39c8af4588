// Hugging Face model folders: config.json (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM,
// Qwen3ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, Phi3ForCausalLM) and generation_config.json, plus the strict JSON reading shared by the Hugging Face readers
// (safetensors index, tokenizer.json).
//
// Errors name the file and the key: "config.json: 'hidden_size' must be an integer, got string",
// "config.json: architecture 'GPTNeoXForCausalLM' is not supported (supported: LlamaForCausalLM,
// MistralForCausalLM, Qwen2ForCausalLM)". Nothing throws.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/status.h"

namespace ingot {

struct HfRopeScaling {
  std::string type;  // "linear", "llama3" or "longrope" ("su" is read as longrope)
  double factor = 1.0;
  // llama3 only (all required for it).
  double low_freq_factor = 0.0;
  double high_freq_factor = 0.0;
  int64_t original_max_position_embeddings = 0;  // llama3; longrope: optional (else the config's)
  // longrope (Phi-3): per-frequency factors (required) and the attention factor (optional).
  std::vector<double> long_factor, short_factor;
  std::optional<double> attention_factor;
};

struct HfModelConfig {
  std::string architecture;  // "LlamaForCausalLM", ... (the supported list in hf_config.cpp)
  std::string model_type;    // "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "phi3"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;       // default: num_attention_heads
  int64_t max_position_embeddings = 0;   // default as transformers: llama 2048, mistral 131072, qwen2 32768
  int64_t original_max_position_embeddings = 0;  // Phi-3 LongRoPE's original context (0: absent)
  int64_t head_dim = 0;                  // default: hidden_size / num_attention_heads
  double rms_norm_eps = 1e-6;            // transformers' default for all three
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v projections have biases (qwen2: always; llama: "attention_bias")
  bool o_proj_bias = false;     // llama's "attention_bias" also covers o_proj; qwen2's does not
  bool mlp_bias = false;        // llama's "mlp_bias"
  std::string hidden_act = "silu";
  std::string torch_dtype;      // "float32", "bfloat16", ... ("" when absent)
  std::optional<HfRopeScaling> rope_scaling;  // absent, null or type "default": none
  // Mistral: "sliding_window" when not null; Qwen2: only with "use_sliding_window": true.
  std::optional<int64_t> sliding_window;
  int64_t bos_token_id = -1;             // -1 when absent or null
  int64_t eos_token_id = -1;             // the first of eos_token_ids, -1 when none
  std::vector<int64_t> eos_token_ids;    // "eos_token_id" may be a number or a list
  // Gemma 2 and 3 (transformers' defaults when absent; null turns a cap off):
  double query_pre_attn_scalar = 0;      // attention scale 1/sqrt(this); 0: 1/sqrt(head_dim)
  double attn_logit_softcapping = 0;     // 0: none
  double final_logit_softcapping = 0;    // 0: none
  int64_t sliding_window_pattern = 0;    // layer l is local when l % pattern < pattern - 1
  double rope_local_base_freq = 0;       // RoPE base of the local layers (Gemma 3)
  // Gemma3ForConditionalGeneration: the sizes above are text_config's; the checkpoint keeps the
  // language model's tensors under a prefix beside a vision tower, which is not imported.
  bool language_model_only = false;
};

struct HfGenerationConfig {
  bool found = false;  // false: the folder has no generation_config.json (every field empty)
  std::optional<double> temperature;
  std::optional<int64_t> top_k;
  std::optional<double> top_p;
  std::optional<double> repetition_penalty;
  std::optional<int64_t> max_new_tokens;
  std::optional<int64_t> max_length;
  std::optional<bool> do_sample;
  std::optional<int64_t> bos_token_id;
  std::optional<int64_t> pad_token_id;
  std::vector<int64_t> eos_token_ids;  // a number or a list in the file; empty when absent
};

// config.json text; `path` prefixes every error. Validates what the builder relies on: positive
// sizes, heads divisible by KV heads, head_dim * heads == hidden_size unless head_dim is given.
StatusOr<HfModelConfig> parse_hf_config(std::string_view json, std::string_view path);
// DIR/config.json.
StatusOr<HfModelConfig> load_hf_config(const std::string& dir);

StatusOr<HfGenerationConfig> parse_hf_generation_config(std::string_view json, std::string_view path);
// DIR/generation_config.json; a missing file is not an error (found = false).
StatusOr<HfGenerationConfig> load_hf_generation_config(const std::string& dir);

// Shared by the Hugging Face readers.
namespace hf {

// Parses JSON text without exceptions. Errors: "PATH: not valid JSON: parse error at line 3,
// column 7: ...". With reject_duplicate_keys an object that repeats a key is an error
// ("PATH: duplicate key 'k'"); otherwise the last value wins, as Python's json does.
StatusOr<nlohmann::json> parse_json(std::string_view text, std::string_view path,
                                    bool reject_duplicate_keys = false);

// Reads a whole file (mapped); errors name the path.
StatusOr<std::string> read_file(const std::string& path);

bool file_exists(const std::string& path);
std::string join_path(const std::string& dir, const std::string& name);

// A JSON type's name for messages: "string", "integer", "array", ...
std::string json_type_name(const nlohmann::json& v);

}  // namespace hf

}  // namespace ingot
