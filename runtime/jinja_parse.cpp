// The template engine's lexer and parser: Jinja2's syntax and whitespace rules (trim_blocks,
// lstrip_blocks, `-` and `+` markers, keep_trailing_newline) into the tree of jinja_ast.h.
#include <cstring>

#include "runtime/jinja_ast.h"
#include "runtime/jinja_internal.h"

namespace ingot::jinja {

namespace {

enum class Tok { text, var_begin, var_end, block_begin, block_end, name, string, integer, floating, op, eof };

struct Token {
  Tok kind;
  std::string text;  // text, name, op, string value
  int64_t i = 0;
  double f = 0;
  Loc loc;
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

class Lexer {
 public:
  Lexer(std::string source, const Options& o) : src_(std::move(source)), opt_(o) {}

  StatusOr<std::vector<Token>> run() {
    // Only \n, \r\n and \r end lines (as Jinja 3); one trailing newline goes unless kept.
    std::string norm;
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\r') {
        norm += '\n';
        if (i + 1 < src_.size() && src_[i + 1] == '\n') ++i;
      } else {
        norm += src_[i];
      }
    }
    if (!opt_.keep_trailing_newline && !norm.empty() && norm.back() == '\n') norm.pop_back();
    src_ = std::move(norm);
    while (pos_ < src_.size()) INGOT_RETURN_IF_ERROR(step());
    out_.push_back(Token{Tok::eof, "", 0, 0, loc(pos_)});
    return std::move(out_);
  }

 private:
  Loc loc(size_t p) {
    while (line_pos_ < p) {
      if (src_[line_pos_] == '\n') {
        ++line_;
        line_start_ = line_pos_ + 1;
      }
      ++line_pos_;
    }
    return Loc{line_, static_cast<int>(p - line_start_) + 1};
  }
  Status error(size_t p, const std::string& msg) {
    Loc l = loc(p);
    return Status::Error("line " + std::to_string(l.line) + ", column " + std::to_string(l.column) + ": " + msg);
  }

  // One stretch of text and the tag after it.
  Status step() {
    size_t tag = pos_;
    while (true) {
      tag = src_.find('{', tag);
      if (tag == std::string::npos || tag + 1 >= src_.size()) {
        tag = std::string::npos;
        break;
      }
      char c = src_[tag + 1];
      if (c == '{' || c == '%' || c == '#') break;
      ++tag;
    }
    std::string text = src_.substr(pos_, tag == std::string::npos ? std::string::npos : tag - pos_);
    const bool line_starting = pos_ == 0 || src_[pos_ - 1] == '\n';
    const size_t text_pos = pos_;
    if (tag == std::string::npos) {
      emit_text(std::move(text), text_pos);
      pos_ = src_.size();
      return Status::Ok();
    }
    const char kind = src_[tag + 1];
    char sign = tag + 2 < src_.size() ? src_[tag + 2] : 0;
    if (sign != '-' && sign != '+') sign = 0;
    if (sign == '-') {
      size_t e = text.size();
      while (e > 0 && is_space(text[e - 1])) --e;
      text.resize(e);
    } else if (sign != '+' && opt_.lstrip_blocks && kind != '{') {
      size_t l = text.rfind('\n');
      l = l == std::string::npos ? 0 : l + 1;
      if (l > 0 || line_starting) {
        bool blank = l < text.size();
        for (size_t i = l; i < text.size(); ++i)
          if (!is_space(text[i])) blank = false;
        if (blank) text.resize(l);
      }
    }
    emit_text(std::move(text), text_pos);
    pos_ = tag + 2 + (sign ? 1 : 0);
    if (kind == '#') {
      size_t end = src_.find("#}", pos_);
      if (end == std::string::npos) return error(tag, "unclosed comment (no '#}')");
      char esign = end > pos_ && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : 0;
      pos_ = end + 2;
      after_tag(esign, true);
      return Status::Ok();
    }
    // raw blocks: {% raw %}...{% endraw %} is text
    if (kind == '%') {
      size_t p = pos_;
      while (p < src_.size() && is_space(src_[p])) ++p;
      if (src_.compare(p, 3, "raw") == 0 && (p + 3 >= src_.size() || !(isalnum(static_cast<unsigned char>(src_[p + 3])) || src_[p + 3] == '_')))
        return raw(tag, p + 3);
    }
    out_.push_back(Token{kind == '{' ? Tok::var_begin : Tok::block_begin, "", 0, 0, loc(tag)});
    return tag_body(kind == '{', tag);
  }

  void emit_text(std::string text, size_t p) {
    if (!text.empty()) out_.push_back(Token{Tok::text, std::move(text), 0, 0, loc(p)});
  }

  // After a tag's end: `-` strips all following whitespace; trim_blocks drops one newline
  // after a block or comment tag (not after `+`).
  void after_tag(char sign, bool block) {
    if (sign == '-') {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
    } else if (sign != '+' && block && opt_.trim_blocks && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
    }
  }

