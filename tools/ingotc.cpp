// ingotc: the Ingot compiler's command line. A thin front end over the libraries.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "codegen/bundle_signer.h"
#include "base/parse.h"
#include "codegen/target.h"
#include "runtime/atomic_file.h"
#include "runtime/cpu_features.h"
#include "frontend/demo_model.h"
#include "frontend/gguf.h"
#include "frontend/importer.h"
#include "frontend/reference_generation.h"
#include "frontend/synth.h"
#include "ir/evaluator.h"
#include "ir/ops.h"
#include "ir/text.h"
#include "ir/verifier.h"
#include "passes/pass_manager.h"
#include "tools/command_help.h"
#include "tools/check_command.h"
#include "tools/compile_command.h"
#include "tools/compile_pipeline.h"
#include "frontend/hf_config.h"
#include "tools/chat_template_command.h"
#include "tools/ingotc_cli.h"
#include "tools/viz_command.h"

namespace ingot {
namespace {

using cli::fail;
using cli::option_value;
using cli::usage_error;

constexpr const char* kUsage = R"(ingotc: the Ingot ahead-of-time compiler for LLMs on CPUs

MODEL is a .gguf file, a Hugging Face folder (config.json, *.safetensors, tokenizer), an IR
text file (.ir), or "demo" (the built-in demo model).

Usage:
  ingotc demo [-p PROMPT] [-n N]         build the built-in demo model, verify it, print an IR
                                         summary, run it with the reference evaluator and print
                                         the five most likely next tokens, then N greedy tokens
  ingotc inspect MODEL                   architecture, hyper-parameters, tensors, tokenizer, metadata
  ingotc dump MODEL [--format text|json|dot] [-o FILE] [--inline-limit N] [--all-logits] [--quant ...]
             [--stage imported|optimized|after=PASS] [--print-after=PHASE|PASS|all] [--stop-after=PHASE|PASS]
             [--stats] [--verify-each]
                                         print a model's IR as imported (default), after the
                                         default pipeline, or after one pass of it
  ingotc opt MODEL --passes=A,B,... [--print-after=PASS|all] [--stop-after=PASS] [--stats]
             [--verify-each] [--debug-match] [--inline-limit N] [-o FILE]
                                         run graph passes and print the IR; --print-after, --stats
                                         and --debug-match write to stderr
  ingotc tokenize MODEL TEXT [--json] [--no-bos] [--parse-special]
                                         token ids and pieces (MODEL may be a vocabulary-only GGUF)
  ingotc chat-template MODEL|BUNDLE --messages FILE.json [--add-generation-prompt] [--template FILE.jinja]
             [--date YYYY-MM-DD]
                                         the prompt the model's chat template makes of OpenAI-style
                                         messages (a JSON list, or an object with "messages", "tools"
                                         and other variables; - reads stdin), rendered as Hugging Face
                                         renders it (jinja2, trim_blocks, lstrip_blocks); bos/eos come
                                         from the model's tokenizer; --template replaces the model's;
                                         --date fixes strftime_now (default: today); docs/chat.md
  ingotc compile MODEL [-o OUT.ingot] [--quant TYPE|q4_k_m|q5_k_m] [--quant-override PATTERN=TYPE]...
                 [--act-quant auto|q8|ggml|off] [--max-context N] [--max-batch N] [--kv-type f32|f16] [--stats]
                 [--target portable|native|TIER[,TIER...]] [--print-plan] [--all-logits]
                 [--accuracy-report FILE.json [--calib TEXT_FILE] [--calib-tokens N]]
                 [--print-after=PHASE|PASS|all] [--stop-after=PHASE|PASS] [--verify-each] [--debug-match]
                 [--disable-pass=PASS[,PASS...]] [--sign KEY] [--chat-template FILE.jinja]
                                         the phases import, quantize, optimize, plan-memory and,
                                         with -o, kernels, schedule, bundle (a bundle for `ingot`);
                                         --chat-template FILE: the chat template the bundle keeps
                                         (default: the model's, which must parse: docs/chat.md);
                                         --quant TYPE (f32 f16 q8_0 q4_0 q4_k q5_0 q5_1 q5_k q6_k,
                                         or keep: as stored) quantizes float weights bit for bit as
                                         llama-quantize; q4_k_m, q5_k_m choose per-tensor types as
                                         llama-quantize's mixtures (docs/quantization.md);
                                         --print-after, --stop-after take a phase or a pass of
                                         optimize (docs/architecture.md); --stats prints
                                         the quantization table and memory plan; the accuracy report
                                         measures every quantized matmul (SQNR, cosine) and the end
                                         to end KL, top-1 agreement and perplexity (docs/quantization.md);
                                         --all-logits keeps every position's logits, so that
                                         `ingot perplexity` scores whole chunks per call;
                                         --target picks the CPU tiers, one kernel set each (default
                                         portable: every tier, x86-64-v2 x86-64-v3 x86-64-v4 avx512
                                         amx, compiled concurrently; native: the best tier of this
                                         host; the runtime runs the best set its CPU can; see
                                         `ingotc --version`); --act-quant auto (the default) gives
                                         block-quantized weights 8-bit activations in llama.cpp's
                                         formats (q8_0; q8_K for k-quants) and the fast kernels
                                         (q8, docs/quantization.md); ggml has no kernels (eval
                                         only); off keeps f32 activations
                                         (q2_k, q3_k, q5_k and iq4_xs weights have kernels for
                                         8-bit activations only). Matmul and embedding kernels:
                                         f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, q2_k,
                                         q3_k, q4_k, q5_k, q6_k, iq4_xs.
                                         --max-context 1..4194304 tokens (default: the model's),
                                         --max-batch 1..65536 (default 512); a KV cache and arena
                                         larger than this machine's memory is refused. The bundle
                                         written is opened as `ingot` will open it: one the runtime
                                         would refuse is removed, and compile fails;
                                         --sign KEY signs the bundle with an Ed25519 private key
                                         (ingotc keygen; docs/security.md);
                                         $INGOT_KERNEL_CACHE=DIR keeps each tier's compiled kernels
                                         in DIR, and a later compile of the same kernels for the
                                         same tier by the same ingotc takes them from there
                                         (docs/codegen.md, "Kernel cache")
  ingotc keygen -o KEY [--comment TEXT]  write a new Ed25519 signing key: KEY (private, PEM, mode
                                         0600) and KEY.pub (one line "ingot-ed25519 BASE64 COMMENT",
                                         the form of a trusted-keys file's lines); the comment
                                         defaults to USER@HOST; never replaces existing files
  ingotc sign BUNDLE --key KEY           sign an existing bundle in place (atomically: a new file
                                         renamed over it), replacing any earlier signature; every
                                         section's SHA-256 is checked first; the signer's comment
                                         comes from KEY.pub
  ingotc eval MODEL -p TEXT -n N [--json] [--quant ...] [--quant-override ...] [--act-quant auto|q8|ggml|off]
              [--stage imported|optimized] [--stop-at-eos] [--print-after=PASS|all] [--stats]
                                         greedy generation with the reference evaluator (slow, exact)
                                         on the optimized graph (default) or the imported one;
                                         --act-quant: auto (the default) is ggml for block-quantized
                                         weights (ggml's activation formats and generic dot
                                         products, bit for bit), q8 the kernels' numerics
  ingotc check BUNDLE MODEL [-p TEXT] [-n N] [--quant ...] [--quant-override ...] [--threads 1..1024]
               [--tolerance X] [--all-steps] [--tier TIER]
                                         run a bundle's kernels and the reference evaluator side by
                                         side (prompt, then N greedy steps) and report every schedule
                                         step's normalized error; exit 3 if one exceeds X (1e-6).
                                         The kernels of the tier the runtime picks (--tier, else
                                         $INGOT_TIER, else the best this CPU runs); with
                                         --tolerance 0 and no --tier, of every tier in the bundle this
                                         CPU runs, each reported (one failing tier fails the check).
                                         MODEL and the --quant options are those the bundle was
                                         compiled from; --act-quant and the KV type come from it
  ingotc synth (--shape NAME | --dims K=V,...) [--arch A] [--type f32|f16|q8_0|q4_0|q4_k|q6_k]
               [--vocab VOCAB.gguf] [--seed S] -o OUT.gguf
                                         write a random-weight GGUF that llama.cpp loads (shapes:
                                         tiny, s110m, tinyllama-1.1b; dims keys: vocab, dim, layers,
                                         heads, kv, ffn, ctx; --arch: llama (default), llama3,
                                         smollm2 (give a BPE --vocab), qwen2, qwen3, gemma2, gemma3,
                                         phi3)
  ingotc synth ... --format hf --tokenizer-from HF_DIR -o OUT_DIR
                                         the same weights (same shape, arch and seed) as a Hugging
                                         Face folder (F32 safetensors, config.json, HF_DIR's
                                         tokenizer files, whose size is the vocabulary)
  ingotc viz MODEL|BUNDLE [-o OUT.html] [--profile PROFILE.json] [--accuracy REPORT.json] [--quant ...]
                                         one self-contained HTML page (no network; works from
                                         file://) laid out by Graphviz: the decoder layers folded
                                         into one block, node details (op, attributes, types,
                                         weight type and bytes, kernel, CPU tier, arena offset;
                                         SQNR from an accuracy report of ingotc compile, time from
                                         ingot bench --profile), search, keyboard navigation and,
                                         for a MODEL, every phase and pass of the compile pipeline
                                         with the nodes it added, removed and changed (a BUNDLE
                                         keeps only its optimized graph); default OUT: the input's
                                         name + .html; docs/inspect.md
  ingotc diff A B [--html OUT.html] [--quant ...]
                                         what differs between two bundles, models or IR files: graph
                                         nodes, weight types, kernels, memory plan and provenance, as
                                         text on stdout and, with --html, as a self-contained page
                                         (exit 0 whether or not they differ; docs/inspect.md)
  ingotc verify MODEL                    check a model; lists every problem found
  ingotc summary MODEL [--stage imported|optimized] [--print-after=PASS|all] [--stats] [--verify-each]
                                         op counts, inputs, outputs, state, constants, timings
  ingotc ops                             list the registered ops
  ingotc --version                       version, the host target LLVM sees, the CPU tiers
  ingotc --help                          this text

Outputs (-o, --accuracy-report) are written under a temporary name and renamed into place; an
existing output must be a regular, writable file that is not an input (a symlink, FIFO, device,
directory or read-only file is never replaced). Numbers are whole numbers within each option's
range (--seed: 0 to 2^64-1).

Errors go to stderr; the exit status is 0 on success, 1 on a user error, 2 on bad usage.
)";

// Any MODEL argument ("demo", an IR text file, or a model file or folder), through the compiler's
// import phase.
StatusOr<std::unique_ptr<Model>> load_model(const std::string& path) {
  CompileState state;
  state.path = path;
  INGOT_RETURN_IF_ERROR(CompilePipeline(PhaseOptions{}).run(state, "import").status());
  return std::move(state.im.model);
}

// Runs the compiler's phases up to `last` for `command`: a bad phase or pass name is a usage
// error, a failing phase an error; pass statistics go to stderr. Returns the exit status to leave
// with, or nothing when every phase ran.
std::optional<int> run_phases(const std::string& command, CompileState& state, const PhaseOptions& options,
                              const std::string& last) {
  CompilePipeline pipeline(options);
  if (Status named = pipeline.check_options(state, last); !named.ok()) return usage_error(command + ": " + named.message());
  if (auto ran = pipeline.run(state, last); !ran.ok()) return fail(ran.status());
  if (!state.pass_stats.empty()) std::cerr << state.pass_stats;
  return std::nullopt;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (b >= 1024 && u < 3) { b /= 1024; ++u; }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u ? "%.1f %s" : "%.0f %s", b, units[u]);
  return buf;
}

void print_summary(const Model& m) {
  std::map<std::string, int> ops;
  int64_t const_bytes = 0, const_count = 0;
  std::set<std::string> symbols;
  for (auto& n : m.nodes()) {
    ops[std::string(n->op_name())]++;
    if (n->is(Op::Constant) && n->constant) {
      const_bytes += static_cast<int64_t>(n->constant->nbytes());
      ++const_count;
    }
    for (auto& t : n->outputs)
      for (auto& d : t.shape)
        for (auto& term : d.terms()) symbols.insert(term.first);
  }
  std::printf("model '%s': %zu nodes, %zu op kinds\n", m.name().c_str(), m.nodes().size(), ops.size());
  std::printf("  inputs:\n");
  for (Node* p : m.parameters()) std::printf("    %-12s %s\n", p->name.c_str(), p->outputs[0].str().c_str());
  std::printf("  outputs:\n");
  for (Node* r : m.results()) std::printf("    %-12s %s\n", r->name.c_str(), r->outputs[0].str().c_str());
  int64_t state_bytes = 0;
  for (auto& v : m.variables()) {
    int64_t n = 1;
    for (int64_t d : v.max_shape) n *= d;
    state_bytes += n * type_info(v.type).block_bytes;
  }
  std::printf("  state: %zu variables, %s at the maximum shape\n", m.variables().size(), human_bytes(static_cast<double>(state_bytes)).c_str());
  std::printf("  constants: %lld, %s\n", static_cast<long long>(const_count), human_bytes(static_cast<double>(const_bytes)).c_str());
  std::string syms;
  for (auto& s : symbols) syms += (syms.empty() ? "" : ", ") + s;
  std::printf("  symbolic dimensions: %s\n", syms.empty() ? "none" : syms.c_str());
  std::printf("  ops:");
  int col = 0;
  for (auto& [op, count] : ops) {
    std::printf("%s %s x%d", col++ % 6 == 0 ? "\n   " : ",", op.c_str(), count);
  }
  std::printf("\n");
}

struct Ranked {
  int64_t id;
  float logit;
  double prob;
};

std::vector<Ranked> top_k(const std::vector<float>& logits, size_t k) {
  double m = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - m);
  std::vector<Ranked> r;
  for (size_t i = 0; i < logits.size(); ++i)
    r.push_back({static_cast<int64_t>(i), logits[i], std::exp(static_cast<double>(logits[i]) - m) / sum});
  // Ties keep the lower id first (libstdc++'s stable_sort warns under clang, so order explicitly).
  std::sort(r.begin(), r.end(), [](const Ranked& a, const Ranked& b) { return a.logit != b.logit ? a.logit > b.logit : a.id < b.id; });
  r.resize(std::min(k, r.size()));
  return r;
}

int cmd_demo(const std::vector<std::string>& args) {
  std::string prompt = "Hello";
  int n_gen = 8;
  for (size_t i = 0; i < args.size(); ++i) {
    if ((args[i] == "-p" || args[i] == "--prompt") && i + 1 < args.size()) prompt = args[++i];
    else if ((args[i] == "-n") && i + 1 < args.size()) {
      auto v = parse_int("-n", args[++i], 0, 200);
      if (!v.ok()) return usage_error("demo: " + v.message());
      n_gen = static_cast<int>(*v);
    } else return usage_error("demo: unknown argument '" + args[i] + "'");
  }
  auto t0 = std::chrono::steady_clock::now();
  auto model = build_demo_model();
  if (!model.ok()) return fail(model.status());
  Status v = verify(**model);
  if (!v.ok()) return fail(v);
  double build_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("Built and verified the demo model in %.1f ms.\n\n", build_ms);
  print_summary(**model);

  std::vector<int64_t> ids = demo_tokenize(prompt);
  if (static_cast<int64_t>(ids.size()) + n_gen > demo_config().max_context)
    return fail(Status::Error("the prompt is longer than the demo's context of " + std::to_string(demo_config().max_context) + " tokens"));
  Evaluator ev(**model);
  auto run = [&](const std::vector<int64_t>& toks, int64_t pos) -> StatusOr<std::vector<float>> {
    std::map<std::string, Tensor> in = {
        {"token_ids", Tensor::from_i64({static_cast<int64_t>(toks.size())}, toks)},
        {"pos", Tensor::scalar_i64(pos)}};
    INGOT_ASSIGN_OR_RETURN(auto out, ev.run(in));
    return out[0].to_f32_vector();
  };
  t0 = std::chrono::steady_clock::now();
  auto logits = run(ids, 0);
  if (!logits.ok()) return fail(logits.status());
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("\nPrompt \"%s\" -> %zu tokens (BOS + bytes); reference evaluator forward pass: %.1f ms\n", prompt.c_str(), ids.size(), ms);
  std::printf("Top 5 next tokens (random weights, so no meaning):\n");
  std::printf("  %-5s %-8s %-10s %s\n", "rank", "id", "logit", "prob");
  int rank = 1;
  for (auto& r : top_k(*logits, 5))
    std::printf("  %-5d %-8s %-10.4f %.4f\n", rank++, (std::to_string(r.id) + " " + demo_token_text(r.id)).c_str(), r.logit, r.prob);

  if (n_gen > 0) {
    // Greedy decoding, one token per call: the KV cache lives in the evaluator's state.
    std::printf("Greedy continuation (%d tokens, one call each, KV cache in state):", n_gen);
    int64_t pos = static_cast<int64_t>(ids.size());
    int64_t next = top_k(*logits, 1)[0].id;
    for (int i = 0; i < n_gen; ++i) {
      std::printf(" %lld", static_cast<long long>(next));
      auto l = run({next}, pos++);
      if (!l.ok()) return fail(l.status());
      next = top_k(*l, 1)[0].id;
    }
    std::printf("\n");
  }
  return 0;
}

// ---------------------------------------------------------------- graph passes: opt, dump --stage

// `opt` runs a list of passes with the same inspection options as the compile phases.
using PassCliOptions = PhaseOptions;
bool parse_pass_option(const std::vector<std::string>& args, size_t& i, PassCliOptions& o, std::string* error) {
  return parse_phase_option(args, i, o, error);
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> r;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) r.push_back(item);
  return r;
}

// Runs `pipeline` on `m`; IR printed after passes, statistics and match debugging go to stderr.
Status run_pass_pipeline(Model& m, const std::vector<std::string>& pipeline, const PassCliOptions& o,
                         const PrintOptions& print) {
  PassManagerOptions pm_opts;
  pm_opts.verify_each = o.verify_each;
  pm_opts.print_after = o.print_after;
  pm_opts.print_stream = &std::cerr;
  pm_opts.print_options = print;
  pm_opts.stop_after = o.stop_after;
  pm_opts.stats = o.stats;
  pm_opts.debug_match = o.debug_match ? &std::cerr : nullptr;
  PassManager pm(pm_opts);
  INGOT_RETURN_IF_ERROR(pm.add_pipeline(pipeline));
  auto changed = pm.run(m);
  if (!changed.ok()) return changed.status();
  if (o.stats) std::cerr << pm.stats_report();
  return Status::Ok();
}

int cmd_opt(const std::vector<std::string>& args) {
  std::string path, out, passes;
  bool have_passes = false;
  PassCliOptions pass_opts;
  PrintOptions print;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string error;
    if (parse_pass_option(args, i, pass_opts, &error)) {
      if (!error.empty()) return usage_error("opt: " + error);
    } else if (option_value(args, i, "--passes", &passes, &error)) {
      if (!error.empty()) return usage_error("opt: " + error);
      have_passes = true;
    } else if (args[i] == "-o" && i + 1 < args.size()) {
      out = args[++i];
    } else if (args[i] == "--inline-limit" && i + 1 < args.size()) {
      auto v = parse_int("--inline-limit", args[++i], 0, std::numeric_limits<int64_t>::max());
      if (!v.ok()) return usage_error("opt: " + v.message());
      print.inline_constant_limit = *v;
    } else if (!args[i].empty() && args[i][0] == '-') {
      return usage_error("opt: unknown option '" + args[i] + "'");
    } else if (path.empty()) {
      path = args[i];
    } else {
      return usage_error("opt: more than one model given");
    }
  }
  if (path.empty()) return usage_error("opt: no model given");
  if (!have_passes) return usage_error("opt: --passes=A,B,... is required; known passes: " + known_pass_names());
  auto m = load_model(path);
  if (!m.ok()) return fail(m.status());
  Status st = run_pass_pipeline(**m, split_commas(passes), pass_opts, print);
  if (!st.ok()) return fail(st);
  std::string s = print_model(**m, print);
  if (out.empty()) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    return 0;
  }
  st = write_file_atomic(out, s, cli::input_files(path));
  return st.ok() ? 0 : fail(st);
}

