#include "runtime/cpu_features.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#define INGOT_X86 1
#endif

namespace ingot {
namespace {

// Where a feature's bit lives: cpuid leaf/subleaf, register, bit. `save` says which register
// state the OS must enable (xgetbv) for the feature to be usable.
enum Reg { EAX, EBX, ECX, EDX };
enum Save { kNone, kAvx, kAvx512, kAmx };
struct Bit {
  const char* name;
  uint32_t leaf, subleaf;
  Reg reg;
  int bit;
  Save save;
};

constexpr Bit kBits[] = {
    // leaf 1
    {"sse3", 1, 0, ECX, 0, kNone},        {"pclmul", 1, 0, ECX, 1, kNone},
    {"ssse3", 1, 0, ECX, 9, kNone},       {"fma", 1, 0, ECX, 12, kAvx},
    {"cx16", 1, 0, ECX, 13, kNone},       {"sse4.1", 1, 0, ECX, 19, kNone},
    {"sse4.2", 1, 0, ECX, 20, kNone},     {"crc32", 1, 0, ECX, 20, kNone},  // LLVM: crc32 = sse4.2
    {"movbe", 1, 0, ECX, 22, kNone},      {"popcnt", 1, 0, ECX, 23, kNone},
    {"aes", 1, 0, ECX, 25, kNone},        {"xsave", 1, 0, ECX, 26, kNone},
    {"avx", 1, 0, ECX, 28, kAvx},         {"f16c", 1, 0, ECX, 29, kAvx},
    {"rdrnd", 1, 0, ECX, 30, kNone},      {"cx8", 1, 0, EDX, 8, kNone},
    {"cmov", 1, 0, EDX, 15, kNone},       {"mmx", 1, 0, EDX, 23, kNone},
    {"fxsr", 1, 0, EDX, 24, kNone},       {"sse", 1, 0, EDX, 25, kNone},
    {"sse2", 1, 0, EDX, 26, kNone},
    // leaf 7, subleaf 0
    {"fsgsbase", 7, 0, EBX, 0, kNone},    {"sgx", 7, 0, EBX, 2, kNone},
    {"bmi", 7, 0, EBX, 3, kNone},         {"avx2", 7, 0, EBX, 5, kAvx},
    {"bmi2", 7, 0, EBX, 8, kNone},        {"invpcid", 7, 0, EBX, 10, kNone},
    {"rtm", 7, 0, EBX, 11, kNone},        {"avx512f", 7, 0, EBX, 16, kAvx512},
    {"evex512", 7, 0, EBX, 16, kAvx512},  // LLVM: 512-bit EVEX, implied by avx512f
    {"avx512dq", 7, 0, EBX, 17, kAvx512}, {"rdseed", 7, 0, EBX, 18, kNone},
    {"adx", 7, 0, EBX, 19, kNone},        {"avx512ifma", 7, 0, EBX, 21, kAvx512},
    {"clflushopt", 7, 0, EBX, 23, kNone}, {"clwb", 7, 0, EBX, 24, kNone},
    {"avx512pf", 7, 0, EBX, 26, kAvx512}, {"avx512er", 7, 0, EBX, 27, kAvx512},
    {"avx512cd", 7, 0, EBX, 28, kAvx512}, {"sha", 7, 0, EBX, 29, kNone},
    {"avx512bw", 7, 0, EBX, 30, kAvx512}, {"avx512vl", 7, 0, EBX, 31, kAvx512},
    {"prefetchwt1", 7, 0, ECX, 0, kNone}, {"avx512vbmi", 7, 0, ECX, 1, kAvx512},
    {"pku", 7, 0, ECX, 4, kNone},  // OSPKE: enabled by the OS
    {"waitpkg", 7, 0, ECX, 5, kNone},     {"avx512vbmi2", 7, 0, ECX, 6, kAvx512},
    {"shstk", 7, 0, ECX, 7, kNone},       {"gfni", 7, 0, ECX, 8, kNone},
    {"vaes", 7, 0, ECX, 9, kAvx},         {"vpclmulqdq", 7, 0, ECX, 10, kAvx},
    {"avx512vnni", 7, 0, ECX, 11, kAvx512}, {"avx512bitalg", 7, 0, ECX, 12, kAvx512},
    {"avx512vpopcntdq", 7, 0, ECX, 14, kAvx512}, {"rdpid", 7, 0, ECX, 22, kNone},
    {"kl", 7, 0, ECX, 23, kNone},         {"cldemote", 7, 0, ECX, 25, kNone},
    {"movdiri", 7, 0, ECX, 27, kNone},    {"movdir64b", 7, 0, ECX, 28, kNone},
    {"enqcmd", 7, 0, ECX, 29, kNone},     {"uintr", 7, 0, EDX, 5, kNone},
    {"avx512vp2intersect", 7, 0, EDX, 8, kAvx512}, {"serialize", 7, 0, EDX, 14, kNone},
    {"tsxldtrk", 7, 0, EDX, 16, kNone},   {"pconfig", 7, 0, EDX, 18, kNone},
    {"amx-bf16", 7, 0, EDX, 22, kAmx},    {"avx512fp16", 7, 0, EDX, 23, kAvx512},
    {"amx-tile", 7, 0, EDX, 24, kAmx},    {"amx-int8", 7, 0, EDX, 25, kAmx},
    // leaf 7, subleaf 1
    {"sha512", 7, 1, EAX, 0, kAvx},       {"sm3", 7, 1, EAX, 1, kAvx},
    {"sm4", 7, 1, EAX, 2, kAvx},          {"raoint", 7, 1, EAX, 3, kNone},
    {"avxvnni", 7, 1, EAX, 4, kAvx},      {"avx512bf16", 7, 1, EAX, 5, kAvx512},
    {"cmpccxadd", 7, 1, EAX, 7, kNone},   {"amx-fp16", 7, 1, EAX, 21, kAmx},
    {"hreset", 7, 1, EAX, 22, kNone},     {"avxifma", 7, 1, EAX, 23, kAvx},
    {"avxvnniint8", 7, 1, EDX, 4, kAvx},  {"avxneconvert", 7, 1, EDX, 5, kAvx},
    {"amx-complex", 7, 1, EDX, 8, kAmx},  {"avxvnniint16", 7, 1, EDX, 10, kAvx},
    {"prefetchi", 7, 1, EDX, 14, kNone},
    // leaf 0xd, subleaf 1
    {"xsaveopt", 0xd, 1, EAX, 0, kNone},  {"xsavec", 0xd, 1, EAX, 1, kNone},
    {"xsaves", 0xd, 1, EAX, 3, kNone},
    // extended leaves
    {"sahf", 0x80000001, 0, ECX, 0, kNone},  {"lzcnt", 0x80000001, 0, ECX, 5, kNone},
    {"sse4a", 0x80000001, 0, ECX, 6, kNone}, {"prfchw", 0x80000001, 0, ECX, 8, kNone},
    {"xop", 0x80000001, 0, ECX, 11, kAvx},   {"lwp", 0x80000001, 0, ECX, 15, kNone},
    {"fma4", 0x80000001, 0, ECX, 16, kAvx},  {"tbm", 0x80000001, 0, ECX, 21, kNone},
    {"mwaitx", 0x80000001, 0, ECX, 29, kNone}, {"64bit", 0x80000001, 0, EDX, 29, kNone},
    {"clzero", 0x80000008, 0, EBX, 0, kNone}, {"rdpru", 0x80000008, 0, EBX, 4, kNone},
    {"wbnoinvd", 0x80000008, 0, EBX, 9, kNone},
};

#ifdef INGOT_X86
// Asks the kernel for AMX tile data once per process (every thread may then use the tiles).
bool amx_granted() {
  static const bool granted = [] {
    constexpr long kArchReqXcompPerm = 0x1023;  // ARCH_REQ_XCOMP_PERM
    constexpr long kXfeatureXtiledata = 18;     // XFEATURE_XTILEDATA
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return granted;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#ifdef INGOT_X86
  auto cpuid = [](uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    r[0] = r[1] = r[2] = r[3] = 0;
    const uint32_t max = __get_cpuid_max(leaf & 0x80000000u, nullptr);
    if (max < leaf) return;
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
  };
  uint32_t l1[4];
  cpuid(1, 0, l1);
  const bool osxsave = (l1[ECX] >> 27) & 1;
  uint64_t xcr0 = 0;
  if (osxsave) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = (uint64_t(hi) << 32) | lo;
  }
  const bool avx_ok = osxsave && (xcr0 & 0x6) == 0x6;                  // XMM, YMM
  const bool avx512_ok = avx_ok && (xcr0 & 0xe0) == 0xe0;               // opmask, ZMM
  const bool amx_ok = osxsave && (xcr0 & 0x60000) == 0x60000;           // TILECFG, TILEDATA
  // cpuid traps to the hypervisor in a VM: ask each leaf once.
  struct Leaf {
    uint32_t leaf, subleaf, r[4];
  };
  std::vector<Leaf> leaves;
  for (const Bit& b : kBits) {
    const Leaf* found = nullptr;
    for (const Leaf& l : leaves)
      if (l.leaf == b.leaf && l.subleaf == b.subleaf) found = &l;
    if (!found) {
      leaves.push_back({b.leaf, b.subleaf, {}});
      cpuid(b.leaf, b.subleaf, leaves.back().r);
      found = &leaves.back();
    }
    const uint32_t* r = found->r;
    if (!((r[b.reg] >> b.bit) & 1)) continue;
    if ((b.save == kAvx && !avx_ok) || (b.save == kAvx512 && !avx512_ok)) continue;
    // Without the OS's tile state (XCR0) the first tile instruction faults: AMX counts as absent.
    if (b.save == kAmx && !amx_ok) {
      f.amx_refused = true;
      continue;
    }
    f.present.push_back(b.name);
  }
#endif
  std::sort(f.present.begin(), f.present.end());
  f.present.erase(std::unique(f.present.begin(), f.present.end()), f.present.end());
  return f;
}

}  // namespace

bool CpuFeatures::known(const std::string& name) {
  for (const Bit& b : kBits)
    if (name == b.name) return true;
  return false;
}

bool CpuFeatures::has(const std::string& name) const {
  return std::binary_search(present.begin(), present.end(), name);
}

const CpuFeatures& host_cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

const CpuFeatures& usable_cpu_features() {
  // Linux hands out the 8 KiB of tile state only to a process that asks (arch_prctl, 5.16+);
  // without that grant the first tile instruction faults.
  static const CpuFeatures f = [] {
    CpuFeatures u = host_cpu_features();
#ifdef INGOT_X86
    if (!u.has("amx-tile") || amx_granted()) return u;
#else
    if (!u.has("amx-tile")) return u;
#endif
    u.present.erase(std::remove_if(u.present.begin(), u.present.end(),
                                   [](const std::string& n) { return n.rfind("amx-", 0) == 0; }),
                    u.present.end());
    u.amx_refused = true;
    return u;
  }();
  return f;
}

bool amx_grant_refused() { return usable_cpu_features().amx_refused; }

namespace {
std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}
std::vector<std::string> plus(std::vector<std::string> base, std::initializer_list<const char*> more) {
  for (const char* f : more) base.emplace_back(f);
  return sorted(std::move(base));
}
}  // namespace

