// ingotc: the Ingot compiler's command line. A thin front end over the libraries.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "codegen/target.h"
#include "frontend/demo_model.h"
#include "ir/evaluator.h"
#include "ir/ops.h"
#include "ir/text.h"
#include "ir/verifier.h"

namespace ingot {
namespace {

constexpr const char* kUsage = R"(ingotc: the Ingot ahead-of-time compiler for LLMs on CPUs

Usage:
  ingotc demo [-p PROMPT] [-n N]         build the built-in demo model, verify it, print an IR
                                         summary, run it with the reference evaluator and print
                                         the five most likely next tokens, then N greedy tokens
  ingotc dump MODEL [--format text|json|dot] [-o FILE] [--inline-limit N]
                                         print a model's IR (MODEL: a .ir text file or "demo")
  ingotc verify MODEL                    check a model; lists every problem found
  ingotc summary MODEL                   op counts, inputs, outputs, state, constants
  ingotc ops                             list the registered ops
  ingotc --version                       version and the host target LLVM sees
  ingotc --help                          this text

Errors go to stderr; the exit status is 0 on success, 1 on a user error, 2 on bad usage.
)";

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "ingotc: %s\nRun 'ingotc --help' for usage.\n", msg.c_str());
  return 2;
}

int fail(const Status& st) {
  std::fprintf(stderr, "ingotc: error: %s\n", st.message().c_str());
  return 1;
}

StatusOr<std::string> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::Error(path + ": cannot open file");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return Status::Error(path + ": read error");
  return ss.str();
}

// Writes through a temporary file and a rename, so a failure never leaves a partial output.
Status write_file_atomic(const std::string& path, const std::string& data) {
  std::string tmp = path + ".tmp-ingotc";
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

StatusOr<std::unique_ptr<Model>> load_model(const std::string& path) {
  if (path == "demo") return build_demo_model();
  INGOT_ASSIGN_OR_RETURN(std::string text, read_file(path));
  return parse_model(text, path);
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
    if (n->is("Constant") && n->constant) {
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
      try { n_gen = std::stoi(args[++i]); } catch (...) { return usage_error("-n needs a number"); }
      if (n_gen < 0 || n_gen > 200) return usage_error("-n must be between 0 and 200");
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

int cmd_dump(const std::vector<std::string>& args) {
  std::string path, format = "text", out;
  PrintOptions opts;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--format" && i + 1 < args.size()) format = args[++i];
    else if (args[i] == "-o" && i + 1 < args.size()) out = args[++i];
    else if (args[i] == "--inline-limit" && i + 1 < args.size()) {
      try { opts.inline_constant_limit = std::stoll(args[++i]); } catch (...) { return usage_error("--inline-limit needs a number"); }
    } else if (!args[i].empty() && args[i][0] == '-') return usage_error("dump: unknown option '" + args[i] + "'");
    else if (path.empty()) path = args[i];
    else return usage_error("dump: more than one model given");
  }
  if (path.empty()) return usage_error("dump: no model given");
  if (format != "text" && format != "json" && format != "dot") return usage_error("dump: --format must be text, json or dot");
  auto m = load_model(path);
  if (!m.ok()) return fail(m.status());
  std::string s = format == "text" ? print_model(**m, opts) : format == "json" ? export_json(**m, opts) + "\n" : export_dot(**m);
  if (out.empty()) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    return 0;
  }
  Status st = write_file_atomic(out, s);
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
  if (args.size() != 1) return usage_error("summary takes one model");
  auto m = load_model(args[0]);
  if (!m.ok()) return fail(m.status());
  print_summary(**m);
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
    std::printf("%-13s in %-3s {%s}  %s\n", op.name, arity.c_str(), attrs.c_str(), op.summary);
  }
  return 0;
}

int cmd_version() {
  TargetInfo t = host_target();
  std::printf("ingotc 0.1.0\nLLVM %s\nhost target: %s, cpu %s\nfeatures:", t.llvm_version.c_str(), t.triple.c_str(), t.cpu.c_str());
  for (auto& f : t.features) std::printf(" %s", f.c_str());
  std::printf("\n");
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
  std::vector<std::string> args(argv + 2, argv + argc);
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (cmd == "--version") return cmd_version();
  if (cmd == "demo") return cmd_demo(args);
  if (cmd == "dump") return cmd_dump(args);
  if (cmd == "verify") return cmd_verify(args);
  if (cmd == "summary") return cmd_summary(args);
  if (cmd == "ops") return cmd_ops();
  return usage_error("unknown command '" + cmd + "'");
}
