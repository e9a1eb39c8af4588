#include "frontend/synth.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "frontend/importer.h"
#include "frontend/reference_generation.h"
#include "tests/common/files.h"
#include "tests/common/models.h"

namespace ingot {
namespace {

std::string synth_temp_dir() {
  static const std::string dir = ::ingot::testing::make_temp_dir("synth_test");
  return dir;
}

using ::ingot::testing::read_file;

SynthShape tiny() {
  auto s = synth_shape("tiny");
  EXPECT_TRUE(s.ok()) << s.message();
  return *s;
}

// The reference evaluator's logits after `prompt` (empty, with a failure, if it cannot run).
std::vector<float> prompt_logits(const ImportedModel& im, const std::vector<int32_t>& prompt) {
  GreedyOptions one;
  one.max_new_tokens = 1;
  auto r = generate_greedy(*im.model, prompt, one);
  EXPECT_TRUE(r.ok()) << r.message();
  return r.ok() ? r->logits_after_prompt : std::vector<float>{};
}

int64_t int_key(const GgufFile& f, const std::string& key) {
  const GgufValue* v = f.find(key);
  EXPECT_NE(v, nullptr) << key;
  if (!v) return -1;
  EXPECT_EQ(v->type(), GgufType::UINT32) << key;
  auto i = v->as_int();
  return i.ok() ? *i : -1;
}

// The tensors llama.cpp's LLaMA loader asks for, with their row-major shapes.
std::vector<std::pair<std::string, std::vector<int64_t>>> expected_tensors(const SynthShape& s, int64_t vocab) {
  const int64_t hd = s.dim / s.n_heads;
  std::vector<std::pair<std::string, std::vector<int64_t>>> r = {{"token_embd.weight", {vocab, s.dim}},
                                                                 {"output_norm.weight", {s.dim}},
                                                                 {"output.weight", {vocab, s.dim}}};
  for (int64_t l = 0; l < s.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    r.push_back({p + "attn_norm.weight", {s.dim}});
    r.push_back({p + "attn_q.weight", {s.n_heads * hd, s.dim}});
    r.push_back({p + "attn_k.weight", {s.n_kv_heads * hd, s.dim}});
    r.push_back({p + "attn_v.weight", {s.n_kv_heads * hd, s.dim}});
    r.push_back({p + "attn_output.weight", {s.dim, s.n_heads * hd}});
    r.push_back({p + "ffn_norm.weight", {s.dim}});
    r.push_back({p + "ffn_gate.weight", {s.ffn, s.dim}});
    r.push_back({p + "ffn_up.weight", {s.ffn, s.dim}});
    r.push_back({p + "ffn_down.weight", {s.dim, s.ffn}});
  }
  return r;
}

ElementType expected_type(const std::string& name, const std::vector<int64_t>& shape, ElementType weight_type) {
  if (shape.size() == 1) return ElementType::f32;  // norms
  const auto& info = type_info(weight_type);
  if (info.is_quantized && shape.back() % info.block_elems != 0) return ElementType::f16;
  (void)name;
  return weight_type;
}

void check_model(const GgufFile& f, const SynthShape& s, int64_t vocab, ElementType weight_type) {
  EXPECT_EQ(*f.find("general.architecture")->as_string(), "llama");
  EXPECT_EQ(*f.find("general.name")->as_string(), s.name);
  EXPECT_EQ(int_key(f, "general.alignment"), 32);
  EXPECT_EQ(int_key(f, "llama.context_length"), s.context);
  EXPECT_EQ(int_key(f, "llama.embedding_length"), s.dim);
  EXPECT_EQ(int_key(f, "llama.block_count"), s.n_layers);
  EXPECT_EQ(int_key(f, "llama.feed_forward_length"), s.ffn);
  EXPECT_EQ(int_key(f, "llama.attention.head_count"), s.n_heads);
  EXPECT_EQ(int_key(f, "llama.attention.head_count_kv"), s.n_kv_heads);
  EXPECT_EQ(int_key(f, "llama.rope.dimension_count"), s.dim / s.n_heads);
  EXPECT_EQ(f.find("llama.attention.layer_norm_rms_epsilon")->type(), GgufType::FLOAT32);
  EXPECT_NEAR(*f.find("llama.attention.layer_norm_rms_epsilon")->as_float(), 1e-5, 1e-10);
  EXPECT_EQ(*f.find("llama.rope.freq_base")->as_float(), 10000.0);
  EXPECT_EQ(f.find("tokenizer.ggml.tokens")->items().size(), static_cast<size_t>(vocab));

  const auto expected = expected_tensors(s, vocab);
  EXPECT_EQ(f.tensors().size(), expected.size());
  for (const auto& [name, shape] : expected) {
    SCOPED_TRACE(name);
    const GgufTensorInfo* info = f.find_tensor(name);
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(info->shape, shape);
    EXPECT_EQ(info->type, expected_type(name, shape, weight_type));
  }
}

// Weights ~ uniform(-a, a) with a = sqrt(3 / in): dequantized, they stay within a small multiple
// of a and are not all zero; norms are near 1.
void check_values(const GgufFile& f, const SynthShape& s) {
  const std::string last_ffn_down = "blk." + std::to_string(s.n_layers - 1) + ".ffn_down.weight";
  const std::string names[] = {"blk.0.attn_q.weight", last_ffn_down, "token_embd.weight"};
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    auto t = f.tensor(name);
    ASSERT_TRUE(t.ok()) << t.message();
    const double a = std::sqrt(3.0 / static_cast<double>((*t)->shape().back()));
    const std::vector<float> v = (*t)->to_f32_vector();
    double max_abs = 0, sum_sq = 0;
    for (float x : v) {
      ASSERT_TRUE(std::isfinite(x));
      max_abs = std::max(max_abs, static_cast<double>(std::fabs(x)));
      sum_sq += static_cast<double>(x) * x;
    }
    const double rms = std::sqrt(sum_sq / static_cast<double>(v.size()));
    EXPECT_LE(max_abs, 2.0 * a);
    EXPECT_GT(rms, 0.3 * a);  // uniform(-a, a) has rms a / sqrt(3) ~ 0.58 a
    EXPECT_LT(rms, 1.0 * a);
  }
  auto norm = f.tensor("blk.0.attn_norm.weight");
  ASSERT_TRUE(norm.ok());
  for (float x : (*norm)->to_f32_vector()) {
    EXPECT_GT(x, 0.9f);
    EXPECT_LT(x, 1.1f);
  }
}

TEST(SynthShape, KnownShapes) {
  auto t = synth_shape("tiny");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->vocab, 512);
  EXPECT_EQ(t->dim, 64);
  EXPECT_EQ(t->n_layers, 2);
  EXPECT_EQ(t->n_heads, 4);
  EXPECT_EQ(t->n_kv_heads, 2);
  EXPECT_EQ(t->ffn, 172);
  auto s = synth_shape("s110m");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->dim, 768);
  EXPECT_EQ(s->n_layers, 12);
  EXPECT_EQ(s->n_heads, 12);
  EXPECT_EQ(s->n_kv_heads, 12);
  EXPECT_EQ(s->ffn, 2048);
  EXPECT_EQ(s->vocab, 32000);
  auto l = synth_shape("tinyllama-1.1b");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->dim, 2048);
  EXPECT_EQ(l->n_layers, 22);
  EXPECT_EQ(l->n_heads, 32);
  EXPECT_EQ(l->n_kv_heads, 4);
  EXPECT_EQ(l->ffn, 5632);
  EXPECT_EQ(l->vocab, 32000);
  auto bad = synth_shape("gpt-5");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("tinyllama-1.1b"), std::string::npos) << bad.message();
}

