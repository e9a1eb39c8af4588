// Bundles: SHA-256, the writer (codegen/bundle_writer.h), the loader (runtime/bundle.h), the
// kernels loaded from memory, CPU feature checks, and the `ingotc compile -o` / `ingot` commands.
#include <gtest/gtest.h>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "codegen/bundle_writer.h"
#include "codegen/kernels.h"
#include "codegen/target.h"
#include "runtime/bundle.h"
#include "runtime/bundle_format.h"
#include "runtime/cpu_features.h"
#include "runtime/engine.h"
#include "runtime/sha256.h"
#include "tests/common/command.h"
#include "tests/common/files.h"
#include "tests/common/status.h"
#include "tests/common/models.h"

namespace ingot {
namespace {

using ::ingot::testing::make_temp_dir;
using ::ingot::testing::read_file;

// ---------------------------------------------------------------- SHA-256

std::string sha_hex(std::string_view s) { return to_hex(Sha256::hash(s)); }

// Each test runs with the SHA extensions (where the CPU has them) and with the portable code.
class Sha256Test : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { previous_ = Sha256::set_accelerated(GetParam()); }
  void TearDown() override { Sha256::set_accelerated(previous_); }
  bool previous_ = true;
};
INSTANTIATE_TEST_SUITE_P(Modes, Sha256Test, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "accelerated" : "portable"; });

TEST_P(Sha256Test, Fips180Vectors) {
  EXPECT_EQ(sha_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string million(1000000, 'a');
  EXPECT_EQ(sha_hex(million), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_P(Sha256Test, StreamingInOddChunksMatchesOneShot) {
  std::mt19937 rng(7);
  std::string data(100003, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  const auto whole = Sha256::hash(data);
  for (size_t chunk : {1u, 3u, 7u, 55u, 56u, 63u, 64u, 65u, 127u, 1000u, 4099u}) {
    Sha256 s;
    for (size_t i = 0; i < data.size(); i += chunk) s.update(data.data() + i, std::min(chunk, data.size() - i));
    EXPECT_EQ(to_hex(s.finish()), to_hex(whole)) << "chunk " << chunk;
  }
  // Every length around the padding boundary, streamed in two pieces.
  for (size_t len = 50; len < 140; ++len) {
    Sha256 s;
    s.update(data.data(), len / 3);
    s.update(data.data() + len / 3, len - len / 3);
    EXPECT_EQ(to_hex(s.finish()), to_hex(Sha256::hash(data.data(), len))) << "length " << len;
  }
  // A million 'a' fed in chunks of 997 (the FIPS vector again, streamed).
  Sha256 s;
  const std::string a(997, 'a');
  size_t left = 1000000;
  while (left > 0) {
    const size_t n = std::min(left, a.size());
    s.update(a.data(), n);
    left -= n;
  }
  EXPECT_EQ(to_hex(s.finish()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, AcceleratedAndPortableAgree) {
  std::mt19937 rng(11);
  std::string data(1 << 16, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  const bool prev = Sha256::set_accelerated(true);
  std::printf("SHA extensions: %s\n", Sha256::accelerated() ? "used" : "not available");
  std::vector<std::string> fast;
  for (size_t len = 0; len < data.size(); len = len * 2 + 1) fast.push_back(sha_hex(std::string_view(data).substr(0, len)));
  Sha256::set_accelerated(false);
  size_t i = 0;
  for (size_t len = 0; len < data.size(); len = len * 2 + 1, ++i)
    EXPECT_EQ(sha_hex(std::string_view(data).substr(0, len)), fast[i]) << "length " << len;
  Sha256::set_accelerated(prev);
}

// ---------------------------------------------------------------- helpers

std::shared_ptr<Buffer> owned_bytes(const std::string& s) {
  auto b = Buffer::allocate(s.size());
  std::memcpy(b->mutable_data(), s.data(), s.size());
  return b;
}

std::string pattern(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 31 + seed * 7) & 0xff);
  return s;
}

// A small bundle by hand: three tensors (an owned buffer, a lazy concatenation, a producer), a
// fake kernels section and a manifest with every part filled a little.
BundleContents small_contents(const std::vector<std::string>& features = {}) {
  BundleContents c;
  pb::Manifest& m = c.manifest;
  m.set_model_name("small");
  m.set_architecture("llama");
  m.set_graph_text("graph text\n");
  auto* st = m.add_state();
  st->set_name("kv.0.k");
  st->set_type("f32");
  st->add_max_shape(16);
  st->add_max_shape(2);
  auto* p = m.mutable_memory_plan();
  p->set_arena_bytes(4096);
  p->set_alignment(64);
  p->set_max_batch(8);
  p->set_max_context(16);
  p->set_state_bytes(128);
  auto* b = p->add_buffers();
  b->set_value("x:0");
  b->set_offset(64);
  b->set_bytes(128);
  auto* slot = p->add_state();
  slot->set_variable("kv.0.k");
  slot->set_bytes(128);
  m.mutable_tokenizer()->add_tokens(std::string("\xff\x00<s>", 5));  // not UTF-8
  m.mutable_tokenizer()->set_bos(1);
  m.mutable_generation()->set_temperature(0.7);
  for (const auto& f : features) m.mutable_provenance()->add_target_features(f);
  m.mutable_provenance()->set_target_cpu("test-cpu");
  c.kernel_sets.push_back({"test-cpu", "test-cpu", features, pattern(5000, 1)});

  BundleTensor a;
  a.name = "a";
  a.type = "f32";
  a.shape = {3, 5};
  a.size = 60;
  a.buffer = owned_bytes(pattern(60, 2));
  c.tensors.push_back(a);

  BundleTensor cat;
  cat.name = "cat";
  cat.type = "u8";
  cat.shape = {300};
  cat.size = 300;
  cat.buffer = Buffer::concat({owned_bytes(pattern(100, 3)), owned_bytes(pattern(200, 4))});
  c.tensors.push_back(cat);

  BundleTensor made;
  made.name = "made";
  made.type = "u8";
  made.shape = {70};
  made.layout = "matmul-packed";
  made.kernel = "k0";
  made.size = 70;
  made.produce = [] { return StatusOr<std::vector<uint8_t>>(std::vector<uint8_t>(70, 0x5a)); };
  c.tensors.push_back(made);
  return c;
}

std::string write_small(const std::string& dir, const std::vector<std::string>& features = {}) {
  BundleContents c = small_contents(features);
  const std::string path = dir + "/small.ingot";
  Status st = write_bundle(path, c);
  EXPECT_TRUE(st.ok()) << st.message();
  return path;
}

using ::ingot::testing::list_dir;

void put_u32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>(v >> (8 * i));
}
void put_u64(std::string& s, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) s[at + i] = static_cast<char>(v >> (8 * i));
}

// Opens bytes and expects failure with a message naming the file and containing `what`.
void expect_open_error(const std::string& bytes, const std::string& what, const BundleOpenOptions& o = {}) {
  std::string error;
  auto b = take(Bundle::from_bytes("bad.ingot", bytes, o), &error);
  EXPECT_EQ(b, nullptr);
  EXPECT_EQ(error.rfind("bad.ingot: ", 0), 0u) << error;
  EXPECT_NE(error.find(what), std::string::npos) << "expected '" << what << "' in: " << error;
}

// ---------------------------------------------------------------- writer and loader

TEST(Bundle, RoundTrip) {
  const std::string dir = make_temp_dir("bundle_rt");
  BundleContents c = small_contents();
  const auto* lazy = c.tensors[1].buffer.get();
  BundleWriteStats stats;
  const std::string path = dir + "/small.ingot";
  ASSERT_TRUE(write_bundle(path, c, &stats).ok());
  EXPECT_FALSE(lazy->is_materialized()) << "the writer must stream a lazy concatenation's parts";
  EXPECT_EQ(list_dir(dir), (std::vector<std::string>{"small.ingot"})) << "no temporary file left";

  std::string error;
  auto b = take(Bundle::open(path), &error);
  ASSERT_NE(b, nullptr) << error;
  EXPECT_TRUE(succeeded(b->verify(), &error)) << error;
  EXPECT_EQ(b->file_size(), stats.file_bytes);
  ASSERT_EQ(b->sections().size(), 3u);
  for (const BundleSection& s : b->sections()) EXPECT_EQ(s.offset % bundle::kSectionAlignment, 0u);
  EXPECT_EQ(b->manifest().model_name(), "small");
  EXPECT_EQ(b->manifest().tokenizer().tokens(0), std::string("\xff\x00<s>", 5));
  EXPECT_DOUBLE_EQ(b->manifest().generation().temperature(), 0.7);
  EXPECT_FALSE(b->manifest().generation().has_top_p());
  EXPECT_EQ(b->manifest().memory_plan().buffers(0).value(), "x:0");

  ASSERT_EQ(b->tensor_count(), 3);
  const std::vector<std::string> want = {pattern(60, 2), pattern(100, 3) + pattern(200, 4), std::string(70, '\x5a')};
  for (int i = 0; i < 3; ++i) {
    const uint8_t* p = b->tensor_data(i);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u) << "tensor " << i;
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(p), b->manifest().tensors(i).size()), want[i]) << i;
  }
  EXPECT_EQ(b->find_tensor("made"), 2);
  EXPECT_EQ(b->find_tensor("made", "ggml"), -1);
  EXPECT_EQ(b->find_tensor("nope"), -1);
  const BundleSection* k = b->find_section(bundle::SectionKind::kernels);
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(b->bytes(*k).data()), k->size), pattern(5000, 1));
  // Weights point into the mapping: page-aligned section, zero copy.
  const BundleSection* w = b->find_section(bundle::SectionKind::weights);
  EXPECT_EQ(b->tensor_data(0), b->bytes(*w).data());
}

TEST(Bundle, WriterIsDeterministic) {
  const std::string d1 = make_temp_dir("bundle_det1"), d2 = make_temp_dir("bundle_det2");
  EXPECT_EQ(read_file(write_small(d1)), read_file(write_small(d2)));
}

