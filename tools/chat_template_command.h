// `ingotc chat-template`, and the chat-template checks of `ingotc compile` (--chat-template).
// The engine is runtime/chat_template.h; reading a model's template is frontend/chat_template_source.h.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"

namespace ingot {

StatusOr<std::string> read_chat_template_file(const std::string& path);
// ok when `source` is empty (no template) or parses; else an error naming `where` and, for a
// model's own template (`given` false), the --chat-template option.
Status check_chat_template(const std::string& source, const std::string& where, bool given);
int cmd_chat_template(const std::vector<std::string>& args);

}  // namespace ingot
