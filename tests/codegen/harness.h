// The codegen test harness, in the style of ggml's test-backend-ops: one small case struct per op
// and configuration, random inputs, the kernel run on 1..3 real threads, normalized mean squared
// error against the reference evaluator (a one-node IR model), sentinel bytes around every buffer
// the kernel writes. The microbenchmark (bench/) drives the same cases.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "codegen/kernels.h"
#include "ir/model.h"
#include "ir/tensor.h"

namespace ingot::cgtest {

// A shared object of generated kernels, opened with dlopen: the runtime side of the ABI, as the
// bundle loader (issue 7) will do it.
class KernelLibrary {
 public:
  static StatusOr<std::unique_ptr<KernelLibrary>> open(const std::string& path);
  ~KernelLibrary();
  KernelFn find(const std::string& symbol) const;  // null if absent

 private:
  void* handle_ = nullptr;
};

// Compiles `kernels` into a temporary shared object, opens it and deletes the file.
StatusOr<std::unique_ptr<KernelLibrary>> compile_and_open(const std::vector<KernelSpec>& kernels,
                                                          const CodegenOptions& options, CompileStats* stats = nullptr);

struct MatMulCase {
  ElementType weight = ElementType::f32;
  int64_t M = 1, N = 8, K = 32;
  bool act_q8 = false;
  bool bias = false;
  RopeLayout rope = RopeLayout::none;
  int64_t rope_heads = 0, head_dim = 0;
  bool swiglu = false;
  bool residual = false;
  int64_t block_tokens = 0;  // MatMulSpec::block_tokens (0: the layout's choice)
  std::string name() const;         // the case, for messages
  std::string kernel_name() const;  // the kernel's symbol: everything but the dynamic M
};

struct RMSNormCase {
  int64_t M = 1, D = 8;
  float eps = 1e-5f;
  std::string name() const;
  std::string kernel_name() const;
};

// Inputs, the reference output and the packed weight of one case.
struct CaseData {
  KernelSpec spec;
  Model model;                         // the one-node reference graph
  std::map<std::string, Tensor> inputs;  // its Parameters
  std::vector<float> x, bias, cos, sin, residual, norm_weight;
  std::vector<uint8_t> packed;         // pack_matmul_weights (matmul cases)
  std::vector<float> expected;         // the reference evaluator's output
  int64_t rows = 0, out_cols = 0;
};

StatusOr<std::unique_ptr<CaseData>> make_case(const MatMulCase& c, uint64_t seed, bool with_reference = true);
StatusOr<std::unique_ptr<CaseData>> make_case(const RMSNormCase& c, uint64_t seed, bool with_reference = true);

struct RunResult {
  double nmse = 0;            // sum((y - ref)^2) / sum(ref^2); NaN if anything was left unwritten
  bool sentinels_ok = true;   // no byte written outside the output and scratch buffers
  std::string problem;        // what went wrong, empty when nothing did
  int64_t unwritten = 0;      // outputs left NaN (the output starts NaN)
};

// Runs the kernel on `threads` real threads (thread index 0..threads-1) and checks it.
// With `work_counter` (the runtime's way) the threads take chunks of panels from a shared
// counter; without, each computes the part its index gives it. `only_thread` >= 0 runs that one
// thread index of `threads` and no other (as if the others had not started yet).
RunResult run_case(KernelFn fn, const CaseData& d, int threads, bool work_counter = true, int only_thread = -1);

// Runs the kernel without checks, for timing: `threads` threads, `iterations` calls each,
// returns seconds per call (the threads are started once and synchronize with a barrier after
// every call). With weight_copies > 1 the calls rotate through that many copies of the packed
// weight, so that a working set larger than the caches is streamed from memory.
double time_kernel(KernelFn fn, const CaseData& d, int threads, int iterations, int weight_copies = 1);

// CPU tiers as test parameters: every tier's name, a test-name form of one ("x86_64_v3"), and
// what this host lacks to run one ("" when it runs it; a test then skips with that reason).
std::vector<std::string> tier_names();
std::string tier_test_name(const std::string& tier);
std::string host_lacks_tier(const std::string& tier);
std::string best_host_tier();  // the best tier this host runs ("" below every tier)

// Why a per-tier test skips `tier` here ("" when it runs): the host cannot run it, or this is the
// sanitizer build (codegen_tests with INGOT_SANITIZER_BUILD) and the tier is not the host's best:
// the generated kernels are not instrumented, so each further tier runs the same harness code
// under the sanitizers again (CI's time: 20-25 s a tier and test on AMD Zen 5; the release build
// runs every tier).
inline std::string tier_skip_reason(const std::string& tier) {
  if (std::string lacks = host_lacks_tier(tier); !lacks.empty()) return "this host cannot run tier " + tier + ": " + lacks;
#ifdef INGOT_SANITIZER_BUILD
  if (tier != best_host_tier()) return "sanitizer build: tier " + best_host_tier() + " only (the release build runs " + tier + ")";
#endif
  return "";
}

}  // namespace ingot::cgtest
