#include "tools/viz_command.h"

#include <graphviz/cgraph.h>
#include <graphviz/gvc.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "frontend/hf_config.h"
#include "runtime/atomic_file.h"
#include "tools/graph_info.h"
#include "tools/ingotc_cli.h"

namespace ingot {
namespace {

using cli::fail;
using cli::option_value;
using cli::usage_error;
using json = nlohmann::json;

// ---------------------------------------------------------------- layout with Graphviz

bool is_fused_op(Op op) {
  static const std::set<Op> fused = {Op::RMSNorm, Op::RoPE,      Op::SwiGLU, Op::FusedMatMul, Op::Attention,
                                     Op::Embedding, Op::RopeTable, Op::GeGLU, Op::WeightMatMul};
  return fused.count(op) != 0;
}

std::string producer_name(const std::string& input) { return input.substr(0, input.find(':')); }

// "blk.3.attn_q.weight.merged" -> "attn_q.weight.merged"
std::string short_weight(const std::string& name) {
  if (name.rfind("blk.", 0) == 0) {
    size_t dot = name.find('.', 4);
    if (dot != std::string::npos) return name.substr(dot + 1);
  }
  return name;
}

// One drawn view: which nodes it shows and their ids in the SVG.
struct ViewSpec {
  bool folded = false;
  int layers = 0;
};

class Graphviz {
 public:
  Graphviz() : gvc_(gvContext()) {}
  ~Graphviz() { gvFreeContext(gvc_); }
  bool ok() const { return gvc_ != nullptr; }

  // Lays out `nodes` (the final graph or a snapshot; constants are not drawn, their names label
  // the nodes that read them) and returns the SVG. Node k of `nodes` gets the SVG id "n<k>"; the
  // folded block "fold", the layer cluster "clust_layer".
  StatusOr<std::string> render(const std::vector<ViewNode>& nodes, const ViewSpec& spec) {
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < nodes.size(); ++i) index[nodes[i].name] = i;
    // Layer k's nodes in order: a node of layer k>0 is drawn as its counterpart in layer 0.
    std::vector<std::vector<size_t>> layer_nodes(static_cast<size_t>(std::max(spec.layers, 0)));
    std::vector<long> pos_in_layer(nodes.size(), -1);
    for (size_t i = 0; i < nodes.size(); ++i)
      if (!nodes[i].constant && nodes[i].layer >= 0 && nodes[i].layer < spec.layers) {
        pos_in_layer[i] = static_cast<long>(layer_nodes[size_t(nodes[i].layer)].size());
        layer_nodes[size_t(nodes[i].layer)].push_back(i);
      }
    auto drawn_as = [&](size_t i) -> std::string {  // the SVG id node i is drawn as, or ""
      const ViewNode& n = nodes[i];
      if (n.constant) return "";
      if (n.layer < 0 || spec.layers == 0) return "n" + std::to_string(i);
      if (spec.folded) return "fold";
      if (n.layer == 0) return "n" + std::to_string(i);
      const auto& l0 = layer_nodes[0];
      if (pos_in_layer[i] >= 0 && size_t(pos_in_layer[i]) < l0.size()) return "n" + std::to_string(l0[size_t(pos_in_layer[i])]);
      return "";
    };

