#include "runtime/bundle.h"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/cpu_features.h"
#include "runtime/sha256.h"

namespace ingot {

using namespace bundle;

namespace {

std::string u64s(uint64_t v) { return std::to_string(v); }

// a + b <= limit without overflow.
bool fits(uint64_t a, uint64_t b, uint64_t limit) { return a <= limit && b <= limit - a; }

// Whether a kernel set's code uses AMX tiles (and so needs the process's grant of tile state).
bool needs_amx(const KernelSet& set) {
  return std::find(set.features.begin(), set.features.end(), "amx-tile") != set.features.end();
}

}  // namespace

Bundle::~Bundle() {
  if (map_) ::munmap(map_, map_bytes_);
  std::free(heap_);
}

const char* bundle_residency_name(BundleResidency r) {
  switch (r) {
    case BundleResidency::mapped: return "mapped";
    case BundleResidency::huge_pages: return "huge pages";
    case BundleResidency::heap: return "heap";
  }
  return "?";
}

namespace {
// The start of a small kernel file (/proc, /sys), at most 4 KiB; empty if it cannot be read.
std::string read_kernel_file(const char* path) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  char buf[4096];
  const ssize_t n = ::read(fd, buf, sizeof(buf));
  ::close(fd);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}
}  // namespace

bool transparent_huge_pages_available() {
  // "always [madvise] never": the bracketed word is the mode.
  static const bool available = [] {
    const std::string mode = read_kernel_file("/sys/kernel/mm/transparent_hugepage/enabled");
    return mode.find("[always]") != std::string::npos || mode.find("[madvise]") != std::string::npos;
  }();
  return available;
}

namespace {

constexpr size_t kHugePage = size_t{2} << 20;

// MemAvailable from /proc/meminfo in bytes (memory the kernel can hand out without swapping,
// reclaimable page cache included); -1 if unknown.
int64_t memory_available_bytes() {
  const std::string info = read_kernel_file("/proc/meminfo");
  const size_t at = info.find("MemAvailable:");
  long long kib = -1;
  if (at == std::string::npos || std::sscanf(info.c_str() + at, "MemAvailable: %lld kB", &kib) != 1 || kib < 0) return -1;
  return static_cast<int64_t>(kib) * 1024;
}

}  // namespace

void* huge_page_memory(size_t bytes) {
  void* raw = ::mmap(nullptr, bytes + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  // Trim to a 2 MiB-aligned range of `bytes` bytes.
  const uintptr_t start = (reinterpret_cast<uintptr_t>(raw) + kHugePage - 1) & ~(uintptr_t{kHugePage} - 1);
  const size_t head = start - reinterpret_cast<uintptr_t>(raw);
  if (head) ::munmap(raw, head);
  if (kHugePage - head) ::munmap(reinterpret_cast<void*>(start + bytes), kHugePage - head);
  ::madvise(reinterpret_cast<void*>(start), bytes, MADV_HUGEPAGE);
  return reinterpret_cast<void*>(start);
}

namespace {

// The file's bytes in private anonymous memory advised for transparent huge pages, 2 MiB-aligned
// so that every whole 2 MiB of it can be one page; read-only once filled. Null (errno set) if the
// memory or a read fails. Why: a mapped file's pages are folios of whatever size the page cache
// made when it filled them, so the same bundle streamed its weights through 4 KiB or 2 MiB TLB
// entries depending on how the file was written or read (on a VM each 4 KiB miss is a two-level
// page walk): AMD Zen 5, tinyllama-1.1b q4_0, 2 threads, 8 sessions decoding together 252-263
// tok/s from a file cached in small folios, 303-327 from this copy in 6 of 7 runs
// (docs/benchmarks.md).
void* read_into_huge_pages(int fd, uint64_t size, size_t* bytes) {
  const size_t want = (static_cast<size_t>(size) + kHugePage - 1) / kHugePage * kHugePage;
  void* p = huge_page_memory(want);
  if (!p) return nullptr;
  for (uint64_t off = 0; off < size;) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(size - off, uint64_t{64} << 20));
    const ssize_t r = ::pread(fd, static_cast<uint8_t*>(p) + off, chunk, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      const int e = r == 0 ? EIO : errno;  // the file shrank under us
      ::munmap(p, want);
      errno = e;
      return nullptr;
    }
    off += static_cast<uint64_t>(r);
  }
  ::mprotect(p, want, PROT_READ);
  *bytes = want;
  return p;
}

}  // namespace

