#include "passes/pattern.h"
#include "ir/ops.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iostream>

#include "ir/element_type.h"

namespace ingot {

struct PatternNode {
  enum class Kind { Any, Op, Constant };
  Kind kind = Kind::Any;
  Op op = Op::Parameter;           // Kind::Op
  bool check_inputs = false;       // Kind::Op: inputs given
  std::vector<Pattern> inputs;
  std::optional<double> scalar;    // Kind::Constant: exactly one element, equal to this
  std::vector<Predicate> predicates;
  std::string capture;
};

namespace {

std::shared_ptr<PatternNode> make_node(PatternNode::Kind kind, std::string name) {
  auto n = std::make_shared<PatternNode>();
  n->kind = kind;
  n->capture = std::move(name);
  return n;
}

std::string number_str(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  return format_double(v);
}

// "Multiply 'mul_3'", with the output index when it is not 0.
std::string describe(const Node* n, int index = 0) {
  if (!n) return "nothing";
  std::string s = std::string(n->op_name()) + " '" + n->name + "'";
  if (index != 0) s += " output " + std::to_string(index);
  return s;
}

std::string describe(Value v) { return describe(v.node, v.index); }

std::string describe_typed(Value v) {
  std::string s = describe(v);
  if (v.node && v.index >= 0 && v.index < static_cast<int>(v.node->outputs.size())) s += " : " + v.type().str();
  return s;
}

bool has_output(Value v) { return v.node && v.index >= 0 && v.index < static_cast<int>(v.node->outputs.size()); }

const Tensor* constant_data(Value v) {
  if (!v.node || !v.node->is(Op::Constant) || !v.node->constant || !v.node->constant->defined()) return nullptr;
  return v.node->constant.get();
}

bool plain_type(ElementType t) { return !type_info(t).is_quantized; }

// Where a value sits relative to the pattern root, for messages: "Multiply 'mul_3' input 1".
struct Location {
  const Node* parent = nullptr;
  int input = -1;
  std::string str() const {
    if (!parent) return "";
    return describe(parent) + " input " + std::to_string(input);
  }
};

// Backtracking matcher: each step calls a continuation that matches the rest of the pattern, so
// a commutative choice deep in the tree is revisited when a later sibling fails.
class Matcher {
 public:
  Matcher(Captures& caps, bool explain) : caps_(caps), explain_(explain) {}

  bool match(const PatternNode& p, Value v, Location at, const std::function<bool()>& rest) {
    if (!head_matches(p, v, at)) return false;
    std::map<std::string, Value> saved = caps_.values();
    if (!p.capture.empty() && !caps_.bind(p.capture, v)) {
      fail(at, "the value captured as '" + p.capture + "' (" + describe(caps_.value(p.capture)) + ")", describe(v));
      return false;
    }
    ++progress_;
    bool ok = p.kind == PatternNode::Kind::Op && p.check_inputs ? match_inputs(p, v.node, rest) : rest();
    --progress_;
    if (!ok) caps_.restore(saved);
    return ok;
  }

  const std::string& why() const { return why_; }

 private:
  // The op or constant test and the predicates: everything about `v` itself.
  bool head_matches(const PatternNode& p, Value v, Location at) {
    switch (p.kind) {
      case PatternNode::Kind::Any:
        break;
      case PatternNode::Kind::Op:
        if (!v.node || !v.node->is(p.op)) {
          fail(at, op_name(p.op), describe(v));
          return false;
        }
        break;
      case PatternNode::Kind::Constant: {
        if (!v.node || !v.node->is(Op::Constant)) {
          fail(at, expected_constant(p), describe(v));
          return false;
        }
        if (p.scalar) {
          const Tensor* t = constant_data(v);
          bool ok = t && plain_type(t->type()) && t->numel() == 1 && t->get_f(0) == *p.scalar;
          if (!ok) {
            fail(at, expected_constant(p), constant_summary(v));
            return false;
          }
        }
        break;
      }
    }
    checks_passed_ = 1;
    for (const Predicate& pred : p.predicates) {
      auto got = pred.check(v, caps_);
      if (got) {
        fail(at, pred.description, *got);
        checks_passed_ = 0;
        return false;
      }
      ++checks_passed_;
    }
    checks_passed_ = 0;
    return true;
  }

