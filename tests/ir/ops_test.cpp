// Every op's reference kernel against hand-computed values. Each case runs through a one-op
// model (Parameters -> op -> Result), so shape inference, the kernel and the evaluator's check
// that kernel shapes match inferred types are all exercised.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <set>
#include <limits>

#include "ir/builder.h"
#include "ir/evaluator.h"
#include "ir/ops.h"
#include "ir/quant.h"
#include "ir/text.h"

namespace ingot {
namespace {

const double kInf = std::numeric_limits<double>::infinity();

StatusOr<Tensor> run_op(const std::string& op, const std::vector<Tensor>& inputs, AttrMap attrs = {}) {
  Model m("op_test");
  GraphBuilder b(m);
  std::vector<Value> vals;
  std::map<std::string, Tensor> feed;
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::string name = "in" + std::to_string(i);
    vals.push_back(b.parameter(name, inputs[i].type(), static_shape(inputs[i].shape())));
    feed[name] = inputs[i];
  }
  const OpDef* def = find_op(op);  // tests name ops as the text format does
  if (!def) return Status::Error("unknown op '" + op + "'");
  Value out = b.op(def->kind, vals, std::move(attrs));
  b.result(out, "out");
  INGOT_RETURN_IF_ERROR(b.status());
  Evaluator ev(m);
  INGOT_ASSIGN_OR_RETURN(auto results, ev.run(feed));
  return results.at(0);
}

Tensor f32(std::vector<int64_t> shape, std::vector<float> v) { return Tensor::from_f32(std::move(shape), v); }
Tensor i64(std::vector<int64_t> shape, std::vector<int64_t> v) { return Tensor::from_i64(std::move(shape), v); }
Tensor boolean(std::vector<int64_t> shape, std::vector<double> v) {
  return Tensor::from_values(ElementType::boolean, std::move(shape), v);
}

std::vector<double> values(const Tensor& t) {
  std::vector<double> r;
  for (int64_t i = 0; i < t.numel(); ++i) r.push_back(t.get_f(i));
  return r;
}

void expect_values(const StatusOr<Tensor>& t, std::vector<int64_t> shape, std::vector<double> expected, double tol = 1e-6) {
  ASSERT_TRUE(t.ok()) << t.message();
  EXPECT_EQ(t->shape(), shape);
  auto got = values(*t);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(expected[i])) EXPECT_TRUE(std::isnan(got[i])) << "element " << i;
    else if (std::isinf(expected[i])) EXPECT_EQ(got[i], expected[i]) << "element " << i;
    else EXPECT_NEAR(got[i], expected[i], tol) << "element " << i;
  }
}

void expect_error(const StatusOr<Tensor>& t, const std::string& fragment) {
  ASSERT_FALSE(t.ok()) << "expected an error containing '" << fragment << "'";
  EXPECT_NE(t.message().find(fragment), std::string::npos) << t.message();
}

// ------------------------------------------------------------------ element-wise binary

TEST(Ops, AddBroadcastsRowVector) {
  expect_values(run_op("Add", {f32({2, 3}, {1, 2, 3, 4, 5, 6}), f32({3}, {10, 20, 30})}), {2, 3},
                {11, 22, 33, 14, 25, 36});
}

TEST(Ops, AddBroadcastsBothWays) {
  expect_values(run_op("Add", {f32({2, 1}, {1, 2}), f32({1, 3}, {10, 20, 30})}), {2, 3}, {11, 21, 31, 12, 22, 32});
}

TEST(Ops, SubtractMultiplyDivide) {
  Tensor a = f32({4}, {1, -2, 3.5f, 0}), b = f32({4}, {2, 4, -0.5f, 8});
  expect_values(run_op("Subtract", {a, b}), {4}, {-1, -6, 4, -8});
  expect_values(run_op("Multiply", {a, b}), {4}, {2, -8, -1.75, 0});
  expect_values(run_op("Divide", {a, b}), {4}, {0.5, -0.5, -7, 0});
}

