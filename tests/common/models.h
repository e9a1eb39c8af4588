// Locating ../shared/models from tests. INGOT_MODELS overrides the default (the folder beside the
// repository). Under CI (CI=true) a missing file fails the test; elsewhere the test is skipped
// with a message.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <sys/stat.h>

namespace ingot::testing {

inline std::string models_dir() {
  const char* env = std::getenv("INGOT_MODELS");
  if (env && *env) return env;
  return INGOT_DEFAULT_MODELS_DIR;
}

inline bool running_in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

inline bool path_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

}  // namespace ingot::testing

// Sets `var` to the full path of `relative` inside the models folder, or skips (fails under CI).
#define INGOT_MODEL_PATH(var, relative)                                                         \
  std::string var = ::ingot::testing::models_dir() + "/" + (relative);                          \
  if (!::ingot::testing::path_exists(var)) {                                                    \
    if (::ingot::testing::running_in_ci()) FAIL() << "test model missing under CI: " << var;    \
    GTEST_SKIP() << "test model not found: " << var << " (set INGOT_MODELS)";                   \
  }
