#include "ir/text.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "ir/builder.h"
#include "ir/evaluator.h"
#include "ir/model.h"
#include "ir/ops.h"
#include "ir/tensor.h"

namespace ingot {
namespace {

using ET = ElementType;
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();

// ---------------------------------------------------------------- building models

// A failed add_node is a bug in the test: throw so gtest reports it and moves on.
Node* add(Model& m, NodeSpec spec) {
  auto r = m.add_node(std::move(spec));
  if (!r.ok()) throw std::runtime_error("add_node: " + r.message());
  return *r;
}

Dim sym(const char* name) { return Dim::symbol(name); }

Node* param(Model& m, const std::string& name, ET type, Shape shape) {
  NodeSpec s;
  s.op = Op::Parameter;
  s.name = name;
  s.declared = {TensorType{type, std::move(shape)}};
  return add(m, std::move(s));
}

Node* constant(Model& m, const std::string& name, Tensor data) {
  NodeSpec s;
  s.op = Op::Constant;
  s.name = name;
  s.declared = {TensorType{data.type(), static_shape(data.shape())}};
  s.constant = std::make_shared<const Tensor>(std::move(data));
  return add(m, std::move(s));
}

Node* op(Model& m, Op kind, std::vector<Value> inputs, AttrMap attrs = {}, std::string name = "") {
  NodeSpec s;
  s.op = kind;
  s.inputs = std::move(inputs);
  s.attrs = std::move(attrs);
  s.name = std::move(name);
  return add(m, std::move(s));
}

Node* read_value(Model& m, const std::string& name, const std::string& var, TensorType type) {
  NodeSpec s;
  s.op = Op::ReadValue;
  s.name = name;
  s.attrs = {{"variable", Attribute::String(var)}};
  s.declared = {std::move(type)};
  return add(m, std::move(s));
}

Tensor values(ET type, std::vector<int64_t> shape, const std::vector<double>& vs) {
  return Tensor::from_values(type, std::move(shape), vs);
}

// print(parse(print(m))) == print(m), for the given options.
void expect_round_trip(const Model& m, const PrintOptions& opts = {}) {
  std::string text = print_model(m, opts);
  auto parsed = parse_model(text, "roundtrip");
  ASSERT_TRUE(parsed.ok()) << parsed.message() << "\n" << text;
  EXPECT_EQ(print_model(**parsed, opts), text);
}

void expect_round_trip_all_limits(const Model& m) {
  for (int64_t limit : {int64_t{0}, int64_t{1}, int64_t{16}, int64_t{100000}}) {
    SCOPED_TRACE("inline_constant_limit " + std::to_string(limit));
    PrintOptions opts;
    opts.inline_constant_limit = limit;
    expect_round_trip(m, opts);
  }
}

// A model with something of everything: state, symbolic dims, every attribute kind the op table
// uses, quoted names, inline and summarized constants.
std::unique_ptr<Model> rich_model() {
  auto m = std::make_unique<Model>("rich \"model\"\n");
  EXPECT_TRUE(m->add_variable({"kv.k.0", ET::f32, {2048, 4, 8}}).ok());
  EXPECT_TRUE(m->add_variable({"kv v\t1", ET::f16, {2048, 4, 8}}).ok());
  Node* tokens = param(*m, "tokens", ET::i64, {sym("tokens")});
  Node* x = param(*m, "x.in-0", ET::f32, {sym("tokens"), Dim(8)});
  Node* odd = param(*m, "odd dims", ET::f32,
                    {sym("past") + sym("tokens"), sym("tokens") * Dim(2) - Dim(1), Dim(3) - sym("tokens"), Dim::unknown()});
  Node* w = constant(*m, "w", values(ET::f32, {8}, {1.0, -0.0, 1e-5, 0.1, kInf, -kInf, kNaN, 3.4028234663852886e38}));
  Node* big = constant(*m, "big \"w\"", values(ET::f32, {4, 8}, std::vector<double>(32, 0.25)));
  constant(*m, "h", values(ET::f16, {3}, {0.1, -65504.0, 6e-8}));
  constant(*m, "bh", values(ET::bf16, {2}, {-1.5, 3e38}));
  constant(*m, "i64s", Tensor::from_i64({2}, {kInt64Min, kInt64Max}));
  constant(*m, "i32s", values(ET::i32, {2}, {-2147483648.0, 2147483647.0}));
  constant(*m, "i8s", values(ET::i8, {2}, {-128, 127}));
  constant(*m, "u8s", values(ET::u8, {2}, {0, 255}));
  constant(*m, "bools", values(ET::boolean, {2, 1}, {1, 0}));
  constant(*m, "scalar", values(ET::f32, {}, {2.5}));
  constant(*m, "empty", values(ET::f32, {0, 3}, {}));
  constant(*m, "q", Tensor::zeros(ET::q8_0, {2, 32}));

  Node* sum = op(*m, Op::Add, {x->out(), w->out()}, {}, "sum");
  Node* sm = op(*m, Op::Softmax, {sum->out()}, {{"axis", Attribute::Int(-1)}});
  Node* mean = op(*m, Op::ReduceMean, {sm->out()}, {{"axes", Attribute::Ints({1})}, {"keep_dims", Attribute::Bool(true)}});
  Node* gelu = op(*m, Op::Gelu, {mean->out()}, {{"approximation", Attribute::String("tanh")}});
  Node* half = op(*m, Op::Convert, {gelu->out()}, {{"to", Attribute::Type(ET::f16)}});
  Node* back = op(*m, Op::Convert, {half->out()}, {{"to", Attribute::Type(ET::f32)}});
  Node* bc = op(*m, Op::Broadcast, {back->out()}, {{"shape", Attribute::Dims({sym("tokens"), Dim(8)})}});
  Node* rs = op(*m, Op::Reshape, {bc->out()}, {{"shape", Attribute::Dims({sym("tokens"), Dim(2), Dim(-1)})}});
  Node* tr = op(*m, Op::Transpose, {rs->out()}, {{"perm", Attribute::Ints({2, 0, 1})}});
  Node* sl = op(*m, Op::Slice, {tr->out()},
                {{"begin", Attribute::Ints({1})}, {"end", Attribute::Ints({kInt64Max})}, {"axes", Attribute::Ints({1})}});
  op(*m, Op::Result, {sl->out()}, {}, "sliced");
  for (double step : {1e-5, -0.0, kInf, -kInf, kNaN, 1e300, 5e-324, -1.7976931348623157e308}) {
    Node* start = constant(*m, "start " + format_double(step), values(ET::f32, {}, {0.5}));
    Node* r = op(*m, Op::Range, {start->out()}, {{"length", Attribute::Dims({sym("tokens")})}, {"step", Attribute::Float(step)}});
    op(*m, Op::Result, {r->out()});
  }
  Node* k = read_value(*m, "k", "kv.k.0", TensorType{ET::f32, {sym("past"), Dim(4), Dim(8)}});
  Node* knew = op(*m, Op::Reshape, {x->out()}, {{"shape", Attribute::Dims({sym("tokens"), Dim(4), Dim(2)})}});
  Node* pad = op(*m, Op::Concat, {knew->out(), knew->out(), knew->out(), knew->out()}, {{"axis", Attribute::Int(2)}});
  Node* kc = op(*m, Op::Concat, {k->out(), pad->out()}, {{"axis", Attribute::Int(0)}}, "k cat");
  op(*m, Op::Assign, {kc->out()}, {{"variable", Attribute::String("kv.k.0")}}, "a0");
  Node* v = read_value(*m, "v", "kv v\t1", TensorType{ET::f16, {sym("past"), Dim(4), Dim(8)}});
  op(*m, Op::Assign, {v->out()}, {{"variable", Attribute::String("kv v\t1")}}, "a1");
  op(*m, Op::Result, {tokens->out()}, {}, "ids");
  op(*m, Op::Result, {odd->out()}, {}, "odd");
  op(*m, Op::Result, {big->out()}, {}, "\xc3\xa9t\xc3\xa9");
  return m;
}

// ---------------------------------------------------------------- printing

TEST(TextPrint, WritesTheDocumentedFormat) {
  Model m("demo");
  ASSERT_TRUE(m.add_variable({"kv.k.0", ET::f32, {2048, 4, 8}}).ok());
  Node* k = read_value(m, "k", "kv.k.0", TensorType{ET::f32, {sym("past"), Dim(4), Dim(8)}});
  Node* x = param(m, "x", ET::f32, {sym("tokens"), Dim(4), Dim(8)});
  Node* c = constant(m, "c", values(ET::f32, {8}, {1, 2, 3.5, -0.0, 1e-5, kInf, kNaN, -2}));
  constant(m, "w", values(ET::f32, {64, 64}, std::vector<double>(64 * 64, 0.0)));
  Node* sum = op(m, Op::Add, {x->out(), c->out()}, {}, "sum a");
  Node* kc = op(m, Op::Concat, {k->out(), sum->out()}, {{"axis", Attribute::Int(0)}}, "kc");
  op(m, Op::Assign, {kc->out()}, {{"variable", Attribute::String("kv.k.0")}}, "a0");
  op(m, Op::Result, {sum->out()}, {}, "out");
  std::string hash = m.find("w")->constant_content_hash();
  EXPECT_EQ(print_model(m),
            "model \"demo\" {\n"
            "  state \"kv.k.0\" : f32[2048, 4, 8]\n"
            "  %k = ReadValue() {variable = \"kv.k.0\"} : f32[past, 4, 8]\n"
            "  %x = Parameter() : f32[tokens, 4, 8]\n"
            "  %c = Constant() : f32[8] = [1.0, 2.0, 3.5, -0.0, 1e-05, inf, nan, -2.0]\n"
            "  %w = Constant() : f32[64, 64] = hash \"" + hash + "\"\n"
            "  %\"sum a\" = Add(%x, %c) : f32[tokens, 4, 8]\n"
            "  %kc = Concat(%k, %\"sum a\") {axis = 0} : f32[past+tokens, 4, 8]\n"
            "  %a0 = Assign(%kc) {variable = \"kv.k.0\"} : ()\n"
            "  %out = Result(%\"sum a\") : f32[tokens, 4, 8]\n"
            "}\n");
}

TEST(TextPrint, NodesComeInTopologicalOrder) {
  Model m("order");
  Node* a = param(m, "a", ET::f32, {Dim(2)});
  Node* n = op(m, Op::Negative, {a->out()}, {}, "n");
  Node* r = op(m, Op::Result, {n->out()}, {}, "r");
  // A pass rewires the Result to a node created after it.
  Node* e = op(m, Op::Exp, {a->out()}, {}, "e");
  r->inputs[0] = e->out();
  std::string text = print_model(m);
  EXPECT_LT(text.find("%e = Exp"), text.find("%r = Result(%e)")) << text;
  expect_round_trip(m);
}

TEST(TextPrint, BrokenGraphsStillPrint) {
  Model m("cycle");
  Node* a = param(m, "a", ET::f32, {Dim(2)});
  Node* x = op(m, Op::Exp, {a->out()}, {}, "x");
  Node* y = op(m, Op::Exp, {x->out()}, {}, "y");
  x->inputs[0] = y->out();  // x <-> y
  std::string text = print_model(m);
  EXPECT_NE(text.find("%x = Exp(%y)"), std::string::npos) << text;
  EXPECT_NE(text.find("%y = Exp(%x)"), std::string::npos) << text;
  auto parsed = parse_model(text);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.message(), "<input>:3:12: value %y is used before it is defined");
  EXPECT_NE(export_dot(m).find("n1 -> n2"), std::string::npos);
  EXPECT_NE(export_json(m).find("\"cycle\""), std::string::npos);
}

TEST(TextPrint, MultipleOutputsAndOutputIndices) {
  // No op in the table has two outputs yet: give one a second output by hand (as a pass might).
  Model m("multi");
  Node* a = param(m, "a", ET::f32, {Dim(3)});
  Node* two = op(m, Op::Exp, {a->out()}, {}, "two");
  two->outputs.push_back(TensorType{ET::f16, {sym("tokens")}});
  Node* user = op(m, Op::Negative, {two->out(1)}, {}, "user");
  op(m, Op::Result, {user->out()}, {}, "r");
  std::string text = print_model(m);
  EXPECT_NE(text.find("  %two = Exp(%a) : (f32[3], f16[tokens])\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  %user = Negative(%two:1) : f16[tokens]\n"), std::string::npos) << text;
  auto j = nlohmann::json::parse(export_json(m));
  EXPECT_EQ(j["nodes"][2]["inputs"], nlohmann::json({"two:1"}));
  EXPECT_EQ(j["nodes"][1]["outputs"].size(), 2u);
  EXPECT_NE(export_dot(m).find("n1 -> n2 [label=\"1: f16[tokens]\"]"), std::string::npos) << export_dot(m);
  // Exp infers one output, so the hand-made second one is reported at the output list.
  auto parsed = parse_model(text);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.message(), "<input>:3:20: declared (f32[3], f16[tokens]) but inference gives f32[3]");
}