    std::lock_guard<std::mutex> lock(mu_);
    Agraph_t* g = agopen(const_cast<char*>("g"), Agdirected, nullptr);
    auto gset = [&](const char* k, const char* v) { agattr(g, AGRAPH, const_cast<char*>(k), const_cast<char*>(v)); };
    gset("rankdir", "TB");
    gset("nodesep", "0.25");
    gset("ranksep", "0.35");
    gset("bgcolor", "transparent");
    agattr(g, AGNODE, const_cast<char*>("shape"), const_cast<char*>("box"));
    agattr(g, AGNODE, const_cast<char*>("style"), const_cast<char*>("rounded,filled"));
    agattr(g, AGNODE, const_cast<char*>("fillcolor"), const_cast<char*>("#ffffff"));
    agattr(g, AGNODE, const_cast<char*>("color"), const_cast<char*>("#555555"));
    agattr(g, AGNODE, const_cast<char*>("fontname"), const_cast<char*>("Helvetica"));
    agattr(g, AGNODE, const_cast<char*>("fontsize"), const_cast<char*>("10"));
    agattr(g, AGNODE, const_cast<char*>("label"), const_cast<char*>(""));
    agattr(g, AGNODE, const_cast<char*>("id"), const_cast<char*>(""));
    agattr(g, AGNODE, const_cast<char*>("tooltip"), const_cast<char*>(""));
    agattr(g, AGNODE, const_cast<char*>("penwidth"), const_cast<char*>("1"));
    agattr(g, AGEDGE, const_cast<char*>("color"), const_cast<char*>("#888888"));
    agattr(g, AGEDGE, const_cast<char*>("arrowsize"), const_cast<char*>("0.6"));
    agattr(g, AGEDGE, const_cast<char*>("style"), const_cast<char*>("solid"));
    agattr(g, AGEDGE, const_cast<char*>("id"), const_cast<char*>(""));
    agattr(g, AGRAPH, const_cast<char*>("label"), const_cast<char*>(""));
    agattr(g, AGRAPH, const_cast<char*>("id"), const_cast<char*>(""));
    agattr(g, AGRAPH, const_cast<char*>("style"), const_cast<char*>(""));
    agattr(g, AGRAPH, const_cast<char*>("color"), const_cast<char*>("black"));
    agattr(g, AGRAPH, const_cast<char*>("fontname"), const_cast<char*>("Helvetica"));
    agattr(g, AGRAPH, const_cast<char*>("fontsize"), const_cast<char*>("12"));

