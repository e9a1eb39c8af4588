// Speculative decoding (runtime/speculative.h, issue 18 part 4): greedy output identical, id for
// id, with and without speculation (prompt lookup, a q8_0 draft for the f32 target, the model as
// its own draft, a drafter that always misses, one that always hits) on llama.cpp's reference
// prompts and on a repetitive prompt where lookup accepts tokens; the sampled acceptance path
// yields the target's distribution (fixed seeds, total-variation bounds); the sampler's
// probabilities() is the distribution sample() draws from; edge cases (a context filling up, the
// token limit, end of text and a stop inside an accepted run, keep_last); a draft with another
// vocabulary refused, by the library and by `ingot run`; `ingot run --lookup/--draft --json`.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include <nlohmann/json.hpp>

#include "runtime/engine.h"
#include "runtime/speculative.h"
#include "tests/common/bundle_cache.h"
#include "tests/common/command.h"
#include "tests/common/files.h"
#include "tests/common/models.h"
#include "tests/common/status.h"

namespace ingot {
namespace {

using ::ingot::testing::kIngotc;
using ::ingot::testing::kIngot;

// Bundles compiled once per build (--target native).
std::string bundle(const std::string& name) {
  const std::string models = testing::models_dir();
  if (name == "f32") return testing::cached_bundle(kIngotc, models + "/stories260K.gguf", "--target native");
  if (name == "q8") return testing::cached_bundle(kIngotc, models + "/stories260K-q8_0.gguf", "--target native");
  if (name == "f32-ctx48") return testing::cached_bundle(kIngotc, models + "/stories260K.gguf", "--max-context 48 --target native");
  if (name == "other-vocab") {
    // Same vocabulary size as stories260K (512), other token texts.
    const std::string gguf = testing::cached_synth(kIngotc, "--arch llama --dims vocab=512,dim=32,layers=1,heads=2,kv=1,ffn=64,ctx=128 --type q8_0");
    return gguf.empty() ? "" : testing::cached_bundle(kIngotc, gguf, "--target native");
  }
  ADD_FAILURE() << "no bundle named " << name;
  return "";
}

std::unique_ptr<Engine> load(const std::string& name) {
  std::string error;
  auto e = take(Engine::load(bundle(name)), &error);
  EXPECT_TRUE(e) << error;
  return e;
}

GenerateOptions greedy(int32_t n) {
  GenerateOptions o;
  o.sampling.temperature = 0;
  o.max_new_tokens = n;
  o.keep_last = false;
  return o;
}

// Without speculation: Session::generate.
std::vector<int32_t> plain(const Engine& e, const std::vector<int32_t>& prompt, const GenerateOptions& o, GenerateTimings* t = nullptr,
                           std::vector<int32_t>* history = nullptr) {
  std::string error;
  auto s = take(Session::create(e, 1), &error);
  EXPECT_TRUE(s) << error;
  std::vector<int32_t> out;
  EXPECT_TRUE(succeeded(s->generate(prompt, o, &out, t), &error)) << error;
  if (history) *history = s->history();
  return out;
}

// With speculation, on a 0-thread session through a Batcher.
std::vector<int32_t> spec(const Engine& e, Drafter& d, int32_t k, const std::vector<int32_t>& prompt, const GenerateOptions& o,
                          SpeculativeStats* stats = nullptr, GenerateTimings* t = nullptr, std::vector<int32_t>* history = nullptr) {
  std::string error;
  auto b = take(Batcher::create(e, 1), &error);
  EXPECT_TRUE(b) << error;
  auto s = take(Session::create(e, 0), &error);
  EXPECT_TRUE(s) << error;
  std::vector<int32_t> out;
  EXPECT_TRUE(succeeded(speculative_generate(e, *b, *s, d, k, prompt, o, &out, t, stats), &error)) << error;
  if (history) *history = s->history();
  return out;
}

// Drafts the continuation of a known sequence (every draft accepted if it is the target's), or,
// with `wrong`, a token that is never it (every draft rejected).
class ScriptDrafter : public Drafter {
 public:
  ScriptDrafter(std::vector<int32_t> script, bool wrong, int32_t vocab) : script_(std::move(script)), wrong_(wrong), vocab_(vocab) {}
  Status propose(std::span<const int32_t> context, int32_t max_tokens, Draft* out) override {
    out->ids.clear();
    out->probs.clear();
    for (size_t i = context.size(); i < script_.size() && out->ids.size() < static_cast<size_t>(max_tokens); ++i)
      out->ids.push_back(wrong_ ? (script_[i] + 1) % vocab_ : script_[i]);
    return Status::Ok();
  }
  const char* kind() const override { return "script"; }

