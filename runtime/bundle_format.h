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
#include <string>

namespace ingot::bundle {

// "INGOTBND": identifies the file; the format version says how to read the rest.
inline constexpr uint8_t kMagic[8] = {'I', 'N', 'G', 'O', 'T', 'B', 'N', 'D'};
// The version this code writes. Bump on any incompatible change. 2: kernels read a work counter
// at dims[kDimWorkCounter] (runtime/kernel_contract.h), which a runtime that reads only version 1
// does not pass; so such a runtime refuses these bundles instead of running them.
inline constexpr uint32_t kFormatVersion = 2;
// The oldest version this code reads: version 1's kernels read no work counter and split their
// work by thread index, which this runtime's calls still allow (the extra dims word is ignored).
inline constexpr uint32_t kMinFormatVersion = 1;
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
  signature = 4, // optional, last: an Ed25519 signature over every byte before it (SignatureBlock)
  // Values up to 0xffff are reserved for Ingot; a loader skips kinds it does not know.
};

inline const char* section_kind_name(uint32_t kind) {
  switch (kind) {
    case 1: return "manifest";
    case 2: return "kernels";
    case 3: return "weights";
    case 4: return "signature";
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

// The header (this format version, no flags) and the section table, into the first
// FileHeader::kSize + n * SectionEntry::kSize bytes of `out`.
inline void encode_header_and_table(const SectionEntry* table, uint32_t n, uint64_t file_size, uint8_t* out) {
  FileHeader h;
  std::memcpy(h.magic, kMagic, sizeof(kMagic));
  h.version = kFormatVersion;
  h.section_count = n;
  h.flags = 0;
  h.file_size = file_size;
  encode(h, out);
  for (uint32_t i = 0; i < n; ++i) encode(table[i], out + FileHeader::kSize + size_t(i) * SectionEntry::kSize);
}

inline constexpr uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// ---------------------------------------------------------------- the signature section
// The last section of a signed bundle (docs/bundle.md, "Signatures"; docs/security.md):
//
//   offset 0    magic        8 bytes  "INGOTSIG"
//          8    version      u32      1
//          12   algorithm    u32      1: Ed25519 (RFC 8032, pure) over kSignedMessagePrefix,
//                                     the comment and a SHA-256 of the file (signed_message)
//          16   public key   32 bytes Ed25519, raw
//          48   signature    64 bytes
//          112  comment_len  u32      at most kMaxSignatureComment
//          116  comment      the signer's key comment (UTF-8), comment_len bytes; nothing follows
//
// The digest covers every byte of the file before the signature section: header, section table
// (the signature's entry included, its sha256 field counted as 32 zero bytes: that hash is of the
// signature section, computed after signing), padding and every other section.
inline constexpr uint8_t kSignatureMagic[8] = {'I', 'N', 'G', 'O', 'T', 'S', 'I', 'G'};
inline constexpr uint32_t kSignatureVersion = 1;
inline constexpr uint32_t kSignatureEd25519Sha256 = 1;
inline constexpr size_t kSignatureHeaderSize = 116;
inline constexpr size_t kMaxSignatureComment = 1024;
// Domain separation: a signed bundle digest cannot be mistaken for any other Ed25519 message.
inline constexpr char kSignedMessagePrefix[] = "ingot bundle signature v1";  // and its NUL: 26 bytes

struct SignatureBlock {
  uint8_t public_key[32] = {};
  uint8_t signature[64] = {};
  std::string comment;
};

inline std::string encode_signature(const SignatureBlock& s) {
  std::string out(kSignatureHeaderSize + s.comment.size(), '\0');
  uint8_t* p = reinterpret_cast<uint8_t*>(out.data());
  std::memcpy(p, kSignatureMagic, 8);
  put_u32(p + 8, kSignatureVersion);
  put_u32(p + 12, kSignatureEd25519Sha256);
  std::memcpy(p + 16, s.public_key, 32);
  std::memcpy(p + 48, s.signature, 64);
  put_u32(p + 112, static_cast<uint32_t>(s.comment.size()));
  std::memcpy(p + kSignatureHeaderSize, s.comment.data(), s.comment.size());
  return out;
}

// False (with *why) when `n` bytes are not exactly one signature block this code reads.
inline bool decode_signature(const uint8_t* in, uint64_t n, SignatureBlock* s, std::string* why) {
  if (n < kSignatureHeaderSize) return *why = "the signature section is too short (" + std::to_string(n) + " bytes)", false;
  if (std::memcmp(in, kSignatureMagic, 8) != 0) return *why = "the signature section has a bad magic", false;
  if (get_u32(in + 8) != kSignatureVersion)
    return *why = "signature version " + std::to_string(get_u32(in + 8)) + ", this runtime reads " +
                  std::to_string(kSignatureVersion), false;
  if (get_u32(in + 12) != kSignatureEd25519Sha256)
    return *why = "unknown signature algorithm " + std::to_string(get_u32(in + 12)), false;
  const uint32_t len = get_u32(in + 112);
  if (len > kMaxSignatureComment || n != kSignatureHeaderSize + len)
    return *why = "the signature section's size (" + std::to_string(n) + " bytes) does not match its comment length (" +
                  std::to_string(len) + ")", false;
  for (uint32_t i = 0; i < len; ++i)
    if (in[kSignatureHeaderSize + i] < 0x20 || in[kSignatureHeaderSize + i] == 0x7f)
      return *why = "the signature's comment has a control character", false;
  std::memcpy(s->public_key, in + 16, 32);
  std::memcpy(s->signature, in + 48, 64);
  s->comment.assign(reinterpret_cast<const char*>(in + kSignatureHeaderSize), len);
  return true;
}

}  // namespace ingot::bundle