class SynthEachType : public ::testing::TestWithParam<ElementType> {};

TEST_P(SynthEachType, TinyWithLlamaVocab) {
  INGOT_MODEL_PATH(vocab_path, "vocab/ggml-vocab-llama-spm.gguf");
  auto vocab = GgufFile::open(vocab_path);
  ASSERT_TRUE(vocab.ok()) << vocab.message();
  const ElementType type = GetParam();
  const std::string out = synth_temp_dir() + "/tiny-" + std::string(type_name(type)) + ".gguf";
  std::vector<double> seen;
  Status st = synth_model(tiny(), type, vocab->get(), 1, out, [&](double p) { seen.push_back(p); });
  ASSERT_TRUE(st.ok()) << st.message();

  auto f = GgufFile::open(out);
  ASSERT_TRUE(f.ok()) << f.message();
  check_model(**f, tiny(), 32000, type);
  check_values(**f, tiny());

  // Every tokenizer.* key copied verbatim, and no other.
  size_t tokenizer_keys = 0;
  for (const auto& [key, value] : (*vocab)->metadata()) {
    if (key.rfind("tokenizer.", 0) != 0) continue;
    ++tokenizer_keys;
    const GgufValue* copy = (*f)->find(key);
    ASSERT_NE(copy, nullptr) << key;
    EXPECT_EQ(copy->type(), value.type()) << key;
    EXPECT_EQ(copy->summary(1u << 20), value.summary(1u << 20)) << key;
  }
  size_t out_tokenizer_keys = 0;
  for (const auto& [key, value] : (*f)->metadata()) out_tokenizer_keys += key.rfind("tokenizer.", 0) == 0;
  EXPECT_EQ(out_tokenizer_keys, tokenizer_keys);

  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.front(), 0.0);
  EXPECT_EQ(seen.back(), 1.0);
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_GE(seen[i], seen[i - 1]);
}

