// Tests of frontend/llama_builder: the graph it builds, run by the reference evaluator, against an
// independent LLaMA written below with plain loops in double precision.
//
// The oracle deliberately works differently from the graph: it feeds one token at a time into its
// own KV cache (so causality needs no mask), indexes GQA heads directly (h / group) instead of
// broadcasting, rotates RoPE pairs by index instead of slicing/concatenating, and computes RoPE
// angles in double. Agreement therefore checks the meaning of the graph, not its construction.
#include "frontend/llama_builder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "ir/evaluator.h"
#include "ir/model.h"
#include "ir/tensor.h"
#include "ir/verifier.h"

namespace ingot {
namespace {

// The evaluator computes every op in double and rounds each op's result to f32 on store, so the
// graph differs from the all-double oracle by a few f32 ulps (~6e-8 relative) per op. Through ~60
// ops on values of order 1 that stays well below 1e-5; 1e-4 leaves a wide margin while any real
// mistake (a wrong RoPE pair, head, mask, scale, norm or residual) moves logits by 1e-2 or more.
constexpr double kTol = 1e-4;

const std::vector<int64_t> kTokens = {3, 17, 0, 36, 9, 9, 22};  // includes 0, vocab-1 and a repeat

// ------------------------------------------------------------------ deterministic weights

// A 64-bit LCG (Knuth's MMIX constants); the top 53 bits give a double in [0, 1).
class Lcg {
 public:
  explicit Lcg(uint64_t seed) : s_(seed * 2862933555777941757ull + 3037000493ull) {}
  double uniform() {
    s_ = s_ * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(s_ >> 11) * 0x1.0p-53;
  }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

 private:
  uint64_t s_;
};

// Weight values (exactly representable in f32) by GGUF name, [out, in] row-major.
struct Weights {
  std::map<std::string, std::vector<int64_t>> shapes;
  std::map<std::string, std::vector<double>> values;
  const std::vector<double>& operator[](const std::string& name) const { return values.at(name); }
};

Weights make_weights(const LlamaConfig& c, uint64_t seed) {
  Lcg rng(seed);
  Weights w;
  const int64_t hd = c.dim / c.n_heads;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<double> v(static_cast<size_t>(n));
    if (shape.size() == 1) {
      for (auto& x : v) x = static_cast<float>(rng.uniform(0.8, 1.2));  // norm gains near 1
    } else {
      double a = std::sqrt(3.0 / static_cast<double>(shape[1]));  // unit-variance outputs
      for (auto& x : v) x = static_cast<float>(rng.uniform(-a, a));
    }
    w.shapes[name] = shape;
    w.values[name] = v;
  };
  add("token_embd.weight", {c.vocab, c.dim});
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", {c.dim});
    add(p + "attn_q.weight", {c.n_heads * hd, c.dim});
    add(p + "attn_k.weight", {c.n_kv_heads * hd, c.dim});
    add(p + "attn_v.weight", {c.n_kv_heads * hd, c.dim});
    add(p + "attn_output.weight", {c.dim, c.n_heads * hd});
    add(p + "ffn_norm.weight", {c.dim});
    add(p + "ffn_gate.weight", {c.ffn, c.dim});
    add(p + "ffn_up.weight", {c.ffn, c.dim});
    add(p + "ffn_down.weight", {c.dim, c.ffn});
  }
  add("output_norm.weight", {c.dim});
  add("output.weight", {c.vocab, c.dim});
  return w;
}

std::shared_ptr<const Tensor> f32_tensor(const std::vector<int64_t>& shape, const std::vector<double>& v) {
  std::vector<float> f(v.begin(), v.end());
  return std::make_shared<const Tensor>(Tensor::from_f32(shape, f));
}

// Serves `w` as f32 tensors. Checks that the builder asks with the expected shape and records
// every name it asks for.
WeightProvider provider(const Weights& w, std::vector<std::string>* asked = nullptr) {
  return [&w, asked](const std::string& name,
                     const std::vector<int64_t>& shape) -> StatusOr<std::shared_ptr<const Tensor>> {
    if (asked) asked->push_back(name);
    auto it = w.shapes.find(name);
    if (it == w.shapes.end()) return Status::Error("test provider: no weight '" + name + "'");
    EXPECT_EQ(it->second, shape) << "builder asked for " << name << " with an unexpected shape";
    return f32_tensor(it->second, w[name]);
  };
}

