// Hugging Face folders: config.json, generation_config.json, tokenizer.json and tokenizer.model.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "frontend/hf_config.h"
#include "frontend/tokenizer_hf.h"
#include "tests/common/files.h"
#include "tests/common/models.h"
#include "tests/common/status.h"

// The runtime tokenizer and the GGUF tokenizer reader are written concurrently: the checks that
// need them compile in once their sources exist.
#if __has_include("runtime/tokenizer.cpp")
#define INGOT_HAVE_RUNTIME_TOKENIZER 1
#endif
#if __has_include("frontend/tokenizer_gguf.cpp") && __has_include("frontend/gguf.cpp")
#define INGOT_HAVE_GGUF_TOKENIZER 1
#include "frontend/tokenizer_gguf.h"
#endif

namespace ingot {
namespace {

using nlohmann::json;

using ::ingot::testing::read_file;

using ::ingot::testing::write_file;

std::string hf_temp_dir() { return ::ingot::testing::make_temp_dir("hf_test"); }

#define EXPECT_ERROR_CONTAINS(result, fragment)                                             \
  do {                                                                                      \
    auto&& _r = (result);                                                                   \
    ASSERT_FALSE(_r.ok()) << "expected an error containing: " << (fragment);                \
    EXPECT_NE(_r.message().find(fragment), std::string::npos) << _r.message();              \
  } while (0)

// --- config.json -------------------------------------------------------------------------------

TEST(HfConfigTest, Stories260K) {
  INGOT_MODEL_PATH(dir, "stories260K-hf");
  auto c = load_hf_config(dir);
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->architecture, "LlamaForCausalLM");
  EXPECT_EQ(c->model_type, "llama");
  EXPECT_EQ(c->vocab_size, 512);
  EXPECT_EQ(c->hidden_size, 64);
  EXPECT_EQ(c->intermediate_size, 172);
  EXPECT_EQ(c->num_hidden_layers, 5);
  EXPECT_EQ(c->num_attention_heads, 8);
  EXPECT_EQ(c->num_key_value_heads, 4);
  EXPECT_EQ(c->head_dim, 8);
  EXPECT_EQ(c->max_position_embeddings, 512);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_FALSE(c->attention_bias);
  EXPECT_FALSE(c->mlp_bias);
  EXPECT_FALSE(c->rope_scaling.has_value());
  EXPECT_FALSE(c->sliding_window.has_value());
  EXPECT_EQ(c->hidden_act, "silu");
  EXPECT_EQ(c->torch_dtype, "float32");
  EXPECT_EQ(c->bos_token_id, 1);
  EXPECT_EQ(c->eos_token_id, 2);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{2}));
}

TEST(HfConfigTest, Stories260KGenerationConfig) {
  INGOT_MODEL_PATH(dir, "stories260K-hf");
  auto g = load_hf_generation_config(dir);
  ASSERT_TRUE(g.ok()) << g.message();
  EXPECT_TRUE(g->found);
  EXPECT_EQ(g->bos_token_id, 1);
  EXPECT_EQ(g->eos_token_ids, (std::vector<int64_t>{2}));
  EXPECT_EQ(g->do_sample, false);
  EXPECT_FALSE(g->temperature.has_value());
  EXPECT_FALSE(g->top_k.has_value());
}

TEST(HfConfigTest, GenerationConfigFieldsAndAbsence) {
  auto g = parse_hf_generation_config(
      R"({"temperature": 0.6, "top_k": 40, "top_p": 0.9, "repetition_penalty": 1.1, "max_new_tokens": 256,
          "max_length": 4096, "do_sample": true, "eos_token_id": [128001, 128009], "pad_token_id": null})",
      "generation_config.json");
  ASSERT_TRUE(g.ok()) << g.message();
  EXPECT_DOUBLE_EQ(*g->temperature, 0.6);
  EXPECT_EQ(*g->top_k, 40);
  EXPECT_DOUBLE_EQ(*g->top_p, 0.9);
  EXPECT_DOUBLE_EQ(*g->repetition_penalty, 1.1);
  EXPECT_EQ(*g->max_new_tokens, 256);
  EXPECT_EQ(*g->max_length, 4096);
  EXPECT_EQ(*g->do_sample, true);
  EXPECT_EQ(g->eos_token_ids, (std::vector<int64_t>{128001, 128009}));
  EXPECT_FALSE(g->pad_token_id.has_value());

  auto none = load_hf_generation_config(hf_temp_dir());
  ASSERT_TRUE(none.ok()) << none.message();
  EXPECT_FALSE(none->found);

  EXPECT_ERROR_CONTAINS(parse_hf_generation_config(R"({"temperature": "hot"})", "generation_config.json"),
                        "generation_config.json: 'temperature' must be a number, got string");
  EXPECT_ERROR_CONTAINS(parse_hf_generation_config(R"({"do_sample": 1})", "g.json"), "'do_sample' must be true or false");
  EXPECT_ERROR_CONTAINS(parse_hf_generation_config(R"({"top_k": 1.5})", "g.json"), "'top_k' must be an integer, got 1.5");
  EXPECT_ERROR_CONTAINS(parse_hf_generation_config("{", "g.json"), "g.json: not valid JSON");
}

json minimal_llama() {
  return {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"vocab_size", 1000},
          {"hidden_size", 128}, {"intermediate_size", 256}, {"num_hidden_layers", 2}, {"num_attention_heads", 4}};
}

TEST(HfConfigTest, LlamaDefaults) {
  auto c = parse_hf_config(minimal_llama().dump(), "config.json");
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->num_key_value_heads, 4);
  EXPECT_EQ(c->head_dim, 32);
  EXPECT_EQ(c->max_position_embeddings, 2048);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_FALSE(c->attention_bias);
  EXPECT_EQ(c->bos_token_id, -1);
  EXPECT_EQ(c->eos_token_id, -1);
  EXPECT_TRUE(c->eos_token_ids.empty());

  json j = minimal_llama();
  j["attention_bias"] = true;
  j["mlp_bias"] = true;
  j["head_dim"] = 64;  // explicit head_dim need not divide hidden_size
  j["hidden_size"] = 100;
  j["rope_theta"] = 500000;  // an integer where a float is usual
  auto b = parse_hf_config(j.dump(), "config.json");
  ASSERT_TRUE(b.ok()) << b.message();
  EXPECT_TRUE(b->attention_bias);
  EXPECT_TRUE(b->o_proj_bias);
  EXPECT_TRUE(b->mlp_bias);
  EXPECT_EQ(b->head_dim, 64);
  EXPECT_DOUBLE_EQ(b->rope_theta, 500000.0);

  // Without "architectures" the model_type decides.
  json no_arch = minimal_llama();
  no_arch.erase("architectures");
  auto m = parse_hf_config(no_arch.dump(), "config.json");
  ASSERT_TRUE(m.ok()) << m.message();
  EXPECT_EQ(m->architecture, "LlamaForCausalLM");
}

TEST(HfConfigTest, MistralAndQwen2) {
  json mistral = minimal_llama();
  mistral["architectures"] = {"MistralForCausalLM"};
  mistral["model_type"] = "mistral";
  mistral["num_key_value_heads"] = 2;
  mistral["sliding_window"] = 4096;
  mistral["eos_token_id"] = {2, 32000};
  mistral["head_dim"] = nullptr;
  auto m = parse_hf_config(mistral.dump(), "config.json");
  ASSERT_TRUE(m.ok()) << m.message();
  EXPECT_EQ(m->architecture, "MistralForCausalLM");
  EXPECT_EQ(m->sliding_window, 4096);
  EXPECT_EQ(m->max_position_embeddings, 131072);
  EXPECT_EQ(m->head_dim, 32);
  EXPECT_EQ(m->eos_token_id, 2);
  EXPECT_EQ(m->eos_token_ids, (std::vector<int64_t>{2, 32000}));
  EXPECT_FALSE(m->attention_bias);

  json qwen = minimal_llama();
  qwen["architectures"] = {"Qwen2ForCausalLM"};
  qwen["model_type"] = "qwen2";
  qwen["sliding_window"] = 32768;
  qwen["use_sliding_window"] = false;
  qwen["tie_word_embeddings"] = true;
  qwen["rope_theta"] = 1000000.0;
  auto q = parse_hf_config(qwen.dump(), "config.json");
  ASSERT_TRUE(q.ok()) << q.message();
  EXPECT_EQ(q->model_type, "qwen2");
  EXPECT_TRUE(q->attention_bias);
  EXPECT_FALSE(q->o_proj_bias);
  EXPECT_FALSE(q->sliding_window.has_value());  // use_sliding_window is false
  EXPECT_TRUE(q->tie_word_embeddings);
  EXPECT_EQ(q->max_position_embeddings, 32768);
  qwen["use_sliding_window"] = true;
  auto w = parse_hf_config(qwen.dump(), "config.json");
  ASSERT_TRUE(w.ok()) << w.message();
  EXPECT_EQ(w->sliding_window, 32768);
}

