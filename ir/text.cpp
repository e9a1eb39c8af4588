// The IR text format: printer, recursive-descent parser, and JSON / Graphviz DOT export.
// The grammar is documented in docs/ir-text-format.md. The parser reads untrusted text: every
// number goes through std::from_chars, every lookahead is bounds-checked, and all failures are
// Status values pointing at the offending token.
#include "ir/text.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "ir/ops.h"

namespace ingot {
namespace {

// ================================================================ shared helpers

bool is_bare_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == '-';
}

bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_ident_char(char c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "%name", or %"quoted name" when the name has characters outside [A-Za-z0-9_.-].
std::string node_ref(const std::string& name) {
  bool bare = !name.empty();
  for (char c : name) bare = bare && is_bare_name_char(c);
  return "%" + (bare ? name : quote_string(name));
}

std::string value_ref(const Value& v) {
  std::string r = node_ref(v.node ? v.node->name : std::string("<null>"));
  if (v.index != 0) r += ":" + std::to_string(v.index);
  return r;
}

// Element count of a static shape, left to right with overflow checks (like Tensor::zeros).
std::optional<int64_t> checked_numel(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims)
    if (d < 0 || __builtin_mul_overflow(n, d, &n)) return std::nullopt;
  return n;
}

std::optional<std::vector<int64_t>> static_dims(const Shape& s) {
  std::vector<int64_t> dims;
  for (const Dim& d : s) {
    if (!d.is_static()) return std::nullopt;
    dims.push_back(d.value());
  }
  return dims;
}

// Nodes in the order the printer writes them: topological, or creation order for broken graphs.
std::vector<const Node*> print_order(const Model& m) {
  std::vector<const Node*> order;
  auto topo = m.topological_order();
  if (topo.ok()) {
    for (Node* n : *topo) order.push_back(n);
  } else {
    for (auto& n : m.nodes()) order.push_back(n.get());
  }
  return order;
}

bool has_data(const Node& n) { return n.constant && n.constant->defined(); }

// Whether a Constant's values are written out rather than summarized by hash.
bool prints_inline(const Node& n, const PrintOptions& opts) {
  if (!has_data(n) || type_info(n.constant->type()).is_quantized) return false;
  auto numel = checked_numel(n.constant->shape());
  return numel && *numel <= opts.inline_constant_limit;
}

std::string element_str(const Tensor& t, int64_t i) {
  const ElementTypeInfo& info = type_info(t.type());
  // Values of every float type are exact floats; the parser reads them back as floats.
  if (info.is_float) return format_float(static_cast<float>(t.get_f(i)));
  if (info.is_integer) return std::to_string(t.get_i(i));
  return t.get_i(i) ? "true" : "false";
}

std::string outputs_str(const std::vector<TensorType>& outs) {
  if (outs.size() == 1) return outs[0].str();
  std::string r = "(";
  for (size_t i = 0; i < outs.size(); ++i) r += (i ? ", " : "") + outs[i].str();
  return r + ")";
}

}  // namespace

// ================================================================ printer

std::string print_model(const Model& m, const PrintOptions& opts) {
  std::string out = "model " + quote_string(m.name()) + " {\n";
  for (const StateVariable& v : m.variables())
    out += "  state " + quote_string(v.name) + " : " + std::string(type_name(v.type)) + dims_str(v.max_shape) + "\n";
  for (const Node* n : print_order(m)) {
    out += "  " + node_ref(n->name) + " = " + std::string(n->op_name()) + "(";
    for (size_t i = 0; i < n->inputs.size(); ++i) out += (i ? ", " : "") + value_ref(n->inputs[i]);
    out += ")";
    if (!n->attrs.empty()) {
      out += " {";
      bool first = true;
      for (auto& [key, value] : n->attrs) {
        out += (first ? "" : ", ") + key + " = " + value.str();
        first = false;
      }
      out += "}";
    }
    out += " : " + outputs_str(n->outputs);
    if (n->is(Op::Constant)) {
      if (prints_inline(*n, opts)) {
        out += " = [";
        for (int64_t i = 0; i < n->constant->numel(); ++i) out += (i ? ", " : "") + element_str(*n->constant, i);
        out += "]";
      } else {
        out += " = hash " + quote_string(n->constant_content_hash());
      }
    }
    out += "\n";
  }
  return out + "}\n";
}

// ================================================================ lexer

namespace {

enum class Tok { Ident, Int, Float, String, Name, Punct, End, Error };

struct Token {
  Tok kind = Tok::End;
  std::string_view text;  // the source characters (for Punct: the one character)
  std::string value;      // decoded String / Name contents, or the Error message
  int line = 1;
  int col = 1;
  bool is(char c) const { return kind == Tok::Punct && text.size() == 1 && text[0] == c; }
  bool is_ident(std::string_view s) const { return kind == Tok::Ident && text == s; }
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Splits the whole text into tokens. Stops at the first lexical error with an Error token, so
// the parser reports it only if nothing earlier in the text is wrong.
class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {}

