// Element types: plain numbers and llama.cpp's block-quantized weight formats.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "base/status.h"

namespace ingot {

enum class ElementType : uint8_t {
  f32, f16, bf16, i64, i32, i8, u8, boolean,
  // Block-quantized, byte-exact with ggml's block layouts.
  q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k,
  // Non-linear 4-bit: 16 fixed levels (kvalues_iq4nl) times a block scale.
  iq4_nl, iq4_xs,
};
inline constexpr int kNumElementTypes = 20;

struct ElementTypeInfo {
  ElementType type;
  const char* name;     // as printed in the IR text: "f32", "q4_k", "bool"
  int64_t block_elems;  // elements per block (1 for plain types)
  int64_t block_bytes;  // bytes per block (the element size for plain types)
  bool is_float;        // f32, f16, bf16
  bool is_integer;      // i64, i32, i8, u8
  bool is_quantized;    // q*_*
  int ggml_type;        // ggml's type id, used by GGUF
};

const ElementTypeInfo& type_info(ElementType t);
inline std::string_view type_name(ElementType t) { return type_info(t).name; }
std::optional<ElementType> parse_element_type(std::string_view name);
std::optional<ElementType> element_type_from_ggml(int ggml_type);

// Bytes to store `elems` elements; an error if a quantized count is not whole blocks or overflows.
StatusOr<int64_t> storage_bytes(ElementType t, int64_t elems);

// IEEE binary16 and bfloat16 conversions, round to nearest even, NaN and infinity preserved.
uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);
float bf16_to_f32(uint16_t h);

}  // namespace ingot