TEST(TextPrint, SymbolicDimsPrintAsDimStr) {
  Model m("dims");
  param(m, "p", ET::f32,
        {sym("past") + sym("tokens"), sym("tokens") * Dim(2) - Dim(1), Dim(3) - sym("tokens"), Dim::unknown(), Dim(-1)});
  EXPECT_NE(print_model(m).find("%p = Parameter() : f32[past+tokens, 2*tokens-1, -tokens+3, ?, -1]"),
            std::string::npos)
      << print_model(m);
  expect_round_trip(m);
}

// ---------------------------------------------------------------- round trips

TEST(TextRoundTrip, RichModel) {
  auto m = rich_model();
  expect_round_trip_all_limits(*m);
}

TEST(TextRoundTrip, EmptyModel) {
  Model m("");
  EXPECT_EQ(print_model(m), "model \"\" {\n}\n");
  expect_round_trip(m);
}

TEST(TextRoundTrip, ParsedModelKeepsEverything) {
  auto m = rich_model();
  auto parsed = parse_model(print_model(*m));
  ASSERT_TRUE(parsed.ok()) << parsed.message();
  const Model& p = **parsed;
  EXPECT_EQ(p.name(), m->name());
  EXPECT_EQ(p.variables(), m->variables());
  ASSERT_EQ(p.nodes().size(), m->nodes().size());
  for (auto& n : m->nodes()) {
    const Node* q = p.find(n->name);
    ASSERT_NE(q, nullptr) << n->name;
    EXPECT_EQ(q->op_name(), n->op_name());
    // Compared as text: a NaN Float attribute is not equal to itself.
    ASSERT_EQ(q->attrs.size(), n->attrs.size()) << n->name;
    for (auto& [key, value] : n->attrs) EXPECT_EQ(q->attr(key).str(), value.str()) << n->name << " " << key;
    EXPECT_EQ(q->outputs, n->outputs) << n->name;
    ASSERT_EQ(q->inputs.size(), n->inputs.size());
    for (size_t i = 0; i < n->inputs.size(); ++i) EXPECT_EQ(q->inputs[i].node->name, n->inputs[i].node->name);
    if (n->is(Op::Constant)) EXPECT_EQ(q->constant_content_hash(), n->constant_content_hash()) << n->name;
  }
}

