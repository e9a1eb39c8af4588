// What `ingotc viz` and `ingotc diff` show of a model or a bundle: the graph's nodes (with the
// decoder layer each belongs to), its weights, the kernel of each node, the memory plan, the
// provenance and, for a model compiled here, the per-step snapshots of the compile pipeline.
//
// A MODEL (GGUF, Hugging Face folder, IR text, demo) runs the compiler's graph phases (import,
// quantize, optimize, plan-memory) with a snapshot after every phase and pass; kernels are the
// registry's choice for each node (no code generated). A BUNDLE is read from its manifest: the
// optimized graph text, the kernels compiled, their CPU tiers, the memory plan and provenance.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "ir/op_kind.h"
#include "tools/compile_command.h"
#include "tools/graph_kernels.h"

namespace ingot {

struct ViewNode {
  std::string name, op;
  Op kind{};
  std::vector<std::string> inputs;   // "node" or "node:1"
  std::vector<std::string> outputs;  // types, "f32[tokens, 64]"
  std::vector<std::pair<std::string, std::string>> attrs;
  bool constant = false;
  int64_t const_elements = 0;        // constants: elements (-1 unknown)
  int layer = -1;                    // decoder layer; -1: outside the layers
};

struct WeightInfo {
  std::string type, layout, kernel;  // layout and kernel: bundles ("ggml", "matmul-packed")
  std::vector<int64_t> shape;
  int64_t bytes = 0;
};

struct ArenaInfo {
  int64_t offset = 0, bytes = 0;
  int first_step = 0, last_step = 0;
  std::string in_place_of;
  bool view = false;
};

// One phase or pass of the compile pipeline, as recorded while it ran.
struct StepInfo {
  std::string phase, name;
  double ms = 0;
  int nodes_before = 0, nodes_after = 0;
  std::vector<std::string> added, removed, changed;  // node names, every layer
  int snapshot = -1;  // index into GraphInfo::snapshots of the graph after this step; -1: unchanged
};

struct GraphInfo {
  std::string source;  // the path given
  std::string kind;    // "model" or "bundle"
  std::string model_name;
  std::vector<ViewNode> nodes;  // the final graph, topological order
  int layers = 0;               // decoder layers found (0: none)
  std::map<std::string, WeightInfo> weights;       // by constant name (bundles: name, or name@layout)
  std::map<std::string, KernelInfo> kernel_of;     // by node name
  std::vector<KernelInfo> kernels;                 // bundles: every kernel symbol
  std::vector<std::string> tiers;                  // kernel sets (bundles)
  std::string host_tier;                           // the tier this host runs (bundles) or would compile natively
  std::map<std::string, ArenaInfo> arena;          // by value, "node" or "node:1"
  int64_t arena_bytes = 0, state_bytes = 0, max_batch = 0, max_context = 0;
  std::vector<std::pair<std::string, std::string>> provenance;
  std::vector<StepInfo> steps;
  std::vector<std::vector<ViewNode>> snapshots;
  std::string note;  // e.g. why a bundle has no per-pass steps
};

struct GraphInfoOptions {
  QuantCliOptions quant;
  bool steps = true;  // models: keep the per-step snapshots
};

// Reads a bundle (by its magic, whatever its name) or compiles a model's graph phases.
StatusOr<GraphInfo> load_graph_info(const std::string& path, const GraphInfoOptions& options);

// Assigns ViewNode::layer from names (blk.N., layers.N., kv.N. in constant and state-variable
// names) and the graph's edges; returns the number of layers (0 when none is found).
int assign_layers(std::vector<ViewNode>& nodes);

// True when the file starts with a bundle's magic.
bool is_bundle_file(const std::string& path);

}  // namespace ingot
