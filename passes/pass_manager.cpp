#include "passes/pass_manager.h"

#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <utility>

#include "ir/verifier.h"
#include "passes/pattern.h"

namespace ingot {
namespace {

// A cheap per-node fingerprint: op, inputs (producer object, name and output index), attributes,
// output types, and for constants the data's address and size rather than its bytes (hashing
// weights would not be cheap). Only compared within one run, so addresses may appear.
size_t node_signature(const Node& n) {
  std::string s(n.op_name());
  s += '(';
  for (const Value& v : n.inputs)
    s += std::to_string(reinterpret_cast<uintptr_t>(v.node)) + "/" + (v.node ? v.node->name : "?") + ":" +
         std::to_string(v.index) + ",";
  s += "){";
  for (auto& [k, a] : n.attrs) s += k + "=" + a.str() + ",";
  s += "}:";
  for (auto& t : n.outputs) s += t.str() + ",";
  if (n.constant) {
    // The buffer's identity, not its bytes: reading would join a lazily concatenated weight.
    s += std::to_string(reinterpret_cast<uintptr_t>(n.constant->buffer().get())) + "/" + std::to_string(n.constant->nbytes()) +
         "/" + std::string(type_name(n.constant->type()));
  }
  s += n.constant_hash;
  return std::hash<std::string>{}(s);
}

bool in_pipeline(const std::vector<std::unique_ptr<Pass>>& passes, const std::string& name) {
  for (auto& p : passes)
    if (name == p->name()) return true;
  return false;
}

std::string pipeline_names(const std::vector<std::unique_ptr<Pass>>& passes) {
  std::string s;
  for (auto& p : passes) s += (s.empty() ? "" : ",") + std::string(p->name());
  return s.empty() ? "(empty)" : s;
}

}  // namespace

// Nodes by identity: the object and its name (an address can be reused by a new node).
NodeSnapshot::NodeSnapshot(const Model& m) {
  size_t i = 0;
  for (auto& n : m.nodes()) nodes_[{n.get(), n->name}] = Entry{node_signature(*n), i++};
}

void NodeSnapshot::diff(const Model& after, PassStats& st, bool names) const {
  int kept = 0;
  std::vector<bool> seen(nodes_.size(), false);
  for (auto& n : after.nodes()) {
    auto it = nodes_.find({n.get(), n->name});
    if (it == nodes_.end()) {
      ++st.added;
      if (names) st.added_nodes.push_back(n->name);
      continue;
    }
    ++kept;
    seen[it->second.order] = true;
    if (it->second.signature != node_signature(*n)) {
      ++st.changed;
      if (names) st.changed_nodes.push_back(n->name);
    }
  }
  st.removed = static_cast<int>(nodes_.size()) - kept;
  st.nodes_before = static_cast<int>(nodes_.size());
  st.nodes_after = static_cast<int>(after.nodes().size());
  if (names && st.removed > 0) {
    std::vector<const std::string*> by_order(nodes_.size(), nullptr);
    for (auto& [key, e] : nodes_) by_order[e.order] = &key.second;
    for (size_t i = 0; i < by_order.size(); ++i)
      if (!seen[i]) st.removed_nodes.push_back(*by_order[i]);
  }
}

std::string print_after_header(std::string_view pass) { return "// ----- IR after " + std::string(pass) + " -----\n"; }

Status PassManager::add(std::string_view name) {
  INGOT_ASSIGN_OR_RETURN(std::unique_ptr<Pass> p, create_pass(name));
  passes_.push_back(std::move(p));
  return Status::Ok();
}

Status PassManager::add_pipeline(const std::vector<std::string>& names) {
  for (auto& n : names) INGOT_RETURN_IF_ERROR(add(n));
  return Status::Ok();
}

void PassManager::add(std::unique_ptr<Pass> pass) { passes_.push_back(std::move(pass)); }

Status PassManager::check_options() const {
  // A misspelt pass name would otherwise silently print nothing or run everything.
  if (!options_.stop_after.empty() && !in_pipeline(passes_, options_.stop_after))
    return Status::Error("stop-after: pass '" + options_.stop_after + "' is not in the pipeline " + pipeline_names(passes_));
  if (!options_.print_after.empty() && options_.print_after != "all" && !in_pipeline(passes_, options_.print_after))
    return Status::Error("print-after: pass '" + options_.print_after + "' is not in the pipeline " +
                         pipeline_names(passes_));
  return Status::Ok();
}

StatusOr<bool> PassManager::run(Model& m) {
  INGOT_RETURN_IF_ERROR(check_options());
  stats_.clear();
  ran_.clear();
  std::optional<ScopedMatchDebug> debug;
  if (options_.debug_match) debug.emplace(options_.debug_match);
  std::ostream& print_out = options_.print_stream ? *options_.print_stream : std::cerr;
  // Snapshots cost a walk over the nodes: taken only when someone looks at them.
  const bool track = options_.stats || options_.verify_each || options_.on_pass;
  bool changed_any = false;
  for (auto& pass : passes_) {
    const std::string name = pass->name();
    NodeSnapshot before;
    if (track) before = NodeSnapshot(m);
    auto t0 = std::chrono::steady_clock::now();
    StatusOr<bool> changed = pass->run(m);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!changed.ok()) return changed.status().with_context("pass '" + name + "'");
    ran_.push_back(name);
    changed_any = changed_any || *changed;
    PassStats st;
    st.pass = name;
    st.ms = ms;
    st.reported_change = *changed;
    if (track) before.diff(m, st, static_cast<bool>(options_.on_pass));
    if (options_.verify_each) {
      Status v = verify(m);
      if (!v.ok()) return v.with_context("the model fails verification after pass '" + name + "'");
      if (!*changed && (st.added || st.removed || st.changed))
        return Status::Error("pass '" + name + "' reported no change but added " + std::to_string(st.added) +
                             ", removed " + std::to_string(st.removed) + " and changed " + std::to_string(st.changed) +
                             " nodes");
    }
    if (options_.on_pass) options_.on_pass(st, m);
    if (options_.stats) stats_.push_back(st);
    if (options_.print_after == "all" || options_.print_after == name)
      print_out << print_after_header(name) << print_model(m, options_.print_options) << std::flush;
    if (options_.stop_after == name) break;
  }
  return changed_any;
}

std::string PassManager::stats_report() const {
  std::string out = "pass statistics:\n";
  char line[160];
  std::snprintf(line, sizeof(line), "  %-20s %10s %8s %8s %8s %8s %8s\n", "pass", "time (ms)", "changed?", "nodes",
                "added", "removed", "changed");
  out += line;
  double total_ms = 0;
  int added = 0, removed = 0, changed = 0;
  for (auto& s : stats_) {
    std::snprintf(line, sizeof(line), "  %-20s %10.3f %8s %8d %8d %8d %8d\n", s.pass.c_str(), s.ms,
                  s.reported_change ? "yes" : "no", s.nodes_after, s.added, s.removed, s.changed);
    out += line;
    total_ms += s.ms;
    added += s.added;
    removed += s.removed;
    changed += s.changed;
  }
  int nodes = stats_.empty() ? 0 : stats_.back().nodes_after;
  std::snprintf(line, sizeof(line), "  %-20s %10.3f %8s %8d %8d %8d %8d\n", "total", total_ms, "", nodes, added, removed,
                changed);
  out += line;
  return out;
}

}  // namespace ingot
