// Renders every case of a JSON file ([{"name", "template", "inputs", "date", "expected" | "error"}],
// written by tests/scripts/chat_template_check.py from Python's jinja2) with Ingot's engine and
// reports each difference. Exit 0 when every case agrees byte for byte, and fails where jinja2
// raises (with the same message when the template called raise_exception: "raise").
#include <cstdio>
#include <fstream>
#include <sstream>

#include "runtime/chat_template.h"

using namespace ingot;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: chat_template_check CASES.json\n");
    return 2;
  }
  std::ifstream f(argv[1], std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  auto cases = jinja::Value::from_json(ss.str());
  if (!cases.ok() || !cases->is_list()) {
    std::fprintf(stderr, "%s: %s\n", argv[1], cases.ok() ? "not a list" : cases.message().c_str());
    return 2;
  }
  int failed = 0, rendered = 0, errors = 0;
  for (const auto& c : cases->items()) {
    const std::string name = c.find("name")->as_string();
    auto t = ChatTemplate::parse(c.find("template")->as_string());
    const jinja::Value* expected = c.find("expected");
    if (!t.ok() && !(expected && expected->is_string())) {
      ++errors;  // jinja2 fails too
      continue;
    }
    if (!t.ok()) {
      std::printf("FAIL %s: %s\n", name.c_str(), t.message().c_str());
      ++failed;
      continue;
    }
    ChatInputs in;
    auto inputs_json = c.find("inputs")->to_json();
    if (Status s = chat_inputs_from_json(*inputs_json, in); !s.ok()) {
      std::printf("FAIL %s: inputs: %s\n", name.c_str(), s.message().c_str());
      ++failed;
      continue;
    }
    if (const jinja::Value* d = c.find("date")) {
      auto date = parse_chat_date(d->as_string());
      if (date.ok()) in.date = *date;
    }
    auto out = t->apply(in);
    if (expected && expected->is_string()) {
      ++rendered;
      if (!out.ok()) {
        std::printf("FAIL %s: jinja2 renders, Ingot: %s\n", name.c_str(), out.message().c_str());
        ++failed;
      } else if (*out != expected->as_string()) {
        const std::string& e = expected->as_string();
        size_t i = 0;
        while (i < e.size() && i < out->size() && e[i] == (*out)[i]) ++i;
        std::printf("FAIL %s: differs at byte %zu\n  jinja2: %s\n  Ingot:  %s\n", name.c_str(), i,
                    jinja::Value::string(e.substr(i > 20 ? i - 20 : 0, 60)).repr().c_str(),
                    jinja::Value::string(out->substr(i > 20 ? i - 20 : 0, 60)).repr().c_str());
        ++failed;
      }
    } else {
      ++errors;
      if (out.ok()) {
        std::printf("FAIL %s: jinja2 raises (%s), Ingot renders\n", name.c_str(), c.find("error")->as_string().c_str());
        ++failed;
      } else if (const jinja::Value* raised = c.find("raise");
                 raised && out.message().find("raise_exception: " + raised->as_string()) == std::string::npos) {
        std::printf("FAIL %s: raise_exception(%s) in jinja2, Ingot: %s\n", name.c_str(), raised->as_string().c_str(),
                    out.message().c_str());
        ++failed;
      }
    }
  }
  std::printf("%d cases (%d rendered, %d errors as jinja2's), %d failed\n", rendered + errors, rendered, errors, failed);
  return failed ? 1 : 0;
}