int cmd_dump(const std::vector<std::string>& args) {
  std::string path, format = "text", out;
  PrintOptions opts;
  ImportOptions import_opts;
  PassCliOptions pass_opts;
  QuantCliOptions quant;
  std::string stage = "imported";
  for (size_t i = 0; i < args.size(); ++i) {
    std::string error;
    if (parse_pass_option(args, i, pass_opts, &error) || parse_quant_option(args, i, quant, &error)) {
      if (!error.empty()) return usage_error("dump: " + error);
    } else if (option_value(args, i, "--stage", &stage, &error)) {
      if (!error.empty()) return usage_error("dump: " + error);
    } else if (args[i] == "--format" && i + 1 < args.size()) format = args[++i];
    else if (args[i] == "-o" && i + 1 < args.size()) out = args[++i];
    else if (args[i] == "--inline-limit" && i + 1 < args.size()) {
      auto v = parse_int("--inline-limit", args[++i], 0, std::numeric_limits<int64_t>::max());
      if (!v.ok()) return usage_error("dump: " + v.message());
      opts.inline_constant_limit = *v;
    } else if (args[i] == "--all-logits") import_opts.all_logits = true;
    else if (!args[i].empty() && args[i][0] == '-') return usage_error("dump: unknown option '" + args[i] + "'");
    else if (path.empty()) path = args[i];
    else return usage_error("dump: more than one model given");
  }
  if (path.empty()) return usage_error("dump: no model given");
  if (format != "text" && format != "json" && format != "dot") return usage_error("dump: --format must be text, json or dot");
  // The compiler's phases: imported = import and quantize; optimized = and the optimize phase;
  // after=PASS = up to that pass of it.
  if (stage == "imported" && (pass_opts.stats || pass_opts.debug_match))
    return usage_error("dump: pass options need --stage optimized or --stage after=PASS");
  if (stage.rfind("after=", 0) == 0 && stage.size() > 6) {
    if (!pass_opts.stop_after.empty()) return usage_error("dump: --stage after=PASS and --stop-after are the same thing: give one");
    pass_opts.stop_after = stage.substr(6);
  } else if (stage != "imported" && stage != "optimized") {
    return usage_error("dump: --stage must be imported, optimized or after=PASS, got '" + stage + "'");
  }
  const std::string last = stage == "imported" ? "quantize" : "optimize";
  pass_opts.print = opts;
  CompileState state;
  state.path = path;
  state.import = import_opts;
  state.import.act_quant = import_act_quant(quant);
  state.quant = quant;
  if (auto exit_status = run_phases("dump", state, pass_opts, last)) return *exit_status;
  Model* m = &state.model();
  std::string s = format == "text" ? print_model(*m, opts) : format == "json" ? export_json(*m, opts) + "\n" : export_dot(*m);
  if (out.empty()) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    return 0;
  }
  Status st = write_file_atomic(out, s, cli::input_files(path));
  return st.ok() ? 0 : fail(st);
}

