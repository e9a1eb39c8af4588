// Shared by fuzz_engine_load and fuzz_session: a real, valid bundle to start from, named by the
// environment variable INGOT_FUZZ_BUNDLE (scripts/run-fuzzers.sh compiles one with `ingotc`), and
// the checks both make. Header-only: CMake builds one executable per tests/fuzz/fuzz_*.cpp.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace ingot::fuzz {

// The base bundle's path; without INGOT_FUZZ_BUNDLE the fuzzer stops at once, loudly: a run that
// silently fuzzed nothing would look like a clean one.
inline std::string base_bundle_path(const char* fuzzer) {
  const char* env = std::getenv("INGOT_FUZZ_BUNDLE");
  if (!env || !*env) {
    std::fprintf(stderr,
                 "%s: INGOT_FUZZ_BUNDLE is not set: it must name a valid bundle to start from, e.g.\n"
                 "  build-fuzz/tools/ingotc compile $INGOT_MODELS/stories260K.gguf -o base.ingot --target x86-64-v3 "
                 "--max-context 16\n(scripts/run-fuzzers.sh makes one)\n",
                 fuzzer);
    std::exit(2);
  }
  return env;
}

// Loads must not depend on the environment of whoever runs the fuzzer: no trusted keys (which would
// refuse every input), no forced tier.
inline void neutral_environment() {
  ::unsetenv("INGOT_TRUSTED_KEYS");
  ::unsetenv("INGOT_TIER");
  ::setenv("XDG_CONFIG_HOME", "/nonexistent-ingot-fuzz", 1);
}

// A private temporary folder for session files, in memory when /dev/shm exists.
inline std::string temp_dir(const char* fuzzer) {
  std::string templ = std::string(::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp") + "/ingot-" + fuzzer + "-XXXXXX";
  if (!::mkdtemp(templ.data())) {
    std::fprintf(stderr, "%s: cannot create %s\n", fuzzer, templ.c_str());
    std::exit(2);
  }
  return templ;
}

[[noreturn]] inline void finding(const char* what, const std::string& detail) {
  std::fprintf(stderr, "FINDING: %s: %s\n", what, detail.c_str());
  std::abort();
}

// Every error must name the file it is about.
inline void must_name(const std::string& message, const std::string& path) {
  if (message.find(path) == std::string::npos) finding("error without the file name", message);
}

// Writes all of `n` bytes at `offset` of `fd`.
inline bool pwrite_all(int fd, const void* data, size_t n, off_t offset) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, offset);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
    offset += w;
  }
  return true;
}

}  // namespace ingot::fuzz
