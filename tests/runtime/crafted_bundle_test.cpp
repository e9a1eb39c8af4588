// Crafted bundles (docs/security.md, "What loading runs" and "What the engine checks"): a real
// bundle of a tiny synthetic model, taken apart and written again (section hashes valid) with one
// manifest field changed per case, or with a kernels object that would run code at load. Each must
// end in a clean error naming the field, before any kernel runs; the unchanged bundle must run.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "codegen/bundle_writer.h"
#include "codegen/kernels.h"
#include "runtime/bundle.h"
#include "runtime/cpu_features.h"
#include "runtime/engine.h"
#include "tests/common/bundle_cache.h"
#include "tests/common/command.h"
#include "tests/common/files.h"
#include "tests/common/status.h"

namespace ingot {
namespace {

using ::ingot::testing::run;
using ::ingot::testing::kIngotc;
using ::ingot::testing::kIngot;
using ::ingot::testing::make_temp_dir;
using ::ingot::testing::CmdResult;
using ::ingot::testing::kCleanEnv;

class CraftedBundle : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(make_temp_dir("crafted"));
    tier_ = new std::string(best_cpu_tier(usable_cpu_features())->name);
    const std::string gguf = ::ingot::testing::cached_synth(kIngotc, "--shape tiny --type q8_0");
    ASSERT_FALSE(gguf.empty());
    // max batch 64 below the context of 512: a manifest that raises max_batch makes calls longer
    // than the arena was planned for (a call never exceeds the context, so a max_batch above it
    // would change nothing). Read only: crafted bundles are written beside, in dir_.
    good_ = new std::string(::ingot::testing::cached_output(kCleanEnv + kIngotc + " compile " + gguf + " --max-batch 64 --target " + *tier_ + " -o {out}",
                                                           ".ingot", {kIngotc}, {gguf}));
    ASSERT_FALSE(good_->empty());
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete good_;
    delete tier_;
  }

  // The good bundle written again with `edit` applied to its manifest (and `kernels` as the
  // kernels object, when not empty). Returns the path.
  std::string craft(const std::string& name, const std::function<void(pb::Manifest&)>& edit, const std::string& kernels = "") {
    std::string error;
    auto good = take(Bundle::open(*good_, BundleOpenOptions{.check_cpu = false, .tier = {}}), &error);
    EXPECT_NE(good, nullptr) << error;
    if (!good) return "";
    BundleContents c;
    c.manifest = good->manifest();
    edit(c.manifest);  // with the tensor table, which the writer then fills again in the same order
    c.manifest.clear_tensors();
    c.manifest.clear_kernel_sets();
    for (const KernelSet& set : good->kernel_sets()) {
      auto bytes = good->bytes(good->sections()[size_t(set.section)]);
      c.kernel_sets.push_back({set.tier, set.llvm_cpu, set.features,
                               kernels.empty() ? std::string(bytes.begin(), bytes.end()) : kernels});
    }
    for (int i = 0; i < good->tensor_count(); ++i) {
      const pb::Tensor& t = good->manifest().tensors(i);
      BundleTensor bt;
      bt.name = t.name();
      bt.type = t.type();
      bt.shape.assign(t.shape().begin(), t.shape().end());
      bt.layout = t.layout();
      bt.kernel = t.kernel();
      bt.size = t.size();
      const uint8_t* p = good->tensor_data(i);
      bt.produce = [p, n = t.size()] { return StatusOr<std::vector<uint8_t>>(std::vector<uint8_t>(p, p + n)); };
      c.tensors.push_back(std::move(bt));
    }
    const std::string path = *dir_ + "/" + name + ".ingot";
    Status st = write_bundle(path, c);
    EXPECT_TRUE(st.ok()) << st.message();
    return path;
  }

  // The message Engine::load gives, or "" if it loads.
  static std::string load_error(const std::string& path) {
    std::string error;
    auto e = take(Engine::load(path), &error);
    return e ? "" : error;
  }