  std::vector<Token> run() {
    std::vector<Token> tokens;
    tokens.reserve(src_.size() / 4 + 1);
    for (;;) {
      skip_space_and_comments();
      Token t = next();
      Tok kind = t.kind;
      tokens.push_back(std::move(t));
      if (kind == Tok::End || kind == Tok::Error) return tokens;
    }
  }

 private:
  void skip_space_and_comments() {
    while (pos_ < src_.size()) {
      char c = src_[pos_];
      if (c == '#') {
        while (pos_ < src_.size() && src_[pos_] != '\n') ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        advance();
      } else {
        return;
      }
    }
  }

  void advance() {
    if (src_[pos_] == '\n') {
      ++line_;
      line_start_ = pos_ + 1;
    }
    ++pos_;
  }

  Token make(Tok kind, size_t start, int line, int col) {
    Token t;
    t.kind = kind;
    t.text = src_.substr(start, pos_ - start);
    t.line = line;
    t.col = col;
    return t;
  }

  Token error(std::string msg, int line, int col) {
    Token t;
    t.kind = Tok::Error;
    t.value = std::move(msg);
    t.line = line;
    t.col = col;
    return t;
  }

  int col() const { return static_cast<int>(pos_ - line_start_) + 1; }
  bool at(size_t p, bool (*pred)(char)) const { return p < src_.size() && pred(src_[p]); }

  Token next() {
    int line = line_, column = col();
    size_t start = pos_;
    if (pos_ >= src_.size()) return make(Tok::End, start, line, column);
    char c = src_[pos_];
    if (is_ident_start(c)) {
      while (at(pos_, is_ident_char)) ++pos_;
      return make(Tok::Ident, start, line, column);
    }
    if (is_digit(c)) return number(start, line, column);
    if (c == '"') {
      Token t = make(Tok::String, start, line, column);
      if (!read_string(t)) return t;
      t.text = src_.substr(start, pos_ - start);
      return t;
    }
    if (c == '%') {
      ++pos_;
      if (pos_ < src_.size() && src_[pos_] == '"') {
        Token t = make(Tok::Name, start, line, column);
        if (!read_string(t)) return t;
        t.text = src_.substr(start, pos_ - start);
        return t;
      }
      while (at(pos_, is_bare_name_char)) ++pos_;
      if (pos_ == start + 1) return error("expected a name after '%'", line, column);
      Token t = make(Tok::Name, start, line, column);
      t.value = std::string(src_.substr(start + 1, pos_ - start - 1));
      return t;
    }
    static constexpr std::string_view kPunct = "=(){}[],:*+-?";
    if (kPunct.find(c) != std::string_view::npos) {
      ++pos_;
      return make(Tok::Punct, start, line, column);
    }
    unsigned char u = static_cast<unsigned char>(c);
    char shown[16];
    if (u >= 0x20 && u < 0x7f) std::snprintf(shown, sizeof(shown), "'%c'", c);
    else std::snprintf(shown, sizeof(shown), "byte 0x%02x", u);
    return error(std::string("unexpected character ") + shown, line, column);
  }

  // INT: digits. FLOAT: digits with a fraction and/or an exponent (as format_double writes them).
  Token number(size_t start, int line, int column) {
    bool is_float = false;
    while (at(pos_, is_digit)) ++pos_;
    if (pos_ < src_.size() && src_[pos_] == '.') {
      is_float = true;
      ++pos_;
      while (at(pos_, is_digit)) ++pos_;
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t p = pos_ + 1;
      if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
      if (at(p, is_digit)) {
        is_float = true;
        pos_ = p;
        while (at(pos_, is_digit)) ++pos_;
      }
    }
    return make(is_float ? Tok::Float : Tok::Int, start, line, column);
  }

  // Reads a quoted string starting at src_[pos_] == '"' into t.value. On failure turns t into an
  // Error token and returns false.
  bool read_string(Token& t) {
    ++pos_;  // the opening quote
    std::string value;
    while (pos_ < src_.size()) {
      char c = src_[pos_];
      if (c == '"') {
        ++pos_;
        t.value = std::move(value);
        return true;
      }
      if (c == '\n') break;
      if (c != '\\') {
        value += c;
        ++pos_;
        continue;
      }
      int esc_col = col();
      if (pos_ + 1 >= src_.size() || src_[pos_ + 1] == '\n') break;
      char e = src_[pos_ + 1];
      pos_ += 2;
      if (e == '"' || e == '\\') value += e;
      else if (e == 'n') value += '\n';
      else if (e == 't') value += '\t';
      else if (e == 'x') {
        int hi = pos_ < src_.size() ? hex_value(src_[pos_]) : -1;
        int lo = pos_ + 1 < src_.size() ? hex_value(src_[pos_ + 1]) : -1;
        if (hi < 0 || lo < 0) {
          t = error("\\x needs two hex digits", line_, esc_col);
          return false;
        }
        value += static_cast<char>(hi * 16 + lo);
        pos_ += 2;
      } else {
        bool printable = e > 0x20 && e < 0x7f;
        t = error(std::string("unknown escape ") + (printable ? std::string("'\\") + e + "' " : "") +
                      "in string (use \\\" \\\\ \\n \\t \\xHH)",
                  line_, esc_col);
        return false;
      }
    }
    t = error("unterminated string", t.line, t.col);
    return false;
  }

