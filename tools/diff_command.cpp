// `ingotc diff A B`: what differs between two bundles, models or IR files (docs/inspect.md).
#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "runtime/atomic_file.h"
#include "tools/graph_info.h"
#include "tools/ingotc_cli.h"
#include "tools/viz_command.h"

namespace ingot {
namespace {

using cli::fail;
using cli::option_value;
using cli::usage_error;

struct Section {
  std::string title;
  std::string summary;
  std::vector<std::string> lines;
};

[[maybe_unused]] std::string node_signature(const ViewNode& n) {
  std::string s = n.op + "(";
  for (auto& i : n.inputs) s += i + ",";
  s += "){";
  for (auto& [k, v] : n.attrs) s += k + "=" + v + ",";
  s += "}:";
  for (auto& t : n.outputs) s += t + ",";
  return s;
}

std::string bytes_str(int64_t b) { return std::to_string(b) + " B"; }

// A node's identity across two builds, whose generated names (rmsnorm_440) may be numbered
// differently: its op and the constants it reads by name ("RMSNorm(blk.0.attn_norm.weight)"), or,
// for a node that reads none, its op and its rank among such nodes of that op in topological
// order ("Attention#3"). Two graphs from the same pipeline get the same keys node for node.
std::map<std::string, const ViewNode*> keyed_nodes(const std::vector<ViewNode>& nodes) {
  std::map<std::string, const ViewNode*> by_name, out;
  for (const ViewNode& n : nodes) by_name[n.name] = &n;
  std::map<std::string, int> rank;
  for (const ViewNode& n : nodes) {
    if (n.constant) continue;
    std::string weights;
    for (const std::string& in : n.inputs) {
      auto it = by_name.find(in.substr(0, in.find(':')));
      if (it != by_name.end() && it->second->constant && it->second->const_elements != 1)
        weights += (weights.empty() ? "" : ",") + it->second->name;
    }
    std::string key = weights.empty() ? n.op + "#" + std::to_string(rank[n.op]++) : n.op + "(" + weights + ")";
    while (out.count(key)) key += "'";
    out[key] = &n;
  }
  return out;
}

// What a node reads, in keys: inputs renamed so that two builds compare equal.
std::string keyed_inputs(const ViewNode& n, const std::map<std::string, std::string>& key_of) {
  std::string s;
  for (const std::string& in : n.inputs) {
    const std::string p = in.substr(0, in.find(':'));
    auto it = key_of.find(p);
    s += (it == key_of.end() ? p : it->second) + (in.size() > p.size() ? in.substr(p.size()) : "") + ",";
  }
  return s;
}

std::vector<Section> diff_graphs(const GraphInfo& a, const GraphInfo& b) {
  std::vector<Section> out;
  // Graph: compute nodes matched by key (keyed_nodes), constants are weights (below).
  std::map<std::string, std::string> name_in_b;  // A's node name -> B's, for the kernels
  {
    Section s{"graph", "", {}};
    const auto na = keyed_nodes(a.nodes), nb = keyed_nodes(b.nodes);
    std::map<std::string, std::string> key_a, key_b;
    for (auto& [k, n] : na) key_a[n->name] = k;
    for (auto& [k, n] : nb) key_b[n->name] = k;
    for (const ViewNode& n : a.nodes)
      if (n.constant) key_a[n.name] = n.name;
    for (const ViewNode& n : b.nodes)
      if (n.constant) key_b[n.name] = n.name;
    auto label = [](const std::string& key, const ViewNode* x, const ViewNode* y) {
      std::string names = x ? x->name : "";
      if (y && (!x || y->name != x->name)) names += (names.empty() ? "" : " / ") + y->name;
      return key + " [" + names + "]";
    };
    int only_a = 0, only_b = 0, changed = 0;
    for (auto& [key, n] : na)
      if (!nb.count(key)) {
        ++only_a;
        s.lines.push_back("- node " + label(key, n, nullptr));
      }
    for (auto& [key, n] : nb)
      if (!na.count(key)) {
        ++only_b;
        s.lines.push_back("+ node " + label(key, nullptr, n));
      }
    for (auto& [key, n] : na) {
      auto it = nb.find(key);
      if (it == nb.end()) continue;
      const ViewNode* m = it->second;
      name_in_b[n->name] = m->name;
      std::string what;
      if (n->outputs != m->outputs)
        what += " type " + (n->outputs.empty() ? "" : n->outputs[0]) + " -> " + (m->outputs.empty() ? "" : m->outputs[0]) + ";";
      if (n->attrs != m->attrs) {
        std::map<std::string, std::string> aa(n->attrs.begin(), n->attrs.end()), ab(m->attrs.begin(), m->attrs.end());
        for (auto& [k, v] : aa)
          if (!ab.count(k) || ab[k] != v) what += " " + k + " " + v + " -> " + (ab.count(k) ? ab[k] : "(none)") + ";";
        for (auto& [k, v] : ab)
          if (!aa.count(k)) what += " " + k + " (none) -> " + v + ";";
      }
      if (keyed_inputs(*n, key_a) != keyed_inputs(*m, key_b)) what += " inputs differ;";
      if (what.empty()) continue;
      ++changed;
      what.pop_back();
      s.lines.push_back("~ node " + label(key, n, m) + ":" + what);
    }
    s.summary = std::to_string(na.size()) + " vs " + std::to_string(nb.size()) + " nodes; " + std::to_string(only_a) +
                " only in A, " + std::to_string(only_b) + " only in B, " + std::to_string(changed) + " changed";
    out.push_back(std::move(s));
  }
  // Weights: types by name.
  {
    Section s{"weights", "", {}};
    int changed = 0, only_a = 0, only_b = 0;
    int64_t bytes_a = 0, bytes_b = 0;
    for (auto& [name, w] : a.weights) bytes_a += w.bytes;
    for (auto& [name, w] : b.weights) bytes_b += w.bytes;
    for (auto& [name, w] : a.weights) {
      auto it = b.weights.find(name);
      if (it == b.weights.end()) {
        ++only_a;
        s.lines.push_back("- weight " + name + ": " + w.type + " " + bytes_str(w.bytes));
      } else if (it->second.type != w.type) {
        ++changed;
        s.lines.push_back("~ weight " + name + ": " + w.type + " -> " + it->second.type + " (" + bytes_str(w.bytes) +
                          " -> " + bytes_str(it->second.bytes) + ")");
      }
    }
    for (auto& [name, w] : b.weights)
      if (!a.weights.count(name)) {
        ++only_b;
        s.lines.push_back("+ weight " + name + ": " + w.type + " " + bytes_str(w.bytes));
      }
    s.summary = std::to_string(changed) + " of " + std::to_string(a.weights.size()) + " change type, " +
                std::to_string(only_a) + " only in A, " + std::to_string(only_b) + " only in B; " + bytes_str(bytes_a) +
                " -> " + bytes_str(bytes_b);
    out.push_back(std::move(s));
  }
  // Kernels: by their spec (symbols are numbered per bundle), and per node.
  {
    Section s{"kernels", "", {}};
    std::map<std::string, int> ka, kb;  // spec -> nodes
    for (auto& [node, k] : a.kernel_of) ka[k.kind + " | " + k.description]++;
    for (auto& [node, k] : b.kernel_of) kb[k.kind + " | " + k.description]++;
    int only_a = 0, only_b = 0;
    for (auto& [spec, count] : ka)
      if (!kb.count(spec)) {
        ++only_a;
        s.lines.push_back("- kernel " + spec.substr(spec.find(" | ") + 3) + " (" + std::to_string(count) + " nodes)");
      }
    for (auto& [spec, count] : kb)
      if (!ka.count(spec)) {
        ++only_b;
        s.lines.push_back("+ kernel " + spec.substr(spec.find(" | ") + 3) + " (" + std::to_string(count) + " nodes)");
      }
    int nodes_differ = 0;
    for (auto& [node, k] : a.kernel_of) {
      auto nb = name_in_b.find(node);
      if (nb == name_in_b.end()) continue;  // a node only in A: listed under graph
      auto it = b.kernel_of.find(nb->second);
      const std::string other = it == b.kernel_of.end() ? "(no kernel)" : it->second.description;
      if (other == k.description) continue;
      ++nodes_differ;
      s.lines.push_back("~ node " + node + (nb->second != node ? " / " + nb->second : "") + ": " + k.description + " -> " + other);
    }
    std::string tiers_a, tiers_b;
    for (auto& t : a.tiers) tiers_a += (tiers_a.empty() ? "" : ",") + t;
    for (auto& t : b.tiers) tiers_b += (tiers_b.empty() ? "" : ",") + t;
    if (tiers_a != tiers_b) s.lines.push_back("~ CPU tiers: " + (tiers_a.empty() ? "(none)" : tiers_a) + " -> " + (tiers_b.empty() ? "(none)" : tiers_b));
    s.summary = std::to_string(ka.size()) + " vs " + std::to_string(kb.size()) + " distinct kernels; " +
                std::to_string(only_a) + " only in A, " + std::to_string(only_b) + " only in B; " +
                std::to_string(nodes_differ) + " nodes run a different kernel";
    out.push_back(std::move(s));
  }
  // Memory plan.
  {
    Section s{"memory plan", "", {}};
    auto cmp = [&](const char* what, int64_t x, int64_t y) {
      if (x != y) s.lines.push_back(std::string("~ ") + what + ": " + std::to_string(x) + " -> " + std::to_string(y));
    };
    cmp("arena bytes", a.arena_bytes, b.arena_bytes);
    cmp("state bytes", a.state_bytes, b.state_bytes);
    cmp("max batch", a.max_batch, b.max_batch);
    cmp("max context", a.max_context, b.max_context);
    int moved = 0;
    std::vector<std::string> detail;
    // Buffers are named by their node: A's names are mapped to B's through the graph's keys.
    auto in_b = [&](const std::string& v) {
      const std::string node = v.substr(0, v.find(':'));
      auto it = name_in_b.find(node);
      return it == name_in_b.end() ? v : it->second + v.substr(node.size());
    };
    std::set<std::string> matched;
    for (auto& [v, x] : a.arena) {
      const std::string vb = in_b(v);
      auto it = b.arena.find(vb);
      if (it == b.arena.end()) {
        ++moved;
        detail.push_back("- buffer " + v + " @" + std::to_string(x.offset));
        continue;
      }
      matched.insert(vb);
      if (it->second.offset != x.offset || it->second.bytes != x.bytes) {
        ++moved;
        detail.push_back("~ buffer " + v + (vb != v ? " / " + vb : "") + ": @" + std::to_string(x.offset) + " " +
                         bytes_str(x.bytes) + " -> @" + std::to_string(it->second.offset) + " " + bytes_str(it->second.bytes));
      }
    }
    for (auto& [v, y] : b.arena)
      if (!matched.count(v)) {
        ++moved;
        detail.push_back("+ buffer " + v + " @" + std::to_string(y.offset));
      }
    for (auto& d : detail) s.lines.push_back(d);
    s.summary = "arena " + bytes_str(a.arena_bytes) + " -> " + bytes_str(b.arena_bytes) + ", " + std::to_string(moved) +
                " of " + std::to_string(a.arena.size()) + " buffers differ";
    out.push_back(std::move(s));
  }
  // Provenance.
  {
    Section s{"provenance", "", {}};
    std::map<std::string, std::string> pa(a.provenance.begin(), a.provenance.end()), pb(b.provenance.begin(), b.provenance.end());
    std::set<std::string> keys;
    for (auto& [k, v] : pa) keys.insert(k);
    for (auto& [k, v] : pb) keys.insert(k);
    for (auto& k : keys) {
      const std::string x = pa.count(k) ? pa[k] : "(none)", y = pb.count(k) ? pb[k] : "(none)";
      if (x != y) s.lines.push_back("~ " + k + ": " + x + " -> " + y);
    }
    s.summary = s.lines.empty() ? "same" : std::to_string(s.lines.size()) + " fields differ";
    out.push_back(std::move(s));
  }
  return out;
}

std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) o += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return o;
}

