// `ingotc compile` and the quantization options it shares with eval and dump.
#pragma once

#include <string>
#include <vector>

#include "frontend/importer.h"
#include "ir/model.h"
#include "base/status.h"

namespace ingot {

// --quant MODE, --quant-override PATTERN=TYPE (repeatable, or comma-separated),
// --act-quant auto|q8|ggml|off.
struct QuantCliOptions {
  std::string quant = "keep";
  std::vector<std::string> overrides;
  // "auto" (the default: 8-bit activations when the weights end up block-quantized, llama.cpp's
  // numerics and the fast kernels), "q8" or "none"; the CLI also accepts "off" for "none".
  std::string act_quant = "auto";
  bool quantizes() const { return quant != "keep" || !overrides.empty(); }
};

// The act_quant to import with: "q8" when the recipe turns weights into a block-quantized type,
// "none" when it turns every weight into floats, otherwise the request ("auto" lets the importer
// decide from the stored types).
std::string import_act_quant(const QuantCliOptions& o);

// Consumes one quantization option at args[i] (advancing i past its value); false if args[i] is
// not one. Sets *error on a missing or bad value.
bool parse_quant_option(const std::vector<std::string>& args, size_t& i, QuantCliOptions& o, std::string* error);

// Runs the weight quantization pass on an imported (unfused) model. With `report`, the per-weight
// table is appended to it.
Status apply_quantization(Model& m, const QuantCliOptions& o, std::string* report = nullptr);

int cmd_compile(const std::vector<std::string>& args);

}  // namespace ingot
