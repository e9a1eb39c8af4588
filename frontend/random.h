// A small deterministic random generator: the same numbers on every platform and compiler
// (std::normal_distribution is implementation-defined, so test models cannot use it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ingot {

class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t next_u64();          // splitmix64
  double uniform();             // [0, 1)
  double uniform(double lo, double hi);
  std::vector<float> uniform_f32(std::size_t n, double lo, double hi);

 private:
  uint64_t state_;
};

}  // namespace ingot