Status Bundle::fail(const std::string& msg, StatusCode code) const { return Status::Error(code, name_ + ": " + msg); }

StatusOr<std::unique_ptr<Bundle>> Bundle::open(const std::string& path, const BundleOpenOptions& options) {
  std::unique_ptr<Bundle> b(new Bundle());
  b->name_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return b->fail(std::string("cannot open: ") + std::strerror(errno), StatusCode::io);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return b->fail("not a regular file");
  }
  b->size_ = static_cast<uint64_t>(st.st_size);
  if (b->size_ < FileHeader::kSize) {
    ::close(fd);
    return b->fail("truncated: " + u64s(b->size_) + " bytes, smaller than a bundle header (" +
                       u64s(FileHeader::kSize) + ")");
  }
  // The copy only where the system has huge pages and the bundle takes at most half of the memory
  // available (the page cache it is read from counts as available); else, or should the copy
  // fail, the mapping serves.
  const bool copy = options.huge_pages && transparent_huge_pages_available() && [&] {
    const int64_t available = memory_available_bytes();
    return available > 0 && b->size_ <= static_cast<uint64_t>(available / 2);
  }();
  void* m = copy ? read_into_huge_pages(fd, b->size_, &b->map_bytes_) : nullptr;
  if (m) {
    b->residency_ = BundleResidency::huge_pages;
  } else {
    m = ::mmap(nullptr, b->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      return b->fail(std::string("cannot map: ") + std::strerror(e), StatusCode::io);
    }
    b->map_bytes_ = b->size_;
  }
  ::close(fd);
  b->map_ = m;
  b->data_ = static_cast<const uint8_t*>(m);
  INGOT_RETURN_IF_ERROR(b->parse(options));
  return b;
}

StatusOr<std::unique_ptr<Bundle>> Bundle::from_bytes(const std::string& name, std::string_view bytes,
                                                     const BundleOpenOptions& options) {
  std::unique_ptr<Bundle> b(new Bundle());
  b->name_ = name;
  b->size_ = bytes.size();
  if (b->size_ < FileHeader::kSize) {
    return b->fail("truncated: " + u64s(b->size_) + " bytes, smaller than a bundle header (" +
                       u64s(FileHeader::kSize) + ")");
  }
  b->heap_ = std::aligned_alloc(kSectionAlignment, align_up(b->size_, kSectionAlignment));
  if (!b->heap_) {
    return b->fail("out of memory", StatusCode::internal);
  }
  std::memcpy(b->heap_, bytes.data(), bytes.size());
  b->data_ = static_cast<const uint8_t*>(b->heap_);
  b->residency_ = BundleResidency::heap;
  INGOT_RETURN_IF_ERROR(b->parse(options));
  return b;
}

