// What quantization costs, layer by layer and end to end, measured with the reference evaluator
// on calibration tokens.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir/model.h"
#include "base/status.h"

namespace ingot {

// One matmul whose weight type differs between the reference and the quantized model. Its
// quantized output is compared with x * W_ref^T on the same input x (the quantized model's own
// activations), so each number is that layer's error alone, not the error accumulated upstream.
struct MatmulAccuracy {
  std::string weight;  // tensor name
  std::string node;    // the matmul node in the quantized model
  std::string reference_type, quantized_type;
  double sqnr_db = 0;  // 10 log10(sum y_ref^2 / sum (y_ref - y_q)^2); inf when identical
  double cosine = 0;   // cosine similarity of y_ref and y_q
  int64_t elements = 0;
};

struct AccuracyReport {
  int64_t calib_tokens = 0;
  std::vector<MatmulAccuracy> matmuls;  // in execution order
  // Next-token distributions at every calibration position (tokens - 1 predictions).
  double kl_mean = 0, kl_max = 0;       // KL(reference || quantized), nats
  double top1_agreement = 0;            // fraction of positions whose argmax agrees
  double ppl_reference = 0, ppl_quantized = 0;  // perplexity of the calibration text
  std::string table() const;            // the printed report
  std::string json() const;             // the --accuracy-report file
};

// Runs both models on `tokens` in one call (inputs token_ids [T] and pos = 0; the models must
// return logits for every position: import with all_logits) and measures every matmul whose
// weight constant (found by name) has a different type in `quantized` than in `reference`.
// Both should be unfused graphs so that each weight has its own matmul.
StatusOr<AccuracyReport> measure_quantization_accuracy(const Model& reference, const Model& quantized,
                                                       const std::vector<int64_t>& tokens);

}  // namespace ingot