  bool match_inputs(const PatternNode& p, Node* n, const std::function<bool()>& rest) {
    if (n->inputs.size() != p.inputs.size()) {
      fail(Location{}, std::string(op_name(p.op)) + (" with " + std::to_string(p.inputs.size()) + " inputs"),
           describe(n) + " with " + std::to_string(n->inputs.size()));
      return false;
    }
    std::vector<int> order(p.inputs.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
    if (try_order(p, n, order, 0, rest)) return true;
    if (order.size() == 2 && op_def(p.op).has(kCommutative)) {
      std::swap(order[0], order[1]);
      return try_order(p, n, order, 0, rest);
    }
    return false;
  }

  // Pattern input i matches node input order[i].
  bool try_order(const PatternNode& p, Node* n, const std::vector<int>& order, size_t i,
                 const std::function<bool()>& rest) {
    if (i == order.size()) return rest();
    int slot = order[i];
    return match(p.inputs[i].node(), n->inputs[static_cast<size_t>(slot)], Location{n, slot},
                 [&] { return try_order(p, n, order, i + 1, rest); });
  }

  static std::string expected_constant(const PatternNode& p) {
    return p.scalar ? "a constant equal to " + number_str(*p.scalar) : "a constant";
  }

  static std::string constant_summary(Value v) {
    const Tensor* t = constant_data(v);
    if (!t) return describe(v) + " without data";
    if (t->numel() != 1 || !plain_type(t->type())) return describe_typed(v);
    return describe(v) + " = " + number_str(t->get_f(0));
  }

  // Keeps the failure that came after the most matched pattern nodes: the closest miss.
  // Keeps the failure that got furthest: the most pattern nodes matched, then, at the failing
  // node, the most of its checks passed (its op, then each predicate). For a commutative op
  // that is the input order that came closer.
  void fail(Location at, const std::string& expected, const std::string& got) {
    const int depth = progress_ * 64 + checks_passed_;
    if (!explain_ || depth <= best_progress_) return;
    best_progress_ = depth;
    std::string where = at.str();
    why_ = (where.empty() ? "" : where + ": ") + "expected " + expected + ", got " + got;
  }

  Captures& caps_;
  bool explain_;
  int progress_ = 0;
  int checks_passed_ = 0;  // at the node head_matches is looking at
  int best_progress_ = -1;
  std::string why_;
};

std::string pattern_str(const PatternNode& p) {
  std::string s;
  switch (p.kind) {
    case PatternNode::Kind::Any:
      s = p.capture.empty() ? "_" : p.capture;
      break;
    case PatternNode::Kind::Constant:
      s = p.scalar ? "<constant " + number_str(*p.scalar) + ">" : "<constant>";
      if (!p.capture.empty()) s += "@" + p.capture;
      break;
    case PatternNode::Kind::Op:
      s = op_name(p.op);
      if (p.check_inputs) {
        s += "(";
        for (size_t i = 0; i < p.inputs.size(); ++i) s += (i ? ", " : "") + p.inputs[i].str();
        s += ")";
      }
      if (!p.capture.empty()) s += "@" + p.capture;
      break;
  }
  for (auto& pred : p.predicates) s += " [" + pred.description + "]";
  return s;
}

}  // namespace

// ---------------------------------------------------------------- patterns

Pattern Pattern::where(Predicate p) const {
  auto n = std::make_shared<PatternNode>(*node_);
  n->predicates.push_back(std::move(p));
  return Pattern(std::move(n));
}

Pattern Pattern::capture(std::string name) const {
  auto n = std::make_shared<PatternNode>(*node_);
  n->capture = std::move(name);
  return Pattern(std::move(n));
}

std::optional<Op> Pattern::root_op() const {
  if (node_->kind != PatternNode::Kind::Op) return std::nullopt;
  return node_->op;
}

std::string Pattern::str() const { return pattern_str(*node_); }

Pattern any(std::string name) { return Pattern(make_node(PatternNode::Kind::Any, std::move(name))); }

Pattern op(Op op_kind) {
  auto n = make_node(PatternNode::Kind::Op, "");
  n->op = op_kind;
  return Pattern(std::move(n));
}

Pattern op(Op op_kind, std::vector<Pattern> inputs) { return op(op_kind, std::move(inputs), ""); }

Pattern op(Op op_kind, std::vector<Pattern> inputs, std::string name) {
  auto n = make_node(PatternNode::Kind::Op, std::move(name));
  n->op = op_kind;
  n->check_inputs = true;
  n->inputs = std::move(inputs);
  return Pattern(std::move(n));
}

Pattern constant(std::string name) { return Pattern(make_node(PatternNode::Kind::Constant, std::move(name))); }

Pattern constant_scalar(double v, std::string name) {
  auto n = make_node(PatternNode::Kind::Constant, std::move(name));
  n->scalar = v;
  return Pattern(std::move(n));
}


// ---------------------------------------------------------------- predicates

Predicate predicate(std::string description, std::function<bool(Value v)> test) {
  return Predicate{std::move(description),
                   [test = std::move(test)](Value v, const Captures&) -> std::optional<std::string> {
                     if (test(v)) return std::nullopt;
                     return describe_typed(v);
                   }};
}

Predicate element_type(ElementType t) {
  return predicate("element type " + std::string(type_name(t)), [t](Value v) { return has_output(v) && v.type().type == t; });
}

Predicate rank(int64_t n) {
  return predicate("rank " + std::to_string(n),
                   [n](Value v) { return has_output(v) && static_cast<int64_t>(v.type().shape.size()) == n; });
}

Predicate has_type(TensorType t) {
  return predicate("type " + t.str(), [t](Value v) { return has_output(v) && v.type() == t; });
}

Predicate single_use() {
  return Predicate{"a single use", [](Value v, const Captures& c) -> std::optional<std::string> {
                     auto n = c.use_count(v);
                     if (!n) return describe(v) + " (no model given to count uses)";
                     if (*n == 1) return std::nullopt;
                     return describe(v) + " with " + std::to_string(*n) + " uses";
                   }};
}

Predicate constant_value(double v) {
  return Predicate{"a constant equal to " + number_str(v),
                   [v](Value x, const Captures&) -> std::optional<std::string> {
                     const Tensor* t = constant_data(x);
                     if (!t || !plain_type(t->type())) return describe_typed(x);
                     for (int64_t i = 0; i < t->numel(); ++i)
                       if (t->get_f(i) != v)
                         return describe_typed(x) + " with element " + std::to_string(i) + " = " + number_str(t->get_f(i));
                     return std::nullopt;
                   }};
}

Predicate attr_equals(std::string key, Attribute a) {
  std::string desc = key + " = " + a.str();
  return Predicate{desc, [key, a](Value v, const Captures&) -> std::optional<std::string> {
                     if (!v.node) return std::string("nothing");
                     auto it = v.node->attrs.find(key);
                     if (it == v.node->attrs.end()) return describe(v) + " without " + key;
                     if (it->second == a) return std::nullopt;
                     return describe(v) + " with " + key + " = " + it->second.str();
                   }};
}

// ---------------------------------------------------------------- captures and match

namespace {

size_t node_hash(const Node* n, size_t mask) {
  return static_cast<size_t>((reinterpret_cast<uintptr_t>(n) >> 4) * 0x9E3779B97F4A7C15ull >> 17) & mask;
}

}  // namespace

UseCounts::UseCounts(const Model& m) {
  size_t size = 16;
  while (size < 2 * m.nodes().size()) size *= 2;
  table_.resize(size);
  int next = 0;
  for (auto& n : m.nodes()) {
    size_t i = node_hash(n.get(), size - 1);
    while (table_[i].node) i = (i + 1) & (size - 1);
    const int outputs = static_cast<int>(n->outputs.size());
    table_[i] = Entry{n.get(), next, outputs};
    next += outputs;
  }
  counts_.assign(static_cast<size_t>(next), 0);
  for (auto& n : m.nodes())
    for (const Value& v : n->inputs) {
      const Entry* e = find(v.node);
      if (e && v.index >= 0 && v.index < e->outputs) ++counts_[static_cast<size_t>(e->first + v.index)];
    }
}

const UseCounts::Entry* UseCounts::find(const Node* n) const {
  if (!n) return nullptr;
  const size_t mask = table_.size() - 1;
  for (size_t i = node_hash(n, mask);; i = (i + 1) & mask) {
    if (table_[i].node == n) return &table_[i];
    if (!table_[i].node) return nullptr;
  }
}

int UseCounts::count(Value v) const {
  const Entry* e = find(v.node);
  if (!e || v.index < 0 || v.index >= e->outputs) return 0;
  return counts_[static_cast<size_t>(e->first + v.index)];
}

int UseCounts::total(const Node* n) const {
  const Entry* e = find(n);
  if (!e) return 0;
  int t = 0;
  for (int i = 0; i < e->outputs; ++i) t += counts_[static_cast<size_t>(e->first + i)];
  return t;
}

Value Captures::value(const std::string& name) const {
  auto it = values_.find(name);
  INGOT_ASSERT(it != values_.end(), "no capture named '" + name + "'");
  return it->second;
}

std::optional<int> Captures::use_count(Value v) const {
  if (uses_) return uses_->count(v);
  if (!model_) return std::nullopt;
  return static_cast<int>(model_->users(v).size());
}

bool Captures::bind(const std::string& name, Value v) {
  auto [it, inserted] = values_.emplace(name, v);
  return inserted || it->second == v;
}

bool match(const Pattern& pattern, Value root, Captures& captures, std::string* why) {
  Matcher m(captures, why != nullptr);
  bool ok = m.match(pattern.node(), root, Location{}, [] { return true; });
  if (!ok && why) *why = m.why();
  return ok;
}

// ---------------------------------------------------------------- rewrite helpers

bool same_type(Value a, Value b) { return has_output(a) && has_output(b) && a.type() == b.type(); }

Status replace_value(Model& m, Value from, Value to) {
  if (!same_type(from, to))
    return Status::Error("cannot replace " + describe_typed(from) + " by " + describe_typed(to) + ": the types differ");
  m.replace_all_uses(from, to);
  return Status::Ok();
}

bool has_unknown_dim(const TensorType& t) {
  for (const Dim& d : t.shape)
    if (d.is_unknown()) return true;
  return false;
}

RewriteFn replace_with(std::string name) {
  return [name = std::move(name)](Model& m, const Captures& c, Node* root) -> StatusOr<bool> {
    Value to = c.value(name);
    if (root->outputs.empty() || !same_type(root->out(0), to)) return false;
    // f32[?] == f32[?] proves nothing: x[?] * ones[3] is [3] when x is [1] at run time.
    if (has_unknown_dim(to.type())) return false;
    m.replace_all_uses(root->out(0), to);
    return true;
  };
}

void take_name(Node* replaced, Node* replacement) { std::swap(replaced->name, replacement->name); }

bool update_node(Model& m, Node* n, std::vector<Value> inputs, AttrMap attrs) {
  std::vector<Value> old_inputs = n->inputs;
  AttrMap old_attrs = n->attrs;
  std::vector<TensorType> old_outputs = n->outputs;
  n->inputs = std::move(inputs);
  n->attrs = std::move(attrs);
  if (m.reinfer(n).ok() && n->outputs == old_outputs) return true;
  n->inputs = std::move(old_inputs);
  n->attrs = std::move(old_attrs);
  n->outputs = std::move(old_outputs);
  return false;
}

std::optional<double> scalar_constant(Value v) {
  const Tensor* t = constant_data(v);
  if (!t || !plain_type(t->type()) || t->numel() != 1) return std::nullopt;
  return t->get_f(0);
}

// ---------------------------------------------------------------- greedy driver

namespace {

// The reason the rewrite the driver is running gave for declining, when debug output is on.
thread_local std::string g_decline_reason;

bool is_sink_or_input(const Node* n) { return n->is(Op::Result) || n->is(Op::Assign) || n->is(Op::Parameter); }

}  // namespace

StatusOr<bool> decline(std::string why) {
  if (match_debug_stream()) g_decline_reason = std::move(why);
  return false;
}

StatusOr<bool> apply_patterns_greedily(Model& m, std::span<const RewritePattern> patterns, int max_iterations) {
  std::ostream* debug = match_debug_stream();
  bool changed_any = false;
  for (int iter = 0; iter < max_iterations; ++iter) {
    if (debug) *debug << "[match] walk " << iter + 1 << "\n";
    INGOT_ASSIGN_OR_RETURN(std::vector<Node*> order, m.topological_order());
    UseCounts uses(m);
    bool changed = false;
    for (Node* n : order) {
      // A node an earlier rewrite of this walk left without users is garbage: leave it be.
      if (!is_sink_or_input(n) && uses.total(n) == 0) continue;
      Value root{n, 0};
      for (const RewritePattern& rp : patterns) {
        const std::optional<Op> want = rp.pattern.root_op();
        if (want && !n->is(*want)) continue;
        Captures caps(m, &uses);
        std::string why;
        if (!match(rp.pattern, root, caps, debug ? &why : nullptr)) {
          if (debug) *debug << "[match] " << rp.name << " at " << describe(root) << ": " << why << "\n";
          continue;
        }
        g_decline_reason.clear();
        auto r = rp.rewrite(m, caps, n);
        if (!r.ok()) return r.status().with_context("pattern '" + rp.name + "' at " + describe(root));
        if (debug) {
          *debug << "[match] " << rp.name << " at " << describe(root) << ": matched, ";
          if (*r) *debug << "rewritten\n";
          else *debug << "rewrite declined" << (g_decline_reason.empty() ? "" : ": " + g_decline_reason) << "\n";
        }
        if (*r) {
          changed = true;
          uses = UseCounts(m);
          break;  // the root has most likely been replaced: the next walk looks at it again
        }
      }
    }
    if (!changed) return changed_any;
    changed_any = true;
    m.remove_dead_nodes();
  }
  if (debug) *debug << "[match] no fixed point after " << max_iterations << " iterations\n";
  return changed_any;
}

// ---------------------------------------------------------------- debug output

namespace {

thread_local std::ostream* g_debug_stream = nullptr;
thread_local bool g_debug_set = false;

}  // namespace

std::ostream* match_debug_stream() {
  if (g_debug_set) return g_debug_stream;
  static const bool from_env = [] {
    const char* e = std::getenv("INGOT_DEBUG_MATCH");
    return e && std::string(e) == "1";
  }();
  return from_env ? &std::cerr : nullptr;
}

ScopedMatchDebug::ScopedMatchDebug(std::ostream* out) : previous_(g_debug_stream), previous_set_(g_debug_set) {
  g_debug_stream = out;
  g_debug_set = true;
}

ScopedMatchDebug::~ScopedMatchDebug() {
  g_debug_stream = previous_;
  g_debug_set = previous_set_;
}

}  // namespace ingot
