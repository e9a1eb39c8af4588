// The command-line tools on hostile options and outputs (issue 15, part 5): range-checked numbers
// with exit status 2, thread counts that neither crash nor crawl, outputs that are not replaced
// when they are not regular files, and `ingotc compile` refusing bundles the runtime would refuse.
#include <gtest/gtest.h>

#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <csignal>
#include <map>
#include <thread>
#include <string>
#include <vector>

#include "frontend/gguf.h"
#include "runtime/engine.h"
#include "tests/common/bundle_cache.h"
#include "tests/common/command.h"
#include "tests/common/files.h"
#include "tests/common/models.h"

namespace ingot {
namespace {

using ::ingot::testing::run;
using ::ingot::testing::kIngotc;
using ::ingot::testing::kIngot;
using ::ingot::testing::contains;
using ::ingot::testing::make_temp_dir;
using ::ingot::testing::read_file;
using ::ingot::testing::CmdResult;

std::vector<std::string> temporaries_in(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (contains(e->d_name, ".tmp-")) names.push_back(e->d_name);
    closedir(d);
  }
  return names;
}

// One small bundle of stories260K for the run options, compiled once per build.
const std::string& stories_bundle() {
  static const std::string path = ::ingot::testing::cached_bundle(kIngotc, ::ingot::testing::models_dir() + "/stories260K.gguf");
  return path;
}

TEST(CliHygiene, RunRejectsOutOfRangeNumbersWithUsageErrors) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  const std::string bundle = stories_bundle();
  struct Case {
    std::string args, expected;
  };
  const std::vector<Case> cases = {
      {"--threads 100000", "--threads needs a whole number from 1 to 1024, got '100000'"},
      {"-t 0", "-t needs a whole number from 1 to 1024, got '0'"},
      {"-n -2", "-n needs a whole number from -1 to 9223372036854775807, got '-2'"},
      {"-n 1e3", "-n needs a whole number from -1 to 9223372036854775807, got '1e3'"},
      {"--ctx 1e20", "--ctx needs a whole number from 1 to 9223372036854775807, got '1e20'"},
      {"--ctx 99999999999999999999", "--ctx needs a whole number"},
      {"--seed -1", "--seed needs a whole number from 0 to 18446744073709551615, got '-1'"},
      {"--seed 18446744073709551616", "--seed needs a whole number from 0 to 18446744073709551615"},
      {"--top-k 1e12", "--top-k needs a whole number from -2147483648 to 2147483647, got '1e12'"},
      {"--temp nan", "--temp needs a number"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args);
    CmdResult r = run(kIngot + " run " + bundle + " -p hi -n 2 " + c.args);
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_TRUE(contains(r.out, "ingot: run: " + c.expected)) << r.out;
  }
  // The full uint64 range of seeds is accepted.
  CmdResult r = run(kIngot + " run " + bundle + " -p hi -n 2 --seed 18446744073709551615");
  EXPECT_EQ(r.status, 0) << r.out;
  // Other commands parse the same way.
  r = run(kIngot + " perplexity " + bundle + " -f /dev/null --threads 5000");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_TRUE(contains(r.out, "--threads needs a whole number from 1 to 1024")) << r.out;
  r = run(kIngotc + " check " + bundle + " " + model + " -n 1 --threads 100000");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_TRUE(contains(r.out, "--threads needs a whole number from 1 to 1024, got '100000'")) << r.out;
  r = run(kIngotc + " check " + bundle + " " + model + " -n 1e30");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_TRUE(contains(r.out, "-n needs a whole number from 0 to 2147483647, got '1e30'")) << r.out;
  r = run(kIngotc + " eval " + model + " -n 2147483648");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_TRUE(contains(r.out, "-n needs a whole number from 0 to 2147483647")) << r.out;
  r = run(kIngotc + " synth --shape tiny --seed -1 -o " + make_temp_dir("cli_seed") + "/x.gguf");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_TRUE(contains(r.out, "--seed needs a whole number from 0 to 18446744073709551615, got '-1'")) << r.out;
}

// More threads than the machine has: capped at its hardware threads with a note, not a crash
// (100000 threads threw std::system_error) nor a 2000x slowdown (1000 threads on 2 cores).
TEST(CliHygiene, RunCapsThreadsAtTheHardware) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  const std::string bundle = stories_bundle();
  const auto t0 = std::chrono::steady_clock::now();
  CmdResult r = run(kIngot + " run " + bundle + " -p hi -n 8 --temp 0 --threads 1024");
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.status, 0) << r.out;
  const unsigned hc = std::thread::hardware_concurrency();
  if (hc > 0 && hc < 1024) {
    EXPECT_TRUE(contains(r.out, "--threads 1024 is more than the " + std::to_string(hc) + " hardware threads of this machine; using " +
                                    std::to_string(hc)))
        << r.out;
  }
  EXPECT_LT(s, 20.0) << r.out;
}

