// The LLM fusions: each turns a primitive subgraph, as frontend/llama_builder emits it, into one
// fused op (ir/ops.cpp: RMSNorm, RoPE, SwiGLU, Attention, FusedMatMul). Each returns whether it
// changed the model; each leaves the model verifiable and numerically equivalent (the fused
// ops' reference kernels compute what the subgraphs compute, up to f32 rounding).
#pragma once

#include "ir/model.h"
#include "base/status.h"

namespace ingot::fusion {

// x / sqrt(mean(x^2, -1) + eps) * w -> RMSNorm(x, w){eps}.
StatusOr<bool> fuse_rms_norm(Model& m);
// (g * sigmoid(g)) * u -> SwiGLU(g, u).
StatusOr<bool> fuse_swiglu(Model& m);
// The interleaved-pair and rotate-half rotations over cos/sin tables -> RoPE(x, cos, sin){layout}.
StatusOr<bool> fuse_rope(Model& m);
// ReadValue -> Concat -> Assign caches, repeated KV heads, QK^T * scale, causal mask, softmax, PV
// -> Attention(q, k, v){k_variable, v_variable, scale}, which owns the cache update.
StatusOr<bool> fuse_attention(Model& m);
// MatMul(x, w^T) with a constant weight (possibly behind a Convert) and WeightMatMul
// -> FusedMatMul(x, w) on the stored weight.
StatusOr<bool> matmul_to_fused(Model& m);
// Gather(Convert(table), ids) of a constant table -> Embedding (rows converted on lookup).
StatusOr<bool> fuse_embedding(Model& m);
// Range -> Convert -> Reshape -> * inv_freq -> Cos, Sin -> RopeTable (both tables, one op).
StatusOr<bool> fuse_rope_table(Model& m);
// FusedMatMul + constant bias -> FusedMatMul{has_bias}.
StatusOr<bool> fuse_bias(Model& m);
// Several epilogue-free FusedMatMuls of one input with weights of one type -> one FusedMatMul
// with the weights (and biases) concatenated, and Slices of its output.
StatusOr<bool> merge_parallel_matmuls(Model& m);
// RoPE of the q and k column ranges of a merged projection -> the RoPE epilogue.
StatusOr<bool> fuse_rope_into_matmul(Model& m);
// Attention of q/k/v column ranges of one projection -> the packed one-input Attention.
StatusOr<bool> pack_attention(Model& m);
// SwiGLU of the two halves of one projection -> the SwiGLU epilogue.
StatusOr<bool> fuse_swiglu_into_matmul(Model& m);
// x + FusedMatMul(..) -> FusedMatMul{has_residual}(.., x).
StatusOr<bool> fuse_residual(Model& m);
// Slice(RMSNorm(x), last row) -> RMSNorm(Slice(x)): the final norm for the last position only.
StatusOr<bool> last_position_first(Model& m);

}  // namespace ingot::fusion
