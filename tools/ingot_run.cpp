// ingot run / bench / perplexity: thin front ends over runtime/engine.h.
#include "tools/ingot_run.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <thread>
#include <type_traits>
#include <limits>

#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/parse.h"
#include "base/split_file_names.h"
#include "runtime/atomic_file.h"
#include "runtime/engine.h"
#include "runtime/speculative.h"
#include "tools/bench_profile.h"
#include "base/clock.h"

extern char** environ;

namespace ingot {
namespace {

// When this process started running its own code (static initialization, before main): the
// origin of time to first token, so that it includes loading the bundle, creating the session,
// tokenizing and the prompt. (exec and the dynamic loader, about a millisecond, come before it.)
const std::chrono::steady_clock::time_point g_process_start = std::chrono::steady_clock::now();

// Parses a number option's value, range-checked (base/parse.h); false (and a usage message) if
// it is not one. Integers are parsed as integers, never through a float.
template <typename T>
bool number(const std::string& opt, const std::string& text, T* out, std::string* error, double min = -1e30, double max = 1e30) {
  Status bad;
  if constexpr (std::is_same_v<T, uint64_t>) {
    auto v = parse_uint64(opt, text);
    if (v.ok()) *out = *v;
    bad = v.status();
  } else if constexpr (std::is_integral_v<T>) {
    // The type's range, narrowed by [min, max] (compared as doubles first: no out-of-range cast).
    const int64_t tmin = static_cast<int64_t>(std::numeric_limits<T>::min()), tmax = static_cast<int64_t>(std::numeric_limits<T>::max());
    const int64_t lo = min <= static_cast<double>(tmin) ? tmin : static_cast<int64_t>(min);
    const int64_t hi = max >= static_cast<double>(tmax) ? tmax : static_cast<int64_t>(max);
    auto v = parse_int(opt, text, lo, hi);
    if (v.ok()) *out = static_cast<T>(*v);
    bad = v.status();
  } else {
    auto v = parse_double(opt, text, min, max);
    if (v.ok()) *out = static_cast<T>(*v);
    bad = v.status();
  }
  if (bad.ok()) return true;
  *error = bad.message();
  return false;
}

bool int_list(const std::string& opt, const std::string& text, std::vector<int>* out, std::string* error) {
  out->clear();
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    int v = 0;
    if (!number(opt, item, &v, error, 1, 1 << 22)) {
      *error = opt + " needs positive whole numbers, e.g. 128,512; got '" + text + "'";
      return false;
    }
    out->push_back(v);
  }
  return !out->empty();
}

// --threads: 1 to kMaxSessionThreads (runtime/engine.h). More threads than the host has hardware
// threads only slows a run down (the pool's workers spin and wait for each other: 1000 threads
// on 2 cores turned 0.02 s into 40 s), so the pool is capped there, with a note.
int usable_threads(int requested, const char* command) {
  const int hc = static_cast<int>(std::thread::hardware_concurrency());
  if (hc > 0 && requested > hc) {
    std::fprintf(stderr, "ingot: note: %s: --threads %d is more than the %d hardware threads of this machine; using %d\n",
                 command, requested, hc, hc);
    return hc;
  }
  return requested;
}

std::string json_dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

// A runtime result's value, or an empty one with its message in *error.
template <typename T>
T value_or_error(StatusOr<T> result, std::string* error) {
  if (result.ok()) return std::move(*result);
  *error = result.message();
  return T{};
}

}  // namespace

namespace {

// The prompt of -p TEXT, -p - (standard input) or -f FILE; false with *error on a read failure.
bool read_prompt(const std::string& p, const std::string& file, std::string* prompt, std::string* error) {
  if (!file.empty()) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      *error = file + ": cannot read the prompt file";
      return false;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    *prompt = ss.str();
    return true;
  }
  if (p == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    *prompt = ss.str();
    return true;
  }
  *prompt = p;
  return true;
}

// The first bytes of `path`: a GGUF file or a Hugging Face folder is a model, not a bundle.
bool looks_like_model(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return std::filesystem::exists(std::filesystem::path(path) / "config.json", ec);
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::memcmp(magic, "GGUF", 4) == 0;
}

// `ingotc` beside this program, or on PATH; "" if neither.
std::string find_ingotc() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto beside = self.parent_path() / "ingotc";
    if (::access(beside.c_str(), X_OK) == 0) return beside.string();
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  for (std::string d; std::getline(dirs, d, ':');)
    if (!d.empty() && ::access((d + "/ingotc").c_str(), X_OK) == 0) return d + "/ingotc";
  return "";
}