Status Bundle::parse(const BundleOpenOptions& options) {
  // ---- header
  const FileHeader h = decode_header(data_);
  if (std::memcmp(h.magic, kMagic, sizeof(kMagic)) != 0) return fail("not an Ingot bundle (bad magic)");
  if (h.version < kMinFormatVersion || h.version > kFormatVersion)
    return fail("bundle format version " + std::to_string(h.version) + ", this runtime reads " + std::to_string(kMinFormatVersion) +
                " to " + std::to_string(kFormatVersion));
  format_version_ = h.version;
  if (h.flags & ~kKnownFlags) return fail("unknown header flags 0x" + [&] {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%llx", static_cast<unsigned long long>(h.flags & ~kKnownFlags));
    return std::string(buf);
  }());
  if (h.file_size != size_) {
    if (size_ < h.file_size)
      return fail("truncated: the header says " + u64s(h.file_size) + " bytes, the file has " + u64s(size_));
    return fail("the header says " + u64s(h.file_size) + " bytes, but the file has " + u64s(size_) +
                           " (trailing bytes)");
  }
  if (h.section_count == 0 || h.section_count > kMaxSections)
    return fail("section count " + std::to_string(h.section_count) + " is out of range (1.." +
                           std::to_string(kMaxSections) + ")");
  const uint64_t table_end = FileHeader::kSize + uint64_t(h.section_count) * SectionEntry::kSize;
  if (table_end > size_) return fail("truncated: the section table ends at byte " + u64s(table_end));

  // ---- section table
  sections_.clear();
  signature_ = -1;
  for (uint32_t i = 0; i < h.section_count; ++i) {
    const SectionEntry e = decode_section(data_ + FileHeader::kSize + uint64_t(i) * SectionEntry::kSize);
    const std::string what = "section " + std::to_string(i) + " (" + section_kind_name(e.kind) + ")";
    if (e.offset % kSectionAlignment != 0)
      return fail(what + " at offset " + u64s(e.offset) + " is not aligned to " + u64s(kSectionAlignment));
    if (e.offset < table_end) return fail(what + " at offset " + u64s(e.offset) + " overlaps the section table");
    if (!fits(e.offset, e.size, size_))
      return fail(what + " [" + u64s(e.offset) + ", +" + u64s(e.size) + ") lies outside the file (" +
                             u64s(size_) + " bytes)");
    BundleSection s;
    s.kind = e.kind;
    s.offset = e.offset;
    s.size = e.size;
    std::memcpy(s.sha256.data(), e.sha256, 32);
    for (const BundleSection& o : sections_) {
      if (s.offset < o.offset + o.size && o.offset < s.offset + s.size)
        return fail(what + " overlaps section of kind " + section_kind_name(o.kind));
      // Kernels sections may repeat (one per kernel set); the manifest says which is which.
      if (s.kind == o.kind && (s.kind == uint32_t(SectionKind::manifest) || s.kind == uint32_t(SectionKind::weights) ||
                               s.kind == uint32_t(SectionKind::signature)))
        return fail(what + " appears twice");
    }
    // The signature covers every byte before it: it is the last section and ends the file.
    if (s.kind == uint32_t(SectionKind::signature)) {
      if (i + 1 != h.section_count) return fail(what + " is not the last section of the table");
      if (s.offset + s.size != size_) return fail(what + " does not end the file");
      signature_ = static_cast<int>(i);
    }
    sections_.push_back(s);
  }
  // A bundle that must be signed by a trusted key is checked before anything else is read.
  if (options.trusted_keys) INGOT_RETURN_IF_ERROR(require_signature(*options.trusted_keys));

  // ---- manifest
  const BundleSection* ms = find_section(SectionKind::manifest);
  if (!ms) return fail("no manifest section");
  if (ms->size > static_cast<uint64_t>(INT_MAX)) return fail("the manifest is too large");
  if (!manifest_.ParseFromArray(data_ + ms->offset, static_cast<int>(ms->size)))
    return fail("the manifest does not parse (corrupt section 'manifest'; run verify)");

  const BundleSection* ws = find_section(SectionKind::weights);
  weights_ = ws ? data_ + ws->offset : nullptr;
  const uint64_t wsize = ws ? ws->size : 0;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (int i = 0; i < manifest_.tensors_size(); ++i) {
    const pb::Tensor& t = manifest_.tensors(i);
    const std::string what = "manifest: tensor " + std::to_string(i) + " '" + t.name() + "'";
    if (t.offset() % kTensorAlignment != 0)
      return fail(what + " at offset " + u64s(t.offset()) + " is not " + u64s(kTensorAlignment) + "-byte aligned");
    if (!fits(t.offset(), t.size(), wsize))
      return fail(what + " [" + u64s(t.offset()) + ", +" + u64s(t.size()) +
                             ") lies outside the weights section (" + u64s(wsize) + " bytes)");
    for (int64_t d : t.shape())
      if (d < 0) return fail(what + " has a negative dimension");
    if (t.size() > 0) ranges.push_back({t.offset(), t.size()});
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i - 1].first + ranges[i - 1].second > ranges[i].first)
      return fail("manifest: two tensors overlap at weights offset " + u64s(ranges[i].first));

  const pb::MemoryPlan& plan = manifest_.memory_plan();
  if (plan.arena_bytes() < 0 || plan.state_bytes() < 0 || plan.max_batch() < 0 || plan.max_context() < 0)
    return fail("manifest: the memory plan has a negative size");
  if (plan.alignment() < 0 || (plan.alignment() & (plan.alignment() - 1)) != 0)
    return fail("manifest: the memory plan's alignment " + std::to_string(plan.alignment()) +
                           " is not a power of two");
  for (const auto& b : plan.buffers())
    if (b.offset() < 0 || b.bytes() < 0 || !fits(uint64_t(b.offset()), uint64_t(b.bytes()), uint64_t(plan.arena_bytes())))
      return fail("manifest: buffer '" + b.value() + "' lies outside the arena");
  for (const auto& s : plan.state())
    if (s.offset() < 0 || s.bytes() < 0 || !fits(uint64_t(s.offset()), uint64_t(s.bytes()), uint64_t(plan.state_bytes())))
      return fail("manifest: state slot '" + s.variable() + "' lies outside the state arena");
  for (const auto& call : manifest_.schedule().calls()) {
    for (const auto& a : call.args()) {
      if ((a.has_weight() && a.weight() >= uint32_t(manifest_.tensors_size())) ||
          (a.has_state_slot() && a.state_slot() >= uint32_t(plan.state_size())) ||
          (a.has_input() && a.input() >= uint32_t(manifest_.inputs_size())) ||
          (a.has_output() && a.output() >= uint32_t(manifest_.outputs_size())) ||
          (a.has_arena_offset() && (a.arena_offset() < 0 || a.arena_offset() >= plan.arena_bytes())))
        return fail("manifest: the call of '" + call.symbol() + "' refers to something that does not exist");
    }
  }
  if (manifest_.kernels_size() > 0 && !find_section(SectionKind::kernels))
    return fail("the manifest lists kernels but there is no kernels section");
  INGOT_RETURN_IF_ERROR(parse_kernel_sets());

  std::string requested = options.tier, requested_by;
  if (requested.empty()) {
    if (const char* env = std::getenv("INGOT_TIER"); env && *env) {
      requested = env;
      requested_by = "INGOT_TIER";
    }
  }
  // Only a bundle with AMX code makes the process ask for AMX tile state.
  const bool any_amx = std::any_of(kernel_sets_.begin(), kernel_sets_.end(), [](const KernelSet& k) { return needs_amx(k); });
  choice_ = choose_kernel_set(kernel_sets_, requested, requested_by, any_amx ? usable_cpu_features() : host_cpu_features());
  chosen_ = choice_.set;
  if (options.check_cpu && !choice_.problem.empty()) return fail(choice_.problem, choice_.code);
  return Status::Ok();
}

