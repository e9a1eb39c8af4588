// Dimensions that are static numbers, symbolic linear expressions ("tokens", "past+tokens"), or unknown.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ir/element_type.h"

namespace ingot {

// Values bound to dimension symbols at run time ("tokens" = 7).
using SymbolBindings = std::map<std::string, int64_t>;

// A dimension: constant + sum(coefficient * symbol), or unknown ("?").
// Linear expressions are enough for LLM graphs: a KV cache grows to "past+tokens",
// a reshape splits "tokens*64" into "tokens, 8, 8".
class Dim {
 public:
  Dim() : Dim(int64_t{0}) {}
  // A static size. INT64_MIN is not a size (it has no printable negation): it becomes unknown.
  Dim(int64_t value) : known_(value != INT64_MIN), constant_(value == INT64_MIN ? 0 : value) {}  // NOLINT: implicit

  static Dim symbol(std::string name);
  static Dim unknown();

  bool is_unknown() const { return !known_; }
  bool is_static() const { return known_ && terms_.empty(); }
  // The value of a static dimension; asserts is_static().
  int64_t value() const;
  // True for a plain symbol such as "tokens" (coefficient 1, no constant).
  bool is_symbol() const;
  const std::string& symbol_name() const;  // asserts is_symbol()
  int64_t constant() const { return constant_; }
  const std::vector<std::pair<std::string, int64_t>>& terms() const { return terms_; }

  Dim operator+(const Dim& o) const;
  Dim operator-(const Dim& o) const;
  Dim operator*(const Dim& o) const;  // unknown unless one side is static
  // Exact division by a positive constant, or nullopt when some coefficient is not divisible.
  std::optional<Dim> divide_exact(int64_t d) const;

  bool operator==(const Dim& o) const {
    if (!known_ || !o.known_) return known_ == o.known_;
    return constant_ == o.constant_ && terms_ == o.terms_;
  }
  bool operator!=(const Dim& o) const { return !(*this == o); }

  // The value under `bindings`; nullopt if unknown or a symbol is unbound.
  std::optional<int64_t> evaluate(const SymbolBindings& bindings) const;
  // "64", "tokens", "past+tokens", "2*tokens-1", "?".
  std::string str() const;

 private:
  void normalize();
  bool known_ = true;
  bool overflow_ = false;  // scratch flag for normalize()
  int64_t constant_ = 0;
  std::vector<std::pair<std::string, int64_t>> terms_;  // sorted by name, non-zero coefficients
};

using Shape = std::vector<Dim>;

std::string shape_str(const Shape& s);  // "[tokens, 64]"
bool is_static(const Shape& s);
// Product of all dims (a linear expression when at most one factor is symbolic).
Dim num_elements(const Shape& s);
Shape static_shape(const std::vector<int64_t>& dims);

// The element type and shape of one node output.
struct TensorType {
  ElementType type = ElementType::f32;
  Shape shape;
  bool operator==(const TensorType& o) const { return type == o.type && shape == o.shape; }
  bool operator!=(const TensorType& o) const { return !(*this == o); }
  std::string str() const;  // "f32[tokens, 64]"
};

}  // namespace ingot
