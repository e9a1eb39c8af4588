// The sampler: greedy, each filter on its own, penalties, seeds, and the drawn distribution.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "runtime/sampler.h"

namespace ingot {
namespace {

SamplingParams only_temperature(float t, uint64_t seed = 1) {
  SamplingParams p;
  p.temperature = t;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = seed;
  return p;
}

TEST(Sampler, TemperatureZeroIsArgmaxWithLowestIdOnTies) {
  Sampler s(only_temperature(0));
  std::vector<float> l = {0.1f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(s.sample(l, {}), 1);
  SamplingParams k1 = only_temperature(5.0f);
  k1.top_k = 1;  // top-k 1 is greedy at any temperature
  Sampler s1(k1);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(s1.sample(l, {}), 1);
}

TEST(Sampler, GreedyWithoutPenaltiesPicksWhatTheGeneralPathPicks) {
  // Without penalties the greedy pick reads the logits directly; a presence penalty with no
  // history changes no logit but takes the general path (pairs, min_element): both must agree,
  // ties to the lowest id and NaNs never chosen over an earlier value (a NaN first stays first).
  const float nan = std::nanf("");
  const std::vector<std::vector<float>> cases = {
      {0.1f, 2.0f, -1.0f, 2.0f}, {nan, 3.0f, 1.0f},    {1.0f, nan, 3.0f, 3.0f}, {-INFINITY, -INFINITY},
      {5.0f},                    {2.0f, INFINITY, nan}, {-1.0f, -0.5f, -0.5f, -2.0f}};
  for (const std::vector<float>& l : cases) {
    Sampler fast(only_temperature(0));
    SamplingParams p = only_temperature(0);
    p.presence_penalty = 1.0f;
    Sampler general(p);
    EXPECT_EQ(fast.sample(l, {}), general.sample(l, {})) << ::testing::PrintToString(l);
  }
  Sampler fast(only_temperature(0));
  EXPECT_EQ(fast.sample(std::vector<float>{nan, 3.0f, 1.0f}, {}), 0);
  EXPECT_EQ(fast.sample(std::vector<float>{1.0f, nan, 3.0f, 3.0f}, {}), 2);
}

TEST(Sampler, SameSeedSameSequenceDifferentSeedDifferentSequence) {
  std::vector<float> l(50);
  for (size_t i = 0; i < l.size(); ++i) l[i] = std::sin(static_cast<float>(i));
  auto draw = [&](uint64_t seed) {
    Sampler s(only_temperature(1.5f, seed));
    std::vector<int32_t> ids;
    for (int i = 0; i < 40; ++i) ids.push_back(s.sample(l, {}));
    return ids;
  };
  EXPECT_EQ(draw(7), draw(7));
  EXPECT_NE(draw(7), draw(8));
}

TEST(Sampler, DrawsFollowTheSoftmaxAtTemperature) {
  // logits log(1), log(2), log(3), log(4) at T = 1: p = 0.1, 0.2, 0.3, 0.4. At T = 0.5 the
  // probabilities go as squares: 1, 4, 9, 16 over 30.
  std::vector<float> l = {0.0f, std::log(2.0f), std::log(3.0f), std::log(4.0f)};
  for (float t : {1.0f, 0.5f}) {
    Sampler s(only_temperature(t, 42));
    std::map<int32_t, int> count;
    const int n = 40000;
    for (int i = 0; i < n; ++i) count[s.sample(l, {})]++;
    double norm = 0;
    for (int k = 1; k <= 4; ++k) norm += std::pow(k, 1 / t);
    for (int k = 1; k <= 4; ++k) {
      const double expected = std::pow(k, 1 / t) / norm;
      // 5 standard deviations of a binomial proportion.
      EXPECT_NEAR(count[k - 1] / double(n), expected, 5 * std::sqrt(expected * (1 - expected) / n)) << "T " << t << " id " << k - 1;
    }
  }
}

TEST(Sampler, TopKTopPAndMinPCut) {
  std::vector<float> l = {std::log(0.5f), std::log(0.25f), std::log(0.15f), std::log(0.10f)};
  auto support = [&](SamplingParams p) {
    Sampler s(p);
    std::map<int32_t, int> seen;
    for (int i = 0; i < 3000; ++i) seen[s.sample(l, {})]++;
    return seen.size();
  };
  SamplingParams k2 = only_temperature(1.0f);
  k2.top_k = 2;
  EXPECT_EQ(support(k2), 2u);
  SamplingParams p = only_temperature(1.0f);
  p.top_p = 0.7f;  // 0.5 + 0.25 reaches 0.7: two tokens
  EXPECT_EQ(support(p), 2u);
  p.top_p = 0.8f;  // needs the third
  EXPECT_EQ(support(p), 3u);
  SamplingParams m = only_temperature(1.0f);
  m.min_p = 0.28f;  // keep p >= 0.14: ids 0, 1, 2
  EXPECT_EQ(support(m), 3u);
  m.min_p = 0.6f;  // keep p >= 0.3: id 0 only
  EXPECT_EQ(support(m), 1u);
}

TEST(Sampler, PenaltiesChangeTheGreedyPick) {
  std::vector<float> l = {3.0f, 2.0f, -1.0f};
  SamplingParams p = only_temperature(0);
  p.repeat_penalty = 2.0f;  // 3 -> 1.5 < 2
  Sampler s(p);
  std::vector<int32_t> hist = {0, 0, 0};
  EXPECT_EQ(s.sample(l, hist), 1);
  p.repeat_penalty = 1.0f;
  p.presence_penalty = 0.5f;  // 3 - 0.5 = 2.5 > 2: still 0
  EXPECT_EQ(Sampler(p).sample(l, hist), 0);
  p.presence_penalty = 1.5f;  // 1.5 < 2
  EXPECT_EQ(Sampler(p).sample(l, hist), 1);
  // Outside the window the history does not count.
  p.repeat_last_n = 1;
  std::vector<int32_t> old = {0, 2};
  EXPECT_EQ(Sampler(p).sample(l, old), 0);
  // A negative logit is multiplied: the penalized id 2 falls further.
  SamplingParams q = only_temperature(0);
  q.repeat_penalty = 10.0f;
  std::vector<float> neg = {-0.5f, -1.0f};
  std::vector<int32_t> h0 = {0};
  EXPECT_EQ(Sampler(q).sample(neg, h0), 1);
}

TEST(Sampler, ValidateNamesTheBadParameter) {
  SamplingParams p;
  EXPECT_EQ(p.validate(), "");
  p.top_p = 0;
  EXPECT_NE(p.validate().find("top-p"), std::string::npos);
  p = SamplingParams{};
  p.temperature = -1;
  EXPECT_NE(p.validate().find("temperature"), std::string::npos);
  p = SamplingParams{};
  p.repeat_penalty = 0;
  EXPECT_NE(p.validate().find("repeat penalty"), std::string::npos);
}

}  // namespace
}  // namespace ingot