// Rounds to a binary float with `mant` stored mantissa bits and minimum normal exponent `emin`
// (round to nearest, ties to even; subnormals included; no overflow handling: test values are small).
double round_to_format(double x, int mant, int emin) {
  if (x == 0 || !std::isfinite(x)) return x;
  int e = std::ilogb(x);
  if (e < emin) e = emin;
  double q = std::ldexp(x, mant - e);  // the representable values are the integers here
  return std::ldexp(std::nearbyint(q), e - mant);
}
double round_f16(double x) { return round_to_format(x, 10, -14); }
double round_bf16(double x) { return round_to_format(x, 7, -126); }

// ------------------------------------------------------------------ the oracle

// A straightforward LLaMA in double: one token at a time through an explicit KV cache.
class Oracle {
 public:
  Oracle(const LlamaConfig& c, const Weights& w)
      : c_(c), w_(w), hd_(c.dim / c.n_heads), k_(static_cast<size_t>(c.n_layers)), v_(static_cast<size_t>(c.n_layers)) {}

  // Appends `ids` to the sequence; returns the logits row of each of them.
  std::vector<std::vector<double>> feed(const std::vector<int64_t>& ids) {
    std::vector<std::vector<double>> out;
    for (int64_t id : ids) out.push_back(step(id));
    return out;
  }

  int64_t length() const { return static_cast<int64_t>(k_[0].size()); }
  // Cached (post-RoPE) key / value of `layer` at position t: kv_heads * hd values.
  const std::vector<double>& key(int64_t layer, int64_t t) const { return k_[layer][t]; }
  const std::vector<double>& value(int64_t layer, int64_t t) const { return v_[layer][t]; }

  // out[o] = sum_i W[o, i] * x[i]
  static std::vector<double> matvec(const std::vector<double>& W, const std::vector<double>& x) {
    size_t in = x.size(), outs = W.size() / in;
    std::vector<double> y(outs, 0.0);
    for (size_t o = 0; o < outs; ++o)
      for (size_t i = 0; i < in; ++i) y[o] += W[o * in + i] * x[i];
    return y;
  }

 private:
  std::vector<double> rms_norm(const std::vector<double>& x, const std::string& wname) const {
    const auto& g = w_[wname];
    double ss = 0;
    for (double v : x) ss += v * v;
    double r = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + c_.rms_eps);
    std::vector<double> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * r * g[i];
    return y;
  }

  // Rotates each head of `x` (heads * hd values) in place for position `pos`.
  void rope(std::vector<double>& x, int64_t heads, int64_t pos) const {
    const int64_t half = hd_ / 2;
    for (int64_t h = 0; h < heads; ++h) {
      double* v = x.data() + h * hd_;
      for (int64_t i = 0; i < half; ++i) {
        double theta = static_cast<double>(pos) * std::pow(c_.rope_base, -2.0 * static_cast<double>(i) / static_cast<double>(hd_));
        double cs = std::cos(theta), sn = std::sin(theta);
        int64_t a, b;
        if (c_.rope_layout == RopePairs::Interleaved) {
          a = 2 * i;
          b = 2 * i + 1;
        } else {
          a = i;
          b = i + half;
        }
        double x0 = v[a], x1 = v[b];
        v[a] = x0 * cs - x1 * sn;
        v[b] = x0 * sn + x1 * cs;
      }
    }
  }

  std::vector<double> step(int64_t id) {
    const int64_t pos = length();
    const int64_t group = c_.n_heads / c_.n_kv_heads;
    const double scale = 1.0 / std::sqrt(static_cast<double>(hd_));
    const auto& emb = w_["token_embd.weight"];
    std::vector<double> x(emb.begin() + id * c_.dim, emb.begin() + (id + 1) * c_.dim);

    for (int64_t l = 0; l < c_.n_layers; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      std::vector<double> xn = rms_norm(x, p + "attn_norm.weight");
      std::vector<double> q = matvec(w_[p + "attn_q.weight"], xn);
      std::vector<double> k = matvec(w_[p + "attn_k.weight"], xn);
      std::vector<double> v = matvec(w_[p + "attn_v.weight"], xn);
      rope(q, c_.n_heads, pos);
      rope(k, c_.n_kv_heads, pos);
      k_[l].push_back(k);
      v_[l].push_back(v);

      // Causal attention: this token sees cache positions 0..pos (itself included).
      std::vector<double> attn(static_cast<size_t>(c_.n_heads * hd_), 0.0);
      for (int64_t h = 0; h < c_.n_heads; ++h) {
        const int64_t kvh = h / group;
        std::vector<double> s(static_cast<size_t>(pos + 1));
        double m = -INFINITY;
        for (int64_t t = 0; t <= pos; ++t) {
          double dot = 0;
          for (int64_t d = 0; d < hd_; ++d) dot += q[h * hd_ + d] * k_[l][t][kvh * hd_ + d];
          s[t] = dot * scale;
          m = std::max(m, s[t]);
        }
        double sum = 0;
        for (auto& e : s) sum += (e = std::exp(e - m));
        for (int64_t t = 0; t <= pos; ++t)
          for (int64_t d = 0; d < hd_; ++d) attn[h * hd_ + d] += s[t] / sum * v_[l][t][kvh * hd_ + d];
      }
      std::vector<double> o = matvec(w_[p + "attn_output.weight"], attn);
      for (int64_t i = 0; i < c_.dim; ++i) x[i] += o[i];

      std::vector<double> fn = rms_norm(x, p + "ffn_norm.weight");
      std::vector<double> gate = matvec(w_[p + "ffn_gate.weight"], fn);
      std::vector<double> up = matvec(w_[p + "ffn_up.weight"], fn);
      std::vector<double> act(gate.size());
      for (size_t i = 0; i < gate.size(); ++i) act[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
      std::vector<double> down = matvec(w_[p + "ffn_down.weight"], act);
      for (int64_t i = 0; i < c_.dim; ++i) x[i] += down[i];
    }
    return matvec(w_["output.weight"], rms_norm(x, "output_norm.weight"));
  }

  LlamaConfig c_;
  const Weights& w_;
  int64_t hd_;
  std::vector<std::vector<std::vector<double>>> k_, v_;  // [layer][position][kv_heads * hd]
};