  // The first call of a kernel whose symbol contains `kind`.
  static pb::KernelCall* call_of(pb::Manifest& m, const std::string& kind) {
    for (auto& c : *m.mutable_schedule()->mutable_calls())
      if (c.symbol().find(kind) != std::string::npos) return &c;
    return nullptr;
  }

  static std::string* dir_;
  static std::string* good_;
  static std::string* tier_;
};
std::string* CraftedBundle::dir_ = nullptr;
std::string* CraftedBundle::good_ = nullptr;
std::string* CraftedBundle::tier_ = nullptr;

TEST_F(CraftedBundle, TheUnchangedBundleLoadsAndRuns) {
  const std::string path = craft("same", [](pb::Manifest&) {});
  EXPECT_EQ(load_error(path), "");
  const CmdResult r = run(kCleanEnv + kIngot + " run " + path + " -p 'Hi' -n 3 --temp 0");
  EXPECT_EQ(r.status, 0) << r.out;
}

// One case per manifest field a kernel or the session relies on.
struct FieldCase {
  const char* name;
  std::function<void(pb::Manifest&)> edit;
  const char* expect;  // in the message
};

TEST_F(CraftedBundle, EveryFieldTheKernelsRelyOnIsChecked) {
  const std::vector<FieldCase> cases = {
      // Found by fuzz_engine_load: a destination inside the source rows (memcpy of overlapping ranges).
      {"copy_last_row_overlapping", [](pb::Manifest& m) {
         for (auto& c : *m.mutable_schedule()->mutable_calls())
           if (c.builtin() == "copy_last_row") c.mutable_args(0)->set_arena_offset(c.args(1).arena_offset() + c.row_bytes());
       }, "overlapping its source rows"},
      {"copy_last_row_huge_row", [](pb::Manifest& m) {
         for (auto& c : *m.mutable_schedule()->mutable_calls())
           if (c.builtin() == "copy_last_row") c.set_row_bytes(int64_t{1} << 40);
       }, "row_bytes"},
      {"scratch_zero", [](pb::Manifest& m) { m.mutable_schedule()->set_max_scratch_per_thread(0); }, "bytes where it may touch"},
      {"scratch_2_62", [](pb::Manifest& m) { m.mutable_schedule()->set_max_scratch_per_thread(int64_t{1} << 62); }, "max_scratch_per_thread"},
      {"logits_2_62", [](pb::Manifest& m) { m.mutable_outputs(0)->set_type("f32[1, 4611686018427387904]"); }, "not a decoder bundle"},
      {"arena_offset_at_end", [](pb::Manifest& m) {
         auto* c = call_of(m, "matmul");
         c->mutable_args(kMatMulY)->set_arena_offset(m.memory_plan().arena_bytes() - 4);
       }, "args[0]"},
      {"arena_offset_misaligned", [](pb::Manifest& m) {
         auto* c = call_of(m, "rms_norm");
         c->mutable_args(0)->set_arena_offset(c->args(0).arena_offset() + 2);
       }, "aligned"},
      {"max_batch_4096", [](pb::Manifest& m) { m.mutable_memory_plan()->set_max_batch(4096); }, "max_batch = 4096"},
      {"max_batch_2_40", [](pb::Manifest& m) { m.mutable_memory_plan()->set_max_batch(int64_t{1} << 40); }, "max_batch"},
      {"max_context_1e6", [](pb::Manifest& m) { m.mutable_memory_plan()->set_max_context(1000000); }, "max_context"},
      {"small_weight", [](pb::Manifest& m) {
         // The matmul's packed weight replaced by the smallest tensor (a norm's 64 floats).
         int smallest = 0;
         for (int i = 0; i < m.tensors_size(); ++i)
           if (m.tensors(i).size() < m.tensors(smallest).size()) smallest = i;
         call_of(m, "matmul")->mutable_args(kMatMulW)->set_weight(static_cast<uint32_t>(smallest));
       }, "bytes where it may touch"},
      {"weight_written", [](pb::Manifest& m) {
         call_of(m, "matmul")->mutable_args(kMatMulY)->set_weight(0);
       }, "writes it"},
      {"state_slot_small", [](pb::Manifest& m) { m.mutable_memory_plan()->mutable_state(0)->set_bytes(64); }, "memory_plan.state"},
      {"unknown_dim", [](pb::Manifest& m) { call_of(m, "attention")->set_dims(0, static_cast<pb::DynamicDim>(77)); }, "unknown dimension"},
      {"rows_beyond_the_arena", [](pb::Manifest& m) {
         // The rows a matmul sees become past + tokens, with a context far beyond what the arena holds.
         call_of(m, "matmul")->set_dims(0, pb::DIM_PAST_PLUS_TOKENS);
         m.mutable_memory_plan()->set_max_context(m.memory_plan().max_context() * 64);
         for (auto& s : *m.mutable_memory_plan()->mutable_state()) s.set_bytes(s.bytes() * 64);
         m.mutable_memory_plan()->set_state_bytes(m.memory_plan().state_bytes() * 64);
       }, "bytes where it may touch"},
      {"null_slot", [](pb::Manifest& m) { call_of(m, "matmul")->mutable_args(kMatMulX)->mutable_null(); }, "is missing"},
      {"scratch_as_tensor", [](pb::Manifest& m) { call_of(m, "matmul")->mutable_args(kMatMulX)->mutable_scratch(); }, "is scratch"},
      // Found by fuzz_engine_load: the session stores the ids as int64 at the input's offset (UBSan:
      // misaligned store), whatever offset the kernels read them from.
      {"token_ids_misaligned", [](pb::Manifest& m) {
         for (auto& in : *m.mutable_inputs())
           if (in.name() == "token_ids") in.set_arena_offset(in.arena_offset() + 2);
       }, "misaligned"},
      {"logits_misaligned", [](pb::Manifest& m) {
         const int64_t at = m.outputs(0).arena_offset();
         m.mutable_outputs(0)->set_arena_offset(at >= 2 ? at - 2 : at + 2);  // still inside the arena
       }, "misaligned"},
      {"symbol_system", [](pb::Manifest& m) { call_of(m, "matmul")->set_symbol("system"); }, "not among the manifest's kernels"},
      {"listed_system", [](pb::Manifest& m) {
         call_of(m, "matmul")->set_symbol("system");
         m.add_kernels()->set_symbol("system");
       }, "does not define"},
  };
  for (const FieldCase& fc : cases) {
    SCOPED_TRACE(fc.name);
    const std::string path = craft(fc.name, fc.edit);
    const std::string error = load_error(path);
    EXPECT_NE(error.find(fc.expect), std::string::npos) << "message: " << error;
    EXPECT_NE(error.find(path), std::string::npos) << "the message names the bundle: " << error;
    const CmdResult r = run(kCleanEnv + kIngot + " run " + path + " -p 'Hi there' -n 2 --temp 0");
    EXPECT_EQ(r.status, 1) << r.out;
  }
}

