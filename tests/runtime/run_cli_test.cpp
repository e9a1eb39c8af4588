// `ingot run` with llama.cpp's command-line habits (issue 17, part 3): the prompt echoed and the
// continuation's leading space kept, -p -, -f, -m, --stop, -n -1, --opt=value, "did you mean",
// a random seed reported in --json, stop reasons, COMMAND --help everywhere, and a model file
// given in place of a bundle.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>
#include <string>

#include <nlohmann/json.hpp>

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
using ::ingot::testing::CmdResult;
using ::ingot::testing::make_temp_dir;

// Standard output only (stderr dropped), for commands whose stdout is compared.
CmdResult run_stdout(const std::string& cmd) { return ::ingot::testing::run_command("(" + cmd + " 2>/dev/null)"); }

const std::string& bundle() {
  static const std::string path =
      ::ingot::testing::cached_bundle(kIngotc, ::ingot::testing::models_dir() + "/stories260K.gguf", "--target native");
  return path;
}

nlohmann::json run_json(const std::string& args) {
  CmdResult r = run_stdout(kIngot + " run " + bundle() + " --json " + args);
  EXPECT_EQ(r.status, 0) << r.out;
  return nlohmann::json::parse(r.out, nullptr, false);
}

TEST(RunCli, EchoesThePromptAndKeepsTheContinuationsLeadingSpace) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  const nlohmann::json j = run_json("-p 'The cat' -n 6 --temp 0");
  const std::string text = j["text"];
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text[0], ' ') << "a continuation after a word starts with its space: '" << text << "'";
  CmdResult r = run_stdout(kIngot + " run " + bundle() + " -p 'The cat' -n 6 --temp 0");
  EXPECT_EQ(r.out, "The cat" + text);
  r = run_stdout(kIngot + " run " + bundle() + " -p 'The cat' -n 6 --temp 0 --no-display-prompt");
  EXPECT_EQ(r.out, text);
}

TEST(RunCli, PromptFromStdinFileAndModelOption) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  const std::string want = run_json("-p 'Once upon a time' -n 5 --temp 0")["text"];
  const std::string dir = make_temp_dir("run_cli_prompt");
  std::ofstream(dir + "/p.txt") << "Once upon a time";
  EXPECT_EQ(run_stdout("printf 'Once upon a time' | " + kIngot + " run -m " + bundle() + " -p - -n 5 --temp 0 --no-display-prompt").out, want);
  EXPECT_EQ(run_stdout(kIngot + " run -m " + bundle() + " -f " + dir + "/p.txt -n 5 --temp=0 --no-display-prompt").out, want);
  CmdResult r = run(kIngot + " run " + bundle() + " -f " + dir + "/missing.txt -n 1");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_TRUE(contains(r.out, "missing.txt: cannot read the prompt file")) << r.out;
}

TEST(RunCli, StopStringsEndTheTextBeforeThem) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  const nlohmann::json free_run = run_json("-p 'Once upon a time' -n 40 --temp 0");
  const std::string full = free_run["text"];
  const size_t at = full.find("Lily");
  ASSERT_NE(at, std::string::npos) << "the reference text should name Lily: " << full;
  const nlohmann::json j = run_json("-p 'Once upon a time' -n 40 --temp 0 --stop Lily --stop 'never appears'");
  EXPECT_EQ(j["text"], full.substr(0, at));
  EXPECT_EQ(j["stop_reason"], "stop");
  CmdResult r = run_stdout(kIngot + " run " + bundle() + " -p 'Once upon a time' -n 40 --temp 0 --stop=Lily --no-display-prompt");
  EXPECT_EQ(r.out, full.substr(0, at));
  EXPECT_EQ(free_run["stop_reason"], "length");
}

TEST(RunCli, UnlimitedLengthStopsWhenTheContextIsFull) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  const nlohmann::json j = run_json("-p Hi -n -1 --temp 0 --no-eos-stop --ctx 24");
  EXPECT_EQ(j["stop_reason"], "context_full");
  // The prompt's tokens and every generated one but the last fill the 24 positions.
  EXPECT_EQ(j["prompt_ids"].size() + j["ids"].size(), 25u);
}

TEST(RunCli, SeedIsRandomUnlessGivenAndReported) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  const nlohmann::json a = run_json("-p Hi -n 8 --temp 1"), b = run_json("-p Hi -n 8 --temp 1");
  EXPECT_NE(a["seed"], b["seed"]);
  const nlohmann::json c = run_json("-p Hi -n 8 --temp 1 --seed " + a["seed"].dump());
  EXPECT_EQ(c["ids"], a["ids"]) << "the reported seed reproduces the run";
}

