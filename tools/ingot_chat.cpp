// ingot chat (and ingot run -cnv): a conversation in the terminal with the model's chat template.
// Each turn renders the whole conversation, tokenizes it, and feeds the session only the tokens
// after the longest prefix it already holds (Session::truncate drops a tail that the re-tokenized
// history no longer has), so earlier turns are not processed again and a turn computes what one
// `ingot run` over the same rendered history would.
#include "tools/ingot_chat.h"

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/parse.h"
#include "runtime/chat_template.h"
#include "runtime/chat_turn.h"
#include "runtime/engine.h"
#include "tools/ingot_run.h"

namespace ingot {
namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) { g_interrupted = true; }

// Ctrl-C while a reply streams stops that reply; at the prompt it ends the program as usual.
class InterruptScope {
 public:
  InterruptScope() {
    g_interrupted = false;
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_);
  }
  ~InterruptScope() { sigaction(SIGINT, &old_, nullptr); }

 private:
  struct sigaction old_ {};
};

std::string read_text_file(const std::string& path, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = path + ": cannot read";
    return "";
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct ChatOptions {
  std::string path, system, template_file;
  int64_t n = -1;  // tokens per reply; -1: until the end of the turn or a full context
  int threads = 0;
  bool have_temp = false, have_seed = false;
  std::vector<std::string> stops;
  SamplingParams sampling;
};

}  // namespace

