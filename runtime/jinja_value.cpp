// The template engine's values: Python's semantics for ==, truthiness, str(), repr() and
// json.dumps(), and a JSON reader for the messages a chat template is rendered with.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "runtime/jinja.h"
#include "runtime/jinja_internal.h"

namespace ingot::jinja {

struct ListData {
  std::vector<Value> items;
  bool tuple = false;
};

struct DictData {
  std::vector<std::pair<std::string, Value>> entries;
  bool is_namespace = false;
};

Value Value::list(std::vector<Value> items, bool tuple) {
  Value v(Kind::list);
  v.list_ = std::make_shared<ListData>();
  v.list_->items = std::move(items);
  v.list_->tuple = tuple;
  return v;
}

Value Value::dict() {
  Value v(Kind::dict);
  v.dict_ = std::make_shared<DictData>();
  return v;
}

Value Value::namespace_() {
  Value v = dict();
  v.dict_->is_namespace = true;
  return v;
}

Value Value::function(std::string name, Function fn) {
  Value v(Kind::function);
  v.str_ = std::move(name);
  v.fn_ = std::make_shared<Function>(std::move(fn));
  return v;
}

bool Value::is_tuple() const { return kind_ == Kind::list && list_->tuple; }
bool Value::is_namespace() const { return kind_ == Kind::dict && dict_->is_namespace; }

const std::vector<Value>& Value::items() const {
  INGOT_ASSERT(kind_ == Kind::list, "items() of a non-list");
  return list_->items;
}

const std::vector<std::pair<std::string, Value>>& Value::entries() const {
  INGOT_ASSERT(kind_ == Kind::dict, "entries() of a non-dict");
  return dict_->entries;
}

const Value* Value::find(std::string_view key) const {
  INGOT_ASSERT(kind_ == Kind::dict, "find() on a non-dict");
  for (const auto& [k, v] : dict_->entries)
    if (k == key) return &v;
  return nullptr;
}

void Value::set(const std::string& key, Value v) {
  INGOT_ASSERT(kind_ == Kind::dict, "set() on a non-dict");
  for (auto& [k, old] : dict_->entries)
    if (k == key) {
      old = std::move(v);
      return;
    }
  dict_->entries.emplace_back(key, std::move(v));
}

void Value::push_back(Value v) {
  INGOT_ASSERT(kind_ == Kind::list, "push_back() on a non-list");
  list_->items.push_back(std::move(v));
}

void Value::clear() {
  if (kind_ == Kind::list) list_->items.clear();
  if (kind_ == Kind::dict) dict_->entries.clear();
}

const Function& Value::function() const {
  INGOT_ASSERT(kind_ == Kind::function, "function() of a non-function");
  return *fn_;
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::undefined:
    case Kind::none: return false;
    case Kind::boolean:
    case Kind::integer: return int_ != 0;
    case Kind::floating: return float_ != 0;
    case Kind::string: return !str_.empty();
    case Kind::list: return !list_->items.empty();
    case Kind::dict: return dict_->is_namespace || !dict_->entries.empty();
    case Kind::function: return true;
  }
  return false;
}

bool equals(const Value& a, const Value& b) {
  using K = Value::Kind;
  if (a.is_number() && b.is_number()) {
    if (a.kind() == K::floating || b.kind() == K::floating) return a.as_float() == b.as_float();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case K::undefined:
    case K::none: return true;
    case K::string: return a.as_string() == b.as_string();
    case K::list: {
      if (a.is_tuple() != b.is_tuple() || a.items().size() != b.items().size()) return false;
      for (size_t i = 0; i < a.items().size(); ++i)
        if (!equals(a.items()[i], b.items()[i])) return false;
      return true;
    }
    case K::dict: {
      if (a.is_namespace() || b.is_namespace()) return &a.entries() == &b.entries();
      if (a.entries().size() != b.entries().size()) return false;
      for (const auto& [k, v] : a.entries()) {
        const Value* o = b.find(k);
        if (!o || !equals(v, *o)) return false;
      }
      return true;
    }
    case K::function: return &a.function() == &b.function();
    default: return false;
  }
}

