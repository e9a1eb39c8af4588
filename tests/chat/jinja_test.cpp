// Unit tests of the chat-template engine (runtime/jinja.h, runtime/chat_template.h): each construct
// with its expected text as Python's jinja2 renders it (trim_blocks, lstrip_blocks), and errors.
// The whole-template comparison with jinja2 is the chat_template_jinja2 test.
#include <gtest/gtest.h>

#include "runtime/chat_template.h"
#include "runtime/jinja.h"

namespace ingot::jinja {
namespace {

Value ctx() {
  auto v = Value::from_json(R"({"messages": [{"role": "system", "content": " sys "},
      {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
      "d": {"b": 1, "a": [1, 2.5, "x", null, true]}, "n": 7, "s": "Hello World"})");
  EXPECT_TRUE(v.ok());
  return *v;
}

std::string render(const std::string& src, const Value& context = ctx()) {
  auto t = Template::parse(src);
  if (!t.ok()) return "PARSE ERROR: " + t.message();
  auto r = t->render(context);
  if (!r.ok()) return "RENDER ERROR: " + r.message();
  return *r;
}

TEST(Jinja, OutputAndLiterals) {
  EXPECT_EQ(render("a{{ 1 }}b{{ 'x' ~ \"y\" }}{{ none }}{{ true }}{{ 2.0 }}{{ 1e20 }}{{ 10/4 }}"),
            "a1bxyNoneTrue2.01e+202.5");
  EXPECT_EQ(render("{{ [1, 'a', none, {'k': \"it's\"}] }}{{ (1, 2) }}"), "[1, 'a', None, {'k': \"it's\"}](1, 2)");
  EXPECT_EQ(render("{{ d }}"), "{'b': 1, 'a': [1, 2.5, 'x', None, True]}");  // insertion order
  EXPECT_EQ(render("{{ 'a\\nb\\t\\u00e9' }}"), "a\nb\t\xc3\xa9");
}

TEST(Jinja, Comments) { EXPECT_EQ(render("a{# anything {{ here }} #}b"), "ab"); }

TEST(Jinja, WhitespaceControl) {
  EXPECT_EQ(render("a  {{- 'b' -}}  c"), "abc");
  EXPECT_EQ(render("a\n  {%- if true %}b{% endif %}"), "ab");
  // trim_blocks: the newline after a block tag goes; lstrip_blocks: indentation before it goes.
  EXPECT_EQ(render("{% if true %}\n    x\n    {% endif %}\ny"), "    x\ny");
  // `+` keeps both.
  EXPECT_EQ(render("  {%+ if true +%}\nx{% endif %}"), "  \nx");
  // lstrip_blocks does not apply before {{ }} and trim_blocks not after it.
  EXPECT_EQ(render("  {{ 'x' }}\ny"), "  x\ny");
  // Not at the start of a line: nothing stripped.
  EXPECT_EQ(render("a  {% if true %}b{% endif %}"), "a  b");
  // One trailing newline of the template is dropped (keep_trailing_newline=False).
  EXPECT_EQ(render("x\n"), "x");
  EXPECT_EQ(render("x\n\n"), "x\n");
  EXPECT_EQ(render("{# c #}\nx"), "x");
}

TEST(Jinja, Conditionals) {
  EXPECT_EQ(render("{% if n > 10 %}a{% elif n > 5 %}b{% else %}c{% endif %}"), "b");
  EXPECT_EQ(render("{{ 'y' if n == 7 else 'n' }}{{ 'z' if false }}"), "y");
  EXPECT_EQ(render("{{ 1 == 1.0 }}{{ true == 1 }}{{ '1' == 1 }}{{ [1] == [1.0] }}{{ not 0 }}"), "TrueTrueFalseTrueTrue");
  EXPECT_EQ(render("{{ 0 or 'x' }}{{ 1 and 'y' }}{{ '' and 'z' }}"), "xy");
  EXPECT_EQ(render("{{ 'ell' in s }}{{ 'b' in d }}{{ 3 not in [1, 2] }}{{ 1 < 2 < 3 }}"), "TrueTrueTrueTrue");
}

TEST(Jinja, Loops) {
  EXPECT_EQ(render("{% for m in messages %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}{{ loop.last }}"
                   "{{ loop.length }}{{ m.role[0] }};{% endfor %}"),
            "01TrueFalse3s;12FalseFalse3u;23FalseTrue3a;");
  EXPECT_EQ(render("{% for m in messages if m.role != 'system' %}{{ loop.index }}{{ m.content }}{% endfor %}"), "1hi2yo");
  EXPECT_EQ(render("{% for x in [] %}a{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}"), "b=1;a=[1, 2.5, 'x', None, True];");
  EXPECT_EQ(render("{% for k in d %}{{ k }}{% endfor %}"), "ba");
  EXPECT_EQ(render("{% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}"),
            "02");
  EXPECT_EQ(render("{% for i in range(3) %}{{ loop.cycle('a', 'b') }}{% endfor %}"), "aba");
  // set inside a loop does not leak out of it, and does not carry over iterations (as Jinja2).
  EXPECT_EQ(render("{% set x = 0 %}{% for i in range(3) %}{{ x }}{% set x = i + 5 %}{{ x }},{% endfor %}{{ x }}"),
            "05,06,07,0");
}

TEST(Jinja, SetAndNamespace) {
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ a }}{{ b }}"), "12");
  EXPECT_EQ(render("{% set ns = namespace(found=false, n=0) %}{% for m in messages %}{% if m.role == 'user' %}"
                   "{% set ns.found = true %}{% endif %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.found }}{{ ns.n }}"),
            "True3");
  EXPECT_EQ(render("{% set x %}a{{ 1 }}b{% endset %}[{{ x }}]"), "[a1b]");
  EXPECT_EQ(render("{% set x | upper %}abc{% endset %}{{ x }}"), "ABC");
}

