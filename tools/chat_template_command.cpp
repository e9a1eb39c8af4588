#include "tools/chat_template_command.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "frontend/chat_template_source.h"
#include "runtime/bundle.h"
#include "runtime/bundle_tokenizer.h"
#include "runtime/chat_template.h"
#include "tools/ingotc_cli.h"

namespace ingot {

namespace {

StatusOr<std::string> read_text(const std::string& path) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
    return ss.str();
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::Error(StatusCode::io, path + ": cannot open");
  ss << f.rdbuf();
  if (f.bad()) return Status::Error(StatusCode::io, path + ": read error");
  return ss.str();
}

bool is_bundle(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[5] = {};
  f.read(magic, 5);
  return f.gcount() == 5 && std::string(magic, 5) == "INGOT";  // runtime/bundle_format.h kMagic "INGOTBND"
}

}  // namespace

StatusOr<std::string> read_chat_template_file(const std::string& path) { return read_text(path); }

Status check_chat_template(const std::string& source, const std::string& where, bool given) {
  if (source.empty()) return Status::Ok();
  auto t = ChatTemplate::parse(source);
  if (t.ok()) return Status::Ok();
  std::string msg = where + ": Ingot's template engine cannot parse this " +
                    std::string(given ? "chat template" : "model's chat template") + ": " + t.message();
  if (!given) msg += " (supply a template with --chat-template FILE; docs/chat.md lists what the engine supports)";
  return Status::Error(t.code(), msg);
}

int cmd_chat_template(const std::vector<std::string>& args) {
  std::string model, messages_file, template_file, date_text;
  bool add_generation_prompt = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string error;
    if (args[i] == "--add-generation-prompt") {
      add_generation_prompt = true;
    } else if (cli::option_value(args, i, "--messages", &messages_file, &error) ||
               cli::option_value(args, i, "--template", &template_file, &error) ||
               cli::option_value(args, i, "--date", &date_text, &error)) {
      if (!error.empty()) return cli::usage_error("chat-template: " + error);
    } else if (args[i].size() > 1 && args[i][0] == '-') {
      return cli::usage_error("chat-template: unknown option '" + args[i] + "'");
    } else if (model.empty()) {
      model = args[i];
    } else {
      return cli::usage_error("chat-template: more than one model given");
    }
  }
  if (model.empty() && template_file.empty()) return cli::usage_error("chat-template: no model given");
  if (messages_file.empty()) return cli::usage_error("chat-template: --messages FILE.json is required");

  ChatInputs in;
  in.add_generation_prompt = add_generation_prompt;
  if (!date_text.empty()) {
    auto d = parse_chat_date(date_text);
    if (!d.ok()) return cli::fail(d.status().with_context("--date"));
    in.date = *d;
  }
  auto json = read_text(messages_file);
  if (!json.ok()) return cli::fail(json.status());
  if (Status s = chat_inputs_from_json(*json, in); !s.ok()) return cli::fail(s.with_context(messages_file));
  if (add_generation_prompt) in.add_generation_prompt = true;

  std::string source, where = template_file;
  if (!model.empty()) {
    if (is_bundle(model)) {
      auto b = Bundle::open(model, BundleOpenOptions{.check_cpu = false, .tier = {}});
      if (!b.ok()) return cli::fail(b.status());
      source = (*b)->manifest().chat_template();
      TokenizerSpec spec = tokenizer_from_proto((*b)->manifest().tokenizer());
      auto text = [&](int32_t id) {
        return id >= 0 && static_cast<size_t>(id) < spec.tokens.size() ? spec.tokens[static_cast<size_t>(id)] : std::string();
      };
      in.bos_token = text(spec.bos);
      in.eos_token = text(spec.eos);
    } else {
      auto m = read_model_chat_template(model);
      if (!m.ok()) return cli::fail(m.status());
      source = m->pick(!in.tools.is_none());
      in.bos_token = m->bos_token;
      in.eos_token = m->eos_token;
    }
    if (where.empty()) where = model;
  }
  if (!template_file.empty()) {
    auto t = read_text(template_file);
    if (!t.ok()) return cli::fail(t.status());
    source = *t;
  }
  if (source.empty())
    return cli::fail(Status::Error(model + ": the model has no chat template (give one with --template FILE)"));
  auto t = ChatTemplate::parse(source);
  if (!t.ok()) return cli::fail(t.status().with_context(where));
  auto out = t->apply(in);
  if (!out.ok()) return cli::fail(out.status().with_context(where));
  std::fwrite(out->data(), 1, out->size(), stdout);
  return 0;
}

}  // namespace ingot