const std::vector<CpuTier>& cpu_tiers() {
  // Exactly the instruction-set features LLVM 19 enables for each CPU name plus, for a tier that
  // is not a psABI level, the ones it adds (a codegen test checks that against LLVM itself);
  // LLVM's tuning flags are not features a CPU can lack.
  static const std::vector<CpuTier> tiers = [] {
    const std::vector<std::string> v1 = {"64bit", "cmov", "cx8", "fxsr", "mmx", "sse", "sse2"};
    const auto v2 = plus(v1, {"crc32", "cx16", "popcnt", "sahf", "sse3", "sse4.1", "sse4.2", "ssse3"});
    const auto v3 = plus(v2, {"avx", "avx2", "bmi", "bmi2", "f16c", "fma", "lzcnt", "movbe", "xsave"});
    const auto v4 = plus(v3, {"avx512bw", "avx512cd", "avx512dq", "avx512f", "avx512vl", "evex512"});
    const auto avx512 = plus(v4, {"avx512vnni"});
    const auto amx = plus(avx512, {"amx-int8", "amx-tile"});
    return std::vector<CpuTier>{
        {"x86-64-v2", "x86-64-v2", "SSE4.2, POPCNT (Nehalem, Bulldozer and later)", v2},
        {"x86-64-v3", "x86-64-v3", "AVX2, FMA, F16C, BMI2 (Haswell, Zen 1 and later)", v3},
        {"x86-64-v4", "x86-64-v4", "AVX-512 F/BW/CD/DQ/VL (Skylake-SP, Zen 4 and later)", v4},
        // Not a psABI level: x86-64-v4 plus VNNI's vpdpbusd (the 8-bit dot products in one step).
        {"avx512", "x86-64-v4", "x86-64-v4 + AVX-512 VNNI (Cascade Lake, Ice Lake, Sapphire Rapids, Zen 4 and later)", avx512},
        // avx512 plus AMX-INT8 tiles (tdpbssd: 16x16 int32 from 16x64 int8 in one step), for prompt
        // processing; counts only when the OS grants the process tile state.
        {"amx", "x86-64-v4", "avx512 + AMX-INT8 (Sapphire Rapids, Granite Rapids and later)", amx},
    };
  }();
  return tiers;
}

