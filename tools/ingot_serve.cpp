// ingot serve: the OpenAI HTTP API (POST /v1/chat/completions, POST /v1/completions, GET
// /v1/models, GET /health, GET /metrics) on cpp-httplib, over the continuous-batching scheduler
// of runtime/serve_scheduler.h. Requests are parsed and checked here (OpenAI-shaped errors),
// tokenized, and queued; each handler thread then waits on its request's stream and writes the
// response (or server-sent events). See docs/serve.md.
#include "tools/ingot_serve.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include <pthread.h>
#include <sys/socket.h>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "base/parse.h"
#include "runtime/chat_template.h"
#include "runtime/chat_turn.h"
#include "runtime/engine.h"
#include "runtime/serve_scheduler.h"
#include "tools/ingot_run.h"

namespace ingot {
namespace {

using json = nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// ChatML, for a bundle without a chat template of its own (llama-server's fallback too).
constexpr const char* kDefaultTemplate =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

struct ApiError {
  int status = 400;
  std::string message, type = "invalid_request_error", param, code;
};

json error_body(const ApiError& e) {
  return {{"error",
           {{"message", e.message},
            {"type", e.type},
            {"param", e.param.empty() ? json(nullptr) : json(e.param)},
            {"code", e.code.empty() ? json(nullptr) : json(e.code)}}}};
}

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(dump(error_body(e)), "application/json");
}

struct ServeConfig {
  std::string path, host = "127.0.0.1", api_key, template_file, tier, keys, draft;
  int port = 8080;
  int64_t max_body = 1 << 20;
  bool mmap = false;  // --mmap: map the bundle instead of reading it into huge pages
  ServeOptions scheduler;
};

// Requests by endpoint and status, for /metrics.
class RequestCounter {
 public:
  void count(const std::string& endpoint, int status) {
    std::lock_guard<std::mutex> lk(mu_);
    ++counts_[{endpoint, status}];
  }
  std::map<std::pair<std::string, int>, int64_t> get() const {
    std::lock_guard<std::mutex> lk(mu_);
    return counts_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> counts_;
};

const char* const kEndpoints[] = {"/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics"};

std::string endpoint_label(const std::string& path) {
  for (const char* e : kEndpoints)
    if (path == e) return e;
  return "other";
}

// A parsed request: the scheduler's part, and what the response needs.
struct Parsed {
  ServeRequest request;
  bool stream = false, include_usage = false;
  bool ignore_eos = false;  // an extension (llama-server's): generate past the end-of-text ids
};

// Reads the sampling and length parameters common to both endpoints.
std::optional<ApiError> read_params(const json& body, const Engine& engine, Parsed* out) {
  SamplingParams& s = out->request.sampling;
  s = SamplingParams{};
  if (engine.bundle().manifest().generation().has_temperature())
    s.temperature = static_cast<float>(engine.bundle().manifest().generation().temperature());
  auto bad = [](const std::string& param, const std::string& msg) { return ApiError{400, msg, "invalid_request_error", param, "invalid_value"}; };
  auto number = [&](const char* name, double lo, double hi, float* dst) -> std::optional<ApiError> {
    if (!body.contains(name) || body[name].is_null()) return std::nullopt;
    if (!body[name].is_number()) return bad(name, std::string("'") + name + "' must be a number");
    const double v = body[name].get<double>();
    if (!(v >= lo && v <= hi))
      return bad(name, std::string("'") + name + "' must be between " + json(lo).dump() + " and " + json(hi).dump() + ", got " + json(v).dump());
    *dst = static_cast<float>(v);
    return std::nullopt;
  };
  auto integer = [&](const char* name, int64_t lo, int64_t hi, int64_t* dst) -> std::optional<ApiError> {
    if (!body.contains(name) || body[name].is_null()) return std::nullopt;
    if (!body[name].is_number_integer()) return bad(name, std::string("'") + name + "' must be an integer");
    const int64_t v = body[name].is_number_unsigned() && body[name].get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)
                          ? INT64_MAX
                          : body[name].get<int64_t>();
    if (v < lo || v > hi)
      return bad(name, std::string("'") + name + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " + std::to_string(v));
    *dst = v;
    return std::nullopt;
  };
  if (auto e = number("temperature", 0, 100, &s.temperature)) return e;
  if (auto e = number("top_p", 1e-9, 1, &s.top_p)) return e;
  if (auto e = number("min_p", 0, 1, &s.min_p)) return e;
  if (auto e = number("presence_penalty", -2, 2, &s.presence_penalty)) return e;
  if (auto e = number("frequency_penalty", -2, 2, &s.frequency_penalty)) return e;
  if (auto e = number("repeat_penalty", 1e-9, 100, &s.repeat_penalty)) return e;
  int64_t top_k = s.top_k;
  if (auto e = integer("top_k", 0, INT32_MAX, &top_k)) return e;
  s.top_k = static_cast<int32_t>(top_k);
  int64_t n = 1;
  if (auto e = integer("n", 1, INT32_MAX, &n)) return e;
  if (n != 1) return ApiError{400, "only n = 1 is supported, got " + std::to_string(n), "invalid_request_error", "n", "unsupported_value"};
  int64_t max_tokens = -1;
  if (auto e = integer("max_tokens", 1, INT32_MAX, &max_tokens)) return e;
  if (auto e = integer("max_completion_tokens", 1, INT32_MAX, &max_tokens)) return e;
  out->request.max_tokens = max_tokens;
  // The seed: any integer (a negative one is taken modulo 2^64); random when not given.
  if (body.contains("seed") && !body["seed"].is_null()) {
    if (!body["seed"].is_number_integer()) return bad("seed", "'seed' must be an integer");
    s.seed = body["seed"].is_number_unsigned() ? body["seed"].get<uint64_t>() : static_cast<uint64_t>(body["seed"].get<int64_t>());
  } else {
    s.seed = (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  }
  if (body.contains("stop") && !body["stop"].is_null()) {
    const json& st = body["stop"];
    std::vector<std::string> stops;
    if (st.is_string()) stops.push_back(st.get<std::string>());
    else if (st.is_array()) {
      for (const json& x : st) {
        if (!x.is_string()) return bad("stop", "'stop' must be a string or an array of strings");
        stops.push_back(x.get<std::string>());
      }
    } else {
      return bad("stop", "'stop' must be a string or an array of strings");
    }
    if (stops.size() > 16) return bad("stop", "'stop' takes at most 16 strings, got " + std::to_string(stops.size()));
    for (const std::string& x : stops)
      if (x.empty()) return bad("stop", "'stop' strings must not be empty");
    out->request.stops = stops;
  }
  if (body.contains("stream") && !body["stream"].is_null()) {
    if (!body["stream"].is_boolean()) return bad("stream", "'stream' must be true or false");
    out->stream = body["stream"].get<bool>();
  }
  if (body.contains("ignore_eos") && !body["ignore_eos"].is_null()) {
    if (!body["ignore_eos"].is_boolean()) return bad("ignore_eos", "'ignore_eos' must be true or false");
    out->ignore_eos = body["ignore_eos"].get<bool>();
  }
  if (body.contains("stream_options") && body["stream_options"].is_object() && body["stream_options"].contains("include_usage"))
    out->include_usage = body["stream_options"]["include_usage"].is_boolean() && body["stream_options"]["include_usage"].get<bool>();
  if (std::string why = s.validate(); !why.empty()) return bad("", why);
  return std::nullopt;
}

class Server {
 public:
  Server(ServeConfig config, std::unique_ptr<Engine> engine, std::unique_ptr<ServeScheduler> scheduler, ChatTemplate chat_template,
         std::string model_id)
      : config_(std::move(config)), engine_(std::move(engine)), scheduler_(std::move(scheduler)),
        chat_template_(std::move(chat_template)), model_id_(std::move(model_id)), created_(std::time(nullptr)) {}

  httplib::Server& http() { return http_; }
  ServeScheduler& scheduler() { return *scheduler_; }

  void install() {
    const int pool = std::min(1024, config_.scheduler.parallel + config_.scheduler.queue + 8);
    http_.new_task_queue = [pool] { return new httplib::ThreadPool(static_cast<size_t>(pool)); };
    http_.set_payload_max_length(static_cast<size_t>(config_.max_body));
    http_.set_keep_alive_max_count(1000);
    http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!config_.api_key.empty() && req.path.rfind("/v1/", 0) == 0) {
        const std::string auth = req.get_header_value("Authorization");
        if (auth != "Bearer " + config_.api_key) {
          send_error(res, ApiError{401, auth.empty() ? "no API key given: send 'Authorization: Bearer KEY'" : "the API key is not valid",
                                   "invalid_request_error", "", "invalid_api_key"});
          return httplib::Server::HandlerResponse::Handled;
        }
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    http_.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      ApiError e{res.status, "", "invalid_request_error", "", ""};
      if (res.status == 404) e.message = "no such endpoint: " + req.method + " " + req.path, e.code = "not_found";
      else if (res.status == 405) e.message = "method not allowed: " + req.method + " " + req.path;
      else if (res.status == 413) e.message = "the request body is larger than the server's limit (--max-body)", e.code = "request_too_large";
      else if (res.status == 414) e.message = "the request URI is too long";
      else e.message = "HTTP error " + std::to_string(res.status), e.type = res.status >= 500 ? "server_error" : e.type;
      send_error(res, e);
      return httplib::Server::HandlerResponse::Handled;
    }));
    http_.set_logger([this](const httplib::Request& req, const httplib::Response& res) { counter_.count(endpoint_label(req.path), res.status); });