TEST(Ops, DivideByZeroFloatIsInfinite) {
  expect_values(run_op("Divide", {f32({2}, {1, -1}), f32({2}, {0, 0})}), {2}, {kInf, -kInf});
}

TEST(Ops, IntegerDivideFloorsLikePython) {
  expect_values(run_op("Divide", {i64({4}, {7, -7, 7, -7}), i64({4}, {2, 2, -2, -2})}), {4}, {3, -4, -4, 3});
}

TEST(Ops, IntegerDivideByZeroIsAnError) {
  expect_error(run_op("Divide", {i64({1}, {1}), i64({1}, {0})}), "division by zero");
}

TEST(Ops, Power) {
  expect_values(run_op("Power", {f32({3}, {2, 9, 3}), f32({3}, {3, 0.5f, 2})}), {3}, {8, 3, 9});
  expect_values(run_op("Power", {i64({3}, {2, -3, 5}), i64({3}, {10, 3, 0})}), {3}, {1024, -27, 1});
  expect_error(run_op("Power", {i64({1}, {2}), i64({1}, {-1})}), "negative exponent");
}

TEST(Ops, MaximumMinimum) {
  Tensor a = f32({3}, {1, 5, -2}), b = f32({3}, {3, 4, -2});
  expect_values(run_op("Maximum", {a, b}), {3}, {3, 5, -2});
  expect_values(run_op("Minimum", {a, b}), {3}, {1, 4, -2});
}

TEST(Ops, F16ArithmeticRoundsEachResult) {
  // 1 + 2^-11 is not representable in f16: it rounds to even (1.0). 1 + 3*2^-11 rounds up to 1 + 2^-9.
  Tensor a = Tensor::from_values(ElementType::f16, {2}, {1.0, 1.0});
  Tensor b = Tensor::from_values(ElementType::f16, {2}, {std::ldexp(1.0, -11), 3 * std::ldexp(1.0, -11)});
  auto r = run_op("Add", {a, b});
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->type(), ElementType::f16);
  EXPECT_EQ(r->get_f(0), 1.0);
  EXPECT_EQ(r->get_f(1), 1.0 + std::ldexp(1.0, -9));
}

TEST(Ops, BinaryRejectsMixedTypes) {
  expect_error(run_op("Add", {f32({1}, {1}), i64({1}, {1})}), "one element type");
}

TEST(Ops, BinaryRejectsIncompatibleShapes) {
  expect_error(run_op("Add", {f32({2}, {1, 2}), f32({3}, {1, 2, 3})}), "broadcast");
}

TEST(Ops, Comparisons) {
  Tensor a = f32({3}, {1, 2, 3}), b = f32({3}, {2, 2, 2});
  expect_values(run_op("Equal", {a, b}), {3}, {0, 1, 0});
  expect_values(run_op("NotEqual", {a, b}), {3}, {1, 0, 1});
  expect_values(run_op("Less", {a, b}), {3}, {1, 0, 0});
  expect_values(run_op("LessEqual", {a, b}), {3}, {1, 1, 0});
  expect_values(run_op("Greater", {a, b}), {3}, {0, 0, 1});
  expect_values(run_op("GreaterEqual", {a, b}), {3}, {0, 1, 1});
  auto r = run_op("Less", {i64({2, 1}, {0, 1}), i64({2}, {0, 1})});
  expect_values(r, {2, 2}, {0, 1, 0, 0});
  EXPECT_EQ(r->type(), ElementType::boolean);
}

TEST(Ops, CausalMaskFromComparison) {
  // keys 0..3 vs queries at positions 2, 3: key <= query.
  expect_values(run_op("LessEqual", {i64({4}, {0, 1, 2, 3}), i64({2, 1}, {2, 3})}), {2, 4}, {1, 1, 1, 0, 1, 1, 1, 1});
}