// Gemma 2 and 3: transformers' defaults when keys are absent, null turns a cap off, layer_types
// must follow the local/global pattern; Qwen3 and Phi-3 are plain; Phi-3's LongRoPE is read, and
// refused when its factor lists are missing or not positive numbers.
// google/gemma-3-4b-it's config.json (the vision part cut short): a sparse text_config that
// Gemma3TextConfig's defaults complete, token ids in the outer config, linear RoPE scaling.
TEST(HfConfigTest, Gemma3MultimodalConfigTakesTextConfigWithDefaults) {
  const char* text = R"({
    "architectures": ["Gemma3ForConditionalGeneration"], "boi_token_index": 255999, "eoi_token_index": 256000,
    "eos_token_id": [1, 106], "image_token_index": 262144, "initializer_range": 0.02, "mm_tokens_per_image": 256,
    "model_type": "gemma3",
    "text_config": {"hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text",
                    "num_hidden_layers": 34, "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
                    "sliding_window": 1024},
    "torch_dtype": "bfloat16", "transformers_version": "4.50.0.dev0",
    "vision_config": {"hidden_size": 1152, "image_size": 896, "model_type": "siglip_vision_model"}})";
  auto c = parse_hf_config(text, "config.json");
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->architecture, "Gemma3ForConditionalGeneration");
  EXPECT_TRUE(c->language_model_only);
  EXPECT_EQ(c->model_type, "gemma3_text");
  EXPECT_EQ(c->vocab_size, 262208);
  EXPECT_EQ(c->hidden_size, 2560);
  EXPECT_EQ(c->intermediate_size, 10240);
  EXPECT_EQ(c->num_hidden_layers, 34);
  EXPECT_EQ(c->num_attention_heads, 8);
  EXPECT_EQ(c->num_key_value_heads, 4);
  EXPECT_EQ(c->head_dim, 256);
  EXPECT_EQ(c->max_position_embeddings, 131072);
  EXPECT_DOUBLE_EQ(c->rope_theta, 1000000.0);
  EXPECT_DOUBLE_EQ(c->rope_local_base_freq, 10000.0);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c->query_pre_attn_scalar, 256.0);
  EXPECT_EQ(c->sliding_window, 1024);
  EXPECT_EQ(c->sliding_window_pattern, 6);
  ASSERT_TRUE(c->rope_scaling.has_value());
  EXPECT_EQ(c->rope_scaling->type, "linear");
  EXPECT_DOUBLE_EQ(c->rope_scaling->factor, 8.0);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_EQ(c->bos_token_id, 2);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{1, 106}));
  EXPECT_EQ(c->torch_dtype, "bfloat16");

  // An explicit null takes the default too; a wrong nested model type and a missing text_config
  // are refused by name.
  json j = json::parse(text);
  j["text_config"]["head_dim"] = nullptr;
  c = parse_hf_config(j.dump(), "config.json");
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->head_dim, 256);
  j["text_config"]["model_type"] = "gemma2";
  EXPECT_ERROR_CONTAINS(parse_hf_config(j.dump(), "config.json"), "text_config: model_type must be 'gemma3_text'");
  j["text_config"]["model_type"] = "gemma3_text";
  j["text_config"]["num_attention_heads"] = "8";
  EXPECT_ERROR_CONTAINS(parse_hf_config(j.dump(), "config.json"), "config.json: text_config: 'num_attention_heads' must be an integer");
  j.erase("text_config");
  EXPECT_ERROR_CONTAINS(parse_hf_config(j.dump(), "config.json"), "Gemma3ForConditionalGeneration needs a 'text_config' object");
}

// transformers v5: RoPE per layer type in rope_parameters. Gemma 3's full layers give the model's
// RoPE and its sliding layers the local base; any other model must give both the same RoPE; an
// unknown layer type, a scaled local RoPE and partial rotary in either entry are refused by name.
TEST(HfConfigTest, RopeParametersPerLayerType) {
  json g3 = {{"architectures", {"Gemma3ForConditionalGeneration"}}, {"model_type", "gemma3"},
             {"text_config", {{"hidden_size", 2560}, {"intermediate_size", 10240}, {"model_type", "gemma3_text"},
                              {"num_hidden_layers", 34}, {"sliding_window", 1024},
                              {"rope_parameters", {{"full_attention", {{"rope_type", "linear"}, {"factor", 8.0}, {"rope_theta", 1000000.0}}},
                                                   {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 10000.0}}}}}}}};
  auto c = parse_hf_config(g3.dump(), "config.json");
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_DOUBLE_EQ(c->rope_theta, 1000000.0);
  EXPECT_DOUBLE_EQ(c->rope_local_base_freq, 10000.0);
  ASSERT_TRUE(c->rope_scaling.has_value());
  EXPECT_EQ(c->rope_scaling->type, "linear");
  EXPECT_DOUBLE_EQ(c->rope_scaling->factor, 8.0);
  json& params = g3["text_config"]["rope_parameters"];
  params["full_attention"] = {{"rope_type", "default"}, {"rope_theta", 500000.0}};
  params["sliding_attention"] = {{"rope_type", "default"}, {"rope_theta", 20000.0}};
  c = parse_hf_config(g3.dump(), "config.json");
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_DOUBLE_EQ(c->rope_theta, 500000.0);
  EXPECT_DOUBLE_EQ(c->rope_local_base_freq, 20000.0);
  EXPECT_FALSE(c->rope_scaling.has_value());

  params["sliding_attention"] = {{"rope_type", "linear"}, {"factor", 2.0}};
  EXPECT_ERROR_CONTAINS(parse_hf_config(g3.dump(), "config.json"),
                        "config.json: text_config: rope_parameters.sliding_attention: scaling type 'linear' on the sliding-window layers is not supported");
  params["sliding_attention"] = {{"rope_type", "default"}, {"rope_theta", -1.0}};
  EXPECT_ERROR_CONTAINS(parse_hf_config(g3.dump(), "config.json"), "'rope_parameters.sliding_attention.rope_theta' must be positive");
  params["sliding_attention"] = {{"rope_type", "default"}, {"rope_theta", 10000.0}};
  params["full_attention"] = {{"rope_type", "default"}, {"rope_theta", 0.0}};
  EXPECT_ERROR_CONTAINS(parse_hf_config(g3.dump(), "config.json"), "'rope_parameters.full_attention.rope_theta' must be positive");
  // Without its own base the sliding layers take rope_local_base_freq, then the default; a null
  // entry is an absent one.
  params["full_attention"] = {{"rope_type", "default"}, {"rope_theta", 500000.0}};
  params["sliding_attention"] = {{"rope_type", "default"}};
  g3["text_config"]["rope_local_base_freq"] = 30000.0;
  c = parse_hf_config(g3.dump(), "config.json");
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_DOUBLE_EQ(c->rope_local_base_freq, 30000.0);
  // Both forms at once: rope_parameters' entries win over rope_theta and rope_local_base_freq.
  params["sliding_attention"] = {{"rope_type", "default"}, {"rope_theta", 20000.0}};
  g3["text_config"]["rope_theta"] = 123.0;
  c = parse_hf_config(g3.dump(), "config.json");
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_DOUBLE_EQ(c->rope_theta, 500000.0);
  EXPECT_DOUBLE_EQ(c->rope_local_base_freq, 20000.0);
  g3["text_config"].erase("rope_theta");
  g3["text_config"].erase("rope_local_base_freq");
  params["sliding_attention"] = nullptr;
  c = parse_hf_config(g3.dump(), "config.json");
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_DOUBLE_EQ(c->rope_theta, 500000.0);
  EXPECT_DOUBLE_EQ(c->rope_local_base_freq, 10000.0);
  params["sliding_attention"] = {{"rope_type", "default"}, {"rope_theta", 10000.0}};
  params["chunked_attention"] = {{"rope_type", "default"}};
  EXPECT_ERROR_CONTAINS(parse_hf_config(g3.dump(), "config.json"),
                        "rope_parameters: 'chunked_attention' beside per-layer-type entries: expected only full_attention and sliding_attention");
  params.erase("chunked_attention");
  params["rope_theta"] = 10000.0;  // flat keys mixed in
  EXPECT_ERROR_CONTAINS(parse_hf_config(g3.dump(), "config.json"), "rope_parameters: 'rope_theta' beside per-layer-type entries");
  params.erase("rope_theta");
  params["full_attention"] = {{"rope_type", "proportional"}, {"partial_rotary_factor", 0.25}, {"rope_theta", 1000000.0}};
  EXPECT_ERROR_CONTAINS(parse_hf_config(g3.dump(), "config.json"), "rope_parameters.full_attention type 'proportional' is not supported");
  params["full_attention"] = {{"rope_type", "default"}, {"partial_rotary_factor", 0.25}};
  EXPECT_ERROR_CONTAINS(parse_hf_config(g3.dump(), "config.json"), "partial_rotary_factor 0.25 is not supported");
  params["full_attention"] = "default";
  EXPECT_ERROR_CONTAINS(parse_hf_config(g3.dump(), "config.json"), "'rope_parameters.full_attention' must be an object, got string");

  // A model with one RoPE for all layers: the same entry twice is that RoPE; different ones are refused.
  json llama = minimal_llama();
  llama["rope_parameters"] = {{"full_attention", {{"rope_type", "default"}, {"rope_theta", 40000.0}}},
                              {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 40000.0}}}};
  auto l = parse_hf_config(llama.dump(), "config.json");
  ASSERT_TRUE(l.ok()) << l.message();
  EXPECT_DOUBLE_EQ(l->rope_theta, 40000.0);
  llama["rope_parameters"]["sliding_attention"].erase("rope_theta");  // no base of its own: the full layers'
  l = parse_hf_config(llama.dump(), "config.json");
  ASSERT_TRUE(l.ok()) << l.message();
  llama["rope_parameters"]["sliding_attention"]["rope_theta"] = 10000.0;
  EXPECT_ERROR_CONTAINS(parse_hf_config(llama.dump(), "config.json"),
                        "config.json: rope_parameters: different RoPE on sliding_attention and full_attention layers is supported for Gemma 3 only");
  llama["rope_parameters"]["sliding_attention"]["rope_theta"] = 40000.0;
  llama["rope_parameters"]["full_attention"] = {{"rope_type", "linear"}, {"factor", 2.0}, {"rope_theta", 40000.0}};
  EXPECT_ERROR_CONTAINS(parse_hf_config(llama.dump(), "config.json"), "supported for Gemma 3 only");
}

