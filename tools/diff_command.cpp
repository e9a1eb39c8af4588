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

std::string node_signature(const ViewNode& n) {
  std::string s = n.op + "(";
  for (auto& i : n.inputs) s += i + ",";
  s += "){";
  for (auto& [k, v] : n.attrs) s += k + "=" + v + ",";
  s += "}:";
  for (auto& t : n.outputs) s += t + ",";
  return s;
}

std::string bytes_str(int64_t b) { return std::to_string(b) + " B"; }

std::vector<Section> diff_graphs(const GraphInfo& a, const GraphInfo& b) {
  std::vector<Section> out;
  // Graph: compute nodes by name (constants are weights, below).
  {
    Section s{"graph", "", {}};
    std::map<std::string, const ViewNode*> na, nb;
    for (auto& n : a.nodes)
      if (!n.constant) na[n.name] = &n;
    for (auto& n : b.nodes)
      if (!n.constant) nb[n.name] = &n;
    int only_a = 0, only_b = 0, changed = 0;
    for (auto& [name, n] : na)
      if (!nb.count(name)) {
        ++only_a;
        s.lines.push_back("- node " + name + ": " + n->op);
      }
    for (auto& [name, n] : nb)
      if (!na.count(name)) {
        ++only_b;
        s.lines.push_back("+ node " + name + ": " + n->op);
      }
    for (auto& [name, n] : na) {
      auto it = nb.find(name);
      if (it == nb.end()) continue;
      if (node_signature(*n) != node_signature(*it->second)) {
        ++changed;
        std::string what;
        if (n->op != it->second->op) what += " op " + n->op + " -> " + it->second->op + ";";
        if (n->outputs != it->second->outputs) what += " type " + (n->outputs.empty() ? "" : n->outputs[0]) + " -> " +
                                                      (it->second->outputs.empty() ? "" : it->second->outputs[0]) + ";";
        if (n->attrs != it->second->attrs) {
          std::map<std::string, std::string> aa(n->attrs.begin(), n->attrs.end()), ab(it->second->attrs.begin(), it->second->attrs.end());
          for (auto& [k, v] : aa)
            if (!ab.count(k) || ab[k] != v) what += " " + k + " " + v + " -> " + (ab.count(k) ? ab[k] : "(none)") + ";";
          for (auto& [k, v] : ab)
            if (!aa.count(k)) what += " " + k + " (none) -> " + v + ";";
        }
        if (n->inputs != it->second->inputs) what += " inputs differ;";
        if (!what.empty() && what.back() == ';') what.pop_back();
        s.lines.push_back("~ node " + name + ":" + what);
      }
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
      auto it = b.kernel_of.find(node);
      if (it == b.kernel_of.end() || it->second.description == k.description) continue;
      ++nodes_differ;
      s.lines.push_back("~ node " + node + ": " + k.description + " -> " + it->second.description);
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
    for (auto& [v, x] : a.arena) {
      auto it = b.arena.find(v);
      if (it == b.arena.end()) {
        ++moved;
        detail.push_back("- buffer " + v + " @" + std::to_string(x.offset));
      } else if (it->second.offset != x.offset || it->second.bytes != x.bytes) {
        ++moved;
        detail.push_back("~ buffer " + v + ": @" + std::to_string(x.offset) + " " + bytes_str(x.bytes) + " -> @" +
                         std::to_string(it->second.offset) + " " + bytes_str(it->second.bytes));
      }
    }
    for (auto& [v, y] : b.arena)
      if (!a.arena.count(v)) {
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
    std::vector<std::string> inputs = cli::input_files(paths[0]);
    for (auto& f : cli::input_files(paths[1])) inputs.push_back(f);
    if (Status st = write_file_atomic(html, diff_html(paths[0], paths[1], sections), inputs); !st.ok()) return fail(st);
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

}  // namespace ingot
