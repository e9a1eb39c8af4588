#include "frontend/gguf.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <unistd.h>

#include "tests/common/files.h"
#include "tests/common/models.h"

namespace ingot {
namespace {

// --- Helpers -----------------------------------------------------------------------------------

std::string gguf_temp_dir() {
  static const std::string dir = ::ingot::testing::make_temp_dir("gguf_test");
  return dir;
}

using ::ingot::testing::read_file;

using ::ingot::testing::list_dir;

StatusOr<std::unique_ptr<GgufFile>> parse_bytes(std::string bytes, const std::string& name = "corrupt.gguf") {
  return GgufFile::parse(MappedFile::from_bytes(name, std::move(bytes)));
}

// Deep equality of metadata values (type, element type, items, exact scalar values).
bool same_value(const GgufValue& a, const GgufValue& b) {
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case GgufType::ARRAY:
      if (a.elem_type() != b.elem_type() || a.items().size() != b.items().size()) return false;
      for (size_t i = 0; i < a.items().size(); ++i) {
        if (!same_value(a.items()[i], b.items()[i])) return false;
      }
      return true;
    case GgufType::STRING:
      return *a.as_string() == *b.as_string();
    case GgufType::BOOL:
      return *a.as_bool() == *b.as_bool();
    case GgufType::FLOAT32:
    case GgufType::FLOAT64: {
      const double x = *a.as_float(), y = *b.as_float();
      return std::memcmp(&x, &y, sizeof x) == 0;
    }
    default:
      return a.summary() == b.summary();  // exact decimal, also for u64 beyond int64
  }
}

// Little-endian byte builder that reports where each field lands, for hand-made files.
class Bytes {
 public:
  size_t u8(uint8_t v) { return put(v, 1); }
  size_t u32(uint32_t v) { return put(v, 4); }
  size_t u64(uint64_t v) { return put(v, 8); }
  size_t str(const std::string& s) {
    const size_t at = u64(s.size());
    data += s;
    return at;
  }
  size_t raw(const std::string& s) {
    const size_t at = data.size();
    data += s;
    return at;
  }
  void pad(size_t alignment) {
    while (data.size() % alignment) data.push_back('\0');
  }
  std::string data;

 private:
  size_t put(uint64_t v, int n) {
    const size_t at = data.size();
    for (int i = 0; i < n; ++i) data.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return at;
  }
};

void poke_u32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void poke_u64(std::string& s, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// A small valid GGUF written by hand, with the offset of every field the corruption tests edit.
struct HandFile {
  std::string bytes;
  size_t name_key = 0, name_type = 0, name_value = 0;
  size_t align_type = 0, align_value = 0;
  size_t flag_key = 0, flag_value = 0;
  size_t arr_elem = 0, arr_count = 0, arr_item1 = 0;
  size_t nested_inner_count = 0;
  size_t t_name[2] = {}, t_ndims[2] = {}, t_dim[2][2] = {}, t_type[2] = {}, t_offset[2] = {};
  size_t data = 0;
  static constexpr uint64_t kKvCount = 5, kTensorCount = 2;
};

HandFile hand_file(uint32_t version = 3) {
  HandFile f;
  Bytes b;
  b.raw("GGUF");
  b.u32(version);
  b.u64(HandFile::kTensorCount);
  b.u64(HandFile::kKvCount);
  f.name_key = b.str("general.name");
  f.name_type = b.u32(8);
  f.name_value = b.str("tiny");
  b.str("general.alignment");
  f.align_type = b.u32(4);
  f.align_value = b.u32(32);
  f.flag_key = b.str("general.flag");  // as long as "general.name", for the duplicate-key case
  b.u32(7);
  f.flag_value = b.u8(1);
  b.str("tokenizer.ggml.tokens");
  b.u32(9);
  f.arr_elem = b.u32(8);
  f.arr_count = b.u64(2);
  b.str("a");
  f.arr_item1 = b.str("bc");
  b.str("test.nested");  // [[1, 2], [3]] of u16
  b.u32(9);
  b.u32(9);
  b.u64(2);
  b.u32(2);
  b.u64(2);
  b.u32(0x00020001);  // two u16 values: 1, 2
  b.u32(2);
  f.nested_inner_count = b.u64(1);
  b.data.append("\x03\x00", 2);
  // Tensor "a": f32, ggml dims [4, 2] (row-major [2, 4]); tensor "b": q8_0, one block.
  const uint32_t types[2] = {0, 8};
  const uint64_t dims[2][2] = {{4, 2}, {32, 0}};
  const uint64_t offsets[2] = {0, 32};
  for (int t = 0; t < 2; ++t) {
    f.t_name[t] = b.str(t == 0 ? "a" : "b");
    const uint32_t n_dims = t == 0 ? 2 : 1;
    f.t_ndims[t] = b.u32(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) f.t_dim[t][d] = b.u64(dims[t][d]);
    f.t_type[t] = b.u32(types[t]);
    f.t_offset[t] = b.u64(offsets[t]);
  }
  b.pad(32);
  f.data = b.data.size();
  for (int i = 0; i < 8; ++i) {
    const float v = static_cast<float>(i) + 0.5f;
    std::string four(4, '\0');
    std::memcpy(four.data(), &v, 4);
    b.raw(four);
  }
  b.raw(std::string("\x00\x3c", 2));  // q8_0 scale: f16 1.0
  for (int i = 0; i < 32; ++i) b.u8(static_cast<uint8_t>(i - 16));
  b.pad(32);
  f.bytes = b.data;
  return f;
}

void set_counts(std::string& s, uint64_t tensors, uint64_t kvs) {
  poke_u64(s, 8, tensors);
  poke_u64(s, 16, kvs);
}

// --- Real files --------------------------------------------------------------------------------

TEST(GgufRead, Stories260K) {
  INGOT_MODEL_PATH(path, "stories260K.gguf");
  auto mapped = MappedFile::open(path);
  ASSERT_TRUE(mapped.ok()) << mapped.message();
  auto f = GgufFile::parse(*mapped);
  ASSERT_TRUE(f.ok()) << f.message();
  const GgufFile& g = **f;
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.alignment(), 32u);
  EXPECT_EQ(g.data_offset() % 32, 0u);
  EXPECT_EQ(*g.find("general.architecture")->as_string(), "llama");
  EXPECT_EQ(*g.find("llama.embedding_length")->as_int(), 64);
  EXPECT_EQ(*g.find("llama.block_count")->as_int(), 5);
  EXPECT_EQ(*g.find("llama.attention.head_count")->as_int(), 8);
  EXPECT_EQ(*g.find("llama.attention.head_count_kv")->as_int(), 4);
  EXPECT_NEAR(*g.find("llama.attention.layer_norm_rms_epsilon")->as_float(), 1e-5, 1e-9);
  auto tokens = g.find("tokenizer.ggml.tokens")->as_strings();
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens->size(), 512u);
  EXPECT_EQ((*tokens)[1], "<s>");
  EXPECT_EQ(g.find("tokenizer.ggml.scores")->as_floats()->size(), 512u);
  EXPECT_EQ(g.find("no.such.key"), nullptr);

