// Two sessions on one loaded model, and the C++ API: prefill, logits, decode, save and restore.
//   ./example_sessions model.ingot
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "runtime/engine.h"

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  auto loaded = ingot::Engine::load(argv[1]);  // a StatusOr: the engine, or why not
  if (!loaded.ok()) {
    std::fprintf(stderr, "error: %s\n", loaded.message().c_str());
    return 1;
  }
  const std::unique_ptr<ingot::Engine> engine = std::move(*loaded);
  // Each thread gets its own session (its own KV cache); the engine is shared and read-only.
  auto run = [&](const char* prompt, std::vector<int32_t>* out) {
    auto session = ingot::Session::create(*engine, /*threads=*/1);
    if (!session.ok()) {
      std::fprintf(stderr, "error: %s\n", session.message().c_str());
      return;
    }
    ingot::GenerateOptions go;
    go.sampling.temperature = 0;  // greedy
    go.max_new_tokens = 16;
    const auto ids = engine->tokenizer()->encode(prompt, true);
    if (ingot::Status st = (*session)->generate(ids, go, out); !st.ok()) std::fprintf(stderr, "error: %s\n", st.message().c_str());
  };
  std::vector<int32_t> a, b;
  std::thread t1(run, "Once upon a time", &a), t2(run, "The little dog", &b);
  t1.join();
  t2.join();
  std::printf("1: %s\n2: %s\n", engine->tokenizer()->decode(a, true).c_str(), engine->tokenizer()->decode(b, true).c_str());
  return 0;
}
