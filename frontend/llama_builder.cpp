#include "frontend/llama_builder.h"

#include <cmath>
#include <limits>
#include <map>

#include "frontend/limits.h"
#include "ir/builder.h"

namespace ingot {

Status LlamaConfig::validate() const {
  auto positive = [](int64_t v, const char* what) -> Status {
    if (v <= 0) return Status::Error(std::string(what) + " must be positive, got " + std::to_string(v));
    return Status::Ok();
  };
  INGOT_RETURN_IF_ERROR(positive(vocab, "vocabulary size"));
  INGOT_RETURN_IF_ERROR(positive(dim, "embedding dimension"));
  INGOT_RETURN_IF_ERROR(positive(n_layers, "layer count"));
  INGOT_RETURN_IF_ERROR(positive(n_heads, "head count"));
  INGOT_RETURN_IF_ERROR(positive(n_kv_heads, "KV head count"));
  INGOT_RETURN_IF_ERROR(positive(ffn, "feed-forward dimension"));
  INGOT_RETURN_IF_ERROR(positive(max_context, "context length"));
  // Ingot's limits (frontend/limits.h); the importers check them first, naming the file's field.
  INGOT_RETURN_IF_ERROR(check_model_limit("", "the vocabulary size", vocab, kMaxVocab));
  INGOT_RETURN_IF_ERROR(check_model_limit("", "the embedding dimension", dim, kMaxEmbedding));
  INGOT_RETURN_IF_ERROR(check_model_limit("", "the layer count", n_layers, kMaxLayers));
  INGOT_RETURN_IF_ERROR(check_model_limit("", "the head count", n_heads, kMaxHeads));
  INGOT_RETURN_IF_ERROR(check_model_limit("", "the KV head count", n_kv_heads, kMaxHeads));
  INGOT_RETURN_IF_ERROR(check_model_limit("", "the feed-forward dimension", ffn, kMaxFeedForward));
  INGOT_RETURN_IF_ERROR(check_model_limit("", "the context length", max_context, kMaxContext));
  if (head_dim_override != 0) INGOT_RETURN_IF_ERROR(check_model_limit("", "the head dimension", head_dim_override, kMaxHeadDim));
  if (head_dim_override == 0 && dim % n_heads != 0)
    return Status::Error("embedding dimension " + std::to_string(dim) + " is not a multiple of the head count " +
                         std::to_string(n_heads));
  if (head_dim_override < 0) return Status::Error("head dimension must be positive");
  if (n_heads % n_kv_heads != 0)
    return Status::Error("head count " + std::to_string(n_heads) + " is not a multiple of the KV head count " +
                         std::to_string(n_kv_heads));
  if (head_dim() % 2 != 0) return Status::Error("RoPE needs an even head dimension, got " + std::to_string(head_dim()));
  if (!(rms_eps > 0)) return Status::Error("RMS norm epsilon must be positive");
  if (!(rope_base > 0)) return Status::Error("RoPE base must be positive");
  if (rope_scaling.type != RopeScaling::Type::None && !(rope_scaling.factor > 0))
    return Status::Error("RoPE scaling factor must be positive");
  if (rope_scaling.type == RopeScaling::Type::Llama3 &&
      (!(rope_scaling.high_freq_factor > rope_scaling.low_freq_factor) || rope_scaling.original_context <= 0))
    return Status::Error("llama3 RoPE scaling needs high_freq_factor > low_freq_factor and an original context");
  if (!rope_freq_factors.empty() && static_cast<int64_t>(rope_freq_factors.size()) != head_dim() / 2)
    return Status::Error("RoPE frequency factors: " + std::to_string(rope_freq_factors.size()) + " values for " +
                         std::to_string(head_dim() / 2) + " frequencies");
  if (rope_factors_long.size() != rope_factors_short.size() ||
      (!rope_factors_long.empty() && static_cast<int64_t>(rope_factors_long.size()) != head_dim() / 2))
    return Status::Error("LongRoPE factors: " + std::to_string(rope_factors_long.size()) + " long and " +
                         std::to_string(rope_factors_short.size()) + " short values for " + std::to_string(head_dim() / 2) +
                         " frequencies");
  for (const std::vector<double>* fs : {&rope_factors_long, &rope_factors_short})
    for (double f : *fs)
      if (!(f > 0) || !std::isfinite(f)) return Status::Error("LongRoPE factors must be positive and finite");
  if (!rope_factors_long.empty() && rope_original_context <= 0)
    return Status::Error("LongRoPE needs the original context length");
  if (!(rope_attn_factor > 0) || !std::isfinite(rope_attn_factor)) return Status::Error("the RoPE attention factor must be positive");
  if (kv_type != ElementType::f32 && kv_type != ElementType::f16)
    return Status::Error("the KV cache type must be f32 or f16, got " + std::string(type_name(kv_type)));
  if (sliding_window < 0 || swa_period < 0) return Status::Error("the sliding window and its period must not be negative");
  if (!(rope_base_swa >= 0)) return Status::Error("the local layers' RoPE base must not be negative");
  if (!(embed_scale >= 0) || !(attn_softcap >= 0) || !(final_softcap >= 0) || !(attn_scale >= 0))
    return Status::Error("embedding scale, soft-caps and attention scale must not be negative");
  if (fused_qkv && qkv_bias) return Status::Error("a fused QKV projection with biases is not supported");
  if (act_quant != "none" && act_quant != "q8" && act_quant != "ggml")
    return Status::Error("act_quant must be \"none\", \"q8\" or \"ggml\", got \"" + act_quant + "\"");
  return Status::Ok();
}

std::vector<double> LlamaConfig::rope_inv_freq(bool swa) const {
  const int64_t hd = head_dim();
  const double base = swa && rope_base_swa > 0 ? rope_base_swa : rope_base;
  std::vector<double> f(static_cast<size_t>(hd / 2));
  for (int64_t i = 0; i < hd / 2; ++i) {
    double freq = std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(hd));
    // Local (sliding-window) layers keep their frequencies unscaled, as llama.cpp's Gemma 3 does.
    switch (swa ? RopeScaling::Type::None : rope_scaling.type) {
      case RopeScaling::Type::None: break;
      case RopeScaling::Type::Linear: freq /= rope_scaling.factor; break;
      case RopeScaling::Type::Llama3: {
        // Long wavelengths are slowed by `factor`, short ones kept, the band between blended.
        const double ctx = static_cast<double>(rope_scaling.original_context);
        const double wavelen = 2.0 * M_PI / freq;
        const double low_wavelen = ctx / rope_scaling.low_freq_factor;
        const double high_wavelen = ctx / rope_scaling.high_freq_factor;
        if (wavelen > low_wavelen) {
          freq /= rope_scaling.factor;
        } else if (wavelen >= high_wavelen) {
          double smooth = (ctx / wavelen - rope_scaling.low_freq_factor) /
                          (rope_scaling.high_freq_factor - rope_scaling.low_freq_factor);
          freq = (1.0 - smooth) * freq / rope_scaling.factor + smooth * freq;
        }
        break;
      }
    }
    if (!rope_freq_factors.empty()) freq /= rope_freq_factors[static_cast<size_t>(i)];
    if (!rope_factors_long.empty())
      freq /= (max_context > rope_original_context ? rope_factors_long : rope_factors_short)[static_cast<size_t>(i)];
    f[static_cast<size_t>(i)] = freq;
  }
  return f;
}

