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
#include "runtime/cpu_features.h"
#include "runtime/kernel_library.h"
#include "runtime/proto/bundle.pb.h"
#include "runtime/signature.h"

namespace ingot {

struct BundleSection {
  uint32_t kind = 0;  // bundle::SectionKind, or a kind this runtime does not know
  uint64_t offset = 0, size = 0;
  std::array<uint8_t, 32> sha256{};
};

// The kernels compiled for one CPU tier, in their own kernels section (manifest.kernel_sets). A
// bundle from before kernel sets has one, described by its provenance.
struct KernelSet {
  std::string tier;                   // "x86-64-v3"; an old bundle without a tier: its LLVM CPU
  std::string llvm_cpu;
  std::vector<std::string> features;  // every feature the code may use (LLVM names)
  int section = -1;                   // index into Bundle::sections(); -1: no kernels section
  uint64_t size = 0;                  // bytes of that section
};

struct BundleOpenOptions {
  // Refuse a bundle none of whose kernel sets this host runs (or whose requested set it cannot
  // run). `ingot info` turns it off to describe a bundle made for another CPU; anything that runs
  // kernels must leave it on.
  bool check_cpu = true;
  // The kernel set to run, by tier name. Empty: $INGOT_TIER when set, otherwise the most
  // demanding set this host runs.
  std::string tier;
  // When set, the bundle must carry a valid signature by one of these keys: anything else is
  // refused right after the section table is read, before the manifest is parsed (require_signature).
  const TrustedKeys* trusted_keys = nullptr;
  // Read the file into private memory backed by transparent huge pages instead of mapping it,
  // where the kernel offers them and the file takes at most half of MemAvailable (BundleResidency;
  // EngineOptions::huge_pages). Mapped otherwise, or if the copy fails.
  bool huge_pages = false;
};

// How an opened bundle's bytes are held.
enum class BundleResidency {
  mapped,      // a private read-only mapping of the file (pages shared with the page cache)
  huge_pages,  // copied into anonymous memory advised for 2 MiB transparent huge pages
  heap,        // copied from bytes in memory (Bundle::from_bytes)
};
const char* bundle_residency_name(BundleResidency r);
// Whether this system hands out transparent huge pages to memory that asks for them
// (/sys/kernel/mm/transparent_hugepage/enabled is "always" or "madvise").
bool transparent_huge_pages_available();
// `bytes` of zeroed private memory, 2 MiB-aligned and advised for transparent huge pages (so every
// whole 2 MiB of it can be one page); munmap(p, bytes) releases it. Null if mmap fails.
void* huge_page_memory(size_t bytes);

// A bundle's signature section, checked (Bundle::check_signature).
struct BundleSignatureCheck {
  enum class State { unsigned_bundle, invalid, valid } state = State::unsigned_bundle;
  std::string problem;      // invalid: why
  bool has_signer = false;  // the section was readable: signer names the key it claims
  PublicKey signer;         // the key and comment stored in the bundle
  std::string fingerprint;  // key_fingerprint(signer.key)
};

// Which of `sets` runs on `cpu`: the one of tier `requested` (an error if the bundle has none or
// the CPU lacks one of its features), or without a request the most demanding one the CPU runs.
// `requested_by` names where a request came from in messages ("INGOT_TIER"; empty for an option).
struct KernelSetChoice {
  int set = -1;               // index into sets; -1: none chosen (problem says why) or no sets
  std::string problem;        // why no set runs, naming the bundle's tiers and the CPU's best tier
  StatusCode code = StatusCode::ok;  // of the problem: invalid_argument (no such set) or unsupported
  std::string note;           // worth a line on stderr: AMX present but not granted, so a lesser set runs
};
KernelSetChoice choose_kernel_set(const std::vector<KernelSet>& sets, const std::string& requested,
                                  const std::string& requested_by, const CpuFeatures& cpu);

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
  uint32_t format_version() const { return format_version_; }
  BundleResidency residency() const { return residency_; }
  const pb::Manifest& manifest() const { return manifest_; }
  const std::vector<BundleSection>& sections() const { return sections_; }
  // The first section of a kind, or null.
  const BundleSection* find_section(bundle::SectionKind kind) const;
  std::span<const uint8_t> bytes(const BundleSection& s) const { return {data_ + s.offset, s.size}; }