TEST(Jinja, Macros) {
  EXPECT_EQ(render("{% macro m(a, b='2') %}[{{ a }}{{ b }}{{ n }}]{% endmacro %}{{ m(1) }}{{ m(1, b=3) }}"), "[127][137]");
}

TEST(Jinja, IndexingAndSlicing) {
  EXPECT_EQ(render("{{ messages[1:]|length }}{{ messages[-1].content }}{{ s[::-1] }}{{ s[0:5] }}{{ s[-5:] }}"),
            "2yodlroW olleHHelloWorld");
  EXPECT_EQ(render("{{ messages[0]['role'] }}{{ d.a[2] }}{{ d['a'][-1] }}"), "systemxTrue");
  EXPECT_EQ(render("{{ messages[9] is defined }}{{ d.zz is defined }}{{ zz is undefined }}"), "FalseFalseTrue");
}

TEST(Jinja, Tests) {
  EXPECT_EQ(render("{{ s is string }}{{ d is mapping }}{{ d.a is iterable }}{{ n is number }}{{ n is integer }}"
                   "{{ 2.5 is float }}{{ none is none }}{{ n is odd }}{{ n is divisibleby 7 }}{{ s is not string }}"
                   "{{ d.a is sequence }}{{ true is boolean }}{{ 1 is sameas 1 }}{{ 'a' is equalto 'a' }}"),
            "TrueTrueTrueTrueTrueTrueTrueTrueTrueFalseTrueTrueFalseTrue");
}

TEST(Jinja, Arithmetic) {
  EXPECT_EQ(render("{{ 7 // 2 }}{{ -7 // 2 }}{{ -7 % 3 }}{{ 2 ** 10 }}{{ 1 + 2.5 }}{{ 'a' * 3 }}{{ -n }}{{ [1] + [2] }}"),
            "3-4210243.5aaa-7[1, 2]");
  EXPECT_EQ(render("{{ 'a' + 'b' }}{{ 1 ~ 2 }}{{ messages|length - 1 }}"), "ab122");
}