TEST(HfConfigTest, GemmaQwen3AndPhi3) {
  json g2 = minimal_llama();
  g2["architectures"] = {"Gemma2ForCausalLM"};
  g2["model_type"] = "gemma2";
  g2["hidden_activation"] = "gelu_pytorch_tanh";
  auto a = parse_hf_config(g2.dump(), "config.json");
  ASSERT_TRUE(a.ok()) << a.message();
  EXPECT_EQ(a->hidden_act, "gelu_pytorch_tanh");
  EXPECT_EQ(a->attn_logit_softcapping, 50.0);
  EXPECT_EQ(a->final_logit_softcapping, 30.0);
  EXPECT_EQ(a->query_pre_attn_scalar, 256.0);
  EXPECT_EQ(a->sliding_window, 4096);
  EXPECT_EQ(a->sliding_window_pattern, 2);
  g2["attn_logit_softcapping"] = nullptr;
  g2["sliding_window"] = 512;
  auto b = parse_hf_config(g2.dump(), "config.json");
  ASSERT_TRUE(b.ok()) << b.message();
  EXPECT_EQ(b->attn_logit_softcapping, 0.0);
  EXPECT_EQ(b->sliding_window, 512);
  g2["hidden_activation"] = "relu";
  EXPECT_ERROR_CONTAINS(parse_hf_config(g2.dump(), "config.json"), "hidden_activation 'relu' is not supported for Gemma");

  json g3 = minimal_llama();
  g3["architectures"] = {"Gemma3ForCausalLM"};
  g3["model_type"] = "gemma3_text";
  g3["num_hidden_layers"] = 4;
  g3["layer_types"] = {"sliding_attention", "sliding_attention", "full_attention", "sliding_attention"};
  auto c = parse_hf_config(g3.dump(), "config.json");
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->sliding_window_pattern, 3);
  EXPECT_EQ(c->final_logit_softcapping, 0.0);
  EXPECT_EQ(c->attn_logit_softcapping, 0.0);
  EXPECT_EQ(c->rope_local_base_freq, 10000.0);
  // Gemma3TextConfig's defaults for keys left out: tied embeddings, RoPE base 10^6 (Gemma 2: tied).
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_DOUBLE_EQ(c->rope_theta, 1000000.0);
  EXPECT_TRUE(a->tie_word_embeddings);
  EXPECT_DOUBLE_EQ(a->rope_theta, 10000.0);
  g3["layer_types"] = {"sliding_attention", "full_attention", "sliding_attention", "sliding_attention"};
  EXPECT_ERROR_CONTAINS(parse_hf_config(g3.dump(), "config.json"), "'layer_types' is not a repeating pattern");

  json q3 = minimal_llama();
  q3["architectures"] = {"Qwen3ForCausalLM"};
  q3["model_type"] = "qwen3";
  auto q = parse_hf_config(q3.dump(), "config.json");
  ASSERT_TRUE(q.ok()) << q.message();
  EXPECT_FALSE(q->attention_bias);

  json phi = minimal_llama();
  phi["architectures"] = {"Phi3ForCausalLM"};
  phi["model_type"] = "phi3";
  ASSERT_TRUE(parse_hf_config(phi.dump(), "config.json").ok());
  phi["rope_scaling"] = {{"type", "su"}, {"long_factor", {2.0, 4.0}}, {"short_factor", {1.0, 1.5}}};
  phi["original_max_position_embeddings"] = 512;
  auto p = parse_hf_config(phi.dump(), "config.json");
  ASSERT_TRUE(p.ok()) << p.message();
  ASSERT_TRUE(p->rope_scaling.has_value());
  EXPECT_EQ(p->rope_scaling->type, "longrope");
  EXPECT_EQ(p->rope_scaling->long_factor, (std::vector<double>{2.0, 4.0}));
  EXPECT_EQ(p->rope_scaling->short_factor, (std::vector<double>{1.0, 1.5}));
  EXPECT_EQ(p->original_max_position_embeddings, 512);
  phi["rope_scaling"] = {{"type", "longrope"}, {"short_factor", {1.0}}};
  EXPECT_ERROR_CONTAINS(parse_hf_config(phi.dump(), "config.json"), "'rope_scaling.long_factor' as a list of numbers");
  phi["rope_scaling"] = {{"type", "longrope"}, {"long_factor", {1.0, -2.0}}, {"short_factor", {1.0, 1.0}}};
  EXPECT_ERROR_CONTAINS(parse_hf_config(phi.dump(), "config.json"), "must hold positive numbers");
  phi["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  EXPECT_ERROR_CONTAINS(parse_hf_config(phi.dump(), "config.json"), "must be longrope");
}