Status Bundle::parse_kernel_sets() {
  kernel_sets_.clear();
  std::vector<int> kernel_sections;
  for (size_t i = 0; i < sections_.size(); ++i)
    if (sections_[i].kind == uint32_t(SectionKind::kernels)) kernel_sections.push_back(static_cast<int>(i));
  if (manifest_.kernel_sets_size() == 0) {
    // A bundle from before kernel sets: at most one kernels section, for the provenance's tier.
    if (kernel_sections.size() > 1)
      return fail("section " + std::to_string(kernel_sections[1]) +
                  " (kernels) appears twice and the manifest lists no kernel sets");
    const pb::Provenance& pv = manifest_.provenance();
    if (kernel_sections.empty() && pv.target_features().empty() && pv.target_tier().empty() && pv.target_cpu().empty())
      return Status::Ok();
    KernelSet set;
    set.tier = !pv.target_tier().empty() ? pv.target_tier() : pv.target_cpu();
    set.llvm_cpu = pv.target_cpu();
    set.features.assign(pv.target_features().begin(), pv.target_features().end());
    if (!kernel_sections.empty()) {
      set.section = kernel_sections[0];
      set.size = sections_[size_t(set.section)].size;
    }
    kernel_sets_.push_back(std::move(set));
    return Status::Ok();
  }
  for (int i = 0; i < manifest_.kernel_sets_size(); ++i) {
    const pb::KernelSet& ks = manifest_.kernel_sets(i);
    const std::string what = "manifest: kernel set " + std::to_string(i) + " (tier '" + ks.tier() + "')";
    if (ks.tier().empty()) return fail("manifest: kernel set " + std::to_string(i) + " has no tier name");
    if (ks.section() >= sections_.size() || sections_[ks.section()].kind != uint32_t(SectionKind::kernels))
      return fail(what + " names section " + std::to_string(ks.section()) + ", which is not a kernels section");
    if (ks.size() != sections_[ks.section()].size)
      return fail(what + " says " + u64s(ks.size()) + " bytes, its section has " + u64s(sections_[ks.section()].size));
    for (const KernelSet& o : kernel_sets_) {
      if (o.tier == ks.tier()) return fail(what + " appears twice");
      if (o.section == static_cast<int>(ks.section()))
        return fail(what + " shares section " + std::to_string(ks.section()) + " with tier '" + o.tier + "'");
    }
    KernelSet set;
    set.tier = ks.tier();
    set.llvm_cpu = ks.llvm_cpu();
    set.features.assign(ks.features().begin(), ks.features().end());
    set.section = static_cast<int>(ks.section());
    set.size = ks.size();
    kernel_sets_.push_back(std::move(set));
  }
  if (kernel_sets_.size() != kernel_sections.size())
    return fail("the manifest lists " + std::to_string(kernel_sets_.size()) + " kernel set(s) for " +
                std::to_string(kernel_sections.size()) + " kernels section(s)");
  return Status::Ok();
}

