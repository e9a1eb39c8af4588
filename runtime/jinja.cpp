// The template engine's evaluator: statements, expressions, filters, tests, methods and globals,
// with Python's and Jinja2's semantics where a chat template can observe them.
#include "runtime/jinja.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "runtime/jinja_ast.h"
#include "runtime/jinja_internal.h"

namespace ingot::jinja {

namespace {

constexpr int64_t kMaxRange = 100000;            // as Jinja's sandbox
constexpr size_t kMaxString = size_t{1} << 26;   // 64 MiB: a runaway template stops with an error
constexpr int kMaxCallDepth = 100;
constexpr int64_t kMaxSteps = int64_t{1} << 20;  // loop iterations and macro calls per render
constexpr size_t kMaxItems = size_t{1} << 20;     // elements of a list a template builds or iterates

const char* kFilters[] = {"abs", "attr", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
                          "first", "float", "format", "indent", "int", "items", "join", "last", "length", "list",
                          "lower", "map", "max", "min", "reject", "rejectattr", "replace", "reverse", "round",
                          "safe", "select", "selectattr", "sort", "string", "sum", "title", "tojson", "trim",
                          "unique", "upper", "wordcount"};
const char* kTests[] = {"boolean", "callable", "defined", "divisibleby", "eq", "equalto", "==", "escaped",
                        "even", "false", "float", "ge", ">=", "gt", ">", "greaterthan", "in", "integer",
                        "iterable", "le", "<=", "lower", "lt", "<", "lessthan", "mapping", "ne", "!=", "none",
                        "number", "odd", "sameas", "sequence", "string", "true", "undefined", "upper"};

std::string kind_name(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::undefined: return "Undefined";
    case Value::Kind::none: return "NoneType";
    case Value::Kind::boolean: return "bool";
    case Value::Kind::integer: return "int";
    case Value::Kind::floating: return "float";
    case Value::Kind::string: return "str";
    case Value::Kind::list: return v.is_tuple() ? "tuple" : "list";
    case Value::Kind::dict: return v.is_namespace() ? "Namespace" : "dict";
    case Value::Kind::function: return "function";
  }
  return "?";
}

Status undefined_error(const Value& v) {
  return Status::Error(v.as_string().empty() ? std::string("value is undefined") : v.as_string());
}

bool is_space_cp(uint32_t c) {
  return (c >= 9 && c <= 13) || (c >= 28 && c <= 32) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

// Python's str.strip / lstrip / rstrip (chars: none = whitespace).
std::string strip(const std::string& s, const Value* chars, bool left, bool right) {
  auto cps = to_codepoints(s);
  std::vector<uint32_t> set;
  const bool ws = !chars || chars->is_none() || chars->is_undefined();
  if (!ws) set = to_codepoints(chars->str());
  auto drop = [&](uint32_t c) { return ws ? is_space_cp(c) : std::find(set.begin(), set.end(), c) != set.end(); };
  size_t b = 0, e = cps.size();
  if (left)
    while (b < e && drop(cps[b])) ++b;
  if (right)
    while (e > b && drop(cps[e - 1])) --e;
  return from_codepoints(cps, b, e);
}

std::string ascii_map(const std::string& s, int (*f)(int)) {
  std::string out = s;
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x80) c = static_cast<char>(f(static_cast<unsigned char>(c)));
  return out;
}
std::string upper(const std::string& s) { return ascii_map(s, ::toupper); }
std::string lower(const std::string& s) { return ascii_map(s, ::tolower); }
std::string capitalize(const std::string& s) {
  std::string out = lower(s);
  if (!out.empty() && static_cast<unsigned char>(out[0]) < 0x80) out[0] = static_cast<char>(::toupper(out[0]));
  return out;
}
// Python's str.title(): a letter after a non-letter is upper-cased, other letters lower-cased.
std::string title(const std::string& s) {
  std::string out = s;
  bool prev_letter = false;
  for (char& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    bool letter = u >= 0x80 || isalpha(u);
    if (u < 0x80 && isalpha(u)) c = static_cast<char>(prev_letter ? tolower(u) : toupper(u));
    prev_letter = letter;
  }
  return out;
}

// Python's `fmt % args` for %s %r %d %i %f %% (with an optional precision, e.g. %.2f).
StatusOr<Value> percent_format(const std::string& fmt, const std::vector<Value>& args) {
  std::string out;
  size_t next = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    if (++i >= fmt.size()) return Status::Error("format: incomplete format");
    if (fmt[i] == '%') {
      out += '%';
      continue;
    }
    int precision = -1;
    if (fmt[i] == '.') {
      precision = 0;
      while (++i < fmt.size() && isdigit(static_cast<unsigned char>(fmt[i]))) precision = precision * 10 + (fmt[i] - '0');
      if (i >= fmt.size() || precision > 50) return Status::Error("format: bad precision");
    }
    if (next >= args.size()) return Status::Error("format: not enough arguments for format string");
    const Value& v = args[next++];
    switch (fmt[i]) {
      case 's': out += v.str(); break;
      case 'r': out += v.repr(); break;
      case 'd':
      case 'i':
        if (!v.is_number()) return Status::Error("format: %d needs a number, not " + kind_name(v));
        out += std::to_string(v.kind() == Value::Kind::floating ? static_cast<int64_t>(v.as_float()) : v.as_int());
        break;
      case 'f': {
        if (!v.is_number()) return Status::Error("format: %f needs a number, not " + kind_name(v));
        char buf[512];
        std::snprintf(buf, sizeof buf, "%.*f", precision < 0 ? 6 : precision, v.as_float());
        out += buf;
        break;
      }
      default: return Status::Error(std::string("format: unsupported conversion '%") + fmt[i] + "'");
    }
  }
  if (next != args.size()) return Status::Error("format: not all arguments converted during string formatting");
  return Value::string(std::move(out));
}

// Jinja's title filter: words start after '-', whitespace, '(', '{', '[' or '<'; each word's
// first character upper-cased, the rest lower-cased.
std::string title_filter(const std::string& s) {
  std::string out;
  bool start = true;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || isspace(u);
    if (sep) {
      out += c;
      start = true;
    } else {
      out += static_cast<char>(u < 0x80 ? (start ? toupper(u) : tolower(u)) : u);
      start = false;
    }
  }
  return out;
}

std::string replace(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  std::string out;
  if (from.empty()) {
    auto cps = to_codepoints(s);
    int64_t n = 0;
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || n < count) {
        out += to;
        ++n;
      }
      if (i < cps.size()) append_utf8(out, cps[i]);
    }
    return out;
  }
  size_t p = 0;
  int64_t n = 0;
  while (count < 0 || n < count) {
    size_t q = s.find(from, p);
    if (q == std::string::npos) break;
    out.append(s, p, q - p);
    out += to;
    p = q + from.size();
    ++n;
  }
  out.append(s, p, std::string::npos);
  return out;
}

// Python's str.split(sep=None, maxsplit=-1).
Value split(const std::string& s, const Value* sep, int64_t maxsplit) {
  Value out = Value::list();
  if (!sep || sep->is_none()) {
    auto cps = to_codepoints(s);
    size_t i = 0;
    int64_t n = 0;
    while (true) {
      while (i < cps.size() && is_space_cp(cps[i])) ++i;
      if (i >= cps.size()) break;
      if (maxsplit >= 0 && n >= maxsplit) {
        size_t e = cps.size();
        while (e > i && is_space_cp(cps[e - 1])) --e;
        out.push_back(Value::string(from_codepoints(cps, i, e)));
        break;
      }
      size_t j = i;
      while (j < cps.size() && !is_space_cp(cps[j])) ++j;
      out.push_back(Value::string(from_codepoints(cps, i, j)));
      ++n;
      i = j;
    }
    return out;
  }
  const std::string& d = sep->as_string();
  size_t p = 0;
  int64_t n = 0;
  while (maxsplit < 0 || n < maxsplit) {
    size_t q = s.find(d, p);
    if (q == std::string::npos) break;
    out.push_back(Value::string(s.substr(p, q - p)));
    p = q + d.size();
    ++n;
  }
  out.push_back(Value::string(s.substr(p)));
  return out;
}