TEST(TextRoundTrip, InlineConstantsKeepTheirBits) {
  // Awkward values of every plain type: the parsed data must be byte-identical.
  std::vector<double> floats = {0.1, 1.0 / 3, -0.0, 1e-5, 1e-40, 1.4e-45, -3.4028234663852886e38, kInf, -kInf, 65504, 6e-8};
  Model m("bits");
  for (ET t : {ET::f32, ET::f16, ET::bf16})
    constant(m, std::string(type_name(t)), values(t, {static_cast<int64_t>(floats.size())}, floats));
  constant(m, "i64", Tensor::from_i64({3}, {kInt64Min, -1, kInt64Max}));
  constant(m, "i32", values(ET::i32, {3}, {-2147483648.0, 0, 2147483647.0}));
  constant(m, "i8", values(ET::i8, {3}, {-128, 0, 127}));
  constant(m, "u8", values(ET::u8, {3}, {0, 1, 255}));
  constant(m, "bool", values(ET::boolean, {3}, {1, 0, 1}));
  PrintOptions opts;
  opts.inline_constant_limit = 64;
  auto parsed = parse_model(print_model(m, opts));
  ASSERT_TRUE(parsed.ok()) << parsed.message();
  for (auto& n : m.nodes()) {
    const Node* q = (*parsed)->find(n->name);
    ASSERT_TRUE(q && q->constant && q->constant->defined()) << n->name;
    EXPECT_EQ(q->constant_content_hash(), n->constant_content_hash()) << n->name << "\n" << print_model(m, opts);
  }
}

TEST(TextRoundTrip, F32AcceptsHandWrittenShortestFloats) {
  // "0.1" must give the float nearest to 0.1, like the printed "0.10000000149011612" does.
  auto parsed = parse_model(
      "model \"m\" {\n  %c = Constant() : f32[2] = [0.1, 0.10000000149011612]\n}\n");
  ASSERT_TRUE(parsed.ok()) << parsed.message();
  const Tensor& t = *(*parsed)->find("c")->constant;
  EXPECT_EQ(std::bit_cast<uint32_t>(static_cast<float>(t.get_f(0))), std::bit_cast<uint32_t>(0.1f));
  EXPECT_EQ(std::bit_cast<uint32_t>(static_cast<float>(t.get_f(1))), std::bit_cast<uint32_t>(0.1f));
}