int cmd_verify(const std::vector<std::string>& args) {
  if (args.size() != 1) return usage_error("verify takes one model");
  auto m = load_model(args[0]);
  if (!m.ok()) return fail(m.status());
  auto diags = verify_diagnostics(**m);
  for (auto& d : diags) std::fprintf(stderr, "%s: error: [%s] %s\n", args[0].c_str(), verify_code_name(d.code), d.message.c_str());
  if (!diags.empty()) return 1;
  std::printf("%s: ok (%zu nodes)\n", args[0].c_str(), (*m)->nodes().size());
  return 0;
}

int cmd_summary(const std::vector<std::string>& args) {
  std::string path, stage = "imported";
  PassCliOptions pass_opts;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string error;
    if (parse_pass_option(args, i, pass_opts, &error)) {
      if (!error.empty()) return usage_error("summary: " + error);
      continue;
    }
    if (args[i] == "--stage" && i + 1 < args.size()) stage = args[++i];
    else if (path.empty() && (args[i].empty() || args[i][0] != '-')) path = args[i];
    else return usage_error("summary: unexpected argument '" + args[i] + "'");
  }
  if (path.empty()) return usage_error("summary takes one model");
  if (stage != "imported" && stage != "optimized") return usage_error("summary: --stage must be imported or optimized");
  CompileState state;
  state.path = path;
  const std::string last = stage == "optimized" ? "optimize" : "import";
  if (auto exit_status = run_phases("summary", state, pass_opts, last)) return *exit_status;
  const double import_ms = state.phase_ms("import"), pipeline_ms = state.phase_ms("optimize");
  print_summary(state.model());
  std::printf("  time: import %.0f ms%s\n", import_ms,
              stage == "optimized" ? (", default pipeline " + std::to_string(static_cast<int>(pipeline_ms)) + " ms").c_str() : "");
  // Anonymous memory is what the process allocated (a copied weight would show here); file-backed
  // is mapped model pages the kernel brought in when they were touched.
  std::ifstream status("/proc/self/status");
  std::string line;
  long anon_kb = -1, file_kb = -1;
  while (std::getline(status, line)) {
    if (line.rfind("RssAnon:", 0) == 0) anon_kb = std::atol(line.c_str() + 8);
    if (line.rfind("RssFile:", 0) == 0) file_kb = std::atol(line.c_str() + 8);
  }
  if (anon_kb >= 0) std::printf("  memory: anon %ld MB, file-backed %ld MB resident\n", anon_kb / 1024, file_kb / 1024);
  return 0;
}