// Python's slice indices for a sequence of length n.
void slice_indices(int64_t n, const Value& start, const Value& stop, int64_t step, int64_t& b, int64_t& e) {
  auto adjust = [&](const Value& v, int64_t dflt) {
    if (v.is_none() || v.is_undefined()) return dflt;
    int64_t i = v.as_int();
    if (i < 0) {
      i += n;
      if (i < 0) i = step < 0 ? -1 : 0;
    } else if (i >= n) {
      i = step < 0 ? n - 1 : n;
    }
    return i;
  };
  b = adjust(start, step < 0 ? n - 1 : 0);
  e = adjust(stop, step < 0 ? -1 : n);
}

StatusOr<int64_t> to_index(const Value& v, const char* what) {
  if (v.is_none() || v.is_undefined()) return int64_t{0};
  if (v.kind() == Value::Kind::integer || v.kind() == Value::Kind::boolean) return v.as_int();
  return Status::Error(std::string("slice ") + what + " must be an integer, not " + kind_name(v));
}

// Iteration as Python's for: list items, dict keys, string characters; undefined is empty.
StatusOr<std::vector<Value>> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::undefined: return std::vector<Value>{};
    case Value::Kind::list: return v.items();
    case Value::Kind::dict: {
      if (v.is_namespace()) return Status::Error("a namespace is not iterable");
      std::vector<Value> keys;
      for (const auto& [k, x] : v.entries()) keys.push_back(Value::string(k));
      return keys;
    }
    case Value::Kind::string: {
      if (v.as_string().size() > kMaxItems) return Status::Error("string too long to iterate");
      std::vector<Value> out;
      auto cps = to_codepoints(v.as_string());
      for (size_t i = 0; i < cps.size(); ++i) out.push_back(Value::string(from_codepoints(cps, i, i + 1)));
      return out;
    }
    default: return Status::Error("'" + kind_name(v) + "' object is not iterable");
  }
}

StatusOr<int> compare(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind() == Value::Kind::floating || b.kind() == Value::Kind::floating) {
      double x = a.as_float(), y = b.as_float();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int() ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    int c = a.as_string().compare(b.as_string());
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_list() && b.is_list()) {
    size_t n = std::min(a.items().size(), b.items().size());
    for (size_t i = 0; i < n; ++i) {
      if (equals(a.items()[i], b.items()[i])) continue;
      return compare(a.items()[i], b.items()[i]);
    }
    return a.items().size() < b.items().size() ? -1 : a.items().size() > b.items().size() ? 1 : 0;
  }
  if (a.is_undefined()) return undefined_error(a);
  if (b.is_undefined()) return undefined_error(b);
  return Status::Error("cannot compare '" + kind_name(a) + "' with '" + kind_name(b) + "'");
}

StatusOr<bool> contains(const Value& container, const Value& x) {
  switch (container.kind()) {
    case Value::Kind::undefined: return false;
    case Value::Kind::string:
      if (!x.is_string()) return Status::Error("'in <string>' requires a string as left operand, not " + kind_name(x));
      return container.as_string().find(x.as_string()) != std::string::npos;
    case Value::Kind::list:
      for (const auto& i : container.items())
        if (equals(i, x)) return true;
      return false;
    case Value::Kind::dict: return x.is_string() && container.find(x.as_string()) != nullptr;
    default: return Status::Error("argument of type '" + kind_name(container) + "' is not iterable");
  }
}

// Jinja's getattr(obj, name) for `obj.name`: dict items; anything else has no such attribute.
Value get_attr(const Value& obj, const std::string& name) {
  if (obj.is_dict()) {
    if (const Value* v = obj.find(name)) return *v;
    return Value::undefined("'" + std::string(obj.is_namespace() ? "Namespace" : "dict object") +
                            "' has no attribute '" + name + "'");
  }
  return Value::undefined("'" + kind_name(obj) + " object' has no attribute '" + name + "'");
}

// obj[key]: out-of-range indices and missing keys are undefined, as in Jinja.
Value get_item(const Value& obj, const Value& key) {
  if (obj.is_dict()) {
    if (key.is_string())
      if (const Value* v = obj.find(key.as_string())) return *v;
    return Value::undefined("'dict object' has no attribute " + key.repr());
  }
  if ((obj.is_list() || obj.is_string()) && (key.kind() == Value::Kind::integer || key.kind() == Value::Kind::boolean)) {
    int64_t i = key.as_int();
    if (obj.is_list()) {
      int64_t n = static_cast<int64_t>(obj.items().size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return obj.items()[static_cast<size_t>(i)];
    } else {
      auto cps = to_codepoints(obj.as_string());
      int64_t n = static_cast<int64_t>(cps.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return Value::string(from_codepoints(cps, static_cast<size_t>(i), static_cast<size_t>(i) + 1));
    }
    return Value::undefined("'" + kind_name(obj) + " object' has no element " + key.repr());
  }
  return Value::undefined("'" + kind_name(obj) + " object' has no element " + key.repr());
}

// Attribute path "a.b.0" as the attribute= arguments of filters take it.
Value get_path(const Value& obj, const std::string& path) {
  Value v = obj;
  size_t p = 0;
  while (true) {
    size_t q = path.find('.', p);
    std::string part = path.substr(p, q == std::string::npos ? std::string::npos : q - p);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    v = digits && v.is_list() ? get_item(v, Value::integer(std::stoll(part))) : get_item(v, Value::string(part));
    if (q == std::string::npos) return v;
    p = q + 1;
  }
}

struct Args {
  const CallArgs& a;
  const Value* get(size_t i, const char* name) const {
    if (i < a.positional.size()) return &a.positional[i];
    for (const auto& [k, v] : a.keyword)
      if (k == name) return &v;
    return nullptr;
  }
  bool flag(size_t i, const char* name, bool dflt) const {
    const Value* v = get(i, name);
    return v ? v->truthy() : dflt;
  }
  StatusOr<int64_t> integer(size_t i, const char* name, int64_t dflt) const {
    const Value* v = get(i, name);
    if (!v || v->is_none()) return dflt;
    if (v->kind() != Value::Kind::integer && v->kind() != Value::Kind::boolean)
      return Status::Error(std::string("argument '") + name + "' must be an integer, not " + kind_name(*v));
    return v->as_int();
  }
};

StatusOr<Value> arith(const std::string& op, const Value& a, const Value& b) {
  using K = Value::Kind;
  if (a.is_undefined()) return undefined_error(a);
  if (b.is_undefined()) return undefined_error(b);
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      if (a.as_string().size() + b.as_string().size() > kMaxString) return Status::Error("string too long");
      return Value::string(a.as_string() + b.as_string());
    }
    if (a.is_list() && b.is_list()) {
      if (a.items().size() + b.items().size() > kMaxItems) return Status::Error("list too long");
      std::vector<Value> items = a.items();
      items.insert(items.end(), b.items().begin(), b.items().end());
      return Value::list(std::move(items), a.is_tuple() && b.is_tuple());
    }
  }
  if (op == "*") {
    const Value* seq = a.is_string() || a.is_list() ? &a : b.is_string() || b.is_list() ? &b : nullptr;
    const Value* n = seq == &a ? &b : &a;
    if (seq && (n->kind() == K::integer || n->kind() == K::boolean)) {
      int64_t times = std::max<int64_t>(0, n->as_int());
      size_t unit = seq->is_string() ? seq->as_string().size() : seq->items().size();
      const size_t limit = seq->is_string() ? kMaxString : kMaxItems;
      if (unit && static_cast<uint64_t>(times) > limit / unit) return Status::Error("repetition too large");
      if (seq->is_string()) {
        std::string out;
        for (int64_t i = 0; i < times; ++i) out += seq->as_string();
        return Value::string(std::move(out));
      }
      std::vector<Value> items;
      for (int64_t i = 0; i < times; ++i) items.insert(items.end(), seq->items().begin(), seq->items().end());
      return Value::list(std::move(items), seq->is_tuple());
    }
  }
  if (!a.is_number() || !b.is_number())
    return Status::Error("unsupported operand types for " + op + ": '" + kind_name(a) + "' and '" + kind_name(b) + "'");
  const bool ints = a.kind() != K::floating && b.kind() != K::floating;
  if (op == "/") {
    if (b.as_float() == 0) return Status::Error("division by zero");
    return Value::floating(a.as_float() / b.as_float());
  }
  if (ints) {
    int64_t x = a.as_int(), y = b.as_int(), r = 0;
    bool overflow = false;
    if (op == "+") overflow = __builtin_add_overflow(x, y, &r);
    else if (op == "-") overflow = __builtin_sub_overflow(x, y, &r);
    else if (op == "*") overflow = __builtin_mul_overflow(x, y, &r);
    else if (op == "//" || op == "%") {
      if (y == 0) return Status::Error("integer division or modulo by zero");
      if (x == INT64_MIN && y == -1) overflow = true;
      else {
        int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) {
          --q;
          m += y;
        }
        r = op == "//" ? q : m;
      }
    } else if (op == "**") {
      if (y < 0) return Value::floating(std::pow(static_cast<double>(x), static_cast<double>(y)));
      r = 1;
      for (int64_t i = 0; i < y && !overflow; ++i) overflow = __builtin_mul_overflow(r, x, &r);
    }
    if (overflow) return Status::Error("integer overflow in " + op);
    return Value::integer(r);
  }
  double x = a.as_float(), y = b.as_float();
  if (op == "+") return Value::floating(x + y);
  if (op == "-") return Value::floating(x - y);
  if (op == "*") return Value::floating(x * y);
  if (op == "**") return Value::floating(std::pow(x, y));
  if (y == 0) return Status::Error("float division by zero");
  double q = std::floor(x / y);
  if (op == "//") return Value::floating(q);
  double m = std::fmod(x, y);
  if (m != 0 && ((m < 0) != (y < 0))) m += y;
  return Value::floating(m);
}