// ------------------------------------------------------------------ helpers

LlamaConfig small_config(RopePairs layout, int64_t kv_heads = 2, int64_t layers = 2) {
  LlamaConfig c;
  c.vocab = 37;
  c.dim = 24;
  c.n_layers = layers;
  c.n_heads = 6;  // head_dim 4
  c.n_kv_heads = kv_heads;
  c.ffn = 40;
  c.max_context = 16;
  c.rms_eps = 1e-5;
  c.rope_base = 10000.0;
  c.rope_layout = layout;
  return c;
}

// A wider head (hd 12: six RoPE frequencies) with multi-query attention (one KV head).
LlamaConfig wide_head_config(RopePairs layout) {
  LlamaConfig c = small_config(layout, 1, 2);
  c.dim = 48;
  c.n_heads = 4;
  c.rope_base = 500.0;  // faster rotation of the later pairs, so all of them matter
  return c;
}

std::string describe(const LlamaConfig& c) {
  return "heads=" + std::to_string(c.n_heads) + " kv=" + std::to_string(c.n_kv_heads) +
         " layers=" + std::to_string(c.n_layers) + " dim=" + std::to_string(c.dim) +
         (c.rope_layout == RopePairs::Interleaved ? " interleaved" : " rotate-half") +
         (c.all_logits ? " all_logits" : "");
}

std::vector<LlamaConfig> configs_for(RopePairs layout) {
  return {small_config(layout, 2, 2), small_config(layout, 3, 3), small_config(layout, 6, 2),
          wide_head_config(layout)};
}

std::map<std::string, Tensor> inputs_for(const std::vector<int64_t>& ids, int64_t pos) {
  return {{"token_ids", Tensor::from_i64({static_cast<int64_t>(ids.size())}, ids)}, {"pos", Tensor::scalar_i64(pos)}};
}

// Runs one call and returns the single `logits` output.
Tensor run_logits(Evaluator& ev, const std::vector<int64_t>& ids, int64_t pos) {
  auto r = ev.run(inputs_for(ids, pos));
  EXPECT_TRUE(r.ok()) << r.message();
  if (!r.ok()) return Tensor();
  EXPECT_EQ(r->size(), 1u);
  return r->empty() ? Tensor() : (*r)[0];
}

std::unique_ptr<Model> build_ok(const LlamaConfig& c, const WeightProvider& p) {
  auto m = build_llama(c, p, "tiny");
  EXPECT_TRUE(m.ok()) << describe(c) << ": " << m.message();
  return m.ok() ? std::move(*m) : nullptr;
}