TEST(Ops, Logical) {
  Tensor a = boolean({4}, {0, 0, 1, 1}), b = boolean({4}, {0, 1, 0, 1});
  expect_values(run_op("LogicalAnd", {a, b}), {4}, {0, 0, 0, 1});
  expect_values(run_op("LogicalOr", {a, b}), {4}, {0, 1, 1, 1});
  expect_values(run_op("LogicalNot", {a}), {4}, {1, 1, 0, 0});
  expect_error(run_op("LogicalAnd", {f32({1}, {1}), f32({1}, {1})}), "must be bool");
}

// ------------------------------------------------------------------ element-wise unary

TEST(Ops, UnaryMath) {
  expect_values(run_op("Sqrt", {f32({3}, {4, 2, 0})}), {3}, {2, std::sqrt(2.0), 0});
  expect_values(run_op("Exp", {f32({2}, {0, 1})}), {2}, {1, M_E});
  expect_values(run_op("Log", {f32({2}, {1, static_cast<float>(M_E)})}), {2}, {0, 1});
  expect_values(run_op("Negative", {f32({2}, {1.5f, -2})}), {2}, {-1.5, 2});
  expect_values(run_op("Negative", {i64({2}, {3, -4})}), {2}, {-3, 4});
  expect_values(run_op("Abs", {f32({2}, {-1.5f, 2})}), {2}, {1.5, 2});
  expect_values(run_op("Abs", {i64({2}, {-7, 7})}), {2}, {7, 7});
  expect_values(run_op("Sin", {f32({2}, {0, static_cast<float>(M_PI / 2)})}), {2}, {0, 1});
  expect_values(run_op("Cos", {f32({2}, {0, static_cast<float>(M_PI)})}), {2}, {1, -1});
  expect_values(run_op("Sigmoid", {f32({3}, {0, 100, -100})}), {3}, {0.5, 1, 0});
  expect_values(run_op("Tanh", {f32({2}, {0, 1})}), {2}, {0, 0.7615941559557649});
  expect_values(run_op("Erf", {f32({2}, {0, 1})}), {2}, {0, 0.8427007929497149});
}

TEST(Ops, SqrtOfNegativeIsNan) { expect_values(run_op("Sqrt", {f32({1}, {-1})}), {1}, {NAN}); }

TEST(Ops, Gelu) {
  // Exact: x * Phi(x). Phi(1) = 0.8413447460685429. Tanh form at 1: 0.8411919906082768.
  expect_values(run_op("Gelu", {f32({3}, {0, 1, -1})}), {3}, {0, 0.8413447460685429, -0.15865525393145707});
  expect_values(run_op("Gelu", {f32({1}, {1})}, {{"approximation", Attribute::String("tanh")}}), {1},
                {0.8411919906082768});
  expect_error(run_op("Gelu", {f32({1}, {1})}, {{"approximation", Attribute::String("fast")}}), "approximation");
}

TEST(Ops, UnaryFloatRejectsIntegers) { expect_error(run_op("Exp", {i64({1}, {1})}), "float type"); }

// ------------------------------------------------------------------ reductions, softmax

TEST(Ops, Reductions) {
  Tensor x = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  expect_values(run_op("ReduceMean", {x}, {{"axes", Attribute::Ints({1})}}), {2}, {2, 5});
  expect_values(run_op("ReduceMean", {x}, {{"axes", Attribute::Ints({-1})}, {"keep_dims", Attribute::Bool(true)}}), {2, 1}, {2, 5});
  expect_values(run_op("ReduceSum", {x}, {{"axes", Attribute::Ints({0})}}), {3}, {5, 7, 9});
  expect_values(run_op("ReduceMax", {x}, {{"axes", Attribute::Ints({0, 1})}}), {}, {6});
  expect_values(run_op("ReduceSum", {i64({2, 2}, {1, 2, 3, 4})}, {{"axes", Attribute::Ints({1})}}), {2}, {3, 7});
  expect_values(run_op("ReduceMax", {f32({2, 2}, {-5, -7, -1, -9})}, {{"axes", Attribute::Ints({1})}, {"keep_dims", Attribute::Bool(true)}}),
                {2, 1}, {-5, -1});
}