TEST(HfConfigTest, RopeScaling) {
  json j = minimal_llama();
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  auto c = parse_hf_config(j.dump(), "config.json");
  ASSERT_TRUE(c.ok()) << c.message();
  ASSERT_TRUE(c->rope_scaling.has_value());
  EXPECT_EQ(c->rope_scaling->type, "llama3");
  EXPECT_DOUBLE_EQ(c->rope_scaling->factor, 8.0);
  EXPECT_DOUBLE_EQ(c->rope_scaling->low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c->rope_scaling->high_freq_factor, 4.0);
  EXPECT_EQ(c->rope_scaling->original_max_position_embeddings, 8192);

  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2}};
  auto linear = parse_hf_config(j.dump(), "config.json");
  ASSERT_TRUE(linear.ok()) << linear.message();
  EXPECT_EQ(linear->rope_scaling->type, "linear");
  EXPECT_DOUBLE_EQ(linear->rope_scaling->factor, 2.0);

  j["rope_scaling"] = {{"rope_type", "default"}};
  auto none = parse_hf_config(j.dump(), "config.json");
  ASSERT_TRUE(none.ok()) << none.message();
  EXPECT_FALSE(none->rope_scaling.has_value());

  // Newer transformers: everything under rope_parameters.
  json params = minimal_llama();
  params["rope_parameters"] = {{"rope_type", "linear"}, {"factor", 4.0}, {"rope_theta", 250000.0}};
  auto p = parse_hf_config(params.dump(), "config.json");
  ASSERT_TRUE(p.ok()) << p.message();
  EXPECT_DOUBLE_EQ(p->rope_theta, 250000.0);
  EXPECT_EQ(p->rope_scaling->type, "linear");

  j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}};
  EXPECT_ERROR_CONTAINS(parse_hf_config(j.dump(), "config.json"),
                        "config.json: rope_scaling type 'yarn' is not supported (supported: linear, llama3, longrope)");
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}};
  EXPECT_ERROR_CONTAINS(parse_hf_config(j.dump(), "config.json"),
                        "config.json: missing required key 'rope_scaling.low_freq_factor'");
  j["rope_scaling"] = {{"factor", 8.0}};
  EXPECT_ERROR_CONTAINS(parse_hf_config(j.dump(), "config.json"), "'rope_scaling' has no 'type' or 'rope_type'");
  j["rope_scaling"] = "linear";
  EXPECT_ERROR_CONTAINS(parse_hf_config(j.dump(), "config.json"), "'rope_scaling' must be an object, got string");
}

TEST(HfConfigTest, Errors) {
  struct Case {
    const char* what;
    std::string text;
    std::string expected;
  };
  auto with = [](const char* key, json value) {
    json j = minimal_llama();
    j[key] = std::move(value);
    return j.dump();
  };
  auto without = [](const char* key) {
    json j = minimal_llama();
    j.erase(key);
    return j.dump();
  };
  const std::vector<Case> cases = {
      {"malformed JSON", "{\"vocab_size\": 10,\n  \"hidden_size\": }", "config.json: not valid JSON: parse error at line 2, column 18"},
      {"empty file", "", "config.json: not valid JSON"},
      {"not an object", "[1]", "config.json: not a JSON object (got array)"},
      {"missing hidden_size", without("hidden_size"), "config.json: missing required key 'hidden_size'"},
      {"missing vocab_size", without("vocab_size"), "missing required key 'vocab_size'"},
      {"unsupported architecture", with("architectures", {"GPTNeoXForCausalLM"}),
       "config.json: architecture 'GPTNeoXForCausalLM' is not supported (supported: LlamaForCausalLM, "
       "MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, Phi3ForCausalLM, "
       "Gemma3ForConditionalGeneration (its language model))"},
      {"architectures not a list", with("architectures", "LlamaForCausalLM"), "'architectures' must be a non-empty list"},
      {"no architecture at all", [] { json j = minimal_llama(); j.erase("architectures"); j.erase("model_type"); return j.dump(); }(),
       "missing required key 'architectures'"},
      {"string where a number", with("hidden_size", "64"), "config.json: 'hidden_size' must be an integer, got string"},
      {"fraction where an integer", with("num_hidden_layers", 2.5), "'num_hidden_layers' must be an integer, got 2.5"},
      {"string where a float", with("rms_norm_eps", "1e-5"), "'rms_norm_eps' must be a number, got string"},
      {"number where a bool", with("tie_word_embeddings", 1), "'tie_word_embeddings' must be true or false, got integer"},
      {"negative size", with("intermediate_size", -4), "intermediate_size = -4 must be positive"},
      {"huge size", with("vocab_size", 1e300), "'vocab_size' must be an integer"},
      {"bad eos list", with("eos_token_id", {1, "x"}), "'eos_token_id' entry 1 must be an integer, got string"},
      {"heads not a multiple of kv heads", with("num_key_value_heads", 3),
       "'num_attention_heads' (4) must be a multiple of 'num_key_value_heads' (3)"},
      {"more kv heads than heads", with("num_key_value_heads", 8), "'num_key_value_heads' is 8, must be in [1, 4]"},
      {"hidden not a multiple of heads", with("hidden_size", 130), "'hidden_size' (130) is not a multiple of 'num_attention_heads' (4)"},
      {"unsupported activation", with("hidden_act", "gelu"), "hidden_act 'gelu' is not supported (supported: silu)"},
      {"zero eps", with("rms_norm_eps", 0), "'rms_norm_eps' must be in (0, 1)"},
      {"negative theta", with("rope_theta", -1), "'rope_theta' must be positive"},
      {"partial rotary (Phi-4-mini)", with("partial_rotary_factor", 0.75),
       "config.json: partial_rotary_factor 0.75 is not supported (rotary embeddings on part of each head)"},
      {"partial rotary in rope_parameters", with("rope_parameters", {{"rope_type", "default"}, {"partial_rotary_factor", 0.5}}),
       "config.json: partial_rotary_factor 0.5 is not supported"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    auto r = parse_hf_config(c.text, "config.json");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.message().find(c.expected), std::string::npos) << r.message();
  }
  EXPECT_ERROR_CONTAINS(load_hf_config("/nonexistent-ingot-dir"), "/nonexistent-ingot-dir/config.json: cannot open");
}

// --- tokenizer: stories260K --------------------------------------------------------------------

void expect_stories_spec(const TokenizerSpec& spec) {
  EXPECT_EQ(spec.kind, TokenizerSpec::Kind::SentencePiece);
  ASSERT_EQ(spec.tokens.size(), 512u);
  ASSERT_EQ(spec.scores.size(), 512u);
  ASSERT_EQ(spec.types.size(), 512u);
  EXPECT_EQ(spec.bos, 1);
  EXPECT_EQ(spec.eos, 2);
  EXPECT_EQ(spec.unk, 0);
  EXPECT_EQ(spec.pad, -1);
  EXPECT_TRUE(spec.add_bos);
  EXPECT_FALSE(spec.add_eos);
  EXPECT_TRUE(spec.add_space_prefix);
  EXPECT_EQ(spec.tokens[0], "<unk>");
  EXPECT_EQ(spec.tokens[1], "<s>");
  EXPECT_EQ(spec.tokens[3], "<0x00>");
  EXPECT_EQ(spec.tokens[259], "\xE2\x96\x81t");  // "▁t"
  EXPECT_EQ(spec.types[0], TokenizerSpec::Unknown);
  EXPECT_EQ(spec.types[1], TokenizerSpec::Control);
  EXPECT_EQ(spec.types[2], TokenizerSpec::Control);
  for (int i = 3; i < 259; ++i) EXPECT_EQ(spec.types[i], TokenizerSpec::Byte) << i;
  for (int i = 259; i < 512; ++i) EXPECT_EQ(spec.types[i], TokenizerSpec::Normal) << i;
}

TEST(HfTokenizerTest, Stories260KFromTokenizerJson) {
  INGOT_MODEL_PATH(dir, "stories260K-hf");
  auto spec = parse_hf_tokenizer_json(read_file(dir + "/tokenizer.json"), dir + "/tokenizer.json",
                                      read_file(dir + "/tokenizer_config.json"));
  ASSERT_TRUE(spec.ok()) << spec.message();
  expect_stories_spec(*spec);
  // tokenizer.json's merges, which the runtime applies by rank as Hugging Face does.
  EXPECT_FALSE(spec->merges.empty());
}