TEST(Jinja, Filters) {
  EXPECT_EQ(render("{{ ' x '|trim }}|{{ s|upper }}|{{ s|lower }}|{{ s|replace('o', '0') }}|{{ s|length }}"),
            "x|HELLO WORLD|hello world|Hell0 W0rld|11");
  EXPECT_EQ(render("{{ d.a|first }}{{ d.a|last }}{{ [1, 2]|join(', ') }}{{ zz|default('dflt') }}{{ ''|default('e', true) }}"),
            "1True1, 2dflte");
  EXPECT_EQ(render("{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|list }}"), "['hi']");
  EXPECT_EQ(render("{{ messages|rejectattr('role', 'equalto', 'user')|map(attribute='role')|join(',') }}"),
            "system,assistant");
  EXPECT_EQ(render("{{ ['a', 'code', 'b']|reject('equalto', 'code')|join }}"), "ab");
  EXPECT_EQ(render("{{ 12|string ~ ('3'|int + 1) }}{{ '4.5'|float }}{{ 'hello world'|capitalize }}{{ 'ab'|list }}"),
            "1244.5Hello world['a', 'b']");
  EXPECT_EQ(render("{{ d|dictsort }}{{ d|items|list|length }}{{ 'a\nb'|indent(2) }}{{ 'x'|safe }}"),
            "[('a', [1, 2.5, 'x', None, True]), ('b', 1)]2a\n  bx");
}

TEST(Jinja, ToJson) {
  EXPECT_EQ(render("{{ d|tojson }}"), R"({"b": 1, "a": [1, 2.5, "x", null, true]})");
  EXPECT_EQ(render("{{ d|tojson(indent=2) }}"), "{\n  \"b\": 1,\n  \"a\": [\n    1,\n    2.5,\n    \"x\",\n    null,\n    true\n  ]\n}");
  // ensure_ascii=False (Hugging Face's), control characters escaped.
  EXPECT_EQ(render("{{ '\u00e9\"\\n'|tojson }}{{ {}|tojson }}{{ []|tojson(indent=4) }}"), "\"\xc3\xa9\\\"\\n\"{}[]");
}

TEST(Jinja, StringMethods) {
  EXPECT_EQ(render("{{ ' a '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '\\nab'.lstrip() }}|{{ 'ab\\n'.rstrip('\\n') }}|"
                   "{{ 'a b  c'.split() }}|{{ 'a</t>b'.split('</t>')[-1] }}|{{ s.startswith('He') }}{{ s.endswith(('x', 'ld')) }}|"
                   "{{ s.upper() }}{{ s.lower() }}{{ 'hello there'.title() }}"),
            "a|a|ab|ab|['a', 'b', 'c']|b|TrueTrue|HELLO WORLDhello worldHello There");
  EXPECT_EQ(render("{{ d.get('b') }}{{ d.get('zz', 5) }}{{ d.get('zz') }}{{ d.keys()|list }}{{ d.values()|list|length }}"),
            "15None['b', 'a']2");
}

TEST(Jinja, Raw) { EXPECT_EQ(render("{% raw %}{{ not evaluated }}{% endraw %}"), "{{ not evaluated }}"); }

TEST(JinjaErrors, ParseErrorsNameLineAndColumn) {
  auto t = Template::parse("a\n{% if x %}\nb");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.message(), "line 2, column 1: 'if' block is never closed (expected 'endif')");
  t = Template::parse("{{ x | nosuchfilter }}");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.message(), "line 1, column 6: unknown filter 'nosuchfilter'");
  t = Template::parse("{{ x is nosuchtest }}");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.message().find("unknown test 'nosuchtest'"), std::string::npos);
  t = Template::parse("x\n  {% endfor %}");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.message(), "line 2, column 3: unexpected 'endfor' (no block to close or continue here)");
  t = Template::parse("{{ 'abc }}");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.message().find("unterminated string"), std::string::npos);
  t = Template::parse("{% frobnicate %}");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.message().find("unknown tag 'frobnicate'"), std::string::npos);
  t = Template::parse("{{ x ");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.message().find("unclosed '{{'"), std::string::npos);
  t = Template::parse("{# never closed");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.message().find("unclosed comment"), std::string::npos);
  t = Template::parse("{% break %}");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.message().find("outside a 'for' loop"), std::string::npos);
  // Deep nesting is an error, not a stack overflow.
  t = Template::parse("{{ " + std::string(10000, '(') + "1" + std::string(10000, ')') + " }}");
  ASSERT_FALSE(t.ok());
}

