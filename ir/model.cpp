#include "ir/model.h"

#include <algorithm>
#include <set>
#include <unordered_map>

#include "ir/ops.h"

namespace ingot {

const TensorType& Value::type() const {
  INGOT_ASSERT(node != nullptr && index >= 0 && index < static_cast<int>(node->outputs.size()),
               "Value does not name an existing output");
  return node->outputs[static_cast<size_t>(index)];
}


const Attribute& Node::attr(const std::string& key) const {
  auto it = attrs.find(key);
  INGOT_ASSERT(it != attrs.end(), "node " + name + " has no attribute " + key);
  return it->second;
}

std::string Node::constant_content_hash() const {
  if (constant && constant->defined()) return constant->content_hash();
  return constant_hash;
}

std::string Model::unique_name(std::string_view op) {
  std::string base(op);
  for (auto& c : base) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (;;) {
    std::string candidate = base + "_" + std::to_string(next_auto_name_++);
    if (!name_taken(candidate)) return candidate;
  }
}

// Checks the attributes against the op's schema and fills defaults.
static Status check_attrs(const OpDef& op, AttrMap& attrs) {
  for (auto& [key, value] : attrs) {
    auto it = std::find_if(op.attrs.begin(), op.attrs.end(), [&](const AttrSpec& s) { return key == s.name; });
    if (it == op.attrs.end()) return Status::Error(std::string(op.name()) + " has no attribute '" + key + "'");
    if (value.kind() != it->kind)
      return Status::Error(std::string(op.name()) + " attribute '" + key + "' must be " +
                           attr_kind_name(it->kind) + ", got " + attr_kind_name(value.kind()));
  }
  for (auto& spec : op.attrs) {
    if (attrs.count(spec.name)) continue;
    if (spec.required) return Status::Error(std::string(op.name()) + " requires attribute '" + spec.name + "'");
    attrs[spec.name] = spec.default_value;
  }
  return Status::Ok();
}

StatusOr<Node*> Model::add_node(NodeSpec spec) {
  const OpDef* op = &op_def(spec.op);
  const std::string op_name = op->name();
  int n_in = static_cast<int>(spec.inputs.size());
  if (n_in < op->min_inputs || (op->max_inputs >= 0 && n_in > op->max_inputs)) {
    std::string expected = op->min_inputs == op->max_inputs ? std::to_string(op->min_inputs)
                           : op->max_inputs < 0 ? "at least " + std::to_string(op->min_inputs)
                           : std::to_string(op->min_inputs) + " to " + std::to_string(op->max_inputs);
    return Status::Error(op_name + " takes " + expected + " inputs, got " + std::to_string(n_in));
  }
  for (auto& v : spec.inputs) {
    if (!v.node || v.index < 0 || v.index >= static_cast<int>(v.node->outputs.size()))
      return Status::Error(op_name + ": input does not name an existing output");
  }
  std::string ctx = op_name + (spec.name.empty() ? "" : " '" + spec.name + "'");
  INGOT_RETURN_IF_ERROR(check_attrs(*op, spec.attrs).with_context(ctx));
  if (!spec.name.empty() && name_taken(spec.name)) return Status::Error("duplicate node name '" + spec.name + "'");

  auto node = std::unique_ptr<Node>(new Node(op, spec.op));
  node->name = spec.name.empty() ? unique_name(op_name) : spec.name;
  node->inputs = std::move(spec.inputs);
  node->attrs = std::move(spec.attrs);
  node->outputs = std::move(spec.declared);
  node->constant = std::move(spec.constant);
  node->constant_hash = std::move(spec.constant_hash);
  INGOT_RETURN_IF_ERROR(op->infer(*node).with_context(std::string(op->name()) + " '" + node->name + "'"));
  node_index_.try_emplace(node->name, node.get());
  nodes_.push_back(std::move(node));
  memory_plan_.reset();
  return nodes_.back().get();
}

Status Model::add_variable(StateVariable v) {
  if (find_variable(v.name)) return Status::Error("duplicate state variable '" + v.name + "'");
  for (int64_t d : v.max_shape)
    if (d < 0) return Status::Error("state variable '" + v.name + "' has a negative maximum dimension");
  variable_index_.try_emplace(v.name, variables_.size());
  variables_.push_back(std::move(v));
  return Status::Ok();
}

const StateVariable* Model::find_variable(std::string_view name) const {
  if (!variable_index_valid_) {
    variable_index_.clear();
    for (size_t i = 0; i < variables_.size(); ++i) variable_index_.try_emplace(variables_[i].name, i);
    variable_index_valid_ = true;
  }
  auto it = variable_index_.find(std::string(name));
  return it == variable_index_.end() ? nullptr : &variables_[it->second];
}

void Model::reindex_nodes() const {
  node_index_.clear();
  for (auto& n : nodes_) node_index_.try_emplace(n->name, n.get());  // the first of duplicates, as a scan finds
}

Node* Model::find(std::string_view name) const {
  auto it = node_index_.find(std::string(name));
  if (it != node_index_.end() && it->second->name == name) return it->second;
  // A node renamed directly since it was indexed: scan, and remember the answer.
  for (auto& n : nodes_) {
    if (n->name == name) {
      node_index_[std::string(name)] = n.get();
      return n.get();
    }
  }
  return nullptr;
}

bool Model::name_taken(std::string_view name) const {
  auto it = node_index_.find(std::string(name));
  if (it == node_index_.end()) return false;  // renames made directly are the verifier's to check
  return it->second->name == name || find(name) != nullptr;
}

std::vector<Node*> Model::parameters() const {
  std::vector<Node*> r;
  for (auto& n : nodes_)
    if (n->is(Op::Parameter)) r.push_back(n.get());
  return r;
}

std::vector<Node*> Model::results() const {
  std::vector<Node*> r;
  for (auto& n : nodes_)
    if (n->is(Op::Result)) r.push_back(n.get());
  return r;
}

std::vector<Node*> Model::sinks() const {
  std::vector<Node*> r;
  for (auto& n : nodes_)
    if (n->is(Op::Result) || n->is(Op::Assign)) r.push_back(n.get());
  return r;
}

StatusOr<std::vector<Node*>> Model::topological_order() const {
  std::unordered_map<const Node*, size_t> index;
  for (size_t i = 0; i < nodes_.size(); ++i) index[nodes_[i].get()] = i;
  std::vector<int> pending(nodes_.size(), 0);
  std::vector<std::vector<size_t>> users(nodes_.size());
  for (size_t i = 0; i < nodes_.size(); ++i) {
    for (auto& v : nodes_[i]->inputs) {
      auto it = index.find(v.node);
      if (it == index.end())
        return Status::Error("node '" + nodes_[i]->name + "' has an input from a node outside the model");
      ++pending[i];
      users[it->second].push_back(i);
    }
  }
  // Kahn's algorithm with the smallest creation index first: deterministic.
  std::set<size_t> ready;
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (pending[i] == 0) ready.insert(i);
  std::vector<Node*> order;
  while (!ready.empty()) {
    size_t i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(nodes_[i].get());
    for (size_t u : users[i])
      if (--pending[u] == 0) ready.insert(u);
  }
  if (order.size() != nodes_.size()) {
    for (size_t i = 0; i < nodes_.size(); ++i)
      if (pending[i] > 0) return Status::Error("cycle through node '" + nodes_[i]->name + "'");
  }
  return order;
}

void Model::replace_all_uses(Value from, Value to) {
  memory_plan_.reset();
  for (auto& n : nodes_)
    for (auto& v : n->inputs)
      if (v == from) v = to;
}

std::vector<std::pair<Node*, int>> Model::users(Value v) const {
  std::vector<std::pair<Node*, int>> r;
  for (auto& n : nodes_)
    for (size_t i = 0; i < n->inputs.size(); ++i)
      if (n->inputs[i] == v) r.push_back({n.get(), static_cast<int>(i)});
  return r;
}

int Model::remove_dead_nodes() {
  int removed = 0;
  for (;;) {
    std::set<const Node*> used;
    for (auto& n : nodes_)
      for (auto& v : n->inputs) used.insert(v.node);
    auto dead = [&](const std::unique_ptr<Node>& n) {
      return !n->is(Op::Result) && !n->is(Op::Assign) && !n->is(Op::Parameter) && !used.count(n.get());
    };
    size_t before = nodes_.size();
    nodes_.erase(std::remove_if(nodes_.begin(), nodes_.end(), dead), nodes_.end());
    if (nodes_.size() == before) return removed;
    reindex_nodes();
    memory_plan_.reset();
    removed += static_cast<int>(before - nodes_.size());
  }
}

int Model::remove_nodes(const std::function<bool(const Node&)>& pred) {
  std::set<const Node*> doomed;
  for (auto& n : nodes_)
    if (pred(*n)) doomed.insert(n.get());
  for (auto& n : nodes_)
    if (!doomed.count(n.get()))
      for (auto& v : n->inputs) INGOT_ASSERT(!doomed.count(v.node), "removing node '" + v.node->name + "' that '" + n->name + "' uses");
  size_t before = nodes_.size();
  nodes_.erase(std::remove_if(nodes_.begin(), nodes_.end(), [&](auto& n) { return doomed.count(n.get()) != 0; }), nodes_.end());
  if (nodes_.size() != before) {
    reindex_nodes();
    memory_plan_.reset();
  }
  return static_cast<int>(before - nodes_.size());
}

Status Model::reinfer(Node* n) { return n->op().infer(*n); }

}  // namespace ingot
