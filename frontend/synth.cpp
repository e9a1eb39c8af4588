#include "frontend/synth.h"

#include <algorithm>
#include <cerrno>
#include <map>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <limits>
#include <utility>

#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "frontend/hf_config.h"
#include "frontend/importer.h"
#include "frontend/random.h"
#include "frontend/tokenizer_hf.h"
#include "ir/quant.h"

namespace ingot {
namespace {

const std::vector<SynthShape>& known_shapes() {
  //                                  name              vocab   dim layers heads kv   ffn  context
  static const std::vector<SynthShape> kShapes = {
      {"tiny", 512, 64, 2, 4, 2, 172, 512},
      {"s110m", 32000, 768, 12, 12, 12, 2048, 1024},
      {"tinyllama-1.1b", 32000, 2048, 22, 32, 4, 5632, 2048},
  };
  return kShapes;
}

// --- Shape and type checks ---------------------------------------------------------------------

Status check_shape(const SynthShape& s) {
  const auto fail = [&](const std::string& what) { return Status::Error("synth shape '" + s.name + "': " + what); };
  // The vocabulary size is checked where it is known (it may come from a vocabulary file).
  const std::pair<const char*, int64_t> fields[] = {{"dim", s.dim},         {"n_layers", s.n_layers},
                                                    {"n_heads", s.n_heads}, {"n_kv_heads", s.n_kv_heads},
                                                    {"ffn", s.ffn},         {"context", s.context}};
  for (const auto& [field, value] : fields) {
    if (value <= 0 || value > std::numeric_limits<uint32_t>::max())
      return fail(std::string(field) + " is " + std::to_string(value) + ", must be in 1..2^32-1");
  }
  if (s.dim % s.n_heads != 0)
    return fail("dim " + std::to_string(s.dim) + " is not a multiple of n_heads " + std::to_string(s.n_heads));
  if (s.n_heads % s.n_kv_heads != 0)
    return fail("n_heads " + std::to_string(s.n_heads) + " is not a multiple of n_kv_heads " +
                std::to_string(s.n_kv_heads));
  if ((s.dim / s.n_heads) % 2 != 0)
    return fail("head dimension " + std::to_string(s.dim / s.n_heads) + " is odd (RoPE rotates pairs)");
  const auto archs = synth_archs();
  if (std::find(archs.begin(), archs.end(), s.arch) == archs.end()) {
    std::string known;
    for (const std::string& a : archs) known += (known.empty() ? "" : ", ") + a;
    return fail("unknown architecture '" + s.arch + "' (known: " + known + ")");
  }
  return Status::Ok();
}

// llama.cpp's llama_ftype for a model whose 2-D weights are all `t`.
StatusOr<uint32_t> file_type_of(ElementType t) {
  switch (t) {
    case ElementType::f32: return 0u;   // ALL_F32
    case ElementType::f16: return 1u;   // MOSTLY_F16
    case ElementType::q4_0: return 2u;  // MOSTLY_Q4_0
    case ElementType::q8_0: return 7u;  // MOSTLY_Q8_0
    case ElementType::q4_k: return 14u; // MOSTLY_Q4_K_S
    case ElementType::q6_k: return 18u; // MOSTLY_Q6_K
    default:
      return Status::Error("synth: weight type " + std::string(type_name(t)) +
                           " is not supported (use f32, f16, q8_0, q4_0, q4_k or q6_k)");
  }
}

// A row that is not whole blocks cannot be quantized; llama.cpp keeps such tensors in f16.
ElementType stored_type(ElementType weight_type, const std::vector<int64_t>& shape) {
  const ElementTypeInfo& info = type_info(weight_type);
  if (info.is_quantized && shape.back() % info.block_elems != 0) return ElementType::f16;
  return weight_type;
}

// --- Random bytes ------------------------------------------------------------------------------

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

// Each tensor has its own stream, so its bytes do not depend on which tensors precede it.
Random tensor_random(uint64_t seed, const std::string& name) {
  Random mixer(seed ^ fnv1a(name));
  return Random(mixer.next_u64());
}

void put_u16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}

void put_f32(uint8_t* p, float f) {
  uint32_t v = 0;
  std::memcpy(&v, &f, 4);
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

void random_bytes(Random& r, uint8_t* p, size_t n) {
  while (n > 0) {
    uint64_t v = r.next_u64();
    for (int i = 0; i < 8 && n > 0; ++i, --n, v >>= 8) *p++ = static_cast<uint8_t>(v);
  }
}

uint16_t f16_scale(Random& r, double scale) { return f32_to_f16(static_cast<float>(scale * r.uniform(0.75, 1.25))); }

// Values ~ uniform(-a, a) in each format. Quantized blocks are random quants under a random
// scale chosen so that the dequantized values span about [-a, a].
void fill_f32(Random& r, double lo, double hi, uint8_t* dst, size_t bytes) {
  for (size_t i = 0; i + 4 <= bytes; i += 4) put_f32(dst + i, static_cast<float>(r.uniform(lo, hi)));
}

void fill_f16(Random& r, double a, uint8_t* dst, size_t bytes) {
  for (size_t i = 0; i + 2 <= bytes; i += 2) put_u16(dst + i, f32_to_f16(static_cast<float>(r.uniform(-a, a))));
}

void fill_q8_0(Random& r, double a, uint8_t* dst, size_t bytes) {
  for (size_t b = 0; b + sizeof(BlockQ8_0) <= bytes; b += sizeof(BlockQ8_0)) {
    put_u16(dst + b + offsetof(BlockQ8_0, d), f16_scale(r, a / 127.0));  // x = d * q, q in [-128, 127]
    random_bytes(r, dst + b + offsetof(BlockQ8_0, qs), kQK);
  }
}

void fill_q4_0(Random& r, double a, uint8_t* dst, size_t bytes) {
  for (size_t b = 0; b + sizeof(BlockQ4_0) <= bytes; b += sizeof(BlockQ4_0)) {
    put_u16(dst + b + offsetof(BlockQ4_0, d), f16_scale(r, a / 8.0));  // x = d * (q - 8), q in [0, 15]
    random_bytes(r, dst + b + offsetof(BlockQ4_0, qs), kQK / 2);
  }
}

// The 12-byte k-quant scale block: eight 6-bit scales and eight 6-bit mins (ggml's packing; the
// low 4 sub-blocks keep their bits in bytes 0..7, the high 4 split theirs over bytes 8..11 and
// the top bits of bytes 0..7).
void pack_k_scales(const uint8_t sc[8], const uint8_t m[8], uint8_t out[12]) {
  for (int j = 0; j < 4; ++j) {
    out[j] = static_cast<uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    out[j + 4] = static_cast<uint8_t>((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    out[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
  }
}

void fill_q4_k(Random& r, double a, uint8_t* dst, size_t bytes) {
  // x = d * sc * q - dmin * m with q in [0, 15] and sc, m in [44, 51] (mean 47.5): d * sc * 15
  // spans about 2a and dmin * m shifts that down by about a. One jitter for both keeps |x| < 1.6a.
  constexpr double kMeanScale = 47.5;
  for (size_t b = 0; b + sizeof(BlockQ4_K) <= bytes; b += sizeof(BlockQ4_K)) {
    const double jitter = r.uniform(0.75, 1.25);
    put_u16(dst + b + offsetof(BlockQ4_K, d), f32_to_f16(static_cast<float>(jitter * 2.0 * a / (15.0 * kMeanScale))));
    put_u16(dst + b + offsetof(BlockQ4_K, dmin), f32_to_f16(static_cast<float>(jitter * a / kMeanScale)));
    uint8_t sc[8], m[8];
    uint64_t bits = r.next_u64();
    for (int j = 0; j < 8; ++j, bits >>= 6) {
      sc[j] = static_cast<uint8_t>(44 + (bits & 7));
      m[j] = static_cast<uint8_t>(44 + ((bits >> 3) & 7));
    }
    pack_k_scales(sc, m, dst + b + offsetof(BlockQ4_K, scales));
    random_bytes(r, dst + b + offsetof(BlockQ4_K, qs), kQK_K / 2);
  }
}

void fill_q6_k(Random& r, double a, uint8_t* dst, size_t bytes) {
  // x = d * sc * (q - 32) with q in [0, 63] and the sixteen 8-bit scales sc in [12, 19] (mean
  // 15.5): |x| <= 32 * 19 * d, about 1.2a (1.5a with the largest jitter).
  constexpr double kMeanScale = 15.5;
  for (size_t b = 0; b + sizeof(BlockQ6_K) <= bytes; b += sizeof(BlockQ6_K)) {
    const double jitter = r.uniform(0.75, 1.25);
    put_u16(dst + b + offsetof(BlockQ6_K, d), f32_to_f16(static_cast<float>(jitter * a / (32.0 * kMeanScale))));
    uint64_t bits = r.next_u64();
    for (int j = 0; j < kQK_K / 16; ++j, bits >>= 3) dst[b + offsetof(BlockQ6_K, scales) + j] = static_cast<uint8_t>(12 + (bits & 7));
    random_bytes(r, dst + b + offsetof(BlockQ6_K, ql), kQK_K / 2);
    random_bytes(r, dst + b + offsetof(BlockQ6_K, qh), kQK_K / 4);
  }
}

Status fill_weight(Random& r, ElementType type, double a, uint8_t* dst, size_t bytes) {
  switch (type) {
    case ElementType::f32: fill_f32(r, -a, a, dst, bytes); return Status::Ok();
    case ElementType::f16: fill_f16(r, a, dst, bytes); return Status::Ok();
    case ElementType::q8_0: fill_q8_0(r, a, dst, bytes); return Status::Ok();
    case ElementType::q4_0: fill_q4_0(r, a, dst, bytes); return Status::Ok();
    case ElementType::q4_k: fill_q4_k(r, a, dst, bytes); return Status::Ok();
    case ElementType::q6_k: fill_q6_k(r, a, dst, bytes); return Status::Ok();
    default: return Status::Error("cannot generate weights of type " + std::string(type_name(type)));
  }
}

// --- Metadata ----------------------------------------------------------------------------------

void set_u32(GgufWriter& w, const std::string& key, int64_t v) { w.set(key, GgufValue::u32(static_cast<uint32_t>(v))); }

constexpr int64_t kSynthSlidingWindow = 3;

// "llama3" is LLaMA 3.2's form of "llama": RoPE base 500000 with llama3 frequency scaling (factor 8,
// low 1, high 4, original context 8192, as GGUF's rope_freqs.weight) and tied embeddings.
constexpr double kLlama3RopeBase = 500000.0, kLlama3Factor = 8.0, kLlama3Low = 1.0, kLlama3High = 4.0, kLlama3Context = 8192.0;
// "smollm2" is SmolLM2's: a "llama" GGUF with RoPE base 100000, tied embeddings and a GPT-2-style
// BPE vocabulary (give one with --vocab; its pre-tokenizer is set to llama.cpp's "smollm").
std::string gguf_arch(const SynthShape& s) { return s.arch == "llama3" || s.arch == "smollm2" ? "llama" : s.arch; }
bool tied_embeddings(const SynthShape& s) { return s.arch == "gemma2" || s.arch == "gemma3" || s.arch == "llama3" || s.arch == "smollm2"; }
double rope_base(const SynthShape& s) {
  return s.arch == "gemma3" ? 1000000.0 : s.arch == "llama3" ? kLlama3RopeBase : s.arch == "smollm2" ? 100000.0 : 10000.0;
}

// llama.cpp's converter's rope_freqs for llama3 scaling: per frequency 1, the factor, or between.
std::vector<float> llama3_rope_factors(int64_t head_dim) {
  std::vector<float> f;
  for (int64_t i = 0; i < head_dim; i += 2) {
    const double freq = 1.0 / std::pow(kLlama3RopeBase, static_cast<double>(i) / static_cast<double>(head_dim));
    const double wavelen = 2.0 * M_PI / freq;
    if (wavelen < kLlama3Context / kLlama3High) f.push_back(1.0f);
    else if (wavelen > kLlama3Context / kLlama3Low) f.push_back(static_cast<float>(kLlama3Factor));
    else {
      const double smooth = (kLlama3Context / wavelen - kLlama3Low) / (kLlama3High - kLlama3Low);
      f.push_back(static_cast<float>(1.0 / ((1.0 - smooth) / kLlama3Factor + smooth)));
    }
  }
  return f;
}

// Phi-3's LongRoPE as llama.cpp's converter writes it: per-frequency factors rising from 1 to
// `top` (long: 8, short: 1.5; real models' long factors reach tens), the original context a
// quarter of the context (so llama.cpp and Ingot use the long factors at the full context), and
// attn_factor sqrt(1 + ln(4) / ln(original)).
constexpr double kLongRopeLongMax = 8.0, kLongRopeShortMax = 1.5;
std::vector<float> longrope_factors(int64_t head_dim, double top) {
  const int64_t n = head_dim / 2;
  std::vector<float> f;
  for (int64_t i = 0; i < n; ++i) f.push_back(static_cast<float>(1.0 + (top - 1.0) * static_cast<double>(i) / static_cast<double>(std::max<int64_t>(n - 1, 1))));
  return f;
}
int64_t longrope_original_context(const SynthShape& s) { return std::max<int64_t>(s.context / 4, 1); }

void set_hparams(GgufWriter& w, const SynthShape& s, int64_t vocab, uint32_t file_type) {
  const std::string a = gguf_arch(s) + ".";
  const int64_t hd = s.dim / s.n_heads;
  w.set("general.architecture", GgufValue::string(gguf_arch(s)));
  w.set("general.name", GgufValue::string(s.name.empty() ? "synth" : s.name));
  set_u32(w, "general.alignment", 32);
  set_u32(w, "general.file_type", file_type);
  set_u32(w, "general.quantization_version", 2);
  set_u32(w, a + "vocab_size", vocab);
  set_u32(w, a + "context_length", s.context);
  set_u32(w, a + "embedding_length", s.dim);
  set_u32(w, a + "block_count", s.n_layers);
  set_u32(w, a + "feed_forward_length", s.ffn);
  set_u32(w, a + "attention.head_count", s.n_heads);
  set_u32(w, a + "attention.head_count_kv", s.n_kv_heads);
  set_u32(w, a + "attention.key_length", hd);
  set_u32(w, a + "attention.value_length", hd);
  set_u32(w, a + "rope.dimension_count", hd);
  w.set(a + "attention.layer_norm_rms_epsilon", GgufValue::f32(1e-5f));
  w.set(a + "rope.freq_base", GgufValue::f32(static_cast<float>(rope_base(s))));
  if (s.arch == "gemma2") {
    w.set(a + "attn_logit_softcapping", GgufValue::f32(50.0f));
    w.set(a + "final_logit_softcapping", GgufValue::f32(30.0f));
    set_u32(w, a + "attention.sliding_window", kSynthSlidingWindow);
  }
  if (s.arch == "phi3") {
    const int64_t orig = longrope_original_context(s);
    set_u32(w, a + "rope.scaling.original_context_length", orig);
    const double scale = static_cast<double>(s.context) / static_cast<double>(orig);
    w.set(a + "rope.scaling.attn_factor",
          GgufValue::f32(static_cast<float>(scale > 1.0 ? std::sqrt(1.0 + std::log(scale) / std::log(static_cast<double>(orig))) : 1.0)));
  }
  if (s.arch == "gemma3") {
    set_u32(w, a + "attention.sliding_window", kSynthSlidingWindow);
    set_u32(w, a + "attention.sliding_window_pattern", 2);  // layer 0 local, 1 global, ...
    w.set(a + "rope.freq_base_swa", GgufValue::f32(10000.0f));
  }
}

StatusOr<int64_t> vocab_token_count(const GgufFile& vocab) {
  const GgufValue* tokens = vocab.find("tokenizer.ggml.tokens");
  if (!tokens || tokens->type() != GgufType::ARRAY || tokens->elem_type() != GgufType::STRING ||
      tokens->items().empty()) {
    return Status::Error(vocab.path() + ": no tokenizer.ggml.tokens string array to take the vocabulary from");
  }
  return static_cast<int64_t>(tokens->items().size());
}

void copy_tokenizer(GgufWriter& w, const GgufFile& vocab) {
  for (const auto& [key, value] : vocab.metadata()) {
    if (key.rfind("tokenizer.", 0) == 0) w.set(key, value);
  }
}

// "a".."z", "aa", "ab", ...: bijective base 26.
std::string letters(uint64_t m) {
  std::string s;
  for (++m; m > 0; m = (m - 1) / 26) s.insert(s.begin(), static_cast<char>('a' + (m - 1) % 26));
  return s;
}

constexpr int64_t kSyntheticVocabMin = 3 + 256;  // <unk> <s> </s> and the 256 byte tokens

// A SentencePiece-style vocabulary that llama.cpp and Ingot's tokenizer accept: control tokens,
// byte fallback, printable ASCII, then made-up words (with and without the word-start mark).
void add_synthetic_tokenizer(GgufWriter& w, int64_t n) {
  enum : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kByte = 6 };
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  const auto add = [&](std::string piece, int32_t type) {
    if (static_cast<int64_t>(tokens.size()) >= n) return;
    scores.push_back(type == kNormal ? -static_cast<float>(tokens.size()) : 0.0f);
    tokens.push_back(std::move(piece));
    types.push_back(type);
  };
  add("<unk>", kUnknown);
  add("<s>", kControl);
  add("</s>", kControl);
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    add(buf, kByte);
  }
  for (char c = ' '; c <= '~'; ++c) add(c == ' ' ? "\xE2\x96\x81" : std::string(1, c), kNormal);
  for (uint64_t j = 0; static_cast<int64_t>(tokens.size()) < n; ++j)
    add((j % 2 == 0 ? "\xE2\x96\x81" : "") + letters(26 + j / 2), kNormal);

  w.set("tokenizer.ggml.model", GgufValue::string("llama"));
  w.set("tokenizer.ggml.tokens", GgufValue::strings(tokens));
  w.set("tokenizer.ggml.scores", GgufValue::f32s(scores));
  w.set("tokenizer.ggml.token_type", GgufValue::i32s(types));
  set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
  set_u32(w, "tokenizer.ggml.bos_token_id", 1);
  set_u32(w, "tokenizer.ggml.eos_token_id", 2);
  w.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(true));
  w.set("tokenizer.ggml.add_eos_token", GgufValue::boolean(false));
}

// --- Tensors -----------------------------------------------------------------------------------

struct TensorPlan {
  std::string name;
  std::vector<int64_t> shape;  // row-major [out, in], or [dim] for norms
  bool is_norm = false;
  bool is_bias = false;  // f32, small values around 0
  bool is_rope_freqs = false;  // f32 RoPE factors (llama3's rope_freqs, LongRoPE's): `fixed`, not random
  std::vector<float> fixed = {};
};

// llama.cpp's tensors for each architecture: Qwen2 adds Q/K/V biases, Qwen3 and Gemma 3 per-head
// Q/K norms, Gemma post-norms and tied embeddings, Phi-3 fused QKV and gate-up projections.
std::vector<TensorPlan> arch_tensors(const SynthShape& s, int64_t vocab) {
  const int64_t hd = s.dim / s.n_heads, q = s.n_heads * hd, kv = s.n_kv_heads * hd;
  const bool gemma = s.arch == "gemma2" || s.arch == "gemma3";
  std::vector<TensorPlan> plan;
  plan.push_back({"token_embd.weight", {vocab, s.dim}});
  if (s.arch == "llama3") plan.push_back({"rope_freqs.weight", {hd / 2}, false, false, true, llama3_rope_factors(hd)});
  if (s.arch == "phi3") {
    plan.push_back({"rope_factors_long.weight", {hd / 2}, false, false, true, longrope_factors(hd, kLongRopeLongMax)});
    plan.push_back({"rope_factors_short.weight", {hd / 2}, false, false, true, longrope_factors(hd, kLongRopeShortMax)});
  }
  for (int64_t l = 0; l < s.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    plan.push_back({p + "attn_norm.weight", {s.dim}, true});
    if (s.arch == "phi3") {
      plan.push_back({p + "attn_qkv.weight", {q + 2 * kv, s.dim}});
    } else {
      plan.push_back({p + "attn_q.weight", {q, s.dim}});
      plan.push_back({p + "attn_k.weight", {kv, s.dim}});
      plan.push_back({p + "attn_v.weight", {kv, s.dim}});
    }
    if (s.arch == "qwen2") {
      plan.push_back({p + "attn_q.bias", {q}, false, true});
      plan.push_back({p + "attn_k.bias", {kv}, false, true});
      plan.push_back({p + "attn_v.bias", {kv}, false, true});
    }
    if (s.arch == "qwen3" || s.arch == "gemma3") {
      plan.push_back({p + "attn_q_norm.weight", {hd}, true});
      plan.push_back({p + "attn_k_norm.weight", {hd}, true});
    }
    plan.push_back({p + "attn_output.weight", {s.dim, q}});
    if (gemma) plan.push_back({p + "post_attention_norm.weight", {s.dim}, true});
    plan.push_back({p + "ffn_norm.weight", {s.dim}, true});
    if (s.arch == "phi3") {
      plan.push_back({p + "ffn_up.weight", {2 * s.ffn, s.dim}});
    } else {
      plan.push_back({p + "ffn_gate.weight", {s.ffn, s.dim}});
      plan.push_back({p + "ffn_up.weight", {s.ffn, s.dim}});
    }
    plan.push_back({p + "ffn_down.weight", {s.dim, s.ffn}});
    if (gemma) plan.push_back({p + "post_ffw_norm.weight", {s.dim}, true});
  }
  plan.push_back({"output_norm.weight", {s.dim}, true});
  if (!tied_embeddings(s)) plan.push_back({"output.weight", {vocab, s.dim}});
  return plan;
}

// Reports the fraction of tensor bytes generated so far.
class ProgressMeter {
 public:
  ProgressMeter(std::function<void(double)> callback, uint64_t total)
      : callback_(std::move(callback)), total_(total ? total : 1) {}
  void advance(uint64_t bytes) {
    done_ += bytes;
    report(static_cast<double>(done_) / static_cast<double>(total_));
  }
  void report(double fraction) const {
    if (callback_) callback_(fraction < 1.0 ? fraction : 1.0);
  }

 private:
  std::function<void(double)> callback_;
  uint64_t total_;
  uint64_t done_ = 0;
};

ElementType type_of(const TensorPlan& t, ElementType weight_type) {
  return t.is_norm || t.is_bias || t.is_rope_freqs ? ElementType::f32 : stored_type(weight_type, t.shape);
}

// 0 when the size overflows: the writer then rejects the tensor with the reason.
uint64_t tensor_bytes(ElementType type, const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (__builtin_mul_overflow(n, d, &n)) return 0;
  }
  auto bytes = storage_bytes(type, n);
  return bytes.ok() ? static_cast<uint64_t>(*bytes) : 0;
}

}  // namespace

