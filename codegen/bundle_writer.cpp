#include "codegen/bundle_writer.h"
#include "codegen/bundle_plan.h"
#include "codegen/bundle_signer.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

#include "codegen/kernel_cache.h"
#include "codegen/kernel_registry.h"
#include "codegen/schedule.h"
#include "codegen/target.h"
#include "ir/model.h"
#include "runtime/atomic_file.h"
#include "runtime/bundle_format.h"
#include "runtime/sha256.h"

namespace ingot {

using namespace bundle;

namespace {

// Sequential output with a running SHA-256 of the current section.
class Out {
 public:
  Out(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  Status write(const void* data, size_t n) {
    sha_.update(data, n);
    const uint8_t* p = static_cast<const uint8_t*>(data);
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return Status::Error(path_ + ": write failed: " + std::strerror(errno));
      }
      p += w;
      n -= static_cast<size_t>(w);
      pos_ += static_cast<uint64_t>(w);
    }
    return Status::Ok();
  }
  Status zeros(uint64_t n) {
    static const uint8_t kZeros[4096] = {};
    while (n > 0) {
      const size_t k = static_cast<size_t>(std::min<uint64_t>(n, sizeof(kZeros)));
      INGOT_RETURN_IF_ERROR(write(kZeros, k));
      n -= k;
    }
    return Status::Ok();
  }
  Status pad_to(uint64_t offset) { return zeros(offset - pos_); }
  void begin_section() { sha_.reset(); }
  Sha256::Digest end_section() { return sha_.finish(); }
  uint64_t pos() const { return pos_; }