TEST(HfTokenizerTest, Stories260KFromTokenizerModel) {
  INGOT_MODEL_PATH(dir, "stories260K-hf");
  auto spec = parse_sentencepiece_model(read_file(dir + "/tokenizer.model"), dir + "/tokenizer.model");
  ASSERT_TRUE(spec.ok()) << spec.message();
  expect_stories_spec(*spec);
  EXPECT_TRUE(spec->merges.empty());
  EXPECT_FLOAT_EQ(spec->scores[259], 0.0f);
  EXPECT_FLOAT_EQ(spec->scores[260], -1.0f);
  EXPECT_FLOAT_EQ(spec->scores[511], -252.0f);
}

TEST(HfTokenizerTest, FolderPrefersTokenizerJson) {
  INGOT_MODEL_PATH(dir, "stories260K-hf");
  auto from_folder = tokenizer_from_hf_folder(dir);
  ASSERT_TRUE(from_folder.ok()) << from_folder.message();
  expect_stories_spec(*from_folder);
  // Only tokenizer.model (and tokenizer_config.json) in the folder.
  std::string only_model = hf_temp_dir();
  write_file(only_model + "/tokenizer.model", read_file(dir + "/tokenizer.model"));
  write_file(only_model + "/tokenizer_config.json", read_file(dir + "/tokenizer_config.json"));
  auto from_model = tokenizer_from_hf_folder(only_model);
  ASSERT_TRUE(from_model.ok()) << from_model.message();
  expect_stories_spec(*from_model);
  std::string empty = hf_temp_dir();
  EXPECT_ERROR_CONTAINS(tokenizer_from_hf_folder(empty), empty + ": no tokenizer.json or tokenizer.model");
}

// tokenizer.json's derived scores equal tokenizer.model's real ones for this converted vocabulary.
TEST(HfTokenizerTest, DerivedScoresEqualTokenizerModelScores) {
  INGOT_MODEL_PATH(dir, "stories260K-hf");
  auto from_json = parse_hf_tokenizer_json(read_file(dir + "/tokenizer.json"), "tokenizer.json");
  auto from_model = parse_sentencepiece_model(read_file(dir + "/tokenizer.model"), "tokenizer.model");
  ASSERT_TRUE(from_json.ok()) << from_json.message();
  ASSERT_TRUE(from_model.ok()) << from_model.message();
  EXPECT_EQ(from_json->tokens, from_model->tokens);
  EXPECT_EQ(from_json->types, from_model->types);
  EXPECT_EQ(from_json->scores, from_model->scores);
  // Without tokenizer_config.json the template and "<s>"/"</s>" give the same ids.
  EXPECT_EQ(from_json->bos, 1);
  EXPECT_EQ(from_json->eos, 2);
  EXPECT_TRUE(from_json->add_bos);
}

#ifdef INGOT_HAVE_GGUF_TOKENIZER
TEST(HfTokenizerTest, MatchesTheGgufVocabulary) {
  INGOT_MODEL_PATH(gguf_path, "stories260K.gguf");
  INGOT_MODEL_PATH(dir, "stories260K-hf");
  auto gguf = GgufFile::open(gguf_path);
  ASSERT_TRUE(gguf.ok()) << gguf.message();
  auto expected = tokenizer_from_gguf(**gguf);
  ASSERT_TRUE(expected.ok()) << expected.message();
  auto spec = tokenizer_from_hf_folder(dir);
  ASSERT_TRUE(spec.ok()) << spec.message();
  EXPECT_EQ(spec->tokens, expected->tokens);
  EXPECT_EQ(spec->scores, expected->scores);
  EXPECT_EQ(spec->types, expected->types);
  EXPECT_EQ(spec->bos, expected->bos);
  EXPECT_EQ(spec->eos, expected->eos);
  EXPECT_EQ(spec->unk, expected->unk);
  EXPECT_EQ(spec->add_bos, expected->add_bos);
  EXPECT_EQ(spec->add_space_prefix, expected->add_space_prefix);
}
#endif

#ifdef INGOT_HAVE_RUNTIME_TOKENIZER
std::vector<int32_t> encode_with(const TokenizerSpec& spec, const std::string& text) {
  std::string error;
  auto tok = take(Tokenizer::create(spec), &error);
  EXPECT_NE(tok, nullptr) << error;
  if (!tok) return {};
  return tok->encode(text, /*add_special=*/true);
}

TEST(HfTokenizerTest, Stories260KEncodesLikeLlamaCpp) {
  INGOT_MODEL_PATH(dir, "stories260K-hf");
  auto from_json = tokenizer_from_hf_folder(dir);
  auto from_model = parse_sentencepiece_model(read_file(dir + "/tokenizer.model"), "tokenizer.model",
                                              read_file(dir + "/tokenizer_config.json"));
  ASSERT_TRUE(from_json.ok()) << from_json.message();
  ASSERT_TRUE(from_model.ok()) << from_model.message();
  // tokenizer.json alone: merges by rank (Hugging Face's BPE model) instead of scores.
  auto json_only = parse_hf_tokenizer_json(read_file(dir + "/tokenizer.json"), "tokenizer.json",
                                           read_file(dir + "/tokenizer_config.json"));
  ASSERT_TRUE(json_only.ok()) << json_only.message();
  ASSERT_FALSE(json_only->merges.empty());
  for (const TokenizerSpec* spec : {&*from_json, &*from_model, &*json_only}) {
    EXPECT_EQ(encode_with(*spec, "Once upon a time"), (std::vector<int32_t>{1, 403, 407, 261, 378}));
    EXPECT_EQ(encode_with(*spec, "Tom and his dog"), (std::vector<int32_t>{1, 274, 287, 269, 345, 400, 428}));
  }
  // Ranks and scores agree on this converted vocabulary, text by text.
  for (const char* text : {"The little girl said, \"Look at the big red ball!\"", "  two  spaces \n and\ttabs",
                           "caf\xC3\xA9 na\xC3\xAFve \xE4\xBD\xA0\xE5\xA5\xBD 12345", "Lily and Ben were friends."}) {
    EXPECT_EQ(encode_with(*json_only, text), encode_with(*from_model, text)) << text;
  }
}
#endif

// --- tokenizer.json: byte-level BPE ------------------------------------------------------------

// GPT-2's byte -> printable character table, as UTF-8 strings indexed by byte.
std::vector<std::string> byte_chars() {
  auto utf8 = [](uint32_t cp) {
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return s;
  };
  std::vector<std::string> out(256);
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    out[b] = utf8(printable ? b : next++);
  }
  return out;
}

// A small GPT-2-style tokenizer.json: the 256 byte characters (id = byte), merges that build
// "hi" and "Ġthere" (half as "a b" strings, half as pairs), and <|endoftext|>.
json byte_level_tokenizer(const json& pre_tokenizer) {
  const std::vector<std::string> chars = byte_chars();
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[chars[b]] = b;
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"h", "i"}, {"\xC4\xA0", "t"}, {"\xC4\xA0t", "h"}, {"e", "r"}, {"\xC4\xA0th", "er"}, {"\xC4\xA0ther", "e"}};
  json merge_list = json::array();
  int id = 256;
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto& [a, b] = merges[i];
    vocab[a + b] = id++;
    if (i % 2 == 0) merge_list.push_back(a + " " + b);
    else merge_list.push_back({a, b});
  }
  vocab["<|endoftext|>"] = id;
  return {{"version", "1.0"},
          {"added_tokens", {{{"id", id}, {"content", "<|endoftext|>"}, {"special", true}}}},
          {"normalizer", nullptr},
          {"pre_tokenizer", pre_tokenizer},
          {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"byte_fallback", false}, {"vocab", vocab}, {"merges", merge_list}}}};
}

json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
}

json split_then_byte_level(const std::string& regex) {
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}},
            byte_level(false)}}};
}

const char* kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* kQwen35Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

