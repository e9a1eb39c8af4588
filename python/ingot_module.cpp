// The Python module `ingot` (pybind11), over the C API of libingot.so and nothing else:
//
//   m = ingot.Model("model.ingot", threads=None, tier=None)
//   m.generate("Once upon a time", max_tokens=40, temperature=0)      -> str
//   for piece in m.generate("Once upon a time", stream=True): ...      (or m.stream(...))
//   m.prefill(m.tokenize("Hello")); m.logits()                        -> numpy.ndarray float32
//   s = m.session()                                                    another session, same weights
//
// A Model owns a default session; its session methods act on it. docs/packaging.md.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <ingot/ingot.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace py = pybind11;

#ifndef INGOT_VERSION
#define INGOT_VERSION "unknown"
#endif

namespace {

// ingot.Error (a RuntimeError): every failure of the runtime, with the runtime's message.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The message of the last failure on this thread (the C API keeps it per thread).
std::string last_error(const char* fallback) {
  const char* m = ingot_last_error();
  return m && *m ? std::string(m) : std::string(fallback);
}

void check(ingot_status st, const char* what) {
  if (st != INGOT_OK) throw Error(last_error(what));
}

// Bytes from the runtime as a Python str (invalid UTF-8 replaced, never an exception).
py::str to_str(const std::string& s) {
  PyObject* o = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace");
  if (!o) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(o);
}

void no_nul(const std::string& s, const char* what) {
  if (s.find('\0') != std::string::npos) throw py::value_error(std::string(what) + " contains a NUL character");
}

// A str or os.PathLike as a path.
std::string path_of(const py::object& p) { return py::str(py::module_::import("os").attr("fspath")(p)).cast<std::string>(); }

struct ModelHandle {
  ingot_model* model = nullptr;
  std::string path;
  ModelHandle() = default;
  ModelHandle(const ModelHandle&) = delete;
  ModelHandle& operator=(const ModelHandle&) = delete;
  ~ModelHandle() { ingot_model_free(model); }
};

// What the last generation of a session did.
struct LastGeneration {
  std::vector<int32_t> ids;
  std::string text;
  std::string stop_reason;  // "" before the first generation
  int32_t prompt_tokens = 0;
  uint64_t seed = 0;
};

struct SessionState {
  std::shared_ptr<ModelHandle> model;
  ingot_session* session = nullptr;
  int threads = 1;
  // One thread at a time (the C API's rule), and never during a stream that is not finished.
  std::atomic<bool> busy{false};
  LastGeneration last;
  SessionState() = default;
  SessionState(const SessionState&) = delete;
  SessionState& operator=(const SessionState&) = delete;
  ~SessionState() { ingot_session_free(session); }
};

// Claims a session for one call (or a stream's life), or raises.
class Claim {
 public:
  explicit Claim(SessionState& s) : s_(&s) {
    bool expected = false;
    if (!s.busy.compare_exchange_strong(expected, true))
      throw Error(
          "the session is in use: a stream of it is not finished (iterate it to the end or close() it), "
          "or another thread is using it");
  }
  Claim(const Claim&) = delete;
  Claim& operator=(const Claim&) = delete;
  ~Claim() { release(); }
  void release() {
    if (s_) s_->busy = false;
    s_ = nullptr;
  }