 private:
  int fd_;
  std::string path_;
  uint64_t pos_ = 0;
  Sha256 sha_;
};

// Writes a buffer's bytes, descending into the parts of lazy concatenations.
Status write_buffer(Out& out, const Buffer& b) {
  if (!b.parts().empty()) {
    for (const auto& part : b.parts()) INGOT_RETURN_IF_ERROR(write_buffer(out, *part));
    return Status::Ok();
  }
  if (b.size() == 0) return Status::Ok();
  return out.write(b.data(), b.size());
}

Status write_all(int fd, uint64_t offset, const uint8_t* p, size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::Error(path + ": write failed: " + std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return Status::Ok();
}

Status write_file(int fd, const std::string& path, BundleContents& c, BundleWriteStats* stats) {
  // Tensor offsets first: the manifest records them and precedes the weights.
  uint64_t wsize = 0;
  c.manifest.clear_tensors();
  for (const BundleTensor& t : c.tensors) {
    wsize = align_up(wsize, kTensorAlignment);
    pb::Tensor* pt = c.manifest.add_tensors();
    pt->set_name(t.name);
    pt->set_type(t.type);
    for (int64_t d : t.shape) pt->add_shape(d);
    pt->set_offset(wsize);
    pt->set_size(t.size);
    pt->set_layout(t.layout);
    pt->set_kernel(t.kernel);
    if (!t.buffer && !t.produce) return Status::Error(path + ": tensor '" + t.name + "' has no data");
    if (t.buffer && t.buffer->size() != t.size)
      return Status::Error(path + ": tensor '" + t.name + "' has " + std::to_string(t.buffer->size()) +
                           " bytes, declared " + std::to_string(t.size));
    wsize += t.size;
  }
  // Sections: the manifest, one kernels section per set (the manifest names each by index), the weights.
  if (c.without_kernel_sets && c.kernel_sets.size() > 1)
    return Status::Error(path + ": the format without kernel sets holds one kernels section, not " +
                         std::to_string(c.kernel_sets.size()));
  c.manifest.clear_kernel_sets();
  for (size_t k = 0; k < c.kernel_sets.size(); ++k) {
    const BundleKernelSet& set = c.kernel_sets[k];
    if (set.shared_object.empty()) return Status::Error(path + ": the kernels of tier " + set.tier + " are empty");
    if (c.without_kernel_sets) break;
    pb::KernelSet* ks = c.manifest.add_kernel_sets();
    ks->set_tier(set.tier);
    ks->set_llvm_cpu(set.llvm_cpu);
    for (const std::string& f : set.features) ks->add_features(f);
    ks->set_section(static_cast<uint32_t>(1 + k));
    ks->set_size(set.shared_object.size());
  }
  std::string manifest;
  if (!c.manifest.SerializeToString(&manifest)) return Status::Error(path + ": cannot serialize the manifest");

  struct Planned {
    SectionKind kind;
    uint64_t size;
    const std::string* bytes;  // manifest and kernels
  };
  std::vector<Planned> plan = {{SectionKind::manifest, manifest.size(), &manifest}};
  uint64_t kernels_bytes = 0;
  for (const BundleKernelSet& set : c.kernel_sets) {
    plan.push_back({SectionKind::kernels, set.shared_object.size(), &set.shared_object});
    kernels_bytes += set.shared_object.size();
  }
  plan.push_back({SectionKind::weights, wsize, nullptr});
  // Signed: the signature section, last; written once every byte before it is in place.
  const std::string signature = c.signing_key ? signature_placeholder(*c.signing_key) : std::string();
  if (c.signing_key) plan.push_back({SectionKind::signature, signature.size(), &signature});

  std::vector<SectionEntry> table(plan.size());
  uint64_t offset = align_up(FileHeader::kSize + plan.size() * SectionEntry::kSize, kSectionAlignment);
  for (size_t i = 0; i < plan.size(); ++i) {
    table[i].kind = static_cast<uint32_t>(plan[i].kind);
    table[i].offset = offset;
    table[i].size = plan[i].size;
    offset = align_up(offset + plan[i].size, kSectionAlignment);
  }
  const uint64_t file_size = table.back().offset + table.back().size;

  Out out(fd, path);
  for (size_t i = 0; i < plan.size(); ++i) {
    INGOT_RETURN_IF_ERROR(out.pad_to(table[i].offset));
    out.begin_section();
    switch (plan[i].kind) {
      case SectionKind::manifest:
      case SectionKind::kernels:
      case SectionKind::signature:
        INGOT_RETURN_IF_ERROR(out.write(plan[i].bytes->data(), plan[i].bytes->size()));
        break;
      case SectionKind::weights:
        for (size_t k = 0; k < c.tensors.size(); ++k) {
          BundleTensor& t = c.tensors[k];
          INGOT_RETURN_IF_ERROR(out.pad_to(table[i].offset + c.manifest.tensors(static_cast<int>(k)).offset()));
          if (t.buffer) {
            INGOT_RETURN_IF_ERROR(write_buffer(out, *t.buffer));
          } else {
            auto bytes = t.produce();
            if (!bytes.ok()) return bytes.status().with_context(path + ": tensor '" + t.name + "'");
            if (bytes->size() != t.size)
              return Status::Error(path + ": tensor '" + t.name + "' produced " + std::to_string(bytes->size()) +
                                   " bytes, declared " + std::to_string(t.size));
            INGOT_RETURN_IF_ERROR(out.write(bytes->data(), bytes->size()));
          }
          if (c.progress) c.progress(out.pos(), file_size);
        }
        break;
    }
    if (c.progress) c.progress(out.pos(), file_size);
    if (out.pos() != table[i].offset + table[i].size)
      return Status::Error(path + ": internal: section " + section_kind_name(table[i].kind) + " has the wrong size");
    const Sha256::Digest d = out.end_section();
    std::memcpy(table[i].sha256, d.data(), 32);
  }

  // The header and the table, now that the hashes are known.
  std::vector<uint8_t> head(FileHeader::kSize + table.size() * SectionEntry::kSize);
  encode_header_and_table(table.data(), static_cast<uint32_t>(table.size()), file_size, head.data());
  INGOT_RETURN_IF_ERROR(write_all(fd, 0, head.data(), head.size(), path));
  if (c.signing_key)
    INGOT_RETURN_IF_ERROR(write_bundle_signature(fd, path, file_size, static_cast<uint32_t>(table.size() - 1), *c.signing_key));

  if (stats) {
    stats->file_bytes = file_size;
    stats->manifest_bytes = manifest.size();
    stats->kernels_bytes = kernels_bytes;
    stats->weights_bytes = wsize;
  }
  return Status::Ok();
}

}  // namespace

Status write_bundle(const std::string& path, BundleContents& contents, BundleWriteStats* stats) {
  // A temporary name in the same folder (O_EXCL, removed on failure and on SIGINT/SIGTERM), so the
  // final rename is atomic; only a new or regular, writable file is replaced (runtime/atomic_file.h).
  INGOT_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFile> out, AtomicFile::create(path));
  INGOT_RETURN_IF_ERROR(write_file(out->fd(), path, contents, stats));
  return out->commit();
}


