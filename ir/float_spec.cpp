#include "ir/float_spec.h"

#include <array>

#include "ir/element_type.h"

namespace ingot::float_spec {

const float* ggml_gelu_table() {
  // ggml_gelu_f32's constants and operation order; the library compiles with -ffp-contract=off.
  static const std::array<float, 65536>* table = [] {
    auto* t = new std::array<float, 65536>;
    constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
    constexpr float kCoefA = 0.044715f;
    for (uint32_t h = 0; h < 65536; ++h) {
      const float x = f16_to_f32(static_cast<uint16_t>(h));
      const float g = 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kCoefA * x * x)));
      (*t)[h] = f16_to_f32(f32_to_f16(g));
    }
    return t;
  }();
  return table->data();
}

float gelu_ggml_f16(float x) {
  if (x <= -10.0f) return 0.0f;
  if (x >= 10.0f) return x;
  return ggml_gelu_table()[f32_to_f16(x)];
}

}  // namespace ingot::float_spec
