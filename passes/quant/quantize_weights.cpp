// The weight quantization pass and its recipe. The block quantizers live in ir/quant.h; this file
// decides which weight gets which type and rewires the graph.
#include "passes/quant/quantize_weights.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fnmatch.h>
#include <map>
#include <sstream>
#include <thread>

#include "ir/quant.h"

namespace ingot {

// ---------------------------------------------------------------- recipe

std::string QuantTarget::str() const { return keep ? "keep" : std::string(type_name(type)); }

StatusOr<QuantTarget> QuantTarget::parse(std::string_view s) {
  if (s == "keep") return QuantTarget{};
  for (ElementType t : {ElementType::f32, ElementType::f16, ElementType::q8_0, ElementType::q4_0, ElementType::q4_k,
                        ElementType::q5_0, ElementType::q5_1, ElementType::q5_k, ElementType::q6_k})
    if (s == type_name(t)) return QuantTarget{false, t};
  return Status::Error("unknown weight type '" + std::string(s) +
                       "' (expected keep, f32, f16, q8_0, q4_0, q4_k, q5_0, q5_1, q5_k or q6_k)");
}

StatusOr<QuantRecipe> QuantRecipe::parse(std::string_view mode, const std::vector<std::string>& overrides) {
  QuantRecipe r;
  // llama-quantize's mixtures: a default type plus its per-tensor rules (llama_mixture_type).
  if (mode == "q4_k_m" || mode == "q5_k_m") {
    r.mixture = std::string(mode);
    mode = mode == "q4_k_m" ? "q4_k" : "q5_k";
  }
  auto m = QuantTarget::parse(mode);
  if (!m.ok()) return Status::Error("--quant: " + m.message() + ", or a mixture: q4_k_m, q5_k_m");
  r.mode = *m;
  for (const std::string& o : overrides) {
    const size_t eq = o.rfind('=');
    if (eq == std::string::npos || eq == 0)
      return Status::Error("--quant-override '" + o + "': expected PATTERN=TYPE, e.g. 'ffn_down=q8_0'");
    auto t = QuantTarget::parse(o.substr(eq + 1));
    if (!t.ok()) return Status::Error("--quant-override '" + o + "': " + t.message());
    r.overrides.push_back({o.substr(0, eq), *t});
  }
  return r;
}

std::string QuantRecipe::str() const {
  std::string s = mixture.empty() ? mode.str() : mixture;
  for (auto& o : overrides) s += ", " + o.pattern + "=" + o.target.str();
  return s;
}

bool glob_matches_tensor(std::string_view pattern, std::string_view name) {
  const std::string p(pattern), n(name);
  if (fnmatch(p.c_str(), n.c_str(), 0) == 0) return true;
  if (p.find_first_of("*?[") != std::string::npos) return false;
  // A plain word: whole dot-separated parts of the name.
  const std::string dotted = "." + n + ".", needle = "." + p + ".";
  return dotted.find(needle) != std::string::npos;
}

// ---------------------------------------------------------------- conversion

namespace {

bool is_quant_target(ElementType t) { return type_info(t).is_quantized; }

// One row through a block quantizer of ir/quant.h (`block_elems` values per Block).
template <typename Block>
void quantize_into(void (*quantize)(const float*, Block*, int64_t), int block_elems, const std::vector<float>& row,
                   uint8_t* out) {
  std::vector<Block> b(row.size() / static_cast<size_t>(block_elems));
  quantize(row.data(), b.data(), static_cast<int64_t>(row.size()));
  std::memcpy(out, b.data(), b.size() * sizeof(Block));
}

// Converts rows [begin, end) of a float tensor with K columns.
void convert_rows(const Tensor& src, ElementType to, int64_t K, int64_t begin, int64_t end, uint8_t* dst) {
  const ElementTypeInfo& ti = type_info(to);
  const int64_t row_bytes = K / ti.block_elems * ti.block_bytes;
  std::vector<float> row(static_cast<size_t>(K));
  for (int64_t r = begin; r < end; ++r) {
    const uint8_t* in = src.raw() + r * K * type_info(src.type()).block_bytes;
    if (src.type() == ElementType::f32) {
      std::memcpy(row.data(), in, static_cast<size_t>(K) * 4);
    } else {
      for (int64_t k = 0; k < K; ++k) {
        uint16_t h;
        std::memcpy(&h, in + 2 * k, 2);
        row[static_cast<size_t>(k)] = src.type() == ElementType::f16 ? f16_to_f32(h) : bf16_to_f32(h);
      }
    }
    uint8_t* out = dst + r * row_bytes;
    switch (to) {
      case ElementType::f32: std::memcpy(out, row.data(), static_cast<size_t>(K) * 4); break;
      case ElementType::f16:
        for (int64_t k = 0; k < K; ++k) {
          const uint16_t h = f32_to_f16(row[static_cast<size_t>(k)]);
          std::memcpy(out + 2 * k, &h, 2);
        }
        break;
      case ElementType::q8_0: quantize_into(quantize_row_q8_0, kQK, row, out); break;
      case ElementType::q4_0: quantize_into(quantize_row_q4_0, kQK, row, out); break;
      case ElementType::q5_0: quantize_into(quantize_row_q5_0, kQK, row, out); break;
      case ElementType::q5_1: quantize_into(quantize_row_q5_1, kQK, row, out); break;
      case ElementType::q4_k: quantize_into(quantize_row_q4_k, kQK_K, row, out); break;
      case ElementType::q5_k: quantize_into(quantize_row_q5_k, kQK_K, row, out); break;
      case ElementType::q6_k: quantize_into(quantize_row_q6_k, kQK_K, row, out); break;
      default: INGOT_ASSERT(false, "convert_weight: unsupported target " + std::string(type_name(to)));
    }
  }
}

}  // namespace

Tensor convert_weight(const Tensor& t, ElementType to) {
  INGOT_ASSERT(type_info(t.type()).is_float && t.rank() == 2, "convert_weight needs a float [rows, K] tensor");
  const int64_t rows = t.shape()[0], K = t.shape()[1];
  INGOT_ASSERT(K % type_info(to).block_elems == 0, "convert_weight: rows are not whole blocks");
  Tensor out = Tensor::zeros(to, t.shape());
  uint8_t* dst = out.mutable_raw();
  // Quantizing a billion weights is seconds of work per core: split the rows over the cores.
  const int64_t threads = std::clamp<int64_t>(std::thread::hardware_concurrency(), 1, 16);
  const int64_t per = (rows + threads - 1) / threads;
  if (threads == 1 || rows * K < (1 << 16)) {
    convert_rows(t, to, K, 0, rows, dst);
    return out;
  }
  std::vector<std::thread> pool;
  for (int64_t b = 0; b < rows; b += per)
    pool.emplace_back(convert_rows, std::cref(t), to, K, b, std::min(rows, b + per), dst);
  for (auto& th : pool) th.join();
  return out;
}

// ---------------------------------------------------------------- the pass

namespace {

// Whether value `v` reaches a weight operand: a matmul's weights or an embedding table,
// directly or through Convert nodes.
bool feeds_weight_operand(const Model& m, Value v) {
  for (auto [user, slot] : m.users(v)) {
    if (user->is(Op::Convert) && feeds_weight_operand(m, user->out())) return true;
    if ((user->is(Op::WeightMatMul) || user->is(Op::FusedMatMul)) && slot == 1) return true;
    if (user->is(Op::MatMul) && slot == 1) return true;
    if (user->is(Op::Gather) && slot == 0) return true;
  }
  return false;
}

bool is_embedding_or_output(const std::string& name) {
  return name == "token_embd.weight" || name == "output.weight";
}

bool ends_with(const std::string& s, std::string_view tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The layer of "blk.N.<...>", or -1.
int layer_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  int layer = 0;
  size_t i = 4;
  if (i >= name.size() || !std::isdigit(static_cast<unsigned char>(name[i]))) return -1;
  for (; i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])); ++i) layer = layer * 10 + (name[i] - '0');
  return i < name.size() && name[i] == '.' ? layer : -1;
}

