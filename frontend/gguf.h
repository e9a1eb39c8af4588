// GGUF (versions 2 and 3): a strict, zero-copy reader and a writer.
// Format: magic "GGUF", u32 version, u64 tensor count, u64 metadata count, metadata key/values,
// tensor infos (name, n_dims, dims in ggml order (fastest first), ggml type, data offset), padding
// to `general.alignment` (default 32), then tensor data.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "frontend/mapped_file.h"
#include "base/status.h"
#include "ir/tensor.h"

namespace ingot {

enum class GgufType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_type_name(GgufType t);

// One metadata value. Integers of every width are held as int64/uint64, floats as double; the
// original GGUF type is kept so that the writer reproduces it.
class GgufValue {
 public:
  using Array = std::vector<GgufValue>;
  GgufValue() = default;
  static GgufValue u8(uint8_t v), i8(int8_t v), u16(uint16_t v), i16(int16_t v), u32(uint32_t v), i32(int32_t v),
      u64(uint64_t v), i64(int64_t v), f32(float v), f64(double v), boolean(bool v), string(std::string v);
  // An array of one element type (every item must have that type; arrays may nest).
  static GgufValue array(GgufType elem_type, Array items);
  static GgufValue strings(const std::vector<std::string>& v);
  static GgufValue f32s(const std::vector<float>& v);
  static GgufValue i32s(const std::vector<int32_t>& v);

  GgufType type() const { return type_; }
  GgufType elem_type() const { return elem_type_; }  // arrays only
  bool is_integer() const;
  bool is_float() const { return type_ == GgufType::FLOAT32 || type_ == GgufType::FLOAT64; }

  // Checked accessors: an error names the actual type.
  StatusOr<int64_t> as_int() const;     // any integer type that fits int64 (and bool)
  StatusOr<double> as_float() const;    // float or integer types
  StatusOr<bool> as_bool() const;
  StatusOr<std::string> as_string() const;
  StatusOr<std::vector<std::string>> as_strings() const;  // array of strings
  StatusOr<std::vector<double>> as_floats() const;        // array of numbers
  StatusOr<std::vector<int64_t>> as_ints() const;         // array of integers
  const Array& items() const { return items_; }           // arrays only (empty otherwise)
  std::string summary(size_t max_items = 8) const;        // short printable form for `inspect`

 private:
  GgufType type_ = GgufType::UINT8;
  GgufType elem_type_ = GgufType::UINT8;
  std::variant<int64_t, uint64_t, double, bool, std::string> scalar_;
  Array items_;
  friend class GgufReader;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // row-major (outermost first): ggml's dims reversed
  ElementType type = ElementType::f32;
  uint64_t offset = 0;         // from the start of the file (of its split)
  uint64_t bytes = 0;
  uint32_t split = 0;          // which file of a split model holds it (0: the file opened)
};

class GgufFile {
 public:
  // Maps and validates the file; constants point into the mapping. Every error names the file,
  // the byte offset and what is wrong: "model.gguf: offset 24: tensor count 1099511627776 cannot fit in a 1185376-byte file".
  // A model split by llama.cpp's gguf-split (`split.count` > 1) is opened from its first file,
  // NAME-00001-of-0000N.gguf: the others, named alike, are mapped too and their tensors join
  // this one's (the first file holds all the metadata).
  static StatusOr<std::unique_ptr<GgufFile>> open(const std::string& path);
  static StatusOr<std::unique_ptr<GgufFile>> parse(std::shared_ptr<MappedFile> file);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const std::string& path() const { return file_->path(); }

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const GgufValue* find(const std::string& key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  size_t split_count() const { return 1 + more_splits_.size(); }
  std::vector<std::string> split_paths() const;  // this file's path, then the other splits'
  const std::string& path_of(const GgufTensorInfo& t) const { return t.split == 0 ? path() : more_splits_[t.split - 1]->path(); }
  const GgufTensorInfo* find_tensor(const std::string& name) const;
  // A zero-copy tensor viewing the mapped bytes (row-major shape). Error if the name is unknown.
  StatusOr<std::shared_ptr<const Tensor>> tensor(const std::string& name) const;

 private:
  friend class GgufReader;
  std::shared_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::map<std::string, size_t> metadata_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
  std::vector<std::shared_ptr<MappedFile>> more_splits_;  // files 2..N of a split model
  Status open_more_splits();
};

// Writes GGUF v3 that llama.cpp loads: metadata in insertion order, tensors in insertion order,
// data aligned to `general.alignment` (32 unless set). Written through a temporary file and a
// rename: a failure leaves no partial output.
class GgufWriter {
 public:
  void set(const std::string& key, GgufValue v);  // replaces an existing key in place
  // `t` has a row-major shape; its bytes are referenced, not copied, until write().
  Status add_tensor(const std::string& name, std::shared_ptr<const Tensor> t);
  // A tensor whose bytes are produced during write() and streamed to the file, so that a large
  // model never sits in memory whole. `fill` must write all `bytes` bytes of the tensor to `dst`.
  using TensorFill = std::function<Status(uint8_t* dst, size_t bytes)>;
  Status add_tensor_generator(const std::string& name, ElementType type, std::vector<int64_t> shape,
                              TensorFill fill);
  Status write(const std::string& path) const;

 private:
  struct PendingTensor {
    std::string name;
    ElementType type = ElementType::f32;
    std::vector<int64_t> shape;           // row-major
    uint64_t bytes = 0;
    std::shared_ptr<const Tensor> data;   // set by add_tensor
    TensorFill fill;                      // set by add_tensor_generator
  };
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace ingot
