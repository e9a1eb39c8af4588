// dce: removes nodes whose values nobody uses. Parameters, Results and Assigns always stay: they
// are the model's interface and its state updates.
#include "passes/generic_passes.h"

namespace ingot {
namespace {

class DeadCodeElimination : public Pass {
 public:
  const char* name() const override { return "dce"; }
  StatusOr<bool> run(Model& m) override { return m.remove_dead_nodes() > 0; }
};

}  // namespace

std::unique_ptr<Pass> create_dce_pass() { return std::make_unique<DeadCodeElimination>(); }

}  // namespace ingot
