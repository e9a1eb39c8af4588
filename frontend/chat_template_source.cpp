#include "frontend/chat_template_source.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "frontend/gguf.h"
#include "frontend/importer.h"

namespace ingot {

const std::string& ModelChatTemplate::pick(bool with_tools) const {
  if (with_tools)
    for (const auto& [n, t] : named)
      if (n == "tool_use") return t;
  return source;
}

StatusOr<ModelChatTemplate> read_model_chat_template(const std::string& path) {
  namespace fs = std::filesystem;
  ModelChatTemplate out;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    std::ifstream tc(dir / "tokenizer_config.json");
    if (tc) {
      auto j = nlohmann::json::parse(tc, nullptr, false);
      if (j.is_discarded() || !j.is_object())
        return Status::Error((dir / "tokenizer_config.json").string() + ": not a JSON object");
      if (j.contains("chat_template")) {
        const auto& t = j["chat_template"];
        if (t.is_string()) {
          out.source = t.get<std::string>();
        } else if (t.is_array()) {
          for (const auto& e : t) {
            if (!e.is_object() || !e.contains("name") || !e["name"].is_string() || !e.contains("template") ||
                !e["template"].is_string())
              return Status::Error((dir / "tokenizer_config.json").string() +
                                   ": chat_template list entries must be {\"name\": ..., \"template\": ...}");
            out.named.emplace_back(e["name"].get<std::string>(), e["template"].get<std::string>());
            if (out.named.back().first == "default") out.source = out.named.back().second;
          }
        } else if (!t.is_null()) {
          return Status::Error((dir / "tokenizer_config.json").string() + ": chat_template is neither a string nor a list");
        }
      }
    }
    if (out.source.empty()) {  // newer transformers keep it in its own file
      std::ifstream jf(dir / "chat_template.jinja", std::ios::binary);
      if (jf) {
        std::stringstream ss;
        ss << jf.rdbuf();
        out.source = ss.str();
      }
    }
    if (out.source.empty()) {  // a multimodal model's processor saves {"chat_template": ...}
      std::ifstream pf(dir / "chat_template.json");
      if (pf) {
        auto j = nlohmann::json::parse(pf, nullptr, false);
        const std::string where = (dir / "chat_template.json").string();
        if (j.is_discarded() || !j.is_object()) return Status::Error(where + ": not a JSON object");
        if (j.contains("chat_template") && !j["chat_template"].is_null()) {
          if (!j["chat_template"].is_string()) return Status::Error(where + ": chat_template is not a string");
          out.source = j["chat_template"].get<std::string>();
        }
      }
    }
  } else {
    auto gguf = GgufFile::open(path);
    if (!gguf.ok()) return gguf.status();
    if (const GgufValue* v = (*gguf)->find("tokenizer.chat_template"))
      if (auto t = v->as_string(); t.ok()) out.source = *t;
    if (const GgufValue* v = (*gguf)->find("tokenizer.chat_template.tool_use"))
      if (auto t = v->as_string(); t.ok()) out.named.emplace_back("tool_use", *t);
  }
  auto spec = import_tokenizer(path);
  if (spec.ok()) {
    auto text = [&](int32_t id) {
      return id >= 0 && static_cast<size_t>(id) < spec->tokens.size() ? spec->tokens[static_cast<size_t>(id)] : std::string();
    };
    out.bos_token = text(spec->bos);
    out.eos_token = text(spec->eos);
  } else if (out.source.empty()) {
    return spec.status();
  }
  return out;
}

}  // namespace ingot
