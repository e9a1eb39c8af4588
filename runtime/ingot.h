/* The Ingot runtime's C API: load a bundle (*.ingot), open sessions, generate text.
 *
 * Handles are opaque. Every function that can fail returns an ingot_status; the message of the
 * last failure on the calling thread is ingot_last_error(). No C++ exception crosses this API.
 * A model may be shared by sessions on different threads; one session is used by one thread at a
 * time. See docs/runtime.md for an example. */
#ifndef INGOT_H
#define INGOT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ingot_model ingot_model;
typedef struct ingot_session ingot_session;

typedef enum {
  INGOT_OK = 0,
  INGOT_ERR_INVALID_ARGUMENT = 1, /* a null pointer, a bad value, a token outside the vocabulary */
  INGOT_ERR_LOAD = 2,             /* the bundle cannot be opened, verified or loaded */
  INGOT_ERR_CONTEXT_FULL = 3,     /* the tokens do not fit in the session's context */
  INGOT_ERR_IO = 4,               /* saving or restoring a session */
  INGOT_ERR_BUFFER_TOO_SMALL = 5, /* the output did not fit; the size needed is returned */
  INGOT_ERR_INTERNAL = 6,         /* out of memory or a bug: the message says which */
  INGOT_ERR_UNSUPPORTED = 7       /* valid, but this CPU or runtime cannot run it (a missing CPU feature) */
} ingot_status;

/* The message of the last failure on this thread ("" if none). Valid until the next call. */
const char* ingot_last_error(void);

/* Options of ingot_model_load_with. Fill with ingot_load_params_default, then set fields: a
 * program built against an older or newer header passes its struct_size, and fields it does not
 * know keep their defaults, so new options never break the ABI. */
typedef struct {
  uint32_t struct_size; /* sizeof(ingot_load_params) as the caller knows it */
  int32_t verify;       /* != 0: check every section's SHA-256 first (the manifest's and the
                         * kernels' are checked on every load) */
  /* The kernel set to run, by CPU tier name ("x86-64-v3", "avx512", ...). NULL or "" (the
   * default): the environment variable INGOT_TIER when set, otherwise the most demanding tier in
   * the bundle this CPU runs. A tier the bundle lacks: INGOT_ERR_LOAD; one this CPU cannot run:
   * INGOT_ERR_UNSUPPORTED. Copied during the call. */
  const char* tier;
  /* A trusted-keys file (docs/security.md): the bundle must carry a valid signature by one of its
   * keys, else INGOT_ERR_LOAD before any kernel code is loaded. NULL or "" (the default): the
   * environment variable INGOT_TRUSTED_KEYS when set, otherwise $XDG_CONFIG_HOME/ingot/trusted-keys
   * (~/.config/ingot/trusted-keys) if it exists, otherwise no signature is required. Copied during
   * the call. */
  const char* trusted_keys;
} ingot_load_params;
void ingot_load_params_default(ingot_load_params* p);
/* params may be NULL (the defaults). */
ingot_status ingot_model_load_with(const char* path, const ingot_load_params* params, ingot_model** out);
/* The same with one option (kept for existing callers). */
ingot_status ingot_model_load(const char* path, int verify, ingot_model** out);
void ingot_model_free(ingot_model* model);
int32_t ingot_model_vocab_size(const ingot_model* model);
int64_t ingot_model_context_length(const ingot_model* model);
int32_t ingot_model_eos(const ingot_model* model); /* -1 if none */

/* Text to ids (with BOS when add_special and the model adds one). Writes up to `capacity` ids;
 * *n_out is the number of ids the text has (INGOT_ERR_BUFFER_TOO_SMALL if more than capacity). */
ingot_status ingot_tokenize(const ingot_model* model, const char* text, int add_special, int32_t* ids,
                            int32_t capacity, int32_t* n_out);
/* Ids to UTF-8 text, NUL-terminated; *len_out is the length without the NUL. */
ingot_status ingot_detokenize(const ingot_model* model, const int32_t* ids, int32_t n, char* text, size_t capacity,
                              size_t* len_out);

/* Options of ingot_session_create_with (sized like ingot_load_params). */
typedef struct {
  uint32_t struct_size; /* sizeof(ingot_session_params) as the caller knows it */
  int32_t threads;      /* kernel threads, >= 1 (default 1) */
} ingot_session_params;
void ingot_session_params_default(ingot_session_params* p);
/* params may be NULL (the defaults). */
ingot_status ingot_session_create_with(const ingot_model* model, const ingot_session_params* params, ingot_session** out);
/* The same with one option (kept for existing callers). */
ingot_status ingot_session_create(const ingot_model* model, int32_t threads, ingot_session** out);
void ingot_session_free(ingot_session* session);
ingot_status ingot_session_prefill(ingot_session* session, const int32_t* ids, int32_t n);
ingot_status ingot_session_decode(ingot_session* session, int32_t id);
/* The next-token logits after the last prefill/decode; *n_vocab gets their count. */
const float* ingot_session_logits(const ingot_session* session, int32_t* n_vocab);
int64_t ingot_session_position(const ingot_session* session);
void ingot_session_reset(ingot_session* session);
/* Keeps the first n tokens of the context, forgetting the rest (0 <= n <= position); the logits
 * are not current until the next prefill or decode. */
