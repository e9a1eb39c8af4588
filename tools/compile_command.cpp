// ingotc compile: import, quantize, optimize and plan memory, with stats and an accuracy report;
// with -o OUT.ingot, generate the kernels and write the bundle (docs/bundle.md).
#include "tools/compile_command.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "codegen/bundle_signer.h"
#include "base/parse.h"
#include "codegen/bundle_writer.h"
#include "codegen/schedule.h"
#include "codegen/target.h"
#include "frontend/gguf.h"
#include "frontend/limits.h"
#include "ir/memory_plan.h"
#include "ir/text.h"
#include "runtime/sha256.h"
#include "passes/memory_planning.h"
#include "passes/pass_manager.h"
#include "passes/quant/accuracy_report.h"
#include "passes/quant/quantize_weights.h"
#include "runtime/atomic_file.h"
#include "runtime/bundle.h"
#include "runtime/bundle_tokenizer.h"
#include "runtime/engine.h"
#include "runtime/cpu_features.h"
#include "runtime/tokenizer.h"
#include "frontend/hf_config.h"
#include "tools/chat_template_command.h"
#include "tools/compile_pipeline.h"
#include "frontend/chat_template_source.h"
#include "tools/ingotc_cli.h"
#include "base/clock.h"

namespace ingot {

using cli::fail;
using cli::option_value;
using cli::usage_error;

namespace {

// A short, plain English story: the default calibration text. Every LLM tokenizer handles it and
// it needs no file. --calib FILE replaces it.
constexpr const char* kBuiltinCalibration =
    "Once upon a time, there was a little girl named Mia. She lived in a small house near the woods "
    "with her mother and her old dog, Sam. Every morning, Mia and Sam walked to the river to watch "
    "the fish jump. One day, Mia found a shiny blue stone by the water. She picked it up and showed "
    "it to her mother. \"It is very pretty,\" her mother said. \"Where did you find it?\" Mia smiled "
    "and said, \"By the river, where the big tree grows.\" That night, Mia put the stone next to her "
    "bed and dreamed of the river, the fish and the tall green trees.";

// The largest --max-batch: tokens per call (llama.cpp's default is 512).
constexpr int64_t kMaxBatch = 65536;

// The machine's physical memory in bytes (0 when unknown).
int64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page : 0;
}

// A bundle whose KV cache and activation arena do not fit in this machine's memory would be
// refused (or swap to death) when a session is created: refuse it here, with the sizes.
Status check_session_memory(const MemoryPlan& plan, int64_t physical) {
  const double need = static_cast<double>(plan.state_bytes) + static_cast<double>(plan.arena_bytes);
  if (physical <= 0 || need <= static_cast<double>(physical)) return Status::Ok();
  const int64_t fits = plan.kv_bytes_per_token > 0 ? (physical - plan.arena_bytes) / plan.kv_bytes_per_token : 0;
  return Status::Error("the KV cache (" + format_byte_size(plan.state_bytes) + " for " + std::to_string(plan.max_context) +
                       " tokens of context) and activations (" + format_byte_size(plan.arena_bytes) + " for " +
                       std::to_string(plan.max_batch) + " tokens per call) need more than this machine's " +
                       format_byte_size(physical) + " of memory; lower --max-context" +
                       (fits > 0 ? " (at most " + std::to_string(fits) + " tokens fit)" : std::string()) + " or --max-batch");
}

// Opens the bundle just written as the runtime will (runtime/engine.h): what it would refuse,
// the compiler refuses too. A bundle for CPU tiers this host cannot run is checked without its
// kernels (the format, the manifest, the schedule and the tokenizer).
Status check_bundle_loads(const std::string& path) {
  INGOT_ASSIGN_OR_RETURN(std::unique_ptr<Bundle> b, Bundle::open(path, BundleOpenOptions{.check_cpu = false, .tier = {}}));
  // Each kernel set this CPU runs, by name (so that $INGOT_TIER does not decide what is checked).
  bool loaded = false;
  for (int i = 0; i < static_cast<int>(b->kernel_sets().size()); ++i) {
    if (!b->check_cpu(i).empty()) continue;
    INGOT_RETURN_IF_ERROR(Engine::load(path, EngineOptions{.tier = b->kernel_sets()[static_cast<size_t>(i)].tier}).status());
    loaded = true;
  }
  if (loaded) return Status::Ok();
  const pb::Manifest& m = b->manifest();
  if (m.schedule().calls_size() == 0)
    return Status::Error(path + ": the bundle has no schedule (some nodes had no kernel when it was compiled); it cannot run");
  if (m.has_tokenizer() && m.tokenizer().tokens_size() > 0) {
    auto tok = Tokenizer::create(tokenizer_from_proto(m.tokenizer()));
    if (!tok.ok()) return tok.status().with_context(path + ": the bundle's tokenizer");
  }
  std::fprintf(stderr, "ingotc: note: %s: not loaded with its kernels (this CPU runs none of its tiers); its format, "
                       "schedule and tokenizer were checked\n", path.c_str());
  return Status::Ok();
}

std::string mib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}


