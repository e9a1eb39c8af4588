// Ingot's limits on model shapes (frontend/limits.h) in every importer, and import work that grows
// linearly with the layer count: forged files are rejected at once, naming the file and the field.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "frontend/gguf.h"
#include "frontend/hf_config.h"
#include "frontend/importer.h"
#include "frontend/limits.h"
#include "frontend/llama_builder.h"
#include "frontend/safetensors.h"
#include "ir/builder.h"
#include "tests/common/files.h"
#include "tests/common/models.h"

namespace ingot {
namespace {

using ::ingot::testing::make_temp_dir;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// stories260K.gguf rewritten with some metadata replaced (and tensors whose names `drop` selects
// left out).
std::string patched_gguf(const std::string& src, const std::string& out, const std::map<std::string, GgufValue>& edits,
                         const std::function<bool(const std::string&)>& drop = nullptr) {
  auto f = GgufFile::open(src);
  EXPECT_TRUE(f.ok()) << f.message();
  if (!f.ok()) return out;
  GgufWriter w;
  for (const auto& [key, value] : (*f)->metadata()) {
    auto e = edits.find(key);
    w.set(key, e == edits.end() ? value : e->second);
  }
  for (const auto& [key, value] : edits)
    if (!(*f)->find(key)) w.set(key, value);
  for (const auto& t : (*f)->tensors()) {
    if (drop && drop(t.name)) continue;
    auto tensor = (*f)->tensor(t.name);
    EXPECT_TRUE(tensor.ok());
    EXPECT_TRUE(w.add_tensor(t.name, *tensor).ok());
  }
  Status st = w.write(out);
  EXPECT_TRUE(st.ok()) << st.message();
  return out;
}

TEST(ModelLimits, GgufBlockCountBeyondTheCapIsRejectedAtOnce) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  const std::string dir = make_temp_dir("limits_gguf");
  const std::string path = patched_gguf(model, dir + "/model.gguf", {{"llama.block_count", GgufValue::u32(4294967295u)}});
  const auto t0 = std::chrono::steady_clock::now();
  auto im = import_model(path);
  ASSERT_FALSE(im.ok());
  EXPECT_EQ(im.message(), path + ": llama.block_count = 4294967295 is more than the 4096 layers Ingot accepts");
  EXPECT_LT(seconds_since(t0), 2.0);
}

// Found by fuzz_import_gguf: an architecture of the wrong type said "expected a string, got u8"
// without naming the file or the key.
TEST(ModelLimits, GgufArchitectureOfTheWrongTypeNamesTheFileAndKey) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  const std::string dir = make_temp_dir("limits_arch");
  const std::string path = patched_gguf(model, dir + "/model.gguf", {{"general.architecture", GgufValue::u8(7)}});
  auto im = import_model(path);
  ASSERT_FALSE(im.ok());
  EXPECT_NE(im.message().find(path), std::string::npos) << im.message();
  EXPECT_NE(im.message().find("general.architecture"), std::string::npos) << im.message();
  EXPECT_NE(im.message().find("expected a string"), std::string::npos) << im.message();
}

TEST(ModelLimits, GgufEveryShapeFieldIsCapped) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  const std::string dir = make_temp_dir("limits_gguf_fields");
  struct Case {
    std::string key;
    GgufValue value;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"llama.embedding_length", GgufValue::u64(1ull << 40), "llama.embedding_length = 1099511627776 is more than the 131072 embedding dimensions"},
      {"llama.feed_forward_length", GgufValue::u32(1u << 31), "llama.feed_forward_length = 2147483648 is more than the 1048576 feed-forward dimensions"},
      {"llama.attention.head_count", GgufValue::u32(100000), "llama.attention.head_count = 100000 is more than the 4096 attention heads"},
      {"llama.attention.head_count_kv", GgufValue::u32(100000), "llama.attention.head_count_kv = 100000 is more than the 4096 attention heads"},
      {"llama.context_length", GgufValue::u64(1000000000), "llama.context_length = 1000000000 is more than the 4194304 context positions"},
      {"llama.attention.key_length", GgufValue::u32(1u << 20), "llama.attention.key_length = 1048576 is more than the 4096 dimensions per head"},
      {"llama.block_count", GgufValue::i32(-3), "llama.block_count = -3 must be positive"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.key);
    const std::string path = patched_gguf(model, dir + "/m.gguf", {{c.key, c.value}});
    auto im = import_model(path);
    ASSERT_FALSE(im.ok());
    EXPECT_NE(im.message().find(path + ": " + c.expected), std::string::npos) << im.message();
  }
}

// Within the cap, but the tensors stop after the file's real 5 layers: the first missing tensor
// is the error, found without building the thousands of layers after it.
TEST(ModelLimits, GgufStopsAtTheFirstMissingTensor) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  const std::string dir = make_temp_dir("limits_missing");
  const std::string path = patched_gguf(model, dir + "/model.gguf", {{"llama.block_count", GgufValue::u32(4096)}});
  const auto t0 = std::chrono::steady_clock::now();
  auto im = import_model(path);
  ASSERT_FALSE(im.ok());
  EXPECT_NE(im.message().find(path + ": tensor 'blk.5.attn_norm.weight' is missing"), std::string::npos) << im.message();
  EXPECT_LT(seconds_since(t0), 2.0);
}