TEST(HfTokenizerTest, ByteLevelGpt2) {
  json tj = byte_level_tokenizer(byte_level(true));
  auto spec = parse_hf_tokenizer_json(tj.dump(), "tokenizer.json", R"({"eos_token": "<|endoftext|>"})");
  ASSERT_TRUE(spec.ok()) << spec.message();
  EXPECT_EQ(spec->kind, TokenizerSpec::Kind::ByteLevelBpe);
  EXPECT_EQ(spec->pre, "gpt2");
  ASSERT_EQ(spec->tokens.size(), 263u);
  EXPECT_EQ(spec->tokens[65], "A");
  EXPECT_EQ(spec->tokens[32], "\xC4\xA0");  // the space byte is 'Ġ'
  EXPECT_EQ(spec->merges, (std::vector<std::string>{"h i", "\xC4\xA0 t", "\xC4\xA0t h", "e r", "\xC4\xA0th er",
                                                    "\xC4\xA0ther e"}));
  EXPECT_EQ(spec->types[262], TokenizerSpec::Control);
  EXPECT_EQ(spec->types[100], TokenizerSpec::Normal);
  EXPECT_EQ(spec->eos, 262);
  EXPECT_EQ(spec->bos, -1);
  EXPECT_FALSE(spec->add_bos);
  EXPECT_FALSE(spec->add_space_prefix);
#ifdef INGOT_HAVE_RUNTIME_TOKENIZER
  EXPECT_EQ(encode_with(*spec, "hi there"), (std::vector<int32_t>{256, 261}));
  EXPECT_EQ(encode_with(*spec, "hi the"), (std::vector<int32_t>{256, 258, 'e'}));
#endif
}

// SmolLM2's (and StarCoder's) tokenizer.json: every digit split off, then GPT-2's byte-level
// regex: llama.cpp's "smollm" pre-tokenizer. Digits without individual_digits is not that.
TEST(HfTokenizerTest, DigitsThenByteLevelIsSmollm) {
  json digits = {{"type", "Digits"}, {"individual_digits", true}};
  json tj = byte_level_tokenizer({{"type", "Sequence"}, {"pretokenizers", {digits, byte_level(true)}}});
  auto spec = parse_hf_tokenizer_json(tj.dump(), "tokenizer.json", R"({"eos_token": "<|endoftext|>"})");
  ASSERT_TRUE(spec.ok()) << spec.message();
  EXPECT_EQ(spec->pre, "smollm");
  digits["individual_digits"] = false;
  tj = byte_level_tokenizer({{"type", "Sequence"}, {"pretokenizers", {digits, byte_level(true)}}});
  EXPECT_FALSE(parse_hf_tokenizer_json(tj.dump(), "tokenizer.json").ok());
}

TEST(HfTokenizerTest, ByteLevelLlama3AndQwen2Patterns) {
  json llama3 = byte_level_tokenizer(split_then_byte_level(kLlama3Regex));
  llama3["added_tokens"].push_back({{"id", 263}, {"content", "<|begin_of_text|>"}, {"special", true}});
  llama3["post_processor"] = json::parse(R"({"type": "Sequence", "processors": [
      {"type": "ByteLevel"},
      {"type": "TemplateProcessing",
       "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]}]})");
  auto l = parse_hf_tokenizer_json(llama3.dump(), "tokenizer.json");
  ASSERT_TRUE(l.ok()) << l.message();
  EXPECT_EQ(l->pre, "llama3");
  EXPECT_EQ(l->tokens.size(), 264u);
  EXPECT_EQ(l->bos, 263);
  EXPECT_TRUE(l->add_bos);
  EXPECT_EQ(l->eos, -1);
  // tokenizer_config.json overrides the template.
  auto no_bos = parse_hf_tokenizer_json(llama3.dump(), "tokenizer.json", R"({"add_bos_token": false})");
  ASSERT_TRUE(no_bos.ok()) << no_bos.message();
  EXPECT_FALSE(no_bos->add_bos);

  json qwen = byte_level_tokenizer(split_then_byte_level(kQwen2Regex));
  qwen["normalizer"] = {{"type", "NFC"}};
  qwen["added_tokens"].push_back({{"id", 263}, {"content", "<|im_end|>"}, {"special", true}});
  qwen["added_tokens"].push_back({{"id", 264}, {"content", "<tool>"}, {"special", false}});
  auto q = parse_hf_tokenizer_json(qwen.dump(), "tokenizer.json",
                                   R"({"bos_token": null, "eos_token": {"__type": "AddedToken", "content": "<|im_end|>"},
                                       "pad_token": "<|endoftext|>", "add_bos_token": false})");
  ASSERT_TRUE(q.ok()) << q.message();
  EXPECT_EQ(q->pre, "qwen2");
  EXPECT_EQ(q->eos, 263);
  EXPECT_EQ(q->pad, 262);
  EXPECT_EQ(q->bos, -1);
  EXPECT_FALSE(q->add_bos);
  EXPECT_EQ(q->types[264], TokenizerSpec::UserDefined);

  // Qwen3.5's regex: marks join letters.
  auto q35 = parse_hf_tokenizer_json(byte_level_tokenizer(split_then_byte_level(kQwen35Regex)).dump(), "tokenizer.json");
  ASSERT_TRUE(q35.ok()) << q35.message();
  EXPECT_EQ(q35->pre, "qwen35");
}

TEST(HfTokenizerTest, GapsInIdsBecomeUnusedPadTokens) {
  json tj = byte_level_tokenizer(byte_level(true));
  tj["added_tokens"].push_back({{"id", 270}, {"content", "<|late|>"}, {"special", true}});
  auto spec = parse_hf_tokenizer_json(tj.dump(), "tokenizer.json");
  ASSERT_TRUE(spec.ok()) << spec.message();
  ASSERT_EQ(spec->tokens.size(), 271u);
  EXPECT_EQ(spec->tokens[265], "[PAD265]");
  EXPECT_EQ(spec->types[265], TokenizerSpec::Unused);
  EXPECT_EQ(spec->types[270], TokenizerSpec::Control);

  ASSERT_TRUE(pad_tokenizer_vocab(*spec, 280).ok());
  EXPECT_EQ(spec->tokens.size(), 280u);
  EXPECT_EQ(spec->tokens[279], "[PAD279]");
  EXPECT_EQ(spec->types[279], TokenizerSpec::Unused);
  EXPECT_ERROR_CONTAINS(pad_tokenizer_vocab(*spec, 100), "the tokenizer has 280 tokens, more than the model's vocab_size 100");
}

TEST(HfTokenizerTest, TokenizerJsonErrors) {
  struct Case {
    const char* what;
    std::string text;
    std::string expected;
  };
  auto edited = [](std::function<void(json&)> edit) {
    json tj = byte_level_tokenizer(byte_level(true));
    edit(tj);
    return tj.dump();
  };
  const std::vector<Case> cases = {
      {"malformed JSON", "{\"model\": ", "tokenizer.json: not valid JSON: parse error"},
      {"not an object", "42", "tokenizer.json: not a JSON object (got integer)"},
      {"no model", "{}", "missing object 'model'"},
      {"unigram model", edited([](json& t) { t["model"]["type"] = "Unigram"; }),
       "tokenizer.json: model type 'Unigram' is not supported (supported: BPE)"},
      {"wordpiece model", edited([](json& t) { t["model"]["type"] = "WordPiece"; }), "model type 'WordPiece' is not supported"},
      {"unknown split pattern", edited([](json& t) { t["pre_tokenizer"] = split_then_byte_level(R"(\p{L}+|\p{N})"); }),
       "pre-tokenizer Split pattern '\\p{L}+|\\p{N}' is not a known one (known: gpt2, llama3, qwen2, qwen35)"},
      {"unknown pre-tokenizer sequence",
       edited([](json& t) {
         t["pre_tokenizer"] = {{"type", "Sequence"},
                               {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level(false)}}};
       }),
       "pre-tokenizer [Digits, ByteLevel] is not a known byte-level BPE pre-tokenizer"},
      {"split behavior", edited([](json& t) {
         t["pre_tokenizer"] = split_then_byte_level(kQwen2Regex);
         t["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed";
       }),
       "Split pre-tokenizer with behavior 'Removed' is not supported"},
      {"prefix space", edited([](json& t) { t["pre_tokenizer"]["add_prefix_space"] = true; }),
       "ByteLevel pre-tokenizer with add_prefix_space=true is not supported"},
      {"neither kind", edited([](json& t) {
         t["pre_tokenizer"] = {{"type", "Whitespace"}};
         t["decoder"] = nullptr;
       }),
       "unsupported BPE tokenizer: neither a ByteLevel pre-tokenizer nor SentencePiece's"},
      {"unsupported normalizer", edited([](json& t) { t["normalizer"] = {{"type", "Lowercase"}}; }),
       "normalizer 'Lowercase' is not supported for byte-level BPE"},
      {"vocab not an object", edited([](json& t) { t["model"]["vocab"] = json::array(); }), "'model.vocab' must be an object"},
      {"negative id", edited([](json& t) { t["model"]["vocab"]["h"] = -1; }), "token 'h' has id -1"},
      {"id conflict", edited([](json& t) { t["model"]["vocab"]["zz"] = 5; }), "id 5 is both"},
      {"sparse ids", edited([](json& t) { t["model"]["vocab"]["zz"] = 100000; }), "leaves too many unused ids"},
      {"merge of unknown token", edited([](json& t) { t["model"]["merges"].push_back("q z"); }),
       "merge 6 ('q z'): 'qz' is not in the vocabulary"},
      {"malformed merge", edited([](json& t) { t["model"]["merges"].push_back("abc"); }),
       "merge 6 'abc' is not two tokens separated by one space"},
      {"merge with an empty token", edited([](json& t) {
         t["model"]["vocab"][""] = 263;
         t["model"]["merges"].push_back(json::array({"", "h"}));
       }),
       "merge 6 has an empty token"},
      {"merge not a string", edited([](json& t) { t["model"]["merges"].push_back(7); }), "merge 6 must be \"a b\" or [\"a\", \"b\"]"},
      {"added token without id", edited([](json& t) { t["added_tokens"].push_back({{"content", "x"}}); }),
       "added_tokens entry 1 needs 'id' and 'content'"},
      {"template names an unknown token", edited([](json& t) {
         t["post_processor"] = json::parse(R"({"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<bos>"}}, {"Sequence": {"id": "A"}}]})");
       }),
       "post_processor names special token '<bos>', which is not in the vocabulary"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    auto r = parse_hf_tokenizer_json(c.text, "tokenizer.json");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.message().rfind("tokenizer.json: ", 0), 0u) << r.message();
    EXPECT_NE(r.message().find(c.expected), std::string::npos) << r.message();
  }
}