TEST(Bundle, FailedWriteLeavesNoFile) {
  const std::string dir = make_temp_dir("bundle_fail");
  {
    BundleContents c = small_contents();
    c.tensors[2].produce = [] { return StatusOr<std::vector<uint8_t>>(Status::Error("packing failed")); };
    Status st = write_bundle(dir + "/x.ingot", c);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("packing failed"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("'made'"), std::string::npos) << st.message();
  }
  {
    BundleContents c = small_contents();
    c.tensors[0].size = 61;  // does not match the buffer
    EXPECT_FALSE(write_bundle(dir + "/x.ingot", c).ok());
  }
  {
    BundleContents c = small_contents();
    c.tensors[2].size = 71;  // the producer delivers 70
    Status st = write_bundle(dir + "/x.ingot", c);
    EXPECT_NE(st.message().find("produced 70 bytes, declared 71"), std::string::npos) << st.message();
  }
  EXPECT_TRUE(list_dir(dir).empty());
  // An existing file is not touched by a failed write.
  std::ofstream(dir + "/x.ingot") << "old";
  BundleContents c = small_contents();
  c.tensors[2].produce = [] { return StatusOr<std::vector<uint8_t>>(Status::Error("no")); };
  EXPECT_FALSE(write_bundle(dir + "/x.ingot", c).ok());
  EXPECT_EQ(read_file(dir + "/x.ingot"), "old");
  EXPECT_EQ(list_dir(dir).size(), 1u);
  // A folder that does not exist.
  Status st = write_bundle(dir + "/no/such/dir/x.ingot", c);
  EXPECT_NE(st.message().find("cannot create"), std::string::npos) << st.message();
}

TEST(BundleErrors, Truncated) {
  const std::string bytes = read_file(write_small(make_temp_dir("bundle_trunc")));
  for (size_t len : {size_t(0), size_t(1), size_t(31), size_t(32), size_t(100), size_t(4095), size_t(4096),
                     size_t(4097), bytes.size() / 2, bytes.size() - 1}) {
    SCOPED_TRACE(len);
    expect_open_error(bytes.substr(0, len), "truncated");
  }
  std::string longer = bytes + "x";
  expect_open_error(longer, "trailing bytes");
}

TEST(BundleErrors, TruncatedFileOnDisk) {
  const std::string dir = make_temp_dir("bundle_trunc_disk");
  const std::string bytes = read_file(write_small(dir));
  std::ofstream(dir + "/cut.ingot", std::ios::binary) << bytes.substr(0, bytes.size() - 100);
  std::string error;
  EXPECT_EQ(take(Bundle::open(dir + "/cut.ingot"), &error), nullptr);
  EXPECT_NE(error.find(dir + "/cut.ingot: truncated"), std::string::npos) << error;
  std::ofstream(dir + "/empty.ingot", std::ios::binary);
  EXPECT_EQ(take(Bundle::open(dir + "/empty.ingot"), &error), nullptr);
  EXPECT_NE(error.find("truncated"), std::string::npos) << error;
  EXPECT_EQ(take(Bundle::open(dir + "/missing.ingot"), &error), nullptr);
  EXPECT_NE(error.find("missing.ingot: cannot open"), std::string::npos) << error;
  EXPECT_EQ(take(Bundle::open(dir), &error), nullptr);
  EXPECT_NE(error.find("not a regular file"), std::string::npos) << error;
}

TEST(BundleErrors, FlippedByteInEachSectionFailsVerify) {
  const std::string bytes = read_file(write_small(make_temp_dir("bundle_flip")));
  std::string error;
  auto good = take(Bundle::from_bytes("good.ingot", bytes), &error);
  ASSERT_NE(good, nullptr) << error;
  const auto sections = good->sections();
  for (size_t i = 0; i < sections.size(); ++i) {
    for (uint64_t at : {sections[i].offset, sections[i].offset + sections[i].size / 2,
                        sections[i].offset + sections[i].size - 1}) {
      SCOPED_TRACE("section " + std::to_string(i) + " byte " + std::to_string(at));
      std::string bad = bytes;
      bad[at] ^= 0x10;
      auto b = take(Bundle::from_bytes("bad.ingot", bad), &error);
      if (!b) {
        // A corrupt manifest may already fail to parse; the message says so.
        EXPECT_EQ(i, 0u);
        EXPECT_NE(error.find("manifest"), std::string::npos) << error;
        continue;
      }
      EXPECT_FALSE(succeeded(b->verify(), &error));
      const std::string want = "bad.ingot: section " + std::to_string(i) + " (" +
                               bundle::section_kind_name(sections[i].kind) + ") is corrupt";
      EXPECT_EQ(error.rfind(want, 0), 0u) << error;
    }
  }
}

TEST(BundleErrors, HeaderAndTable) {
  const std::string bytes = read_file(write_small(make_temp_dir("bundle_hdr")));
  {
    std::string bad = bytes;
    bad[0] = 'X';
    expect_open_error(bad, "not an Ingot bundle (bad magic)");
  }
  {
    std::string bad = bytes;
    put_u32(bad, 8, 3);
    expect_open_error(bad, "bundle format version 3, this runtime reads 1 to 2");
  }
  {
    // Version 1 (kernels without the work counter) still opens.
    std::string old = bytes;
    put_u32(old, 8, 1);
    std::string error;
    auto b = take(Bundle::from_bytes("v1.ingot", old, {}), &error);
    EXPECT_NE(b, nullptr) << error;
  }
  {
    std::string bad = bytes;
    put_u64(bad, 16, 4);
    expect_open_error(bad, "unknown header flags 0x4");
  }
  {
    std::string bad = bytes;
    put_u32(bad, 12, 1000);
    expect_open_error(bad, "section count 1000 is out of range");
  }
  {
    std::string bad = bytes;
    put_u32(bad, 12, 0);
    expect_open_error(bad, "section count 0");
  }
  const size_t e0 = bundle::FileHeader::kSize, e1 = e0 + bundle::SectionEntry::kSize,
               e2 = e1 + bundle::SectionEntry::kSize;
  {  // the weights section's size runs past the end
    std::string bad = bytes;
    put_u64(bad, e2 + 16, bytes.size());
    expect_open_error(bad, "section 2 (weights) [");
    expect_open_error(bad, "lies outside the file");
  }
  {  // an offset so large that offset + size overflows
    std::string bad = bytes;
    put_u64(bad, e2 + 8, ~uint64_t(0) - 4095);
    expect_open_error(bad, "lies outside the file");
  }
  {
    std::string bad = bytes;
    put_u64(bad, e1 + 8, 4096 + 1);
    expect_open_error(bad, "section 1 (kernels) at offset 4097 is not aligned to 4096");
  }
  {  // the kernels section moved onto the manifest
    std::string bad = bytes;
    put_u64(bad, e1 + 8, 4096);
    expect_open_error(bad, "overlaps");
  }
  {
    std::string bad = bytes;
    put_u64(bad, e0 + 8, 0);
    expect_open_error(bad, "overlaps the section table");
  }
  {  // two manifests
    std::string bad = bytes;
    put_u32(bad, e1, 1);
    expect_open_error(bad, "appears twice");
  }
  {  // no manifest
    std::string bad = bytes;
    put_u32(bad, e0, 77);
    expect_open_error(bad, "no manifest section");
  }
  {  // a manifest that does not parse (and an unknown kind is otherwise fine)
    std::string bad = bytes;
    const uint64_t off = 4096;
    for (int i = 0; i < 16; ++i) bad[off + i] = '\xff';
    expect_open_error(bad, "the manifest does not parse");
  }
}

TEST(BundleErrors, ManifestContents) {
  const std::string dir = make_temp_dir("bundle_manifest");
  auto write_with = [&](auto edit) {
    BundleContents c = small_contents();
    edit(c);
    EXPECT_TRUE(write_bundle(dir + "/m.ingot", c).ok());
    return read_file(dir + "/m.ingot");
  };
  // The writer copies everything but the tensors verbatim, so a bad plan or schedule reaches the file.
  expect_open_error(write_with([](BundleContents& c) { c.manifest.mutable_memory_plan()->mutable_buffers(0)->set_offset(4090); }),
                    "buffer 'x:0' lies outside the arena");
  expect_open_error(write_with([](BundleContents& c) { c.manifest.mutable_memory_plan()->set_alignment(48); }),
                    "alignment 48 is not a power of two");
  expect_open_error(write_with([](BundleContents& c) { c.manifest.mutable_memory_plan()->mutable_state(0)->set_bytes(129); }),
                    "state slot 'kv.0.k' lies outside the state arena");
  expect_open_error(write_with([](BundleContents& c) {
                      auto* call = c.manifest.mutable_schedule()->add_calls();
                      call->set_symbol("k0");
                      call->add_args()->set_weight(3);
                    }),
                    "the call of 'k0' refers to something that does not exist");
  expect_open_error(write_with([](BundleContents& c) {
                      c.kernel_sets.clear();
                      c.manifest.add_kernels()->set_symbol("k0");
                    }),
                    "the manifest lists kernels but there is no kernels section");
  // A schedule that refers to existing things is accepted.
  std::string error;
  auto ok = take(Bundle::from_bytes("ok.ingot", write_with([](BundleContents& c) {
                                 auto* call = c.manifest.mutable_schedule()->add_calls();
                                 call->set_symbol("k0");
                                 call->add_args()->set_weight(2);
                                 call->add_args()->mutable_null();
                                 call->add_args()->set_arena_offset(64);
                                 call->add_dims(pb::DIM_TOKENS);
                               })), &error);
  EXPECT_NE(ok, nullptr) << error;
}

TEST(BundleErrors, TensorOutsideWeights) {
  // The writer computes tensor offsets itself, so put a bad one in by re-serializing the manifest
  // in place (the manifest section's size in the table is updated; hashes are not checked on open).
  const std::string bytes = read_file(write_small(make_temp_dir("bundle_tensor")));
  std::string error;
  auto b = take(Bundle::from_bytes("x.ingot", bytes), &error);
  ASSERT_NE(b, nullptr) << error;
  pb::Manifest m = b->manifest();
  m.mutable_tensors(1)->set_offset(64 * 1000);
  std::string ms;
  ASSERT_TRUE(m.SerializeToString(&ms));
  const BundleSection& s0 = b->sections()[0];
  ASSERT_LE(ms.size(), 4096u);
  std::string bad = bytes;
  bad.replace(s0.offset, s0.size, std::string(s0.size, '\0'));
  bad.replace(s0.offset, ms.size(), ms);
  put_u64(bad, bundle::FileHeader::kSize + 16, ms.size());
  expect_open_error(bad, "tensor 1 'cat' [64000, +300) lies outside the weights section");
  m.mutable_tensors(1)->set_offset(65);
  ASSERT_TRUE(m.SerializeToString(&ms));
  bad.replace(s0.offset, ms.size(), ms);
  put_u64(bad, bundle::FileHeader::kSize + 16, ms.size());
  expect_open_error(bad, "tensor 1 'cat' at offset 65 is not 64-byte aligned");
}