 private:
  std::vector<int32_t> script_;
  bool wrong_;
  int32_t vocab_;
};

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// A prompt that repeats itself: lookup finds the n-grams again.
std::vector<int32_t> repetitive_prompt(const Tokenizer& tok) {
  return tok.encode(
      "Once upon a time, there was a little girl named Lily. She loved to play outside. Once upon a time, there was a little",
      true);
}

TEST(Speculative, LookupDraftFindsTheMostRecentLongestNgram) {
  // ... 5 6 7 | 9 ... 6 7 | 8 ... 6 7: the last 2-gram "6 7" occurred last before "8".
  const std::vector<int32_t> c = {5, 6, 7, 9, 1, 6, 7, 8, 3, 4, 6, 7};
  EXPECT_EQ(lookup_draft(c, 3, 4), (std::vector<int32_t>{8, 3, 4, 6}));
  EXPECT_EQ(lookup_draft(c, 3, 2), (std::vector<int32_t>{8, 3}));
  // The 3-gram "x 6 7" wins over "6 7" when it recurs.
  const std::vector<int32_t> d = {4, 6, 7, 1, 2, 9, 6, 7, 3, 4, 6, 7};
  EXPECT_EQ(lookup_draft(d, 3, 2), (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(lookup_draft(d, 1, 2), (std::vector<int32_t>{3, 4}));  // 1-grams only: the latest "7"
  // A continuation that reaches the end goes on with the pattern's period.
  EXPECT_EQ(lookup_draft(std::vector<int32_t>{1, 2, 1, 2}, 2, 5), (std::vector<int32_t>{1, 2, 1, 2, 1}));
  EXPECT_EQ(lookup_draft(std::vector<int32_t>{4, 4, 4}, 3, 3), (std::vector<int32_t>{4, 4, 4}));
  EXPECT_EQ(lookup_draft(std::vector<int32_t>{7, 1, 2, 3, 1, 2}, 2, 4), (std::vector<int32_t>{3, 1, 2, 3}));
  EXPECT_TRUE(lookup_draft(std::vector<int32_t>{1, 2, 3}, 3, 8).empty());
  EXPECT_TRUE(lookup_draft(std::vector<int32_t>{1}, 3, 8).empty());
  EXPECT_TRUE(lookup_draft(c, 3, 0).empty());
}

// Total-variation distance between counts and a distribution.
double tv(const std::vector<int64_t>& counts, const std::vector<float>& p) {
  int64_t n = 0;
  for (int64_t c : counts) n += c;
  double d = 0;
  for (size_t i = 0; i < p.size(); ++i) d += std::abs(static_cast<double>(counts[i]) / static_cast<double>(n) - p[i]);
  return d / 2;
}

TEST(Speculative, SamplerProbabilitiesAreWhatSampleDrawsFrom) {
  const std::vector<float> logits = {1.0f, 2.5f, 0.3f, 2.4f, -1.0f, 1.9f, 0.0f, 2.2f};
  const std::vector<int32_t> history = {1, 5, 5, 0};
  for (SamplingParams p : {SamplingParams{.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f},
                           SamplingParams{.temperature = 0.7f, .top_k = 5, .top_p = 0.9f, .min_p = 0.1f, .repeat_penalty = 1.3f,
                                          .repeat_last_n = 3, .presence_penalty = 0.4f, .seed = 7}}) {
    Sampler s(p);
    std::vector<float> probs;
    s.probabilities(logits, history, &probs);
    double sum = 0;
    for (float v : probs) sum += v;
    EXPECT_NEAR(sum, 1.0, 1e-5);
    std::vector<int64_t> counts(logits.size());
    for (int i = 0; i < 100000; ++i) ++counts[static_cast<size_t>(s.sample(logits, history))];
    EXPECT_LT(tv(counts, probs), 0.01);
    std::vector<int64_t> drawn(logits.size());
    for (int i = 0; i < 100000; ++i) ++drawn[static_cast<size_t>(s.draw(probs))];
    EXPECT_LT(tv(drawn, probs), 0.01);
  }
  // Greedy: a point mass on what sample() picks.
  Sampler g(SamplingParams{.temperature = 0});
  std::vector<float> probs;
  g.probabilities(logits, history, &probs);
  EXPECT_EQ(probs[static_cast<size_t>(g.sample(logits, history))], 1.0f);
}

// Many verifications of one-token and two-token drafts on fixed logits: the first new token must
// be distributed as the target's p of row 0 whatever the drafter's q, and the second (when the
// first draft was accepted) as p of row 1; the acceptance rate is sum_x min(p(x), q(x)).
TEST(Speculative, SampledAcceptanceYieldsTheTargetsDistribution) {
  const int64_t V = 6;
  const std::vector<float> rows = {0.5f, 1.5f, -0.3f, 1.0f, 0.0f, 0.8f,    // row 0: after the context
                                   1.2f, -0.5f, 0.4f, 0.9f, 1.1f, -1.0f,   // row 1: after draft 0
                                   0.0f, 0.0f, 2.0f, 0.0f, 0.0f, 0.0f};    // row 2: after draft 1
  const std::vector<int32_t> context = {0, 1};
  SamplingParams sp{.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 42};
  Sampler probe(sp);
  std::vector<float> p0, p1;
  probe.probabilities(std::span<const float>(rows).subspan(0, V), context, &p0);
  probe.probabilities(std::span<const float>(rows).subspan(V, V), context, &p1);
  // The drafter's q: far from p (favours id 4 and 2), and a point mass (lookup).
  const std::vector<float> q = {0.05f, 0.05f, 0.3f, 0.05f, 0.5f, 0.05f};
  std::mt19937_64 draft_rng(9);
  for (const bool point : {false, true}) {
    Sampler target(sp);
    std::vector<int64_t> first(V), second(V);
    int64_t accepted = 0;
    const int trials = 200000;
    for (int t = 0; t < trials; ++t) {
      Draft d;
      if (point) {
        d.ids = {3, 0};  // lookup proposes fixed tokens
      } else {
        std::discrete_distribution<int32_t> dq(q.begin(), q.end());
        d.ids = {dq(draft_rng), dq(draft_rng)};
        d.probs = {q, q};
      }
      const Verdict v = verify_draft(target, rows, V, context, d);
      ASSERT_EQ(v.tokens.size(), static_cast<size_t>(v.accepted) + 1);
      ASSERT_EQ(v.keep, static_cast<int64_t>(context.size()) + v.accepted);
      ++first[static_cast<size_t>(v.tokens[0])];
      if (v.accepted >= 1) {
        ++accepted;
        ++second[static_cast<size_t>(v.tokens[1])];
      }
    }
    SCOPED_TRACE(point ? "point-mass draft" : "draft distribution q");
    EXPECT_LT(tv(first, p0), 0.006);
    EXPECT_LT(tv(second, p1), 0.01);
    double expect_rate = 0;
    for (int64_t x = 0; x < V; ++x) expect_rate += point ? (x == 3 ? p0[3] : 0.0) : std::min(p0[x], q[x]);
    EXPECT_NEAR(static_cast<double>(accepted) / trials, expect_rate, 0.006);
  }
}

TEST(Speculative, GreedyVerificationAcceptsWhileTheDraftIsTheArgmax) {
  const int64_t V = 4;
  const std::vector<float> rows = {0, 3, 1, 2,  // argmax 1
                                   5, 0, 0, 0,  // argmax 0
                                   0, 0, 0, 9}; // argmax 3
  Sampler s(SamplingParams{.temperature = 0});
  const std::vector<int32_t> ctx = {2, 2};
  Verdict v = verify_draft(s, rows, V, ctx, Draft{{1, 0}, {}});
  EXPECT_EQ(v.accepted, 2);
  EXPECT_EQ(v.tokens, (std::vector<int32_t>{1, 0, 3}));  // both accepted, then the bonus
  EXPECT_EQ(v.keep, 4);
  v = verify_draft(s, rows, V, ctx, Draft{{1, 2}, {}});
  EXPECT_EQ(v.accepted, 1);
  EXPECT_EQ(v.tokens, (std::vector<int32_t>{1, 0}));  // the correction replaces the rejected 2
  EXPECT_EQ(v.keep, 3);
  v = verify_draft(s, rows, V, ctx, Draft{{3, 0}, {}});
  EXPECT_EQ(v.accepted, 0);
  EXPECT_EQ(v.tokens, (std::vector<int32_t>{1}));
  // The penalties see the context and the accepted drafts: a repeat penalty that makes 1 lose
  // to 3 in row 0 when 1 is in the context.
  Sampler pen(SamplingParams{.temperature = 0, .repeat_penalty = 2.0f});
  v = verify_draft(pen, rows, V, std::vector<int32_t>{1}, Draft{{1}, {}});
  EXPECT_EQ(v.accepted, 0);
  EXPECT_EQ(v.tokens, (std::vector<int32_t>{3}));
}

// The shared reference prompts (llama.cpp's greedy ids): identical with every drafter.
TEST(Speculative, GreedyIdsIdenticalOnTheReferencePrompts) {
  INGOT_MODEL_PATH(ref_path, "reference.json");
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  INGOT_MODEL_PATH(draft_model, "stories260K-q8_0.gguf");
  const nlohmann::json ref = nlohmann::json::parse(testing::read_file(ref_path));
  auto target = load("f32");
  auto draft = load("q8");
  ASSERT_TRUE(target && draft);
  std::string error;
  ASSERT_TRUE(succeeded(check_same_vocabulary(*target, *draft), &error)) << error;
  const auto& runs = ref["models"]["stories260K.gguf"]["runs"];
  ASSERT_GE(runs.size(), 3u);
  for (const auto& run : runs) {
    const std::vector<int32_t> prompt = run["prompt_ids"];
    const std::vector<int32_t> want = run["greedy_ids"];
    SCOPED_TRACE("prompt '" + run["prompt"].get<std::string>() + "'");
    const GenerateOptions o = greedy(static_cast<int32_t>(want.size()));
    ASSERT_EQ(plain(*target, prompt, o), want);
    LookupDrafter lookup(3);
    SpeculativeStats st;
    EXPECT_EQ(spec(*target, lookup, 8, prompt, o, &st), want);
    EXPECT_GT(st.drafted, 0);
    auto q8 = take(ModelDrafter::create(*target, *draft, 1, o.sampling), &error);
    ASSERT_TRUE(q8) << error;
    EXPECT_EQ(spec(*target, *q8, 5, prompt, o, &st), want);
    EXPECT_GT(st.accepted, 0) << "the q8_0 draft of the same model agrees on some tokens";
    EXPECT_LT(st.target_calls, static_cast<int64_t>(want.size()) - 1);
    auto self = take(ModelDrafter::create(*target, *target, 1, o.sampling), &error);
    ASSERT_TRUE(self) << error;
    EXPECT_EQ(spec(*target, *self, 4, prompt, o, &st), want);
    EXPECT_EQ(st.accepted, st.drafted) << "the model as its own draft: every greedy draft accepted";
    ScriptDrafter miss(concat(prompt, want), true, static_cast<int32_t>(target->vocab()));
    EXPECT_EQ(spec(*target, miss, 3, prompt, o, &st), want);
    EXPECT_EQ(st.accepted, 0);
    EXPECT_GT(st.drafted, 0);
  }
}

TEST(Speculative, LookupAcceptsOnARepetitivePrompt) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  auto e = load("f32");
  ASSERT_TRUE(e);
  const auto prompt = repetitive_prompt(*e->tokenizer());
  const GenerateOptions o = greedy(60);
  const auto want = plain(*e, prompt, o);
  LookupDrafter lookup(3);
  SpeculativeStats st;
  GenerateTimings t;
  EXPECT_EQ(spec(*e, lookup, 8, prompt, o, &st, &t), want);
  EXPECT_GT(st.accepted, 0);
  EXPECT_GT(st.acceptance_rate(), 0.0);
  EXPECT_LT(st.target_calls, 59) << "accepted drafts save target calls";
  EXPECT_EQ(t.decode_tokens, st.target_calls + st.drafted);
  EXPECT_EQ(t.stop, StopReason::length);
}

// Stops inside an accepted run: the token limit, a stop (on_token) and the end of text, each at
// every offset of an always-accepted draft; the cache then holds what Session::generate leaves.
TEST(Speculative, StopsInsideAnAcceptedRunAsWithoutSpeculation) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  auto e = load("f32");
  ASSERT_TRUE(e);
  const auto prompt = repetitive_prompt(*e->tokenizer());
  const auto full = plain(*e, prompt, greedy(24));
  ScriptDrafter oracle(concat(prompt, full), false, static_cast<int32_t>(e->vocab()));
  for (int32_t n = 1; n <= 13; ++n) {  // the token limit, at every offset of a draft of 5
    SCOPED_TRACE("-n " + std::to_string(n));
    GenerateTimings t;
    SpeculativeStats st;
    const auto got = spec(*e, oracle, 5, prompt, greedy(n), &st, &t);
    EXPECT_EQ(got, std::vector<int32_t>(full.begin(), full.begin() + n));
    EXPECT_EQ(t.stop, StopReason::length);
    EXPECT_LE(st.drafted, n - 1) << "no draft past the token limit";
  }
  for (const bool keep_last : {false, true}) {
    for (int32_t at = 1; at <= 12; ++at) {  // on_token stops at the at-th token (a stop string)
      SCOPED_TRACE("stop at " + std::to_string(at) + (keep_last ? ", keep_last" : ""));
      GenerateOptions o = greedy(24);
      o.keep_last = keep_last;
      int32_t seen = 0;
      o.on_token = [&](int32_t) { return ++seen < at; };
      GenerateTimings ta, tb;
      std::vector<int32_t> ha, hb;
      const auto a = plain(*e, prompt, o, &ta, &ha);
      seen = 0;
      const auto b = spec(*e, oracle, 5, prompt, o, nullptr, &tb, &hb);
      EXPECT_EQ(a, b);
      EXPECT_EQ(b.size(), static_cast<size_t>(at));
      EXPECT_EQ(ta.stop, StopReason::stopped);
      EXPECT_EQ(tb.stop, StopReason::stopped);
      EXPECT_EQ(ha, hb) << "the session holds the same tokens";
    }
  }
  // A draft that holds EOS where the target picks something else: the EOS is rejected and
  // corrected, and generation goes on.
  const int32_t eos = e->tokenizer()->spec().eos;
  ASSERT_GE(eos, 0);
  for (int32_t at = 0; at < 5; ++at) {
    SCOPED_TRACE("EOS drafted at " + std::to_string(at));
    std::vector<int32_t> script = concat(prompt, full);
    script[prompt.size() + static_cast<size_t>(at) + 1] = eos;
    ScriptDrafter eos_drafter(script, false, static_cast<int32_t>(e->vocab()));
    EXPECT_EQ(spec(*e, eos_drafter, 5, prompt, greedy(24)), full);
  }
}

// End of text reached inside an accepted run: with presence_penalty the greedy target avoids every
// token it has seen, so it reaches EOS within the vocabulary's size; a drafter that knows the
// sequence has it accepted mid-draft. Generation must stop at it, as without speculation.
TEST(Speculative, EndOfTextInsideAnAcceptedRun) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  auto e = load("f32");
  ASSERT_TRUE(e);
  const int32_t eos = e->tokenizer()->spec().eos;
  GenerateOptions o = greedy(400);
  o.sampling.presence_penalty = 100.0f;
  o.sampling.repeat_last_n = -1;
  const std::vector<int32_t> prompt = {1};
  GenerateTimings ta;
  const auto want = plain(*e, prompt, o, &ta);
  ASSERT_EQ(ta.stop, StopReason::eos) << "the penalties drive the model to EOS";
  ASSERT_EQ(want.back(), eos);
  // Continue the script past EOS, so the EOS sits inside a draft whatever the round boundaries.
  std::vector<int32_t> script = concat(prompt, want);
  for (int32_t i = 0; i < 8; ++i) script.push_back(3 + i);
  for (int32_t k : {3, 7}) {
    ScriptDrafter oracle(script, false, static_cast<int32_t>(e->vocab()));
    GenerateTimings tb;
    SpeculativeStats st;
    EXPECT_EQ(spec(*e, oracle, k, prompt, o, &st, &tb), want);
    EXPECT_EQ(tb.stop, StopReason::eos);
    EXPECT_GT(st.accepted, 0);
  }
}

// The context fills up: a bundle of 48 positions, generation until it is full, with and without
// keep_last, lookup and a draft that always hits; drafts never overflow the cache.
TEST(Speculative, ContextNearlyFull) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  auto e = load("f32-ctx48");
  ASSERT_TRUE(e);
  ASSERT_EQ(e->max_context(), 48);
  const auto prompt = repetitive_prompt(*e->tokenizer());
  ASSERT_LT(prompt.size(), 48u);
  for (const bool keep_last : {false, true}) {
    SCOPED_TRACE(keep_last ? "keep_last" : "not keep_last");
    GenerateOptions o = greedy(100);
    o.keep_last = keep_last;
    GenerateTimings ta, tb, tc;
    std::vector<int32_t> ha, hb, hc;
    const auto want = plain(*e, prompt, o, &ta, &ha);
    EXPECT_EQ(ta.stop, StopReason::context_full);
    LookupDrafter lookup(3);
    EXPECT_EQ(spec(*e, lookup, 8, prompt, o, nullptr, &tb, &hb), want);
    EXPECT_EQ(tb.stop, StopReason::context_full);
    EXPECT_EQ(hb, ha);
    ScriptDrafter oracle(concat(prompt, want), false, static_cast<int32_t>(e->vocab()));
    EXPECT_EQ(spec(*e, oracle, 8, prompt, o, nullptr, &tc, &hc), want);
    EXPECT_EQ(tc.stop, StopReason::context_full);
    EXPECT_EQ(hc, ha);
  }
}