TEST(CliHygiene, SessionTakesAtMostTheMaximumThreads) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  auto engine = Engine::load(stories_bundle());
  ASSERT_TRUE(engine.ok()) << engine.message();
  auto s = Session::create(**engine, kMaxSessionThreads + 1);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "a session takes 0 to 1024 threads, not 1025");
  s = Session::create(**engine, -1);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "a session takes 0 to 1024 threads, not -1");
  s = Session::create(**engine, 2);
  ASSERT_TRUE(s.ok()) << s.message();
  // 0: a KV cache only, run through a shared Batcher.
  s = Session::create(**engine, 0);
  ASSERT_TRUE(s.ok()) << s.message();
  auto b = Batcher::create(**engine, kMaxSessionThreads + 1);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.message(), "a batcher takes 1 to 1024 threads, not 1025");
}

TEST(CliHygiene, CompileRejectsHugeBatchAndContext) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  const std::string dir = make_temp_dir("cli_limits");
  CmdResult r = run(kIngotc + " compile " + model + " --max-batch 99999999999 -o " + dir + "/x.ingot");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_TRUE(contains(r.out, "--max-batch needs a whole number from 1 to 65536, got '99999999999'")) << r.out;
  r = run(kIngotc + " compile " + model + " --max-context 1e9 -o " + dir + "/x.ingot");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_TRUE(contains(r.out, "--max-context needs a whole number from 1 to 4194304, got '1e9'")) << r.out;
  r = run(kIngotc + " compile " + model + " --max-context 1000000000 -o " + dir + "/x.ingot");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_FALSE(::ingot::testing::path_exists(dir + "/x.ingot"));
}

// A KV cache larger than this machine's memory: refused before any kernel is compiled, with
// its size in the message. The model's KV cache is 8 GiB per layer at the largest context.
TEST(CliHygiene, CompileRefusesAKvCacheLargerThanMemory) {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  ASSERT_GT(pages, 0);
  const double physical_gib = static_cast<double>(pages) * static_cast<double>(page) / (1 << 30);
  const int layers = static_cast<int>(physical_gib / 8) + 2;
  if (layers > 512) GTEST_SKIP() << "this machine has too much memory for the test's model";
  const std::string dir = make_temp_dir("cli_kv");
  CmdResult r = run(kIngotc + " synth --dims dim=256,layers=" + std::to_string(layers) +
                    ",heads=4,kv=4,ffn=256,vocab=300,ctx=2048 -o " + dir + "/big.gguf");
  ASSERT_EQ(r.status, 0) << r.out;
  r = run(kIngotc + " compile " + dir + "/big.gguf --max-context 4194304 -o " + dir + "/big.ingot");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_TRUE(contains(r.out, "the KV cache (" + std::to_string(8 * layers) + ".00 GiB for 4194304 tokens of context)")) << r.out;
  EXPECT_TRUE(contains(r.out, "of memory; lower --max-context (at most ")) << r.out;
  EXPECT_FALSE(contains(r.out, "shared object")) << "refused before generating kernels: " << r.out;
  EXPECT_FALSE(::ingot::testing::path_exists(dir + "/big.ingot"));
}

// stories260K.gguf with one token's type flipped to a value no tokenizer knows: the import
// accepts it, but the runtime's tokenizer would refuse it, so compile does, writing nothing.
TEST(CliHygiene, CompileValidatesTheTokenizer) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  const std::string dir = make_temp_dir("cli_tokenizer");
  auto f = GgufFile::open(model);
  ASSERT_TRUE(f.ok()) << f.message();
  GgufWriter w;
  for (const auto& [key, value] : (*f)->metadata()) {
    if (key != "tokenizer.ggml.token_type") {
      w.set(key, value);
      continue;
    }
    auto types = value.as_ints();
    ASSERT_TRUE(types.ok());
    std::vector<int32_t> flipped(types->begin(), types->end());
    flipped[300] = 9;
    w.set(key, GgufValue::i32s(flipped));
  }
  for (const auto& t : (*f)->tensors()) ASSERT_TRUE(w.add_tensor(t.name, *(*f)->tensor(t.name)).ok());
  ASSERT_TRUE(w.write(dir + "/flipped.gguf").ok());
  CmdResult r = run(kIngotc + " compile " + dir + "/flipped.gguf -o " + dir + "/out.ingot");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_TRUE(contains(r.out, "invalid tokenizer: token 300")) << r.out;
  EXPECT_TRUE(contains(r.out, "has type 9")) << r.out;
  EXPECT_FALSE(::ingot::testing::path_exists(dir + "/out.ingot"));
  EXPECT_EQ(temporaries_in(dir), std::vector<std::string>{});
}