// Python's float repr: the shortest digits that round-trip, fixed notation for exponents in
// [-4, 16), else d.ddde+XX.
std::string python_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string s(buf, r.ptr);
  bool neg = false;
  if (!s.empty() && s[0] == '-') {
    neg = true;
    s.erase(0, 1);
  }
  size_t e = s.find('e');
  std::string mant = s.substr(0, e);
  int exp = std::atoi(s.c_str() + e + 1);
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out;
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      std::string ip = digits.substr(0, std::min<size_t>(digits.size(), exp + 1));
      while (static_cast<int>(ip.size()) < exp + 1) ip += '0';
      std::string fp = digits.size() > static_cast<size_t>(exp + 1) ? digits.substr(exp + 1) : "0";
      out = ip + "." + fp;
    } else {
      out = "0." + std::string(-exp - 1, '0') + digits;
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += eb;
  }
  return neg ? "-" + out : out;
}

namespace {

// Decodes one UTF-8 sequence at s[i] (invalid bytes decode as themselves).
uint32_t next_cp(std::string_view s, size_t& i) {
  unsigned char c = s[i];
  int n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
  if (n <= 0 || i + n >= s.size()) {
    ++i;
    return c;
  }
  uint32_t cp = c & (0x3f >> n);
  for (int k = 1; k <= n; ++k) {
    unsigned char d = s[i + k];
    if ((d & 0xc0) != 0x80) {
      ++i;
      return c;
    }
    cp = (cp << 6) | (d & 0x3f);
  }
  i += n + 1;
  return cp;
}

void append_hex(std::string& out, const char* fmt, uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, fmt, v);
  out += b;
}

}  // namespace

std::vector<uint32_t> to_codepoints(std::string_view s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) out.push_back(next_cp(s, i));
  return out;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

std::string from_codepoints(const std::vector<uint32_t>& cps, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end; ++i) append_utf8(out, cps[i]);
  return out;
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size();) {
    next_cp(s, i);
    ++n;
  }
  return n;
}

// Python's str.isprintable() for the code points a chat is likely to hold: separators, format
// characters, surrogates and private use are not (an approximation of the Unicode tables).
bool python_printable(uint32_t cp) {
  if (cp == 0x1680 || cp == 0x180e || (cp >= 0x2000 && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202f) ||
      (cp >= 0x205f && cp <= 0x206f) || cp == 0x3000 || cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb) ||
      (cp >= 0xd800 && cp <= 0xf8ff) || cp >= 0xf0000 || cp == 0x061c || cp == 0x00ad)
    return false;
  return true;
}

std::string python_repr_string(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos, has_double = s.find('"') != std::string::npos;
  char q = has_single && !has_double ? '"' : '\'';
  std::string out(1, q);
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = next_cp(s, i);
    if (cp == '\\') out += "\\\\";
    else if (cp == static_cast<uint32_t>(q)) out += std::string("\\") + q;
    else if (cp == '\n') out += "\\n";
    else if (cp == '\r') out += "\\r";
    else if (cp == '\t') out += "\\t";
    else if (cp < 0x20 || (cp >= 0x7f && cp <= 0xa0) || cp == 0xad) append_hex(out, "\\x%02x", cp);
    else if (!python_printable(cp)) append_hex(out, cp < 0x10000 ? "\\u%04x" : "\\U%08x", cp);
    else append_utf8(out, cp);
  }
  out += q;
  return out;
}

std::string Value::str() const {
  switch (kind_) {
    case Kind::undefined: return "";
    case Kind::none: return "None";
    case Kind::boolean: return int_ ? "True" : "False";
    case Kind::integer: return std::to_string(int_);
    case Kind::floating: return python_float(float_);
    case Kind::string: return str_;
    case Kind::function: return "<function " + str_ + ">";
    default: return repr();
  }
}

std::string Value::repr() const {
  switch (kind_) {
    case Kind::string: return python_repr_string(str_);
    case Kind::list: {
      std::string out = list_->tuple ? "(" : "[";
      for (size_t i = 0; i < list_->items.size(); ++i) {
        if (i) out += ", ";
        out += list_->items[i].repr();
      }
      if (list_->tuple && list_->items.size() == 1) out += ",";
      return out + (list_->tuple ? ")" : "]");
    }
    case Kind::dict: {
      if (dict_->is_namespace) return "<Namespace>";
      std::string out = "{";
      for (size_t i = 0; i < dict_->entries.size(); ++i) {
        if (i) out += ", ";
        out += python_repr_string(dict_->entries[i].first) + ": " + dict_->entries[i].second.repr();
      }
      return out + "}";
    }
    case Kind::undefined: return "Undefined";
    default: return str();
  }
}