// What a batching scheduler does: several sessions (0 threads) each draft, and their
// verifications run as ONE Batcher call with a part per session; verify_draft and truncate per
// session. Each session's greedy output is what it gives alone; a ModelDrafter on a shared
// draft Batcher.
TEST(Speculative, SessionsVerifiedTogetherInOneBatchedCall) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  auto e = load("f32");
  auto dq = load("q8");
  ASSERT_TRUE(e && dq);
  std::string error;
  const Tokenizer& tok = *e->tokenizer();
  const std::vector<std::vector<int32_t>> prompts = {repetitive_prompt(tok), tok.encode("Tom and his dog", true),
                                                     tok.encode("Lily saw a cat. The cat", true)};
  const int32_t n = 30;
  auto batcher = take(Batcher::create(*e, 2), &error);
  auto draft_batcher = take(Batcher::create(*dq, 1), &error);
  ASSERT_TRUE(batcher && draft_batcher) << error;
  struct Slot {
    std::unique_ptr<Session> s;
    std::unique_ptr<Drafter> d;
    std::unique_ptr<Sampler> sampler;
    std::vector<int32_t> out, context;
    Draft draft;
    int32_t last = -1;
  };
  std::vector<Slot> slots(prompts.size());
  int64_t drafted = 0, accepted = 0;
  for (size_t i = 0; i < slots.size(); ++i) {
    Slot& sl = slots[i];
    sl.s = take(Session::create(*e, 0), &error);
    ASSERT_TRUE(sl.s) << error;
    if (i == 1) {
      auto m = take(ModelDrafter::create(*e, *dq, 1, greedy(n).sampling, draft_batcher.get()), &error);
      ASSERT_TRUE(m) << error;
      sl.d = std::move(m);
    } else {
      sl.d = std::make_unique<LookupDrafter>(3);
    }
    sl.sampler = std::make_unique<Sampler>(greedy(n).sampling);
    const BatchPart part{sl.s.get(), prompts[i], 1};
    ASSERT_TRUE(succeeded(batcher->run(std::span<const BatchPart>(&part, 1)), &error)) << error;
    sl.last = sl.sampler->sample(sl.s->logits(), sl.s->history());
    sl.out.push_back(sl.last);
  }
  for (int round = 0; round < n; ++round) {
    std::vector<BatchPart> parts;
    std::vector<std::vector<int32_t>> ids(slots.size());
    for (size_t i = 0; i < slots.size(); ++i) {
      Slot& sl = slots[i];
      if (sl.out.size() >= static_cast<size_t>(n)) continue;
      sl.context = sl.s->history();
      sl.context.push_back(sl.last);
      const int32_t k = std::min<int32_t>(4, n - static_cast<int32_t>(sl.out.size()) - 1);
      ASSERT_TRUE(succeeded(sl.d->propose(sl.context, k, &sl.draft), &error)) << error;
      ids[i] = concat({sl.last}, sl.draft.ids);
      parts.push_back(BatchPart{sl.s.get(), ids[i], static_cast<int32_t>(ids[i].size())});
    }
    if (parts.empty()) break;
    ASSERT_TRUE(succeeded(batcher->run(parts), &error)) << error;
    for (size_t i = 0; i < slots.size(); ++i) {
      Slot& sl = slots[i];
      if (ids[i].empty()) continue;
      const Verdict v = verify_draft(*sl.sampler, sl.s->chunk_logits(), e->vocab(), sl.context, sl.draft);
      drafted += static_cast<int64_t>(sl.draft.ids.size());
      accepted += v.accepted;
      ASSERT_TRUE(succeeded(sl.s->truncate(v.keep), &error)) << error;
      for (int32_t id : v.tokens)
        if (sl.out.size() < static_cast<size_t>(n)) sl.out.push_back(sl.last = id);
    }
  }
  for (size_t i = 0; i < slots.size(); ++i) EXPECT_EQ(slots[i].out, plain(*e, prompts[i], greedy(n))) << "session " << i;
  EXPECT_GT(drafted, 0);
  EXPECT_GT(accepted, 0);
}