 private:
  SessionState* s_;
};

int default_threads() {
  const unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(std::min(hc, 8u));  // as `ingot run`
}

std::shared_ptr<SessionState> new_session(std::shared_ptr<ModelHandle> model, std::optional<int> threads) {
  auto s = std::make_shared<SessionState>();
  s->model = std::move(model);
  s->threads = threads ? *threads : default_threads();
  if (s->threads < 1) throw py::value_error("threads must be at least 1");
  ingot_session_params p;
  ingot_session_params_default(&p);
  p.threads = s->threads;
  ingot_status st;
  {
    py::gil_scoped_release nogil;
    st = ingot_session_create_with(s->model->model, &p, &s->session);
    if (st != INGOT_OK) throw Error(last_error("cannot create a session"));
  }
  return s;
}

// How many trailing bytes of `s` are the start of a UTF-8 character whose other bytes are still to come.
size_t incomplete_utf8_tail(const std::string& s) {
  for (size_t i = 1; i <= std::min<size_t>(3, s.size()); ++i) {
    const auto c = static_cast<unsigned char>(s[s.size() - i]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    if (c < 0xC0) return 0;            // ASCII
    const size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    return len > i ? i : 0;
  }
  return 0;
}

// The continuation's text as tokens arrive. A stop string ends it (the text stops before it, as
// `ingot run --stop`); bytes that could still become a stop string, or that start a UTF-8
// character not yet complete, are held back from the stream until they cannot.
class Text {
 public:
  explicit Text(std::vector<std::string> stops) : stops_(std::move(stops)) {}

  // Appends a token's bytes; false once a stop string has appeared.
  bool add(const char* piece) {
    text_ += piece;
    size_t first = std::string::npos, hold = 0;
    for (const std::string& st : stops_) {
      first = std::min(first, text_.find(st));
      for (size_t k = std::min(st.size() - 1, text_.size()); k > 0; --k)
        if (text_.compare(text_.size() - k, k, st, 0, k) == 0) {
          hold = std::max(hold, k);
          break;
        }
    }
    if (first != std::string::npos) {
      text_.resize(first);
      ready_ = text_.size();
      return false;
    }
    hold = std::max(hold, incomplete_utf8_tail(text_));
    ready_ = std::max(taken_, text_.size() - hold);
    return true;
  }
  // No more tokens: everything is ready.
  void finish() { ready_ = text_.size(); }
  // The bytes that became ready since the last call.
  std::string take() {
    const size_t end = std::min(ready_, text_.size());
    if (end <= taken_) return {};
    std::string out = text_.substr(taken_, end - taken_);
    taken_ = end;
    return out;
  }
  const std::string& all() const { return text_; }

 private:
  std::vector<std::string> stops_;
  std::string text_;
  size_t ready_ = 0, taken_ = 0;
};

struct GenerateArgs {
  std::string prompt;  // with chat: the conversation as JSON (ingot_chat_turn)
  bool chat = false;
  std::optional<std::string> chat_template;  // with chat: instead of the bundle's
  ingot_sampling sampling{};
  int32_t max_tokens = 0;
  std::vector<std::string> stops;
};

// One call of ingot_generate_with; runs without the GIL (on the caller's thread, or a stream's).
struct Run {
  SessionState* state = nullptr;
  GenerateArgs args;
  Text text;
  std::vector<int32_t> ids;
  ingot_generate_result result{};
  ingot_status status = INGOT_OK;
  std::string error;
  bool stop_string = false;
  bool cancelled = false;
  // Called (by a stream) after each token's text was added; false cancels the generation.
  std::function<bool()> on_text;

  Run(SessionState* s, GenerateArgs a) : state(s), args(std::move(a)), text(args.stops) {
    result.struct_size = sizeof(result);
  }

  static int on_token(int32_t id, const char* piece, void* user) {
    auto* r = static_cast<Run*>(user);
    try {
      r->ids.push_back(id);
      if (!r->text.add(piece ? piece : "")) {
        r->stop_string = true;
        return 1;
      }
      if (r->on_text && !r->on_text()) {
        r->cancelled = true;
        return 1;
      }
      return 0;
    } catch (const std::exception& e) {
      r->error = std::string("ingot (Python): ") + e.what();
      return 1;
    }
  }

  void execute() {
    status = args.chat ? ingot_chat_turn(state->session, args.prompt.c_str(),
                                         args.chat_template ? args.chat_template->c_str() : nullptr, &args.sampling,
                                         args.max_tokens, &Run::on_token, this, &result)
                       : ingot_generate_with(state->session, args.prompt.c_str(), &args.sampling, args.max_tokens,
                                             &Run::on_token, this, &result);
    if (status != INGOT_OK) error = last_error("generation failed");
    text.finish();
  }

  // Records the generation in the session; raises a failure (with the GIL) unless `quiet`. A
  // context that fills up during generation is a stop reason, not a failure (as `ingot run`); a
  // prompt that does not fit is a failure.
  void finish(bool quiet) {
    const bool filled = status == INGOT_ERR_CONTEXT_FULL && result.stop_reason == INGOT_STOP_CONTEXT_FULL;
    const bool failed = (status != INGOT_OK && !filled) || (status == INGOT_OK && !error.empty());
    LastGeneration& last = state->last;
    last.ids = ids;
    last.text = text.all();
    last.prompt_tokens = result.prompt_tokens;
    last.seed = args.sampling.seed;
    if (failed) last.stop_reason = "error";
    else if (stop_string) last.stop_reason = "stop";
    else if (cancelled) last.stop_reason = "cancelled";
    else if (filled) last.stop_reason = "context_full";
    else
      switch (result.stop_reason) {
        case INGOT_STOP_EOS: last.stop_reason = "eos"; break;
        case INGOT_STOP_LENGTH: last.stop_reason = "length"; break;
        case INGOT_STOP_CALLBACK: last.stop_reason = "stop"; break;
        case INGOT_STOP_CONTEXT_FULL: last.stop_reason = "context_full"; break;
      }
    if (failed && !quiet) throw Error(error);
  }
};

GenerateArgs make_args(const SessionState& s, std::string prompt, int64_t max_tokens, std::optional<float> temperature,
                       std::optional<int32_t> top_k, std::optional<float> top_p, std::optional<float> min_p,
                       std::optional<float> repeat_penalty, std::optional<int32_t> repeat_last_n,
                       std::optional<float> presence_penalty, std::optional<uint64_t> seed, std::vector<std::string> stop) {
  no_nul(prompt, "the prompt");
  GenerateArgs a;
  a.prompt = std::move(prompt);
  if (max_tokens < -1) throw py::value_error("max_tokens must be -1 (until the end of text or a full context) or at least 0");
  const int64_t ctx = ingot_model_context_length(s.model->model);
  a.max_tokens = static_cast<int32_t>(std::min<int64_t>(max_tokens < 0 ? ctx : max_tokens, INT32_MAX));
  ingot_sampling_default(&a.sampling);
  if (temperature) a.sampling.temperature = *temperature;
  if (top_k) a.sampling.top_k = *top_k;
  if (top_p) a.sampling.top_p = *top_p;
  if (min_p) a.sampling.min_p = *min_p;
  if (repeat_penalty) a.sampling.repeat_penalty = *repeat_penalty;
  if (repeat_last_n) a.sampling.repeat_last_n = *repeat_last_n;
  if (presence_penalty) a.sampling.presence_penalty = *presence_penalty;
  // A random seed unless one is given, as `ingot run`; last_generation["seed"] reports it.
  if (seed) a.sampling.seed = *seed;
  else {
    std::random_device rd;
    a.sampling.seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }
  for (const std::string& st : stop) {
    if (st.empty()) throw py::value_error("a stop string must not be empty");
    no_nul(st, "a stop string");
  }
  a.stops = std::move(stop);
  return a;
}

// A streamed generation: an iterator of text pieces. The generation runs on a thread of its own,
// one token ahead of the reader at most: it waits until the reader took the last piece, so a loop
// that breaks (or close()) stops it, and it holds the session until it ends.
class Stream {
 public:
  Stream(std::shared_ptr<SessionState> state, GenerateArgs args)
      : state_(std::move(state)), claim_(*state_), run_(state_.get(), std::move(args)) {
    run_.on_text = [this] {
      std::unique_lock<std::mutex> lock(mu_);
      std::string piece = run_.text.take();
      if (!piece.empty()) {
        pieces_.push_back(std::move(piece));
        cv_.notify_all();
      }
      cv_.wait(lock, [this] { return pieces_.empty() || cancel_; });
      return !cancel_;
    };
    worker_ = std::thread([this] {
      run_.execute();
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
      cv_.notify_all();
    });
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() { stop(/*quiet=*/true); }

  py::str next() {
    std::string piece;
    bool got = false;
    {
      py::gil_scoped_release nogil;
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return !pieces_.empty() || done_; });
      if (!pieces_.empty()) {
        piece = std::move(pieces_.front());
        pieces_.pop_front();
        got = true;
        cv_.notify_all();
      }
    }
    if (got) return to_str(piece);
    if (!finished_) {
      stop(/*quiet=*/false);  // joins, records, raises a failure
      std::string rest = run_.text.take();
      if (!rest.empty()) return to_str(rest);
    }
    throw py::stop_iteration();
  }

  // Stops the generation where it is (the tokens so far stay in the session) and frees the session.
  void close() { stop(/*quiet=*/true); }

 private:
  void stop(bool quiet) {
    if (finished_) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!done_) cancel_ = true;
      cv_.notify_all();
    }
    if (worker_.joinable()) {
      if (PyGILState_Check()) {
        py::gil_scoped_release nogil;
        worker_.join();
      } else {
        worker_.join();
      }
    }
    finished_ = true;
    claim_.release();
    run_.finish(quiet);
  }

  std::shared_ptr<SessionState> state_;
  Claim claim_;
  Run run_;
  std::thread worker_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> pieces_;
  bool done_ = false, cancel_ = false, finished_ = false;
};

