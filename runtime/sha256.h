// SHA-256 (FIPS 180-4), streaming. The bundle stores one digest per section; the compiler records
// the digest of every source file. Depends on nothing but the standard library.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ingot {

class Sha256 {
 public:
  using Digest = std::array<uint8_t, 32>;

  Sha256() { reset(); }
  void reset();
  // Feeds bytes; any chunking gives the same digest.
  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // The digest of everything fed so far. The object must be reset() before reuse.
  Digest finish();

  static Digest hash(const void* data, size_t size);
  static Digest hash(std::string_view s) { return hash(s.data(), s.size()); }

  // Whether blocks are compressed with the x86 SHA extensions (when the CPU has them); tests
  // switch it off to check the portable code too. Returns the previous setting.
  static bool set_accelerated(bool on);
  static bool accelerated();

 private:
  void blocks(const uint8_t* p, size_t n);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;  // bytes
};

// Lower-case hex, 64 characters.
std::string to_hex(const Sha256::Digest& d);

}  // namespace ingot
