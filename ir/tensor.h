// Concrete tensors: constants (owned or pointing into a mapped file) and evaluator values.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ir/element_type.h"
#include "base/status.h"

namespace ingot {

// Bytes a tensor reads. Either owned, or a view of memory kept alive by `owner` (a mapped file):
// constants imported from a GGUF point into the mapping, zero copy.
class Buffer {
 public:
  static std::shared_ptr<Buffer> allocate(size_t bytes);  // zero-filled
  static std::shared_ptr<Buffer> view(const uint8_t* data, size_t bytes, std::shared_ptr<const void> owner);
  // The bytes of `parts` one after another, copied only when someone reads data(): merging the
  // weights of parallel projections at compile time must not copy a mapped model.
  static std::shared_ptr<Buffer> concat(std::vector<std::shared_ptr<const Buffer>> parts);

  const uint8_t* data() const;  // a lazy concatenation is materialized here, once
  // Copies bytes [offset, offset + len) into dst without materializing a lazy concatenation.
  void read(size_t offset, size_t len, uint8_t* dst) const;
  uint8_t* mutable_data();      // asserts the buffer is owned
  size_t size() const { return size_; }
  bool is_view() const { return owner_ != nullptr; }
  // The pieces of a lazy concatenation (empty otherwise), for writers that stream them.
  const std::vector<std::shared_ptr<const Buffer>>& parts() const { return parts_; }
  bool is_materialized() const;

 private:
  Buffer() = default;
  std::vector<uint8_t> storage_;
  mutable const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::shared_ptr<const void> owner_;
  std::vector<std::shared_ptr<const Buffer>> parts_;
  mutable std::unique_ptr<std::once_flag> materialize_once_;
  mutable std::vector<uint8_t> materialized_;
};

class Tensor {
 public:
  Tensor() = default;
  // Zero-filled owned tensor. Asserts the size is valid (whole blocks for quantized types).
  static Tensor zeros(ElementType type, std::vector<int64_t> shape);
  // A tensor over existing bytes; an error if the byte count does not match type and shape.
  static StatusOr<Tensor> from_buffer(ElementType type, std::vector<int64_t> shape,
                                      std::shared_ptr<const Buffer> buffer);
  // Convenience constructors for tests and builders.
  static Tensor from_f32(std::vector<int64_t> shape, const std::vector<float>& values);
  static Tensor from_i64(std::vector<int64_t> shape, const std::vector<int64_t>& values);
  static Tensor from_values(ElementType type, std::vector<int64_t> shape, const std::vector<double>& values);
  static Tensor scalar_i64(int64_t v) { return from_i64({}, {v}); }

  bool defined() const { return buffer_ != nullptr; }
  ElementType type() const { return type_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
  int64_t numel() const;
  size_t nbytes() const { return buffer_ ? buffer_->size() : 0; }
  const uint8_t* raw() const { return buffer_ ? buffer_->data() : nullptr; }
  uint8_t* mutable_raw();  // asserts the buffer is owned
  const std::shared_ptr<const Buffer>& buffer() const { return buffer_; }

  // Element access by flat index for plain types (asserts not quantized).
  // Floats and bools read as double; integers as int64 (get_f converts).
  double get_f(int64_t i) const;
  int64_t get_i(int64_t i) const;
  // Stores with the type's rounding: f16/bf16 round to nearest even, integers truncate toward
  // zero and saturate, bool stores v != 0.
  void set_f(int64_t i, double v);
  void set_i(int64_t i, int64_t v);

  // f32 copy of any float or quantized tensor (dequantized); integers and bools convert exactly
  // when representable.
  Tensor to_f32() const;
  std::vector<float> to_f32_vector() const;
  std::vector<int64_t> to_i64_vector() const;

  // 64-bit FNV-1a of the bytes, hex: the content hash printed for constants.
  std::string content_hash() const;

 private:
  ElementType type_ = ElementType::f32;
  std::vector<int64_t> shape_;
  std::shared_ptr<const Buffer> buffer_;
  std::shared_ptr<Buffer> owned_;  // set when this tensor may write its buffer
};

std::string dims_str(const std::vector<int64_t>& dims);  // "[2, 3]"

}  // namespace ingot