TEST(Ops, ReductionMiddleAxisOf3d) {
  // [2, 2, 2] summed over axis 1: out[i][k] = x[i][0][k] + x[i][1][k].
  expect_values(run_op("ReduceSum", {f32({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8})}, {{"axes", Attribute::Ints({1})}}), {2, 2},
                {4, 6, 12, 14});
}

TEST(Ops, ReductionErrors) {
  Tensor x = f32({2}, {1, 2});
  expect_error(run_op("ReduceSum", {x}, {{"axes", Attribute::Ints({})}}), "must not be empty");
  expect_error(run_op("ReduceSum", {x}, {{"axes", Attribute::Ints({1})}}), "out of range");
  expect_error(run_op("ReduceSum", {f32({2, 2}, {1, 2, 3, 4})}, {{"axes", Attribute::Ints({0, -2})}}), "repeats");
  expect_error(run_op("ReduceMean", {i64({1}, {1})}, {{"axes", Attribute::Ints({0})}}), "float type");
  expect_error(run_op("ReduceMax", {f32({0}, {})}, {{"axes", Attribute::Ints({0})}}), "empty axis");
}

TEST(Ops, Softmax) {
  expect_values(run_op("Softmax", {f32({3}, {1, 2, 3})}), {3}, {0.09003057317038046, 0.24472847105479767, 0.6652409557748219});
  // Large values must not overflow; -inf gets probability 0.
  expect_values(run_op("Softmax", {f32({3}, {1000, 1000, -INFINITY})}), {3}, {0.5, 0.5, 0});
  // Along axis 0 of a [2, 2]: columns normalize.
  expect_values(run_op("Softmax", {f32({2, 2}, {0, 0, 0, std::log(3.0f)})}, {{"axis", Attribute::Int(0)}}), {2, 2},
                {0.5, 0.25, 0.5, 0.75});
}

// ------------------------------------------------------------------ MatMul

TEST(Ops, MatMul) {
  Tensor a = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = f32({3, 2}, {7, 8, 9, 10, 11, 12});
  expect_values(run_op("MatMul", {a, b}), {2, 2}, {58, 64, 139, 154});
  Tensor bt = f32({2, 3}, {7, 9, 11, 8, 10, 12});  // b transposed
  expect_values(run_op("MatMul", {a, bt}, {{"transpose_b", Attribute::Bool(true)}}), {2, 2}, {58, 64, 139, 154});
  Tensor at = f32({3, 2}, {1, 4, 2, 5, 3, 6});  // a transposed
  expect_values(run_op("MatMul", {at, b}, {{"transpose_a", Attribute::Bool(true)}}), {2, 2}, {58, 64, 139, 154});
}

TEST(Ops, MatMulBatchBroadcast) {
  // a: [2, 1, 1, 2] (two batches), b: [3, 2, 1] (three batches) -> [2, 3, 1, 1].
  Tensor a = f32({2, 1, 1, 2}, {1, 2, 3, 4});
  Tensor b = f32({3, 2, 1}, {1, 0, 0, 1, 1, 1});
  expect_values(run_op("MatMul", {a, b}), {2, 3, 1, 1}, {1, 2, 3, 3, 4, 7});
}

TEST(Ops, MatMulErrors) {
  expect_error(run_op("MatMul", {f32({2, 3}, {1, 2, 3, 4, 5, 6}), f32({2, 3}, {1, 2, 3, 4, 5, 6})}), "contraction");
  expect_error(run_op("MatMul", {f32({3}, {1, 2, 3}), f32({3, 1}, {1, 2, 3})}), "rank >= 2");
}

// ------------------------------------------------------------------ data movement

TEST(Ops, GatherRows) {
  Tensor table = f32({3, 2}, {0, 1, 10, 11, 20, 21});
  expect_values(run_op("Gather", {table, i64({3}, {2, 0, -1})}), {3, 2}, {20, 21, 0, 1, 20, 21});
  expect_values(run_op("Gather", {table, i64({2, 1}, {1, 2})}), {2, 1, 2}, {10, 11, 20, 21});
}

