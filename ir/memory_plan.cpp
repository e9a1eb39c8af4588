#include "ir/memory_plan.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "ir/model.h"
#include "ir/ops.h"

namespace ingot {

const MemoryPlan::Buffer* MemoryPlan::find(std::string_view node, int output) const {
  for (const Buffer& b : buffers)
    if (b.node == node && b.output == output) return &b;
  return nullptr;
}

std::string memory_value_name(std::string_view node, int output) {
  return std::string(node) + ":" + std::to_string(output);
}

namespace {

// One dimension as c + t * tokens + p * past.
struct Affine {
  int64_t c = 0, t = 0, p = 0;
};

StatusOr<Affine> affine_dim(const Dim& d, const TensorType& type) {
  if (d.is_unknown()) return Status::Error(type.str() + " has an unknown dimension: its size cannot be bounded");
  Affine a{d.constant(), 0, 0};
  for (const auto& [symbol, coefficient] : d.terms()) {
    if (symbol == "tokens") a.t = coefficient;
    else if (symbol == "past") a.p = coefficient;
    else
      return Status::Error(type.str() + " uses the symbol '" + symbol +
                           "': memory planning bounds only tokens (by the batch) and past (by the context)");
  }
  return a;
}

// Element counts stay below this, so that a byte count (at most 8 bytes per element) fits int64.
constexpr int64_t kMaxElements = std::numeric_limits<int64_t>::max() / 16;

}  // namespace

StatusOr<int64_t> max_storage_bytes(const TensorType& type, int64_t max_batch, int64_t max_context) {
  if (max_batch < 1) return Status::Error("the batch bound must be at least 1, got " + std::to_string(max_batch));
  if (max_context < 0) return Status::Error("the context bound must not be negative");
  std::vector<Affine> dims;
  bool uses_tokens = false, uses_past = false, past_up = false, past_down = false;
  for (const Dim& d : type.shape) {
    INGOT_ASSIGN_OR_RETURN(Affine a, affine_dim(d, type));
    uses_tokens |= a.t != 0;
    uses_past |= a.p != 0;
    past_up |= a.p > 0;
    past_down |= a.p < 0;
    dims.push_back(a);
  }
  // The element count at one point; a dimension that would be negative there counts as 0.
  bool overflow = false;
  auto elements = [&](int64_t t, int64_t p) -> int64_t {
    __int128 r = 1;
    for (const Affine& a : dims) {
      __int128 v = static_cast<__int128>(a.c) + static_cast<__int128>(a.t) * t + static_cast<__int128>(a.p) * p;
      if (v <= 0) return 0;
      if (v > kMaxElements) overflow = true;
      if (overflow) return 0;
      r *= v;
      if (r > kMaxElements) {
        overflow = true;
        return 0;
      }
    }
    return static_cast<int64_t>(r);
  };
  // The domain: 1 <= tokens <= T, 0 <= past <= C - tokens (past is 0 without a context bound).
  // Each dimension is affine, so for a fixed tokens value every factor is monotone in past: when
  // all factors grow with past (a KV cache, attention scores) the maximum is at the largest past,
  // when none does at past 0; only mixed signs need a scan.
  const int64_t t_max = max_context > 0 ? std::min(max_batch, max_context) : max_batch;
  int64_t best = 0;
  for (int64_t t = 1; t <= (uses_tokens ? t_max : 1); ++t) {
    const int64_t p_hi = max_context > 0 ? max_context - t : 0;
    if (!uses_past || !past_up) best = std::max(best, elements(t, 0));
    else if (!past_down) best = std::max(best, elements(t, p_hi));
    else
      for (int64_t p = 0; p <= p_hi && !overflow; ++p) best = std::max(best, elements(t, p));
    if (overflow) return Status::Error(type.str() + " is too large to plan");
  }
  return storage_bytes(type.type, best);
}

int64_t model_max_context(const Model& m) {
  int64_t c = 0;
  for (const StateVariable& v : m.variables())
    if (!v.max_shape.empty()) c = std::max(c, v.max_shape[0]);
  return c;
}

namespace {

using ValueKey = std::pair<std::string, int>;

std::string value_str(const ValueKey& k) { return memory_value_name(k.first, k.second); }

std::optional<ValueKey> parse_value_name(const std::string& s) {
  size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon + 1 == s.size()) return std::nullopt;
  int64_t index = 0;
  for (size_t i = colon + 1; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9' || index > 1000000) return std::nullopt;
    index = index * 10 + (s[i] - '0');
  }
  return ValueKey{s.substr(0, colon), static_cast<int>(index)};
}

std::string describe(const MemoryPlan::Buffer& b) {
  return "'" + memory_value_name(b.node, b.output) + "' (bytes " + std::to_string(b.offset) + ".." +
         std::to_string(b.offset + b.bytes) + ", steps " + std::to_string(b.first_step) + ".." +
         std::to_string(b.last_step) + ")";
}

Status plan_error(const std::string& msg) { return Status::Error("memory plan: " + msg); }

bool aligned(int64_t v, int64_t alignment) { return v % alignment == 0; }

}  // namespace

