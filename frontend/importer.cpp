#include "frontend/importer.h"

#include <cmath>
#include <cstdio>

#include "frontend/demo_model.h"

#include <sys/stat.h>

#include "frontend/gguf.h"
#include "frontend/hf_config.h"
#include "frontend/limits.h"
#include "frontend/safetensors.h"
#include "frontend/tokenizer_gguf.h"
#include "frontend/tokenizer_hf.h"
#include "ir/ops.h"

namespace ingot {
namespace {

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// ------------------------------------------------------------------ GGUF

// Reads typed metadata with errors that name the file and the key.
class GgufKeys {
 public:
  GgufKeys(const GgufFile& f, std::string prefix) : f_(f), prefix_(std::move(prefix)) {}

  StatusOr<int64_t> int_key(const std::string& key) const {
    const GgufValue* v = f_.find(prefix_ + key);
    if (!v) return missing(key);
    auto r = v->as_int();
    if (!r.ok()) return r.status().with_context(f_.path() + ": " + prefix_ + key);
    return r;
  }
  StatusOr<int64_t> int_key_or(const std::string& key, int64_t def) const {
    return f_.find(prefix_ + key) ? int_key(key) : StatusOr<int64_t>(def);
  }
  // A size within Ingot's limits (frontend/limits.h): "model.gguf: llama.block_count = ... is
  // more than the 4096 layers Ingot accepts".
  StatusOr<int64_t> size_key(const std::string& key, const ModelLimit& limit) const {
    INGOT_ASSIGN_OR_RETURN(int64_t v, int_key(key));
    INGOT_RETURN_IF_ERROR(check(key, v, limit));
    return v;
  }
  StatusOr<int64_t> size_key_or(const std::string& key, int64_t def, const ModelLimit& limit) const {
    return f_.find(prefix_ + key) ? size_key(key, limit) : StatusOr<int64_t>(def);
  }
  Status check(const std::string& key, int64_t v, const ModelLimit& limit) const {
    return check_model_limit(f_.path(), prefix_ + key, v, limit);
  }
  StatusOr<double> float_key_or(const std::string& key, double def) const {
    const GgufValue* v = f_.find(prefix_ + key);
    if (!v) return def;
    auto r = v->as_float();
    if (!r.ok()) return r.status().with_context(f_.path() + ": " + prefix_ + key);
    return r;
  }
  StatusOr<std::string> string_key_or(const std::string& key, const std::string& def) const {
    const GgufValue* v = f_.find(prefix_ + key);
    if (!v) return def;
    auto r = v->as_string();
    if (!r.ok()) return r.status().with_context(f_.path() + ": " + prefix_ + key);
    return r;
  }

