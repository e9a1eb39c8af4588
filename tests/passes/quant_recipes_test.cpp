// Ingot's quantizers and its llama-quantize mixtures against what llama-quantize wrote
// (tests/data/quant_recipes_reference.json, made by tests/scripts/record_quant_recipes.py):
// for each recorded model and recipe, every 2-D weight gets the same type and the same bytes.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "frontend/importer.h"
#include "frontend/synth.h"
#include "passes/quant/quantize_weights.h"
#include "runtime/sha256.h"
#include "tests/common/models.h"

namespace ingot {
namespace {

const nlohmann::json& reference() {
  static const nlohmann::json doc = [] {
    std::ifstream in(std::string(INGOT_SOURCE_DIR) + "/tests/data/quant_recipes_reference.json");
    INGOT_ASSERT(in.good(), "tests/data/quant_recipes_reference.json is missing");
    return nlohmann::json::parse(in);
  }();
  return doc;
}

std::string hex(const Sha256::Digest& d) {
  std::string s;
  char buf[3];
  for (uint8_t b : d) {
    std::snprintf(buf, sizeof(buf), "%02x", b);
    s += buf;
  }
  return s;
}

// The recorded `ingotc synth` arguments as a SynthShape and seed (--arch, --dims, --seed only).
void shape_from_args(const std::vector<std::string>& args, SynthShape& shape, uint64_t& seed) {
  shape.name = "custom";
  for (size_t i = 0; i + 1 < args.size(); i += 2) {
    if (args[i] == "--arch") shape.arch = args[i + 1];
    if (args[i] == "--seed") seed = std::stoull(args[i + 1]);
    if (args[i] != "--dims") continue;
    std::stringstream ss(args[i + 1]);
    std::string kv;
    while (std::getline(ss, kv, ',')) {
      const std::string k = kv.substr(0, kv.find('='));
      const int64_t v = std::stoll(kv.substr(kv.find('=') + 1));
      std::map<std::string, int64_t*> field = {{"vocab", &shape.vocab}, {"dim", &shape.dim}, {"layers", &shape.n_layers},
                                               {"heads", &shape.n_heads}, {"kv", &shape.n_kv_heads},
                                               {"ffn", &shape.ffn}, {"ctx", &shape.context}};
      ASSERT_TRUE(field.count(k)) << kv;
      *field[k] = v;
    }
  }
}

class QuantRecipes : public ::testing::TestWithParam<std::string> {};

TEST_P(QuantRecipes, TypesAndBytesAreLlamaQuantizes) {
  const std::string key = GetParam();  // "model/recipe"
  const std::string model = key.substr(0, key.find('/')), recipe = key.substr(key.find('/') + 1);
  const nlohmann::json& synth = reference()["models"][model]["synth"];
  std::string path;
  std::string tmp;
  if (synth.is_null()) {
    INGOT_MODEL_PATH(stories, "stories260K.gguf");
    path = stories;
  } else {
    SynthShape shape;
    uint64_t seed = 0;
    shape_from_args(synth.get<std::vector<std::string>>(), shape, seed);
    tmp = ::testing::TempDir() + "quant_recipes_" + model + "_" + std::to_string(::getpid()) + ".gguf";
    Status s = synth_model(shape, ElementType::f32, nullptr, seed, tmp, {});
    ASSERT_TRUE(s.ok()) << s.message();
    path = tmp;
  }
  auto im = import_model(path);
  if (!tmp.empty()) std::remove(tmp.c_str());
  ASSERT_TRUE(im.ok()) << im.message();
  auto r = QuantRecipe::parse(recipe, {});
  ASSERT_TRUE(r.ok()) << r.message();
  QuantizeWeightsPass pass(*r);
  ASSERT_TRUE(pass.run(*im->model).ok());

  const nlohmann::json& want = reference()["recipes"][key];
  int compared = 0;
  for (const QuantDecision& d : pass.decisions()) {
    if (!want.contains(d.tensor)) continue;  // llama.cpp keeps some 2-D tensors we do not hold as weights
    const std::string type = want[d.tensor][0].get<std::string>();
    EXPECT_EQ(std::string(type_name(d.to)), type) << d.tensor << " (" << d.rule << ")";
    if (std::string(type_name(d.to)) != type) continue;
    const Node* n = im->model->find(d.tensor);
    ASSERT_TRUE(n && n->constant);
    EXPECT_EQ(hex(Sha256::hash(n->constant->raw(), n->constant->nbytes())), want[d.tensor][1].get<std::string>())
        << d.tensor << " as " << type << ": bytes differ from llama-quantize's";
    ++compared;
  }
  // Every recorded weight the model holds was compared (tied outputs appear once).
  EXPECT_GE(compared, static_cast<int>(want.size()) - 1) << key;
}

std::vector<std::string> recorded_keys() {
  std::vector<std::string> keys;
  for (auto& [k, v] : reference()["recipes"].items()) keys.push_back(k);
  return keys;
}

INSTANTIATE_TEST_SUITE_P(Recorded, QuantRecipes, ::testing::ValuesIn(recorded_keys()), [](const auto& info) {
  std::string n = info.param;
  for (char& c : n)
    if (c == '/') c = '_';
  return n;
});

// A negative: the q4_k_m rules must matter (the same model quantized all-q4_k differs in type
// for attn_v, ffn_down and the output).
TEST(QuantRecipesRules, PlainQ4KIsNotTheMixture) {
  const nlohmann::json& want = reference()["recipes"]["dense8/q4_k_m"];
  int q6 = 0;
  for (auto& [name, row] : want.items()) q6 += row[0] == "q6_k";
  EXPECT_GE(q6, 5) << "the recorded mixture should give several tensors q6_k";
}

}  // namespace
}  // namespace ingot