std::string json_dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

int cmd_inspect(const std::vector<std::string>& args) {
  if (args.size() != 1) return usage_error("inspect takes one model");
  auto im = import_model(args[0]);
  if (!im.ok()) return fail(im.status());
  const LlamaConfig& c = im->config;
  std::printf("%s: %s, architecture %s\n", im->path.c_str(), im->format.c_str(), im->architecture.c_str());
  std::printf("  vocab %lld, dim %lld, layers %lld, heads %lld, kv heads %lld, head dim %lld, ffn %lld, context %lld\n",
              (long long)c.vocab, (long long)c.dim, (long long)c.n_layers, (long long)c.n_heads, (long long)c.n_kv_heads,
              (long long)c.head_dim(), (long long)c.ffn, (long long)c.max_context);
  std::printf("  rms eps %g, rope base %g, rope layout %s%s, qkv bias %s, tied embeddings %s\n", c.rms_eps, c.rope_base,
              c.rope_layout == RopePairs::Interleaved ? "interleaved pairs" : "rotate-half",
              c.rope_scaling.type == RopeScaling::Type::Linear ? " (linear scaling)" :
              c.rope_scaling.type == RopeScaling::Type::Llama3 ? " (llama3 scaling)" :
              c.rope_freq_factors.empty() ? "" : " (frequency factors)",
              c.qkv_bias ? "yes" : "no", c.tied_embeddings ? "yes" : "no");
  const TokenizerSpec& t = im->tokenizer;
  std::printf("  tokenizer: %s, %zu tokens, %zu merges, bos %d, eos %d, add bos %s\n",
              describe_tokenizer_kind(t).c_str(), t.tokens.size(), t.merges.size(), t.bos, t.eos, t.add_bos ? "yes" : "no");
  uint64_t total = 0;
  for (auto& ts : im->tensors) total += ts.bytes;
  std::printf("  tensors: %zu, %s\n", im->tensors.size(), human_bytes(static_cast<double>(total)).c_str());
  for (auto& ts : im->tensors)
    std::printf("    %-36s %-5s %-16s %s\n", ts.name.c_str(), std::string(type_name(ts.type)).c_str(),
                dims_str(ts.shape).c_str(), human_bytes(static_cast<double>(ts.bytes)).c_str());
  std::printf("  metadata: %zu keys\n", im->metadata.size());
  for (auto& [k, v] : im->metadata) std::printf("    %-44s %s\n", k.c_str(), v.c_str());
  return 0;
}

