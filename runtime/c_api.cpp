// The C API over Engine and Session. Every entry point catches everything: no exception crosses.
#include "runtime/ingot.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "runtime/chat_template.h"
#include "runtime/chat_turn.h"
#include "runtime/engine.h"

struct ingot_model {
  std::unique_ptr<ingot::Engine> engine;
};

struct ingot_session {
  const ingot_model* model = nullptr;
  std::unique_ptr<ingot::Session> session;
};

namespace {

thread_local std::string g_last_error;

ingot_status set_error(ingot_status s, const std::string& msg) {
  g_last_error = msg;
  return s;
}

ingot_status ok() {
  g_last_error.clear();
  return INGOT_OK;
}

// Runs `f`, turning any exception into INGOT_ERR_INTERNAL with its message.
template <typename F>
ingot_status guarded(F&& f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return set_error(INGOT_ERR_INTERNAL, "out of memory");
  } catch (const std::exception& e) {
    return set_error(INGOT_ERR_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return set_error(INGOT_ERR_INTERNAL, "internal error");
  }
}

// A failed Status as the C API's code, by its StatusCode (never by its text). `user_error` is what
// an invalid_argument means where it happened (a bad bundle is INGOT_ERR_LOAD when loading).
ingot_status set_status(const ingot::Status& st, ingot_status user_error = INGOT_ERR_INVALID_ARGUMENT) {
  using C = ingot::StatusCode;
  switch (st.code()) {
    case C::ok: return ok();
    case C::context_full: return set_error(INGOT_ERR_CONTEXT_FULL, st.message());
    case C::io: return set_error(user_error == INGOT_ERR_LOAD ? INGOT_ERR_LOAD : INGOT_ERR_IO, st.message());
    case C::unsupported: return set_error(INGOT_ERR_UNSUPPORTED, st.message());
    case C::internal: return set_error(INGOT_ERR_INTERNAL, st.message());
    case C::invalid_argument: break;
  }
  return set_error(user_error, st.message());
}

// Reads a caller's parameter struct of possibly another (older or newer) size: the fields both
// know are copied, the rest keep their defaults.
template <typename T>
T read_params(const T* given, T defaults) {
  if (!given) return defaults;
  const size_t n = std::min<size_t>(given->struct_size, sizeof(T));
  std::memcpy(&defaults, given, n);
  defaults.struct_size = sizeof(T);
  return defaults;
}

}  // namespace

namespace {
ingot::SamplingParams sampling_params(const ingot_sampling& s) {
  ingot::SamplingParams p;
  p.temperature = s.temperature;
  p.top_k = s.top_k;
  p.top_p = s.top_p;
  p.min_p = s.min_p;
  p.repeat_penalty = s.repeat_penalty;
  p.repeat_last_n = s.repeat_last_n;
  p.presence_penalty = s.presence_penalty;
  p.seed = s.seed;
  return p;
}

ingot_stop_reason c_stop_reason(ingot::StopReason r) {
  switch (r) {
    case ingot::StopReason::eos: return INGOT_STOP_EOS;
    case ingot::StopReason::stopped: return INGOT_STOP_CALLBACK;
    case ingot::StopReason::length: return INGOT_STOP_LENGTH;
    case ingot::StopReason::context_full: return INGOT_STOP_CONTEXT_FULL;
  }
  return INGOT_STOP_CONTEXT_FULL;
}

// A result struct from a caller too old to hold the stop reason.
bool result_too_small(const ingot_generate_result* r) {
  return r && r->struct_size < offsetof(ingot_generate_result, stop_reason) + sizeof(r->stop_reason);
}

// Fills what the caller's result struct has room for (struct_size: reused_tokens came later).
void fill_result(ingot_generate_result* r, size_t prompt_tokens, size_t generated, ingot_stop_reason stop, int64_t reused) {
  if (!r) return;
  r->prompt_tokens = static_cast<int32_t>(prompt_tokens);
  r->generated_tokens = static_cast<int32_t>(generated);
  r->stop_reason = stop;
  if (r->struct_size >= offsetof(ingot_generate_result, reused_tokens) + sizeof(r->reused_tokens))
    r->reused_tokens = static_cast<int32_t>(reused);
}
}  // namespace