TEST(HfTokenizerTest, TokenizerConfigErrors) {
  const std::string tj = byte_level_tokenizer(byte_level(true)).dump();
  EXPECT_ERROR_CONTAINS(parse_hf_tokenizer_json(tj, "tokenizer.json", R"({"bos_token": "<s>"})"),
                        "tokenizer_config.json: bos_token '<s>' is not in the vocabulary");
  EXPECT_ERROR_CONTAINS(parse_hf_tokenizer_json(tj, "tokenizer.json", R"({"eos_token": 5})"),
                        "tokenizer_config.json: 'eos_token' must be a token string or an object with 'content', got integer");
  EXPECT_ERROR_CONTAINS(parse_hf_tokenizer_json(tj, "tokenizer.json", R"({"add_bos_token": "yes"})"),
                        "'add_bos_token' must be true or false, got string");
  EXPECT_ERROR_CONTAINS(parse_hf_tokenizer_json(tj, "tokenizer.json", R"({"add_bos_token": true})"),
                        "tokenizer.json: BOS is to be added but the tokenizer has no BOS token");
  EXPECT_ERROR_CONTAINS(parse_hf_tokenizer_json(tj, "tokenizer.json", "{oops", "cfg.json"), "cfg.json: not valid JSON");
}

// The newer (legacy=false) Llama layout: no normalizer, a Metaspace pre-tokenizer.
json metaspace_tokenizer() {
  return {
      {"added_tokens", {{{"id", 0}, {"content", "<unk>"}, {"special", true}}, {{"id", 1}, {"content", "<s>"}, {"special", true}},
                        {{"id", 2}, {"content", "</s>"}, {"special", true}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "first"}, {"split", false}}},
      {"decoder", {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}}},
      {"model",
       {{"type", "BPE"}, {"byte_fallback", true}, {"unk_token", "<unk>"},
        {"vocab", {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}, {"<0x41>", 3}, {"a", 4}, {"b", 5}, {"\xE2\x96\x81", 6},
                   {"ab", 7}, {"\xE2\x96\x81" "a", 8}, {"\xE2\x96\x81" "ab", 9}}},
        {"merges", {"a b", "\xE2\x96\x81 a", "\xE2\x96\x81" "a b"}}}}};
}

// What the SentencePiece-style path cannot reproduce is refused, naming the file and the thing.
TEST(HfTokenizerTest, UnsupportedSentencePiecePipelinesAreRefused) {
  struct Case {
    const char* what;
    std::function<void(json&)> edit;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"metaspace split", [](json& t) { t["pre_tokenizer"]["split"] = true; },
       "Metaspace pre-tokenizer with split=true is not supported"},
      {"other pre-tokenizer",
       [](json& t) {
         t["pre_tokenizer"] = {{"type", "Sequence"},
                               {"pretokenizers", {t["pre_tokenizer"], {{"type", "Digits"}, {"individual_digits", true}}}}};
       },
       "pre-tokenizer 'Digits' is not supported for a SentencePiece-style BPE"},
      {"other normalizer", [](json& t) { t["normalizer"] = {{"type", "NFKC"}}; },
       "normalizer 'NFKC' is not supported for a SentencePiece-style BPE"},
      {"split on space without the replace normalizer",
       [](json& t) {
         t["pre_tokenizer"] = {{"type", "Sequence"},
                               {"pretokenizers",
                                {t["pre_tokenizer"],
                                 {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "MergedWithPrevious"}}}}};
       },
       "pre-tokenizer 'Split' is not supported for a SentencePiece-style BPE"},
      {"lstrip added token",
       [](json& t) { t["added_tokens"].push_back({{"id", 10}, {"content", "<x>"}, {"lstrip", true}}); },
       "added token '<x>' sets lstrip=true, which is not supported"},
      {"single_word added token",
       [](json& t) { t["added_tokens"].push_back({{"id", 10}, {"content", "<x>"}, {"single_word", true}}); },
       "added token '<x>' sets single_word=true, which is not supported"},
      {"normalized added token with a space",
       [](json& t) { t["added_tokens"].push_back({{"id", 10}, {"content", "a b"}, {"normalized", true}}); },
       "added token 'a b' sets normalized=true but a normalizer would change it"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    json tj = metaspace_tokenizer();
    c.edit(tj);
    auto r = parse_hf_tokenizer_json(tj.dump(), "tokenizer.json");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.message().rfind("tokenizer.json: ", 0), 0u) << r.message();
    EXPECT_NE(r.message().find(c.expected), std::string::npos) << r.message();
  }
  // Gemma's Split on " " after a Replace ' ' -> '▁' normalizer splits nothing: accepted.
  json gemma = metaspace_tokenizer();
  gemma["normalizer"] = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}};
  gemma["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "MergedWithPrevious"}};
  auto ok = parse_hf_tokenizer_json(gemma.dump(), "tokenizer.json");
  ASSERT_TRUE(ok.ok()) << ok.message();
  EXPECT_FALSE(ok->add_space_prefix);
  EXPECT_EQ(ok->merges.size(), 3u);
}

TEST(HfTokenizerTest, SentencePieceStyleTokenizerJsonWithMetaspace) {
  json tj = metaspace_tokenizer();
  auto spec = parse_hf_tokenizer_json(tj.dump(), "tokenizer.json");
  ASSERT_TRUE(spec.ok()) << spec.message();
  EXPECT_EQ(spec->kind, TokenizerSpec::Kind::SentencePiece);
  EXPECT_TRUE(spec->add_space_prefix);
  EXPECT_EQ(spec->unk, 0);
  EXPECT_EQ(spec->bos, 1);  // the conventional "<s>", no template
  EXPECT_EQ(spec->eos, 2);
  EXPECT_FALSE(spec->add_bos);
  EXPECT_EQ(spec->types[3], TokenizerSpec::Byte);
  // Merge order: ab (rank 0), ▁a (1), ▁ab (2); then the single characters a, b, ▁ by id.
  EXPECT_EQ(spec->scores[7], 0.0f);
  EXPECT_EQ(spec->scores[8], -1.0f);
  EXPECT_EQ(spec->scores[9], -2.0f);
  EXPECT_EQ(spec->scores[4], -3.0f);
  EXPECT_EQ(spec->scores[5], -4.0f);
  EXPECT_EQ(spec->scores[6], -5.0f);
  EXPECT_EQ(spec->scores[3], 0.0f);

  tj["pre_tokenizer"]["prepend_scheme"] = "never";
  auto never = parse_hf_tokenizer_json(tj.dump(), "tokenizer.json");
  ASSERT_TRUE(never.ok()) << never.message();
  EXPECT_FALSE(never->add_space_prefix);
}