int cmd_tokenize(const std::vector<std::string>& args) {
  std::vector<std::string> pos;
  bool json = false, bos = true, special = false;
  for (auto& a : args) {
    if (a == "--json") json = true;
    else if (a == "--no-bos") bos = false;
    else if (a == "--parse-special") special = true;
    else if (a.size() > 1 && a[0] == '-' && a[1] == '-') return usage_error("tokenize: unknown option '" + a + "'");
    else pos.push_back(a);
  }
  if (pos.size() != 2) return usage_error("tokenize takes a model and a text");
  auto spec = import_tokenizer(pos[0]);
  if (!spec.ok()) return fail(spec.status());
  auto created = Tokenizer::create(*spec);
  if (!created.ok()) return fail(created.status().with_context(pos[0]));
  std::unique_ptr<Tokenizer> tok = std::move(*created);
  std::vector<int32_t> ids = tok->encode(pos[1], bos, special);
  // Control tokens decode to nothing; show their text (e.g. "<s>") instead.
  auto piece = [&](int32_t id) {
    std::string p = tok->token_to_piece(id);
    return p.empty() && id >= 0 && id < tok->vocab_size() ? tok->spec().tokens[static_cast<size_t>(id)] : p;
  };
  if (json) {
    nlohmann::json j;
    j["ids"] = ids;
    j["pieces"] = nlohmann::json::array();
    for (int32_t id : ids) j["pieces"].push_back(piece(id));
    std::printf("%s\n", json_dump(j).c_str());
    return 0;
  }
  for (int32_t id : ids) std::printf("%6d  '%s'\n", id, piece(id).c_str());
  return 0;
}