TEST(Speculative, SampledGenerationRunsAndIsReproducible) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  auto e = load("f32");
  auto d = load("q8");
  ASSERT_TRUE(e && d);
  const auto prompt = repetitive_prompt(*e->tokenizer());
  GenerateOptions o;
  o.sampling = SamplingParams{.temperature = 0.9f, .seed = 5};
  o.max_new_tokens = 40;
  o.keep_last = false;
  std::string error;
  for (int rep = 0; rep < 2; ++rep) {
    LookupDrafter lookup(3);
    SpeculativeStats st;
    const auto a = spec(*e, lookup, 6, prompt, o, &st);
    const auto b = spec(*e, lookup, 6, prompt, o);
    EXPECT_EQ(a, b) << "one seed, one output";
    EXPECT_EQ(a.size(), 40u);
    auto m = take(ModelDrafter::create(*e, *d, 1, o.sampling), &error);
    ASSERT_TRUE(m) << error;
    const auto c = spec(*e, *m, 4, prompt, o, &st);
    EXPECT_EQ(c.size(), 40u);
    EXPECT_GT(st.accepted, 0);
    for (int32_t id : c) EXPECT_TRUE(id >= 0 && id < e->vocab());
  }
}

TEST(Speculative, DraftWithAnotherVocabularyIsRefused) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  auto target = load("f32");
  auto other = load("other-vocab");
  ASSERT_TRUE(target && other);
  ASSERT_EQ(other->vocab(), target->vocab()) << "same size: the token texts must differ";
  std::string error;
  EXPECT_FALSE(succeeded(check_same_vocabulary(*target, *other), &error));
  EXPECT_NE(error.find("different vocabularies: token"), std::string::npos) << error;
  auto d = take(ModelDrafter::create(*target, *other, 1, SamplingParams{}), &error);
  EXPECT_FALSE(d);
  EXPECT_NE(error.find(bundle("other-vocab")), std::string::npos) << error;
  // And at the command line: exit 1, the message naming the draft.
  testing::CmdResult r = testing::run_command(kIngot + " run " + bundle("f32") + " -p Hi -n 4 --draft " + bundle("other-vocab"));
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("--draft: the draft"), std::string::npos) << r.out;
}