py::object run_generation(const std::shared_ptr<SessionState>& s, GenerateArgs a, bool stream);

py::object generate(const std::shared_ptr<SessionState>& s, std::string prompt, int64_t max_tokens,
                    std::optional<float> temperature, std::optional<int32_t> top_k, std::optional<float> top_p,
                    std::optional<float> min_p, std::optional<float> repeat_penalty, std::optional<int32_t> repeat_last_n,
                    std::optional<float> presence_penalty, std::optional<uint64_t> seed, std::vector<std::string> stop,
                    bool stream) {
  return run_generation(s, make_args(*s, std::move(prompt), max_tokens, temperature, top_k, top_p, min_p, repeat_penalty,
                                     repeat_last_n, presence_penalty, seed, std::move(stop)),
                        stream);
}

// A generation (plain or chat): a stream, or run to the end here without the GIL.
py::object run_generation(const std::shared_ptr<SessionState>& s, GenerateArgs a, bool stream) {
  if (stream) return py::cast(std::make_unique<Stream>(s, std::move(a)), py::return_value_policy::take_ownership);
  Claim claim(*s);
  Run run(s.get(), std::move(a));
  {
    py::gil_scoped_release nogil;
    run.execute();
  }
  claim.release();
  run.finish(/*quiet=*/false);
  return to_str(run.text.all());
}