namespace {

constexpr int64_t kEnd = std::numeric_limits<int64_t>::max();

class LlamaGraph {
 public:
  LlamaGraph(const LlamaConfig& c, const WeightProvider& w, Model& m) : c_(c), weights_(w), b_(m) {}

  Status build() {
    const Dim tokens = Dim::symbol("tokens");
    const Dim past = Dim::symbol("past");
    const int64_t hd = c_.head_dim();

    Value ids = b_.parameter("token_ids", ElementType::i64, {tokens});
    Value pos = b_.parameter("pos", ElementType::i64, {});
    Value table = weight("token_embd.weight", {c_.vocab, c_.dim});
    Value x = b_.op(Op::Gather, {table, ids}, {{"axis", Attribute::Int(0)}}, "embed");
    // Gemma: x * sqrt(dim), the f32 constant llama.cpp's ggml_scale uses.
    if (c_.embed_scale > 0) x = b_.mul(x, b_.scalar_f32(static_cast<float>(c_.embed_scale)));

    // RoPE angles: positions [tokens] x inverse frequencies [hd/2].
    Value positions = b_.op(Op::Range, {pos}, {{"length", Attribute::Dims({tokens})}}, "positions");
    Value posf = b_.convert(positions, ElementType::f32);
    auto rope_angles = [&](bool swa, const std::string& name) {
      std::vector<float> inv_freq;
      for (double f : c_.rope_inv_freq(swa)) inv_freq.push_back(static_cast<float>(f));
      Value freqs = b_.constant(std::make_shared<Tensor>(Tensor::from_f32({hd / 2}, inv_freq)), name + ".inv_freq");
      Value angles = b_.mul(b_.reshape(posf, {tokens, 1}), freqs);
      return std::pair{b_.op(Op::Cos, {angles}, {}, name + ".cos"), b_.op(Op::Sin, {angles}, {}, name + ".sin")};
    };
    std::tie(cos_, sin_) = rope_angles(false, "rope");

    // Causal mask [tokens, past+tokens]: key position <= query position.
    Value key_pos = b_.op(Op::Range, {b_.scalar_i64(0)}, {{"length", Attribute::Dims({past + tokens})}}, "key_positions");
    Value query_pos = b_.reshape(positions, {tokens, 1});
    mask_ = b_.op(Op::LessEqual, {key_pos, query_pos}, {}, "causal_mask");
    bool any_swa = false;
    for (int64_t l = 0; l < c_.n_layers; ++l) any_swa |= c_.is_swa_layer(l);
    if (any_swa) {
      // Local layers: also key position > query position - window (llama.cpp's standard SWA).
      std::tie(cos_swa_, sin_swa_) = rope_angles(true, "rope_swa");
      Value recent = b_.op(Op::Greater, {key_pos, b_.sub(query_pos, b_.scalar_i64(c_.sliding_window))});
      mask_swa_ = b_.op(Op::LogicalAnd, {mask_, recent}, {}, "sliding_window_mask");
    }

    // Stop at the first error (a missing tensor): the layers after it would only repeat it.
    for (int64_t l = 0; l < c_.n_layers && status().ok(); ++l) x = layer(x, l, tokens, past);
    if (!status().ok()) return status();

    Value h = rms_norm(x, "output_norm.weight");
    if (!c_.all_logits) h = b_.slice(h, 0, -1, kEnd);
    Value logits = project(h, c_.tied_embeddings ? "token_embd.weight" : "output.weight", {c_.vocab, c_.dim});
    b_.result(softcap(logits, c_.final_softcap), "logits");
    return b_.status();
  }