    Agraph_t* cluster = nullptr;
    if (spec.layers > 0 && !spec.folded) {
      cluster = agsubg(g, const_cast<char*>("cluster_layer"), 1);
      const std::string label = "decoder layer x" + std::to_string(spec.layers) + " (layer 0 shown)";
      agset(cluster, const_cast<char*>("label"), const_cast<char*>(label.c_str()));
      agset(cluster, const_cast<char*>("id"), const_cast<char*>("clust_layer"));
      agset(cluster, const_cast<char*>("style"), const_cast<char*>("rounded,dashed"));
      agset(cluster, const_cast<char*>("color"), const_cast<char*>("#3465a4"));
    }
    std::map<std::string, Agnode_t*> made;
    auto make = [&](const std::string& id, size_t i) -> Agnode_t* {
      if (auto it = made.find(id); it != made.end()) return it->second;
      Agraph_t* where = g;
      Agnode_t* an = nullptr;
      if (id == "fold") {
        an = agnode(g, const_cast<char*>("fold"), 1);
        const std::string label = "decoder layer\nx" + std::to_string(spec.layers);
        agset(an, const_cast<char*>("label"), const_cast<char*>(label.c_str()));
        agset(an, const_cast<char*>("fillcolor"), const_cast<char*>("#cfe0f5"));
        agset(an, const_cast<char*>("color"), const_cast<char*>("#3465a4"));
        agset(an, const_cast<char*>("penwidth"), const_cast<char*>("2"));
        agset(an, const_cast<char*>("fontsize"), const_cast<char*>("14"));
        agset(an, const_cast<char*>("tooltip"), const_cast<char*>("click to expand"));
      } else {
        const ViewNode& n = nodes[i];
        if (cluster && n.layer == 0) where = cluster;
        an = agnode(where, const_cast<char*>(id.c_str()), 1);
        // Second line: the weight it reads (third: its type and shape), else its output type.
        std::string second, third;
        for (const std::string& in : n.inputs)
          if (auto it = index.find(producer_name(in)); it != index.end() && nodes[it->second].constant &&
                                                      nodes[it->second].const_elements != 1) {
            second = short_weight(nodes[it->second].name);
            if (!nodes[it->second].outputs.empty()) third = nodes[it->second].outputs[0];
            break;
          }
        if (second.empty() && !n.outputs.empty()) second = n.outputs[0];
        if (second.size() > 28) second = second.substr(0, 27) + "~";
        if (third.size() > 28) third = third.substr(0, 27) + "~";
        const std::string label = n.op + "\n" + second + (third.empty() ? "" : "\n" + third);
        agset(an, const_cast<char*>("label"), const_cast<char*>(label.c_str()));
        agset(an, const_cast<char*>("tooltip"), const_cast<char*>(n.name.c_str()));
        if (is_fused_op(n.kind)) agset(an, const_cast<char*>("fillcolor"), const_cast<char*>("#dbeafc"));
        else if (n.kind == Op::Parameter || n.kind == Op::Result) agset(an, const_cast<char*>("fillcolor"), const_cast<char*>("#eeeeee"));
      }
      agset(an, const_cast<char*>("id"), const_cast<char*>(id.c_str()));
      made[id] = an;
      return an;
    };
    std::set<std::pair<std::string, std::string>> edges;
    for (size_t i = 0; i < nodes.size(); ++i) {
      const std::string to = drawn_as(i);
      if (to.empty()) continue;
      if (to != "fold" && to != "n" + std::to_string(i)) continue;  // drawn by its layer-0 counterpart
      Agnode_t* dst = make(to, i);
      for (const std::string& in : nodes[i].inputs) {
        auto it = index.find(producer_name(in));
        if (it == index.end()) continue;
        const std::string from = drawn_as(it->second);
        if (from.empty() || from == to) continue;
        if (!edges.insert({from, to}).second) continue;
        Agnode_t* src = make(from, it->second);
        Agedge_t* e = agedge(g, src, dst, nullptr, 1);
        // An edge from a later layer, drawn from its layer-0 counterpart (the last layer into the
        // output, a layer into the next) is dashed.
        if (nodes[it->second].layer > 0 && !spec.folded)
          agset(e, const_cast<char*>("style"), const_cast<char*>("dashed"));
      }
    }
    if (gvLayout(gvc_, g, "dot") != 0) {
      agclose(g);
      return Status::Error("graphviz: the dot layout failed");
    }
    char* data = nullptr;
    unsigned int len = 0;
    const int rc = gvRenderData(gvc_, g, "svg", &data, &len);
    std::string svg = rc == 0 && data ? std::string(data, len) : std::string();
    if (data) gvFreeRenderData(data);
    gvFreeLayout(gvc_, g);
    agclose(g);
    if (rc != 0 || svg.empty()) return Status::Error("graphviz: rendering SVG failed");
    // Keep the <svg> element only (no XML prolog, doctype or comments).
    if (size_t at = svg.find("<svg"); at != std::string::npos) svg = svg.substr(at);
    std::string out;
    out.reserve(svg.size());
    for (size_t i = 0; i < svg.size();) {
      if (svg.compare(i, 4, "<!--") == 0) {
        size_t end = svg.find("-->", i);
        i = end == std::string::npos ? svg.size() : end + 3;
        while (i < svg.size() && svg[i] == '\n') ++i;
        continue;
      }
      out += svg[i++];
    }
    return out;
  }

 private:
  GVC_t* gvc_;
  std::mutex mu_;
};

// ---------------------------------------------------------------- the page's data

json node_json(const ViewNode& n) {
  json j = {{"n", n.name}, {"o", n.op}, {"l", n.layer}};
  if (!n.inputs.empty()) j["i"] = n.inputs;
  if (!n.outputs.empty()) j["t"] = n.outputs;
  if (!n.attrs.empty()) {
    json a = json::array();
    for (auto& [k, v] : n.attrs) a.push_back({k, v});
    j["a"] = a;
  }
  if (n.constant) j["c"] = 1;
  return j;
}

// A snapshot's node table, limited to what its view draws (outside nodes and layer 0, and the
// constants they read), so that the page stays small for deep models.
json snapshot_nodes_json(const std::vector<ViewNode>& nodes) {
  json out = json::array();
  std::set<std::string> wanted;
  for (const ViewNode& n : nodes)
    if (!n.constant && n.layer <= 0)
      for (const std::string& in : n.inputs) wanted.insert(producer_name(in));
  for (const ViewNode& n : nodes) {
    if (n.layer > 0 || (n.constant && !wanted.count(n.name))) {
      out.push_back(nullptr);  // keeps indices equal to the SVG's n<k> ids
      continue;
    }
    out.push_back(node_json(n));
  }
  return out;
}

std::string escape_script(const std::string& s) {
  // Inside <script>, "</" must not appear; JSON allows "<\/".
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '<' && i + 1 < s.size() && (s[i + 1] == '/' || s[i + 1] == '!')) {
      out += "\\u003c";
      continue;
    }
    out += s[i];
  }
  return out;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