// --- tokenizer.model ---------------------------------------------------------------------------

std::string varint(uint64_t v) {
  std::string s;
  while (v >= 0x80) {
    s += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  s += static_cast<char>(v);
  return s;
}
std::string pb_bytes(int field, const std::string& payload) {
  return varint(static_cast<uint64_t>(field) << 3 | 2) + varint(payload.size()) + payload;
}
std::string pb_int(int field, int64_t v) { return varint(static_cast<uint64_t>(field) << 3) + varint(static_cast<uint64_t>(v)); }
std::string pb_float(int field, float f) {
  std::string s = varint(static_cast<uint64_t>(field) << 3 | 5);
  char b[4];
  std::memcpy(b, &f, 4);
  return s + std::string(b, 4);
}
std::string piece(const std::string& text, float score, int type) {
  return pb_bytes(1, pb_bytes(1, text) + pb_float(2, score) + pb_int(3, type));
}
// ModelProto with pieces <unk> <s> </s> a b ab, the given model type and BOS id.
std::string small_model(int model_type, int bos_id = 1, bool add_dummy_prefix = false) {
  std::string m = piece("<unk>", 0, 2) + piece("<s>", 0, 3) + piece("</s>", 0, 3) + piece("a", -1, 1) + piece("b", -2, 1) +
                  piece("ab", -0.5f, 1);
  m += pb_bytes(2, pb_int(3, model_type) + pb_int(41, bos_id));
  m += pb_bytes(3, pb_int(3, add_dummy_prefix ? 1 : 0));
  return m;
}

TEST(HfTokenizerTest, SentencePieceModelByHand) {
  auto spec = parse_sentencepiece_model(small_model(/*BPE*/ 2), "tokenizer.model");
  ASSERT_TRUE(spec.ok()) << spec.message();
  EXPECT_EQ(spec->tokens, (std::vector<std::string>{"<unk>", "<s>", "</s>", "a", "b", "ab"}));
  EXPECT_EQ(spec->scores, (std::vector<float>{0, 0, 0, -1, -2, -0.5f}));
  EXPECT_EQ(spec->types, (std::vector<int32_t>{2, 3, 3, 1, 1, 1}));
  EXPECT_EQ(spec->bos, 1);
  EXPECT_EQ(spec->eos, 2);
  EXPECT_EQ(spec->unk, 0);
  EXPECT_EQ(spec->pad, -1);
  EXPECT_TRUE(spec->add_bos);
  EXPECT_FALSE(spec->add_space_prefix);

  auto no_bos = parse_sentencepiece_model(small_model(2, -1, true), "tokenizer.model");
  ASSERT_TRUE(no_bos.ok()) << no_bos.message();
  EXPECT_EQ(no_bos->bos, -1);
  EXPECT_FALSE(no_bos->add_bos);
  EXPECT_TRUE(no_bos->add_space_prefix);

  auto cfg = parse_sentencepiece_model(small_model(2), "tokenizer.model", R"({"add_bos_token": false, "add_eos_token": true,
                                                                              "bos_token": "ab"})");
  ASSERT_TRUE(cfg.ok()) << cfg.message();
  EXPECT_FALSE(cfg->add_bos);
  EXPECT_TRUE(cfg->add_eos);
  EXPECT_EQ(cfg->bos, 5);
}

// A folder with a SentencePiece-style tokenizer.json and a tokenizer.model of the same tokens:
// the model's real scores replace the derived ones; a different vocabulary is ignored.
TEST(HfTokenizerTest, FolderTakesScoresFromMatchingTokenizerModel) {
  const std::string dir = hf_temp_dir();
  write_file(dir + "/tokenizer.json", metaspace_tokenizer().dump());
  const float real[] = {0, 0, 0, 0, -5, -6, -1e9f, -1, -2, -3};
  const int types[] = {2, 3, 3, 6, 1, 1, 1, 1, 1, 1};
  const char* texts[] = {"<unk>", "<s>", "</s>", "<0x41>", "a", "b", "\xE2\x96\x81", "ab", "\xE2\x96\x81" "a",
                         "\xE2\x96\x81" "ab"};
  std::string model;
  for (int i = 0; i < 10; ++i) model += piece(texts[i], real[i], types[i]);
  model += pb_bytes(2, pb_int(3, 2));
  write_file(dir + "/tokenizer.model", model);
  auto spec = tokenizer_from_hf_folder(dir);
  ASSERT_TRUE(spec.ok()) << spec.message();
  EXPECT_EQ(spec->scores, std::vector<float>(std::begin(real), std::end(real)));
  EXPECT_EQ(spec->bos, 1);  // everything else still comes from tokenizer.json
  EXPECT_FALSE(spec->add_bos);

  write_file(dir + "/tokenizer.model", small_model(2));  // another vocabulary
  auto derived = tokenizer_from_hf_folder(dir);
  ASSERT_TRUE(derived.ok()) << derived.message();
  EXPECT_EQ(derived->scores[6], -5.0f);
  EXPECT_EQ(derived->scores[7], 0.0f);
}

TEST(HfTokenizerTest, SentencePieceModelErrors) {
  EXPECT_ERROR_CONTAINS(parse_sentencepiece_model(std::string("\x0a\x05" "ab", 4), "tokenizer.model"),
                        "tokenizer.model: not a SentencePiece model (protobuf parsing failed)");
  EXPECT_ERROR_CONTAINS(parse_sentencepiece_model(std::string("\xff\xff\xff\xff", 4), "tokenizer.model"),
                        "protobuf parsing failed");
  EXPECT_ERROR_CONTAINS(parse_sentencepiece_model(small_model(/*UNIGRAM*/ 1), "tokenizer.model"),
                        "tokenizer.model: SentencePiece model type UNIGRAM is not supported (supported: BPE)");
  // No trainer_spec at all: SentencePiece's default model type, UNIGRAM.
  EXPECT_ERROR_CONTAINS(parse_sentencepiece_model(piece("a", 0, 1), "tokenizer.model"), "model type UNIGRAM is not supported");
  EXPECT_ERROR_CONTAINS(parse_sentencepiece_model(small_model(2, 99), "tokenizer.model"),
                        "trainer_spec.bos_id 99 is out of range (6 pieces)");
  EXPECT_ERROR_CONTAINS(parse_sentencepiece_model(pb_bytes(2, pb_int(3, 2)), "tokenizer.model"), "the model has no pieces");
  EXPECT_ERROR_CONTAINS(parse_sentencepiece_model(small_model(2) + piece("a", 0, 1), "tokenizer.model"),
                        "pieces 3 and 6 are both 'a'");
  EXPECT_ERROR_CONTAINS(parse_sentencepiece_model(small_model(2) + piece("\xff", 0, 1), "tokenizer.model"),
                        "piece 6 is not valid UTF-8");
  EXPECT_ERROR_CONTAINS(parse_sentencepiece_model(small_model(2) + piece("", 0, 1), "tokenizer.model"), "piece 6 is empty");
  EXPECT_ERROR_CONTAINS(parse_sentencepiece_model(small_model(2) + piece("<0x2s>", 0, 6), "tokenizer.model"),
                        "piece 6 '<0x2s>' has type BYTE but does not spell a byte as <0xHH>");
  EXPECT_ERROR_CONTAINS(parse_sentencepiece_model(small_model(2) + piece("c", std::nanf(""), 1), "tokenizer.model"),
                        "piece 6 has a NaN score");
  EXPECT_ERROR_CONTAINS(parse_sentencepiece_model(small_model(2), "tokenizer.model", R"({"eos_token": "</x>"})"),
                        "tokenizer_config.json: eos_token '</x>' is not in the vocabulary");
}

}  // namespace
}  // namespace ingot
