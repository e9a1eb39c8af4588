// Declarative graph patterns, a backtracking matcher that explains its failures, and a greedy
// rewrite driver. A rewrite is one RewritePattern: a pattern tree plus a rewrite function. The
// simplifications (passes/simplify.cpp) and all fourteen LLM fusions (passes/fusion/llm_fusions.cpp)
// are written this way; a fusion that matches more than one tree (parallel projections of one
// input, a KV cache's Concat and Assign) is rooted on one node, with the rest as predicates.
//
//   // x * 1 -> x  (commutative ops also try the swapped input order)
//   RewritePattern mul_one{"mul-one", op(Op::Multiply, {any("x"), constant_scalar(1.0)}), replace_with("x")};
//
// Patterns match Values. op(...) checks the producing node's op and, when inputs are given, its
// input count and each input; any(...) matches everything; constants and predicates narrow a
// pattern. A capture name binds a Value (and thereby its Node); a name used twice must bind the
// same Value both times, so op(Op::Add, {any("x"), any("x")}) matches x + x only.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ir/attribute.h"
#include "ir/model.h"
#include "base/status.h"

namespace ingot {

class Captures;

// Users of every node output, counted in one walk over the model (an input slot is one use).
// The greedy driver counts again after every rewrite: two flat arrays, no allocation per node.
class UseCounts {
 public:
  explicit UseCounts(const Model& m);
  int count(Value v) const;        // uses of one output
  int total(const Node* n) const;  // uses of all of a node's outputs

 private:
  struct Entry {
    const Node* node = nullptr;  // null: an empty slot
    int first = 0;               // its output 0 in counts_
    int outputs = 0;             // its number of outputs
  };
  const Entry* find(const Node* n) const;
  std::vector<Entry> table_;  // open addressing by node address, a power of two long
  std::vector<int> counts_;   // uses of each output, node after node
};

// A condition on a matched Value. `check` returns nullopt when the value satisfies it, else a
// short account of what was found instead ("Reshape 'r' with 2 uses"): the matcher reports
// "expected <description>, got <that>".
struct Predicate {
  std::string description;  // "rank 2", "a single use", "element type f16"
  std::function<std::optional<std::string>(Value v, const Captures& context)> check;
};

// A predicate from a plain test of the value; a failure reports the value and its type.
Predicate predicate(std::string description, std::function<bool(Value v)> test);

// Built-in predicates.
Predicate element_type(ElementType t);                 // the value's element type is t
Predicate rank(int64_t n);                             // the value's rank is n
Predicate single_use();                                // exactly one user (needs Captures(model))
Predicate constant_value(double v);                    // a Constant with data whose every element equals v
Predicate attr_equals(std::string key, Attribute a);   // the producing node has attribute key == a
Predicate has_type(TensorType t);                      // element type and shape equal t

struct PatternNode;

// A pattern over Values: cheap to copy (shared, immutable tree).
class Pattern {
 public:
  // Adds a condition the matched value must also satisfy.
  Pattern where(Predicate p) const;
  // Binds the matched value to `name` in the Captures.
  Pattern capture(std::string name) const;
  // The op the root must have; nullopt for any(...) and constant(...) roots.
  std::optional<Op> root_op() const;
  std::string str() const;  // "Multiply(x, <constant 1>)@m [a single use]": for debug output

  const PatternNode& node() const { return *node_; }
  explicit Pattern(std::shared_ptr<const PatternNode> n) : node_(std::move(n)) {}

 private:
  std::shared_ptr<const PatternNode> node_;
};

// Any value; captured as `name` when it is not empty.
Pattern any(std::string name = "");
// A value produced by an `kind` node, inputs not examined.
Pattern op(Op kind);
// A value produced by an `kind` node with exactly these inputs. Commutative ops (the kCommutative
// trait: Add, Multiply, Maximum, Minimum, Equal, NotEqual, LogicalAnd, LogicalOr) also match with
// the two inputs swapped.
Pattern op(Op kind, std::vector<Pattern> inputs);
// The same with the node's output captured as `name`.
Pattern op(Op kind, std::vector<Pattern> inputs, std::string name);
// A Constant node (with or without data).
Pattern constant(std::string name = "");
// A Constant with data and exactly one element, equal to v (any rank: f32[], f32[1, 1], ...).
Pattern constant_scalar(double v, std::string name = "");


// What a match binds: capture names to Values. Constructed with the model when a pattern uses
// use counts (single_use); the driver passes the use counts it maintains, else they are counted
// on demand.
class Captures {
 public:
  Captures() = default;
  explicit Captures(const Model& m, const UseCounts* uses = nullptr) : model_(&m), uses_(uses) {}