int cmd_eval(const std::vector<std::string>& args) {
  std::string path, prompt;
  int n = 16;
  bool json = false, stop_at_eos = false;
  std::string stage = "optimized";
  ImportOptions opts;
  PassCliOptions pass_opts;
  QuantCliOptions quant;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string error;
    if (parse_pass_option(args, i, pass_opts, &error) || parse_quant_option(args, i, quant, &error)) {
      if (!error.empty()) return usage_error("eval: " + error);
      continue;
    }
    if ((args[i] == "-p" || args[i] == "--prompt") && i + 1 < args.size()) prompt = args[++i];
    else if (args[i] == "-n" && i + 1 < args.size()) {
      auto v = parse_int("-n", args[++i], 0, std::numeric_limits<int32_t>::max());
      if (!v.ok()) return usage_error("eval: " + v.message());
      n = static_cast<int>(*v);
    } else if (args[i] == "--json") json = true;
    else if (args[i] == "--stop-at-eos") stop_at_eos = true;
    else if (args[i] == "--stage" && i + 1 < args.size()) {
      stage = args[++i];
      if (stage != "imported" && stage != "optimized") return usage_error("eval: --stage must be imported or optimized");
    }
    else if (!args[i].empty() && args[i][0] == '-') return usage_error("eval: unknown option '" + args[i] + "'");
    else if (path.empty()) path = args[i];
    else return usage_error("eval: more than one model given");
  }
  if (path.empty()) return usage_error("eval: no model given");
  // The graph the compiler would generate code for (its phases up to optimize, verified after
  // each pass), or the imported one.
  if (stage == "imported" && (pass_opts.stats || pass_opts.debug_match))
    return usage_error("eval: pass options need --stage optimized");
  if (stage == "optimized") pass_opts.verify_each = true;
  const std::string last = stage == "optimized" ? "optimize" : "quantize";
  CompileState state;
  state.path = path;
  state.import = opts;
  state.import.act_quant = import_act_quant(quant);
  state.quant = quant;
  if (auto exit_status = run_phases("eval", state, pass_opts, last)) return *exit_status;
  if (state.im.format == "ir") return usage_error("eval: " + path + ": an IR text file has no tokenizer");
  ImportedModel* im = &state.im;
  auto created = Tokenizer::create(im->tokenizer);
  if (!created.ok()) return fail(created.status().with_context(path));
  std::unique_ptr<Tokenizer> tok = std::move(*created);
  std::vector<int32_t> prompt_ids = tok->encode(prompt, true);
  if (prompt_ids.empty()) return fail(Status::Error("the prompt encodes to no tokens and the model adds no BOS"));
  if (static_cast<int64_t>(prompt_ids.size()) + n > im->config.max_context)
    return fail(Status::Error("prompt (" + std::to_string(prompt_ids.size()) + " tokens) plus " + std::to_string(n) +
                              " new tokens exceed the context of " + std::to_string(im->config.max_context)));
  GreedyOptions go;
  go.max_new_tokens = n;
  go.stop_token = stop_at_eos ? im->tokenizer.eos : -1;
  std::string streamed = tok->decode(prompt_ids, true);
  std::vector<int32_t> all = prompt_ids;
  if (!json) {
    std::printf("%s", streamed.c_str());
    std::fflush(stdout);
    go.on_token = [&](int32_t id) {
      // Print the new text: decoding the whole sequence keeps the leading-space rule right.
      all.push_back(id);
      std::string text = tok->decode(all, true);
      if (text.size() >= streamed.size()) std::printf("%s", text.substr(streamed.size()).c_str());
      std::fflush(stdout);
      streamed = text;
    };
  }
  auto r = generate_greedy(*im->model, prompt_ids, go);
  if (!r.ok()) return fail(r.status());
  // The continuation alone, decoded as llama.cpp does (SentencePiece's leading space dropped).
  std::string continuation = tok->decode(r->ids, true);
  if (json) {
    nlohmann::json j;
    j["prompt_ids"] = prompt_ids;
    j["ids"] = r->ids;
    j["text"] = continuation;
    j["logits_after_prompt"] = r->logits_after_prompt;
    j["timings"] = {{"prefill_ms", r->prefill_ms}, {"decode_ms", r->decode_ms}};
    std::printf("%s\n", json_dump(j).c_str());
  } else {
    std::printf("\n[%zu prompt tokens, %zu generated; prefill %.1f ms, decode %.1f ms (reference evaluator)]\n",
                prompt_ids.size(), r->ids.size(), r->prefill_ms, r->decode_ms);
  }
  return 0;
}