// A model given to `ingot run`: its bundle in $XDG_CACHE_HOME/ingot (~/.cache/ingot), compiled by
// ingotc once per model file (keyed by its absolute path, size and modification time). "" with
// *error when there is no ingotc to compile it with, or compiling failed.
std::string cached_bundle_for(const std::string& model, std::string* error) {
  std::error_code ec;
  const std::string abs = std::filesystem::absolute(model, ec).string();
  const auto size = std::filesystem::is_directory(model, ec) ? 0 : std::filesystem::file_size(model, ec);
  const auto mtime = std::filesystem::last_write_time(model, ec).time_since_epoch().count();
  std::string key = abs + "|" + std::to_string(size) + "|" + std::to_string(mtime);
  // A split GGUF (NAME-00001-of-0000N.gguf): the other files count too.
  if (const int64_t count = split_file_count_from_name(abs); count > 1)
    for (int64_t i = 1; i < count; ++i) {
      const std::string other = split_file_path(*split_file_prefix(abs, 0, count), i, count);
      key += "|" + std::to_string(std::filesystem::file_size(other, ec)) + "|" +
             std::to_string(std::filesystem::last_write_time(other, ec).time_since_epoch().count());
    }
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const std::string dir = xdg && *xdg ? std::string(xdg) + "/ingot" : std::string(home ? home : "/tmp") + "/.cache/ingot";
  char name[32];
  std::snprintf(name, sizeof(name), "%016llx", static_cast<unsigned long long>(std::hash<std::string>{}(key)));
  const std::string bundle = dir + "/" + std::filesystem::path(abs).filename().string() + "-" + name + ".ingot";
  if (std::filesystem::exists(bundle, ec)) {
    std::fprintf(stderr, "ingot: %s is a model, not a bundle: using its compiled bundle %s\n", model.c_str(), bundle.c_str());
    return bundle;
  }
  const std::string ingotc = find_ingotc();
  if (ingotc.empty()) {
    *error = model + " is a model, not an Ingot bundle: compile it first with `ingotc compile " + model +
             " -o model.ingot`, then `ingot run model.ingot` (ingotc was not found beside ingot or on PATH)";
    return "";
  }
  std::filesystem::create_directories(dir, ec);
  std::fprintf(stderr, "ingot: %s is a model, not a bundle: compiling it once with %s into %s\n", model.c_str(), ingotc.c_str(),
               bundle.c_str());
  pid_t pid = 0;
  std::vector<std::string> argv = {ingotc, "compile", model, "-o", bundle, "--target", "native"};
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  // The compiler's report goes to stderr: stdout carries only the generated text.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
  const int spawned = posix_spawn(&pid, ingotc.c_str(), &actions, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    *error = "cannot run " + ingotc;
    return "";
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    *error = "compiling " + model + " failed (the messages above say why); `ingotc compile " + model + "` reproduces it";
    return "";
  }
  return bundle;
}

}  // namespace

std::string bundle_path_for(const std::string& path, std::string* error) {
  if (!looks_like_model(path)) return path;
  return cached_bundle_for(path, error);
}