namespace {

void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = next_cp(s, i);
    switch (cp) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (cp < 0x20) {
          append_hex(out, "\\u%04x", cp);
        } else if (ensure_ascii && cp >= 0x7f) {
          if (cp >= 0x10000) {
            uint32_t v = cp - 0x10000;
            append_hex(out, "\\u%04x", 0xd800 + (v >> 10));
            append_hex(out, "\\u%04x", 0xdc00 + (v & 0x3ff));
          } else {
            append_hex(out, "\\u%04x", cp);
          }
        } else {
          append_utf8(out, cp);
        }
    }
  }
  out += '"';
}

Status json_dump(const Value& v, std::string& out, int indent, int level, bool ascii, bool sort_keys) {
  using K = Value::Kind;
  auto newline = [&](int lvl) {
    out += '\n';
    out.append(static_cast<size_t>(indent) * lvl, ' ');
  };
  switch (v.kind()) {
    case K::none: out += "null"; return Status::Ok();
    case K::boolean: out += v.as_bool() ? "true" : "false"; return Status::Ok();
    case K::integer: out += std::to_string(v.as_int()); return Status::Ok();
    case K::floating: {
      double d = v.as_float();
      if (std::isnan(d)) out += "NaN";
      else if (std::isinf(d)) out += d < 0 ? "-Infinity" : "Infinity";
      else out += python_float(d);
      return Status::Ok();
    }
    case K::string: json_string(out, v.as_string(), ascii); return Status::Ok();
    case K::list: {
      if (v.items().empty()) {
        out += "[]";
        return Status::Ok();
      }
      out += '[';
      for (size_t i = 0; i < v.items().size(); ++i) {
        if (i) out += indent >= 0 ? "," : ", ";
        if (indent >= 0) newline(level + 1);
        INGOT_RETURN_IF_ERROR(json_dump(v.items()[i], out, indent, level + 1, ascii, sort_keys));
      }
      if (indent >= 0) newline(level);
      out += ']';
      return Status::Ok();
    }
    case K::dict: {
      if (v.is_namespace()) return Status::Error("Object of type Namespace is not JSON serializable");
      if (v.entries().empty()) {
        out += "{}";
        return Status::Ok();
      }
      std::vector<const std::pair<std::string, Value>*> es;
      for (const auto& e : v.entries()) es.push_back(&e);
      if (sort_keys) std::sort(es.begin(), es.end(), [](auto* a, auto* b) { return a->first < b->first; });  // unique keys
      out += '{';
      for (size_t i = 0; i < es.size(); ++i) {
        if (i) out += indent >= 0 ? "," : ", ";
        if (indent >= 0) newline(level + 1);
        json_string(out, es[i]->first, ascii);
        out += ": ";
        INGOT_RETURN_IF_ERROR(json_dump(es[i]->second, out, indent, level + 1, ascii, sort_keys));
      }
      if (indent >= 0) newline(level);
      out += '}';
      return Status::Ok();
    }
    case K::undefined: return Status::Error("Object of type Undefined is not JSON serializable");
    case K::function: return Status::Error("Object of type function is not JSON serializable");
  }
  return Status::Ok();
}

class JsonReader {
 public:
  explicit JsonReader(std::string_view s) : s_(s) {}
  StatusOr<Value> document() {
    INGOT_ASSIGN_OR_RETURN(Value v, value(0));
    ws();
    if (p_ != s_.size()) return error("unexpected text after the JSON value");
    return v;
  }

