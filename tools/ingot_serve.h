// ingot serve: an OpenAI-compatible HTTP server (cpp-httplib) over runtime/serve_scheduler.h.
#pragma once

#include <string>
#include <vector>

namespace ingot {
int cmd_serve(const std::vector<std::string>& args);
}  // namespace ingot