double max_abs_diff_row(const Tensor& t, int64_t row, const std::vector<double>& want) {
  const int64_t n = static_cast<int64_t>(want.size());
  double worst = 0;
  for (int64_t j = 0; j < n; ++j) worst = std::max(worst, std::fabs(t.get_f(row * n + j) - want[j]));
  return worst;
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

// ------------------------------------------------------------------ 1. prefill, last position

void check_prefill_last(RopePairs layout) {
  for (const LlamaConfig& c : configs_for(layout)) {
    SCOPED_TRACE(describe(c));
    Weights w = make_weights(c, 1234);
    auto model = build_ok(c, provider(w));
    ASSERT_NE(model, nullptr);
    EXPECT_TRUE(verify(*model).ok()) << verify(*model).message();
    ASSERT_EQ(model->results().size(), 1u);
    EXPECT_EQ(model->results()[0]->name, "logits");

    Evaluator ev(*model);
    Tensor logits = run_logits(ev, kTokens, 0);
    ASSERT_TRUE(logits.defined());
    EXPECT_EQ(logits.type(), ElementType::f32);
    ASSERT_EQ(logits.shape(), (std::vector<int64_t>{1, c.vocab}));

    Oracle oracle(c, w);
    std::vector<double> want = oracle.feed(kTokens).back();
    ASSERT_GT(max_abs(want), 0.1) << "the oracle's logits are too small for the check to mean anything";
    EXPECT_LT(max_abs_diff_row(logits, 0, want), kTol);
  }
}

TEST(LlamaBuilder, PrefillLastPositionMatchesOracleInterleaved) { check_prefill_last(RopePairs::Interleaved); }
TEST(LlamaBuilder, PrefillLastPositionMatchesOracleRotateHalf) { check_prefill_last(RopePairs::RotateHalf); }

// ------------------------------------------------------------------ 2. all_logits

TEST(LlamaBuilder, AllLogitsEveryRowMatchesOracle) {
  for (RopePairs layout : {RopePairs::Interleaved, RopePairs::RotateHalf}) {
    for (LlamaConfig c : {small_config(layout, 2, 2), small_config(layout, 6, 3)}) {
      c.all_logits = true;
      SCOPED_TRACE(describe(c));
      Weights w = make_weights(c, 99);
      auto model = build_ok(c, provider(w));
      ASSERT_NE(model, nullptr);
      Evaluator ev(*model);
      Tensor logits = run_logits(ev, kTokens, 0);
      ASSERT_TRUE(logits.defined());
      const int64_t n = static_cast<int64_t>(kTokens.size());
      ASSERT_EQ(logits.shape(), (std::vector<int64_t>{n, c.vocab}));
      Oracle oracle(c, w);
      auto want = oracle.feed(kTokens);
      for (int64_t r = 0; r < n; ++r) EXPECT_LT(max_abs_diff_row(logits, r, want[r]), kTol) << "row " << r;
    }
  }
}

// ------------------------------------------------------------------ 3, 4. incremental decoding

TEST(LlamaBuilder, IncrementalDecodingMatchesOracleAndFreshPrefill) {
  for (RopePairs layout : {RopePairs::Interleaved, RopePairs::RotateHalf}) {
    for (const LlamaConfig& c : {small_config(layout, 2, 2), small_config(layout, 3, 3), small_config(layout, 6, 2)}) {
      SCOPED_TRACE(describe(c));
      Weights w = make_weights(c, 777);
      auto model = build_ok(c, provider(w));
      ASSERT_NE(model, nullptr);

      // The oracle's answers for every prefix, computed once over the whole sequence.
      Oracle full(c, w);
      auto want = full.feed(kTokens);

      Evaluator ev(*model);
      Oracle inc(c, w);
      const std::vector<int64_t> prefill(kTokens.begin(), kTokens.begin() + 4);
      Tensor first = run_logits(ev, prefill, 0);
      ASSERT_TRUE(first.defined());
      ASSERT_EQ(first.shape(), (std::vector<int64_t>{1, c.vocab}));
      EXPECT_LT(max_abs_diff_row(first, 0, inc.feed(prefill).back()), kTol) << "prefill";
      EXPECT_LT(max_abs_diff_row(first, 0, want[3]), kTol) << "prefill";

      for (int64_t p = 4; p < 7; ++p) {
        SCOPED_TRACE("decode pos " + std::to_string(p));
        Tensor step = run_logits(ev, {kTokens[p]}, p);
        ASSERT_TRUE(step.defined());
        ASSERT_EQ(step.shape(), (std::vector<int64_t>{1, c.vocab}));
        EXPECT_LT(max_abs_diff_row(step, 0, inc.feed({kTokens[p]}).back()), kTol);
        EXPECT_LT(max_abs_diff_row(step, 0, want[p]), kTol);

        // A fresh evaluator prefilling the whole prefix gives the same answer.
        Evaluator fresh(*model);
        Tensor whole = run_logits(fresh, std::vector<int64_t>(kTokens.begin(), kTokens.begin() + p + 1), 0);
        ASSERT_TRUE(whole.defined());
        double worst = 0;
        for (int64_t j = 0; j < c.vocab; ++j) worst = std::max(worst, std::fabs(whole.get_f(j) - step.get_f(j)));
        EXPECT_LT(worst, kTol);
      }

      // 4. The cache holds all 7 positions, [7, kv_heads, hd], and its contents are the oracle's
      // post-RoPE keys and values.
      const int64_t hd = c.dim / c.n_heads;
      for (int64_t l = 0; l < c.n_layers; ++l) {
        for (const char* which : {"k", "v"}) {
          const std::string var = "kv." + std::to_string(l) + "." + which;
          auto it = ev.state().find(var);
          ASSERT_NE(it, ev.state().end()) << var << " missing from the state";
          const Tensor& t = it->second;
          EXPECT_EQ(t.type(), ElementType::f32) << var;
          ASSERT_EQ(t.shape(), (std::vector<int64_t>{7, c.n_kv_heads, hd})) << var;
          double worst = 0;
          for (int64_t pos = 0; pos < 7; ++pos) {
            const auto& ref = which[0] == 'k' ? inc.key(l, pos) : inc.value(l, pos);
            for (int64_t i = 0; i < c.n_kv_heads * hd; ++i)
              worst = std::max(worst, std::fabs(t.get_f(pos * c.n_kv_heads * hd + i) - ref[i]));
          }
          EXPECT_LT(worst, kTol) << var << " differs from the oracle's cache";
        }
      }
      EXPECT_EQ(ev.state().size(), static_cast<size_t>(2 * c.n_layers));
      ASSERT_EQ(model->variables().size(), static_cast<size_t>(2 * c.n_layers));
      for (const auto& v : model->variables())
        EXPECT_EQ(v.max_shape, (std::vector<int64_t>{c.max_context, c.n_kv_heads, hd})) << v.name;
    }
  }
}

TEST(LlamaBuilder, StateHoldsKvCacheOfAllPositions) {
  LlamaConfig c = small_config(RopePairs::Interleaved, 3, 2);
  Weights w = make_weights(c, 5);
  auto model = build_ok(c, provider(w));
  ASSERT_NE(model, nullptr);
  Evaluator ev(*model);
  EXPECT_TRUE(run_logits(ev, {kTokens[0], kTokens[1], kTokens[2], kTokens[3]}, 0).defined());
  for (int64_t p = 4; p < 7; ++p) EXPECT_TRUE(run_logits(ev, {kTokens[p]}, p).defined());
  auto it = ev.state().find("kv.0.k");
  ASSERT_NE(it, ev.state().end());
  EXPECT_EQ(it->second.shape(), (std::vector<int64_t>{7, 3, 4}));
}

// ------------------------------------------------------------------ 6. the layout matters

TEST(LlamaBuilder, RopeLayoutsGiveDifferentLogits) {
  for (auto make : {+[](RopePairs l) { return small_config(l, 2, 2); }, +[](RopePairs l) { return wide_head_config(l); }}) {
    LlamaConfig ci = make(RopePairs::Interleaved), ch = make(RopePairs::RotateHalf);
    SCOPED_TRACE(describe(ci));
    Weights w = make_weights(ci, 4242);  // the same weights for both layouts
    auto mi = build_ok(ci, provider(w));
    auto mh = build_ok(ch, provider(w));
    ASSERT_NE(mi, nullptr);
    ASSERT_NE(mh, nullptr);
    Evaluator ei(*mi), eh(*mh);
    Tensor li = run_logits(ei, kTokens, 0), lh = run_logits(eh, kTokens, 0);
    ASSERT_TRUE(li.defined());
    ASSERT_TRUE(lh.defined());
    Oracle oi(ci, w), oh(ch, w);
    std::vector<double> want_i = oi.feed(kTokens).back(), want_h = oh.feed(kTokens).back();

    // The oracle tells the layouts apart by far more than the tolerance...
    double oracle_gap = 0;
    for (int64_t j = 0; j < ci.vocab; ++j) oracle_gap = std::max(oracle_gap, std::fabs(want_i[j] - want_h[j]));
    EXPECT_GT(oracle_gap, 100 * kTol);
    // ...and so does the graph: a builder that ignored the layout would fail here.
    double graph_gap = 0;
    for (int64_t j = 0; j < ci.vocab; ++j) graph_gap = std::max(graph_gap, std::fabs(li.get_f(j) - lh.get_f(j)));
    EXPECT_GT(graph_gap, 100 * kTol);
    // Each graph matches its own layout's oracle, not the other one.
    EXPECT_LT(max_abs_diff_row(li, 0, want_i), kTol);
    EXPECT_LT(max_abs_diff_row(lh, 0, want_h), kTol);
    EXPECT_GT(max_abs_diff_row(li, 0, want_h), 10 * kTol);
    EXPECT_GT(max_abs_diff_row(lh, 0, want_i), 10 * kTol);
  }
}

// ------------------------------------------------------------------ non-f32 weights

// The node that reads `weight` (a Constant of that name), if it is a Convert.
const Node* convert_after(const Model& m, const std::string& weight) {
  const Node* constant = m.find(weight);
  if (!constant) return nullptr;
  for (const auto& n : m.nodes())
    if (n->is(Op::Convert) && n->inputs.size() == 1 && n->inputs[0].node == constant) return n.get();
  return nullptr;
}

TEST(LlamaBuilder, HalfPrecisionWeightsGetAConvertAndMatchRoundedOracle) {
  for (RopePairs layout : {RopePairs::Interleaved, RopePairs::RotateHalf}) {
    LlamaConfig c = small_config(layout, 2, 2);
    SCOPED_TRACE(describe(c));
    Weights w = make_weights(c, 31337);
    // blk.0.attn_q as f16 and blk.1.ffn_down as bf16; the oracle sees the rounded values.
    const std::map<std::string, ElementType> narrow = {{"blk.0.attn_q.weight", ElementType::f16},
                                                       {"blk.1.ffn_down.weight", ElementType::bf16}};
    Weights rounded = w;
    for (auto& [name, type] : narrow)
      for (double& x : rounded.values[name]) x = type == ElementType::f16 ? round_f16(x) : round_bf16(x);

    WeightProvider p = [&](const std::string& name,
                           const std::vector<int64_t>& shape) -> StatusOr<std::shared_ptr<const Tensor>> {
      auto it = narrow.find(name);
      if (it == narrow.end()) return f32_tensor(w.shapes.at(name), w[name]);
      auto t = std::make_shared<const Tensor>(Tensor::from_values(it->second, shape, w[name]));
      // The library's rounding agrees with this file's (so the oracle sees what the graph stores).
      for (int64_t i = 0; i < t->numel(); ++i)
        if (t->get_f(i) != rounded[name][static_cast<size_t>(i)]) {
          ADD_FAILURE() << name << "[" << i << "]: stored " << t->get_f(i) << ", expected "
                        << rounded[name][static_cast<size_t>(i)];
          break;
        }
      return std::shared_ptr<const Tensor>(t);
    };
    auto model = build_ok(c, p);
    ASSERT_NE(model, nullptr);
    EXPECT_TRUE(verify(*model).ok()) << verify(*model).message();

    for (auto& [name, type] : narrow) {
      const Node* constant = model->find(name);
      ASSERT_NE(constant, nullptr) << name;
      ASSERT_TRUE(constant->is(Op::Constant)) << name;
      EXPECT_EQ(constant->outputs[0].type, type) << name << " should stay narrow in the graph";
      const Node* conv = convert_after(*model, name);
      ASSERT_NE(conv, nullptr) << "no Convert after " << name;
      EXPECT_EQ(conv->attr("to").as_type(), ElementType::f32);
      EXPECT_EQ(conv->outputs[0].type, ElementType::f32);
    }
    // f32 weights are used directly.
    EXPECT_EQ(convert_after(*model, "blk.0.attn_k.weight"), nullptr);
    EXPECT_EQ(convert_after(*model, "blk.1.attn_q.weight"), nullptr);

    Evaluator ev(*model);
    Tensor logits = run_logits(ev, kTokens, 0);
    ASSERT_TRUE(logits.defined());
    Oracle oracle(c, rounded);
    EXPECT_LT(max_abs_diff_row(logits, 0, oracle.feed(kTokens).back()), kTol);
  }
}

TEST(LlamaBuilder, TestRoundingHelperIsRight) {
  // Guards the oracle's own f16/bf16 rounding with known values.
  EXPECT_EQ(round_f16(1.0), 1.0);
  EXPECT_EQ(round_f16(1.0 + 0x1.0p-11), 1.0);                          // tie: to even
  EXPECT_EQ(round_f16(1.0 + 3 * 0x1.0p-11), 1.0 + 2 * 0x1.0p-10);      // tie: to even (up)
  EXPECT_EQ(round_f16(0.1), 0x1.998p-4);                                 // 0.0999755859375
  EXPECT_EQ(round_f16(0x1.0p-24), 0x1.0p-24);                            // smallest subnormal
  EXPECT_EQ(round_f16(0x1.8p-25), 0x1.0p-24);
  EXPECT_EQ(round_bf16(1.0 + 0x1.0p-8), 1.0);                            // tie: to even
  EXPECT_EQ(round_bf16(-0.1), -0x1.9ap-4);
}

// ------------------------------------------------------------------ 5. errors

TEST(LlamaBuilder, WrongWeightShapeIsAnErrorNamingTheWeight) {
  LlamaConfig c = small_config(RopePairs::Interleaved, 2, 2);
  Weights w = make_weights(c, 1);
  struct Case {
    std::string name;
    std::vector<int64_t> shape;
  };
  // Transposed, too short, wrong rank.
  for (const Case& bad : {Case{"blk.1.ffn_gate.weight", {24, 40}}, Case{"output_norm.weight", {23}},
                          Case{"token_embd.weight", {37 * 24}}, Case{"blk.0.attn_k.weight", {8, 24, 1}}}) {
    SCOPED_TRACE(bad.name);
    WeightProvider p = [&](const std::string& name,
                           const std::vector<int64_t>& shape) -> StatusOr<std::shared_ptr<const Tensor>> {
      if (name != bad.name) return f32_tensor(shape, w[name]);
      int64_t n = 1;
      for (int64_t d : bad.shape) n *= d;
      return std::make_shared<const Tensor>(Tensor::from_f32(bad.shape, std::vector<float>(static_cast<size_t>(n), 0.5f)));
    };
    auto m = build_llama(c, p, "tiny");
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.message().find(bad.name), std::string::npos) << m.message();
    EXPECT_NE(m.message().find(dims_str(bad.shape)), std::string::npos) << m.message();
    EXPECT_NE(m.message().find(dims_str(w.shapes.at(bad.name))), std::string::npos) << m.message();
    EXPECT_NE(m.message().find("tiny"), std::string::npos) << "model name as context: " << m.message();
    EXPECT_EQ(m.message().find("null input"), std::string::npos) << "a follow-on error was reported: " << m.message();
  }
}