const CpuTier* find_cpu_tier(const std::string& name) {
  for (const CpuTier& t : cpu_tiers())
    if (name == t.name) return &t;
  return nullptr;
}

const CpuTier* best_cpu_tier(const CpuFeatures& cpu) {
  const CpuTier* best = nullptr;
  for (const CpuTier& t : cpu_tiers())
    if (std::all_of(t.features.begin(), t.features.end(), [&](const std::string& f) { return cpu.has(f); })) best = &t;
  return best;
}

std::string cpu_tier_names() {
  std::string s;
  for (const CpuTier& t : cpu_tiers()) s += (s.empty() ? "" : ", ") + std::string(t.name);
  return s;
}

std::string check_cpu_features(const std::vector<std::string>& required, const std::string& tier) {
  return check_cpu_features(required, tier, host_cpu_features());
}

std::string check_cpu_features(const std::vector<std::string>& required, const std::string& tier,
                               const CpuFeatures& cpu) {
  std::string missing, unknown;
  for (std::string name : required) {
    if (name.empty() || name[0] == '-') continue;
    if (name[0] == '+') name.erase(0, 1);
    if (!CpuFeatures::known(name)) unknown += (unknown.empty() ? "" : ", ") + name;
    else if (!cpu.has(name)) missing += (missing.empty() ? "" : ", ") + name;
  }
  if (missing.empty() && unknown.empty()) return "";
  const std::string of_tier = tier.empty() ? "" : " (tier " + tier + ")";
  std::string msg;
  if (!missing.empty()) msg = "this CPU lacks feature(s) the kernels were compiled for" + of_tier + ": " + missing;
  if (!unknown.empty())
    msg += (msg.empty() ? "" : "; ") + std::string("the bundle requires CPU feature(s) this runtime cannot check") +
           (msg.empty() ? of_tier : "") + ": " + unknown;
  const CpuTier* best = best_cpu_tier(cpu);
  msg += best ? "; this CPU runs tier " + std::string(best->name) + ": recompile with --target " + best->name
              : "; this CPU is below every tier Ingot compiles for (" + cpu_tier_names() + ")";
  return msg;
}

}  // namespace ingot