// ---------------------------------------------------------------- the bundle

// Streams a file through SHA-256.
StatusOr<pb::Provenance::SourceFile> hash_file(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::Error(path.string() + ": cannot open file");
  Sha256 sha;
  std::vector<char> buf(1 << 20);
  uint64_t total = 0;
  while (f) {
    f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const std::streamsize n = f.gcount();
    if (n <= 0) break;
    sha.update(buf.data(), static_cast<size_t>(n));
    total += static_cast<uint64_t>(n);
  }
  if (f.bad()) return Status::Error(path.string() + ": read error");
  pb::Provenance::SourceFile s;
  s.set_name(path.filename().string());
  s.set_bytes(total);
  s.set_sha256(to_hex(sha.finish()));
  return s;
}

// The model's name, chat template and source files (a folder: every regular file in it, by name).
Status describe_source(const std::string& path, pb::Manifest& m) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p(path);
  while (p.has_filename() == false && p.has_parent_path() && p != p.parent_path()) p = p.parent_path();
  std::vector<fs::path> files;
  if (fs::is_directory(p, ec)) {
    for (const auto& e : fs::directory_iterator(p, ec))
      if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    m.set_model_name(p.filename().string());
    std::ifstream tc(p / "tokenizer_config.json");
    if (tc) {
      auto j = nlohmann::json::parse(tc, nullptr, false);
      if (!j.is_discarded() && j.is_object() && j.contains("chat_template") && j["chat_template"].is_string())
        m.set_chat_template(j["chat_template"].get<std::string>());
    }
  } else {
    m.set_model_name(p.stem().string());
    auto gguf = GgufFile::open(path);
    if (!gguf.ok()) {
      files.push_back(p);
    } else {
      for (const std::string& split : (*gguf)->split_paths()) files.push_back(split);  // every file of a split model
      if (const GgufValue* v = (*gguf)->find("general.name"))
        if (auto name = v->as_string(); name.ok() && !name->empty()) m.set_model_name(*name);
      if (const GgufValue* v = (*gguf)->find("tokenizer.chat_template"))
        if (auto t = v->as_string(); t.ok()) m.set_chat_template(*t);
    }
  }
  for (const auto& f : files) {
    INGOT_ASSIGN_OR_RETURN(pb::Provenance::SourceFile s, hash_file(f));
    *m.mutable_provenance()->add_sources() = std::move(s);
  }
  return Status::Ok();
}

void fill_memory_plan(const MemoryPlan& p, pb::MemoryPlan& out) {
  out.set_arena_bytes(p.arena_bytes);
  out.set_alignment(p.alignment);
  out.set_max_batch(p.max_batch);
  out.set_max_context(p.max_context);
  out.set_state_bytes(p.state_bytes);
  out.set_kv_bytes_per_token(p.kv_bytes_per_token);
  out.set_naive_bytes(p.naive_bytes);
  out.set_lower_bound_bytes(p.lower_bound_bytes);
  for (const auto& n : p.order) out.add_order(n);
  for (const auto& b : p.buffers) {
    auto* pb = out.add_buffers();
    pb->set_value(memory_value_name(b.node, b.output));
    pb->set_offset(b.offset);
    pb->set_bytes(b.bytes);
    pb->set_first_step(b.first_step);
    pb->set_last_step(b.last_step);
    pb->set_in_place_of(b.in_place_of);
    pb->set_view(b.view);
  }
  for (const auto& s : p.state) {
    auto* ps = out.add_state();
    ps->set_variable(s.variable);
    ps->set_offset(s.offset);
    ps->set_bytes(s.bytes);
  }
}

}  // namespace

