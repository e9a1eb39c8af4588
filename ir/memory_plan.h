// Memory plans: every activation of a model at a fixed offset in one arena, every state variable
// (the KV cache) in a slot of a second arena. Made by the memory-planning pass
// (passes/memory_planning.h), stored on the model, checked here, and followed by the reference
// evaluator when asked (Evaluator::set_memory_plan), so a wrong plan shows as wrong results.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ir/shape.h"
#include "base/status.h"

namespace ingot {

class Model;

struct MemoryPlan {
  // The bounds every size is the maximum over: 1 <= tokens <= max_batch, 0 <= past and
  // past + tokens <= max_context (max_context 0: the model has no state and past is 0).
  int64_t max_batch = 0;
  int64_t max_context = 0;
  int64_t alignment = 64;

  // Execution order: every node's name (Constants included), inputs before users. Steps below
  // are indices into it.
  std::vector<std::string> order;

  // One buffer per output of every node that is not a Constant (weights stay where they are).
  struct Buffer {
    std::string node;
    int output = 0;
    int64_t offset = 0;  // in the arena, a multiple of the alignment
    int64_t bytes = 0;   // the value's largest size, rounded up to the alignment
    // Live from the step that writes it to the step of its last reader; Parameters from step 0
    // (the runtime copies the inputs in before the first step), Results to the last step.
    int first_step = 0, last_step = 0;
    // "node:output" of the buffer whose bytes this one takes over, or empty. In place: the node
    // overwrites that input, whose last use it is, element by element. View (`view` true): the
    // node writes nothing, the value is those same bytes (Reshape, Result).
    std::string in_place_of;
    bool view = false;
  };
  std::vector<Buffer> buffers;  // in execution order, then by output

  // One slot per state variable, sized by its declared maximum shape.
  struct StateSlot {
    std::string variable;
    int64_t offset = 0, bytes = 0;
  };
  std::vector<StateSlot> state;

  int64_t arena_bytes = 0;        // the activation arena
  int64_t naive_bytes = 0;        // every buffer on its own: no reuse, no in-place (views excluded)
  int64_t lower_bound_bytes = 0;  // the most bytes live at any one step (aliased buffers once)
  int64_t state_bytes = 0;        // the state arena
  int64_t kv_bytes_per_token = 0; // state bytes one more token of context takes

  // The buffer of one value; null when there is none.
  const Buffer* find(std::string_view node, int output = 0) const;
};

// "node:output", as Buffer::in_place_of names a value.
std::string memory_value_name(std::string_view node, int output);

// The largest storage size of a value of type `t`, in bytes, over the bounds above. An unknown
// dimension or a symbol other than tokens and past is an error.
StatusOr<int64_t> max_storage_bytes(const TensorType& t, int64_t max_batch, int64_t max_context);

// The context bound of a model: the largest max_shape[0] of its state variables, 0 without any.
int64_t model_max_context(const Model& m);

// Checks a plan against the model, exhaustively: the order is a topological order of every node;
// every non-Constant value has exactly one buffer, aligned, inside the arena, at least as large
// as the value can be, and live at least from its producer's step to its last reader's; no two
// buffers whose live ranges overlap share a byte unless one takes over the other (in place, at the
// step of the hand-over, or as a view); every state variable has its own slot, large enough.
Status check_memory_plan(const Model& m, const MemoryPlan& plan);

// The statistics, readable: arena, naive, lower bound, state, KV bytes per token.
std::string memory_plan_report(const MemoryPlan& plan);
// The statistics, then one line per buffer in execution order (step, node, op, type, offset,
// bytes, live range, reuse) and one per state slot. Deterministic: for dumps and text tests.
std::string print_memory_plan(const Model& m, const MemoryPlan& plan);
// 1536 -> "1.5 KiB", 64 -> "64 B".
std::string format_byte_size(int64_t bytes);

}  // namespace ingot