 private:
  Status missing(const std::string& key) const {
    return Status::Error(f_.path() + ": metadata key '" + prefix_ + key + "' is missing");
  }
  const GgufFile& f_;
  std::string prefix_;
};

constexpr const char* kGgufArchitectures = "llama, mistral, qwen2, qwen3, gemma2, gemma3, phi3";

bool is_supported_gguf_architecture(const std::string& arch) {
  for (const char* a : {"llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"})
    if (arch == a) return true;
  return false;
}

StatusOr<LlamaConfig> gguf_config(const GgufFile& f, const std::string& arch) {
  GgufKeys k(f, arch + ".");
  LlamaConfig c;
  INGOT_ASSIGN_OR_RETURN(c.dim, k.size_key("embedding_length", kMaxEmbedding));
  INGOT_ASSIGN_OR_RETURN(c.n_layers, k.size_key("block_count", kMaxLayers));
  INGOT_ASSIGN_OR_RETURN(c.ffn, k.size_key("feed_forward_length", kMaxFeedForward));
  INGOT_ASSIGN_OR_RETURN(c.n_heads, k.size_key("attention.head_count", kMaxHeads));
  INGOT_ASSIGN_OR_RETURN(c.n_kv_heads, k.size_key_or("attention.head_count_kv", c.n_heads, kMaxHeads));
  INGOT_ASSIGN_OR_RETURN(c.max_context, k.size_key("context_length", kMaxContext));
  INGOT_ASSIGN_OR_RETURN(c.rms_eps, k.float_key_or("attention.layer_norm_rms_epsilon", 1e-5));
  INGOT_ASSIGN_OR_RETURN(c.rope_base, k.float_key_or("rope.freq_base", 10000.0));
  INGOT_ASSIGN_OR_RETURN(int64_t key_length, k.int_key_or("attention.key_length", 0));
  if (key_length != 0) INGOT_RETURN_IF_ERROR(k.check("attention.key_length", key_length, kMaxHeadDim));
  if (c.n_heads > 0 && key_length != 0 && key_length != c.dim / c.n_heads) c.head_dim_override = key_length;
  INGOT_ASSIGN_OR_RETURN(int64_t rope_dims, k.int_key_or("rope.dimension_count", c.head_dim()));
  if (rope_dims != c.head_dim())
    return Status::Error(f.path() + ": partial rotary embeddings (rope.dimension_count " + std::to_string(rope_dims) +
                         " of head dimension " + std::to_string(c.head_dim()) + ") are not supported");

  INGOT_ASSIGN_OR_RETURN(std::string scaling, k.string_key_or("rope.scaling.type", "none"));
  INGOT_ASSIGN_OR_RETURN(double factor, k.float_key_or("rope.scaling.factor", 1.0));
  if (scaling == "linear") {
    c.rope_scaling.type = RopeScaling::Type::Linear;
    c.rope_scaling.factor = factor;
  } else if (scaling != "none") {
    return Status::Error(f.path() + ": RoPE scaling type '" + scaling + "' is not supported (supported: none, linear, llama3 frequency factors)");
  }
  if (const GgufTensorInfo* rf = f.find_tensor("rope_freqs.weight")) {
    INGOT_ASSIGN_OR_RETURN(auto t, f.tensor(rf->name));
    for (float v : t->to_f32_vector()) c.rope_freq_factors.push_back(v);
  }

  // llama.cpp's "llama" graphs rotate adjacent pairs (the converter permuted Q/K for that); the
  // others keep Hugging Face's rotate-half ("NEOX") layout. Qwen2 has Q/K/V biases.
  c.rope_layout = arch == "llama" || arch == "mistral" ? RopePairs::Interleaved : RopePairs::RotateHalf;
  c.qkv_bias = f.find_tensor("blk.0.attn_q.bias") != nullptr;
  c.qk_norm = f.find_tensor("blk.0.attn_q_norm.weight") != nullptr;
  c.fused_qkv = f.find_tensor("blk.0.attn_qkv.weight") != nullptr;
  c.fused_gate_up = arch == "phi3" && f.find_tensor("blk.0.ffn_gate.weight") == nullptr;
  if (f.find_tensor("rope_factors_long.weight") || f.find_tensor("rope_factors_short.weight")) {
    // LongRoPE (Phi-3 128k, Phi-3.5): llama.cpp's per-frequency factors, its original context
    // (default: the training context) and attention factor.
    if (!f.find_tensor("rope_factors_long.weight") || !f.find_tensor("rope_factors_short.weight"))
      return Status::Error(f.path() + ": LongRoPE needs both rope_factors_long.weight and rope_factors_short.weight");
    INGOT_ASSIGN_OR_RETURN(auto lf, f.tensor("rope_factors_long.weight"));
    INGOT_ASSIGN_OR_RETURN(auto sf, f.tensor("rope_factors_short.weight"));
    for (float v : lf->to_f32_vector()) c.rope_factors_long.push_back(v);
    for (float v : sf->to_f32_vector()) c.rope_factors_short.push_back(v);
    INGOT_ASSIGN_OR_RETURN(c.rope_original_context, k.int_key_or("rope.scaling.original_context_length", c.max_context));
    INGOT_RETURN_IF_ERROR(k.check("rope.scaling.original_context_length", c.rope_original_context, kMaxContext));
    INGOT_ASSIGN_OR_RETURN(c.rope_attn_factor, k.float_key_or("rope.scaling.attn_factor", 1.0));
  }
  if (arch == "gemma2" || arch == "gemma3") {
    // As llama.cpp's gemma2.cpp and gemma3.cpp: embeddings times sqrtf(dim), post-norms, GeGLU,
    // queries scaled by 1/sqrt(head_dim) (1/sqrt(dim/heads) for the 27B sizes, 46 and 62 layers).
    c.embed_scale = std::sqrt(static_cast<float>(c.dim));
    c.post_norms = true;
    c.geglu = true;
    const bool is_27b = (arch == "gemma2" && c.n_layers == 46) || (arch == "gemma3" && c.n_layers == 62);
    c.attn_scale = 1.0f / std::sqrt(static_cast<float>(is_27b ? c.dim / c.n_heads : c.head_dim()));
    INGOT_ASSIGN_OR_RETURN(int64_t window, k.int_key_or("attention.sliding_window", arch == "gemma2" ? 4096 : 0));
    INGOT_RETURN_IF_ERROR(k.check("attention.sliding_window", window, kMaxContext));
    c.sliding_window = window;
    INGOT_ASSIGN_OR_RETURN(c.swa_period, k.int_key_or("attention.sliding_window_pattern", arch == "gemma2" ? 2 : 6));
    INGOT_RETURN_IF_ERROR(k.check("attention.sliding_window_pattern", c.swa_period, kMaxLayers));
    INGOT_ASSIGN_OR_RETURN(c.final_softcap, k.float_key_or("final_logit_softcapping", arch == "gemma2" ? 30.0 : 0.0));
    if (arch == "gemma2") {
      INGOT_ASSIGN_OR_RETURN(c.attn_softcap, k.float_key_or("attn_logit_softcapping", 50.0));
      INGOT_ASSIGN_OR_RETURN(c.rope_base_swa, k.float_key_or("rope.freq_base_swa", c.rope_base));
    } else {
      INGOT_ASSIGN_OR_RETURN(c.rope_base_swa, k.float_key_or("rope.freq_base_swa", 10000.0));
    }
  }
  c.tied_embeddings = f.find_tensor("output.weight") == nullptr;
  const GgufTensorInfo* embd = f.find_tensor("token_embd.weight");
  if (!embd) return Status::Error(f.path() + ": tensor 'token_embd.weight' is missing");
  if (embd->shape.size() != 2) return Status::Error(f.path() + ": token_embd.weight must be 2-D");
  c.vocab = embd->shape[0];
  INGOT_RETURN_IF_ERROR(check_model_limit(f.path(), "token_embd.weight's row count (the vocabulary)", c.vocab, kMaxVocab));
  return c;
}

std::string short_value(const GgufValue& v) { return v.summary(6); }

StatusOr<ImportedModel> import_gguf(const std::string& path, const ImportOptions& opts) {
  INGOT_ASSIGN_OR_RETURN(std::shared_ptr<GgufFile> file, GgufFile::open(path));
  ImportedModel im;
  im.format = file->split_count() > 1 ? "gguf, split in " + std::to_string(file->split_count()) + " files" : "gguf";
  im.path = path;
  for (auto& [key, value] : file->metadata()) im.metadata.push_back({key, short_value(value)});
  for (auto& t : file->tensors()) im.tensors.push_back({t.name, t.type, t.shape, t.bytes});

  const GgufValue* arch_v = file->find("general.architecture");
  if (!arch_v) return Status::Error(path + ": metadata key 'general.architecture' is missing");
  auto arch = arch_v->as_string();
  if (!arch.ok()) return arch.status().with_context(path + ": general.architecture");
  im.architecture = std::move(*arch);
  if (!is_supported_gguf_architecture(im.architecture))
    return Status::Error(path + ": architecture '" + im.architecture + "' is not supported (supported: " + kGgufArchitectures + ")");
  INGOT_ASSIGN_OR_RETURN(im.tokenizer, tokenizer_from_gguf(*file));
  INGOT_ASSIGN_OR_RETURN(im.config, gguf_config(*file, im.architecture));
  im.config.all_logits = opts.all_logits;
  im.config.act_quant = resolve_act_quant(opts.act_quant, im.tensors, opts.kernels);
  im.config.kv_type = opts.kv_type;
  if (opts.max_context > 0) im.config.max_context = opts.max_context;

  WeightProvider weights = [&](const std::string& name, const std::vector<int64_t>&)
      -> StatusOr<std::shared_ptr<const Tensor>> {
    if (!file->find_tensor(name)) return Status::Error(path + ": tensor '" + name + "' is missing");
    return file->tensor(name);
  };
  std::string name = path.substr(path.find_last_of('/') + 1);
  INGOT_ASSIGN_OR_RETURN(im.model, build_llama(im.config, weights, name));
  return im;
}

// ------------------------------------------------------------------ Hugging Face


std::string model_type_to_arch(const std::string& model_type) {
  for (const char* a : {"qwen2", "qwen3", "mistral", "gemma2", "phi3"})
    if (model_type == a) return a;
  return model_type == "gemma3_text" || model_type == "gemma3" ? "gemma3" : "llama";
}

StatusOr<LlamaConfig> hf_llama_config(const HfModelConfig& h, const std::string& dir) {
  auto unsupported = [&](const std::string& what) {
    return Status::Error(dir + "/config.json: " + what + " is not supported");
  };
  const std::string arch = model_type_to_arch(h.model_type);
  const bool gemma = arch == "gemma2" || arch == "gemma3";
  if (h.hidden_act != (gemma ? "gelu_pytorch_tanh" : "silu")) return unsupported("hidden_act '" + h.hidden_act + "'");
  if (h.o_proj_bias) return unsupported("a bias on o_proj");
  if (h.mlp_bias) return unsupported("MLP biases");
  LlamaConfig c;
  c.vocab = h.vocab_size;
  c.dim = h.hidden_size;
  c.n_layers = h.num_hidden_layers;
  c.n_heads = h.num_attention_heads;
  c.n_kv_heads = h.num_key_value_heads;
  c.ffn = h.intermediate_size;
  c.max_context = h.max_position_embeddings;
  // Mistral: every layer attends to the last `sliding_window` positions (transformers' masks; the
  // attention kernel takes the window). Gemma's local layers are set below. Others with a window
  // (Qwen2's use_sliding_window, Phi-3): within the window sliding-window attention equals full
  // attention, so the context is capped there.
  if (arch == "mistral" && h.sliding_window && *h.sliding_window > 0 && *h.sliding_window < c.max_context) {
    c.sliding_window = *h.sliding_window;
    c.swa_period = 0;  // every layer
  } else if (!gemma && h.sliding_window && *h.sliding_window > 0 && *h.sliding_window < c.max_context) {
    c.max_context = *h.sliding_window;
  }
  c.rms_eps = h.rms_norm_eps;
  c.rope_base = h.rope_theta;
  if (h.head_dim && h.head_dim * h.num_attention_heads != h.hidden_size) c.head_dim_override = h.head_dim;
  // Hugging Face stores Q/K rows for rotate-half RoPE (its conversion permuted them): use that
  // layout directly rather than permuting the weights back.
  c.rope_layout = RopePairs::RotateHalf;
  c.qkv_bias = h.attention_bias;
  c.tied_embeddings = h.tie_word_embeddings;
  c.qk_norm = arch == "qwen3" || arch == "gemma3";
  c.fused_qkv = c.fused_gate_up = arch == "phi3";
  if (gemma) {
    // As transformers' Gemma: x * sqrt(hidden) in the activations' type, RMSNorm by (1 + w),
    // 1/sqrt(query_pre_attn_scalar), caps, local layers with their window and (Gemma 3) RoPE base.
    // The GELU is llama.cpp's table (as from GGUF), so that both formats give llama.cpp's output.
    c.embed_scale = std::sqrt(static_cast<float>(h.hidden_size));
    c.norm_weight_offset = 1.0;
    c.post_norms = true;
    c.geglu = true;
    c.attn_scale = 1.0 / std::sqrt(h.query_pre_attn_scalar);
    c.attn_softcap = h.attn_logit_softcapping;
    c.final_softcap = h.final_logit_softcapping;
    c.sliding_window = h.sliding_window.value_or(0);
    c.swa_period = h.sliding_window_pattern;
    c.rope_base_swa = arch == "gemma3" ? h.rope_local_base_freq : h.rope_theta;
  }
  if (h.rope_scaling) {
    const HfRopeScaling& r = *h.rope_scaling;
    if (r.type == "linear") {
      c.rope_scaling.type = RopeScaling::Type::Linear;
    } else if (r.type == "llama3") {
      c.rope_scaling.type = RopeScaling::Type::Llama3;
      c.rope_scaling.low_freq_factor = r.low_freq_factor;
      c.rope_scaling.high_freq_factor = r.high_freq_factor;
      c.rope_scaling.original_context = r.original_max_position_embeddings;
    } else if (r.type == "longrope") {
      // As llama.cpp's converter writes it into a GGUF: the factors as f32, the original context,
      // and attn_factor sqrt(1 + ln(scale) / ln(original)) with scale = context / original (it
      // ignores rope_scaling.attention_factor, and so does this, so that both formats agree).
      const int64_t orig = r.original_max_position_embeddings > 0   ? r.original_max_position_embeddings
                           : h.original_max_position_embeddings > 0 ? h.original_max_position_embeddings
                                                                    : h.max_position_embeddings;
      for (double f : r.long_factor) c.rope_factors_long.push_back(static_cast<float>(f));
      for (double f : r.short_factor) c.rope_factors_short.push_back(static_cast<float>(f));
      c.rope_original_context = orig;
      const double scale = static_cast<double>(h.max_position_embeddings) / static_cast<double>(orig);
      c.rope_attn_factor = scale > 1.0 ? static_cast<float>(std::sqrt(1.0 + std::log(scale) / std::log(static_cast<double>(orig)))) : 1.0;
    } else {
      return unsupported("rope_scaling type '" + r.type + "'");
    }
    c.rope_scaling.factor = r.factor;
  }
  return c;
}


StatusOr<ImportedModel> import_hf_folder(const std::string& dir, const ImportOptions& opts) {
  ImportedModel im;
  im.format = "safetensors";
  im.path = dir;
  INGOT_ASSIGN_OR_RETURN(HfModelConfig hc, load_hf_config(dir));
  INGOT_ASSIGN_OR_RETURN(HfGenerationConfig gen, load_hf_generation_config(dir));
  INGOT_ASSIGN_OR_RETURN(std::shared_ptr<SafetensorsCheckpoint> ckpt, SafetensorsCheckpoint::open_folder(dir));
  INGOT_ASSIGN_OR_RETURN(im.tokenizer, tokenizer_from_hf_folder(dir));
  // Byte-level tokenizers may not name their special tokens: config.json does.
  if (im.tokenizer.eos < 0 && hc.eos_token_id >= 0) im.tokenizer.eos = static_cast<int32_t>(hc.eos_token_id);
  if (im.tokenizer.bos < 0 && hc.bos_token_id >= 0) im.tokenizer.bos = static_cast<int32_t>(hc.bos_token_id);
  INGOT_ASSIGN_OR_RETURN(im.config, hf_llama_config(hc, dir));
  im.architecture = model_type_to_arch(hc.model_type);
  // The checkpoint's name for a language model tensor: Gemma3ForConditionalGeneration keeps them
  // under "language_model." (transformers before 4.52: "language_model.model.layers...",
  // "language_model.lm_head.weight") or "model.language_model." (later: "lm_head.weight" as is).
  std::string model_prefix = "model.", lm_head = "lm_head.weight";
  if (hc.language_model_only) {
    if (ckpt->find("language_model.model.embed_tokens.weight")) {
      model_prefix = "language_model.model.";
      lm_head = "language_model.lm_head.weight";
    } else if (ckpt->find("model.language_model.embed_tokens.weight")) {
      model_prefix = "model.language_model.";
    } else {
      return Status::Error(dir + ": " + hc.architecture +
                           " checkpoint has neither 'language_model.model.embed_tokens.weight' nor "
                           "'model.language_model.embed_tokens.weight'");
    }
  }
  auto checkpoint_name = [&](const std::string& hf) {
    if (hf == "lm_head.weight") return lm_head;
    return hf.rfind("model.", 0) == 0 ? model_prefix + hf.substr(6) : hf;
  };
  im.config.all_logits = opts.all_logits;
  im.config.act_quant = opts.act_quant == "auto" ? "none" : opts.act_quant;  // safetensors hold float weights
  im.config.kv_type = opts.kv_type;
  if (opts.max_context > 0) im.config.max_context = opts.max_context;
  // A checkpoint without lm_head shares the embedding table even if config.json forgot to say so.
  if (!ckpt->find(lm_head)) im.config.tied_embeddings = true;

  im.generation.temperature = gen.temperature;
  im.generation.top_p = gen.top_p;
  im.generation.top_k = gen.top_k;
  im.generation.repetition_penalty = gen.repetition_penalty;
  im.generation.max_new_tokens = gen.max_new_tokens;
  const std::string arch_note = hc.language_model_only ? " (the language model; its vision tower is not imported)" : "";
  im.metadata = {{"architecture", hc.architecture + arch_note}, {"model_type", hc.model_type}, {"torch_dtype", hc.torch_dtype}};
  for (auto& name : ckpt->names()) {
    const SafetensorsTensorInfo* t = ckpt->find(name);
    im.tensors.push_back({name, t->type, t->shape, t->bytes});
  }

  WeightProvider weights = [&](const std::string& name, const std::vector<int64_t>&)
      -> StatusOr<std::shared_ptr<const Tensor>> {
    std::string hf = checkpoint_name(hf_tensor_name(name, im.architecture));
    if (!ckpt->find(hf)) return Status::Error(dir + ": tensor '" + hf + "' is missing from the checkpoint");
    return ckpt->tensor(hf);
  };
  std::string name = dir.substr(dir.find_last_of('/', dir.size() > 1 ? dir.size() - 2 : 0) + 1);
  if (!name.empty() && name.back() == '/') name.pop_back();
  INGOT_ASSIGN_OR_RETURN(im.model, build_llama(im.config, weights, name));
  return im;
}

}  // namespace

// (importer.h) Gemma's "post_attention_layernorm"
// is the norm after attention (llama.cpp's post_attention_norm), and its pre-feed-forward norm
// has its own name; Phi-3 fuses QKV and gate-up.
std::string hf_tensor_name(const std::string& name, const std::string& arch) {
  static const std::pair<const char*, const char*> kGlobal[] = {
      {"token_embd.weight", "model.embed_tokens.weight"},
      {"output_norm.weight", "model.norm.weight"},
      {"output.weight", "lm_head.weight"},
  };
  for (auto& [ours, theirs] : kGlobal)
    if (name == ours) return theirs;
  static const std::pair<const char*, const char*> kGemmaLayer[] = {
      {"post_attention_norm.weight", "post_attention_layernorm.weight"},
      {"ffn_norm.weight", "pre_feedforward_layernorm.weight"},
      {"post_ffw_norm.weight", "post_feedforward_layernorm.weight"},
  };
  static const std::pair<const char*, const char*> kLayer[] = {
      {"attn_norm.weight", "input_layernorm.weight"},   {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"attn_q_norm.weight", "self_attn.q_norm.weight"}, {"attn_k_norm.weight", "self_attn.k_norm.weight"},
      {"attn_qkv.weight", "self_attn.qkv_proj.weight"},
      {"attn_q.weight", "self_attn.q_proj.weight"},     {"attn_q.bias", "self_attn.q_proj.bias"},
      {"attn_k.weight", "self_attn.k_proj.weight"},     {"attn_k.bias", "self_attn.k_proj.bias"},
      {"attn_v.weight", "self_attn.v_proj.weight"},     {"attn_v.bias", "self_attn.v_proj.bias"},
      {"attn_output.weight", "self_attn.o_proj.weight"}, {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"ffn_up.weight", "mlp.up_proj.weight"},          {"ffn_down.weight", "mlp.down_proj.weight"},
  };
  if (name.rfind("blk.", 0) == 0) {
    size_t dot = name.find('.', 4);
    if (dot != std::string::npos) {
      std::string layer = name.substr(4, dot - 4), rest = name.substr(dot + 1);
      if (arch == "gemma2" || arch == "gemma3")
        for (auto& [ours, theirs] : kGemmaLayer)
          if (rest == ours) return "model.layers." + layer + "." + theirs;
      if (arch == "phi3" && rest == "ffn_up.weight") return "model.layers." + layer + ".mlp.gate_up_proj.weight";
      for (auto& [ours, theirs] : kLayer)
        if (rest == ours) return "model.layers." + layer + "." + theirs;
    }
  }
  return name;
}

// "demo": the built-in demo model (frontend/demo_model.h) with its byte-level vocabulary as a
// SentencePiece byte-fallback tokenizer, so that it compiles to a runnable bundle like any model.
StatusOr<ImportedModel> import_demo() {
  ImportedModel im;
  INGOT_ASSIGN_OR_RETURN(im.model, build_demo_model());
  im.config = demo_config();
  im.architecture = "llama";
  im.format = "demo";
  im.path = "demo";
  TokenizerSpec& t = im.tokenizer;
  t.kind = TokenizerSpec::Kind::SentencePiece;
  char piece[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(piece, sizeof(piece), "<0x%02X>", b);
    t.tokens.push_back(piece);
    t.types.push_back(TokenizerSpec::Byte);
  }
  t.tokens.push_back("<s>");
  t.types.push_back(TokenizerSpec::Control);
  t.tokens.push_back("</s>");
  t.types.push_back(TokenizerSpec::Control);
  t.scores.assign(t.tokens.size(), 0.0f);
  t.bos = static_cast<int32_t>(kDemoBos);
  t.eos = static_cast<int32_t>(kDemoEos);
  t.add_bos = true;
  t.add_space_prefix = false;
  return im;
}

std::string resolve_act_quant(const std::string& requested, const std::vector<TensorSummary>& tensors, bool kernels) {
  if (requested != "auto") return requested;
  bool quantized = false;
  for (const TensorSummary& t : tensors) {
    if (t.shape.size() != 2) continue;  // norms, biases, RoPE factors: never a matmul weight
    if (!(kernels ? weight_matmul_supports_act_q8(t.type) : weight_matmul_supports_act_ggml(t.type))) return "none";
    quantized |= type_info(t.type).is_quantized;
  }
  if (!quantized) return "none";
  return kernels ? "q8" : "ggml";
}

StatusOr<ImportedModel> import_model(const std::string& path, const ImportOptions& options) {
  if (path == "demo") return import_demo();
  if (is_directory(path)) return import_hf_folder(path, options);
  return import_gguf(path, options);
}

StatusOr<TokenizerSpec> import_tokenizer(const std::string& path) {
  if (is_directory(path)) return tokenizer_from_hf_folder(path);
  INGOT_ASSIGN_OR_RETURN(std::shared_ptr<GgufFile> file, GgufFile::open(path));
  return tokenizer_from_gguf(*file);
}

}  // namespace ingot