// The builder's own check (for callers that bypass the importers).
TEST(ModelLimits, BuilderRejectsShapesBeyondTheCaps) {
  LlamaConfig c;
  c.vocab = 32;
  c.dim = 16;
  c.n_layers = 5000;
  c.n_heads = 2;
  c.n_kv_heads = 2;
  c.ffn = 32;
  c.max_context = 64;
  int calls = 0;
  WeightProvider none = [&](const std::string& name, const std::vector<int64_t>&) -> StatusOr<std::shared_ptr<const Tensor>> {
    ++calls;
    return Status::Error("no tensor " + name);
  };
  auto m = build_llama(c, none, "m");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.message().find("the layer count = 5000 is more than the 4096 layers Ingot accepts"), std::string::npos) << m.message();
  EXPECT_EQ(calls, 0);
  c.n_layers = 2;
  c.max_context = int64_t{1} << 40;
  m = build_llama(c, none, "m");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.message().find("the context length = 1099511627776 is more than the 4194304 context positions"), std::string::npos)
      << m.message();
}

TEST(ModelLimits, HfConfigFieldsAreCapped) {
  INGOT_MODEL_PATH(hf, "stories260K-hf");
  const std::string text = ::ingot::testing::read_file(hf + "/config.json");
  const nlohmann::json base = nlohmann::json::parse(text);
  struct Case {
    std::string key;
    int64_t value;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"num_hidden_layers", 4294967295, "num_hidden_layers = 4294967295 is more than the 4096 layers Ingot accepts"},
      {"hidden_size", int64_t{1} << 20, "hidden_size = 1048576 is more than the 131072 embedding dimensions Ingot accepts"},
      {"vocab_size", int64_t{1} << 30, "vocab_size = 1073741824 is more than the 4194304 vocabulary entries Ingot accepts"},
      {"max_position_embeddings", 1000000000, "max_position_embeddings = 1000000000 is more than the 4194304 context positions"},
      {"intermediate_size", int64_t{1} << 21, "intermediate_size = 2097152 is more than the 1048576 feed-forward dimensions"},
  };
  const std::string dir = make_temp_dir("limits_hf");
  for (const Case& c : cases) {
    SCOPED_TRACE(c.key);
    nlohmann::json j = base;
    j[c.key] = c.value;
    std::ofstream(dir + "/config.json") << j.dump();
    auto im = import_model(dir);
    ASSERT_FALSE(im.ok());
    EXPECT_NE(im.message().find(dir + "/config.json: " + c.expected), std::string::npos) << im.message();
  }
}

TEST(ModelLimits, RealShapesPass) {
  // A 405B-class shape (Llama 3.1 405B) is within every cap.
  EXPECT_TRUE(check_model_limit("f", "layers", 126, kMaxLayers).ok());
  EXPECT_TRUE(check_model_limit("f", "hidden", 16384, kMaxEmbedding).ok());
  EXPECT_TRUE(check_model_limit("f", "ffn", 53248, kMaxFeedForward).ok());
  EXPECT_TRUE(check_model_limit("f", "heads", 128, kMaxHeads).ok());
  EXPECT_TRUE(check_model_limit("f", "vocab", 262144, kMaxVocab).ok());
  EXPECT_TRUE(check_model_limit("f", "context", 131072, kMaxContext).ok());
}

std::string safetensors_with_header(const std::string& header) {
  std::string bytes(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) bytes[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  return bytes + header;
}

TEST(ModelLimits, SafetensorsShapesAreCapped) {
  const std::string dir = make_temp_dir("limits_st");
  const std::string path = dir + "/model.safetensors";
  // Empty (a 0 in the shape) so the file size does not bound it.
  std::ofstream(path, std::ios::binary)
      << safetensors_with_header(R"({"w": {"dtype": "F32", "shape": [0, 99999999999], "data_offsets": [0, 0]}})");
  auto f = SafetensorsFile::open(path);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.message().find("shape entry 1 = 99999999999 is more than the 4294967296 entries per dimension Ingot accepts"),
            std::string::npos)
      << f.message();
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      << safetensors_with_header(R"({"w": {"dtype": "F32", "shape": [1,1,1,1,1,1,1,1,1], "data_offsets": [0, 4]}})") << "abcd";
  f = SafetensorsFile::open(path);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.message().find("shape has 9 dimensions, more than the 8 Ingot accepts"), std::string::npos) << f.message();
}

// Name lookups are hashed: 200 000 variables and nodes are added in linear time (a scan per
// addition took minutes).
TEST(ModelScaling, AddingManyVariablesAndNodesIsLinear) {
  Model m("big");
  const int n = 200000;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) ASSERT_TRUE(m.add_variable({"kv." + std::to_string(i), ElementType::f32, {4, 2}}).ok());
  EXPECT_FALSE(m.add_variable({"kv.7", ElementType::f32, {4, 2}}).ok());
  EXPECT_NE(m.find_variable("kv.199999"), nullptr);
  EXPECT_EQ(m.find_variable("kv.200000"), nullptr);
  GraphBuilder b(m);
  for (int i = 0; i < n / 2; ++i) {
    Value p = b.parameter("p" + std::to_string(i), ElementType::f32, {Dim(1)});
    b.op(Op::Negative, {p});  // a generated name
  }
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_NE(m.find("p99999"), nullptr);
  EXPECT_EQ(m.nodes().size(), static_cast<size_t>(n));
  EXPECT_LT(seconds_since(t0), 10.0);
}

}  // namespace
}  // namespace ingot