namespace {

std::string tier_list(const std::vector<KernelSet>& sets) {
  std::string s;
  for (const KernelSet& k : sets) s += (s.empty() ? "" : ", ") + k.tier;
  return s;
}

}  // namespace

KernelSetChoice choose_kernel_set(const std::vector<KernelSet>& sets, const std::string& requested,
                                  const std::string& requested_by, const CpuFeatures& cpu) {
  KernelSetChoice c;
  if (sets.empty()) return c;
  const CpuTier* best = best_cpu_tier(cpu);
  const std::string best_name = best ? best->name : "none (below " + std::string(cpu_tiers().front().name) + ")";
  const std::string amx_refused =
      cpu.amx_refused ? "; this CPU has AMX, but the OS did not enable or grant AMX tile state for this process" : "";
  if (!requested.empty()) {
    const std::string which = "tier '" + requested + "' (requested" + (requested_by.empty() ? "" : " by " + requested_by) + ")";
    const auto it = std::find_if(sets.begin(), sets.end(), [&](const KernelSet& k) { return k.tier == requested; });
    if (it == sets.end()) {
      c.problem = "the bundle has no kernels for " + which + "; its tiers: " + tier_list(sets) +
                  "; this CPU's best tier: " + best_name;
      if (!find_cpu_tier(requested)) c.problem += "; the CPU tiers are " + cpu_tier_names();
      c.code = StatusCode::invalid_argument;
      return c;
    }
    std::string lacks;
    for (const std::string& f : it->features)
      if (!f.empty() && f[0] != '-' && !cpu.has(f[0] == '+' ? f.substr(1) : f)) lacks += (lacks.empty() ? "" : ", ") + f;
    if (!lacks.empty()) {
      c.problem = which + " does not run on this CPU, which lacks " + lacks + "; the bundle's tiers: " + tier_list(sets) +
                  "; this CPU's best tier: " + best_name + (needs_amx(*it) ? amx_refused : "");
      c.code = StatusCode::unsupported;
      return c;
    }
    c.set = static_cast<int>(it - sets.begin());
    return c;
  }
  // Tiers nest, so the most demanding set the CPU runs is the one with the most features.
  for (size_t i = 0; i < sets.size(); ++i)
    if (check_cpu_features(sets[i].features, sets[i].tier, cpu).empty() &&
        (c.set < 0 || sets[i].features.size() >= sets[size_t(c.set)].features.size()))
      c.set = static_cast<int>(i);
  if (c.set < 0) {
    // The least demanding set says what is missing and which tier to compile for instead.
    size_t least = 0;
    for (size_t i = 1; i < sets.size(); ++i)
      if (sets[i].features.size() < sets[least].features.size()) least = i;
    const std::string why = check_cpu_features(sets[least].features, sets[least].tier, cpu);
    c.problem = sets.size() == 1 ? why : "this CPU runs none of the bundle's tiers (" + tier_list(sets) + "): " + why;
    c.code = StatusCode::unsupported;
    return c;
  }
  if (cpu.amx_refused && !needs_amx(sets[size_t(c.set)]))
    for (const KernelSet& k : sets)
      if (needs_amx(k)) {
        c.note = "this CPU has AMX, but the OS did not enable or grant AMX tile state for this process: running tier " +
                 sets[size_t(c.set)].tier + " instead of " + k.tier;
        break;
      }
  return c;
}

const BundleSection* Bundle::find_section(SectionKind kind) const {
  for (const BundleSection& s : sections_)
    if (s.kind == static_cast<uint32_t>(kind)) return &s;
  return nullptr;
}

Status Bundle::verify() const {
  for (size_t i = 0; i < sections_.size(); ++i) INGOT_RETURN_IF_ERROR(verify_section(i));
  return Status::Ok();
}