bool parse_quant_option(const std::vector<std::string>& args, size_t& i, QuantCliOptions& o, std::string* error) {
  std::string v;
  if (option_value(args, i, "--quant", &v, error)) {
    o.quant = v;
    if (error->empty() && !QuantRecipe::parse(v, {}).ok())
      *error = "--quant must be keep, f32, f16, q8_0, q4_0, q4_k, q5_0, q5_1, q5_k, q6_k, or a mixture (q4_k_m, q5_k_m), got '" + v + "'";
    return true;
  }
  if (option_value(args, i, "--quant-override", &v, error)) {
    std::stringstream ss(v);
    std::string item;
    while (std::getline(ss, item, ','))
      if (!item.empty()) o.overrides.push_back(item);
    return true;
  }
  if (option_value(args, i, "--act-quant", &v, error)) {
    if (v == "off" || v == "none") o.act_quant = "none";
    else if (v == "q8" || v == "ggml" || v == "auto") o.act_quant = v;
    else if (error->empty()) *error = "--act-quant must be auto, q8, ggml or off, got '" + v + "'";
    return true;
  }
  return false;
}

std::string import_act_quant(const QuantCliOptions& o) {
  if (o.act_quant != "auto") return o.act_quant;
  auto recipe = QuantRecipe::parse(o.quant, o.overrides);
  if (!recipe.ok()) return o.act_quant;  // reported where the recipe is used
  auto to_blocks = [](const QuantTarget& t) { return !t.keep && type_info(t.type).is_quantized; };
  bool any_blocks = to_blocks(recipe->mode);
  for (const QuantOverride& ov : recipe->overrides) any_blocks |= to_blocks(ov.target);
  if (any_blocks) return "q8";
  return recipe->mode.keep ? "auto" : "none";
}

Status apply_quantization(Model& m, const QuantCliOptions& o, std::string* report) {
  INGOT_ASSIGN_OR_RETURN(QuantRecipe recipe, QuantRecipe::parse(o.quant, o.overrides));
  if (recipe.is_keep_all()) return Status::Ok();
  QuantizeWeightsPass pass(recipe);
  INGOT_RETURN_IF_ERROR(pass.run(m).status());
  if (report) *report += pass.report();
  return Status::Ok();
}

namespace {

struct CompileCli {
  std::string path;
  QuantCliOptions quant;
  int64_t max_context = 0, max_batch = 512;
  std::string kv_type = "f32";
  bool stats = false;
  bool print_plan = false;  // every buffer of the memory plan
  bool all_logits = false;  // logits for every token of a call (ingot perplexity), not just the last
  std::string target = kDefaultTarget;  // --target: the CPU tiers the kernels are compiled for
  std::string accuracy_report, calib_file;
  int64_t calib_tokens = 256;
  std::string output;  // -o OUT.ingot: generate kernels and write the bundle
  std::string sign_key;  // --sign KEY: an Ed25519 private key (ingotc keygen) that signs the bundle
  std::string chat_template_file;  // --chat-template FILE: the template the bundle keeps (else the model's)
  PhaseOptions phases;  // --print-after, --stop-after, --verify-each, --debug-match
  std::vector<std::string> disabled_passes;  // --disable-pass: left out of the default pipeline
};

// The accuracy report: the model imported twice (as stored, and quantized), unfused, with logits
// at every position, run by the reference evaluator on the calibration tokens.
StatusOr<AccuracyReport> accuracy_report(const CompileCli& cli, const ImportOptions& base) {
  ImportOptions ref_opts = base;
  ref_opts.act_quant = "none";
  ref_opts.all_logits = true;
  ImportOptions q_opts = base;
  q_opts.all_logits = true;
  INGOT_ASSIGN_OR_RETURN(ImportedModel ref, import_model(cli.path, ref_opts));
  INGOT_ASSIGN_OR_RETURN(ImportedModel q, import_model(cli.path, q_opts));
  INGOT_RETURN_IF_ERROR(apply_quantization(*q.model, cli.quant));

  std::string text = kBuiltinCalibration;
  if (!cli.calib_file.empty()) {
    INGOT_ASSIGN_OR_RETURN(text, hf::read_file(cli.calib_file));
  }
  INGOT_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, Tokenizer::create(ref.tokenizer));
  std::vector<int32_t> ids = tok->encode(text, true);
  const int64_t limit = std::min<int64_t>(cli.calib_tokens, ref.config.max_context);
  if (static_cast<int64_t>(ids.size()) > limit) ids.resize(static_cast<size_t>(limit));
  if (ids.size() < 2)
    return Status::Error((cli.calib_file.empty() ? std::string("the calibration text") : cli.calib_file) +
                         ": encodes to fewer than 2 tokens");
  return measure_quantization_accuracy(*ref.model, *q.model, std::vector<int64_t>(ids.begin(), ids.end()));
}

}  // namespace