std::vector<std::string> synth_archs() { return {"llama", "llama3", "smollm2", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"}; }

std::vector<std::string> synth_shape_names() {
  std::vector<std::string> names;
  for (const SynthShape& s : known_shapes()) names.push_back(s.name);
  return names;
}

StatusOr<SynthShape> synth_shape(const std::string& name) {
  for (const SynthShape& s : known_shapes()) {
    if (s.name == name) return s;
  }
  std::string known;
  for (const std::string& n : synth_shape_names()) known += (known.empty() ? "" : ", ") + n;
  return Status::Error("unknown synthetic model shape '" + name + "' (known: " + known + ")");
}

Status synth_model(const SynthShape& shape, ElementType weight_type, const GgufFile* vocab, uint64_t seed,
                   const std::string& out_path, std::function<void(double)> progress) {
  INGOT_RETURN_IF_ERROR(check_shape(shape));
  INGOT_ASSIGN_OR_RETURN(uint32_t file_type, file_type_of(weight_type));

  int64_t n_vocab = shape.vocab;  // a vocabulary file's token count replaces the shape's
  if (vocab) {
    INGOT_ASSIGN_OR_RETURN(n_vocab, vocab_token_count(*vocab));
  } else if (n_vocab < kSyntheticVocabMin || n_vocab > std::numeric_limits<uint32_t>::max()) {
    return Status::Error("synth shape '" + shape.name + "': vocab " + std::to_string(n_vocab) +
                         " must be at least " + std::to_string(kSyntheticVocabMin) +
                         " (control and byte-fallback tokens) and fit in 32 bits");
  }
  GgufWriter out;
  set_hparams(out, shape, n_vocab, file_type);
  if (vocab) {
    copy_tokenizer(out, *vocab);
    if (shape.arch == "smollm2") out.set("tokenizer.ggml.pre", GgufValue::string("smollm"));
  } else {
    add_synthetic_tokenizer(out, n_vocab);
  }

  const std::vector<TensorPlan> plan = arch_tensors(shape, n_vocab);
  uint64_t total = 0;
  for (const TensorPlan& t : plan) total += tensor_bytes(type_of(t, weight_type), t.shape);
  ProgressMeter meter(std::move(progress), total);
  meter.report(0.0);

  for (const TensorPlan& t : plan) {
    const ElementType type = type_of(t, weight_type);
    const double a = std::sqrt(3.0 / static_cast<double>(t.shape.back()));
    const bool is_norm = t.is_norm, is_bias = t.is_bias, is_rope_freqs = t.is_rope_freqs;
    const std::vector<float> fixed = t.fixed;
    const std::string name = t.name;
    auto fill = [&meter, seed, name, type, a, is_norm, is_bias, is_rope_freqs, fixed](uint8_t* dst, size_t bytes) -> Status {
      Random r = tensor_random(seed, name);
      if (is_rope_freqs) {
        std::memcpy(dst, fixed.data(), std::min(bytes, fixed.size() * 4));
      } else if (is_norm) {
        fill_f32(r, 0.95, 1.05, dst, bytes);  // norms near 1
      } else if (is_bias) {
        fill_f32(r, -0.1, 0.1, dst, bytes);
      } else {
        INGOT_RETURN_IF_ERROR(fill_weight(r, type, a, dst, bytes));
      }
      meter.advance(bytes);
      return Status::Ok();
    };
    INGOT_RETURN_IF_ERROR(out.add_tensor_generator(t.name, type, t.shape, std::move(fill)));
  }
  INGOT_RETURN_IF_ERROR(out.write(out_path));
  meter.report(1.0);
  return Status::Ok();
}

namespace {

// GGUF rows of one head in llama.cpp's interleaved order (pairs 2i, 2i+1) -> Hugging Face's
// rotate-half order (i, i + half): the inverse of llama.cpp's converter's permute.
std::vector<float> rotate_half_rows(const std::vector<float>& w, int64_t rows, int64_t cols, int64_t head_dim) {
  std::vector<float> out(w.size());
  const int64_t half = head_dim / 2;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t h = r / head_dim, in_head = r % head_dim, i = in_head / 2, j = in_head % 2;
    const int64_t dst = h * head_dim + j * half + i;
    std::copy_n(w.begin() + r * cols, cols, out.begin() + dst * cols);
  }
  return out;
}

nlohmann::json hf_config_json(const SynthShape& s, int64_t vocab) {
  static const std::map<std::string, std::pair<const char*, const char*>> kNames = {
      {"llama", {"LlamaForCausalLM", "llama"}},        {"llama3", {"LlamaForCausalLM", "llama"}}, {"smollm2", {"LlamaForCausalLM", "llama"}},
      {"qwen2", {"Qwen2ForCausalLM", "qwen2"}},
      {"qwen3", {"Qwen3ForCausalLM", "qwen3"}},        {"gemma2", {"Gemma2ForCausalLM", "gemma2"}},
      {"gemma3", {"Gemma3ForCausalLM", "gemma3_text"}}, {"phi3", {"Phi3ForCausalLM", "phi3"}},
  };
  const auto& [architecture, model_type] = kNames.at(s.arch);
  const int64_t hd = s.dim / s.n_heads;
  const bool gemma = s.arch == "gemma2" || s.arch == "gemma3";
  nlohmann::json c = {{"architectures", {architecture}},
                      {"model_type", model_type},
                      {"vocab_size", vocab},
                      {"hidden_size", s.dim},
                      {"intermediate_size", s.ffn},
                      {"num_hidden_layers", s.n_layers},
                      {"num_attention_heads", s.n_heads},
                      {"num_key_value_heads", s.n_kv_heads},
                      {"head_dim", hd},
                      {"max_position_embeddings", s.context},
                      {"rms_norm_eps", 1e-5},
                      {"rope_theta", rope_base(s)},
                      {"tie_word_embeddings", tied_embeddings(s)},
                      {"bos_token_id", 1},
                      {"eos_token_id", 2},
                      {"torch_dtype", "float32"}};
  if (gemma) {
    c["hidden_activation"] = "gelu_pytorch_tanh";
    c["query_pre_attn_scalar"] = hd;
    c["sliding_window"] = kSynthSlidingWindow;
  }
  if (s.arch == "gemma2") {
    c["attn_logit_softcapping"] = 50.0;
    c["final_logit_softcapping"] = 30.0;
  }
  if (s.arch == "llama3")
    c["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", kLlama3Factor}, {"low_freq_factor", kLlama3Low},
                         {"high_freq_factor", kLlama3High}, {"original_max_position_embeddings", static_cast<int64_t>(kLlama3Context)}};
  if (s.arch == "phi3") {
    c["original_max_position_embeddings"] = longrope_original_context(s);
    c["rope_scaling"] = {{"type", "longrope"}, {"long_factor", longrope_factors(hd, kLongRopeLongMax)},
                         {"short_factor", longrope_factors(hd, kLongRopeShortMax)}};
  }
  if (s.arch == "gemma3") {
    c["sliding_window_pattern"] = 2;
    c["rope_local_base_freq"] = 10000.0;
  }
  return c;
}

Status copy_file(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  if (!in) return Status::Error(from + ": cannot read");
  std::ofstream out(to, std::ios::binary | std::ios::trunc);
  out << in.rdbuf();
  if (!out) return Status::Error(to + ": cannot write");
  return Status::Ok();
}

}  // namespace