// One assistant turn over `messages` (OpenAI-style dicts, serialized with Python's json).
py::object chat(const std::shared_ptr<SessionState>& s, const py::object& messages, std::optional<std::string> chat_template,
                int64_t max_tokens, std::optional<float> temperature, std::optional<int32_t> top_k, std::optional<float> top_p,
                std::optional<float> min_p, std::optional<float> repeat_penalty, std::optional<int32_t> repeat_last_n,
                std::optional<float> presence_penalty, std::optional<uint64_t> seed, std::vector<std::string> stop, bool stream) {
  const std::string json =
      py::module_::import("json").attr("dumps")(messages, py::arg("ensure_ascii") = false).cast<std::string>();
  GenerateArgs a = make_args(*s, json, max_tokens, temperature, top_k, top_p, min_p, repeat_penalty, repeat_last_n,
                             presence_penalty, seed, std::move(stop));
  a.chat = true;
  if (chat_template) {
    no_nul(*chat_template, "the chat template");
    a.chat_template = std::move(chat_template);
  }
  return run_generation(s, std::move(a), stream);
}

void prefill(SessionState& s, const std::vector<int32_t>& ids) {
  if (ids.empty()) throw py::value_error("prefill needs at least one token id");
  if (ids.size() > INT32_MAX) throw py::value_error("too many token ids");
  Claim claim(s);
  py::gil_scoped_release nogil;
  check(ingot_session_prefill(s.session, ids.data(), static_cast<int32_t>(ids.size())), "prefill failed");
}

void decode(SessionState& s, int32_t id) {
  Claim claim(s);
  py::gil_scoped_release nogil;
  check(ingot_session_decode(s.session, id), "decode failed");
}

py::array_t<float> logits(SessionState& s) {
  Claim claim(s);
  if (ingot_session_position(s.session) == 0) throw Error("no logits yet: prefill or decode first");
  int32_t n = 0;
  const float* p = ingot_session_logits(s.session, &n);
  if (!p || n <= 0) throw Error("the session has no logits");
  py::array_t<float> out(n);
  std::memcpy(out.mutable_data(), p, static_cast<size_t>(n) * sizeof(float));
  return out;
}

py::dict last_generation(const SessionState& s) {
  py::dict d;
  if (s.last.stop_reason.empty()) return d;
  d["ids"] = s.last.ids;
  d["text"] = to_str(s.last.text);
  d["stop_reason"] = s.last.stop_reason;
  d["prompt_tokens"] = s.last.prompt_tokens;
  d["generated_tokens"] = s.last.ids.size();
  d["seed"] = s.last.seed;
  return d;
}

