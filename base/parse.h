// Range-checked parsing of command-line numbers: the whole text must be the number, integers are
// parsed as integers (never through a float, so no out-of-range float-to-int conversion), and a
// value outside [min, max] is an error naming the option, the range and the text.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>

#include "base/status.h"

namespace ingot {

// "OPTION needs a whole number from MIN to MAX, got 'TEXT'" unless TEXT is one.
inline StatusOr<int64_t> parse_int(std::string_view option, std::string_view text, int64_t min, int64_t max) {
  auto error = [&] {
    return Status::Error(std::string(option) + " needs a whole number from " + std::to_string(min) + " to " +
                         std::to_string(max) + ", got '" + std::string(text) + "'");
  };
  std::string_view t = text;
  if (!t.empty() && t[0] == '+') t.remove_prefix(1);
  int64_t v = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc() || end != t.data() + t.size() || v < min || v > max) return error();
  return v;
}

// The full uint64 range (seeds): "OPTION needs a whole number from 0 to 18446744073709551615".
inline StatusOr<uint64_t> parse_uint64(std::string_view option, std::string_view text) {
  std::string_view t = text;
  if (!t.empty() && t[0] == '+') t.remove_prefix(1);
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc() || end != t.data() + t.size())
    return Status::Error(std::string(option) + " needs a whole number from 0 to " +
                         std::to_string(std::numeric_limits<uint64_t>::max()) + ", got '" + std::string(text) + "'");
  return v;
}

// A finite number in [min, max] ("1e-3", "0.5"): "OPTION needs a number from MIN to MAX, got 'TEXT'".
inline StatusOr<double> parse_double(std::string_view option, std::string_view text, double min, double max) {
  const std::string s(text);
  char* end = nullptr;
  const double v = s.empty() ? 0.0 : std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v) || v < min || v > max) {
    auto show = [](double d) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%g", d);
      return std::string(buf);
    };
    return Status::Error(std::string(option) + " needs a number from " + show(min) + " to " + show(max) + ", got '" + s + "'");
  }
  return v;
}

}  // namespace ingot
