// Each fused op against the primitive subgraph it replaces (built the way frontend/llama_builder
// emits it), on random inputs with odd sizes. Both sides round every result to f32, the fused op
// at fewer points, so they agree to a few f32 ulps: the bound is 1e-5 relative to the output scale.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <limits>
#include <random>

#include "ir/builder.h"
#include "ir/evaluator.h"
#include "ir/quant.h"
#include "ir/verifier.h"

namespace ingot {
namespace {

Tensor random_f32(std::vector<int64_t> shape, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return Tensor::from_f32(std::move(shape), v);
}

// Runs a model (calls in sequence, state carried) and returns every call's first result.
std::vector<std::vector<float>> run_calls(const Model& m, const std::vector<std::map<std::string, Tensor>>& calls) {
  Evaluator ev(m);
  std::vector<std::vector<float>> outs;
  for (auto& in : calls) {
    auto r = ev.run(in);
    EXPECT_TRUE(r.ok()) << r.message();
    if (!r.ok()) return outs;
    outs.push_back((*r)[0].to_f32_vector());
  }
  return outs;
}

void expect_close(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b, double rel = 1e-5) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t c = 0; c < a.size(); ++c) {
    ASSERT_EQ(a[c].size(), b[c].size());
    double scale = 1e-30, err = 0;
    for (size_t i = 0; i < a[c].size(); ++i) {
      scale = std::max(scale, static_cast<double>(std::fabs(b[c][i])));
      err = std::max(err, static_cast<double>(std::fabs(a[c][i] - b[c][i])));
    }
    EXPECT_LE(err, rel * scale) << "call " << c << ": max error " << err << " at output scale " << scale;
  }
}

Value rms_norm_primitive(GraphBuilder& b, Value x, Value w, float eps) {
  Value mean = b.op(Op::ReduceMean, {b.op(Op::Power, {x, b.scalar_f32(2.0f)})},
                    {{"axes", Attribute::Ints({-1})}, {"keep_dims", Attribute::Bool(true)}});
  return b.mul(b.div(x, b.op(Op::Sqrt, {b.add(mean, b.scalar_f32(eps))})), w);
}

TEST(FusedOps, RMSNormMatchesPrimitiveGraph) {
  std::mt19937 rng(1);
  for (int64_t rows : {1, 3, 17}) {
    Tensor x = random_f32({rows, 33}, rng, -3, 3);
    auto w = std::make_shared<Tensor>(random_f32({33}, rng, 0.5, 1.5));
    Model prim, fused;
    GraphBuilder bp(prim), bf(fused);
    bp.result(rms_norm_primitive(bp, bp.parameter("x", ElementType::f32, {Dim::symbol("tokens"), 33}), bp.constant(w), 1e-5f));
    bf.result(bf.op(Op::RMSNorm, {bf.parameter("x", ElementType::f32, {Dim::symbol("tokens"), 33}), bf.constant(w)},
                    {{"eps", Attribute::Float(static_cast<double>(1e-5f))}}));
    ASSERT_TRUE(bp.ok() && bf.ok()) << bp.status().message() << bf.status().message();
    expect_close(run_calls(fused, {{{"x", x}}}), run_calls(prim, {{{"x", x}}}));
  }
}

// x[T, H, D] with cos/sin[T, D/2], as frontend/llama_builder.cpp builds it.
Value rope_primitive(GraphBuilder& b, Value x, Value cos, Value sin, int64_t T, int64_t H, int64_t D, bool interleaved) {
  const int64_t half = D / 2, kEnd = std::numeric_limits<int64_t>::max();
  (void)kEnd;
  Value c = b.reshape(cos, {T, 1, half}), s = b.reshape(sin, {T, 1, half});
  if (interleaved) {
    Value pairs = b.reshape(x, {T, H, half, 2});
    Value x0 = b.reshape(b.slice(pairs, 3, 0, 1), {T, H, half});
    Value x1 = b.reshape(b.slice(pairs, 3, 1, 2), {T, H, half});
    Value y0 = b.sub(b.mul(x0, c), b.mul(x1, s));
    Value y1 = b.add(b.mul(x0, s), b.mul(x1, c));
    return b.reshape(b.concat({b.reshape(y0, {T, H, half, 1}), b.reshape(y1, {T, H, half, 1})}, 3), {T, H, D});
  }
  Value x1 = b.slice(x, 2, 0, half), x2 = b.slice(x, 2, half, D);
  Value rotated = b.concat({b.op(Op::Negative, {x2}), x1}, 2);
  return b.add(b.mul(x, b.concat({c, c}, 2)), b.mul(rotated, b.concat({s, s}, 2)));
}

