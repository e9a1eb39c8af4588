#include "runtime/bundle.h"

#include <algorithm>
#include <cerrno>
#include <climits>
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

}  // namespace

Bundle::~Bundle() {
  if (map_) ::munmap(map_, size_);
  std::free(heap_);
}

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
  void* m = ::mmap(nullptr, b->size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) {
    return b->fail(std::string("cannot map: ") + std::strerror(errno), StatusCode::io);
  }
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
  INGOT_RETURN_IF_ERROR(b->parse(options));
  return b;
}

Status Bundle::parse(const BundleOpenOptions& options) {
  // ---- header
  const FileHeader h = decode_header(data_);
  if (std::memcmp(h.magic, kMagic, sizeof(kMagic)) != 0) return fail("not an Ingot bundle (bad magic)");
  if (h.version != kFormatVersion)
    return fail("bundle format version " + std::to_string(h.version) + ", this runtime reads " +
                           std::to_string(kFormatVersion));
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
      if (s.kind == o.kind && (s.kind == uint32_t(SectionKind::manifest) || s.kind == uint32_t(SectionKind::kernels) ||
                               s.kind == uint32_t(SectionKind::weights)))
        return fail(what + " appears twice");
    }
    sections_.push_back(s);
  }

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

  if (options.check_cpu) {
    const std::string cpu = check_cpu();
    if (!cpu.empty()) return fail(cpu, StatusCode::unsupported);
  }
  return Status::Ok();
}

const BundleSection* Bundle::find_section(SectionKind kind) const {
  for (const BundleSection& s : sections_)
    if (s.kind == static_cast<uint32_t>(kind)) return &s;
  return nullptr;
}

Status Bundle::verify() const {
  for (size_t i = 0; i < sections_.size(); ++i) {
    const BundleSection& s = sections_[i];
    const Sha256::Digest d = Sha256::hash(data_ + s.offset, s.size);
    if (std::memcmp(d.data(), s.sha256.data(), 32) != 0) {
      Sha256::Digest want;
      std::memcpy(want.data(), s.sha256.data(), 32);
      return fail("section " + std::to_string(i) + " (" + section_kind_name(s.kind) +
                             ") is corrupt: SHA-256 " + to_hex(d) + ", expected " + to_hex(want));
    }
  }
  return Status::Ok();
}

std::string Bundle::check_cpu() const {
  const auto& f = manifest_.provenance().target_features();
  const pb::Provenance& pv = manifest_.provenance();
  // Bundles from before tiers name only an LLVM CPU.
  return check_cpu_features(std::vector<std::string>(f.begin(), f.end()),
                            !pv.target_tier().empty() ? pv.target_tier() : pv.target_cpu());
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
  const BundleSection* ks = find_section(SectionKind::kernels);
  if (!ks) return fail("no kernels section");
  return KernelLibrary::load(name_, data_ + ks->offset, ks->size);
}

}  // namespace ingot