// Two state variables of one name, the first with a huge row: the load checked the slot against
// the last one while a session's save and restore sized their rows by the first (a signed overflow
// in the row size, UBSan; with a smaller row, save read past the slot into the file). Found by
// fuzz_engine_load's save and restore. Refused at load; sessions use the row sizes the load
// checked (Engine::state_slots).
TEST_F(CraftedBundle, AStateVariableNamedTwiceIsRefused) {
  const std::string path = craft("state_named_twice", [](pb::Manifest& m) {
    pb::StateVariable big = m.state(0);
    big.clear_max_shape();
    for (int64_t d : {m.state(0).max_shape(0), int64_t{1} << 32, int64_t{1} << 32}) big.add_max_shape(d);
    *m.add_state() = m.state(0);  // the checked copy, last
    *m.mutable_state(0) = big;    // the first: what the sessions used
  });
  const std::string error = load_error(path);
  EXPECT_NE(error.find("manifest field state names the variable '"), std::string::npos) << error;
  EXPECT_NE(error.find(path), std::string::npos) << error;
  // The unchanged bundle: each slot's row as its variable gives it, max_context rows in the slot.
  std::string why;
  auto e = take(Engine::load(*good_), &why);
  ASSERT_TRUE(e) << why;
  const pb::Manifest& m = e->bundle().manifest();
  ASSERT_EQ(e->state_slots().size(), size_t(m.memory_plan().state_size()));
  for (size_t i = 0; i < e->state_slots().size(); ++i) {
    const auto& slot = m.memory_plan().state(int(i));
    EXPECT_EQ(e->state_slots()[i].offset, slot.offset());
    EXPECT_GT(e->state_slots()[i].row_bytes, 0);
    EXPECT_LE(e->state_slots()[i].row_bytes * e->max_context(), slot.bytes());
  }
}