// ---------------------------------------------------------------- kernel sets

using ::ingot::testing::CmdResult;
using ::ingot::testing::run;

// Re-serializes a bundle's manifest in place after `edit` (it must fit before the next section),
// with its size and SHA-256 in the section table.
std::string with_manifest(const std::string& bytes, const std::function<void(pb::Manifest&)>& edit) {
  std::string error;
  auto b = take(Bundle::from_bytes("x.ingot", bytes, BundleOpenOptions{.check_cpu = false, .tier = {}}), &error);
  EXPECT_NE(b, nullptr) << error;
  if (!b) return bytes;
  pb::Manifest m = b->manifest();
  edit(m);
  std::string ms;
  EXPECT_TRUE(m.SerializeToString(&ms));
  const BundleSection& s0 = b->sections()[0];
  EXPECT_LE(s0.offset + ms.size(), b->sections()[1].offset) << "the edited manifest does not fit";
  std::string out = bytes;
  out.replace(s0.offset, s0.size, std::string(s0.size, '\0'));
  out.replace(s0.offset, ms.size(), ms);
  put_u64(out, bundle::FileHeader::kSize + 16, ms.size());
  const Sha256::Digest d = Sha256::hash(ms.data(), ms.size());
  out.replace(bundle::FileHeader::kSize + 24, 32, std::string(d.begin(), d.end()));
  return out;
}

// Sets of real tiers, each in its own (made-up) section.
std::vector<KernelSet> sets_of(const std::vector<std::string>& tiers) {
  std::vector<KernelSet> sets;
  for (const std::string& t : tiers) {
    const CpuTier* tier = find_cpu_tier(t);
    EXPECT_NE(tier, nullptr) << t;
    sets.push_back({t, tier->llvm_cpu, tier->features, static_cast<int>(sets.size()) + 1, 1000});
  }
  return sets;
}

// A CPU with exactly a tier's features, plus `more`.
CpuFeatures cpu_of(const std::string& tier, const std::vector<std::string>& more = {}) {
  CpuFeatures cpu;
  cpu.present = find_cpu_tier(tier)->features;
  cpu.present.insert(cpu.present.end(), more.begin(), more.end());
  std::sort(cpu.present.begin(), cpu.present.end());
  return cpu;
}

TEST(KernelSets, TheMostDemandingSetTheCpuRunsIsChosen) {
  const auto sets = sets_of({"x86-64-v2", "x86-64-v3", "x86-64-v4", "avx512"});
  EXPECT_EQ(choose_kernel_set(sets, "", "", cpu_of("x86-64-v2")).set, 0);
  EXPECT_EQ(choose_kernel_set(sets, "", "", cpu_of("x86-64-v3", {"avx512vnni", "avx10.1-256"})).set, 1);
  EXPECT_EQ(choose_kernel_set(sets, "", "", cpu_of("x86-64-v4")).set, 2);
  EXPECT_EQ(choose_kernel_set(sets, "", "", cpu_of("amx")).set, 3);
  // A bundle without the CPU's best tier: the best it has that runs.
  EXPECT_EQ(choose_kernel_set(sets_of({"x86-64-v2", "x86-64-v3"}), "", "", cpu_of("amx")).set, 1);
  // No sets (a bundle without kernels): nothing to choose, nothing wrong.
  const KernelSetChoice none = choose_kernel_set({}, "", "", cpu_of("x86-64-v2"));
  EXPECT_EQ(none.set, -1);
  EXPECT_EQ(none.problem, "");
}

TEST(KernelSets, ARequestedTierMustBeInTheBundleAndRunHere) {
  const auto sets = sets_of({"x86-64-v3", "x86-64-v4"});
  // Any set the CPU runs may be requested, also a less demanding one.
  EXPECT_EQ(choose_kernel_set(sets, "x86-64-v3", "", cpu_of("avx512")).set, 0);
  EXPECT_EQ(choose_kernel_set(sets, "x86-64-v4", "", cpu_of("avx512")).set, 1);
  // A tier the bundle lacks: its tiers and the CPU's best.
  KernelSetChoice c = choose_kernel_set(sets, "avx512", "INGOT_TIER", cpu_of("avx512"));
  EXPECT_EQ(c.set, -1);
  EXPECT_EQ(c.code, StatusCode::invalid_argument);
  EXPECT_EQ(c.problem, "the bundle has no kernels for tier 'avx512' (requested by INGOT_TIER); its tiers: x86-64-v3, "
                       "x86-64-v4; this CPU's best tier: avx512");
  // Not a tier at all: the tiers are listed too.
  c = choose_kernel_set(sets, "znver4", "", cpu_of("x86-64-v3"));
  EXPECT_NE(c.problem.find("no kernels for tier 'znver4' (requested)"), std::string::npos) << c.problem;
  EXPECT_NE(c.problem.find("the CPU tiers are x86-64-v2, x86-64-v3, x86-64-v4, avx512, amx"), std::string::npos) << c.problem;
  // A tier the CPU cannot run: what it lacks.
  c = choose_kernel_set(sets, "x86-64-v4", "", cpu_of("x86-64-v3"));
  EXPECT_EQ(c.set, -1);
  EXPECT_EQ(c.code, StatusCode::unsupported);
  EXPECT_EQ(c.problem, "tier 'x86-64-v4' (requested) does not run on this CPU, which lacks avx512bw, avx512cd, avx512dq, "
                       "avx512f, avx512vl, evex512; the bundle's tiers: x86-64-v3, x86-64-v4; this CPU's best tier: x86-64-v3");
}

TEST(KernelSets, NoSetRunsHere) {
  // One set: the message of a single-tier bundle, as before kernel sets.
  KernelSetChoice c = choose_kernel_set(sets_of({"x86-64-v4"}), "", "", cpu_of("x86-64-v3"));
  EXPECT_EQ(c.set, -1);
  EXPECT_EQ(c.code, StatusCode::unsupported);
  EXPECT_NE(c.problem.find("this CPU lacks feature(s) the kernels were compiled for (tier x86-64-v4): avx512bw"),
            std::string::npos) << c.problem;
  EXPECT_NE(c.problem.find("this CPU runs tier x86-64-v3: recompile with --target x86-64-v3"), std::string::npos) << c.problem;
  // Several: all named, the least demanding one's missing features, the tier to compile for.
  c = choose_kernel_set(sets_of({"x86-64-v4", "avx512", "amx"}), "", "", cpu_of("x86-64-v3"));
  EXPECT_EQ(c.set, -1);
  EXPECT_EQ(c.problem.rfind("this CPU runs none of the bundle's tiers (x86-64-v4, avx512, amx): this CPU lacks feature(s) "
                            "the kernels were compiled for (tier x86-64-v4): avx512bw", 0), 0u) << c.problem;
  EXPECT_NE(c.problem.find("recompile with --target x86-64-v3"), std::string::npos) << c.problem;
}

// cpuid says AMX, the OS did not grant tile state: the avx512 set runs, with a note; requesting
// amx says why it cannot run.
TEST(KernelSets, AmxWithoutTheOsGrantFallsBackWithANote) {
  const auto sets = sets_of({"x86-64-v3", "avx512", "amx"});
  CpuFeatures refused = cpu_of("avx512");
  refused.amx_refused = true;
  KernelSetChoice c = choose_kernel_set(sets, "", "", refused);
  EXPECT_EQ(c.set, 1);
  EXPECT_EQ(c.problem, "");
  EXPECT_EQ(c.note, "this CPU has AMX, but the OS did not enable or grant AMX tile state for this process: running tier avx512 instead of amx");
  // Without an amx set, or on a CPU without AMX, nothing to say.
  EXPECT_EQ(choose_kernel_set(sets_of({"x86-64-v3", "avx512"}), "", "", refused).note, "");
  EXPECT_EQ(choose_kernel_set(sets, "", "", cpu_of("avx512")).note, "");
  c = choose_kernel_set(sets, "amx", "", refused);
  EXPECT_EQ(c.set, -1);
  EXPECT_NE(c.problem.find("which lacks amx-int8, amx-tile"), std::string::npos) << c.problem;
  EXPECT_NE(c.problem.find("this CPU has AMX, but the OS did not enable or grant AMX tile state for this process"), std::string::npos) << c.problem;
  // This host: the flag and the detected features agree.
  if (amx_grant_refused()) EXPECT_FALSE(usable_cpu_features().has("amx-tile"));
  if (!host_cpu_features().has("amx-tile")) EXPECT_FALSE(usable_cpu_features().has("amx-tile"));
}