std::vector<int32_t> tokenize(const ModelHandle& m, const std::string& text, bool add_special) {
  no_nul(text, "the text");
  std::vector<int32_t> ids(text.size() + 16);
  int32_t n = 0;
  py::gil_scoped_release nogil;
  ingot_status st = ingot_tokenize(m.model, text.c_str(), add_special, ids.data(), static_cast<int32_t>(ids.size()), &n);
  if (st == INGOT_ERR_BUFFER_TOO_SMALL) {
    ids.resize(static_cast<size_t>(n));
    st = ingot_tokenize(m.model, text.c_str(), add_special, ids.data(), n, &n);
  }
  check(st, "tokenize failed");
  ids.resize(static_cast<size_t>(n));
  return ids;
}

py::str detokenize(const ModelHandle& m, const std::vector<int32_t>& ids) {
  if (ids.size() > INT32_MAX) throw py::value_error("too many token ids");
  std::string text(ids.size() * 8 + 16, '\0');
  size_t len = 0;
  {
    py::gil_scoped_release nogil;
    const int32_t n = static_cast<int32_t>(ids.size());
    ingot_status st = ingot_detokenize(m.model, ids.data(), n, text.data(), text.size(), &len);
    if (st == INGOT_ERR_BUFFER_TOO_SMALL) {
      text.resize(len + 1);
      st = ingot_detokenize(m.model, ids.data(), n, text.data(), text.size(), &len);
    }
    check(st, "detokenize failed");
  }
  text.resize(len);
  return to_str(text);
}

struct Model {
  std::shared_ptr<ModelHandle> handle;
  std::shared_ptr<SessionState> session;  // the default session
};

struct Session {
  std::shared_ptr<SessionState> state;
};

constexpr const char* kGenerateDoc = R"(Generates text after `prompt` and returns it (or, with stream=True, an iterator of its pieces).

The session keeps every token: a second call continues where the first stopped (its prompt is
appended; an empty prompt continues from the last token). The prompt gets BOS when the session is
empty. max_tokens: how many tokens at most (-1: until the end of text or a full context).
Sampling: temperature (0: greedy), top_k, top_p, min_p, repeat_penalty, repeat_last_n,
presence_penalty; unset, the runtime's defaults (llama.cpp's). seed: random unless given. stop:
strings that end the text (the text stops before the first one). The stop reason is in
`stop_reason` afterwards: "eos", "length", "stop", "context_full" or "cancelled" (a stream closed
early).)";

