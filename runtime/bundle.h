// Reading a bundle (*.ingot, docs/bundle.md): the file is mapped read-only, its header, section
// table and manifest are validated on open, weights are pointers into the mapping (zero copy) and
// the kernels are loaded from memory. Errors are Status values (base/status.h) whose message names
// the file and the problem; nothing throws.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "runtime/bundle_format.h"
#include "runtime/kernel_library.h"
#include "runtime/proto/bundle.pb.h"

namespace ingot {

struct BundleSection {
  uint32_t kind = 0;  // bundle::SectionKind, or a kind this runtime does not know
  uint64_t offset = 0, size = 0;
  std::array<uint8_t, 32> sha256{};
};

struct BundleOpenOptions {
  // Refuse a bundle whose kernels need a CPU feature this host lacks. `ingot info` turns it off to
  // describe a bundle made for another CPU; anything that runs kernels must leave it on.
  bool check_cpu = true;
};

class Bundle {
 public:
  // Maps `path` and validates it (header, format version, section table, manifest, CPU features).
  // Section hashes are not checked here (that reads every byte): call verify().
  // Codes: io (cannot open or map), unsupported (this CPU lacks a feature), invalid_argument.
  static StatusOr<std::unique_ptr<Bundle>> open(const std::string& path, const BundleOpenOptions& options = {});
  // The same over bytes in memory (copied into page-aligned storage); `name` is used in messages.
  static StatusOr<std::unique_ptr<Bundle>> from_bytes(const std::string& name, std::string_view bytes,
                                                      const BundleOpenOptions& options = {});
  ~Bundle();
  Bundle(const Bundle&) = delete;
  Bundle& operator=(const Bundle&) = delete;

  const std::string& name() const { return name_; }
  uint64_t file_size() const { return size_; }
  const pb::Manifest& manifest() const { return manifest_; }
  const std::vector<BundleSection>& sections() const { return sections_; }
  // The first section of a kind, or null.
  const BundleSection* find_section(bundle::SectionKind kind) const;
  std::span<const uint8_t> bytes(const BundleSection& s) const { return {data_ + s.offset, s.size}; }

  // Recomputes every section's SHA-256; an error names the first bad section.
  Status verify() const;
  // "" when this host has every feature the manifest lists, otherwise what is missing.
  std::string check_cpu() const;

  // Weights: manifest().tensors(i) lives at tensor_data(i), 64-byte aligned, in the mapping.
  int tensor_count() const { return manifest_.tensors_size(); }
  const uint8_t* tensor_data(int i) const;
  // Index of the first tensor called `name` (with `layout`, if not empty), or -1.
  int find_tensor(std::string_view name, std::string_view layout = {}) const;

  // Loads the kernels section (memfd + dlopen); symbols are looked up by name.
  StatusOr<std::unique_ptr<KernelLibrary>> load_kernels() const;

 private:
  Bundle() = default;
  Status parse(const BundleOpenOptions& options);
  // "<name>: msg".
  Status fail(const std::string& msg, StatusCode code = StatusCode::invalid_argument) const;

  std::string name_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  void* map_ = nullptr;  // mmap'ed file, or
  void* heap_ = nullptr; // aligned copy (from_bytes)
  std::vector<BundleSection> sections_;
  pb::Manifest manifest_;
  const uint8_t* weights_ = nullptr;
};

}  // namespace ingot