TEST(Bundle, SeveralKernelSetsRoundTrip) {
  const std::string dir = make_temp_dir("bundle_sets");
  BundleContents c = small_contents();
  c.kernel_sets = {{"x86-64-v2", "x86-64-v2", find_cpu_tier("x86-64-v2")->features, pattern(3000, 7)},
                   {"x86-64-v3", "x86-64-v3", find_cpu_tier("x86-64-v3")->features, pattern(6000, 8)}};
  BundleWriteStats stats;
  const std::string path = dir + "/sets.ingot";
  ASSERT_TRUE(write_bundle(path, c, &stats).ok());
  EXPECT_EQ(stats.kernels_bytes, 9000u);
  std::string error;
  auto b = take(Bundle::open(path, BundleOpenOptions{.check_cpu = false, .tier = {}}), &error);
  ASSERT_NE(b, nullptr) << error;
  EXPECT_TRUE(succeeded(b->verify(), &error)) << error;
  ASSERT_EQ(b->sections().size(), 4u);
  EXPECT_EQ(b->sections()[1].kind, uint32_t(bundle::SectionKind::kernels));
  EXPECT_EQ(b->sections()[2].kind, uint32_t(bundle::SectionKind::kernels));
  ASSERT_EQ(b->manifest().kernel_sets_size(), 2);
  ASSERT_EQ(b->kernel_sets().size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const KernelSet& k = b->kernel_sets()[size_t(i)];
    EXPECT_EQ(k.section, i + 1);
    EXPECT_EQ(k.size, i == 0 ? 3000u : 6000u);
    EXPECT_EQ(k.features, find_cpu_tier(k.tier)->features);
    const auto bytes = b->bytes(b->sections()[size_t(k.section)]);
    EXPECT_EQ(std::string(bytes.begin(), bytes.end()), c.kernel_sets[size_t(i)].shared_object);
  }
  // This host runs both (every test host is x86-64-v3 or better): the more demanding one is chosen.
  EXPECT_EQ(b->chosen_kernel_set(), 1);
  EXPECT_EQ(b->tier(), "x86-64-v3");
  auto v2 = take(Bundle::open(path, BundleOpenOptions{.check_cpu = true, .tier = "x86-64-v2"}), &error);
  ASSERT_NE(v2, nullptr) << error;
  EXPECT_EQ(v2->tier(), "x86-64-v2");
  // The environment variable requests one when the options do not; the options win.
  setenv("INGOT_TIER", "x86-64-v2", 1);
  auto by_env = take(Bundle::open(path), &error);
  auto by_option = take(Bundle::open(path, BundleOpenOptions{.check_cpu = true, .tier = "x86-64-v3"}), &error);
  setenv("INGOT_TIER", "avx512", 1);
  std::string env_error;
  auto missing = take(Bundle::open(path), &env_error);
  unsetenv("INGOT_TIER");
  ASSERT_NE(by_env, nullptr);
  EXPECT_EQ(by_env->tier(), "x86-64-v2");
  ASSERT_NE(by_option, nullptr);
  EXPECT_EQ(by_option->tier(), "x86-64-v3");
  EXPECT_EQ(missing, nullptr);
  EXPECT_EQ(env_error.rfind(path + ": the bundle has no kernels for tier 'avx512' (requested by INGOT_TIER); its tiers: "
                            "x86-64-v2, x86-64-v3", 0), 0u) << env_error;
  // The format without kernel sets holds one kernels section only.
  c.without_kernel_sets = true;
  Status st = write_bundle(dir + "/two.ingot", c);
  EXPECT_NE(st.message().find("holds one kernels section, not 2"), std::string::npos) << st.message();
}

TEST(BundleErrors, KernelSetsMustMatchTheSections) {
  BundleContents c = small_contents();
  c.kernel_sets = {{"x86-64-v2", "x86-64-v2", find_cpu_tier("x86-64-v2")->features, pattern(3000, 7)},
                   {"x86-64-v3", "x86-64-v3", find_cpu_tier("x86-64-v3")->features, pattern(6000, 8)}};
  const std::string path = make_temp_dir("bundle_sets_bad") + "/sets.ingot";
  ASSERT_TRUE(write_bundle(path, c).ok());
  const std::string bytes = read_file(path);
  expect_open_error(with_manifest(bytes, [](pb::Manifest& m) { m.mutable_kernel_sets(1)->set_section(0); }),
                    "kernel set 1 (tier 'x86-64-v3') names section 0, which is not a kernels section");
  expect_open_error(with_manifest(bytes, [](pb::Manifest& m) { m.mutable_kernel_sets(1)->set_section(9); }),
                    "names section 9, which is not a kernels section");
  expect_open_error(with_manifest(bytes, [](pb::Manifest& m) { m.mutable_kernel_sets(0)->set_size(3001); }),
                    "kernel set 0 (tier 'x86-64-v2') says 3001 bytes, its section has 3000");
  expect_open_error(with_manifest(bytes, [](pb::Manifest& m) { m.mutable_kernel_sets(1)->set_tier("x86-64-v2"); }),
                    "kernel set 1 (tier 'x86-64-v2') appears twice");
  expect_open_error(with_manifest(bytes, [](pb::Manifest& m) { m.mutable_kernel_sets(1)->set_tier(""); }),
                    "kernel set 1 has no tier name");
  expect_open_error(with_manifest(bytes, [](pb::Manifest& m) { m.mutable_kernel_sets()->RemoveLast(); }),
                    "the manifest lists 1 kernel set(s) for 2 kernels section(s)");
  expect_open_error(with_manifest(bytes,
                                  [](pb::Manifest& m) {
                                    m.mutable_kernel_sets(1)->set_section(1);
                                    m.mutable_kernel_sets(1)->set_size(3000);
                                  }),
                    "shares section 1 with tier 'x86-64-v2'");
  // Without kernel sets (the format before them) one kernels section at most.
  expect_open_error(with_manifest(bytes, [](pb::Manifest& m) { m.clear_kernel_sets(); }),
                    "section 2 (kernels) appears twice and the manifest lists no kernel sets");
}

// A bundle written before kernel sets (one kernels section, the tier in the provenance only)
// loads: its one set comes from the provenance, and can be requested by name.
TEST(Bundle, BundlesFromBeforeKernelSetsLoad) {
  KernelSpec spec;
  spec.name = "test_rms_norm";
  spec.kind = "rms_norm";
  spec.rms_norm.D = 8;
  const std::string dir = make_temp_dir("bundle_old");
  CodegenOptions options;
  options.cpu = "x86-64-v3";
  ASSERT_TRUE(compile_kernels({spec}, options, dir + "/k.so").ok());
  BundleContents c = small_contents();
  const CpuTier& v3 = *find_cpu_tier("x86-64-v3");
  pb::Provenance* pv = c.manifest.mutable_provenance();
  pv->clear_target_features();
  for (const std::string& f : v3.features) pv->add_target_features(f);
  pv->set_target_cpu("x86-64-v3");
  pv->set_target_tier("x86-64-v3");
  c.manifest.add_kernels()->set_symbol("test_rms_norm");
  c.kernel_sets = {{"x86-64-v3", "x86-64-v3", v3.features, read_file(dir + "/k.so")}};
  c.without_kernel_sets = true;
  const std::string path = dir + "/old.ingot";
  ASSERT_TRUE(write_bundle(path, c).ok());

  std::string error;
  auto b = take(Bundle::open(path), &error);
  ASSERT_NE(b, nullptr) << error;
  EXPECT_EQ(b->manifest().kernel_sets_size(), 0);
  ASSERT_EQ(b->sections().size(), 3u);
  ASSERT_EQ(b->kernel_sets().size(), 1u);
  EXPECT_EQ(b->kernel_sets()[0].tier, "x86-64-v3");
  EXPECT_EQ(b->kernel_sets()[0].llvm_cpu, "x86-64-v3");
  EXPECT_EQ(b->kernel_sets()[0].features, v3.features);
  EXPECT_EQ(b->kernel_sets()[0].section, 1);
  EXPECT_EQ(b->kernel_sets()[0].size, b->sections()[1].size);
  EXPECT_EQ(b->tier(), "x86-64-v3");
  auto lib = take(b->load_kernels(), &error);
  ASSERT_NE(lib, nullptr) << error;
  EXPECT_TRUE(lib->symbol("test_rms_norm").ok());
  EXPECT_NE(take(Bundle::open(path, BundleOpenOptions{.check_cpu = true, .tier = "x86-64-v3"}), &error), nullptr) << error;
  EXPECT_EQ(take(Bundle::open(path, BundleOpenOptions{.check_cpu = true, .tier = "avx512"}), &error), nullptr);
  EXPECT_NE(error.find("no kernels for tier 'avx512' (requested); its tiers: x86-64-v3"), std::string::npos) << error;
  // The commands describe and verify it like any other.
  CmdResult info = run(std::string(INGOT_INGOT) + " info " + path);
  EXPECT_EQ(info.status, 0) << info.out;
  EXPECT_NE(info.out.find("kernel sets: 1\n  x86-64-v3  section 1"), std::string::npos) << info.out;
  CmdResult verify = run(std::string(INGOT_INGOT) + " verify " + path);
  EXPECT_EQ(verify.status, 0) << verify.out;
  EXPECT_NE(verify.out.find(path + ": kernels objects ok"), std::string::npos) << verify.out;
}

// ---------------------------------------------------------------- CPU features

std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

// Each tier's list is exactly what LLVM enables for its CPU name (so generated code can use no
// feature the bundle does not list), every name in it is one the runtime detects, and the tiers nest.
TEST(CpuTiers, ListExactlyWhatLlvmEnablesAndNest) {
  const std::vector<CpuTier>& tiers = cpu_tiers();
  ASSERT_EQ(cpu_tier_names(), "x86-64-v2, x86-64-v3, x86-64-v4, avx512, amx");
  // What each tier that is not a psABI level adds to its LLVM CPU.
  const std::map<std::string, std::vector<std::string>> additions = {
      {"avx512", {"avx512vnni"}}, {"amx", {"amx-int8", "amx-tile", "avx512vnni"}}};
  for (size_t i = 0; i < tiers.size(); ++i) {
    const CpuTier& t = tiers[i];
    EXPECT_TRUE(std::is_sorted(t.features.begin(), t.features.end())) << t.name;
    // The psABI levels are exactly their LLVM CPU; avx512 adds VNNI to x86-64-v4, amx AMX-INT8.
    std::vector<std::string> own = llvm_isa_features(t.llvm_cpu, "");
    const auto added = additions.find(t.name);
    if (added != additions.end())
      for (const std::string& f : added->second) own.insert(std::upper_bound(own.begin(), own.end(), f), f);
    EXPECT_EQ(own, t.features) << t.name;
    // The feature string the compiler passes adds nothing beyond the list.
    EXPECT_EQ(llvm_isa_features(t.llvm_cpu, llvm_feature_string(t.features)), t.features) << t.name;
    for (const std::string& f : t.features) EXPECT_TRUE(CpuFeatures::known(f)) << t.name << ": " << f;
    if (i > 0)
      EXPECT_TRUE(std::includes(t.features.begin(), t.features.end(), tiers[i - 1].features.begin(),
                                tiers[i - 1].features.end()))
          << t.name;
    // Nothing only some CPUs of a level have.
    for (const char* extra : {"avx10.1-256", "amx-tile", "amx-int8", "avx512fp16", "avx512vnni", "avxvnni", "sha", "aes"})
      if (added == additions.end() || !std::count(added->second.begin(), added->second.end(), extra))
        EXPECT_FALSE(std::binary_search(t.features.begin(), t.features.end(), extra)) << t.name << ": " << extra;
  }
  EXPECT_EQ(find_cpu_tier("znver3"), nullptr);
}