TEST(JinjaErrors, RenderErrors) {
  EXPECT_EQ(render("\n  {{ zz.a }}"), "RENDER ERROR: line 2, column 8: 'zz' is undefined");
  EXPECT_NE(render("{{ 12|string ~ '3'|int + 1 }}").find("'str' and 'int'"), std::string::npos);  // ~ binds looser than +
  EXPECT_NE(render("{{ 1 + 'a' }}").find("unsupported operand types for +: 'int' and 'str'"), std::string::npos);
  EXPECT_NE(render("{{ 1 // 0 }}").find("division or modulo by zero"), std::string::npos);
  EXPECT_NE(render("{% set d.x = 1 %}").find("non-namespace"), std::string::npos);
  EXPECT_NE(render("{{ zz|tojson }}").find("undefined"), std::string::npos);
  EXPECT_NE(render("{{ messages.append(1) }}").find("cannot modify"), std::string::npos);
  EXPECT_NE(render("{% for i in range(1000000) %}{% endfor %}").find("range too big"), std::string::npos);
  EXPECT_NE(render("{{ 'x' * 1000000000000 }}").find("too large"), std::string::npos);
  EXPECT_NE(render("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").find("nested too deeply"), std::string::npos);
}

TEST(JinjaValues, JsonRoundTripAndPythonPrinting) {
  auto v = Value::from_json(R"({"a": [1, -2.5e-7, 1e16, 0.1, "\u00e9\ud83d\ude00", false]})");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->str(), "{'a': [1, -2.5e-07, 1e+16, 0.1, '\xc3\xa9\xf0\x9f\x98\x80', False]}");
  EXPECT_EQ(*v->to_json(), "{\"a\": [1, -2.5e-07, 1e+16, 0.1, \"\xc3\xa9\xf0\x9f\x98\x80\", false]}");
  EXPECT_EQ(*v->to_json(-1, /*ensure_ascii=*/true), "{\"a\": [1, -2.5e-07, 1e+16, 0.1, \"\\u00e9\\ud83d\\ude00\", false]}");
  EXPECT_FALSE(Value::from_json("[1, ").ok());
  EXPECT_FALSE(Value::from_json("{\"a\" 1}").ok());
}

}  // namespace
}  // namespace ingot::jinja

namespace ingot {
namespace {

TEST(ChatTemplate, RaiseExceptionNamesMessageAndLine) {
  auto t = ChatTemplate::parse("{% if messages[0].role == 'system' %}\n  {{ raise_exception('System role not supported') }}\n{% endif %}");
  ASSERT_TRUE(t.ok());
  ChatInputs in;
  ASSERT_TRUE(chat_inputs_from_json(R"([{"role": "system", "content": "x"}])", in).ok());
  auto r = t->apply(in);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "chat template: line 2, column 21: raise_exception: System role not supported");
}

TEST(ChatTemplate, MessagesFromCode) {
  auto t = ChatTemplate::parse("{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}{{ enable_thinking }}");
  ASSERT_TRUE(t.ok());
  ChatInputs in;
  add_chat_message(in, "system", "s");
  add_chat_message(in, "user", "u \"q\"");
  in.extra.set("enable_thinking", jinja::Value::boolean(false));
  EXPECT_EQ(*t->apply(in), "system:s;user:u \"q\";False");
}

TEST(ChatTemplate, VariablesAndDate) {
  auto t = ChatTemplate::parse(
      "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{{ eos_token }}{% endfor %}"
      "{% if add_generation_prompt %}<assistant>{% endif %}|{{ tools is none }}|{{ strftime_now('%d %b %Y') }}|{{ extra_var }}");
  ASSERT_TRUE(t.ok()) << t.message();
  ChatInputs in;
  ASSERT_TRUE(chat_inputs_from_json(R"({"messages": [{"role": "user", "content": "hi"}], "extra_var": 3})", in).ok());
  in.bos_token = "<s>";
  in.eos_token = "</s>";
  in.add_generation_prompt = true;
  in.date = *parse_chat_date("2024-07-26");
  auto r = t->apply(in);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(*r, "<s><user>hi</s><assistant>|True|26 Jul 2024|3");
  EXPECT_FALSE(parse_chat_date("2023-02-29").ok());
  EXPECT_FALSE(parse_chat_date("2024-7-26").ok());
}

}  // namespace
}  // namespace ingot
