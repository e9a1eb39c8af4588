#include "passes/fusion/fusion_passes.h"

#include "passes/fusion/llm_fusions.h"

namespace ingot::fusion {
namespace {

// A pass that is one function over the model.
template <StatusOr<bool> (*Fn)(Model&)>
class FunctionPass : public Pass {
 public:
  explicit FunctionPass(const char* name) : name_(name) {}
  const char* name() const override { return name_; }
  StatusOr<bool> run(Model& m) override { return Fn(m); }

 private:
  const char* name_;
};

#define INGOT_FUSION(NAME, FN, SUMMARY) \
  {NAME, SUMMARY, [] { return std::unique_ptr<Pass>(new FunctionPass<FN>(NAME)); }}

const PassInfo kFusions[] = {
    // In pipeline order: the primitive patterns first, then projections and their epilogues.
    INGOT_FUSION("fuse-rms-norm", fuse_rms_norm, "x / sqrt(mean(x^2) + eps) * w -> RMSNorm"),
    INGOT_FUSION("fuse-swiglu", fuse_swiglu, "(g * sigmoid(g)) * u -> SwiGLU"),
    INGOT_FUSION("fuse-rope", fuse_rope, "interleaved or rotate-half rotations -> RoPE"),
    INGOT_FUSION("fuse-attention", fuse_attention, "KV cache read/append/write + causal softmax attention -> stateful Attention"),
    INGOT_FUSION("matmul-to-fused", matmul_to_fused, "MatMul with a constant (converted) weight, WeightMatMul -> FusedMatMul"),
    INGOT_FUSION("fuse-embedding", fuse_embedding, "Gather of a constant (converted) table -> Embedding"),
    INGOT_FUSION("fuse-rope-table", fuse_rope_table, "positions * inverse frequencies -> Cos, Sin -> RopeTable"),
    INGOT_FUSION("fuse-bias", fuse_bias, "FusedMatMul + constant bias -> bias epilogue"),
    INGOT_FUSION("merge-parallel-matmuls", merge_parallel_matmuls, "projections of one input (QKV, gate/up) -> one matmul, weights concatenated lazily"),
    INGOT_FUSION("fuse-rope-into-matmul", fuse_rope_into_matmul, "RoPE of a projection's q and k heads -> RoPE epilogue"),
    INGOT_FUSION("pack-attention", pack_attention, "Attention of q/k/v views of one projection -> packed Attention"),
    INGOT_FUSION("fuse-swiglu-into-matmul", fuse_swiglu_into_matmul, "SwiGLU of a projection's halves -> SwiGLU epilogue"),
    INGOT_FUSION("fuse-residual", fuse_residual, "x + FusedMatMul -> residual epilogue"),
    INGOT_FUSION("last-position-first", last_position_first, "the final norm on the last position only"),
};
#undef INGOT_FUSION

}  // namespace

std::span<const PassInfo> fusion_passes() { return kFusions; }

std::vector<std::string> fusion_pipeline() {
  std::vector<std::string> names;
  for (const PassInfo& p : kFusions) names.push_back(p.name);
  return names;
}

}  // namespace ingot::fusion
