// Safetensors: a strict, zero-copy reader for one `.safetensors` file and for sharded Hugging Face
// checkpoints (`model.safetensors.index.json`).
//
// Format: u64 little-endian header length N, N bytes of UTF-8 JSON
//   {"NAME": {"dtype": "F32", "shape": [d0, d1], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value"}}   (optional)
// then the data section; offsets are relative to its start (byte 8 + N).
//
// Every error names the file and what is wrong, and for header errors the offending key:
//   "model.safetensors: tensor 'w': data_offsets [0, 12] hold 12 bytes but F32 [2, 2] needs 16"
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "frontend/mapped_file.h"
#include "base/status.h"
#include "ir/tensor.h"

namespace ingot {

struct SafetensorsTensorInfo {
  std::string name;
  std::string dtype;           // as spelled in the file: "F32", "BF16", ...
  ElementType type = ElementType::f32;
  std::vector<int64_t> shape;  // row-major (outermost first), as in the file
  uint64_t offset = 0;         // from the start of the file
  uint64_t bytes = 0;
};

class SafetensorsFile {
 public:
  // Headers larger than this are rejected before any allocation (real ones are a few MB).
  static constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

  // Maps and validates the file; tensors are views into the mapping.
  static StatusOr<std::unique_ptr<SafetensorsFile>> open(const std::string& path);
  // Validates bytes already mapped (or held by MappedFile::from_bytes); errors use file->path().
  static StatusOr<std::unique_ptr<SafetensorsFile>> parse(std::shared_ptr<MappedFile> file);

  const std::string& path() const { return file_->path(); }
  uint64_t data_offset() const { return data_offset_; }  // 8 + header length

  // Tensors sorted by name; names() in the same order.
  const std::vector<SafetensorsTensorInfo>& tensors() const { return tensors_; }
  std::vector<std::string> names() const;
  const SafetensorsTensorInfo* find(const std::string& name) const;  // null if absent
  // A tensor over the mapped bytes (zero copy; the tensor keeps the mapping alive). Only a tensor
  // whose address is not a multiple of its element size (possible in hand-made files, never in
  // ones written by the safetensors library) is copied, so that readers may cast the pointer.
  // Error if the name is unknown.
  StatusOr<std::shared_ptr<const Tensor>> tensor(const std::string& name) const;

  // The header's "__metadata__" (empty when absent), e.g. {"format": "pt"}.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  friend class SafetensorsHeaderReader;
  SafetensorsFile() = default;
  std::shared_ptr<MappedFile> file_;
  uint64_t data_offset_ = 0;
  std::vector<SafetensorsTensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// A Hugging Face checkpoint: one model.safetensors, or shards listed by an index
// ({"metadata": {...}, "weight_map": {"tensor name": "shard file name"}}).
class SafetensorsCheckpoint {
 public:
  static constexpr const char* kSingleFile = "model.safetensors";
  static constexpr const char* kIndexFile = "model.safetensors.index.json";

  // DIR/model.safetensors if present (as transformers prefers), else DIR/model.safetensors.index.json.
  static StatusOr<std::unique_ptr<SafetensorsCheckpoint>> open_folder(const std::string& dir);
  // A sharded checkpoint from its index; shards are file names in the index's folder. Errors
  // name the index and, for a shard's problem, the shard.
  static StatusOr<std::unique_ptr<SafetensorsCheckpoint>> open_index(const std::string& index_path);
  // The index's JSON already in memory (tests, fuzzing): shards are opened relative to `dir`.
  static StatusOr<std::unique_ptr<SafetensorsCheckpoint>> parse_index(std::string_view json,
                                                                       const std::string& index_path,
                                                                       const std::string& dir);
  // A single file as a one-shard checkpoint.
  static StatusOr<std::unique_ptr<SafetensorsCheckpoint>> open_file(const std::string& path);

  // Every tensor name, sorted. For an index these are the weight_map's names (a shard's tensors
  // that the index does not list are not part of the checkpoint, as in transformers).
  std::vector<std::string> names() const;
  const SafetensorsTensorInfo* find(const std::string& name) const;  // null if absent
  StatusOr<std::shared_ptr<const Tensor>> tensor(const std::string& name) const;

  // The index or the single file this checkpoint was opened from.
  const std::string& source() const { return source_; }
  const std::vector<std::unique_ptr<SafetensorsFile>>& shards() const { return shards_; }
  // The index's "metadata" with values as JSON text (e.g. {"total_size": "1044992"}); for a
  // single file, that file's __metadata__.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsCheckpoint() = default;
  std::string source_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, size_t> shard_of_;  // tensor name -> index in shards_
  std::map<std::string, std::string> metadata_;
};

// Byte offset of the first byte of `s` that is not part of well-formed UTF-8 (no overlongs,
// surrogates or code points past U+10FFFF), or std::string_view::npos if there is none.
size_t find_invalid_utf8(std::string_view s);

}  // namespace ingot
