#include "runtime/serve_scheduler.h"

#include <algorithm>
#include <numeric>

namespace ingot {

namespace {
using Clock = std::chrono::steady_clock;
double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
}  // namespace

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::stop: return "stop";
    case FinishReason::length: return "length";
    case FinishReason::cancelled: return "cancelled";
    case FinishReason::error: return "error";
    case FinishReason::none: break;
  }
  return "none";
}

// ---- ServeStream ----

bool ServeStream::wait(std::chrono::milliseconds timeout, std::string* text) {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait_for(lk, timeout, [&] { return done_ || !pending_.empty(); });
  *text = std::move(pending_);
  pending_.clear();
  return done_;
}

FinishReason ServeStream::finish() const {
  std::lock_guard<std::mutex> lk(mu_);
  return finish_;
}

std::string ServeStream::error() const {
  std::lock_guard<std::mutex> lk(mu_);
  return error_;
}

int64_t ServeStream::completion_tokens() const {
  std::lock_guard<std::mutex> lk(mu_);
  return static_cast<int64_t>(ids_.size());
}

std::vector<int32_t> ServeStream::ids() const {
  std::lock_guard<std::mutex> lk(mu_);
  return ids_;
}

void ServeStream::push(const std::string& text, int32_t id) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    pending_ += text;
    if (id >= 0) ids_.push_back(id);
  }
  cv_.notify_all();
}

void ServeStream::end(FinishReason r, const std::string& error) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (done_) return;
    done_ = true;
    finish_ = r;
    error_ = error;
  }
  cv_.notify_all();
}

// ---- metrics ----

void ServeMetrics::Histogram::observe(double v) {
  if (counts.size() != bounds.size() + 1) counts.assign(bounds.size() + 1, 0);
  size_t i = 0;
  while (i < bounds.size() && v > bounds[i]) ++i;
  ++counts[i];
  sum += v;
  ++count;
}

// ---- ServeScheduler ----

ServeScheduler::ServeScheduler(const Engine& engine, const ServeOptions& options) : engine_(engine), options_(options) {
  const std::vector<double> latency = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  metrics_.ttft.bounds = latency;
  metrics_.inter_token.bounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
  metrics_.queue_wait.bounds = latency;
  for (auto* h : {&metrics_.ttft, &metrics_.inter_token, &metrics_.queue_wait}) h->counts.assign(h->bounds.size() + 1, 0);
}

std::vector<int64_t> plan_step(std::span<const StepDemand> slots, size_t first, int64_t max_batch, int64_t prefill_chunk) {
  const size_t n = slots.size();
  std::vector<int64_t> take(n, 0);
  int64_t budget = max_batch;
  bool decodes = false;
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1 && decodes && prefill_chunk > 0) budget = std::min(budget, prefill_chunk);
    for (size_t k = 0; k < n && budget > 0; ++k) {
      const size_t i = (first + k) % n;
      const StepDemand& d = slots[i];
      if (d.left <= 0 || (pass == 0) != d.decoding) continue;
      if (d.whole && d.left > budget) continue;  // runs whole at a later step
      take[i] = std::min(d.left, budget);
      budget -= take[i];
      decodes = decodes || d.decoding;
    }
  }
  return take;
}

