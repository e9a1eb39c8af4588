// Chat templates as Hugging Face applies them: a Jinja template (runtime/jinja.h) rendered with
// trim_blocks and lstrip_blocks, the variables `messages`, `tools`, `documents`,
// `add_generation_prompt`, `bos_token`, `eos_token` (and any extra ones), `raise_exception(msg)`
// and `strftime_now(fmt)`; `tojson` as transformers' (ensure_ascii=False, indent=). See docs/chat.md.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"
#include "runtime/jinja.h"

namespace ingot {

struct ChatDate {
  int year = 0, month = 0, day = 0;  // 0: today (local time), as Python's datetime.now()
};

// Parses "YYYY-MM-DD" (a valid calendar date).
StatusOr<ChatDate> parse_chat_date(std::string_view text);

struct ChatInputs {
  jinja::Value messages = jinja::Value::list();  // [{"role": ..., "content": ...}, ...]
  jinja::Value tools = jinja::Value::none();     // as transformers: None when not given
  jinja::Value documents = jinja::Value::none();
  bool add_generation_prompt = false;
  std::string bos_token, eos_token;  // "" leaves the variable undefined (a model without one)
  jinja::Value extra = jinja::Value::dict();  // more variables (enable_thinking, ...)
  ChatDate date;
};

// Appends {"role": role, "content": content} to inputs.messages.
void add_chat_message(ChatInputs& inputs, const std::string& role, const std::string& content);

// Reads OpenAI-style input: a JSON list of messages, or an object with "messages" and optionally
// "tools", "documents" and any other variables (which go to `extra`).
Status chat_inputs_from_json(std::string_view json, ChatInputs& inputs);

class ChatTemplate {
 public:
  // Errors name the template's line and column.
  static StatusOr<ChatTemplate> parse(std::string_view source);
  StatusOr<std::string> apply(const ChatInputs& inputs) const;

 private:
  jinja::Template template_;
};

}  // namespace ingot