Status Bundle::verify_section(size_t i) const {
  assert(i < sections_.size());
  const BundleSection& s = sections_[i];
  const Sha256::Digest d = Sha256::hash(data_ + s.offset, s.size);
  if (std::memcmp(d.data(), s.sha256.data(), 32) != 0) {
    Sha256::Digest want;
    std::memcpy(want.data(), s.sha256.data(), 32);
    return fail("section " + std::to_string(i) + " (" + section_kind_name(s.kind) + ") is corrupt: SHA-256 " +
                to_hex(d) + ", expected " + to_hex(want));
  }
  return Status::Ok();
}

BundleSignatureCheck Bundle::check_signature() const {
  BundleSignatureCheck c;
  if (signature_ < 0) return c;
  c.state = BundleSignatureCheck::State::invalid;
  const BundleSection& s = sections_[size_t(signature_)];
  SignatureBlock block;
  if (!decode_signature(data_ + s.offset, s.size, &block, &c.problem)) return c;
  c.has_signer = true;
  std::memcpy(c.signer.key.data(), block.public_key, 32);
  c.signer.comment = block.comment;
  c.fingerprint = key_fingerprint(c.signer.key);
  // The section's own SHA-256 in the table is not signed (it is computed after signing), so it is
  // checked here: a changed byte of the table entry fails even when the signature still holds.
  if (Status st = verify_section(size_t(signature_)); !st.ok()) {
    c.problem = "the signature section's SHA-256 does not match the section table";
    return c;
  }
  const uint64_t zeroed_at = FileHeader::kSize + uint64_t(signature_) * SectionEntry::kSize + 24;
  StatusOr<std::array<uint8_t, 32>> digest = bundle_signed_digest(data_, s.offset, zeroed_at);
  if (!digest.ok()) {
    c.problem = digest.message();
    return c;
  }
  Ed25519Signature sig;
  std::memcpy(sig.data(), block.signature, 64);
  if (!ed25519_verify(c.signer.key, sig, bundle_signed_message(*digest, block.comment))) {
    c.problem = "the signature does not match the bundle (changed after signing, or a corrupt signature)";
    return c;
  }
  c.state = BundleSignatureCheck::State::valid;
  return c;
}

Status Bundle::require_signature(const TrustedKeys& keys) const { return require_signature(check_signature(), keys); }

Status Bundle::require_signature(const BundleSignatureCheck& c, const TrustedKeys& keys) const {
  const std::string need = " (trusted keys: " + keys.path + ")";
  switch (c.state) {
    case BundleSignatureCheck::State::unsigned_bundle:
      return fail("refused: the bundle is not signed, and a signature by a trusted key is required" + need);
    case BundleSignatureCheck::State::invalid:
      return fail("refused: bad signature: " + c.problem + need);
    case BundleSignatureCheck::State::valid:
      break;
  }
  if (!keys.find(c.signer.key))
    return fail("refused: signed by '" + c.signer.comment + "' (" + c.fingerprint + "), which is not a trusted key" + need);
  return Status::Ok();
}

std::string Bundle::check_cpu(int set) const {
  assert(set >= 0 && size_t(set) < kernel_sets_.size());
  return check_cpu_features(kernel_sets_[size_t(set)].features, kernel_sets_[size_t(set)].tier);
}

const uint8_t* Bundle::tensor_data(int i) const {
  if (i < 0 || i >= manifest_.tensors_size() || !weights_) return nullptr;
  return weights_ + manifest_.tensors(i).offset();
}

int Bundle::find_tensor(std::string_view name, std::string_view layout) const {
  for (int i = 0; i < manifest_.tensors_size(); ++i) {
    const pb::Tensor& t = manifest_.tensors(i);
    if (t.name() == name && (layout.empty() || t.layout() == layout)) return i;
  }
  return -1;
}

StatusOr<std::unique_ptr<KernelLibrary>> Bundle::load_kernels() const {
  if (chosen_ < 0) {
    if (!choice_.problem.empty()) return fail(choice_.problem, choice_.code);
    return fail("no kernels section");
  }
  return load_kernels(chosen_);
}

StatusOr<std::unique_ptr<KernelLibrary>> Bundle::load_kernels(int set) const {
  assert(set >= 0 && size_t(set) < kernel_sets_.size());
  const int section = kernel_sets_[size_t(set)].section;
  if (section < 0) return fail("no kernels section");
  const BundleSection& ks = sections_[size_t(section)];
  // Never load code whose bytes differ from those the section table records.
  INGOT_RETURN_IF_ERROR(verify_section(size_t(section)));
  return KernelLibrary::load(name_, data_ + ks.offset, ks.size);
}

}  // namespace ingot
