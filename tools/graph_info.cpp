#include "tools/graph_info.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <regex>
#include <set>

#include "ir/text.h"
#include "runtime/bundle.h"
#include "runtime/bundle_format.h"
#include "runtime/cpu_features.h"
#include "tools/compile_pipeline.h"
#include "tools/graph_kernels.h"

namespace ingot {
namespace {

std::string value_name(const Value& v) {
  return v.index == 0 ? v.node->name : v.node->name + ":" + std::to_string(v.index);
}

std::vector<ViewNode> view_nodes(const Model& m) {
  std::vector<ViewNode> out;
  auto order = m.topological_order();
  std::vector<Node*> nodes;
  if (order.ok()) nodes = *order;
  else
    for (auto& n : m.nodes()) nodes.push_back(n.get());
  out.reserve(nodes.size());
  for (Node* n : nodes) {
    ViewNode v;
    v.name = n->name;
    v.op = std::string(n->op_name());
    v.kind = n->kind();
    for (const Value& in : n->inputs) v.inputs.push_back(in.node ? value_name(in) : "?");
    for (const TensorType& t : n->outputs) v.outputs.push_back(t.str());
    for (const auto& [k, a] : n->attrs) v.attrs.emplace_back(k, a.str());
    if (n->is(Op::Constant)) {
      v.constant = true;
      v.const_elements = -1;
      if (!n->outputs.empty() && is_static(n->outputs[0].shape)) v.const_elements = num_elements(n->outputs[0].shape).value();
    }
    out.push_back(std::move(v));
  }
  return out;
}

int64_t type_bytes(const TensorType& t) {
  if (!is_static(t.shape)) return 0;
  const auto& info = type_info(t.type);
  const int64_t n = num_elements(t.shape).value();
  return (n + info.block_elems - 1) / info.block_elems * info.block_bytes;
}

// The layer number in a name: blk.N., layers.N., layer.N., kv.N. ; -1 when none.
int layer_in_name(const std::string& name) {
  static const std::regex re(R"((?:^|\.)(?:blk|layers|layer|h|kv)\.(\d+)(?:\.|$))");
  std::smatch m;
  if (!std::regex_search(name, m, re)) return -1;
  return std::stoi(m[1].str());
}

}  // namespace

bool is_bundle_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[8] = {};
  if (!f.read(magic, sizeof(magic))) return false;
  return std::memcmp(magic, bundle::kMagic, sizeof(magic)) == 0;
}

