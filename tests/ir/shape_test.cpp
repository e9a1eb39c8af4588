// Dimension algebra and shape inference with static and symbolic dimensions.
#include <gtest/gtest.h>

#include <limits>

#include "ir/builder.h"
#include "ir/ops.h"

namespace ingot {
namespace {

const Dim T = Dim::symbol("tokens");
const Dim P = Dim::symbol("past");

TEST(Dim, LinearAlgebra) {
  EXPECT_EQ((P + T).str(), "past+tokens");
  EXPECT_EQ((T + P).str(), "past+tokens");  // canonical order
  EXPECT_EQ((T + P) - P, T);
  EXPECT_EQ((T * Dim(2) - Dim(1)).str(), "2*tokens-1");
  EXPECT_EQ((Dim(3) - T).str(), "-tokens+3");
  EXPECT_EQ((T - T).str(), "0");
  EXPECT_TRUE((T - T).is_static());
  EXPECT_TRUE((T * P).is_unknown());
  EXPECT_EQ((T * Dim(64)).divide_exact(8)->str(), "8*tokens");
  EXPECT_FALSE((T * Dim(6)).divide_exact(4).has_value());
  EXPECT_EQ(Dim::unknown().str(), "?");
  EXPECT_TRUE((Dim::unknown() + T).is_unknown());
}

TEST(Dim, OverflowBecomesUnknown) {
  const int64_t big = std::numeric_limits<int64_t>::max();
  EXPECT_TRUE((Dim(big) + Dim(1)).is_unknown());
  EXPECT_TRUE((Dim(big) * Dim(2)).is_unknown());
  EXPECT_TRUE((T * Dim(big) + T).is_unknown());
  EXPECT_TRUE((Dim(0) - Dim(big) - Dim(2)).is_unknown());
  EXPECT_TRUE(Dim(std::numeric_limits<int64_t>::min()).is_unknown());
  EXPECT_EQ((Dim(0) - Dim(big)).str(), "-9223372036854775807");
  EXPECT_FALSE((T * Dim(big)).evaluate({{"tokens", 2}}).has_value());
}

TEST(ShapeInference, HugeShapesDoNotOverflow) {
  const int64_t big = std::numeric_limits<int64_t>::max();
  Model m;
  auto c = m.add_node({Op::Constant, {}, {}, "c", {{ElementType::f32, {big, big}}}, nullptr, "00"});
  ASSERT_TRUE(c.ok()) << c.message();
  auto r = m.add_node({Op::Reshape, {(*c)->out()}, {{"shape", Attribute::Dims({-1})}}, "r", {}, nullptr, ""});
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ((*r)->outputs[0].str(), "f32[?]");  // not a wrapped-around size
}

TEST(Dim, Evaluate) {
  SymbolBindings b = {{"tokens", 5}, {"past", 7}};
  EXPECT_EQ((P + T).evaluate(b), 12);
  EXPECT_EQ((T * Dim(2) - Dim(1)).evaluate(b), 9);
  EXPECT_FALSE(Dim::symbol("other").evaluate(b).has_value());
  EXPECT_FALSE(Dim::unknown().evaluate(b).has_value());
}

TEST(Dim, NumElements) {
  EXPECT_EQ(num_elements({T, 8, 8}).str(), "64*tokens");
  EXPECT_EQ(num_elements({}).str(), "1");
  EXPECT_TRUE(num_elements({T, P}).is_unknown());
}

// Builds `op` over parameters of the given types and returns its output type or the error.
StatusOr<TensorType> infer(const std::string& op, std::vector<TensorType> ins, AttrMap attrs = {}) {
  Model m;
  GraphBuilder b(m);
  std::vector<Value> vals;
  for (size_t i = 0; i < ins.size(); ++i) vals.push_back(b.parameter("p" + std::to_string(i), ins[i].type, ins[i].shape));
  const OpDef* def = find_op(op);  // tests name ops as the text format does
  if (!def) return Status::Error("unknown op '" + op + "'");
  Value v = b.op(def->kind, vals, std::move(attrs));
  if (!b.ok()) return b.status();
  return v.type();
}

TensorType f32(Shape s) { return {ElementType::f32, std::move(s)}; }

void expect_type(const StatusOr<TensorType>& t, const std::string& expected) {
  ASSERT_TRUE(t.ok()) << t.message();
  EXPECT_EQ(t->str(), expected);
}

void expect_error(const StatusOr<TensorType>& t, const std::string& fragment) {
  ASSERT_FALSE(t.ok()) << "inferred " << t->str();
  EXPECT_NE(t.message().find(fragment), std::string::npos) << t.message();
}

TEST(ShapeInference, BroadcastWithSymbols) {
  expect_type(infer("Add", {f32({T, 64}), f32({64})}), "f32[tokens, 64]");
  expect_type(infer("Add", {f32({T, 1}), f32({1, P + T})}), "f32[tokens, past+tokens]");
  // A symbol against a static size: the static size wins, checked at run time.
  expect_type(infer("Multiply", {f32({T}), f32({5})}), "f32[5]");
  expect_type(infer("Add", {f32({Dim::unknown()}), f32({T})}), "f32[?]");
  expect_error(infer("Add", {f32({T}), f32({P})}), "do not broadcast");
  expect_error(infer("Add", {f32({3}), f32({4})}), "do not broadcast");
}

TEST(ShapeInference, ComparisonGivesBool) {
  expect_type(infer("LessEqual", {{ElementType::i64, {P + T}}, {ElementType::i64, {T, 1}}}), "bool[tokens, past+tokens]");
}

TEST(ShapeInference, MatMul) {
  expect_type(infer("MatMul", {f32({T, 64}), f32({128, 64})}, {{"transpose_b", Attribute::Bool(true)}}), "f32[tokens, 128]");
  expect_type(infer("MatMul", {f32({8, T, 16}), f32({8, P + T, 16})}, {{"transpose_b", Attribute::Bool(true)}}),
              "f32[8, tokens, past+tokens]");
  expect_type(infer("MatMul", {f32({2, 1, 3, 4}), f32({5, 4, 6})}), "f32[2, 5, 3, 6]");
  expect_error(infer("MatMul", {f32({T, 64}), f32({32, 8})}), "contraction");
  expect_error(infer("MatMul", {f32({T, P}), f32({T, 8})}), "contraction");
}

TEST(ShapeInference, ReshapeInfersSymbolicMinusOne) {
  expect_type(infer("Reshape", {f32({T, 64})}, {{"shape", Attribute::Dims({T, 8, -1})}}), "f32[tokens, 8, 8]");
  expect_type(infer("Reshape", {f32({T, 64})}, {{"shape", Attribute::Dims({-1})}}), "f32[64*tokens]");
  expect_type(infer("Reshape", {f32({T * Dim(64)})}, {{"shape", Attribute::Dims({-1, 64})}}), "f32[tokens, 64]");
  expect_type(infer("Reshape", {f32({T * Dim(64)})}, {{"shape", Attribute::Dims({T, -1})}}), "f32[tokens, 64]");
  expect_error(infer("Reshape", {f32({T, 60})}, {{"shape", Attribute::Dims({T, 8, -1})}}), "do not divide");
  expect_error(infer("Reshape", {f32({T, 64})}, {{"shape", Attribute::Dims({P, 64})}}), "differ");
}

TEST(ShapeInference, ConcatAddsSymbols) {
  expect_type(infer("Concat", {f32({P, 4, 8}), f32({T, 4, 8})}, {{"axis", Attribute::Int(0)}}), "f32[past+tokens, 4, 8]");
  expect_error(infer("Concat", {f32({P, 4, 8}), f32({T, 2, 8})}, {{"axis", Attribute::Int(0)}}), "differ in dimension 1");
  expect_error(infer("Concat", {f32({P, 4}), f32({T, 4, 8})}, {{"axis", Attribute::Int(0)}}), "rank");
}

TEST(ShapeInference, SliceOfSymbolicDims) {
  const int64_t kEnd = std::numeric_limits<int64_t>::max();
  auto slice = [&](Shape s, int64_t b, int64_t e) {
    return infer("Slice", {f32(std::move(s))}, {{"begin", Attribute::Ints({b})}, {"end", Attribute::Ints({e})}, {"axes", Attribute::Ints({0})}});
  };
  expect_type(slice({T, 8}, -1, kEnd), "f32[1, 8]");     // the last token
  expect_type(slice({T, 8}, 2, kEnd), "f32[tokens-2, 8]");
  expect_type(slice({T, 8}, 0, 4), "f32[4, 8]");
  expect_type(slice({T, 8}, 1, -1), "f32[tokens-2, 8]");
  expect_type(slice({10, 8}, 3, -2), "f32[5, 8]");
}

TEST(ShapeInference, ReduceTransposeGatherBroadcastSelectRange) {
  expect_type(infer("ReduceMean", {f32({T, 64})}, {{"axes", Attribute::Ints({-1})}, {"keep_dims", Attribute::Bool(true)}}), "f32[tokens, 1]");
  expect_type(infer("Transpose", {f32({T, 8, 16})}, {{"perm", Attribute::Ints({1, 0, 2})}}), "f32[8, tokens, 16]");
  expect_type(infer("Gather", {f32({512, 64}), {ElementType::i64, {T}}}), "f32[tokens, 64]");
  expect_type(infer("Broadcast", {f32({P, 2, 1, 8})}, {{"shape", Attribute::Dims({P, 2, 4, 8})}}), "f32[past, 2, 4, 8]");
  expect_type(infer("Select", {{ElementType::boolean, {T, P + T}}, f32({4, T, P + T}), f32({})}), "f32[4, tokens, past+tokens]");
  expect_type(infer("Range", {{ElementType::i64, {}}}, {{"length", Attribute::Dims({P + T})}}), "i64[past+tokens]");
  expect_type(infer("Convert", {{ElementType::i64, {T}}}, {{"to", Attribute::Type(ElementType::f16)}}), "f16[tokens]");
  expect_type(infer("Softmax", {f32({T, P})}), "f32[tokens, past]");
}

TEST(ShapeInference, Errors) {
  expect_error(infer("Transpose", {f32({T, 8})}, {{"perm", Attribute::Ints({0, 1, 2})}}), "entries for rank");
  expect_error(infer("Gather", {f32({512, 64}), f32({T})}), "i32 or i64");
  expect_error(infer("Softmax", {f32({T})}, {{"axis", Attribute::Int(1)}}), "out of range");
  expect_error(infer("Broadcast", {f32({3})}, {{"shape", Attribute::Dims({4})}}), "broadcast");
  expect_error(infer("Broadcast", {f32({2, 3})}, {{"shape", Attribute::Dims({3})}}), "lower rank");
  expect_error(infer("Range", {{ElementType::i64, {2}}}, {{"length", Attribute::Dims({T})}}), "scalar");
  expect_error(infer("Select", {f32({2}), f32({2}), f32({2})}), "bool");
  expect_error(infer("ReduceSum", {f32({2})}, {{"axes", Attribute::Ints({0, 0})}}), "repeats");
}

TEST(ShapeInference, ConstantsNeedStaticWholeBlockShapes) {
  Model m;
  auto bad = m.add_node({Op::Constant, {}, {}, "c", {{ElementType::q4_0, {4, 48}}}, nullptr, "0000"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("multiple of 32"), std::string::npos) << bad.message();
  auto sym = m.add_node({Op::Constant, {}, {}, "d", {{ElementType::f32, {T}}}, nullptr, "0000"});
  ASSERT_FALSE(sym.ok());
  EXPECT_NE(sym.message().find("static"), std::string::npos) << sym.message();
  auto mismatch = m.add_node({Op::Constant, {}, {}, "e", {{ElementType::f32, {3}}},
                              std::make_shared<Tensor>(Tensor::from_f32({2}, {1, 2})), ""});
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.message().find("declared"), std::string::npos) << mismatch.message();
}

}  // namespace
}  // namespace ingot
