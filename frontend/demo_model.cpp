#include "frontend/demo_model.h"

#include <cmath>
#include <cstdio>

#include "frontend/random.h"

namespace ingot {

LlamaConfig demo_config() {
  LlamaConfig c;
  c.vocab = 258;  // 256 bytes + BOS + EOS
  c.dim = 32;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;  // grouped-query attention, as in most current LLaMAs
  c.ffn = 96;
  c.max_context = 256;
  c.rms_eps = 1e-5;
  c.rope_base = 10000.0;
  c.rope_layout = RopePairs::Interleaved;
  return c;
}

StatusOr<std::unique_ptr<Model>> build_demo_model(uint64_t seed) {
  Random rng(seed);
  WeightProvider weights = [&](const std::string& name, const std::vector<int64_t>& shape)
      -> StatusOr<std::shared_ptr<const Tensor>> {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> v;
    if (shape.size() == 1) {
      v = rng.uniform_f32(static_cast<size_t>(n), 0.8, 1.2);  // norm gains near 1
    } else {
      double a = std::sqrt(3.0 / static_cast<double>(shape[1]));  // unit-variance outputs
      v = rng.uniform_f32(static_cast<size_t>(n), -a, a);
    }
    return std::make_shared<const Tensor>(Tensor::from_f32(shape, v));
  };
  return build_llama(demo_config(), weights, "demo");
}

std::vector<int64_t> demo_tokenize(const std::string& text) {
  std::vector<int64_t> ids = {kDemoBos};
  for (unsigned char ch : text) ids.push_back(ch);
  return ids;
}

std::string demo_token_text(int64_t id) {
  if (id == kDemoBos) return "<bos>";
  if (id == kDemoEos) return "<eos>";
  if (id >= 0x20 && id < 0x7f) return std::string(1, static_cast<char>(id));
  char buf[8];
  std::snprintf(buf, sizeof(buf), "<0x%02X>", static_cast<unsigned>(id & 0xff));
  return buf;
}

}  // namespace ingot