TEST(RunCli, MistypedOptionsGetASuggestion) {
  CmdResult r = run(kIngot + " run x.ingot --tmep 0");
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.out, "unknown option '--tmep' (did you mean --temp?)")) << r.out;
  r = run(kIngotc + " compile x.gguf --max-contxt 5");
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.out, "(did you mean --max-context?)")) << r.out;
  r = run(kIngot + " run x.ingot --zzzzzzzz");
  EXPECT_FALSE(contains(r.out, "did you mean")) << "nothing close: no suggestion: " << r.out;
}

TEST(RunCli, EveryCommandHasHelp) {
  for (const char* cmd : {"info", "verify", "run", "chat", "bench", "perplexity"}) {
    CmdResult r = run(kIngot + " " + cmd + " --help");
    EXPECT_EQ(r.status, 0) << cmd << ": " << r.out;
    EXPECT_TRUE(contains(r.out, std::string("ingot ") + cmd)) << r.out;
  }
  for (const char* cmd : {"compile", "dump", "opt", "inspect", "tokenize", "eval", "check", "synth", "summary"}) {
    CmdResult r = run(kIngotc + " " + cmd + " --help");
    EXPECT_EQ(r.status, 0) << cmd << ": " << r.out;
    EXPECT_TRUE(contains(r.out, std::string("ingotc ") + cmd)) << r.out;
  }
}

TEST(RunCli, AModelIsCompiledOnceIntoTheCacheOrTheUserIsToldHow) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  const std::string cache = make_temp_dir("run_cli_cache");
  const std::string env = "XDG_CACHE_HOME=" + cache + " ";
  CmdResult first = run(env + kIngot + " run " + model + " -p Hi -n 3 --temp 0");
  EXPECT_EQ(first.status, 0) << first.out;
  EXPECT_TRUE(contains(first.out, "is a model, not a bundle: compiling it once")) << first.out;
  CmdResult second = run(env + kIngot + " run " + model + " -p Hi -n 3 --temp 0");
  EXPECT_EQ(second.status, 0) << second.out;
  EXPECT_TRUE(contains(second.out, "using its compiled bundle")) << second.out;
  // Without an ingotc beside it or on PATH: the command to run instead.
  const std::string lone = make_temp_dir("run_cli_lone") + "/ingot";
  std::filesystem::copy_file(kIngot, lone);
  CmdResult r = run("XDG_CACHE_HOME=" + make_temp_dir("run_cli_cache2") + " PATH=/usr/bin:/bin " + lone + " run " + model + " -p Hi");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_TRUE(contains(r.out, "compile it first with `ingotc compile " + model)) << r.out;
}

// Perplexity reports every chunk (running value, standard error, rate, time left) and a final
// estimate with its error; the final value is the last chunk's running one.
TEST(RunCli, PerplexityReportsEachChunkAndAnErrorEstimate) {
  INGOT_MODEL_PATH(model, "stories260K.gguf");
  const std::string dir = make_temp_dir("run_cli_ppl");
  {
    std::ofstream text(dir + "/t.txt");
    for (int i = 0; i < 6; ++i) text << "Once upon a time, there was a little girl named Lily. She loved to play outside. ";
  }
  CmdResult r = run_stdout(kIngot + " perplexity " + bundle() + " -f " + dir + "/t.txt --ctx 32");
  ASSERT_EQ(r.status, 0) << r.out;
  std::vector<std::string> lines;
  std::stringstream ss(r.out);
  for (std::string l; std::getline(ss, l);) lines.push_back(l);
  ASSERT_GE(lines.size(), 3u) << r.out;
  int chunks = 0;
  double last = 0;
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    double ppl = 0, err = -1;
    long long k = 0, n = 0;
    ASSERT_EQ(std::sscanf(lines[i].c_str(), "[%lld/%lld] perplexity %lf +/- %lf", &k, &n, &ppl, &err), 4) << lines[i];
    EXPECT_EQ(k, ++chunks);
    EXPECT_GT(ppl, 1.0);
    EXPECT_GT(err, 0.0);
    EXPECT_TRUE(contains(lines[i], "tok/s, ETA")) << lines[i];
    last = ppl;
  }
  double final_ppl = 0, final_err = 0;
  ASSERT_EQ(std::sscanf(lines.back().c_str(), "perplexity %lf +/- %lf", &final_ppl, &final_err), 2) << lines.back();
  EXPECT_NEAR(final_ppl, last, 1e-4);
  EXPECT_GT(chunks, 1);
}

}  // namespace
}  // namespace ingot