  EXPECT_EQ(g.tensors().size(), 48u);
  const GgufTensorInfo* info = g.find_tensor("token_embd.weight");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->type, ElementType::f32);
  EXPECT_EQ(info->shape, (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(info->bytes, 512u * 64u * 4u);
  auto t = g.tensor("token_embd.weight");
  ASSERT_TRUE(t.ok()) << t.message();
  EXPECT_EQ((*t)->shape(), (std::vector<int64_t>{512, 64}));
  EXPECT_TRUE((*t)->buffer()->is_view());
  EXPECT_EQ((*t)->raw(), (*mapped)->data() + info->offset);  // zero copy: points into the mapping
  EXPECT_GE(info->offset, g.data_offset());
  EXPECT_LE(info->offset + info->bytes, (*mapped)->size());
  EXPECT_TRUE(std::isfinite((*t)->get_f(0)));
  // output.weight equals token_embd.weight in this model (README).
  auto out = g.tensor("output.weight");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(std::memcmp((*out)->raw(), (*t)->raw(), (*t)->nbytes()), 0);
  EXPECT_EQ(g.find_tensor("blk.4.ffn_down.weight")->shape, (std::vector<int64_t>{64, 172}));
  EXPECT_FALSE(g.tensor("nope").ok());
}

TEST(GgufRead, Stories260KQuantized) {
  INGOT_MODEL_PATH(path, "stories260K-q8_0.gguf");
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.message();
  bool has_q8 = false, has_f16 = false;
  for (const auto& t : (*f)->tensors()) {
    has_q8 |= t.type == ElementType::q8_0;
    has_f16 |= t.type == ElementType::f16;
    auto view = (*f)->tensor(t.name);
    ASSERT_TRUE(view.ok()) << view.message();
  }
  EXPECT_TRUE(has_q8);
  EXPECT_TRUE(has_f16);
  EXPECT_EQ((*f)->find_tensor("blk.0.ffn_down.weight")->type, ElementType::f16);
  const auto* q = (*f)->find_tensor("blk.0.attn_q.weight");
  EXPECT_EQ(q->type, ElementType::q8_0);
  EXPECT_EQ(q->bytes, 64u * 64u / 32u * 34u);
  auto deq = (*(*f)->tensor("blk.0.attn_q.weight"))->to_f32_vector();
  EXPECT_EQ(deq.size(), 64u * 64u);
}

TEST(GgufRead, Stories260KQ4) {
  INGOT_MODEL_PATH(path, "stories260K-q4_0.gguf");
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ((*f)->find_tensor("token_embd.weight")->type, ElementType::q4_0);
  EXPECT_EQ((*f)->find_tensor("output.weight")->type, ElementType::q8_0);
}

TEST(GgufRead, VocabOnlyFiles) {
  INGOT_MODEL_PATH(spm, "vocab/ggml-vocab-llama-spm.gguf");
  INGOT_MODEL_PATH(gpt2, "vocab/ggml-vocab-gpt-2.gguf");
  auto a = GgufFile::open(spm);
  ASSERT_TRUE(a.ok()) << a.message();
  EXPECT_TRUE((*a)->tensors().empty());
  EXPECT_EQ((*a)->find("tokenizer.ggml.tokens")->items().size(), 32000u);
  EXPECT_EQ(*(*a)->find("tokenizer.ggml.add_bos_token")->as_bool(), true);
  auto b = GgufFile::open(gpt2);
  ASSERT_TRUE(b.ok()) << b.message();
  EXPECT_TRUE((*b)->tensors().empty());
  EXPECT_EQ((*b)->find("tokenizer.ggml.tokens")->items().size(), 50257u);
  EXPECT_EQ(*(*b)->find("tokenizer.ggml.model")->as_string(), "gpt2");
  ASSERT_NE((*b)->find("tokenizer.ggml.merges"), nullptr);
  EXPECT_GT((*b)->find("tokenizer.ggml.merges")->as_strings()->size(), 1000u);
}

TEST(GgufRead, LlamaTinyRandom) {
  INGOT_MODEL_PATH(path, "llama-2-tiny-random.gguf");
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ((*f)->tensors().size(), 12u);
  const auto* emb = (*f)->find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->type, ElementType::f16);
  EXPECT_EQ(emb->shape, (std::vector<int64_t>{32000, 8}));
  EXPECT_EQ((*f)->find_tensor("output_norm.weight")->type, ElementType::f32);
  EXPECT_EQ(*(*f)->find("llama.embedding_length")->as_int(), 8);
}