  bool has(const std::string& name) const { return values_.count(name) != 0; }
  Value value(const std::string& name) const;  // asserts the capture exists
  Node* node(const std::string& name) const { return value(name).node; }
  const std::map<std::string, Value>& values() const { return values_; }

  const Model* model() const { return model_; }
  // Users of the node output `v` (input slots that read it); nullopt without a model.
  std::optional<int> use_count(Value v) const;

  // Matcher internals: bind (false if the name holds another value) and undo on backtracking.
  bool bind(const std::string& name, Value v);
  void restore(const std::map<std::string, Value>& saved) { values_ = saved; }

 private:
  const Model* model_ = nullptr;
  const UseCounts* uses_ = nullptr;
  std::map<std::string, Value> values_;
};

// Matches `pattern` against `root`. On success the captures hold every bound name; on failure
// they are left as they were and `why` (when given) says where and how the match failed, e.g.
// "Multiply 'mul_3' input 1: expected a constant equal to 1, got Parameter 'x'".
bool match(const Pattern& pattern, Value root, Captures& captures, std::string* why = nullptr);

// ---------------------------------------------------------------- rewriting

using RewriteFn = std::function<StatusOr<bool>(Model& m, const Captures& captures, Node* root)>;

struct RewritePattern {
  std::string name;  // shown in debug output and errors
  Pattern pattern;   // matched at output 0 of each node
  RewriteFn rewrite; // returns whether it changed the model; false: leave it as it was
};

// Walks the nodes in topological order, tries each pattern (in order) at each live node and
// runs the first rewrite that applies; then removes dead nodes and repeats until a walk changes
// nothing or `max_iterations` walks were made. Deterministic. Returns whether anything changed.
StatusOr<bool> apply_patterns_greedily(Model& m, std::span<const RewritePattern> patterns, int max_iterations = 16);

// A rewrite whose pattern matched but that cannot be done after all (a fused node that does not
// fit, say) returns decline("why"): false, the model unchanged, and the debug output reads
// "matched, rewrite declined: why" (MLIR's notifyMatchFailure).
StatusOr<bool> decline(std::string why);

// Rewrite helpers.
// A rewrite that replaces the root's output 0 by the captured value `name` when their types are
// equal and fully known (no '?' dims); else it does nothing and returns false.
RewriteFn replace_with(std::string name);
bool same_type(Value a, Value b);
// Every use of `from` reads `to`; an error naming both types if they differ (a bug in a rewrite).
Status replace_value(Model& m, Value from, Value to);
// `replacement` takes the name of `replaced`, which gets the replacement's former name: a fused
// node keeps the name of the node it stands for, so names stay stable through the pipeline.
void take_name(Node* replaced, Node* replacement);
// Sets a node's inputs and attributes in place and re-infers its type; if inference fails or
// the output types would change, restores the node and returns false.
bool update_node(Model& m, Node* n, std::vector<Value> inputs, AttrMap attrs);
// The single element of a Constant with data and one element.
std::optional<double> scalar_constant(Value v);

// ---------------------------------------------------------------- debug output

// Where match failures and applied rewrites are reported: the stream of the innermost
// ScopedMatchDebug, else std::cerr when INGOT_DEBUG_MATCH=1, else nowhere (nullptr).
std::ostream* match_debug_stream();

class ScopedMatchDebug {
 public:
  explicit ScopedMatchDebug(std::ostream* out);
  ~ScopedMatchDebug();
  ScopedMatchDebug(const ScopedMatchDebug&) = delete;
  ScopedMatchDebug& operator=(const ScopedMatchDebug&) = delete;

 private:
  std::ostream* previous_;
  bool previous_set_;
};

}  // namespace ingot