ingot_status ingot_session_truncate(ingot_session* session, int64_t n);
ingot_status ingot_session_save(const ingot_session* session, const char* path);
ingot_status ingot_session_restore(ingot_session* session, const char* path);

typedef struct {
  float temperature; /* 0: greedy */
  int32_t top_k;     /* 0: off */
  float top_p;       /* 1: off */
  float min_p;       /* 0: off */
  float repeat_penalty;
  int32_t repeat_last_n;
  float presence_penalty;
  uint64_t seed;
} ingot_sampling;

/* llama.cpp-like defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no penalties. */
void ingot_sampling_default(ingot_sampling* s);

/* A sampler: the settings and a random stream of its own (seeded once), for callers that run
 * prefill/decode themselves. Picks from the session's current logits, with the penalties looking
 * at the session's tokens. */
typedef struct ingot_sampler ingot_sampler;
ingot_status ingot_sampler_create(const ingot_sampling* sampling, ingot_sampler** out);
ingot_status ingot_sampler_sample(ingot_sampler* sampler, const ingot_session* session, int32_t* id);
void ingot_sampler_free(ingot_sampler* sampler);

/* Called with each new token and its text; return non-zero to stop. */
typedef int (*ingot_token_callback)(int32_t id, const char* piece, void* user);

/* Why ingot_generate_with stopped. */
typedef enum {
  INGOT_STOP_EOS = 0,         /* the model's end-of-text token */
  INGOT_STOP_LENGTH = 1,      /* max_new_tokens were generated */
  INGOT_STOP_CALLBACK = 2,    /* the callback returned non-zero */
  INGOT_STOP_CONTEXT_FULL = 3 /* the context is full (the call then returns INGOT_ERR_CONTEXT_FULL) */
} ingot_stop_reason;

typedef struct {
  uint32_t struct_size;     /* sizeof(ingot_generate_result) as the caller knows it */
  int32_t prompt_tokens;    /* tokens of `prompt` (BOS included) */
  int32_t generated_tokens; /* tokens sampled (each passed to the callback) */
  ingot_stop_reason stop_reason;
  int32_t reused_tokens;    /* ingot_chat_turn: prompt tokens the session already held (not
                             * processed again); 0 for ingot_generate_with */
} ingot_generate_result;

/* Tokenizes `prompt` (with BOS when the session is empty), prefills it, samples up to
 * max_new_tokens (stopping at EOS). Every sampled token stays in the session's context, so a
 * second call continues exactly where the first stopped: generate(a) then generate(b) computes
 * what feeding the same tokens at once would. An empty prompt continues from the last token.
 * When the context fills up, returns INGOT_ERR_CONTEXT_FULL (the tokens generated so far were
 * passed to the callback). `result` may be NULL; set its struct_size first. */
ingot_status ingot_generate_with(ingot_session* session, const char* prompt, const ingot_sampling* sampling,
                                 int32_t max_new_tokens, ingot_token_callback on_token, void* user,
                                 ingot_generate_result* result);
/* Renders the bundle's chat template (or `template_source`, when not NULL) over `messages_json`:
 * an OpenAI-style JSON list of {"role", "content"} messages, or an object with "messages" and
 * optionally "tools", "documents" and other template variables; bos_token and eos_token come from
 * the tokenizer. Writes the NUL-terminated text; *len_out is its length without the NUL
 * (INGOT_ERR_BUFFER_TOO_SMALL when it does not fit `capacity`). A bundle without a template and no
 * `template_source` is INGOT_ERR_INVALID_ARGUMENT. */
ingot_status ingot_chat_apply_template(const ingot_model* model, const char* messages_json, int add_generation_prompt,
                                       const char* template_source, char* text, size_t capacity, size_t* len_out);

/* One assistant turn: renders the conversation with the generation prompt (as
 * ingot_chat_apply_template), feeds the session only the tokens after the prefix it already holds
 * (dropping a cached tail where the re-tokenized conversation differs), and samples the reply,
 * which ends at the model's end-of-text token or an end-of-turn token (<|eot_id|>, <|im_end|>,
 * <end_of_turn>, ...: not passed to the callback, kept in the context), at max_new_tokens, when
 * the callback returns non-zero, or when the context is full (INGOT_ERR_CONTEXT_FULL). Calling it
 * again with the reply appended and a new user message reuses everything before. result->
 * prompt_tokens counts the whole rendered conversation. */
ingot_status ingot_chat_turn(ingot_session* session, const char* messages_json, const char* template_source,
                             const ingot_sampling* sampling, int32_t max_new_tokens, ingot_token_callback on_token,
                             void* user, ingot_generate_result* result);

/* ingot_generate_with without a result. */
ingot_status ingot_generate(ingot_session* session, const char* prompt, const ingot_sampling* sampling,
                            int32_t max_new_tokens, ingot_token_callback on_token, void* user);

#ifdef __cplusplus
}
#endif

#endif /* INGOT_H */
