// The C API: error paths from C (c_api_check.c) here; running a bundle through it is in
// engine_test.cpp.
#include <gtest/gtest.h>

#include <fstream>

#include "tests/common/files.h"

extern "C" int ingot_c_api_error_checks(const char* missing_path, const char* not_a_bundle);

namespace ingot {
namespace {

TEST(CApi, ErrorsComeBackAsCodesWithMessages) {
  const std::string dir = testing::make_temp_dir("ingot-capi");
  const std::string junk = dir + "/junk.ingot";
  std::ofstream(junk) << "this is not a bundle";
  EXPECT_EQ(ingot_c_api_error_checks((dir + "/missing.ingot").c_str(), junk.c_str()), 0);
}

}  // namespace
}  // namespace ingot
