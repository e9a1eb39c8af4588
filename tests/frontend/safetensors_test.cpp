#include "frontend/safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "tests/common/files.h"
#include "tests/common/models.h"

namespace ingot {
namespace {

using nlohmann::json;

// --- Helpers: safetensors files written by hand ---------------------------------------------------

struct RawTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

std::string u64_le(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  return s;
}

// Length prefix + header text + data, with no checks: the corruption tests' raw material.
std::string assemble(const std::string& header, const std::string& data) { return u64_le(header.size()) + header + data; }

// A well-formed file as the safetensors library writes it: tensors back to back in the given
// order, header padded with spaces to a multiple of 8 so that data stays aligned.
std::string make_safetensors(const std::vector<RawTensor>& tensors, const json& metadata = nullptr) {
  json header = json::object();
  std::string data;
  for (const auto& t : tensors) {
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data += t.bytes;
  }
  if (!metadata.is_null()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text += ' ';
  return assemble(text, data);
}

template <typename T>
std::string bytes_of(const std::vector<T>& values) {
  std::string s(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(s.data(), values.data(), s.size());
  return s;
}

StatusOr<std::unique_ptr<SafetensorsFile>> parse_safetensors_bytes(const std::string& bytes, const std::string& name = "t.safetensors") {
  return SafetensorsFile::parse(MappedFile::from_bytes(name, bytes));
}

std::string safetensors_temp_dir() { return ::ingot::testing::make_temp_dir("safetensors_test"); }

using ::ingot::testing::write_file;

// --- The real model ----------------------------------------------------------------------------

TEST(SafetensorsTest, ReadsStories260K) {
  INGOT_MODEL_PATH(path, "stories260K-hf/model.safetensors");
  auto mapped = MappedFile::open(path);
  ASSERT_TRUE(mapped.ok()) << mapped.message();
  std::shared_ptr<MappedFile> file = *mapped;
  auto st = SafetensorsFile::parse(file);
  ASSERT_TRUE(st.ok()) << st.message();

  // embed + final norm + 5 layers x (q, k, v, o, gate, up, down, 2 norms); tied: no lm_head.
  EXPECT_EQ((*st)->tensors().size(), 47u);
  EXPECT_EQ((*st)->find("lm_head.weight"), nullptr);

  const SafetensorsTensorInfo* q = (*st)->find("model.layers.0.self_attn.q_proj.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->type, ElementType::f32);
  EXPECT_EQ(q->dtype, "F32");
  EXPECT_EQ(q->shape, (std::vector<int64_t>{64, 64}));
  EXPECT_EQ(q->bytes, 64u * 64u * 4u);
  const SafetensorsTensorInfo* k = (*st)->find("model.layers.4.self_attn.k_proj.weight");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->shape, (std::vector<int64_t>{32, 64}));  // 4 KV heads x head_dim 8
  const SafetensorsTensorInfo* down = (*st)->find("model.layers.2.mlp.down_proj.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->shape, (std::vector<int64_t>{64, 172}));

  auto embed = (*st)->tensor("model.embed_tokens.weight");
  ASSERT_TRUE(embed.ok()) << embed.message();
  EXPECT_EQ((*embed)->shape(), (std::vector<int64_t>{512, 64}));
  EXPECT_EQ((*embed)->type(), ElementType::f32);
  // Zero copy: the tensor's bytes are inside the mapping, at the header's offset.
  ASSERT_TRUE((*embed)->buffer()->is_view());
  const SafetensorsTensorInfo* info = (*st)->find("model.embed_tokens.weight");
  EXPECT_EQ((*embed)->raw(), file->data() + info->offset);
  EXPECT_GE(info->offset, (*st)->data_offset());
  EXPECT_LE(info->offset + info->bytes, file->size());
  for (int64_t i = 0; i < (*embed)->numel(); i += 97) EXPECT_TRUE(std::isfinite((*embed)->get_f(i)));

  // Norm weights of a trained model are not all zero.
  auto norm = (*st)->tensor("model.norm.weight");
  ASSERT_TRUE(norm.ok()) << norm.message();
  double sum = 0;
  for (int64_t i = 0; i < (*norm)->numel(); ++i) sum += std::fabs((*norm)->get_f(i));
  EXPECT_GT(sum, 0.0);
}

TEST(SafetensorsTest, TensorOutlivesTheFileObject) {
  INGOT_MODEL_PATH(path, "stories260K-hf/model.safetensors");
  std::shared_ptr<const Tensor> t;
  {
    auto st = SafetensorsFile::open(path);
    ASSERT_TRUE(st.ok()) << st.message();
    auto r = (*st)->tensor("model.layers.1.mlp.up_proj.weight");
    ASSERT_TRUE(r.ok()) << r.message();
    t = *r;
  }
  EXPECT_EQ(t->shape(), (std::vector<int64_t>{172, 64}));
  EXPECT_TRUE(std::isfinite(t->get_f(t->numel() - 1)));  // the mapping is still alive
}

TEST(SafetensorsTest, CheckpointFolderWithOneFile) {
  INGOT_MODEL_PATH(dir, "stories260K-hf");
  auto ckpt = SafetensorsCheckpoint::open_folder(dir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.message();
  EXPECT_EQ((*ckpt)->names().size(), 47u);
  EXPECT_EQ((*ckpt)->shards().size(), 1u);
  auto t = (*ckpt)->tensor("model.layers.3.input_layernorm.weight");
  ASSERT_TRUE(t.ok()) << t.message();
  EXPECT_EQ((*t)->shape(), (std::vector<int64_t>{64}));
  auto missing = (*ckpt)->tensor("lm_head.weight");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("no tensor named 'lm_head.weight'"), std::string::npos) << missing.message();
}

// --- Hand-written files ------------------------------------------------------------------------

TEST(SafetensorsTest, EveryDtypeRoundTrips) {
  const std::vector<uint16_t> f16 = {f32_to_f16(1.5f), f32_to_f16(-2.0f)};
  const std::vector<uint16_t> bf16 = {f32_to_bf16(0.25f), f32_to_bf16(-8.0f), f32_to_bf16(3.0f)};
  const std::vector<int8_t> i8 = {-128, 0, 127};
  const std::vector<uint8_t> u8 = {0, 200, 255, 7};
  const std::vector<int32_t> i32 = {-70000, 70000};
  const std::vector<int64_t> i64 = {std::numeric_limits<int64_t>::min(), 42};
  const std::vector<uint8_t> boolean = {1, 0, 1};
  std::string bytes = make_safetensors({
      {"f32", "F32", {2, 2}, bytes_of(std::vector<float>{1.0f, -2.5f, 3.25f, 0.0f})},
      {"f16", "F16", {2}, bytes_of(f16)},
      {"bf16", "BF16", {3, 1}, bytes_of(bf16)},
      {"i8", "I8", {3}, bytes_of(i8)},
      {"u8", "U8", {2, 2}, bytes_of(u8)},
      {"i32", "I32", {2}, bytes_of(i32)},
      {"i64", "I64", {2}, bytes_of(i64)},
      {"bool", "BOOL", {3}, bytes_of(boolean)},
      {"scalar", "F32", {}, bytes_of(std::vector<float>{7.0f})},
  });
  auto st = parse_safetensors_bytes(bytes);
  ASSERT_TRUE(st.ok()) << st.message();
  auto get = [&](const std::string& name) {
    auto t = (*st)->tensor(name);
    EXPECT_TRUE(t.ok()) << t.message();
    return *t;
  };
  EXPECT_EQ(get("f32")->to_f32_vector(), (std::vector<float>{1.0f, -2.5f, 3.25f, 0.0f}));
  EXPECT_EQ(get("f16")->type(), ElementType::f16);
  EXPECT_EQ(get("f16")->to_f32_vector(), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(get("bf16")->shape(), (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(get("bf16")->to_f32_vector(), (std::vector<float>{0.25f, -8.0f, 3.0f}));
  EXPECT_EQ(get("i8")->to_i64_vector(), (std::vector<int64_t>{-128, 0, 127}));
  EXPECT_EQ(get("u8")->to_i64_vector(), (std::vector<int64_t>{0, 200, 255, 7}));
  EXPECT_EQ(get("i32")->to_i64_vector(), (std::vector<int64_t>{-70000, 70000}));
  EXPECT_EQ(get("i64")->to_i64_vector(), i64);
  EXPECT_EQ(get("bool")->type(), ElementType::boolean);
  EXPECT_EQ(get("bool")->get_i(1), 0);
  EXPECT_EQ(get("scalar")->rank(), 0);
  EXPECT_EQ(get("scalar")->get_f(0), 7.0);
  EXPECT_EQ((*st)->names(), (std::vector<std::string>{"bf16", "bool", "f16", "f32", "i32", "i64", "i8", "scalar", "u8"}));
}

TEST(SafetensorsTest, MetadataEmptyTensorsAndGaps) {
  // An empty tensor shares its offset with the next one; a gap before the last tensor is legal.
  json header = {
      {"__metadata__", {{"format", "pt"}, {"note", "hand made"}}},
      {"empty", {{"dtype", "F32"}, {"shape", {0, 4}}, {"data_offsets", {0, 0}}}},
      {"a", {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {0, 4}}}},
      {"b", {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {8, 12}}}},
  };
  std::string text = header.dump();
  while (text.size() % 8) text += ' ';
  auto st = parse_safetensors_bytes(assemble(text, bytes_of(std::vector<float>{1, 2, 3})));
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ((*st)->metadata().at("format"), "pt");
  EXPECT_EQ((*st)->metadata().at("note"), "hand made");
  auto empty = (*st)->tensor("empty");
  ASSERT_TRUE(empty.ok()) << empty.message();
  EXPECT_EQ((*empty)->numel(), 0);
  EXPECT_EQ((*st)->tensor("b").value()->get_f(0), 3.0);
}

TEST(SafetensorsTest, MisalignedTensorIsCopied) {
  // Header of odd length: the f32 data starts at an odd address, so the reader copies it.
  json header = {{"w", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}}}};
  std::string text = header.dump();
  if ((8 + text.size()) % 2 == 0) text += ' ';
  auto st = parse_safetensors_bytes(assemble(text, bytes_of(std::vector<float>{1.25f, -4.0f})));
  ASSERT_TRUE(st.ok()) << st.message();
  auto t = (*st)->tensor("w");
  ASSERT_TRUE(t.ok()) << t.message();
  EXPECT_FALSE((*t)->buffer()->is_view());
  EXPECT_EQ((*t)->to_f32_vector(), (std::vector<float>{1.25f, -4.0f}));
}

TEST(SafetensorsTest, UnknownTensorNameIsAnError) {
  auto st = parse_safetensors_bytes(make_safetensors({{"w", "F32", {1}, bytes_of(std::vector<float>{1})}}), "x.safetensors");
  ASSERT_TRUE(st.ok()) << st.message();
  auto t = (*st)->tensor("v");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.message(), "x.safetensors: no tensor named 'v'");
}

// --- Corruptions -------------------------------------------------------------------------------

struct SafetensorsCorruption {
  const char* what;
  std::string bytes;
  const char* expected;  // a fragment of the message
};

std::string tensor_header(const std::string& dtype, const std::string& shape, const std::string& offsets) {
  return R"({"w": {"dtype": ")" + dtype + R"(", "shape": )" + shape + R"(, "data_offsets": )" + offsets + "}}";
}

std::vector<SafetensorsCorruption> safetensors_corruptions() {
  const std::string data16(16, '\0');
  const std::string ok_entry = R"({"dtype": "F32", "shape": [2], "data_offsets": [0, 8]})";
  std::string huge_length = u64_le(std::numeric_limits<uint64_t>::max()) + "{}";
  return {
      {"empty file", "", "too short for the 8-byte header length"},
      {"truncated header length", std::string("\x10\x00\x00", 3), "3 bytes, too short for the 8-byte header length"},
      {"header length past the end", u64_le(100) + "{}", "header length 100 runs past the end of the 10-byte file"},
      {"header length 2^64-1", huge_length, "runs past the end"},
      {"header length zero", u64_le(0) + "{}", "header length 0 is too small"},
      {"header not JSON", assemble("{not json}", ""), "header: not valid JSON: parse error at line 1, column 3"},
      {"header trailing garbage", assemble("{} x", ""), "not valid JSON"},
      {"header not an object", assemble("[1, 2]", ""), "header is not a JSON object (it is array)"},
      {"header invalid UTF-8", assemble("{\"w\xff\": 1}", ""), "header is not valid UTF-8 (byte 11 of the file)"},
      {"overlong UTF-8", assemble("{\"\xc0\xaf\": 1}", ""), "not valid UTF-8"},
      {"unknown dtype", assemble(tensor_header("F99", "[2]", "[0, 8]"), data16),
       "unsupported dtype 'F99' for tensor 'w' (supported: F32, F16, BF16, I8, U8, I32, I64, BOOL)"},
      {"unsupported dtype F64", assemble(tensor_header("F64", "[2]", "[0, 16]"), data16), "unsupported dtype 'F64' for tensor 'w'"},
      {"dtype not a string", assemble(R"({"w": {"dtype": 3, "shape": [2], "data_offsets": [0, 8]}})", data16),
       "tensor 'w': 'dtype' must be a string, got 3"},
      {"size mismatch", assemble(tensor_header("F32", "[2, 2]", "[0, 12]"), data16),
       "tensor 'w': data_offsets [0, 12] hold 12 bytes but F32 [2, 2] needs 16"},
      {"offsets past the end", assemble(tensor_header("F32", "[8]", "[0, 32]"), data16),
       "tensor 'w': data_offsets [0, 32] run past the end of the 16-byte data section"},
      {"offsets past 2^64", assemble(tensor_header("F32", "[2]", "[18446744073709551615, 18446744073709551615]"), data16),
       "run past the end"},
      {"begin after end", assemble(tensor_header("F32", "[2]", "[8, 0]"), data16), "data_offsets [8, 0]: begin is after end"},
      {"overlapping tensors",
       assemble(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                    "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                data16),
       "tensors 'a' [0, 8] and 'b' [4, 12] overlap"},
      {"negative shape", assemble(tensor_header("F32", "[-2]", "[0, 8]"), data16),
       "tensor 'w': shape entry 0 is -2, must be a non-negative integer"},
      {"fractional shape", assemble(tensor_header("F32", "[2, 0.5]", "[0, 8]"), data16), "shape entry 1 is 0.5"},
      {"string shape", assemble(tensor_header("F32", R"(["2"])", "[0, 8]"), data16), "shape entry 0 is \"2\""},
      {"shape not a list", assemble(tensor_header("F32", "2", "[0, 8]"), data16), "'shape' must be a list"},
      {"shape overflows", assemble(tensor_header("F32", "[4294967296, 4294967296, 4294967296]", "[0, 8]"), data16),
       "has too many elements"},
      {"shape bytes overflow", assemble(tensor_header("F32", "[4294967296, 1073741824]", "[0, 8]"), data16), "is too large"},
      {"duplicate names", assemble(R"({"w": )" + ok_entry + R"(, "w": )" + ok_entry + "}", data16),
       "header: duplicate key 'w'"},
      {"missing dtype", assemble(R"({"w": {"shape": [2], "data_offsets": [0, 8]}})", data16), "tensor 'w': missing key 'dtype'"},
      {"missing data_offsets", assemble(R"({"w": {"dtype": "F32", "shape": [2]}})", data16), "missing key 'data_offsets'"},
      {"three offsets", assemble(tensor_header("F32", "[2]", "[0, 4, 8]"), data16),
       "'data_offsets' must be [begin, end] with non-negative integers"},
      {"negative offset", assemble(tensor_header("F32", "[2]", "[-8, 0]"), data16), "'data_offsets' must be [begin, end]"},
      {"unexpected key", assemble(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "x": 1}})", data16),
       "tensor 'w': unexpected key 'x'"},
      {"entry not an object", assemble(R"({"w": [1, 2]})", data16), "tensor 'w': expected an object"},
      {"metadata not strings", assemble(R"({"__metadata__": {"format": 1}})", ""),
       "'__metadata__' key 'format' must map to a string, got integer"},
      {"metadata not an object", assemble(R"({"__metadata__": "pt"})", ""), "'__metadata__' must be an object"},
      {"empty tensor name", assemble(R"({"": )" + ok_entry + "}", data16), "a tensor has an empty name"},
  };
}

TEST(SafetensorsTest, CorruptionsGiveClearErrors) {
  for (const SafetensorsCorruption& c : safetensors_corruptions()) {
    SCOPED_TRACE(c.what);
    auto st = parse_safetensors_bytes(c.bytes, "bad.safetensors");
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.message().rfind("bad.safetensors: ", 0), 0u) << st.message();
    EXPECT_NE(st.message().find(c.expected), std::string::npos) << st.message();
  }
}

TEST(SafetensorsTest, EveryTruncationOfAValidFileIsRejectedOrValid) {
  std::string good = make_safetensors({{"a", "F32", {2, 3}, bytes_of(std::vector<float>(6, 1.0f))},
                                       {"b", "BF16", {5}, std::string(10, '\x3f')}},
                                      json{{"format", "pt"}});
  ASSERT_TRUE(parse_safetensors_bytes(good).ok());
  for (size_t n = 0; n < good.size(); ++n) {
    auto st = parse_safetensors_bytes(good.substr(0, n));
    EXPECT_FALSE(st.ok()) << "prefix of " << n << " bytes parsed";
  }
}

// --- Sharded checkpoints -----------------------------------------------------------------------

class SafetensorsShardedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = safetensors_temp_dir();
    write_file(dir_ + "/model-00001-of-00002.safetensors",
               make_safetensors({{"model.embed_tokens.weight", "F32", {2, 2}, bytes_of(std::vector<float>{1, 2, 3, 4})},
                                 {"model.norm.weight", "F16", {2}, bytes_of(std::vector<uint16_t>{f32_to_f16(0.5f), f32_to_f16(2.0f)})}},
                                json{{"format", "pt"}}));
    write_file(dir_ + "/model-00002-of-00002.safetensors",
               make_safetensors({{"lm_head.weight", "BF16", {1, 2}, bytes_of(std::vector<uint16_t>{f32_to_bf16(-1.0f), f32_to_bf16(6.0f)})},
                                 {"unlisted", "F32", {1}, bytes_of(std::vector<float>{9})}}));
  }
  void write_index(const json& weight_map) {
    json index = {{"metadata", {{"total_size", 28}}}, {"weight_map", weight_map}};
    write_file(dir_ + "/model.safetensors.index.json", index.dump(2));
  }
  json good_map() const {
    return {{"model.embed_tokens.weight", "model-00001-of-00002.safetensors"},
            {"model.norm.weight", "model-00001-of-00002.safetensors"},
            {"lm_head.weight", "model-00002-of-00002.safetensors"}};
  }
  std::string index_path() const { return dir_ + "/model.safetensors.index.json"; }
  std::string dir_;
};