int cmd_run(const std::vector<std::string>& args) {
  std::string path, prompt_arg, prompt_file;
  int64_t n = 32;
  int threads = default_threads();
  int64_t ctx = 0;
  bool json = false, verify = false, have_temp = false, have_seed = false, with_logits = false, display_prompt = true;
  std::string tier, keys;
  std::vector<std::string> stops;
  std::string draft_path;  // --draft
  int32_t lookup = 0;      // --lookup N: the longest n-gram; 0: off
  int32_t draft_max = -1;  // --draft-max; -1: the drafter's default
  GenerateOptions go;
  go.sampling = SamplingParams{};
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    std::string error;
    auto value = [&](std::string* v) {
      if (i + 1 >= args.size()) {
        error = a + " needs a value";
        return false;
      }
      *v = args[++i];
      return true;
    };
    std::string v;
    bool ok = true;
    if (a == "-p" || a == "--prompt") ok = value(&prompt_arg);
    else if (a == "-f" || a == "--file") ok = value(&prompt_file);
    else if (a == "-m" || a == "--model") ok = value(&path) && (!path.empty() || (error = a + " needs a bundle", false));
    else if (a == "-n" || a == "--n-predict") ok = value(&v) && number(a, v, &n, &error, -1);
    else if (a == "--temp") ok = value(&v) && number(a, v, &go.sampling.temperature, &error) && (have_temp = true);
    else if (a == "--top-k") ok = value(&v) && number(a, v, &go.sampling.top_k, &error);
    else if (a == "--top-p") ok = value(&v) && number(a, v, &go.sampling.top_p, &error);
    else if (a == "--min-p") ok = value(&v) && number(a, v, &go.sampling.min_p, &error);
    else if (a == "--repeat-penalty") ok = value(&v) && number(a, v, &go.sampling.repeat_penalty, &error);
    else if (a == "--repeat-last-n") ok = value(&v) && number(a, v, &go.sampling.repeat_last_n, &error);
    else if (a == "--presence-penalty") ok = value(&v) && number(a, v, &go.sampling.presence_penalty, &error);
    else if (a == "--seed") ok = value(&v) && number(a, v, &go.sampling.seed, &error) && (have_seed = true);
    else if (a == "--threads" || a == "-t") ok = value(&v) && number(a, v, &threads, &error, 1, kMaxSessionThreads);
    else if (a == "--ctx" || a == "-c") ok = value(&v) && number(a, v, &ctx, &error, 1);
    else if (a == "--stop" || a == "-r" || a == "--reverse-prompt") ok = value(&v) && (!v.empty() || (error = a + " needs a non-empty string", false)) && (stops.push_back(v), true);
    else if (a == "--json") json = true;
    else if (a == "--logits") with_logits = true;
    else if (a == "--no-display-prompt") display_prompt = false;
    else if (a == "--tier") ok = value(&tier) && (!tier.empty() || (error = "--tier needs a tier name", false));
    else if (a == "--verify") verify = true;
    else if (a == "--trusted-keys") ok = value(&keys) && (!keys.empty() || (error = "--trusted-keys needs a file", false));
    else if (a == "--no-eos-stop") go.stop_at_eos = false;
    else if (a == "--draft" || a == "-md" || a == "--model-draft") ok = value(&draft_path) && (!draft_path.empty() || (error = a + " needs a bundle or model", false));
    else if (a == "--lookup") ok = value(&v) && number(a, v, &lookup, &error, 1, 64);
    else if (a == "--draft-max") ok = value(&v) && number(a, v, &draft_max, &error, 0, 256);
    else if (a.size() > 1 && a[0] == '-') return usage_error("run: unknown option '" + a + "'");
    else if (path.empty()) path = a;
    else return usage_error("run: more than one bundle given");
    if (!ok) return usage_error("run: " + (error.empty() ? a + " needs a value" : error));
  }
  if (path.empty()) return usage_error("run: no bundle given");
  if (with_logits && !json) return usage_error("run: --logits goes with --json");
  if (!prompt_file.empty() && !prompt_arg.empty()) return usage_error("run: give the prompt with -p or -f, not both");
  if (std::string bad = go.sampling.validate(); !bad.empty()) return usage_error("run: " + bad);
  if (!draft_path.empty() && lookup > 0) return usage_error("run: give --draft or --lookup, not both");
  if (draft_max >= 0 && draft_path.empty() && lookup == 0) return usage_error("run: --draft-max goes with --draft or --lookup");
  const bool speculate = !draft_path.empty() || lookup > 0;
  if (draft_max < 0) draft_max = lookup > 0 ? kDefaultLookupDraftMax : kDefaultModelDraftMax;
  std::string prompt, error;
  if (!read_prompt(prompt_arg, prompt_file, &prompt, &error)) return fail(error);
  // A random seed unless one is given (llama.cpp's habit); --json reports it.
  if (!have_seed) go.sampling.seed = (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();

  if (looks_like_model(path)) {
    path = cached_bundle_for(path, &error);
    if (path.empty()) return fail(error);
  }
  threads = usable_threads(threads, "run");
  auto engine = value_or_error(Engine::load(path, EngineOptions{.verify = verify, .tier = tier, .trusted_keys = keys}), &error);
  if (!engine) return fail(error);
  if (!engine->tokenizer()) return fail(path + ": the bundle has no tokenizer; run needs one to read the prompt");
  if (ctx > engine->max_context())
    return fail("--ctx " + std::to_string(ctx) + " is larger than the bundle's context of " + std::to_string(engine->max_context()) +
                " (compile with --max-context)");
  const int64_t limit = ctx > 0 ? ctx : engine->max_context();
  if (!have_temp && engine->bundle().manifest().generation().has_temperature())
    go.sampling.temperature = static_cast<float>(engine->bundle().manifest().generation().temperature());
  const Tokenizer& tok = *engine->tokenizer();
  std::vector<int32_t> prompt_ids = tok.encode(prompt, true);
  if (prompt_ids.empty()) return fail("the prompt encodes to no tokens and the model adds no BOS");
  if (static_cast<int64_t>(prompt_ids.size()) > limit)
    return fail("the prompt is " + std::to_string(prompt_ids.size()) + " tokens, longer than the context of " + std::to_string(limit));
  // The last sampled token needs no place in the cache (this run does not continue), so one more
  // than the room left fits; -n -1: until end of text or the context is full.
  const int64_t fits = limit - static_cast<int64_t>(prompt_ids.size()) + 1;
  const int64_t wanted = n < 0 ? std::numeric_limits<int64_t>::max() : n;
  go.max_new_tokens = static_cast<int32_t>(std::min<int64_t>({wanted, fits, std::numeric_limits<int32_t>::max()}));
  go.keep_last = false;
  const std::string prompt_text = tok.decode(prompt_ids, true);  // what continuation_text strips

  // Speculation: the target session runs through a Batcher of this command's (a verification is
  // one call with several logits rows), the drafter with threads of its own.
  std::unique_ptr<Engine> draft_engine;
  std::unique_ptr<Batcher> batcher;
  std::unique_ptr<Drafter> drafter;
  if (speculate) {
    if (!engine->not_batchable().empty())
      return fail(path + ": speculative decoding needs logits for several rows of one call, which this bundle cannot give: " +
                  engine->not_batchable());
    if (lookup > 0) {
      drafter = std::make_unique<LookupDrafter>(lookup);
    } else {
      if (looks_like_model(draft_path)) {
        draft_path = cached_bundle_for(draft_path, &error);
        if (draft_path.empty()) return fail(error);
      }
      draft_engine = value_or_error(Engine::load(draft_path, EngineOptions{.verify = verify, .tier = tier, .trusted_keys = keys}), &error);
      if (!draft_engine) return fail("--draft: " + error);
      auto d = value_or_error(ModelDrafter::create(*engine, *draft_engine, threads, go.sampling), &error);
      if (!d) return fail("--draft: " + error);
      drafter = std::move(d);
    }
    batcher = value_or_error(Batcher::create(*engine, threads), &error);
    if (!batcher) return fail(error);
  }
  auto session = value_or_error(Session::create(*engine, speculate ? 0 : threads), &error);
  if (!session) return fail(error);
  std::vector<int32_t> generated;
  std::string streamed;  // bytes of the continuation already written
  bool stopped_by_string = false;
  double first_token_ms = 0;  // since the process started
  if (!json && display_prompt) {
    std::fwrite(prompt.data(), 1, prompt.size(), stdout);
    std::fflush(stdout);
  }
  go.on_token = [&](int32_t id) {
    if (first_token_ms == 0) first_token_ms = ms_since(g_process_start);
    generated.push_back(id);
    if (json && stops.empty()) return true;
    std::string text = continuation_text(tok, prompt_ids, prompt_text, generated);
    size_t hold = 0;
    const size_t at = find_stop(text, stops, &hold);
    if (at != std::string::npos) {
      text.resize(at);
      stopped_by_string = true;
      hold = 0;
    }
    const size_t ready = text.size() - hold;
    if (!json && ready > streamed.size() && text.compare(0, streamed.size(), streamed) == 0) {
      std::fwrite(text.data() + streamed.size(), 1, ready - streamed.size(), stdout);
      std::fflush(stdout);
      streamed = text.substr(0, ready);
    }
    return !stopped_by_string;
  };
  // --logits: the next-token logits after the prompt, from a prefill of their own (the session is
  // then reset, so generation below starts as it would without).
  std::vector<float> prompt_logits;
  if (with_logits) {
    if (speculate) {
      const BatchPart part{session.get(), prompt_ids, 1};
      if (prompt_ids.size() > static_cast<size_t>(engine->max_batch())) return fail("--logits with --draft/--lookup: the prompt is longer than the bundle's --max-batch");
      if (Status st = batcher->run(std::span<const BatchPart>(&part, 1)); !st.ok()) return fail(st.message());
    } else if (Status st = session->prefill(prompt_ids); !st.ok()) {
      return fail(st.message());
    }
    prompt_logits.assign(session->logits().begin(), session->logits().end());
    session->reset();
  }
  std::vector<int32_t> ids;
  GenerateTimings t;
  SpeculativeStats spec;
  if (go.max_new_tokens > 0) {
    Status st = speculate ? speculative_generate(*engine, *batcher, *session, *drafter, draft_max, prompt_ids, go, &ids, &t, &spec)
                          : session->generate(prompt_ids, go, &ids, &t);
    if (!st.ok()) return fail(st.message());
  }
  // Stopped by the count only because the context ran out: say so.
  if (t.stop == StopReason::length && wanted > fits) t.stop = StopReason::context_full;
  std::string text = continuation_text(tok, prompt_ids, prompt_text, ids);
  size_t unused = 0;
  if (const size_t at = find_stop(text, stops, &unused); at != std::string::npos) text.resize(at);
  const double prefill_tok_s = t.prefill_ms > 0 ? 1000.0 * static_cast<double>(t.prefill_tokens) / t.prefill_ms : 0;
  // Generated tokens per second of the generation phase: with speculation the target runs more
  // tokens than it keeps (rejected drafts), so the rate counts the tokens generated after the
  // first (which the prompt's pass gave), as decoding without speculation does.
  const double decode_tok_s = t.decode_ms <= 0 ? 0
                              : speculate      ? 1000.0 * static_cast<double>(std::max<size_t>(ids.size(), 1) - 1) / t.decode_ms
                                               : 1000.0 * static_cast<double>(t.decode_tokens) / t.decode_ms;
  if (json) {
    nlohmann::json j;
    j["prompt_ids"] = prompt_ids;
    j["ids"] = ids;
    j["text"] = text;
    j["stop_reason"] = stop_reason_name(t.stop);
    j["seed"] = go.sampling.seed;
    j["tier"] = engine->tier();  // the CPU tier whose kernels ran
    j["weights"] = bundle_residency_name(engine->bundle().residency());  // "mapped" or "huge pages"
    if (with_logits) j["logits_after_prompt"] = prompt_logits;
    j["timings"] = {{"load_ms", engine->load_ms()}, {"prefill_ms", t.prefill_ms}, {"decode_ms", t.decode_ms},
                    {"prefill_tok_s", prefill_tok_s}, {"decode_tok_s", decode_tok_s},
                    {"time_to_first_token_ms", first_token_ms}};
    if (speculate)
      j["speculative"] = {{"mode", drafter->kind()}, {"draft", lookup > 0 ? nlohmann::json(nullptr) : nlohmann::json(draft_path)},
                          {"lookup_ngram", lookup}, {"draft_max", draft_max}, {"drafted", spec.drafted}, {"accepted", spec.accepted},
                          {"acceptance_rate", spec.acceptance_rate()}, {"target_calls", spec.target_calls},
                          {"target_tokens", t.decode_tokens}, {"draft_ms", spec.draft_ms}};
    std::printf("%s\n", json_dump(j).c_str());
  } else {
    if (text.size() > streamed.size()) std::printf("%s", text.substr(streamed.size()).c_str());
    std::fprintf(stderr,
                 "\n[load %.1f ms; prompt %zu tokens, %.1f tok/s; first token %.1f ms after start; generated %zu, %.1f "
                 "tok/s; stopped: %s; %d threads; tier %s]\n",
                 engine->load_ms(), prompt_ids.size(), prefill_tok_s, first_token_ms, ids.size(), decode_tok_s,
                 stop_reason_name(t.stop), threads, engine->tier().c_str());
  }
  if (speculate)
    std::fprintf(stderr, "[speculative %s: drafted %lld, accepted %lld (%.1f %%), %lld target calls for %zu tokens, %.1f tok/s, drafting %.1f ms]\n",
                 drafter->kind(), static_cast<long long>(spec.drafted), static_cast<long long>(spec.accepted),
                 100.0 * spec.acceptance_rate(), static_cast<long long>(spec.target_calls), ids.size(), decode_tok_s, spec.draft_ms);
  return 0;
}