 private:
  Status error(const std::string& what) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < p_ && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return Status::Error("JSON line " + std::to_string(line) + ", column " + std::to_string(col) + ": " + what);
  }
  void ws() {
    while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\n' || s_[p_] == '\r' || s_[p_] == '\t')) ++p_;
  }
  bool literal(std::string_view w) {
    if (s_.substr(p_, w.size()) != w) return false;
    p_ += w.size();
    return true;
  }
  StatusOr<Value> value(int depth) {
    if (depth > 512) return error("nested too deeply");
    ws();
    if (p_ >= s_.size()) return error("unexpected end of input");
    char c = s_[p_];
    if (c == '{') {
      ++p_;
      Value d = Value::dict();
      ws();
      if (p_ < s_.size() && s_[p_] == '}') {
        ++p_;
        return d;
      }
      while (true) {
        ws();
        if (p_ >= s_.size() || s_[p_] != '"') return error("expected a string key");
        INGOT_ASSIGN_OR_RETURN(std::string k, string());
        ws();
        if (p_ >= s_.size() || s_[p_] != ':') return error("expected ':'");
        ++p_;
        INGOT_ASSIGN_OR_RETURN(Value v, value(depth + 1));
        d.set(k, std::move(v));
        ws();
        if (p_ < s_.size() && s_[p_] == ',') {
          ++p_;
          continue;
        }
        if (p_ < s_.size() && s_[p_] == '}') {
          ++p_;
          return d;
        }
        return error("expected ',' or '}'");
      }
    }
    if (c == '[') {
      ++p_;
      Value l = Value::list();
      ws();
      if (p_ < s_.size() && s_[p_] == ']') {
        ++p_;
        return l;
      }
      while (true) {
        INGOT_ASSIGN_OR_RETURN(Value v, value(depth + 1));
        l.push_back(std::move(v));
        ws();
        if (p_ < s_.size() && s_[p_] == ',') {
          ++p_;
          continue;
        }
        if (p_ < s_.size() && s_[p_] == ']') {
          ++p_;
          return l;
        }
        return error("expected ',' or ']'");
      }
    }
    if (c == '"') {
      INGOT_ASSIGN_OR_RETURN(std::string str, string());
      return Value::string(std::move(str));
    }
    if (literal("true")) return Value::boolean(true);
    if (literal("false")) return Value::boolean(false);
    if (literal("null")) return Value::none();
    if (c == '-' || (c >= '0' && c <= '9')) {
      size_t start = p_;
      bool is_float = false;
      if (s_[p_] == '-') ++p_;
      while (p_ < s_.size() && ((s_[p_] >= '0' && s_[p_] <= '9') || s_[p_] == '.' || s_[p_] == 'e' ||
                                s_[p_] == 'E' || s_[p_] == '+' || s_[p_] == '-')) {
        if (s_[p_] == '.' || s_[p_] == 'e' || s_[p_] == 'E') is_float = true;
        ++p_;
      }
      std::string num(s_.substr(start, p_ - start));
      if (!is_float) {
        int64_t i = 0;
        auto r = std::from_chars(num.data(), num.data() + num.size(), i);
        if (r.ec == std::errc() && r.ptr == num.data() + num.size()) return Value::integer(i);
      }
      double d = 0;
      auto r = std::from_chars(num.data(), num.data() + num.size(), d);
      if (r.ec != std::errc() || r.ptr != num.data() + num.size()) return error("bad number '" + num + "'");
      return Value::floating(d);
    }
    return error(std::string("unexpected character '") + c + "'");
  }
  StatusOr<std::string> string() {
    ++p_;  // the opening quote
    std::string out;
    while (true) {
      if (p_ >= s_.size()) return error("unterminated string");
      char c = s_[p_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) return error("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (p_ >= s_.size()) return error("unterminated string");
      char e = s_[p_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          INGOT_ASSIGN_OR_RETURN(uint32_t cp, hex4());
          if (cp >= 0xd800 && cp < 0xdc00 && s_.substr(p_, 2) == "\\u") {
            size_t save = p_;
            p_ += 2;
            INGOT_ASSIGN_OR_RETURN(uint32_t lo, hex4());
            if (lo >= 0xdc00 && lo < 0xe000) cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            else p_ = save;
          }
          append_utf8(out, cp);
          break;
        }
        default: return error(std::string("bad escape '\\") + e + "'");
      }
    }
  }
  StatusOr<uint32_t> hex4() {
    if (p_ + 4 > s_.size()) return error("bad \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char h = s_[p_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= h - '0';
      else if (h >= 'a' && h <= 'f') v |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') v |= h - 'A' + 10;
      else return error("bad \\u escape");
    }
    return v;
  }
  std::string_view s_;
  size_t p_ = 0;
};

}  // namespace

StatusOr<std::string> Value::to_json(int indent, bool ensure_ascii, bool sort_keys) const {
  std::string out;
  INGOT_RETURN_IF_ERROR(json_dump(*this, out, indent, 0, ensure_ascii, sort_keys));
  return out;
}

StatusOr<Value> Value::from_json(std::string_view text) { return JsonReader(text).document(); }

}  // namespace ingot::jinja