TEST(LlamaBuilder, DimNotDivisibleByHeadsIsAnError) {
  LlamaConfig c = small_config(RopePairs::Interleaved, 2, 2);
  c.dim = 25;
  int calls = 0;
  WeightProvider p = [&](const std::string&, const std::vector<int64_t>&) -> StatusOr<std::shared_ptr<const Tensor>> {
    ++calls;
    return Status::Error("the provider should not be asked");
  };
  auto m = build_llama(c, p, "tiny");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.message().find("25"), std::string::npos) << m.message();
  EXPECT_NE(m.message().find("head count"), std::string::npos) << m.message();
  EXPECT_EQ(m.message().find("provider"), std::string::npos) << m.message();
  EXPECT_EQ(calls, 0);
}

TEST(LlamaBuilder, HeadsNotDivisibleByKvHeadsIsAnError) {
  LlamaConfig c = small_config(RopePairs::Interleaved, 4, 2);  // 6 heads, 4 KV heads
  WeightProvider p = [&](const std::string&, const std::vector<int64_t>&) -> StatusOr<std::shared_ptr<const Tensor>> {
    return Status::Error("the provider should not be asked");
  };
  auto m = build_llama(c, p, "tiny");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.message().find("KV head count 4"), std::string::npos) << m.message();
  EXPECT_EQ(m.message().find("provider"), std::string::npos) << m.message();
}

