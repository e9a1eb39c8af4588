// The op kinds as an enum, generated from ir/op_list.h, and their names. Small on purpose: the
// model (ir/model.h) needs it; the op definitions are in ir/ops.h.
#pragma once

#include <cstdint>
#include <string_view>

#include "ir/op_list.h"

namespace ingot {

enum class Op : uint8_t {
#define INGOT_OP_ENUM(name) name,
  INGOT_OP_LIST(INGOT_OP_ENUM)
#undef INGOT_OP_ENUM
};

#define INGOT_OP_COUNT(name) +1
inline constexpr int kNumOps = 0 INGOT_OP_LIST(INGOT_OP_COUNT);
#undef INGOT_OP_COUNT

// "Add" for Op::Add.
constexpr const char* op_name(Op kind) {
  constexpr const char* kNames[] = {
#define INGOT_OP_NAME(name) #name,
      INGOT_OP_LIST(INGOT_OP_NAME)
#undef INGOT_OP_NAME
  };
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == kNumOps);
  return kNames[static_cast<int>(kind)];
}

}  // namespace ingot