StatusOr<std::unique_ptr<ServeScheduler>> ServeScheduler::create(const Engine& engine, const ServeOptions& options) {
  if (options.parallel < 1 || options.parallel > 1024)
    return Status::Error("--parallel must be 1 to 1024, not " + std::to_string(options.parallel));
  if (options.queue < 0) return Status::Error("--queue must be >= 0, not " + std::to_string(options.queue));
  if (options.ctx < 0) return Status::Error("--ctx must be >= 1");
  if (options.ctx > engine.max_context())
    return Status::Error("--ctx " + std::to_string(options.ctx) + " is larger than the bundle's context of " +
                         std::to_string(engine.max_context()) + " (compile with --max-context)");
  if (options.parallel > 1 && !engine.not_batchable().empty())
    return Status::Error(StatusCode::unsupported, engine.bundle().name() + ": this bundle cannot decode sessions together (" +
                                                      engine.not_batchable() + "); use --parallel 1");
  if (!engine.tokenizer()) return Status::Error(engine.bundle().name() + ": the bundle has no tokenizer; serve needs one");
  const bool speculate = options.lookup_ngram > 0 || options.draft;
  if (options.lookup_ngram > 0 && options.draft) return Status::Error("give --draft or --lookup, not both");
  if (options.lookup_ngram < 0 || options.draft_max < -1)
    return Status::Error("--lookup and --draft-max must be >= 0");
  if (options.prefill_chunk < 0) return Status::Error("--prefill-chunk must be >= 0, not " + std::to_string(options.prefill_chunk));
  if (speculate && !engine.not_batchable().empty())
    return Status::Error(StatusCode::unsupported, engine.bundle().name() + ": speculative decoding needs logits for several rows of one call, which this bundle cannot give (" +
                                                      engine.not_batchable() + ")");
  if (options.draft) INGOT_RETURN_IF_ERROR(check_same_vocabulary(engine, *options.draft));
  std::unique_ptr<ServeScheduler> s(new ServeScheduler(engine, options));
  s->ctx_ = options.ctx > 0 ? options.ctx : engine.max_context();
  if (s->options_.draft_max < 0) s->options_.draft_max = options.draft ? kDefaultModelDraftMax : kDefaultLookupDraftMax;
  INGOT_ASSIGN_OR_RETURN(s->batcher_, Batcher::create(engine, options.threads));
  if (options.draft) {
    INGOT_ASSIGN_OR_RETURN(s->draft_batcher_, Batcher::create(*options.draft, options.threads));
  }
  s->slots_.resize(static_cast<size_t>(options.parallel));
  // With huge-page memory (the weights read into it, and then the caches advised for it) each
  // slot's cache becomes resident here, so that no request's prefill waits for the zeroing of
  // 2 MiB pages: the first round of 8 streams had its prefill steps take 377 and 206 ms instead of
  // 247 and 128 (AMD Zen 5, tinyllama, 22 MiB a slot).
  const bool huge = engine.bundle().residency() == BundleResidency::huge_pages;
  for (Slot& slot : s->slots_) {
    INGOT_ASSIGN_OR_RETURN(slot.session, Session::create(engine, 0));
    if (huge) slot.session->make_cache_resident(s->ctx_);
  }
  s->metrics_.slots = options.parallel;
  return s;
}

ServeScheduler::~ServeScheduler() { stop(); }

void ServeScheduler::start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
}

void ServeScheduler::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Whatever is left (the thread never started, or it ended): every request ends.
  std::lock_guard<std::mutex> lk(mu_);
  for (Slot& s : slots_)
    if (s.stream) {
      s.stream->end(FinishReason::cancelled, "the server is shutting down");
      s.stream.reset();
    }
  for (Queued& q : queue_) q.stream->end(FinishReason::cancelled, "the server is shutting down");
  queue_.clear();
}

StatusOr<std::shared_ptr<ServeStream>> ServeScheduler::submit(ServeRequest request, bool* queue_full) {
  if (queue_full) *queue_full = false;
  if (request.prompt.empty()) return Status::Error("the prompt has no tokens");
  for (int32_t id : request.prompt)
    if (id < 0 || id >= engine_.vocab())
      return Status::Error("token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(engine_.vocab()));
  if (static_cast<int64_t>(request.prompt.size()) > ctx_)
    return Status::Error(StatusCode::context_full, "the prompt is " + std::to_string(request.prompt.size()) +
                                                      " tokens, longer than the context of " + std::to_string(ctx_) + " tokens");
  if (std::string bad = request.sampling.validate(); !bad.empty()) return Status::Error(bad);
  auto stream = std::make_shared<ServeStream>();
  stream->prompt_tokens_ = static_cast<int64_t>(request.prompt.size());
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_) {
      if (queue_full) *queue_full = true;
      return Status::Error(StatusCode::unsupported, "the server is shutting down");
    }
    // Requests that can start now do not count against the queue's bound.
    const int64_t free_slots = std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return !s.stream; });
    if (static_cast<int64_t>(queue_.size()) >= free_slots + options_.queue) {
      if (queue_full) *queue_full = true;
      return Status::Error(StatusCode::unsupported, "the queue is full (" + std::to_string(options_.queue) +
                                                        " requests waiting for one of " + std::to_string(slots_.size()) +
                                                        " slots); try again later");
    }
    queue_.push_back(Queued{std::move(request), stream, Clock::now()});
    metrics_.queue_length = static_cast<int64_t>(queue_.size());
  }
  cv_.notify_all();
  return stream;
}

