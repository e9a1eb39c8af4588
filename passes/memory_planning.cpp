// The memory-planning pass. See docs/passes.md, "Memory planning".
//
// 1. Order and liveness: the execution order is Model::topological_order(). A value is live from
//    its producer's step to its last reader's step; Parameters from step 0 (the runtime copies the
//    inputs in before the first step); Results to the last step. Constants are not in the arena.
// 2. Sizes: each value at its largest over the bounds (max_storage_bytes), rounded up to the
//    alignment.
// 3. Sharing (the table below): a view (Reshape, Result) is its input's bytes; an eligible op
//    writes its output over an input whose storage nobody reads after it. Values that share bytes
//    form one storage group, live from its first member's first step to its last member's last.
// 4. Placement: offline, every group at once: best fit over the groups sorted by size (largest
//    first), and again sorted by first step; the smaller arena wins.
#include "passes/memory_planning.h"
#include "ir/ops.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <string>
#include <unordered_map>
#include <optional>
#include <vector>

namespace ingot {
namespace {

// ---------------------------------------------------------------- what may share bytes

enum class Reuse { none, in_place, view };

// Which inputs an op's output may share bytes with is part of the op's definition
// (OpDef::in_place and the kView trait, ir/ops.cpp, where the kernels' obligations are listed).
// Whatever the op, an input is taken only when it has exactly the output's shape (no broadcast),
// the same plain element size (so element i sits at the same byte offset in both), and nothing
// reads its bytes after this node.
struct ReuseRule {
  Reuse reuse;
  InPlaceFn inputs;  // the inputs whose bytes the output may take
};

std::optional<ReuseRule> find_rule(const Node& n) {
  const OpDef& op = n.op();
  if (!op.in_place) return std::nullopt;
  return ReuseRule{op.has(kView) ? Reuse::view : Reuse::in_place, op.in_place};
}

bool same_plain_element_size(ElementType a, ElementType b) {
  const ElementTypeInfo &ia = type_info(a), &ib = type_info(b);
  return ia.block_elems == 1 && ib.block_elems == 1 && ia.block_bytes == ib.block_bytes;
}

int64_t round_up(int64_t v, int64_t alignment) { return (v + alignment - 1) / alignment * alignment; }

// ---------------------------------------------------------------- placement

struct Group {
  int first = 0, last = 0;
  int64_t bytes = 0;
  int64_t offset = 0;
};

// Places every group at the lowest-waste gap among the already placed groups whose live ranges
// overlap its own (best fit; the top of the arena when no gap fits), in the given order.
// Returns the arena size.
int64_t place(std::vector<Group>& groups, const std::vector<int>& order) {
  std::vector<int> placed;
  int64_t arena = 0;
  for (int g : order) {
    Group& cur = groups[static_cast<size_t>(g)];
    std::vector<const Group*> live;
    for (int p : placed) {
      const Group& o = groups[static_cast<size_t>(p)];
      if (o.first <= cur.last && cur.first <= o.last && o.bytes > 0) live.push_back(&o);
    }
    std::sort(live.begin(), live.end(), [](const Group* a, const Group* b) {
      return a->offset != b->offset ? a->offset < b->offset : a->bytes < b->bytes;
    });
    int64_t best = -1, best_waste = 0, end = 0;
    for (const Group* o : live) {
      const int64_t gap = o->offset - end;
      if (gap >= cur.bytes && (best < 0 || gap - cur.bytes < best_waste)) {
        best = end;
        best_waste = gap - cur.bytes;
      }
      end = std::max(end, o->offset + o->bytes);
    }
    cur.offset = best >= 0 ? best : end;
    arena = std::max(arena, cur.offset + cur.bytes);
    placed.push_back(g);
  }
  return arena;
}

// ---------------------------------------------------------------- the planner

struct ValueInfo {
  Node* node = nullptr;
  int output = 0;
  int first = 0, last = 0;
  int64_t bytes = 0;
  int group = -1;
  Reuse reuse = Reuse::none;
  int source = -1;  // the value taken over
};

}  // namespace

StatusOr<MemoryPlan> plan_memory(const Model& m, const MemoryPlanOptions& options) {
  if (options.max_batch < 1)
    return Status::Error("memory planning: the batch bound must be at least 1 token, got " + std::to_string(options.max_batch));
  if (options.alignment < 1 || (options.alignment & (options.alignment - 1)) != 0)
    return Status::Error("memory planning: the alignment must be a power of two, got " + std::to_string(options.alignment));
  INGOT_ASSIGN_OR_RETURN(std::vector<Node*> order, m.topological_order());

  MemoryPlan plan;
  plan.max_batch = options.max_batch;
  plan.max_context = model_max_context(m);
  plan.alignment = options.alignment;
  const int n_steps = static_cast<int>(order.size());
  const int last_step = n_steps - 1;

  // Values, their sizes and live ranges.
  std::unordered_map<const Node*, int> step;
  std::vector<ValueInfo> values;
  std::map<std::pair<const Node*, int>, int> value_index;
  for (int s = 0; s < n_steps; ++s) {
    Node* n = order[static_cast<size_t>(s)];
    step[n] = s;
    plan.order.push_back(n->name);
    if (n->is(Op::Constant)) continue;
    for (size_t i = 0; i < n->outputs.size(); ++i) {
      StatusOr<int64_t> size = max_storage_bytes(n->outputs[i], plan.max_batch, plan.max_context);
      if (!size.ok())
        return size.status().with_context("memory planning: " + std::string(n->op_name()) + " '" + n->name + "' output " +
                                          std::to_string(i));
      ValueInfo v;
      v.node = n;
      v.output = static_cast<int>(i);
      v.first = n->is(Op::Parameter) ? 0 : s;
      v.last = n->is(Op::Result) ? last_step : s;
      v.bytes = round_up(*size, plan.alignment);
      value_index[{n, static_cast<int>(i)}] = static_cast<int>(values.size());
      values.push_back(v);
    }
  }
  auto index_of = [&](const Value& v) {
    auto it = value_index.find({v.node, v.index});
    return it == value_index.end() ? -1 : it->second;  // -1: a Constant
  };
  for (Node* n : order)
    for (const Value& in : n->inputs)
      if (int i = index_of(in); i >= 0) values[static_cast<size_t>(i)].last = std::max(values[static_cast<size_t>(i)].last, step.at(n));

  // Storage groups: views and in-place outputs join the group of the input they take.
  std::vector<Group> groups;
  for (ValueInfo& v : values) {
    const Node& n = *v.node;
    const int s = step.at(v.node);
    const std::optional<ReuseRule> rule = n.outputs.size() == 1 ? find_rule(n) : std::nullopt;
    const TensorType& out = n.outputs[static_cast<size_t>(v.output)];
    if (rule && (rule->reuse == Reuse::view || options.in_place)) {
      for (int k : rule->inputs(n)) {
        const int src = index_of(n.inputs[static_cast<size_t>(k)]);
        if (src < 0) continue;
        const ValueInfo& x = values[static_cast<size_t>(src)];
        Group& g = groups[static_cast<size_t>(x.group)];
        if (v.bytes > g.bytes) continue;
        if (rule->reuse == Reuse::in_place) {
          const TensorType& in = n.inputs[static_cast<size_t>(k)].type();
          if (in.shape != out.shape || !same_plain_element_size(in.type, out.type)) continue;
          if (g.last != s) continue;  // someone reads these bytes after this node
          // Another input in the same storage (a view of x) would be read after being overwritten.
          bool shared = false;
          for (const Value& other : n.inputs)
            if (other != n.inputs[static_cast<size_t>(k)]) {
              const int o = index_of(other);
              shared |= o >= 0 && values[static_cast<size_t>(o)].group == x.group;
            }
          if (shared) continue;
        }
        v.reuse = rule->reuse;
        v.source = src;
        v.group = x.group;
        break;
      }
    }
    if (v.group < 0) {
      v.group = static_cast<int>(groups.size());
      groups.push_back(Group{v.first, v.last, v.bytes, 0});
    }
    Group& g = groups[static_cast<size_t>(v.group)];
    g.first = std::min(g.first, v.first);
    g.last = std::max(g.last, v.last);
  }

  // Placement: the better of two orders.
  std::vector<int> by_size(groups.size()), by_start(groups.size());
  std::iota(by_size.begin(), by_size.end(), 0);
  std::iota(by_start.begin(), by_start.end(), 0);
  // Ties by longer life, then by group number: deterministic.
  std::sort(by_size.begin(), by_size.end(), [&](int a, int b) {
    const Group &ga = groups[static_cast<size_t>(a)], &gb = groups[static_cast<size_t>(b)];
    if (ga.bytes != gb.bytes) return ga.bytes > gb.bytes;
    if (ga.last - ga.first != gb.last - gb.first) return ga.last - ga.first > gb.last - gb.first;
    return a < b;
  });
  std::sort(by_start.begin(), by_start.end(), [&](int a, int b) {
    const Group &ga = groups[static_cast<size_t>(a)], &gb = groups[static_cast<size_t>(b)];
    if (ga.first != gb.first) return ga.first < gb.first;
    if (ga.bytes != gb.bytes) return ga.bytes > gb.bytes;
    return a < b;
  });
  std::vector<Group> alt = groups;
  const int64_t arena_size = place(groups, by_size);
  const int64_t arena_start = place(alt, by_start);
  if (arena_start < arena_size) groups = alt;
  plan.arena_bytes = std::min(arena_size, arena_start);

  for (const ValueInfo& v : values) {
    MemoryPlan::Buffer b;
    b.node = v.node->name;
    b.output = v.output;
    b.offset = groups[static_cast<size_t>(v.group)].offset;
    b.bytes = v.bytes;
    b.first_step = v.first;
    b.last_step = v.last;
    if (v.source >= 0) {
      const ValueInfo& src = values[static_cast<size_t>(v.source)];
      b.in_place_of = memory_value_name(src.node->name, src.output);
      b.view = v.reuse == Reuse::view;
    }
    if (v.reuse != Reuse::view) plan.naive_bytes += v.bytes;
    plan.buffers.push_back(std::move(b));
  }
  // The lower bound: the most group bytes live at one step.
  std::vector<int64_t> delta(static_cast<size_t>(n_steps) + 1, 0);
  for (const Group& g : groups) {
    delta[static_cast<size_t>(g.first)] += g.bytes;
    delta[static_cast<size_t>(g.last) + 1] -= g.bytes;
  }
  int64_t live = 0;
  for (int s = 0; s < n_steps; ++s) plan.lower_bound_bytes = std::max(plan.lower_bound_bytes, live += delta[static_cast<size_t>(s)]);

  // The state arena: one slot per variable at its maximum shape.
  for (const StateVariable& var : m.variables()) {
    int64_t elems = 1, row = 1;
    for (size_t d = 0; d < var.max_shape.size(); ++d) {
      if (var.max_shape[d] != 0 && elems > (int64_t{1} << 50) / var.max_shape[d])
        return Status::Error("memory planning: state variable '" + var.name + "' is too large");
      elems *= var.max_shape[d];
      if (d > 0) row *= var.max_shape[d];
    }
    StatusOr<int64_t> bytes = storage_bytes(var.type, elems);
    if (!bytes.ok()) return bytes.status().with_context("memory planning: state variable '" + var.name + "'");
    plan.state.push_back({var.name, plan.state_bytes, round_up(*bytes, plan.alignment)});
    plan.state_bytes += plan.state.back().bytes;
    if (!var.max_shape.empty() && var.max_shape[0] > 0) {
      StatusOr<int64_t> per_token = storage_bytes(var.type, row);
      if (per_token.ok()) plan.kv_bytes_per_token += *per_token;
    }
  }

  Status checked = check_memory_plan(m, plan);
  INGOT_ASSERT(checked.ok(), "the planner made a plan its checker rejects: " + checked.message());
  return plan;
}

namespace {

class MemoryPlanningPass : public Pass {
 public:
  explicit MemoryPlanningPass(MemoryPlanOptions options) : options_(options) {}
  const char* name() const override { return "memory-planning"; }
  StatusOr<bool> run(Model& m) override {
    INGOT_ASSIGN_OR_RETURN(MemoryPlan plan, plan_memory(m, options_));
    m.set_memory_plan(std::make_shared<const MemoryPlan>(std::move(plan)));
    return false;  // the graph is unchanged
  }

 private:
  MemoryPlanOptions options_;
};

}  // namespace

std::unique_ptr<Pass> create_memory_planning_pass() { return create_memory_planning_pass(MemoryPlanOptions{}); }
std::unique_ptr<Pass> create_memory_planning_pass(const MemoryPlanOptions& options) {
  return std::make_unique<MemoryPlanningPass>(options);
}

}  // namespace ingot
