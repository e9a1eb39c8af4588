// Speculative decoding: a cheap drafter proposes up to K tokens to follow a session's context, the
// target model runs the last accepted token and the K drafted ones as ONE batched call (a
// BatchPart with logit_rows = K + 1), a verifier accepts a prefix of the draft and adds one token
// of the target's own (the correction at the first rejection, or a bonus after a fully accepted
// draft), and the target session is rolled back (Session::truncate) past the first rejection.
//
// Greedy (temperature 0 or top-k 1): a drafted token is accepted while it equals what the target's
// Sampler picks from that row (argmax after the same penalties), and the batched rows are bit for
// bit the logits of one-token decodes (runtime/engine.h, Batcher), so the output is IDENTICAL,
// id for id, to decoding without speculation. With sampling: standard speculative sampling
// (Leviathan et al. 2023, Chen et al. 2023): accept drafted x with probability min(1, p(x)/q(x)),
// on rejection draw from normalize(max(0, p - q)), with p the target Sampler's final distribution
// (penalties, top-k, top-p, min-p, temperature) and q the drafter's (a point mass for the lookup
// drafter). Every generated token is then distributed as the target's sampler says, but the random
// stream differs from non-speculative sampling: the same seed gives different text.
//
// The pieces are separate so that a batching scheduler (a server's slots, sessions created with 0
// threads and run through a shared Batcher) can drive them per session: Drafter::propose, then its
// own Batcher::run with the verification part, then verify_draft and Session::truncate.
// speculative_generate is the plain loop over them that `ingot run --lookup/--draft` uses.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "runtime/engine.h"
#include "runtime/sampler.h"

namespace ingot {

// Defaults of --draft-max: prompt lookup costs nothing to draft, so it drafts more; a draft model
// pays a decode step of its own per drafted token.
inline constexpr int32_t kDefaultLookupDraftMax = 8;
inline constexpr int32_t kDefaultModelDraftMax = 5;
// Default longest n-gram the lookup drafter matches (--lookup N).
inline constexpr int32_t kDefaultLookupNgram = 3;

// Proposed tokens for one session.
struct Draft {
  std::vector<int32_t> ids;
  // probs[i]: the vocabulary-sized distribution q that ids[i] was drawn from. Empty: the drafter is
  // deterministic (lookup, a greedy draft model) and each q is a point mass on its id.
  std::vector<std::vector<float>> probs;
};

class Drafter {
 public:
  virtual ~Drafter() = default;
  // Up to max_tokens ids to follow `context`: every token of the target's sequence so far (prompt
  // and generated, including the last sampled token that the target has not run yet). Fewer (or
  // none) when it has nothing to propose. An error only for a failure of the drafter itself.
  virtual Status propose(std::span<const int32_t> context, int32_t max_tokens, Draft* out) = 0;
  // "lookup" or "draft".
  virtual const char* kind() const = 0;
};

// Prompt lookup (n-gram drafting over the context, no second model): for n from max_ngram down
// to 1, the most recent earlier occurrence of the context's last n tokens, and the max_tokens
// tokens that followed it; where those reach the context's end, they go on as the sequence did
// from the occurrence (a repeating pattern continues with its period). Empty if no n-gram recurs.
std::vector<int32_t> lookup_draft(std::span<const int32_t> context, int32_t max_ngram, int32_t max_tokens);

class LookupDrafter : public Drafter {
 public:
  explicit LookupDrafter(int32_t max_ngram = kDefaultLookupNgram) : max_ngram_(max_ngram) {}
  Status propose(std::span<const int32_t> context, int32_t max_tokens, Draft* out) override;
  const char* kind() const override { return "lookup"; }