// Where LLVM and the runtime both name a feature, they agree about this host. LLVM may report
// names the runtime does not know ("avx10.1-256" on Sapphire Rapids class hosts): those are in no
// tier, so they decide nothing.
TEST(CpuFeatures, RuntimeAgreesWithLlvmOnThisHost) {
  const TargetInfo t = host_target();
  const CpuFeatures& f = host_cpu_features();
  std::vector<std::string> unknown;
  for (const std::string& name : t.features) {
    if (!CpuFeatures::known(name)) {
      unknown.push_back(name);
      continue;
    }
    EXPECT_TRUE(f.has(name)) << "LLVM sees '" << name << "' on this host, the runtime does not";
  }
  for (const CpuTier& tier : cpu_tiers())
    for (const std::string& name : tier.features)
      EXPECT_EQ(f.has(name), std::binary_search(t.features.begin(), t.features.end(), name)) << name;
  if (!unknown.empty()) std::printf("LLVM names on this host that the runtime does not check: %s\n", join_names(unknown).c_str());
  EXPECT_EQ(check_cpu_features({"+avx2", "-avx512f"}).empty(), f.has("avx2"));
  // This host runs at least the most portable tier, and native names the best one.
  const CpuTier* best = best_cpu_tier(f);
  ASSERT_NE(best, nullptr);
  EXPECT_EQ(check_cpu_features(best->features, best->name), "");
  TargetInfo native;
  std::string error;
  ASSERT_TRUE(named_target("native", &native, &error)) << error;
  EXPECT_EQ(native.tier, best->name);
  EXPECT_EQ(native.features, best->features);
}

// A CPU that reports feature names nobody knows still runs every tier whose features it has.
TEST(CpuFeatures, UnknownHostFeatureNamesDoNotBlockATier) {
  CpuFeatures cpu;
  cpu.present = find_cpu_tier("x86-64-v3")->features;
  for (const char* f : {"avx10.1-256", "ingot-future-feature", "avx512vnni"}) cpu.present.push_back(f);
  std::sort(cpu.present.begin(), cpu.present.end());
  ASSERT_EQ(best_cpu_tier(cpu), find_cpu_tier("x86-64-v3"));
  for (const char* tier : {"x86-64-v2", "x86-64-v3"})
    EXPECT_EQ(check_cpu_features(find_cpu_tier(tier)->features, tier, cpu), "") << tier;
  // A feature the kernels use and the CPU lacks: named with the tier, and the tier it can run.
  const std::string msg = check_cpu_features(find_cpu_tier("x86-64-v4")->features, "x86-64-v4", cpu);
  EXPECT_NE(msg.find("this CPU lacks feature(s) the kernels were compiled for (tier x86-64-v4): avx512bw, avx512cd, "
                     "avx512dq, avx512f, avx512vl, evex512"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("this CPU runs tier x86-64-v3: recompile with --target x86-64-v3"), std::string::npos) << msg;
  CpuFeatures old;
  old.present = {"cmov", "cx8", "fxsr", "mmx", "sse", "sse2"};
  EXPECT_EQ(best_cpu_tier(old), nullptr);
  EXPECT_NE(check_cpu_features({"sse4.2"}, "x86-64-v2", old).find("below every tier"), std::string::npos);
}

TEST(BundleErrors, TargetFeatureTheHostLacks) {
  const std::string dir = make_temp_dir("bundle_cpu");
  std::string error;
  // A made-up feature: the runtime cannot check it, so it refuses.
  {
    const std::string path = write_small(dir, {"sse2", "+ingot-imaginary-feature"});
    EXPECT_EQ(take(Bundle::open(path), &error), nullptr);
    EXPECT_NE(error.find("cannot check (tier test-cpu): ingot-imaginary-feature"), std::string::npos) << error;
    EXPECT_NE(error.find(path + ": "), std::string::npos) << error;
    // Described anyway when asked not to check.
    auto b = take(Bundle::open(path, BundleOpenOptions{.check_cpu = false, .tier = {}}), &error);
    ASSERT_NE(b, nullptr) << error;
    EXPECT_NE(b->check_cpu().find("ingot-imaginary-feature"), std::string::npos);
  }
  // A real feature this host does not have, if there is one among these.
  std::string lacking;
  for (const char* f : {"amx-tile", "avx512fp16", "avx512vp2intersect", "xop", "fma4", "tbm", "sse4a", "avx512er",
                        "avxvnniint16", "sha512", "amx-complex"})
    if (!host_cpu_features().has(f)) {
      lacking = f;
      break;
    }
  if (lacking.empty()) GTEST_SKIP() << "this host has every candidate feature";
  const std::string path = write_small(dir, {"sse2", lacking});
  EXPECT_EQ(Bundle::open(path).code(), StatusCode::unsupported);  // the C API's INGOT_ERR_UNSUPPORTED
  EXPECT_EQ(take(Bundle::open(path), &error), nullptr);
  EXPECT_NE(error.find("this CPU lacks feature(s) the kernels were compiled for (tier test-cpu): " + lacking),
            std::string::npos)
      << error;
}

// ---------------------------------------------------------------- kernels from memory

TEST(BundleKernels, LoadedFromMemoryAndCalled) {
  KernelSpec spec;
  spec.name = "test_rms_norm";
  spec.kind = "rms_norm";
  spec.rms_norm.D = 8;
  spec.rms_norm.eps = 1e-5f;
  const std::string dir = make_temp_dir("bundle_kernels");
  ASSERT_TRUE(compile_kernels({spec}, CodegenOptions{}, dir + "/k.so").ok());
  BundleContents c = small_contents();
  c.kernel_sets[0].shared_object = read_file(dir + "/k.so");
  c.manifest.add_kernels()->set_symbol("test_rms_norm");
  const std::string path = dir + "/k.ingot";
  ASSERT_TRUE(write_bundle(path, c).ok());
  std::remove((dir + "/k.so").c_str());

  // A private TMPDIR for the load: other tests running beside this one (ctest -j) create files in
  // the shared /tmp, and a loader that wrote a temporary file would put it here.
  const char* tmp_env = std::getenv("TMPDIR");
  const std::string saved_tmpdir = tmp_env ? tmp_env : "";
  const std::string tmp = make_temp_dir("bundle_kernels_tmpdir");
  setenv("TMPDIR", tmp.c_str(), 1);
  const auto tmp_before = list_dir(tmp);
  const auto fds_before = list_dir("/proc/self/fd");
  std::string error;
  auto b = take(Bundle::open(path), &error);
  ASSERT_NE(b, nullptr) << error;
  ASSERT_TRUE(succeeded(b->verify(), &error)) << error;
  {
    auto lib = take(b->load_kernels(), &error);
    ASSERT_NE(lib, nullptr) << error;
    EXPECT_EQ(take(lib->symbol("nope"), &error), nullptr);
    EXPECT_NE(error.find("does not define a function 'nope'"), std::string::npos) << error;
    auto fn = reinterpret_cast<KernelFn>(take(lib->symbol("test_rms_norm"), &error));
    ASSERT_NE(fn, nullptr) << error;
    // Loaded from an anonymous memfd, not a file.
    EXPECT_NE(read_file("/proc/self/maps").find("memfd:ingot-kernels"), std::string::npos);

    float x[16], w[8], y[16];
    for (int i = 0; i < 16; ++i) x[i] = static_cast<float>(i % 5) - 1.5f;
    for (int i = 0; i < 8; ++i) w[i] = 0.5f + 0.25f * i;
    const void* args[3] = {y, x, w};
    const int64_t dims[1] = {2};
    fn(args, dims, 0, 1);
    for (int r = 0; r < 2; ++r) {
      double ss = 0;
      for (int i = 0; i < 8; ++i) ss += double(x[r * 8 + i]) * x[r * 8 + i];
      const double inv = 1.0 / std::sqrt(ss / 8 + 1e-5);
      for (int i = 0; i < 8; ++i) EXPECT_NEAR(y[r * 8 + i], x[r * 8 + i] * inv * w[i], 1e-5) << r << "," << i;
    }
    // A second library from the same bundle loads independently.
    auto lib2 = take(b->load_kernels(), &error);
    ASSERT_NE(lib2, nullptr) << error;
    EXPECT_TRUE(lib2->symbol("test_rms_norm").ok());
  }
  EXPECT_EQ(list_dir(tmp), tmp_before) << "loading kernels must not create files in " << tmp;
  if (tmp_env) setenv("TMPDIR", saved_tmpdir.c_str(), 1);
  else unsetenv("TMPDIR");
  EXPECT_EQ(list_dir("/proc/self/fd"), fds_before) << "no descriptor left open";

  // Kernels bytes that are not a shared object: a clear error, no crash.
  std::string error2;
  auto junk = take(Bundle::open(write_small(make_temp_dir("bundle_junk"))), &error2);
  ASSERT_NE(junk, nullptr) << error2;
  EXPECT_EQ(take(junk->load_kernels(), &error2), nullptr);
  EXPECT_NE(error2.find("the kernels object is refused"), std::string::npos) << error2;
}

// ---------------------------------------------------------------- the commands

// Both compiles run LLVM: no kernel cache (a user's $INGOT_KERNEL_CACHE must not make this pass).
TEST(BundleCommands, CompileTwiceGivesIdenticalBundles) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  const std::string dir = make_temp_dir("bundle_cli");
  const std::string a = dir + "/a.ingot", b = dir + "/b.ingot";
  const std::string ingotc = "INGOT_KERNEL_CACHE= " + std::string(INGOT_INGOTC);
  CmdResult r1 = run(ingotc + " compile " + model + " -o " + a);
  ASSERT_EQ(r1.status, 0) << r1.out;
  EXPECT_NE(r1.out.find("generate kernels"), std::string::npos) << r1.out;
  EXPECT_EQ(r1.out.find("kernel cache"), std::string::npos) << r1.out;
  CmdResult r2 = run(ingotc + " compile " + model + " -o " + b);
  ASSERT_EQ(r2.status, 0) << r2.out;
  const std::string ba = read_file(a), bb = read_file(b);
  ASSERT_GT(ba.size(), 100000u);
  EXPECT_TRUE(ba == bb) << "two compiles of the same model differ";
  EXPECT_EQ(list_dir(dir), (std::vector<std::string>{"a.ingot", "b.ingot"}));

  std::string error;
  auto bundle = take(Bundle::open(a), &error);
  ASSERT_NE(bundle, nullptr) << error;
  ASSERT_TRUE(succeeded(bundle->verify(), &error)) << error;
  const pb::Manifest& m = bundle->manifest();
  EXPECT_GT(m.kernels_size(), 0);
  EXPECT_EQ(m.tokenizer().tokens_size(), 512);
  EXPECT_GT(m.memory_plan().arena_bytes(), 0);
  EXPECT_EQ(m.state_size(), m.memory_plan().state_size());
  EXPECT_EQ(m.provenance().sources(0).name(), "stories260K.gguf");
  EXPECT_EQ(m.provenance().sources(0).sha256(), to_hex(Sha256::hash(read_file(model))));
  EXPECT_NE(m.graph_text().find("FusedMatMul"), std::string::npos);
  // Every kernel the manifest lists loads, and every packed tensor names one of them.
  auto lib = take(bundle->load_kernels(), &error);
  ASSERT_NE(lib, nullptr) << error;
  std::set<std::string> symbols;
  for (const auto& k : m.kernels()) {
    EXPECT_NE(take(lib->symbol(k.symbol()), &error), nullptr) << error;
    symbols.insert(k.symbol());
  }
  int packed = 0;
  for (int i = 0; i < bundle->tensor_count(); ++i) {
    const auto& t = m.tensors(i);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(bundle->tensor_data(i)) % 64, 0u);
    if (t.layout() == "matmul-packed") {
      ++packed;
      EXPECT_TRUE(symbols.count(t.kernel())) << t.name();
    }
  }
  EXPECT_GT(packed, 0);

  CmdResult info = run(std::string(INGOT_INGOT) + " info " + a);
  EXPECT_EQ(info.status, 0) << info.out;
  for (const char* want : {"tensors:", "memory plan:", "tokenizer: SentencePiece, 512 tokens", "provenance:",
                           "state variables: 10", "kernels:"})
    EXPECT_NE(info.out.find(want), std::string::npos) << want << "\n" << info.out;
  CmdResult verify = run(std::string(INGOT_INGOT) + " verify " + a);
  EXPECT_EQ(verify.status, 0) << verify.out;
  EXPECT_NE(verify.out.find("SHA-256 ok"), std::string::npos) << verify.out;

  // A flipped weight byte: verify fails, naming the file and the section.
  std::string bad = ba;
  const BundleSection* w = bundle->find_section(bundle::SectionKind::weights);
  bad[w->offset + w->size / 3] ^= 1;
  std::ofstream(dir + "/bad.ingot", std::ios::binary) << bad;
  CmdResult v2 = run(std::string(INGOT_INGOT) + " verify " + dir + "/bad.ingot");
  EXPECT_EQ(v2.status, 1) << v2.out;
  EXPECT_NE(v2.out.find(dir + "/bad.ingot: section " + std::to_string(w - &bundle->sections()[0]) + " (weights) is corrupt"),
            std::string::npos)
      << v2.out;
  // Truncated: info and verify both refuse it cleanly.
  std::ofstream(dir + "/cut.ingot", std::ios::binary) << ba.substr(0, ba.size() / 2);
  for (const char* cmd : {" info ", " verify "}) {
    CmdResult r = run(std::string(INGOT_INGOT) + cmd + dir + "/cut.ingot");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find(dir + "/cut.ingot: truncated"), std::string::npos) << r.out;
  }
  CmdResult help = run(std::string(INGOT_INGOT) + " --help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("ingot verify BUNDLE"), std::string::npos);
  EXPECT_EQ(run(std::string(INGOT_INGOT) + " frobnicate").status, 2);
}