TEST(TextRoundTrip, SummarizedConstantsAreOpaque) {
  Model m("opaque");
  constant(m, "w", values(ET::f32, {4, 8}, std::vector<double>(32, 1.5)));
  PrintOptions opts;
  opts.inline_constant_limit = 0;
  auto parsed = parse_model(print_model(m, opts));
  ASSERT_TRUE(parsed.ok()) << parsed.message();
  const Node* w = (*parsed)->find("w");
  EXPECT_EQ(w->constant, nullptr);
  EXPECT_EQ(w->constant_hash, m.find("w")->constant_content_hash());
  EXPECT_EQ(w->constant_content_hash(), m.find("w")->constant_content_hash());
  // The opaque model prints the same hash again, even with a high inline limit.
  PrintOptions all;
  all.inline_constant_limit = 1000;
  EXPECT_EQ(print_model(**parsed, all), print_model(m, opts));
}

TEST(TextRoundTrip, AcceptsCommentsWhitespaceAndOneLine) {
  const char* text =
      "# a comment\n"
      "model \"m\" { # trailing comment\n"
      "  %a = Parameter() : f32[tokens, 2]   %b = Add(%a:0,%a):f32[tokens,2]\n"
      "  %c = Constant():i64[2]=[-1,2] %r = Result(%b) : f32[tokens, 2]}  # done\n";
  auto parsed = parse_model(text);
  ASSERT_TRUE(parsed.ok()) << parsed.message();
  EXPECT_EQ(print_model(**parsed),
            "model \"m\" {\n"
            "  %a = Parameter() : f32[tokens, 2]\n"
            "  %b = Add(%a, %a) : f32[tokens, 2]\n"
            "  %c = Constant() : i64[2] = [-1, 2]\n"
            "  %r = Result(%b) : f32[tokens, 2]\n"
            "}\n");
}

TEST(TextRoundTrip, StringEscapes) {
  auto parsed = parse_model("model \"a\\\"b\\\\c\\nd\\te\\x01\\x7F\\xff\" {\n  state \"s\\x41\" : f32[1]\n}\n");
  ASSERT_TRUE(parsed.ok()) << parsed.message();
  EXPECT_EQ((*parsed)->name(), std::string("a\"b\\c\nd\te\x01\x7f\xff"));
  EXPECT_EQ((*parsed)->variables()[0].name, "sA");
  expect_round_trip(**parsed);
}

// ---------------------------------------------------------------- randomized graphs

class RandomGraph {
 public:
  explicit RandomGraph(uint32_t seed) : rng_(seed), m_(std::make_unique<Model>("random " + std::to_string(seed))) {}

  std::unique_ptr<Model> build() {
    int params = 1 + pick(2);
    for (int i = 0; i < params; ++i) remember(param(*m_, fresh_name(), pick_float_type(), random_shape()));
    for (int i = 0; i < 3; ++i) remember(random_constant());
    int steps = 8 + pick(16);
    for (int i = 0; i < steps; ++i) try_random_op();
    int results = 1 + pick(3);
    for (int i = 0; i < results; ++i) op(*m_, Op::Result, {values_[pick(values_.size())]}, {}, fresh_name());
    return std::move(m_);
  }

 private:
  int pick(size_t n) { return static_cast<int>(rng_() % n); }
  bool coin() { return rng_() % 2 == 0; }

  std::string fresh_name() {
    static const char* kStyles[] = {"n", "t.", "x-", "with space ", "q\"", "v_"};
    return kStyles[pick(6)] + std::to_string(counter_++);
  }

  ET pick_float_type() { return coin() ? ET::f32 : ET::f16; }

  Dim random_dim() {
    switch (pick(8)) {
      case 0: return sym("tokens");
      case 1: return sym("batch");
      case 2: return sym("tokens") * Dim(2);
      case 3: return sym("past") + sym("tokens");
      default: return Dim(1 + pick(6));
    }
  }

  Shape random_shape() {
    Shape s;
    int rank = 1 + pick(3);
    for (int i = 0; i < rank; ++i) s.push_back(random_dim());
    return s;
  }

  double random_float() {
    switch (pick(10)) {
      case 0: return -0.0;
      case 1: return kInf;
      case 2: return kNaN;
      case 3: return 1e-5;
      default: return std::uniform_real_distribution<double>(-100, 100)(rng_);
    }
  }

  Node* random_constant() {
    static const ET kTypes[] = {ET::f32, ET::f16, ET::bf16, ET::i64, ET::i32, ET::i8, ET::u8, ET::boolean};
    ET t = kTypes[pick(8)];
    std::vector<int64_t> shape;
    int rank = pick(3);
    for (int i = 0; i < rank; ++i) shape.push_back(pick(6));
    Tensor data = Tensor::zeros(t, shape);
    for (int64_t i = 0; i < data.numel(); ++i) {
      if (type_info(t).is_float) data.set_f(i, random_float());
      else data.set_i(i, static_cast<int64_t>(rng_()) - (int64_t{1} << 31));
    }
    return constant(*m_, fresh_name(), std::move(data));
  }

  void remember(Node* n) {
    for (int i = 0; i < static_cast<int>(n->outputs.size()); ++i) values_.push_back(n->out(i));
  }

  Value any_value() { return values_[pick(values_.size())]; }