Status check_memory_plan(const Model& m, const MemoryPlan& plan) {
  const int64_t align = plan.alignment;
  if (align < 1 || (align & (align - 1)) != 0)
    return plan_error("the alignment must be a power of two, got " + std::to_string(align));
  if (plan.max_batch < 1) return plan_error("the batch bound must be at least 1");
  if (plan.max_context != model_max_context(m))
    return plan_error("it bounds the context by " + std::to_string(plan.max_context) + " tokens, the state variables by " +
                      std::to_string(model_max_context(m)));

  // The order: every node once, inputs first.
  std::map<std::string, const Node*> by_name;
  for (const auto& n : m.nodes()) by_name[n->name] = n.get();
  auto find = [&](const std::string& name) -> const Node* {
    auto it = by_name.find(name);
    return it == by_name.end() ? nullptr : it->second;
  };
  std::map<std::string, int> step;
  for (size_t i = 0; i < plan.order.size(); ++i) {
    if (!find(plan.order[i])) return plan_error("the order names '" + plan.order[i] + "', which is not in the model");
    if (!step.emplace(plan.order[i], static_cast<int>(i)).second)
      return plan_error("the order names '" + plan.order[i] + "' twice");
  }
  for (const auto& n : m.nodes())
    if (!step.count(n->name)) return plan_error("the order misses node '" + n->name + "'");
  for (const auto& n : m.nodes())
    for (const Value& v : n->inputs)
      if (step.at(v.node->name) >= step.at(n->name))
        return plan_error("'" + n->name + "' runs at step " + std::to_string(step.at(n->name)) + ", before its input '" +
                          v.node->name + "' at step " + std::to_string(step.at(v.node->name)));
  const int last = static_cast<int>(plan.order.size()) - 1;

  // What liveness the model needs.
  std::map<ValueKey, std::pair<int, int>> need;  // first, last step
  for (const auto& n : m.nodes()) {
    if (n->is(Op::Constant)) continue;
    for (size_t i = 0; i < n->outputs.size(); ++i) {
      const int s = step.at(n->name);
      need[{n->name, static_cast<int>(i)}] = {n->is(Op::Parameter) ? 0 : s, n->is(Op::Result) ? last : s};
    }
  }
  for (const auto& n : m.nodes())
    for (const Value& v : n->inputs) {
      auto it = need.find({v.node->name, v.index});
      if (it != need.end()) it->second.second = std::max(it->second.second, step.at(n->name));
    }

  // Every value has one buffer, big enough, aligned, inside the arena, live long enough.
  std::map<ValueKey, const MemoryPlan::Buffer*> by_value;
  for (const MemoryPlan::Buffer& b : plan.buffers) {
    ValueKey key{b.node, b.output};
    if (!need.count(key)) {
      const Node* n = find(b.node);
      return plan_error("buffer '" + value_str(key) + "' is not a value to plan" +
                        (n && n->is(Op::Constant) ? " (Constants stay outside the arena)" : ""));
    }
    if (!by_value.emplace(key, &b).second) return plan_error("'" + value_str(key) + "' has two buffers");
    if (b.offset < 0 || b.bytes < 0 || !aligned(b.offset, align) || !aligned(b.bytes, align))
      return plan_error(describe(b) + " is not aligned to " + std::to_string(align) + " bytes");
    if (b.offset > plan.arena_bytes - b.bytes)
      return plan_error(describe(b) + " ends past the arena of " + std::to_string(plan.arena_bytes) + " bytes");
    const Node* n = find(b.node);
    const TensorType& type = n->outputs[static_cast<size_t>(b.output)];
    StatusOr<int64_t> size = max_storage_bytes(type, plan.max_batch, plan.max_context);
    if (!size.ok()) return size.status().with_context("memory plan: " + std::string(n->op_name()) + " '" + n->name + "'");
    if (b.bytes < *size)
      return plan_error(describe(b) + " holds " + std::to_string(b.bytes) + " bytes, " + type.str() + " needs up to " +
                        std::to_string(*size));
    auto [first, last_use] = need.at(key);
    if (b.first_step > first || b.last_step < last_use || b.last_step > last)
      return plan_error(describe(b) + " must be live from step " + std::to_string(first) + " to step " +
                        std::to_string(last_use));
  }
  for (const auto& [key, range] : need)
    if (!by_value.count(key)) return plan_error("'" + value_str(key) + "' has no buffer");

  // Take-overs: of an input of the node, at the same offset, no larger than what they take over.
  std::map<const MemoryPlan::Buffer*, const MemoryPlan::Buffer*> parent;
  for (const MemoryPlan::Buffer& b : plan.buffers) {
    if (b.in_place_of.empty()) {
      if (b.view) return plan_error(describe(b) + " is a view of nothing");
      continue;
    }
    auto src = parse_value_name(b.in_place_of);
    if (!src || !by_value.count(*src))
      return plan_error(describe(b) + " takes over '" + b.in_place_of + "', which has no buffer");
    const Node* n = find(b.node);
    bool is_input = false;
    for (const Value& v : n->inputs) is_input |= v.node->name == src->first && v.index == src->second;
    if (!is_input) return plan_error(describe(b) + " takes over '" + b.in_place_of + "', which its node does not read");
    const MemoryPlan::Buffer* s = by_value.at(*src);
    if (s->offset != b.offset || b.bytes > s->bytes)
      return plan_error(describe(b) + " takes over " + describe(*s) + " but does not sit within it at the same offset");
    parent[&b] = s;
  }
  auto root = [&](const MemoryPlan::Buffer* b) {
    for (auto it = parent.find(b); it != parent.end(); it = parent.find(b)) b = it->second;
    return b;
  };

  // Exhaustively: no two buffers live at one step share a byte, except within a take-over chain
  // where the later buffer is a view (it writes nothing) or was written in place at the step
  // where the earlier one died.
  const auto& bufs = plan.buffers;
  for (size_t i = 0; i < bufs.size(); ++i) {
    for (size_t j = i + 1; j < bufs.size(); ++j) {
      const MemoryPlan::Buffer* a = &bufs[i];
      const MemoryPlan::Buffer* b = &bufs[j];
      if (a->first_step > b->last_step || b->first_step > a->last_step) continue;
      if (a->offset >= b->offset + b->bytes || b->offset >= a->offset + a->bytes) continue;
      if (root(a) != root(b))
        return plan_error(describe(*a) + " and " + describe(*b) + " are live at the same time and share bytes");
      const int sa = step.at(a->node), sb = step.at(b->node);
      if (sa == sb) return plan_error(describe(*a) + " and " + describe(*b) + " are outputs of one node and share bytes");
      if (sa > sb) std::swap(a, b);  // b is written later
      if (b->view) continue;
      if (a->last_step > b->first_step)
        return plan_error(describe(*b) + " is written over " + describe(*a) + " while that is still live");
    }
  }

  // State: one slot per variable, large enough, apart.
  if (plan.state.size() != m.variables().size())
    return plan_error(std::to_string(plan.state.size()) + " state slots for " + std::to_string(m.variables().size()) +
                      " state variables");
  for (size_t i = 0; i < plan.state.size(); ++i) {
    const MemoryPlan::StateSlot& s = plan.state[i];
    const StateVariable* v = m.find_variable(s.variable);
    if (!v) return plan_error("state slot '" + s.variable + "' names no state variable");
    for (size_t j = 0; j < i; ++j)
      if (plan.state[j].variable == s.variable) return plan_error("state variable '" + s.variable + "' has two slots");
    int64_t elems = 1;
    for (int64_t d : v->max_shape) elems = d > 0 && elems > kMaxElements / d ? kMaxElements : elems * d;
    StatusOr<int64_t> bytes = storage_bytes(v->type, elems);
    if (!bytes.ok()) return bytes.status().with_context("memory plan: state variable '" + s.variable + "'");
    if (s.bytes < *bytes || s.offset < 0 || !aligned(s.offset, align) || s.offset > plan.state_bytes - s.bytes)
      return plan_error("state slot '" + s.variable + "' (bytes " + std::to_string(s.offset) + ".." +
                        std::to_string(s.offset + s.bytes) + ") must hold " + std::to_string(*bytes) +
                        " aligned bytes inside the state arena of " + std::to_string(plan.state_bytes));
    for (size_t j = 0; j < i; ++j) {
      const MemoryPlan::StateSlot& o = plan.state[j];
      if (s.offset < o.offset + o.bytes && o.offset < s.offset + s.bytes)
        return plan_error("state slots '" + o.variable + "' and '" + s.variable + "' share bytes");
    }
  }
  return Status::Ok();
}

