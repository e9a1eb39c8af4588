// The serve scheduler (runtime/serve_scheduler.h) without HTTP: requests decoded together end
// exactly as each alone (Session::generate, greedy), with prompts longer than a call's max_batch
// spread over steps; prompt-prefix reuse; the bounded queue; cancellation; the context cap.
// And the pieces it streams with (runtime/text_stream.h) and the frequency penalty of the sampler.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "runtime/serve_scheduler.h"
#include "runtime/text_stream.h"
#include "tests/common/bundle_cache.h"
#include "tests/common/files.h"
#include "tests/common/models.h"
#include "tests/common/status.h"

namespace ingot {
namespace {

TEST(TextStreamTest, StopStringsAndUnfinishedCharactersAreHeldBack) {
  size_t hold = 0;
  EXPECT_EQ(find_stop("Hello wor", {"world"}, &hold), std::string::npos);
  EXPECT_EQ(hold, 3u);  // "wor" may still become "world"
  EXPECT_EQ(find_stop("Hello world!", {"world", "lo"}, &hold), 3u);
  EXPECT_EQ(find_stop("abc", {}, &hold), std::string::npos);
  EXPECT_EQ(hold, 0u);
  EXPECT_EQ(utf8_incomplete_tail("abc"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("a\xC3"), 1u);            // é's first byte
  EXPECT_EQ(utf8_incomplete_tail("a\xC3\xA9"), 0u);        // é complete
  EXPECT_EQ(utf8_incomplete_tail("\xE2\x82"), 2u);         // € missing its last byte
  EXPECT_EQ(utf8_incomplete_tail("\xF0\x9F\x98"), 3u);     // an emoji missing its last byte
  EXPECT_EQ(utf8_incomplete_tail("\xF0\x9F\x98\x80"), 0u);
}

TEST(SamplerTest, FrequencyPenaltyCountsOccurrences) {
  // Token 0 leads token 1 by 0.5; a penalty of 0.3 per occurrence overtakes it at two.
  const std::vector<float> logits = {1.5f, 1.0f, 0.0f};
  SamplingParams p;
  p.temperature = 0;
  p.frequency_penalty = 0.3f;
  Sampler s(p);
  EXPECT_EQ(s.sample(logits, std::vector<int32_t>{0}), 0);
  EXPECT_EQ(s.sample(logits, std::vector<int32_t>{0, 2, 0}), 1);
  // Only the window counts.
  p.repeat_last_n = 1;
  Sampler w(p);
  EXPECT_EQ(w.sample(logits, std::vector<int32_t>{0, 0}), 0);
  // probabilities() (a speculative verification's target distribution) applies it alike.
  std::vector<float> probs;
  s.probabilities(logits, std::vector<int32_t>{0, 2, 0}, &probs);
  EXPECT_EQ(probs, (std::vector<float>{0.0f, 1.0f, 0.0f}));
  p.frequency_penalty = std::numeric_limits<float>::infinity();
  EXPECT_NE(p.validate(), "");
}

class ServeSchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    INGOT_MODEL_PATH(gguf, "stories260K-q8_0.gguf");
    static std::string bundle;
    if (bundle.empty()) {
      // 16 tokens per call: a prompt of a few dozen tokens takes several steps.
      bundle = testing::cached_bundle(INGOT_INGOTC, gguf, "--max-batch 16 --max-context 256 --target native");
      ASSERT_FALSE(bundle.empty());
    }
    std::string error;
    engine_ = take(Engine::load(bundle), &error);
    ASSERT_TRUE(engine_) << error;
  }

  std::vector<int32_t> ids(const std::string& text) { return engine_->tokenizer()->encode(text, true); }

  // Greedy ids of a session run alone.
  std::vector<int32_t> alone(const std::vector<int32_t>& prompt, int32_t n) {
    std::string error;
    auto s = take(Session::create(*engine_, 1), &error);
    GenerateOptions go;
    go.sampling.temperature = 0;
    go.max_new_tokens = n;
    go.keep_last = false;
    std::vector<int32_t> out;
    EXPECT_TRUE(succeeded(s->generate(prompt, go, &out), &error)) << error;
    return out;
  }

  ServeRequest greedy(const std::vector<int32_t>& prompt, int64_t n) {
    ServeRequest r;
    r.prompt = prompt;
    r.sampling.temperature = 0;
    r.max_tokens = n;
    r.end_ids = {engine_->tokenizer()->spec().eos};
    return r;
  }

  static std::string drain(ServeStream& s) {
    std::string text, part;
    while (!s.wait(std::chrono::milliseconds(100), &part)) text += part;
    return text + part;
  }