  // Tries one random op; shape inference rejects the ones that do not fit, which is fine.
  void try_random_op() {
    Value x = any_value();
    int rank = static_cast<int>(x.type().shape.size());
    NodeSpec s;
    s.name = fresh_name();
    s.inputs = {x};
    static const Op kUnary[] = {Op::Exp, Op::Negative, Op::Abs, Op::Sigmoid, Op::Tanh, Op::Sqrt};
    static const Op kBinary[] = {Op::Add, Op::Multiply, Op::Subtract, Op::Maximum};
    switch (pick(9)) {
      case 0: s.op = kUnary[pick(6)]; break;
      case 1:
        s.op = kBinary[pick(4)];
        s.inputs.push_back(coin() ? x : any_value());
        break;
      case 2: {
        s.op = Op::Transpose;
        std::vector<int64_t> perm(static_cast<size_t>(rank));
        for (int i = 0; i < rank; ++i) perm[static_cast<size_t>(i)] = i;
        std::shuffle(perm.begin(), perm.end(), rng_);
        s.attrs["perm"] = Attribute::Ints(perm);
        break;
      }
      case 3: {
        s.op = Op::Reshape;
        Shape target = coin() ? Shape{Dim(-1)} : Shape{random_dim(), Dim(-1)};
        s.attrs["shape"] = Attribute::Dims(target);
        break;
      }
      case 4:
        s.op = Op::Concat;
        s.inputs.push_back(coin() ? x : any_value());
        s.attrs["axis"] = Attribute::Int(rank ? pick(static_cast<size_t>(rank)) - (coin() ? rank : 0) : 0);
        break;
      case 5:
        s.op = Op::Softmax;
        s.attrs["axis"] = Attribute::Int(-1 - (rank ? pick(static_cast<size_t>(rank)) : 0));
        break;
      case 6:
        s.op = Op::ReduceSum;
        s.attrs["axes"] = Attribute::Ints({rank ? pick(static_cast<size_t>(rank)) : 0});
        s.attrs["keep_dims"] = Attribute::Bool(coin());
        break;
      case 7:
        s.op = Op::Convert;
        s.attrs["to"] = Attribute::Type(coin() ? ET::f32 : ET::bf16);
        break;
      case 8:
        s.op = Op::Slice;
        s.attrs["begin"] = Attribute::Ints({pick(3)});
        s.attrs["end"] = Attribute::Ints({coin() ? kInt64Max : -1});
        s.attrs["axes"] = Attribute::Ints({rank ? pick(static_cast<size_t>(rank)) : 0});
        break;
    }
    auto n = m_->add_node(std::move(s));
    if (n.ok()) remember(*n);
  }

  std::mt19937 rng_;
  std::unique_ptr<Model> m_;
  std::vector<Value> values_;
  int counter_ = 0;
};

TEST(TextRoundTrip, RandomGraphs) {
  for (uint32_t seed = 1; seed <= 50; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    auto m = RandomGraph(seed).build();
    EXPECT_GE(m->nodes().size(), 6u);
    expect_round_trip_all_limits(*m);
  }
}

// ---------------------------------------------------------------- errors

struct BadText {
  const char* what;
  std::string text;
  std::string where;    // "line:col"
  std::string message;  // a substring of the message after "line:col: "
};

std::string base_with(const std::string& lines) {
  return "model \"m\" {\n"
         "  %a = Parameter() : f32[3]\n" +
         lines + "}\n";
}

TEST(TextParseErrors, PointAtTheOffendingToken) {
  const std::vector<BadText> cases = {
      {"unknown op", base_with("  %b = Foo(%a) : f32[3]\n"), "3:8", "unknown op 'Foo'"},
      {"unknown value", base_with("  %b = Exp(%nope) : f32[3]\n"), "3:12", "unknown value %nope"},
      {"used before defined", base_with("  %b = Exp(%c) : f32[3]\n  %c = Exp(%a) : f32[3]\n"), "3:12",
       "value %c is used before it is defined"},
      {"bad type name", base_with("  %b = Exp(%a) : f33[3]\n"), "3:18", "unknown element type 'f33'"},
      {"unterminated string", "model \"m {\n}\n", "1:7", "unterminated string"},
      {"unterminated name", base_with("  %\"b = Exp(%a) : f32[3]\n"), "3:3", "unterminated string"},
      {"bad escape", "model \"a\\qb\" {\n}\n", "1:9", "unknown escape"},
      {"bad hex escape", "model \"a\\x4\" {\n}\n", "1:9", "two hex digits"},
      {"missing ')'", base_with("  %b = Add(%a, %a : f32[3]\n"), "3:19", "expected ',' or ')', got ':'"},
      {"wrong attribute kind", base_with("  %b = Concat(%a, %a) {axis = \"0\"} : f32[6]\n"), "3:31",
       "expected an integer, got a string (attribute 'axis' of Concat is int)"},
      {"float for int attribute", base_with("  %b = Concat(%a) {axis = 1.5} : f32[3]\n"), "3:27", "expected an integer"},
      {"unknown attribute", base_with("  %b = Exp(%a) {alpha = 1.0} : f32[3]\n"), "3:17", "Exp has no attribute 'alpha'"},
      {"attribute twice", base_with("  %b = Concat(%a) {axis = 0, axis = 0} : f32[3]\n"), "3:30", "given twice"},
      {"missing attribute", base_with("  %b = Transpose(%a) : f32[3]\n"), "3:3", "requires attribute 'perm'"},
      {"declared type mismatch", base_with("  %b = Add(%a, %a) : f32[4]\n"), "3:22",
       "declared f32[4] but inference gives f32[3]"},
      {"declared element type mismatch", base_with("  %b = Equal(%a, %a) : f32[3]\n"), "3:24",
       "declared f32[3] but inference gives bool[3]"},
      {"output count mismatch", base_with("  %b = Exp(%a) : (f32[3], f32[3])\n"), "3:18",
       "declared (f32[3], f32[3]) but inference gives f32[3]"},
      {"duplicate name", base_with("  %a = Exp(%a) : f32[3]\n"), "3:3", "duplicate node name %a"},
      {"duplicate state", "model \"m\" {\n  state \"s\" : f32[1]\n  state \"s\" : f32[2]\n}\n", "3:3",
       "duplicate state variable 's'"},
      {"bad dim: trailing '*'", base_with("  %b = Parameter() : f32[2*]\n"), "3:28", "expected a symbol after '*'"},
      {"bad dim: trailing '+'", base_with("  %b = Parameter() : f32[tokens+]\n"), "3:33", "expected a dimension"},
      {"bad dim: int*int", base_with("  %b = Parameter() : f32[3*4]\n"), "3:28", "expected a symbol after '*'"},
      {"bad dim: sym*sym", base_with("  %b = Parameter() : f32[a*b]\n"), "3:27", "expected ',' or ']'"},
      {"bad dim: overflow", base_with("  %b = Parameter() : f32[99999999999999999999]\n"), "3:26", "does not fit"},
      {"bad dim: sum overflows", base_with("  %b = Parameter() : f32[9223372036854775807+1]\n"), "3:26", "out of range"},
      {"bad dim: coefficient overflows", base_with("  %b = Parameter() : f32[-x-9223372036854775807*x]\n"), "3:26",
       "coefficient of 'x' is out of range"},
      {"int attribute overflow", base_with("  %b = Concat(%a) {axis = 9223372036854775808} : f32[3]\n"), "3:27",
       "does not fit in 64 bits"},
      {"float out of range", base_with("  %c = Constant() : f32[1] = [1e39]\n"), "3:31", "out of range for f32"},
      {"wrong output index", base_with("  %b = Exp(%a:1) : f32[3]\n"), "3:15", "%a has 1 output(s), no output 1"},
      {"use of a node without outputs",
       "model \"m\" {\n  %a = Parameter() : f32[3]\n  %s = Assign(%a) {variable = \"v\"} : ()\n  %r = Result(%s) : f32[3]\n}\n",
       "4:15", "%s has no outputs"},
      {"too many inputs", base_with("  %b = Exp(%a, %a) : f32[3]\n"), "3:3", "Exp takes 1 inputs, got 2"},
      {"constant value count", base_with("  %c = Constant() : f32[3] = [1.0, 2.0]\n"), "3:30",
       "constant has 2 values, f32[3] needs 3"},
      {"constant without values", base_with("  %c = Constant() : f32[3]\n"), "4:1", "expected '='"},
      {"constant symbolic shape", base_with("  %c = Constant() : f32[n] = [1.0]\n"), "3:21", "static shape"},
      {"constant quantized inline", base_with("  %c = Constant() : q8_0[32] = [1.0]\n"), "3:21", "plain element type"},
      {"u8 value out of range", base_with("  %c = Constant() : u8[2] = [1, 256]\n"), "3:33", "256 does not fit u8"},
      {"bool value", base_with("  %c = Constant() : bool[1] = [1]\n"), "3:32", "expected true or false"},
      {"int constant with a float", base_with("  %c = Constant() : i32[1] = [1.5]\n"), "3:31", "expected an integer"},
      {"empty hash", base_with("  %c = Constant() : f32[1] = hash \"\"\n"), "3:35", "empty content hash"},
      {"state with symbolic shape", "model \"m\" {\n  state \"s\" : f32[n]\n}\n", "2:15", "static maximum shape"},
      {"unexpected character", base_with("  %b = Exp(%a) @ f32[3]\n"), "3:16", "unexpected character '@'"},
      {"missing name after %", base_with("  % = Exp(%a) : f32[3]\n"), "3:3", "expected a name after '%'"},
      {"empty quoted name", base_with("  %\"\" = Exp(%a) : f32[3]\n"), "3:3", "empty node name"},
      {"text after the model", base_with("") + "model \"n\" {\n}\n", "4:1", "unexpected text after the closing '}'"},
      {"not a model", "graph \"m\" {}\n", "1:1", "expected 'model', got 'graph'"},
      {"empty input", "", "1:1", "expected 'model', got the end of the input"},
      {"garbage declaration", base_with("  Exp(%a)\n"), "3:3", "expected a node"},
  };
  for (const BadText& c : cases) {
    SCOPED_TRACE(c.what);
    auto parsed = parse_model(c.text, "bad.ir");
    ASSERT_FALSE(parsed.ok()) << c.text;
    const std::string prefix = "bad.ir:" + c.where + ": ";
    EXPECT_EQ(parsed.message().substr(0, prefix.size()), prefix) << parsed.message();
    EXPECT_NE(parsed.message().find(c.message), std::string::npos) << parsed.message();
  }
}

