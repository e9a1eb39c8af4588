// The specified f32 arithmetic of ir/float_spec.h: accurate enough to be a spec (exp within 2 ulp,
// attention within f32 rounding of exact math), and what the reference kernels use.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "ir/float_spec.h"

namespace ingot {
namespace {

// Distance in units in the last place between two positive finite floats.
int64_t ulps(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  return std::llabs(static_cast<int64_t>(ia) - ib);
}

TEST(FloatSpec, ExpWithinTwoUlpOnTheClampedRange) {
  int64_t worst = 0;
  for (float x = float_spec::kExpMin; x <= float_spec::kExpMax; x += 0.0137f) {
    const float want = static_cast<float>(std::exp(static_cast<double>(x)));
    const int64_t u = ulps(float_spec::expf(x), want);
    worst = std::max(worst, u);
    ASSERT_LE(u, 2) << "x = " << x;
  }
  EXPECT_EQ(float_spec::expf(0.0f), 1.0f);
  EXPECT_EQ(float_spec::expf(1.0f), static_cast<float>(std::exp(1.0)));
  // Outside the range it clamps (no overflow to inf, no denormals).
  EXPECT_EQ(float_spec::expf(1000.0f), float_spec::expf(float_spec::kExpMax));
  EXPECT_EQ(float_spec::expf(-1000.0f), float_spec::expf(float_spec::kExpMin));
  EXPECT_GT(float_spec::expf(-1000.0f), 0.0f);
  std::printf("worst exp error: %lld ulp\n", static_cast<long long>(worst));
}

// tanh within 4 ulp of the correctly rounded value over the soft-capping range, odd, saturating.
TEST(FloatSpec, TanhWithinFourUlp) {
  int64_t worst = 0;
  for (float x = 1e-6f; x <= 12.0f; x *= 1.0007f) {
    const float want = static_cast<float>(std::tanh(static_cast<double>(x)));
    const int64_t u = ulps(float_spec::tanhf(x), want);
    worst = std::max(worst, u);
    ASSERT_LE(u, 4) << "x = " << x;
    ASSERT_EQ(float_spec::tanhf(-x), -float_spec::tanhf(x)) << "x = " << x;
  }
  EXPECT_EQ(float_spec::tanhf(0.0f), 0.0f);
  EXPECT_EQ(float_spec::tanhf(100.0f), 1.0f);
  EXPECT_EQ(float_spec::tanhf(-1e30f), -1.0f);
  EXPECT_NEAR(float_spec::softcap(120.0f, 50.0f, 1.0f / 50.0f), 50.0 * std::tanh(2.4), 1e-4);
  std::printf("worst tanh error: %lld ulp\n", static_cast<long long>(worst));
}

TEST(FloatSpec, SigmoidAndSum8) {
  EXPECT_EQ(float_spec::sigmoid(0.0f), 0.5f);
  EXPECT_NEAR(float_spec::sigmoid(3.0f), 1.0 / (1.0 + std::exp(-3.0)), 1e-7);
  // The tree's order shows in rounding: 1e8 + 1 - 1e8 loses the 1 only when added in that order.
  const float v[8] = {1e8f, 1.0f, -1e8f, 0, 0, 0, 0, 0};
  EXPECT_EQ(float_spec::sum8(v), ((1e8f + 1.0f) + -1e8f));
  const float w[8] = {1e8f, -1e8f, 1.0f, 0, 0, 0, 0, 0};
  EXPECT_EQ(float_spec::sum8(w), 1.0f);
}

TEST(FloatSpec, Dot8IsADotProduct) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1, 1);
  for (int64_t D : {1, 7, 8, 24, 64, 129}) {
    std::vector<float> a(static_cast<size_t>(D)), b(static_cast<size_t>(D));
    double exact = 0, mag = 0;
    for (int64_t i = 0; i < D; ++i) {
      a[static_cast<size_t>(i)] = u(rng);
      b[static_cast<size_t>(i)] = u(rng);
      exact += static_cast<double>(a[static_cast<size_t>(i)]) * b[static_cast<size_t>(i)];
      mag += std::fabs(static_cast<double>(a[static_cast<size_t>(i)]) * b[static_cast<size_t>(i)]);
    }
    // f32 summation: error below D * eps * sum |a_i b_i|.
    EXPECT_NEAR(float_spec::dot8(a.data(), b.data(), D), exact, static_cast<double>(D) * 6e-8 * mag + 1e-30) << "D = " << D;
  }
}

}  // namespace
}  // namespace ingot