ServeMetrics ServeScheduler::snapshot() const {
  std::lock_guard<std::mutex> lk(mu_);
  ServeMetrics m = metrics_;
  // Tokens per second over the last 10 s of steps.
  const auto now = Clock::now();
  int64_t tokens = 0;
  Clock::time_point oldest = now;
  for (const auto& [t, n] : recent_)
    if (now - t <= std::chrono::seconds(10)) {
      tokens += n;
      oldest = std::min(oldest, t);
    }
  m.tokens_per_second = tokens > 0 ? static_cast<double>(tokens) / std::max(1.0, seconds(now - oldest)) : 0.0;
  return m;
}

void ServeScheduler::admit(Queued q) {
  // The free slot whose cached tokens share the longest prefix with the prompt; ties: the one
  // unused the longest.
  Slot* best = nullptr;
  size_t best_common = 0;
  for (Slot& s : slots_) {
    if (s.stream) continue;
    const std::vector<int32_t>& held = s.session->history();
    size_t common = 0;
    while (common < held.size() && common < q.request.prompt.size() && held[common] == q.request.prompt[common]) ++common;
    if (!best || common > best_common || (common == best_common && s.last_used < best->last_used)) {
      best = &s;
      best_common = common;
    }
  }
  INGOT_ASSERT(best, "admit without a free slot");
  Slot& s = *best;
  // At least one token is fed, so that the logits are current.
  const size_t keep = std::min(best_common, q.request.prompt.size() - 1);
  if (Status st = s.session->truncate(static_cast<int64_t>(keep)); !st.ok()) {
    q.stream->end(FinishReason::error, st.message());
    return;
  }
  s.drafter.reset();
  if (options_.lookup_ngram > 0) {
    s.drafter = std::make_unique<LookupDrafter>(options_.lookup_ngram);
  } else if (options_.draft) {
    // The drafter samples as the request does (its distribution takes part in the acceptance
    // test); its session keeps the longest common prefix of what it is shown.
    auto d = ModelDrafter::create(engine_, *options_.draft, 0, q.request.sampling, draft_batcher_.get());
    if (!d.ok()) {
      q.stream->end(FinishReason::error, "the draft model: " + d.status().message());
      return;
    }
    s.drafter = std::move(*d);
  }
  s.draft = Draft{};
  s.draft_len = options_.draft_max;
  s.stream = q.stream;
  s.stream->cached_tokens_ = static_cast<int64_t>(keep);
  s.pending.assign(q.request.prompt.begin() + static_cast<std::ptrdiff_t>(keep), q.request.prompt.end());
  s.fed = 0;
  s.logit_rows = 1;
  s.generated = 0;
  s.sampler = std::make_unique<Sampler>(q.request.sampling);
  s.text = std::make_unique<TextStream>(*engine_.tokenizer(), q.request.prompt, q.request.stops);
  s.request = std::move(q.request);
  s.admitted = q.at;  // time to first token counts the wait in the queue
  s.last_used = ++clock_;
  metrics_.prompt_tokens += static_cast<int64_t>(s.request.prompt.size());
  metrics_.cached_prompt_tokens += static_cast<int64_t>(keep);
  metrics_.queue_wait.observe(seconds(Clock::now() - q.at));
}