TEST(FusedOps, RoPEMatchesPrimitiveGraphInBothLayouts) {
  std::mt19937 rng(2);
  const int64_t T = 5, H = 3, D = 10;
  Tensor x = random_f32({T, H, D}, rng);
  Tensor ang = random_f32({T, D / 2}, rng, -20, 20);
  std::vector<float> cv, sv;
  for (float a : ang.to_f32_vector()) {
    cv.push_back(std::cos(a));
    sv.push_back(std::sin(a));
  }
  Tensor cos = Tensor::from_f32({T, D / 2}, cv), sin = Tensor::from_f32({T, D / 2}, sv);
  std::map<std::string, Tensor> in = {{"x", x}, {"cos", cos}, {"sin", sin}};
  std::vector<std::vector<float>> results[2];
  for (bool interleaved : {true, false}) {
    Model prim, fused;
    GraphBuilder bp(prim), bf(fused);
    auto params = [&](GraphBuilder& b) {
      return std::array<Value, 3>{b.parameter("x", ElementType::f32, {T, H, D}), b.parameter("cos", ElementType::f32, {T, D / 2}),
                                  b.parameter("sin", ElementType::f32, {T, D / 2})};
    };
    auto p = params(bp);
    bp.result(rope_primitive(bp, p[0], p[1], p[2], T, H, D, interleaved));
    auto f = params(bf);
    bf.result(bf.op(Op::RoPE, {f[0], f[1], f[2]}, {{"layout", Attribute::String(interleaved ? "interleaved" : "rotate_half")}}));
    ASSERT_TRUE(bp.ok() && bf.ok()) << bp.status().message() << bf.status().message();
    auto got = run_calls(fused, {in});
    expect_close(got, run_calls(prim, {in}));
    results[interleaved] = got;
  }
  // The layouts must differ, or a kernel ignoring the attribute would pass.
  EXPECT_NE(results[0][0], results[1][0]);
}

TEST(FusedOps, SwiGLUMatchesPrimitiveGraph) {
  std::mt19937 rng(3);
  Tensor g = random_f32({3, 7}, rng, -4, 4), u = random_f32({3, 7}, rng, -4, 4);
  Model prim, two, one;
  GraphBuilder bp(prim), b2(two), b1(one);
  Value pg = bp.parameter("g", ElementType::f32, {3, 7}), pu = bp.parameter("u", ElementType::f32, {3, 7});
  bp.result(bp.mul(bp.mul(pg, bp.op(Op::Sigmoid, {pg})), pu));
  b2.result(b2.op(Op::SwiGLU, {b2.parameter("g", ElementType::f32, {3, 7}), b2.parameter("u", ElementType::f32, {3, 7})}));
  b1.result(b1.op(Op::SwiGLU, {b1.concat({b1.parameter("g", ElementType::f32, {3, 7}), b1.parameter("u", ElementType::f32, {3, 7})}, 1)}));
  ASSERT_TRUE(bp.ok() && b2.ok() && b1.ok()) << b1.status().message();
  std::map<std::string, Tensor> in = {{"g", g}, {"u", u}};
  auto want = run_calls(prim, {in});
  expect_close(run_calls(two, {in}), want);
  expect_close(run_calls(one, {in}), want);
}

