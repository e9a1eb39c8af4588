// A small Jinja2-compatible template engine: what Hugging Face chat templates use, rendered byte
// for byte as Python's jinja2 renders them (docs/chat.md lists what is supported and what is
// refused). Values follow Python's semantics where a template can observe them: truthiness,
// `==` across int/float/bool, int vs float printing, dict insertion order, str() and repr().
//
// Parsing checks the whole template (syntax, block nesting, filter and test names) and reports
// the first problem with its line and column; rendering reports errors the same way (undefined
// attributes, type errors, raise_exception). Nothing throws.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace ingot::jinja {

class Value;
struct ListData;
struct DictData;
struct CallArgs;
using Function = std::function<StatusOr<Value>(const CallArgs&)>;

class Value {
 public:
  enum class Kind { undefined, none, boolean, integer, floating, string, list, dict, function };

  Value() = default;  // undefined
  static Value undefined(std::string what = "") {
    Value v;
    v.str_ = std::move(what);
    return v;
  }
  static Value none() { return Value(Kind::none); }
  static Value boolean(bool b) {
    Value v(Kind::boolean);
    v.int_ = b;
    return v;
  }
  static Value integer(int64_t i) {
    Value v(Kind::integer);
    v.int_ = i;
    return v;
  }
  static Value floating(double d) {
    Value v(Kind::floating);
    v.float_ = d;
    return v;
  }
  static Value string(std::string s) {
    Value v(Kind::string);
    v.str_ = std::move(s);
    return v;
  }
  static Value list(std::vector<Value> items = {}, bool tuple = false);
  static Value dict();       // empty, insertion-ordered, string keys
  static Value namespace_();  // a dict that `{% set ns.x = ... %}` may change
  static Value function(std::string name, Function fn);
  // Parses JSON text (objects keep their key order; integers stay integers).
  static StatusOr<Value> from_json(std::string_view text);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::undefined; }
  bool is_none() const { return kind_ == Kind::none; }
  bool is_string() const { return kind_ == Kind::string; }
  bool is_list() const { return kind_ == Kind::list; }
  bool is_dict() const { return kind_ == Kind::dict; }
  bool is_number() const { return kind_ == Kind::integer || kind_ == Kind::floating || kind_ == Kind::boolean; }
  bool as_bool() const { return int_ != 0; }
  int64_t as_int() const { return int_; }
  double as_float() const { return kind_ == Kind::floating ? float_ : static_cast<double>(int_); }
  const std::string& as_string() const { return str_; }  // also the undefined value's description
  bool is_tuple() const;
  bool is_namespace() const;
  const std::vector<Value>& items() const;  // list
  const std::vector<std::pair<std::string, Value>>& entries() const;  // dict
  const Value* find(std::string_view key) const;  // dict; nullptr when absent
  void set(const std::string& key, Value v);  // dict: replaces or appends (the dict is shared)
  void push_back(Value v);  // list under construction
  void clear();             // list or dict: no items (breaks reference cycles through namespaces)
  const Function& function() const;
  const std::string& function_name() const { return str_; }

  bool truthy() const;
  // Python's str(): None, True, 1.0, ['a', 1], {'k': 'v'}; undefined is "".
  std::string str() const;
  // Python's repr() (strings quoted as Python quotes them).
  std::string repr() const;
  // Python's json.dumps(value, ensure_ascii, indent): indent < 0 is single-line (", " and ": ").
  StatusOr<std::string> to_json(int indent = -1, bool ensure_ascii = false, bool sort_keys = false) const;

 private:
  explicit Value(Kind k) : kind_(k) {}
  Kind kind_ = Kind::undefined;
  int64_t int_ = 0;
  double float_ = 0;
  std::string str_;
  std::shared_ptr<ListData> list_;
  std::shared_ptr<DictData> dict_;
  std::shared_ptr<Function> fn_;
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

// Python's == (1 == 1.0 == True, lists and dicts by content).
bool equals(const Value& a, const Value& b);

struct Options {
  bool trim_blocks = true;    // Hugging Face's settings
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

struct TemplateNode;

class Template {
 public:
  // Parses the whole template; errors name the line and column ("line 3, column 7: ...").
  static StatusOr<Template> parse(std::string_view source, Options options = {});
  // Renders with `context` (a dict: the template's variables). Functions in the context (such as
  // raise_exception) are called with the template's arguments.
  StatusOr<std::string> render(const Value& context) const;

 private:
  std::shared_ptr<const TemplateNode> root_;
};

}  // namespace ingot::jinja