// Evidence first: a node that reads a constant named for layer N (directly or through one
// Convert/Reshape/Transpose), or whose attributes name a layer's state variable, is in layer N; a
// node that reads a large constant named for no layer (the embedding, the output norm) is outside.
// Other nodes take, in reverse topological order, the layer all their users agree on; and a node
// that reads a layer-N evidence node directly but whose users are in a later layer or outside (the
// residual Add that ends a layer) stays in layer N. The rest are outside.
int assign_layers(std::vector<ViewNode>& nodes) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < nodes.size(); ++i) index[nodes[i].name] = i;
  auto producer = [&](const std::string& in) -> long {
    auto it = index.find(in.substr(0, in.find(':')));
    return it == index.end() ? -1 : static_cast<long>(it->second);
  };
  constexpr int kNone = -1, kOutside = -2, kUnset = -3;
  std::vector<int> evidence(nodes.size(), kNone);
  int max_layer = -1;
  for (size_t i = 0; i < nodes.size(); ++i) {
    ViewNode& n = nodes[i];
    if (n.constant) {
      const int l = layer_in_name(n.name);
      if (l >= 0) evidence[i] = l;
      else if (n.const_elements != 1) evidence[i] = kOutside;  // a weight of no layer; scalars are shared
      continue;
    }
    int l = kNone;
    for (auto& [k, v] : n.attrs)
      if (k.find("variable") != std::string::npos) l = std::max(l, layer_in_name(v.substr(v.find('"') == 0 ? 1 : 0)));
    for (const std::string& in : n.inputs) {
      long p = producer(in);
      if (p < 0) continue;
      // Through one view or conversion of a constant.
      const Op pk = nodes[size_t(p)].kind;
      if (!nodes[size_t(p)].constant && (pk == Op::Convert || pk == Op::Reshape || pk == Op::Transpose) &&
          !nodes[size_t(p)].inputs.empty()) {
        long q = producer(nodes[size_t(p)].inputs[0]);
        if (q >= 0 && nodes[size_t(q)].constant) p = q;
      }
      if (!nodes[size_t(p)].constant) continue;
      if (evidence[size_t(p)] >= 0) l = std::max(l, evidence[size_t(p)]);
      else if (evidence[size_t(p)] == kOutside && l == kNone) l = kOutside;
    }
    evidence[i] = l;
  }
  for (int e : evidence) max_layer = std::max(max_layer, e);
  if (max_layer < 1) {  // one layer or none: nothing to fold
    for (auto& n : nodes) n.layer = -1;
    return 0;
  }
  std::vector<std::vector<size_t>> users(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i)
    for (const std::string& in : nodes[i].inputs)
      if (long p = producer(in); p >= 0) users[size_t(p)].push_back(i);
  std::vector<int> layer(nodes.size(), kUnset);
  for (size_t r = nodes.size(); r-- > 0;) {
    if (evidence[r] != kNone) {
      layer[r] = evidence[r];
      continue;
    }
    int agreed = kUnset;
    for (size_t u : users[r]) {
      const int lu = layer[u] == kUnset ? kOutside : layer[u];
      if (agreed == kUnset) agreed = lu;
      else if (agreed != lu) agreed = kOutside;
    }
    layer[r] = agreed == kUnset ? kOutside : agreed;
  }
  // The node that ends a layer: it reads a node with evidence of layer N and its users are later.
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (evidence[i] != kNone || nodes[i].constant) continue;
    int from = -1;
    for (const std::string& in : nodes[i].inputs)
      if (long p = producer(in); p >= 0 && evidence[size_t(p)] >= 0 && !nodes[size_t(p)].constant)
        from = std::max(from, evidence[size_t(p)]);
    if (from >= 0 && (layer[i] < 0 || layer[i] > from)) layer[i] = from;
  }
  // Constants of no layer (shared scalars) stay outside; so does everything unassigned.
  for (size_t i = 0; i < nodes.size(); ++i) nodes[i].layer = layer[i] >= 0 ? layer[i] : -1;
  // A layer that is the first layer's nodes followed by more (the last layer followed by the
  // slice of the last position, which reads it and feeds the output norm) keeps the first layer's
  // nodes; the rest are outside, so that every layer has the same nodes in the same order.
  std::vector<std::vector<size_t>> members(static_cast<size_t>(max_layer + 1));
  for (size_t i = 0; i < nodes.size(); ++i)
    if (!nodes[i].constant && nodes[i].layer >= 0) members[size_t(nodes[i].layer)].push_back(i);
  for (size_t l = 1; l < members.size(); ++l) {
    const auto& first = members[0];
    auto& these = members[l];
    if (these.size() <= first.size()) continue;
    bool prefix = true;
    for (size_t k = 0; k < first.size() && prefix; ++k) prefix = nodes[these[k]].kind == nodes[first[k]].kind;
    if (!prefix) continue;
    for (size_t k = first.size(); k < these.size(); ++k) nodes[these[k]].layer = -1;
  }
  return max_layer + 1;
}