TEST(Ops, GatherAxis1) {
  Tensor x = f32({2, 3}, {0, 1, 2, 3, 4, 5});
  expect_values(run_op("Gather", {x, i64({2}, {2, 0})}, {{"axis", Attribute::Int(1)}}), {2, 2}, {2, 0, 5, 3});
}

TEST(Ops, GatherOutOfRange) {
  expect_error(run_op("Gather", {f32({2}, {1, 2}), i64({1}, {2})}), "out of range");
  expect_error(run_op("Gather", {f32({2}, {1, 2}), f32({1}, {0})}), "i32 or i64");
}

TEST(Ops, Reshape) {
  Tensor x = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  expect_values(run_op("Reshape", {x}, {{"shape", Attribute::Dims({3, -1})}}), {3, 2}, {1, 2, 3, 4, 5, 6});
  expect_values(run_op("Reshape", {x}, {{"shape", Attribute::Dims({6})}}), {6}, {1, 2, 3, 4, 5, 6});
  expect_error(run_op("Reshape", {x}, {{"shape", Attribute::Dims({4, -1})}}), "do not divide");
  expect_error(run_op("Reshape", {x}, {{"shape", Attribute::Dims({5})}}), "differ");
  expect_error(run_op("Reshape", {x}, {{"shape", Attribute::Dims({-1, -1})}}), "more than one -1");
}

TEST(Ops, Transpose) {
  Tensor x = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  expect_values(run_op("Transpose", {x}, {{"perm", Attribute::Ints({1, 0})}}), {3, 2}, {1, 4, 2, 5, 3, 6});
  // [2, 1, 2] -> perm [2, 0, 1] -> [2, 2, 1]: out[k][i][j] = x[i][j][k].
  Tensor y = f32({2, 1, 2}, {1, 2, 3, 4});
  expect_values(run_op("Transpose", {y}, {{"perm", Attribute::Ints({2, 0, 1})}}), {2, 2, 1}, {1, 3, 2, 4});
  expect_error(run_op("Transpose", {x}, {{"perm", Attribute::Ints({0, 0})}}), "not a permutation");
}

TEST(Ops, Concat) {
  Tensor a = f32({1, 2}, {1, 2}), b = f32({2, 2}, {3, 4, 5, 6});
  expect_values(run_op("Concat", {a, b}, {{"axis", Attribute::Int(0)}}), {3, 2}, {1, 2, 3, 4, 5, 6});
  expect_values(run_op("Concat", {f32({2, 1}, {1, 2}), f32({2, 2}, {3, 4, 5, 6})}, {{"axis", Attribute::Int(-1)}}), {2, 3},
                {1, 3, 4, 2, 5, 6});
  // An empty input (the KV cache before the first token) contributes nothing.
  expect_values(run_op("Concat", {f32({0, 2}, {}), a}, {{"axis", Attribute::Int(0)}}), {1, 2}, {1, 2});
  expect_error(run_op("Concat", {f32({1, 2}, {1, 2}), f32({1, 3}, {1, 2, 3})}, {{"axis", Attribute::Int(0)}}), "differ");
}

TEST(Ops, Slice) {
  Tensor x = f32({6}, {0, 1, 2, 3, 4, 5});
  auto slice = [&](int64_t b, int64_t e, int64_t s) {
    return run_op("Slice", {x}, {{"begin", Attribute::Ints({b})}, {"end", Attribute::Ints({e})},
                                 {"axes", Attribute::Ints({0})}, {"step", Attribute::Ints({s})}});
  };
  expect_values(slice(1, 4, 1), {3}, {1, 2, 3});
  expect_values(slice(0, 6, 2), {3}, {0, 2, 4});
  expect_values(slice(-2, std::numeric_limits<int64_t>::max(), 1), {2}, {4, 5});
  expect_values(slice(5, -7, -2), {3}, {5, 3, 1});
  expect_values(slice(4, 2, 1), {0}, {});
  expect_values(slice(-100, 100, 1), {6}, {0, 1, 2, 3, 4, 5});
  expect_error(slice(0, 1, 0), "step must not be 0");
  // Two axes of a [2, 3].
  Tensor y = f32({2, 3}, {0, 1, 2, 3, 4, 5});
  expect_values(run_op("Slice", {y}, {{"begin", Attribute::Ints({1, 1})}, {"end", Attribute::Ints({2, 3})}, {"axes", Attribute::Ints({0, 1})}}),
                {1, 2}, {4, 5});
}