StatusOr<bool> apply_test(const std::string& name, const Value& v, const std::vector<Value>& args) {
  using K = Value::Kind;
  auto arg = [&]() -> StatusOr<Value> {
    if (args.empty()) return Status::Error("test '" + name + "' needs an argument");
    return args[0];
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.kind() == K::boolean;
  if (name == "true") return v.kind() == K::boolean && v.as_bool();
  if (name == "false") return v.kind() == K::boolean && !v.as_bool();
  if (name == "integer") return v.kind() == K::integer;
  if (name == "float") return v.kind() == K::floating;
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict() && !v.is_namespace();
  if (name == "iterable") return v.is_undefined() || v.is_string() || v.is_list() || (v.is_dict() && !v.is_namespace());
  if (name == "sequence") return v.is_undefined() || v.is_string() || v.is_list() || (v.is_dict() && !v.is_namespace());
  if (name == "callable") return v.kind() == K::function;
  if (name == "escaped") return false;
  if (name == "lower") return v.is_string() && lower(v.as_string()) == v.as_string();
  if (name == "upper") return v.is_string() && upper(v.as_string()) == v.as_string();
  if (name == "odd" || name == "even" || name == "divisibleby") {
    if (v.kind() != K::integer && v.kind() != K::boolean) return Status::Error("test '" + name + "' needs an integer, not " + kind_name(v));
    int64_t d = 2;
    if (name == "divisibleby") {
      INGOT_ASSIGN_OR_RETURN(Value a, arg());
      if (a.kind() != K::integer || a.as_int() == 0) return Status::Error("divisibleby needs a non-zero integer");
      d = a.as_int();
      return v.as_int() % d == 0;
    }
    bool even = v.as_int() % 2 == 0;
    return name == "even" ? even : !even;
  }
  INGOT_ASSIGN_OR_RETURN(Value a, arg());
  if (name == "eq" || name == "equalto" || name == "==") return equals(v, a);
  if (name == "ne" || name == "!=") return !equals(v, a);
  if (name == "sameas") {
    if (v.kind() != a.kind()) return false;
    if (v.is_none() || v.is_undefined()) return true;
    if (v.kind() == K::boolean) return v.as_bool() == a.as_bool();
    return false;
  }
  if (name == "in") return contains(a, v);
  INGOT_ASSIGN_OR_RETURN(int c, compare(v, a));
  if (name == "lt" || name == "<" || name == "lessthan") return c < 0;
  if (name == "le" || name == "<=") return c <= 0;
  if (name == "gt" || name == ">" || name == "greaterthan") return c > 0;
  if (name == "ge" || name == ">=") return c >= 0;
  return Status::Error("unknown test '" + name + "'");
}

// Sort key comparison for sort/dictsort (case-insensitive strings unless asked).
StatusOr<int> sort_compare(const Value& a, const Value& b, bool case_sensitive) {
  if (!case_sensitive && a.is_string() && b.is_string())
    return compare(Value::string(lower(a.as_string())), Value::string(lower(b.as_string())));
  return compare(a, b);
}

StatusOr<std::vector<Value>> sorted(std::vector<Value> items, bool reverse, bool case_sensitive,
                                    const std::string& attribute) {
  Status err;
  std::vector<Value> keys;
  for (const auto& v : items) keys.push_back(attribute.empty() ? v : get_path(v, attribute));
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  // Stable: equal keys keep their order (as Python's sorted).
  std::sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    if (!err.ok()) return x < y;
    auto c = sort_compare(keys[x], keys[y], case_sensitive);
    if (!c.ok()) {
      err = c.status();
      return x < y;
    }
    if (*c == 0) return x < y;
    return reverse ? *c > 0 : *c < 0;
  });
  std::vector<Value> out;
  for (size_t i : order) out.push_back(items[i]);
  items = std::move(out);
  if (!err.ok()) return err;
  return items;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// Jinja's indent filter (3.x): every line but the first (unless first=true), blank lines only
// when blank=true.
std::string indent(const std::string& s, const std::string& pad, bool first, bool blank) {
  std::vector<std::string> lines;
  std::string text = s + "\n";
  size_t p = 0;
  while (p < text.size()) {
    size_t q = text.find_first_of("\r\n", p);
    lines.push_back(text.substr(p, q - p));
    p = q + ((text[q] == '\r' && q + 1 < text.size() && text[q + 1] == '\n') ? 2 : 1);
  }
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + pad : "") + lines[i];
  } else {
    rv = lines[0];
    for (size_t i = 1; i < lines.size(); ++i) rv += "\n" + (lines[i].empty() ? "" : pad) + lines[i];
  }
  return first ? pad + rv : rv;
}

}  // namespace

bool is_filter(const std::string& name) {
  for (const char* f : kFilters)
    if (name == f) return true;
  return false;
}

bool is_test(const std::string& name) {
  for (const char* t : kTests)
    if (name == t) return true;
  return false;
}

namespace {

enum class Flow { normal, brk, cont };

class Renderer {
 public:
  explicit Renderer(const Value& context) {
    Frame root;
    root.emplace_back("range", Value::function("range", [](const CallArgs& a) { return range(a); }));
    root.emplace_back("namespace", Value::function("namespace", [this](const CallArgs& a) -> StatusOr<Value> {
                        Value ns = Value::namespace_();
                        namespaces_.push_back(ns);
                        for (const auto& p : a.positional) {
                          if (!p.is_dict()) return Status::Error("namespace() takes a dict or keyword arguments");
                          for (const auto& [k, v] : p.entries()) ns.set(k, v);
                        }
                        for (const auto& [k, v] : a.keyword) ns.set(k, v);
                        return ns;
                      }));
    root.emplace_back("dict", Value::function("dict", [](const CallArgs& a) -> StatusOr<Value> {
                        Value d = Value::dict();
                        for (const auto& p : a.positional) {
                          if (!p.is_dict()) return Status::Error("dict() takes a dict or keyword arguments");
                          for (const auto& [k, v] : p.entries()) d.set(k, v);
                        }
                        for (const auto& [k, v] : a.keyword) d.set(k, v);
                        return d;
                      }));
    if (context.is_dict())
      for (const auto& [k, v] : context.entries()) set_in(root, k, v);
    frames_.push_back(std::move(root));
  }

