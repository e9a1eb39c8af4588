// Files for tests: a private temporary folder and whole-file reads.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

namespace ingot::testing {

namespace detail {

// The folders make_temp_dir made in this process. They are removed when the process exits, so
// that test runs do not fill /tmp (a run of every test made ~150 folders, some of 30 MB), unless
// a test failed (the files are then kept to look at) or INGOT_KEEP_TEST_TMP is set.
struct TempDirs {
  std::mutex mu;
  std::vector<std::string> dirs;
  pid_t owner = ::getpid();  // a forked child that calls exit() must not remove its parent's folders
};

inline TempDirs& temp_dirs() {
  static TempDirs* const t = new TempDirs;  // never destroyed: the atexit handler uses it
  return *t;
}

inline void remove_temp_dirs() {
  TempDirs& t = temp_dirs();
  if (::getpid() != t.owner || std::getenv("INGOT_KEEP_TEST_TMP")) return;
  if (!::testing::UnitTest::GetInstance()->Passed()) return;
  std::lock_guard<std::mutex> g(t.mu);
  for (const std::string& d : t.dirs) {
    std::error_code ec;
    std::filesystem::remove_all(d, ec);  // best effort: a folder a test made read-only stays
  }
  t.dirs.clear();
}

}  // namespace detail

// A fresh folder under gtest's temporary directory, named PREFIX_XXXXXX, removed at exit when
// every test of the process passed (detail::TempDirs).
inline std::string make_temp_dir(const std::string& prefix) {
  std::string tmpl = ::testing::TempDir() + prefix + "_XXXXXX";
  char* d = mkdtemp(tmpl.data());
  if (!d) return ::testing::TempDir();
  detail::TempDirs& t = detail::temp_dirs();
  std::lock_guard<std::mutex> g(t.mu);
  if (t.dirs.empty() && t.owner == ::getpid()) std::atexit(detail::remove_temp_dirs);
  t.dirs.emplace_back(d);
  return std::string(d);
}

// The names in a folder but "." and "..", sorted.
inline std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace ingot::testing