  std::string_view src_;
  size_t pos_ = 0;
  size_t line_start_ = 0;
  int line_ = 1;
};

// ================================================================ parser

class Parser {
 public:
  Parser(std::string_view text, std::string_view source) : tokens_(Lexer(text).run()), source_(source) {}

  StatusOr<std::unique_ptr<Model>> parse() {
    if (!peek().is_ident("model")) return error_at(peek(), "expected 'model'");
    take();
    if (peek().kind != Tok::String) return error_at(peek(), "expected the model name as a quoted string");
    model_ = std::make_unique<Model>(take().value);
    INGOT_RETURN_IF_ERROR(expect('{'));
    while (!peek().is('}')) {
      if (peek().is_ident("state")) {
        INGOT_RETURN_IF_ERROR(parse_state());
      } else if (peek().kind == Tok::Name) {
        INGOT_RETURN_IF_ERROR(parse_node());
      } else {
        return error_at(peek(), "expected a node ('%name = ...'), 'state' or '}'");
      }
    }
    take();
    if (peek().kind != Tok::End) return error_at(peek(), "unexpected text after the closing '}'");
    return std::move(model_);
  }

 private:
  // ---------------------------------------------------------------- token access and errors

  // Never past the End/Error token that terminates the vector.
  const Token& peek() const { return tokens_[std::min(pos_, tokens_.size() - 1)]; }
  const Token& take() {
    const Token& t = peek();
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }

  static std::string describe(const Token& t) {
    if (t.kind == Tok::End) return "the end of the input";
    if (t.kind == Tok::String) return "a string";
    return "'" + std::string(t.text) + "'";
  }

  // A lexical error wins over whatever the parser expected at that place.
  Status error_at(const Token& t, const std::string& msg) const {
    std::string what = t.kind == Tok::Error ? t.value : msg;
    if (t.kind != Tok::Error && msg.rfind("expected", 0) == 0) what += ", got " + describe(t);
    return Status::Error(std::string(source_) + ":" + std::to_string(t.line) + ":" + std::to_string(t.col) + ": " +
                         what);
  }

  Status expect(char c) {
    if (!peek().is(c)) return error_at(peek(), std::string("expected '") + c + "'");
    take();
    return Status::Ok();
  }

  // ---------------------------------------------------------------- numbers

  // An integer with an optional leading '-'; from_chars rejects overflow.
  StatusOr<int64_t> parse_int() {
    bool neg = peek().is('-');
    if (neg) take();
    const Token& t = peek();
    if (t.kind != Tok::Int) return error_at(t, "expected an integer");
    std::string digits = (neg ? "-" : "") + std::string(t.text);
    int64_t v = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (ec != std::errc() || end != digits.data() + digits.size())
      return error_at(t, "integer " + digits + " does not fit in 64 bits");
    take();
    return v;
  }