TEST_P(SynthEachType, TinyWithMadeUpVocab) {
  const ElementType type = GetParam();
  const std::string out = synth_temp_dir() + "/tiny-own-" + std::string(type_name(type)) + ".gguf";
  Status st = synth_model(tiny(), type, nullptr, 7, out, nullptr);
  ASSERT_TRUE(st.ok()) << st.message();
  auto f = GgufFile::open(out);
  ASSERT_TRUE(f.ok()) << f.message();
  check_model(**f, tiny(), 512, type);
  check_values(**f, tiny());
  auto tokens = (*f)->find("tokenizer.ggml.tokens")->as_strings();
  ASSERT_TRUE(tokens.ok());
  EXPECT_EQ((*tokens)[1], "<s>");
  EXPECT_EQ((*tokens)[3 + 0x41], "<0x41>");
  EXPECT_EQ(std::set<std::string>(tokens->begin(), tokens->end()).size(), tokens->size());  // unique
  EXPECT_EQ((*f)->find("tokenizer.ggml.scores")->items().size(), 512u);
  EXPECT_EQ((*f)->find("tokenizer.ggml.token_type")->items().size(), 512u);
}

INSTANTIATE_TEST_SUITE_P(Synth, SynthEachType,
                         ::testing::Values(ElementType::f32, ElementType::f16, ElementType::q8_0, ElementType::q4_0,
                                           ElementType::q4_k, ElementType::q6_k),
                         [](const ::testing::TestParamInfo<ElementType>& info) {
                           return std::string(type_name(info.param));
                         });

// The k-quants need rows of 256: a shape with dim 256 keeps their blocks (tiny falls back to f16).
void check_k_quant_synth(ElementType type, int64_t file_type) {
  SynthShape s{"k-quant", 300, 256, 1, 4, 4, 512, 64};
  const std::string out = synth_temp_dir() + "/" + std::string(type_name(type)) + ".gguf";
  Status st = synth_model(s, type, nullptr, 3, out, nullptr);
  ASSERT_TRUE(st.ok()) << st.message();
  auto f = GgufFile::open(out);
  ASSERT_TRUE(f.ok()) << f.message();
  check_model(**f, s, 300, type);
  EXPECT_EQ((*f)->find_tensor("blk.0.attn_q.weight")->type, type);
  EXPECT_EQ((*f)->find_tensor("blk.0.ffn_down.weight")->type, type);
  check_values(**f, s);
  EXPECT_EQ(int_key(**f, "general.file_type"), file_type);
}

TEST(SynthModel, Q4KBlocksDequantizeSanely) { check_k_quant_synth(ElementType::q4_k, 14); }
TEST(SynthModel, Q6KBlocksDequantizeSanely) { check_k_quant_synth(ElementType::q6_k, 18); }

TEST(SynthModel, DeterministicBySeed) {
  const std::string a = synth_temp_dir() + "/det-a.gguf", b = synth_temp_dir() + "/det-b.gguf", c = synth_temp_dir() + "/det-c.gguf";
  ASSERT_TRUE(synth_model(tiny(), ElementType::q4_0, nullptr, 42, a, nullptr).ok());
  ASSERT_TRUE(synth_model(tiny(), ElementType::q4_0, nullptr, 42, b, nullptr).ok());
  ASSERT_TRUE(synth_model(tiny(), ElementType::q4_0, nullptr, 43, c, nullptr).ok());
  const std::string bytes_a = read_file(a);
  EXPECT_FALSE(bytes_a.empty());
  EXPECT_EQ(bytes_a, read_file(b));
  EXPECT_NE(bytes_a, read_file(c));
  EXPECT_EQ(bytes_a.size(), read_file(c).size());
}

