#include "ir/verifier.h"

#include <algorithm>
#include <map>
#include <set>

#include "ir/ops.h"

namespace ingot {

const char* verify_code_name(VerifyCode c) {
  switch (c) {
    case VerifyCode::DuplicateName: return "duplicate-name";
    case VerifyCode::DanglingInput: return "dangling-input";
    case VerifyCode::Cycle: return "cycle";
    case VerifyCode::Arity: return "arity";
    case VerifyCode::BadAttribute: return "bad-attribute";
    case VerifyCode::TypeMismatch: return "type-mismatch";
    case VerifyCode::BadConstant: return "bad-constant";
    case VerifyCode::UnknownVariable: return "unknown-variable";
    case VerifyCode::VariableTypeMismatch: return "variable-type-mismatch";
    case VerifyCode::VariableNotAssigned: return "variable-not-assigned";
    case VerifyCode::VariableNotRead: return "variable-not-read";
    case VerifyCode::VariableMultipleAssign: return "variable-multiple-assign";
    case VerifyCode::DuplicateVariable: return "duplicate-variable";
    case VerifyCode::NoResults: return "no-results";
  }
  return "?";
}

namespace {

// Whether a value of shape `s` can be stored in a variable whose maximum shape is `max`.
bool fits_variable(const Shape& s, const std::vector<int64_t>& max) {
  if (s.size() != max.size()) return false;
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i].is_static() && (s[i].value() > max[i] || s[i].value() < 0)) return false;
  return true;
}

}  // namespace