TEST(Ops, Broadcast) {
  expect_values(run_op("Broadcast", {f32({3}, {1, 2, 3})}, {{"shape", Attribute::Dims({2, 3})}}), {2, 3}, {1, 2, 3, 1, 2, 3});
  expect_values(run_op("Broadcast", {f32({2, 1}, {1, 2})}, {{"shape", Attribute::Dims({2, 3})}}), {2, 3}, {1, 1, 1, 2, 2, 2});
  expect_error(run_op("Broadcast", {f32({2}, {1, 2})}, {{"shape", Attribute::Dims({3})}}), "broadcast");
}

TEST(Ops, Select) {
  Tensor cond = boolean({2, 2}, {1, 0, 0, 1});
  expect_values(run_op("Select", {cond, f32({2, 2}, {1, 2, 3, 4}), f32({}, {-INFINITY})}), {2, 2}, {1, -kInf, -kInf, 4});
  expect_error(run_op("Select", {f32({1}, {1}), f32({1}, {1}), f32({1}, {1})}), "must be bool");
}

TEST(Ops, Range) {
  expect_values(run_op("Range", {Tensor::scalar_i64(5)}, {{"length", Attribute::Dims({3})}}), {3}, {5, 6, 7});
  expect_values(run_op("Range", {f32({}, {1})}, {{"length", Attribute::Dims({3})}, {"step", Attribute::Float(0.5)}}), {3},
                {1, 1.5, 2});
  expect_error(run_op("Range", {i64({1}, {0})}, {{"length", Attribute::Dims({3})}}), "scalar");
  expect_error(run_op("Range", {Tensor::scalar_i64(0)}, {{"length", Attribute::Dims({3})}, {"step", Attribute::Float(0.5)}}),
               "whole step");
}

// ------------------------------------------------------------------ Convert

TEST(Ops, ConvertFloatToIntTruncatesAndSaturates) {
  auto r = run_op("Convert", {f32({4}, {-1.7f, 2.9f, 1e10f, NAN})}, {{"to", Attribute::Type(ElementType::i32)}});
  expect_values(r, {4}, {-1, 2, 2147483647, 0});
  EXPECT_EQ(r->type(), ElementType::i32);
  expect_values(run_op("Convert", {f32({2}, {300, -5})}, {{"to", Attribute::Type(ElementType::u8)}}), {2}, {255, 0});
}

TEST(Ops, ConvertToHalfRounds) {
  // 2049 is not an f16 value: ties to even gives 2048; 2051 gives 2052.
  expect_values(run_op("Convert", {f32({2}, {2049, 2051})}, {{"to", Attribute::Type(ElementType::f16)}}), {2}, {2048, 2052});
  // bf16 keeps 8 significant bits: 257 -> 256.
  expect_values(run_op("Convert", {f32({1}, {257})}, {{"to", Attribute::Type(ElementType::bf16)}}), {1}, {256});
}

TEST(Ops, ConvertIntsAndBools) {
  expect_values(run_op("Convert", {i64({3}, {0, 2, -1})}, {{"to", Attribute::Type(ElementType::boolean)}}), {3}, {0, 1, 1});
  expect_values(run_op("Convert", {i64({2}, {9007199254740993, -3})}, {{"to", Attribute::Type(ElementType::i32)}}), {2},
                {2147483647, -3});
  expect_values(run_op("Convert", {boolean({2}, {1, 0})}, {{"to", Attribute::Type(ElementType::f32)}}), {2}, {1, 0});
}