namespace {

// Runs `argv` (argv[0] a path) and returns its standard output; the exit status in *status.
std::string run_child(const std::vector<std::string>& argv, int* status) {
  *status = -1;
  int fds[2];
  if (pipe(fds) != 0) return "";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  posix_spawn_file_actions_addclose(&actions, fds[1]);
  std::vector<char*> cargv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  std::string out;
  if (spawned == 0) {
    char buf[4096];
    for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
    int st = 0;
    if (waitpid(pid, &st, 0) == pid && WIFEXITED(st)) *status = WEXITSTATUS(st);
  }
  close(fds[0]);
  return out;
}

// The prompt of the fresh-process row: a first impression, a few tokens.
constexpr const char* kTtftPrompt = "Hello world";

}  // namespace

int cmd_bench(const std::vector<std::string>& args) {
  std::string path, tier, keys, profile;
  std::vector<int> prompts = {128, 512}, thread_counts = {1, 2};
  int gen = 64, reps = 3;
  bool json = false, fresh_process = true, warmup = true;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    std::string error;
    const bool has = i + 1 < args.size();
    bool ok = true;
    if (a == "-p") ok = has && int_list(a, args[++i], &prompts, &error);
    else if (a == "-n") ok = has && number(a, args[++i], &gen, &error, 0);
    else if (a == "-t") ok = has && int_list(a, args[++i], &thread_counts, &error);
    else if (a == "-r") ok = has && number(a, args[++i], &reps, &error, 1);
    else if (a == "--json") json = true;
    else if (a == "--no-fresh-process") fresh_process = false;
    else if (a == "--no-warmup") warmup = false;
    else if (a == "--profile") ok = has && !(profile = args[++i]).empty();
    else if (a == "--tier") ok = has && !(tier = args[++i]).empty();
    else if (a == "--trusted-keys") ok = has && !(keys = args[++i]).empty();
    else if (!a.empty() && a[0] == '-') return usage_error("bench: unknown option '" + a + "'");
    else if (path.empty()) path = a;
    else return usage_error("bench: more than one bundle given");
    if (!ok) return usage_error("bench: " + (error.empty() ? "bad value for " + a : error));
  }
  if (path.empty()) return usage_error("bench: no bundle given");
  if (!profile.empty())  // refused before the work, not after it
    if (Status st = check_output_path(profile, {path}); !st.ok()) return fail(st.message());
  for (int t : thread_counts)
    if (t > kMaxSessionThreads) return usage_error("bench: -t: at most " + std::to_string(kMaxSessionThreads) + " threads, got " + std::to_string(t));
  std::vector<int> usable;  // capped at the hardware threads, each count once
  for (int t : thread_counts)
    if (int u = usable_threads(t, "bench"); std::find(usable.begin(), usable.end(), u) == usable.end()) usable.push_back(u);
  thread_counts = usable;

  std::string error;
  std::vector<double> load_ms;
  std::unique_ptr<Engine> engine;
  for (int r = 0; r < reps; ++r) {
    engine.reset();
    engine = value_or_error(Engine::load(path, EngineOptions{.tier = tier, .trusted_keys = keys}), &error);
    if (!engine) return fail(error);
    load_ms.push_back(engine->load_ms());
  }
  const std::string bundle_tier = engine->tier();
  if (!profile.empty()) {
    // The profile instead of the throughput rows: decode steps after the first -p tokens, -n
    // steps timed kernel by kernel, on the most threads of -t; with -n 0 the prompt processing
    // of the first -p tokens instead, -r prompts.
    ProfileOptions po;
    po.threads = *std::max_element(thread_counts.begin(), thread_counts.end());
    po.context = prompts.empty() ? 128 : prompts.front();
    po.steps = std::max(1, gen);
    if (gen == 0) {
      po.prompt_tokens = prompts.empty() ? 512 : prompts.front();
      po.steps = std::max(1, reps);
    }
    if (Status st = run_profile(*engine, path, po, profile); !st.ok()) return fail(st.message());
    std::printf("profile written to %s\n", profile.c_str());
    return 0;
  }
  auto stats = [](const std::vector<double>& v) {
    const double mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
    double var = 0;
    for (double x : v) var += (x - mean) * (x - mean);
    return std::pair<double, double>{mean, v.size() > 1 ? std::sqrt(var / static_cast<double>(v.size() - 1)) : 0.0};
  };
  // A user's first impression: a fresh `ingot run` process, from its start to the first generated
  // token, and its load time. Measured first, with the bundle in the page cache (read once here)
  // but not yet in this process's CPU caches.
  nlohmann::json fresh = nlohmann::json::array();
  if (fresh_process && engine->tokenizer()) {
    if (std::ifstream in(path, std::ios::binary); in) {
      std::vector<char> buf(1 << 22);
      while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0) {
      }
    }
    const std::string self = "/proc/self/exe";
    std::string exe(4096, '\0');
    const ssize_t len = readlink(self.c_str(), exe.data(), exe.size() - 1);
    if (len <= 0) return fail("bench: cannot find this executable to start a fresh process");
    exe.resize(static_cast<size_t>(len));
    if (!json)
      std::printf("\n| bundle | fresh process: \"%s\", 1 token | threads | first token ms | +/- | load ms | prompt tokens |\n"
                  "|---|---|---:|---:|---:|---:|---:|\n",
                  kTtftPrompt);
    for (int threads : thread_counts) {
      std::vector<double> ttft, loads;
      size_t prompt_tokens = 0;
      for (int r = 0; r < reps; ++r) {
        int status = 0;
        std::vector<std::string> argv = {exe, "run", path, "-p", kTtftPrompt, "-n", "1", "--temp", "0", "--json",
                                         "--threads", std::to_string(threads)};
        // The same kernel set as this process: the tier it chose (forced or not).
        if (!bundle_tier.empty()) argv.insert(argv.end(), {"--tier", bundle_tier});
        if (!keys.empty()) argv.insert(argv.end(), {"--trusted-keys", keys});
        const std::string out = run_child(argv, &status);
        if (status != 0) return fail("bench: the fresh `ingot run` process failed (exit " + std::to_string(status) + ")");
        const nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
        if (j.is_discarded() || !j.contains("timings")) return fail("bench: the fresh `ingot run` process printed no timings");
        ttft.push_back(j["timings"]["time_to_first_token_ms"].get<double>());
        loads.push_back(j["timings"]["load_ms"].get<double>());
        prompt_tokens = j["prompt_ids"].size();
      }
      auto [tmean, tsd] = stats(ttft);
      auto [fl, fls] = stats(loads);
      (void)fls;
      fresh.push_back({{"prompt", kTtftPrompt}, {"prompt_tokens", prompt_tokens}, {"threads", threads},
                       {"time_to_first_token_ms", {{"mean", tmean}, {"stddev", tsd}, {"runs", ttft}}},
                       {"load_ms", fl}});
      if (!json)
        std::printf("| %s | ttft | %d | %.1f | %.1f | %.1f | %zu |\n", path.c_str(), threads, tmean, tsd, fl, prompt_tokens);
    }
    if (!json) std::printf("\n");
  }
  std::mt19937 rng(1234);
  auto random_ids = [&](int count) {
    std::vector<int32_t> ids(static_cast<size_t>(count));
    std::uniform_int_distribution<int32_t> d(0, static_cast<int32_t>(engine->vocab() - 1));
    for (auto& id : ids) id = d(rng);
    return ids;
  };
  nlohmann::json rows = nlohmann::json::array();
  if (!json) std::printf("| bundle | test | threads | tokens/s | +/- |\n|---|---|---:|---:|---:|\n");
  for (int threads : thread_counts) {
    auto session = value_or_error(Session::create(*engine, threads), &error);
    if (!session) return fail(error);
    auto report = [&](const std::string& test, const std::vector<double>& tok_s) {
      auto [mean, sd] = stats(tok_s);
      rows.push_back({{"test", test}, {"threads", threads}, {"tok_s", mean}, {"stddev", sd}, {"reps", reps}});
      if (!json) std::printf("| %s | %s | %d | %.2f | %.2f |\n", path.c_str(), test.c_str(), threads, mean, sd);
    };
    for (int p : prompts) {
      if (p > engine->max_context()) return fail("-p " + std::to_string(p) + " exceeds the bundle's context of " + std::to_string(engine->max_context()));
      std::vector<double> tok_s;
      // One untimed prompt first, as llama-bench's warm-up: the session's KV cache and activation
      // pages are then written once before the timed runs (a first write faults: 4-9 us a page on
      // the AMD Zen 5 VMs, tens of ms for a 512-token prompt).
      if (warmup) {
        session->reset();
        if (Status st = session->prefill(random_ids(p)); !st.ok()) return fail(st.message());
      }
      for (int r = 0; r < reps; ++r) {
        session->reset();
        auto ids = random_ids(p);
        const auto t0 = std::chrono::steady_clock::now();
        if (Status st = session->prefill(ids); !st.ok()) return fail(st.message());
        tok_s.push_back(1000.0 * p / ms_since(t0));
      }
      report("pp" + std::to_string(p), tok_s);
    }
    if (gen > 0) {
      if (gen + 1 > engine->max_context()) return fail("-n exceeds the bundle's context");
      std::vector<double> tok_s;
      if (warmup) {  // as llama-bench: one untimed step (and the positions' pages written once)
        session->reset();
        if (Status st = session->prefill(random_ids(gen + 1)); !st.ok()) return fail(st.message());
      }
      for (int r = 0; r < reps; ++r) {
        session->reset();
        auto ids = random_ids(gen + 1);
        if (Status st = session->prefill(std::span<const int32_t>(ids.data(), 1)); !st.ok()) return fail(st.message());
        const auto t0 = std::chrono::steady_clock::now();
        for (int g = 1; g <= gen; ++g)
          if (Status st = session->decode(ids[static_cast<size_t>(g)]); !st.ok()) return fail(st.message());
        tok_s.push_back(1000.0 * gen / ms_since(t0));
      }
      report("tg" + std::to_string(gen), tok_s);
    }
  }
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  const double peak_mib = static_cast<double>(ru.ru_maxrss) / 1024.0;
  auto [lmean, lsd] = stats(load_ms);

  if (json) {
    nlohmann::json j;
    j["bundle"] = path;
    j["tier"] = bundle_tier;
    j["results"] = rows;
    j["fresh_process"] = fresh;
    j["load_ms"] = {{"mean", lmean}, {"stddev", lsd}};
    j["peak_rss_mib"] = peak_mib;
    std::printf("%s\n", json_dump(j).c_str());
  } else {
    std::printf("load %.2f +/- %.2f ms; peak resident memory %.1f MiB; kernels of tier %s\n", lmean, lsd, peak_mib, bundle_tier.c_str());
  }
  return 0;
}