// A state arena of 2 GiB (valid: sessions map it lazily) and a session of two tokens: restoring
// its file read it into a copy of the whole state arena, so every restore allocated and zeroed
// 2 GiB, and 8 GiB or more made the process run out of memory (found by fuzz_engine_load's save
// and restore). Now restore allocates only what the file holds, whose size it checks first.
TEST_F(CraftedBundle, RestoringASessionCostsWhatItsFileHolds) {
  const std::string path = craft("large_state_arena", [](pb::Manifest& m) { m.mutable_memory_plan()->set_state_bytes(int64_t{1} << 31); });
  std::string error;
  auto e = take(Engine::load(path), &error);
  ASSERT_TRUE(e) << error;
  auto s = take(Session::create(*e, 1), &error);
  ASSERT_TRUE(s) << error;
  const int32_t ids[2] = {1, 2};
  ASSERT_TRUE(succeeded(s->prefill(ids), &error)) << error;
  const std::string file = *dir_ + "/large_state.session";
  ASSERT_TRUE(succeeded(s->save(file), &error)) << error;
  struct rusage before {}, after {};
  getrusage(RUSAGE_SELF, &before);
  ASSERT_TRUE(succeeded(s->restore(file), &error)) << error;
  getrusage(RUSAGE_SELF, &after);
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 256 * 1024) << "KiB more at peak for a " << std::ifstream(file, std::ios::ate).tellg()
                                                           << "-byte session file";
  EXPECT_EQ(s->position(), 2);
}