  // A float: [-] (INT | FLOAT | inf | nan). Read directly as T so that f32 values are rounded
  // once (reading a double first and narrowing it could round twice).
  template <typename T = double>
  StatusOr<T> parse_float() {
    bool neg = peek().is('-');
    if (neg) take();
    const Token& t = peek();
    T v = 0;
    if (t.is_ident("inf")) {
      v = std::numeric_limits<T>::infinity();
    } else if (t.is_ident("nan")) {
      v = std::numeric_limits<T>::quiet_NaN();
    } else if (t.kind == Tok::Int || t.kind == Tok::Float) {
      auto [end, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
      if (ec != std::errc() || end != t.text.data() + t.text.size())
        return error_at(t, "number " + std::string(t.text) + " is out of range for " +
                               (sizeof(T) == 4 ? "f32" : "a double"));
    } else {
      return error_at(t, "expected a number");
    }
    take();
    return neg ? -v : v;
  }

  StatusOr<bool> parse_bool() {
    const Token& t = peek();
    if (!t.is_ident("true") && !t.is_ident("false")) return error_at(t, "expected true or false");
    take();
    return t.text == "true";
  }

  // ---------------------------------------------------------------- types and dims

  // dim := '?' | ['-'] term (('+' | '-') term)* ;  term := INT | IDENT | INT '*' IDENT
  // Sums in 128 bits so that no intermediate overflows; the result must fit a Dim.
  StatusOr<Dim> parse_dim() {
    const Token& start = peek();
    if (start.is('?')) {
      take();
      return Dim::unknown();
    }
    __int128 constant = 0;
    std::map<std::string, __int128> coefs;
    bool negative = false;
    if (peek().is('-')) {
      take();
      negative = true;
    }
    for (;;) {
      const Token& t = peek();
      __int128 sign = negative ? -1 : 1;
      if (t.kind == Tok::Int) {
        uint64_t magnitude = 0;
        auto [end, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), magnitude);
        if (ec != std::errc() || end != t.text.data() + t.text.size())
          return error_at(t, "dimension " + std::string(t.text) + " does not fit in 64 bits");
        take();
        if (peek().is('*')) {
          take();
          if (peek().kind != Tok::Ident) return error_at(peek(), "expected a symbol after '*' in a dimension");
          coefs[std::string(take().text)] += sign * static_cast<__int128>(magnitude);
        } else {
          constant += sign * static_cast<__int128>(magnitude);
        }
      } else if (t.kind == Tok::Ident) {
        coefs[std::string(take().text)] += sign;
      } else {
        return error_at(t, "expected a dimension (a number, a symbol, 'k*symbol' or '?')");
      }
      if (peek().is('+')) negative = false;
      else if (peek().is('-')) negative = true;
      else break;
      take();
    }
    // Dim::str negates coefficients, so INT64_MIN only fits a plain static dimension.
    constexpr __int128 kMax = std::numeric_limits<int64_t>::max();
    bool symbolic = false;
    for (auto& [name, c] : coefs) {
      if (c == 0) continue;
      symbolic = true;
      if (c > kMax || c < -kMax) return error_at(start, "dimension coefficient of '" + name + "' is out of range");
    }
    if (constant > kMax || constant < -kMax - (symbolic ? 0 : 1))
      return error_at(start, "dimension constant is out of range");
    Dim d(static_cast<int64_t>(constant));
    for (auto& [name, c] : coefs)
      if (c != 0) d = d + Dim::symbol(name) * Dim(static_cast<int64_t>(c));
    return d;
  }

  // '[' (dim (',' dim)*)? ']'
  StatusOr<Shape> parse_shape() {
    INGOT_RETURN_IF_ERROR(expect('['));
    Shape shape;
    if (peek().is(']')) {
      take();
      return shape;
    }
    for (;;) {
      INGOT_ASSIGN_OR_RETURN(Dim d, parse_dim());
      shape.push_back(std::move(d));
      if (peek().is(']')) break;
      INGOT_RETURN_IF_ERROR(expect_list_separator());
    }
    take();
    return shape;
  }

  Status expect_list_separator() {
    if (!peek().is(',')) return error_at(peek(), "expected ',' or ']'");
    take();
    return Status::Ok();
  }

  StatusOr<ElementType> parse_element_type_name() {
    const Token& t = peek();
    if (t.kind != Tok::Ident) return error_at(t, "expected an element type (f32, i64, bool, q4_k, ...)");
    auto type = parse_element_type(t.text);
    if (!type) return error_at(t, "unknown element type '" + std::string(t.text) + "'");
    take();
    return *type;
  }

  StatusOr<TensorType> parse_type() {
    INGOT_ASSIGN_OR_RETURN(ElementType et, parse_element_type_name());
    INGOT_ASSIGN_OR_RETURN(Shape shape, parse_shape());
    return TensorType{et, std::move(shape)};
  }

  // ---------------------------------------------------------------- attributes

  StatusOr<Attribute> parse_attr_value(AttrKind kind) {
    switch (kind) {
      case AttrKind::Int: {
        INGOT_ASSIGN_OR_RETURN(int64_t v, parse_int());
        return Attribute::Int(v);
      }
      case AttrKind::Float: {
        INGOT_ASSIGN_OR_RETURN(double v, parse_float());
        return Attribute::Float(v);
      }
      case AttrKind::Bool: {
        INGOT_ASSIGN_OR_RETURN(bool v, parse_bool());
        return Attribute::Bool(v);
      }
      case AttrKind::String: {
        if (peek().kind != Tok::String) return error_at(peek(), "expected a quoted string");
        return Attribute::String(take().value);
      }
      case AttrKind::Ints: {
        std::vector<int64_t> vs;
        INGOT_RETURN_IF_ERROR(parse_list([&]() -> Status {
          INGOT_ASSIGN_OR_RETURN(int64_t v, parse_int());
          vs.push_back(v);
          return Status::Ok();
        }));
        return Attribute::Ints(std::move(vs));
      }
      case AttrKind::Floats: {
        std::vector<double> vs;
        INGOT_RETURN_IF_ERROR(parse_list([&]() -> Status {
          INGOT_ASSIGN_OR_RETURN(double v, parse_float());
          vs.push_back(v);
          return Status::Ok();
        }));
        return Attribute::Floats(std::move(vs));
      }
      case AttrKind::Dims: {
        INGOT_ASSIGN_OR_RETURN(Shape s, parse_shape());
        return Attribute::Dims(std::move(s));
      }
      case AttrKind::Type: {
        INGOT_ASSIGN_OR_RETURN(ElementType t, parse_element_type_name());
        return Attribute::Type(t);
      }
    }
    return error_at(peek(), "unsupported attribute kind");
  }

