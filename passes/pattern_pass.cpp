#include "passes/pattern_pass.h"

namespace ingot {
namespace {

class PatternPass : public Pass {
 public:
  PatternPass(std::string name, std::vector<RewritePattern> patterns, int max_iterations)
      : name_(std::move(name)), patterns_(std::move(patterns)), max_iterations_(max_iterations) {}
  const char* name() const override { return name_.c_str(); }
  StatusOr<bool> run(Model& m) override { return apply_patterns_greedily(m, patterns_, max_iterations_); }

 private:
  std::string name_;
  std::vector<RewritePattern> patterns_;
  int max_iterations_;
};

}  // namespace

std::unique_ptr<Pass> make_pattern_pass(std::string name, std::vector<RewritePattern> patterns, int max_iterations) {
  return std::make_unique<PatternPass>(std::move(name), std::move(patterns), max_iterations);
}

}  // namespace ingot