std::string diff_html(const std::string& pa, const std::string& pb, const std::vector<Section>& sections) {
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                  "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
                  "<title>ingotc diff</title><style>body{font:13px/1.4 Helvetica,Arial,sans-serif;margin:16px}"
                  "h2{font-size:15px;margin:14px 0 4px}.l{font-family:monospace;white-space:pre-wrap}"
                  ".add{color:#1a7f37}.del{color:#c62828}.chg{color:#8a5a00}</style></head><body>\n";
  h += "<h1 style=\"font-size:17px\">ingotc diff</h1><p>A: <code>" + escape(pa) + "</code><br>B: <code>" + escape(pb) + "</code></p>\n";
  for (const Section& s : sections) {
    h += "<h2>" + escape(s.title) + "</h2><p>" + escape(s.summary) + "</p>\n";
    if (s.lines.empty()) continue;
    h += "<div class=\"l\">";
    for (const std::string& l : s.lines) {
      const char* cls = l[0] == '+' ? "add" : l[0] == '-' ? "del" : "chg";
      h += "<div class=\"" + std::string(cls) + "\">" + escape(l) + "</div>";
    }
    h += "</div>\n";
  }
  h += "</body></html>\n";
  return h;
}

}  // namespace

int cmd_diff(const std::vector<std::string>& args) {
  std::vector<std::string> paths;
  std::string html;
  GraphInfoOptions options;
  options.steps = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string error;
    if (parse_quant_option(args, i, options.quant, &error)) {
      if (!error.empty()) return usage_error("diff: " + error);
    } else if (option_value(args, i, "--html", &html, &error)) {
      if (!error.empty()) return usage_error("diff: " + error);
    } else if (!args[i].empty() && args[i][0] == '-') {
      return usage_error("diff: unknown option '" + args[i] + "'");
    } else {
      paths.push_back(args[i]);
    }
  }
  if (paths.size() != 2) return usage_error("diff takes two bundles, models or IR files, got " + std::to_string(paths.size()));
  std::vector<std::string> inputs = cli::input_files(paths[0]);
  for (auto& f : cli::input_files(paths[1])) inputs.push_back(f);
  if (!html.empty())
    if (Status st = check_output_path(html, inputs); !st.ok()) return fail(st);  // before the work
  auto a = load_graph_info(paths[0], options);
  if (!a.ok()) return fail(a.status());
  auto b = load_graph_info(paths[1], options);
  if (!b.ok()) return fail(b.status());
  const std::vector<Section> sections = diff_graphs(*a, *b);
  std::string text = "A: " + paths[0] + " (" + a->kind + ")\nB: " + paths[1] + " (" + b->kind + ")\n";
  for (const Section& s : sections) {
    text += s.title + ": " + s.summary + "\n";
    for (const std::string& l : s.lines) text += "  " + l + "\n";
  }
  if (!html.empty()) {
    if (Status st = write_file_atomic(html, diff_html(paths[0], paths[1], sections), inputs); !st.ok()) return fail(st);
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

}  // namespace ingot