TEST(Speculative, RunCommandReportsAndKeepsTheText) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  const std::string base = kIngot + " run " + bundle("f32") +
                           " -p 'Once upon a time, there was a little girl named Lily. Once upon a time, there was a' -n 40 --temp 0";
  testing::CmdResult plain_run = testing::run_command("(" + base + " 2>/dev/null)");
  ASSERT_EQ(plain_run.status, 0);
  for (const std::string& flags : {std::string(" --lookup 2"), " --draft " + bundle("q8") + " --draft-max 3"}) {
    SCOPED_TRACE(flags);
    testing::CmdResult r = testing::run_command("(" + base + flags + " 2>/dev/null)");
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.out, plain_run.out) << "the same text";
    r = testing::run_command("(" + base + flags + " >/dev/null)");  // stderr only
    EXPECT_NE(r.out.find("[speculative "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("accepted"), std::string::npos) << r.out;
    r = testing::run_command("(" + base + flags + " --json 2>/dev/null)");
    const nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.out;
    ASSERT_TRUE(j.contains("speculative"));
    const auto& s = j["speculative"];
    EXPECT_GT(s["drafted"].get<int64_t>(), 0);
    EXPECT_GT(s["accepted"].get<int64_t>(), 0);
    EXPECT_LE(s["accepted"].get<int64_t>(), s["drafted"].get<int64_t>());
    EXPECT_LT(s["target_calls"].get<int64_t>(), 39);
    EXPECT_NEAR(s["acceptance_rate"].get<double>(), s["accepted"].get<double>() / s["drafted"].get<double>(), 1e-9);
    EXPECT_TRUE(j["timings"].contains("decode_tok_s"));
  }
  testing::CmdResult r = testing::run_command(base + " --lookup 2 --draft " + bundle("q8"));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("not both"), std::string::npos) << r.out;
  r = testing::run_command(base + " --draft-max 3");
  EXPECT_EQ(r.status, 2);
}

}  // namespace
}  // namespace ingot
