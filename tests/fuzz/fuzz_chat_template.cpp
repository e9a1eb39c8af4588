// libFuzzer target for the chat-template engine (runtime/jinja*.cpp, runtime/chat_template.cpp):
// any bytes as a template; one that parses is rendered over a fixed conversation with tools.
// Beyond "no crash, no sanitizer report": rendering ends (loop and call budgets) and parsing is
// deterministic (a template that parsed once parses again to the same rendering).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "runtime/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto t = ingot::ChatTemplate::parse(text);
  if (!t.ok()) return 0;
  static const char* kConversation = R"({"messages": [
      {"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi \u00e9"},
      {"role": "assistant", "content": "", "tool_calls": [{"id": "call12345", "type": "function",
        "function": {"name": "f", "arguments": {"a": 1, "b": [1.5, null, true]}}}]},
      {"role": "tool", "tool_call_id": "call12345", "content": "{\"ok\": 1}"}],
      "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]})";
  ingot::ChatInputs in;
  if (!ingot::chat_inputs_from_json(kConversation, in).ok()) std::abort();
  in.bos_token = "<s>";
  in.eos_token = "</s>";
  in.add_generation_prompt = true;
  in.date = ingot::ChatDate{2024, 7, 26};
  auto first = t->apply(in);
  auto again = ingot::ChatTemplate::parse(text);
  if (!again.ok()) std::abort();
  auto second = again->apply(in);
  if (first.ok() != second.ok() || (first.ok() && *first != *second) || (!first.ok() && first.message() != second.message())) {
    std::fprintf(stderr, "rendering is not deterministic\n");
    std::abort();
  }
  return 0;
}