TEST(TextParseErrors, TruncatedTextFailsCleanly) {
  auto m = rich_model();
  std::string text = print_model(*m);
  // Every proper prefix that stops before the closing brace is incomplete. A stride of 3 (prime
  // to most token lengths) cuts inside every kind of token while keeping sanitizer builds quick.
  size_t close = text.rfind('}');
  for (size_t cut = 0; cut <= close; cut += 3) {
    auto parsed = parse_model(std::string_view(text).substr(0, cut), "cut.ir");
    ASSERT_FALSE(parsed.ok()) << "cut at " << cut;
    EXPECT_EQ(parsed.message().rfind("cut.ir:", 0), 0u) << parsed.message();
  }
  EXPECT_TRUE(parse_model(std::string_view(text).substr(0, close + 1)).ok());
}

TEST(TextParseErrors, MutatedTextNeverCrashes) {
  auto m = rich_model();
  const std::string text = print_model(*m);
  const std::string interesting = "%\"\\:,()[]{}=+-*?#0123456789e.x \n\t\x01\xff";
  std::mt19937 rng(1234);
  int accepted = 0;
  for (int i = 0; i < 1500; ++i) {
    std::string t = text;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !t.empty(); ++e) {
      size_t at = rng() % t.size();
      char c = interesting[rng() % interesting.size()];
      switch (rng() % 4) {
        case 0: t[at] = c; break;
        case 1: t.insert(t.begin() + static_cast<std::ptrdiff_t>(at), c); break;
        case 2: t.erase(at, 1 + rng() % 8); break;
        case 3: t.insert(at, t.substr(rng() % t.size(), rng() % 40)); break;
      }
    }
    auto parsed = parse_model(t, "mut.ir");
    if (!parsed.ok()) {
      EXPECT_EQ(parsed.message().rfind("mut.ir:", 0), 0u) << parsed.message();
      continue;
    }
    ++accepted;
    expect_round_trip(**parsed);
  }
  EXPECT_GT(accepted, 0);
}

// ---------------------------------------------------------------- evaluation

void expect_same_tensors(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].type(), b[i].type());
    EXPECT_EQ(a[i].shape(), b[i].shape());
    EXPECT_EQ(a[i].content_hash(), b[i].content_hash()) << "result " << i;
  }
}

