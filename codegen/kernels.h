// Generated CPU kernels: what they compute (specs), the C ABI the runtime calls, the weight layouts
// they read (packed at compile time by pack_matmul_weights) and the compiler entry point that turns
// a list of specs into one shared object. No LLVM types here: this header is included by tools and
// tests, and its ABI part is what the runtime (which links no LLVM) relies on. See docs/codegen.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ir/attribute.h"
#include "ir/model.h"
#include "ir/element_type.h"
#include "ir/op_kind.h"
#include "ir/shape.h"
#include "runtime/kernel_contract.h"
#include "base/status.h"

namespace ingot {

class Node;

// ---------------------------------------------------------------- the C ABI
// Every generated kernel is an exported C function
//
//   extern "C" void NAME(const void* const* args, const int64_t* dims, int32_t thread, int32_t nthreads);
//
// args:  pointers to the kernel's buffers at fixed slots (below); unused slots may be null.
// dims:  the dynamic dimensions, dims[0] = rows (tokens), then at dims[kDimWorkCounter] the
//        address of a work counter (an int64 the caller zeroes before the call) or 0. Every caller
//        passes kDimWords words. Everything static is baked in.
// thread, nthreads: the caller runs the kernel once per thread index 0..nthreads-1, concurrently;
//        each call computes a disjoint part of the output (whole output panels or rows). Without
//        a work counter a thread's part follows from its index; with one (matmuls read it), the
//        threads take chunks of panels in turn from it, an atomic add each. No locks, no shared
//        writes: the runtime's pool only has to zero the counter, call and join.
using KernelFn = void (*)(const void* const* args, const int64_t* dims, int32_t thread, int32_t nthreads);
// kDimWorkCounter and kDimWords: runtime/kernel_contract.h (the runtime's side of this ABI).

// Argument slots of a matmul kernel (FusedMatMul / WeightMatMul).
enum MatMulArg : int {
  kMatMulY = 0,         // f32 [M, Nout] output (Nout = N, or N/2 with SwiGLU)
  kMatMulX = 1,         // f32 [M, K] activations
  kMatMulW = 2,         // the packed weight (pack_matmul_weights), 64-byte aligned
  kMatMulBias = 3,      // f32 [N]
  kMatMulCos = 4,       // f32 [M, head_dim/2]
  kMatMulSin = 5,       // f32 [M, head_dim/2]
  kMatMulResidual = 6,  // f32 [M, Nout]
  kMatMulScratch = 7,   // nthreads * scratch_bytes_per_thread(spec, M) bytes, 64-byte aligned
  kMatMulArgCount = 8,
};

// Argument slots of an RMSNorm kernel.
enum RMSNormArg : int { kRMSNormY = 0, kRMSNormX = 1, kRMSNormW = 2, kRMSNormArgCount = 3 };

// For the kernels below dims[0] = T (tokens of this call) and dims[1] = past (tokens already in the
// KV cache before this call); every kernel receives both.

// Argument slots of an Attention kernel. The K and V caches are [max_context, KV, D] in the cache
// variable's type (f32 or f16); the kernel writes the T fresh rows at positions past..past+T-1
// itself (split over threads, disjoint) and reads only positions < past from the caches: fresh
// keys and values are read from the inputs (rounded to the cache type), so no thread ever reads
// what another writes in the same call. See docs/codegen.md.
enum AttentionArg : int {
  kAttnY = 0,        // f32 [T, H*D]
  kAttnQ = 1,        // packed: qkv f32 [T, (H + 2*KV)*D]; separate: q f32 [T, H, D]
  kAttnK = 2,        // separate inputs only: k f32 [T, KV, D]
  kAttnV = 3,        // separate inputs only: v f32 [T, KV, D]
  kAttnKCache = 4,   // K cache base pointer, [max_context, KV, D] f32 or f16
  kAttnVCache = 5,   // V cache base pointer
  kAttnScratch = 6,  // nthreads * scratch_bytes_per_thread(spec, T) bytes, 64-byte aligned
  kAttnArgCount = 7,
};

// Argument slots of an Embedding kernel. Ids are clamped into [0, V) (the runtime refuses ids
// outside the vocabulary before the call; the clamp keeps reads in the table whatever the manifest).
enum EmbeddingArg : int {
  kEmbedY = 0,      // f32 [T, D]
  kEmbedIds = 1,    // i64 (or i32) [T]
  kEmbedTable = 2,  // the table as stored (ggml row layout: f32, f16, q8_0, q4_0, q2_k..q6_k, iq4_xs)
  kEmbedArgCount = 3,
};

// Argument slots of a RopeTable kernel: cos/sin of (pos + t) * inv_freq[j].
enum RopeTableArg : int {
  kRopeTableCos = 0,      // f32 [T, H]
  kRopeTableSin = 1,      // f32 [T, H]
  kRopeTablePos = 2,      // one i64 (or i32): the position of the first token
  kRopeTableInvFreq = 3,  // f32 [H]
  kRopeTableArgCount = 4,
};

// ---------------------------------------------------------------- specs
enum class RopeLayout { none, interleaved, rotate_half };

// y[M, Nout] = epilogues(x[M, K] * w[N, K]^T), the reference being FusedMatMul's in ir/ops.cpp:
// + bias; RoPE on the first rope_heads heads of head_dim columns; SwiGLU over the halves; + residual.
struct MatMulSpec {
  ElementType weight = ElementType::f32;  // f32, f16, q8_0, q4_0
  int64_t N = 0, K = 0;
  bool act_q8 = false;  // act_quant "q8": llama.cpp's activation numerics
  bool bias = false;
  RopeLayout rope = RopeLayout::none;
  int64_t rope_heads = 0, head_dim = 0;  // q + k heads rotated
  bool swiglu = false;
  bool residual = false;
  // Tuning: tokens per cache block (rounded up to whole tiles); 0 lets the layout choose.
  int64_t block_tokens = 0;
};

struct RMSNormSpec {
  int64_t D = 0;
  float eps = 1e-5f;
  // Rows of D per unit of dims[0] (x[tokens, heads, D]: heads, as in Qwen3's per-head Q/K norms);
  // when static_rows > 0 (a static shape of rank 1 or >= 3), dims[0] is not read.
  int64_t rows_per_dim0 = 1;
  int64_t static_rows = 0;
};

// Causal grouped-query attention over the KV cache (the Attention op): query head h uses KV head
// h / (H / KV); the fresh k, v rows are appended to the caches by the kernel.
struct AttentionSpec {
  int64_t H = 0, KV = 0, D = 0;  // query heads, KV heads, head_dim (a multiple of 8)
  bool packed = false;           // one qkv input [T, (H + 2*KV)*D] instead of q, k, v
  ElementType cache = ElementType::f32;  // f32 or f16 (the cache variables' type)
  float scale = 1.0f;
  float softcap = 0.0f;  // > 0: scores become softcap * tanh(score / softcap) (float_spec::softcap)
  int64_t window = 0;    // > 0: a query sees only the last `window` keys up to its own position
};

// Rows of a table in its stored type, dequantized to f32 (the Embedding op).
struct EmbeddingSpec {
  ElementType table = ElementType::f32;  // f32, f16, q8_0, q4_0, q2_k, q3_k, q4_k, q5_k, q6_k, iq4_xs
  int64_t V = 0, D = 0;
  bool ids_i32 = false;  // i32 ids instead of i64
};

// cos and sin of the rotary angles (the RopeTable op).
struct RopeTableSpec {
  int64_t H = 0;         // inverse frequencies (head_dim / 2)
  bool pos_i32 = false;  // an i32 position instead of i64
};

// The node itself, for families that need nothing beyond its op, attributes and types (GeGLU, and
// every op of the generic MLIR path): dim 0 of a value may be the symbol `tokens`, which is
// dims[0] at run time; every other dimension is static.
struct OpKernelSpec {
  Op op = Op::Add;
  AttrMap attrs;
  std::vector<TensorType> inputs, outputs;
  // The state variables a stateful op reads and writes (OpDef::state_attrs), as declared.
  std::vector<StateVariable> state;
};

// What one kernel computes. `kind` names its family in the registry (codegen/kernel_registry.h),
// which says which of the parts below the family reads.
struct KernelSpec {
  std::string name;  // the exported symbol
  std::string kind;  // the family: "matmul", "rms_norm", "attention", "embedding", "rope_table", ...
  MatMulSpec matmul;
  RMSNormSpec rms_norm;
  AttentionSpec attention;
  EmbeddingSpec embedding;
  RopeTableSpec rope_table;
  OpKernelSpec op;
};

// The kernel spec for a node, from the first family of the registry that computes it (static
// sizes required; Attention also needs the model, for the type of its cache variables).
StatusOr<KernelSpec> kernel_spec_for(const Node& node, const std::string& symbol);
class Model;
StatusOr<KernelSpec> kernel_spec_for(const Node& node, const std::string& symbol, const Model* model);

// Attention scratch: the token block of queries one work unit handles at a time, and the keys of
// one chunk (see docs/codegen.md).
constexpr int64_t kAttentionTokenBlock = 32;
constexpr int64_t kAttentionKeyChunk = 32;

// Byte offsets inside one thread's attention scratch: the key chunk's K and V rows staged as f32
// [chunk][D], then per query of a work unit (group * token block queries) the running output
// acc f32[D], max m and sum l of the online softmax.
struct AttentionScratch {
  int64_t queries = 0;
  int64_t k = 0, v = 0, acc = 0, m = 0, l = 0, total = 0;
};
AttentionScratch attention_scratch(const AttentionSpec& spec);

// ---------------------------------------------------------------- weight layouts
// How a matmul kernel sees its weight: output columns are computed in panels of `panel_rows`
// weight rows (lanes of `vectors` 8-wide registers), `tile_tokens` tokens at a time. The packed
// weight is panel after panel; see docs/codegen.md for the byte layout of each type.
struct MatMulLayout {
  int vectors = 1;            // 8-lane vectors per panel
  int panel_rows = 8;         // 8 * vectors weight rows per panel (with SwiGLU: half gate, half up)
  int out_cols = 8;           // output columns per panel (panel_rows, or panel_rows / 2 with SwiGLU)
  int tile_tokens = 4;        // register tile: tokens per inner step
  int group = 1;              // quantized weights: bytes of one row kept together (1, or 4 for int8 dots)
  int64_t panels = 0;         // ceil(Nout / out_cols)
  int64_t panel_bytes = 0;    // bytes of one packed panel
  int64_t packed_bytes = 0;   // panels * panel_bytes
  int64_t units = 0;          // work units split among threads
  int64_t panels_per_unit = 1;
  int64_t scratch_per_token = 0;  // per-thread scratch bytes per token (packed or quantized activations)
  int64_t tokens_per_block = 0;   // cache blocking over tokens
  int64_t tokens_per_block_avx512 = 0;  // the same on AVX-512 tiers (larger L2); scratch fits both
  // Float activations are packed one token block at a time, so their scratch holds at most
  // tokens_per_block tokens; q8 activations are quantized once for all M tokens.
  bool scratch_per_block = false;
};

// Checks what the generator supports and fills the layout.
StatusOr<MatMulLayout> matmul_layout(const MatMulSpec& spec);

// Packs an [N, K] weight in ggml's row layout (`src`, `src_bytes` long) into the kernel's layout.
// Plain C++, run by the compiler; the runtime maps the result and never repacks.
StatusOr<std::vector<uint8_t>> pack_matmul_weights(const MatMulSpec& spec, const void* src, size_t src_bytes);

// Weights of 32-element blocks beyond q8_0/q4_0 (q5_0, q4_1, q5_1, iq4_nl): packed bytes of one
// row of one block (layout.cpp, pack_block32_lane), 0 for any other type.
int64_t block32_packed_row_bytes(ElementType t, bool act_q8);

// Scratch bytes one thread needs for `tokens` rows (the kernel's scratch slot holds nthreads of these).
int64_t scratch_bytes_per_thread(const KernelSpec& spec, int64_t tokens);

// ---------------------------------------------------------------- compiling
struct CodegenOptions {
  // A CPU tier (x86-64-v2, x86-64-v3, x86-64-v4, avx512, amx; runtime/cpu_features.h) or "native", the best
  // tier this host runs. The kernels use exactly that tier's features.
  std::string cpu = "native";
  int opt_level = 3;
  std::string linker = "cc";   // driver used to link the shared object (brings memset/memcpy, libm)
  // Debug: matmul kernels store one lane too many in the last (partial) panel. Only for proving
  // that the test harness catches an off-by-one in a tail.
  bool debug_tail_overrun = false;
  // Test: the 8-bit matmul kernels take their VNNI branches (i32 sums from every 4-byte group)
  // with the VNNI instruction emulated in generic vector IR, so that a host without
  // AVX-512 VNNI checks the avx512 tier's arithmetic against the reference.
  bool emulate_vnni = false;
  // Test: the amx tier's tile steps on a host without AMX, the tile unit replaced by the same
  // integer arithmetic in plain IR (with emulate_vnni, the amx tier's kernels minus AVX-512).
  bool emulate_amx = false;
};

struct CompileStats {
  double emit_ms = 0, optimize_ms = 0, codegen_ms = 0, link_ms = 0;
  size_t object_bytes = 0;
};

// Generates, optimizes (O3 for the target) and links every kernel into one shared object at
// `so_path` (a temporary object file sits next to it while linking).
Status compile_kernels(const std::vector<KernelSpec>& kernels, const CodegenOptions& options,
                       const std::string& so_path, CompileStats* stats = nullptr);

// The optimized LLVM IR of the kernels as text (for inspection and debugging).
StatusOr<std::string> kernels_llvm_ir(const std::vector<KernelSpec>& kernels, const CodegenOptions& options,
                                      bool optimized = true);

}  // namespace ingot
