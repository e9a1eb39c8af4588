// Writing a bundle (*.ingot, docs/bundle.md): the manifest, the kernels' shared object and the
// weights, each in its own page-aligned section with its SHA-256 in the section table. Weights are
// streamed to the file one tensor at a time (ir Buffers are read piece by piece, so a lazy
// concatenation is never materialized; packed tensors are produced just before they are written).
// The file appears only when complete: it is written under a temporary name next to the target
// and renamed. The output is a function of the inputs alone (no time stamps, no paths, the order
// given), so the same compile gives byte-identical bundles. Plain C++: no LLVM here.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "ir/tensor.h"
#include "runtime/proto/bundle.pb.h"

namespace ingot {

class SigningKey;  // codegen/bundle_signer.h

struct BundleTensor {
  std::string name;
  std::string type;                // element type name
  std::vector<int64_t> shape;
  std::string layout = "ggml";     // "ggml" or "matmul-packed"
  std::string kernel;              // packed: the kernel symbol whose layout this is
  uint64_t size = 0;               // bytes; the source must deliver exactly this many
  // The bytes: either a buffer (streamed), or a producer called once while writing.
  std::shared_ptr<const Buffer> buffer;
  std::function<StatusOr<std::vector<uint8_t>>()> produce;
};

// The kernels compiled for one CPU tier: one shared object, one kernels section.
struct BundleKernelSet {
  std::string tier, llvm_cpu;
  std::vector<std::string> features;  // exactly the tier's (cpu_tiers())
  std::string shared_object;          // the bytes
  bool from_cache = false;            // taken from the kernel cache (codegen/kernel_cache.h), not compiled
};

struct BundleContents {
  pb::Manifest manifest;           // everything but `tensors` and `kernel_sets`, which the writer fills
  // One kernels section each, in this order (most portable first); empty: no kernels section.
  std::vector<BundleKernelSet> kernel_sets;
  std::vector<BundleTensor> tensors;
  // Writes the format from before kernel sets: at most one kernels section, and no
  // manifest.kernel_sets (the provenance names its tier). Only for tests that such bundles load.
  bool without_kernel_sets = false;
  // When set, a signature section by this key ends the file (codegen/bundle_signer.h).
  std::shared_ptr<const SigningKey> signing_key;
  // When set, called after each section and each tensor with the bytes written so far and the
  // file's size (progress of a long write: gigabytes of weights).
  std::function<void(uint64_t written, uint64_t total)> progress;
};

struct BundleWriteStats {
  uint64_t file_bytes = 0, manifest_bytes = 0, kernels_bytes = 0, weights_bytes = 0;
};

// Fills contents.manifest.tensors (offsets within the weights section) and writes `path`.
Status write_bundle(const std::string& path, BundleContents& contents, BundleWriteStats* stats = nullptr);

// ---------------------------------------------------------------- from a compiled model
class Model;
struct BundleKernelPlan;  // the kernel specs (codegen/kernels.h), kept out of this header

// The kernels of an optimized model: one per distinct spec among the nodes codegen supports
// (kernel_spec_for), named ingot_k<i>_<kind> in topological order. The plan (specs, packed
// weights, scratch) does not depend on the CPU tier; each tier compiles the same specs into its
// own shared object (compile_kernels).
struct BundleKernels {
  std::shared_ptr<const BundleKernelPlan> plan;
  std::vector<BundleKernelSet> sets;       // one per tier, in the order asked; none when no node has a kernel
  std::vector<double> set_compile_ms;      // per set
  size_t kernels = 0, nodes_covered = 0, nodes_without = 0;
  std::map<std::string, int> without;      // why nodes have no kernel yet -> count
  double compile_ms = 0;                   // wall time of all sets
  std::string kernel_cache_problem;        // why a set could not be stored in the kernel cache (the first), if one could not
};

// Called as each tier's kernels are compiled (from the thread that compiled them, one call at a
// time): the set and its compile time.
using KernelSetProgress = std::function<void(const BundleKernelSet&, double ms)>;

// Plans the kernels, lists them in manifest.kernels and compiles them once per CPU tier in
// `tiers` (tier names; codegen/kernels.h CodegenOptions::cpu), the tiers concurrently (a thread
// each, each with its own LLVM context and target machine; at most hardware_concurrency() at once).
StatusOr<BundleKernels> build_bundle_kernels(const Model& model, pb::Manifest& manifest,
                                             const std::vector<std::string>& tiers,
                                             const KernelSetProgress& progress = nullptr);

// The weights: every Constant of the graph in topological order, as stored ("ggml"), and for each
// kernel that multiplies by it, once more packed in that kernel's layout (pack_matmul_weights, run
// when the tensor is written). A constant only used as a kernel's weight is stored packed only.
StatusOr<std::vector<BundleTensor>> bundle_tensors(const Model& model, const BundleKernels& kernels);

}  // namespace ingot