Status synth_hf_folder(const SynthShape& shape, uint64_t seed, const std::string& tokenizer_dir, const std::string& out_dir) {
  INGOT_RETURN_IF_ERROR(check_shape(shape));
  INGOT_ASSIGN_OR_RETURN(TokenizerSpec tok, tokenizer_from_hf_folder(tokenizer_dir));
  const int64_t vocab = static_cast<int64_t>(tok.tokens.size());
  if (::mkdir(out_dir.c_str(), 0755) != 0 && errno != EEXIST) return Status::Error(out_dir + ": cannot create the folder");
  const int64_t hd = shape.dim / shape.n_heads;
  const bool gemma = shape.arch == "gemma2" || shape.arch == "gemma3";

  // Every tensor as the GGUF writer generates it (f32), then in Hugging Face's form.
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"}};
  std::vector<std::pair<std::string, std::vector<float>>> tensors;
  uint64_t offset = 0;
  for (const TensorPlan& t : arch_tensors(shape, vocab)) {
    if (t.is_rope_freqs) continue;  // config.json's rope_scaling says it
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    Random r = tensor_random(seed, t.name);
    uint8_t* bytes = reinterpret_cast<uint8_t*>(v.data());
    if (t.is_norm) fill_f32(r, 0.95, 1.05, bytes, v.size() * 4);
    else if (t.is_bias) fill_f32(r, -0.1, 0.1, bytes, v.size() * 4);
    else INGOT_RETURN_IF_ERROR(fill_weight(r, ElementType::f32, std::sqrt(3.0 / static_cast<double>(t.shape.back())), bytes, v.size() * 4));
    const bool qk = t.name.find("attn_q.weight") != std::string::npos || t.name.find("attn_k.weight") != std::string::npos;
    if (gguf_arch(shape) == "llama" && qk) v = rotate_half_rows(v, t.shape[0], t.shape[1], hd);
    if (gemma && t.is_norm)
      for (float& x : v) x -= 1.0f;  // exact: x is within [0.5, 2]
    const std::string name = hf_tensor_name(t.name, shape.arch);
    header[name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + v.size() * 4}}};
    offset += v.size() * 4;
    tensors.push_back({name, std::move(v)});
  }
  std::string head = header.dump();
  head.append((8 - head.size() % 8) % 8, ' ');
  const std::string st_path = out_dir + "/model.safetensors";
  std::ofstream st(st_path, std::ios::binary | std::ios::trunc);
  const uint64_t head_len = head.size();
  st.write(reinterpret_cast<const char*>(&head_len), 8);
  st << head;
  for (const auto& [name, v] : tensors) st.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
  if (!st) return Status::Error(st_path + ": cannot write");
  st.close();

  std::ofstream cfg(out_dir + "/config.json", std::ios::trunc);
  cfg << hf_config_json(shape, vocab).dump(2) << "\n";
  if (!cfg) return Status::Error(out_dir + "/config.json: cannot write");
  for (const char* f : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json"}) {
    const std::string from = tokenizer_dir + "/" + f;
    if (hf::file_exists(from)) INGOT_RETURN_IF_ERROR(copy_file(from, out_dir + "/" + f));
  }
  return Status::Ok();
}

}  // namespace ingot
