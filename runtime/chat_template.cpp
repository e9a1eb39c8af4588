#include "runtime/chat_template.h"

#include <ctime>

namespace ingot {

StatusOr<ChatDate> parse_chat_date(std::string_view text) {
  ChatDate d;
  auto bad = [&] { return Status::Error("bad date '" + std::string(text) + "' (expected YYYY-MM-DD)"); };
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return bad();
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9})
    if (text[i] < '0' || text[i] > '9') return bad();
  d.year = std::stoi(std::string(text.substr(0, 4)));
  d.month = std::stoi(std::string(text.substr(5, 2)));
  d.day = std::stoi(std::string(text.substr(8, 2)));
  static const int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (d.year < 1 || d.month < 1 || d.month > 12 || d.day < 1 || d.day > kDays[d.month - 1]) return bad();
  const bool leap = (d.year % 4 == 0 && d.year % 100 != 0) || d.year % 400 == 0;
  if (d.month == 2 && d.day == 29 && !leap) return bad();
  return d;
}

void add_chat_message(ChatInputs& inputs, const std::string& role, const std::string& content) {
  jinja::Value m = jinja::Value::dict();
  m.set("role", jinja::Value::string(role));
  m.set("content", jinja::Value::string(content));
  if (!inputs.messages.is_list()) inputs.messages = jinja::Value::list();
  inputs.messages.push_back(std::move(m));
}

Status chat_inputs_from_json(std::string_view json, ChatInputs& inputs) {
  INGOT_ASSIGN_OR_RETURN(jinja::Value v, jinja::Value::from_json(json));
  if (v.is_list()) {
    inputs.messages = v;
    return Status::Ok();
  }
  if (!v.is_dict()) return Status::Error("expected a JSON list of messages or an object with \"messages\"");
  const jinja::Value* m = v.find("messages");
  if (!m || !m->is_list()) return Status::Error("the JSON object has no \"messages\" list");
  for (const auto& [k, x] : v.entries()) {
    if (k == "messages") inputs.messages = x;
    else if (k == "tools") inputs.tools = x;
    else if (k == "documents") inputs.documents = x;
    else if (k == "add_generation_prompt") inputs.add_generation_prompt = x.truthy();
    else inputs.extra.set(k, x);
  }
  return Status::Ok();
}

StatusOr<ChatTemplate> ChatTemplate::parse(std::string_view source) {
  auto t = jinja::Template::parse(source, jinja::Options{});
  if (!t.ok()) return t.status().with_context("chat template");
  ChatTemplate c;
  c.template_ = std::move(*t);
  return c;
}

StatusOr<std::string> ChatTemplate::apply(const ChatInputs& in) const {
  using jinja::Value;
  Value ctx = Value::dict();
  ctx.set("messages", in.messages);
  ctx.set("tools", in.tools);
  ctx.set("documents", in.documents);
  ctx.set("add_generation_prompt", Value::boolean(in.add_generation_prompt));
  if (!in.bos_token.empty()) ctx.set("bos_token", Value::string(in.bos_token));
  if (!in.eos_token.empty()) ctx.set("eos_token", Value::string(in.eos_token));
  ctx.set("raise_exception", Value::function("raise_exception", [](const jinja::CallArgs& a) -> StatusOr<Value> {
            std::string msg = a.positional.empty() ? "" : a.positional[0].str();
            return Status::Error("raise_exception: " + msg);
          }));
  const ChatDate date = in.date;
  ctx.set("strftime_now", Value::function("strftime_now", [date](const jinja::CallArgs& a) -> StatusOr<Value> {
            if (a.positional.size() != 1 || !a.positional[0].is_string())
              return Status::Error("strftime_now() takes one format string");
            std::tm tm{};
            if (date.year == 0) {
              std::time_t now = std::time(nullptr);
              localtime_r(&now, &tm);
            } else {
              tm.tm_year = date.year - 1900;
              tm.tm_mon = date.month - 1;
              tm.tm_mday = date.day;
              tm.tm_hour = 0;
              std::time_t t = timegm(&tm);  // fills tm_wday and tm_yday
              gmtime_r(&t, &tm);
            }
            const std::string& fmt = a.positional[0].as_string();
            if (fmt.empty()) return Value::string("");
            std::string buf(fmt.size() * 8 + 64, '\0');
            size_t n = std::strftime(buf.data(), buf.size(), fmt.c_str(), &tm);
            if (n == 0) return Status::Error("strftime_now(): the format gives no text or too much");
            buf.resize(n);
            return Value::string(std::move(buf));
          }));
  if (in.extra.is_dict())
    for (const auto& [k, v] : in.extra.entries()) ctx.set(k, v);
  auto out = template_.render(ctx);
  if (!out.ok()) return out.status().with_context("chat template");
  return out;
}

}  // namespace ingot