TEST(SynthModel, FileTypeRecorded) {
  const std::pair<ElementType, int64_t> cases[] = {
      {ElementType::f32, 0}, {ElementType::f16, 1}, {ElementType::q4_0, 2}, {ElementType::q8_0, 7}};
  for (const auto& [type, ftype] : cases) {
    const std::string out = synth_temp_dir() + "/ftype.gguf";
    ASSERT_TRUE(synth_model(tiny(), type, nullptr, 1, out, nullptr).ok());
    auto f = GgufFile::open(out);
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(int_key(**f, "general.file_type"), ftype) << type_name(type);
  }
}

// With a vocabulary file the shape's vocab is ignored (ingotc's --dims may leave it 0).
TEST(SynthModel, VocabFileReplacesShapeVocab) {
  INGOT_MODEL_PATH(vocab_path, "vocab/ggml-vocab-gpt-2.gguf");
  auto vocab = GgufFile::open(vocab_path);
  ASSERT_TRUE(vocab.ok()) << vocab.message();
  SynthShape s = tiny();
  s.vocab = 0;
  const std::string out = synth_temp_dir() + "/gpt2-vocab.gguf";
  Status st = synth_model(s, ElementType::q8_0, vocab->get(), 5, out, nullptr);
  ASSERT_TRUE(st.ok()) << st.message();
  auto f = GgufFile::open(out);
  ASSERT_TRUE(f.ok()) << f.message();
  check_model(**f, s, 50257, ElementType::q8_0);
  EXPECT_EQ(int_key(**f, "llama.vocab_size"), 50257);
  EXPECT_EQ((*f)->find("tokenizer.ggml.merges")->items().size(),
            (*vocab)->find("tokenizer.ggml.merges")->items().size());
}

// Each architecture: its own tensors and keys, and the importer builds it (a graph that the
// reference evaluator runs is checked against llama.cpp by tests/scripts/arch_reference_check.py).
TEST(SynthModel, EveryArchitectureImports) {
  const std::map<std::string, std::vector<std::string>> marks = {
      {"llama", {"blk.0.ffn_gate.weight", "output.weight"}},
      {"llama3", {"rope_freqs.weight", "blk.1.ffn_gate.weight"}},
      {"smollm2", {"token_embd.weight", "blk.1.ffn_gate.weight"}},
      {"qwen2", {"blk.0.attn_q.bias", "blk.1.attn_v.bias"}},
      {"qwen3", {"blk.0.attn_q_norm.weight", "blk.1.attn_k_norm.weight"}},
      {"gemma2", {"blk.0.post_attention_norm.weight", "blk.1.post_ffw_norm.weight"}},
      {"gemma3", {"blk.0.attn_q_norm.weight", "blk.0.post_ffw_norm.weight"}},
      {"phi3", {"blk.0.attn_qkv.weight", "blk.1.ffn_up.weight", "rope_factors_long.weight", "rope_factors_short.weight"}},
  };
  ASSERT_EQ(marks.size(), synth_archs().size());
  for (const std::string& arch : synth_archs()) {
    SynthShape s = tiny();
    s.arch = arch;
    const std::string out = synth_temp_dir() + "/arch-" + arch + ".gguf";
    Status st = synth_model(s, ElementType::f32, nullptr, 3, out, nullptr);
    ASSERT_TRUE(st.ok()) << arch << ": " << st.message();
    auto f = GgufFile::open(out);
    ASSERT_TRUE(f.ok()) << f.message();
    const std::string gguf_arch = arch == "llama3" || arch == "smollm2" ? "llama" : arch;  // "llama" GGUFs
    EXPECT_EQ(*(*f)->find("general.architecture")->as_string(), gguf_arch);
    EXPECT_EQ(int_key(**f, gguf_arch + ".block_count"), s.n_layers);
    for (const std::string& t : marks.at(arch)) EXPECT_NE((*f)->find_tensor(t), nullptr) << arch << ": " << t;
    // Gemma, LLaMA 3.2 and SmolLM2 tie their output to the embeddings; Phi-3 has no separate gate.
    EXPECT_EQ((*f)->find_tensor("output.weight") == nullptr,
              arch == "gemma2" || arch == "gemma3" || arch == "llama3" || arch == "smollm2") << arch;
    EXPECT_EQ((*f)->find_tensor("blk.0.ffn_gate.weight") == nullptr, arch == "phi3") << arch;
    auto im = import_model(out);
    ASSERT_TRUE(im.ok()) << arch << ": " << im.message();
    EXPECT_EQ(im->architecture, gguf_arch);
  }
  SynthShape unknown = tiny();
  unknown.arch = "gpt-neox";
  Status st = synth_model(unknown, ElementType::f32, nullptr, 1, synth_temp_dir() + "/neox.gguf", nullptr);
  EXPECT_NE(st.message().find("unknown architecture 'gpt-neox'"), std::string::npos) << st.message();
}

