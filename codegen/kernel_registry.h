// The kernel registry: one entry per kernel family, one file per family (codegen/kernels/*.cpp).
// An entry says everything the compiler needs about its kernels: which nodes it computes and the
// spec it makes of one, the cache key (identical keys share one symbol), the call's argument
// bindings, its scratch, the weights it repacks, the emitter and the harness cases that test it.
// The planner, scheduler, bundle writer, compiler driver and test harness are loops over this
// list; none of them knows a family by name. No LLVM types here (EmitContext is opaque; see
// codegen/llvm/emit_ir.h). How to add a family: docs/codegen.md, "Adding an op and its kernel".
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "codegen/kernels.h"
#include "ir/model.h"
#include "runtime/kernel_contract.h"

namespace ingot {

struct EmitContext;  // the LLVM module and target the emitters write to (codegen/llvm/emit_ir.h)

// One argument slot of a kernel call, in terms of the node the kernel computes.
struct KernelArg {
  enum class Kind { null, output, input, packed_input, state, scratch };
  Kind kind = Kind::null;
  int index = 0;         // output or input index
  std::string variable;  // state: the variable's name (its slot in the memory plan)

  static KernelArg none() { return {}; }
  static KernelArg output(int i) { return {Kind::output, i, {}}; }
  static KernelArg input(int i) { return {Kind::input, i, {}}; }
  static KernelArg packed(int i) { return {Kind::packed_input, i, {}}; }  // a constant, repacked (PackedWeight)
  static KernelArg state(std::string var) { return {Kind::state, 0, std::move(var)}; }
  static KernelArg scratch() { return {Kind::scratch, 0, {}}; }
};

// A constant input that a kernel reads in its own layout, packed at compile time.
struct PackedWeight {
  std::string layout;  // the bundle tensor's layout name ("matmul-packed")
  int64_t bytes = 0;
  std::function<StatusOr<std::vector<uint8_t>>(const void* src, size_t bytes)> pack;
};

// One harness case: a one-node model (its Parameters and Constants, then the node) with the rows
// it runs at; the harness fills the Parameters with random data, runs the reference evaluator and
// the kernel on 1..3 threads, and compares with NMSE.
struct KernelCase {
  std::string name;
  int64_t rows = 1;  // the value of the symbol `tokens`
  std::function<StatusOr<Node*>(Model& m)> build;
  // The largest NMSE accepted, justified where the case is defined; 0 means bitwise equal.
  double max_nmse = 0;
};

// The common case: Parameters in0, in1, ... of `inputs`' types and shapes, then `op` on them.
KernelCase node_case(std::string name, int64_t rows, Op op, std::vector<TensorType> inputs, AttrMap attrs = {},
                     double max_nmse = 0);

struct KernelFamily {
  const char* kind;     // the manifest's kernel kind and the symbol suffix
  const char* summary;  // one line, for docs and --help
  // Whether the family may compute this node's op (cheap); spec_for then says whether it can.
  bool (*computes)(const Node& node);
  // The kernel spec for a node (static sizes resolved); an error says why this family cannot.
  StatusOr<KernelSpec> (*spec_for)(const Node& node, const Model* model);
  // Everything that distinguishes two kernels of the family: identical keys share one symbol.
  std::string (*key)(const KernelSpec& spec);
  // The call's argument slots (the ABI of kernels.h) in terms of the node's values.
  StatusOr<std::vector<KernelArg>> (*args)(const Node& node, const KernelSpec& spec);
  // What the kernel reads and writes, slot by slot, as a function of its dims: stored in the
  // kernels object beside the code, checked by the runtime against every call's buffers, and the
  // source of the call's scratch size (its `scratch` slot). Must bound what the emitted code
  // touches for any dims: write it from the same layout the emitter uses.
  StatusOr<KernelContract> (*contract)(const KernelSpec& spec);
  // The repacked layout of a packed_input argument; null: none.
  std::optional<PackedWeight> (*packed_input)(const KernelSpec& spec, int input);
  // Adds the exported function spec.name to the context's module, for the context's CPU tier.
  Status (*emit)(EmitContext& context, const KernelSpec& spec);
  // The harness cases (odd sizes, every variant); null: tested elsewhere (say where).
  std::vector<KernelCase> (*cases)();
};

// Every family, hand-written kernels first and the generic MLIR path last.
std::span<const KernelFamily* const> kernel_families();
const KernelFamily* find_kernel_family(std::string_view kind);

// The kernel for a node: the first family (in registry order) that computes it and makes a spec,
// with spec.kind set. Nodes no family computes get an error that says what each family said.
StatusOr<KernelSpec> kernel_for_node(const Node& node, const Model* model);

// The spec's family (asserts that it exists: specs are made by the registry).
const KernelFamily& family_of(const KernelSpec& spec);

// The contract of a tensor argument whose only symbolic dimension is `tokens` (dims[0]), stored
// whole (plain or block element types); an error for any other symbol.
StatusOr<ArgContract> tensor_contract(const TensorType& t, ArgAccess access);

}  // namespace ingot
