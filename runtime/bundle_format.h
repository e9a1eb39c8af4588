// The bundle container (*.ingot): constants and the fixed-size header and section table, shared by
// the writer (codegen/bundle_writer.cpp) and the loader (runtime/bundle.cpp). Everything on disk
// is little-endian and encoded/decoded byte by byte here, so neither side depends on the host's
// byte order or struct padding. Dependency-free on purpose. The format is described in
// docs/bundle.md.
//
//   offset 0     FileHeader (32 bytes)
//   offset 32    SectionEntry[section_count] (64 bytes each)
//   ...          zero padding
//   page-aligned sections, in the order of the table, each followed by zero padding to the next page
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace ingot::bundle {

// "INGOTBND": identifies the file; the format version says how to read the rest.
inline constexpr uint8_t kMagic[8] = {'I', 'N', 'G', 'O', 'T', 'B', 'N', 'D'};
// The version this code writes and the only one it reads. Bump on any incompatible change.
inline constexpr uint32_t kFormatVersion = 1;
// Every section starts at a multiple of this (so a mapping of the file maps weights page-aligned).
inline constexpr uint64_t kSectionAlignment = 4096;
// Every tensor starts at a multiple of this inside the weights section.
inline constexpr uint64_t kTensorAlignment = 64;
// A loader refuses tables larger than this (a corrupt count must not make it read megabytes).
inline constexpr uint32_t kMaxSections = 64;

enum class SectionKind : uint32_t {
  manifest = 1,  // protobuf ingot.pb.Manifest (runtime/proto/bundle.proto)
  kernels = 2,   // the kernels' ELF shared object, as linked by codegen
  weights = 3,   // pre-packed tensors, each at Tensor.offset (a multiple of kTensorAlignment)
  // Values up to 0xffff are reserved for Ingot; a loader skips kinds it does not know.
};

inline const char* section_kind_name(uint32_t kind) {
  switch (kind) {
    case 1: return "manifest";
    case 2: return "kernels";
    case 3: return "weights";
    default: return "unknown";
  }
}

// Header flags. A loader refuses a file with a flag it does not know. None is defined yet.
inline constexpr uint64_t kKnownFlags = 0;

struct FileHeader {
  static constexpr size_t kSize = 32;
  uint8_t magic[8] = {};
  uint32_t version = 0;
  uint32_t section_count = 0;
  uint64_t flags = 0;
  uint64_t file_size = 0;  // the whole file, in bytes: a truncated file is caught before any section
};

struct SectionEntry {
  static constexpr size_t kSize = 64;
  uint32_t kind = 0;
  uint32_t reserved = 0;  // written 0
  uint64_t offset = 0;    // from the start of the file, a multiple of kSectionAlignment
  uint64_t size = 0;      // bytes, without the padding that follows
  uint8_t sha256[32] = {};
  uint64_t reserved2 = 0; // written 0
};

// ---------------------------------------------------------------- little-endian encoding
inline void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint32_t get_u32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t(p[i]) << (8 * i);
  return v;
}
inline uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t(p[i]) << (8 * i);
  return v;
}

inline void encode(const FileHeader& h, uint8_t out[FileHeader::kSize]) {
  std::memcpy(out, h.magic, 8);
  put_u32(out + 8, h.version);
  put_u32(out + 12, h.section_count);
  put_u64(out + 16, h.flags);
  put_u64(out + 24, h.file_size);
}
inline FileHeader decode_header(const uint8_t in[FileHeader::kSize]) {
  FileHeader h;
  std::memcpy(h.magic, in, 8);
  h.version = get_u32(in + 8);
  h.section_count = get_u32(in + 12);
  h.flags = get_u64(in + 16);
  h.file_size = get_u64(in + 24);
  return h;
}

inline void encode(const SectionEntry& e, uint8_t out[SectionEntry::kSize]) {
  put_u32(out, e.kind);
  put_u32(out + 4, e.reserved);
  put_u64(out + 8, e.offset);
  put_u64(out + 16, e.size);
  std::memcpy(out + 24, e.sha256, 32);
  put_u64(out + 56, e.reserved2);
}
inline SectionEntry decode_section(const uint8_t in[SectionEntry::kSize]) {
  SectionEntry e;
  e.kind = get_u32(in);
  e.reserved = get_u32(in + 4);
  e.offset = get_u64(in + 8);
  e.size = get_u64(in + 16);
  std::memcpy(e.sha256, in + 24, 32);
  e.reserved2 = get_u64(in + 56);
  return e;
}

inline constexpr uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

}  // namespace ingot::bundle