  // '[' (item (',' item)*)? ']'
  template <typename F>
  Status parse_list(F&& item) {
    INGOT_RETURN_IF_ERROR(expect('['));
    if (peek().is(']')) {
      take();
      return Status::Ok();
    }
    for (;;) {
      INGOT_RETURN_IF_ERROR(item());
      if (peek().is(']')) break;
      INGOT_RETURN_IF_ERROR(expect_list_separator());
    }
    take();
    return Status::Ok();
  }

  // '{' (key '=' value (',' key '=' value)*)? '}', each value read as the op's schema says.
  StatusOr<AttrMap> parse_attrs(const OpDef& op) {
    AttrMap attrs;
    INGOT_RETURN_IF_ERROR(expect('{'));
    while (!peek().is('}')) {
      if (!attrs.empty()) {
        if (!peek().is(',')) return error_at(peek(), "expected ',' or '}'");
        take();
      }
      const Token& key = peek();
      if (key.kind != Tok::Ident) return error_at(key, "expected an attribute name");
      const AttrSpec* spec = nullptr;
      for (const AttrSpec& s : op.attrs)
        if (key.text == s.name) spec = &s;
      if (!spec) return error_at(key, std::string(op.name()) + " has no attribute '" + std::string(key.text) + "'");
      std::string name(key.text);
      if (attrs.count(name)) return error_at(key, "attribute '" + name + "' is given twice");
      take();
      INGOT_RETURN_IF_ERROR(expect('='));
      const Token& value_tok = peek();
      auto value = parse_attr_value(spec->kind);
      if (!value.ok()) {
        // Name the attribute and its kind unless the problem is lexical.
        if (value_tok.kind == Tok::Error) return value.status();
        return Status::Error(value.message() + " (attribute '" + name + "' of " + op.name() + " is " +
                             attr_kind_name(spec->kind) + ")");
      }
      attrs[name] = std::move(*value);
    }
    take();
    return attrs;
  }

  // ---------------------------------------------------------------- declarations

  // state "name" : TYPE[static dims]
  Status parse_state() {
    const Token& kw = take();
    if (peek().kind != Tok::String) return error_at(peek(), "expected the state variable name as a quoted string");
    StateVariable v;
    v.name = take().value;
    INGOT_RETURN_IF_ERROR(expect(':'));
    const Token& type_tok = peek();
    INGOT_ASSIGN_OR_RETURN(TensorType t, parse_type());
    auto dims = static_dims(t.shape);
    if (!dims) return error_at(type_tok, "a state variable needs a static maximum shape, got " + t.str());
    v.type = t.type;
    v.max_shape = *dims;
    Status st = model_->add_variable(std::move(v));
    if (!st.ok()) return error_at(kw, st.message());
    return Status::Ok();
  }

  // %ref or %ref:INDEX
  StatusOr<Value> parse_ref() {
    const Token& t = peek();
    if (t.kind != Tok::Name) return error_at(t, "expected a value ('%name')");
    take();
    auto it = defined_.find(t.value);
    if (it == defined_.end()) {
      if (declared_later(t.value))
        return error_at(t, "value " + std::string(t.text) + " is used before it is defined");
      return error_at(t, "unknown value " + std::string(t.text));
    }
    Value v{it->second, 0};
    // "%a:1" selects an output; "%a : f32[..]" (with a space) is the start of an output type.
    bool index_follows = peek().is(':') && peek().text.data() == t.text.data() + t.text.size();
    if (index_follows) {
      take();
      const Token& index_tok = peek();
      INGOT_ASSIGN_OR_RETURN(int64_t index, parse_int());
      int64_t count = static_cast<int64_t>(v.node->outputs.size());
      if (index < 0 || index >= count)
        return error_at(index_tok, std::string(t.text) + " has " + std::to_string(count) + " output(s), no output " +
                                       std::to_string(index));
      v.index = static_cast<int>(index);
    } else if (v.node->outputs.empty()) {
      return error_at(t, std::string(t.text) + " has no outputs to use");
    }
    return v;
  }

