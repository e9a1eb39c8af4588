#include "runtime/speculative.h"

#include <algorithm>
#include <chrono>

namespace ingot {
namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

Status fail(std::string msg, StatusCode code = StatusCode::invalid_argument) { return Status::Error(code, std::move(msg)); }
Status fail(StatusCode code, std::string msg) { return Status::Error(code, std::move(msg)); }

// Runs `ids` on `session` through `batcher` in calls of at most max_batch tokens (a prefill for a
// session that may have no threads of its own); logits of the last token.
Status feed(Batcher& batcher, Session& session, const Engine& e, std::span<const int32_t> ids, int64_t* calls = nullptr) {
  for (size_t at = 0; at < ids.size(); at += static_cast<size_t>(e.max_batch())) {
    const size_t n = std::min(ids.size() - at, static_cast<size_t>(e.max_batch()));
    const BatchPart part{&session, ids.subspan(at, n), 1};
    INGOT_RETURN_IF_ERROR(batcher.run(std::span<const BatchPart>(&part, 1)));
    if (calls) ++*calls;
  }
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------- lookup

std::vector<int32_t> lookup_draft(std::span<const int32_t> context, int32_t max_ngram, int32_t max_tokens) {
  std::vector<int32_t> out;
  const int64_t size = static_cast<int64_t>(context.size());
  if (max_tokens <= 0 || size < 2) return out;
  for (int64_t n = std::min<int64_t>(max_ngram, size - 1); n >= 1; --n) {
    const auto tail = context.subspan(static_cast<size_t>(size - n));
    // The most recent earlier occurrence: it starts at j < size - n, latest first.
    for (int64_t j = size - n - 1; j >= 0; --j) {
      if (!std::equal(tail.begin(), tail.end(), context.begin() + j)) continue;
      // What followed it; where that runs into the context's end, the sequence goes on as it
      // did (a repeating pattern continues with its period).
      const int64_t from = j + n;
      for (int64_t i = 0; i < max_tokens; ++i) {
        const int64_t at = from + i;
        out.push_back(at < size ? context[static_cast<size_t>(at)] : out[static_cast<size_t>(at - size)]);
      }
      return out;
    }
  }
  return out;
}

Status LookupDrafter::propose(std::span<const int32_t> context, int32_t max_tokens, Draft* out) {
  out->ids = lookup_draft(context, max_ngram_, max_tokens);
  out->probs.clear();
  return Status::Ok();
}

// ---------------------------------------------------------------- draft model

Status check_same_vocabulary(const Engine& target, const Engine& draft) {
  const std::string names = "the draft " + draft.bundle().name() + " and the target " + target.bundle().name();
  if (draft.vocab() != target.vocab())
    return fail(names + " have different vocabularies: " + std::to_string(draft.vocab()) + " and " + std::to_string(target.vocab()) +
                " tokens; a draft model must share the target's tokenizer");
  const Tokenizer* dt = draft.tokenizer();
  const Tokenizer* tt = target.tokenizer();
  if (!dt || !tt) return fail(names + ": " + (dt ? "the target" : "the draft") + " has no tokenizer to compare vocabularies with");
  const TokenizerSpec &d = dt->spec(), &t = tt->spec();
  if (d.tokens.size() != t.tokens.size())
    return fail(names + " have tokenizers of different sizes: " + std::to_string(d.tokens.size()) + " and " +
                std::to_string(t.tokens.size()) + " tokens");
  for (size_t i = 0; i < d.tokens.size(); ++i)
    if (d.tokens[i] != t.tokens[i])
      return fail(names + " have different vocabularies: token " + std::to_string(i) + " is '" + d.tokens[i] + "' in the draft, '" +
                  t.tokens[i] + "' in the target");
  if (d.bos != t.bos || d.eos != t.eos)
    return fail(names + " have different special tokens: BOS/EOS " + std::to_string(d.bos) + "/" + std::to_string(d.eos) + " and " +
                std::to_string(t.bos) + "/" + std::to_string(t.eos));
  if (d.kind != t.kind || d.pre != t.pre)
    return fail(names + " have tokenizers of different kinds (" + d.pre + " and " + t.pre + ")");
  return Status::Ok();
}

StatusOr<std::unique_ptr<ModelDrafter>> ModelDrafter::create(const Engine& target, const Engine& draft, int threads,
                                                             const SamplingParams& sampling, Batcher* shared) {
  INGOT_RETURN_IF_ERROR(check_same_vocabulary(target, draft));
  SamplingParams p = sampling;
  p.seed = sampling.seed ^ 0x9e3779b97f4a7c15ull;  // a stream of its own, not the target's
  std::unique_ptr<ModelDrafter> d(new ModelDrafter(draft, p));
  if (shared) {
    d->batcher_ = shared;
  } else {
    INGOT_ASSIGN_OR_RETURN(d->own_, Batcher::create(draft, threads));
    d->batcher_ = d->own_.get();
  }
  INGOT_ASSIGN_OR_RETURN(d->session_, Session::create(draft, 0));
  return d;
}

Status ModelDrafter::run(std::span<const int32_t> ids) { return feed(*batcher_, *session_, engine_, ids, &calls_); }

Status ModelDrafter::propose(std::span<const int32_t> context, int32_t max_tokens, Draft* out) {
  out->ids.clear();
  out->probs.clear();
  if (context.empty() || max_tokens <= 0) return Status::Ok();
  // Room in the draft's own context: the context, and every drafted token but the last.
  const int64_t room = engine_.max_context() - static_cast<int64_t>(context.size());
  if (room < 0) return Status::Ok();  // the draft's context is smaller: nothing to propose
  max_tokens = static_cast<int32_t>(std::min<int64_t>(max_tokens, room + 1));
  // Keep what the session holds of the context (at least one token is fed, for current logits).
  Session& s = *session_;
  const std::vector<int32_t>& h = s.history();
  size_t common = 0;
  while (common < h.size() && common < context.size() && h[common] == context[common]) ++common;
  common = std::min(common, context.size() - 1);
  INGOT_RETURN_IF_ERROR(s.truncate(static_cast<int64_t>(common)));
  INGOT_RETURN_IF_ERROR(run(context.subspan(common)));
  const bool greedy = sampler_.params().temperature == 0.0f || sampler_.params().top_k == 1;
  const int32_t eos = engine_.tokenizer() ? engine_.tokenizer()->spec().eos : -1;
  std::vector<float> q;
  for (int32_t i = 0; i < max_tokens; ++i) {
    int32_t x;
    if (greedy) {
      x = sampler_.sample(s.logits(), s.history());
    } else {
      sampler_.probabilities(s.logits(), s.history(), &q);
      x = sampler_.draw(q);
      if (x < 0) break;
      out->probs.push_back(q);
    }
    out->ids.push_back(x);
    if (x == eos || i + 1 == max_tokens) break;
    INGOT_RETURN_IF_ERROR(run(std::span<const int32_t>(&x, 1)));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- verification

Verdict verify_draft(Sampler& sampler, std::span<const float> rows, int64_t vocab, std::span<const int32_t> context,
                     const Draft& draft) {
  Verdict v;
  const size_t V = static_cast<size_t>(vocab);
  const size_t K = std::min(draft.ids.size(), rows.size() / V - 1);
  // The penalties' history of row i: the context and the drafts before it.
  std::vector<int32_t> history(context.begin(), context.end());
  const bool greedy = sampler.params().temperature == 0.0f || sampler.params().top_k == 1;
  std::vector<float> p, residual;
  for (size_t i = 0; i <= K; ++i) {
    const auto row = rows.subspan(i * V, V);
    int32_t pick;
    if (greedy) {
      pick = sampler.sample(row, history);  // what decoding without a draft picks here
      if (i < K && pick == draft.ids[i]) {
        v.tokens.push_back(pick);
        history.push_back(pick);
        ++v.accepted;
        continue;
      }
      v.tokens.push_back(pick);
      break;
    }
    sampler.probabilities(row, history, &p);
    if (i == K) {  // every draft accepted: the bonus token, drawn from p
      pick = sampler.draw(p);
      v.tokens.push_back(pick);
      break;
    }
    const int32_t x = draft.ids[i];
    const bool in_vocab = x >= 0 && static_cast<size_t>(x) < V;
    // A point mass unless the drafter gave its distribution (of the vocabulary's size).
    const bool point = draft.probs.size() <= i || draft.probs[i].size() != V || !in_vocab;
    const double px = in_vocab ? p[static_cast<size_t>(x)] : 0.0;
    const double qx = point ? 1.0 : draft.probs[i][static_cast<size_t>(x)];
    // Accept with probability min(1, p(x) / q(x)).
    if (qx > 0 && sampler.random() * qx < px) {
      v.tokens.push_back(x);
      history.push_back(x);
      ++v.accepted;
      continue;
    }
    // Rejected: draw from normalize(max(0, p - q)).
    residual.assign(V, 0.0f);
    for (size_t t = 0; t < V; ++t) {
      const float q = point ? (t == static_cast<size_t>(x) ? 1.0f : 0.0f) : draft.probs[i][t];
      residual[t] = std::max(0.0f, p[t] - q);
    }
    pick = sampler.draw(residual);
    if (pick < 0) pick = sampler.draw(p);  // p == q up to rounding: nothing left over
    v.tokens.push_back(pick);
    break;
  }
  v.keep = static_cast<int64_t>(context.size()) + v.accepted;
  return v;
}

// ---------------------------------------------------------------- the loop

Status speculative_generate(const Engine& engine, Batcher& batcher, Session& session, Drafter& drafter, int32_t draft_max,
                            std::span<const int32_t> prompt, const GenerateOptions& o, std::vector<int32_t>* out,
                            GenerateTimings* timings, SpeculativeStats* stats) {
  if (std::string bad = o.sampling.validate(); !bad.empty()) return fail(bad);
  if (!engine.not_batchable().empty())
    return fail(engine.bundle().name() + ": speculative decoding needs logits for several rows of one call, which this bundle cannot give: " +
                    engine.not_batchable(),
                StatusCode::unsupported);
  if (draft_max < 0) return fail("the draft length must be >= 0, not " + std::to_string(draft_max));
  if (session.position() + static_cast<int64_t>(prompt.size()) > engine.max_context())
    return fail(StatusCode::context_full, "the prompt (" + std::to_string(prompt.size()) + " tokens) is longer than the context left (" +
                                              std::to_string(engine.max_context() - session.position()) + " of " +
                                              std::to_string(engine.max_context()) + ")");
  if (prompt.empty() && session.position() == 0) return fail("no tokens to process: the prompt is empty and the session holds none");
  Sampler sampler(o.sampling);
  GenerateTimings t;
  SpeculativeStats st;
  auto t0 = std::chrono::steady_clock::now();
  if (!prompt.empty()) INGOT_RETURN_IF_ERROR(feed(batcher, session, engine, prompt));
  t.prefill_ms = ms_since(t0);
  t.prefill_tokens = static_cast<int64_t>(prompt.size());
  t0 = std::chrono::steady_clock::now();
  const int32_t eos = engine.tokenizer() ? engine.tokenizer()->spec().eos : -1;
  const int64_t base = session.position();  // the cache holds base + (emitted - 1) tokens between rounds
  const int64_t V = engine.vocab();
  int32_t emitted = 0;
  bool done = o.max_new_tokens <= 0;
  // Hands one new token to the caller; false when generation stops at it (Session::generate's
  // rules: end of text, on_token said stop, max_new_tokens).
  auto emit = [&](int32_t id) {
    if (out) out->push_back(id);
    ++emitted;
    const bool keep_going = !o.on_token || o.on_token(id);
    t.stop = o.stop_at_eos && id == eos ? StopReason::eos
             : !keep_going              ? StopReason::stopped
             : emitted == o.max_new_tokens ? StopReason::length
                                           : t.stop;
    return t.stop == StopReason::length && emitted < o.max_new_tokens;
  };
  int32_t last = -1;
  if (!done) {
    last = sampler.sample(session.logits(), session.history());
    done = !emit(last);
  }
  std::vector<int32_t> context, ids;
  Draft draft;
  int64_t k_now = draft_max;  // adapts: next_draft_length
  while (!done) {
    // `last` is generated but not in the cache: run it, with a draft after it.
    if (session.position() + 1 > engine.max_context()) {
      t.stop = StopReason::context_full;
      break;
    }
    const int64_t k = std::min<int64_t>({k_now, o.max_new_tokens - emitted - 1, engine.max_context() - session.position() - 1,
                                         engine.max_batch() - 1});
    context.assign(session.history().begin(), session.history().end());
    context.push_back(last);
    draft.ids.clear();
    draft.probs.clear();
    if (k > 0) {
      const auto d0 = std::chrono::steady_clock::now();
      INGOT_RETURN_IF_ERROR(drafter.propose(context, static_cast<int32_t>(k), &draft));
      st.draft_ms += ms_since(d0);
      if (static_cast<int64_t>(draft.ids.size()) > k) draft.ids.resize(static_cast<size_t>(k));
      for (int32_t id : draft.ids)
        if (id < 0 || id >= V) return fail("the drafter proposed token " + std::to_string(id) + ", outside the vocabulary", StatusCode::internal);
    }
    ids.assign(1, last);
    ids.insert(ids.end(), draft.ids.begin(), draft.ids.end());
    const BatchPart part{&session, ids, static_cast<int32_t>(ids.size())};
    INGOT_RETURN_IF_ERROR(batcher.run(std::span<const BatchPart>(&part, 1)));
    t.decode_tokens += static_cast<int64_t>(ids.size());
    ++st.target_calls;
    if (!draft.ids.empty()) ++st.rounds_with_draft;
    const Verdict v = verify_draft(sampler, session.chunk_logits(), V, context, draft);
    st.drafted += static_cast<int64_t>(draft.ids.size());
    st.accepted += v.accepted;
    if (!draft.ids.empty()) k_now = next_draft_length(k_now, v.accepted, draft.ids.size(), draft_max);
    INGOT_RETURN_IF_ERROR(session.truncate(v.keep));
    for (int32_t id : v.tokens) {
      last = id;
      if (!emit(id)) {
        done = true;
        break;
      }
    }
  }
  // The cache holds the prompt and the generated tokens up to where generation stopped (a stop
  // inside an accepted run leaves accepted tokens after it: dropped), and with keep_last the
  // last one too, as Session::generate leaves it.
  if (emitted > 0) {
    const int64_t want = base + emitted - (o.keep_last ? 0 : 1);
    if (session.position() > want) INGOT_RETURN_IF_ERROR(session.truncate(want));
    if (o.keep_last && t.stop != StopReason::context_full && session.position() < want) {
      if (session.position() + 1 > engine.max_context()) {
        t.stop = StopReason::context_full;
      } else {
        INGOT_RETURN_IF_ERROR(feed(batcher, session, engine, std::span<const int32_t>(&last, 1)));
        ++t.decode_tokens;
      }
    }
  }
  t.decode_ms = ms_since(t0);
  if (timings) *timings = t;
  if (stats) *stats = st;
  return Status::Ok();
}

}  // namespace ingot