// "--dims dim=768,layers=12,heads=12,kv=12,ffn=2048,vocab=32000,ctx=2048" (name: "custom").
StatusOr<SynthShape> synth_shape_from_dims(const std::string& text) {
  SynthShape s;
  s.name = "custom";
  s.context = 2048;
  std::map<std::string, int64_t*> fields = {{"vocab", &s.vocab}, {"dim", &s.dim}, {"layers", &s.n_layers},
                                            {"heads", &s.n_heads}, {"kv", &s.n_kv_heads}, {"ffn", &s.ffn},
                                            {"ctx", &s.context}};
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t eq = item.find('=');
    if (eq == std::string::npos) return Status::Error("--dims: expected KEY=VALUE, got '" + item + "'");
    auto it = fields.find(item.substr(0, eq));
    if (it == fields.end()) return Status::Error("--dims: unknown key '" + item.substr(0, eq) + "' (vocab, dim, layers, heads, kv, ffn, ctx)");
    auto v = parse_int("--dims " + item.substr(0, eq), item.substr(eq + 1), 0, std::numeric_limits<int32_t>::max());
    if (!v.ok()) return Status::Error(v.message());
    *it->second = *v;
  }
  if (s.n_kv_heads == 0) s.n_kv_heads = s.n_heads;
  for (auto& [key, ptr] : fields)
    if (*ptr <= 0 && key != "vocab") return Status::Error("--dims: '" + key + "' must be given and positive");
  return s;
}

int cmd_synth(const std::vector<std::string>& args) {
  std::string shape_name, dims, type = "f32", vocab, out, arch = "llama", format = "gguf", tokenizer_from;
  uint64_t seed = 1;
  for (size_t i = 0; i < args.size(); ++i) {
    auto next = [&](std::string& dst) { if (i + 1 >= args.size()) return false; dst = args[++i]; return true; };
    std::string seed_text;
    if (args[i] == "--shape") { if (!next(shape_name)) return usage_error("--shape needs a name"); }
    else if (args[i] == "--dims") { if (!next(dims)) return usage_error("--dims needs K=V,..."); }
    else if (args[i] == "--type") { if (!next(type)) return usage_error("--type needs a type"); }
    else if (args[i] == "--arch") { if (!next(arch)) return usage_error("--arch needs a name"); }
    else if (args[i] == "--format") { if (!next(format)) return usage_error("--format needs gguf or hf"); }
    else if (args[i] == "--tokenizer-from") { if (!next(tokenizer_from)) return usage_error("--tokenizer-from needs a folder"); }
    else if (args[i] == "--vocab") { if (!next(vocab)) return usage_error("--vocab needs a file"); }
    else if (args[i] == "-o") { if (!next(out)) return usage_error("-o needs a file"); }
    else if (args[i] == "--seed") {
      if (!next(seed_text)) return usage_error("--seed needs a number");
      auto v = parse_uint64("--seed", seed_text);
      if (!v.ok()) return usage_error("synth: " + v.message());
      seed = *v;
    } else return usage_error("synth: unknown argument '" + args[i] + "'");
  }
  if (out.empty()) return usage_error("synth: -o OUT.gguf is required");
  if (format != "gguf" && format != "hf") return usage_error("synth: --format must be gguf or hf, got '" + format + "'");
  if (format == "hf") {
    if (tokenizer_from.empty()) return usage_error("synth: --format hf needs --tokenizer-from HF_DIR (the vocabulary)");
    if (type != "f32" || !vocab.empty()) return usage_error("synth: --format hf writes f32 weights and takes the vocabulary from --tokenizer-from");
    if (shape_name.empty() == dims.empty()) return usage_error("synth: give exactly one of --shape and --dims");
    StatusOr<SynthShape> shape = shape_name.empty() ? synth_shape_from_dims(dims) : synth_shape(shape_name);
    if (!shape.ok()) return fail(shape.status());
    shape->arch = arch;
    if (Status st = synth_hf_folder(*shape, seed, tokenizer_from, out); !st.ok()) return fail(st);
    std::printf("wrote %s (%s %s, f32 weights, Hugging Face folder)\n", out.c_str(), arch.c_str(), shape->name.c_str());
    return 0;
  }
  if (Status st = check_output_path(out, vocab.empty() ? std::vector<std::string>{} : std::vector<std::string>{vocab}); !st.ok())
    return fail(st);
  if (shape_name.empty() == dims.empty()) return usage_error("synth: give exactly one of --shape and --dims");
  auto wtype = parse_element_type(type);
  if (!wtype) return usage_error("synth: unknown --type '" + type + "'");
  StatusOr<SynthShape> shape = shape_name.empty() ? synth_shape_from_dims(dims) : synth_shape(shape_name);
  if (!shape.ok()) return fail(shape.status());
  shape->arch = arch;
  std::unique_ptr<GgufFile> vocab_file;
  if (!vocab.empty()) {
    auto v = GgufFile::open(vocab);
    if (!v.ok()) return fail(v.status());
    vocab_file = std::move(*v);
  }
  auto t0 = std::chrono::steady_clock::now();
  int last_pct = -1;
  const bool tty = isatty(fileno(stderr));
  Status st = synth_model(*shape, *wtype, vocab_file.get(), seed, out, [&](double f) {
    // A live percentage on a terminal; quarter steps in a log.
    int pct = static_cast<int>(f * 100);
    if (pct == last_pct || (!tty && pct % 25 != 0)) return;
    // With the rate and the time left once a second has passed (a 1.1B model takes ten).
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    char eta[64] = "";
    if (secs >= 1.0 && f > 0 && f < 1)
      std::snprintf(eta, sizeof(eta), ", %.0f%%/s, ETA %.0f s", 100.0 * f / secs, secs * (1 - f) / f);
    std::fprintf(stderr, tty ? "\rsynth: writing %s %3d%%%s\033[K" : "synth: writing %s %3d%%%s\n", out.c_str(), pct, eta);
    last_pct = pct;
  });
  if (tty) std::fprintf(stderr, "\n");
  if (!st.ok()) return fail(st);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("wrote %s (%s %s, %s weights) in %.1f s\n", out.c_str(), arch.c_str(), shape->name.c_str(), type.c_str(), s);
  return 0;
}