  // A namespace may hold itself (`{% set ns.me = ns %}`): emptied here, so that no cycle of
  // shared values outlives the rendering.
  ~Renderer() {
    for (auto& ns : namespaces_) ns.clear();
  }
  Renderer(const Renderer&) = delete;
  Renderer& operator=(const Renderer&) = delete;

  StatusOr<Flow> exec(const std::vector<StmtPtr>& body, std::string& out) {
    for (const auto& s : body) {
      INGOT_ASSIGN_OR_RETURN(Flow f, exec(*s, out));
      if (f != Flow::normal) return f;
      if (out.size() > kMaxString) return error(s->loc, Status::Error("output too long"));
    }
    return Flow::normal;
  }

 private:
  using Frame = std::vector<std::pair<std::string, Value>>;

  static void set_in(Frame& f, const std::string& name, Value v) {
    for (auto& [k, old] : f)
      if (k == name) {
        old = std::move(v);
        return;
      }
    f.emplace_back(name, std::move(v));
  }

  static StatusOr<Value> range(const CallArgs& a) {
    if (!a.keyword.empty() || a.positional.empty() || a.positional.size() > 3)
      return Status::Error("range() takes 1 to 3 integer arguments");
    for (const auto& v : a.positional)
      if (v.kind() != Value::Kind::integer && v.kind() != Value::Kind::boolean)
        return Status::Error("range() arguments must be integers, not " + kind_name(v));
    int64_t start = 0, stop, step = 1;
    if (a.positional.size() == 1) stop = a.positional[0].as_int();
    else {
      start = a.positional[0].as_int();
      stop = a.positional[1].as_int();
      if (a.positional.size() == 3) step = a.positional[2].as_int();
    }
    if (step == 0) return Status::Error("range() step must not be zero");
    std::vector<Value> out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (static_cast<int64_t>(out.size()) >= kMaxRange)
        return Status::Error("range too big (more than " + std::to_string(kMaxRange) + " items)");
      out.push_back(Value::integer(i));
    }
    return Value::list(std::move(out));
  }

  static Status error(const Loc& l, const Status& s) {
    if (s.message().rfind("line ", 0) == 0) return s;  // already located
    return Status::Error(s.code(), "line " + std::to_string(l.line) + ", column " + std::to_string(l.column) + ": " + s.message());
  }

  Value lookup(const std::string& name) const {
    for (size_t i = frames_.size(); i-- > barrier_;)
      for (const auto& [k, v] : frames_[i])
        if (k == name) return v;
    if (barrier_ > 0)
      for (const auto& [k, v] : frames_[0])
        if (k == name) return v;
    return Value::undefined("'" + name + "' is undefined");
  }

  StatusOr<Flow> exec(const Stmt& s, std::string& out) {
    switch (s.kind) {
      case StmtKind::text: out += s.text; return Flow::normal;
      case StmtKind::output: {
        INGOT_ASSIGN_OR_RETURN(Value v, eval(*s.expr));
        out += v.str();
        return Flow::normal;
      }
      case StmtKind::if_: {
        for (const auto& [cond, body] : s.branches) {
          INGOT_ASSIGN_OR_RETURN(Value c, eval(*cond));
          if (c.truthy()) return exec(body, out);
        }
        return exec(s.else_body, out);
      }
      case StmtKind::for_: return exec_for(s, out);
      case StmtKind::set: {
        INGOT_ASSIGN_OR_RETURN(Value v, eval(*s.expr));
        if (s.targets.size() == 1) {
          set_in(frames_.back(), s.targets[0], std::move(v));
          return Flow::normal;
        }
        INGOT_RETURN_IF_ERROR(unpack(s.targets, v, s.loc));
        return Flow::normal;
      }
      case StmtKind::set_attr: {
        Value ns = lookup(s.targets[0]);
        if (!ns.is_namespace())
          return error(s.loc, Status::Error("cannot assign attribute on non-namespace object '" + s.targets[0] + "'"));
        INGOT_ASSIGN_OR_RETURN(Value v, eval(*s.expr));
        ns.set(s.text, std::move(v));
        return Flow::normal;
      }
      case StmtKind::set_block: {
        std::string text;
        INGOT_ASSIGN_OR_RETURN(Flow f, exec(s.body, text));
        (void)f;
        Value v = Value::string(std::move(text));
        if (s.expr) {
          block_input_ = v;
          INGOT_ASSIGN_OR_RETURN(v, eval(*s.expr));
        }
        set_in(frames_.back(), s.targets[0], std::move(v));
        return Flow::normal;
      }
      case StmtKind::filter_block: {
        std::string text;
        INGOT_ASSIGN_OR_RETURN(Flow f, exec(s.body, text));
        block_input_ = Value::string(std::move(text));
        INGOT_ASSIGN_OR_RETURN(Value v, eval(*s.expr));
        out += v.str();
        return f;
      }
      case StmtKind::block: return exec(s.body, out);
      case StmtKind::macro: {
        const Stmt* m = &s;
        set_in(frames_.back(), s.text, Value::function(s.text, [this, m](const CallArgs& a) { return call_macro(*m, a); }));
        return Flow::normal;
      }
      case StmtKind::brk: return Flow::brk;
      case StmtKind::cont: return Flow::cont;
    }
    return Flow::normal;
  }

  Status unpack(const std::vector<std::string>& names, const Value& v, const Loc& loc) {
    auto items = iterate(v);
    if (!items.ok()) return error(loc, items.status());
    if (items->size() != names.size())
      return error(loc, Status::Error("cannot unpack " + std::to_string(items->size()) + " values into " +
                                      std::to_string(names.size()) + " names"));
    for (size_t i = 0; i < names.size(); ++i) set_in(frames_.back(), names[i], (*items)[i]);
    return Status::Ok();
  }