TEST_F(SafetensorsShardedTest, ReadsTwoShards) {
  write_index(good_map());
  auto ckpt = SafetensorsCheckpoint::open_folder(dir_);
  ASSERT_TRUE(ckpt.ok()) << ckpt.message();
  EXPECT_EQ((*ckpt)->source(), index_path());
  EXPECT_EQ((*ckpt)->shards().size(), 2u);
  EXPECT_EQ((*ckpt)->names(), (std::vector<std::string>{"lm_head.weight", "model.embed_tokens.weight", "model.norm.weight"}));
  EXPECT_EQ((*ckpt)->metadata().at("total_size"), "28");
  EXPECT_EQ((*ckpt)->tensor("model.embed_tokens.weight").value()->to_f32_vector(), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ((*ckpt)->tensor("model.norm.weight").value()->to_f32_vector(), (std::vector<float>{0.5f, 2.0f}));
  auto head = (*ckpt)->tensor("lm_head.weight");
  ASSERT_TRUE(head.ok()) << head.message();
  EXPECT_TRUE((*head)->buffer()->is_view());
  EXPECT_EQ((*head)->to_f32_vector(), (std::vector<float>{-1.0f, 6.0f}));
  ASSERT_NE((*ckpt)->find("lm_head.weight"), nullptr);
  EXPECT_EQ((*ckpt)->find("lm_head.weight")->type, ElementType::bf16);
  // A shard's tensor that the index does not list is not part of the checkpoint.
  EXPECT_EQ((*ckpt)->find("unlisted"), nullptr);
  EXPECT_FALSE((*ckpt)->tensor("unlisted").ok());
}

TEST_F(SafetensorsShardedTest, IndexErrorsNameIndexAndShard) {
  struct Case {
    const char* what;
    std::string index_text;
    std::string expected;
  };
  json missing_shard = good_map();
  missing_shard["lm_head.weight"] = "model-00003-of-00003.safetensors";
  json wrong_shard = good_map();
  wrong_shard["lm_head.weight"] = "model-00001-of-00002.safetensors";
  json escaping = good_map();
  escaping["lm_head.weight"] = "../model-00002-of-00002.safetensors";
  json not_string = good_map();
  not_string["lm_head.weight"] = 2;
  write_file(dir_ + "/corrupt.safetensors", u64_le(1000) + "{}");
  json corrupt_shard = good_map();
  corrupt_shard["lm_head.weight"] = "corrupt.safetensors";
  const std::vector<Case> cases = {
      {"malformed JSON", R"({"weight_map": {"a": "b",}})", "not valid JSON: parse error at line 1"},
      {"not an object", "[]", "not a JSON object"},
      {"no weight_map", R"({"metadata": {}})", "missing key 'weight_map'"},
      {"weight_map not an object", R"({"weight_map": ["a"]})", "'weight_map' must be an object, got array"},
      {"empty weight_map", R"({"weight_map": {}})", "'weight_map' is empty"},
      {"duplicate tensor", R"({"weight_map": {"a": "x.safetensors", "a": "y.safetensors"}})", "duplicate key 'a'"},
      {"shard not a string", json{{"weight_map", not_string}}.dump(), "tensor 'lm_head.weight' must map to a shard file name"},
      {"shard outside the folder", json{{"weight_map", escaping}}.dump(), "is not a file name in the index's folder"},
      {"missing shard", json{{"weight_map", missing_shard}}.dump(),
       "shard 'model-00003-of-00003.safetensors': " + dir_ + "/model-00003-of-00003.safetensors: cannot open"},
      {"tensor not in its shard", json{{"weight_map", wrong_shard}}.dump(),
       "tensor 'lm_head.weight' is listed in shard 'model-00001-of-00002.safetensors', which does not contain it"},
      {"corrupt shard", json{{"weight_map", corrupt_shard}}.dump(),
       "shard 'corrupt.safetensors': " + dir_ + "/corrupt.safetensors: header length 1000 runs past the end"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    write_file(index_path(), c.index_text);
    auto ckpt = SafetensorsCheckpoint::open_folder(dir_);
    ASSERT_FALSE(ckpt.ok());
    EXPECT_EQ(ckpt.message().rfind(index_path() + ": ", 0), 0u) << ckpt.message();
    EXPECT_NE(ckpt.message().find(c.expected), std::string::npos) << ckpt.message();
  }
}

TEST_F(SafetensorsShardedTest, FolderWithoutCheckpoint) {
  std::string empty = safetensors_temp_dir();
  auto ckpt = SafetensorsCheckpoint::open_folder(empty);
  ASSERT_FALSE(ckpt.ok());
  EXPECT_EQ(ckpt.message(), empty + ": no model.safetensors or model.safetensors.index.json");
}

TEST(SafetensorsTest, Utf8Validation) {
  EXPECT_EQ(find_invalid_utf8("plain ascii"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("\xE2\x96\x81t \xF0\x9F\x98\x80"), std::string_view::npos);  // "▁t 😀"
  EXPECT_EQ(find_invalid_utf8("ab\x80"), 2u);               // stray continuation byte
  EXPECT_EQ(find_invalid_utf8("a\xE2\x96"), 1u);            // truncated sequence
  EXPECT_EQ(find_invalid_utf8("\xC0\x80"), 0u);             // overlong NUL
  EXPECT_EQ(find_invalid_utf8("x\xED\xA0\x80"), 1u);        // UTF-16 surrogate
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u);     // past U+10FFFF
  EXPECT_EQ(find_invalid_utf8(std::string_view("\0", 1)), std::string_view::npos);
}

}  // namespace
}  // namespace ingot
