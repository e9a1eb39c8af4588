// ingot chat: a conversation in the terminal with the bundle's chat template (tools/ingot_chat.cpp).
#pragma once

#include <string>
#include <vector>

namespace ingot {
int cmd_chat(const std::vector<std::string>& args);
}  // namespace ingot