 private:
  int32_t max_ngram_;
};

// Whether `draft` can draft for `target`: the same vocabulary size (logits) and the same tokenizer
// (every token's text at the same id, and the same BOS/EOS). The error names both bundles and the
// first difference.
Status check_same_vocabulary(const Engine& target, const Engine& draft);

// A smaller model of the same vocabulary that drafts by decoding. It keeps a session of its own
// in step with the context it is given (the longest common prefix is kept, the rest fed), so it
// needs no telling what the target accepted. With sampling it draws each token from its own
// Sampler's distribution (the same SamplingParams, a seed of its own) and returns that
// distribution in Draft::probs; greedy, it drafts the argmax.
class ModelDrafter : public Drafter {
 public:
  // `draft` must outlive the drafter; check_same_vocabulary(target, draft) must hold. The draft's
  // calls run on `shared` (a Batcher of the draft engine, e.g. one for every slot of a server; it
  // must outlive the drafter and not run concurrently) or, if null, on a Batcher of its own with
  // `threads` threads.
  static StatusOr<std::unique_ptr<ModelDrafter>> create(const Engine& target, const Engine& draft, int threads,
                                                        const SamplingParams& sampling, Batcher* shared = nullptr);
  Status propose(std::span<const int32_t> context, int32_t max_tokens, Draft* out) override;
  const char* kind() const override { return "draft"; }
  const Session& session() const { return *session_; }
  int64_t calls() const { return calls_; }  // draft model calls so far

 private:
  ModelDrafter(const Engine& e, const SamplingParams& sampling) : engine_(e), sampler_(sampling) {}
  Status run(std::span<const int32_t> ids);
  const Engine& engine_;
  Sampler sampler_;
  std::unique_ptr<Batcher> own_;
  Batcher* batcher_ = nullptr;  // own_ or a shared one
  std::unique_ptr<Session> session_;
  int64_t calls_ = 0;
};

// The result of verifying one draft.
struct Verdict {
  int32_t accepted = 0;         // drafted tokens accepted: draft.ids[0, accepted)
  // The accepted drafted ids, then one token of the target's (the correction at the first
  // rejection, or the bonus after a fully accepted draft): accepted + 1 new tokens in all.
  std::vector<int32_t> tokens;
  // Session::truncate(keep) afterwards: the context and the accepted drafts stay in the cache; the
  // last of `tokens` is not in it (it is the next call's first token).
  int64_t keep = 0;
};

// Verifies `draft` against the target's logits. The target session held `context` minus its last
// token, and ran BatchPart{ids = [context.back()] + draft.ids, logit_rows = draft.ids.size() + 1};
// `rows` is its chunk_logits() (draft.ids.size() + 1 rows of `vocab` floats). The sampler is the
// target's (its penalties see `context` plus the drafts before each row; its random stream draws
// the acceptance tests and the corrections).
Verdict verify_draft(Sampler& sampler, std::span<const float> rows, int64_t vocab, std::span<const int32_t> context,
                     const Draft& draft);

// The next draft's length: after a rejection, one more than was accepted; after a fully
// accepted draft, twice as long, up to draft_max. A drafter that keeps missing then costs a row or
// two per call, not draft_max.
inline int64_t next_draft_length(int64_t current, int32_t accepted, size_t drafted, int32_t draft_max) {
  return static_cast<size_t>(accepted) == drafted ? std::min<int64_t>(draft_max, 2 * current) : accepted + 1;
}

struct SpeculativeStats {
  int64_t drafted = 0;       // drafted tokens verified
  int64_t accepted = 0;      // of them, accepted
  int64_t target_calls = 0;  // verification calls of the target (one per round, after the prompt)
  int64_t rounds_with_draft = 0;
  double draft_ms = 0;       // time spent drafting (included in decode_ms)
  double acceptance_rate() const { return drafted > 0 ? static_cast<double>(accepted) / static_cast<double>(drafted) : 0; }
};

// Session::generate with speculation: prefills `prompt` through `batcher` (both of `engine`; the
// session may have 0 threads), then samples up to o.max_new_tokens, drafting up to
// draft_max tokens per round (fewer near max_new_tokens, the end of the context or max_batch).
// Honours o.on_token, o.stop_at_eos and o.keep_last as generate does, and stops at the same token
// for the same reason: with greedy sampling *out is what generate gives. timings->decode_tokens
// counts the tokens the target ran after the prompt (rejected drafts included).
// The engine must batch (Engine::not_batchable() empty): else an error with code unsupported.
Status speculative_generate(const Engine& engine, Batcher& batcher, Session& session, Drafter& drafter, int32_t draft_max,
                            std::span<const int32_t> prompt, const GenerateOptions& o, std::vector<int32_t>* out,
                            GenerateTimings* timings = nullptr, SpeculativeStats* stats = nullptr);

}  // namespace ingot