 private:
  // The weight as f32 (a Convert follows other types): what a generic converter emits.
  Value weight(const std::string& name, const std::vector<int64_t>& shape) {
    Value raw = raw_weight(name, shape);
    if (!raw.node) return {};
    auto conv = converted_.find(name);
    if (conv != converted_.end()) return conv->second;
    Value v = raw.type().type == ElementType::f32 ? raw : b_.convert(raw, ElementType::f32);
    converted_[name] = v;
    return v;
  }

  // x [.., in] times weight [out, in]^T: MatMul on the f32 weight, or with act_quant "q8" a
  // WeightMatMul on the stored weight with llama.cpp's activation numerics.
  Value project(Value x, const std::string& name, const std::vector<int64_t>& shape) {
    if (c_.act_quant == "q8" || c_.act_quant == "ggml") {
      Value w = raw_weight(name, shape);
      if (!w.node) return {};
      return b_.op(Op::WeightMatMul, {x, w}, {{"act_quant", Attribute::String(c_.act_quant)}});
    }
    return b_.matmul(x, weight(name, shape), true);
  }

  // The Constant node of a weight, created once per name.
  Value raw_weight(const std::string& name, const std::vector<int64_t>& shape) {
    if (!b_.ok() || !errors_.ok()) return {};
    auto cached = constants_.find(name);
    if (cached != constants_.end()) return cached->second;
    auto t = weights_(name, shape);
    if (!t.ok()) {
      error(t.status());
      return {};
    }
    if (!*t) {
      error(Status::Error("weight '" + name + "': the weight provider returned no tensor"));
      return {};
    }
    if ((*t)->shape() != shape) {
      error(Status::Error("weight '" + name + "' has shape " + dims_str((*t)->shape()) + ", expected " + dims_str(shape)));
      return {};
    }
    Value v = b_.constant(*t, name);
    constants_[name] = v;
    return v;
  }