// Each kernel set lists exactly its tier's features, whatever the compiling host has, and the
// code in it uses no instruction outside that tier: disassembled, x86-64-v2 kernels have no
// VEX/EVEX instruction, x86-64-v3 kernels no AVX-512 register or mask. One bundle holds the three.
TEST(BundleCommands, KernelsNeedOnlyTheirTiersFeatures) {
  const std::string dir = make_temp_dir("bundle_tiers");
  const std::map<std::string, std::string> forbidden = {  // a regular expression no disassembled instruction may match
      // VEX and EVEX mnemonics all start with v; SSE code has only xmm registers.
      {"x86-64-v2", "%[yz]mm|\\tv[a-z]"},
      // AVX-512: zmm, the upper 16 vector registers, mask registers, embedded broadcast, and
      // EVEX-only instructions.
      {"x86-64-v3", "%zmm|%[xy]mm(1[6-9]|2[0-9]|3[01])\\b|%k[0-7]|\\{1to|vpternlog|vperm[it]2|vpmov[qdw][bwd]|"
                    "vrndscale|vscalef|vpcompress|vpexpand|\\tk[a-z]"},
  };
  const std::string out = dir + "/tiers.ingot";
  CmdResult r = run(std::string(INGOT_INGOTC) + " compile demo --target x86-64-v3,native,x86-64-v2 -o " + out);
  ASSERT_EQ(r.status, 0) << r.out;
  std::string error;
  auto b = take(Bundle::open(out, BundleOpenOptions{.check_cpu = false, .tier = {}}), &error);
  ASSERT_NE(b, nullptr) << error;
  // In tier order, duplicates collapsed (native may be one of the two).
  const CpuTier* best = best_cpu_tier(usable_cpu_features());
  ASSERT_NE(best, nullptr);
  std::vector<std::string> want = {"x86-64-v2", "x86-64-v3"};
  if (best->name != want[0] && best->name != want[1]) want.push_back(best->name);
  std::vector<std::string> got;
  for (const KernelSet& k : b->kernel_sets()) got.push_back(k.tier);
  EXPECT_EQ(got, want);
  // The provenance describes the first set, as a runtime from before kernel sets reads it.
  const pb::Provenance& pv = b->manifest().provenance();
  EXPECT_EQ(pv.target_tier(), "x86-64-v2");
  EXPECT_EQ(pv.target_cpu(), "x86-64-v2");
  EXPECT_EQ(std::vector<std::string>(pv.target_features().begin(), pv.target_features().end()),
            find_cpu_tier("x86-64-v2")->features);
  const std::string bytes = read_file(out);
  for (int i = 0; i < static_cast<int>(b->kernel_sets().size()); ++i) {
    const KernelSet& k = b->kernel_sets()[size_t(i)];
    const CpuTier* tier = find_cpu_tier(k.tier);
    ASSERT_NE(tier, nullptr);
    EXPECT_EQ(k.llvm_cpu, tier->llvm_cpu);
    EXPECT_EQ(k.features, tier->features);
    EXPECT_EQ(b->check_cpu(i), "") << k.tier;  // this host runs its own tiers
    const auto f = forbidden.find(k.tier);
    if (f == forbidden.end()) continue;
    const BundleSection& section = b->sections()[size_t(k.section)];
    const std::string so = dir + "/" + k.tier + ".so";
    std::ofstream(so, std::ios::binary) << bytes.substr(section.offset, section.size);
    CmdResult dis = run(std::string(INGOT_OBJDUMP) + " -d --no-show-raw-insn " + so);
    ASSERT_EQ(dis.status, 0) << dis.out.substr(0, 2000);
    ASSERT_NE(dis.out.find("mm"), std::string::npos) << "no vector code at all?";
    // The check can fail: AVX2 kernels are caught by the x86-64-v2 expression.
    if (k.tier == "x86-64-v3")
      EXPECT_TRUE(std::regex_search(dis.out, std::regex(forbidden.at("x86-64-v2")))) << "the v2 check would not see AVX2";
    std::istringstream lines(dis.out);
    const std::regex forbidden_re(f->second);
    int bad = 0;
    for (std::string line; std::getline(lines, line);)
      if (std::regex_search(line, forbidden_re) && bad++ < 5) ADD_FAILURE() << k.tier << " kernel: " << line;
    EXPECT_EQ(bad, 0) << k.tier;
  }
  // Tiers are the only targets; an LLVM CPU name is refused before any work, with the choices,
  // also inside a list; so is an empty name.
  for (const char* target : {"znver3", "x86-64-v3,znver3"}) {
    CmdResult r = run(std::string(INGOT_INGOTC) + " compile demo --target " + target + " -o " + dir + "/z.ingot");
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.out.find("unknown target 'znver3': use portable (every tier), native (the best tier this CPU runs) or "
                         "tiers, comma-separated: x86-64-v2, x86-64-v3, x86-64-v4, avx512, amx"),
              std::string::npos) << r.out;
  }
  CmdResult empty = run(std::string(INGOT_INGOTC) + " compile demo --target x86-64-v3, -o " + dir + "/z.ingot");
  EXPECT_EQ(empty.status, 2) << empty.out;
  EXPECT_NE(empty.out.find("--target 'x86-64-v3,' has an empty name"), std::string::npos) << empty.out;
  EXPECT_FALSE(std::ifstream(dir + "/z.ingot").good()) << "no output after a bad --target";
}

