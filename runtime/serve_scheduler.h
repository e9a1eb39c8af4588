// The scheduler of `ingot serve`: up to `parallel` slots (each a Session with no threads of its
// own: a KV cache), a bounded queue of requests, and one thread that owns a Batcher and runs every
// active slot's pending tokens as one call per step (continuous batching): decoding slots give
// one token each, prefilling slots a chunk of their prompt within the bundle's max_batch, so a
// long prompt is spread over steps and decodes are never starved. A new request takes the free
// slot whose cached tokens share the longest prefix with its prompt and feeds only the rest
// (prompt caching). Each slot samples with its own Sampler and streams its text (stop strings
// and unfinished UTF-8 held back: runtime/text_stream.h) to a ServeStream that the HTTP side
// reads. No HTTP here (tools/ingot_serve.cpp).
//
// A slot's work is a list of pending tokens and how many of their last rows need logits, so
// that a speculative verification (several tokens, logit_rows > 1, then Session::truncate past
// the first rejection) fits the same step.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "runtime/engine.h"
#include "runtime/sampler.h"
#include "runtime/speculative.h"
#include "runtime/text_stream.h"

namespace ingot {

struct ServeOptions {
  int parallel = 4;        // slots (sessions decoded together)
  int threads = 1;         // the Batcher's kernel threads
  int64_t ctx = 0;         // per-slot context cap; 0: the bundle's max_context
  int queue = 64;          // requests waiting for a slot; more are refused (queue full)
  // Speculative decoding (runtime/speculative.h): a decoding slot drafts up to draft_max tokens,
  // by prompt lookup over its own context (lookup_ngram > 0: the longest n-gram matched) or with
  // a draft model (draft: a bundle of the same vocabulary, which must outlive the scheduler), and
  // its verification (the last token and the drafts, one logits row each) runs in the same
  // batched step as the other slots' tokens. Greedy streams stay identical to decoding alone.
  int32_t lookup_ngram = 0;
  const Engine* draft = nullptr;
  int32_t draft_max = -1;  // -1: the drafter's default (kDefaultLookupDraftMax, kDefaultModelDraftMax)
  // While some slot decodes, a step feeds at most this many prompt tokens (of one or several
  // prefilling slots), so that a long prompt arriving stalls the decoding streams for one chunk's
  // time at most, not for a whole max_batch call (seconds on a CPU). When no slot decodes,
  // prompts fill the bundle's max_batch. 0: max_batch always.
  int64_t prefill_chunk = kDefaultPrefillChunk;
  static constexpr int64_t kDefaultPrefillChunk = 128;
};

// One slot's demand on the next step, for plan_step: `left` tokens not yet run (0: nothing to
// run), whether it is decoding (its next tokens follow a sampled one: a token, or a speculative
// verification) or prefilling its prompt, and whether its part must run whole or wait (a
// verification with several logit rows).
struct StepDemand {
  int64_t left = 0;
  bool decoding = false;
  bool whole = false;
};

// How many tokens each slot feeds to the next batched call (0: none). Decoding slots first, from
// slot `first` on (the slot that goes first turns each step, so none waits forever when budgets
// are tight), within max_batch; then prefilling slots, in the same order, within what is left of
// max_batch and, if any decoding slot runs in this step, within prefill_chunk (> 0) in total.
std::vector<int64_t> plan_step(std::span<const StepDemand> slots, size_t first, int64_t max_batch, int64_t prefill_chunk);

// What a request asks for, its prompt already tokenized.
struct ServeRequest {
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  int64_t max_tokens = -1;              // -1: until an end id, a stop string or a full context
  std::vector<std::string> stops;
  std::vector<int32_t> end_ids;         // ids that end the generation (not part of the text)
};

enum class FinishReason { none, stop, length, cancelled, error };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled", "error"

// One request's results, written by the scheduler thread and read by the HTTP side.
class ServeStream {
 public:
  struct Chunk {
    std::string text;
  };
  // Waits up to `timeout` for text or the end; moves out the text that arrived. Returns true
  // when the generation is finished (and all of its text has been taken).
  bool wait(std::chrono::milliseconds timeout, std::string* text);
  // Asks the scheduler to stop this request and free its slot at the next step.
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

  // After the end (wait returned true):
  FinishReason finish() const;
  std::string error() const;
  int64_t prompt_tokens() const { return prompt_tokens_; }
  int64_t cached_tokens() const { return cached_tokens_; }
  int64_t completion_tokens() const;
  std::vector<int32_t> ids() const;

