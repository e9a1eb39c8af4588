// ingot: the Ingot runtime's command line. Links only the runtime (no compiler, no LLVM): it reads
// bundles written by `ingotc compile -o OUT.ingot`.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <google/protobuf/stubs/logging.h>

#include "runtime/bundle.h"
#include "runtime/bundle_tokenizer.h"
#include "runtime/cpu_features.h"
#include "runtime/kernel_contract.h"
#include "runtime/kernel_object.h"
#include "runtime/signature.h"
#include "tools/command_help.h"
#include "tools/ingot_chat.h"
#include "tools/ingot_run.h"
#include "tools/ingot_serve.h"
#include "base/clock.h"

namespace ingot {
namespace {

constexpr const char* kUsage = R"(ingot: the Ingot runtime

Usage:
  ingot info BUNDLE [--graph] [--tensors] [--trusted-keys FILE]
                          the manifest, readable: model, inputs and outputs, tensors, kernels,
                          kernel sets (tier, size, whether this host runs it, the one chosen),
                          memory plan, state, tokenizer, generation defaults, provenance, and the
                          signature (who signed, whether valid, whether the signer is trusted);
                          --graph adds the optimized graph (IR text), --tensors every tensor
  ingot verify BUNDLE [--tier TIER] [--trusted-keys FILE]
                          check every section's SHA-256, the signature (if any: it must hold;
                          required with trusted keys), the manifest, and that this CPU runs one of the kernel sets (or
                          TIER's); loads and runs no kernel code
  ingot run BUNDLE|MODEL (-p PROMPT | -p - | -f FILE) [-n N] [--temp T] [--top-k K] [--top-p P]
            [--min-p M] [--repeat-penalty R] [--repeat-last-n N] [--presence-penalty X] [--seed S]
            [--stop STR]... [--no-display-prompt] [--threads T] [--ctx N] [--json [--logits]]
            [--verify] [--no-eos-stop] [--tier TIER] [--trusted-keys FILE] [-m BUNDLE]
            [--lookup N | --draft BUNDLE|MODEL] [--draft-max K]
                          generate and stream the continuation after the echoed prompt
                          (--no-display-prompt: the continuation only); -p - reads the prompt
                          from stdin, -f from a file; -n -1 generates until the end of text or
                          a full context; --temp 0 is greedy; the seed is random unless given;
                          --stop (also -r) ends the text before a string, repeatable; --json
                          prints prompt_ids, ids, text (the continuation, its leading space
                          kept), stop_reason (eos, length, stop, context_full), seed, tier (the
                          CPU tier whose kernels ran) and timings (load, prompt, decode, and
                          time_to_first_token_ms: from process start to the first new token),
                          with --logits also logits_after_prompt (the next-token logits after
                          the prompt); --verify checks every section's SHA-256 (the weights too)
                          before loading. A MODEL (GGUF or Hugging Face folder) in place of a
                          bundle is compiled once by ingotc into $XDG_CACHE_HOME/ingot.
                          Speculative decoding, the same text at --temp 0: --lookup N drafts
                          from the context's own n-grams (the longest match of up to N tokens,
                          default K 8), --draft a smaller model of the same vocabulary (checked
                          at load; default K 5); the target checks K drafted tokens in one call;
                          --json adds speculative (drafted, accepted, acceptance_rate,
                          target_calls), stderr a summary line
  ingot chat BUNDLE [--system TEXT] [--chat-template FILE] [-n N] [--temp T] [--top-k K] [--top-p P]
             [--min-p M] [--repeat-penalty R] [--seed S] [--stop STR]... [--threads T] [--tier TIER]
             [--trusted-keys FILE]
                          a conversation in the terminal with the bundle's chat template (or FILE):
                          each reply streams and ends at the end of its turn (or -n tokens, a
                          stop string, Ctrl-C); earlier turns stay in the session's KV cache and
                          are not processed again; /reset, /save FILE (the session and
                          FILE.messages.json), /load FILE, /exit; end of input exits. A line
                          ending in \ continues on the next. `ingot run -cnv` (or -i) is the same,
                          with -p as the system prompt
  ingot serve BUNDLE|MODEL [--host 127.0.0.1] [--port 8080] [--parallel N] [--ctx N] [--threads T]
              [--api-key KEY] [--queue N] [--max-body BYTES] [--chat-template FILE] [--tier TIER]
              [--trusted-keys FILE] [--lookup N | --draft BUNDLE|MODEL] [--draft-max K]
              [--prefill-chunk N] [--mmap]
                          an OpenAI-compatible HTTP server (docs/serve.md): POST /v1/chat/completions
                          (the chat template; ChatML if the bundle has none), POST /v1/completions,
                          both streamed as server-sent events with "stream": true; GET /v1/models,
                          /health, /metrics (Prometheus). Up to --parallel requests (default 4)
                          decode together, one batched call per step, each in its own KV cache of
                          --ctx tokens (default: the bundle's context); a prompt that shares a
                          prefix with a slot's cached tokens reuses it; while some request decodes,
                          a step feeds at most --prefill-chunk prompt tokens (default 128; 0: the
                          bundle's max batch), so a long prompt does not stall the other streams
                          for a whole batch. --queue N (default 64)
                          requests wait for a slot, more get 503; bodies over --max-body (default
                          1 MiB) get 413; --api-key requires "Authorization: Bearer KEY" on /v1/.
                          Binds loopback by default; --port 0 takes a free port; the address is
                          printed on stderr when ready; SIGINT/SIGTERM stop it. --lookup and
                          --draft speculate as in `ingot run`, per slot, the verifications batched
                          with the other slots' tokens (greedy streams unchanged). The bundle is
                          read into 2 MiB huge pages where the system offers them (faster steps,
                          a slower start); --mmap maps it instead, sharing its pages
  ingot bench BUNDLE [-p 128,512] [-n 64] [-t 1,2] [-r 3] [--json] [--no-fresh-process] [--tier TIER]
            [--no-warmup] [--trusted-keys FILE] [--profile OUT.json]
                          first the time to first token of fresh `ingot run` processes (page
                          cache warm) per thread count; then prompt processing (ppP) and
                          generation (tgN) tokens/s, mean and deviation over -r runs after one
                          untimed run of each (as llama-bench; --no-warmup skips it), load time
                          and peak resident memory. --profile OUT.json instead times -n decode
                          steps after the first -p tokens on the most threads of -t, kernel
                          call by kernel call (alternating with as many untimed steps; with -n 0
                          -r prompts of the first -p tokens from an empty context), measures
                          this host's read bandwidth and peak f32 and int8 rates, and prints per
                          kernel its time share, bytes moved, operations, GB/s and G ops/s
                          against those limits (a roofline); OUT.json is what `ingotc viz
                          --profile` shows (docs/inspect.md)
  ingot perplexity BUNDLE -f FILE [--ctx N] [--threads T] [--tier TIER] [--trusted-keys FILE]
                          perplexity of a text file in chunks of N tokens (default 512): after
                          each chunk a line "[k/n] perplexity P +/- E" (the running estimate and
                          its standard error, llama.cpp's) with the rate and the time left; then
                          the final "perplexity P +/- E over T tokens"
  ingot --help            this text

A bundle holds kernels for one or more CPU tiers (`ingotc compile --target`); the runtime runs
the most demanding one this CPU runs. --tier TIER, or the environment variable INGOT_TIER=TIER,
forces one: an error if the bundle has no such tier or this CPU cannot run it.

A bundle is native code: run only bundles from producers you trust (docs/security.md). Every
load checks the SHA-256 of the manifest and of the kernels it loads. --trusted-keys FILE (one
"ingot-ed25519 KEY COMMENT" line per key, as `ingotc keygen` writes KEY.pub), else the
environment variable INGOT_TRUSTED_KEYS=FILE, else $XDG_CONFIG_HOME/ingot/trusted-keys
(~/.config/ingot/trusted-keys) if it exists: run, bench and perplexity refuse a bundle that is
not signed by one of these keys before loading any of its code, and verify fails on it.

Numbers are range-checked whole numbers where the option counts something: -n 0..2^31-1,
--seed 0..2^64-1, --ctx >= 1, --threads 1..1024. More threads than this machine's hardware
threads only slow a run down: the pool is capped at the hardware threads, with a note.

Options take `--opt value` or `--opt=value`; a mistyped option gets a suggestion. Every command
has `ingot COMMAND --help`.
Errors go to stderr; the exit status is 0 on success, 1 on a bad bundle, 2 on bad usage.
)";

std::string bytes_str(uint64_t b) {
  char buf[64];
  if (b < 1024) std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(b));
  else if (b < (1u << 20)) std::snprintf(buf, sizeof(buf), "%.1f KiB", b / 1024.0);
  else if (b < (1ull << 30)) std::snprintf(buf, sizeof(buf), "%.2f MiB", b / 1048576.0);
  else std::snprintf(buf, sizeof(buf), "%.2f GiB", b / 1073741824.0);
  return buf;
}

template <typename Seq>
std::string dims(const Seq& s) {
  std::string r = "[";
  bool first = true;
  for (auto d : s) {
    r += (first ? "" : ", ") + std::to_string(d);
    first = false;
  }
  return r + "]";
}

template <typename Seq>
std::string join(const Seq& s, const char* sep = ", ") {
  std::string r;
  for (const auto& x : s) r += (r.empty() ? "" : sep) + std::string(x);
  return r;
}

// Every kernel set: tier, size, whether this host runs it, which one runs; then the host's verdict.
void print_kernel_sets(const Bundle& b) {
  const std::vector<KernelSet>& sets = b.kernel_sets();
  std::printf("kernel sets: %zu%s\n", sets.size(),
              sets.size() > 1 ? " (the runtime runs the most demanding one this CPU runs; --tier or INGOT_TIER forces one)" : "");
  const std::vector<std::string>* previous = nullptr;
  for (size_t i = 0; i < sets.size(); ++i) {
    const KernelSet& k = sets[i];
    const bool runs = b.check_cpu(static_cast<int>(i)).empty();
    std::printf("  %-10s %-12s %10s (%llu bytes), LLVM cpu %s%s%s\n", k.tier.c_str(),
                k.section >= 0 ? ("section " + std::to_string(k.section)).c_str() : "no section", bytes_str(k.size).c_str(),
                static_cast<unsigned long long>(k.size), k.llvm_cpu.c_str(), runs ? ", runs here" : ", not on this CPU",
                b.chosen_kernel_set() == static_cast<int>(i) ? "  <- chosen" : "");
    // Tiers nest: each lists what it adds to the one before.
    std::vector<std::string> added;
    const bool nests = previous && std::includes(k.features.begin(), k.features.end(), previous->begin(), previous->end());
    if (nests)
      std::set_difference(k.features.begin(), k.features.end(), previous->begin(), previous->end(), std::back_inserter(added));
    std::printf("    %s %s\n", nests ? "adds" : "features", join(nests ? added : k.features, " ").c_str());
    previous = &k.features;
  }
  const std::string cpu = b.check_cpu();
  if (!cpu.empty()) std::printf("this host: %s\n", cpu.c_str());
  else if (b.chosen_kernel_set() >= 0)
    std::printf("this host: runs tier %s (best of its own: %s)\n", b.tier().c_str(),
                best_cpu_tier(host_cpu_features()) ? best_cpu_tier(host_cpu_features())->name : "none");
  if (!b.kernel_set_note().empty()) std::printf("  note: %s\n", b.kernel_set_note().c_str());
}

// The signature line of info and verify: who signed, whether the signature holds, whether the
// signer is trusted. Returns the check and, with trusted keys, whether it passes (*refused: why not).
BundleSignatureCheck print_signature(const Bundle& b, const std::optional<TrustedKeys>& keys, const char* prefix,
                                     std::string* refused) {
  const auto t0 = std::chrono::steady_clock::now();
  const BundleSignatureCheck c = b.check_signature();
  const double ms = ms_since(t0);
  using State = BundleSignatureCheck::State;
  std::string line;
  if (c.state == State::unsigned_bundle) {
    line = "none (the bundle is unsigned: nothing shows who produced it)";
  } else {
    line = c.has_signer ? "by '" + c.signer.comment + "' (" + c.fingerprint + "), " : "";
    line += c.state == State::valid ? "valid (checked in " + std::to_string(static_cast<int>(ms + 0.5)) + " ms)"
                                    : "INVALID: " + c.problem;
  }
  if (keys) {
    const PublicKey* k = c.state == State::valid ? keys->find(c.signer.key) : nullptr;
    if (k) line += "; signer trusted" + (k->comment != c.signer.comment ? " as '" + k->comment + "'" : "") + " (" + keys->path + ")";
    else if (c.state == State::valid) line += "; signer NOT trusted (not in " + keys->path + ")";
    else line += "; refused by the trusted keys (" + keys->path + ")";
    if (Status st = b.require_signature(c, *keys); !st.ok()) *refused = st.message();
  } else if (c.state == State::valid) {
    line += "; no trusted keys given (--trusted-keys, INGOT_TRUSTED_KEYS, ~/.config/ingot/trusted-keys)";
  }
  std::printf("%ssignature: %s\n", prefix, line.c_str());
  return c;
}

int cmd_info(const std::vector<std::string>& args) {
  std::string path, keys_file;
  bool graph = false, all_tensors = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--graph") graph = true;
    else if (a == "--tensors") all_tensors = true;
    else if (a == "--trusted-keys") {
      if (i + 1 >= args.size() || args[i + 1].empty()) return usage_error("info: --trusted-keys needs a file");
      keys_file = args[++i];
    } else if (!a.empty() && a[0] == '-') return usage_error("info: unknown option '" + a + "'");
    else if (path.empty()) path = a;
    else return usage_error("info: more than one bundle given");
  }
  if (path.empty()) return usage_error("info: no bundle given");
  auto keys = load_trusted_keys(keys_file);
  if (!keys.ok()) return fail(keys.message());
  const auto t0 = std::chrono::steady_clock::now();
  // A bundle for another CPU can still be described.
  auto opened = Bundle::open(path, BundleOpenOptions{.check_cpu = false, .tier = {}});
  if (!opened.ok()) return fail(opened.message());
  std::unique_ptr<Bundle> b = std::move(*opened);
  const double open_ms = ms_since(t0);
  const pb::Manifest& m = b->manifest();

  std::printf("bundle: %s, %s, format version %u, opened in %.2f ms\n", path.c_str(), bytes_str(b->file_size()).c_str(),
              b->format_version(), open_ms);
  for (size_t i = 0; i < b->sections().size(); ++i) {
    const BundleSection& s = b->sections()[i];
    std::printf("  section %zu: %-8s offset %10llu  %10s\n", i, bundle::section_kind_name(s.kind),
                static_cast<unsigned long long>(s.offset), bytes_str(s.size).c_str());
  }
  std::printf("model: %s (%s)\n", m.model_name().c_str(), m.architecture().empty() ? "?" : m.architecture().c_str());
  for (const auto& io : m.inputs()) std::printf("  input  %s: %s\n", io.name().c_str(), io.type().c_str());
  for (const auto& io : m.outputs()) std::printf("  output %s: %s\n", io.name().c_str(), io.type().c_str());

  // Tensors, summarized by type and layout.
  std::map<std::string, std::pair<int, uint64_t>> by_kind;
  uint64_t total = 0;
  for (const auto& t : m.tensors()) {
    auto& e = by_kind[t.type() + (t.layout() == "ggml" ? "" : " " + t.layout())];
    e.first++;
    e.second += t.size();
    total += t.size();
  }
  std::printf("tensors: %d, %s\n", m.tensors_size(), bytes_str(total).c_str());
  for (const auto& [kind, e] : by_kind) std::printf("  %-22s %5d  %s\n", kind.c_str(), e.first, bytes_str(e.second).c_str());
  if (all_tensors)
    for (const auto& t : m.tensors())
      std::printf("  %-40s %-5s %-16s %-14s offset %llu, %s%s%s\n", t.name().c_str(), t.type().c_str(),
                  dims(t.shape()).c_str(), t.layout().c_str(), static_cast<unsigned long long>(t.offset()),
                  bytes_str(t.size()).c_str(), t.kernel().empty() ? "" : ", for ", t.kernel().c_str());

  std::printf("kernels: %d\n", m.kernels_size());
  for (const auto& k : m.kernels())
    std::printf("  %-24s %s, %d node(s)\n", k.symbol().c_str(), k.description().c_str(), k.nodes_size());
  std::printf("schedule: %d kernel calls%s\n", m.schedule().calls_size(),
              m.schedule().calls_size() == 0 ? " (not generated yet)" : "");

  const pb::MemoryPlan& p = m.memory_plan();
  std::printf("memory plan: arena %s for up to %lld tokens per call (%d buffers, %lld-byte alignment; naive %s, lower bound %s)\n",
              bytes_str(p.arena_bytes()).c_str(), static_cast<long long>(p.max_batch()), p.buffers_size(),
              static_cast<long long>(p.alignment()), bytes_str(p.naive_bytes()).c_str(),
              bytes_str(p.lower_bound_bytes()).c_str());
  std::printf("  state: %s for a context of %lld tokens (%s per token), %d slots\n", bytes_str(p.state_bytes()).c_str(),
              static_cast<long long>(p.max_context()), bytes_str(p.kv_bytes_per_token()).c_str(), p.state_size());
  std::printf("state variables: %d\n", m.state_size());
  for (const auto& v : m.state())
    std::printf("  %s: %s%s\n", v.name().c_str(), v.type().c_str(), dims(v.max_shape()).c_str());

  const pb::Tokenizer& t = m.tokenizer();
  TokenizerSpec kind_only;  // what describe_tokenizer_kind reads, without copying the vocabulary
  kind_only.kind = tokenizer_kind_from_proto(t.kind());
  kind_only.pre = t.pre();
  kind_only.normalizer = t.normalizer();
  std::printf("tokenizer: %s, %d tokens, %d merges, bos %d, eos %d, unk %d, pad %d%s%s%s\n",
              describe_tokenizer_kind(kind_only).c_str(), t.tokens_size(),
              t.merges_size(), t.bos(), t.eos(), t.unk(), t.pad(), t.add_bos() ? ", adds BOS" : "",
              t.add_eos() ? ", adds EOS" : "", t.add_space_prefix() ? ", space prefix" : "");
  std::printf("chat template: %s\n",
              m.chat_template().empty() ? "none" : (std::to_string(m.chat_template().size()) + " characters").c_str());
  const pb::GenerationDefaults& g = m.generation();
  std::string gen;
  if (g.has_temperature()) gen += "temperature " + std::to_string(g.temperature()) + " ";
  if (g.has_top_k()) gen += "top_k " + std::to_string(g.top_k()) + " ";
  if (g.has_top_p()) gen += "top_p " + std::to_string(g.top_p()) + " ";
  if (g.has_repetition_penalty()) gen += "repetition_penalty " + std::to_string(g.repetition_penalty()) + " ";
  if (g.has_max_new_tokens()) gen += "max_new_tokens " + std::to_string(g.max_new_tokens()) + " ";
  std::printf("generation defaults: %s\n", gen.empty() ? "none" : gen.c_str());

  const pb::Provenance& pv = m.provenance();
  std::printf("provenance:\n  compiler: %s\n", pv.compiler_version().c_str());
  std::printf("  target: %s\n", pv.target_triple().c_str());
  std::printf("  quantization: %s, activations %s, KV cache %s\n", pv.quantization().c_str(), pv.act_quant().c_str(),
              pv.kv_type().c_str());
  std::printf("  passes: %s\n", join(pv.passes()).c_str());
  for (const auto& s : pv.sources())
    std::printf("  source: %s, %s, sha256 %s\n", s.name().c_str(), bytes_str(s.bytes()).c_str(), s.sha256().c_str());
  print_kernel_sets(*b);
  // info describes any bundle; whether the signer is trusted is reported, not enforced.
  std::string refused;
  print_signature(*b, *keys, "", &refused);
  if (graph) std::printf("graph:\n%s", m.graph_text().c_str());
  return 0;
}

int cmd_verify(const std::vector<std::string>& args) {
  std::string path, tier, keys_file;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--tier") {
      if (i + 1 >= args.size() || args[i + 1].empty()) return usage_error("verify: --tier needs a tier name");
      tier = args[++i];
      continue;
    }
    if (a == "--trusted-keys") {
      if (i + 1 >= args.size() || args[i + 1].empty()) return usage_error("verify: --trusted-keys needs a file");
      keys_file = args[++i];
      continue;
    }
    if (!a.empty() && a[0] == '-') return usage_error("verify: unknown option '" + a + "'");
    if (!path.empty()) return usage_error("verify: more than one bundle given");
    path = a;
  }
  if (path.empty()) return usage_error("verify: no bundle given");
  auto keys = load_trusted_keys(keys_file);
  if (!keys.ok()) return fail(keys.message());
  // Reads bytes only: no kernel code is loaded or run here.
  auto opened = Bundle::open(path, BundleOpenOptions{.check_cpu = false, .tier = tier});
  if (!opened.ok()) return fail(opened.message());
  std::unique_ptr<Bundle> b = std::move(*opened);
  const auto t0 = std::chrono::steady_clock::now();
  if (Status st = b->verify(); !st.ok()) return fail(st.message());
  std::printf("%s: %zu sections, SHA-256 ok (%s in %.0f ms)\n", path.c_str(), b->sections().size(),
              bytes_str(b->file_size()).c_str(), ms_since(t0));
  std::string refused;
  const BundleSignatureCheck sig = print_signature(*b, *keys, (path + ": ").c_str(), &refused);
  if (!refused.empty()) return fail(refused);
  // A signature that does not hold means changed bytes, trusted keys or not.
  if (sig.state == BundleSignatureCheck::State::invalid) return fail(path + ": bad signature: " + sig.problem);
  std::printf("%s: manifest ok: %d tensors, %d kernels, %zu kernel set(s)\n", path.c_str(), b->manifest().tensors_size(),
              b->manifest().kernels_size(), b->kernel_sets().size());
  const std::string cpu = b->check_cpu();
  if (!cpu.empty()) return fail(path + ": " + cpu);
  std::vector<std::string> tiers;
  for (const KernelSet& k : b->kernel_sets()) tiers.push_back(k.tier);
  if (b->chosen_kernel_set() >= 0)
    std::printf("%s: this CPU has all %zu features of tier %s (the bundle's tiers: %s)\n", path.c_str(),
                b->kernel_sets()[size_t(b->chosen_kernel_set())].features.size(), b->tier().c_str(), join(tiers).c_str());
  if (!b->kernel_set_note().empty()) std::printf("%s: note: %s\n", path.c_str(), b->kernel_set_note().c_str());
  // Each kernels object is inspected as the loader will before dlopen (runtime/kernel_object.h):
  // nothing in it may run at load, and it defines every listed kernel with its contract.
  for (const KernelSet& k : b->kernel_sets()) {
    if (k.section < 0) continue;
    const auto image = b->bytes(b->sections()[size_t(k.section)]);
    auto info = inspect_kernel_object(path + " (tier " + k.tier + ")", image);
    if (!info.ok()) return fail(info.message());
    for (const pb::Kernel& kernel : b->manifest().kernels()) {
      auto it = info->defined.find(kernel.symbol());
      if (it == info->defined.end() || !it->second.function)
        return fail(path + " (tier " + k.tier + "): the kernels object does not define '" + kernel.symbol() + "'");
      if (!decode_contract(info->data(image, contract_symbol(kernel.symbol()))).ok())
        return fail(path + " (tier " + k.tier + "): kernel '" + kernel.symbol() + "' has no valid contract (recompile the bundle)");
    }
  }
  if (b->manifest().kernels_size() > 0)
    std::printf("%s: kernels objects ok (nothing runs at load; every kernel and its contract present); kernels not loaded "
                "or run (verify reads the bundle's bytes only; `ingot run` loads them)\n",
                path.c_str());
  return 0;
}

}  // namespace
}  // namespace ingot

