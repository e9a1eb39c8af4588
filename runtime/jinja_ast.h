// The template engine's syntax tree (runtime/jinja_parse.cpp builds it, runtime/jinja.cpp
// renders it); not a public interface.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/jinja.h"

namespace ingot::jinja {

struct Loc {
  int line = 1;
  int column = 1;
};

enum class ExprKind { literal, name, list, tuple, dict, attr, item, slice, call, filter, test, unary, binary, cond };

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

// kids: literal/name: none; list/tuple: items; dict: key, value, key, value...; attr: object
// (name = attribute); item: object, index; slice: object, start, stop, step (each may be null);
// call: callee, positional..., keyword... (names in `keywords`, the last kids); filter/test:
// input, then arguments as call; unary: operand (name = op); binary: left, right (name = op);
// cond: test, then-value, optional else-value.
struct Expr {
  Expr(ExprKind k, Loc l) : kind(k), loc(l) {}
  ExprKind kind;
  Loc loc;
  std::string name;
  Value value;
  std::vector<ExprPtr> kids;
  std::vector<std::string> keywords;
  bool negated = false;  // `is not`
};

enum class StmtKind { text, output, if_, for_, set, set_attr, set_block, macro, brk, cont, block, filter_block };

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;

struct Stmt {
  Stmt(StmtKind k, Loc l) : kind(k), loc(l) {}
  StmtKind kind;
  Loc loc;
  std::string text;                  // text; set_attr: the attribute; macro: its name
  ExprPtr expr;                      // output, set value, for iterable, filter chains
  ExprPtr filter;                    // for ... if
  std::vector<std::string> targets;  // for/set names; macro parameters
  std::vector<ExprPtr> defaults;     // macro parameters' defaults (null: none)
  std::vector<std::pair<ExprPtr, std::vector<StmtPtr>>> branches;  // if/elif
  std::vector<StmtPtr> body;
  std::vector<StmtPtr> else_body;
};

struct TemplateNode {
  std::vector<StmtPtr> body;
};

StatusOr<std::vector<StmtPtr>> parse_template(std::string_view source, const Options& options);
bool is_filter(const std::string& name);
bool is_test(const std::string& name);

}  // namespace ingot::jinja
