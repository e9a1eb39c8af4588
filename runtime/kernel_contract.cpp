#include "runtime/kernel_contract.h"

#include <algorithm>

#include "runtime/bundle_format.h"

namespace ingot {
namespace {

constexpr uint8_t kContractMagic[8] = {'I', 'N', 'G', 'O', 'T', 'K', 'C', '1'};
constexpr uint64_t kWordsPerArg = 7;
constexpr uint64_t kMaxArgs = 64;

}  // namespace

std::vector<uint8_t> encode_contract(const KernelContract& c) {
  std::vector<uint8_t> out(8 * (2 + kWordsPerArg * c.args.size()));
  std::copy(kContractMagic, kContractMagic + 8, out.begin());
  bundle::put_u64(out.data() + 8, c.args.size());
  uint8_t* p = out.data() + 16;
  for (const ArgContract& a : c.args) {
    const uint64_t words[kWordsPerArg] = {static_cast<uint64_t>(a.access), a.align, static_cast<uint64_t>(a.fixed),
                                          static_cast<uint64_t>(a.per_row), a.dims_mask, static_cast<uint64_t>(a.cap),
                                          static_cast<uint64_t>(a.multiple)};
    for (uint64_t w : words) {
      bundle::put_u64(p, w);
      p += 8;
    }
  }
  return out;
}

StatusOr<KernelContract> decode_contract(std::span<const uint8_t> bytes) {
  if (bytes.size() < 16 || !std::equal(kContractMagic, kContractMagic + 8, bytes.begin()))
    return Status::Error("its contract is not a kernel contract");
  const uint64_t n = bundle::get_u64(bytes.data() + 8);
  if (n > kMaxArgs || bytes.size() != 8 * (2 + kWordsPerArg * n)) return Status::Error("its contract has the wrong size");
  KernelContract c;
  const uint8_t* p = bytes.data() + 16;
  for (uint64_t i = 0; i < n; ++i, p += 8 * kWordsPerArg) {
    ArgContract a;
    const uint64_t access = bundle::get_u64(p);
    a.align = bundle::get_u64(p + 8);
    a.fixed = static_cast<int64_t>(bundle::get_u64(p + 16));
    a.per_row = static_cast<int64_t>(bundle::get_u64(p + 24));
    a.dims_mask = bundle::get_u64(p + 32);
    a.cap = static_cast<int64_t>(bundle::get_u64(p + 40));
    a.multiple = static_cast<int64_t>(bundle::get_u64(p + 48));
    const std::string slot = "slot " + std::to_string(i);
    if (access > static_cast<uint64_t>(ArgAccess::scratch)) return Status::Error("its contract's " + slot + " has an unknown access");
    a.access = static_cast<ArgAccess>(access);
    if (a.align == 0 || a.align > 4096 || (a.align & (a.align - 1)) != 0)
      return Status::Error("its contract's " + slot + " has an alignment that is not a power of two up to 4096");
    if (a.fixed < 0 || a.per_row < 0 || a.cap < 0 || a.multiple < 1 || a.multiple > (int64_t{1} << 20) || a.dims_mask >= 16)
      return Status::Error("its contract's " + slot + " is out of range");
    c.args.push_back(a);
  }
  return c;
}

bool contract_bytes(const ArgContract& a, int64_t rows, int64_t* bytes) {
  if (rows < 0) return false;
  if (a.cap > 0) rows = std::min(rows, a.cap);
  int64_t rounded = 0, scaled = 0;
  if (__builtin_add_overflow(rows, a.multiple - 1, &rounded)) return false;
  rounded = rounded / a.multiple * a.multiple;
  if (__builtin_mul_overflow(rounded, a.per_row, &scaled)) return false;
  return !__builtin_add_overflow(scaled, a.fixed, bytes);
}

}  // namespace ingot