  void error(const Status& s) {
    if (errors_.ok()) errors_ = s;  // the first error explains the rest
  }

  // x / sqrt(mean(x^2) + eps) * w over the last axis, of size n (dim, or head_dim for Q/K norms);
  // w + offset for Hugging Face Gemma (constant folding adds it once).
  Value rms_norm(Value x, const std::string& w, int64_t n = 0) {
    Value sq = b_.op(Op::Power, {x, b_.scalar_f32(2.0f)});
    Value mean = b_.op(Op::ReduceMean, {sq}, {{"axes", Attribute::Ints({-1})}, {"keep_dims", Attribute::Bool(true)}});
    Value denom = b_.op(Op::Sqrt, {b_.add(mean, b_.scalar_f32(static_cast<float>(c_.rms_eps)))});
    Value scale = weight(w, {n ? n : c_.dim});
    if (c_.norm_weight_offset != 0 && scale.node) scale = b_.add(scale, b_.scalar_f32(static_cast<float>(c_.norm_weight_offset)));
    return b_.mul(b_.div(x, denom), scale);
  }

  // cap * tanh(x * (1 / cap)), llama.cpp's soft-capping (two scales around a tanh); x when cap is 0.
  Value softcap(Value x, double cap) {
    if (cap <= 0) return x;
    Value t = b_.op(Op::Tanh, {b_.mul(x, b_.scalar_f32(static_cast<float>(1.0 / cap)))});
    return b_.mul(t, b_.scalar_f32(static_cast<float>(cap)));
  }

  // x: [tokens, heads, hd]; the local layers' angles with `swa`.
  Value rope(Value x, int64_t heads, const Dim& tokens, bool swa) {
    const int64_t hd = c_.head_dim(), half = hd / 2;
    Value cos = b_.reshape(swa ? cos_swa_ : cos_, {tokens, 1, half});
    Value sin = b_.reshape(swa ? sin_swa_ : sin_, {tokens, 1, half});
    if (c_.rope_layout == RopePairs::Interleaved) {
      Value pairs = b_.reshape(x, {tokens, heads, half, 2});
      Value x0 = b_.reshape(b_.slice(pairs, 3, 0, 1), {tokens, heads, half});
      Value x1 = b_.reshape(b_.slice(pairs, 3, 1, 2), {tokens, heads, half});
      Value y0 = b_.sub(b_.mul(x0, cos), b_.mul(x1, sin));
      Value y1 = b_.add(b_.mul(x0, sin), b_.mul(x1, cos));
      Value y = b_.concat({b_.reshape(y0, {tokens, heads, half, 1}), b_.reshape(y1, {tokens, heads, half, 1})}, 3);
      return b_.reshape(y, {tokens, heads, hd});
    }
    Value x1 = b_.slice(x, 2, 0, half);
    Value x2 = b_.slice(x, 2, half, hd);
    Value rotated = b_.concat({b_.op(Op::Negative, {x2}), x1}, 2);
    Value cos_full = b_.concat({cos, cos}, 2);
    Value sin_full = b_.concat({sin, sin}, 2);
    return b_.add(b_.mul(x, cos_full), b_.mul(rotated, sin_full));
  }

