#include <gtest/gtest.h>
#include "runtime/chat_template.h"
#include "runtime/jinja.h"
using namespace ingot;
TEST(Jinja, Placeholder) {}
