// The IR text format (printer and parser that round-trip exactly), JSON and Graphviz DOT export.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "ir/model.h"
#include "base/status.h"

namespace ingot {

struct PrintOptions {
  // Constants with at most this many elements (plain types only) are printed inline;
  // larger ones as type, shape and content hash. 0 summarizes all.
  int64_t inline_constant_limit = 16;
};

std::string print_model(const Model& m, const PrintOptions& opts = {});
// Parses the text format. Errors read "<source>:line:col: message".
StatusOr<std::unique_ptr<Model>> parse_model(std::string_view text, std::string_view source_name = "<input>");

std::string export_json(const Model& m, const PrintOptions& opts = {});  // nlohmann::json, 2-space indent
std::string export_dot(const Model& m);

}  // namespace ingot