namespace {

// The rendered conversation (with or without the generation prompt), or an error status.
ingot::StatusOr<std::string> render_chat(const ingot::Engine& engine, const char* messages_json, bool add_generation_prompt,
                                         const char* template_source) {
  const ingot::Tokenizer* tok = engine.tokenizer();
  if (!tok) return ingot::Status::Error("the bundle has no tokenizer");
  const std::string source = template_source ? std::string(template_source) : engine.bundle().manifest().chat_template();
  if (source.empty())
    return ingot::Status::Error("the bundle has no chat template (give one, or compile with ingotc compile --chat-template)");
  INGOT_ASSIGN_OR_RETURN(ingot::ChatTemplate t, ingot::ChatTemplate::parse(source));
  ingot::ChatInputs in;
  INGOT_RETURN_IF_ERROR(ingot::chat_inputs_from_json(messages_json, in));
  in.add_generation_prompt = add_generation_prompt;
  ingot::set_chat_special_tokens(*tok, in);
  return t.apply(in);
}

}  // namespace

extern "C" {

const char* ingot_last_error(void) { return g_last_error.c_str(); }

void ingot_load_params_default(ingot_load_params* p) {
  if (p) *p = ingot_load_params{sizeof(ingot_load_params), 0, nullptr, nullptr};
}

ingot_status ingot_model_load_with(const char* path, const ingot_load_params* params, ingot_model** out) {
  return guarded([&] {
    if (!path || !out) return set_error(INGOT_ERR_INVALID_ARGUMENT, "ingot_model_load: null argument");
    *out = nullptr;
    ingot_load_params d;
    ingot_load_params_default(&d);
    const ingot_load_params p = read_params(params, d);
    ingot::EngineOptions o;
    o.verify = p.verify != 0;
    if (p.tier) o.tier = p.tier;
    if (p.trusted_keys) o.trusted_keys = p.trusted_keys;
    auto engine = ingot::Engine::load(path, o);
    if (!engine.ok()) return set_status(engine.status(), INGOT_ERR_LOAD);
    *out = new ingot_model{std::move(*engine)};
    return ok();
  });
}

ingot_status ingot_model_load(const char* path, int verify, ingot_model** out) {
  ingot_load_params p;
  ingot_load_params_default(&p);
  p.verify = verify;
  return ingot_model_load_with(path, &p, out);
}

void ingot_model_free(ingot_model* model) { delete model; }

int32_t ingot_model_vocab_size(const ingot_model* model) { return model ? static_cast<int32_t>(model->engine->vocab()) : 0; }
int64_t ingot_model_context_length(const ingot_model* model) { return model ? model->engine->max_context() : 0; }
int32_t ingot_model_eos(const ingot_model* model) {
  return model && model->engine->tokenizer() ? model->engine->tokenizer()->spec().eos : -1;
}

ingot_status ingot_tokenize(const ingot_model* model, const char* text, int add_special, int32_t* ids, int32_t capacity,
                            int32_t* n_out) {
  return guarded([&] {
    if (!model || !text || !n_out || (capacity > 0 && !ids) || capacity < 0)
      return set_error(INGOT_ERR_INVALID_ARGUMENT, "ingot_tokenize: bad argument");
    if (!model->engine->tokenizer()) return set_error(INGOT_ERR_INVALID_ARGUMENT, "the bundle has no tokenizer");
    const auto v = model->engine->tokenizer()->encode(text, add_special != 0);
    *n_out = static_cast<int32_t>(v.size());
    if (static_cast<int64_t>(v.size()) > capacity)
      return set_error(INGOT_ERR_BUFFER_TOO_SMALL, "ingot_tokenize: " + std::to_string(v.size()) + " ids do not fit in " + std::to_string(capacity));
    std::memcpy(ids, v.data(), v.size() * sizeof(int32_t));
    return ok();
  });
}

ingot_status ingot_detokenize(const ingot_model* model, const int32_t* ids, int32_t n, char* text, size_t capacity,
                              size_t* len_out) {
  return guarded([&] {
    if (!model || (n > 0 && !ids) || n < 0 || !len_out || (capacity > 0 && !text))
      return set_error(INGOT_ERR_INVALID_ARGUMENT, "ingot_detokenize: bad argument");
    const ingot::Tokenizer* tok = model->engine->tokenizer();
    if (!tok) return set_error(INGOT_ERR_INVALID_ARGUMENT, "the bundle has no tokenizer");
    for (int32_t i = 0; i < n; ++i)
      if (ids[i] < 0 || ids[i] >= tok->vocab_size())
        return set_error(INGOT_ERR_INVALID_ARGUMENT, "token id " + std::to_string(ids[i]) + " is outside the vocabulary");
    const std::string s = tok->decode(std::vector<int32_t>(ids, ids + n), true);
    *len_out = s.size();
    if (s.size() + 1 > capacity) return set_error(INGOT_ERR_BUFFER_TOO_SMALL, "ingot_detokenize: the text needs " + std::to_string(s.size() + 1) + " bytes");
    std::memcpy(text, s.c_str(), s.size() + 1);
    return ok();
  });
}

void ingot_session_params_default(ingot_session_params* p) {
  if (p) *p = ingot_session_params{sizeof(ingot_session_params), 1};
}

ingot_status ingot_session_create(const ingot_model* model, int32_t threads, ingot_session** out) {
  ingot_session_params p;
  ingot_session_params_default(&p);
  p.threads = threads;
  return ingot_session_create_with(model, &p, out);
}

ingot_status ingot_session_create_with(const ingot_model* model, const ingot_session_params* params, ingot_session** out) {
  return guarded([&] {
    ingot_session_params d;
    ingot_session_params_default(&d);
    const int32_t threads = read_params(params, d).threads;
    if (!model || !out || threads < 1) return set_error(INGOT_ERR_INVALID_ARGUMENT, "ingot_session_create: bad argument");
    *out = nullptr;
    auto s = ingot::Session::create(*model->engine, threads);
    if (!s.ok()) return set_status(s.status());
    *out = new ingot_session{model, std::move(*s)};
    return ok();
  });
}

void ingot_session_free(ingot_session* session) { delete session; }

ingot_status ingot_session_prefill(ingot_session* session, const int32_t* ids, int32_t n) {
  return guarded([&] {
    if (!session || !ids || n <= 0) return set_error(INGOT_ERR_INVALID_ARGUMENT, "ingot_session_prefill: bad argument");
    return set_status(session->session->prefill(std::span<const int32_t>(ids, static_cast<size_t>(n))));
  });
}

ingot_status ingot_session_decode(ingot_session* session, int32_t id) { return ingot_session_prefill(session, &id, 1); }

const float* ingot_session_logits(const ingot_session* session, int32_t* n_vocab) {
  if (!session) return nullptr;
  auto l = session->session->logits();
  if (n_vocab) *n_vocab = static_cast<int32_t>(l.size());
  return l.data();
}

int64_t ingot_session_position(const ingot_session* session) { return session ? session->session->position() : 0; }

void ingot_session_reset(ingot_session* session) {
  if (session) session->session->reset();
}

ingot_status ingot_session_truncate(ingot_session* session, int64_t n) {
  return guarded([&] {
    if (!session) return set_error(INGOT_ERR_INVALID_ARGUMENT, "ingot_session_truncate: no session");
    const ingot::Status st = session->session->truncate(n);
    return st.ok() ? INGOT_OK : set_error(INGOT_ERR_INVALID_ARGUMENT, st.message());
  });
}

ingot_status ingot_session_save(const ingot_session* session, const char* path) {
  return guarded([&] {
    if (!session || !path) return set_error(INGOT_ERR_INVALID_ARGUMENT, "ingot_session_save: null argument");
    return set_status(session->session->save(path));
  });
}

ingot_status ingot_session_restore(ingot_session* session, const char* path) {
  return guarded([&] {
    if (!session || !path) return set_error(INGOT_ERR_INVALID_ARGUMENT, "ingot_session_restore: null argument");
    return set_status(session->session->restore(path));
  });
}

void ingot_sampling_default(ingot_sampling* s) {
  if (!s) return;
  const ingot::SamplingParams d;
  s->temperature = d.temperature;
  s->top_k = d.top_k;
  s->top_p = d.top_p;
  s->min_p = d.min_p;
  s->repeat_penalty = d.repeat_penalty;
  s->repeat_last_n = d.repeat_last_n;
  s->presence_penalty = d.presence_penalty;
  s->seed = d.seed;
}

struct ingot_sampler {
  ingot::Sampler sampler;
};


ingot_status ingot_sampler_create(const ingot_sampling* sampling, ingot_sampler** out) {
  return guarded([&] {
    if (!out) return set_error(INGOT_ERR_INVALID_ARGUMENT, "ingot_sampler_create: out is NULL");
    *out = nullptr;
    ingot_sampling d;
    ingot_sampling_default(&d);
    const ingot::SamplingParams p = sampling_params(sampling ? *sampling : d);
    if (std::string bad = p.validate(); !bad.empty()) return set_error(INGOT_ERR_INVALID_ARGUMENT, bad);
    *out = new ingot_sampler{ingot::Sampler(p)};
    return INGOT_OK;
  });
}

ingot_status ingot_sampler_sample(ingot_sampler* sampler, const ingot_session* session, int32_t* id) {
  return guarded([&] {
    if (!sampler || !session || !id) return set_error(INGOT_ERR_INVALID_ARGUMENT, "ingot_sampler_sample: null argument");
    if (session->session->position() == 0)
      return set_error(INGOT_ERR_INVALID_ARGUMENT, "ingot_sampler_sample: the session has no tokens (prefill first)");
    *id = sampler->sampler.sample(session->session->logits(), session->session->history());
    return INGOT_OK;
  });
}

void ingot_sampler_free(ingot_sampler* sampler) { delete sampler; }


ingot_status ingot_chat_apply_template(const ingot_model* model, const char* messages_json, int add_generation_prompt,
                                       const char* template_source, char* text, size_t capacity, size_t* len_out) {
  return guarded([&] {
    if (!model || !messages_json || !len_out) return set_error(INGOT_ERR_INVALID_ARGUMENT, "ingot_chat_apply_template: null argument");
    auto out = render_chat(*model->engine, messages_json, add_generation_prompt != 0, template_source);
    if (!out.ok()) return set_error(INGOT_ERR_INVALID_ARGUMENT, out.message());
    *len_out = out->size();
    if (!text || capacity < out->size() + 1)
      return set_error(INGOT_ERR_BUFFER_TOO_SMALL, "the rendered prompt needs " + std::to_string(out->size() + 1) + " bytes");
    std::memcpy(text, out->data(), out->size());
    text[out->size()] = '\0';
    return INGOT_OK;
  });
}

ingot_status ingot_chat_turn(ingot_session* session, const char* messages_json, const char* template_source,
                             const ingot_sampling* sampling, int32_t max_new_tokens, ingot_token_callback on_token,
                             void* user, ingot_generate_result* result) {
  return guarded([&] {
    if (!session || !messages_json || max_new_tokens < 0)
      return set_error(INGOT_ERR_INVALID_ARGUMENT, "ingot_chat_turn: bad argument");
    if (result_too_small(result)) return set_error(INGOT_ERR_INVALID_ARGUMENT, "ingot_chat_turn: result->struct_size is too small");
    const ingot::Engine& engine = *session->model->engine;
    auto text = render_chat(engine, messages_json, true, template_source);
    if (!text.ok()) return set_error(INGOT_ERR_INVALID_ARGUMENT, text.message());
    const ingot::Tokenizer& tok = *engine.tokenizer();
    const std::vector<int32_t> ids = ingot::chat_prompt_ids(tok, *text);
    if (static_cast<int64_t>(ids.size()) > engine.max_context())
      return set_error(INGOT_ERR_CONTEXT_FULL, "the conversation is " + std::to_string(ids.size()) + " tokens, longer than the context of " +
                                                   std::to_string(engine.max_context()));
    int64_t reused = 0;
    auto fresh = ingot::reuse_session_prefix(*session->session, ids, &reused);
    if (!fresh.ok()) return set_status(fresh.status());
    ingot::GenerateOptions go;
    ingot_sampling d;
    ingot_sampling_default(&d);
    go.sampling = sampling_params(sampling ? *sampling : d);
    go.max_new_tokens = max_new_tokens;
    go.stop_at_eos = false;  // the end-of-turn ids below, EOS among them
    const std::vector<int32_t> end_ids = ingot::end_of_turn_ids(tok);
    bool ended = false;
    go.on_token = [&](int32_t id) {
      if (std::find(end_ids.begin(), end_ids.end(), id) != end_ids.end()) {
        ended = true;
        return false;
      }
      if (!on_token) return true;
      const std::string piece = tok.token_to_piece(id);
      return on_token(id, piece.c_str(), user) == 0;
    };
    std::vector<int32_t> generated;
    ingot::GenerateTimings t;
    const ingot::Status st = max_new_tokens > 0 ? session->session->generate(*fresh, go, &generated, &t)
                                                : session->session->prefill(*fresh);
    fill_result(result, ids.size(), generated.size() - (ended ? 1 : 0), ended ? INGOT_STOP_EOS : c_stop_reason(t.stop), reused);
    if (!st.ok()) return set_status(st);
    if (!ended && t.stop == ingot::StopReason::context_full)
      return set_error(INGOT_ERR_CONTEXT_FULL, "the context is full after " + std::to_string(generated.size()) + " generated tokens");
    return INGOT_OK;
  });
}

ingot_status ingot_generate(ingot_session* session, const char* prompt, const ingot_sampling* sampling,
                            int32_t max_new_tokens, ingot_token_callback on_token, void* user) {
  return ingot_generate_with(session, prompt, sampling, max_new_tokens, on_token, user, nullptr);
}

ingot_status ingot_generate_with(ingot_session* session, const char* prompt, const ingot_sampling* sampling,
                                 int32_t max_new_tokens, ingot_token_callback on_token, void* user,
                                 ingot_generate_result* result) {
  return guarded([&] {
    if (!session || !prompt || max_new_tokens < 0) return set_error(INGOT_ERR_INVALID_ARGUMENT, "ingot_generate: bad argument");
    if (result_too_small(result)) return set_error(INGOT_ERR_INVALID_ARGUMENT, "ingot_generate_with: result->struct_size is too small");
    const ingot::Tokenizer* tok = session->model->engine->tokenizer();
    if (!tok) return set_error(INGOT_ERR_INVALID_ARGUMENT, "the bundle has no tokenizer");
    ingot::GenerateOptions go;
    if (sampling) go.sampling = sampling_params(*sampling);
    go.max_new_tokens = max_new_tokens;
    if (on_token) {
      go.on_token = [&](int32_t id) {
        const std::string piece = tok->token_to_piece(id);
        return on_token(id, piece.c_str(), user) == 0;
      };
    }
    const auto ids = tok->encode(prompt, session->session->position() == 0);
    std::vector<int32_t> generated;
    ingot::GenerateTimings t;
    const ingot::Status st = session->session->generate(ids, go, &generated, &t);
    fill_result(result, ids.size(), generated.size(), c_stop_reason(t.stop), 0);
    if (!st.ok()) return set_status(st);
    if (t.stop == ingot::StopReason::context_full)
      return set_error(INGOT_ERR_CONTEXT_FULL, "the context is full after " + std::to_string(generated.size()) +
                                                   " generated tokens (" + std::to_string(session->session->position()) + " of " +
                                                   std::to_string(session->model->engine->max_context()) + ")");
    return INGOT_OK;
  });
}

}  // extern "C"