TEST(FusedOps, FusedMatMulEpiloguesMatchPrimitiveGraph) {
  std::mt19937 rng(4);
  const int64_t T = 3, K = 19, hd = 4, qh = 2, kh = 1, vh = 1, N = (qh + kh + vh) * hd;
  Tensor x = random_f32({T, K}, rng);
  auto w = std::make_shared<Tensor>(random_f32({N, K}, rng));
  auto bias = std::make_shared<Tensor>(random_f32({N}, rng));
  Tensor cos = random_f32({T, hd / 2}, rng), sin = random_f32({T, hd / 2}, rng);
  Tensor res = random_f32({T, N / 2}, rng);
  std::map<std::string, Tensor> in = {{"x", x}, {"cos", cos}, {"sin", sin}, {"res", res}};

  // Primitive: matmul, + bias, RoPE on the q and k heads, SwiGLU over halves, + residual.
  Model prim;
  GraphBuilder bp(prim);
  Value px = bp.parameter("x", ElementType::f32, {T, K});
  Value pc = bp.parameter("cos", ElementType::f32, {T, hd / 2}), ps = bp.parameter("sin", ElementType::f32, {T, hd / 2});
  Value pr = bp.parameter("res", ElementType::f32, {T, N / 2});
  Value y = bp.add(bp.matmul(px, bp.constant(w), true), bp.constant(bias));
  Value qk = bp.reshape(bp.slice(y, 1, 0, (qh + kh) * hd), {T, qh + kh, hd});
  Value rest = bp.slice(y, 1, (qh + kh) * hd, N);
  Value roped = bp.concat({bp.reshape(rope_primitive(bp, qk, pc, ps, T, qh + kh, hd, true), {T, (qh + kh) * hd}), rest}, 1);
  Value gate = bp.slice(roped, 1, 0, N / 2), up = bp.slice(roped, 1, N / 2, N);
  bp.result(bp.add(bp.mul(bp.mul(gate, bp.op(Op::Sigmoid, {gate})), up), pr));

  Model fused;
  GraphBuilder bf(fused);
  Value fx = bf.parameter("x", ElementType::f32, {T, K});
  Value fc = bf.parameter("cos", ElementType::f32, {T, hd / 2}), fs = bf.parameter("sin", ElementType::f32, {T, hd / 2});
  Value fr = bf.parameter("res", ElementType::f32, {T, N / 2});
  bf.result(bf.op(Op::FusedMatMul, {fx, bf.constant(w), bf.constant(bias), fc, fs, fr},
                  {{"has_bias", Attribute::Bool(true)}, {"rope", Attribute::String("interleaved")},
                   {"rope_q_heads", Attribute::Int(qh)}, {"rope_k_heads", Attribute::Int(kh)}, {"head_dim", Attribute::Int(hd)},
                   {"activation", Attribute::String("swiglu")}, {"has_residual", Attribute::Bool(true)}}));
  ASSERT_TRUE(bp.ok() && bf.ok()) << bp.status().message() << bf.status().message();
  expect_close(run_calls(fused, {in}), run_calls(prim, {in}));
}

TEST(FusedOps, FusedMatMulChecksItsInputsAgainstItsAttributes) {
  Model m;
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {2, 4});
  Value w = b.constant(std::make_shared<Tensor>(Tensor::from_f32({6, 4}, std::vector<float>(24, 1.0f))));
  b.op(Op::FusedMatMul, {x, w}, {{"has_bias", Attribute::Bool(true)}});
  EXPECT_NE(b.status().message().find("takes 3 inputs"), std::string::npos) << b.status().message();
  Model m2;
  GraphBuilder b2(m2);
  Value x2 = b2.parameter("x", ElementType::f32, {2, 4});
  Value w2 = b2.constant(std::make_shared<Tensor>(Tensor::from_f32({5, 4}, std::vector<float>(20, 1.0f))));
  b2.op(Op::FusedMatMul, {x2, w2}, {{"activation", Attribute::String("swiglu")}});
  EXPECT_NE(b2.status().message().find("even N"), std::string::npos) << b2.status().message();
}

