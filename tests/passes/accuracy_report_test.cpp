// The quantization accuracy report on the real stories260K model.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "frontend/importer.h"
#include "passes/quant/accuracy_report.h"
#include "passes/quant/quantize_weights.h"
#include "tests/common/models.h"

namespace ingot {
namespace {

std::vector<int64_t> calib_tokens() {
  std::vector<int64_t> t = {1};  // BOS, then a fixed spread over the 512-token vocabulary
  for (int64_t i = 0; i < 63; ++i) t.push_back(3 + (i * 37) % 500);
  return t;
}

StatusOr<AccuracyReport> report_for(const std::string& path, const std::string& mode, const std::string& act_quant) {
  ImportOptions ref_opts;
  ref_opts.all_logits = true;
  ImportOptions q_opts = ref_opts;
  q_opts.act_quant = act_quant;
  INGOT_ASSIGN_OR_RETURN(ImportedModel ref, import_model(path, ref_opts));
  INGOT_ASSIGN_OR_RETURN(ImportedModel q, import_model(path, q_opts));
  INGOT_ASSIGN_OR_RETURN(QuantRecipe r, QuantRecipe::parse(mode, {}));
  QuantizeWeightsPass pass(r);
  INGOT_RETURN_IF_ERROR(pass.run(*q.model).status());
  return measure_quantization_accuracy(*ref.model, *q.model, calib_tokens());
}

TEST(AccuracyReport, Q4_0ListsEveryQuantizedMatmulAndEndToEndNumbers) {
  INGOT_MODEL_PATH(path, "stories260K.gguf");
  auto rep = report_for(path, "q4_0", "none");
  ASSERT_TRUE(rep.ok()) << rep.message();
  // 7 matrices x 5 layers + output.weight (token_embd is only gathered, not multiplied).
  ASSERT_EQ(rep->matmuls.size(), 36u);
  for (const MatmulAccuracy& m : rep->matmuls) {
    if (m.quantized_type == "q4_0") {
      // 4-bit weights: about 6 dB per bit less the block-scale overhead; 15-35 dB is the
      // plausible band, and the output must still point the same way.
      EXPECT_GT(m.sqnr_db, 15) << m.weight;
      EXPECT_LT(m.sqnr_db, 35) << m.weight;
      EXPECT_GT(m.cosine, 0.98) << m.weight;
    } else if (m.quantized_type == "f16") {
      EXPECT_GT(m.sqnr_db, 60) << m.weight;  // 11-bit mantissa
    } else {
      EXPECT_EQ(m.quantized_type, "q8_0") << m.weight;
      EXPECT_GT(m.sqnr_db, 35) << m.weight;
    }
  }
  EXPECT_GT(rep->kl_mean, 0);
  EXPECT_GE(rep->kl_max, rep->kl_mean);
  EXPECT_GT(rep->top1_agreement, 0.5);
  EXPECT_LE(rep->top1_agreement, 1.0);
  EXPECT_GT(rep->ppl_reference, 1);
  EXPECT_GT(rep->ppl_quantized, 1);
  EXPECT_NE(rep->ppl_quantized, rep->ppl_reference);

  auto j = nlohmann::json::parse(rep->json());
  EXPECT_EQ(j["matmuls"].size(), 36u);
  EXPECT_EQ(j["end_to_end"]["predictions"], 63);
  EXPECT_NE(rep->table().find("blk.4.ffn_up.weight"), std::string::npos);
}

TEST(AccuracyReport, Q8_0IsCloserThanQ4_0) {
  INGOT_MODEL_PATH(path, "stories260K.gguf");
  auto q8 = report_for(path, "q8_0", "q8");
  auto q4 = report_for(path, "q4_0", "q8");
  ASSERT_TRUE(q8.ok() && q4.ok()) << q8.message() << q4.message();
  EXPECT_LT(q8->kl_mean, q4->kl_mean);
  EXPECT_LT(std::fabs(q8->ppl_quantized - q8->ppl_reference), std::fabs(q4->ppl_quantized - q4->ppl_reference));
}

TEST(AccuracyReport, UnquantizedModelHasNoMatmulsAndNoDivergence) {
  INGOT_MODEL_PATH(path, "stories260K.gguf");
  auto rep = report_for(path, "keep", "none");
  ASSERT_TRUE(rep.ok()) << rep.message();
  EXPECT_TRUE(rep->matmuls.empty());
  EXPECT_NEAR(rep->kl_mean, 0, 1e-12);
  EXPECT_EQ(rep->top1_agreement, 1.0);
  EXPECT_EQ(rep->ppl_quantized, rep->ppl_reference);
}

TEST(AccuracyReport, NeedsLogitsAtEveryPosition) {
  INGOT_MODEL_PATH(path, "stories260K.gguf");
  auto last_only = import_model(path);
  ASSERT_TRUE(last_only.ok());
  auto rep = measure_quantization_accuracy(*last_only->model, *last_only->model, calib_tokens());
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.message().find("all_logits"), std::string::npos) << rep.message();
}

}  // namespace
}  // namespace ingot