// The session methods, bound on Session and on Model (which uses its default session).
template <typename T, typename Get>
void bind_session_methods(py::class_<T>& c, Get get) {
  c.def(
      "generate",
      [get](T& self, std::string prompt, int64_t max_tokens, std::optional<float> temperature, std::optional<int32_t> top_k,
            std::optional<float> top_p, std::optional<float> min_p, std::optional<float> repeat_penalty,
            std::optional<int32_t> repeat_last_n, std::optional<float> presence_penalty, std::optional<uint64_t> seed,
            std::vector<std::string> stop, bool stream) {
        return generate(get(self), std::move(prompt), max_tokens, temperature, top_k, top_p, min_p, repeat_penalty,
                        repeat_last_n, presence_penalty, seed, std::move(stop), stream);
      },
      py::arg("prompt") = "", py::kw_only(), py::arg("max_tokens") = 128, py::arg("temperature") = py::none(),
      py::arg("top_k") = py::none(), py::arg("top_p") = py::none(), py::arg("min_p") = py::none(),
      py::arg("repeat_penalty") = py::none(), py::arg("repeat_last_n") = py::none(),
      py::arg("presence_penalty") = py::none(), py::arg("seed") = py::none(),
      py::arg("stop") = std::vector<std::string>{}, py::arg("stream") = false, kGenerateDoc);
  c.def(
      "stream",
      [get](T& self, std::string prompt, int64_t max_tokens, std::optional<float> temperature, std::optional<int32_t> top_k,
            std::optional<float> top_p, std::optional<float> min_p, std::optional<float> repeat_penalty,
            std::optional<int32_t> repeat_last_n, std::optional<float> presence_penalty, std::optional<uint64_t> seed,
            std::vector<std::string> stop) {
        return generate(get(self), std::move(prompt), max_tokens, temperature, top_k, top_p, min_p, repeat_penalty,
                        repeat_last_n, presence_penalty, seed, std::move(stop), /*stream=*/true);
      },
      py::arg("prompt") = "", py::kw_only(), py::arg("max_tokens") = 128, py::arg("temperature") = py::none(),
      py::arg("top_k") = py::none(), py::arg("top_p") = py::none(), py::arg("min_p") = py::none(),
      py::arg("repeat_penalty") = py::none(), py::arg("repeat_last_n") = py::none(),
      py::arg("presence_penalty") = py::none(), py::arg("seed") = py::none(),
      py::arg("stop") = std::vector<std::string>{}, "generate(..., stream=True): an iterator of the text's pieces.");
  c.def(
      "chat",
      [get](T& self, const py::object& messages, std::optional<std::string> chat_template, int64_t max_tokens,
            std::optional<float> temperature, std::optional<int32_t> top_k, std::optional<float> top_p,
            std::optional<float> min_p, std::optional<float> repeat_penalty, std::optional<int32_t> repeat_last_n,
            std::optional<float> presence_penalty, std::optional<uint64_t> seed, std::vector<std::string> stop, bool stream) {
        return chat(get(self), messages, std::move(chat_template), max_tokens, temperature, top_k, top_p, min_p,
                    repeat_penalty, repeat_last_n, presence_penalty, seed, std::move(stop), stream);
      },
      py::arg("messages"), py::kw_only(), py::arg("template") = py::none(), py::arg("max_tokens") = 128,
      py::arg("temperature") = py::none(), py::arg("top_k") = py::none(), py::arg("top_p") = py::none(),
      py::arg("min_p") = py::none(), py::arg("repeat_penalty") = py::none(), py::arg("repeat_last_n") = py::none(),
      py::arg("presence_penalty") = py::none(), py::arg("seed") = py::none(), py::arg("stop") = std::vector<std::string>{},
      py::arg("stream") = false,
      R"(The assistant's reply to `messages` (OpenAI-style [{"role": ..., "content": ...}], or a dict with
"messages" and "tools"), rendered with the bundle's chat template (or `template`). The session
keeps the conversation: call again with the reply and a new message appended, and only the new
tokens are processed. The reply ends at the end of the turn, max_tokens, a stop string or a full
context; the other options are generate()'s.)");
  c.def(
      "prefill", [get](T& self, const std::vector<int32_t>& ids) { prefill(*get(self), ids); }, py::arg("ids"),
      "Runs the model over token ids, appended to the context; logits() then has the next token's.");
  c.def(
      "decode", [get](T& self, int32_t id) { decode(*get(self), id); }, py::arg("id"), "prefill([id]).");
  c.def(
      "logits", [get](T& self) { return logits(*get(self)); },
      "The next-token logits after the last prefill/decode/generate: a new float32 array of vocab_size.");
  c.def(
      "reset",
      [get](T& self) {
        auto s = get(self);
        Claim claim(*s);
        ingot_session_reset(s->session);
      },
      "Forgets the context (position 0).");
  c.def(
      "truncate",
      [get](T& self, int64_t n) {
        auto s = get(self);
        Claim claim(*s);
        check(ingot_session_truncate(s->session, n), "truncate failed");
      },
      py::arg("n"), "Keeps the first n tokens of the context; the logits are current after the next prefill or decode.");
  c.def(
      "save",
      [get](T& self, const py::object& path) {
        auto s = get(self);
        const std::string p = path_of(path);
        Claim claim(*s);
        py::gil_scoped_release nogil;
        check(ingot_session_save(s->session, p.c_str()), "save failed");
      },
      py::arg("path"), "Writes the context (KV cache, position, history, logits) to a file.");
  c.def(
      "restore",
      [get](T& self, const py::object& path) {
        auto s = get(self);
        const std::string p = path_of(path);
        Claim claim(*s);
        py::gil_scoped_release nogil;
        check(ingot_session_restore(s->session, p.c_str()), "restore failed");
      },
      py::arg("path"), "Reads a context saved by save() (from the same bundle).");
  c.def_property_readonly(
      "position", [get](T& self) { return ingot_session_position(get(self)->session); }, "Tokens in the context.");
  c.def_property_readonly(
      "threads", [get](T& self) { return get(self)->threads; }, "Kernel threads of the session.");
  c.def_property_readonly(
      "stop_reason",
      [get](T& self) -> py::object {
        const auto& r = get(self)->last.stop_reason;
        if (r.empty()) return py::none();
        return py::str(r);
      },
      "Why the last generation stopped (None before the first).");
  c.def_property_readonly(
      "last_generation", [get](T& self) { return last_generation(*get(self)); },
      "The last generation: ids, text, stop_reason, prompt_tokens, generated_tokens, seed ({} before the first).");
}

}  // namespace