std::string format_byte_size(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[48];
  if (u == 0) std::snprintf(buf, sizeof(buf), "%lld B", static_cast<long long>(bytes));
  else std::snprintf(buf, sizeof(buf), "%.2f %s", v, units[u]);
  return buf;
}

std::string memory_plan_report(const MemoryPlan& p) {
  auto line = [](const char* label, int64_t bytes) {
    char buf[160];
    std::snprintf(buf, sizeof(buf), "  %-18s %12s  (%lld bytes)\n", label, format_byte_size(bytes).c_str(),
                  static_cast<long long>(bytes));
    return std::string(buf);
  };
  std::string s = "memory plan: max batch " + std::to_string(p.max_batch) + " tokens, max context " +
                  std::to_string(p.max_context) + " tokens, alignment " + std::to_string(p.alignment) + "\n";
  s += line("activation arena", p.arena_bytes);
  s += line("naive (no reuse)", p.naive_bytes);
  s += line("lower bound", p.lower_bound_bytes);
  char ratio[96];
  std::snprintf(ratio, sizeof(ratio), "  %-18s %12.3f\n", "arena/lower bound",
                p.lower_bound_bytes > 0 ? static_cast<double>(p.arena_bytes) / static_cast<double>(p.lower_bound_bytes) : 1.0);
  s += ratio;
  s += line("state arena", p.state_bytes);
  s += line("KV per token", p.kv_bytes_per_token);
  return s;
}