int cmd_perplexity(const std::vector<std::string>& args) {
  std::string path, file, tier, keys;
  int64_t ctx = 0;
  int threads = default_threads();
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    std::string error;
    const bool has = i + 1 < args.size();
    bool ok = true;
    if (a == "-f") ok = has && !(file = args[++i]).empty();
    else if (a == "--ctx" || a == "-c") ok = has && number(a, args[++i], &ctx, &error, 2);
    else if (a == "--threads" || a == "-t") ok = has && number(a, args[++i], &threads, &error, 1, kMaxSessionThreads);
    else if (a == "--tier") ok = has && !(tier = args[++i]).empty();
    else if (a == "--trusted-keys") ok = has && !(keys = args[++i]).empty();
    else if (!a.empty() && a[0] == '-') return usage_error("perplexity: unknown option '" + a + "'");
    else if (path.empty()) path = a;
    else return usage_error("perplexity: more than one bundle given");
    if (!ok) return usage_error("perplexity: " + (error.empty() ? "bad value for " + a : error));
  }
  if (path.empty() || file.empty()) return usage_error("perplexity: needs BUNDLE -f FILE");
  threads = usable_threads(threads, "perplexity");
  std::ifstream f(file, std::ios::binary);
  if (!f) return fail(file + ": cannot open file");
  std::stringstream ss;
  ss << f.rdbuf();
  std::string error;
  auto engine = value_or_error(Engine::load(path, EngineOptions{.tier = tier, .trusted_keys = keys}), &error);
  if (!engine) return fail(error);
  if (!engine->tokenizer()) return fail(path + ": the bundle has no tokenizer");
  if (ctx == 0) ctx = std::min<int64_t>(512, engine->max_context());
  if (ctx > engine->max_context()) return fail("--ctx is larger than the bundle's context of " + std::to_string(engine->max_context()));
  const std::vector<int32_t> ids = engine->tokenizer()->encode(ss.str(), false);
  const int32_t bos = engine->tokenizer()->spec().bos;
  auto session = value_or_error(Session::create(*engine, threads), &error);
  if (!session) return fail(error);
  // Chunks of ctx tokens, each started fresh with BOS (llama.cpp's perplexity convention): every
  // token after the first of a chunk is scored from the logits before it.
  double nll = 0, nll2 = 0;  // sums of -log p and its square: the mean and its standard error
  int64_t scored = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t body = bos >= 0 ? ctx - 1 : ctx;
  const int64_t chunks = ids.size() < 2 ? 0 : (static_cast<int64_t>(ids.size()) - 2) / body + 1;
  // exp(mean) and, by the delta method, exp(mean) times the standard error of the mean (llama.cpp's
  // "PPL = x +/- e").
  auto estimate = [&](double* err) {
    const double n = static_cast<double>(scored), mean = nll / n;
    const double var = scored > 1 ? std::max(0.0, (nll2 / n - mean * mean) * n / (n - 1)) : 0;
    *err = std::exp(mean) * std::sqrt(var / n);
    return std::exp(mean);
  };
  int64_t chunk_no = 0;
  for (size_t at = 0; at + 1 < ids.size(); at += static_cast<size_t>(body)) {
    session->reset();
    std::vector<int32_t> chunk;
    if (bos >= 0) chunk.push_back(bos);
    for (size_t k = at; k < ids.size() && chunk.size() < static_cast<size_t>(ctx); ++k) chunk.push_back(ids[k]);
    // -log p(next | row's logits)
    auto score = [&](std::span<const float> l, int32_t next) {
      const double mx = *std::max_element(l.begin(), l.end());
      double sum = 0;
      for (float v : l) sum += std::exp(static_cast<double>(v) - mx);
      const double t = -(static_cast<double>(l[static_cast<size_t>(next)]) - mx - std::log(sum));
      nll += t;
      nll2 += t * t;
      ++scored;
    };
    if (engine->all_logits()) {
      // Calls of up to max_batch tokens, each leaving a row of logits per token.
      const size_t V = static_cast<size_t>(engine->vocab()), step = static_cast<size_t>(engine->max_batch());
      for (size_t k = 0; k + 1 < chunk.size(); k += step) {
        const size_t n = std::min(step, chunk.size() - 1 - k);
        if (Status st = session->prefill(std::span<const int32_t>(chunk.data() + k, n)); !st.ok()) return fail(st.message());
        const auto rows = session->chunk_logits();
        for (size_t r = 0; r < n; ++r) score(rows.subspan(r * V, V), chunk[k + r + 1]);
      }
    } else {
      // Only the last position's logits: one token per call.
      for (size_t k = 0; k + 1 < chunk.size(); ++k) {
        if (Status st = session->decode(chunk[k]); !st.ok()) return fail(st.message());
        score(session->logits(), chunk[k + 1]);
      }
    }
    // After each chunk: the running estimate, the rate and the time left.
    ++chunk_no;
    double err = 0;
    const double ppl = scored > 0 ? estimate(&err) : 0;
    const double secs = ms_since(t0) / 1000, rate = secs > 0 ? static_cast<double>(scored) / secs : 0;
    const double eta = chunk_no > 0 ? secs / static_cast<double>(chunk_no) * static_cast<double>(chunks - chunk_no) : 0;
    std::printf("[%lld/%lld] perplexity %.4f +/- %.4f (%lld tokens, %.0f tok/s, ETA %.0f s)\n", static_cast<long long>(chunk_no),
                static_cast<long long>(chunks), ppl, err, static_cast<long long>(scored), rate, eta);
    std::fflush(stdout);
  }
  if (scored == 0) return fail(file + ": fewer than 2 tokens to score");
  double err = 0;
  const double ppl = estimate(&err);
  std::printf("perplexity %.6f +/- %.6f over %lld tokens (chunks of %lld, %.1f s)\n", ppl, err, static_cast<long long>(scored),
              static_cast<long long>(ctx), ms_since(t0) / 1000);
  return 0;
}

}  // namespace ingot