void ServeScheduler::finish(Slot& s, FinishReason r, const std::string& error) {
  if (!s.stream) return;
  if (r == FinishReason::stop || r == FinishReason::length) {
    // Held-back bytes that did not become a stop string belong to the text.
    if (std::string rest = s.text->finish(); !rest.empty()) s.stream->push(rest, -1);
  }
  s.stream->end(r, error);
  s.pending.clear();
  s.fed = 0;
  s.draft = Draft{};
  s.drafter.reset();
  s.sampler.reset();
  s.text.reset();
  // submit() counts free slots under the lock.
  std::lock_guard<std::mutex> lk(mu_);
  s.stream.reset();
  s.last_used = ++clock_;
  ++metrics_.finished[static_cast<int>(r)];
}

void ServeScheduler::after_run(Slot& s) {
  Session& session = *s.session;
  std::vector<int32_t> tokens;
  if (s.draft.ids.empty()) {
    tokens.push_back(s.sampler->sample(session.logits(), session.history()));
  } else {
    // The part was [last, drafts...]: the context is what the cache held before the drafts.
    const size_t drafted = s.draft.ids.size();
    context_.assign(session.history().begin(), session.history().end() - static_cast<std::ptrdiff_t>(drafted));
    const Verdict v = verify_draft(*s.sampler, session.chunk_logits(), engine_.vocab(), context_, s.draft);
    s.draft_len = next_draft_length(s.draft_len, v.accepted, drafted, options_.draft_max);
    {
      std::lock_guard<std::mutex> lk(mu_);
      metrics_.drafted_tokens += static_cast<int64_t>(drafted);
      metrics_.accepted_tokens += v.accepted;
    }
    if (Status st = session.truncate(v.keep); !st.ok()) return finish(s, FinishReason::error, st.message());
    tokens = v.tokens;
  }
  for (int32_t id : tokens)
    if (!emit(s, id)) return;
  // The last token needs a place in the cache before the next one can be sampled (the others
  // are in it already).
  if (session.position() + 1 > ctx_) return finish(s, FinishReason::length);
  queue_next(s, tokens.back());
}

bool ServeScheduler::emit(Slot& s, int32_t id) {
  const auto now = Clock::now();
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (s.generated == 0) metrics_.ttft.observe(seconds(now - s.admitted));
    else metrics_.inter_token.observe(seconds(now - s.last_token));
    ++metrics_.generated_tokens;
  }
  s.last_token = now;
  ++s.generated;
  if (std::find(s.request.end_ids.begin(), s.request.end_ids.end(), id) != s.request.end_ids.end()) {
    s.stream->push("", id);
    finish(s, FinishReason::stop);
    return false;
  }
  s.stream->push(s.text->push(id), id);
  if (s.text->stopped()) {
    finish(s, FinishReason::stop);
    return false;
  }
  if (s.request.max_tokens >= 0 && s.generated >= s.request.max_tokens) {
    finish(s, FinishReason::length);
    return false;
  }
  return true;
}

void ServeScheduler::queue_next(Slot& s, int32_t last) {
  s.pending.assign(1, last);
  s.fed = 0;
  s.logit_rows = 1;
  s.draft.ids.clear();
  s.draft.probs.clear();
  if (!s.drafter) return;
  // Drafts that could never be used are not made: none past max_tokens, the context or max_batch.
  const Session& session = *s.session;
  int64_t k = std::min<int64_t>({s.draft_len, ctx_ - session.position() - 1, engine_.max_batch() - 1});
  if (s.request.max_tokens >= 0) k = std::min<int64_t>(k, s.request.max_tokens - s.generated - 1);
  if (k <= 0) return;
  context_.assign(session.history().begin(), session.history().end());
  context_.push_back(last);
  if (Status st = s.drafter->propose(context_, static_cast<int32_t>(k), &s.draft); !st.ok()) {
    // A drafter that fails costs the speculation, not the request.
    s.drafter.reset();
    s.draft = Draft{};
    return;
  }
  if (static_cast<int64_t>(s.draft.ids.size()) > k) s.draft.ids.resize(static_cast<size_t>(k));
  if (!s.draft.probs.empty()) s.draft.probs.resize(s.draft.ids.size());
  for (int32_t id : s.draft.ids)
    INGOT_ASSERT(id >= 0 && id < engine_.vocab(), "a drafter proposed a token outside the vocabulary");
  s.pending.insert(s.pending.end(), s.draft.ids.begin(), s.draft.ids.end());
  s.logit_rows = static_cast<int32_t>(s.pending.size());
}

