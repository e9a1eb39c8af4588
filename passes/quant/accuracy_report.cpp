#include "passes/quant/accuracy_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "ir/evaluator.h"

namespace ingot {
namespace {

// The constant a matmul's weight operand comes from, through Convert nodes; null if none.
const Node* weight_constant(Value v) {
  const Node* n = v.node;
  while (n && n->is(Op::Convert)) n = n->inputs[0].node;
  return n && n->is(Op::Constant) && n->constant ? n : nullptr;
}

// A matmul of x[..., K] by a weight [N, K] (transposed): MatMul with transpose_b and not
// transpose_a, WeightMatMul or FusedMatMul (epilogues excluded: only their plain product is ours
// to recompute, so fused matmuls are skipped by the caller's unfused-graph contract).
bool is_weight_matmul(const Node& n) {
  if (n.is(Op::WeightMatMul)) return true;
  return n.is(Op::MatMul) && n.attr("transpose_b").as_bool() && !n.attr("transpose_a").as_bool();
}

// log softmax of one row, in double.
std::vector<double> log_softmax(const float* row, int64_t n) {
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(row[i]));
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(row[i] - m);
  const double lse = m + std::log(s);
  std::vector<double> r(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) r[static_cast<size_t>(i)] = row[i] - lse;
  return r;
}

StatusOr<Tensor> logits_of(const Model& m, const std::vector<int64_t>& tokens, Evaluator::Observer observer) {
  Evaluator ev(m);
  if (observer) ev.set_observer(std::move(observer));
  const int64_t T = static_cast<int64_t>(tokens.size());
  INGOT_ASSIGN_OR_RETURN(auto out, ev.run({{"token_ids", Tensor::from_i64({T}, tokens)}, {"pos", Tensor::scalar_i64(0)}}));
  if (out.empty()) return Status::Error("the model has no outputs");
  const Tensor& l = out[0];
  if (l.rank() != 2 || l.shape()[0] != T)
    return Status::Error("the accuracy report needs logits for every position, [" + std::to_string(T) +
                         ", vocab]; got " + dims_str(l.shape()) + " (import with all_logits)");
  return l.to_f32();
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}

}  // namespace

StatusOr<AccuracyReport> measure_quantization_accuracy(const Model& reference, const Model& quantized,
                                                       const std::vector<int64_t>& tokens) {
  if (tokens.size() < 2) return Status::Error("the accuracy report needs at least 2 calibration tokens");
  AccuracyReport rep;
  rep.calib_tokens = static_cast<int64_t>(tokens.size());

  // The matmuls to measure, and which values (their x inputs) the observer must keep.
  struct Target {
    const Node* matmul;
    const Node* ref_weight;
    const Node* q_weight;
  };
  std::map<const Node*, Target> targets;
  std::set<const Node*> keep;
  for (auto& n : quantized.nodes()) {
    if (!is_weight_matmul(*n)) continue;
    const Node* qw = weight_constant(n->inputs[1]);
    if (!qw) continue;
    const Node* rw = reference.find(qw->name);
    if (!rw || !rw->constant || rw->outputs[0].type == qw->outputs[0].type) continue;
    if (rw->constant->shape() != qw->constant->shape())
      return Status::Error("weight '" + qw->name + "' has different shapes in the two models");
    targets.emplace(n.get(), Target{n.get(), rw, qw});
    keep.insert(n->inputs[0].node);
  }

  std::map<const Node*, Tensor> kept;
  auto observer = [&](const Node& n, const std::vector<Tensor>& outs) {
    if (keep.count(&n)) kept[&n] = outs[0];
    auto it = targets.find(&n);
    if (it == targets.end()) return;
    // x from the producer of input 0 (already observed: producers run first).
    const Value xv = n.inputs[0];
    auto xi = kept.find(xv.node);
    if (xi == kept.end() || xv.index != 0) return;
    const Tensor& x = xi->second;
    const std::vector<float> w = it->second.ref_weight->constant->to_f32_vector();
    const std::vector<float> xf = x.to_f32_vector();
    const std::vector<float> yq = outs[0].to_f32_vector();
    const int64_t K = it->second.ref_weight->constant->shape()[1], N = it->second.ref_weight->constant->shape()[0];
    const int64_t M = static_cast<int64_t>(xf.size()) / K;
    double signal = 0, noise = 0, dot = 0, qq = 0;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t j = 0; j < N; ++j) {
        double y = 0;
        for (int64_t k = 0; k < K; ++k) y += static_cast<double>(xf[static_cast<size_t>(m * K + k)]) * w[static_cast<size_t>(j * K + k)];
        const double q = yq[static_cast<size_t>(m * N + j)];
        signal += y * y;
        noise += (y - q) * (y - q);
        dot += y * q;
        qq += q * q;
      }
    MatmulAccuracy a;
    a.weight = it->second.q_weight->name;
    a.node = n.name;
    a.reference_type = std::string(type_name(it->second.ref_weight->outputs[0].type));
    a.quantized_type = std::string(type_name(it->second.q_weight->outputs[0].type));
    a.sqnr_db = noise > 0 ? 10 * std::log10(signal / noise) : std::numeric_limits<double>::infinity();
    a.cosine = signal > 0 && qq > 0 ? dot / std::sqrt(signal * qq) : 1.0;
    a.elements = M * N;
    rep.matmuls.push_back(std::move(a));
  };
  // Producers run before their users, so each matmul's x is in `kept` when the matmul is observed.
  INGOT_ASSIGN_OR_RETURN(Tensor lq, logits_of(quantized, tokens, observer));
  kept.clear();
  INGOT_ASSIGN_OR_RETURN(Tensor lr, logits_of(reference, tokens, nullptr));
  if (lq.shape() != lr.shape()) return Status::Error("the two models' logits differ in shape");

  const int64_t T = lr.shape()[0], V = lr.shape()[1];
  const float* pr = reinterpret_cast<const float*>(lr.raw());
  const float* pq = reinterpret_cast<const float*>(lq.raw());
  double kl_sum = 0, nll_r = 0, nll_q = 0;
  int64_t agree = 0;
  for (int64_t t = 0; t + 1 < T; ++t) {
    auto a = log_softmax(pr + t * V, V), b = log_softmax(pq + t * V, V);
    double kl = 0;
    for (int64_t i = 0; i < V; ++i) kl += std::exp(a[static_cast<size_t>(i)]) * (a[static_cast<size_t>(i)] - b[static_cast<size_t>(i)]);
    kl_sum += kl;
    rep.kl_max = std::max(rep.kl_max, kl);
    const auto am = std::max_element(a.begin(), a.end()) - a.begin();
    const auto bm = std::max_element(b.begin(), b.end()) - b.begin();
    agree += am == bm;
    const int64_t next = tokens[static_cast<size_t>(t + 1)];
    if (next < 0 || next >= V) return Status::Error("calibration token " + std::to_string(next) + " is outside the vocabulary");
    nll_r -= a[static_cast<size_t>(next)];
    nll_q -= b[static_cast<size_t>(next)];
  }
  const double P = static_cast<double>(T - 1);
  rep.kl_mean = kl_sum / P;
  rep.top1_agreement = static_cast<double>(agree) / P;
  rep.ppl_reference = std::exp(nll_r / P);
  rep.ppl_quantized = std::exp(nll_q / P);
  return rep;
}