TEST(GgufRead, OpenMissingFileNamesPath) {
  auto f = GgufFile::open(gguf_temp_dir() + "/does-not-exist.gguf");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.message().find("does-not-exist.gguf"), std::string::npos);
}

// --- Hand-made files ---------------------------------------------------------------------------

TEST(GgufRead, HandMadeFileParses) {
  const HandFile h = hand_file();
  auto f = parse_bytes(h.bytes, "hand.gguf");
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ((*f)->data_offset(), h.data);
  EXPECT_EQ(*(*f)->find("general.name")->as_string(), "tiny");
  EXPECT_EQ(*(*f)->find("general.flag")->as_bool(), true);
  const GgufValue* nested = (*f)->find("test.nested");
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(nested->type(), GgufType::ARRAY);
  EXPECT_EQ(nested->elem_type(), GgufType::ARRAY);
  ASSERT_EQ(nested->items().size(), 2u);
  EXPECT_EQ(*nested->items()[0].as_ints(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(*nested->items()[1].as_ints(), (std::vector<int64_t>{3}));
  auto a = (*f)->tensor("a");
  ASSERT_TRUE(a.ok()) << a.message();
  EXPECT_EQ((*a)->shape(), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ((*a)->get_f(7), 7.5);
  auto b = (*f)->tensor("b");
  ASSERT_TRUE(b.ok());
  auto deq = (*b)->to_f32_vector();
  ASSERT_EQ(deq.size(), 32u);
  EXPECT_EQ(deq[0], -16.0f);
  EXPECT_EQ(deq[31], 15.0f);
}

TEST(GgufRead, Version2Accepted) {
  const HandFile h = hand_file(2);
  auto f = parse_bytes(h.bytes, "v2.gguf");
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ((*f)->version(), 2u);
  EXPECT_EQ((*f)->tensors().size(), 2u);
}

TEST(GgufRead, DefaultAlignmentIs32AndTensorlessFileMayEndEarly) {
  Bytes b;
  b.raw("GGUF");
  b.u32(3);
  b.u64(0);
  b.u64(1);
  b.str("general.name");
  b.u32(8);
  b.str("x");
  auto f = parse_bytes(b.data, "vocab.gguf");
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ((*f)->alignment(), 32u);
  EXPECT_TRUE((*f)->tensors().empty());
}

// --- Corruptions -------------------------------------------------------------------------------

struct Corruption {
  const char* what;
  std::function<std::string(const HandFile&)> make;
  std::function<size_t(const HandFile&)> offset;
  const char* fragment;
};

std::vector<Corruption> corruptions() {
  using H = const HandFile&;
  auto edit_u32 = [](size_t HandFile::*field, uint32_t v) {
    return [=](H h) { std::string s = h.bytes; poke_u32(s, h.*field, v); return s; };
  };
  auto edit_u64 = [](size_t HandFile::*field, uint64_t v) {
    return [=](H h) { std::string s = h.bytes; poke_u64(s, h.*field, v); return s; };
  };
  auto at = [](size_t HandFile::*field) { return [=](H h) { return h.*field; }; };
  auto fixed = [](size_t n) { return [=](H) { return n; }; };
  return {
      {"empty file", [](H) { return std::string(); }, fixed(0), "unexpected end of file reading the magic"},
      {"truncated header", [](H h) { return h.bytes.substr(0, 12); }, fixed(8),
       "unexpected end of file reading the tensor count"},
      {"bad magic", [](H h) { std::string s = h.bytes; s[0] = 'X'; return s; }, fixed(0), "not a GGUF file"},
      {"version 1", [](H h) { std::string s = h.bytes; poke_u32(s, 4, 1); return s; }, fixed(4),
       "version 1 is not supported"},
      {"version 4", [](H h) { std::string s = h.bytes; poke_u32(s, 4, 4); return s; }, fixed(4),
       "unsupported GGUF version 4"},
      {"big-endian", [](H h) { std::string s = h.bytes; poke_u32(s, 4, 0x03000000); return s; }, fixed(4),
       "big-endian"},
      {"huge tensor count", [](H h) { std::string s = h.bytes; poke_u64(s, 8, 1ull << 40); return s; }, fixed(8),
       "tensor count 1099511627776 cannot fit"},
      {"huge kv count", [](H h) { std::string s = h.bytes; poke_u64(s, 16, ~0ull); return s; }, fixed(16),
       "metadata count 18446744073709551615 cannot fit"},
      {"truncated kv key",
       [](H h) { std::string s = h.bytes.substr(0, h.name_key + 13); set_counts(s, 0, 1); return s; },
       at(&HandFile::name_key), "metadata key length 12 exceeds the 5 bytes left"},
      {"truncated kv value",
       [](H h) { std::string s = h.bytes.substr(0, h.align_value + 2); set_counts(s, 0, 2); return s; },
       at(&HandFile::align_value), "unexpected end of file reading a u32 value"},
      {"truncated array",
       [](H h) { std::string s = h.bytes.substr(0, h.arr_item1 + 9); set_counts(s, 0, 4); return s; },
       at(&HandFile::arr_item1), "string length 2 exceeds the 1 bytes left"},
      {"truncated tensor info",
       [](H h) {
         std::string s = h.bytes.substr(0, h.t_dim[0][1] + 4);
         set_counts(s, 1, HandFile::kKvCount);
         return s;
       },
       [](H h) { return h.t_dim[0][1]; }, "unexpected end of file reading tensor dimension"},
      {"truncated data", [](H h) { return h.bytes.substr(0, h.data + 40); }, [](H h) { return h.t_offset[1]; },
       "ends past the end of the"},
      {"huge key length", edit_u64(&HandFile::name_key, 1ull << 40), at(&HandFile::name_key),
       "metadata key length 1099511627776 exceeds"},
      {"huge string length", edit_u64(&HandFile::name_value, ~0ull), at(&HandFile::name_value),
       "string length 18446744073709551615 exceeds"},
      {"huge array length", edit_u64(&HandFile::arr_count, 1ull << 61), at(&HandFile::arr_count),
       "array of 2305843009213693952 string items cannot fit"},
      {"huge nested array length", edit_u64(&HandFile::nested_inner_count, 1ull << 62),
       at(&HandFile::nested_inner_count), "u16 items cannot fit"},
      {"unknown metadata type", edit_u32(&HandFile::name_type, 13), at(&HandFile::name_type),
       "unknown metadata value type 13"},
      {"unknown array element type", edit_u32(&HandFile::arr_elem, 99), at(&HandFile::arr_elem),
       "unknown array element type 99"},
      {"bool not 0 or 1", [](H h) { std::string s = h.bytes; s[h.flag_value] = 2; return s; },
       at(&HandFile::flag_value), "bool value 2 is neither 0 nor 1"},
      {"duplicate key",
       [](H h) { std::string s = h.bytes; s.replace(h.flag_key + 8, 12, "general.name"); return s; },
       at(&HandFile::flag_key), "duplicate metadata key \"general.name\""},
      {"alignment not a power of two", edit_u32(&HandFile::align_value, 48), at(&HandFile::align_value),
       "general.alignment must be a non-zero power of two, got 48"},
      {"alignment zero", edit_u32(&HandFile::align_value, 0), at(&HandFile::align_value),
       "non-zero power of two, got 0"},
      {"alignment not u32", edit_u32(&HandFile::align_type, 5), at(&HandFile::align_value),
       "general.alignment must be a u32, got i32"},
      {"duplicate tensor name",
       [](H h) { std::string s = h.bytes; s[h.t_name[1] + 8] = 'a'; return s; },
       [](H h) { return h.t_name[1]; }, "duplicate tensor name \"a\""},
      {"zero dimension",
       [](H h) { std::string s = h.bytes; poke_u64(s, h.t_dim[0][1], 0); return s; },
       [](H h) { return h.t_dim[0][1]; }, "dimension 1 is 0"},
      {"too many dimensions",
       [](H h) { std::string s = h.bytes; poke_u32(s, h.t_ndims[0], 5); return s; },
       [](H h) { return h.t_ndims[0]; }, "tensor has 5 dimensions; GGUF allows 1 to 4"},
      {"no dimensions",
       [](H h) { std::string s = h.bytes; poke_u32(s, h.t_ndims[0], 0); return s; },
       [](H h) { return h.t_ndims[0]; }, "tensor has 0 dimensions"},
      {"dimension product overflows",
       [](H h) {
         std::string s = h.bytes;
         poke_u64(s, h.t_dim[0][0], 1ull << 32);
         poke_u64(s, h.t_dim[0][1], 1ull << 32);
         return s;
       },
       [](H h) { return h.t_dim[0][1]; }, "element count overflows 64 bits at dimension 1"},
      {"dimension beyond int64",
       [](H h) { std::string s = h.bytes; poke_u64(s, h.t_dim[0][0], ~0ull); return s; },
       [](H h) { return h.t_dim[0][0]; }, "element count overflows 64 bits at dimension 0"},
      {"byte size overflows",
       [](H h) {
         std::string s = h.bytes;
         poke_u64(s, h.t_dim[0][0], 1ull << 31);
         poke_u64(s, h.t_dim[0][1], 1ull << 31);  // 2^62 f32 elements: 2^64 bytes
         return s;
       },
       [](H h) { return h.t_type[0]; }, "overflows 64 bits"},
      {"unknown tensor type", [](H h) { std::string s = h.bytes; poke_u32(s, h.t_type[0], 99); return s; },
       [](H h) { return h.t_type[0]; }, "unknown ggml type 99"},
      {"unsupported tensor type", [](H h) { std::string s = h.bytes; poke_u32(s, h.t_type[0], 16); return s; },
       [](H h) { return h.t_type[0]; }, "ggml type 16 (iq2_xxs) is not supported"},
      {"quantized inner dim not whole blocks",
       [](H h) { std::string s = h.bytes; poke_u64(s, h.t_dim[1][0], 16); return s; },
       [](H h) { return h.t_type[1]; }, "q8_0 stores blocks of 32 elements, but the inner dimension 16"},
      {"misaligned offset", [](H h) { std::string s = h.bytes; poke_u64(s, h.t_offset[1], 33); return s; },
       [](H h) { return h.t_offset[1]; }, "data offset 33 is not a multiple of the alignment 32"},
      {"offset past end", [](H h) { std::string s = h.bytes; poke_u64(s, h.t_offset[1], 1 << 20); return s; },
       [](H h) { return h.t_offset[1]; }, "ends past the end of the"},
      {"offset overflows", [](H h) { std::string s = h.bytes; poke_u64(s, h.t_offset[1], ~0ull << 5); return s; },
       [](H h) { return h.t_offset[1]; }, "ends past the end of the"},
      {"overlapping tensors", [](H h) { std::string s = h.bytes; poke_u64(s, h.t_offset[1], 0); return s; },
       [](H h) { return h.t_offset[1]; }, "overlaps tensor \"a\""},
  };
}

TEST(GgufCorrupt, EachCorruptionIsNamedWithItsOffset) {
  const HandFile h = hand_file();
  const auto cases = corruptions();
  EXPECT_GE(cases.size(), 20u);
  for (const Corruption& c : cases) {
    SCOPED_TRACE(c.what);
    auto f = parse_bytes(c.make(h));
    ASSERT_FALSE(f.ok());
    const std::string prefix = "corrupt.gguf: offset " + std::to_string(c.offset(h)) + ": ";
    EXPECT_EQ(f.message().rfind(prefix, 0), 0u) << f.message();
    EXPECT_NE(f.message().find(c.fragment), std::string::npos) << f.message();
  }
}

TEST(GgufCorrupt, ErrorsNameTheEntryBeingRead) {
  const HandFile h = hand_file();
  std::string s = h.bytes;
  poke_u32(s, h.t_type[1], 99);
  auto f = parse_bytes(s);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.message().find("(in tensor \"b\")"), std::string::npos) << f.message();
  s = h.bytes;
  poke_u64(s, h.arr_count, 1ull << 50);
  f = parse_bytes(s);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.message().find("(in metadata \"tokenizer.ggml.tokens\")"), std::string::npos) << f.message();
}

TEST(GgufCorrupt, DeeplyNestedArraysRejected) {
  Bytes b;
  b.raw("GGUF");
  b.u32(3);
  b.u64(0);
  b.u64(1);
  b.str("deep");
  b.u32(9);
  for (int i = 0; i < 100; ++i) {
    b.u32(9);
    b.u64(1);
  }
  b.u32(0);
  b.u64(0);
  auto f = parse_bytes(b.data);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.message().find("arrays nested more than"), std::string::npos) << f.message();
}