TEST(TextEvaluate, ParsedModelComputesTheSame) {
  Model m("eval");
  ASSERT_TRUE(m.add_variable({"kv", ET::f32, {64, 4}}).ok());
  Node* x = param(m, "x", ET::f32, {sym("tokens"), Dim(4)});
  Node* scale = constant(m, "scale", values(ET::f32, {4}, {0.1, -2.5, 1e-5, 3.0}));
  Node* bias = constant(m, "bias h", values(ET::f16, {4}, {0.333, -1.0, 6e-8, 100.0}));
  Node* y = op(m, Op::Multiply, {x->out(), scale->out()});
  Node* yh = op(m, Op::Convert, {y->out()}, {{"to", Attribute::Type(ET::f16)}});
  Node* z = op(m, Op::Add, {yh->out(), bias->out()});
  Node* zf = op(m, Op::Convert, {z->out()}, {{"to", Attribute::Type(ET::f32)}});
  Node* s = op(m, Op::Softmax, {zf->out()}, {{"axis", Attribute::Int(-1)}});
  Node* k = read_value(m, "k", "kv", TensorType{ET::f32, {sym("past"), Dim(4)}});
  Node* kc = op(m, Op::Concat, {k->out(), s->out()}, {{"axis", Attribute::Int(0)}});
  op(m, Op::Assign, {kc->out()}, {{"variable", Attribute::String("kv")}});
  Node* ids = constant(m, "ids", Tensor::from_i64({3}, {2, -7, 40}));
  Node* idx2 = op(m, Op::Multiply, {ids->out(), ids->out()});
  op(m, Op::Result, {s->out()}, {}, "probs");
  op(m, Op::Result, {kc->out()}, {}, "cache");
  op(m, Op::Result, {idx2->out()}, {}, "squares");

  auto parsed = parse_model(print_model(m));
  ASSERT_TRUE(parsed.ok()) << parsed.message();
  Evaluator original(m), reparsed(**parsed);
  // Start with a non-empty cache (concatenating onto an empty one is not what this tests).
  std::map<std::string, Tensor> state = {{"kv", Tensor::from_f32({1, 4}, {0.5f, -1.0f, 2.0f, 0.0f})}};
  original.set_state(state);
  reparsed.set_state(state);
  for (int call = 0; call < 3; ++call) {
    std::vector<float> xs;
    for (int i = 0; i < 8; ++i) xs.push_back(static_cast<float>(i * 0.37 - call));
    std::map<std::string, Tensor> inputs = {{"x", Tensor::from_f32({2, 4}, xs)}};
    auto a = original.run(inputs);
    auto b = reparsed.run(inputs);
    ASSERT_TRUE(a.ok()) << a.message();
    ASSERT_TRUE(b.ok()) << b.message();
    expect_same_tensors(*a, *b);
  }
}

// ---------------------------------------------------------------- JSON

TEST(TextJson, DescribesTheModel) {
  Model m("json");
  ASSERT_TRUE(m.add_variable({"kv", ET::f16, {16, 2}}).ok());
  Node* x = param(m, "x", ET::f32, {Dim(64), sym("tokens")});
  Node* c = constant(m, "c", values(ET::f32, {2}, {1.5, kInf}));
  Node* w = constant(m, "w", values(ET::i32, {4, 8}, std::vector<double>(32, 7)));
  Node* st = constant(m, "start", values(ET::f32, {}, {0}));
  Node* r = op(m, Op::Range, {st->out()}, {{"length", Attribute::Dims({sym("tokens") + Dim(1)})}, {"step", Attribute::Float(-kInf)}}, "r");
  Node* t = op(m, Op::Transpose, {x->out()}, {{"perm", Attribute::Ints({1, 0})}}, "t");
  Node* red = op(m, Op::ReduceMax, {t->out()}, {{"axes", Attribute::Ints({0})}}, "red");
  Node* cv = op(m, Op::Convert, {red->out()}, {{"to", Attribute::Type(ET::bf16)}}, "cv");
  Node* g = op(m, Op::Gelu, {x->out()}, {}, "g");
  op(m, Op::Result, {cv->out()}, {}, "out");
  op(m, Op::Result, {r->out()}, {}, "out2");
  op(m, Op::Result, {g->out()}, {}, "out3");
  op(m, Op::Result, {c->out()}, {}, "out4");
  op(m, Op::Result, {w->out()}, {}, "out5");

  auto j = nlohmann::json::parse(export_json(m));
  EXPECT_EQ(j["name"], "json");
  ASSERT_EQ(j["states"].size(), 1u);
  EXPECT_EQ(j["states"][0]["name"], "kv");
  EXPECT_EQ(j["states"][0]["type"], "f16");
  EXPECT_EQ(j["states"][0]["max_shape"], nlohmann::json({16, 2}));

  std::map<std::string, nlohmann::json> nodes;
  for (auto& n : j["nodes"]) nodes[n["name"].get<std::string>()] = n;
  ASSERT_EQ(nodes.size(), m.nodes().size());
  EXPECT_EQ(nodes["x"]["op"], "Parameter");
  EXPECT_EQ(nodes["x"]["outputs"][0]["type"], "f32");
  EXPECT_EQ(nodes["x"]["outputs"][0]["shape"], nlohmann::json::parse(R"([64, "tokens"])"));
  EXPECT_EQ(nodes["t"]["inputs"], nlohmann::json({"x"}));
  EXPECT_EQ(nodes["t"]["attrs"]["perm"], nlohmann::json({1, 0}));
  EXPECT_EQ(nodes["red"]["attrs"]["keep_dims"], false);
  EXPECT_EQ(nodes["cv"]["attrs"]["to"], "bf16");
  EXPECT_EQ(nodes["g"]["attrs"]["approximation"], "erf");
  EXPECT_EQ(nodes["r"]["attrs"]["length"], nlohmann::json({"tokens+1"}));
  EXPECT_EQ(nodes["r"]["attrs"]["step"], "-inf");
  EXPECT_EQ(nodes["r"]["outputs"][0]["shape"], nlohmann::json({"tokens+1"}));

  EXPECT_EQ(nodes["c"]["constant"]["hash"], m.find("c")->constant_content_hash());
  EXPECT_EQ(nodes["c"]["constant"]["bytes"], 8);
  EXPECT_EQ(nodes["c"]["constant"]["values"], nlohmann::json::parse(R"([1.5, "inf"])"));
  EXPECT_EQ(nodes["w"]["constant"]["bytes"], 128);
  EXPECT_FALSE(nodes["w"]["constant"].contains("values"));  // 32 > the default limit of 16
  EXPECT_FALSE(nodes["x"].contains("constant"));

  PrintOptions all;
  all.inline_constant_limit = 100;
  auto j2 = nlohmann::json::parse(export_json(m, all));
  for (auto& n : j2["nodes"])
    if (n["name"] == "w") EXPECT_EQ(n["constant"]["values"], nlohmann::json(std::vector<int>(32, 7)));

  // Opaque constants report the size their data would have.
  auto parsed = parse_model(print_model(m, PrintOptions{0}));
  ASSERT_TRUE(parsed.ok()) << parsed.message();
  auto j3 = nlohmann::json::parse(export_json(**parsed));
  for (auto& n : j3["nodes"]) {
    if (n["name"] != "w") continue;
    EXPECT_EQ(n["constant"]["bytes"], 128);
    EXPECT_EQ(n["constant"]["hash"], m.find("w")->constant_content_hash());
  }
}

