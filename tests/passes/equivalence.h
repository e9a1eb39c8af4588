// Test helpers: random inputs for a model's Parameters, runs of consecutive calls (state carried
// between them), and the check that a pass keeps every result and the final state.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/evaluator.h"
#include "ir/model.h"
#include "ir/text.h"
#include "ir/verifier.h"
#include "passes/pass_manager.h"

namespace ingot::testing {

// An f32 constant tensor of `shape` holding `v`.
inline std::shared_ptr<Tensor> f32(std::vector<int64_t> shape, std::vector<float> v) {
  return std::make_shared<Tensor>(Tensor::from_f32(std::move(shape), v));
}

// splitmix64: the same numbers everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform(double lo, double hi) { return lo + (hi - lo) * static_cast<double>(next() >> 11) * 0x1.0p-53; }
  int64_t integer(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo)); }

 private:
  uint64_t s_;
};

struct RandomInputOptions {
  double float_lo = -2, float_hi = 2;
  int64_t int_lo = 0, int_hi = 8;                          // integers in [int_lo, int_hi)
  std::map<std::string, std::pair<int64_t, int64_t>> int_range;  // per Parameter, e.g. token ids
  // Fixed inputs, one per call, instead of random ones (e.g. the demo's position: 0, then the
  // length of the first call, as a caller passes it).
  std::map<std::string, std::vector<Tensor>> per_call;
};

// One tensor per Parameter; symbolic dims take their value from `symbols` (each must be bound).
inline std::map<std::string, Tensor> random_inputs(const Model& m, const SymbolBindings& symbols, Rng& rng,
                                                    const RandomInputOptions& opts = {}) {
  std::map<std::string, Tensor> in;
  for (Node* p : m.parameters()) {
    const TensorType& t = p->outputs[0];
    std::vector<int64_t> dims;
    for (const Dim& d : t.shape) {
      auto v = d.evaluate(symbols);
      EXPECT_TRUE(v.has_value()) << "parameter " << p->name << ": dimension " << d.str() << " is not bound";
      dims.push_back(v.value_or(1));
    }
    Tensor x = Tensor::zeros(t.type, dims);
    auto range = opts.int_range.count(p->name) ? opts.int_range.at(p->name) : std::make_pair(opts.int_lo, opts.int_hi);
    for (int64_t i = 0; i < x.numel(); ++i) {
      if (type_info(t.type).is_float) x.set_f(i, rng.uniform(opts.float_lo, opts.float_hi));
      else if (t.type == ElementType::boolean) x.set_i(i, rng.integer(0, 2));
      else x.set_i(i, rng.integer(range.first, range.second));
    }
    in[p->name] = x;
  }
  return in;
}

// What a run of calls produced: each call's Results by name, and the state after the last call.
struct RunRecord {
  std::vector<std::map<std::string, Tensor>> results;
  std::map<std::string, Tensor> final_state;
};

// Runs consecutive calls on one Evaluator (state carried across), each with its own symbol
// values (e.g. tokens=3 then tokens=5) and random inputs from `seed`: the same inputs for the
// same model interface, before and after a pass.
inline StatusOr<RunRecord> run_calls(const Model& m, const std::vector<SymbolBindings>& calls, uint64_t seed,
                                     const RandomInputOptions& opts = {}) {
  Rng rng(seed);
  Evaluator ev(m);
  RunRecord rec;
  for (size_t call = 0; call < calls.size(); ++call) {
    const SymbolBindings& symbols = calls[call];
    auto inputs = random_inputs(m, symbols, rng, opts);
    for (auto& [name, values] : opts.per_call)
      if (call < values.size() && inputs.count(name)) inputs[name] = values[call];
    std::map<std::string, Tensor> by_name;
    // Results by name: their order in the evaluator's list follows the topological order, which
    // a pass may legitimately change.
    ev.set_observer([&](const Node& n, const std::vector<Tensor>& out) {
      if (n.is(Op::Result)) by_name[n.name] = out[0];
    });
    auto r = ev.run(inputs);
    if (!r.ok()) return r.status();
    rec.results.push_back(std::move(by_name));
  }
  rec.final_state = ev.state();
  return rec;
}