TEST(Ops, ConvertDequantizesQ8_0) {
  // One q8_0 block: d = 0.5 (f16 0x3800), q[i] = i - 16.
  auto buf = Buffer::allocate(sizeof(BlockQ8_0));
  BlockQ8_0 blk;
  blk.d = 0x3800;
  for (int i = 0; i < 32; ++i) blk.qs[i] = static_cast<int8_t>(i - 16);
  std::memcpy(buf->mutable_data(), &blk, sizeof(blk));
  auto q = Tensor::from_buffer(ElementType::q8_0, {1, 32}, buf);
  ASSERT_TRUE(q.ok()) << q.message();
  std::vector<double> expected;
  for (int i = 0; i < 32; ++i) expected.push_back(0.5 * (i - 16));
  // A quantized Parameter is not allowed, so feed it as a Constant.
  Model m;
  GraphBuilder b(m);
  Value c = b.constant(std::make_shared<Tensor>(*q), "w");
  b.result(b.convert(c, ElementType::f32), "out");
  ASSERT_TRUE(b.ok()) << b.status().message();
  Evaluator ev(m);
  auto r = ev.run({});
  ASSERT_TRUE(r.ok()) << r.message();
  expect_values((*r)[0], {1, 32}, expected);
}

TEST(Ops, ConvertCannotQuantize) {
  expect_error(run_op("Convert", {f32({32}, std::vector<float>(32, 1.0f))}, {{"to", Attribute::Type(ElementType::q8_0)}}),
               "quantized");
}

// ------------------------------------------------------------------ registry

TEST(Ops, EveryOpIsRegisteredOnceWithKernelAndInference) {
  std::set<std::string> names;
  for (auto& op : all_ops()) {
    EXPECT_TRUE(names.insert(op.name()).second) << "duplicate op " << op.name();
    EXPECT_NE(op.infer, nullptr) << op.name();
    EXPECT_NE(op.eval, nullptr) << op.name();
    EXPECT_NE(std::string(op.summary), "") << op.name();
  }
  for (const char* required : {"Parameter", "Constant", "Result", "ReadValue", "Assign", "Convert", "Add", "Subtract",
                               "Multiply", "Divide", "Power", "Sqrt", "Exp", "Negative", "Sin", "Cos", "Sigmoid", "Tanh",
                               "Gelu", "ReduceMean", "ReduceSum", "ReduceMax", "Softmax", "MatMul", "Gather", "Reshape",
                               "Transpose", "Concat", "Slice", "Broadcast", "Select", "Range", "Equal", "Less"})
    EXPECT_TRUE(names.count(required)) << required;
}

TEST(Ops, UnknownOpAndBadAttributesAreUserErrors) {
  // Ops are typed (Op::X); an unknown name can only come from text, and the parser names it.
  EXPECT_EQ(find_op("Frobnicate"), nullptr);
  EXPECT_EQ(find_op("Softmax")->kind, Op::Softmax);
  auto parsed = parse_model("model \"m\" {\n  %x = Parameter() : f32[2]\n  %y = Frobnicate(%x) : f32[2]\n}\n");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.message().find("unknown op 'Frobnicate'"), std::string::npos) << parsed.message();

  Model m2;
  GraphBuilder b2(m2);
  Value y = b2.parameter("y", ElementType::f32, {2});
  b2.op(Op::Softmax, {y}, {{"axis", Attribute::Float(1.0)}});
  EXPECT_NE(b2.status().message().find("must be int"), std::string::npos) << b2.status().message();

  Model m3;
  GraphBuilder b3(m3);
  Value z = b3.parameter("z", ElementType::f32, {2});
  b3.op(Op::Transpose, {z});
  EXPECT_NE(b3.status().message().find("requires attribute 'perm'"), std::string::npos) << b3.status().message();

  Model m4;
  GraphBuilder b4(m4);
  Value w = b4.parameter("w", ElementType::f32, {2});
  b4.op(Op::Add, {w});
  EXPECT_NE(b4.status().message().find("takes 2 inputs"), std::string::npos) << b4.status().message();
}

}  // namespace
}  // namespace ingot

