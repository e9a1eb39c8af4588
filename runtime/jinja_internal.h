// Helpers shared by the template engine's files (runtime/jinja*.cpp); not a public interface.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ingot::jinja {

std::string python_float(double d);             // Python's repr(float)
std::string python_repr_string(const std::string& s);
std::vector<uint32_t> to_codepoints(std::string_view s);
std::string from_codepoints(const std::vector<uint32_t>& cps, size_t begin, size_t end);
void append_utf8(std::string& out, uint32_t cp);
size_t utf8_length(std::string_view s);

}  // namespace ingot::jinja