// llama-quantize's use_more_bits: the first and last eighth of the layers and every third between.
bool use_more_bits(int layer, int layers) {
  return layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;
}

// The type llama-quantize (llama_tensor_get_type, dense non-Falcon models) gives a weight in the
// q4_k_m and q5_k_m mixtures, before its fallback for rows that are not whole super-blocks:
//   output.weight (token_embd.weight when the output is tied to it)  -> q6_k, or q8_0 when the
//                                                      rows are not whole super-blocks
//   attn_v (or a fused attn_qkv), ffn_down of layers that use_more_bits -> q6_k
//   everything else                                   -> the default: q4_k (q4_k_m), q5_k (q5_k_m)
ElementType llama_mixture_type(const std::string& mixture, const std::string& name, int64_t cols, bool tied_output,
                               int layers, std::string& rule) {
  const ElementType base = mixture == "q4_k_m" ? ElementType::q4_k : ElementType::q5_k;
  rule = mixture + " default";
  if (name == "output.weight" || (tied_output && name == "token_embd.weight")) {
    rule = mixture + ": output projection";
    return cols % kQK_K != 0 ? ElementType::q8_0 : ElementType::q6_k;
  }
  // llama-quantize counts a fused attn_qkv as an attn_v (category_is_attn_v): its dedicated
  // attn_qkv rule is never reached.
  const int layer = layer_of(name);
  const bool attn_v = ends_with(name, ".attn_v.weight") || ends_with(name, ".attn_qkv.weight");
  if ((attn_v || ends_with(name, ".ffn_down.weight")) && layer >= 0 && use_more_bits(layer, layers)) {
    rule = mixture + ": more bits for this layer's " + std::string(attn_v ? name.substr(name.find('.', 4) + 1) : "ffn_down.weight");
    return ElementType::q6_k;
  }
  return base;
}