int cmd_chat(const std::vector<std::string>& args) {
  ChatOptions o;
  o.threads = static_cast<int>(std::max(1u, std::min(std::thread::hardware_concurrency(), 8u)));
  std::string tier, keys;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto need = [&]() -> const std::string* { return i + 1 < args.size() ? &args[++i] : nullptr; };
    auto num = [&](auto parse) -> bool {
      const std::string* v = need();
      if (!v) return false;
      auto r = parse(*v);
      return r;
    };
    const std::string* v = nullptr;
    Status bad;
    if (a == "-m" || a == "--model") {
      if (!(v = need())) return usage_error("chat: " + a + " needs a bundle");
      o.path = *v;
    } else if (a == "--system" || a == "-sys") {
      if (!(v = need())) return usage_error("chat: " + a + " needs a text");
      o.system = *v;
    } else if (a == "--chat-template") {
      if (!(v = need())) return usage_error("chat: --chat-template needs a file");
      o.template_file = *v;
    } else if (a == "--stop" || a == "-r") {
      if (!(v = need()) || v->empty()) return usage_error("chat: " + a + " needs a non-empty string");
      o.stops.push_back(*v);
    } else if (a == "-n" || a == "--n-predict" || a == "--threads" || a == "-t" || a == "--temp" || a == "--top-k" ||
               a == "--top-p" || a == "--min-p" || a == "--repeat-penalty" || a == "--seed" || a == "--tier" ||
               a == "--trusted-keys") {
      if (!(v = need())) return usage_error("chat: " + a + " needs a value");
      if (a == "--tier") { tier = *v; continue; }
      if (a == "--trusted-keys") { keys = *v; continue; }
      if (a == "-n" || a == "--n-predict") {
        auto r = parse_int(a, *v, -1, std::numeric_limits<int64_t>::max());
        if (!r.ok()) return usage_error("chat: " + r.message());
        o.n = *r;
      } else if (a == "--threads" || a == "-t") {
        auto r = parse_int(a, *v, 1, kMaxSessionThreads);
        if (!r.ok()) return usage_error("chat: " + r.message());
        o.threads = static_cast<int>(*r);
      } else if (a == "--top-k") {
        auto r = parse_int(a, *v, 0, std::numeric_limits<int32_t>::max());
        if (!r.ok()) return usage_error("chat: " + r.message());
        o.sampling.top_k = static_cast<int32_t>(*r);
      } else if (a == "--seed") {
        auto r = parse_uint64(a, *v);
        if (!r.ok()) return usage_error("chat: " + r.message());
        o.sampling.seed = *r;
        o.have_seed = true;
      } else {
        auto r = parse_double(a, *v, 0, 1e30);
        if (!r.ok()) return usage_error("chat: " + r.message());
        const float f = static_cast<float>(*r);
        if (a == "--temp") o.sampling.temperature = f, o.have_temp = true;
        if (a == "--top-p") o.sampling.top_p = f;
        if (a == "--min-p") o.sampling.min_p = f;
        if (a == "--repeat-penalty") o.sampling.repeat_penalty = f;
      }
    } else if (a.size() > 1 && a[0] == '-') {
      return usage_error("chat: unknown option '" + a + "'");
    } else if (o.path.empty()) {
      o.path = a;
    } else {
      return usage_error("chat: more than one bundle given");
    }
    (void)num;
    (void)bad;
  }
  if (o.path.empty()) return usage_error("chat: no bundle given");
  if (std::string bad = o.sampling.validate(); !bad.empty()) return usage_error("chat: " + bad);
  if (!o.have_seed) o.sampling.seed = (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();

  std::string error;
  auto loaded = Engine::load(o.path, EngineOptions{.tier = tier, .trusted_keys = keys});
  if (!loaded.ok()) return fail(loaded.message());
  std::unique_ptr<Engine> engine = std::move(*loaded);
  if (!engine->tokenizer()) return fail(o.path + ": the bundle has no tokenizer");
  const Tokenizer& tok = *engine->tokenizer();
  if (!o.have_temp && engine->bundle().manifest().generation().has_temperature())
    o.sampling.temperature = static_cast<float>(engine->bundle().manifest().generation().temperature());
  std::string source = engine->bundle().manifest().chat_template();
  if (!o.template_file.empty()) {
    source = read_text_file(o.template_file, &error);
    if (!error.empty()) return fail(error);
  }
  if (source.empty())
    return fail(o.path + ": the bundle has no chat template; give one with --chat-template FILE (or compile with "
                "`ingotc compile --chat-template FILE`)");
  auto parsed = ChatTemplate::parse(source);
  if (!parsed.ok()) return fail(parsed.status().with_context(o.template_file.empty() ? o.path : o.template_file).message());
  const ChatTemplate chat_template = std::move(*parsed);
  const std::vector<int32_t> end_ids = end_of_turn_ids(tok);

  auto created = Session::create(*engine, o.threads);
  if (!created.ok()) return fail(created.message());
  std::unique_ptr<Session> session = std::move(*created);

  nlohmann::json messages = nlohmann::json::array();
  auto start_conversation = [&] {
    messages = nlohmann::json::array();
    if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
  };
  start_conversation();
  std::fprintf(stderr, "ingot chat: %s (tier %s). Type a message; /reset, /save FILE, /load FILE, /exit; Ctrl-C stops a reply.\n",
               o.path.c_str(), engine->tier().c_str());

  auto render = [&](bool add_generation_prompt) -> StatusOr<std::string> {
    ChatInputs in;
    INGOT_RETURN_IF_ERROR(chat_inputs_from_json(messages.dump(), in));
    in.add_generation_prompt = add_generation_prompt;
    set_chat_special_tokens(tok, in);
    return chat_template.apply(in);
  };

  std::string line;
  while (true) {
    std::fputs("\n> ", stdout);
    std::fflush(stdout);
    std::string input;
    bool got = false;
    while (std::getline(std::cin, line)) {  // a line ending in '\' continues on the next
      got = true;
      if (!line.empty() && line.back() == '\\') {
        input += line.substr(0, line.size() - 1) + "\n";
        continue;
      }
      input += line;
      break;
    }
    if (!got) break;  // end of input
    if (input.empty()) continue;
    if (input == "/exit" || input == "/quit") break;
    if (input == "/reset") {
      session->reset();
      start_conversation();
      std::fprintf(stderr, "[conversation reset]\n");
      continue;
    }
    if (input.rfind("/save ", 0) == 0 || input.rfind("/load ", 0) == 0) {
      const std::string file = input.substr(6);
      if (input[1] == 's') {
        Status st = session->save(file);
        if (st.ok()) {
          std::ofstream(file + ".messages.json") << messages.dump(1) << "\n";
          std::fprintf(stderr, "[saved the session to %s and the messages to %s.messages.json]\n", file.c_str(), file.c_str());
        } else {
          std::fprintf(stderr, "ingot: error: %s\n", st.message().c_str());
        }
      } else {
        std::string text = read_text_file(file + ".messages.json", &error);
        nlohmann::json loaded_messages = error.empty() ? nlohmann::json::parse(text, nullptr, false) : nlohmann::json();
        if (!error.empty() || !loaded_messages.is_array()) {
          std::fprintf(stderr, "ingot: error: %s\n", error.empty() ? (file + ".messages.json: not a list of messages").c_str() : error.c_str());
          error.clear();
          continue;
        }
        Status st = session->restore(file);
        if (!st.ok()) {
          std::fprintf(stderr, "ingot: error: %s\n", st.message().c_str());
          continue;
        }
        messages = loaded_messages;
        std::fprintf(stderr, "[loaded %zu messages, %lld tokens]\n", messages.size(), static_cast<long long>(session->position()));
      }
      continue;
    }

    messages.push_back({{"role", "user"}, {"content", input}});
    auto text = render(true);
    if (!text.ok()) {
      std::fprintf(stderr, "ingot: error: %s\n", text.message().c_str());
      messages.erase(messages.end() - 1);
      continue;
    }
    const std::vector<int32_t> ids = chat_prompt_ids(tok, *text);
    if (static_cast<int64_t>(ids.size()) >= engine->max_context()) {
      std::fprintf(stderr, "ingot: the conversation (%zu tokens) fills the context of %lld: /reset to start again\n", ids.size(),
                   static_cast<long long>(engine->max_context()));
      messages.erase(messages.end() - 1);
      continue;
    }

    // Reuse what the session holds: the longest common prefix (chat_turn.h).
    int64_t common = 0;
    auto fresh_or = reuse_session_prefix(*session, ids, &common);
    if (!fresh_or.ok()) return fail(fresh_or.message());
    const std::vector<int32_t> fresh = std::move(*fresh_or);
    GenerateOptions go;
    go.sampling = o.sampling;
    go.stop_at_eos = false;  // the end-of-turn ids below, the model's EOS among them
    const int64_t room = engine->max_context() - static_cast<int64_t>(ids.size());
    go.max_new_tokens = static_cast<int32_t>(std::min<int64_t>(o.n < 0 ? room : std::min(o.n, room), std::numeric_limits<int32_t>::max()));
    go.keep_last = true;
    std::vector<int32_t> reply;
    const std::string prompt_text = tok.decode(ids, true);  // decoded once, not per token
    std::string streamed;
    bool ended = false, stopped = false;
    go.on_token = [&](int32_t id) {
      if (std::find(end_ids.begin(), end_ids.end(), id) != end_ids.end()) {
        ended = true;
        return false;
      }
      reply.push_back(id);
      std::string t = continuation_text(tok, ids, prompt_text, reply);
      size_t cut = std::string::npos;
      for (const std::string& s : o.stops) cut = std::min(cut, t.find(s));
      if (cut != std::string::npos) {
        t.resize(cut);
        stopped = true;
      }
      if (t.size() > streamed.size() && t.compare(0, streamed.size(), streamed) == 0) {
        std::fwrite(t.data() + streamed.size(), 1, t.size() - streamed.size(), stdout);
        std::fflush(stdout);
      }
      streamed = t;
      return !stopped && !g_interrupted;
    };
    GenerateTimings timings;
    {
      InterruptScope scope;
      if (Status st = session->generate(fresh, go, nullptr, &timings); !st.ok()) return fail(st.message());
    }
    // The reply's text without leading whitespace (templates put their own separators).
    std::string content = streamed;
    content.erase(0, content.find_first_not_of(" \n"));
    messages.push_back({{"role", "assistant"}, {"content", content}});
    const char* why = ended ? "end of turn" : stopped ? "stop string" : g_interrupted ? "interrupted" : stop_reason_name(timings.stop);
    std::fprintf(stderr, "\n[turn %zu: %lld of %zu prompt tokens reused, %zu processed; reply %zu tokens, %.1f tok/s; %s]\n",
                 (messages.size() - (o.system.empty() ? 0 : 1)) / 2, static_cast<long long>(common), ids.size(), fresh.size(), reply.size(),
                 timings.decode_ms > 0 ? 1000.0 * static_cast<double>(timings.decode_tokens) / timings.decode_ms : 0.0, why);
  }
  std::fputs("\n", stdout);
  return 0;
}

}  // namespace ingot
