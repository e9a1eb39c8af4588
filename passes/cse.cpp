// cse: common-subexpression elimination. Two nodes are one if they have the same op, inputs,
// attributes and output types (inputs in either order for commutative ops); two constants are one
// if they have the same type, shape and bytes. The first in topological order survives.
// Parameters, ReadValues, Assigns and Results are never merged: they are the model's interface
// and its state, each one distinct even when it looks the same.
#include <cstring>
#include <algorithm>
#include <map>
#include <vector>
#include <unordered_map>

#include "passes/generic_passes.h"
#include "ir/ops.h"

namespace ingot {
namespace {

bool never_merged(const Node& n) {
  return n.is(Op::Parameter) || n.is(Op::ReadValue) || n.is(Op::Assign) || n.is(Op::Result);
}

bool has_constant_data(const Node& n) { return n.constant && n.constant->defined(); }

// FNV-1a over at most 3 x 1 KiB of the data (start, middle, end): weights of one shape almost
// always differ there, so the full content hash is only computed for likely duplicates.
uint64_t sample_hash(const Tensor& t) {
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&](size_t from, size_t len) {
    // Buffer::read: a lazily concatenated weight is sampled without being joined.
    len = from < t.nbytes() ? std::min(len, t.nbytes() - from) : 0;
    std::vector<uint8_t> bytes(len);
    if (len) t.buffer()->read(from, len, bytes.data());
    for (uint8_t b : bytes) {
      h ^= b;
      h *= 0x100000001b3ull;
    }
  };
  const size_t k = 1024, n = t.nbytes();
  if (n <= 3 * k) {
    mix(0, n);
  } else {
    mix(0, k);
    mix(n / 2, k);
    mix(n - k, k);
  }
  return h;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  if (a.nbytes() != b.nbytes()) return false;
  if (a.raw() == b.raw() || a.nbytes() == 0) return true;
  return std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

class CommonSubexpressionElimination : public Pass {
 public:
  const char* name() const override { return "cse"; }

  StatusOr<bool> run(Model& m) override {
    INGOT_ASSIGN_OR_RETURN(std::vector<Node*> order, m.topological_order());
    // Node ids by topological position: keys then do not depend on addresses or names.
    std::unordered_map<const Node*, size_t> id;
    for (size_t i = 0; i < order.size(); ++i) id[order[i]] = i;
    std::map<std::string, Node*> ops;                   // key -> survivor
    std::map<std::string, std::vector<Node*>> consts;   // type, shape, size, sample hash -> survivors
    std::unordered_map<const Node*, std::string> full_hash;
    bool changed = false;
    for (Node* n : order) {
      if (never_merged(*n)) continue;
      Node* same = nullptr;
      if (n->is(Op::Constant)) {
        // Opaque constants (parsed from a summarized text) have no bytes to compare: kept apart.
        if (!has_constant_data(*n)) continue;
        std::string key = n->outputs[0].str() + "/" + std::to_string(n->constant->nbytes()) + "/" +
                          std::to_string(sample_hash(*n->constant));
        auto& candidates = consts[key];
        for (Node* c : candidates) {
          if (!full_hash.count(c)) full_hash[c] = c->constant->content_hash();
          if (!full_hash.count(n)) full_hash[n] = n->constant->content_hash();
          if (full_hash[c] == full_hash[n] && same_bytes(*c->constant, *n->constant)) {
            same = c;
            break;
          }
        }
        if (!same) candidates.push_back(n);
      } else {
        std::string key = op_key(*n, id);
        auto [it, inserted] = ops.emplace(key, n);
        if (!inserted) same = it->second;
      }
      if (!same) continue;
      // Inputs of later nodes then name the survivor, so their keys match too.
      for (size_t i = 0; i < n->outputs.size(); ++i)
        m.replace_all_uses(Value{n, static_cast<int>(i)}, Value{same, static_cast<int>(i)});
      changed = true;
    }
    if (changed) m.remove_dead_nodes();
    return changed;
  }

 private:
  static std::string op_key(const Node& n, const std::unordered_map<const Node*, size_t>& id) {
    std::vector<std::string> inputs;
    for (const Value& v : n.inputs) inputs.push_back(std::to_string(id.at(v.node)) + ":" + std::to_string(v.index));
    if (inputs.size() == 2 && n.op().has(kCommutative) && inputs[1] < inputs[0]) std::swap(inputs[0], inputs[1]);
    std::string key(n.op_name());
    key += "(";
    for (auto& s : inputs) key += s + ",";
    key += "){";
    for (auto& [k, a] : n.attrs) key += k + "=" + a.str() + ";";
    key += "}:";
    for (auto& t : n.outputs) key += t.str() + ";";
    return key;
  }
};

}  // namespace

std::unique_ptr<Pass> create_cse_pass() { return std::make_unique<CommonSubexpressionElimination>(); }

}  // namespace ingot