// A Hugging Face Mistral folder with a sliding window: every layer attends to the last W
// positions (transformers' masks), the context is not capped at W, and a prompt longer than W
// gives other logits than the same weights as LLaMA (a prompt within W the same).
TEST(SynthModel, MistralSlidingWindowFromHuggingFace) {
  INGOT_MODEL_PATH(tok, "stories260K-hf");
  SynthShape s = tiny();
  const std::string llama = synth_temp_dir() + "/hf-llama", mistral = synth_temp_dir() + "/hf-mistral";
  ASSERT_TRUE(synth_hf_folder(s, 5, tok, llama).ok());
  ASSERT_TRUE(synth_hf_folder(s, 5, tok, mistral).ok());
  {
    auto cfg = nlohmann::json::parse(read_file(mistral + "/config.json"));
    cfg["architectures"] = {"MistralForCausalLM"};
    cfg["model_type"] = "mistral";
    cfg["sliding_window"] = 3;
    std::ofstream(mistral + "/config.json") << cfg.dump();
  }
  auto a = import_model(llama), b = import_model(mistral);
  ASSERT_TRUE(a.ok()) << a.message();
  ASSERT_TRUE(b.ok()) << b.message();
  EXPECT_EQ(b->config.sliding_window, 3);
  EXPECT_EQ(b->config.max_context, s.context);
  EXPECT_TRUE(b->config.is_swa_layer(0) && b->config.is_swa_layer(1));
  const auto logits = prompt_logits;
  EXPECT_EQ(logits(*a, {1, 300, 301}), logits(*b, {1, 300, 301}));
  EXPECT_NE(logits(*a, {1, 300, 301, 302, 303, 304}), logits(*b, {1, 300, 301, 302, 303, 304}));
}