// Without the attention fusion the KV cache's Concat over rows has no kernel, so the bundle would
// have no schedule, which the runtime refuses: compile fails and writes nothing.
TEST(CliHygiene, CompileRefusesABundleWithoutASchedule) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  const std::string dir = make_temp_dir("cli_schedule");
  CmdResult r = run(kIngotc + " compile " + model + " --disable-pass=fuse-attention -o " + dir + "/out.ingot");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_TRUE(contains(r.out, "no schedule")) << r.out;  // before writing, or from the runtime after
  EXPECT_FALSE(::ingot::testing::path_exists(dir + "/out.ingot"));
  EXPECT_EQ(temporaries_in(dir), std::vector<std::string>{});
}

// -o that is not a new or regular writable file, or is the input: refused before compiling,
// and left as it was.
TEST(CliHygiene, CompileRefusesOutputsItMustNotReplace) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  const std::string dir = make_temp_dir("cli_outputs");
  const std::string input = dir + "/model.gguf";
  ASSERT_EQ(::symlink(model.c_str(), input.c_str()), 0);  // an input reached through a link
  std::ofstream(dir + "/target") << "keep";
  ASSERT_EQ(::symlink((dir + "/target").c_str(), (dir + "/link.ingot").c_str()), 0);
  ASSERT_EQ(::mkfifo((dir + "/fifo.ingot").c_str(), 0644), 0);
  ASSERT_EQ(::mkdir((dir + "/dir.ingot").c_str(), 0755), 0);
  std::ofstream(dir + "/ro.ingot") << "read-only";
  ASSERT_EQ(::chmod((dir + "/ro.ingot").c_str(), 0444), 0);
  struct Case {
    std::string output, expected;
  };
  const std::vector<Case> cases = {
      {dir + "/link.ingot", "is a symbolic link; Ingot writes its outputs only to new or regular files"},
      {dir + "/fifo.ingot", "is a FIFO (named pipe)"},
      {dir + "/dir.ingot", "is a directory"},
      {dir + "/ro.ingot", "is read-only; Ingot does not replace it"},
      {model, "is the input '" + input + "'; write the output to another file"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.output);
    const auto t0 = std::chrono::steady_clock::now();
    CmdResult r = run(kIngotc + " compile " + input + " -o " + c.output);
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_TRUE(contains(r.out, "ingotc: error: " + c.output + ": " + c.expected)) << r.out;
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0) << "refused before compiling";
  }
  EXPECT_EQ(read_file(dir + "/target"), "keep");
  EXPECT_EQ(read_file(dir + "/ro.ingot"), "read-only");
  struct stat st {};
  ASSERT_EQ(::lstat((dir + "/fifo.ingot").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(temporaries_in(dir), std::vector<std::string>{});
  // The other writers: a dump and a synthesized GGUF.
  CmdResult r = run(kIngotc + " dump " + model + " -o " + model);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_TRUE(contains(r.out, model + ": is the input file")) << r.out;
  r = run(kIngotc + " synth --shape tiny -o " + dir + "/link.ingot");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_TRUE(contains(r.out, "is a symbolic link")) << r.out;
  EXPECT_EQ(read_file(dir + "/target"), "keep");
}

// ingotc killed while writing: no OUT.tmp-PID-N is left behind.
TEST(CliHygiene, SynthKilledMidWriteLeavesNoTemporary) {
  const std::string dir = make_temp_dir("cli_killed");
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // A model big enough to take a while (about 600 MB).
    ::execl(kIngotc.c_str(), kIngotc.c_str(), "synth", "--shape", "tinyllama-1.1b", "--type", "q4_0", "-o", (dir + "/big.gguf").c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait until the temporary exists, then interrupt.
  bool seen = false;
  for (int i = 0; i < 600 && !seen; ++i) {
    seen = !temporaries_in(dir).empty();
    if (!seen) ::usleep(20000);
  }
  ::kill(pid, SIGINT);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(seen) << "the temporary never appeared";
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT) << status;
  EXPECT_EQ(temporaries_in(dir), std::vector<std::string>{});
  EXPECT_FALSE(::ingot::testing::path_exists(dir + "/big.gguf"));
}

}  // namespace
}  // namespace ingot