StatusOr<json> read_json_file(const std::string& path, const char* what) {
  INGOT_ASSIGN_OR_RETURN(std::string text, hf::read_file(path));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Error(path + ": not a JSON object (expected " + what + ")");
  return j;
}

}  // namespace

// Shared with tests of the page: every view's SVG and the data, one HTML file.
StatusOr<std::string> viz_page(const GraphInfo& g, const json& accuracy, const json& profile) {
  Graphviz gv;
  if (!gv.ok()) return Status::Error("graphviz: cannot create a context (is libgvc's plugin configuration installed?)");
  json views = json::object();
  INGOT_ASSIGN_OR_RETURN(std::string expanded, gv.render(g.nodes, ViewSpec{false, g.layers}));
  views["expanded"] = expanded;
  if (g.layers > 0) {
    INGOT_ASSIGN_OR_RETURN(std::string folded, gv.render(g.nodes, ViewSpec{true, g.layers}));
    views["folded"] = folded;
  }
  json snaps = json::array();
  for (size_t s = 0; s < g.snapshots.size(); ++s) {
    int layers = 0;
    for (const ViewNode& n : g.snapshots[s]) layers = std::max(layers, n.layer + 1);
    INGOT_ASSIGN_OR_RETURN(std::string svg, gv.render(g.snapshots[s], ViewSpec{false, layers}));
    snaps.push_back({{"svg", svg}, {"nodes", snapshot_nodes_json(g.snapshots[s])}, {"layers", layers}});
  }
  json data;
  data["meta"] = {{"source", g.source},       {"kind", g.kind},         {"model", g.model_name},
                  {"layers", g.layers},       {"tiers", g.tiers},       {"host_tier", g.host_tier},
                  {"arena_bytes", g.arena_bytes}, {"state_bytes", g.state_bytes}, {"max_batch", g.max_batch},
                  {"max_context", g.max_context}, {"note", g.note}};
  json prov = json::array();
  for (auto& [k, v] : g.provenance) prov.push_back({k, v});
  data["meta"]["provenance"] = prov;
  json nodes = json::array();
  for (const ViewNode& n : g.nodes) nodes.push_back(node_json(n));
  data["nodes"] = nodes;
  json weights = json::object();
  for (auto& [name, w] : g.weights)
    weights[name] = {{"type", w.type}, {"shape", w.shape}, {"bytes", w.bytes}, {"layout", w.layout}};
  data["weights"] = weights;
  json kernels = json::object();
  for (auto& [node, k] : g.kernel_of) kernels[node] = {{"symbol", k.symbol}, {"kind", k.kind}, {"desc", k.description}};
  data["kernels"] = kernels;
  json arena = json::object();
  for (auto& [v, a] : g.arena)
    arena[v] = {{"offset", a.offset}, {"bytes", a.bytes}, {"first", a.first_step}, {"last", a.last_step},
                {"in_place_of", a.in_place_of}, {"view", a.view}};
  data["arena"] = arena;
  json steps = json::array();
  for (const StepInfo& s : g.steps)
    steps.push_back({{"phase", s.phase}, {"name", s.name}, {"ms", s.ms}, {"before", s.nodes_before},
                     {"after", s.nodes_after}, {"added", s.added}, {"removed", s.removed}, {"changed", s.changed},
                     {"snap", s.snapshot}});
  data["steps"] = steps;
  data["snaps"] = snaps;
  data["views"] = views;
  data["accuracy"] = accuracy;
  data["profile"] = profile;

  std::string title = "Ingot viewer: " + (g.model_name.empty() ? g.source : g.model_name);
  std::string page;
  page += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n";
  // No network: the page may load nothing but itself (inline script, style and data: images).
  page += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'unsafe-inline'; "
          "style-src 'unsafe-inline'; img-src data:\">\n";
  page += "<title>" + html_escape(title) + "</title>\n<style>" + std::string(kVizStyle) + "</style></head>\n<body>\n";
  page += "<script id=\"ingot-data\" type=\"application/json\">" + escape_script(data.dump()) + "</script>\n";
  page += "<script>" + std::string(kVizScript) + "</script>\n</body></html>\n";
  return page;
}