PYBIND11_MODULE(ingot, m) {
  m.doc() = "Ingot: runs LLM bundles compiled ahead of time by ingotc (the C API of libingot.so).";
  m.attr("__version__") = INGOT_VERSION;
  py::register_exception<Error>(m, "Error", PyExc_RuntimeError);

  py::class_<Stream>(m, "Stream", "The pieces of a streamed generation (an iterator); close() stops it.")
      .def("__iter__", [](Stream& s) -> Stream& { return s; })
      .def("__next__", &Stream::next)
      .def("close", &Stream::close)
      .def("__enter__", [](Stream& s) -> Stream& { return s; })
      .def("__exit__", [](Stream& s, const py::args&) { s.close(); });

  py::class_<Session> session(m, "Session",
                              "A context (KV cache) over a Model's weights: Model.session(). One thread at a time.");
  bind_session_methods(session, [](Session& s) { return s.state; });

  py::class_<Model> model(m, "Model", "A bundle (*.ingot) loaded, with a default session its methods use.");
  model.def(py::init([](const py::object& path, std::optional<int> threads, std::optional<std::string> tier, bool verify,
                        std::optional<std::string> trusted_keys) {
              auto h = std::make_shared<ModelHandle>();
              h->path = path_of(path);
              ingot_load_params p;
              ingot_load_params_default(&p);
              p.verify = verify ? 1 : 0;
              if (tier) p.tier = tier->c_str();
              if (trusted_keys) p.trusted_keys = trusted_keys->c_str();
              {
                py::gil_scoped_release nogil;
                check(ingot_model_load_with(h->path.c_str(), &p, &h->model), "cannot load the bundle");
              }
              Model model{h, new_session(h, threads)};
              return model;
            }),
            py::arg("path"), py::kw_only(), py::arg("threads") = py::none(), py::arg("tier") = py::none(),
            py::arg("verify") = false, py::arg("trusted_keys") = py::none(),
            "Loads a bundle. threads: the default session's kernel threads (default: the hardware threads, "
            "at most 8). tier: a CPU tier's kernels (default: INGOT_TIER, else the best this CPU runs). "
            "verify: check every section's hash. trusted_keys: require a signature (docs/security.md).");
  model.def_property_readonly("path", [](const Model& m) { return m.handle->path; });
  model.def_property_readonly("vocab_size", [](const Model& m) { return ingot_model_vocab_size(m.handle->model); });
  model.def_property_readonly("context_length",
                              [](const Model& m) { return ingot_model_context_length(m.handle->model); });
  model.def_property_readonly("eos", [](const Model& m) -> py::object {
    const int32_t e = ingot_model_eos(m.handle->model);
    if (e < 0) return py::none();
    return py::int_(e);
  });
  model.def(
      "tokenize", [](const Model& m, const std::string& text, bool add_special) { return tokenize(*m.handle, text, add_special); },
      py::arg("text"), py::arg("add_special") = true, "Text to token ids (with BOS if add_special and the model adds one).");
  model.def(
      "detokenize", [](const Model& m, const std::vector<int32_t>& ids) { return detokenize(*m.handle, ids); },
      py::arg("ids"), "Token ids to text.");
  model.def(
      "session", [](const Model& m, std::optional<int> threads) { return Session{new_session(m.handle, threads)}; },
      py::arg("threads") = py::none(), "A new session (its own context) over the same weights.");
  model.def("__repr__", [](const Model& m) {
    return "<ingot.Model " + py::repr(py::str(m.handle->path)).cast<std::string>() +
           " vocab_size=" + std::to_string(ingot_model_vocab_size(m.handle->model)) +
           " context_length=" + std::to_string(ingot_model_context_length(m.handle->model)) + ">";
  });
  bind_session_methods(model, [](Model& m) { return m.session; });
}