  // Whether a later declaration defines `name` (for a better message than "unknown").
  bool declared_later(const std::string& name) const {
    for (size_t i = pos_; i + 1 < tokens_.size(); ++i)
      if (tokens_[i].kind == Tok::Name && tokens_[i].value == name && tokens_[i + 1].is('=')) return true;
    return false;
  }

  // The written output list and where each type starts (for mismatch messages).
  struct WrittenOutputs {
    std::vector<TensorType> types;
    std::vector<Token> positions;
  };

  // '()' | TYPE | '(' TYPE (',' TYPE)* ')'
  StatusOr<WrittenOutputs> parse_outputs() {
    WrittenOutputs w;
    bool list = peek().is('(');
    if (list) {
      take();
      if (peek().is(')')) {
        take();
        return w;
      }
    }
    for (;;) {
      w.positions.push_back(peek());
      INGOT_ASSIGN_OR_RETURN(TensorType t, parse_type());
      w.types.push_back(std::move(t));
      if (!list) return w;
      if (peek().is(')')) break;
      if (!peek().is(',')) return error_at(peek(), "expected ',' or ')'");
      take();
    }
    take();
    return w;
  }

  // After a Constant's type: 'hash' STRING | '[' values ']'.
  Status parse_constant(NodeSpec& spec, const Token& outputs_tok, const WrittenOutputs& outs) {
    if (peek().is_ident("hash")) {
      take();
      if (peek().kind != Tok::String) return error_at(peek(), "expected the content hash as a quoted string");
      const Token& hash = take();
      if (hash.value.empty()) return error_at(hash, "empty content hash");
      spec.constant_hash = hash.value;
      return Status::Ok();
    }
    if (!peek().is('[')) return error_at(peek(), "expected '[' (inline values) or 'hash'");
    if (outs.types.size() != 1) return error_at(outputs_tok, "a Constant has exactly one output type");
    const TensorType& type = outs.types[0];
    const ElementTypeInfo& info = type_info(type.type);
    if (info.is_quantized)
      return error_at(outs.positions[0], "inline values need a plain element type, got " + type.str());
    auto dims = static_dims(type.shape);
    if (!dims) return error_at(outs.positions[0], "a Constant needs a static shape, got " + type.str());
    auto numel = checked_numel(*dims);
    if (!numel) return error_at(outs.positions[0], "invalid Constant shape " + type.str());

    const Token& open = peek();
    std::vector<double> floats;
    std::vector<int64_t> ints;
    INGOT_RETURN_IF_ERROR(parse_list([&]() -> Status {
      const Token& t = peek();
      if (type.type == ElementType::f32) {
        INGOT_ASSIGN_OR_RETURN(float v, parse_float<float>());
        floats.push_back(v);
      } else if (info.is_float) {
        INGOT_ASSIGN_OR_RETURN(double v, parse_float());
        floats.push_back(v);
      } else if (info.is_integer) {
        INGOT_ASSIGN_OR_RETURN(int64_t v, parse_int());
        if (!fits(type.type, v)) return error_at(t, std::to_string(v) + " does not fit " + std::string(info.name));
        ints.push_back(v);
      } else {
        INGOT_ASSIGN_OR_RETURN(bool v, parse_bool());
        ints.push_back(v ? 1 : 0);
      }
      return Status::Ok();
    }));
    int64_t count = static_cast<int64_t>(info.is_float ? floats.size() : ints.size());
    if (count != *numel)
      return error_at(open, "constant has " + std::to_string(count) + " values, " + type.str() + " needs " +
                                std::to_string(*numel));
    // The count matches the parsed values, so this allocation is bounded by the text size.
    Tensor data = Tensor::zeros(type.type, *dims);
    for (int64_t i = 0; i < count; ++i) {
      if (info.is_float) data.set_f(i, floats[static_cast<size_t>(i)]);
      else data.set_i(i, ints[static_cast<size_t>(i)]);
    }
    spec.constant = std::make_shared<const Tensor>(std::move(data));
    return Status::Ok();
  }

  static bool fits(ElementType t, int64_t v) {
    switch (t) {
      case ElementType::i32:
        return v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max();
      case ElementType::i8: return v >= -128 && v <= 127;
      case ElementType::u8: return v >= 0 && v <= 255;
      default: return true;
    }
  }