namespace {

constexpr int64_t kMaxHtmlBytes = 64ll << 20;

}  // namespace

int cmd_viz(const std::vector<std::string>& args) {
  std::string path, out, profile_path, accuracy_path;
  GraphInfoOptions options;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string error;
    if (parse_quant_option(args, i, options.quant, &error)) {
      if (!error.empty()) return usage_error("viz: " + error);
    } else if (option_value(args, i, "-o", &out, &error) || option_value(args, i, "--profile", &profile_path, &error) ||
               option_value(args, i, "--accuracy", &accuracy_path, &error)) {
      if (!error.empty()) return usage_error("viz: " + error);
    } else if (!args[i].empty() && args[i][0] == '-') {
      return usage_error("viz: unknown option '" + args[i] + "'");
    } else if (path.empty()) {
      path = args[i];
    } else {
      return usage_error("viz: more than one model or bundle given");
    }
  }
  if (path.empty()) return usage_error("viz: no model or bundle given");
  if (out.empty()) {
    std::string base = path;
    while (base.size() > 1 && base.back() == '/') base.pop_back();
    base = base.substr(base.find_last_of('/') == std::string::npos ? 0 : base.find_last_of('/') + 1);
    out = base + ".html";
  }
  std::vector<std::string> inputs = cli::input_files(path);
  if (!profile_path.empty()) inputs.push_back(profile_path);
  if (!accuracy_path.empty()) inputs.push_back(accuracy_path);
  if (Status st = check_output_path(out, inputs); !st.ok()) return fail(st);  // before the work
  json accuracy = nullptr, profile = nullptr;
  if (!accuracy_path.empty()) {
    auto j = read_json_file(accuracy_path, "an accuracy report from ingotc compile --accuracy-report");
    if (!j.ok()) return fail(j.status());
    if (!j->contains("matmuls") || !(*j)["matmuls"].is_array())
      return fail(Status::Error(accuracy_path + ": no \"matmuls\" list: not an accuracy report from ingotc compile --accuracy-report"));
    accuracy = *j;
  }
  if (!profile_path.empty()) {
    auto j = read_json_file(profile_path, "a profile from ingot bench --profile");
    if (!j.ok()) return fail(j.status());
    if (!j->contains("calls") || !(*j)["calls"].is_array())
      return fail(Status::Error(profile_path + ": no \"calls\" list: not a profile from ingot bench --profile"));
    profile = *j;
  }
  auto g = load_graph_info(path, options);
  if (!g.ok()) return fail(g.status());
  auto page = viz_page(*g, accuracy, profile);
  if (!page.ok()) return fail(page.status().with_context(path));
  if (static_cast<int64_t>(page->size()) > kMaxHtmlBytes)
    return fail(Status::Error(path + ": the viewer would take " + std::to_string(page->size() >> 20) + " MiB"));
  if (Status st = write_file_atomic(out, *page, inputs); !st.ok()) return fail(st);
  std::fprintf(stderr, "ingotc viz: %s: %zu nodes, %d layers, %zu pipeline steps -> %s (%.1f KiB)\n", path.c_str(),
               g->nodes.size(), g->layers, g->steps.size(), out.c_str(), static_cast<double>(page->size()) / 1024);
  return 0;
}

}  // namespace ingot
