// Every op kind, once. The enum `Op` (ir/ops.h) is generated from this list and the op table in
// ir/ops.cpp holds one entry per kind in the same order (checked when the table is built), so an
// op cannot be named that does not exist: code writes Op::Add, never "Add". The names are what
// the IR text format, the importers and messages use.
#pragma once

// X(name): primitive ops, then WeightMatMul and the fused ops the passes produce.
#define INGOT_OP_LIST(X)                                                                             \
  X(Parameter) X(Constant) X(Result) X(ReadValue) X(Assign) X(Convert)                              \
  X(Add) X(Subtract) X(Multiply) X(Divide) X(Power) X(Maximum) X(Minimum)                           \
  X(Equal) X(NotEqual) X(Less) X(LessEqual) X(Greater) X(GreaterEqual)                              \
  X(LogicalAnd) X(LogicalOr) X(LogicalNot)                                                          \
  X(Sqrt) X(Exp) X(Log) X(Negative) X(Abs) X(Sin) X(Cos) X(Sigmoid) X(Tanh) X(Erf) X(Gelu)          \
  X(ReduceMean) X(ReduceSum) X(ReduceMax) X(Softmax) X(MatMul)                                      \
  X(WeightMatMul) X(RMSNorm) X(RoPE) X(SwiGLU) X(GeGLU) X(RopeTable) X(Embedding) X(FusedMatMul) X(Attention) \
  X(Gather) X(Reshape) X(Transpose) X(Concat) X(Slice) X(Broadcast) X(Select) X(Range)