 private:
  friend class ServeScheduler;
  void push(const std::string& text, int32_t id);
  void end(FinishReason r, const std::string& error = "");
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string pending_;
  std::vector<int32_t> ids_;
  bool done_ = false;
  FinishReason finish_ = FinishReason::none;
  std::string error_;
  std::atomic<bool> cancelled_{false};
  std::atomic<int64_t> prompt_tokens_{0}, cached_tokens_{0};
};

// Counters and distributions for /metrics, read under the scheduler's lock (snapshot()).
struct ServeMetrics {
  int64_t prompt_tokens = 0, cached_prompt_tokens = 0, generated_tokens = 0;
  int64_t finished[5] = {};          // by FinishReason
  int64_t steps = 0, step_tokens = 0;
  int64_t drafted_tokens = 0, accepted_tokens = 0;  // speculative decoding: verified drafts, of them accepted
  // Histograms: cumulative counts per upper bound (seconds), plus sum and count.
  struct Histogram {
    std::vector<double> bounds;
    std::vector<int64_t> counts;  // one more than bounds: +Inf
    double sum = 0;
    int64_t count = 0;
    void observe(double v);
  };
  Histogram ttft, inter_token, queue_wait;
  double tokens_per_second = 0;  // generated tokens over the last 10 s
  int64_t queue_length = 0, active_slots = 0, slots = 0;
};

class ServeScheduler {
 public:
  // Checks the options against the bundle (ctx at most its max_context) and creates the slots
  // and the Batcher; the thread starts with start().
  static StatusOr<std::unique_ptr<ServeScheduler>> create(const Engine& engine, const ServeOptions& options);
  ~ServeScheduler();
  void start();
  // Ends every request (finish reason cancelled) and joins the thread.
  void stop();

  // Queues a request. Errors: invalid_argument for a request that can never run (no tokens, a
  // prompt longer than the context: code context_full, bad sampling, an id outside the
  // vocabulary); unsupported with *queue_full set when `queue` requests already wait (an HTTP
  // server answers 503) or the scheduler is stopping.
  StatusOr<std::shared_ptr<ServeStream>> submit(ServeRequest request, bool* queue_full = nullptr);

  int64_t context() const { return ctx_; }
  ServeMetrics snapshot() const;

 private:
  // A slot's fields belong to the scheduler thread; `stream` (whether the slot is free) and
  // `last_used` change under mu_ only, as submit() reads them.
  struct Slot {
    std::unique_ptr<Session> session;
    std::shared_ptr<ServeStream> stream;  // null: free
    ServeRequest request;
    std::unique_ptr<Sampler> sampler;
    std::unique_ptr<TextStream> text;
    std::vector<int32_t> pending;     // tokens to run at the next steps (prompt rest, or the sampled token)
    size_t fed = 0;                   // how many of them have run (a long prompt takes several steps)
    int32_t logit_rows = 1;           // rows of the last part of `pending` that need logits
    std::unique_ptr<Drafter> drafter;  // null: no speculation
    Draft draft;                      // the drafted tokens at the end of `pending` (verified after the run)
    int64_t draft_len = 0;            // the next draft's length (adapts to what was accepted)
    int64_t generated = 0;
    std::chrono::steady_clock::time_point admitted, last_token;
    uint64_t last_used = 0;           // for choosing among free slots
  };
  struct Queued {
    ServeRequest request;
    std::shared_ptr<ServeStream> stream;
    std::chrono::steady_clock::time_point at;
  };
  ServeScheduler(const Engine& engine, const ServeOptions& options);
  void loop();
  void admit(Queued q);                 // under mu_
  void finish(Slot& s, FinishReason r, const std::string& error = "");
  // After a run: sample for a slot whose pending tokens all ran (or verify its draft), stream the
  // new tokens and queue the next (with a new draft), or finish the slot.
  void after_run(Slot& s);
  // Streams one generated token; false when the generation ends at it (the slot is finished).
  bool emit(Slot& s, int32_t id);
  // Drafts after `last` (generated, not yet run) and queues both as the slot's next part.
  void queue_next(Slot& s, int32_t last);

  const Engine& engine_;
  ServeOptions options_;
  int64_t ctx_ = 0;
  std::unique_ptr<Batcher> batcher_;
  std::unique_ptr<Batcher> draft_batcher_;  // the draft model's calls, for every slot's ModelDrafter
  std::vector<int32_t> context_;             // scratch: a slot's context for drafting and verifying
  std::vector<Slot> slots_;
  std::deque<Queued> queue_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
  uint64_t clock_ = 0;
  size_t rotate_ = 0;  // the slot that goes first in the next step (fairness when budgets are tight)
  ServeMetrics metrics_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, int64_t>> recent_;  // (step end, tokens generated)
};

}  // namespace ingot
