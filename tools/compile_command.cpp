// ingotc compile: import, quantize, optimize and plan memory, with stats and an accuracy report.
// (The bundle writer arrives with codegen and the runtime.)
#include "tools/compile_command.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include <unistd.h>

#include "ir/memory_plan.h"
#include "passes/memory_planning.h"
#include "passes/pass_manager.h"
#include "passes/quant/accuracy_report.h"
#include "passes/quant/quantize_weights.h"
#include "runtime/tokenizer.h"

namespace ingot {

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

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "ingotc: %s\nRun 'ingotc --help' for usage.\n", msg.c_str());
  return 2;
}

int fail(const Status& st) {
  std::fprintf(stderr, "ingotc: error: %s\n", st.message().c_str());
  return 1;
}

bool take_value(const std::vector<std::string>& args, size_t& i, const std::string& name, std::string* value,
                std::string* error) {
  const std::string& a = args[i];
  if (a.rfind(name + "=", 0) == 0) {
    *value = a.substr(name.size() + 1);
    return true;
  }
  if (a != name) return false;
  if (i + 1 >= args.size()) *error = name + " needs a value";
  else *value = args[++i];
  return true;
}

StatusOr<int64_t> parse_count(const std::string& option, const std::string& text, int64_t min) {
  try {
    size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used == text.size() && v >= min) return static_cast<int64_t>(v);
  } catch (...) {
  }
  return Status::Error(option + " needs a whole number >= " + std::to_string(min) + ", got '" + text + "'");
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Stage progress on stderr: "[2/4] quantize weights ... 130 ms".
class Progress {
 public:
  explicit Progress(int stages) : stages_(stages) {}
  void begin(const std::string& what) {
    std::fprintf(stderr, "[%d/%d] %s ...", ++stage_, stages_, what.c_str());
    std::fflush(stderr);
    t0_ = std::chrono::steady_clock::now();
  }
  void end(const std::string& detail = "") {
    std::fprintf(stderr, " %.0f ms%s%s\n", ms_since(t0_), detail.empty() ? "" : ", ", detail.c_str());
  }

 private:
  int stages_, stage_ = 0;
  std::chrono::steady_clock::time_point t0_;
};

std::string mib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

StatusOr<std::string> read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::Error(path + ": cannot open file");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return Status::Error(path + ": read error");
  return ss.str();
}

// Writes through a temporary file and a rename, so a failure never leaves a partial output.
Status write_atomic(const std::string& path, const std::string& data) {
  const std::string tmp = path + ".tmp-ingotc";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return Status::Error(path + ": cannot create file");
    f << data;
    f.flush();
    if (!f) {
      std::remove(tmp.c_str());
      return Status::Error(path + ": write failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Status::Error(path + ": cannot replace file");
  }
  return Status::Ok();
}

}  // namespace

