// Where a model keeps its chat template: GGUF `tokenizer.chat_template` (and llama.cpp's named
// `tokenizer.chat_template.NAME` keys), or a Hugging Face folder's tokenizer_config.json
// `chat_template` (a string, or a list of {"name", "template"}), or chat_template.jinja next to
// it; with the BOS and EOS token texts of the model's tokenizer.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace ingot {

struct ModelChatTemplate {
  std::string source;  // the default template ("" when the model has none)
  std::vector<std::pair<std::string, std::string>> named;  // every named template (with "default")
  std::string bos_token, eos_token;  // "" when the tokenizer has none
  // The template Hugging Face picks: "tool_use" when tools are given and it exists, else the default.
  const std::string& pick(bool with_tools) const;
};

// MODEL is a .gguf file or a Hugging Face folder (a tokenizer-only folder is enough). The
// tokenizer is read for bos/eos; a model without a template gives source "".
StatusOr<ModelChatTemplate> read_model_chat_template(const std::string& path);

}  // namespace ingot
