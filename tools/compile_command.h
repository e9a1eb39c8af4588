// `ingotc compile` and the quantization options it shares with eval and dump.
#pragma once

#include <string>
#include <vector>

#include "frontend/importer.h"
#include "ir/model.h"
#include "ir/status.h"

namespace ingot {

// --quant MODE, --quant-override PATTERN=TYPE (repeatable, or comma-separated), --act-quant q8|off.
struct QuantCliOptions {
  std::string quant = "keep";
  std::vector<std::string> overrides;
  std::string act_quant = "none";  // "none" or "q8"; the CLI also accepts "off" for "none"
  bool quantizes() const { return quant != "keep" || !overrides.empty(); }
};

// Consumes one quantization option at args[i] (advancing i past its value); false if args[i] is
// not one. Sets *error on a missing or bad value.
bool parse_quant_option(const std::vector<std::string>& args, size_t& i, QuantCliOptions& o, std::string* error);

// Runs the weight quantization pass on an imported (unfused) model. With `report`, the per-weight
// table is appended to it.
Status apply_quantization(Model& m, const QuantCliOptions& o, std::string* report = nullptr);

int cmd_compile(const std::vector<std::string>& args);

}  // namespace ingot