std::string print_memory_plan(const Model& m, const MemoryPlan& p) {
  std::string s = memory_plan_report(p);
  s += "buffers (" + std::to_string(p.buffers.size()) + "):\n";
  for (const MemoryPlan::Buffer& b : p.buffers) {
    const Node* n = m.find(b.node);
    std::string op = n ? std::string(n->op_name()) : "?";
    std::string type = n && b.output >= 0 && b.output < static_cast<int>(n->outputs.size())
                           ? n->outputs[static_cast<size_t>(b.output)].str()
                           : "?";
    s += "  %" + memory_value_name(b.node, b.output) + " " + op + " " + type + " @" + std::to_string(b.offset) + " +" +
         std::to_string(b.bytes) + " live " + std::to_string(b.first_step) + ".." + std::to_string(b.last_step);
    if (!b.in_place_of.empty()) s += (b.view ? " view of %" : " in place of %") + b.in_place_of;
    s += "\n";
  }
  if (!p.state.empty()) {
    s += "state slots (" + std::to_string(p.state.size()) + "):\n";
    for (const MemoryPlan::StateSlot& slot : p.state)
      s += "  \"" + slot.variable + "\" @" + std::to_string(slot.offset) + " +" + std::to_string(slot.bytes) + "\n";
  }
  return s;
}

}  // namespace ingot