int cmd_compile(const std::vector<std::string>& args) {
  CompileCli cli;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string error, v;
    if (parse_quant_option(args, i, cli.quant, &error)) {
      if (!error.empty()) return usage_error("compile: " + error);
    } else if (std::string name; (option_value(args, i, name = "--max-context", &v, &error) ||
                                  option_value(args, i, name = "--max-batch", &v, &error) ||
                                  option_value(args, i, name = "--calib-tokens", &v, &error))) {
      if (!error.empty()) return usage_error("compile: " + error);
      // Range-checked (base/parse.h): the context up to Ingot's limit (frontend/limits.h).
      auto n = name == "--max-context" ? parse_int(name, v, 1, kMaxContext.max)
               : name == "--max-batch" ? parse_int(name, v, 1, kMaxBatch)
                                       : parse_int(name, v, 2, int64_t{1} << 20);
      if (!n.ok()) return usage_error("compile: " + n.message());
      (name == "--max-context" ? cli.max_context : name == "--max-batch" ? cli.max_batch : cli.calib_tokens) = *n;
    } else if (option_value(args, i, "--kv-type", &cli.kv_type, &error)) {
      if (!error.empty()) return usage_error("compile: " + error);
      if (cli.kv_type != "f32" && cli.kv_type != "f16") return usage_error("compile: --kv-type must be f32 or f16");
    } else if (option_value(args, i, "-o", &cli.output, &error) || option_value(args, i, "--output", &cli.output, &error)) {
      if (!error.empty()) return usage_error("compile: " + error);
      if (cli.output.empty()) return usage_error("compile: -o needs a file name");
    } else if (option_value(args, i, "--accuracy-report", &cli.accuracy_report, &error) ||
               option_value(args, i, "--calib", &cli.calib_file, &error)) {
      if (!error.empty()) return usage_error("compile: " + error);
    } else if (args[i] == "--stats") {
      cli.stats = true;
      cli.phases.stats = true;
    } else if (parse_phase_option(args, i, cli.phases, &error)) {
      if (!error.empty()) return usage_error("compile: " + error);
    } else if (option_value(args, i, "--target", &cli.target, &error)) {
      if (!error.empty()) return usage_error("compile: " + error);
    } else if (option_value(args, i, "--chat-template", &cli.chat_template_file, &error)) {
      if (!error.empty()) return usage_error("compile: " + error);
      if (cli.chat_template_file.empty()) return usage_error("compile: --chat-template needs a file");
    } else if (option_value(args, i, "--sign", &cli.sign_key, &error)) {
      if (!error.empty()) return usage_error("compile: " + error);
      if (cli.sign_key.empty()) return usage_error("compile: --sign needs a key file");
    } else if (option_value(args, i, "--disable-pass", &v, &error)) {
      if (!error.empty()) return usage_error("compile: " + error);
      const std::vector<std::string> pipeline = default_pipeline();
      for (size_t at = 0; at <= v.size();) {
        const size_t comma = std::min(v.find(',', at), v.size());
        const std::string name = v.substr(at, comma - at);
        if (std::find(pipeline.begin(), pipeline.end(), name) == pipeline.end()) {
          std::string known;
          for (const auto& p : pipeline) known += (known.empty() ? "" : ", ") + p;
          return usage_error("compile: --disable-pass: '" + name + "' is not a pass of the default pipeline (" + known + ")");
        }
        cli.disabled_passes.push_back(name);
        at = comma + 1;
      }
    } else if (args[i] == "--print-plan") {
      cli.print_plan = true;
    } else if (args[i] == "--all-logits") {
      cli.all_logits = true;
    } else if (!args[i].empty() && args[i][0] == '-') {
      return usage_error("compile: unknown option '" + args[i] + "'");
    } else if (cli.path.empty()) {
      cli.path = args[i];
    } else {
      return usage_error("compile: more than one model given");
    }
  }
  if (cli.path.empty()) return usage_error("compile: no model given");
  if (!cli.calib_file.empty() && cli.accuracy_report.empty())
    return usage_error("compile: --calib only makes sense with --accuracy-report");
  if (!cli.sign_key.empty() && cli.output.empty()) return usage_error("compile: --sign needs -o OUT.ingot");
  // The chat template is checked before anything is compiled: one the engine cannot parse fails
  // at once, with the option that supplies another.
  std::string chat_template;
  bool chat_template_given = !cli.chat_template_file.empty();
  if (chat_template_given) {
    auto t = read_chat_template_file(cli.chat_template_file);
    if (!t.ok()) return fail(t.status());
    chat_template = *t;
  } else if (cli.path != "demo") {
    auto model_template = read_model_chat_template(cli.path);
    if (model_template.ok()) chat_template = model_template->source;
  }
  if (Status st = check_chat_template(chat_template, chat_template_given ? cli.chat_template_file : cli.path,
                                      chat_template_given);
      !st.ok())
    return fail(st);
  // The key is read before anything is compiled: a bad key fails at once.
  std::shared_ptr<const SigningKey> signing_key;
  if (!cli.sign_key.empty()) {
    auto key = SigningKey::load(cli.sign_key);
    if (!key.ok()) return fail(key.status());
    signing_key = *key;
  }
  auto recipe = QuantRecipe::parse(cli.quant.quant, cli.quant.overrides);
  if (!recipe.ok()) return usage_error("compile: " + recipe.message());
  std::vector<TargetInfo> targets;
  if (std::string target_error; !resolve_targets(cli.target, &targets, &target_error))
    return usage_error("compile: " + target_error);
  std::vector<std::string> tiers;
  for (const TargetInfo& t : targets) tiers.push_back(t.tier);
  std::string tier_names;
  for (const std::string& t : tiers) tier_names += (tier_names.empty() ? "" : ", ") + t;

  if (!cli.output.empty()) {
    // Before the work: an output that may not be replaced (a symlink, a FIFO, a device, a
    // read-only file, the model itself) is refused now, and again when the bundle is written.
    if (Status st = check_output_path(cli.output, cli::input_files(cli.path)); !st.ok()) return fail(st);
  }
  if (!cli.accuracy_report.empty())
    if (Status st = check_output_path(cli.accuracy_report, cli::input_files(cli.path)); !st.ok()) return fail(st);

  ImportOptions import_opts;
  import_opts.act_quant = import_act_quant(cli.quant);
  import_opts.kernels = true;  // "auto": the numerics the kernels implement
  import_opts.max_context = cli.max_context;
  import_opts.kv_type = cli.kv_type == "f16" ? ElementType::f16 : ElementType::f32;
  import_opts.all_logits = cli.all_logits;
  if (cli::ends_with(cli.path, ".ir"))
    return usage_error("compile: " + cli.path + ": compile needs a GGUF file, a Hugging Face folder or demo (an IR text "
                       "file has no tokenizer); `ingotc dump` and `opt` read IR text");

  const auto t_start = std::chrono::steady_clock::now();
  CompileState state;
  state.path = cli.path;
  state.import = import_opts;
  state.quant = cli.quant;
  state.max_batch = cli.max_batch;
  if (!cli.disabled_passes.empty()) {
    // Every occurrence of a disabled pass leaves; the bundle's provenance records what ran, so
    // `ingotc check` compares against the same pipeline.
    for (const std::string& p : default_pipeline())
      if (std::find(cli.disabled_passes.begin(), cli.disabled_passes.end(), p) == cli.disabled_passes.end()) state.passes.push_back(p);
  }
  // The compiler always verifies after each pass of the optimize phase.
  PhaseOptions phase_options = cli.phases;
  phase_options.verify_each = true;
  CompilePipeline pipeline(phase_options);
  pipeline.show_progress(true);

  // kernels -> schedule -> bundle, with -o.
  BundleContents bc;
  bc.signing_key = signing_key;
  pb::Manifest& m = bc.manifest;
  std::optional<BundleKernels> kernels;
  BundleWriteStats written;
  std::string schedule_note;
  pipeline.add({"kernels",
                [&](const CompileState&) {
                  return "generate kernels for " +
                         (tiers.size() == 1 ? tiers[0] + (cli.target == "native" ? " (native)" : "")
                                            : std::to_string(tiers.size()) + " tiers (" + tier_names + ")");
                },
                [&](CompileState& st) -> StatusOr<std::string> {
                  INGOT_RETURN_IF_ERROR(check_session_memory(*st.plan, physical_memory_bytes()));
                  // The tokenizer as the runtime will build it (a flipped or corrupt vocabulary
                  // fails here, not when the bundle is run).
                  if (!st.im.tokenizer.tokens.empty()) {
                    auto tok = Tokenizer::create(st.im.tokenizer);
                    if (!tok.ok()) return tok.status().with_context(cli.path + ": the tokenizer");
                  }
                  // With several tiers, a line as each one's shared object is ready (they compile concurrently).
                  KernelSetProgress progress;
                  size_t sets_done = 0;
                  if (tiers.size() > 1)
                    progress = [&](const BundleKernelSet& set, double ms) {
                      pipeline.progress_line(set.tier + ": " + format_byte_size(static_cast<int64_t>(set.shared_object.size())) +
                                             (set.from_cache ? std::string(" shared object from the kernel cache")
                                                             : " shared object in " + std::to_string(static_cast<long>(ms + 0.5)) + " ms"));
                      // With tiers still compiling: how many are left and when they should be done.
                      if (++sets_done < tiers.size())
                        pipeline.progress_fraction(static_cast<double>(sets_done), static_cast<double>(tiers.size()), "tiers");
                    };
                  INGOT_ASSIGN_OR_RETURN(kernels, build_bundle_kernels(st.model(), m, tiers, progress));
                  std::string why;
                  for (auto& [reason, count] : kernels->without)
                    why += "\n  no kernel yet (" + std::to_string(count) + " nodes): " + reason;
                  int64_t bytes = 0;
                  size_t cached = 0;
                  for (const BundleKernelSet& set : kernels->sets) {
                    bytes += static_cast<int64_t>(set.shared_object.size());
                    cached += set.from_cache;
                  }
                  return std::to_string(kernels->kernels) + " kernels for " + std::to_string(kernels->nodes_covered) +
                         " nodes, " + format_byte_size(bytes) +
                         (kernels->sets.size() == 1 ? std::string(" shared object")
                                                    : " in " + std::to_string(kernels->sets.size()) + " shared objects") +
                         (cached ? " (" + std::to_string(cached) + " from the kernel cache, $INGOT_KERNEL_CACHE)" : std::string()) +
                         (kernels->kernel_cache_problem.empty() ? std::string()
                                                                : "\n  note: not kept in the kernel cache: " + kernels->kernel_cache_problem) +
                         why;
                }});
  pipeline.add({"schedule", [](const CompileState&) { return std::string("schedule kernel calls, pack weights"); },
                [&](CompileState& st) -> StatusOr<std::string> {
                  // The graph's interface and memory plan first: the schedule refers to them.
                  ImportedModel& im = st.im;
                  m.set_architecture(im.architecture);
                  m.set_graph_text(print_model(*im.model));
                  for (Node* p : im.model->parameters()) {
                    auto* io = m.add_inputs();
                    io->set_name(p->name);
                    io->set_type(p->outputs[0].str());
                  }
                  for (Node* r : im.model->results()) {
                    auto* io = m.add_outputs();
                    io->set_name(r->name);
                    io->set_type(r->inputs[0].type().str());
                  }
                  for (const StateVariable& v : im.model->variables()) {
                    auto* sv = m.add_state();
                    sv->set_name(v.name);
                    sv->set_type(std::string(type_name(v.type)));
                    for (int64_t d : v.max_shape) sv->add_max_shape(d);
                  }
                  fill_memory_plan(*st.plan, *m.mutable_memory_plan());
                  INGOT_ASSIGN_OR_RETURN(bc.tensors, bundle_tensors(st.model(), *kernels));
                  // Without a kernel for every node there is no schedule: the bundle phase refuses to write it.
                  Status scheduled = build_schedule(st.model(), *st.plan, *kernels, bc.tensors, m);
                  if (!scheduled.ok()) schedule_note = scheduled.message();
                  return std::to_string(m.schedule().calls_size()) + " calls, " + std::to_string(bc.tensors.size()) +
                         " tensors";
                }});
  pipeline.add({"bundle", [&](const CompileState&) { return "write " + cli.output; },
                [&](CompileState& st) -> StatusOr<std::string> {
                  ImportedModel& im = st.im;
                  // The built-in demo model has no source file; it is named as such.
                  if (cli.path == "demo") {
                    m.set_model_name("demo");
                    m.mutable_provenance()->add_sources()->set_name("demo (built in)");
                  } else {
                    INGOT_RETURN_IF_ERROR(describe_source(cli.path, m));
                  }
                  if (!chat_template.empty()) m.set_chat_template(chat_template);
                  tokenizer_to_proto(im.tokenizer, *m.mutable_tokenizer());
                  auto* g = m.mutable_generation();
                  if (im.generation.temperature) g->set_temperature(*im.generation.temperature);
                  if (im.generation.top_p) g->set_top_p(*im.generation.top_p);
                  if (im.generation.repetition_penalty) g->set_repetition_penalty(*im.generation.repetition_penalty);
                  if (im.generation.top_k) g->set_top_k(*im.generation.top_k);
                  if (im.generation.max_new_tokens) g->set_max_new_tokens(*im.generation.max_new_tokens);
                  pb::Provenance* pv = m.mutable_provenance();
                  pv->set_compiler_version("ingotc 0.1.0 (LLVM " + targets[0].llvm_version + ")");
                  // What ran: the passes of the optimize phase, then memory planning.
                  for (const std::string& pass : st.ran)
                    if (std::find(compile_phases().begin(), compile_phases().end(), pass) == compile_phases().end())
                      pv->add_passes(pass);
                  pv->add_passes("memory-planning");
                  pv->set_quantization(recipe->str());
                  pv->set_act_quant(im.config.act_quant);
                  pv->set_kv_type(cli.kv_type);
                  // The provenance's tier is the first (most portable) kernel set's, as a runtime from
                  // before kernel sets read it; the manifest's kernel_sets list them all.
                  pv->set_target_triple(targets[0].triple);
                  pv->set_target_cpu(targets[0].cpu);
                  pv->set_target_tier(targets[0].tier);
                  for (const auto& f : targets[0].features) pv->add_target_features(f);
                  bc.kernel_sets = std::move(kernels->sets);
                  if (!schedule_note.empty())
                    return Status::Error("the runtime refuses a bundle without a schedule, and this one has none: " +
                                         schedule_note + "; nothing written");
                  bc.progress = [&](uint64_t done, uint64_t total) {
                    pipeline.progress_fraction(static_cast<double>(done), static_cast<double>(total), "B");
                  };
                  INGOT_RETURN_IF_ERROR(write_bundle(cli.output, bc, &written));
                  if (Status loads = check_bundle_loads(cli.output); !loads.ok()) {
                    ::unlink(cli.output.c_str());
                    return Status::Error(loads.code(), "the runtime would refuse the bundle, so it was removed: " + loads.message());
                  }
                  return format_byte_size(static_cast<int64_t>(written.file_bytes)) + " (manifest " +
                         format_byte_size(static_cast<int64_t>(written.manifest_bytes)) + ", kernels " +
                         format_byte_size(static_cast<int64_t>(written.kernels_bytes)) + ", weights " +
                         format_byte_size(static_cast<int64_t>(written.weights_bytes)) + " in " +
                         std::to_string(bc.tensors.size()) + " tensors)" +
                         (signing_key ? ", signed by '" + signing_key->public_key().comment + "' (" +
                                            key_fingerprint(signing_key->public_key().key) + ")"
                                      : std::string());
                }});

  const std::string last_phase = cli.output.empty() ? "plan-memory" : "bundle";
  if (Status named = pipeline.check_options(state, last_phase); !named.ok()) return usage_error("compile: " + named.message());
  auto stopped = pipeline.run(state, last_phase);
  if (!stopped.ok()) return fail(stopped.status());
  if (!state.pass_stats.empty()) std::fprintf(stderr, "%s", state.pass_stats.c_str());
  if (*stopped) {
    std::printf("stopped after %s (--stop-after); nothing written\n", cli.phases.stop_after.c_str());
    return 0;
  }
  ImportedModel* im = &state.im;
  const std::optional<MemoryPlan>& plan = state.plan;
  const QuantizeWeightsPass& qpass = *state.quantizer;
  int64_t w_before = 0, w_after = 0;
  for (auto& d : qpass.decisions()) {
    w_before += d.bytes_before;
    w_after += d.bytes_after;
  }
  std::map<std::string, int> ops;
  for (auto& n : im->model->nodes())
    if (!n->is(Op::Constant)) ops[std::string(n->op_name())]++;

  AccuracyReport acc;
  if (!cli.accuracy_report.empty()) {
    std::fprintf(stderr, "accuracy report (reference evaluator) ...");
    auto r = accuracy_report(cli, import_opts);
    if (!r.ok()) {
      std::fprintf(stderr, "\n");
      return fail(r.status());
    }
    acc = std::move(*r);
    std::fprintf(stderr, " %zu matmuls measured\n", acc.matmuls.size());
  }
  const size_t kernel_count = kernels ? kernels->kernels : 0;

  std::printf("compiled %s in %.0f ms\n", cli.path.c_str(), ms_since(t_start));
  std::printf("  weights: %s (%s as imported)\n", mib(w_after).c_str(), mib(w_before).c_str());
  std::string oplist;
  for (auto& [op, count] : ops) oplist += (oplist.empty() ? "" : ", ") + op + " x" + std::to_string(count);
  std::printf("  ops: %s\n", oplist.c_str());
  std::printf("  activations: %s arena for %lld tokens per call; KV cache: %s for %lld tokens (%s per token)\n",
              format_byte_size(plan->arena_bytes).c_str(), static_cast<long long>(plan->max_batch),
              format_byte_size(plan->state_bytes).c_str(), static_cast<long long>(plan->max_context),
              format_byte_size(plan->kv_bytes_per_token).c_str());
  if (cli.print_plan) std::printf("%s", print_memory_plan(*im->model, *plan).c_str());
  if (cli.stats) {
    std::printf("quantization:\n%s", qpass.report().c_str());
    std::printf("%s", memory_plan_report(*plan).c_str());
  }
  if (!cli.accuracy_report.empty()) {
    std::printf("%s", acc.table().c_str());
    Status w = write_file_atomic(cli.accuracy_report, acc.json(), cli::input_files(cli.path));
    if (!w.ok()) return fail(w);
    std::printf("wrote %s\n", cli.accuracy_report.c_str());
  }
  if (!cli.output.empty())
    std::printf("  bundle: %s, %s, %zu kernels for %s\n", cli.output.c_str(),
                format_byte_size(static_cast<int64_t>(written.file_bytes)).c_str(), kernel_count, tier_names.c_str());
  return 0;
}

}  // namespace ingot