    http_.Get("/health", [](const httplib::Request&, httplib::Response& res) { res.set_content("{\"status\":\"ok\"}", "application/json"); });
    http_.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      json j = {{"object", "list"},
                {"data", json::array({{{"id", model_id_}, {"object", "model"}, {"created", created_}, {"owned_by", "ingot"},
                                        {"meta", {{"context", scheduler_->context()}, {"vocab", engine_->vocab()}, {"tier", engine_->tier()}}}}})}};
      res.set_content(dump(j), "application/json");
    });
    http_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) { res.set_content(metrics(), "text/plain; version=0.0.4"); });
    http_.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) { handle(req, res, false); });
    http_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) { handle(req, res, true); });
  }

 private:
  // The prompt of a completion request: a string (or a list of one string).
  std::optional<ApiError> completion_prompt(const json& body, Parsed* p) {
    if (!body.contains("prompt")) return ApiError{400, "'prompt' is required", "invalid_request_error", "prompt", "missing_required_parameter"};
    const json& pr = body["prompt"];
    std::string text;
    if (pr.is_string()) text = pr.get<std::string>();
    else if (pr.is_array() && pr.size() == 1 && pr[0].is_string()) text = pr[0].get<std::string>();
    else return ApiError{400, "'prompt' must be a string (or a list of one string)", "invalid_request_error", "prompt", "invalid_type"};
    const Tokenizer& tok = *engine_->tokenizer();
    p->request.prompt = tok.encode(text, true);  // as `ingot run -p TEXT` tokenizes it
    if (tok.spec().eos >= 0) p->request.end_ids = {tok.spec().eos};
    return std::nullopt;
  }

  // The messages rendered with the chat template and tokenized as `ingot chat` does.
  std::optional<ApiError> chat_prompt(const json& body, Parsed* p) {
    auto bad = [](const std::string& msg) { return ApiError{400, msg, "invalid_request_error", "messages", "invalid_value"}; };
    if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty())
      return bad("'messages' must be a non-empty array of {role, content}");
    json messages = json::array();
    for (size_t i = 0; i < body["messages"].size(); ++i) {
      const json& m = body["messages"][i];
      const std::string at = "messages[" + std::to_string(i) + "]";
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) return bad(at + " needs a string 'role'");
      std::string content;
      const json c = m.contains("content") ? m["content"] : json(nullptr);
      if (c.is_string()) content = c.get<std::string>();
      else if (c.is_array()) {
        for (const json& part : c) {
          if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
            return bad(at + ".content: only text parts ({\"type\": \"text\", \"text\": ...}) are supported");
          content += part["text"].get<std::string>();
        }
      } else if (!c.is_null()) {
        return bad(at + ".content must be a string or an array of text parts");
      }
      messages.push_back({{"role", m["role"]}, {"content", content}});
    }
    ChatInputs in;
    if (Status st = chat_inputs_from_json(dump(messages), in); !st.ok()) return bad(st.message());
    in.add_generation_prompt = true;
    const Tokenizer& tok = *engine_->tokenizer();
    set_chat_special_tokens(tok, in);
    auto text = chat_template_.apply(in);
    if (!text.ok()) return bad("the chat template failed on these messages: " + text.message());
    p->request.prompt = chat_prompt_ids(tok, *text);
    p->request.end_ids = end_of_turn_ids(tok);
    return std::nullopt;
  }

  json usage(const ServeStream& s) const {
    return {{"prompt_tokens", s.prompt_tokens()},
            {"completion_tokens", s.completion_tokens()},
            {"total_tokens", s.prompt_tokens() + s.completion_tokens()},
            {"prompt_tokens_details", {{"cached_tokens", s.cached_tokens()}}}};
  }

  std::string new_id(bool chat) {
    static std::atomic<uint64_t> counter{0};
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%s-%llx%06llx", chat ? "chatcmpl" : "cmpl", static_cast<unsigned long long>(created_),
                  static_cast<unsigned long long>(++counter));
    return buf;
  }

  void handle(const httplib::Request& req, httplib::Response& res, bool chat) {
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded()) {
      std::string why;
      try {
        (void)json::parse(req.body);
      } catch (const json::parse_error& e) {
        why = e.what();
      }
      return send_error(res, ApiError{400, "the request body is not valid JSON: " + why, "invalid_request_error", "", "invalid_json"});
    }
    if (!body.is_object()) return send_error(res, ApiError{400, "the request body must be a JSON object", "invalid_request_error", "", "invalid_json"});
    Parsed p;
    if (auto e = read_params(body, *engine_, &p)) return send_error(res, *e);
    if (auto e = chat ? chat_prompt(body, &p) : completion_prompt(body, &p)) return send_error(res, *e);
    if (p.ignore_eos) p.request.end_ids.clear();
    bool queue_full = false;
    auto submitted = scheduler_->submit(std::move(p.request), &queue_full);
    if (!submitted.ok()) {
      if (queue_full) return send_error(res, ApiError{503, submitted.message(), "server_error", "", "queue_full"});
      const bool too_long = submitted.status().code() == StatusCode::context_full;
      return send_error(res, ApiError{400, submitted.message(), "invalid_request_error", too_long ? (chat ? "messages" : "prompt") : "",
                                      too_long ? "context_length_exceeded" : "invalid_value"});
    }
    std::shared_ptr<ServeStream> stream = *submitted;
    const std::string id = new_id(chat);
    const int64_t created = std::time(nullptr);
    auto finish_name = [](FinishReason r) { return r == FinishReason::length ? "length" : "stop"; };

    if (!p.stream) {
      std::string text, part;
      while (!stream->wait(std::chrono::milliseconds(200), &part)) text += part;
      text += part;
      const FinishReason r = stream->finish();
      if (r == FinishReason::error) return send_error(res, ApiError{500, stream->error(), "server_error", "", "internal_error"});
      if (r == FinishReason::cancelled) return send_error(res, ApiError{503, "the server is shutting down", "server_error", "", "shutting_down"});
      json j = {{"id", id}, {"created", created}, {"model", model_id_}, {"system_fingerprint", "ingot-" + engine_->tier()}, {"usage", usage(*stream)}};
      if (chat) {
        j["object"] = "chat.completion";
        j["choices"] = json::array({{{"index", 0}, {"message", {{"role", "assistant"}, {"content", text}}}, {"logprobs", nullptr}, {"finish_reason", finish_name(r)}}});
      } else {
        j["object"] = "text_completion";
        j["choices"] = json::array({{{"index", 0}, {"text", text}, {"logprobs", nullptr}, {"finish_reason", finish_name(r)}}});
      }
      return res.set_content(dump(j), "application/json");
    }

    // Server-sent events: one `data: {...}` per piece of text, then the finish, usage if asked,
    // and `data: [DONE]`. A failed write (the client is gone) cancels the request; so does a
    // connection that ends before the stream does.
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    const bool include_usage = p.include_usage;
    auto chunk = [this, id, created, chat](const json& delta_or_text, const json& finish) {
      json j = {{"id", id}, {"created", created}, {"model", model_id_}, {"system_fingerprint", "ingot-" + engine_->tier()}};
      if (chat) {
        j["object"] = "chat.completion.chunk";
        j["choices"] = json::array({{{"index", 0}, {"delta", delta_or_text}, {"logprobs", nullptr}, {"finish_reason", finish}}});
      } else {
        j["object"] = "text_completion";
        j["choices"] = json::array({{{"index", 0}, {"text", delta_or_text}, {"logprobs", nullptr}, {"finish_reason", finish}}});
      }
      return "data: " + dump(j) + "\n\n";
    };
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, stream, chunk, chat, include_usage, finish_name, id, created](size_t, httplib::DataSink& sink) {
          auto write = [&](const std::string& s) {
            if (sink.write(s.data(), s.size())) return true;
            stream->cancel();
            return false;
          };
          if (chat && !write(chunk(json{{"role", "assistant"}, {"content", ""}}, nullptr))) return false;
          auto idle_since = std::chrono::steady_clock::now();
          while (true) {
            std::string text;
            const bool done = stream->wait(std::chrono::milliseconds(100), &text);
            if (!text.empty()) {
              if (!write(chunk(chat ? json{{"content", text}} : json(text), nullptr))) return false;
              idle_since = std::chrono::steady_clock::now();
            } else if (!done && std::chrono::steady_clock::now() - idle_since > std::chrono::seconds(1)) {
              // A comment line keeps proxies from timing out and finds a client that left while
              // the request waited.
              if (!write(": waiting\n\n")) return false;
              idle_since = std::chrono::steady_clock::now();
            }
            if (done) break;
          }
          const FinishReason r = stream->finish();
          if (r == FinishReason::error || r == FinishReason::cancelled) {
            const ApiError e{500, r == FinishReason::error ? stream->error() : "the server is shutting down", "server_error", "", "internal_error"};
            write("data: " + dump(error_body(e)) + "\n\n");
          } else {
            if (!write(chunk(chat ? json::object() : json(""), finish_name(r)))) return false;
            if (include_usage) {
              json u = {{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", created},
                        {"model", model_id_}, {"choices", json::array()}, {"usage", usage(*stream)}};
              if (!write("data: " + dump(u) + "\n\n")) return false;
            }
          }
          if (!write("data: [DONE]\n\n")) return false;
          sink.done();
          return true;
        },
        [stream](bool success) {
          if (!success) stream->cancel();
        });
  }

  std::string metrics() {
    const ServeMetrics m = scheduler_->snapshot();
    std::ostringstream o;
    auto head = [&](const char* name, const char* type, const char* help) {
      o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
    };
    // A metric with one value and no labels.
    auto scalar = [&](const char* name, const char* type, const char* help, auto value) {
      head(name, type, help);
      o << name << " " << value << "\n";
    };
    head("ingot_requests_total", "counter", "HTTP requests answered, by endpoint and status.");
    for (const auto& [key, n] : counter_.get())
      o << "ingot_requests_total{endpoint=\"" << key.first << "\",status=\"" << key.second << "\"} " << n << "\n";
    head("ingot_requests_finished_total", "counter", "Generations ended, by reason.");
    for (FinishReason r : {FinishReason::stop, FinishReason::length, FinishReason::cancelled, FinishReason::error})
      o << "ingot_requests_finished_total{reason=\"" << finish_reason_name(r) << "\"} " << m.finished[static_cast<int>(r)] << "\n";
    scalar("ingot_prompt_tokens_total", "counter", "Prompt tokens of admitted requests.", m.prompt_tokens);
    scalar("ingot_prompt_tokens_cached_total", "counter", "Prompt tokens reused from a slot's KV cache (not processed again).", m.cached_prompt_tokens);
    scalar("ingot_generated_tokens_total", "counter", "Tokens sampled.", m.generated_tokens);
    scalar("ingot_steps_total", "counter", "Batched calls of the schedule.", m.steps);
    scalar("ingot_step_tokens_total", "counter", "Tokens run through the model in batched calls (prompt and generated).", m.step_tokens);
    auto histogram = [&](const char* name, const char* help, const ServeMetrics::Histogram& h) {
      head(name, "histogram", help);
      int64_t cum = 0;
      for (size_t i = 0; i < h.bounds.size(); ++i) {
        cum += h.counts[i];
        o << name << "_bucket{le=\"" << h.bounds[i] << "\"} " << cum << "\n";
      }
      cum += h.counts.back();
      o << name << "_bucket{le=\"+Inf\"} " << cum << "\n" << name << "_sum " << h.sum << "\n" << name << "_count " << h.count << "\n";
    };
    histogram("ingot_time_to_first_token_seconds", "From a request's arrival in the queue to its first sampled token.", m.ttft);
    histogram("ingot_inter_token_seconds", "Between consecutive tokens of one request.", m.inter_token);
    histogram("ingot_queue_wait_seconds", "From a request's arrival to its admission to a slot.", m.queue_wait);
    scalar("ingot_generation_tokens_per_second", "gauge", "Tokens sampled per second over the last 10 s, all slots together.", m.tokens_per_second);
    scalar("ingot_queue_length", "gauge", "Requests waiting for a slot.", m.queue_length);
    scalar("ingot_active_slots", "gauge", "Slots running a request.", m.active_slots);
    scalar("ingot_slots", "gauge", "Slots (--parallel).", m.slots);
    scalar("ingot_draft_tokens_total", "counter", "Speculative decoding: drafted tokens verified (--lookup, --draft).", m.drafted_tokens);
    scalar("ingot_draft_accepted_tokens_total", "counter", "Speculative decoding: drafted tokens accepted.", m.accepted_tokens);
    return o.str();
  }

  ServeConfig config_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<ServeScheduler> scheduler_;
  ChatTemplate chat_template_;
  std::string model_id_;
  int64_t created_;
  httplib::Server http_;
  RequestCounter counter_;
};

}  // namespace

