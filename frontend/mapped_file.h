// A read-only memory-mapped file. Constants imported from it are views into the mapping
// (Buffer::view with the MappedFile as owner): weights are never copied on import.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"

namespace ingot {

class MappedFile {
 public:
  // Maps the whole file read-only. Errors name the path and the system's reason.
  static StatusOr<std::shared_ptr<MappedFile>> open(const std::string& path);
  // Wraps bytes already in memory (tests, fuzzers): same interface, no mapping.
  static std::shared_ptr<MappedFile> from_bytes(std::string path, std::string bytes);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  std::string owned_;  // from_bytes
};

}  // namespace ingot
