// `ingotc viz` (a self-contained HTML viewer of a model or bundle) and `ingotc diff` (what
// differs between two models or bundles): docs/inspect.md.
#pragma once

#include <string>
#include <vector>

namespace ingot {

int cmd_viz(const std::vector<std::string>& args);
int cmd_diff(const std::vector<std::string>& args);

// The viewer's script and style sheet (tools/viz_assets.cpp).
extern const char* const kVizScript;
extern const char* const kVizStyle;

}  // namespace ingot