namespace {

StatusOr<GraphInfo> load_bundle_info(const std::string& path) {
  BundleOpenOptions bo;
  bo.check_cpu = false;
  INGOT_ASSIGN_OR_RETURN(std::unique_ptr<Bundle> b, Bundle::open(path, bo));
  const pb::Manifest& m = b->manifest();
  GraphInfo g;
  g.source = path;
  g.kind = "bundle";
  g.model_name = m.model_name();
  if (m.graph_text().empty()) return Status::Error(path + ": the bundle's manifest holds no graph text");
  auto model = parse_model(m.graph_text(), path + " (manifest graph_text)");
  if (!model.ok()) return model.status().with_context(path + ": cannot read the bundle's graph");
  g.nodes = view_nodes(**model);
  g.layers = assign_layers(g.nodes);
  for (const pb::Tensor& t : m.tensors()) {
    WeightInfo w;
    w.type = t.type();
    w.layout = t.layout();
    w.kernel = t.kernel();
    w.shape.assign(t.shape().begin(), t.shape().end());
    w.bytes = static_cast<int64_t>(t.size());
    std::string key = t.name();
    if (g.weights.count(key)) key += "@" + t.layout();  // a second copy (packed for a kernel)
    g.weights[key] = w;
  }
  for (const pb::Kernel& k : m.kernels()) {
    KernelInfo ki{k.symbol(), k.kind(), k.description()};
    g.kernels.push_back(ki);
    for (const std::string& n : k.nodes()) g.kernel_of[n] = ki;
  }
  for (const KernelSet& ks : b->kernel_sets()) g.tiers.push_back(ks.tier);
  if (b->chosen_kernel_set() >= 0) g.host_tier = b->tier();
  const pb::MemoryPlan& mp = m.memory_plan();
  g.arena_bytes = mp.arena_bytes();
  g.state_bytes = mp.state_bytes();
  g.max_batch = mp.max_batch();
  g.max_context = mp.max_context();
  for (const auto& buf : mp.buffers()) {
    std::string v = buf.value();
    if (v.size() > 2 && v.compare(v.size() - 2, 2, ":0") == 0) v.resize(v.size() - 2);
    g.arena[v] = ArenaInfo{buf.offset(), buf.bytes(), buf.first_step(), buf.last_step(), buf.in_place_of(), buf.view()};
  }
  const pb::Provenance& p = m.provenance();
  g.provenance.emplace_back("compiler", p.compiler_version());
  for (const auto& s : p.sources())
    g.provenance.emplace_back("source " + s.name(), std::to_string(s.bytes()) + " bytes, sha256 " + s.sha256());
  std::string passes;
  for (const auto& s : p.passes()) passes += (passes.empty() ? "" : ",") + s;
  g.provenance.emplace_back("passes", passes);
  g.provenance.emplace_back("quantization", p.quantization());
  g.provenance.emplace_back("act_quant", p.act_quant());
  g.provenance.emplace_back("kv_type", p.kv_type());
  std::string tiers;
  for (auto& t : g.tiers) tiers += (tiers.empty() ? "" : ",") + t;
  g.provenance.emplace_back("tiers", tiers);
  g.note = "A bundle keeps only its optimized graph: the per-pass timeline needs the model (ingotc viz MODEL). Passes run: " +
           passes + ".";
  return g;
}

StatusOr<GraphInfo> load_model_info(const std::string& path, const GraphInfoOptions& options) {
  GraphInfo g;
  g.source = path;
  g.kind = "model";
  PhaseOptions po;
  if (options.steps) {
    po.on_step = [&g](const std::string& phase, const std::string& step, const PassStats& st, const Model& m) {
      StepInfo s;
      s.phase = phase;
      s.name = step;
      s.ms = st.ms;
      s.nodes_before = st.nodes_before;
      s.nodes_after = st.nodes_after;
      s.added = st.added_nodes;
      s.removed = st.removed_nodes;
      s.changed = st.changed_nodes;
      if (!s.added.empty() || !s.removed.empty() || !s.changed.empty()) {
        s.snapshot = static_cast<int>(g.snapshots.size());
        g.snapshots.push_back(view_nodes(m));
      }
      g.steps.push_back(std::move(s));
    };
  }
  CompileState state;
  state.path = path;
  state.quant = options.quant;
  state.import.act_quant = import_act_quant(options.quant);
  state.import.kernels = true;  // "auto": the numerics the kernels implement, as ingotc compile
  CompilePipeline pipeline(po);
  INGOT_RETURN_IF_ERROR(pipeline.run(state, "plan-memory").status());
  const Model& m = state.model();
  g.model_name = m.name();
  g.nodes = view_nodes(m);
  g.layers = assign_layers(g.nodes);
  for (auto& snap : g.snapshots) assign_layers(snap);
  for (auto& n : m.nodes()) {
    if (!n->is(Op::Constant) || n->outputs.empty()) continue;
    WeightInfo w;
    w.type = std::string(type_name(n->outputs[0].type));
    w.layout = "ggml";
    if (is_static(n->outputs[0].shape))
      for (const Dim& d : n->outputs[0].shape) w.shape.push_back(d.value());
    w.bytes = n->constant ? static_cast<int64_t>(n->constant->nbytes()) : type_bytes(n->outputs[0]);
    g.weights[n->name] = w;
  }
  plan_node_kernels(m, &g.kernel_of, &g.kernels);
  if (const CpuTier* t = best_cpu_tier(host_cpu_features())) g.host_tier = t->name;
  if (state.plan) {
    g.arena_bytes = state.plan->arena_bytes;
    g.state_bytes = state.plan->state_bytes;
    g.max_batch = state.plan->max_batch;
    g.max_context = state.plan->max_context;
    for (const auto& b : state.plan->buffers)
      g.arena[b.output == 0 ? b.node : b.node + ":" + std::to_string(b.output)] =
          ArenaInfo{b.offset, b.bytes, b.first_step, b.last_step, b.in_place_of, b.view};
  }
  g.provenance.emplace_back("source", path);
  std::string passes;
  for (const auto& s : state.passes) passes += (passes.empty() ? "" : ",") + s;
  g.provenance.emplace_back("passes", passes);
  g.provenance.emplace_back("quantization", options.quant.quant);
  g.provenance.emplace_back("act_quant", state.im.config.act_quant);
  g.note = "Compiled here up to plan-memory: kernels are the registry's choice for each node (not generated); a bundle "
           "picks its CPU tier at run time (this host's best: " + g.host_tier + ").";
  return g;
}

}  // namespace

StatusOr<GraphInfo> load_graph_info(const std::string& path, const GraphInfoOptions& options) {
  if (is_bundle_file(path)) return load_bundle_info(path);
  return load_model_info(path, options);
}

}  // namespace ingot