  Status raw(size_t tag, size_t p) {
    // the rest of the opening tag
    while (p < src_.size() && is_space(src_[p])) ++p;
    char sign = 0;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
    if (src_.compare(p, 2, "%}") != 0) return error(p, "expected '%}' after 'raw'");
    pos_ = p + 2;
    after_tag(sign, true);
    size_t q = pos_;
    while (true) {
      size_t b = src_.find("{%", q);
      if (b == std::string::npos) return error(tag, "'raw' block is never closed (expected 'endraw')");
      size_t r = b + 2;
      char bsign = 0;
      if (r < src_.size() && (src_[r] == '-' || src_[r] == '+')) bsign = src_[r++];
      while (r < src_.size() && is_space(src_[r])) ++r;
      if (src_.compare(r, 6, "endraw") != 0) {
        q = b + 2;
        continue;
      }
      r += 6;
      while (r < src_.size() && is_space(src_[r])) ++r;
      char esign = 0;
      if (r < src_.size() && (src_[r] == '-' || src_[r] == '+')) esign = src_[r++];
      if (src_.compare(r, 2, "%}") != 0) return error(r, "expected '%}' after 'endraw'");
      std::string text = src_.substr(pos_, b - pos_);
      if (bsign == '-') {
        size_t e = text.size();
        while (e > 0 && is_space(text[e - 1])) --e;
        text.resize(e);
      }
      emit_text(std::move(text), pos_);
      pos_ = r + 2;
      after_tag(esign, true);
      return Status::Ok();
    }
  }

  Status tag_body(bool variable, size_t tag) {
    std::vector<char> balance;
    const char* end = variable ? "}}" : "%}";
    while (true) {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
      if (pos_ >= src_.size())
        return error(tag, variable ? "unclosed '{{' (no '}}')" : "unclosed '{%' (no '%}')");
      if (balance.empty()) {
        char sign = 0;
        size_t p = pos_;
        if ((src_[p] == '-' || (!variable && src_[p] == '+')) && src_.compare(p + 1, 2, end) == 0) sign = src_[p++];
        if (src_.compare(p, 2, end) == 0) {
          out_.push_back(Token{variable ? Tok::var_end : Tok::block_end, "", 0, 0, loc(pos_)});
          pos_ = p + 2;
          after_tag(sign, !variable);
          return Status::Ok();
        }
      }
      const size_t start = pos_;
      const char c = src_[pos_];
      if (c == '\'' || c == '"') {
        INGOT_ASSIGN_OR_RETURN(std::string s, string_literal());
        out_.push_back(Token{Tok::string, std::move(s), 0, 0, loc(start)});
        continue;
      }
      if (c >= '0' && c <= '9') {
        INGOT_RETURN_IF_ERROR(number());
        continue;
      }
      if (isalpha(static_cast<unsigned char>(c)) || c == '_') {
        while (pos_ < src_.size() && (isalnum(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) ++pos_;
        out_.push_back(Token{Tok::name, src_.substr(start, pos_ - start), 0, 0, loc(start)});
        continue;
      }
      static const char* kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">",
                                   "=",  ".",  ",",  ":",  "|",  "(",  ")", "[", "]", "{", "}"};
      const char* op = nullptr;
      for (const char* o : kOps)
        if (src_.compare(pos_, std::strlen(o), o) == 0) {
          op = o;
          break;
        }
      if (!op) return error(pos_, std::string("unexpected character '") + c + "'");
      if (op[1] == 0 && (c == '(' || c == '[' || c == '{')) balance.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
      if (op[1] == 0 && (c == ')' || c == ']' || c == '}')) {
        if (balance.empty()) return error(pos_, std::string("unexpected '") + c + "'");
        if (balance.back() != c)
          return error(pos_, std::string("unexpected '") + c + "', expected '" + balance.back() + "'");
        balance.pop_back();
      }
      pos_ += std::strlen(op);
      out_.push_back(Token{Tok::op, op, 0, 0, loc(start)});
    }
  }

  StatusOr<std::string> string_literal() {
    const size_t start = pos_;
    const char q = src_[pos_++];
    std::string out;
    while (true) {
      if (pos_ >= src_.size()) return error(start, "unterminated string");
      char c = src_[pos_++];
      if (c == q) return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= src_.size()) return error(start, "unterminated string");
      char e = src_[pos_++];
      auto hex = [&](int n) -> StatusOr<uint32_t> {
        uint32_t v = 0;
        for (int i = 0; i < n; ++i) {
          if (pos_ >= src_.size() || !isxdigit(static_cast<unsigned char>(src_[pos_])))
            return error(pos_, "bad escape in string");
          char h = src_[pos_++];
          v = v * 16 + (h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
        }
        return v;
      };
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case '\n': break;  // line continuation
        case 'x': {
          INGOT_ASSIGN_OR_RETURN(uint32_t v, hex(2));
          append_utf8(out, v);
          break;
        }
        case 'u': {
          INGOT_ASSIGN_OR_RETURN(uint32_t v, hex(4));
          append_utf8(out, v);
          break;
        }
        case 'U': {
          INGOT_ASSIGN_OR_RETURN(uint32_t v, hex(8));
          if (v > 0x10ffff) return error(pos_, "bad \\U escape in string");
          append_utf8(out, v);
          break;
        }
        case 'N': return error(pos_ - 2, "\\N{...} escapes are not supported");
        default:
          if (e >= '0' && e <= '7') {
            uint32_t v = e - '0';
            for (int i = 0; i < 2 && pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '7'; ++i)
              v = v * 8 + (src_[pos_++] - '0');
            append_utf8(out, v);
          } else {
            out += '\\';
            out += e;
          }
      }
    }
  }