int main(int argc, char** argv) {
  // A corrupt manifest is reported by the loader with the file's name; protobuf's own log line
  // ("String field contains invalid UTF-8 ...") would only add noise.
  google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*, int, const std::string&) {});
  std::vector<std::string> args = ingot::cli::split_option_values(std::vector<std::string>(argv + 1, argv + argc));
  ingot::cli::registered_usage() = ingot::kUsage;
  if (args.empty()) return ingot::usage_error("no command given");
  const std::string cmd = args[0];
  args.erase(args.begin());
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::printf("%s", ingot::kUsage);
    return 0;
  }
  for (const std::string& a : args)
    if ((a == "--help" || a == "-h") && ingot::cli::print_command_help(ingot::kUsage, "ingot", cmd)) return 0;
  if (cmd == "info") return ingot::cmd_info(args);
  if (cmd == "verify") return ingot::cmd_verify(args);
  if (cmd == "chat") return ingot::cmd_chat(args);
  if (cmd == "run") {
    // run -cnv / -i: llama.cpp's conversation mode is `ingot chat`, with -p as the system prompt.
    const auto conv = std::find_if(args.begin(), args.end(), [](const std::string& a) {
      return a == "-cnv" || a == "--conversation" || a == "-i" || a == "--interactive";
    });
    if (conv != args.end()) {
      std::vector<std::string> chat_args;
      for (auto it = args.begin(); it != args.end(); ++it) {
        if (it == conv) continue;
        if (*it == "-p" || *it == "--prompt") chat_args.push_back("--system");
        else chat_args.push_back(*it);
      }
      return ingot::cmd_chat(chat_args);
    }
    return ingot::cmd_run(args);
  }
  if (cmd == "serve") return ingot::cmd_serve(args);
  if (cmd == "bench") return ingot::cmd_bench(args);
  if (cmd == "perplexity") return ingot::cmd_perplexity(args);
  return ingot::usage_error("unknown command '" + cmd + "'");
}