// Without --target a bundle holds every tier, and the runtime runs the best one this host runs;
// --tier and INGOT_TIER force another; `ingot info` lists them all.
TEST(BundleCommands, PortableIsTheDefault) {
  const std::string dir = make_temp_dir("bundle_portable");
  const std::string out = dir + "/demo.ingot";
  CmdResult r = run(std::string(INGOT_INGOTC) + " compile demo -o " + out);
  ASSERT_EQ(r.status, 0) << r.out;
  // A progress line per tier.
  for (const CpuTier& t : cpu_tiers())
    EXPECT_NE(r.out.find("\n  " + std::string(t.name) + ": "), std::string::npos) << t.name << "\n" << r.out;
  std::string error;
  auto b = take(Bundle::open(out, BundleOpenOptions{.check_cpu = false, .tier = {}}), &error);
  ASSERT_NE(b, nullptr) << error;
  std::vector<std::string> got, all;
  for (const KernelSet& k : b->kernel_sets()) got.push_back(k.tier);
  for (const CpuTier& t : cpu_tiers()) all.push_back(t.name);
  EXPECT_EQ(got, all);
  const CpuTier* best = best_cpu_tier(usable_cpu_features());
  ASSERT_NE(best, nullptr);
  EXPECT_EQ(b->tier(), best->name);

  CmdResult info = run(std::string(INGOT_INGOT) + " info " + out);
  EXPECT_EQ(info.status, 0) << info.out;
  EXPECT_NE(info.out.find("kernel sets: 5"), std::string::npos) << info.out;
  for (const KernelSet& k : b->kernel_sets()) {
    // Each set says whether this host runs it (an AVX2 host does not run the AVX-512 tiers).
    const bool runs = check_cpu_features(k.features).empty();
    const std::regex line("\n  " + std::regex_replace(k.tier, std::regex("-"), "\\-") + " +section " +
                          std::to_string(k.section) + " .*\\(" + std::to_string(k.size) + " bytes\\).*" +
                          (runs ? "runs here" : "not on this CPU") + (k.tier == best->name ? "  <- chosen" : "\n"));
    EXPECT_TRUE(std::regex_search(info.out, line)) << k.tier << "\n" << info.out;
  }
  EXPECT_NE(info.out.find("this host: runs tier " + std::string(best->name)), std::string::npos) << info.out;
  CmdResult verify = run(std::string(INGOT_INGOT) + " verify " + out);
  EXPECT_EQ(verify.status, 0) << verify.out;
  EXPECT_NE(verify.out.find(out + ": manifest ok: "), std::string::npos) << verify.out;
  EXPECT_NE(verify.out.find(out + ": kernels objects ok"), std::string::npos) << verify.out;

  // run --json names the tier that ran: the best, or the one forced.
  auto tier_of_run = [&](const std::string& prefix, const std::string& args) {
    CmdResult r = run(prefix + std::string(INGOT_INGOT) + " run " + out + " -p Hi -n 2 --temp 0 --json" + args);
    EXPECT_EQ(r.status, 0) << r.out;
    const auto at = r.out.find("\"tier\":\"");
    return at == std::string::npos ? r.out : r.out.substr(at + 8, r.out.find('"', at + 8) - at - 8);
  };
  EXPECT_EQ(tier_of_run("", ""), best->name);
  for (const CpuTier& t : cpu_tiers()) {
    if (!check_cpu_features(t.features).empty()) continue;
    EXPECT_EQ(tier_of_run("", " --tier " + std::string(t.name)), t.name);
    EXPECT_EQ(tier_of_run("INGOT_TIER=" + std::string(t.name) + " ", ""), t.name);
  }
  EXPECT_EQ(tier_of_run("INGOT_TIER=x86-64-v2 ", " --tier x86-64-v3"), "x86-64-v3") << "the option wins";
}

// A tier the bundle lacks, or one this CPU cannot run, is refused by name, with the bundle's tiers
// and this CPU's best; so is a bundle none of whose tiers runs here. (This CPU lacking a real tier
// is simulated: a set is made to need a feature this host does not have.)
TEST(BundleCommands, ForcedTiersTheBundleOrTheHostLacksAreRefused) {
  const std::string dir = make_temp_dir("bundle_forced");
  const std::string out = dir + "/v3v4.ingot";
  ASSERT_EQ(run(std::string(INGOT_INGOTC) + " compile demo --target x86-64-v4,x86-64-v3 -o " + out).status, 0);
  const std::string best = best_cpu_tier(usable_cpu_features())->name;
  for (const char* cmd : {" run ", " verify ", " perplexity ", " bench "}) {
    const std::string extra = cmd == std::string(" run ") ? " -p Hi -n 2" : cmd == std::string(" perplexity ") ? " -f " + out : "";
    CmdResult r = run(std::string(INGOT_INGOT) + cmd + out + extra + " --tier avx512");
    EXPECT_EQ(r.status, 1) << cmd << r.out;
    EXPECT_NE(r.out.find(out + ": the bundle has no kernels for tier 'avx512' (requested); its tiers: x86-64-v3, "
                               "x86-64-v4; this CPU's best tier: " + best),
              std::string::npos) << cmd << r.out;
  }
  CmdResult env = run("INGOT_TIER=x86-64-v2 " + std::string(INGOT_INGOT) + " run " + out + " -p Hi -n 2");
  EXPECT_EQ(env.status, 1) << env.out;
  EXPECT_NE(env.out.find("no kernels for tier 'x86-64-v2' (requested by INGOT_TIER)"), std::string::npos) << env.out;
  CmdResult check = run(std::string(INGOT_INGOTC) + " check " + out + " demo -n 1 --tier avx512");
  EXPECT_EQ(check.status, 1) << check.out;
  EXPECT_NE(check.out.find("no kernels for tier 'avx512'"), std::string::npos) << check.out;

  std::string lacking;
  for (const char* f : {"xop", "fma4", "tbm", "sse4a", "avx512vp2intersect", "avx512er", "amx-complex", "avxvnniint16"})
    if (CpuFeatures::known(f) && !host_cpu_features().has(f)) {
      lacking = f;
      break;
    }
  if (lacking.empty()) GTEST_SKIP() << "this host has every candidate feature";
  // x86-64-v4 needs a feature this host lacks: it is skipped, or refused when forced.
  const std::string bytes = read_file(out);
  const std::string v4_lacking = dir + "/v4-lacking.ingot";
  std::ofstream(v4_lacking, std::ios::binary) << with_manifest(bytes, [&](pb::Manifest& m) {
    for (auto& k : *m.mutable_kernel_sets())
      if (k.tier() == "x86-64-v4") k.add_features(lacking);
  });
  CmdResult ok = run(std::string(INGOT_INGOT) + " run " + v4_lacking + " -p Hi -n 2 --json");
  EXPECT_EQ(ok.status, 0) << ok.out;
  EXPECT_NE(ok.out.find("\"tier\":\"x86-64-v3\""), std::string::npos) << ok.out;
  CmdResult forced = run(std::string(INGOT_INGOT) + " run " + v4_lacking + " -p Hi -n 2 --tier x86-64-v4");
  EXPECT_EQ(forced.status, 1) << forced.out;
  // What x86-64-v4 lacks here: the added feature, and on a host without AVX-512 its own features too.
  std::vector<std::string> v4_missing = {lacking};
  for (const CpuTier& t : cpu_tiers())
    if (std::string(t.name) == "x86-64-v4")
      for (const std::string& f : t.features)
        if (!host_cpu_features().has(f)) v4_missing.push_back(f);
  std::sort(v4_missing.begin(), v4_missing.end());
  std::string missing;
  for (const std::string& f : v4_missing) missing += (missing.empty() ? "" : ", ") + f;
  EXPECT_NE(forced.out.find(v4_lacking + ": tier 'x86-64-v4' (requested) does not run on this CPU, which lacks " + missing +
                            "; the bundle's tiers: x86-64-v3, x86-64-v4; this CPU's best tier: " + best),
            std::string::npos) << forced.out;
  // Every set needs it: nothing runs, and the message says what to compile for.
  const std::string none = dir + "/none.ingot";
  std::ofstream(none, std::ios::binary) << with_manifest(bytes, [&](pb::Manifest& m) {
    for (auto& k : *m.mutable_kernel_sets()) k.add_features(lacking);
  });
  for (const char* cmd : {" run ", " verify "}) {
    CmdResult r = run(std::string(INGOT_INGOT) + cmd + none + (cmd == std::string(" run ") ? " -p Hi -n 2" : ""));
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find(none + ": this CPU runs none of the bundle's tiers (x86-64-v3, x86-64-v4): this CPU lacks "
                                "feature(s) the kernels were compiled for (tier x86-64-v3): " + lacking),
              std::string::npos) << cmd << r.out;
    EXPECT_NE(r.out.find("this CPU runs tier " + best + ": recompile with --target " + best), std::string::npos) << r.out;
  }
  // info still describes it.
  CmdResult info = run(std::string(INGOT_INGOT) + " info " + none);
  EXPECT_EQ(info.status, 0) << info.out;
  EXPECT_NE(info.out.find("this host: this CPU runs none of the bundle's tiers"), std::string::npos) << info.out;
}

// The tiers differ only in machine code: on stories260K-q8_0 (8-bit activations, exact integer
// dots) every tier this host runs gives bit-identical logits, prompt and decode steps.
TEST(BundleCommands, EveryTierGivesBitIdenticalLogits) {
  INGOT_MODEL_PATH(model, "stories260K-q8_0.gguf");
  const std::string dir = make_temp_dir("bundle_tiers_logits");
  const std::string out = dir + "/q8.ingot";
  ASSERT_EQ(run(std::string(INGOT_INGOTC) + " compile " + model + " -o " + out).status, 0);
  std::vector<std::vector<float>> first;  // the logits of each step on the first tier
  std::string first_tier;
  int tiers = 0;
  for (const CpuTier& t : cpu_tiers()) {
    if (!check_cpu_features(t.features).empty()) continue;
    std::string error;
    auto engine = take(Engine::load(out, EngineOptions{.verify = false, .tier = t.name}), &error);
    ASSERT_NE(engine, nullptr) << error;
    EXPECT_EQ(engine->tier(), t.name);
    auto session = take(Session::create(*engine, 2), &error);
    ASSERT_NE(session, nullptr) << error;
    std::vector<std::vector<float>> steps;
    ASSERT_TRUE(succeeded(session->prefill(engine->tokenizer()->encode("Once upon a time", true)), &error)) << error;
    steps.emplace_back(session->logits().begin(), session->logits().end());
    for (int32_t id : {400, 17, 260}) {
      ASSERT_TRUE(succeeded(session->decode(id), &error)) << error;
      steps.emplace_back(session->logits().begin(), session->logits().end());
    }
    ++tiers;
    if (first.empty()) {
      first = steps;
      first_tier = t.name;
      continue;
    }
    for (size_t s = 0; s < steps.size(); ++s) {
      ASSERT_EQ(steps[s].size(), first[s].size());
      EXPECT_EQ(std::memcmp(steps[s].data(), first[s].data(), steps[s].size() * sizeof(float)), 0)
          << t.name << " and " << first_tier << " differ at step " << s;
    }
  }
  EXPECT_GE(tiers, 2);  // every test host runs x86-64-v2 and x86-64-v3
  // ingotc check --tolerance 0 runs every tier against the reference.
  CmdResult check = run(std::string(INGOT_INGOTC) + " check " + out + " " + model + " -n 3 --tolerance 0");
  EXPECT_EQ(check.status, 0) << check.out;
  EXPECT_NE(check.out.find(std::to_string(tiers) + " tiers checked"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("): ok\n"), std::string::npos) << check.out;
}

// Activations follow the weights by default: a recipe that makes block-quantized weights gives
// them 8-bit activations, one that makes floats keeps f32, and --act-quant off opts out.
TEST(BundleCommands, DefaultActivationsFollowTheWeights) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  INGOT_MODEL_PATH(q8, "stories260K-q8_0.gguf");
  struct Want {
    std::string args, line;
  };
  for (const Want& w : {Want{model, "(keep, activations f32 by default)"},
                        Want{model + " --quant q4_0", "(q4_0, activations q8 by default)"},
                        Want{model + " --quant-override 'blk.0.*=q8_0'", "activations q8 by default"},
                        Want{q8, "(keep, activations q8 by default)"},
                        Want{q8 + " --quant f16", "(f16, activations f32 by default)"},
                        Want{q8 + " --act-quant off", "(keep, activations f32)"}}) {
    CmdResult r = run(std::string(INGOT_INGOTC) + " compile " + w.args);
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find(w.line), std::string::npos) << w.args << "\n" << r.out;
  }
  CmdResult bad = run(std::string(INGOT_INGOTC) + " compile " + model + " --act-quant q4");
  EXPECT_EQ(bad.status, 2) << bad.out;
  EXPECT_NE(bad.out.find("--act-quant must be auto, q8, ggml or off"), std::string::npos) << bad.out;
}