int cmd_keygen(const std::vector<std::string>& args) {
  std::string out, comment, error;
  bool have_comment = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (option_value(args, i, "-o", &out, &error)) {
      if (!error.empty() || out.empty()) return usage_error("keygen: -o needs a file name");
    } else if (option_value(args, i, "--comment", &comment, &error)) {
      if (!error.empty()) return usage_error("keygen: " + error);
      have_comment = true;
    } else {
      return usage_error("keygen: unknown argument '" + args[i] + "'");
    }
  }
  if (out.empty()) return usage_error("keygen: -o KEY is required");
  if (!have_comment) {
    const char* user = std::getenv("USER");
    char host[256] = {};
    if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
    comment = std::string(user && *user ? user : "ingot") + "@" + (host[0] ? host : "localhost");
  }
  auto key = generate_signing_key(out, comment);
  if (!key.ok()) return fail(key.status());
  std::printf("wrote %s (Ed25519 private key, mode 0600) and %s.pub\n%s\nfingerprint %s\n", out.c_str(), out.c_str(),
              format_public_key(*key).c_str(), key_fingerprint(key->key).c_str());
  return 0;
}

int cmd_sign(const std::vector<std::string>& args) {
  std::string path, key_path, error;
  for (size_t i = 0; i < args.size(); ++i) {
    if (option_value(args, i, "--key", &key_path, &error)) {
      if (!error.empty() || key_path.empty()) return usage_error("sign: --key needs a key file");
    } else if (!args[i].empty() && args[i][0] == '-') {
      return usage_error("sign: unknown option '" + args[i] + "'");
    } else if (path.empty()) {
      path = args[i];
    } else {
      return usage_error("sign: more than one bundle given");
    }
  }
  if (path.empty()) return usage_error("sign: no bundle given");
  if (key_path.empty()) return usage_error("sign: --key KEY is required");
  auto key = SigningKey::load(key_path);
  if (!key.ok()) return fail(key.status());
  const auto t0 = std::chrono::steady_clock::now();
  if (Status st = sign_bundle(path, **key); !st.ok()) return fail(st);
  std::printf("signed %s by '%s' (%s) in %.0f ms\n", path.c_str(), (*key)->public_key().comment.c_str(),
              key_fingerprint((*key)->public_key().key).c_str(),
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}

int cmd_ops() {
  for (auto& op : all_ops()) {
    std::string attrs;
    for (auto& a : op.attrs)
      attrs += std::string(attrs.empty() ? "" : ", ") + a.name + ": " + attr_kind_name(a.kind) + (a.required ? "" : " = " + a.default_value.str());
    std::string arity = op.max_inputs < 0 ? std::to_string(op.min_inputs) + "+" :
                        op.min_inputs == op.max_inputs ? std::to_string(op.min_inputs) :
                        std::to_string(op.min_inputs) + "-" + std::to_string(op.max_inputs);
    std::printf("%-13s in %-3s {%s}  %s\n", op.name(), arity.c_str(), attrs.c_str(), op.summary);
  }
  return 0;
}

int cmd_version() {
  TargetInfo t = host_target();
  std::printf("ingotc 0.1.0\nLLVM %s\nhost target: %s, cpu %s\nfeatures:", t.llvm_version.c_str(), t.triple.c_str(), t.cpu.c_str());
  for (auto& f : t.features) std::printf(" %s", f.c_str());
  std::printf("\ncompile targets (--target TIER[,TIER...] | native | portable; default %s: every tier):\n", kDefaultTarget);
  TargetInfo native;
  std::string error;
  const bool has_native = named_target("native", &native, &error);
  for (const CpuTier& tier : cpu_tiers())
    std::printf("  %-10s %s%s\n", tier.name, tier.summary, has_native && native.tier == tier.name ? " [native: the best this host runs]" : "");
  return 0;
}

}  // namespace
}  // namespace ingot

int main(int argc, char** argv) {
  using namespace ingot;
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string cmd = argv[1];
  const std::vector<std::string> args = cli::split_option_values(std::vector<std::string>(argv + 2, argv + argc));
  cli::registered_usage() = kUsage;
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  for (const std::string& a : args)
    if ((a == "--help" || a == "-h") && ingot::cli::print_command_help(kUsage, "ingotc", cmd)) return 0;
  if (cmd == "--version") return cmd_version();
  if (cmd == "demo") return cmd_demo(args);
  if (cmd == "dump") return cmd_dump(args);
  if (cmd == "opt") return cmd_opt(args);
  if (cmd == "inspect") return cmd_inspect(args);
  if (cmd == "tokenize") return cmd_tokenize(args);
  if (cmd == "eval") return cmd_eval(args);
  if (cmd == "compile") return cmd_compile(args);
  if (cmd == "chat-template") return cmd_chat_template(args);
  if (cmd == "check") return cmd_check(args);
  if (cmd == "synth") return cmd_synth(args);
  if (cmd == "keygen") return cmd_keygen(args);
  if (cmd == "sign") return cmd_sign(args);
  if (cmd == "verify") return cmd_verify(args);
  if (cmd == "summary") return cmd_summary(args);
  if (cmd == "ops") return cmd_ops();
  if (cmd == "viz") return cmd_viz(args);
  if (cmd == "diff") return cmd_diff(args);
  return usage_error("unknown command '" + cmd + "'");
}