TEST(TextJson, SurvivesArbitraryBytesInNames) {
  Model m(std::string("bad \xff utf8"));
  param(m, std::string("p\xc3"), ET::f32, {Dim(1)});
  auto j = nlohmann::json::parse(export_json(m));
  EXPECT_EQ(j["nodes"].size(), 1u);
}

TEST(TextJson, RichModelIsValidJson) {
  auto m = rich_model();
  auto j = nlohmann::json::parse(export_json(*m));
  EXPECT_EQ(j["nodes"].size(), m->nodes().size());
  EXPECT_EQ(j["states"].size(), 2u);
}

// ---------------------------------------------------------------- DOT

TEST(TextDot, DrawsNodesEdgesAndStateFlow) {
  Model m("g\"raph");
  ASSERT_TRUE(m.add_variable({"kv", ET::f32, {16, 2}}).ok());
  Node* x = param(m, "x", ET::f32, {sym("tokens"), Dim(2)});
  Node* k = read_value(m, "k", "kv", TensorType{ET::f32, {sym("past"), Dim(2)}});
  Node* c = constant(m, "c\"q\\", values(ET::f32, {2}, {1, 2}));
  Node* y = op(m, Op::Add, {x->out(), c->out()}, {}, "y");
  Node* kc = op(m, Op::Concat, {k->out(), y->out()}, {{"axis", Attribute::Int(0)}}, "kc");
  op(m, Op::Assign, {kc->out()}, {{"variable", Attribute::String("kv")}}, "a");
  op(m, Op::Result, {y->out()}, {}, "out");
  std::string dot = export_dot(m);
  auto has = [&](const std::string& s) { EXPECT_NE(dot.find(s), std::string::npos) << s << "\n" << dot; };
  has("digraph \"g\\\"raph\" {\n");
  has("  n0 [label=\"x\\nParameter\\nf32[tokens, 2]\", shape=invhouse");
  has("  n1 [label=\"k\\nReadValue \\\"kv\\\"\\nf32[past, 2]\", shape=cylinder");
  has("  n2 [label=\"c\\\"q\\\\\\nConstant\\nf32[2]\", shape=box, style=filled, fillcolor=lightgray");
  has("  n3 [label=\"y\\nAdd\\nf32[tokens, 2]\", shape=box, style=rounded");
  has("  n5 [label=\"a\\nAssign \\\"kv\\\"\", shape=cylinder");
  has("  n6 [label=\"out\\nResult\\nf32[tokens, 2]\", shape=house");
  has("  n0 -> n3 [label=\"f32[tokens, 2]\"];\n");
  has("  n2 -> n3 [label=\"f32[2]\"];\n");
  has("  n1 -> n4 [label=\"f32[past, 2]\"];\n");
  has("  n4 -> n5 [label=\"f32[past+tokens, 2]\"];\n");
  has("  n5 -> n1 [style=dashed, constraint=false, label=\"kv\"];\n");
  EXPECT_EQ(dot.substr(dot.size() - 2), "}\n");
}

}  // namespace
}  // namespace ingot

namespace ingot {
namespace {

// Inline f32 constants print as the shortest decimal that reads back to the same float, including
// subnormals and the extremes, and f16/bf16 values survive through their float value.
TEST(TextRoundTrip, InlineFloatsKeepTheirBitsAtTheExtremes) {
  std::vector<float> v = {std::numeric_limits<float>::denorm_min(), -std::numeric_limits<float>::denorm_min(),
                          std::numeric_limits<float>::min(), std::numeric_limits<float>::max(),
                          -std::numeric_limits<float>::max(), 0.1f, 1.0f / 3.0f, 16777217.0f};
  Model m("extremes");
  GraphBuilder b(m);
  Value c = b.constant(std::make_shared<Tensor>(Tensor::from_f32({8}, v)), "c");
  Value h = b.constant(std::make_shared<Tensor>(Tensor::from_values(ElementType::f16, {3}, {65504.0, 5.960464477539063e-08, 0.1})), "h");
  Value bf = b.constant(std::make_shared<Tensor>(Tensor::from_values(ElementType::bf16, {2}, {3.0e38, 0.1})), "bf");
  b.result(c, "out");
  b.result(h, "out_h");
  b.result(bf, "out_bf");
  ASSERT_TRUE(b.ok()) << b.status().message();
  std::string text = print_model(m);
  EXPECT_NE(text.find("0.1,"), std::string::npos) << text;  // shortest form, not 0.10000000149011612
  auto parsed = parse_model(text);
  ASSERT_TRUE(parsed.ok()) << parsed.message();
  for (const char* name : {"c", "h", "bf"}) {
    const Tensor& a = *m.find(name)->constant;
    const Tensor& p = *(*parsed)->find(name)->constant;
    ASSERT_EQ(a.nbytes(), p.nbytes());
    EXPECT_EQ(std::memcmp(a.raw(), p.raw(), a.nbytes()), 0) << name;
  }
  EXPECT_EQ(print_model(**parsed), text);
}

}  // namespace
}  // namespace ingot