// ---------------------------------------------------------------- kernels and tensors of a model
namespace {

StatusOr<std::string> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::Error(path + ": cannot open file");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return Status::Error(path + ": read error");
  return ss.str();
}

// Kernels for the nodes codegen supports, one symbol per distinct spec, in topological order.
}  // namespace


namespace {

StatusOr<BundleKernelPlan> plan_kernels(const Model& model) {
  BundleKernelPlan kp;
  std::map<std::string, size_t> by_key;
  INGOT_ASSIGN_OR_RETURN(std::vector<Node*> order, model.topological_order());
  for (Node* n : order) {
    if (is_last_row_slice(*n)) continue;  // a runtime builtin
    if (!std::any_of(kernel_families().begin(), kernel_families().end(), [&](const KernelFamily* f) { return f->computes(*n); }))
      continue;
    auto spec = kernel_for_node(*n, &model);
    if (!spec.ok()) {
      kp.unsupported++;
      std::string why = spec.message();
      if (auto at = why.find(n->name); at != std::string::npos) why.replace(at, n->name.size(), std::string(n->op_name()));
      kp.unsupported_reasons[why]++;
      continue;
    }
    const std::string key = family_of(*spec).key(*spec);
    auto [it, added] = by_key.emplace(key, kp.specs.size());
    if (added) {
      spec->name = "ingot_k" + std::to_string(kp.specs.size()) + "_" + spec->kind;
      kp.specs.push_back(*spec);
      kp.nodes.emplace_back();
    }
    kp.nodes[it->second].push_back(n->name);
    kp.of_node[n] = it->second;
  }
  return kp;
}

// Compiles the kernels into a private temporary folder and returns the shared object's bytes.
StatusOr<std::string> build_kernels(const std::vector<KernelSpec>& specs, const std::string& cpu, CompileStats* stats) {
  namespace fs = std::filesystem;
  const char* tmp_env = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp_env && *tmp_env ? tmp_env : "/tmp") + "/ingotc-kernels-XXXXXX";
  if (!mkdtemp(tmpl.data())) return Status::Error("cannot create a temporary folder for the kernels: " + tmpl);
  const std::string so = tmpl + "/kernels.so";
  CodegenOptions options;
  options.cpu = cpu;
  Status st = compile_kernels(specs, options, so, stats);
  StatusOr<std::string> bytes = st.ok() ? read_file(so) : StatusOr<std::string>(st);
  std::error_code ec;
  fs::remove_all(tmpl, ec);
  return bytes;
}

}  // namespace

StatusOr<BundleKernels> build_bundle_kernels(const Model& model, pb::Manifest& manifest,
                                             const std::vector<std::string>& tiers, const KernelSetProgress& progress) {
  INGOT_ASSIGN_OR_RETURN(BundleKernelPlan kp, plan_kernels(model));
  BundleKernels out;
  const auto t0 = std::chrono::steady_clock::now();
  if (!kp.specs.empty()) {
    // The same specs for every tier; only the target machine (and so EmitContext's flags) differs.
    // Each tier compiles on its own thread, with its own LLVM context and target machine.
    const size_t n = tiers.size();
    std::vector<Status> results(n);  // per tier, ok or why it failed
    out.sets.resize(n);
    out.set_compile_ms.assign(n, 0);
    std::atomic<size_t> next{0};
    std::mutex progress_mutex;
    const KernelCache cache = KernelCache::from_environment();
    auto work = [&] {
      for (size_t i; (i = next.fetch_add(1)) < n;) {
        BundleKernelSet& set = out.sets[i];
        TargetInfo target;
        if (std::string error; !named_target(tiers[i], &target, &error)) {
          results[i] = Status::Error(error);
          continue;
        }
        set.tier = target.tier;
        set.llvm_cpu = target.cpu;
        set.features = target.features;
        const auto started = std::chrono::steady_clock::now();
        const std::string cache_key = cache.enabled() ? KernelCache::key(kp.specs, set.tier) : std::string();
        std::optional<std::string> cached = cache.load(cache_key);
        StatusOr<std::string> object = cached ? std::move(*cached) : build_kernels(kp.specs, tiers[i], nullptr);
        out.set_compile_ms[i] =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
        if (!object.ok()) {
          results[i] = object.status();
          continue;
        }
        set.from_cache = cached.has_value();
        if (!set.from_cache) {
          if (Status stored = cache.store(cache_key, *object); !stored.ok()) {
            std::lock_guard<std::mutex> lock(progress_mutex);
            if (out.kernel_cache_problem.empty()) out.kernel_cache_problem = stored.message();
          }
        }
        set.shared_object = std::move(*object);
        if (progress) {
          std::lock_guard<std::mutex> lock(progress_mutex);
          progress(set, out.set_compile_ms[i]);
        }
      }
    };
    // The calling thread is one of the workers.
    const size_t workers = std::min<size_t>(n, std::max(1u, std::thread::hardware_concurrency()));
    std::vector<std::thread> threads;
    for (size_t t = 1; t < workers; ++t) threads.emplace_back(work);
    work();
    for (std::thread& t : threads) t.join();
    for (size_t i = 0; i < n; ++i)
      if (!results[i].ok()) return results[i].with_context("kernels for tier " + tiers[i]);
  }
  out.compile_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  out.kernels = kp.specs.size();
  out.nodes_covered = kp.of_node.size();
  out.nodes_without = static_cast<size_t>(kp.unsupported);
  out.without = kp.unsupported_reasons;
  manifest.clear_kernels();
  for (size_t k = 0; k < kp.specs.size(); ++k) {
    auto* pk = manifest.add_kernels();
    pk->set_symbol(kp.specs[k].name);
    pk->set_kind(kp.specs[k].kind);
    pk->set_description(family_of(kp.specs[k]).key(kp.specs[k]));
    for (const auto& n : kp.nodes[k]) pk->add_nodes(n);
  }
  out.plan = std::make_shared<const BundleKernelPlan>(std::move(kp));
  return out;
}