  std::unique_ptr<Engine> engine_;
};

// Every prefill chunk size (0: max_batch, 16 here; 3: a later prompt is fed 3 tokens a step
// beside the decoding slots) gives each stream its ids alone.
class ServeSchedulerChunkTest : public ServeSchedulerTest, public ::testing::WithParamInterface<int64_t> {};

TEST_P(ServeSchedulerChunkTest, RequestsDecodedTogetherEqualEachAlone) {
  std::string error;
  auto sched = take(ServeScheduler::create(*engine_, ServeOptions{.parallel = 3, .threads = 1, .ctx = 0, .queue = 8, .prefill_chunk = GetParam()}),
                    &error);
  ASSERT_TRUE(sched) << error;
  const std::vector<std::string> prompts = {
      "Once upon a time, there was a little girl named Lily who loved to play in the park with her friends every day.",
      "The little dog", "Tom and Sue went to the big red house to see the old man and his cat.", "In the park", "One day"};
  std::vector<std::shared_ptr<ServeStream>> streams;
  for (const std::string& p : prompts) {
    auto s = take(sched->submit(greedy(ids(p), 30)), &error);
    ASSERT_TRUE(s) << error;
    streams.push_back(s);
  }
  sched->start();
  for (size_t i = 0; i < prompts.size(); ++i) {
    drain(*streams[i]);
    const std::vector<int32_t> want = alone(ids(prompts[i]), 30);
    EXPECT_EQ(streams[i]->ids(), want) << prompts[i];
    EXPECT_NE(streams[i]->finish(), FinishReason::error) << streams[i]->error();
  }
  const ServeMetrics m = sched->snapshot();
  EXPECT_LT(m.steps, m.generated_tokens);  // several slots per step
  EXPECT_EQ(m.active_slots, 0);
}

INSTANTIATE_TEST_SUITE_P(PrefillChunks, ServeSchedulerChunkTest, ::testing::Values(int64_t{0}, int64_t{3}));

// plan_step, the composition of one batched call: decodes first, prompt chunks after them
// within max_batch, and within prefill_chunk while anything decodes.
TEST(PlanStepTest, DecodesFirstThenPromptChunksWithinTheBudgets) {
  using V = std::vector<int64_t>;
  const StepDemand idle{}, decode{1, true, false}, verify4{4, true, true};
  auto prompt = [](int64_t n) { return StepDemand{n, false, false}; };
  // Nothing decodes: prompts fill max_batch, from the slot that goes first.
  EXPECT_EQ(plan_step(std::vector<StepDemand>{prompt(100), prompt(100)}, 0, 64, 8), (V{64, 0}));
  EXPECT_EQ(plan_step(std::vector<StepDemand>{prompt(100), prompt(10)}, 1, 64, 8), (V{54, 10}));
  // A slot decodes: 8 prompt tokens in all beside it.
  EXPECT_EQ(plan_step(std::vector<StepDemand>{prompt(100), decode, prompt(5)}, 0, 64, 8), (V{8, 1, 0}));
  EXPECT_EQ(plan_step(std::vector<StepDemand>{prompt(100), decode, prompt(5)}, 2, 64, 8), (V{3, 1, 5}));
  // prefill_chunk 0: max_batch only.
  EXPECT_EQ(plan_step(std::vector<StepDemand>{prompt(100), decode}, 0, 64, 0), (V{63, 1}));
  // max_batch is the limit of both: the decodes take it first, and the chunk fits what is left.
  EXPECT_EQ(plan_step(std::vector<StepDemand>{decode, decode, decode, prompt(9)}, 0, 4, 8), (V{1, 1, 1, 1}));
  EXPECT_EQ(plan_step(std::vector<StepDemand>{decode, decode, decode, decode, prompt(9)}, 0, 4, 8), (V{1, 1, 1, 1, 0}));
  // A verification runs whole or waits; a chunk of 1 still moves a prompt on.
  EXPECT_EQ(plan_step(std::vector<StepDemand>{decode, verify4, prompt(9)}, 0, 4, 1), (V{1, 0, 1}));
  EXPECT_EQ(plan_step(std::vector<StepDemand>{decode, verify4, prompt(9)}, 1, 5, 1), (V{1, 4, 0}));
  EXPECT_EQ(plan_step(std::vector<StepDemand>{idle, verify4, prompt(9)}, 0, 16, 2), (V{0, 4, 2}));
  EXPECT_EQ(plan_step(std::vector<StepDemand>{}, 0, 16, 2), V{});
}

TEST_F(ServeSchedulerTest, APromptSharingAPrefixReusesTheSlotsCache) {
  std::string error;
  auto sched = take(ServeScheduler::create(*engine_, ServeOptions{.parallel = 2, .threads = 1, .ctx = 0, .queue = 8}), &error);
  ASSERT_TRUE(sched) << error;
  sched->start();
  const std::vector<int32_t> first = ids("Once upon a time, there was a little girl named Lily.");
  auto a = take(sched->submit(greedy(first, 10)), &error);
  ASSERT_TRUE(a) << error;
  drain(*a);
  EXPECT_EQ(a->cached_tokens(), 0);
  // The first prompt, its reply, and more: everything up to the reply's last token is cached.
  std::vector<int32_t> second = first;
  const std::vector<int32_t> reply = a->ids();
  second.insert(second.end(), reply.begin(), reply.end());
  const std::vector<int32_t> more = engine_->tokenizer()->encode(" She was happy.", false);
  second.insert(second.end(), more.begin(), more.end());
  auto b = take(sched->submit(greedy(second, 12)), &error);
  ASSERT_TRUE(b) << error;
  drain(*b);
  EXPECT_EQ(b->cached_tokens(), static_cast<int64_t>(first.size() + reply.size() - 1));
  EXPECT_EQ(b->ids(), alone(second, 12));
}

TEST_F(ServeSchedulerTest, TheQueueIsBoundedAndCancelledRequestsFreeTheirSlots) {
  std::string error;
  auto sched = take(ServeScheduler::create(*engine_, ServeOptions{.parallel = 1, .threads = 1, .ctx = 0, .queue = 1}), &error);
  ASSERT_TRUE(sched) << error;
  ServeRequest r = greedy(ids("Once upon a time"), 200);
  r.end_ids.clear();
  bool full = false;
  auto a = take(sched->submit(r, &full), &error);  // takes the free slot
  auto b = take(sched->submit(r, &full), &error);  // waits in the queue
  ASSERT_TRUE(a && b) << error;
  auto c = sched->submit(r, &full);
  EXPECT_FALSE(c.ok());
  EXPECT_TRUE(full) << c.message();
  a->cancel();
  b->cancel();
  sched->start();
  drain(*a);
  drain(*b);
  EXPECT_EQ(a->finish(), FinishReason::cancelled);
  EXPECT_EQ(b->finish(), FinishReason::cancelled);
  // The slot is free again: a new request runs to its end.
  auto d = take(sched->submit(greedy(ids("The little dog"), 8), &full), &error);
  ASSERT_TRUE(d) << error;
  drain(*d);
  EXPECT_EQ(d->ids(), alone(ids("The little dog"), 8));
  EXPECT_EQ(sched->snapshot().finished[static_cast<int>(FinishReason::cancelled)], 2);
}

TEST_F(ServeSchedulerTest, TheContextCapIsCheckedAndKept) {
  std::string error;
  EXPECT_FALSE(ServeScheduler::create(*engine_, ServeOptions{.parallel = 1, .threads = 1, .ctx = 257, .queue = 1}).ok());
  auto sched = take(ServeScheduler::create(*engine_, ServeOptions{.parallel = 1, .threads = 1, .ctx = 24, .queue = 1}), &error);
  ASSERT_TRUE(sched) << error;
  std::vector<int32_t> prompt = ids("Once upon a time, there was a little girl named Lily who loved to play in the park.");
  ASSERT_GT(prompt.size(), 20u);
  prompt.resize(20);
  auto too_long = prompt;
  too_long.resize(25, prompt.back());
  auto refused = sched->submit(greedy(too_long, 4));
  EXPECT_EQ(refused.status().code(), StatusCode::context_full) << refused.message();
  sched->start();
  ServeRequest r = greedy(prompt, -1);
  r.end_ids.clear();
  auto s = take(sched->submit(r), &error);
  ASSERT_TRUE(s) << error;
  drain(*s);
  // 20 prompt tokens + 4 decoded fill the 24; the last sampled one needs no place.
  EXPECT_EQ(s->completion_tokens(), 5);
  EXPECT_EQ(s->finish(), FinishReason::length);
}

// Speculation in the server (ServeOptions::lookup_ngram, draft): each slot's verification runs in
// the step with the other slots' tokens, and every greedy stream still equals its run alone, up
// to max_tokens, an end id and the context cap.
TEST_F(ServeSchedulerTest, SpeculatingSlotsKeepEveryGreedyStream) {
  const std::vector<std::string> prompts = {
      "Repeat the story word for word.\nStory: Once upon a time, there was a little girl named Lily. She loved to play "
      "outside in the park.\nRepeat: Once upon a time, there was a little girl named Lily.",
      "The little dog", "Tom and Sue went to the big red house to see the old man and his cat.", "One day"};
  struct Case {
    const char* name;
    ServeOptions options;
    bool all_accepted;  // the drafter is the target itself
  };
  const std::vector<Case> cases = {
      {"lookup", ServeOptions{.parallel = 3, .threads = 1, .ctx = 0, .queue = 8, .lookup_ngram = 3}, false},
      {"lookup_k2", ServeOptions{.parallel = 2, .threads = 2, .ctx = 0, .queue = 8, .lookup_ngram = 1, .draft_max = 2}, false},
      {"draft_self", ServeOptions{.parallel = 3, .threads = 1, .ctx = 0, .queue = 8, .draft = engine_.get()}, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::string error;
    auto sched = take(ServeScheduler::create(*engine_, c.options), &error);
    ASSERT_TRUE(sched) << error;
    std::vector<std::shared_ptr<ServeStream>> streams;
    for (size_t i = 0; i < prompts.size(); ++i) {
      auto s = take(sched->submit(greedy(ids(prompts[i]), 40 + 3 * static_cast<int64_t>(i))), &error);
      ASSERT_TRUE(s) << error;
      streams.push_back(s);
    }
    sched->start();
    for (size_t i = 0; i < prompts.size(); ++i) {
      drain(*streams[i]);
      EXPECT_EQ(streams[i]->ids(), alone(ids(prompts[i]), 40 + 3 * static_cast<int32_t>(i))) << prompts[i];
      EXPECT_NE(streams[i]->finish(), FinishReason::error) << streams[i]->error();
    }
    const ServeMetrics m = sched->snapshot();
    EXPECT_GT(m.drafted_tokens, 0);
    EXPECT_GT(m.accepted_tokens, 0);
    if (c.all_accepted) EXPECT_EQ(m.accepted_tokens, m.drafted_tokens);
    // Accepted drafts are tokens that took no step of their own.
    EXPECT_LT(m.steps + m.accepted_tokens / 2, m.generated_tokens + static_cast<int64_t>(prompts.size()) * 8);
  }
  // The context cap holds with drafts: 20 prompt tokens in a context of 24 give 5 tokens.
  std::string error;
  auto sched = take(ServeScheduler::create(*engine_, ServeOptions{.parallel = 1, .threads = 1, .ctx = 24, .queue = 1, .draft = engine_.get()}),
                    &error);
  ASSERT_TRUE(sched) << error;
  std::vector<int32_t> prompt = ids(prompts[0]);
  prompt.resize(20);
  ServeRequest r = greedy(prompt, -1);
  r.end_ids.clear();
  sched->start();
  auto s = take(sched->submit(r), &error);
  ASSERT_TRUE(s) << error;
  drain(*s);
  EXPECT_EQ(s->completion_tokens(), 5);
  EXPECT_EQ(s->finish(), FinishReason::length);
  std::vector<int32_t> want = alone(prompt, 5);
  EXPECT_EQ(s->ids(), want);
}

TEST_F(ServeSchedulerTest, SpeculationWithSamplingAndBadOptions) {
  std::string error;
  // Sampling: speculative sampling's acceptance; the requested count, no error.
  auto sched = take(ServeScheduler::create(*engine_, ServeOptions{.parallel = 2, .threads = 1, .ctx = 0, .queue = 4, .draft = engine_.get()}),
                    &error);
  ASSERT_TRUE(sched) << error;
  sched->start();
  std::vector<std::shared_ptr<ServeStream>> streams;
  for (uint64_t seed : {1u, 2u, 3u}) {
    ServeRequest r = greedy(ids("Once upon a time"), 24);
    r.end_ids.clear();
    r.sampling.temperature = 0.8f;
    r.sampling.seed = seed;
    auto s = take(sched->submit(r), &error);
    ASSERT_TRUE(s) << error;
    streams.push_back(s);
  }
  for (auto& s : streams) {
    drain(*s);
    EXPECT_EQ(s->finish(), FinishReason::length) << s->error();
    EXPECT_EQ(s->completion_tokens(), 24);
  }
  EXPECT_GT(sched->snapshot().drafted_tokens, 0);
  // Both drafters at once, negative values: refused with a message.
  auto both = ServeScheduler::create(*engine_, ServeOptions{.parallel = 1, .threads = 1, .ctx = 0, .queue = 1, .lookup_ngram = 2, .draft = engine_.get()});
  EXPECT_FALSE(both.ok());
  EXPECT_NE(both.message().find("not both"), std::string::npos) << both.message();
  EXPECT_FALSE(ServeScheduler::create(*engine_, ServeOptions{.parallel = 1, .threads = 1, .ctx = 0, .queue = 1, .lookup_ngram = -1}).ok());
}

}  // namespace
}  // namespace ingot
