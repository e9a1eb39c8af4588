// simplify: algebraic identities, one rewrite rule per line. Every rule keeps types exactly (a
// replacement whose type differs from the replaced value's is not made: x * ones[2, 4] broadcasts
// x[4] and stays) and never changes results, with one caveat shared with most ML compilers: x + 0
// turns -0 into +0 where x alone keeps -0 (so does x - (-0)); the two compare equal.

#include "passes/generic_passes.h"
#include "passes/pattern_pass.h"

namespace ingot {
namespace {

// ---------------------------------------------------------------- helpers of the rules

bool is_identity_perm(const std::vector<int64_t>& perm) {
  for (size_t i = 0; i < perm.size(); ++i)
    if (perm[i] != static_cast<int64_t>(i)) return false;
  return true;
}

Predicate identity_perm() {
  return predicate("an identity permutation",
                   [](Value v) { return v.node->has_attr("perm") && is_identity_perm(v.node->attr("perm").as_ints()); });
}

// Whether every value of type `from` is exactly representable in `via`, so converting to `via`
// loses nothing (and a conversion from `via` sees the original value).
bool converts_exactly(ElementType from, ElementType via) {
  using T = ElementType;
  if (from == via) return true;
  const ElementTypeInfo& f = type_info(from);
  const ElementTypeInfo& v = type_info(via);
  if (v.is_quantized) return false;
  if (f.is_quantized) return via == T::f32;  // Convert dequantizes to f32 values
  if (from == T::boolean) return true;       // 0 and 1 fit everywhere
  if (f.is_float) return via == T::f32 && (from == T::f16 || from == T::bf16);
  // Integers: into wider integers whose range holds them, or floats whose mantissa does.
  auto bits = [](T t) -> int {  // value bits including sign, e.g. i8 covers [-2^7, 2^7)
    switch (t) {
      case T::u8: return 9;
      case T::i8: return 8;
      case T::i32: return 32;
      case T::i64: return 64;
      default: return 0;
    }
  };
  if (v.is_integer) {
    if (from == T::u8) return via != T::i8;
    if (via == T::u8) return false;
    return bits(via) >= bits(from);
  }
  if (v.is_float) {
    int mantissa = via == T::f32 ? 24 : via == T::f16 ? 11 : 8;  // bf16
    return bits(from) - 1 <= mantissa;  // magnitudes below 2^(bits-1) are exact up to 2^mantissa
  }
  return false;  // to bool: narrowing
}

// ---------------------------------------------------------------- rewrites

// Reshape(Reshape(x)) -> Reshape(x): the outer reshape reads x directly (same element count).
StatusOr<bool> reshape_of_reshape(Model& m, const Captures& c, Node* root) {
  return update_node(m, root, {c.value("x")}, root->attrs);
}

// Transpose(Transpose(x, p1), p2) -> Transpose(x, q) with q[i] = p1[p2[i]].
StatusOr<bool> transpose_of_transpose(Model& m, const Captures& c, Node* root) {
  const auto& p1 = c.node("inner")->attr("perm").as_ints();
  const auto& p2 = root->attr("perm").as_ints();
  std::vector<int64_t> q(p2.size());
  for (size_t i = 0; i < p2.size(); ++i) q[i] = p1[static_cast<size_t>(p2[i])];
  AttrMap attrs = root->attrs;
  attrs["perm"] = Attribute::Ints(q);
  return update_node(m, root, {c.value("x")}, attrs);
}

// Convert(Convert(x, mid), to) -> Convert(x, to) when x -> mid is exact: the second conversion saw
// x's own value. Narrowing first conversions (f32 -> f16 -> f32 rounds) are never dropped.
StatusOr<bool> convert_chain(Model& m, const Captures& c, Node* root) {
  ElementType from = c.value("x").type().type, mid = c.value("inner").type().type;
  if (!converts_exactly(from, mid)) return false;
  return update_node(m, root, {c.value("x")}, root->attrs);
}

}  // namespace

std::vector<RewritePattern> simplify_patterns() {
  Pattern zero = constant().where(constant_value(0.0));
  Pattern one = constant().where(constant_value(1.0));
  // Add and Multiply match either input order (the kCommutative trait): x*1 also covers 1*x.
  return {
      {"mul-one", op(Op::Multiply, {any("x"), one}), replace_with("x")},                   // x*1 -> x, 1*x -> x
      {"add-zero", op(Op::Add, {any("x"), zero}), replace_with("x")},                      // x+0 -> x, 0+x -> x
      {"sub-zero", op(Op::Subtract, {any("x"), zero}), replace_with("x")},                 // x-0 -> x
      {"div-one", op(Op::Divide, {any("x"), one}), replace_with("x")},                     // x/1 -> x
      {"neg-neg", op(Op::Negative, {op(Op::Negative, {any("x")})}), replace_with("x")},       // -(-x) -> x
      {"reshape-same", op(Op::Reshape, {any("x")}), replace_with("x")},                    // reshape to x's own type -> x
      {"reshape-reshape", op(Op::Reshape, {op(Op::Reshape, {any("x")}).where(single_use())}), reshape_of_reshape},  // reshape(reshape(x)) -> reshape(x)
      {"transpose-identity", op(Op::Transpose, {any("x")}).where(identity_perm()), replace_with("x")},  // transpose(x, [0, 1, ..]) -> x
      {"transpose-transpose", op(Op::Transpose, {op(Op::Transpose, {any("x")}, "inner").where(single_use())}), transpose_of_transpose},  // transpose(transpose(x)) -> transpose(x, composed)
      {"broadcast-same", op(Op::Broadcast, {any("x")}), replace_with("x")},                // broadcast to x's own type -> x
      {"convert-same", op(Op::Convert, {any("x")}), replace_with("x")},                    // convert to x's own type -> x
      {"convert-convert", op(Op::Convert, {op(Op::Convert, {any("x")}, "inner").where(single_use())}), convert_chain},  // convert(convert(x)) -> convert(x) when the first is exact
  };
}

std::unique_ptr<Pass> create_simplify_pass() { return make_pattern_pass("simplify", simplify_patterns()); }

}  // namespace ingot