int cmd_serve(const std::vector<std::string>& args) {
  ServeConfig c;
  c.scheduler.threads = default_threads();
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string* { return i + 1 < args.size() ? &args[++i] : nullptr; };
    auto integer = [&](int64_t lo, int64_t hi, int64_t* out) -> int {
      const std::string* v = value();
      if (!v) return usage_error("serve: " + a + " needs a value");
      auto r = parse_int(a, *v, lo, hi);
      if (!r.ok()) return usage_error("serve: " + r.message());
      *out = *r;
      return 0;
    };
    int64_t n = 0;
    if (a == "--host") {
      const std::string* v = value();
      if (!v || v->empty()) return usage_error("serve: --host needs an address");
      c.host = *v;
    } else if (a == "--port") {
      if (int e = integer(0, 65535, &n)) return e;
      c.port = static_cast<int>(n);
    } else if (a == "--parallel" || a == "-np") {
      if (int e = integer(1, 1024, &n)) return e;
      c.scheduler.parallel = static_cast<int>(n);
    } else if (a == "--ctx" || a == "-c") {
      if (int e = integer(1, INT64_MAX, &c.scheduler.ctx)) return e;
    } else if (a == "--threads" || a == "-t") {
      if (int e = integer(1, kMaxSessionThreads, &n)) return e;
      c.scheduler.threads = static_cast<int>(n);
    } else if (a == "--queue") {
      if (int e = integer(0, 100000, &n)) return e;
      c.scheduler.queue = static_cast<int>(n);
    } else if (a == "--lookup") {
      if (int e = integer(1, 64, &n)) return e;
      c.scheduler.lookup_ngram = static_cast<int32_t>(n);
    } else if (a == "--draft-max") {
      if (int e = integer(0, 256, &n)) return e;
      c.scheduler.draft_max = static_cast<int32_t>(n);
    } else if (a == "--prefill-chunk") {
      if (int e = integer(0, INT64_MAX, &c.scheduler.prefill_chunk)) return e;
    } else if (a == "--max-body") {
      if (int e = integer(1024, INT64_MAX / 2, &c.max_body)) return e;
    } else if (a == "--mmap") {
      c.mmap = true;
    } else if (a == "--api-key") {
      const std::string* v = value();
      if (!v || v->empty()) return usage_error("serve: --api-key needs a key");
      c.api_key = *v;
    } else if (a == "--chat-template" || a == "--tier" || a == "--trusted-keys" || a == "-m" || a == "--model" || a == "--draft" ||
               a == "-md" || a == "--model-draft") {
      const std::string* v = value();
      if (!v || v->empty()) return usage_error("serve: " + a + " needs a value");
      (a == "--chat-template" ? c.template_file
       : a == "--tier"        ? c.tier
       : a == "--trusted-keys" ? c.keys
       : (a == "-m" || a == "--model") ? c.path
                                       : c.draft) = *v;
    } else if (a.size() > 1 && a[0] == '-') {
      return usage_error("serve: unknown option '" + a + "'");
    } else if (c.path.empty()) {
      c.path = a;
    } else {
      return usage_error("serve: more than one bundle given");
    }
  }
  if (c.path.empty()) return usage_error("serve: no bundle given");
  if (!c.draft.empty() && c.scheduler.lookup_ngram > 0) return usage_error("serve: give --draft or --lookup, not both");
  if (c.scheduler.draft_max >= 0 && c.draft.empty() && c.scheduler.lookup_ngram == 0)
    return usage_error("serve: --draft-max goes with --draft or --lookup");
  if (const int hc = static_cast<int>(std::thread::hardware_concurrency()); hc > 0 && c.scheduler.threads > hc) {
    std::fprintf(stderr, "ingot: note: serve: --threads %d is more than the %d hardware threads of this machine; using %d\n",
                 c.scheduler.threads, hc, hc);
    c.scheduler.threads = hc;
  }
  std::string error;
  const std::string bundle = bundle_path_for(c.path, &error);
  if (bundle.empty()) return fail(error);
  // A server's weights in huge pages (unless --mmap): its steps stream them for hours, so the copy
  // at load pays for itself (EngineOptions::huge_pages).
  auto loaded = Engine::load(bundle, EngineOptions{.tier = c.tier, .trusted_keys = c.keys, .huge_pages = !c.mmap});
  if (!loaded.ok()) return fail(loaded.message());
  std::unique_ptr<Engine> engine = std::move(*loaded);
  if (!engine->tokenizer()) return fail(bundle + ": the bundle has no tokenizer; serve needs one");

  std::string source = engine->bundle().manifest().chat_template();
  std::string template_name = bundle;
  if (!c.template_file.empty()) {
    std::ifstream in(c.template_file, std::ios::binary);
    if (!in) return fail(c.template_file + ": cannot read the chat template");
    std::ostringstream ss;
    ss << in.rdbuf();
    source = ss.str();
    template_name = c.template_file;
  } else if (source.empty()) {
    std::fprintf(stderr, "ingot: note: serve: %s has no chat template; /v1/chat/completions uses ChatML (--chat-template FILE sets one)\n",
                 bundle.c_str());
    source = kDefaultTemplate;
  }
  auto parsed = ChatTemplate::parse(source);
  if (!parsed.ok()) return fail(parsed.status().with_context(template_name).message());

  // SIGINT and SIGTERM go to one thread that shuts the server down; every other thread (the
  // kernel threads created below, httplib's) blocks them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  // The draft model outlives the server (declared first), whose scheduler drafts with it.
  std::unique_ptr<Engine> draft_engine;
  if (!c.draft.empty()) {
    const std::string draft_bundle = bundle_path_for(c.draft, &error);
    if (draft_bundle.empty()) return fail("--draft: " + error);
    auto d = Engine::load(draft_bundle, EngineOptions{.tier = c.tier, .trusted_keys = c.keys, .huge_pages = !c.mmap});
    if (!d.ok()) return fail("--draft: " + d.message());
    draft_engine = std::move(*d);
    c.scheduler.draft = draft_engine.get();
  }
  auto scheduler = ServeScheduler::create(*engine, c.scheduler);
  if (!scheduler.ok()) return fail(scheduler.message());
  std::string model_id = engine->bundle().manifest().model_name();
  if (model_id.empty()) model_id = std::filesystem::path(bundle).stem().string();

  const int64_t ctx = (*scheduler)->context();
  const int64_t max_batch = engine->max_batch();
  const std::string tier = engine->tier();
  const char* weights = bundle_residency_name(engine->bundle().residency());
  Server server(c, std::move(engine), std::move(*scheduler), std::move(*parsed), model_id);
  server.install();
  // Not httplib's default SO_REUSEPORT, which lets a second server listen on the same port.
  int listen_fd = -1;
  server.http().set_socket_options([&listen_fd](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    listen_fd = sock;
  });
  int port = c.port;
  if (port == 0) {
    port = server.http().bind_to_any_port(c.host);
    if (port < 0) return fail("cannot listen on " + c.host + " (any port)");
  } else if (!server.http().bind_to_port(c.host, port)) {
    return fail("cannot listen on " + c.host + ":" + std::to_string(port) + " (in use, or not an address of this machine?)");
  }
  // httplib listens with a backlog of 5: clients connecting at once would wait for SYN
  // retransmits. Listening again on the bound socket raises it.
  if (listen_fd >= 0) ::listen(listen_fd, SOMAXCONN);
  server.scheduler().start();

  std::atomic<bool> stopping{false};
  std::thread watcher([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (stopping.exchange(true)) return;
    std::fprintf(stderr, "ingot serve: %s: shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    server.scheduler().stop();  // ends every request, so that the handlers return
    server.http().stop();
  });
  const std::string shown_host = c.host.find(':') != std::string::npos ? "[" + c.host + "]" : c.host;
  std::fprintf(stderr, "ingot serve: %s on http://%s:%d (%d slots of %lld tokens, %d threads, max batch %lld, tier %s, weights %s)\n",
               model_id.c_str(), shown_host.c_str(), port, c.scheduler.parallel, static_cast<long long>(ctx), c.scheduler.threads,
               static_cast<long long>(max_batch), tier.c_str(), weights);
  std::fflush(stderr);
  const bool ok = server.http().listen_after_bind();
  if (!stopping.exchange(true)) {
    // The listener ended by itself: wake the watcher so that it exits.
    pthread_kill(watcher.native_handle(), SIGTERM);
  }
  watcher.join();
  server.scheduler().stop();
  std::fprintf(stderr, "ingot serve: stopped\n");
  return ok ? 0 : 1;
}

}  // namespace ingot