  // %name = Op(inputs) {attrs} : outputs [= constant]
  Status parse_node() {
    const Token& name_tok = take();
    if (name_tok.value.empty()) return error_at(name_tok, "empty node name");
    if (defined_.count(name_tok.value)) return error_at(name_tok, "duplicate node name " + std::string(name_tok.text));
    INGOT_RETURN_IF_ERROR(expect('='));
    const Token& op_tok = peek();
    if (op_tok.kind != Tok::Ident) return error_at(op_tok, "expected an op name");
    const OpDef* op = find_op(op_tok.text);
    if (!op) return error_at(op_tok, "unknown op '" + std::string(op_tok.text) + "'");
    take();

    NodeSpec spec;
    spec.op = op->kind;
    spec.name = name_tok.value;
    INGOT_RETURN_IF_ERROR(expect('('));
    while (!peek().is(')')) {
      if (!spec.inputs.empty()) {
        if (!peek().is(',')) return error_at(peek(), "expected ',' or ')'");
        take();
      }
      INGOT_ASSIGN_OR_RETURN(Value v, parse_ref());
      spec.inputs.push_back(v);
    }
    take();
    if (peek().is('{')) {
      INGOT_ASSIGN_OR_RETURN(spec.attrs, parse_attrs(*op));
    }
    INGOT_RETURN_IF_ERROR(expect(':'));
    const Token& outputs_tok = peek();
    INGOT_ASSIGN_OR_RETURN(WrittenOutputs outs, parse_outputs());

    bool is_constant = spec.op == Op::Constant;
    if (is_constant) {
      if (!peek().is('=')) return error_at(peek(), "expected '=' and the Constant's values or hash");
      take();
      INGOT_RETURN_IF_ERROR(parse_constant(spec, outputs_tok, outs));
    }
    bool declares = op->has(kSource);
    if (declares) spec.declared = outs.types;

    auto node = model_->add_node(std::move(spec));
    if (!node.ok()) return error_at(name_tok, node.message());
    Node* n = *node;
    defined_[n->name] = n;
    if (!declares) INGOT_RETURN_IF_ERROR(check_inferred(*n, outputs_tok, outs));
    return Status::Ok();
  }

  Status check_inferred(const Node& n, const Token& outputs_tok, const WrittenOutputs& outs) const {
    if (outs.types.size() != n.outputs.size())
      return error_at(outputs_tok, "declared " + outputs_str(outs.types) + " but inference gives " +
                                       outputs_str(n.outputs));
    for (size_t i = 0; i < outs.types.size(); ++i)
      if (outs.types[i] != n.outputs[i])
        return error_at(outs.positions[i],
                        "declared " + outs.types[i].str() + " but inference gives " + n.outputs[i].str());
    return Status::Ok();
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  std::string_view source_;
  std::unique_ptr<Model> model_;
  std::unordered_map<std::string, Node*> defined_;
};

}  // namespace

StatusOr<std::unique_ptr<Model>> parse_model(std::string_view text, std::string_view source_name) {
  return Parser(text, source_name).parse();
}

// ================================================================ JSON

namespace {

using Json = nlohmann::ordered_json;

Json dim_json(const Dim& d) { return d.is_static() ? Json(d.value()) : Json(d.str()); }

Json shape_json(const Shape& s) {
  Json r = Json::array();
  for (const Dim& d : s) r.push_back(dim_json(d));
  return r;
}

// Non-finite floats have no JSON number: they become "inf", "-inf", "nan".
Json float_json(double v) { return std::isfinite(v) ? Json(v) : Json(format_double(v)); }

Json attr_json(const Attribute& a) {
  switch (a.kind()) {
    case AttrKind::Int: return a.as_int();
    case AttrKind::Float: return float_json(a.as_float());
    case AttrKind::Bool: return a.as_bool();
    case AttrKind::String: return a.as_string();
    case AttrKind::Ints: return a.as_ints();
    case AttrKind::Floats: {
      Json r = Json::array();
      for (double v : a.as_floats()) r.push_back(float_json(v));
      return r;
    }
    case AttrKind::Dims: return shape_json(a.as_dims());
    case AttrKind::Type: return std::string(type_name(a.as_type()));
  }
  return nullptr;
}

Json element_json(const Tensor& t, int64_t i) {
  const ElementTypeInfo& info = type_info(t.type());
  if (info.is_float) return float_json(t.get_f(i));
  if (info.is_integer) return t.get_i(i);
  return t.get_i(i) != 0;
}

Json constant_json(const Node& n, const PrintOptions& opts) {
  Json c = Json::object();
  c["hash"] = n.constant_content_hash();
  if (has_data(n)) {
    c["bytes"] = static_cast<int64_t>(n.constant->nbytes());
  } else if (n.outputs.size() == 1) {
    // Opaque: the size the data would have.
    auto dims = static_dims(n.outputs[0].shape);
    auto numel = dims ? checked_numel(*dims) : std::nullopt;
    if (numel) {
      auto bytes = storage_bytes(n.outputs[0].type, *numel);
      if (bytes.ok()) c["bytes"] = *bytes;
    }
  }
  if (prints_inline(n, opts)) {
    Json values = Json::array();
    for (int64_t i = 0; i < n.constant->numel(); ++i) values.push_back(element_json(*n.constant, i));
    c["values"] = std::move(values);
  }
  return c;
}

std::string value_json_ref(const Value& v) {
  std::string r = v.node ? v.node->name : std::string("<null>");
  if (v.index != 0) r += ":" + std::to_string(v.index);
  return r;
}

}  // namespace

std::string export_json(const Model& m, const PrintOptions& opts) {
  Json root = Json::object();
  root["name"] = m.name();
  Json states = Json::array();
  for (const StateVariable& v : m.variables())
    states.push_back(Json{{"name", v.name}, {"type", std::string(type_name(v.type))}, {"max_shape", v.max_shape}});
  root["states"] = std::move(states);
  Json nodes = Json::array();
  for (const Node* n : print_order(m)) {
    Json j = Json::object();
    j["name"] = n->name;
    j["op"] = std::string(n->op_name());
    Json inputs = Json::array();
    for (const Value& v : n->inputs) inputs.push_back(value_json_ref(v));
    j["inputs"] = std::move(inputs);
    Json attrs = Json::object();
    for (auto& [key, value] : n->attrs) attrs[key] = attr_json(value);
    j["attrs"] = std::move(attrs);
    Json outputs = Json::array();
    for (const TensorType& t : n->outputs)
      outputs.push_back(Json{{"type", std::string(type_name(t.type))}, {"shape", shape_json(t.shape)}});
    j["outputs"] = std::move(outputs);
    if (n->is(Op::Constant)) j["constant"] = constant_json(*n, opts);
    nodes.push_back(std::move(j));
  }
  root["nodes"] = std::move(nodes);
  // Names are arbitrary bytes: replace invalid UTF-8 rather than throw.
  return root.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

// ================================================================ DOT

namespace {

// Inside a DOT double-quoted string: escape quotes and backslashes (so "\N", "\l" stay literal),
// and turn our own line breaks into DOT's "\n".
std::string dot_escape(std::string_view s) {
  std::string r;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      r += '\\';
      r += c;
    } else if (c == '\n') {
      r += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      r += ' ';
    } else {
      r += c;
    }
  }
  return r;
}

std::string dot_style(const Node& n) {
  if (n.is(Op::Parameter)) return "shape=invhouse, style=filled, fillcolor=lightblue";
  if (n.is(Op::Constant)) return "shape=box, style=filled, fillcolor=lightgray";
  if (n.is(Op::Result)) return "shape=house, style=filled, fillcolor=palegreen";
  if (n.is(Op::ReadValue) || n.is(Op::Assign)) return "shape=cylinder, style=filled, fillcolor=orange";
  return "shape=box, style=rounded";
}

}  // namespace

