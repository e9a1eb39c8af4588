// Synthetic LLaMA models: random weights of a real model's shape, written as a GGUF that llama.cpp
// loads. For benchmarks and tests at sizes no test fixture ships (TinyLlama-1.1B in a few seconds).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "frontend/gguf.h"
#include "ir/element_type.h"
#include "base/status.h"

namespace ingot {

struct SynthShape {
  std::string name;
  int64_t vocab = 0;
  int64_t dim = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t ffn = 0;
  int64_t context = 0;
  // llama.cpp's architecture name: llama, qwen2, qwen3, gemma2, gemma3 or phi3, or llama3 (a
  // "llama" GGUF with LLaMA 3.2's RoPE base, llama3 scaling as rope_freqs, tied embeddings), or
  // smollm2 (a "llama" GGUF with SmolLM2's RoPE base and tied embeddings, whose --vocab gets
  // llama.cpp's "smollm" pre-tokenizer). Phi-3 carries LongRoPE factors.
  // Each gets its own tensors and hyper-parameters (see synth.cpp); Gemma's sliding window is 3
  // positions, so that short prompts exercise it, and Gemma 3 alternates local and global layers.
  std::string arch = "llama";
};

std::vector<std::string> synth_archs();

// A known shape by name: "tiny", "s110m" (llama2.c stories110M), "tinyllama-1.1b".
StatusOr<SynthShape> synth_shape(const std::string& name);
std::vector<std::string> synth_shape_names();

// Writes a GGUF of `shape.arch` with random weights, deterministic by `seed`. 2-D weights are stored as
// `weight_type` (f32, f16, q8_0, q4_0, q4_k or q6_k), or as f16 where a row is not whole blocks (as
// llama.cpp does); norms are f32. With `vocab`, every `tokenizer.*` key is copied from it and the
// vocabulary size is its token count; without, a small byte-fallback SentencePiece vocabulary of
// `shape.vocab` tokens is made up. `progress` (may be empty) receives fractions from 0 to 1.
Status synth_model(const SynthShape& shape, ElementType weight_type, const GgufFile* vocab, uint64_t seed,
                   const std::string& out_path, std::function<void(double)> progress);

// The same random model (same shape, architecture and seed: the same values) as a Hugging Face
// folder: config.json, model.safetensors (F32) and the tokenizer files of `tokenizer_dir`
// (tokenizer.json, tokenizer.model, tokenizer_config.json: those present), whose token count is
// the vocabulary size. Weights are what transformers' checkpoints hold for the GGUF's values:
// LLaMA's Q/K rows in rotate-half order (llama.cpp's converter permutes them the other way),
// Gemma's norms as w - 1 (its RMSNorm multiplies by 1 + w), names in Hugging Face's spelling.
// Ingot then gives the same logits from both (tests/scripts/arch_reference_check.py).
Status synth_hf_folder(const SynthShape& shape, uint64_t seed, const std::string& tokenizer_dir, const std::string& out_dir);

}  // namespace ingot