// Gemma 3 4B and larger ship as Gemma3ForConditionalGeneration: the language model's config nested
// in "text_config" (sparse: absent keys take Gemma3TextConfig's defaults, token ids and dtype in
// the outer config) and its tensors under "language_model.model." (older transformers) or
// "model.language_model." (newer), beside a vision tower. Either layout of the same weights must
// give the Gemma3ForCausalLM folder's logits exactly; a missing text_config or an unknown layout is
// refused by name.
void write_multimodal_gemma3(const std::string& from, const std::string& to, bool newer_layout) {
  std::filesystem::create_directories(to);
  for (const char* f : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json"})
    if (std::filesystem::exists(from + "/" + f))
      std::filesystem::copy_file(from + "/" + f, to + "/" + f, std::filesystem::copy_options::overwrite_existing);
  auto text = nlohmann::json::parse(read_file(from + "/config.json"));
  nlohmann::json outer = {{"architectures", {"Gemma3ForConditionalGeneration"}}, {"model_type", "gemma3"},
                          {"bos_token_id", text["bos_token_id"]}, {"eos_token_id", {text["eos_token_id"], 3}},
                          {"torch_dtype", text["torch_dtype"]}, {"vision_config", {{"model_type", "siglip_vision_model"}}}};
  // What the defaults supply (the synthesized values equal them): tied embeddings, rope_theta 1e6.
  EXPECT_EQ(text["rope_theta"], 1000000.0);
  EXPECT_EQ(text["tie_word_embeddings"], true);
  for (const char* key : {"architectures", "bos_token_id", "eos_token_id", "torch_dtype", "rope_theta", "tie_word_embeddings"}) text.erase(key);
  outer["text_config"] = text;
  std::ofstream(to + "/config.json") << outer.dump(2);
  // The safetensors header renamed, and one vision tensor appended.
  const std::string st = read_file(from + "/model.safetensors");
  uint64_t header_len = 0;
  std::memcpy(&header_len, st.data(), 8);
  auto header = nlohmann::json::parse(st.substr(8, header_len));
  std::string data = st.substr(8 + header_len);
  nlohmann::json renamed = nlohmann::json::object();
  for (auto& [name, info] : header.items()) {
    std::string n = name;
    if (n.rfind("model.", 0) == 0) n = (newer_layout ? "model.language_model." : "language_model.model.") + n.substr(6);
    renamed[n] = info;
  }
  renamed["vision_tower.vision_model.post_layernorm.weight"] = {
      {"dtype", "F32"}, {"shape", {4}}, {"data_offsets", {data.size(), data.size() + 16}}};
  data.append(16, '\0');
  const std::string h = renamed.dump();
  const uint64_t n = h.size();
  std::ofstream out(to + "/model.safetensors", std::ios::binary);
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << h << data;
}

TEST(SynthModel, Gemma3MultimodalCheckpointsImportTheirLanguageModel) {
  INGOT_MODEL_PATH(tok, "stories260K-hf");
  SynthShape s = tiny();
  s.arch = "gemma3";
  const std::string base = synth_temp_dir() + "/hf-gemma3", older = synth_temp_dir() + "/hf-gemma3-mm-old",
                    newer = synth_temp_dir() + "/hf-gemma3-mm-new";
  ASSERT_TRUE(synth_hf_folder(s, 9, tok, base).ok());
  write_multimodal_gemma3(base, older, false);
  write_multimodal_gemma3(base, newer, true);
  auto a = import_model(base), b = import_model(older), c = import_model(newer);
  ASSERT_TRUE(a.ok()) << a.message();
  ASSERT_TRUE(b.ok()) << b.message();
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(b->architecture, "gemma3");
  EXPECT_TRUE(b->config.tied_embeddings);
  EXPECT_EQ(b->config.rope_base, a->config.rope_base);
  auto logits = [](const ImportedModel& im) { return prompt_logits(im, {1, 300, 301, 302, 303}); };
  const std::vector<float> want = logits(*a);
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(logits(*b), want);
  EXPECT_EQ(logits(*c), want);

  // Refused by name: no text_config; tensors under neither prefix.
  auto cfg = nlohmann::json::parse(read_file(older + "/config.json"));
  cfg.erase("text_config");
  std::ofstream(older + "/config.json") << cfg.dump();
  auto no_text = import_model(older);
  ASSERT_FALSE(no_text.ok());
  EXPECT_NE(no_text.message().find("'text_config'"), std::string::npos) << no_text.message();
  std::filesystem::copy_file(base + "/model.safetensors", newer + "/model.safetensors",
                             std::filesystem::copy_options::overwrite_existing);
  auto no_prefix = import_model(newer);
  ASSERT_FALSE(no_prefix.ok());
  EXPECT_NE(no_prefix.message().find("language_model.model.embed_tokens.weight"), std::string::npos) << no_prefix.message();
}

// transformers v5 writes Gemma 3's RoPE per layer type ("rope_parameters": {"full_attention":
// {...}, "sliding_attention": {...}}) instead of rope_theta, rope_scaling and rope_local_base_freq.
// A folder in each form, with bases and scaling away from the defaults, must give the same model:
// the same RoPE settings and bit-identical logits, which differ from the defaults' logits.
TEST(SynthModel, Gemma3RopeParametersPerLayerTypeReadAsTheOlderKeys) {
  INGOT_MODEL_PATH(tok, "stories260K-hf");
  SynthShape s = tiny();
  s.arch = "gemma3";
  const std::string base = synth_temp_dir() + "/hf-gemma3-rope", v4 = synth_temp_dir() + "/hf-gemma3-rope-v4",
                    v5 = synth_temp_dir() + "/hf-gemma3-rope-v5";
  ASSERT_TRUE(synth_hf_folder(s, 11, tok, base).ok());
  for (const std::string& dir : {v4, v5}) {
    std::filesystem::create_directories(dir);
    for (const auto& f : std::filesystem::directory_iterator(base))
      std::filesystem::copy_file(f.path(), dir + "/" + f.path().filename().string(), std::filesystem::copy_options::overwrite_existing);
  }
  auto cfg = nlohmann::json::parse(read_file(base + "/config.json"));
  ASSERT_EQ(cfg["model_type"], "gemma3_text");
  for (const char* key : {"rope_theta", "rope_local_base_freq", "rope_scaling", "rope_parameters"}) cfg.erase(key);
  nlohmann::json older = cfg, newer = cfg;
  older["rope_theta"] = 250000.0;
  older["rope_local_base_freq"] = 20000.0;
  older["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}};
  newer["rope_parameters"] = {{"full_attention", {{"rope_type", "linear"}, {"factor", 2.0}, {"rope_theta", 250000.0}}},
                              {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 20000.0}}}};
  std::ofstream(v4 + "/config.json") << older.dump(2);
  std::ofstream(v5 + "/config.json") << newer.dump(2);
  auto a = import_model(base), b = import_model(v4), c = import_model(v5);
  ASSERT_TRUE(a.ok()) << a.message();
  ASSERT_TRUE(b.ok()) << b.message();
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->config.rope_base, 250000.0);
  EXPECT_EQ(c->config.rope_base_swa, 20000.0);
  EXPECT_EQ(c->config.rope_scaling.type, RopeScaling::Type::Linear);
  EXPECT_EQ(c->config.rope_scaling.factor, 2.0);
  EXPECT_EQ(b->config.rope_base, c->config.rope_base);
  EXPECT_EQ(b->config.rope_base_swa, c->config.rope_base_swa);
  auto logits = [](const ImportedModel& im) { return prompt_logits(im, {1, 300, 301, 302, 303, 304, 305}); };
  const std::vector<float> want = logits(*b);
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(logits(*c), want);
  EXPECT_NE(logits(*a), want);  // the settings reach the model

  // A scaled local RoPE is not built: refused by name.
  newer["rope_parameters"]["sliding_attention"] = {{"rope_type", "linear"}, {"factor", 2.0}, {"rope_theta", 20000.0}};
  std::ofstream(v5 + "/config.json") << newer.dump(2);
  auto scaled_local = import_model(v5);
  ASSERT_FALSE(scaled_local.ok());
  EXPECT_NE(scaled_local.message().find("rope_parameters.sliding_attention: scaling type 'linear'"), std::string::npos)
      << scaled_local.message();
}

