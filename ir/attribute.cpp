#include "ir/attribute.h"

#include <charconv>
#include <cmath>

namespace ingot {

const char* attr_kind_name(AttrKind k) {
  switch (k) {
    case AttrKind::Int: return "int";
    case AttrKind::Float: return "float";
    case AttrKind::Bool: return "bool";
    case AttrKind::String: return "string";
    case AttrKind::Ints: return "ints";
    case AttrKind::Floats: return "floats";
    case AttrKind::Dims: return "dims";
    case AttrKind::Type: return "type";
  }
  return "?";
}

#define INGOT_ATTR_GET(method, T, K)                                                     \
  T Attribute::method() const {                                                          \
    INGOT_ASSERT(kind() == AttrKind::K, std::string("attribute is ") + attr_kind_name(kind()) + \
                                            ", not " #K);                                \
    return std::get<T>(v_);                                                              \
  }
INGOT_ATTR_GET(as_int, int64_t, Int)
INGOT_ATTR_GET(as_float, double, Float)
INGOT_ATTR_GET(as_bool, bool, Bool)
INGOT_ATTR_GET(as_type, ElementType, Type)
#undef INGOT_ATTR_GET

const std::string& Attribute::as_string() const {
  INGOT_ASSERT(kind() == AttrKind::String, "attribute is not a string");
  return std::get<std::string>(v_);
}
const std::vector<int64_t>& Attribute::as_ints() const {
  INGOT_ASSERT(kind() == AttrKind::Ints, "attribute is not ints");
  return std::get<std::vector<int64_t>>(v_);
}
const std::vector<double>& Attribute::as_floats() const {
  INGOT_ASSERT(kind() == AttrKind::Floats, "attribute is not floats");
  return std::get<std::vector<double>>(v_);
}
const Shape& Attribute::as_dims() const {
  INGOT_ASSERT(kind() == AttrKind::Dims, "attribute is not dims");
  return std::get<Shape>(v_);
}

// Shortest round-trip text via to_chars, marked as a float literal.
template <typename F>
static std::string format_floating(F v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  std::string s(buf, res.ptr);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string format_double(double v) { return format_floating(v); }
std::string format_float(float v) { return format_floating(v); }

std::string quote_string(const std::string& s) {
  std::string r = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') { r += '\\'; r += static_cast<char>(c); }
    else if (c == '\n') r += "\\n";
    else if (c == '\t') r += "\\t";
    else if (c < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof(b), "\\x%02x", c);
      r += b;
    } else r += static_cast<char>(c);
  }
  return r + "\"";
}

std::string Attribute::str() const {
  switch (kind()) {
    case AttrKind::Int: return std::to_string(as_int());
    case AttrKind::Float: return format_double(as_float());
    case AttrKind::Bool: return as_bool() ? "true" : "false";
    case AttrKind::String: return quote_string(as_string());
    case AttrKind::Ints: {
      std::string r = "[";
      for (size_t i = 0; i < as_ints().size(); ++i) r += (i ? ", " : "") + std::to_string(as_ints()[i]);
      return r + "]";
    }
    case AttrKind::Floats: {
      std::string r = "[";
      for (size_t i = 0; i < as_floats().size(); ++i) r += (i ? ", " : "") + format_double(as_floats()[i]);
      return r + "]";
    }
    case AttrKind::Dims: return shape_str(as_dims());
    case AttrKind::Type: return std::string(type_name(as_type()));
  }
  return "?";
}

}  // namespace ingot