bool parse_quant_option(const std::vector<std::string>& args, size_t& i, QuantCliOptions& o, std::string* error) {
  std::string v;
  if (take_value(args, i, "--quant", &v, error)) {
    o.quant = v;
    if (error->empty() && !QuantTarget::parse(v).ok())
      *error = "--quant must be keep, f32, f16, q8_0, q4_0 or q4_k, got '" + v + "'";
    return true;
  }
  if (take_value(args, i, "--quant-override", &v, error)) {
    std::stringstream ss(v);
    std::string item;
    while (std::getline(ss, item, ','))
      if (!item.empty()) o.overrides.push_back(item);
    return true;
  }
  if (take_value(args, i, "--act-quant", &v, error)) {
    if (v == "off" || v == "none") o.act_quant = "none";
    else if (v == "q8") o.act_quant = "q8";
    else if (error->empty()) *error = "--act-quant must be q8 or off, got '" + v + "'";
    return true;
  }
  return false;
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
  std::string accuracy_report, calib_file;
  int64_t calib_tokens = 256;
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
    INGOT_ASSIGN_OR_RETURN(text, read_text(cli.calib_file));
  }
  std::string error;
  auto tok = Tokenizer::create(ref.tokenizer, &error);
  if (!tok) return Status::Error(cli.path + ": " + error);
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
    } else if (std::string name; (take_value(args, i, name = "--max-context", &v, &error) ||
                                  take_value(args, i, name = "--max-batch", &v, &error) ||
                                  take_value(args, i, name = "--calib-tokens", &v, &error))) {
      if (!error.empty()) return usage_error("compile: " + error);
      auto n = parse_count(name, v, name == "--calib-tokens" ? 2 : 1);
      if (!n.ok()) return usage_error("compile: " + n.message());
      (name == "--max-context" ? cli.max_context : name == "--max-batch" ? cli.max_batch : cli.calib_tokens) = *n;
    } else if (take_value(args, i, "--kv-type", &cli.kv_type, &error)) {
      if (!error.empty()) return usage_error("compile: " + error);
      if (cli.kv_type != "f32" && cli.kv_type != "f16") return usage_error("compile: --kv-type must be f32 or f16");
    } else if (take_value(args, i, "--accuracy-report", &cli.accuracy_report, &error) ||
               take_value(args, i, "--calib", &cli.calib_file, &error)) {
      if (!error.empty()) return usage_error("compile: " + error);
    } else if (args[i] == "--stats") {
      cli.stats = true;
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
  auto recipe = QuantRecipe::parse(cli.quant.quant, cli.quant.overrides);
  if (!recipe.ok()) return usage_error("compile: " + recipe.message());

  ImportOptions import_opts;
  import_opts.act_quant = cli.quant.act_quant;
  import_opts.max_context = cli.max_context;
  import_opts.kv_type = cli.kv_type == "f16" ? ElementType::f16 : ElementType::f32;

  const auto t_start = std::chrono::steady_clock::now();
  Progress progress(cli.accuracy_report.empty() ? 4 : 5);
  progress.begin("import " + cli.path);
  auto im = import_model(cli.path, import_opts);
  if (!im.ok()) {
    std::fprintf(stderr, "\n");
    return fail(im.status());
  }
  progress.end(std::to_string(im->model->nodes().size()) + " nodes");

  progress.begin("quantize weights (" + recipe->str() + ", activations " + (cli.quant.act_quant == "q8" ? "q8" : "f32") + ")");
  QuantizeWeightsPass qpass(*recipe);
  auto qrun = qpass.run(*im->model);
  if (!qrun.ok()) {
    std::fprintf(stderr, "\n");
    return fail(qrun.status());
  }
  int64_t w_before = 0, w_after = 0, converted = 0;
  for (auto& d : qpass.decisions()) {
    w_before += d.bytes_before;
    w_after += d.bytes_after;
    converted += d.from != d.to;
  }
  progress.end(std::to_string(converted) + " of " + std::to_string(qpass.decisions().size()) + " weights converted, " +
               mib(w_before) + " -> " + mib(w_after));
  for (auto& d : qpass.decisions())
    if (!d.note.empty() && d.from != d.to) std::fprintf(stderr, "  note: %s: %s\n", d.tensor.c_str(), d.note.c_str());

  progress.begin("optimize (default pipeline)");
  PassManager pm(PassManagerOptions{.verify_each = true});
  Status st = pm.add_pipeline(default_pipeline());
  if (st.ok()) st = pm.run(*im->model).status();
  if (!st.ok()) {
    std::fprintf(stderr, "\n");
    return fail(st);
  }
  std::map<std::string, int> ops;
  for (auto& n : im->model->nodes())
    if (!n->is("Constant")) ops[std::string(n->op_name())]++;
  progress.end(std::to_string(im->model->nodes().size()) + " nodes");

  progress.begin("plan memory (max batch " + std::to_string(cli.max_batch) + ")");
  auto plan = plan_memory(*im->model, MemoryPlanOptions{.max_batch = cli.max_batch});
  if (plan.ok()) {
    Status checked = check_memory_plan(*im->model, *plan);
    if (!checked.ok()) plan = checked;
  }
  if (!plan.ok()) {
    std::fprintf(stderr, "\n");
    return fail(plan.status());
  }
  im->model->set_memory_plan(std::make_shared<MemoryPlan>(*plan));
  progress.end("arena " + format_byte_size(plan->arena_bytes) + ", KV " + format_byte_size(plan->state_bytes));

  AccuracyReport acc;
  if (!cli.accuracy_report.empty()) {
    progress.begin("accuracy report (reference evaluator)");
    auto r = accuracy_report(cli, import_opts);
    if (!r.ok()) {
      std::fprintf(stderr, "\n");
      return fail(r.status());
    }
    acc = std::move(*r);
    progress.end(std::to_string(acc.matmuls.size()) + " matmuls measured");
  }

  std::printf("compiled %s in %.0f ms\n", cli.path.c_str(), ms_since(t_start));
  std::printf("  weights: %s (%s as imported)\n", mib(w_after).c_str(), mib(w_before).c_str());
  std::string oplist;
  for (auto& [op, count] : ops) oplist += (oplist.empty() ? "" : ", ") + op + " x" + std::to_string(count);
  std::printf("  ops: %s\n", oplist.c_str());
  std::printf("  activations: %s arena for %lld tokens per call; KV cache: %s for %lld tokens (%s per token)\n",
              format_byte_size(plan->arena_bytes).c_str(), static_cast<long long>(plan->max_batch),
              format_byte_size(plan->state_bytes).c_str(), static_cast<long long>(plan->max_context),
              format_byte_size(plan->kv_bytes_per_token).c_str());
  if (cli.stats) {
    std::printf("quantization:\n%s", qpass.report().c_str());
    std::printf("%s", memory_plan_report(*plan).c_str());
  }
  if (!cli.accuracy_report.empty()) {
    std::printf("%s", acc.table().c_str());
    Status w = write_atomic(cli.accuracy_report, acc.json());
    if (!w.ok()) return fail(w);
    std::printf("wrote %s\n", cli.accuracy_report.c_str());
  }
  return 0;
}

}  // namespace ingot