  // The cache: read [past, kv, hd], append the new [tokens, kv, hd], write back.
  Value kv_cache(Value fresh, int64_t layer, const char* which, const Dim& past) {
    std::string var = "kv." + std::to_string(layer) + "." + which;
    const int64_t kv = c_.n_kv_heads, hd = c_.head_dim();
    const ElementType t = c_.kv_type;
    Status st = b_.model().add_variable({var, t, {c_.max_context, kv, hd}});
    if (!st.ok()) error(st);
    Value cached = b_.read_value(var, t, {past, kv, hd}, var + ".read");
    Value all = b_.concat({cached, t == ElementType::f32 ? fresh : b_.convert(fresh, t)}, 0);
    b_.assign(var, all, var + ".write");
    return t == ElementType::f32 ? all : b_.convert(all, ElementType::f32);
  }

  // [S, kv, hd] -> [S, heads, hd], each KV head serving heads/kv query heads.
  Value repeat_kv(Value x, const Dim& seq) {
    const int64_t kv = c_.n_kv_heads, group = c_.n_heads / c_.n_kv_heads, hd = c_.head_dim();
    if (group == 1) return x;
    Value e = b_.op(Op::Broadcast, {b_.reshape(x, {seq, kv, 1, hd})}, {{"shape", Attribute::Dims({seq, kv, group, hd})}});
    return b_.reshape(e, {seq, c_.n_heads, hd});
  }

  // llama.cpp multiplies an f16 cache with operands converted to f16: with its numerics asked for
  // (act_quant "q8") and an f16 cache, round x to f16 the same way.
  Value llama_cpp_half(Value x) {
    if (c_.act_quant == "none" || c_.kv_type != ElementType::f16) return x;
    return b_.convert(b_.convert(x, ElementType::f16), ElementType::f32);
  }

  Value biased(Value x, const std::string& bias, int64_t n) {
    return c_.qkv_bias ? b_.add(x, weight(bias, {n})) : x;
  }

