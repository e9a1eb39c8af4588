// Node attributes: a small closed set of value kinds, stored sorted by name.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "ir/element_type.h"
#include "ir/shape.h"

namespace ingot {

enum class AttrKind { Int, Float, Bool, String, Ints, Floats, Dims, Type };
const char* attr_kind_name(AttrKind k);

class Attribute {
 public:
  Attribute() : v_(int64_t{0}) {}
  static Attribute Int(int64_t v) { return Attribute(v); }
  static Attribute Float(double v) { return Attribute(v); }
  static Attribute Bool(bool v) { return Attribute(v); }
  static Attribute String(std::string v) { return Attribute(std::move(v)); }
  static Attribute Ints(std::vector<int64_t> v) { return Attribute(std::move(v)); }
  static Attribute Floats(std::vector<double> v) { return Attribute(std::move(v)); }
  static Attribute Dims(Shape v) { return Attribute(std::move(v)); }
  static Attribute Type(ElementType v) { return Attribute(v); }

  AttrKind kind() const { return static_cast<AttrKind>(v_.index()); }
  // Accessors assert the kind: the op table's schema guarantees it after add_node.
  int64_t as_int() const;
  double as_float() const;
  bool as_bool() const;
  const std::string& as_string() const;
  const std::vector<int64_t>& as_ints() const;
  const std::vector<double>& as_floats() const;
  const Shape& as_dims() const;
  ElementType as_type() const;

  bool operator==(const Attribute& o) const { return v_ == o.v_; }
  bool operator!=(const Attribute& o) const { return !(*this == o); }
  // Text form, which the parser reads back given the kind: 3, 1e-05, true, "s", [1, 2], [tokens, 8], f16.
  std::string str() const;

 private:
  using Storage = std::variant<int64_t, double, bool, std::string, std::vector<int64_t>,
                               std::vector<double>, Shape, ElementType>;
  template <typename T>
  explicit Attribute(T v) : v_(std::move(v)) {}
  Storage v_;
};

using AttrMap = std::map<std::string, Attribute>;

// Shortest text that reads back as exactly the same double, always with '.', 'e', "inf" or "nan".
std::string format_double(double v);
// The same for a float: the shortest text that reads back (as a float) to the same bits.
std::string format_float(float v);
// A double-quoted string with \" \\ \n \t and \xHH escapes.
std::string quote_string(const std::string& s);

}  // namespace ingot