// A model split the way llama.cpp's gguf-split writes it (NAME-0000i-of-0000N.gguf; the first file
// holds all the metadata and split.no/.count/.tensors.count, the others split.no/.count and their
// tensors) imports from its first file with the whole file's logits; the other files, a missing
// one, a wrong name and a duplicated tensor are refused by name.
struct SplitOptions {
  bool duplicate_last = false;       // the last file repeats the tensor before its first
  int64_t second_no = -1;            // split.no of the second file (-1: its own)
  int64_t first_no = 0;              // split.no of the first file
  bool tensors_count = true;         // the first file has split.tensors.count
};
void write_split(const GgufFile& whole, const std::string& prefix, int count, const SplitOptions& o = {}) {
  const auto& tensors = whole.tensors();
  for (int i = 0; i < count; ++i) {
    GgufWriter w;
    if (i == 0)
      for (const auto& [key, value] : whole.metadata()) w.set(key, value);
    const int64_t no = i == 0 ? o.first_no : i == 1 && o.second_no >= 0 ? o.second_no : i;
    w.set("split.no", no >= 0 && no < 65536 ? GgufValue::u16(static_cast<uint16_t>(no)) : GgufValue::i64(no));
    w.set("split.count", GgufValue::u16(static_cast<uint16_t>(count)));
    if (i == 0 && o.tensors_count) w.set("split.tensors.count", GgufValue::i32(static_cast<int32_t>(tensors.size())));
    size_t begin = tensors.size() * static_cast<size_t>(i) / static_cast<size_t>(count);
    const size_t end = tensors.size() * static_cast<size_t>(i + 1) / static_cast<size_t>(count);
    if (o.duplicate_last && i == count - 1) begin -= 1;
    for (size_t t = begin; t < end; ++t) {
      auto v = whole.tensor(tensors[t].name);
      ASSERT_TRUE(v.ok()) << v.message();
      ASSERT_TRUE(w.add_tensor(tensors[t].name, *v).ok());
    }
    char name[64];
    std::snprintf(name, sizeof(name), "-%05d-of-%05d.gguf", i + 1, count);
    ASSERT_TRUE(w.write(prefix + name).ok());
  }
}