// Every truncation and every single-byte change of a valid file parses or fails cleanly (the
// sanitizers catch what a crash test cannot see).
TEST(GgufCorrupt, NoTruncationOrByteFlipCrashes) {
  const HandFile h = hand_file();
  for (size_t n = 0; n < h.bytes.size(); ++n) {
    auto f = parse_bytes(h.bytes.substr(0, n));
    if (n < h.data) EXPECT_FALSE(f.ok()) << n;
  }
  for (size_t i = 0; i < h.bytes.size(); ++i) {
    for (int v : {0x00, 0x01, 0x7f, 0x80, 0xff}) {
      std::string s = h.bytes;
      s[i] = static_cast<char>(v);
      auto f = parse_bytes(s);
      if (f.ok()) {
        for (const auto& [key, value] : (*f)->metadata()) (void)value.summary();
        for (const auto& t : (*f)->tensors()) EXPECT_TRUE((*f)->tensor(t.name).ok());
      } else {
        EXPECT_NE(f.message().find("corrupt.gguf: offset "), std::string::npos) << f.message();
      }
    }
  }
}

// --- Values ------------------------------------------------------------------------------------

TEST(GgufValue, Accessors) {
  EXPECT_EQ(*GgufValue::u32(7).as_int(), 7);
  EXPECT_EQ(*GgufValue::i8(-3).as_int(), -3);
  EXPECT_EQ(*GgufValue::boolean(true).as_int(), 1);
  EXPECT_TRUE(GgufValue::u64(1ull << 40).is_integer());
  EXPECT_FALSE(GgufValue::u64(~0ull).as_int().ok());
  EXPECT_NE(GgufValue::u64(~0ull).as_int().message().find("does not fit"), std::string::npos);
  EXPECT_EQ(*GgufValue::u16(9).as_float(), 9.0);
  EXPECT_EQ(*GgufValue::f32(0.5f).as_float(), 0.5);
  EXPECT_TRUE(GgufValue::f64(1.0).is_float());
  EXPECT_FALSE(GgufValue::string("x").as_int().ok());
  EXPECT_NE(GgufValue::string("x").as_int().message().find("string"), std::string::npos);
  EXPECT_NE(GgufValue::f32s({1}).as_string().message().find("array of f32"), std::string::npos);
  EXPECT_FALSE(GgufValue::u8(1).as_bool().ok());
  EXPECT_EQ(*GgufValue::boolean(false).as_bool(), false);
  EXPECT_EQ(*GgufValue::strings({"a", "b"}).as_strings(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(*GgufValue::i32s({1, -2}).as_ints(), (std::vector<int64_t>{1, -2}));
  EXPECT_EQ(*GgufValue::i32s({1, -2}).as_floats(), (std::vector<double>{1, -2}));
  EXPECT_FALSE(GgufValue::f32s({1}).as_ints().ok());
  EXPECT_FALSE(GgufValue::strings({"a"}).as_floats().ok());
  EXPECT_FALSE(GgufValue::u8(1).as_strings().ok());
  EXPECT_TRUE(GgufValue::u8(1).items().empty());
}

TEST(GgufValue, Summary) {
  EXPECT_EQ(GgufValue::u32(5).summary(), "5");
  EXPECT_EQ(GgufValue::i64(-5).summary(), "-5");
  EXPECT_EQ(GgufValue::f32(1e-5f).summary(), "1e-05");
  EXPECT_EQ(GgufValue::boolean(true).summary(), "true");
  EXPECT_EQ(GgufValue::string("a\"b\n").summary(), "\"a\\\"b\\n\"");
  EXPECT_EQ(GgufValue::i32s({1, 2}).summary(), "[1, 2]");
  EXPECT_EQ(GgufValue::i32s({1, 2, 3}).summary(2), "[1, 2, ...] (3 i32 items)");
  EXPECT_STREQ(gguf_type_name(GgufType::FLOAT64), "f64");
}

// --- Writer ------------------------------------------------------------------------------------

std::vector<std::pair<std::string, GgufValue>> every_type_metadata() {
  return {
      {"t.u8", GgufValue::u8(255)},
      {"t.i8", GgufValue::i8(-128)},
      {"t.u16", GgufValue::u16(65535)},
      {"t.i16", GgufValue::i16(-32768)},
      {"t.u32", GgufValue::u32(4294967295u)},
      {"t.i32", GgufValue::i32(std::numeric_limits<int32_t>::min())},
      {"t.u64", GgufValue::u64(~0ull)},
      {"t.i64", GgufValue::i64(std::numeric_limits<int64_t>::min())},
      {"t.f32", GgufValue::f32(-1.5e-7f)},
      {"t.f64", GgufValue::f64(3.141592653589793)},
      {"t.bool", GgufValue::boolean(true)},
      {"t.string", GgufValue::string(std::string("utf-8 \xE2\x96\x81 and a \0 byte", 22))},
      {"t.empty_string", GgufValue::string("")},
      {"t.strings", GgufValue::strings({"<unk>", "", "\xE2\x96\x81the"})},
      {"t.f32s", GgufValue::f32s({0.0f, -1.0f, 1e30f})},
      {"t.i32s", GgufValue::i32s({-1, 0, 1})},
      {"t.u8s", GgufValue::array(GgufType::UINT8, {GgufValue::u8(1), GgufValue::u8(2)})},
      {"t.bools", GgufValue::array(GgufType::BOOL, {GgufValue::boolean(false), GgufValue::boolean(true)})},
      {"t.f64s", GgufValue::array(GgufType::FLOAT64, {GgufValue::f64(-0.0)})},
      {"t.empty_array", GgufValue::array(GgufType::UINT64, {})},
      {"t.nested",
       GgufValue::array(GgufType::ARRAY,
                        {GgufValue::strings({"a", "b"}), GgufValue::strings({}),
                         GgufValue::array(GgufType::STRING, {GgufValue::string("c")})})},
      {"t.nested2",
       GgufValue::array(GgufType::ARRAY, {GgufValue::array(GgufType::ARRAY, {GgufValue::i32s({7})})})},
  };
}

std::shared_ptr<const Tensor> patterned(ElementType type, std::vector<int64_t> shape, uint8_t seed) {
  Tensor t = Tensor::zeros(type, std::move(shape));
  for (size_t i = 0; i < t.nbytes(); ++i) t.mutable_raw()[i] = static_cast<uint8_t>(seed + i * 7);
  return std::make_shared<const Tensor>(std::move(t));
}

TEST(GgufWrite, RoundTripEveryTypeAndTensors) {
  GgufWriter w;
  for (const auto& [k, v] : every_type_metadata()) w.set(k, v);
  const std::vector<std::pair<std::string, std::shared_ptr<const Tensor>>> tensors = {
      {"f32", std::make_shared<const Tensor>(Tensor::from_f32({3}, {1.0f, -2.0f, 0.25f}))},
      {"f16", patterned(ElementType::f16, {5, 3}, 1)},
      {"q8_0", patterned(ElementType::q8_0, {2, 64}, 2)},
      {"q4_0", patterned(ElementType::q4_0, {3, 32}, 3)},
      {"q4_k", patterned(ElementType::q4_k, {1, 256}, 4)},
      {"q6_k", patterned(ElementType::q6_k, {2, 1, 1, 256}, 5)},
      {"i32", patterned(ElementType::i32, {7}, 6)},
      {"bf16", patterned(ElementType::bf16, {2, 2, 2}, 7)},
  };
  for (const auto& [name, t] : tensors) ASSERT_TRUE(w.add_tensor(name, t).ok()) << name;
  const std::string path = gguf_temp_dir() + "/roundtrip.gguf";
  Status st = w.write(path);
  ASSERT_TRUE(st.ok()) << st.message();

  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ((*f)->version(), 3u);
  const auto expected = every_type_metadata();
  ASSERT_EQ((*f)->metadata().size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(expected[i].first);
    EXPECT_EQ((*f)->metadata()[i].first, expected[i].first);  // insertion order
    EXPECT_TRUE(same_value((*f)->metadata()[i].second, expected[i].second))
        << (*f)->metadata()[i].second.summary() << " vs " << expected[i].second.summary();
  }
  EXPECT_EQ(*(*f)->find("t.string")->as_string(), std::string("utf-8 \xE2\x96\x81 and a \0 byte", 22));
  ASSERT_EQ((*f)->tensors().size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, t] = tensors[i];
    SCOPED_TRACE(name);
    const GgufTensorInfo& info = (*f)->tensors()[i];
    EXPECT_EQ(info.name, name);
    EXPECT_EQ(info.type, t->type());
    EXPECT_EQ(info.shape, t->shape());
    EXPECT_EQ(info.offset % 32, 0u);
    auto back = (*f)->tensor(name);
    ASSERT_TRUE(back.ok());
    ASSERT_EQ((*back)->nbytes(), t->nbytes());
    EXPECT_EQ(std::memcmp((*back)->raw(), t->raw(), t->nbytes()), 0);
  }
  // llama.cpp expects tensors packed in order, each padded to the alignment.
  uint64_t expect_offset = (*f)->data_offset();
  for (const auto& info : (*f)->tensors()) {
    EXPECT_EQ(info.offset, expect_offset);
    expect_offset += (info.bytes + 31) / 32 * 32;
  }
  EXPECT_EQ(read_file(path).size(), expect_offset);
}

TEST(GgufWrite, CustomAlignmentAndZeroPadding) {
  GgufWriter w;
  w.set("general.alignment", GgufValue::u32(64));
  ASSERT_TRUE(w.add_tensor("a", std::make_shared<const Tensor>(Tensor::from_f32({3}, {1, 2, 3}))).ok());
  ASSERT_TRUE(w.add_tensor("b", std::make_shared<const Tensor>(Tensor::from_f32({1}, {4}))).ok());
  const std::string path = gguf_temp_dir() + "/aligned.gguf";
  ASSERT_TRUE(w.write(path).ok());
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ((*f)->alignment(), 64u);
  EXPECT_EQ((*f)->data_offset() % 64, 0u);
  const auto* a = (*f)->find_tensor("a");
  const auto* b = (*f)->find_tensor("b");
  EXPECT_EQ(b->offset, a->offset + 64);
  const std::string bytes = read_file(path);
  for (uint64_t i = a->offset + a->bytes; i < b->offset; ++i) EXPECT_EQ(bytes[i], '\0');
}

TEST(GgufWrite, SetReplacesInPlace) {
  GgufWriter w;
  w.set("a", GgufValue::u32(1));
  w.set("b", GgufValue::u32(2));
  w.set("a", GgufValue::string("x"));
  const std::string path = gguf_temp_dir() + "/replace.gguf";
  ASSERT_TRUE(w.write(path).ok());
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok());
  ASSERT_EQ((*f)->metadata().size(), 2u);
  EXPECT_EQ((*f)->metadata()[0].first, "a");
  EXPECT_EQ(*(*f)->metadata()[0].second.as_string(), "x");
}