// Found by CI's fuzz_engine_load in the Batcher (2026-12-04): schedules that the session loop
// before the Batcher ran, but whose calls after the last-row copy the Batcher's per-row logits
// tail ran wrongly: a call that touches the KV cache there got a null cache pointer (UBSan: null
// + offset), and a second last-row copy was called as a kernel (a null function pointer). Such a
// bundle cannot batch sessions; it loads and runs one session as before, in-process (so the
// sanitizer build checks it) and through `ingot run`, with several rows of logits too.
TEST_F(CraftedBundle, CallsAfterTheLastRowCopyRunAsTheSessionLoopRanThem) {
  const std::vector<std::pair<const char*, std::function<void(pb::Manifest&)>>> cases = {
      {"cache_call_after_copy", [](pb::Manifest& m) {
         const pb::KernelCall attention = *call_of(m, "attention");
         *m.mutable_schedule()->add_calls() = attention;
       }},
      {"second_copy", [](pb::Manifest& m) {
         pb::KernelCall copy;
         for (const auto& c : m.schedule().calls())
           if (c.builtin() == "copy_last_row") copy = c;
         ASSERT_EQ(copy.builtin(), "copy_last_row");
         *m.mutable_schedule()->add_calls() = copy;
       }},
  };
  for (const auto& [name, edit] : cases) {
    SCOPED_TRACE(name);
    const std::string path = craft(name, edit);
    std::string error;
    auto e = take(Engine::load(path), &error);
    ASSERT_TRUE(e) << error;
    EXPECT_NE(e->not_batchable(), "") << "a call after the last-row copy keeps sessions from batching";
    auto s = take(Session::create(*e, 2), &error);
    ASSERT_TRUE(s) << error;
    const int32_t prompt[3] = {1, 2, 3};
    ASSERT_TRUE(succeeded(s->prefill(prompt), &error)) << error;
    ASSERT_TRUE(succeeded(s->decode(4), &error)) << error;
    EXPECT_EQ(s->position(), 4);
    // Three rows of logits in one call: the per-row tail, once per row, or a clean refusal when
    // a call after the copy reads the cache (its rows would see a cache ahead of them).
    auto b = take(Batcher::create(*e, 1), &error);
    ASSERT_TRUE(b) << error;
    const int32_t more[3] = {5, 6, 7};
    const BatchPart part{s.get(), more, 3};
    if (succeeded(b->run(std::span<const BatchPart>(&part, 1)), &error)) {
      EXPECT_EQ(s->chunk_logits().size(), size_t(3 * e->vocab()));
      EXPECT_EQ(s->position(), 7);
    } else {
      EXPECT_NE(error.find("cannot give logits for several rows"), std::string::npos) << error;
      EXPECT_EQ(s->position(), 4) << "a refused call changes nothing";
    }
    const CmdResult r = run(kCleanEnv + kIngot + " run " + path + " -p 'Hi there' -n 3 --temp 0");
    EXPECT_EQ(r.status, 0) << r.out;
  }
}

// A kernels object with code that the dynamic loader would run at load: a constructor, or an IFUNC
// resolver. Refused before dlopen by run, verify and serve; the marker file is never written.
TEST_F(CraftedBundle, ObjectsThatRunCodeAtLoadAreRefusedBeforeItRuns) {
  const std::string marker = *dir_ + "/marker";
  const char* sources[][2] = {
      {"constructor",
       "#include <stdio.h>\n#include <stdlib.h>\n"
       "__attribute__((constructor)) static void boom(void) { FILE* f = fopen(getenv(\"INGOT_TEST_MARKER\"), \"w\"); if (f) fclose(f); }\n"},
      {"ifunc",
       "#include <stdio.h>\n#include <stdlib.h>\n"
       "static void impl(void) {}\n"
       "static void* resolve(void) { FILE* f = fopen(getenv(\"INGOT_TEST_MARKER\"), \"w\"); if (f) fclose(f); return (void*)impl; }\n"
       "void ingot_evil(void) __attribute__((ifunc(\"resolve\")));\n"},
  };
  for (const auto& [name, source] : sources) {
    SCOPED_TRACE(name);
    const std::string c = *dir_ + "/" + name + ".c", so = *dir_ + "/" + name + ".so";
    std::ofstream(c) << source;
    CmdResult r = run("cc -shared -fPIC -o " + so + " " + c);
    ASSERT_EQ(r.status, 0) << r.out;
    std::ifstream in(so, std::ios::binary);
    const std::string object((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string path = craft(name, [](pb::Manifest&) {}, object);
    std::remove(marker.c_str());
    for (const std::string& cmd : {"run " + path + " -p Hi -n 1", "verify " + path, "serve " + path + " --port 0"}) {
      r = run("INGOT_TEST_MARKER=" + marker + " " + kCleanEnv + kIngot + " " + cmd);
      EXPECT_NE(r.status, 0) << cmd << ": " << r.out;
      if (cmd.rfind("verify", 0) != 0) EXPECT_NE(r.out.find("the kernels object is refused"), std::string::npos) << r.out;
      EXPECT_NE(access(marker.c_str(), F_OK), 0) << cmd << " ran the object's code";
    }
  }
}

}  // namespace
}  // namespace ingot
