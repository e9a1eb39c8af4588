// One negative test per verifier error class, each starting from a valid stateful model.
#include <gtest/gtest.h>

#include "ir/builder.h"
#include "ir/verifier.h"

namespace ingot {
namespace {

// x: f32[tokens, 2] appended to state "s" (f32[past, 2], at most [16, 2]); returns the sum.
std::unique_ptr<Model> valid_model() {
  auto m = std::make_unique<Model>("stateful");
  EXPECT_TRUE(m->add_variable({"s", ElementType::f32, {16, 2}}).ok());
  GraphBuilder b(*m);
  Value x = b.parameter("x", ElementType::f32, {Dim::symbol("tokens"), 2});
  Value r = b.read_value("s", ElementType::f32, {Dim::symbol("past"), 2}, "read");
  Value c = b.concat({r, x}, 0);
  c.node->name = "cat";
  b.assign("s", c, "write");
  b.result(b.op(Op::ReduceSum, {c}, {{"axes", Attribute::Ints({0})}}, "sum"), "out");
  EXPECT_TRUE(b.ok()) << b.status().message();
  return m;
}

Node* node(Model& m, const std::string& name) {
  Node* n = m.find(name);
  EXPECT_NE(n, nullptr) << name;
  return n;
}

void expect_code(const Model& m, VerifyCode code, const std::string& fragment) {
  auto diags = verify_diagnostics(m);
  bool found = false;
  for (auto& d : diags)
    if (d.code == code && d.message.find(fragment) != std::string::npos) found = true;
  std::string all;
  for (auto& d : diags) all += std::string(verify_code_name(d.code)) + ": " + d.message + "\n";
  EXPECT_TRUE(found) << "expected [" << verify_code_name(code) << "] mentioning '" << fragment << "', got:\n" << all;
  EXPECT_FALSE(verify(m).ok());
}

TEST(Verifier, ValidModelPasses) {
  auto m = valid_model();
  EXPECT_TRUE(verify(*m).ok()) << verify(*m).message();
}

TEST(Verifier, DuplicateName) {
  auto m = valid_model();
  node(*m, "sum")->name = "cat";
  expect_code(*m, VerifyCode::DuplicateName, "'cat'");
}

TEST(Verifier, DanglingInputOutsideModel) {
  auto m = valid_model();
  Model other;
  GraphBuilder ob(other);
  Value stranger = ob.parameter("stranger", ElementType::f32, {Dim::symbol("tokens"), 2});
  node(*m, "cat")->inputs[1] = stranger;
  expect_code(*m, VerifyCode::DanglingInput, "outside the model");
}

TEST(Verifier, DanglingInputMissingOutput) {
  auto m = valid_model();
  node(*m, "cat")->inputs[1].index = 3;
  expect_code(*m, VerifyCode::DanglingInput, "missing output 3");
}

TEST(Verifier, Cycle) {
  auto m = valid_model();
  // read -> cat -> sum; make cat also read sum's output through a reshape-free path: cat's first input
  // becomes a node that depends on cat.
  GraphBuilder b(*m);
  Value neg = b.op(Op::Negative, {node(*m, "cat")->out()}, {}, "neg");
  ASSERT_TRUE(b.ok());
  node(*m, "cat")->inputs[0] = neg;
  expect_code(*m, VerifyCode::Cycle, "cycle through");
}

TEST(Verifier, Arity) {
  auto m = valid_model();
  node(*m, "sum")->inputs.push_back(node(*m, "x")->out());
  expect_code(*m, VerifyCode::Arity, "has 2 inputs");
}

TEST(Verifier, BadAttributeKind) {
  auto m = valid_model();
  node(*m, "sum")->attrs["axes"] = Attribute::Int(0);
  expect_code(*m, VerifyCode::BadAttribute, "must be ints");
}

TEST(Verifier, UnknownAttribute) {
  auto m = valid_model();
  node(*m, "sum")->attrs["colour"] = Attribute::String("blue");
  expect_code(*m, VerifyCode::BadAttribute, "no attribute 'colour'");
}

TEST(Verifier, MissingAttribute) {
  auto m = valid_model();
  node(*m, "sum")->attrs.erase("axes");
  expect_code(*m, VerifyCode::BadAttribute, "lacks attribute 'axes'");
}

TEST(Verifier, StoredTypeDisagreesWithInference) {
  auto m = valid_model();
  node(*m, "sum")->outputs[0].shape = {3};
  expect_code(*m, VerifyCode::TypeMismatch, "inference gives f32[2]");
}

TEST(Verifier, InferenceFailsAfterEdit) {
  auto m = valid_model();
  node(*m, "sum")->attrs["axes"] = Attribute::Ints({5});
  expect_code(*m, VerifyCode::TypeMismatch, "out of range");
}

TEST(Verifier, BadConstant) {
  auto m = valid_model();
  GraphBuilder b(*m);
  Value c = b.constant(std::make_shared<Tensor>(Tensor::from_f32({2}, {1, 2})), "k");
  b.result(c, "k_out");
  ASSERT_TRUE(b.ok());
  node(*m, "k")->constant = std::make_shared<Tensor>(Tensor::from_f32({3}, {1, 2, 3}));
  expect_code(*m, VerifyCode::BadConstant, "declared f32[2]");
}

TEST(Verifier, UnknownVariable) {
  auto m = valid_model();
  node(*m, "write")->attrs["variable"] = Attribute::String("nope");
  expect_code(*m, VerifyCode::UnknownVariable, "'nope'");
}

TEST(Verifier, VariableTypeMismatch) {
  auto m = valid_model();
  m->mutable_variables()[0].type = ElementType::f16;
  expect_code(*m, VerifyCode::VariableTypeMismatch, "state variable 's' is f16");
}

TEST(Verifier, VariableShapeExceedsMaximum) {
  auto m = valid_model();
  m->mutable_variables()[0].max_shape = {16, 1};
  expect_code(*m, VerifyCode::VariableTypeMismatch, "at most");
}

TEST(Verifier, VariableNotAssigned) {
  auto m = valid_model();
  // Drop the Assign: redirect nothing, just remove it.
  Model& mm = *m;
  Node* w = node(mm, "write");
  w->attrs["variable"] = Attribute::String("t");
  ASSERT_TRUE(mm.add_variable({"t", ElementType::f32, {16, 2}}).ok());
  expect_code(mm, VerifyCode::VariableNotAssigned, "'s' is read but never assigned");
}

TEST(Verifier, VariableNotRead) {
  auto m = valid_model();
  ASSERT_TRUE(m->add_variable({"unused", ElementType::f32, {4}}).ok());
  expect_code(*m, VerifyCode::VariableNotRead, "'unused' is never read");
}

TEST(Verifier, VariableAssignedTwice) {
  auto m = valid_model();
  GraphBuilder b(*m);
  b.assign("s", node(*m, "cat")->out(), "write2");
  ASSERT_TRUE(b.ok());
  expect_code(*m, VerifyCode::VariableMultipleAssign, "assigned 2 times");
}

TEST(Verifier, DuplicateVariable) {
  auto m = valid_model();
  m->mutable_variables().push_back({"s", ElementType::f32, {16, 2}});
  expect_code(*m, VerifyCode::DuplicateVariable, "declared twice");
}

TEST(Verifier, NoResults) {
  Model m("empty");
  GraphBuilder b(m);
  b.parameter("x", ElementType::f32, {2});
  expect_code(m, VerifyCode::NoResults, "no Result");
}

TEST(Verifier, EveryCodeHasAName) {
  for (int c = 0; c <= static_cast<int>(VerifyCode::NoResults); ++c)
    EXPECT_STRNE(verify_code_name(static_cast<VerifyCode>(c)), "?");
}

TEST(Verifier, NeverChangesTheModel) {
  auto m = valid_model();
  node(*m, "sum")->outputs[0].shape = {3};
  (void)verify_diagnostics(*m);
  EXPECT_EQ(node(*m, "sum")->outputs[0].str(), "f32[3]");
}

TEST(Model, AddVariableRejectsDuplicates) {
  Model m;
  ASSERT_TRUE(m.add_variable({"a", ElementType::f32, {2}}).ok());
  EXPECT_FALSE(m.add_variable({"a", ElementType::f32, {2}}).ok());
}

TEST(Model, AddNodeRejectsDuplicateNames) {
  Model m;
  GraphBuilder b(m);
  b.parameter("x", ElementType::f32, {2});
  b.parameter("x", ElementType::f32, {2});
  EXPECT_NE(b.status().message().find("duplicate node name 'x'"), std::string::npos) << b.status().message();
}

TEST(Model, TopologicalOrderAndDeadCode) {
  auto m = valid_model();
  GraphBuilder b(*m);
  b.op(Op::Negative, {node(*m, "x")->out()}, {}, "dead1");
  b.op(Op::Exp, {node(*m, "dead1")->out()}, {}, "dead2");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(m->remove_dead_nodes(), 2);
  EXPECT_EQ(m->find("dead1"), nullptr);
  EXPECT_NE(m->find("x"), nullptr);  // parameters stay: they are the interface
  auto order = m->topological_order();
  ASSERT_TRUE(order.ok());
  std::vector<std::string> names;
  for (Node* n : *order) names.push_back(n->name);
  auto pos = [&](const std::string& s) { return std::find(names.begin(), names.end(), s) - names.begin(); };
  EXPECT_LT(pos("read"), pos("cat"));
  EXPECT_LT(pos("cat"), pos("write"));
  EXPECT_LT(pos("sum"), pos("out"));
}

}  // namespace
}  // namespace ingot
