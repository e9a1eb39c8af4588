// The Ingot graph: nodes with typed outputs, constants, parameters, results and state variables.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ir/attribute.h"
#include "ir/op_kind.h"
#include "ir/shape.h"
#include "base/status.h"
#include "ir/tensor.h"

namespace ingot {

struct OpDef;
struct MemoryPlan;
class Node;

// One output of one node.
struct Value {
  Node* node = nullptr;
  int index = 0;
  const TensorType& type() const;
  bool operator==(const Value& o) const { return node == o.node && index == o.index; }
  bool operator!=(const Value& o) const { return !(*this == o); }
};

// A state variable carried across calls (the KV cache): read by ReadValue, written by Assign.
struct StateVariable {
  std::string name;
  ElementType type = ElementType::f32;
  std::vector<int64_t> max_shape;  // static upper bound, used to size state memory
  bool operator==(const StateVariable& o) const {
    return name == o.name && type == o.type && max_shape == o.max_shape;
  }
};

class Node {
 public:
  const OpDef& op() const { return *op_; }
  Op kind() const { return kind_; }
  std::string_view op_name() const { return ingot::op_name(kind_); }
  bool is(Op op) const { return kind_ == op; }

  std::string name;
  std::vector<Value> inputs;
  std::vector<TensorType> outputs;
  AttrMap attrs;
  // Constant nodes: the data (may be absent after parsing a summarized text: "opaque").
  std::shared_ptr<const Tensor> constant;
  // Constant nodes parsed from summarized text keep the hash they were printed with.
  std::string constant_hash;

  Value out(int i = 0) { return Value{this, i}; }
  const Attribute& attr(const std::string& key) const;  // asserts presence
  bool has_attr(const std::string& key) const { return attrs.count(key) != 0; }
  // The content hash of a constant: of its data when present, else the parsed one.
  std::string constant_content_hash() const;

 private:
  friend class Model;
  Node(const OpDef* op, Op kind) : op_(op), kind_(kind) {}
  const OpDef* op_;
  Op kind_;
};

// Everything needed to create one node.
struct NodeSpec {
  Op op;
  std::vector<Value> inputs;
  AttrMap attrs;
  std::string name;                     // empty: a unique name is generated
  std::vector<TensorType> declared;     // output types of Parameter, ReadValue, Constant
  std::shared_ptr<const Tensor> constant;
  std::string constant_hash;            // opaque constants only
};

class Model {
 public:
  explicit Model(std::string name = "model") : name_(std::move(name)) {}
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const std::string& name() const { return name_; }
  void set_name(std::string n) { name_ = std::move(n); }

  // Creates a node: checks the op exists, arity, attributes against the op's schema (filling
  // defaults), runs shape inference, and gives it a unique name. Errors are user errors.
  StatusOr<Node*> add_node(NodeSpec spec);

  // Lookups by name (find_variable, find, and the duplicate checks of add_variable / add_node) use
  // hash indexes: building a model of n nodes is O(n), not O(n^2).
  Status add_variable(StateVariable v);
  const std::vector<StateVariable>& variables() const { return variables_; }
  // For edits by hand (tests, the verifier's cases); the variable index is rebuilt on next use.
  std::vector<StateVariable>& mutable_variables() {
    variable_index_valid_ = false;
    return variables_;
  }
  const StateVariable* find_variable(std::string_view name) const;

  // Nodes in creation order. Passes and tests may edit them; the verifier checks the result. Names
  // are indexed when nodes are added; find() also finds a node renamed since (by a scan), but the
  // duplicate checks of add_node trust the index, so a name set directly is the verifier's to check.
  const std::vector<std::unique_ptr<Node>>& nodes() const { return nodes_; }
  Node* find(std::string_view name) const;
  std::vector<Node*> parameters() const;  // in creation order: the model's inputs
  std::vector<Node*> results() const;     // in creation order: the model's outputs
  std::vector<Node*> sinks() const;       // Result and Assign nodes

  // Nodes ordered so every input precedes its user; ties keep creation order.
  // An error names a node on a cycle or a dangling input.
  StatusOr<std::vector<Node*>> topological_order() const;

  // Every use of `from` now reads `to`.
  void replace_all_uses(Value from, Value to);
  // Removes nodes that are not Parameters, Results or Assigns and have no users, repeatedly.
  int remove_dead_nodes();
  // Removes the nodes `pred` selects (e.g. Assigns a stateful fused op replaced). Asserts that no
  // remaining node uses them.
  int remove_nodes(const std::function<bool(const Node&)>& pred);
  std::vector<std::pair<Node*, int>> users(Value v) const;  // (user, input slot)

  // Re-runs shape inference on one node (after its inputs changed).
  Status reinfer(Node* n);

  // Where every activation lives (ir/memory_plan.h), set by the memory-planning pass; null until
  // then. Adding, removing or rewiring nodes through the methods above drops it; edits made to
  // nodes directly do not, and check_memory_plan() tells whether a plan still fits.
  const std::shared_ptr<const MemoryPlan>& memory_plan() const { return memory_plan_; }
  void set_memory_plan(std::shared_ptr<const MemoryPlan> plan) { memory_plan_ = std::move(plan); }

 private:
  std::string unique_name(std::string_view op);
  std::string name_;
  std::vector<std::unique_ptr<Node>> nodes_;
  void reindex_nodes() const;
  bool name_taken(std::string_view name) const;  // by the index
  std::vector<StateVariable> variables_;
  // name -> node; an entry may be stale after a rename (checked on every hit).
  mutable std::unordered_map<std::string, Node*> node_index_;
  // name -> index in variables_; rebuilt when mutable_variables() handed the vector out.
  mutable std::unordered_map<std::string, size_t> variable_index_;
  mutable bool variable_index_valid_ = true;
  int64_t next_auto_name_ = 0;
  std::shared_ptr<const MemoryPlan> memory_plan_;
};

}  // namespace ingot
