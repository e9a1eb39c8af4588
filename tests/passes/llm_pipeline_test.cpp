// The default pipeline on real models: every decoder layer of stories260K (GGUF and Hugging Face)
// becomes exactly RMSNorm, a QKV matmul with RoPE, one stateful Attention, an output matmul with
// the residual, RMSNorm, a gate-up matmul with SwiGLU, and a down matmul with the residual.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "frontend/importer.h"
#include "frontend/reference_generation.h"
#include "ir/verifier.h"
#include "passes/pass_manager.h"
#include "tests/common/models.h"

namespace ingot {
namespace {

std::map<std::string, int> op_counts(const Model& m) {
  std::map<std::string, int> c;
  for (auto& n : m.nodes()) c[std::string(n->op_name())]++;
  return c;
}

void optimize(Model& m) {
  PassManager pm(PassManagerOptions{.verify_each = true});
  ASSERT_TRUE(pm.add_pipeline(default_pipeline()).ok());
  auto r = pm.run(m);
  ASSERT_TRUE(r.ok()) << r.message();
}

void expect_fused_layers(const std::string& path) {
  auto im = import_model(path);
  ASSERT_TRUE(im.ok()) << im.message();
  const int64_t layers = im->config.n_layers;
  optimize(*im->model);
  auto c = op_counts(*im->model);
  // Per layer: 2 RMSNorm, 4 FusedMatMul, 1 Attention; plus the final norm and the lm_head.
  EXPECT_EQ(c["RMSNorm"], 2 * layers + 1);
  EXPECT_EQ(c["FusedMatMul"], 4 * layers + 1);
  EXPECT_EQ(c["Attention"], layers);
  for (const char* gone : {"MatMul", "Softmax", "ReadValue", "Assign", "Concat", "Sigmoid", "Power", "Select", "Transpose", "Broadcast"})
    EXPECT_EQ(c.count(gone), 0u) << gone << " survived";
  // Around the layers only the embedding lookup, the RoPE tables and the last-row slice remain.
  EXPECT_EQ(c["Embedding"], 1);
  EXPECT_EQ(c["RopeTable"], 1);
  int total = 0;
  for (auto& [op, n] : c) total += op == "Constant" ? 0 : n;
  EXPECT_EQ(total, 7 * layers + 2 /*final norm, lm_head*/ + 2 /*params*/ + 1 /*result*/ + 1 /*embedding*/ +
                       1 /*rope table*/ + 1 /*slice*/);
  // Each layer's ops, by the state variables and weights they use.
  for (int64_t l = 0; l < layers; ++l) {
    std::string p = "blk." + std::to_string(l) + ".";
    int attention = 0, qkv_rope = 0, residual = 0, swiglu = 0;
    for (auto& n : im->model->nodes()) {
      if (n->is(Op::Attention) && n->attr("k_variable").as_string() == "kv." + std::to_string(l) + ".k" && n->inputs.size() == 1) ++attention;
      if (!n->is(Op::FusedMatMul) || n->inputs[1].node->name.rfind(p, 0) != 0) continue;
      if (n->attr("rope").as_string() != "none") ++qkv_rope;
      if (n->attr("has_residual").as_bool()) ++residual;
      if (n->attr("activation").as_string() == "swiglu") ++swiglu;
    }
    EXPECT_EQ(attention, 1) << "layer " << l;
    EXPECT_EQ(qkv_rope, 1) << "layer " << l;
    EXPECT_EQ(residual, 2) << "layer " << l;
    EXPECT_EQ(swiglu, 1) << "layer " << l;
  }
  ASSERT_TRUE(verify(*im->model).ok());
}

TEST(LlmPipeline, Stories260KGgufLayersAreFused) {
  INGOT_MODEL_PATH(path, "stories260K.gguf");
  expect_fused_layers(path);
}

TEST(LlmPipeline, Stories260KHuggingFaceLayersAreFused) {
  INGOT_MODEL_PATH(path, "stories260K-hf");
  expect_fused_layers(path);
}

// The optimized graph generates the same ids as the imported one, logits within 1e-4, with an
// f32 and with an f16 KV cache (the fused Attention then stores and reads f16 itself).
void expect_optimized_matches_imported(const std::string& path, ElementType kv_type) {
  ImportOptions opts;
  opts.kv_type = kv_type;
  auto a = import_model(path, opts), b = import_model(path, opts);
  ASSERT_TRUE(a.ok() && b.ok());
  optimize(*b->model);
  auto c = op_counts(*b->model);
  EXPECT_EQ(c["Attention"], b->config.n_layers);
  EXPECT_EQ(c.count("Concat"), 0u);
  GreedyOptions go;
  go.max_new_tokens = 30;
  auto ra = generate_greedy(*a->model, {1, 274, 287, 269, 345, 400, 428}, go);
  auto rb = generate_greedy(*b->model, {1, 274, 287, 269, 345, 400, 428}, go);
  ASSERT_TRUE(ra.ok() && rb.ok()) << ra.message() << rb.message();
  EXPECT_EQ(ra->ids, rb->ids);
  double err = 0;
  for (size_t i = 0; i < ra->logits_after_prompt.size(); ++i)
    err = std::max(err, static_cast<double>(std::fabs(ra->logits_after_prompt[i] - rb->logits_after_prompt[i])));
  EXPECT_LT(err, 1e-4);
}

TEST(LlmPipeline, OptimizedGraphMatchesImported) {
  INGOT_MODEL_PATH(path, "stories260K.gguf");
  expect_optimized_matches_imported(path, ElementType::f32);
}

TEST(LlmPipeline, OptimizedGraphMatchesImportedWithF16Cache) {
  INGOT_MODEL_PATH(path, "stories260K.gguf");
  expect_optimized_matches_imported(path, ElementType::f16);
}

}  // namespace
}  // namespace ingot
