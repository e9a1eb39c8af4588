// Wall-clock helpers shared by the command-line tools.
#pragma once

#include <chrono>

namespace ingot {

// Milliseconds elapsed on the steady clock since `t0`.
inline double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace ingot
