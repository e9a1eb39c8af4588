// Batched calls (runtime/engine.h, Batcher): several sessions' tokens run as one call of the
// schedule must leave every session bit for bit as if it had run alone, on every architecture
// the builder makes (RoPE layouts, biases, QK norms, soft-capping, sliding windows, LongRoPE);
// logits for several rows of one call equal those of decoding the same tokens one at a time (a
// speculative verification relies on it); errors change no session.
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "runtime/engine.h"
#include "tests/common/bundle_cache.h"
#include "tests/common/files.h"
#include "tests/common/models.h"
#include "tests/common/status.h"

namespace ingot {
namespace {

// The logits after each step of a session run alone: the prompt, then each of `then` decoded.
std::vector<std::vector<float>> alone(const Engine& e, const std::vector<int32_t>& prompt, const std::vector<int32_t>& then) {
  std::string error;
  auto s = take(Session::create(e, 1), &error);
  EXPECT_TRUE(s) << error;
  std::vector<std::vector<float>> out;
  EXPECT_TRUE(succeeded(s->prefill(prompt), &error)) << error;
  out.emplace_back(s->logits().begin(), s->logits().end());
  for (int32_t id : then) {
    EXPECT_TRUE(succeeded(s->decode(id), &error)) << error;
    out.emplace_back(s->logits().begin(), s->logits().end());
  }
  return out;
}

bool same_bits(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class BatcherTest : public ::testing::TestWithParam<std::string> {
 protected:
  // A bundle for the parameter: the real stories260K, or a small synthesized model of an arch.
  std::string bundle_for(const std::string& arch) {
    if (bundles_.count(arch)) return bundles_[arch];
    std::string gguf;
    if (arch == "stories260K") {
      gguf = testing::models_dir() + "/stories260K.gguf";
      if (!testing::path_exists(gguf)) return "";
    } else {
      gguf = testing::cached_synth(INGOT_INGOTC, "--arch " + arch + " --dims vocab=300,dim=64,layers=2,heads=4,kv=2,ffn=96,ctx=256 --type q8_0");
      if (gguf.empty()) return "";
    }
    return bundles_[arch] = testing::cached_bundle(INGOT_INGOTC, gguf, "--max-batch 64 --max-context 256");
  }
  static inline std::map<std::string, std::string> bundles_;
};

TEST_P(BatcherTest, SessionsBatchedTogetherMatchEachAlone) {
  const std::string bundle = bundle_for(GetParam());
  if (bundle.empty()) {
    INGOT_MODEL_PATH(path, "stories260K.gguf");
  }
  std::string error;
  auto engine = take(Engine::load(bundle), &error);
  ASSERT_TRUE(engine) << error;
  ASSERT_EQ(engine->not_batchable(), "");
  // Several logits rows through the tail at once; Gemma 2's final soft-capping runs on generic
  // kernels whose [1, vocab] tensors are not rows, so its tail runs once per row.
  EXPECT_EQ(engine->tail_batchable(), GetParam() != "gemma2");
  const int32_t V = static_cast<int32_t>(engine->vocab());
  // Three prompts of odd lengths, and the tokens each then decodes (any ids will do).
  const std::vector<std::vector<int32_t>> prompts = {{1, 45, 67, 89, 23}, {1, 200 % V, 13, 14, 15, 16, 17, 18, 19}, {1, 7, 8}};
  const std::vector<std::vector<int32_t>> thens = {{30, 31, 32, 33, 34, 35}, {40, 41, 42, 43, 44, 45}, {50, 51, 52, 53, 54, 55}};
  std::vector<std::vector<std::vector<float>>> want;
  for (size_t i = 0; i < prompts.size(); ++i) want.push_back(alone(*engine, prompts[i], thens[i]));

  auto batcher = take(Batcher::create(*engine, 2), &error);
  ASSERT_TRUE(batcher) << error;
  std::vector<std::unique_ptr<Session>> s;
  for (int i = 0; i < 3; ++i) {
    s.push_back(take(Session::create(*engine, 0), &error));
    ASSERT_TRUE(s.back()) << error;
  }
  // Step 0: sessions 0 and 1 prefill together. Session 2 joins at step 2 with its prompt while
  // the others decode (continuous batching); then all three decode together.
  size_t next[3] = {0, 0, 0};  // how many of `thens` each has decoded
  bool started[3] = {false, false, false};
  for (int step = 0; step < 12; ++step) {
    std::vector<BatchPart> parts;
    for (int i = 0; i < 3; ++i) {
      if (i == 2 && step < 2) continue;
      if (!started[i]) {
        parts.push_back({s[i].get(), prompts[i], 1});
      } else if (next[i] < thens[i].size()) {
        parts.push_back({s[i].get(), std::span<const int32_t>(&thens[i][next[i]], 1), 1});
      }
    }
    if (parts.empty()) break;
    ASSERT_TRUE(succeeded(batcher->run(parts), &error)) << error;
    for (const BatchPart& p : parts) {
      const int i = static_cast<int>(std::find_if(s.begin(), s.end(), [&](auto& x) { return x.get() == p.session; }) - s.begin());
      const size_t k = started[i] ? ++next[i] : 0;
      started[i] = true;
      EXPECT_TRUE(same_bits(s[i]->logits(), want[i][k])) << GetParam() << ": session " << i << " step " << k;
    }
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(s[i]->position(), static_cast<int64_t>(prompts[i].size() + thens[i].size()));
  }
}

TEST_P(BatcherTest, LogitsOfSeveralRowsEqualDecodingOneAtATime) {
  const std::string bundle = bundle_for(GetParam());
  if (bundle.empty()) {
    INGOT_MODEL_PATH(path, "stories260K.gguf");
  }
  std::string error;
  auto engine = take(Engine::load(bundle), &error);
  ASSERT_TRUE(engine) << error;
  const std::vector<int32_t> prompt = {1, 45, 67, 89, 23, 11, 12};
  const std::vector<int32_t> drafted = {30, 31, 32, 33, 34};
  const auto want = alone(*engine, prompt, drafted);
  auto s = take(Session::create(*engine, 2), &error);
  auto other = take(Session::create(*engine, 0), &error);
  auto batcher = take(Batcher::create(*engine, 2), &error);
  ASSERT_TRUE(s && other && batcher) << error;
  ASSERT_TRUE(succeeded(s->prefill(prompt), &error)) << error;
  // The drafted tokens verified in one call beside another session's prompt.
  std::vector<int32_t> verify = {prompt.back()};
  const std::vector<int32_t> other_prompt = {1, 5, 6, 7};
  ASSERT_TRUE(succeeded(s->truncate(static_cast<int64_t>(prompt.size()) - 1), &error)) << error;
  verify.insert(verify.end(), drafted.begin(), drafted.end());
  const BatchPart parts[2] = {{other.get(), other_prompt, 1}, {s.get(), verify, static_cast<int32_t>(verify.size())}};
  ASSERT_TRUE(succeeded(batcher->run(parts), &error)) << error;
  const size_t V = static_cast<size_t>(engine->vocab());
  ASSERT_EQ(s->chunk_logits().size(), verify.size() * V);
  for (size_t r = 0; r < verify.size(); ++r)
    EXPECT_TRUE(same_bits(s->chunk_logits().subspan(r * V, V), want[r])) << GetParam() << ": row " << r;
  EXPECT_TRUE(same_bits(s->logits(), want.back()));
  // Rolled back past the third drafted token, the session continues as if it had never seen it.
  ASSERT_TRUE(succeeded(s->truncate(static_cast<int64_t>(prompt.size()) + 2), &error)) << error;
  ASSERT_TRUE(succeeded(s->decode(drafted[2]), &error)) << error;
  EXPECT_TRUE(same_bits(s->logits(), want[3]));
}

#ifdef INGOT_SANITIZER_BUILD
// Under the sanitizers three architectures (the batching code does not depend on the builder;
// gemma3 brings sliding windows and per-layer RoPE tables): 20-27 s each and test there on AMD
// Zen 5. The release build runs all seven.
INSTANTIATE_TEST_SUITE_P(Archs, BatcherTest, ::testing::Values("stories260K", "llama3", "gemma3"));
#else
INSTANTIATE_TEST_SUITE_P(Archs, BatcherTest, ::testing::Values("stories260K", "llama3", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"));
#endif

TEST(BatcherErrors, RefusedBatchesChangeNoSession) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  const std::string bundle = testing::cached_bundle(INGOT_INGOTC, model, "--max-batch 8");
  ASSERT_FALSE(bundle.empty());
  std::string error;
  auto engine = take(Engine::load(bundle), &error);
  ASSERT_TRUE(engine) << error;
  auto a = take(Session::create(*engine, 0), &error);
  auto b = take(Session::create(*engine, 0), &error);
  auto batcher = take(Batcher::create(*engine, 1), &error);
  ASSERT_TRUE(a && b && batcher) << error;
  const std::vector<int32_t> five = {1, 2, 3, 4, 5}, bad = {1, 99999};
  auto refused = [&](std::vector<BatchPart> parts, const std::string& why) {
    EXPECT_FALSE(succeeded(batcher->run(parts), &error));
    EXPECT_NE(error.find(why), std::string::npos) << error;
    EXPECT_EQ(a->position(), 0);
    EXPECT_EQ(b->position(), 0);
  };
  refused({{a.get(), five, 1}, {b.get(), five, 1}}, "more than the bundle's --max-batch 8");
  refused({{a.get(), five, 1}, {a.get(), five, 1}}, "appears twice");
  refused({{a.get(), five, 1}, {b.get(), bad, 1}}, "outside the vocabulary");
  refused({{a.get(), five, 6}}, "logit_rows = 6");
  refused({{a.get(), {}, 1}}, "no tokens");
  refused({}, "no sessions");
  EXPECT_FALSE(succeeded(a->prefill(five), &error));
  EXPECT_NE(error.find("run it through a Batcher"), std::string::npos) << error;
  auto other_engine = take(Engine::load(bundle), &error);
  auto c = take(Session::create(*other_engine, 0), &error);
  refused({{c.get(), five, 1}}, "not of this engine");
}

}  // namespace
}  // namespace ingot