TEST(LlamaBuilder, OtherInvalidConfigsAreErrors) {
  auto expect_error = [](LlamaConfig c, const std::string& what) {
    Weights none;
    auto m = build_llama(c, provider(none), "tiny");
    EXPECT_FALSE(m.ok()) << what;
    if (!m.ok()) EXPECT_NE(m.message().find(what), std::string::npos) << m.message();
  };
  LlamaConfig c = small_config(RopePairs::Interleaved);
  c.n_heads = 8;  // dim 24 / 8 = head_dim 3: odd
  c.n_kv_heads = 8;
  expect_error(c, "even head dimension");
  c = small_config(RopePairs::Interleaved);
  c.n_kv_heads = 0;
  expect_error(c, "KV head count must be positive");
  c = small_config(RopePairs::Interleaved);
  c.max_context = 0;
  expect_error(c, "context length must be positive");
  c = small_config(RopePairs::Interleaved);
  c.rms_eps = 0;
  expect_error(c, "epsilon");
}

TEST(LlamaBuilder, FailingWeightProviderErrorIsReported) {
  LlamaConfig c = small_config(RopePairs::Interleaved, 2, 2);
  Weights w = make_weights(c, 2);
  // The first, a middle and the last weight the builder needs.
  for (const std::string failing : {"token_embd.weight", "blk.1.attn_v.weight", "blk.0.ffn_norm.weight",
                                    "output.weight"}) {
    SCOPED_TRACE(failing);
    std::vector<std::string> asked;
    WeightProvider p = [&](const std::string& name,
                           const std::vector<int64_t>& shape) -> StatusOr<std::shared_ptr<const Tensor>> {
      asked.push_back(name);
      if (name == failing) return Status::Error("read error in shard 3 for " + name);
      return f32_tensor(shape, w[name]);
    };
    auto m = build_llama(c, p, "tiny");
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.message().find("read error in shard 3 for " + failing), std::string::npos) << m.message();
    EXPECT_EQ(m.message().find("null input"), std::string::npos) << "a follow-on error was reported: " << m.message();
    // Nothing is requested after the failure.
    ASSERT_FALSE(asked.empty());
    EXPECT_EQ(asked.back(), failing);
  }
}