TEST(GgufWrite, GeneratedTensorsStream) {
  GgufWriter w;
  auto fill = [](uint8_t* dst, size_t bytes) {
    for (size_t i = 0; i < bytes; ++i) dst[i] = static_cast<uint8_t>(i);
    return Status::Ok();
  };
  ASSERT_TRUE(w.add_tensor_generator("g", ElementType::q4_0, {2, 64}, fill).ok());
  ASSERT_TRUE(w.add_tensor("t", std::make_shared<const Tensor>(Tensor::from_f32({2}, {1, 2}))).ok());
  const std::string path = gguf_temp_dir() + "/generated.gguf";
  ASSERT_TRUE(w.write(path).ok());
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.message();
  auto g = (*f)->tensor("g");
  ASSERT_TRUE(g.ok());
  ASSERT_EQ((*g)->nbytes(), 2u * 2u * 18u);
  for (size_t i = 0; i < (*g)->nbytes(); ++i) ASSERT_EQ((*g)->raw()[i], static_cast<uint8_t>(i));
  EXPECT_EQ((*(*f)->tensor("t"))->get_f(1), 2.0);
}

TEST(GgufWrite, FailedWriteLeavesNoFile) {
  GgufWriter w;
  w.set("general.name", GgufValue::string("x"));
  ASSERT_TRUE(w.add_tensor("a", std::make_shared<const Tensor>(Tensor::from_f32({1}, {1}))).ok());
  const std::string missing_dir = gguf_temp_dir() + "/no/such/dir/out.gguf";
  Status st = w.write(missing_dir);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(missing_dir), std::string::npos) << st.message();
  EXPECT_FALSE(::ingot::testing::path_exists(missing_dir));

  // A failing generator, and a target that is a directory (the rename fails): no leftovers.
  const std::string dir = gguf_temp_dir() + "/fail_dir";
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  GgufWriter bad;
  ASSERT_TRUE(bad.add_tensor_generator("g", ElementType::f32, {4}, [](uint8_t*, size_t) {
                   return Status::Error("generator broke");
                 }).ok());
  st = bad.write(dir + "/out.gguf");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("generator broke"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("\"g\""), std::string::npos) << st.message();
  ASSERT_EQ(mkdir((dir + "/target").c_str(), 0755), 0);
  st = w.write(dir + "/target");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(list_dir(dir), std::vector<std::string>{"target"});
  EXPECT_TRUE(list_dir(dir + "/target").empty());
}