  // Recomputes every section's SHA-256; an error names the first bad section.
  Status verify() const;
  // Recomputes section i's SHA-256 (Engine::load checks the manifest's and load_kernels the
  // kernels' on every load: small sections, cheap).
  Status verify_section(size_t i) const;

  // The signature section (kind 4, last), if any: whether its Ed25519 signature over every byte
  // before it is valid. Reads the whole file once (SHA-256).
  BundleSignatureCheck check_signature() const;
  // Ok only when the signature is valid and its key is in `keys`; otherwise an error naming the
  // bundle and the reason (unsigned, invalid, or an untrusted signer).
  Status require_signature(const TrustedKeys& keys) const;
  // The same for a check already made.
  Status require_signature(const BundleSignatureCheck& check, const TrustedKeys& keys) const;
  // The index of the signature section in sections(), or -1.
  int signature_section() const { return signature_; }

  // Every kernel set, most portable first (empty: the bundle has no kernels and names no tier).
  const std::vector<KernelSet>& kernel_sets() const { return kernel_sets_; }
  // The set chosen at open (BundleOpenOptions::tier, $INGOT_TIER, or the best this host runs):
  // an index into kernel_sets(), or -1 (none runs here: check_cpu() says why; or there are none).
  int chosen_kernel_set() const { return chosen_; }
  // The chosen set's tier; "" when none.
  std::string tier() const { return chosen_ >= 0 ? kernel_sets_[size_t(chosen_)].tier : std::string(); }
  // "" when a kernel set was chosen (or there is none to choose), otherwise why none runs here.
  std::string check_cpu() const { return choice_.problem; }
  // "" when this host runs kernel set `set`, otherwise the features it lacks.
  std::string check_cpu(int set) const;
  // A remark about the choice worth printing (AMX present but not granted), or "".
  const std::string& kernel_set_note() const { return choice_.note; }

  // Weights: manifest().tensors(i) lives at tensor_data(i), 64-byte aligned, in the mapping.
  int tensor_count() const { return manifest_.tensors_size(); }
  const uint8_t* tensor_data(int i) const;
  // Index of the first tensor called `name` (with `layout`, if not empty), or -1.
  int find_tensor(std::string_view name, std::string_view layout = {}) const;

  // Loads the chosen kernel set's section (memfd + dlopen) after checking its SHA-256; symbols are
  // looked up by name.
  StatusOr<std::unique_ptr<KernelLibrary>> load_kernels() const;
  // Loads kernel set `set` (an index into kernel_sets()), whatever this host runs: loading runs no
  // kernel code, calling a kernel the CPU cannot run would fault.
  StatusOr<std::unique_ptr<KernelLibrary>> load_kernels(int set) const;

 private:
  Bundle() = default;
  Status parse(const BundleOpenOptions& options);
  Status parse_kernel_sets();
  // "<name>: msg".
  Status fail(const std::string& msg, StatusCode code = StatusCode::invalid_argument) const;

  std::string name_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  uint32_t format_version_ = 0;
  void* map_ = nullptr;  // mmap'ed file or huge-page copy (map_bytes_ long), or
  size_t map_bytes_ = 0;
  void* heap_ = nullptr; // aligned copy (from_bytes)
  BundleResidency residency_ = BundleResidency::mapped;
  std::vector<BundleSection> sections_;
  pb::Manifest manifest_;
  const uint8_t* weights_ = nullptr;
  std::vector<KernelSet> kernel_sets_;
  KernelSetChoice choice_;
  int chosen_ = -1;
  int signature_ = -1;
};

}  // namespace ingot