  Status number() {
    const size_t start = pos_;
    auto digits = [&] {
      while (pos_ < src_.size() && (isdigit(static_cast<unsigned char>(src_[pos_])) ||
                                    (src_[pos_] == '_' && pos_ + 1 < src_.size() && isdigit(static_cast<unsigned char>(src_[pos_ + 1])))))
        ++pos_;
    };
    digits();
    bool is_float = false;
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' && isdigit(static_cast<unsigned char>(src_[pos_ + 1]))) {
      is_float = true;
      ++pos_;
      digits();
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t p = pos_ + 1;
      if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
      if (p < src_.size() && isdigit(static_cast<unsigned char>(src_[p]))) {
        is_float = true;
        pos_ = p;
        digits();
      }
    }
    std::string text;
    for (size_t i = start; i < pos_; ++i)
      if (src_[i] != '_') text += src_[i];
    Token t{is_float ? Tok::floating : Tok::integer, text, 0, 0, loc(start)};
    if (is_float) {
      t.f = std::strtod(text.c_str(), nullptr);
    } else {
      errno = 0;
      t.i = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == ERANGE) return error(start, "integer literal too large");
    }
    out_.push_back(std::move(t));
    return Status::Ok();
  }

  std::string src_;
  Options opt_;
  size_t pos_ = 0;
  std::vector<Token> out_;
  int line_ = 1;
  size_t line_start_ = 0, line_pos_ = 0;
};