namespace {
// The weight tensors: every Constant of the graph in topological order, as stored ("ggml"), and
// for each kernel that multiplies by it, once packed in that kernel's layout. A constant only used
// by kernels is stored packed only.
}  // namespace

StatusOr<std::vector<BundleTensor>> bundle_tensors(const Model& model, const BundleKernels& kernels) {
  static const BundleKernelPlan kEmpty;
  const BundleKernelPlan& kp = kernels.plan ? *kernels.plan : kEmpty;
  std::vector<BundleTensor> out;
  INGOT_ASSIGN_OR_RETURN(std::vector<Node*> order, model.topological_order());
  for (Node* n : order) {
    if (!n->is(Op::Constant) || !n->constant) continue;
    const Tensor& t = *n->constant;
    std::map<size_t, PackedWeight> packed;  // by spec index, ordered: the first slot it fills
    bool raw = false;
    for (auto [user, slot] : model.users(Value{n, 0})) {
      auto it = kp.of_node.find(user);
      std::optional<PackedWeight> pw;
      if (it != kp.of_node.end()) {
        const KernelSpec& spec = kp.specs[it->second];
        const KernelFamily& f = family_of(spec);
        if (f.packed_input) pw = f.packed_input(spec, slot);
      }
      if (pw) packed.emplace(it->second, std::move(*pw));
      else raw = true;
    }
    if (packed.empty()) raw = true;
    if (raw) {
      BundleTensor bt;
      bt.name = n->name;
      bt.type = std::string(type_name(t.type()));
      bt.shape = t.shape();
      bt.size = t.nbytes();
      bt.buffer = t.buffer();
      out.push_back(std::move(bt));
    }
    for (auto& [k, pw] : packed) {
      const KernelSpec& spec = kp.specs[k];
      BundleTensor bt;
      bt.name = n->name;
      bt.type = std::string(type_name(t.type()));
      bt.shape = t.shape();
      bt.layout = pw.layout;
      bt.kernel = spec.name;
      bt.size = static_cast<uint64_t>(pw.bytes);
      std::shared_ptr<const Buffer> src = t.buffer();
      auto pack = pw.pack;
      bt.produce = [src, pack]() -> StatusOr<std::vector<uint8_t>> {
        if (src->parts().empty()) return pack(src->data(), src->size());
        // Buffer::read gathers a lazy concatenation's parts without materializing it on the model
        // (this copy lives only while the tensor is packed).
        std::vector<uint8_t> bytes(src->size());
        src->read(0, bytes.size(), bytes.data());
        return pack(bytes.data(), bytes.size());
      };
      out.push_back(std::move(bt));
    }
  }
  return out;
}


}  // namespace ingot