  Value layer(Value x, int64_t l, const Dim& tokens, const Dim& past) {
    const std::string p = "blk." + std::to_string(l) + ".";
    const int64_t d = c_.dim, h = c_.n_heads, kv = c_.n_kv_heads, hd = c_.head_dim();
    const Dim seq = past + tokens;

    const bool swa = c_.is_swa_layer(l);
    Value xn = rms_norm(x, p + "attn_norm.weight");
    Value q, k, v;
    if (c_.fused_qkv) {
      // Phi-3: one projection, then Q, K and V side by side in each row.
      Value qkv = project(xn, p + "attn_qkv.weight", {(h + 2 * kv) * hd, d});
      q = b_.reshape(b_.slice(qkv, 1, 0, h * hd), {tokens, h, hd});
      k = b_.reshape(b_.slice(qkv, 1, h * hd, (h + kv) * hd), {tokens, kv, hd});
      v = b_.reshape(b_.slice(qkv, 1, (h + kv) * hd, (h + 2 * kv) * hd), {tokens, kv, hd});
    } else {
      q = b_.reshape(biased(project(xn, p + "attn_q.weight", {h * hd, d}), p + "attn_q.bias", h * hd), {tokens, h, hd});
      k = b_.reshape(biased(project(xn, p + "attn_k.weight", {kv * hd, d}), p + "attn_k.bias", kv * hd), {tokens, kv, hd});
      v = b_.reshape(biased(project(xn, p + "attn_v.weight", {kv * hd, d}), p + "attn_v.bias", kv * hd), {tokens, kv, hd});
    }
    if (c_.qk_norm) {
      q = rms_norm(q, p + "attn_q_norm.weight", hd);
      k = rms_norm(k, p + "attn_k_norm.weight", hd);
    }
    q = rope(q, h, tokens, swa);
    k = rope(k, kv, tokens, swa);

    Value k_all = repeat_kv(kv_cache(k, l, "k", past), seq);
    Value v_all = repeat_kv(kv_cache(v, l, "v", past), seq);

    Value qh = llama_cpp_half(b_.transpose(q, {1, 0, 2}));  // [h, tokens, hd]
    Value kh = b_.transpose(k_all, {1, 0, 2});  // [h, seq, hd]
    Value vh = b_.transpose(v_all, {1, 0, 2});  // [h, seq, hd]
    // LongRoPE's attention factor multiplies cos and sin (so q and k): q.k by its square.
    const double scale = (c_.attn_scale > 0 ? c_.attn_scale : 1.0 / std::sqrt(static_cast<double>(hd))) *
                         c_.rope_attn_factor * c_.rope_attn_factor;
    Value scores = softcap(b_.mul(b_.matmul(qh, kh, true), b_.scalar_f32(static_cast<float>(scale))), c_.attn_softcap);
    Value masked = b_.op(Op::Select, {swa ? mask_swa_ : mask_, scores, b_.scalar_f32(-std::numeric_limits<float>::infinity())});
    Value probs = b_.op(Op::Softmax, {masked}, {{"axis", Attribute::Int(-1)}});
    Value attn = b_.reshape(b_.transpose(b_.matmul(llama_cpp_half(probs), vh), {1, 0, 2}), {tokens, h * hd});
    Value attn_out = project(attn, p + "attn_output.weight", {d, h * hd});
    if (c_.post_norms) attn_out = rms_norm(attn_out, p + "post_attention_norm.weight");
    x = b_.add(x, attn_out);

    Value fn = rms_norm(x, p + "ffn_norm.weight");
    Value gate, up;
    if (c_.fused_gate_up) {
      Value both = project(fn, p + "ffn_up.weight", {2 * c_.ffn, d});
      gate = b_.slice(both, 1, 0, c_.ffn);
      up = b_.slice(both, 1, c_.ffn, 2 * c_.ffn);
    } else {
      gate = project(fn, p + "ffn_gate.weight", {c_.ffn, d});
      up = project(fn, p + "ffn_up.weight", {c_.ffn, d});
    }
    Value act = c_.geglu ? b_.op(Op::GeGLU, {gate, up}, {{"approximation", Attribute::String("ggml_f16")}})
                         : b_.mul(b_.mul(gate, b_.op(Op::Sigmoid, {gate})), up);  // SiLU(gate) * up
    Value ffn_out = project(act, p + "ffn_down.weight", {d, c_.ffn});
    if (c_.post_norms) ffn_out = rms_norm(ffn_out, p + "post_ffw_norm.weight");
    return b_.add(x, ffn_out);
  }

 public:
  Status status() const { return errors_.ok() ? b_.status() : errors_; }

 private:
  const LlamaConfig& c_;
  const WeightProvider& weights_;
  GraphBuilder b_;
  Status errors_;
  Value cos_, sin_, mask_, cos_swa_, sin_swa_, mask_swa_;
  std::map<std::string, Value> constants_, converted_;
};

}  // namespace

StatusOr<std::unique_ptr<Model>> build_llama(const LlamaConfig& config, const WeightProvider& weights,
                                             const std::string& model_name) {
  INGOT_RETURN_IF_ERROR(config.validate().with_context(model_name));
  auto model = std::make_unique<Model>(model_name);
  LlamaGraph g(config, weights, *model);
  (void)g.build();
  // The first weight error explains the builder errors that follow it: report that one.
  if (!g.status().ok()) return g.status().with_context(model_name);
  return model;
}

}  // namespace ingot