constexpr int kMaxDepth = 200;

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : t_(std::move(toks)) {}

  StatusOr<std::vector<StmtPtr>> document() {
    std::string end;
    INGOT_ASSIGN_OR_RETURN(auto body, statements({}, end));
    return body;
  }

 private:
  const Token& cur() const { return t_[p_]; }
  const Token& peek(size_t k = 1) const { return t_[std::min(p_ + k, t_.size() - 1)]; }
  Status error_at(const Loc& l, const std::string& msg) const {
    return Status::Error("line " + std::to_string(l.line) + ", column " + std::to_string(l.column) + ": " + msg);
  }
  Status error(const std::string& msg) const { return error_at(cur().loc, msg); }
  bool is_op(const char* o) const { return cur().kind == Tok::op && cur().text == o; }
  bool is_name(const char* n) const { return cur().kind == Tok::name && cur().text == n; }
  bool accept_op(const char* o) {
    if (!is_op(o)) return false;
    ++p_;
    return true;
  }
  bool accept_name(const char* n) {
    if (!is_name(n)) return false;
    ++p_;
    return true;
  }
  std::string describe(const Token& t) const {
    switch (t.kind) {
      case Tok::eof: return "end of template";
      case Tok::var_end: return "'}}'";
      case Tok::block_end: return "'%}'";
      case Tok::string: return "a string";
      case Tok::integer:
      case Tok::floating: return "a number";
      default: return "'" + t.text + "'";
    }
  }
  Status expect_op(const char* o) {
    if (accept_op(o)) return Status::Ok();
    return error(std::string("expected '") + o + "', found " + describe(cur()));
  }
  StatusOr<std::string> expect_name() {
    if (cur().kind != Tok::name) return error("expected a name, found " + describe(cur()));
    return t_[p_++].text;
  }
  Status expect_block_end(const std::string& tag) {
    if (cur().kind == Tok::block_end) {
      ++p_;
      return Status::Ok();
    }
    return error("expected '%}' to end '" + tag + "', found " + describe(cur()));
  }

  // Statements until `{% NAME` with NAME in `ends` (left unconsumed after the name; `end`
  // says which). With no ends: until the end of the template.
  StatusOr<std::vector<StmtPtr>> statements(const std::vector<std::string>& ends, std::string& end,
                                            const Loc* opened = nullptr, const char* opened_tag = nullptr) {
    if (++depth_ > kMaxDepth) return error("blocks nested too deeply");
    std::vector<StmtPtr> body;
    while (true) {
      const Token& t = cur();
      if (t.kind == Tok::eof) {
        if (ends.empty()) break;
        return error_at(*opened, std::string("'") + opened_tag + "' block is never closed (expected '" + ends.back() + "')");
      }
      if (t.kind == Tok::text) {
        auto s = std::make_unique<Stmt>(StmtKind::text, t.loc);
        s->text = t.text;
        body.push_back(std::move(s));
        ++p_;
        continue;
      }
      if (t.kind == Tok::var_begin) {
        ++p_;
        auto s = std::make_unique<Stmt>(StmtKind::output, t.loc);
        INGOT_ASSIGN_OR_RETURN(s->expr, expression());
        if (cur().kind != Tok::var_end) return error("expected '}}', found " + describe(cur()));
        ++p_;
        body.push_back(std::move(s));
        continue;
      }
      INGOT_ASSERT(t.kind == Tok::block_begin, "lexer produced a stray token");
      const Loc tag_loc = t.loc;
      ++p_;
      if (cur().kind != Tok::name) return error("expected a tag name, found " + describe(cur()));
      const std::string name = cur().text;
      for (const auto& e : ends)
        if (e == name) {
          ++p_;
          end = name;
          --depth_;
          return body;
        }
      ++p_;
      INGOT_ASSIGN_OR_RETURN(StmtPtr s, statement(name, tag_loc));
      body.push_back(std::move(s));
    }
    --depth_;
    return body;
  }

  StatusOr<StmtPtr> statement(const std::string& name, const Loc& loc) {
    if (name == "if") return if_statement(loc);
    if (name == "for") return for_statement(loc);
    if (name == "set") return set_statement(loc);
    if (name == "macro") return macro_statement(loc);
    if (name == "break" || name == "continue") {
      if (loops_ == 0) return error_at(loc, "'" + name + "' outside a 'for' loop");
      auto s = std::make_unique<Stmt>(name == "break" ? StmtKind::brk : StmtKind::cont, loc);
      INGOT_RETURN_IF_ERROR(expect_block_end(name));
      return s;
    }
    if (name == "generation") {  // Hugging Face's assistant-mask marker: renders its body
      INGOT_RETURN_IF_ERROR(expect_block_end(name));
      auto s = std::make_unique<Stmt>(StmtKind::block, loc);
      std::string end;
      INGOT_ASSIGN_OR_RETURN(s->body, statements({"endgeneration"}, end, &loc, "generation"));
      INGOT_RETURN_IF_ERROR(expect_block_end(end));
      return s;
    }
    if (name == "filter") {
      auto s = std::make_unique<Stmt>(StmtKind::filter_block, loc);
      auto input = std::make_unique<Expr>(ExprKind::literal, loc);
      input->name = "(block)";
      INGOT_ASSIGN_OR_RETURN(s->expr, filter_chain(std::move(input), /*first_pipe=*/false));
      INGOT_RETURN_IF_ERROR(expect_block_end(name));
      std::string end;
      INGOT_ASSIGN_OR_RETURN(s->body, statements({"endfilter"}, end, &loc, "filter"));
      INGOT_RETURN_IF_ERROR(expect_block_end(end));
      return s;
    }
    static const char* kEnds[] = {"endif", "endfor", "endset", "endmacro", "else", "elif", "endfilter", "endgeneration", "endraw"};
    for (const char* e : kEnds)
      if (name == e) return error_at(loc, "unexpected '" + name + "' (no block to close or continue here)");
    return error_at(loc, "unknown tag '" + name + "'");
  }

  StatusOr<StmtPtr> if_statement(const Loc& loc) {
    auto s = std::make_unique<Stmt>(StmtKind::if_, loc);
    INGOT_ASSIGN_OR_RETURN(ExprPtr cond, expression());
    INGOT_RETURN_IF_ERROR(expect_block_end("if"));
    while (true) {
      std::string end;
      INGOT_ASSIGN_OR_RETURN(auto body, statements({"elif", "else", "endif"}, end, &loc, "if"));
      s->branches.emplace_back(std::move(cond), std::move(body));
      if (end == "elif") {
        INGOT_ASSIGN_OR_RETURN(cond, expression());
        INGOT_RETURN_IF_ERROR(expect_block_end("elif"));
        continue;
      }
      if (end == "else") {
        INGOT_RETURN_IF_ERROR(expect_block_end("else"));
        INGOT_ASSIGN_OR_RETURN(s->else_body, statements({"endif"}, end, &loc, "if"));
      }
      INGOT_RETURN_IF_ERROR(expect_block_end("endif"));
      return s;
    }
  }

  StatusOr<std::vector<std::string>> targets() {
    std::vector<std::string> names;
    bool paren = accept_op("(");
    do {
      INGOT_ASSIGN_OR_RETURN(std::string n, expect_name());
      names.push_back(n);
    } while (accept_op(","));
    if (paren) INGOT_RETURN_IF_ERROR(expect_op(")"));
    return names;
  }

  StatusOr<StmtPtr> for_statement(const Loc& loc) {
    auto s = std::make_unique<Stmt>(StmtKind::for_, loc);
    INGOT_ASSIGN_OR_RETURN(s->targets, targets());
    if (!accept_name("in")) return error("expected 'in' in 'for', found " + describe(cur()));
    INGOT_ASSIGN_OR_RETURN(s->expr, expression(/*allow_cond=*/false));
    if (accept_name("if")) {
      INGOT_ASSIGN_OR_RETURN(s->filter, expression(false));
    }
    if (accept_name("recursive")) return error("recursive loops are not supported");
    INGOT_RETURN_IF_ERROR(expect_block_end("for"));
    ++loops_;
    std::string end;
    INGOT_ASSIGN_OR_RETURN(s->body, statements({"else", "endfor"}, end, &loc, "for"));
    --loops_;
    if (end == "else") {
      INGOT_RETURN_IF_ERROR(expect_block_end("else"));
      INGOT_ASSIGN_OR_RETURN(s->else_body, statements({"endfor"}, end, &loc, "for"));
    }
    INGOT_RETURN_IF_ERROR(expect_block_end("endfor"));
    return s;
  }

  StatusOr<StmtPtr> set_statement(const Loc& loc) {
    auto s = std::make_unique<Stmt>(StmtKind::set, loc);
    INGOT_ASSIGN_OR_RETURN(std::string first, expect_name());
    if (accept_op(".")) {
      s->kind = StmtKind::set_attr;
      s->targets = {first};
      INGOT_ASSIGN_OR_RETURN(std::string attr, expect_name());
      s->text = attr;
    } else {
      s->targets = {first};
      while (accept_op(",")) {
        INGOT_ASSIGN_OR_RETURN(std::string n, expect_name());
        s->targets.push_back(n);
      }
    }
    if (accept_op("=")) {
      INGOT_ASSIGN_OR_RETURN(s->expr, tuple_expression());
      INGOT_RETURN_IF_ERROR(expect_block_end("set"));
      return s;
    }
    if (s->kind != StmtKind::set || s->targets.size() != 1) return error("expected '=' in 'set'");
    // {% set x %}...{% endset %}, optionally with filters
    s->kind = StmtKind::set_block;
    if (is_op("|")) {
      auto input = std::make_unique<Expr>(ExprKind::literal, loc);
      input->name = "(block)";
      INGOT_ASSIGN_OR_RETURN(s->expr, filter_chain(std::move(input), true));
    }
    INGOT_RETURN_IF_ERROR(expect_block_end("set"));
    std::string end;
    INGOT_ASSIGN_OR_RETURN(s->body, statements({"endset"}, end, &loc, "set"));
    INGOT_RETURN_IF_ERROR(expect_block_end("endset"));
    return s;
  }

  StatusOr<StmtPtr> macro_statement(const Loc& loc) {
    auto s = std::make_unique<Stmt>(StmtKind::macro, loc);
    INGOT_ASSIGN_OR_RETURN(s->text, expect_name());
    INGOT_RETURN_IF_ERROR(expect_op("("));
    if (!accept_op(")")) {
      do {
        INGOT_ASSIGN_OR_RETURN(std::string n, expect_name());
        s->targets.push_back(n);
        if (accept_op("=")) {
          INGOT_ASSIGN_OR_RETURN(ExprPtr d, expression());
          s->defaults.push_back(std::move(d));
        } else {
          if (!s->defaults.empty()) return error("a macro parameter without a default follows one with a default");
          s->defaults.push_back(nullptr);
        }
      } while (accept_op(","));
      INGOT_RETURN_IF_ERROR(expect_op(")"));
    }
    INGOT_RETURN_IF_ERROR(expect_block_end("macro"));
    int saved = loops_;
    loops_ = 0;
    std::string end;
    INGOT_ASSIGN_OR_RETURN(s->body, statements({"endmacro"}, end, &loc, "macro"));
    loops_ = saved;
    if (cur().kind == Tok::name && cur().text == s->text) ++p_;
    INGOT_RETURN_IF_ERROR(expect_block_end("endmacro"));
    return s;
  }

  // ---- expressions ----

  StatusOr<ExprPtr> tuple_expression() {
    Loc loc = cur().loc;
    INGOT_ASSIGN_OR_RETURN(ExprPtr first, expression());
    if (!is_op(",")) return first;
    auto t = std::make_unique<Expr>(ExprKind::tuple, loc);
    t->kids.push_back(std::move(first));
    while (accept_op(",")) {
      if (cur().kind == Tok::block_end || cur().kind == Tok::var_end) break;
      INGOT_ASSIGN_OR_RETURN(ExprPtr e, expression());
      t->kids.push_back(std::move(e));
    }
    return t;
  }

  StatusOr<ExprPtr> expression(bool allow_cond = true) {
    if (++depth_ > kMaxDepth) return error("expression nested too deeply");
    INGOT_ASSIGN_OR_RETURN(ExprPtr e, or_expr());
    while (allow_cond && is_name("if")) {
      Loc loc = cur().loc;
      ++p_;
      auto c = std::make_unique<Expr>(ExprKind::cond, loc);
      INGOT_ASSIGN_OR_RETURN(ExprPtr test, or_expr());
      c->kids.push_back(std::move(test));
      c->kids.push_back(std::move(e));
      if (accept_name("else")) {
        INGOT_ASSIGN_OR_RETURN(ExprPtr other, expression());
        c->kids.push_back(std::move(other));
      }
      e = std::move(c);
    }
    --depth_;
    return e;
  }

  ExprPtr binary(const std::string& op, ExprPtr a, ExprPtr b, const Loc& loc) {
    auto e = std::make_unique<Expr>(ExprKind::binary, loc);
    e->name = op;
    e->kids.push_back(std::move(a));
    e->kids.push_back(std::move(b));
    return e;
  }

  StatusOr<ExprPtr> or_expr() {
    INGOT_ASSIGN_OR_RETURN(ExprPtr e, and_expr());
    while (is_name("or")) {
      Loc loc = cur().loc;
      ++p_;
      INGOT_ASSIGN_OR_RETURN(ExprPtr r, and_expr());
      e = binary("or", std::move(e), std::move(r), loc);
    }
    return e;
  }
  StatusOr<ExprPtr> and_expr() {
    INGOT_ASSIGN_OR_RETURN(ExprPtr e, not_expr());
    while (is_name("and")) {
      Loc loc = cur().loc;
      ++p_;
      INGOT_ASSIGN_OR_RETURN(ExprPtr r, not_expr());
      e = binary("and", std::move(e), std::move(r), loc);
    }
    return e;
  }
  StatusOr<ExprPtr> not_expr() {
    if (is_name("not")) {
      Loc loc = cur().loc;
      ++p_;
      if (++depth_ > kMaxDepth) return error("expression nested too deeply");
      INGOT_ASSIGN_OR_RETURN(ExprPtr x, not_expr());
      --depth_;
      auto e = std::make_unique<Expr>(ExprKind::unary, loc);
      e->name = "not";
      e->kids.push_back(std::move(x));
      return e;
    }
    return compare();
  }
  StatusOr<ExprPtr> compare() {
    INGOT_ASSIGN_OR_RETURN(ExprPtr e, math1());
    ExprPtr chain;
    const Expr* last_right = nullptr;
    while (true) {
      Loc loc = cur().loc;
      std::string op;
      if (cur().kind == Tok::op && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                    cur().text == "<=" || cur().text == ">" || cur().text == ">=")) {
        op = cur().text;
        ++p_;
      } else if (is_name("in")) {
        op = "in";
        ++p_;
      } else if (is_name("not") && peek().kind == Tok::name && peek().text == "in") {
        op = "not in";
        p_ += 2;
      } else {
        break;
      }
      INGOT_ASSIGN_OR_RETURN(ExprPtr r, math1());
      if (!last_right) {
        last_right = r.get();
        e = binary(op, std::move(e), std::move(r), loc);
      } else {
        // a < b < c: (a < b) and (b < c), b evaluated twice (templates do not chain side effects)
        auto again = clone(*last_right);
        last_right = r.get();
        auto next = binary(op, std::move(again), std::move(r), loc);
        e = binary("and", std::move(e), std::move(next), loc);
      }
    }
    return e;
  }
  static ExprPtr clone(const Expr& x) {
    auto e = std::make_unique<Expr>(x.kind, x.loc);
    e->name = x.name;
    e->value = x.value;
    e->keywords = x.keywords;
    e->negated = x.negated;
    for (const auto& k : x.kids) e->kids.push_back(k ? clone(*k) : nullptr);
    return e;
  }
  StatusOr<ExprPtr> math1() {
    INGOT_ASSIGN_OR_RETURN(ExprPtr e, concat());
    while (is_op("+") || is_op("-")) {
      Loc loc = cur().loc;
      std::string op = t_[p_++].text;
      INGOT_ASSIGN_OR_RETURN(ExprPtr r, concat());
      e = binary(op, std::move(e), std::move(r), loc);
    }
    return e;
  }
  StatusOr<ExprPtr> concat() {
    INGOT_ASSIGN_OR_RETURN(ExprPtr e, math2());
    while (is_op("~")) {
      Loc loc = cur().loc;
      ++p_;
      INGOT_ASSIGN_OR_RETURN(ExprPtr r, math2());
      e = binary("~", std::move(e), std::move(r), loc);
    }
    return e;
  }
  StatusOr<ExprPtr> math2() {
    INGOT_ASSIGN_OR_RETURN(ExprPtr e, pow());
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      Loc loc = cur().loc;
      std::string op = t_[p_++].text;
      INGOT_ASSIGN_OR_RETURN(ExprPtr r, pow());
      e = binary(op, std::move(e), std::move(r), loc);
    }
    return e;
  }
  StatusOr<ExprPtr> pow() {
    INGOT_ASSIGN_OR_RETURN(ExprPtr e, unary(true));
    while (is_op("**")) {
      Loc loc = cur().loc;
      ++p_;
      INGOT_ASSIGN_OR_RETURN(ExprPtr r, unary(true));
      e = binary("**", std::move(e), std::move(r), loc);
    }
    return e;
  }
  StatusOr<ExprPtr> unary(bool with_filter) {
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      Loc loc = cur().loc;
      std::string op = t_[p_++].text;
      if (++depth_ > kMaxDepth) return error("expression nested too deeply");
      INGOT_ASSIGN_OR_RETURN(ExprPtr x, unary(false));
      --depth_;
      e = std::make_unique<Expr>(ExprKind::unary, loc);
      e->name = op;
      e->kids.push_back(std::move(x));
    } else {
      INGOT_ASSIGN_OR_RETURN(e, primary());
    }
    INGOT_ASSIGN_OR_RETURN(e, postfix(std::move(e)));
    if (with_filter) {
      INGOT_ASSIGN_OR_RETURN(e, filter_chain(std::move(e), true));
    }
    return e;
  }

  StatusOr<ExprPtr> primary() {
    const Token& t = cur();
    auto e = std::make_unique<Expr>(ExprKind::literal, t.loc);
    switch (t.kind) {
      case Tok::name: {
        const std::string& n = t.text;
        ++p_;
        if (n == "true" || n == "True") e->value = Value::boolean(true);
        else if (n == "false" || n == "False") e->value = Value::boolean(false);
        else if (n == "none" || n == "None") e->value = Value::none();
        else {
          e->kind = ExprKind::name;
          e->name = n;
        }
        return e;
      }
      case Tok::string: {
        std::string s;
        while (cur().kind == Tok::string) s += t_[p_++].text;  // adjacent literals concatenate
        e->value = Value::string(std::move(s));
        return e;
      }
      case Tok::integer: e->value = Value::integer(t.i); ++p_; return e;
      case Tok::floating: e->value = Value::floating(t.f); ++p_; return e;
      case Tok::op: break;
      default: return error("expected an expression, found " + describe(t));
    }
    if (accept_op("(")) {
      if (accept_op(")")) {
        e->kind = ExprKind::tuple;
        return e;
      }
      INGOT_ASSIGN_OR_RETURN(ExprPtr first, expression());
      if (!is_op(",")) {
        INGOT_RETURN_IF_ERROR(expect_op(")"));
        return first;
      }
      e->kind = ExprKind::tuple;
      e->kids.push_back(std::move(first));
      while (accept_op(",")) {
        if (is_op(")")) break;
        INGOT_ASSIGN_OR_RETURN(ExprPtr x, expression());
        e->kids.push_back(std::move(x));
      }
      INGOT_RETURN_IF_ERROR(expect_op(")"));
      return e;
    }
    if (accept_op("[")) {
      e->kind = ExprKind::list;
      while (!is_op("]")) {
        INGOT_ASSIGN_OR_RETURN(ExprPtr x, expression());
        e->kids.push_back(std::move(x));
        if (!accept_op(",")) break;
      }
      INGOT_RETURN_IF_ERROR(expect_op("]"));
      return e;
    }
    if (accept_op("{")) {
      e->kind = ExprKind::dict;
      while (!is_op("}")) {
        INGOT_ASSIGN_OR_RETURN(ExprPtr k, expression());
        INGOT_RETURN_IF_ERROR(expect_op(":"));
        INGOT_ASSIGN_OR_RETURN(ExprPtr v, expression());
        e->kids.push_back(std::move(k));
        e->kids.push_back(std::move(v));
        if (!accept_op(",")) break;
      }
      INGOT_RETURN_IF_ERROR(expect_op("}"));
      return e;
    }
    return error("expected an expression, found " + describe(t));
  }

  Status call_args(Expr& e) {
    // after '(' : positional then keyword arguments
    std::vector<ExprPtr> kw;
    while (!is_op(")")) {
      if (cur().kind == Tok::name && peek().kind == Tok::op && peek().text == "=") {
        e.keywords.push_back(cur().text);
        p_ += 2;
        INGOT_ASSIGN_OR_RETURN(ExprPtr v, expression());
        kw.push_back(std::move(v));
      } else {
        if (!kw.empty()) return error("a positional argument follows a keyword argument");
        INGOT_ASSIGN_OR_RETURN(ExprPtr v, expression());
        e.kids.push_back(std::move(v));
      }
      if (!accept_op(",")) break;
    }
    INGOT_RETURN_IF_ERROR(expect_op(")"));
    for (auto& k : kw) e.kids.push_back(std::move(k));
    return Status::Ok();
  }

  StatusOr<ExprPtr> postfix(ExprPtr e) {
    while (true) {
      Loc loc = cur().loc;
      if (accept_op(".")) {
        auto a = std::make_unique<Expr>(ExprKind::attr, loc);
        if (cur().kind == Tok::name) {
          a->name = t_[p_++].text;
        } else if (cur().kind == Tok::integer) {
          a->kind = ExprKind::item;
          auto idx = std::make_unique<Expr>(ExprKind::literal, loc);
          idx->value = Value::integer(t_[p_++].i);
          a->kids.push_back(std::move(e));
          a->kids.push_back(std::move(idx));
          e = std::move(a);
          continue;
        } else {
          return error("expected an attribute name after '.', found " + describe(cur()));
        }
        a->kids.push_back(std::move(e));
        e = std::move(a);
      } else if (accept_op("[")) {
        // index or slice
        ExprPtr parts[3];
        int colons = 0;
        while (true) {
          if (is_op(":")) {
            ++p_;
            if (++colons > 2) return error("too many ':' in a slice");
            continue;
          }
          if (is_op("]")) break;
          if (parts[colons]) return error("expected ':' or ']' in a subscript, found " + describe(cur()));
          INGOT_ASSIGN_OR_RETURN(parts[colons], expression());
        }
        ++p_;
        if (colons == 0) {
          if (!parts[0]) return error_at(loc, "empty subscript");
          auto it = std::make_unique<Expr>(ExprKind::item, loc);
          it->kids.push_back(std::move(e));
          it->kids.push_back(std::move(parts[0]));
          e = std::move(it);
        } else {
          auto sl = std::make_unique<Expr>(ExprKind::slice, loc);
          sl->kids.push_back(std::move(e));
          for (auto& p : parts) sl->kids.push_back(std::move(p));
          e = std::move(sl);
        }
      } else if (accept_op("(")) {
        auto c = std::make_unique<Expr>(ExprKind::call, loc);
        c->kids.push_back(std::move(e));
        INGOT_RETURN_IF_ERROR(call_args(*c));
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  // `| filter(args)` and `is [not] test args`, in any order, after a unary expression.
  StatusOr<ExprPtr> filter_chain(ExprPtr e, bool first_pipe) {
    bool need_pipe = first_pipe;
    while (true) {
      Loc loc = cur().loc;
      if (!need_pipe || accept_op("|")) {
        need_pipe = true;
        auto f = std::make_unique<Expr>(ExprKind::filter, loc);
        INGOT_ASSIGN_OR_RETURN(std::string name, expect_name());
        while (accept_op(".")) {
          INGOT_ASSIGN_OR_RETURN(std::string more, expect_name());
          name += "." + more;
        }
        if (!is_filter(name)) return error_at(loc, "unknown filter '" + name + "'");
        f->name = name;
        f->kids.push_back(std::move(e));
        if (accept_op("(")) INGOT_RETURN_IF_ERROR(call_args(*f));
        e = std::move(f);
        INGOT_ASSIGN_OR_RETURN(e, postfix(std::move(e)));
      } else if (is_name("is")) {
        ++p_;
        auto t = std::make_unique<Expr>(ExprKind::test, loc);
        t->negated = accept_name("not");
        std::string name;
        if (cur().kind == Tok::name) {
          name = t_[p_++].text;
        } else if (cur().kind == Tok::op && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                             cur().text == "<=" || cur().text == ">" || cur().text == ">=")) {
          name = t_[p_++].text;
        } else {
          return error("expected a test name after 'is', found " + describe(cur()));
        }
        if (name == "none" || name == "None") name = "none";
        if (name == "true" || name == "True") name = "true";
        if (name == "false" || name == "False") name = "false";
        if (!is_test(name)) return error_at(loc, "unknown test '" + name + "'");
        t->name = name;
        t->kids.push_back(std::move(e));
        if (accept_op("(")) {
          INGOT_RETURN_IF_ERROR(call_args(*t));
        } else if ((cur().kind == Tok::string || cur().kind == Tok::integer || cur().kind == Tok::floating ||
                    (cur().kind == Tok::name && cur().text != "else" && cur().text != "or" && cur().text != "and" &&
                     cur().text != "if" && cur().text != "is" && cur().text != "in" && cur().text != "not") ||
                    is_op("[") || is_op("{") || is_op("("))) {
          INGOT_ASSIGN_OR_RETURN(ExprPtr arg, primary());
          INGOT_ASSIGN_OR_RETURN(arg, postfix(std::move(arg)));
          t->kids.push_back(std::move(arg));
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

  std::vector<Token> t_;
  size_t p_ = 0;
  int depth_ = 0;
  int loops_ = 0;
};

}  // namespace

StatusOr<std::vector<StmtPtr>> parse_template(std::string_view source, const Options& options) {
  Lexer lexer{std::string(source), options};
  INGOT_ASSIGN_OR_RETURN(std::vector<Token> tokens, lexer.run());
  Parser parser(std::move(tokens));
  return parser.document();
}

}  // namespace ingot::jinja
