#include "passes/fusion/llm_fusions.h"

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "passes/pattern.h"

namespace ingot::fusion {
namespace {

constexpr int64_t kEnd = std::numeric_limits<int64_t>::max();

// ------------------------------------------------------------------ matching helpers

// The node producing `v` when it is `op`, else null.
Node* def(Value v, Op op) { return v.node && v.node->is(op) ? v.node : nullptr; }

bool attr_ints_are(const Node* n, const char* key, std::vector<int64_t> want) {
  return n->has_attr(key) && n->attr(key).kind() == AttrKind::Ints && n->attr(key).as_ints() == want;
}

// A Slice of one axis [begin, end) with step 1; axis normalized against the input's rank.
struct SliceInfo {
  Value input;
  int64_t axis = 0, begin = 0, end = 0;
};

std::optional<SliceInfo> slice_info(Value v) {
  Node* n = def(v, Op::Slice);
  if (!n) return std::nullopt;
  const auto& axes = n->attr("axes").as_ints();
  const auto& step = n->attr("step").as_ints();
  if (axes.size() != 1 || (!step.empty() && step[0] != 1)) return std::nullopt;
  int64_t rank = static_cast<int64_t>(n->inputs[0].type().shape.size());
  int64_t axis = axes[0] < 0 ? axes[0] + rank : axes[0];
  return SliceInfo{n->inputs[0], axis, n->attr("begin").as_ints()[0], n->attr("end").as_ints()[0]};
}

Node* add(Model& m, NodeSpec spec) {
  auto n = m.add_node(std::move(spec));
  INGOT_ASSERT(n.ok(), "a fusion built an invalid node: " + n.message());
  return *n;
}

Value add_value(Model& m, NodeSpec spec) { return add(m, std::move(spec))->out(); }

// Replaces `old` with `fresh` when their types agree (a fusion must never change a type).
bool replace(Model& m, Value old, Value fresh) {
  if (old.type() != fresh.type()) return false;
  m.replace_all_uses(old, fresh);
  return true;
}

// "Reshape 'r'", and with its type "Reshape 'r' : f32[T, 4]": values as the matcher names them in
// its explanations (the output index when it is not 0).
std::string describe(Value v) {
  if (!v.node) return "nothing";
  return std::string(v.node->op_name()) + " '" + v.node->name + "'" + (v.index ? " output " + std::to_string(v.index) : "");
}
std::string describe_typed(Value v) { return describe(v) + " : " + v.type().str(); }

NodeSpec spec(Op op, std::vector<Value> inputs, AttrMap attrs = {}) {
  return NodeSpec{op, std::move(inputs), std::move(attrs), "", {}, nullptr, ""};
}

// Every fusion is a list of RewritePatterns run by the greedy driver (passes/pattern.h), one rule
// per line: the pattern says what is matched, named predicates say what must hold, and
// --debug-match reports where a match fails. What a tree cannot say (a match with several roots:
// the parallel projections of one input, the KV cache's Concat and Assign, the rotated head views
// of a projection) is a predicate on a matched value that reports what it found; a rewrite that
// cannot be done after all declines with the reason.

// ------------------------------------------------------------------ RMSNorm, SwiGLU

// A ReduceMean over the last axis, keeping it.
Predicate mean_over_last_axis() {
  return predicate("a mean over the last axis with keep_dims", [](Value v) {
    const Node* rm = v.node;
    const int64_t last = static_cast<int64_t>(rm->inputs[0].type().shape.size()) - 1;
    return rm->attr("keep_dims").as_bool() && (attr_ints_are(rm, "axes", {-1}) || attr_ints_are(rm, "axes", {last}));
  });
}
// A positive scalar constant.
Predicate positive_scalar() {
  return predicate("a positive scalar", [](Value v) {
    auto e = scalar_constant(v);
    return e && *e > 0 && v.type().shape.empty();
  });
}
// An f32 vector.
Predicate f32_vector() {
  return predicate("an f32 vector", [](Value v) { return v.type().type == ElementType::f32 && v.type().shape.size() == 1; });
}
// The same type as the value captured as `name` (matched earlier in the pattern).
Predicate same_type_as(std::string name) {
  return Predicate{"the type of " + name, [name](Value v, const Captures& c) -> std::optional<std::string> {
                     if (c.has(name) && v.type() == c.value(name).type()) return std::nullopt;
                     return v.type().str();
                   }};
}

StatusOr<bool> rewrite_rms_norm(Model& m, const Captures& c, Node* root) {
  Value fused = add_value(m, spec(Op::RMSNorm, {c.value("x"), c.value("w")},
                                  {{"eps", Attribute::Float(*scalar_constant(c.value("eps")))}}));
  return replace(m, root->out(), fused);
}

StatusOr<bool> rewrite_swiglu(Model& m, const Captures& c, Node* root) {
  return replace(m, root->out(), add_value(m, spec(Op::SwiGLU, {c.value("g"), c.value("up")})));
}

std::vector<RewritePattern> rms_norm_patterns() {
  // A shared intermediate would have to be computed anyway: fusing would not save it (single_use).
  Pattern x = any("x").where(element_type(ElementType::f32));
  Pattern squares = op(Op::Power, {x, constant_scalar(2.0)}).where(single_use());
  Pattern mean = op(Op::ReduceMean, {squares}).where(single_use()).where(mean_over_last_axis());
  Pattern rms = op(Op::Sqrt, {op(Op::Add, {mean, constant("eps").where(positive_scalar())}).where(single_use())}).where(single_use());
  return {
      // x / sqrt(mean(x^2, -1) + eps) * w -> RMSNorm(x, w){eps}
      {"rms-norm", op(Op::Multiply, {op(Op::Divide, {x, rms}).where(single_use()), any("w").where(f32_vector())}), rewrite_rms_norm},
  };
}

std::vector<RewritePattern> swiglu_patterns() {
  Pattern silu = op(Op::Multiply, {any("g"), op(Op::Sigmoid, {any("g")}).where(single_use())}).where(single_use());
  return {
      // (g * sigmoid(g)) * up -> SwiGLU(g, up), g and up f32 of one type
      {"swiglu", op(Op::Multiply, {silu, any("up").where(same_type_as("g")).where(element_type(ElementType::f32))}), rewrite_swiglu},
  };
}

// ------------------------------------------------------------------ RoPE

// A [T, 1, half] view Reshape(table[T, half]) of a cos or sin table: the view captured as `view`,
// the table as `table`. (The ranks are checked here; RoPE's type inference checks the sizes.)
Pattern rope_table_view(const std::string& view, const std::string& table) {
  return op(Op::Reshape, {any(table).where(rank(2))}, view).where(rank(3));
}

// Slice(pairs, axis 3, [i, i + 1)): the even (i = 0) or odd (i = 1) members of the pairs.
Predicate pair_member(int64_t i) {
  return predicate(i == 0 ? "the even members [0, 1) along axis 3" : "the odd members [1, 2) along axis 3", [i](Value v) {
    auto s = slice_info(v);
    return s && s->axis == 3 && s->begin == i && s->end == i + 1;
  });
}

// A Concat of rank 4 along its last axis.
Predicate concat_of_pairs() {
  return predicate("a rank-4 Concat along the last axis", [](Value v) {
    const int64_t axis = v.node->attr("axis").as_int();
    return v.type().shape.size() == 4 && (axis == 3 || axis == -1);
  });
}

// x of the result's element type and element count (captured as `result`): RoPE(x) or a Reshape
// of x to [T, H, D] replaces it.
Predicate elements_of(std::string result) {
  return Predicate{"the element type and count of " + result, [result](Value v, const Captures& c) -> std::optional<std::string> {
                     const TensorType& out = c.value(result).type();
                     if (v.type().type == out.type && num_elements(v.type().shape) == num_elements(out.shape)) return std::nullopt;
                     return describe_typed(v) + " for " + out.str();
                   }};
}

// A rank-3 value [T, H, D] with D static.
Predicate static_head_dim() {
  return predicate("rank 3 with a static last dimension", [](Value v) {
    const Shape& s = v.type().shape;
    return s.size() == 3 && s[2].is_static();
  });
}

// x[:, :, D/2:] (upper) or x[:, :, :D/2] (lower) of x [T, H, D].
Predicate rotate_half_slice(bool upper) {
  return predicate(upper ? "the upper half [D/2, D) along axis 2" : "the lower half [0, D/2) along axis 2", [upper](Value v) {
    auto s = slice_info(v);
    if (!s) return false;
    const Shape& shape = s->input.type().shape;
    if (shape.size() != 3 || !shape[2].is_static() || s->axis != 2) return false;
    const int64_t d = shape[2].value(), half = d / 2;
    return upper ? s->begin == half && (s->end == d || s->end == kEnd) : s->begin == 0 && s->end == half;
  });
}

// Adds RoPE(x, cos, sin){layout} and replaces the root with it; declines if it does not fit.
StatusOr<bool> replace_with_rope(Model& m, Node* root, Value x, const Captures& c, const char* layout) {
  auto fused = m.add_node(spec(Op::RoPE, {x, c.value("cos"), c.value("sin")}, {{"layout", Attribute::String(layout)}}));
  if (!fused.ok()) return decline("the tables do not fit x: " + fused.message());
  if (!replace(m, root->out(), (*fused)->out())) return decline("RoPE's type differs from the result's");
  return true;
}

StatusOr<bool> rewrite_rope_interleaved(Model& m, const Captures& c, Node* root) {
  Value x = c.value("x");
  const TensorType& out = root->outputs[0];
  // Simplification may have folded the head split into the pair split: restore [T, H, D].
  if (x.type() != out) x = add_value(m, spec(Op::Reshape, {x}, {{"shape", Attribute::Dims(out.shape)}}));
  return replace_with_rope(m, root, x, c, "interleaved");
}

std::vector<RewritePattern> rope_patterns() {
  // Interleaved: x0, x1 are the even and odd members of the pairs Reshape(x, [T, H, D/2, 2]).
  Pattern pairs = op(Op::Reshape, {any("x").where(elements_of("y"))}, "pairs");
  Pattern x0 = op(Op::Reshape, {op(Op::Slice, {pairs}).where(pair_member(0))}, "x0");
  Pattern x1 = op(Op::Reshape, {op(Op::Slice, {pairs}).where(pair_member(1))}, "x1");
  Pattern c = rope_table_view("c", "cos"), s = rope_table_view("s", "sin");
  Pattern y0 = op(Op::Subtract, {op(Op::Multiply, {x0, c}), op(Op::Multiply, {x1, s})});
  Pattern y1 = op(Op::Add, {op(Op::Multiply, {x0, s}), op(Op::Multiply, {x1, c})});
  Pattern rotated_pairs = op(Op::Concat, {op(Op::Reshape, {y0}), op(Op::Reshape, {y1})}).where(concat_of_pairs());
  // Rotate-half: x [T, H, D] with the halves x[:D/2], x[D/2:] along the last axis.
  Pattern x = any("x").where(static_head_dim());
  Pattern rotated = op(Op::Concat, {op(Op::Negative, {op(Op::Slice, {any("x")}).where(rotate_half_slice(true))}),
                                    op(Op::Slice, {any("x")}).where(rotate_half_slice(false))});
  return {
      // Reshape(Concat(Reshape(x0*c - x1*s), Reshape(x0*s + x1*c)), [T, H, D]) -> RoPE(x, cos, sin){interleaved}
      {"rope-interleaved", op(Op::Reshape, {rotated_pairs}, "y").where(rank(3)), rewrite_rope_interleaved},
      // x * Concat(c, c) + Concat(-x[D/2:], x[:D/2]) * Concat(s, s) -> RoPE(x, cos, sin){rotate_half}
      {"rope-rotate-half", op(Op::Add, {op(Op::Multiply, {x, op(Op::Concat, {c, any("c")})}), op(Op::Multiply, {rotated, op(Op::Concat, {s, any("s")})})}),
       [](Model& m, const Captures& c, Node* root) { return replace_with_rope(m, root, c.value("x"), c, "rotate_half"); }},
  };
}

// ------------------------------------------------------------------ Attention

// A KV cache: kall = Concat(ReadValue(var), fresh, axis 0) whose other user is Assign(var).
struct CacheMatch {
  std::string variable;
  Value fresh;
  Node* assign = nullptr;
};

// The cache behind `heads`, the input of a head-first Transpose: kall itself, or kall with its KV
// heads repeated for grouped-query attention, Reshape(Broadcast(Reshape(kall))). A cache of another
// type (f16) is read through Convert(Concat(ReadValue, Convert(fresh)), f32): the fused op stores
// into and reads from the variable's own type, the same rounding. Without a cache, `why` says what
// was found instead.
std::optional<CacheMatch> kv_cache(const Model& m, Value heads, std::string& why) {
  Value all = heads;
  if (Node* merge = def(heads, Op::Reshape)) {
    Node* b = def(merge->inputs[0], Op::Broadcast);
    Node* split = b ? def(b->inputs[0], Op::Reshape) : nullptr;
    if (!split) {
      why = describe(heads) + ", not heads repeated by Reshape(Broadcast(Reshape(cache)))";
      return std::nullopt;
    }
    all = split->inputs[0];
  }
  Node* widen = def(all, Op::Convert);
  if (widen) {
    if (widen->attr("to").as_type() != ElementType::f32) {
      why = describe_typed(all) + ", a conversion to another type than f32";
      return std::nullopt;
    }
    all = widen->inputs[0];
  }
  Node* cat = def(all, Op::Concat);
  if (!cat || cat->inputs.size() != 2 || cat->attr("axis").as_int() != 0) {
    why = describe_typed(all) + ", not a Concat of two along axis 0";
    return std::nullopt;
  }
  Node* read = def(cat->inputs[0], Op::ReadValue);
  if (!read) {
    why = describe(all) + " of " + describe(cat->inputs[0]) + ", not of a ReadValue";
    return std::nullopt;
  }
  Value fresh = cat->inputs[1];
  if (widen) {
    Node* narrow = def(fresh, Op::Convert);
    if (!narrow || narrow->inputs[0].type().type != ElementType::f32) {
      why = describe(all) + " appending " + describe(fresh) + ", not a conversion of f32 values";
      return std::nullopt;
    }
    fresh = narrow->inputs[0];
  }
  CacheMatch c{read->attr("variable").as_string(), fresh, nullptr};
  for (auto& [user, slot] : m.users(all)) {
    if (user->is(Op::Assign) && user->attr("variable").as_string() == c.variable) c.assign = user;
  }
  if (!c.assign) {
    why = describe(all) + ", not written back by an Assign to '" + c.variable + "'";
    return std::nullopt;
  }
  if (const size_t uses = m.users(cat->inputs[0]).size(); uses != 1) {
    why = describe(cat->inputs[0]) + " with " + std::to_string(uses) + " uses";
    return std::nullopt;
  }
  return c;
}

// The input of a head-first Transpose is a KV cache (kv_cache).
Predicate kv_cache_heads() {
  return Predicate{"a cache Concat(ReadValue(var), new) written back by Assign(var), heads maybe repeated",
                   [](Value v, const Captures& c) -> std::optional<std::string> {
                     if (!c.model()) return describe(v) + " (no model given to find the Assign)";
                     std::string why;
                     if (kv_cache(*c.model(), v, why)) return std::nullopt;
                     return why;
                   }};
}

Predicate step_one() {
  return predicate("step 1", [](Value v) { return v.node->attr("step").as_float() == 1.0; });
}

// Queries pos .. pos+L-1 against keys 0 .. past+L-1 (captured as `keys`): key <= query is causal
// when pos = past, the contract of the graph's `pos` input.
Predicate queries_after_past_keys() {
  return Predicate{"L queries for past+L keys", [](Value v, const Captures& c) -> std::optional<std::string> {
                     const Shape& q = v.type().shape;
                     const Shape& k = c.value("keys").type().shape;
                     if (q.size() == 1 && k.size() == 1 && k[0] == Dim::symbol("past") + q[0]) return std::nullopt;
                     return describe_typed(v) + " for keys " + c.value("keys").type().str();
                   }};
}

// A MatMul without transposes, or with transpose_b only.
Predicate transposes_b(bool b) {
  return predicate(b ? "transpose_b only" : "no transposes", [b](Value v) {
    return !v.node->attr("transpose_a").as_bool() && v.node->attr("transpose_b").as_bool() == b;
  });
}

std::vector<RewritePattern> attention_patterns(std::vector<Node*>& replaced_assigns) {
  Predicate heads_first = attr_equals("perm", Attribute::Ints({1, 0, 2}));  // [T, H, D] <-> [H, T, D]
  Predicate one_element = predicate("one element", [](Value v) { return scalar_constant(v).has_value(); });
  Predicate minus_infinity = predicate("-inf", [](Value v) {
    auto f = scalar_constant(v);
    return f && std::isinf(*f) && *f < 0;
  });
  Predicate over_keys = predicate("a softmax over the keys (last axis)", [](Value v) {
    const int64_t axis = v.node->attr("axis").as_int();
    return axis == -1 || axis == 2;
  });
  // LessEqual(Range(0), Reshape(Range(pos), [L, 1])): key position <= query position.
  Pattern keys = op(Op::Range, {constant_scalar(0.0)}, "keys").where(step_one());
  Pattern queries = op(Op::Reshape, {op(Op::Range, {any()}).where(step_one()).where(queries_after_past_keys())}, "queries").where(rank(2));
  Pattern causal = op(Op::LessEqual, {keys, queries});
  // And key position > query position - W: a sliding window of W keys (the same key and query
  // positions, captured by name).
  Pattern windowed = op(Op::LogicalAnd, {causal, op(Op::Greater, {keys, op(Op::Subtract, {queries, constant("window").where(one_element)})})});
  Pattern q = op(Op::Transpose, {any("q")}).where(heads_first);
  Pattern k = op(Op::Transpose, {any("k_heads").where(kv_cache_heads())}).where(heads_first);
  Pattern v = op(Op::Transpose, {any("v_heads").where(kv_cache_heads())}).where(heads_first);
  Pattern scores = op(Op::Multiply, {op(Op::MatMul, {q, k}).where(transposes_b(true)), constant("scale").where(one_element)});
  // cap * tanh(s * (1 / cap)): soft-capped scores (Gemma 2).
  Pattern capped = op(Op::Multiply, {op(Op::Tanh, {op(Op::Multiply, {scores, constant("inv_cap").where(one_element)})}),
                                     constant("cap").where(one_element)});
  auto attention = [&replaced_assigns, &heads_first, &minus_infinity, &over_keys, &v](const char* name, Pattern mask, Pattern s) {
    Pattern probs = op(Op::Softmax, {op(Op::Select, {mask, s, constant().where(minus_infinity)})}).where(over_keys);
    return RewritePattern{name, op(Op::Transpose, {op(Op::MatMul, {probs, v}).where(transposes_b(false))}).where(heads_first),
       [&replaced_assigns](Model& m, const Captures& c, Node* root) -> StatusOr<bool> {
         AttrMap attrs = {{"scale", Attribute::Float(*scalar_constant(c.value("scale")))}};
         if (c.has("cap")) {
           const double cap = *scalar_constant(c.value("cap")), inv = *scalar_constant(c.value("inv_cap"));
           // The kernel multiplies by 1 / cap rounded to f32: the graph's constant must be that.
           if (!(cap > 0) || static_cast<float>(inv) != 1.0f / static_cast<float>(cap))
             return decline("soft-capping constants are not cap and 1 / cap");
           attrs["softcap"] = Attribute::Float(cap);
         }
         if (c.has("window")) {
           const double w = *scalar_constant(c.value("window"));
           if (!(w >= 1) || w != std::floor(w)) return decline("the sliding window is not a positive whole number of keys");
           attrs["window"] = Attribute::Int(static_cast<int64_t>(w));
         }
         std::string why;
         auto kc = kv_cache(m, c.value("k_heads"), why), vc = kv_cache(m, c.value("v_heads"), why);
         if (!kc || !vc) return decline(why);  // the predicates found both: not reached
         attrs["k_variable"] = Attribute::String(kc->variable);
         attrs["v_variable"] = Attribute::String(vc->variable);
         auto fused = m.add_node(spec(Op::Attention, {c.value("q"), kc->fresh, vc->fresh}, attrs));
         if (!fused.ok()) return decline("the fused op does not fit: " + fused.message());
         if (!replace(m, root->out(), (*fused)->out())) return decline("the fused op's type differs");
         // The fused op writes the caches now: its Assigns go (DCE keeps sinks), then DCE drops the rest.
         replaced_assigns.push_back(kc->assign);
         replaced_assigns.push_back(vc->assign);
         return true;
       }};
  };
  return {
      // Transpose(softmax(causal ? q·kᵀ * scale : -inf) · v), k and v read from, appended to and written back to their caches
      // -> Attention(q, k_new, v_new){k_variable, v_variable, scale}, which owns the cache update
      attention("attention", causal, scores),
      // the same with cap * tanh(q·kᵀ * scale / cap) -> Attention{..., softcap = cap}
      attention("attention-softcap", causal, capped),
      // the same where keys also lie within W of the query -> Attention{..., window = W}
      attention("attention-window", windowed, scores),
      attention("attention-window-softcap", windowed, capped),
  };
}

// ------------------------------------------------------------------ matmuls

// Cos(a) and Sin(a) of a = Reshape(Convert(Range(pos, step 1), f32), [L, 1]) * inv_freq[H]
// -> RopeTable(pos, inv_freq){length = [L]}: one small kernel instead of six ops.
Predicate converts_to_f32();

std::vector<RewritePattern> rope_table_patterns() {
  Predicate column = predicate("a [L, 1] column", [](Value v) {
    const Shape& cs = v.type().shape;
    return cs.size() == 2 && cs[1] == Dim(1);
  });
  Pattern positions = op(Op::Range, {any("start").where(element_type(ElementType::i64))}, "range").where(step_one());
  Pattern column_f32 = op(Op::Reshape, {op(Op::Convert, {positions}).where(converts_to_f32())}).where(column);
  return {
      // Cos(Reshape(Convert(Range(pos), f32), [L, 1]) * inv_freq), and the Sin of the same angles
      // -> RopeTable(pos, inv_freq){length}: one small kernel instead of six ops
      {"rope-table", op(Op::Cos, {op(Op::Multiply, {column_f32, constant("inv").where(f32_vector())}, "angles")}),
       [](Model& m, const Captures& c, Node* root) -> StatusOr<bool> {
         Node* sin = nullptr;
         for (auto [user, slot] : m.users(c.value("angles")))
           if (user->is(Op::Sin)) sin = user;
         auto t = m.add_node(spec(Op::RopeTable, {c.value("start"), c.value("inv")}, {{"length", c.node("range")->attr("length")}}));
         if (!t.ok()) return false;
         Value cos_v{*t, 0}, sin_v{*t, 1};
         if (cos_v.type() != root->outputs[0]) return false;
         bool changed = replace(m, root->out(), cos_v);
         if (sin) changed = replace(m, sin->out(), sin_v) || changed;
         return changed;
       }},
  };
}

// Embedding, matmul-to-fused, fuse-bias and fuse-residual are patterns too.

Predicate attr_int_is(const char* key, int64_t want) {
  return predicate(std::string(key) + " = " + std::to_string(want),
                   [key, want](Value v) { return v.node->attr(key).as_int() == want; });
}
Predicate converts_to_f32() {
  return predicate("a conversion to f32", [](Value v) { return v.node->attr("to").as_type() == ElementType::f32; });
}
// x · wᵀ: transpose_b only.
Predicate transposed_weight() {
  return predicate("x · wᵀ (transpose_b only)", [](Value v) {
    return !v.node->attr("transpose_a").as_bool() && v.node->attr("transpose_b").as_bool();
  });
}
// A 2-D weight of a number type (not integers or booleans).
Predicate number_matrix() {
  return predicate("a 2-D number matrix", [](Value v) {
    const ElementType t = v.type().type;
    return v.type().shape.size() == 2 && !type_info(t).is_integer && t != ElementType::boolean;
  });
}

bool plain_fused(const Node* n) {
  return n->is(Op::FusedMatMul) && !n->attr("has_bias").as_bool() && n->attr("rope").as_string() == "none" &&
         n->attr("activation").as_string() == "none" && !n->attr("has_residual").as_bool();
}
Predicate plain_fused_matmul() {
  return predicate("a FusedMatMul without epilogues", [](Value v) { return v.node && plain_fused(v.node); });
}
Predicate fused_without_residual() {
  return predicate("a FusedMatMul without a residual", [](Value v) {
    return v.node && v.node->is(Op::FusedMatMul) && !v.node->attr("has_residual").as_bool();
  });
}

// A copy of `n`'s attributes and its first two inputs, to build a variant of it.
NodeSpec fused_like(const Node* n, std::vector<Value> inputs) {
  NodeSpec s = spec(Op::FusedMatMul, std::move(inputs), n->attrs);
  return s;
}

// Adds `s` and replaces the root's output with it; declines (false) if the node does not fit.
StatusOr<bool> replace_root_with(Model& m, Node* root, NodeSpec s) {
  auto n = m.add_node(std::move(s));
  if (!n.ok()) return false;
  return replace(m, root->out(), (*n)->out());
}

std::vector<RewritePattern> embedding_patterns() {
  // The table stays in its stored type and only looked-up rows are converted.
  auto embed = [](Model& m, const Captures& c, Node* root) {
    return replace_root_with(m, root, spec(Op::Embedding, {c.value("table"), c.value("ids")}));
  };
  Pattern table = constant("table").where(rank(2));
  return {
      // Gather(Convert(table, f32), ids){axis 0} -> Embedding(table, ids)
      {"embedding", op(Op::Gather, {op(Op::Convert, {table}).where(converts_to_f32()), any("ids")}).where(attr_int_is("axis", 0)), embed},
      // Gather(table f32, ids){axis 0} -> Embedding(table, ids)
      {"embedding-f32", op(Op::Gather, {table.where(element_type(ElementType::f32)), any("ids")}).where(attr_int_is("axis", 0)), embed},
  };
}

std::vector<RewritePattern> matmul_to_fused_patterns() {
  auto fused = [](Model& m, const Captures& c, Node* root) {
    return replace_root_with(m, root, spec(Op::FusedMatMul, {c.value("x"), c.value("w")}));
  };
  Pattern x = any("x").where(element_type(ElementType::f32));
  Pattern w = constant("w").where(number_matrix());
  return {
      // WeightMatMul(x, w constant) -> FusedMatMul(x, w){act_quant}
      {"weight-matmul", op(Op::WeightMatMul, {any("x"), constant("w")}),
       [](Model& m, const Captures& c, Node* root) {
         return replace_root_with(m, root, spec(Op::FusedMatMul, {c.value("x"), c.value("w")}, {{"act_quant", root->attr("act_quant")}}));
       }},
      // MatMul(x, Convert(w, f32)){transpose_b} -> FusedMatMul(x, w): w stays in its stored type
      {"matmul-converted", op(Op::MatMul, {x, op(Op::Convert, {w}).where(converts_to_f32())}).where(transposed_weight()), fused},
      // MatMul(x, w f32){transpose_b} -> FusedMatMul(x, w)
      {"matmul", op(Op::MatMul, {x, w}).where(transposed_weight()), fused},
  };
}

std::vector<RewritePattern> fuse_bias_patterns() {
  return {
      // FusedMatMul(x, w) + bias -> FusedMatMul(x, w, bias){has_bias}
      {"fuse-bias", op(Op::Add, {any("mm").where(plain_fused_matmul()).where(single_use()), constant("bias").where(f32_vector())}),
       [](Model& m, const Captures& c, Node* root) {
         Node* mm = c.node("mm");
         NodeSpec s = fused_like(mm, {mm->inputs[0], mm->inputs[1], c.value("bias")});
         s.attrs["has_bias"] = Attribute::Bool(true);
         return replace_root_with(m, root, std::move(s));
       }},
  };
}

std::vector<RewritePattern> residual_patterns() {
  return {
      // FusedMatMul(...) + r -> FusedMatMul(..., r){has_residual}, r of the matmul's type
      {"fuse-residual", op(Op::Add, {any("mm").where(fused_without_residual()).where(single_use()), any("res").where(same_type_as("mm"))}),
       [](Model& m, const Captures& c, Node* root) {
         Node* mm = c.node("mm");
         std::vector<Value> inputs = mm->inputs;
         inputs.push_back(c.value("res"));
         NodeSpec s = fused_like(mm, inputs);
         s.attrs["has_residual"] = Attribute::Bool(true);
         return replace_root_with(m, root, std::move(s));
       }},
  };
}

// ------------------------------------------------------------------ merged projections
// merge-parallel-matmuls, fuse-rope-into-matmul, pack-attention

// Concatenates constants along rows (axis 0); block formats concatenate as bytes since every row
// is whole blocks.
std::shared_ptr<Tensor> concat_rows(const std::vector<const Tensor*>& parts) {
  int64_t rows = 0;
  for (auto* p : parts) rows += p->shape()[0];
  std::vector<int64_t> shape = parts[0]->shape();
  shape[0] = rows;
  // Lazy: the bytes are joined only if something reads them (the evaluator); the bundle writer
  // streams the parts.
  std::vector<std::shared_ptr<const Buffer>> buffers;
  for (auto* p : parts) buffers.push_back(p->buffer());
  auto buf = Buffer::concat(std::move(buffers));
  auto t = Tensor::from_buffer(parts[0]->type(), shape, buf);
  INGOT_ASSERT(t.ok(), t.message());
  return std::make_shared<Tensor>(*t);
}

// A FusedMatMul without RoPE, activation or residual epilogues (a bias is fine).
bool only_bias_epilogue(const Node* n) {
  return n->is(Op::FusedMatMul) && n->attr("rope").as_string() == "none" && n->attr("activation").as_string() == "none" &&
         !n->attr("has_residual").as_bool();
}

// Projections of one input can share a matmul when their weights have one element type and they
// have the same numerics (act_quant) and bias epilogue: the key they are grouped by. nullopt for
// a FusedMatMul that cannot be merged: another epilogue, or a weight or bias that is no constant.
using MergeKey = std::pair<ElementType, std::string>;

std::optional<MergeKey> merge_key(const Node* u) {
  if (!only_bias_epilogue(u)) return std::nullopt;
  const bool bias = u->attr("has_bias").as_bool();
  Node* w = def(u->inputs[1], Op::Constant);
  if (!w || !w->constant) return std::nullopt;
  Node* b = bias ? def(u->inputs[2], Op::Constant) : nullptr;
  if (bias && (!b || !b->constant)) return std::nullopt;
  return MergeKey{w->constant->type(), u->attr("act_quant").as_string() + (bias ? "+bias" : "")};
}

// The mergeable FusedMatMuls that read `x` as their input (slot 0), grouped by key.
std::map<MergeKey, std::vector<Node*>> parallel_projections(const Model& m, Value x) {
  std::map<MergeKey, std::vector<Node*>> groups;
  for (auto& [user, slot] : m.users(x))
    if (slot == 0)
      if (auto key = merge_key(user)) groups[*key].push_back(user);
  return groups;
}

Predicate mergeable_projection() {
  return predicate("a FusedMatMul without RoPE, activation or residual, of constant weights",
                   [](Value v) { return merge_key(v.node).has_value(); });
}

// Another projection of the same input (the only output of its node) with the same key.
Predicate has_parallel_projection() {
  return Predicate{"another FusedMatMul of its input with its weight type, act_quant and bias",
                   [](Value v, const Captures& c) -> std::optional<std::string> {
                     const Value x = v.node->inputs[0];
                     if (!c.model()) return describe(x) + " (no model given to find its users)";
                     if (x.node->outputs.size() != 1) return describe(x) + ", one of several outputs";
                     const MergeKey key = *merge_key(v.node);
                     auto groups = parallel_projections(*c.model(), x);
                     if (groups[key].size() >= 2) return std::nullopt;
                     return describe(x) + " read by no other FusedMatMul of " + std::string(type_name(key.first)) +
                            " weights with act_quant " + v.node->attr("act_quant").as_string() +
                            (v.node->attr("has_bias").as_bool() ? " and a bias" : "");
                   }};
}

// Merges every group of the root's input at once, in key order: the nodes are created in the same
// order whichever projection of the input the walk meets first.
StatusOr<bool> rewrite_merge_parallel(Model& m, const Captures&, Node* root) {
  const Value x = root->inputs[0];
  bool changed = false;
  for (auto& [key, members] : parallel_projections(m, x)) {
    if (members.size() < 2) continue;
    bool bias = members[0]->attr("has_bias").as_bool();
    std::vector<const Tensor*> weights, biases;
    for (Node* u : members) {
      weights.push_back(def(u->inputs[1], Op::Constant)->constant.get());
      if (bias) biases.push_back(def(u->inputs[2], Op::Constant)->constant.get());
    }
    std::string name = members[0]->inputs[1].node->name + ".merged";
    for (int i = 0; m.find(name); ++i) name = members[0]->inputs[1].node->name + ".merged" + std::to_string(i);
    auto wt = concat_rows(weights);
    Value w = add_value(m, NodeSpec{Op::Constant, {}, {}, name, {{wt->type(), static_shape(wt->shape())}}, wt, ""});
    std::vector<Value> inputs = {x, w};
    if (bias) {
      auto bt = concat_rows(biases);
      inputs.push_back(add_value(m, NodeSpec{Op::Constant, {}, {}, name + ".bias", {{bt->type(), static_shape(bt->shape())}}, bt, ""}));
    }
    Value merged = add_value(m, fused_like(members[0], inputs));
    int64_t col = 0;
    for (Node* u : members) {
      int64_t n = u->outputs[0].shape.back().value();
      Value part = add_value(m, spec(Op::Slice, {merged}, {{"axes", Attribute::Ints({-1})}, {"begin", Attribute::Ints({col})},
                                                         {"end", Attribute::Ints({col + n})}}));
      changed |= replace(m, u->out(), part);
      col += n;
    }
  }
  return changed;
}

std::vector<RewritePattern> merge_parallel_patterns() {
  return {
      // FusedMatMul(x, w1[, b1]), FusedMatMul(x, w2[, b2]), ... of one weight type and act_quant
      // -> FusedMatMul(x, [w1; w2; ...][, [b1; b2; ...]]) and a Slice of its columns for each
      {"merge-parallel-matmuls", op(Op::FusedMatMul).where(mergeable_projection()).where(has_parallel_projection()),
       rewrite_merge_parallel},
  };
}

// Reshape(Slice(fm, last axis, [begin, end)), [T, heads, hd]) -> (fm, begin, heads, hd).
struct HeadsView {
  Node* fm;
  int64_t begin, heads, hd;
};

std::optional<HeadsView> heads_view(Value v) {
  Node* r = def(v, Op::Reshape);
  if (!r) return std::nullopt;
  auto s = slice_info(r->inputs[0]);
  const Shape& shape = r->outputs[0].shape;
  if (!s || !s->input.node || !s->input.node->is(Op::FusedMatMul) || s->axis != 1 || shape.size() != 3) return std::nullopt;
  if (!shape[1].is_static() || !shape[2].is_static()) return std::nullopt;
  int64_t heads = shape[1].value(), hd = shape[2].value();
  if (s->end - s->begin != heads * hd) return std::nullopt;
  return HeadsView{s->input.node, s->begin, heads, hd};
}

// The RoPEs applied to head views of a projection fm: q at column 0, k at another column (null
// when there is none).
struct RotatedHeads {
  Node* rq = nullptr;
  Node* rk = nullptr;
  HeadsView q{}, k{};
};

RotatedHeads rotated_heads(const Model& m, Node* fm) {
  RotatedHeads r;
  for (auto& [slice, slot] : m.users(fm->out())) {
    for (auto& [reshape, s2] : m.users(slice->out())) {
      for (auto& [rope, s3] : m.users(reshape->out())) {
        if (!rope->is(Op::RoPE) || s3 != 0) continue;
        auto hv = heads_view(rope->inputs[0]);
        if (!hv || hv->fm != fm) continue;
        if (hv->begin == 0) {
          r.rq = rope;
          r.q = *hv;
        } else {
          r.rk = rope;
          r.k = *hv;
        }
      }
    }
  }
  return r;
}

// A predicate on a projection about its rotated head views; `test` sees both RoPEs found.
Predicate rotated_heads_are(std::string description, std::function<std::optional<std::string>(const RotatedHeads&)> test) {
  return Predicate{std::move(description), [test](Value v, const Captures& c) -> std::optional<std::string> {
                     if (!c.model()) return describe(v) + " (no model given to find its users)";
                     RotatedHeads r = rotated_heads(*c.model(), v.node);
                     if (!r.rq && !r.rk) return describe(v) + " without RoPE of its head views";
                     if (!r.rq) return describe(v) + " with RoPE of its heads from column " + std::to_string(r.k.begin) + " only";
                     if (!r.rk) return describe(v) + " with RoPE of its q heads only";
                     return test(r);
                   }};
}

Predicate rope_of_q_and_k() {
  return rotated_heads_are("RoPE of its q heads (column 0) and of its k heads", [](const RotatedHeads&) { return std::nullopt; });
}

Predicate k_heads_after_q() {
  return rotated_heads_are("k heads right after the q heads, of their head size", [](const RotatedHeads& r) -> std::optional<std::string> {
    if (r.k.begin == r.q.heads * r.q.hd && r.k.hd == r.q.hd) return std::nullopt;
    return std::to_string(r.q.heads) + " q heads of size " + std::to_string(r.q.hd) + ", k heads from column " +
           std::to_string(r.k.begin) + " of size " + std::to_string(r.k.hd);
  });
}

Predicate one_rotation() {
  return rotated_heads_are("q and k rotated by the same tables and layout", [](const RotatedHeads& r) -> std::optional<std::string> {
    if (r.rq->inputs[1] == r.rk->inputs[1] && r.rq->inputs[2] == r.rk->inputs[2] && r.rq->attr("layout") == r.rk->attr("layout"))
      return std::nullopt;
    auto rotation = [](Node* rope) {
      return describe(rope->out()) + " by " + describe(rope->inputs[1]) + " and " + describe(rope->inputs[2]) + ", layout " +
             rope->attr("layout").as_string();
    };
    return rotation(r.rq) + "; " + rotation(r.rk);
  });
}

StatusOr<bool> rewrite_rope_into_matmul(Model& m, const Captures&, Node* fm) {
  const RotatedHeads r = rotated_heads(m, fm);
  std::vector<Value> inputs(fm->inputs.begin(), fm->inputs.end());
  inputs.insert(inputs.begin() + (fm->attr("has_bias").as_bool() ? 3 : 2), {r.rq->inputs[1], r.rq->inputs[2]});
  NodeSpec s = fused_like(fm, inputs);
  s.attrs["rope"] = r.rq->attr("layout");
  s.attrs["rope_q_heads"] = Attribute::Int(r.q.heads);
  s.attrs["rope_k_heads"] = Attribute::Int(r.k.heads);
  s.attrs["head_dim"] = Attribute::Int(r.q.hd);
  auto f = m.add_node(std::move(s));
  if (!f.ok()) return decline("the fused projection does not fit: " + f.message());
  m.replace_all_uses(fm->out(), (*f)->out());
  // The rotation now happens inside the projection: each RoPE becomes its input view.
  m.replace_all_uses(r.rq->out(), r.rq->inputs[0]);
  m.replace_all_uses(r.rk->out(), r.rk->inputs[0]);
  return true;
}

std::vector<RewritePattern> rope_into_matmul_patterns() {
  Predicate no_epilogue = predicate("a FusedMatMul without RoPE, activation or residual", [](Value v) { return only_bias_epilogue(v.node); });
  return {
      // FusedMatMul(x, w[, b]) whose q and k head views are rotated by RoPE(., cos, sin)
      // -> FusedMatMul(x, w[, b], cos, sin){rope, rope_q_heads, rope_k_heads, head_dim}; each RoPE becomes its view
      {"fuse-rope-into-matmul", op(Op::FusedMatMul).where(no_epilogue).where(rope_of_q_and_k()).where(k_heads_after_q()).where(one_rotation()),
       rewrite_rope_into_matmul},
  };
}

// A head view (heads_view) of a projection's columns: from column 0 when `after` is empty, else
// right after the head view captured as `after`, of the same projection.
Predicate head_view_after(std::string after) {
  std::string description = after.empty() ? "a head view Reshape(Slice(FusedMatMul)) of its columns from 0"
                                          : "a head view of the same projection's columns right after " + after + "'s";
  return Predicate{description, [after](Value v, const Captures& c) -> std::optional<std::string> {
                     auto hv = heads_view(v);
                     if (!hv) return describe_typed(v);
                     if (after.empty() && hv->begin == 0) return std::nullopt;
                     if (!after.empty()) {
                       auto prev = heads_view(c.value(after));
                       if (prev && prev->fm == hv->fm && hv->begin == prev->begin + prev->heads * prev->hd) return std::nullopt;
                     }
                     return describe(v) + ", heads of " + describe(hv->fm->out()) + " from column " + std::to_string(hv->begin);
                   }};
}

// A head view that ends at the projection's last column.
Predicate ends_projection() {
  return Predicate{"the projection's last columns", [](Value v, const Captures&) -> std::optional<std::string> {
                     auto hv = heads_view(v);
                     if (!hv) return describe_typed(v);
                     const Dim width = hv->fm->outputs[0].shape.back();
                     const int64_t end = hv->begin + hv->heads * hv->hd;
                     if (width.is_static() && width.value() == end) return std::nullopt;
                     return describe(v) + ", heads of " + describe(hv->fm->out()) + " up to column " + std::to_string(end) +
                            " of " + width.str();
                   }};
}

StatusOr<bool> rewrite_pack_attention(Model& m, const Captures& c, Node* att) {
  auto q = heads_view(c.value("q")), k = heads_view(c.value("k"));
  AttrMap attrs = att->attrs;
  attrs["q_heads"] = Attribute::Int(q->heads);
  attrs["kv_heads"] = Attribute::Int(k->heads);
  attrs["head_dim"] = Attribute::Int(q->hd);
  auto packed = m.add_node(spec(Op::Attention, {q->fm->out()}, attrs));
  if (!packed.ok()) return decline("packed Attention does not fit: " + packed.message());
  // Users that flatten the heads read the packed output directly; others get a reshaped view.
  const Shape& out_shape = att->outputs[0].shape;
  Value view;
  for (auto& [user, slot] : m.users(att->out())) {
    if (user->is(Op::Reshape) && user->outputs[0] == (*packed)->outputs[0]) {
      m.replace_all_uses(user->out(), (*packed)->out());
    } else {
      if (!view.node) view = add_value(m, spec(Op::Reshape, {(*packed)->out()}, {{"shape", Attribute::Dims(out_shape)}}));
      user->inputs[static_cast<size_t>(slot)] = view;
    }
  }
  return true;
}

std::vector<RewritePattern> pack_attention_patterns() {
  Pattern q = any("q").where(head_view_after(""));
  Pattern k = any("k").where(head_view_after("q"));
  Pattern v = any("v").where(head_view_after("k")).where(ends_projection());
  return {
      // Attention(q, k, v) of the head views of one projection's columns, q | k | v
      // -> Attention(projection){q_heads, kv_heads, head_dim}
      {"pack-attention", op(Op::Attention, {q, k, v}), rewrite_pack_attention},
  };
}

// swiglu-into-matmul and last-position-first: patterns over slices.

// A one-axis, step-1 slice: [begin, end) along the last axis of a value of rank `rank`... checked
// by the predicates below against SliceInfo.
Predicate slice_is(std::string description, std::function<bool(const SliceInfo&, Value v)> test) {
  return predicate(std::move(description), [test](Value v) {
    auto s = slice_info(v);
    return s && test(*s, v);
  });
}

std::vector<RewritePattern> swiglu_into_matmul_patterns() {
  // gate = fm[..., :F], up = fm[..., F:2F] of one projection fm with no epilogue and no other user
  Predicate no_epilogue = predicate("a FusedMatMul without activation, residual or RoPE, used only by the halves", [](Value v) {
    const Node* fm = v.node;
    return fm && fm->is(Op::FusedMatMul) && fm->attr("activation").as_string() == "none" &&
           !fm->attr("has_residual").as_bool() && fm->attr("rope").as_string() == "none";
  });
  Pattern fm = any("fm").where(no_epilogue);
  auto half = [](bool upper) {
    return slice_is(upper ? "the upper half along the last axis" : "the lower half along the last axis",
                    [upper](const SliceInfo& s, Value v) {
                      const Shape& shape = s.input.type().shape;
                      const Dim width = shape.back();
                      if (!width.is_static() || width.value() % 2 || s.axis != static_cast<int64_t>(shape.size()) - 1)
                        return false;
                      const int64_t f = width.value() / 2;
                      (void)v;
                      return upper ? s.begin == f && (s.end == 2 * f || s.end == kEnd) : s.begin == 0 && s.end == f;
                    });
  };
  return {
      // SwiGLU(fm[..., :F], fm[..., F:]) -> FusedMatMul{activation swiglu}
      {"fuse-swiglu-into-matmul", op(Op::SwiGLU, {op(Op::Slice, {fm}).where(half(false)), op(Op::Slice, {fm}).where(half(true))}),
       [](Model& m, const Captures& c, Node* root) -> StatusOr<bool> {
         Node* fm = c.node("fm");
         if (m.users(fm->out()).size() != 2) return false;  // the projection is needed whole elsewhere
         NodeSpec s = fused_like(fm, fm->inputs);
         s.attrs["activation"] = Attribute::String("swiglu");
         return replace_root_with(m, root, std::move(s));
       }},
  };
}

std::vector<RewritePattern> last_position_first_patterns() {
  Predicate last_row = slice_is("the last row (axis 0, [-1, end))", [](const SliceInfo& s, Value) {
    return s.axis == 0 && s.begin == -1 && s.end == kEnd;
  });
  return {
      // RMSNorm(x, w)[-1:] -> RMSNorm(x[-1:], w): normalize only the row the logits need
      {"last-position-first", op(Op::Slice, {op(Op::RMSNorm, {any("x"), any("w")}, "norm").where(single_use()).where(rank(2))}).where(last_row),
       [](Model& m, const Captures& c, Node* root) -> StatusOr<bool> {
         Node* norm = c.node("norm");
         Value last = add_value(m, spec(Op::Slice, {c.value("x")}, root->attrs));
         Value fused = add_value(m, spec(Op::RMSNorm, {last, c.value("w")}, norm->attrs));
         return replace(m, root->out(), fused);
       }},
  };
}

}  // namespace

StatusOr<bool> fuse_rms_norm(Model& m) { return apply_patterns_greedily(m, rms_norm_patterns()); }
StatusOr<bool> fuse_swiglu(Model& m) { return apply_patterns_greedily(m, swiglu_patterns()); }
StatusOr<bool> fuse_rope(Model& m) { return apply_patterns_greedily(m, rope_patterns()); }
StatusOr<bool> fuse_attention(Model& m) {
  std::vector<Node*> assigns;
  INGOT_ASSIGN_OR_RETURN(bool changed, apply_patterns_greedily(m, attention_patterns(assigns)));
  if (!changed) return false;
  std::set<const Node*> doomed(assigns.begin(), assigns.end());
  m.remove_nodes([&](const Node& n) { return doomed.count(&n) != 0; });
  m.remove_dead_nodes();
  return true;
}
StatusOr<bool> matmul_to_fused(Model& m) { return apply_patterns_greedily(m, matmul_to_fused_patterns()); }
StatusOr<bool> fuse_embedding(Model& m) { return apply_patterns_greedily(m, embedding_patterns()); }
StatusOr<bool> fuse_rope_table(Model& m) { return apply_patterns_greedily(m, rope_table_patterns()); }
StatusOr<bool> fuse_bias(Model& m) { return apply_patterns_greedily(m, fuse_bias_patterns()); }
StatusOr<bool> merge_parallel_matmuls(Model& m) { return apply_patterns_greedily(m, merge_parallel_patterns()); }
StatusOr<bool> fuse_rope_into_matmul(Model& m) { return apply_patterns_greedily(m, rope_into_matmul_patterns()); }
StatusOr<bool> pack_attention(Model& m) { return apply_patterns_greedily(m, pack_attention_patterns()); }
StatusOr<bool> fuse_swiglu_into_matmul(Model& m) { return apply_patterns_greedily(m, swiglu_into_matmul_patterns()); }
StatusOr<bool> fuse_residual(Model& m) { return apply_patterns_greedily(m, residual_patterns()); }
StatusOr<bool> last_position_first(Model& m) { return apply_patterns_greedily(m, last_position_first_patterns()); }

}  // namespace ingot::fusion
