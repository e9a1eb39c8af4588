// Every GGUF weight type against ggml's own numerics, recorded by tests/scripts/record_ggml_quant.py
// into tests/data/ggml_quant_reference.json (no llama.cpp needed here): dequantization, the
// activation formats (q8_0, q8_1, q8_K) and the generic dot products, all bitwise.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ir/element_type.h"
#include "ir/ops.h"
#include "ir/quant.h"

namespace ingot {
namespace {

std::vector<uint8_t> unhex(const std::string& s) {
  std::vector<uint8_t> v(s.size() / 2);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>(std::stoi(s.substr(2 * i, 2), nullptr, 16));
  return v;
}

std::vector<uint32_t> words(const std::vector<uint8_t>& b) {
  std::vector<uint32_t> w(b.size() / 4);
  std::memcpy(w.data(), b.data(), w.size() * 4);
  return w;
}

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

const nlohmann::json& reference() {
  static const nlohmann::json doc = [] {
    std::ifstream in(std::string(INGOT_TEST_DATA_DIR) + "/ggml_quant_reference.json");
    INGOT_ASSERT(in.good(), "tests/data/ggml_quant_reference.json is missing");
    return nlohmann::json::parse(in);
  }();
  return doc;
}

const std::vector<std::string> kTypes = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1",
                              "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "iq4_nl", "iq4_xs"};

class GgmlTypes : public ::testing::TestWithParam<std::string> {};

TEST_P(GgmlTypes, DequantizationIsBitwiseGgmls) {
  const auto& doc = reference();
  const auto& e = doc["types"][GetParam()];
  const ElementType t = *parse_element_type(GetParam());
  ASSERT_EQ(type_info(t).ggml_type, e["ggml_type"].get<int>());
  ASSERT_EQ(element_type_from_ggml(e["ggml_type"].get<int>()), t);
  const std::vector<uint8_t> w = unhex(e["weights"]);
  const std::vector<uint32_t> want = words(unhex(e["dequantized"]));
  const int64_t n = static_cast<int64_t>(want.size());
  ASSERT_EQ(*storage_bytes(t, n), static_cast<int64_t>(w.size()));
  std::vector<float> got(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (t == ElementType::f32) std::memcpy(&got[i], w.data() + 4 * i, 4);
    else if (t == ElementType::f16 || t == ElementType::bf16) {
      uint16_t h;
      std::memcpy(&h, w.data() + 2 * i, 2);
      got[i] = t == ElementType::f16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
  }
  if (type_info(t).is_quantized) dequantize_row(t, w.data(), got.data(), n);
  int wrong = 0;
  for (int64_t i = 0; i < n; ++i)
    if (bits(got[i]) != want[i] && ++wrong <= 5) ADD_FAILURE() << GetParam() << " element " << i << ": " << got[i];
  EXPECT_EQ(wrong, 0);
}

TEST_P(GgmlTypes, ActivationsAndDotProductsAreBitwiseGgmls) {
  const auto& doc = reference();
  const auto& e = doc["types"][GetParam()];
  const ElementType t = *parse_element_type(GetParam());
  if (!type_info(t).is_quantized) GTEST_SKIP() << "float weights: no 8-bit dot product";
  EXPECT_TRUE(weight_matmul_supports_act_ggml(t));
  const int64_t n = doc["n"], rows = doc["rows"], acts = doc["acts"];
  const std::vector<uint8_t> w = unhex(e["weights"]);
  const std::vector<uint8_t> x_bytes = unhex(e["activations"]);
  std::vector<float> x(x_bytes.size() / 4);
  std::memcpy(x.data(), x_bytes.data(), x_bytes.size());
  const std::vector<uint8_t> want_act = unhex(e["quantized_activations"]);
  const std::vector<uint32_t> want_dots = words(unhex(e["dots"]));
  const int64_t act_bytes = ggml_act_row_bytes(ggml_act_format(t), n);
  ASSERT_EQ(act_bytes * acts, static_cast<int64_t>(want_act.size()));
  std::vector<uint8_t> act(want_act.size());
  for (int64_t a = 0; a < acts; ++a) ggml_quantize_activations(t, x.data() + a * n, act.data() + a * act_bytes, n);
  EXPECT_TRUE(act == want_act) << "activation blocks differ from ggml's from_float";
  const int64_t row_bytes = *storage_bytes(t, n);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t a = 0; a < acts; ++a) {
      // Against ggml's own activation blocks, so a dot product is checked even if quantization is not.
      const float got = ggml_vec_dot(t, w.data() + r * row_bytes, want_act.data() + a * act_bytes, n);
      EXPECT_EQ(bits(got), want_dots[static_cast<size_t>(r * acts + a)]) << GetParam() << " row " << r << " activations " << a << ": " << got;
    }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, GgmlTypes, ::testing::ValuesIn(kTypes),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ingot
