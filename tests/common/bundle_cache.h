// Files that tests make with ingotc (bundles, synthesized models) and only read, made once per
// build instead of once per test process: ctest runs every test in its own process, and each of
// them compiling the same stories260K bundle was a large part of the suite's time (CI's budget).
//
// An entry is named by a hash of the command, of each input file's size and modification time, and
// of the ingotc binary's: a rebuilt ingotc or a changed model makes a new entry. It is written
// under a temporary name and renamed, so tests running in parallel never see half a file; two
// processes that miss at once both make it, and the second rename wins with identical bytes.
// A miss also removes the entries older than the tools (made by an older build of them).
// Callers must not modify the files they get (copy them first).
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/common/command.h"

namespace ingot::testing {

namespace detail {

inline void hash_bytes(uint64_t& h, const std::string& s) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;  // FNV-1a 64
  h = (h ^ 0xff) * 1099511628211ull;                         // a separator between fields
}

// Size and modification time in nanoseconds, or "missing".
inline std::string file_stamp(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return "missing:" + path;
  return path + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

inline std::string cache_dir() {
#ifdef INGOT_TEST_CACHE_DIR
  return INGOT_TEST_CACHE_DIR;
#else
  return ::testing::TempDir() + "ingot-test-cache";
#endif
}

}  // namespace detail

// Runs COMMAND, in which every "{out}" stands for the output path, unless an entry for the same
// command, inputs and tools exists; returns the entry's path (ending in EXTENSION), or "" after
// a failed expectation when the command fails. TOOLS are the binaries the command runs (their
// stamps are part of the key); INPUTS the files it reads.
inline std::string cached_output(const std::string& command, const std::string& extension, const std::vector<std::string>& tools,
                                 const std::vector<std::string>& inputs) {
  uint64_t h = 1469598103934665603ull;
  detail::hash_bytes(h, command);
  for (const std::string& t : tools) detail::hash_bytes(h, detail::file_stamp(t));
  for (const std::string& i : inputs) detail::hash_bytes(h, detail::file_stamp(i));
  char name[32];
  std::snprintf(name, sizeof(name), "%016llx", static_cast<unsigned long long>(h));
  const std::string dir = detail::cache_dir();
  const std::string path = dir + "/" + name + extension;
  if (::access(path.c_str(), R_OK) == 0) return path;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  // Entries older than the tools were made by an older build of them: removed on a miss, so that
  // rebuilding does not grow the folder without end.
  auto newest_tool = std::filesystem::file_time_type::min();  // not {}: libstdc++'s file clock starts in 2174
  for (const std::string& t : tools) newest_tool = std::max(newest_tool, std::filesystem::last_write_time(t, ec));
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
    if (entry.is_regular_file(ec) && entry.last_write_time(ec) < newest_tool) std::filesystem::remove(entry.path(), ec);
  // The temporary keeps EXTENSION last: ingotc picks the output's format by its extension.
  const std::string tmp = dir + "/" + name + ".tmp-" + std::to_string(::getpid()) + extension;
  std::string cmd = command;
  for (size_t at; (at = cmd.find("{out}")) != std::string::npos;) cmd.replace(at, 5, tmp);
  const CmdResult r = run_command(cmd);
  if (r.status != 0) {
    std::filesystem::remove_all(tmp, ec);
    ADD_FAILURE() << cmd << " exited with " << r.status << ":\n" << r.out;
    return "";
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    ADD_FAILURE() << "renaming " << tmp << " to " << path << ": " << ec.message();
    return "";
  }
  return path;
}

// MODEL compiled by INGOTC with ARGS (see cached_output).
inline std::string cached_bundle(const std::string& ingotc, const std::string& model, const std::string& args = "") {
  return cached_output(ingotc + " compile " + model + " -o {out} " + args, ".ingot", {ingotc}, {model});
}

// A model `INGOTC synth ARGS` writes as GGUF (see cached_output).
inline std::string cached_synth(const std::string& ingotc, const std::string& args) {
  return cached_output(ingotc + " synth " + args + " -o {out}", ".gguf", {ingotc}, {});
}

}  // namespace ingot::testing