namespace ingot {
namespace {

// GeGLU(g, u) = Gelu_tanh(g) * u: hand-computed values, and bitwise its own decomposition.
TEST(Ops, GeGLUIsGeluTanhTimesUp) {
  // gelu_tanh(1) = 0.8411920, gelu_tanh(-1) = -0.1588080, gelu_tanh(0) = 0.
  expect_values(run_op("GeGLU", {f32({3}, {1, -1, 0}), f32({3}, {2, 3, 5})}), {3}, {1.682384, -0.476424, 0}, 1e-5);
  const Tensor g = f32({2, 5}, {-3, -0.5f, 0.25f, 1.5f, 4, 0.1f, -0.1f, 2.5f, -2.5f, 7});
  const Tensor u = f32({2, 5}, {0.3f, -1, 2, 0.7f, -0.2f, 1, 1, -3, 0.5f, 0.01f});
  auto fused = run_op("GeGLU", {g, u});
  auto gelu = run_op("Gelu", {g}, {{"approximation", Attribute::String("tanh")}});
  ASSERT_TRUE(fused.ok() && gelu.ok());
  auto composed = run_op("Multiply", {*gelu, u});
  ASSERT_TRUE(composed.ok());
  EXPECT_EQ(std::memcmp(fused->raw(), composed->raw(), fused->nbytes()), 0);
  expect_error(run_op("GeGLU", {f32({2}, {1, 2}), f32({3}, {1, 2, 3})}), "GeGLU gate and up differ");
}

// llama.cpp's GELU (Gemma's GeGLU, approximation "ggml_f16"): 0 at or below -10, x at or above
// 10, else gelu_tanh of x rounded to f16, rounded to f16. Hand-checked values: f16(1) = 1 and
// gelu_tanh(1) = 0.841192 -> f16 0.84130859375; 0.3 -> f16 0.300048828125 -> gelu 0.185410 -> f16
// 0.1854248046875 (1519 steps of 2^-13). Its decomposition is the same Gelu times up, bitwise.
TEST(Ops, GeGLUWithLlamaCppsTable) {
  const AttrMap ggml = {{"approximation", Attribute::String("ggml_f16")}};
  expect_values(run_op("GeGLU", {f32({6}, {-10, -11, 10, 12.5f, 1, 0.3f}), f32({6}, {2, 2, 2, 2, 1, 1})}, ggml), {6},
                {0, 0, 20, 25, 0.84130859375, 0.1854248046875}, 0.0);
  const Tensor g = f32({2, 5}, {-3, -0.5f, 0.25f, 1.5f, 4, 0.1f, -0.1f, 2.5f, -9.99f, 9.99f});
  const Tensor u = f32({2, 5}, {0.3f, -1, 2, 0.7f, -0.2f, 1, 1, -3, 0.5f, 0.01f});
  auto fused = run_op("GeGLU", {g, u}, ggml);
  auto gelu = run_op("Gelu", {g}, ggml);
  ASSERT_TRUE(fused.ok() && gelu.ok());
  auto composed = run_op("Multiply", {*gelu, u});
  ASSERT_TRUE(composed.ok());
  EXPECT_EQ(std::memcmp(fused->raw(), composed->raw(), fused->nbytes()), 0);
  // Not the tanh form: some element differs.
  auto tanh_form = run_op("GeGLU", {g, u});
  ASSERT_TRUE(tanh_form.ok());
  EXPECT_NE(std::memcmp(fused->raw(), tanh_form->raw(), fused->nbytes()), 0);
  expect_error(run_op("GeGLU", {g, u}, {{"approximation", Attribute::String("erf")}}), "GeGLU approximation must be");
}

}  // namespace
}  // namespace ingot