// llama-quantize's fallback for rows that are not whole blocks of `t`: q4_k -> q5_0, q5_k -> q5_1,
// q6_k -> q8_0, then f16 when even 32 does not divide them.
ElementType llama_fallback_type(ElementType t, int64_t cols) {
  if (cols % type_info(t).block_elems == 0) return t;
  ElementType f = t == ElementType::q4_k ? ElementType::q5_0 : t == ElementType::q5_k ? ElementType::q5_1 : ElementType::q8_0;
  return cols % type_info(f).block_elems == 0 ? f : ElementType::f16;
}

}  // namespace

StatusOr<bool> QuantizeWeightsPass::run(Model& m) {
  decisions_.clear();
  std::vector<Node*> weights;
  for (auto& n : m.nodes())
    if (n->is(Op::Constant) && n->constant && n->outputs[0].shape.size() == 2 && feeds_weight_operand(m, n->out()))
      weights.push_back(n.get());

  // What the mixtures' rules look at: the layer count, and whether the output is tied to the
  // embeddings (no output.weight of its own).
  bool has_output = false;
  int layers = 0;
  for (Node* w : weights) {
    has_output = has_output || w->name == "output.weight";
    layers = std::max(layers, layer_of(w->name) + 1);
  }

  int64_t total_bytes = 0, done_bytes = 0;
  for (Node* w : weights) total_bytes += static_cast<int64_t>(w->constant->nbytes());
  bool changed = false;
  for (Node* w : weights) {
    const Tensor& t = *w->constant;
    QuantDecision d;
    d.tensor = w->name;
    d.shape = t.shape();
    d.from = d.to = t.type();
    d.bytes_before = d.bytes_after = static_cast<int64_t>(t.nbytes());

    // The target: the mode, the 4-bit rule, then the overrides in order.
    QuantTarget target = recipe_.mode;
    d.rule = "mode " + recipe_.mode.str();
    if (!recipe_.mixture.empty()) {
      target.type = llama_mixture_type(recipe_.mixture, w->name, t.shape()[1], !has_output, layers, d.rule);
    } else if (!target.keep && (target.type == ElementType::q4_0 || target.type == ElementType::q4_k) &&
        is_embedding_or_output(w->name)) {
      target = QuantTarget{false, ElementType::q8_0};
      d.rule = "4-bit rule: embeddings and output projection stay q8_0";
    }
    for (const QuantOverride& o : recipe_.overrides)
      if (glob_matches_tensor(o.pattern, w->name)) {
        target = o.target;
        d.rule = "override " + o.pattern + "=" + o.target.str();
      }

    ElementType to = t.type();
    if (target.keep || target.type == t.type()) {
      // nothing to do
    } else if (type_info(t.type()).is_quantized) {
      d.note = "already " + std::string(type_name(t.type())) + ": never re-quantized";
    } else if (!recipe_.mixture.empty() && is_quant_target(target.type) &&
               t.shape()[1] % type_info(target.type).block_elems != 0) {
      to = llama_fallback_type(target.type, t.shape()[1]);
      if (to == ElementType::f16 && t.type() != ElementType::f32) to = t.type();
      d.note = std::to_string(t.shape()[1]) + " columns is not a multiple of " +
               std::to_string(type_info(target.type).block_elems) + ": " + std::string(type_name(to)) +
               ", as llama-quantize falls back";
    } else if (is_quant_target(target.type) && t.shape()[1] % type_info(target.type).block_elems != 0) {
      to = t.type() == ElementType::f32 ? ElementType::f16 : t.type();
      d.note = std::to_string(t.shape()[1]) + " columns is not a multiple of " +
               std::to_string(type_info(target.type).block_elems) + " (the " + std::string(type_name(target.type)) +
               " block): stored as " + std::string(type_name(to));
    } else {
      to = target.type;
    }

    if (to != t.type()) {
      auto converted = std::make_shared<Tensor>(convert_weight(t, to));
      d.bytes_after = static_cast<int64_t>(converted->nbytes());
      const TensorType old_type = w->outputs[0];
      w->constant = std::move(converted);
      w->outputs[0].type = to;
      // Users that take any weight type read it as is; others (MatMul, Gather, Convert to the
      // same type) were built for the old type: give them a Convert back to it.
      Node* back = nullptr;
      for (auto [user, slot] : m.users(w->out())) {
        const bool any_type = (user->is(Op::WeightMatMul) || user->is(Op::FusedMatMul)) && slot == 1;
        if (any_type || user->is(Op::Convert)) {
          INGOT_RETURN_IF_ERROR(m.reinfer(user));
          continue;
        }
        if (!back) {
          NodeSpec spec{Op::Convert, {w->out()}, {{"to", Attribute::Type(old_type.type)}}, w->name + ".dequantized", {}, nullptr, ""};
          INGOT_ASSIGN_OR_RETURN(back, m.add_node(std::move(spec)));
        }
        user->inputs[static_cast<size_t>(slot)] = back->out();
        INGOT_RETURN_IF_ERROR(m.reinfer(user));
      }
      changed = true;
    }
    d.to = to;
    decisions_.push_back(std::move(d));
    done_bytes += decisions_.back().bytes_before;
    if (progress_) progress_(done_bytes, total_bytes);
  }
  return changed;
}

std::string QuantizeWeightsPass::report() const {
  std::ostringstream s;
  int64_t before = 0, after = 0;
  size_t width = 6;
  for (auto& d : decisions_) width = std::max(width, d.tensor.size());
  for (auto& d : decisions_) {
    before += d.bytes_before;
    after += d.bytes_after;
    std::string shape = dims_str(d.shape);
    s << "  " << d.tensor << std::string(width - d.tensor.size() + 2, ' ') << shape
      << std::string(shape.size() < 14 ? 14 - shape.size() : 1, ' ') << type_name(d.from) << " -> " << type_name(d.to)
      << "   (" << d.rule << (d.note.empty() ? "" : "; " + d.note) << ")\n";
  }
  char buf[160];
  std::snprintf(buf, sizeof(buf), "  weights: %zu tensors, %.2f MiB -> %.2f MiB\n", decisions_.size(),
                static_cast<double>(before) / (1 << 20), static_cast<double>(after) / (1 << 20));
  s << buf;
  return s.str();
}

}  // namespace ingot
