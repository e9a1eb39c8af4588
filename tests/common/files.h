// Files for tests: a private temporary folder and whole-file reads.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace ingot::testing {

// A fresh folder under gtest's temporary directory, named PREFIX_XXXXXX.
inline std::string make_temp_dir(const std::string& prefix) {
  std::string tmpl = ::testing::TempDir() + prefix + "_XXXXXX";
  char* d = mkdtemp(tmpl.data());
  return d ? std::string(d) : ::testing::TempDir();
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace ingot::testing