// Attention against ReadValue/Concat/Assign + repeated KV heads + QK^T * scale + causal mask +
// softmax + PV, over two calls (prefill then more tokens) so the cache is exercised.
TEST(FusedOps, AttentionMatchesPrimitiveGraphAcrossCalls) {
  std::mt19937 rng(5);
  const int64_t H = 4, KV = 2, D = 6, group = H / KV, MAX = 16;
  const Dim T = Dim::symbol("tokens"), P = Dim::symbol("past");
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));

  Model prim;
  {
    GraphBuilder b(prim);
    ASSERT_TRUE(prim.add_variable({"k", ElementType::f32, {MAX, KV, D}}).ok());
    ASSERT_TRUE(prim.add_variable({"v", ElementType::f32, {MAX, KV, D}}).ok());
    Value q = b.parameter("q", ElementType::f32, {T, H, D});
    Value k = b.parameter("k_new", ElementType::f32, {T, KV, D});
    Value v = b.parameter("v_new", ElementType::f32, {T, KV, D});
    Value pos = b.parameter("pos", ElementType::i64, {});
    Value ks = b.concat({b.read_value("k", ElementType::f32, {P, KV, D}), k}, 0);
    Value vs = b.concat({b.read_value("v", ElementType::f32, {P, KV, D}), v}, 0);
    b.assign("k", ks);
    b.assign("v", vs);
    auto repeat = [&](Value x) {
      Value e = b.op(Op::Broadcast, {b.reshape(x, {P + T, KV, 1, D})}, {{"shape", Attribute::Dims({P + T, KV, group, D})}});
      return b.transpose(b.reshape(e, {P + T, H, D}), {1, 0, 2});
    };
    Value scores = b.mul(b.matmul(b.transpose(q, {1, 0, 2}), repeat(ks), true), b.scalar_f32(scale));
    Value qpos = b.reshape(b.op(Op::Range, {pos}, {{"length", Attribute::Dims({T})}}), {T, 1});
    Value kpos = b.op(Op::Range, {b.scalar_i64(0)}, {{"length", Attribute::Dims({P + T})}});
    Value masked = b.op(Op::Select, {b.op(Op::LessEqual, {kpos, qpos}), scores, b.scalar_f32(-INFINITY)});
    Value probs = b.op(Op::Softmax, {masked}, {{"axis", Attribute::Int(-1)}});
    b.result(b.transpose(b.matmul(probs, repeat(vs)), {1, 0, 2}));
    ASSERT_TRUE(b.ok()) << b.status().message();
  }
  Model fused;
  {
    GraphBuilder b(fused);
    ASSERT_TRUE(fused.add_variable({"k", ElementType::f32, {MAX, KV, D}}).ok());
    ASSERT_TRUE(fused.add_variable({"v", ElementType::f32, {MAX, KV, D}}).ok());
    Value q = b.parameter("q", ElementType::f32, {T, H, D});
    Value k = b.parameter("k_new", ElementType::f32, {T, KV, D});
    Value v = b.parameter("v_new", ElementType::f32, {T, KV, D});
    b.parameter("pos", ElementType::i64, {});
    b.result(b.op(Op::Attention, {q, k, v}, {{"k_variable", Attribute::String("k")}, {"v_variable", Attribute::String("v")},
                                          {"scale", Attribute::Float(scale)}}));
    ASSERT_TRUE(b.ok()) << b.status().message();
  }
  ASSERT_TRUE(verify(fused).ok()) << verify(fused).message();
  std::vector<std::map<std::string, Tensor>> calls;
  int64_t pos = 0;
  for (int64_t t : {3, 1, 2}) {
    calls.push_back({{"q", random_f32({t, H, D}, rng, -2, 2)}, {"k_new", random_f32({t, KV, D}, rng, -2, 2)},
                     {"v_new", random_f32({t, KV, D}, rng)}, {"pos", Tensor::scalar_i64(pos)}});
    pos += t;
  }
  expect_close(run_calls(fused, calls), run_calls(prim, calls));
}

TEST(FusedOps, AttentionStateIsVerified) {
  Model m;
  GraphBuilder b(m);
  Value q = b.parameter("q", ElementType::f32, {Dim::symbol("tokens"), 4, 6});
  Value k = b.parameter("k", ElementType::f32, {Dim::symbol("tokens"), 2, 6});
  b.result(b.op(Op::Attention, {q, k, k}, {{"k_variable", Attribute::String("kc")}, {"v_variable", Attribute::String("vc")},
                                        {"scale", Attribute::Float(0.5)}}));
  ASSERT_TRUE(b.ok());
  auto diags = verify_diagnostics(m);
  ASSERT_FALSE(diags.empty());
  EXPECT_EQ(diags[0].code, VerifyCode::UnknownVariable);
  ASSERT_TRUE(m.add_variable({"kc", ElementType::f32, {16, 2, 6}}).ok());
  ASSERT_TRUE(m.add_variable({"vc", ElementType::f32, {16, 3, 6}}).ok());  // wrong KV heads
  diags = verify_diagnostics(m);
  ASSERT_EQ(diags.size(), 1u);
  EXPECT_EQ(diags[0].code, VerifyCode::VariableTypeMismatch);
}

}  // namespace
}  // namespace ingot