// How close "the same" is. The generic passes keep results exactly (the reference kernels are
// deterministic and every op rounds the same way): zero tolerance. A fused op rounds once where
// the graph it replaces rounded after every op, so fusions compare within a tolerance.
struct Tolerance {
  double rtol = 0, atol = 0;
  static Tolerance exact() { return {}; }
  static Tolerance fused() { return {1e-4, 1e-5}; }
};

// Equal values within `tol` (NaN equal to NaN, -0 equal to +0; integers always exactly).
inline ::testing::AssertionResult same_tensor(const std::string& what, const Tensor& a, const Tensor& b,
                                              Tolerance tol = {}) {
  if (a.type() != b.type() || a.shape() != b.shape())
    return ::testing::AssertionFailure() << what << ": " << type_name(a.type()) << dims_str(a.shape()) << " vs "
                                         << type_name(b.type()) << dims_str(b.shape());
  if (type_info(a.type()).is_quantized) {
    if (a.nbytes() == b.nbytes() && (a.nbytes() == 0 || std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0))
      return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << what << ": quantized bytes differ";
  }
  for (int64_t i = 0; i < a.numel(); ++i) {
    double x = a.get_f(i), y = b.get_f(i);
    bool same = type_info(a.type()).is_integer
                    ? a.get_i(i) == b.get_i(i)
                    : x == y || (std::isnan(x) && std::isnan(y)) ||
                          std::fabs(x - y) <= tol.atol + tol.rtol * std::max(std::fabs(x), std::fabs(y));
    if (same) continue;
    return ::testing::AssertionFailure() << what << ": element " << i << " is " << x << " vs " << y;
  }
  return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult same_runs(const RunRecord& a, const RunRecord& b, Tolerance tol = {}) {
  if (a.results.size() != b.results.size()) return ::testing::AssertionFailure() << "different call counts";
  for (size_t c = 0; c < a.results.size(); ++c) {
    if (a.results[c].size() != b.results[c].size())
      return ::testing::AssertionFailure() << "call " << c << ": different result counts";
    for (auto& [name, t] : a.results[c]) {
      auto it = b.results[c].find(name);
      if (it == b.results[c].end()) return ::testing::AssertionFailure() << "call " << c << ": result " << name << " is gone";
      auto r = same_tensor("call " + std::to_string(c) + " result " + name, t, it->second, tol);
      if (!r) return r;
    }
  }
  if (a.final_state.size() != b.final_state.size()) return ::testing::AssertionFailure() << "different state variables";
  for (auto& [name, t] : a.final_state) {
    auto it = b.final_state.find(name);
    if (it == b.final_state.end()) return ::testing::AssertionFailure() << "state " << name << " is gone";
    auto r = same_tensor("state " + name, t, it->second, tol);
    if (!r) return r;
  }
  return ::testing::AssertionSuccess();
}

// Runs `pipeline` (verifying after each pass) and checks the model computes what it computed
// before on random inputs over `calls`. Returns whether the pipeline changed the model.
inline bool expect_pipeline_keeps_results(Model& m, const std::vector<std::string>& pipeline,
                                          const std::vector<SymbolBindings>& calls, const RandomInputOptions& opts = {},
                                          Tolerance tol = {}, uint64_t seed = 7) {
  auto before = run_calls(m, calls, seed, opts);
  EXPECT_TRUE(before.ok()) << before.message();
  PassManagerOptions pm_opts;
  pm_opts.verify_each = true;
  PassManager pm(pm_opts);
  Status added = pm.add_pipeline(pipeline);
  EXPECT_TRUE(added.ok()) << added.message();
  auto changed = pm.run(m);
  EXPECT_TRUE(changed.ok()) << changed.message();
  auto after = run_calls(m, calls, seed, opts);
  EXPECT_TRUE(after.ok()) << after.message() << "\n" << print_model(m);
  if (before.ok() && after.ok()) EXPECT_TRUE(same_runs(*before, *after, tol)) << print_model(m);
  return changed.ok() && *changed;
}

// The model after `pipeline`, verified, or a failed expectation.
inline std::string run_and_print(Model& m, const std::vector<std::string>& pipeline) {
  PassManagerOptions o;
  o.verify_each = true;
  PassManager pm(o);
  Status added = pm.add_pipeline(pipeline);
  EXPECT_TRUE(added.ok()) << added.message();
  auto r = pm.run(m);
  EXPECT_TRUE(r.ok()) << r.message();
  return print_model(m);
}

}  // namespace ingot::testing
