// The op registry: one table, one small entry per op (attributes, shape inference, reference kernel).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ir/attribute.h"
#include "ir/model.h"
#include "ir/op_kind.h"
#include "ir/shape.h"
#include "base/status.h"
#include "ir/tensor.h"

namespace ingot {

struct AttrSpec {
  const char* name;
  AttrKind kind;
  bool required;
  Attribute default_value;  // used when not required and absent
};

// What a reference kernel may look at besides its inputs.
struct EvalContext {
  SymbolBindings* symbols = nullptr;                     // bound from parameter and state shapes
  const std::map<std::string, Tensor>* inputs = nullptr;  // model inputs by Parameter name
  const std::map<std::string, Tensor>* state = nullptr;   // state at the start of the call
  std::map<std::string, Tensor>* next_state = nullptr;    // written by Assign and stateful ops
  const Model* model = nullptr;                           // for state variable declarations
  std::optional<ElementType> variable_type(const std::string& name) const;
};

using InferFn = Status (*)(Node& node);
using EvalFn = Status (*)(const Node& node, EvalContext& ctx, std::span<const Tensor> inputs,
                          std::vector<Tensor>& outputs);

// What passes may assume about an op, whatever its attributes (bit flags of OpDef::traits).
enum OpTrait : unsigned {
  kSource = 1u << 0,       // no inputs; declares its output type (Parameter, Constant, ReadValue)
  kSink = 1u << 1,         // an end of the graph that must stay (Result, Assign)
  kElementwise = 1u << 2,  // output element i reads only element i of each (broadcast) input
  kCommutative = 1u << 3,  // exactly commutative in the reference kernel, NaNs and wrap-around included
  kStateful = 1u << 4,     // reads or writes state variables
  kView = 1u << 5,         // writes nothing: its output is its first input's bytes (Reshape, Result)
};

// The inputs whose bytes an op's output may take over (run in place), given the node; see
// docs/passes.md, memory planning. nullptr: none.
using InPlaceFn = std::vector<int> (*)(const Node& node);

class GraphBuilder;
// An op that is a composition of simpler ops: builds that graph on `b` from `inputs` and returns
// its outputs. The op's reference kernel computes exactly the composition (the same roundings);
// codegen's generic path lowers the composition when no hand-written kernel takes the op.
using DecomposeFn = StatusOr<std::vector<Value>> (*)(const Node& node, GraphBuilder& b, const std::vector<Value>& inputs);

struct OpDef {
  Op kind;
  int min_inputs;
  int max_inputs;  // -1: any number
  std::vector<AttrSpec> attrs;
  InferFn infer;   // checks inputs and attributes, sets node.outputs (source ops check declared ones)
  EvalFn eval;     // the reference kernel: plain, obviously correct, the numerical spec
  const char* summary;
  unsigned traits = 0;           // OpTrait flags
  InPlaceFn in_place = nullptr;  // views and ops that may run in place (kView: the first input)
  // String attributes naming state variables this op both reads (at the start of a call) and
  // writes (at its end), as a stateful fused op does. ReadValue and Assign are the primitive
  // reader and writer and are not listed here.
  std::vector<const char*> state_attrs = {};
  DecomposeFn decompose = nullptr;  // composite ops only

  const char* name() const { return op_name(kind); }
  bool has(OpTrait t) const { return (traits & t) != 0; }
};

// The definition of an op kind (always exists).
const OpDef& op_def(Op kind);
// By name, as the text format and importers spell it; nullptr for an unknown name.
const OpDef* find_op(std::string_view name);
std::span<const OpDef> all_ops();

// Whether WeightMatMul implements act_quant "q8" (llama.cpp's activation numerics) for weights of
// type `w`: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, q2_k, q3_k, q4_k, q5_k, q6_k,
// iq4_xs.
bool weight_matmul_supports_act_q8(ElementType w);
// Whether act_quant "q8" quantizes the activations of weights of type `w` to q8_K super-blocks
// (ggml's format for them: q2_k, q3_k, q4_k, q5_k, q6_k, iq4_xs); the other block types meet
// q8_0 blocks of 32.
bool q8_uses_q8_K(ElementType w);
// Whether WeightMatMul implements act_quant "ggml" (ggml's activation formats and generic dot
// products, bit for bit) for weights of type `w`: f32, f16, bf16 and every quantized type.
bool weight_matmul_supports_act_ggml(ElementType w);

}  // namespace ingot
