// Weight quantization: the recipe (a mode, llama.cpp-style rules, per-tensor overrides) and the
// pass that applies it to a model's weight constants.
//
//   INGOT_ASSIGN_OR_RETURN(QuantRecipe r, QuantRecipe::parse("q4_0", {"ffn_down=q8_0"}));
//   QuantizeWeightsPass pass(r);
//   INGOT_RETURN_IF_ERROR(pass.run(model).status());
//   std::cout << pass.report();
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "ir/element_type.h"
#include "ir/tensor.h"
#include "passes/pass_manager.h"

namespace ingot {

// A weight type the recipe can ask for: keep, or f32 f16 q8_0 q4_0 q4_k q5_0 q5_1 q5_k q6_k.
struct QuantTarget {
  bool keep = true;
  ElementType type = ElementType::f32;
  std::string str() const;
  static StatusOr<QuantTarget> parse(std::string_view s);
};

struct QuantOverride {
  std::string pattern;  // a glob on tensor names; see glob_matches_tensor
  QuantTarget target;
};

struct QuantRecipe {
  QuantTarget mode;                     // the default for every weight ("keep": as stored)
  // "q4_k_m" or "q5_k_m": llama-quantize's mixture of that name (per-tensor types chosen by its
  // rules, its fallback for rows that are not whole super-blocks); mode is then q4_k or q5_k.
  std::string mixture;
  std::vector<QuantOverride> overrides;  // in order; the last one that matches wins
  // "q4_0" (or "q4_k_m") and {"ffn_down=q8_0", "blk.0.*=f16"}; an error names the bad item.
  static StatusOr<QuantRecipe> parse(std::string_view mode, const std::vector<std::string>& overrides);
  bool is_keep_all() const { return mode.keep && overrides.empty(); }
  std::string str() const;  // "q4_0, ffn_down=q8_0"
};

// Glob match (`*` any run, `?` one char, `[...]` a class) of the whole tensor name. A pattern
// without glob characters also matches any name that contains it as a run of whole
// dot-separated parts, so "ffn_down" selects "blk.3.ffn_down.weight".
bool glob_matches_tensor(std::string_view pattern, std::string_view name);

// What happened to one weight.
struct QuantDecision {
  std::string tensor;
  std::vector<int64_t> shape;
  ElementType from = ElementType::f32, to = ElementType::f32;
  std::string rule;  // why this target: "mode q4_0", "override ffn_down=q8_0", "4-bit rule: ..."
  std::string note;  // why the result differs from the target, if it does
  int64_t bytes_before = 0, bytes_after = 0;
};

// Converts a float tensor [rows, K] (f32, f16, bf16) to f32, f16 or a quantized type, row by
// row, in parallel over rows. Asserts a float source and whole blocks per row.
Tensor convert_weight(const Tensor& t, ElementType to);

// Applies a recipe to every weight constant: a rank-2 Constant that feeds a matmul's weight
// operand or an embedding Gather (directly or through Convert). Float weights are converted to
// their target type; already-quantized weights pass through untouched, never dequantized and
// re-quantized. Rows whose length is not a multiple of the target's block stay in a float type
// (f16, or their own float type if that is narrower) with a note. Users that need f32 (MatMul,
// Gather) get a Convert inserted.
class QuantizeWeightsPass : public Pass {
 public:
  explicit QuantizeWeightsPass(QuantRecipe recipe) : recipe_(std::move(recipe)) {}
  const char* name() const override { return "quantize-weights"; }
  StatusOr<bool> run(Model& m) override;

  const std::vector<QuantDecision>& decisions() const { return decisions_; }
  // Called after each converted weight with the source bytes converted so far and in all (a
  // billion weights take a minute to quantize to q4_k).
  void set_progress(std::function<void(int64_t done, int64_t total)> f) { progress_ = std::move(f); }
  // One line per weight (name, shape, from -> to, rule, note) and the size before and after.
  std::string report() const;

 private:
  QuantRecipe recipe_;
  std::vector<QuantDecision> decisions_;
  std::function<void(int64_t, int64_t)> progress_;
};

}  // namespace ingot