void ServeScheduler::loop() {
  std::unique_lock<std::mutex> lk(mu_);
  std::vector<BatchPart> parts;
  std::vector<Slot*> part_slots;
  std::vector<StepDemand> demands;
  while (true) {
    auto has_free = [&] { return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return !s.stream; }); };
    auto has_active = [&] { return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.stream != nullptr; }); };
    cv_.wait(lk, [&] { return stopping_ || has_active() || (!queue_.empty() && has_free()); });
    if (stopping_) break;
    // Requests cancelled while queued end here; queued requests take the free slots.
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (it->stream->cancelled()) {
        it->stream->end(FinishReason::cancelled);
        ++metrics_.finished[static_cast<int>(FinishReason::cancelled)];
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    // Clients gone: their slots are free for this step's admissions.
    lk.unlock();
    for (Slot& s : slots_)
      if (s.stream && s.stream->cancelled()) finish(s, FinishReason::cancelled);
    lk.lock();
    while (!queue_.empty() && has_free()) {
      Queued q = std::move(queue_.front());
      queue_.pop_front();
      admit(std::move(q));
    }
    metrics_.queue_length = static_cast<int64_t>(queue_.size());
    metrics_.active_slots = std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.stream != nullptr; });
    lk.unlock();

    // One call: every decoding slot's tokens first (decodes are never starved), then prefill
    // chunks (plan_step).
    const size_t n = slots_.size();
    demands.assign(n, StepDemand{});
    for (size_t k = 0; k < n; ++k) {
      const Slot& s = slots_[k];
      if (!s.stream || s.fed >= s.pending.size()) continue;
      demands[k] = {static_cast<int64_t>(s.pending.size() - s.fed), s.generated > 0, s.logit_rows > 1};
    }
    const std::vector<int64_t> take = plan_step(demands, rotate_, engine_.max_batch(), options_.prefill_chunk);
    parts.clear();
    part_slots.clear();
    for (size_t k = 0; k < n; ++k) {
      const size_t i = (rotate_ + k) % n;  // parts in plan order (fills the call as plan_step did)
      if (take[i] == 0) continue;
      Slot& s = slots_[i];
      const bool last = take[i] == demands[i].left;
      parts.push_back(BatchPart{s.session.get(), std::span<const int32_t>(s.pending.data() + s.fed, static_cast<size_t>(take[i])),
                                last ? std::min<int32_t>(s.logit_rows, static_cast<int32_t>(take[i])) : 1});
      part_slots.push_back(&s);
    }
    rotate_ = (rotate_ + 1) % n;
    if (parts.empty()) {
      lk.lock();
      continue;
    }
    const Status st = batcher_->run(parts);
    int64_t tokens = 0;
    for (const BatchPart& p : parts) tokens += static_cast<int64_t>(p.ids.size());
    const int64_t generated_before = [&] {
      std::lock_guard<std::mutex> g(mu_);
      return metrics_.generated_tokens;
    }();
    for (size_t i = 0; i < parts.size(); ++i) {
      Slot& s = *part_slots[i];
      if (!st.ok()) {
        finish(s, FinishReason::error, st.message());
        continue;
      }
      s.fed += parts[i].ids.size();
      if (s.fed == s.pending.size()) after_run(s);
    }
    lk.lock();
    ++metrics_.steps;
    metrics_.step_tokens += tokens;
    const auto now = Clock::now();
    recent_.emplace_back(now, metrics_.generated_tokens - generated_before);
    while (!recent_.empty() && now - recent_.front().first > std::chrono::seconds(10)) recent_.pop_front();
    metrics_.active_slots = std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.stream != nullptr; });
  }
  lk.unlock();
  for (Slot& s : slots_)
    if (s.stream) finish(s, FinishReason::cancelled, "the server is shutting down");
  lk.lock();
  for (Queued& q : queue_) q.stream->end(FinishReason::cancelled, "the server is shutting down");
  queue_.clear();
  metrics_.queue_length = 0;
  metrics_.active_slots = 0;
}

}  // namespace ingot