std::string AccuracyReport::table() const {
  std::ostringstream s;
  size_t width = 6;
  for (auto& m : matmuls) width = std::max(width, m.weight.size());
  s << "quantization accuracy on " << calib_tokens << " calibration tokens (per matmul: its output against f32 weights on the same input)\n";
  s << "  " << "weight" << std::string(width - 6 + 2, ' ') << "type           SQNR dB   cosine\n";
  for (auto& m : matmuls) {
    const std::string types = m.reference_type + " -> " + m.quantized_type;
    s << "  " << m.weight << std::string(width - m.weight.size() + 2, ' ') << types
      << std::string(types.size() < 14 ? 14 - types.size() : 1, ' ') << fmt("%8.2f", m.sqnr_db) << fmt("  %.6f", m.cosine) << "\n";
  }
  if (matmuls.empty()) s << "  (no matmul has a quantized weight)\n";
  s << "end to end over " << calib_tokens - 1 << " next-token predictions:\n";
  s << "  KL divergence  mean " << fmt("%.6f", kl_mean) << "  max " << fmt("%.6f", kl_max) << " nats\n";
  s << "  top-1 agreement " << fmt("%.1f", 100 * top1_agreement) << " %\n";
  s << "  perplexity     " << fmt("%.4f", ppl_reference) << " (reference)  " << fmt("%.4f", ppl_quantized) << " (quantized)\n";
  return s.str();
}

std::string AccuracyReport::json() const {
  nlohmann::json j;
  j["calib_tokens"] = calib_tokens;
  j["matmuls"] = nlohmann::json::array();
  for (auto& m : matmuls)
    j["matmuls"].push_back({{"weight", m.weight}, {"node", m.node}, {"reference_type", m.reference_type},
                            {"quantized_type", m.quantized_type},
                            {"sqnr_db", std::isfinite(m.sqnr_db) ? nlohmann::json(m.sqnr_db) : nlohmann::json(nullptr)},
                            {"cosine", m.cosine}, {"elements", m.elements}});
  j["end_to_end"] = {{"kl_mean", kl_mean}, {"kl_max", kl_max}, {"top1_agreement", top1_agreement},
                     {"perplexity_reference", ppl_reference}, {"perplexity_quantized", ppl_quantized},
                     {"predictions", calib_tokens - 1}};
  return j.dump(2) + "\n";
}

}  // namespace ingot