TEST(LlamaBuilder, AsksForEveryWeightOnceWithGgufNames) {
  LlamaConfig c = small_config(RopePairs::Interleaved, 3, 3);
  Weights w = make_weights(c, 3);
  std::vector<std::string> asked;
  auto model = build_ok(c, provider(w, &asked));
  ASSERT_NE(model, nullptr);
  std::multiset<std::string> got(asked.begin(), asked.end());
  std::multiset<std::string> want;
  for (auto& [name, shape] : w.shapes) want.insert(name);
  EXPECT_EQ(got, want);
}

// A provider that returns "ok" with no tensor is broken, but the builder should say so rather
// than dereference the null pointer. Run in a child process so a crash fails only this test.
TEST(LlamaBuilderDeathTest, NullTensorFromProviderIsAnErrorNotACrash) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  LlamaConfig c = small_config(RopePairs::Interleaved, 2, 2);
  Weights w = make_weights(c, 4);
  WeightProvider p = [&](const std::string& name,
                         const std::vector<int64_t>& shape) -> StatusOr<std::shared_ptr<const Tensor>> {
    if (name == "blk.0.attn_q.weight") return std::shared_ptr<const Tensor>();
    return f32_tensor(shape, w[name]);
  };
  EXPECT_EXIT(
      {
        auto m = build_llama(c, p, "tiny");
        bool named = !m.ok() && m.message().find("blk.0.attn_q.weight") != std::string::npos;
        std::exit(named ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace ingot

namespace ingot {
namespace {

// LongRoPE: frequencies are divided by the long factors only when the context exceeds the original
// one (llama.cpp's choice by context size), and factor lists must fit the head.
TEST(LlamaBuilder, LongRopePicksFactorsByContext) {
  LlamaConfig c;
  c.vocab = 8;
  c.dim = 8;
  c.n_layers = 1;
  c.n_heads = 2;
  c.n_kv_heads = 2;
  c.ffn = 8;
  c.max_context = 64;
  const std::vector<double> plain = c.rope_inv_freq(false);
  c.rope_factors_long = {2.0, 4.0};
  c.rope_factors_short = {1.0, 1.5};
  c.rope_original_context = 32;
  std::vector<double> f = c.rope_inv_freq(false);
  EXPECT_DOUBLE_EQ(f[0], plain[0] / 2.0);
  EXPECT_DOUBLE_EQ(f[1], plain[1] / 4.0);
  c.max_context = 32;  // within the original context: the short factors
  f = c.rope_inv_freq(false);
  EXPECT_DOUBLE_EQ(f[0], plain[0]);
  EXPECT_DOUBLE_EQ(f[1], plain[1] / 1.5);
  EXPECT_TRUE(c.validate().ok());
  c.rope_factors_short = {1.0};
  EXPECT_FALSE(c.validate().ok());
  c.rope_factors_short = {1.0, 1.0};
  c.rope_original_context = 0;
  EXPECT_FALSE(c.validate().ok());
}

}  // namespace
}  // namespace ingot