TEST(GgufWrite, FailedWriteKeepsExistingFile) {
  const std::string path = gguf_temp_dir() + "/keep.gguf";
  GgufWriter good;
  good.set("k", GgufValue::u32(1));
  ASSERT_TRUE(good.write(path).ok());
  const std::string before = read_file(path);
  GgufWriter bad;
  bad.set("k", GgufValue::u32(2));
  ASSERT_TRUE(bad.add_tensor_generator("g", ElementType::f32, {4}, [](uint8_t*, size_t) {
                   return Status::Error("no");
                 }).ok());
  ASSERT_FALSE(bad.write(path).ok());
  EXPECT_EQ(read_file(path), before);
}

TEST(GgufWrite, RejectsInvalidInput) {
  GgufWriter w;
  auto t = std::make_shared<const Tensor>(Tensor::from_f32({2}, {1, 2}));
  ASSERT_TRUE(w.add_tensor("a", t).ok());
  EXPECT_NE(w.add_tensor("a", t).message().find("duplicate tensor"), std::string::npos);
  EXPECT_FALSE(w.add_tensor("", t).ok());
  EXPECT_FALSE(w.add_tensor("n", nullptr).ok());
  EXPECT_NE(w.add_tensor(std::string(64, 'x'), t).message().find("at most 63"), std::string::npos);
  EXPECT_FALSE(w.add_tensor("u8", patterned(ElementType::u8, {4}, 0)).ok());
  EXPECT_FALSE(w.add_tensor("r5", patterned(ElementType::f32, {1, 1, 1, 1, 2}, 0)).ok());
  EXPECT_NE(w.add_tensor_generator("q", ElementType::q4_0, {2, 16}, [](uint8_t*, size_t) { return Status::Ok(); })
                .message()
                .find("multiple of 32"),
            std::string::npos);
  EXPECT_FALSE(w.add_tensor_generator("z", ElementType::f32, {0}, [](uint8_t*, size_t) { return Status::Ok(); }).ok());
  EXPECT_FALSE(w.add_tensor_generator("nofill", ElementType::f32, {1}, nullptr).ok());

  const std::string path = gguf_temp_dir() + "/invalid.gguf";
  GgufWriter bad_align;
  bad_align.set("general.alignment", GgufValue::u32(24));
  Status st = bad_align.write(path);
  EXPECT_NE(st.message().find("general.alignment"), std::string::npos) << st.message();
  GgufWriter wrong_align_type;
  wrong_align_type.set("general.alignment", GgufValue::u64(32));
  EXPECT_FALSE(wrong_align_type.write(path).ok());
  GgufWriter mixed;
  mixed.set("mixed", GgufValue::array(GgufType::STRING, {GgufValue::string("a"), GgufValue::u8(1)}));
  st = mixed.write(path);
  EXPECT_NE(st.message().find("array item 1 is u8"), std::string::npos) << st.message();
  EXPECT_FALSE(::ingot::testing::path_exists(path));
}

}  // namespace
}  // namespace ingot