TEST(SynthModel, SplitGgufImportsLikeTheWholeFile) {
  const std::string dir = synth_temp_dir(), whole_path = dir + "/split-whole.gguf";
  ASSERT_TRUE(synth_model(tiny(), ElementType::q8_0, nullptr, 11, whole_path, nullptr).ok());
  auto whole = GgufFile::open(whole_path);
  ASSERT_TRUE(whole.ok()) << whole.message();
  ASSERT_NO_FATAL_FAILURE(write_split(**whole, dir + "/split", 3));
  auto first = GgufFile::open(dir + "/split-00001-of-00003.gguf");
  ASSERT_TRUE(first.ok()) << first.message();
  EXPECT_EQ((*first)->split_count(), 3u);
  EXPECT_EQ((*first)->tensors().size(), (*whole)->tensors().size());
  auto a = import_model(whole_path), b = import_model(dir + "/split-00001-of-00003.gguf");
  ASSERT_TRUE(a.ok()) << a.message();
  ASSERT_TRUE(b.ok()) << b.message();
  auto logits = [](const ImportedModel& im) { return prompt_logits(im, {1, 300, 301, 302}); };
  const std::vector<float> want = logits(*a);
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(logits(*b), want);

  auto refused = [](const std::string& path, const std::string& needle) {
    auto f = GgufFile::open(path);
    ASSERT_FALSE(f.ok()) << path;
    EXPECT_NE(f.message().find(needle), std::string::npos) << f.message();
  };
  refused(dir + "/split-00002-of-00003.gguf", "is file 2 of a model split in 3: open the first one, " + dir + "/split-00001-of-00003.gguf");
  std::filesystem::copy_file(dir + "/split-00001-of-00003.gguf", dir + "/renamed.gguf", std::filesystem::copy_options::overwrite_existing);
  refused(dir + "/renamed.gguf", "its name does not end in '-00001-of-00003.gguf'");
  std::filesystem::remove(dir + "/split-00003-of-00003.gguf");
  refused(dir + "/split-00001-of-00003.gguf", "file 3 of this split model: " + dir + "/split-00003-of-00003.gguf");
  SplitOptions dup;
  dup.duplicate_last = true;
  ASSERT_NO_FATAL_FAILURE(write_split(**whole, dir + "/dup", 2, dup));
  refused(dir + "/dup-00001-of-00002.gguf", "is also in another file of the split model");
  SplitOptions misnumbered;
  misnumbered.second_no = 2;
  ASSERT_NO_FATAL_FAILURE(write_split(**whole, dir + "/mis", 3, misnumbered));
  refused(dir + "/mis-00001-of-00003.gguf", dir + "/mis-00002-of-00003.gguf: split.no 2 of split.count 3, expected 1 of 3");
  SplitOptions no_count;
  no_count.tensors_count = false;
  ASSERT_NO_FATAL_FAILURE(write_split(**whole, dir + "/nocount", 2, no_count));
  refused(dir + "/nocount-00001-of-00002.gguf", "metadata key 'split.tensors.count' is missing");
  SplitOptions huge_no;
  huge_no.first_no = int64_t{1} << 62;
  ASSERT_NO_FATAL_FAILURE(write_split(**whole, dir + "/huge", 2, huge_no));
  refused(dir + "/huge-00001-of-00002.gguf", "split.no 4611686018427387904 is not in [0, 2)");
}

TEST(SynthModel, RejectsBadInput) {
  const std::string out = synth_temp_dir() + "/bad.gguf";
  Status st = synth_model(tiny(), ElementType::q5_k, nullptr, 1, out, nullptr);
  EXPECT_NE(st.message().find("q5_k"), std::string::npos) << st.message();
  SynthShape odd = tiny();
  odd.n_heads = 5;
  st = synth_model(odd, ElementType::f32, nullptr, 1, out, nullptr);
  EXPECT_NE(st.message().find("not a multiple of n_heads"), std::string::npos) << st.message();
  SynthShape gqa = tiny();
  gqa.n_kv_heads = 3;
  EXPECT_FALSE(synth_model(gqa, ElementType::f32, nullptr, 1, out, nullptr).ok());
  SynthShape zero = tiny();
  zero.n_layers = 0;
  EXPECT_FALSE(synth_model(zero, ElementType::f32, nullptr, 1, out, nullptr).ok());
  SynthShape small_vocab = tiny();
  small_vocab.vocab = 100;
  EXPECT_FALSE(synth_model(small_vocab, ElementType::f32, nullptr, 1, out, nullptr).ok());
  EXPECT_FALSE(::ingot::testing::path_exists(out));

  // A "vocabulary" file without tokens.
  GgufWriter w;
  w.set("general.name", GgufValue::string("no tokens"));
  const std::string empty_vocab = synth_temp_dir() + "/no-tokens.gguf";
  ASSERT_TRUE(w.write(empty_vocab).ok());
  auto v = GgufFile::open(empty_vocab);
  ASSERT_TRUE(v.ok());
  st = synth_model(tiny(), ElementType::f32, v->get(), 1, out, nullptr);
  EXPECT_NE(st.message().find("tokenizer.ggml.tokens"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace ingot