// A tier this host lacks (the one above its best: x86-64-v4 on an AVX2 host, amx on an AVX-512
// host without AMX) compiles, and the runtime refuses it by name.
TEST(BundleCommands, TierTheHostLacksIsRefusedByName) {
  const std::string dir = make_temp_dir("bundle_tier_lacking");
  const CpuTier* best = best_cpu_tier(usable_cpu_features());
  if (best == &cpu_tiers().back()) GTEST_SKIP() << "this host runs every tier (" << best->name << ")";
  const std::string above = best ? (best + 1)->name : cpu_tiers().front().name;
  const std::string bundle = dir + "/above.ingot";
  ASSERT_EQ(run(std::string(INGOT_INGOTC) + " compile demo --target " + above + " -o " + bundle).status, 0);
  CmdResult refused = run(std::string(INGOT_INGOT) + " run " + bundle + " -p Hi -n 2");
  EXPECT_EQ(refused.status, 1) << refused.out;
  EXPECT_NE(refused.out.find("lacks feature(s) the kernels were compiled for (tier " + above + "): "), std::string::npos) << refused.out;
  if (best) EXPECT_NE(refused.out.find("recompile with --target " + std::string(best->name)), std::string::npos) << refused.out;
}

// $INGOT_KERNEL_CACHE (codegen/kernel_cache.h): a second compile of the same kernels for a tier
// takes them from the cache and writes the same bundle, byte for byte, as a compile without the
// cache; other kernels (another weight type) miss; a tier's entry serves any list of tiers; a
// damaged entry is a miss and is replaced; an older build's subfolder is removed; a cache that
// cannot be written changes no bundle and says so.
TEST(BundleCommands, KernelCacheGivesTheSameBundleWithoutCompilingAgain) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  INGOT_MODEL_PATH(model_q8, "stories260K-q8_0.gguf");
  const std::string dir = make_temp_dir("bundle_kernel_cache");
  const std::string cache = dir + "/cache";
  auto compile = [&](const std::string& env, const std::string& source, const std::string& target, const std::string& out) {
    CmdResult r = run(env + " " + INGOT_INGOTC + " compile " + source + " --target " + target + " -o " + dir + "/" + out);
    EXPECT_EQ(r.status, 0) << r.out;
    return r.out;
  };
  auto entries = [&] {
    std::vector<std::filesystem::path> so;
    for (const auto& e : std::filesystem::recursive_directory_iterator(cache))
      if (e.path().extension() == ".so") so.push_back(e.path());
    return so;
  };
  // An older build of this ingotc left a subfolder (removed when this one makes its own); another
  // executable's stays.
  const std::string exe = std::filesystem::canonical(INGOT_INGOTC).string();
  std::filesystem::create_directories(cache + "/older_build");
  std::filesystem::create_directories(cache + "/other_program");
  std::ofstream(cache + "/older_build/compiler") << exe << "\n";
  std::ofstream(cache + "/other_program/compiler") << "/opt/elsewhere/ingotc\n";
  const std::string with_cache = "INGOT_KERNEL_CACHE=" + cache;
  std::string out = compile(with_cache, model, "x86-64-v2,x86-64-v3", "first.ingot");
  EXPECT_FALSE(std::filesystem::exists(cache + "/older_build"));
  EXPECT_TRUE(std::filesystem::exists(cache + "/other_program/compiler"));
  EXPECT_EQ(out.find("from the kernel cache"), std::string::npos) << out;
  EXPECT_EQ(entries().size(), 2u);
  out = compile(with_cache, model, "x86-64-v2,x86-64-v3", "second.ingot");
  EXPECT_NE(out.find("x86-64-v2: "), std::string::npos) << out;
  EXPECT_NE(out.find("shared object from the kernel cache"), std::string::npos) << out;
  EXPECT_NE(out.find("(2 from the kernel cache, $INGOT_KERNEL_CACHE)"), std::string::npos) << out;
  compile("INGOT_KERNEL_CACHE=", model, "x86-64-v2,x86-64-v3", "uncached.ingot");
  const std::string want = read_file(dir + "/uncached.ingot");
  ASSERT_GT(want.size(), 100000u);
  EXPECT_TRUE(read_file(dir + "/first.ingot") == want);
  EXPECT_TRUE(read_file(dir + "/second.ingot") == want) << "the cached kernels gave another bundle";

  out = compile(with_cache, model_q8, "x86-64-v3", "q8.ingot");
  EXPECT_EQ(out.find("from the kernel cache"), std::string::npos) << out;
  EXPECT_EQ(entries().size(), 3u);
  out = compile(with_cache, model, "x86-64-v3", "one_tier.ingot");
  EXPECT_NE(out.find("(1 from the kernel cache"), std::string::npos) << out;

  // Entries damaged (one cut short, one with a byte flipped, one junk): misses, compiled again,
  // the entries replaced.
  const std::vector<std::filesystem::path> so = entries();
  ASSERT_EQ(so.size(), 3u);
  std::string bytes = read_file(so[0].string());
  std::ofstream(so[0], std::ios::binary) << bytes.substr(0, bytes.size() - 100);
  bytes = read_file(so[1].string());
  bytes[bytes.size() / 2] ^= 1;
  std::ofstream(so[1], std::ios::binary) << bytes;
  std::ofstream(so[2], std::ios::binary) << "junk";
  out = compile(with_cache, model, "x86-64-v2,x86-64-v3", "after_junk.ingot");
  EXPECT_EQ(out.find("from the kernel cache"), std::string::npos) << out;
  EXPECT_TRUE(read_file(dir + "/after_junk.ingot") == want);
  out = compile(with_cache, model, "x86-64-v2,x86-64-v3", "replaced.ingot");
  EXPECT_NE(out.find("(2 from the kernel cache"), std::string::npos) << out;

  // A cache that is a file, not a folder: the same bundle, and a note that nothing was kept.
  std::ofstream(dir + "/not_a_folder") << "x";
  out = compile("INGOT_KERNEL_CACHE=" + dir + "/not_a_folder", model, "x86-64-v2,x86-64-v3", "no_cache.ingot");
  EXPECT_TRUE(read_file(dir + "/no_cache.ingot") == want);
  EXPECT_NE(out.find("note: not kept in the kernel cache: kernel cache " + dir + "/not_a_folder: cannot create"), std::string::npos) << out;
  // A folder several levels down is made.
  out = compile("INGOT_KERNEL_CACHE=" + dir + "/a/b/c", model, "x86-64-v3", "deep.ingot");
  EXPECT_EQ(out.find("note:"), std::string::npos) << out;
  out = compile("INGOT_KERNEL_CACHE=" + dir + "/a/b/c", model, "x86-64-v3", "deep2.ingot");
  EXPECT_NE(out.find("(1 from the kernel cache"), std::string::npos) << out;
}

TEST(BundleCommands, FailedCompileLeavesNoOutput) {
  const std::string dir = make_temp_dir("bundle_cli_fail");
  std::ofstream(dir + "/broken.gguf", std::ios::binary) << "GGUF but not really";
  CmdResult r = run(std::string(INGOT_INGOTC) + " compile " + dir + "/broken.gguf -o " + dir + "/out.ingot");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_EQ(list_dir(dir), (std::vector<std::string>{"broken.gguf"}));
  // An output folder that does not exist: the compile fails at the write stage, nothing is left.
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  r = run(std::string(INGOT_INGOTC) + " compile " + model + " -o " + dir + "/missing/out.ingot");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("cannot create file"), std::string::npos) << r.out;
}

// The fuzzer's seed is a valid bundle of the current format; INGOT_UPDATE_FUZZ_SEED=1 rewrites it.
TEST(BundleFuzzSeed, IsCurrent) {
  const std::string seed = std::string(INGOT_SOURCE_DIR) + "/tests/fuzz/corpus/fuzz_bundle/small.ingot";
  const char* update = std::getenv("INGOT_UPDATE_FUZZ_SEED");
  if (update && std::string(update) == "1") {
    const std::string fresh = read_file(write_small(make_temp_dir("bundle_seed"), {"sse2"}));
    std::ofstream(seed, std::ios::binary) << fresh;
  }
  std::string error;
  auto b = take(Bundle::from_bytes("seed.ingot", read_file(seed)), &error);
  ASSERT_NE(b, nullptr) << error << " (regenerate with INGOT_UPDATE_FUZZ_SEED=1)";
  EXPECT_TRUE(succeeded(b->verify(), &error)) << error;
}

}  // namespace
}  // namespace ingot
