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

struct BundleContents {
  pb::Manifest manifest;           // everything but `tensors`, which the writer fills
  std::string kernels;             // the shared object's bytes; empty: no kernels section
  std::vector<BundleTensor> tensors;
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
// (FusedMatMul, WeightMatMul, RMSNorm; kernel_spec_for), named ingot_k<i>_<kind> in topological
// order, compiled for the host (compile_kernels) into one shared object.
struct BundleKernels {
  std::shared_ptr<const BundleKernelPlan> plan;
  std::string shared_object;               // empty when no node has a kernel
  size_t kernels = 0, nodes_covered = 0, nodes_without = 0;
  std::map<std::string, int> without;      // why nodes have no kernel yet -> count
  double compile_ms = 0;
};

// Plans and compiles the kernels and lists them in manifest.kernels.
// `cpu`: a CPU tier or "native" (codegen/kernels.h CodegenOptions::cpu).
StatusOr<BundleKernels> build_bundle_kernels(const Model& model, pb::Manifest& manifest, const std::string& cpu = "native");

// The weights: every Constant of the graph in topological order, as stored ("ggml"), and for each
// kernel that multiplies by it, once more packed in that kernel's layout (pack_matmul_weights, run
// when the tensor is written). A constant only used as a kernel's weight is stored packed only.
StatusOr<std::vector<BundleTensor>> bundle_tensors(const Model& model, const BundleKernels& kernels);

}  // namespace ingot