  StatusOr<Flow> exec_for(const Stmt& s, std::string& out) {
    INGOT_ASSIGN_OR_RETURN(Value seq, eval(*s.expr));
    if (seq.is_none() || (!seq.is_list() && !seq.is_dict() && !seq.is_string() && !seq.is_undefined()))
      return error(s.expr->loc, Status::Error("'" + kind_name(seq) + "' object is not iterable"));
    auto all = iterate(seq);
    if (!all.ok()) return error(s.expr->loc, all.status());
    std::vector<Value> items;
    if (s.filter) {
      for (auto& v : *all) {
        frames_.emplace_back();
        Status st = s.targets.size() == 1 ? (set_in(frames_.back(), s.targets[0], v), Status::Ok()) : unpack(s.targets, v, s.loc);
        StatusOr<Value> keep = st.ok() ? eval(*s.filter) : StatusOr<Value>(st);
        frames_.pop_back();
        if (!keep.ok()) return keep.status();
        if (keep->truthy()) items.push_back(std::move(v));
      }
    } else {
      items = std::move(*all);
    }
    if (items.empty()) return exec(s.else_body, out);
    const int64_t n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      if (++steps_ > kMaxSteps) return error(s.loc, Status::Error("the template runs too long (more than " + std::to_string(kMaxSteps) + " loop iterations and macro calls)"));
      Value loop = Value::dict();
      loop.set("index0", Value::integer(i));
      loop.set("index", Value::integer(i + 1));
      loop.set("revindex0", Value::integer(n - i - 1));
      loop.set("revindex", Value::integer(n - i));
      loop.set("first", Value::boolean(i == 0));
      loop.set("last", Value::boolean(i == n - 1));
      loop.set("length", Value::integer(n));
      loop.set("depth", Value::integer(1));
      loop.set("depth0", Value::integer(0));
      loop.set("previtem", i > 0 ? items[i - 1] : Value::undefined("there is no previous item"));
      loop.set("nextitem", i + 1 < n ? items[i + 1] : Value::undefined("there is no next item"));
      loop.set("cycle", Value::function("cycle", [i](const CallArgs& a) -> StatusOr<Value> {
                 if (a.positional.empty()) return Status::Error("no items for cycling given");
                 return a.positional[static_cast<size_t>(i) % a.positional.size()];
               }));
      frames_.emplace_back();
      set_in(frames_.back(), "loop", loop);
      if (s.targets.size() == 1) {
        set_in(frames_.back(), s.targets[0], items[i]);
      } else if (Status st = unpack(s.targets, items[i], s.loc); !st.ok()) {
        frames_.pop_back();
        return st;
      }
      auto f = exec(s.body, out);
      frames_.pop_back();
      if (!f.ok()) return f.status();
      if (*f == Flow::brk) break;
    }
    return Flow::normal;
  }

  StatusOr<Value> call_macro(const Stmt& m, const CallArgs& a) {
    if (depth_ >= kMaxCallDepth) return Status::Error("macro calls nested too deeply");
    if (++steps_ > kMaxSteps) return Status::Error("the template runs too long (more than " + std::to_string(kMaxSteps) + " loop iterations and macro calls)");
    if (a.positional.size() > m.targets.size())
      return Status::Error("macro '" + m.text + "' takes " + std::to_string(m.targets.size()) + " arguments, got " +
                           std::to_string(a.positional.size()));
    Frame f;
    for (size_t i = 0; i < m.targets.size(); ++i) {
      if (i < a.positional.size()) {
        f.emplace_back(m.targets[i], a.positional[i]);
        continue;
      }
      const Value* kw = nullptr;
      for (const auto& [k, v] : a.keyword)
        if (k == m.targets[i]) kw = &v;
      if (kw) {
        f.emplace_back(m.targets[i], *kw);
      } else if (m.defaults[i]) {
        INGOT_ASSIGN_OR_RETURN(Value d, eval(*m.defaults[i]));
        f.emplace_back(m.targets[i], std::move(d));
      } else {
        f.emplace_back(m.targets[i], Value::undefined("parameter '" + m.targets[i] + "' was not provided"));
      }
    }
    for (const auto& [k, v] : a.keyword)
      if (std::find(m.targets.begin(), m.targets.end(), k) == m.targets.end())
        return Status::Error("macro '" + m.text + "' takes no keyword argument '" + k + "'");
    const size_t saved_barrier = barrier_;
    barrier_ = frames_.size();
    frames_.push_back(std::move(f));
    ++depth_;
    std::string text;
    auto r = exec(m.body, text);
    --depth_;
    frames_.pop_back();
    barrier_ = saved_barrier;
    if (!r.ok()) return r.status();
    return Value::string(std::move(text));
  }

  StatusOr<CallArgs> eval_args(const Expr& e, size_t first) {
    CallArgs a;
    const size_t nkw = e.keywords.size();
    const size_t npos = e.kids.size() - first - nkw;
    for (size_t i = 0; i < npos; ++i) {
      INGOT_ASSIGN_OR_RETURN(Value v, eval(*e.kids[first + i]));
      a.positional.push_back(std::move(v));
    }
    for (size_t i = 0; i < nkw; ++i) {
      INGOT_ASSIGN_OR_RETURN(Value v, eval(*e.kids[first + npos + i]));
      a.keyword.emplace_back(e.keywords[i], std::move(v));
    }
    return a;
  }

  StatusOr<Value> eval(const Expr& e) {
    auto r = eval_inner(e);
    if (!r.ok()) return error(e.loc, r.status());
    return r;
  }

  StatusOr<Value> eval_inner(const Expr& e) {
    switch (e.kind) {
      case ExprKind::literal: return e.name.empty() ? e.value : block_input_;
      case ExprKind::name: return lookup(e.name);
      case ExprKind::list:
      case ExprKind::tuple: {
        std::vector<Value> items;
        for (const auto& k : e.kids) {
          INGOT_ASSIGN_OR_RETURN(Value v, eval(*k));
          items.push_back(std::move(v));
        }
        return Value::list(std::move(items), e.kind == ExprKind::tuple);
      }
      case ExprKind::dict: {
        Value d = Value::dict();
        for (size_t i = 0; i + 1 < e.kids.size(); i += 2) {
          INGOT_ASSIGN_OR_RETURN(Value k, eval(*e.kids[i]));
          if (!k.is_string()) return Status::Error("dict keys must be strings here, not " + kind_name(k));
          INGOT_ASSIGN_OR_RETURN(Value v, eval(*e.kids[i + 1]));
          d.set(k.as_string(), std::move(v));
        }
        return d;
      }
      case ExprKind::attr: {
        INGOT_ASSIGN_OR_RETURN(Value obj, eval(*e.kids[0]));
        if (obj.is_undefined()) return undefined_error(obj);
        return get_attr(obj, e.name);
      }
      case ExprKind::item: {
        INGOT_ASSIGN_OR_RETURN(Value obj, eval(*e.kids[0]));
        if (obj.is_undefined()) return undefined_error(obj);
        INGOT_ASSIGN_OR_RETURN(Value key, eval(*e.kids[1]));
        return get_item(obj, key);
      }
      case ExprKind::slice: return eval_slice(e);
      case ExprKind::call: return eval_call(e);
      case ExprKind::filter: {
        INGOT_ASSIGN_OR_RETURN(Value in, eval(*e.kids[0]));
        INGOT_ASSIGN_OR_RETURN(CallArgs a, eval_args(e, 1));
        return apply_filter(e.name, in, a);
      }
      case ExprKind::test: {
        INGOT_ASSIGN_OR_RETURN(Value in, eval(*e.kids[0]));
        INGOT_ASSIGN_OR_RETURN(CallArgs a, eval_args(e, 1));
        INGOT_ASSIGN_OR_RETURN(bool r, apply_test(e.name, in, a.positional));
        return Value::boolean(r != e.negated);
      }
      case ExprKind::unary: {
        INGOT_ASSIGN_OR_RETURN(Value v, eval(*e.kids[0]));
        if (e.name == "not") return Value::boolean(!v.truthy());
        if (v.is_undefined()) return undefined_error(v);
        if (!v.is_number()) return Status::Error("bad operand type for unary " + e.name + ": '" + kind_name(v) + "'");
        if (e.name == "+") return v.kind() == Value::Kind::boolean ? Value::integer(v.as_int()) : v;
        if (v.kind() == Value::Kind::floating) return Value::floating(-v.as_float());
        if (v.as_int() == INT64_MIN) return Status::Error("integer overflow in unary -");
        return Value::integer(-v.as_int());
      }
      case ExprKind::binary: return eval_binary(e);
      case ExprKind::cond: {
        INGOT_ASSIGN_OR_RETURN(Value c, eval(*e.kids[0]));
        if (c.truthy()) return eval(*e.kids[1]);
        if (e.kids.size() > 2) return eval(*e.kids[2]);
        return Value::undefined("the inline if expression has no else");
      }
    }
    return Status::Error("internal: unknown expression");
  }

  StatusOr<Value> eval_binary(const Expr& e) {
    const std::string& op = e.name;
    INGOT_ASSIGN_OR_RETURN(Value a, eval(*e.kids[0]));
    if (op == "and") return a.truthy() ? eval(*e.kids[1]) : a;
    if (op == "or") return a.truthy() ? a : eval(*e.kids[1]);
    INGOT_ASSIGN_OR_RETURN(Value b, eval(*e.kids[1]));
    if (op == "==") return Value::boolean(equals(a, b));
    if (op == "!=") return Value::boolean(!equals(a, b));
    if (op == "in" || op == "not in") {
      INGOT_ASSIGN_OR_RETURN(bool c, contains(b, a));
      return Value::boolean(c == (op == "in"));
    }
    if (op == "<" || op == "<=" || op == ">" || op == ">=") {
      INGOT_ASSIGN_OR_RETURN(int c, compare(a, b));
      bool r = op == "<" ? c < 0 : op == "<=" ? c <= 0 : op == ">" ? c > 0 : c >= 0;
      return Value::boolean(r);
    }
    if (op == "~") {
      std::string s = a.str() + b.str();
      if (s.size() > kMaxString) return Status::Error("string too long");
      return Value::string(std::move(s));
    }
    return arith(op, a, b);
  }

  StatusOr<Value> eval_slice(const Expr& e) {
    INGOT_ASSIGN_OR_RETURN(Value obj, eval(*e.kids[0]));
    if (obj.is_undefined()) return undefined_error(obj);
    Value parts[3];
    for (int i = 0; i < 3; ++i) {
      if (e.kids[1 + i]) {
        INGOT_ASSIGN_OR_RETURN(parts[i], eval(*e.kids[1 + i]));
      } else {
        parts[i] = Value::none();
      }
    }
    INGOT_ASSIGN_OR_RETURN(int64_t step, to_index(parts[2], "step"));
    if (parts[2].is_none()) step = 1;
    if (step == 0) return Status::Error("slice step cannot be zero");
    for (int i = 0; i < 2; ++i)
      if (!parts[i].is_none()) INGOT_RETURN_IF_ERROR(to_index(parts[i], i == 0 ? "start" : "stop").status());
    std::vector<uint32_t> cps;
    int64_t n;
    if (obj.is_string()) {
      cps = to_codepoints(obj.as_string());
      n = static_cast<int64_t>(cps.size());
    } else if (obj.is_list()) {
      n = static_cast<int64_t>(obj.items().size());
    } else {
      return Status::Error("'" + kind_name(obj) + "' object is not subscriptable with a slice");
    }
    int64_t b, en;
    slice_indices(n, parts[0], parts[1], step, b, en);
    std::vector<Value> items;
    std::string s;
    for (int64_t i = b; step > 0 ? i < en : i > en; i += step) {
      if (obj.is_string()) append_utf8(s, cps[static_cast<size_t>(i)]);
      else items.push_back(obj.items()[static_cast<size_t>(i)]);
    }
    if (obj.is_string()) return Value::string(std::move(s));
    return Value::list(std::move(items), obj.is_tuple());
  }

  StatusOr<Value> eval_call(const Expr& e) {
    const Expr& callee = *e.kids[0];
    if (callee.kind == ExprKind::attr) {
      INGOT_ASSIGN_OR_RETURN(Value obj, eval(*callee.kids[0]));
      if (obj.is_undefined()) return undefined_error(obj);
      if (obj.is_string() || (obj.is_dict() && !obj.is_namespace()) || obj.is_list()) {
        INGOT_ASSIGN_OR_RETURN(CallArgs a, eval_args(e, 1));
        return call_method(obj, callee.name, a);
      }
      Value f = get_attr(obj, callee.name);
      if (f.kind() != Value::Kind::function) return Status::Error("'" + kind_name(obj) + " object' has no method '" + callee.name + "'");
      INGOT_ASSIGN_OR_RETURN(CallArgs a, eval_args(e, 1));
      return f.function()(a);
    }
    INGOT_ASSIGN_OR_RETURN(Value f, eval(callee));
    if (f.is_undefined()) return undefined_error(f);
    if (f.kind() != Value::Kind::function) return Status::Error("'" + kind_name(f) + "' object is not callable");
    INGOT_ASSIGN_OR_RETURN(CallArgs a, eval_args(e, 1));
    return f.function()(a);
  }

  StatusOr<Value> call_method(const Value& obj, const std::string& m, const CallArgs& ca) {
    Args a{ca};
    if (obj.is_string()) {
      const std::string& s = obj.as_string();
      if (m == "strip" || m == "lstrip" || m == "rstrip")
        return Value::string(strip(s, a.get(0, "chars"), m != "rstrip", m != "lstrip"));
      if (m == "upper") return Value::string(upper(s));
      if (m == "lower") return Value::string(lower(s));
      if (m == "title") return Value::string(title(s));
      if (m == "capitalize") return Value::string(capitalize(s));
      if (m == "split") {
        INGOT_ASSIGN_OR_RETURN(int64_t maxsplit, a.integer(1, "maxsplit", -1));
        const Value* sep = a.get(0, "sep");
        if (sep && !sep->is_none() && !sep->is_string()) return Status::Error("split() separator must be a string");
        if (sep && sep->is_string() && sep->as_string().empty()) return Status::Error("empty separator");
        return split(s, sep, maxsplit);
      }
      if (m == "startswith" || m == "endswith") {
        const Value* p = a.get(0, "prefix");
        if (!p) return Status::Error(m + "() takes an argument");
        std::vector<Value> options = p->is_list() ? p->items() : std::vector<Value>{*p};
        for (const auto& o : options) {
          if (!o.is_string()) return Status::Error(m + "() argument must be a string or a tuple of strings");
          const std::string& x = o.as_string();
          bool hit = m == "startswith" ? s.compare(0, x.size(), x) == 0
                                       : s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
          if (hit) return Value::boolean(true);
        }
        return Value::boolean(false);
      }
      if (m == "replace") {
        const Value* from = a.get(0, "old");
        const Value* to = a.get(1, "new");
        if (!from || !to || !from->is_string() || !to->is_string()) return Status::Error("replace() takes two strings");
        INGOT_ASSIGN_OR_RETURN(int64_t count, a.integer(2, "count", -1));
        return Value::string(replace(s, from->as_string(), to->as_string(), count));
      }
      if (m == "find" || m == "count") {
        const Value* x = a.get(0, "sub");
        if (!x || !x->is_string()) return Status::Error(m + "() takes a string");
        if (m == "count") {
          if (x->as_string().empty()) return Value::integer(static_cast<int64_t>(utf8_length(s)) + 1);
          int64_t n = 0;
          for (size_t p = s.find(x->as_string()); p != std::string::npos; p = s.find(x->as_string(), p + x->as_string().size())) ++n;
          return Value::integer(n);
        }
        size_t p = s.find(x->as_string());
        return Value::integer(p == std::string::npos ? -1 : static_cast<int64_t>(utf8_length(s.substr(0, p))));
      }
      if (m == "join") {
        const Value* items = a.get(0, "iterable");
        if (!items) return Status::Error("join() takes an iterable");
        INGOT_ASSIGN_OR_RETURN(std::vector<Value> xs, iterate(*items));
        std::string out;
        for (size_t i = 0; i < xs.size(); ++i) {
          if (!xs[i].is_string()) return Status::Error("join(): item " + std::to_string(i) + " is not a string");
          if (i) out += s;
          out += xs[i].as_string();
        }
        return Value::string(std::move(out));
      }
      if (m == "splitlines") {
        Value out = Value::list();
        size_t p = 0;
        while (p < s.size()) {
          size_t q = s.find_first_of("\r\n", p);
          if (q == std::string::npos) {
            out.push_back(Value::string(s.substr(p)));
            break;
          }
          out.push_back(Value::string(s.substr(p, q - p)));
          p = q + ((s[q] == '\r' && q + 1 < s.size() && s[q + 1] == '\n') ? 2 : 1);
        }
        return out;
      }
      if (m == "isdigit" || m == "isalpha" || m == "isspace") {
        if (s.empty()) return Value::boolean(false);
        for (unsigned char c : s)
          if (!(m == "isdigit" ? isdigit(c) : m == "isalpha" ? isalpha(c) : isspace(c))) return Value::boolean(false);
        return Value::boolean(true);
      }
      return Status::Error("'str object' has no method '" + m + "'");
    }
    if (obj.is_dict()) {
      if (m == "get") {
        const Value* k = a.get(0, "key");
        if (!k) return Status::Error("get() takes a key");
        if (k->is_string())
          if (const Value* v = obj.find(k->as_string())) return *v;
        const Value* d = a.get(1, "default");
        return d ? *d : Value::none();
      }
      if (m == "items" || m == "keys" || m == "values") {
        std::vector<Value> out;
        for (const auto& [k, v] : obj.entries()) {
          if (m == "items") out.push_back(Value::list({Value::string(k), v}, true));
          else if (m == "keys") out.push_back(Value::string(k));
          else out.push_back(v);
        }
        return Value::list(std::move(out));
      }
      if (const Value* f = obj.find(m); f && f->kind() == Value::Kind::function) return f->function()(ca);
      return Status::Error("'dict object' has no method '" + m + "'");
    }
    if (m == "index" || m == "count") {
      const Value* x = a.get(0, "value");
      if (!x) return Status::Error(m + "() takes an argument");
      int64_t n = 0;
      for (size_t i = 0; i < obj.items().size(); ++i)
        if (equals(obj.items()[i], *x)) {
          if (m == "index") return Value::integer(static_cast<int64_t>(i));
          ++n;
        }
      if (m == "index") return Status::Error(x->repr() + " is not in list");
      return Value::integer(n);
    }
    return Status::Error("'list object' has no method '" + m + "'" +
                         (m == "append" || m == "pop" || m == "extend" || m == "insert" || m == "remove"
                              ? " (templates cannot modify lists)"
                              : ""));
  }

  StatusOr<Value> select_like(const std::string& name, const Value& in, const CallArgs& ca) {
    const bool by_attr = name == "selectattr" || name == "rejectattr";
    const bool keep_if = name == "select" || name == "selectattr";
    INGOT_ASSIGN_OR_RETURN(std::vector<Value> xs, iterate(in));
    size_t next = 0;
    std::string attr;
    if (by_attr) {
      if (ca.positional.empty() || !ca.positional[0].is_string()) return Status::Error(name + " needs an attribute name");
      attr = ca.positional[0].as_string();
      next = 1;
    }
    std::string test;
    if (ca.positional.size() > next) {
      if (!ca.positional[next].is_string()) return Status::Error(name + ": the test name must be a string");
      test = ca.positional[next].as_string();
      if (!is_test(test)) return Status::Error("unknown test '" + test + "'");
      ++next;
    }
    std::vector<Value> targs(ca.positional.begin() + static_cast<long>(std::min(next, ca.positional.size())), ca.positional.end());
    std::vector<Value> out;
    for (const auto& x : xs) {
      Value v = by_attr ? get_path(x, attr) : x;
      bool t;
      if (test.empty()) {
        t = v.truthy();
      } else {
        INGOT_ASSIGN_OR_RETURN(t, apply_test(test, v, targs));
      }
      if (t == keep_if) out.push_back(x);
    }
    return Value::list(std::move(out));
  }

  StatusOr<Value> apply_filter(const std::string& name, const Value& in, const CallArgs& ca) {
    using K = Value::Kind;
    Args a{ca};
    if (name == "default" || name == "d") {
      const Value* d = a.get(0, "default_value");
      bool boolean = a.flag(1, "boolean", false);
      if (in.is_undefined() || (boolean && !in.truthy())) return d ? *d : Value::string("");
      return in;
    }
    if (name == "length" || name == "count") {
      switch (in.kind()) {
        case K::undefined: return Value::integer(0);
        case K::string: return Value::integer(static_cast<int64_t>(utf8_length(in.as_string())));
        case K::list: return Value::integer(static_cast<int64_t>(in.items().size()));
        case K::dict:
          if (!in.is_namespace()) return Value::integer(static_cast<int64_t>(in.entries().size()));
          [[fallthrough]];
        default: return Status::Error("object of type '" + kind_name(in) + "' has no len()");
      }
    }
    if (name == "safe" || name == "string") return in.kind() == K::string ? in : Value::string(in.str());
    if (name == "e" || name == "escape") return Value::string(html_escape(in.str()));
    if (name == "trim") return Value::string(strip(in.str(), a.get(0, "chars"), true, true));
    if (name == "upper") return Value::string(upper(in.str()));
    if (name == "lower") return Value::string(lower(in.str()));
    if (name == "title") return Value::string(title_filter(in.str()));
    if (name == "format") return percent_format(in.str(), ca.positional);
    if (name == "center") {
      INGOT_ASSIGN_OR_RETURN(int64_t width, a.integer(0, "width", 80));
      std::string str = in.str();
      int64_t len = static_cast<int64_t>(utf8_length(str));
      if (width <= len) return Value::string(str);
      int64_t total = std::min<int64_t>(width, 1 << 20) - len;
      int64_t left = total / 2 + (total & width & 1);  // Python's str.center
      return Value::string(std::string(static_cast<size_t>(left), ' ') + str + std::string(static_cast<size_t>(total - left), ' '));
    }
    if (name == "capitalize") return Value::string(capitalize(in.str()));
    if (name == "wordcount") return Value::integer(static_cast<int64_t>(split(in.str(), nullptr, -1).items().size()));
    if (name == "replace") {
      const Value* from = a.get(0, "old");
      const Value* to = a.get(1, "new");
      if (!from || !to) return Status::Error("replace needs two arguments");
      INGOT_ASSIGN_OR_RETURN(int64_t count, a.integer(2, "count", -1));
      return Value::string(replace(in.str(), from->str(), to->str(), count));
    }
    if (name == "tojson") {
      if (in.is_undefined()) return undefined_error(in);
      INGOT_ASSIGN_OR_RETURN(int64_t ind, a.integer(0, "indent", -1));
      bool ensure_ascii = a.flag(99, "ensure_ascii", false);
      bool sort_keys = a.flag(99, "sort_keys", false);
      for (const auto& [k, v] : ca.keyword)
        if (k != "indent" && k != "ensure_ascii" && k != "sort_keys")
          return Status::Error("tojson: unsupported argument '" + k + "'");
      INGOT_ASSIGN_OR_RETURN(std::string s, in.to_json(static_cast<int>(std::clamp<int64_t>(ind, -1, 64)), ensure_ascii, sort_keys));
      return Value::string(std::move(s));
    }
    if (name == "indent") {
      const Value* w = a.get(0, "width");
      std::string pad = w && w->is_string() ? w->as_string() : std::string(static_cast<size_t>(std::clamp<int64_t>(w ? w->as_int() : 4, 0, 1024)), ' ');
      return Value::string(indent(in.str(), pad, a.flag(1, "first", false), a.flag(2, "blank", false)));
    }
    if (name == "int") {
      const Value* d = a.get(0, "default");
      Value dflt = d ? *d : Value::integer(0);
      if (in.kind() == K::integer || in.kind() == K::boolean) return Value::integer(in.as_int());
      if (in.kind() == K::floating) {
        double f = in.as_float();
        if (!std::isfinite(f) || std::fabs(f) > 9.2e18) return dflt;
        return Value::integer(static_cast<int64_t>(f));
      }
      if (in.is_string()) {
        std::string s = strip(in.as_string(), nullptr, true, true);
        s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
        const char* b = s.data() + (!s.empty() && s[0] == '+' ? 1 : 0);
        const char* e = s.data() + s.size();
        int64_t v = 0;
        auto r = std::from_chars(b, e, v);
        if (b != e && r.ec == std::errc() && r.ptr == e) return Value::integer(v);
        double f = 0;
        auto rf = std::from_chars(b, e, f);
        if (b != e && rf.ec == std::errc() && rf.ptr == e && std::isfinite(f) && std::fabs(f) < 9.2e18)
          return Value::integer(static_cast<int64_t>(f));
      }
      return dflt;
    }
    if (name == "float") {
      const Value* d = a.get(0, "default");
      if (in.is_number()) return Value::floating(in.as_float());
      if (in.is_string()) {
        std::string s = strip(in.as_string(), nullptr, true, true);
        const char* b = s.data() + (!s.empty() && s[0] == '+' ? 1 : 0);
        double f = 0;
        auto r = std::from_chars(b, s.data() + s.size(), f);
        if (b != s.data() + s.size() && r.ec == std::errc() && r.ptr == s.data() + s.size()) return Value::floating(f);
      }
      return d ? *d : Value::floating(0);
    }
    if (name == "abs") {
      if (in.kind() == K::floating) return Value::floating(std::fabs(in.as_float()));
      if (in.is_number() && in.as_int() != INT64_MIN) return Value::integer(std::llabs(in.as_int()));
      return Status::Error("bad operand type for abs(): '" + kind_name(in) + "'");
    }
    if (name == "round") {
      if (!in.is_number()) return Status::Error("round needs a number");
      INGOT_ASSIGN_OR_RETURN(int64_t prec, a.integer(0, "precision", 0));
      const Value* method = a.get(1, "method");
      std::string how = method ? method->str() : "common";
      double scale = std::pow(10.0, static_cast<double>(prec)), x = in.as_float() * scale;
      double r = how == "ceil" ? std::ceil(x) : how == "floor" ? std::floor(x) : std::nearbyint(x);  // half to even, as Python
      return Value::floating(r / scale);
    }
    if (name == "attr") {
      const Value* n = a.get(0, "name");
      if (!n || !n->is_string()) return Status::Error("attr needs a name");
      // Python attributes only: a dict's items are not attributes (a namespace's are).
      if (in.is_namespace()) return get_attr(in, n->as_string());
      return Value::undefined("'" + kind_name(in) + " object' has no attribute '" + n->as_string() + "'");
    }
    if (name == "items") {
      if (in.is_undefined()) return Value::list();
      if (!in.is_dict() || in.is_namespace()) return Status::Error("items filter needs a mapping, not " + kind_name(in));
      std::vector<Value> out;
      for (const auto& [k, v] : in.entries()) out.push_back(Value::list({Value::string(k), v}, true));
      return Value::list(std::move(out));
    }
    if (name == "dictsort") {
      if (!in.is_dict() || in.is_namespace()) return Status::Error("dictsort needs a mapping, not " + kind_name(in));
      bool cs = a.flag(0, "case_sensitive", false);
      const Value* by = a.get(1, "by");
      bool by_value = by && by->str() == "value";
      bool reverse = a.flag(2, "reverse", false);
      std::vector<Value> pairs;
      for (const auto& [k, v] : in.entries()) pairs.push_back(Value::list({Value::string(k), v}, true));
      INGOT_ASSIGN_OR_RETURN(pairs, sorted(std::move(pairs), reverse, cs, by_value ? "1" : "0"));
      return Value::list(std::move(pairs));
    }
    if (name == "list") {
      INGOT_ASSIGN_OR_RETURN(std::vector<Value> xs, iterate(in));
      return Value::list(std::move(xs));
    }
    if (name == "first") {
      INGOT_ASSIGN_OR_RETURN(std::vector<Value> xs, iterate(in));
      return xs.empty() ? Value::undefined("no first item, sequence was empty") : xs.front();
    }
    if (name == "last") {
      INGOT_ASSIGN_OR_RETURN(std::vector<Value> xs, iterate(in));
      return xs.empty() ? Value::undefined("no last item, sequence was empty") : xs.back();
    }
    if (name == "reverse") {
      if (in.is_string()) {
        auto cps = to_codepoints(in.as_string());
        std::reverse(cps.begin(), cps.end());
        return Value::string(from_codepoints(cps, 0, cps.size()));
      }
      INGOT_ASSIGN_OR_RETURN(std::vector<Value> xs, iterate(in));
      std::reverse(xs.begin(), xs.end());
      return Value::list(std::move(xs));
    }
    if (name == "join") {
      INGOT_ASSIGN_OR_RETURN(std::vector<Value> xs, iterate(in));
      const Value* sep = a.get(0, "d");
      const Value* attr = a.get(1, "attribute");
      std::string out;
      for (size_t i = 0; i < xs.size(); ++i) {
        if (i && sep) out += sep->str();
        out += (attr ? get_path(xs[i], attr->str()) : xs[i]).str();
      }
      return Value::string(std::move(out));
    }
    if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") return select_like(name, in, ca);
    if (name == "map") {
      INGOT_ASSIGN_OR_RETURN(std::vector<Value> xs, iterate(in));
      std::vector<Value> out;
      if (const Value* attr = a.get(99, "attribute")) {
        const Value* d = a.get(99, "default");
        for (const auto& x : xs) {
          Value v = get_path(x, attr->str());
          out.push_back(v.is_undefined() && d ? *d : v);
        }
        return Value::list(std::move(out));
      }
      if (ca.positional.empty() || !ca.positional[0].is_string()) return Status::Error("map needs a filter name or attribute=");
      std::string f = ca.positional[0].as_string();
      if (!is_filter(f) || f == "map") return Status::Error("unknown filter '" + f + "'");
      CallArgs rest;
      rest.positional.assign(ca.positional.begin() + 1, ca.positional.end());
      rest.keyword = ca.keyword;
      for (const auto& x : xs) {
        INGOT_ASSIGN_OR_RETURN(Value v, apply_filter(f, x, rest));
        out.push_back(std::move(v));
      }
      return Value::list(std::move(out));
    }
    if (name == "sort" || name == "unique" || name == "min" || name == "max") {
      INGOT_ASSIGN_OR_RETURN(std::vector<Value> xs, iterate(in));
      const bool cs = a.flag(name == "sort" ? 1 : 0, "case_sensitive", false);
      const Value* attr = a.get(name == "sort" ? 2 : 1, "attribute");
      const std::string at = attr ? attr->str() : "";
      if (name == "unique") {
        std::vector<Value> out, seen;
        for (const auto& x : xs) {
          Value k = at.empty() ? x : get_path(x, at);
          if (!cs && k.is_string()) k = Value::string(lower(k.as_string()));
          bool dup = false;
          for (const auto& s : seen) dup = dup || equals(s, k);
          if (!dup) {
            seen.push_back(k);
            out.push_back(x);
          }
        }
        return Value::list(std::move(out));
      }
      INGOT_ASSIGN_OR_RETURN(xs, sorted(std::move(xs), name == "sort" && a.flag(0, "reverse", false), cs, at));
      if (name == "sort") return Value::list(std::move(xs));
      if (xs.empty()) return Value::undefined("no " + name + " item, sequence was empty");
      return name == "min" ? xs.front() : xs.back();
    }
    if (name == "sum") {
      INGOT_ASSIGN_OR_RETURN(std::vector<Value> xs, iterate(in));
      const Value* attr = a.get(0, "attribute");
      const Value* start = a.get(1, "start");
      Value total = start ? *start : Value::integer(0);
      for (const auto& x : xs) {
      INGOT_ASSIGN_OR_RETURN(total, arith("+", total, attr ? get_path(x, attr->str()) : x));
    }
      return total;
    }
    return Status::Error("unknown filter '" + name + "'");
  }

  std::vector<Frame> frames_;
  size_t barrier_ = 0;
  int depth_ = 0;
  int64_t steps_ = 0;
  Value block_input_;
  std::vector<Value> namespaces_;  // every namespace() made, emptied at the end
};

}  // namespace

StatusOr<Template> Template::parse(std::string_view source, Options options) {
  INGOT_ASSIGN_OR_RETURN(std::vector<StmtPtr> body, parse_template(source, options));
  auto node = std::make_shared<TemplateNode>();
  node->body = std::move(body);
  Template t;
  t.root_ = std::move(node);
  return t;
}

StatusOr<std::string> Template::render(const Value& context) const {
  INGOT_ASSERT(root_ != nullptr, "render() of a template that was not parsed");
  Renderer r(context);
  std::string out;
  INGOT_ASSIGN_OR_RETURN(Flow f, r.exec(root_->body, out));
  (void)f;
  return out;
}

}  // namespace ingot::jinja