std::string export_dot(const Model& m) {
  std::vector<const Node*> order = print_order(m);
  std::unordered_map<const Node*, size_t> id;
  for (size_t i = 0; i < order.size(); ++i) id[order[i]] = i;
  auto node_id = [&](const Node* n) { return "n" + std::to_string(id.at(n)); };

  std::string out = "digraph \"" + dot_escape(m.name()) + "\" {\n";
  out += "  rankdir=TB;\n  node [fontname=\"monospace\"];\n";
  for (const Node* n : order) {
    std::string label = n->name + "\n" + std::string(n->op_name());
    if (n->is(Op::ReadValue) || n->is(Op::Assign)) {
      if (n->has_attr("variable") && n->attr("variable").kind() == AttrKind::String)
        label += " " + quote_string(n->attr("variable").as_string());
    }
    if (!n->outputs.empty()) label += "\n" + outputs_str(n->outputs);
    out += "  " + node_id(n) + " [label=\"" + dot_escape(label) + "\", " + dot_style(*n) + "];\n";
  }
  for (const Node* n : order) {
    for (const Value& v : n->inputs) {
      if (!v.node || !id.count(v.node)) continue;  // dangling input of a broken model
      std::string label = v.index >= 0 && v.index < static_cast<int>(v.node->outputs.size())
                              ? v.node->outputs[static_cast<size_t>(v.index)].str()
                              : "?";
      if (v.index != 0) label = std::to_string(v.index) + ": " + label;
      out += "  " + node_id(v.node) + " -> " + node_id(n) + " [label=\"" + dot_escape(label) + "\"];\n";
    }
  }
  // State flows from each Assign to the next call's ReadValue of the same variable.
  auto variable_of = [](const Node* n) -> const std::string* {
    if (!n->has_attr("variable") || n->attr("variable").kind() != AttrKind::String) return nullptr;
    return &n->attr("variable").as_string();
  };
  for (const Node* a : order) {
    if (!a->is(Op::Assign) || !variable_of(a)) continue;
    for (const Node* r : order) {
      if (!r->is(Op::ReadValue) || !variable_of(r) || *variable_of(r) != *variable_of(a)) continue;
      out += "  " + node_id(a) + " -> " + node_id(r) + " [style=dashed, constraint=false, label=\"" +
             dot_escape(*variable_of(a)) + "\"];\n";
    }
  }
  return out + "}\n";
}

}  // namespace ingot