namespace ingot {
namespace {

// The packed form (one qkv input, as a merged QKV projection produces) equals the three-input form.
TEST(FusedOps, PackedAttentionMatchesSeparateInputs) {
  std::mt19937 rng(6);
  const int64_t H = 4, KV = 2, D = 6, W = (H + 2 * KV) * D;
  const Dim T = Dim::symbol("tokens");
  AttrMap attrs = {{"k_variable", Attribute::String("k")}, {"v_variable", Attribute::String("v")}, {"scale", Attribute::Float(0.4)},
                   {"q_heads", Attribute::Int(H)}, {"kv_heads", Attribute::Int(KV)}, {"head_dim", Attribute::Int(D)}};
  auto declare = [&](Model& m) {
    ASSERT_TRUE(m.add_variable({"k", ElementType::f32, {16, KV, D}}).ok());
    ASSERT_TRUE(m.add_variable({"v", ElementType::f32, {16, KV, D}}).ok());
  };
  Model packed, separate;
  declare(packed);
  declare(separate);
  GraphBuilder bp(packed), bs(separate);
  bp.result(bp.op(Op::Attention, {bp.parameter("qkv", ElementType::f32, {T, W})}, attrs));
  Value qkv = bs.parameter("qkv", ElementType::f32, {T, W});
  Value q = bs.reshape(bs.slice(qkv, 1, 0, H * D), {T, H, D});
  Value k = bs.reshape(bs.slice(qkv, 1, H * D, (H + KV) * D), {T, KV, D});
  Value v = bs.reshape(bs.slice(qkv, 1, (H + KV) * D, W), {T, KV, D});
  bs.result(bs.reshape(bs.op(Op::Attention, {q, k, v}, attrs), {T, H * D}));
  ASSERT_TRUE(bp.ok() && bs.ok()) << bp.status().message() << bs.status().message();
  ASSERT_TRUE(verify(packed).ok()) << verify(packed).message();
  EXPECT_EQ(packed.results()[0]->outputs[0].str(), "f32[tokens, 24]");
  std::vector<std::map<std::string, Tensor>> calls = {{{"qkv", random_f32({3, W}, rng)}}, {{"qkv", random_f32({2, W}, rng)}}};
  auto a = run_calls(packed, calls), b = run_calls(separate, calls);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a, b);  // the same kernel on the same values: bit-identical
}

}  // namespace
}  // namespace ingot

namespace ingot {
namespace {

// Embedding: rows of a quantized table come back dequantized; an id outside the table is an error.
TEST(Embedding, LooksUpDequantizedRowsAndRejectsBadIds) {
  std::vector<float> rows(3 * 32);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = 0.01f * static_cast<float>(i) - 0.4f;
  auto buf = Buffer::allocate(3 * sizeof(BlockQ8_0));
  quantize_row_q8_0(rows.data(), reinterpret_cast<BlockQ8_0*>(buf->mutable_data()), 3 * 32);
  auto table = Tensor::from_buffer(ElementType::q8_0, {3, 32}, buf);
  ASSERT_TRUE(table.ok());
  Model m;
  GraphBuilder b(m);
  Value ids = b.parameter("ids", ElementType::i64, {Dim::symbol("tokens")});
  Value t = b.constant(std::make_shared<Tensor>(*table), "table");
  b.result(b.op(Op::Embedding, {t, ids}), "x");
  ASSERT_TRUE(b.status().ok()) << b.status().message();
  Evaluator ev(m);
  auto r = ev.run({{"ids", Tensor::from_i64({2}, {2, 0})}});
  ASSERT_TRUE(r.ok()) << r.message();
  std::vector<float> deq(3 * 32);
  dequantize_row(ElementType::q8_0, table->raw(), deq.data(), 3 * 32);
  const auto y = (*r)[0].to_f32_vector();
  ASSERT_EQ(y.size(), 64u);
  for (int k = 0; k < 32; ++k) {
    EXPECT_EQ(y[k], deq[64 + k]);
    EXPECT_EQ(y[32 + k], deq[k]);
  }
  auto bad = ev.run({{"ids", Tensor::from_i64({1}, {3})}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("token id 3 is outside the vocabulary of 3"), std::string::npos) << bad.message();
}

}  // namespace
}  // namespace ingot
