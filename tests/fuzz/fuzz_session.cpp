// libFuzzer target for Session::restore (runtime/engine.cpp): session files (KV cache, position,
// history, logits) against one real bundle, $INGOT_FUZZ_BUNDLE, loaded once. Seed: a session file
// that Session::save wrote after a short prefill (written into the first corpus directory at
// startup). Each input is written to a memfd and restored by its /proc/self/fd path into a session
// that holds a known state (that same prefill).
//
// Checks: no crash, no sanitizer report, no leak; a refused restore names the file and leaves the
// session exactly as it was (position, history, logits, and the KV cache rows it saves); a restore
// that succeeds leaves a position within the context and a session that can sample and decode
// one more token when there is room.
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "runtime/sampler.h"
#include "tests/fuzz/base_bundle.h"

namespace {

using namespace ingot;

std::unique_ptr<Engine> g_engine;
std::unique_ptr<Session> g_session;
std::string g_dir;        // a private temporary folder
std::string g_seed_path;  // the seed session file, in g_dir
// The seed state, which every input starts from.
int64_t g_position = 0;
std::vector<int32_t> g_history;
std::vector<float> g_logits;
std::string g_saved;
// How far inputs got, printed at exit.
long g_inputs = 0, g_restored = 0;

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Everything a session file records of `s`, as Session::save writes it.
std::string snapshot(const Session& s) {
  const std::string path = g_dir + "/snapshot";
  if (Status st = s.save(path); !st.ok()) fuzz::finding("save failed", st.message());
  return read_all(path);
}

void init() {
  fuzz::neutral_environment();
  const std::string bundle = fuzz::base_bundle_path("fuzz_session");
  auto e = Engine::load(bundle, EngineOptions{});
  if (!e.ok()) fuzz::finding("the base bundle does not load", e.message());
  g_engine = std::move(*e);
  auto s = Session::create(*g_engine, 1);
  if (!s.ok()) fuzz::finding("no session", s.message());
  g_session = std::move(*s);
  g_dir = fuzz::temp_dir("fuzz_session");
  g_seed_path = g_dir + "/seed.session";
  // A short prefill: a few positions of KV cache in the file.
  const int64_t v = g_engine->vocab();
  std::vector<int32_t> ids;
  for (int32_t i = 1; i <= 3 && i < g_engine->max_context(); ++i) ids.push_back(static_cast<int32_t>(i % v));
  if (Status st = g_session->prefill(ids); !st.ok()) fuzz::finding("the seed prefill failed", st.message());
  if (Status st = g_session->save(g_seed_path); !st.ok()) fuzz::finding("the seed save failed", st.message());
  g_position = g_session->position();
  g_history = g_session->history();
  g_logits.assign(g_session->logits().begin(), g_session->logits().end());
  g_saved = read_all(g_seed_path);
}

// Back to the seed state, so every input starts from the same session.
void back_to_seed() {
  if (Status st = g_session->restore(g_seed_path); !st.ok()) fuzz::finding("the seed does not restore", st.message());
}

void cleanup() {
  std::fprintf(stderr, "fuzz_session: %ld inputs, %ld restored\n", g_inputs, g_restored);
  ::unlink((g_dir + "/snapshot").c_str());
  ::unlink(g_seed_path.c_str());
  ::rmdir(g_dir.c_str());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  init();
  std::atexit(cleanup);
  // The seed, into the first corpus directory given (the first argument that is not a flag).
  for (int i = 1; i < *argc; ++i) {
    const char* a = (*argv)[i];
    struct stat st;
    if (a[0] == '-' || ::stat(a, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    std::ofstream(std::string(a) + "/seed.session", std::ios::binary) << read_all(g_seed_path);
    break;
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = ::memfd_create("fuzz.session", MFD_CLOEXEC);
  if (fd < 0) return 0;
  if (!fuzz::pwrite_all(fd, data, size, 0)) {
    ::close(fd);
    return 0;
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  ++g_inputs;
  Session& s = *g_session;  // in the seed state (g_position, g_history, g_logits, g_saved)
  Status st = s.restore(path);
  ::close(fd);
  if (!st.ok()) {
    fuzz::must_name(st.message(), path);
    const std::vector<float> now(s.logits().begin(), s.logits().end());
    // Bitwise: a NaN logit compares unequal to itself.
    const bool same_logits = now.size() == g_logits.size() &&
                             std::memcmp(now.data(), g_logits.data(), g_logits.size() * sizeof(float)) == 0;
    if (s.position() != g_position || s.history() != g_history || !same_logits || snapshot(s) != g_saved)
      fuzz::finding("a failed restore changed the session", st.message());
    return 0;
  }
  ++g_restored;
  if (s.position() < 0 || s.position() > g_engine->max_context()) fuzz::finding("restored a position outside the context", path);
  if (s.logits().size() != static_cast<size_t>(g_engine->vocab())) fuzz::finding("restored logits of the wrong size", path);
  // The restored session works: sample with penalties over its history, decode one token if there is room.
  SamplingParams sp;
  sp.temperature = 0.8f;
  sp.repeat_penalty = 1.1f;
  sp.presence_penalty = 0.5f;
  Sampler sampler(sp);
  const int32_t next = sampler.sample(s.logits(), s.history());
  if (next < 0 || next >= g_engine->vocab()) fuzz::finding("sampled a token outside the vocabulary", std::to_string(next));
  if (s.position() < g_engine->max_context()) {
    if (Status d = s.decode(next); !d.ok()) fuzz::finding("decode after a restore failed", d.message());
  }
  back_to_seed();
  return 0;
}