std::vector<VerifyDiagnostic> verify_diagnostics(const Model& m) {
  std::vector<VerifyDiagnostic> diags;
  auto add = [&](VerifyCode c, const std::string& node, const std::string& msg) {
    diags.push_back({c, node, msg});
  };

  std::set<const Node*> in_model;
  for (auto& n : m.nodes()) in_model.insert(n.get());

  std::map<std::string, int> names;
  for (auto& n : m.nodes())
    if (++names[n->name] == 2) add(VerifyCode::DuplicateName, n->name, "node name '" + n->name + "' is used more than once");

  bool structure_ok = true;
  for (auto& n : m.nodes()) {
    const OpDef& op = n->op();
    int n_in = static_cast<int>(n->inputs.size());
    if (n_in < op.min_inputs || (op.max_inputs >= 0 && n_in > op.max_inputs)) {
      add(VerifyCode::Arity, n->name, std::string(op.name()) + " '" + n->name + "' has " + std::to_string(n_in) + " inputs");
      structure_ok = false;
    }
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      const Value& v = n->inputs[i];
      if (!in_model.count(v.node) || v.index < 0 || v.index >= static_cast<int>(v.node->outputs.size())) {
        add(VerifyCode::DanglingInput, n->name,
            "input " + std::to_string(i) + " of '" + n->name + "' refers to " +
                (in_model.count(v.node) ? "missing output " + std::to_string(v.index) + " of '" + v.node->name + "'"
                                        : std::string("a node outside the model")));
        structure_ok = false;
      }
    }
    for (auto& [key, value] : n->attrs) {
      auto it = std::find_if(op.attrs.begin(), op.attrs.end(), [&](const AttrSpec& s) { return key == s.name; });
      if (it == op.attrs.end()) add(VerifyCode::BadAttribute, n->name, std::string(op.name()) + " has no attribute '" + key + "'");
      else if (it->kind != value.kind())
        add(VerifyCode::BadAttribute, n->name, "attribute '" + key + "' of '" + n->name + "' must be " + attr_kind_name(it->kind));
    }
    for (auto& spec : op.attrs)
      if (!n->attrs.count(spec.name)) add(VerifyCode::BadAttribute, n->name, "'" + n->name + "' lacks attribute '" + spec.name + "'");
  }

  if (structure_ok) {
    auto order = m.topological_order();
    if (!order.ok()) {
      add(VerifyCode::Cycle, "", order.message());
      structure_ok = false;
    }
  }

  // Types: re-run inference on a copy of each node and compare with what is stored.
  bool attrs_ok = std::none_of(diags.begin(), diags.end(), [](auto& d) { return d.code == VerifyCode::BadAttribute; });
  if (structure_ok && attrs_ok) {
    for (auto& n : m.nodes()) {
      Node& node = *n;
      std::vector<TensorType> stored = node.outputs;
      Status st = node.op().infer(node);
      std::vector<TensorType> inferred = node.outputs;
      node.outputs = stored;  // restore: the verifier never changes the model
      if (!st.ok()) {
        bool constant = node.is(Op::Constant);
        add(constant ? VerifyCode::BadConstant : VerifyCode::TypeMismatch, node.name,
            std::string(node.op_name()) + " '" + node.name + "': " + st.message());
      } else if (inferred != stored) {
        std::string s, i;
        for (auto& t : stored) s += t.str() + " ";
        for (auto& t : inferred) i += t.str() + " ";
        add(VerifyCode::TypeMismatch, node.name, "'" + node.name + "' stores output types " + s + "but inference gives " + i);
      }
    }
  }

  // State variables: declared once, each read and written exactly once-or-more / once, types agree.
  std::map<std::string, int> var_count, reads, writes;
  for (auto& v : m.variables())
    if (++var_count[v.name] == 2) add(VerifyCode::DuplicateVariable, "", "state variable '" + v.name + "' is declared twice");
  for (auto& n : m.nodes()) {
    bool rv = n->is(Op::ReadValue), as = n->is(Op::Assign);
    // Stateful fused ops (Attention) both read and write the variables their attributes name.
    for (const char* key : n->op().state_attrs) {
      if (!n->has_attr(key) || n->attr(key).kind() != AttrKind::String) continue;
      const std::string& var = n->attr(key).as_string();
      const StateVariable* decl = m.find_variable(var);
      if (!decl) {
        add(VerifyCode::UnknownVariable, n->name, "'" + n->name + "' uses undeclared state variable '" + var + "'");
        continue;
      }
      reads[var]++;
      writes[var]++;
      // The op appends its k/v input [tokens, KV, D] to the variable [past, KV, D].
      const TensorType* t = nullptr;
      size_t slot = std::string(key) == "k_variable" ? 1 : 2;  // the packed form (one input) is checked by inference
      if (slot < n->inputs.size() && in_model.count(n->inputs[slot].node) &&
          n->inputs[slot].index < static_cast<int>(n->inputs[slot].node->outputs.size()))
        t = &n->inputs[slot].type();
      bool ok = decl->type == ElementType::f32 || decl->type == ElementType::f16;
      if (t && t->shape.size() == decl->max_shape.size()) {
        for (size_t d = 1; d < t->shape.size(); ++d)
          if (t->shape[d].is_static() && t->shape[d].value() != decl->max_shape[d]) ok = false;
      } else if (t) {
        ok = false;
      }
      if (n->inputs.size() == 1 && n->has_attr("kv_heads") && n->has_attr("head_dim") && decl->max_shape.size() == 3)
        ok = ok && n->attr("kv_heads").as_int() == decl->max_shape[1] && n->attr("head_dim").as_int() == decl->max_shape[2];
      if (!ok)
        add(VerifyCode::VariableTypeMismatch, n->name,
            "'" + n->name + "' appends " + (t ? t->str() : std::string("?")) + " to state variable '" + var + "' of " +
                std::string(type_name(decl->type)) + dims_str(decl->max_shape));
    }
    if (!rv && !as) continue;
    if (!n->has_attr("variable") || n->attr("variable").kind() != AttrKind::String) continue;
    const std::string& var = n->attr("variable").as_string();
    const StateVariable* decl = m.find_variable(var);
    if (!decl) {
      add(VerifyCode::UnknownVariable, n->name, "'" + n->name + "' uses undeclared state variable '" + var + "'");
      continue;
    }
    (rv ? reads : writes)[var]++;
    const TensorType* t = nullptr;
    if (rv && !n->outputs.empty()) t = &n->outputs[0];
    if (as && !n->inputs.empty() && in_model.count(n->inputs[0].node) &&
        n->inputs[0].index < static_cast<int>(n->inputs[0].node->outputs.size()))
      t = &n->inputs[0].type();
    if (t && (t->type != decl->type || !fits_variable(t->shape, decl->max_shape)))
      add(VerifyCode::VariableTypeMismatch, n->name,
          "'" + n->name + "' " + (rv ? "reads " : "writes ") + t->str() + " but state variable '" + var + "' is " +
              std::string(type_name(decl->type)) + dims_str(decl->max_shape) + " at most");
  }
  for (auto& v : m.variables()) {
    if (reads[v.name] && !writes[v.name])
      add(VerifyCode::VariableNotAssigned, "", "state variable '" + v.name + "' is read but never assigned");
    if (!reads[v.name])
      add(VerifyCode::VariableNotRead, "", "state variable '" + v.name + "' is never read");
    if (writes[v.name] > 1)
      add(VerifyCode::VariableMultipleAssign, "", "state variable '" + v.name + "' is assigned " + std::to_string(writes[v.name]) + " times");
  }

  if (m.results().empty()) add(VerifyCode::NoResults, "", "the model has no Result");
  return diags;
}

Status verify(const Model& m) {
  auto diags = verify_diagnostics(m);
  if (diags.empty()) return Status::Ok();
  std::string msg = "model '" + m.name() + "' failed verification:";
  for (auto& d : diags) msg += std::string("\n  [") + verify_code_name(d.code) + "] " + d.message;
  return Status::Error(msg);
}

}  // namespace ingot
