// libFuzzer target for Engine::load (runtime/engine.cpp): the manifest's schedule, memory plan and
// every check the engine makes against the kernels' contracts. The fuzzer acts like an attacker who
// edits a bundle and recomputes its hashes: each input REPLACES the manifest section of a real,
// valid base bundle ($INGOT_FUZZ_BUNDLE), the bundle is re-encoded with the one encoder of header
// and section table (runtime/bundle_format.h) and fresh SHA-256s, written to a memfd and loaded by
// its /proc/self/fd path, as a file. The kernels and weights stay the base bundle's (valid code:
// the contract, not the code, is what is under test). Seed: the base bundle's own manifest
// (written into the first corpus directory at startup). A custom mutator edits most inputs as a
// parsed manifest, field by field (below), so that they get past the protobuf parser.
//
// Checks: no crash, no sanitizer report, no leak; a refused load names the file; a load that
// succeeds leaves every buffer the runtime itself writes or reads (inputs, logits, copy_last_row)
// inside the arena, and then a session runs one prefill of two tokens, saves itself to a file and
// restores that file: the contract checks must make that safe whatever the manifest says. Kernel
// code is not instrumented by ASan (an overrun inside the session's mmap'ed arenas shows only if
// it faults), but the session's own copies, save and restore, and the runtime around them are.
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "runtime/bundle.h"
#include "runtime/bundle_format.h"
#include "runtime/engine.h"
#include "runtime/sha256.h"
#include "tests/fuzz/base_bundle.h"

namespace {

using namespace ingot;

struct BaseSection {
  uint32_t kind = 0;
  std::string bytes;                 // empty for the manifest: the input replaces it
  std::array<uint8_t, 32> sha256{};  // checked once at startup
};
std::vector<BaseSection> g_sections;
std::string g_manifest;  // the base bundle's manifest bytes: the seed
std::string g_dir, g_session_file;  // a private temporary folder, and a session file in it
// How far inputs got, printed at exit: a run that never loads a manifest tests little.
bool g_verbose = std::getenv("INGOT_FUZZ_VERBOSE") != nullptr;  // print every refusal
long g_inputs = 0, g_loaded = 0, g_prefilled = 0, g_saved = 0;

void init_base() {
  fuzz::neutral_environment();
  const std::string path = fuzz::base_bundle_path("fuzz_engine_load");
  auto b = Bundle::open(path, BundleOpenOptions{});
  if (!b.ok()) fuzz::finding("the base bundle does not open", b.message());
  if (Status st = (*b)->verify(); !st.ok()) fuzz::finding("the base bundle does not verify", st.message());
  bool manifest = false;
  for (const BundleSection& s : (*b)->sections()) {
    if (s.kind == uint32_t(bundle::SectionKind::signature)) continue;  // no longer valid once edited
    BaseSection out;
    out.kind = s.kind;
    out.sha256 = s.sha256;
    const auto span = (*b)->bytes(s);
    if (s.kind == uint32_t(bundle::SectionKind::manifest) && !manifest) {
      manifest = true;
      g_manifest.assign(reinterpret_cast<const char*>(span.data()), span.size());
    } else {
      out.bytes.assign(reinterpret_cast<const char*>(span.data()), span.size());
    }
    g_sections.push_back(std::move(out));
  }
  if (!manifest) fuzz::finding("the base bundle has no manifest", path);
  // And it must load and run as it is: otherwise every input is refused for the wrong reason.
  auto e = Engine::load(path, EngineOptions{});
  if (!e.ok()) fuzz::finding("the base bundle does not load", e.message());
  if ((*e)->calls().empty()) fuzz::finding("the base bundle has no calls", path);
}

// The base bundle with `manifest` as its manifest section, hashes recomputed, in a memfd (-1 on a
// system error).
int encode_bundle(const uint8_t* manifest, size_t manifest_size) {
  const uint32_t n = static_cast<uint32_t>(g_sections.size());
  std::vector<bundle::SectionEntry> table(n);
  uint64_t offset = bundle::align_up(bundle::FileHeader::kSize + uint64_t(n) * bundle::SectionEntry::kSize, bundle::kSectionAlignment);
  for (uint32_t i = 0; i < n; ++i) {
    const bool is_manifest = g_sections[i].bytes.empty() && g_sections[i].kind == uint32_t(bundle::SectionKind::manifest);
    table[i].kind = g_sections[i].kind;
    table[i].offset = offset;
    table[i].size = is_manifest ? manifest_size : g_sections[i].bytes.size();
    const Sha256::Digest d = is_manifest ? Sha256::hash(manifest, manifest_size) : g_sections[i].sha256;
    std::memcpy(table[i].sha256, d.data(), 32);
    offset = bundle::align_up(offset + table[i].size, bundle::kSectionAlignment);
  }
  const uint64_t file_size = table.back().offset + table.back().size;
  std::vector<uint8_t> head(bundle::FileHeader::kSize + size_t(n) * bundle::SectionEntry::kSize);
  bundle::encode_header_and_table(table.data(), n, file_size, head.data());

  const int fd = ::memfd_create("fuzz-engine.ingot", MFD_CLOEXEC);
  if (fd < 0) return -1;
  bool ok = ::ftruncate(fd, static_cast<off_t>(file_size)) == 0 && fuzz::pwrite_all(fd, head.data(), head.size(), 0);
  for (uint32_t i = 0; ok && i < n; ++i) {
    const bool is_manifest = g_sections[i].bytes.empty() && g_sections[i].kind == uint32_t(bundle::SectionKind::manifest);
    ok = is_manifest ? fuzz::pwrite_all(fd, manifest, manifest_size, off_t(table[i].offset))
                     : fuzz::pwrite_all(fd, g_sections[i].bytes.data(), g_sections[i].bytes.size(), off_t(table[i].offset));
  }
  if (!ok) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// ---------------------------------------------------------------- structure-aware mutation
// Byte mutations of a protobuf mostly break its encoding, and the few manifests that still parse
// seldom get past the first check. So three inputs in four are parsed and edited field by field
// (sizes, offsets, indices, dims, symbols: what the engine must check), the rest mutated as bytes.
using Rng = std::mt19937_64;

int64_t pick(Rng& r, int64_t n) { return n <= 0 ? 0 : static_cast<int64_t>(r() % uint64_t(n)); }

// A nearby, boundary or power-of-two value: what breaks size checks. Wrapping arithmetic (the
// mutator itself must not overflow).
int64_t mutate_value(Rng& r, int64_t v) {
  const uint64_t u = static_cast<uint64_t>(v);
  switch (pick(r, 12)) {
    case 0: return static_cast<int64_t>(u + uint64_t(pick(r, 17) - 8));
    case 1: return static_cast<int64_t>(u + uint64_t((pick(r, 9) - 4) * 64));
    case 2: return static_cast<int64_t>(u * 2);
    case 3: return v / 2;
    case 4: return pick(r, 3) - 1;  // -1, 0, 1
    case 5: return int64_t{1} << pick(r, 63);
    case 6: return (int64_t{1} << pick(r, 63)) - 1;
    case 7: return (int64_t{1} << pick(r, 62)) + 1;
    case 8: return pick(r, 2) ? INT64_MAX : INT64_MIN;
    case 9: return static_cast<int64_t>(u + uint64_t(4096 * (pick(r, 5) - 2)));
    case 10: return static_cast<int64_t>(0 - u);
    default: return static_cast<int64_t>(u ^ (uint64_t{1} << pick(r, 64)));
  }
}
uint32_t mutate_index(Rng& r, uint32_t v, int n) {
  return pick(r, 4) == 0 ? static_cast<uint32_t>(mutate_value(r, v)) : static_cast<uint32_t>(pick(r, n + 1));
}

void mutate_arg(Rng& r, const pb::Manifest& m, pb::ArgRef* a) {
  switch (pick(r, 8)) {
    case 0: a->set_arena_offset(a->has_arena_offset() ? mutate_value(r, a->arena_offset()) : pick(r, std::min<int64_t>(m.memory_plan().arena_bytes(), int64_t{1} << 40) + 1) & ~int64_t{63}); break;
    case 1: a->set_weight(mutate_index(r, a->weight(), m.tensors_size())); break;
    case 2: a->set_state_slot(mutate_index(r, a->state_slot(), m.memory_plan().state_size())); break;
    case 3: a->set_input(mutate_index(r, a->input(), m.inputs_size())); break;
    case 4: a->set_output(mutate_index(r, a->output(), m.outputs_size())); break;
    case 5: a->mutable_scratch(); break;
    case 6: a->mutable_null(); break;
    default: a->clear_ref(); break;
  }
}

void mutate_call(Rng& r, pb::Manifest& m, pb::KernelCall* c) {
  switch (pick(r, 8)) {
    case 0:
    case 1:
    case 2:
      if (c->args_size() > 0) {
        // Often the same kind of argument another call has in that slot.
        const int i = static_cast<int>(pick(r, c->args_size()));
        const pb::KernelCall& other = m.schedule().calls(static_cast<int>(pick(r, m.schedule().calls_size())));
        if (pick(r, 3) == 0 && i < other.args_size()) *c->mutable_args(i) = other.args(i);
        else mutate_arg(r, m, c->mutable_args(i));
      }
      break;
    case 3:
      if (c->dims_size() > 0 && pick(r, 2)) c->set_dims(static_cast<int>(pick(r, c->dims_size())), static_cast<pb::DynamicDim>(pick(r, 6)));
      else if (pick(r, 2)) c->add_dims(static_cast<pb::DynamicDim>(pick(r, 6)));
      else if (c->dims_size() > 0) c->mutable_dims()->RemoveLast();
      break;
    case 4:
      if (m.kernels_size() > 0) c->set_symbol(m.kernels(static_cast<int>(pick(r, m.kernels_size()))).symbol());
      break;
    case 5:
      if (pick(r, 2)) c->set_builtin(pick(r, 4) ? "copy_last_row" : "");
      c->set_row_bytes(mutate_value(r, c->row_bytes()));
      break;
    case 6:
      if (pick(r, 2) && c->args_size() > 0) c->mutable_args()->RemoveLast();
      else mutate_arg(r, m, c->add_args());
      break;
    default: c->set_scratch_per_thread(mutate_value(r, c->scratch_per_thread())); break;
  }
}

void mutate_manifest(Rng& r, pb::Manifest& m) {
  pb::MemoryPlan* plan = m.mutable_memory_plan();
  pb::Schedule* sched = m.mutable_schedule();
  switch (pick(r, 14)) {
    case 0: plan->set_max_batch(mutate_value(r, plan->max_batch())); break;
    case 1: plan->set_max_context(mutate_value(r, plan->max_context())); break;
    case 2: plan->set_arena_bytes(mutate_value(r, plan->arena_bytes())); break;
    case 3: plan->set_state_bytes(mutate_value(r, plan->state_bytes())); break;
    case 4:
      if (plan->state_size() > 0) {
        auto* slot = plan->mutable_state(static_cast<int>(pick(r, plan->state_size())));
        switch (pick(r, 3)) {
          case 0: slot->set_offset(mutate_value(r, slot->offset())); break;
          case 1: slot->set_bytes(mutate_value(r, slot->bytes())); break;
          default:
            if (m.state_size() > 0) slot->set_variable(m.state(static_cast<int>(pick(r, m.state_size()))).name());
        }
      }
      break;
    case 5: sched->set_max_scratch_per_thread(mutate_value(r, sched->max_scratch_per_thread())); break;
    case 6:
    case 7:
    case 8:
      if (sched->calls_size() > 0) mutate_call(r, m, sched->mutable_calls(static_cast<int>(pick(r, sched->calls_size()))));
      break;
    case 9:
      if (sched->calls_size() > 1) {
        const int i = static_cast<int>(pick(r, sched->calls_size())), j = static_cast<int>(pick(r, sched->calls_size()));
        switch (pick(r, 3)) {
          case 0: sched->mutable_calls()->SwapElements(i, j); break;
          case 1: *sched->mutable_calls(i) = sched->calls(j); break;
          default: sched->mutable_calls()->DeleteSubrange(i, 1); break;
        }
      }
      break;
    case 10: {
      auto* io = pick(r, 2) && m.outputs_size() > 0 ? m.mutable_outputs(0)
                 : m.inputs_size() > 0              ? m.mutable_inputs(static_cast<int>(pick(r, m.inputs_size())))
                                                    : nullptr;
      if (!io) break;
      if (pick(r, 3)) io->set_arena_offset(mutate_value(r, io->arena_offset()));
      else io->set_type(std::string(pick(r, 2) ? "f32[tokens, " : "f32[1, ") + std::to_string(mutate_value(r, 512)) + "]");
      break;
    }
    case 11:
      if (m.state_size() > 0) {
        auto* v = m.mutable_state(static_cast<int>(pick(r, m.state_size())));
        switch (pick(r, 4)) {
          case 0:
            if (v->max_shape_size() > 0) {
              const int d = static_cast<int>(pick(r, v->max_shape_size()));
              v->set_max_shape(d, mutate_value(r, v->max_shape(d)));
            }
            break;
          case 1: v->set_type(pick(r, 2) ? "f16" : pick(r, 2) ? "f32" : "q8_0"); break;
          case 2: v->set_name(m.state(static_cast<int>(pick(r, m.state_size()))).name()); break;
          default: *m.add_state() = *v; break;
        }
      }
      break;
    case 12:
      if (m.tensors_size() > 0) {
        auto* t = m.mutable_tensors(static_cast<int>(pick(r, m.tensors_size())));
        if (pick(r, 2)) t->set_size(static_cast<uint64_t>(mutate_value(r, static_cast<int64_t>(t->size()))));
        else t->set_offset(static_cast<uint64_t>(mutate_value(r, static_cast<int64_t>(t->offset()))));
      }
      break;
    default:
      if (m.kernels_size() > 0) {
        const int i = static_cast<int>(pick(r, m.kernels_size()));
        if (pick(r, 2)) m.mutable_kernels()->DeleteSubrange(i, 1);
        else *m.add_kernels() = m.kernels(i);
      }
      break;
  }
}

// [offset, offset + bytes) inside [0, limit).
bool inside(int64_t offset, int64_t bytes, int64_t limit) {
  return offset >= 0 && bytes >= 0 && offset <= limit && bytes <= limit - offset;
}

// What the session itself (not the kernels) reads and writes: the engine promised it at load.
void check_loaded(const Engine& e, const std::string& path) {
  const int64_t arena = e.arena_bytes();
  // A call has at most min(max_batch, max_context) tokens: Session::prefill refuses past + tokens >
  // max_context before any chunk runs, and chunks are at most max_batch.
  const int64_t max_tokens = std::min(e.max_batch(), e.max_context());
  const int64_t logits_rows = e.all_logits() ? max_tokens : 1;
  if (e.max_batch() < 1 || e.max_context() < 1 || e.vocab() < 1) fuzz::finding("loaded with a bad size", path);
  if (!inside(e.token_ids_offset(), max_tokens * 8, arena) || !inside(e.pos_offset(), 8, arena) ||
      !inside(e.logits_offset(), e.vocab() * 4 * logits_rows, arena))
    fuzz::finding("loaded with inputs or logits outside the arena", path);
  for (const Engine::Call& c : e.calls()) {
    if (c.copy_last_row) {
      if (c.args.size() != 2 || c.args[0].kind != Engine::Arg::Kind::arena || c.args[1].kind != Engine::Arg::Kind::arena ||
          !inside(c.args[0].offset, c.row_bytes, arena) || !inside(c.args[1].offset, c.row_bytes * max_tokens, arena))
        fuzz::finding("loaded a copy_last_row outside the arena", c.node);
      continue;
    }
    if (!c.fn) fuzz::finding("loaded a call without a kernel", c.node);
    for (const Engine::Arg& a : c.args) {
      if (a.kind == Engine::Arg::Kind::state && !inside(a.offset, 0, e.state_bytes()))
        fuzz::finding("loaded a state argument outside the state arena", c.node);
      if (a.kind == Engine::Arg::Kind::weight && !a.data) fuzz::finding("loaded a weight argument without data", c.node);
    }
  }
}

void cleanup() {
  std::fprintf(stderr, "fuzz_engine_load: %ld inputs, %ld loaded, %ld prefilled, %ld saved and restored\n", g_inputs, g_loaded,
               g_prefilled, g_saved);
  ::unlink(g_session_file.c_str());
  ::rmdir(g_dir.c_str());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  // The mutator parses inputs that are not manifests all the time: no log line for each.
  google::protobuf::SetLogHandler(nullptr);
  init_base();
  g_dir = fuzz::temp_dir("fuzz_engine_load");
  g_session_file = g_dir + "/session";
  std::atexit(cleanup);
  // The seed, into the first corpus directory given (the first argument that is not a flag).
  for (int i = 1; i < *argc; ++i) {
    const char* a = (*argv)[i];
    struct stat st;
    if (a[0] == '-' || ::stat(a, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    std::ofstream(std::string(a) + "/base-manifest.pb", std::ios::binary) << g_manifest;
    break;
  }
  return 0;
}

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
  Rng r(seed);
  if (pick(r, 4) == 0) return LLVMFuzzerMutate(data, size, max_size);
  // An input that is no manifest (from a byte mutation) is edited as the base manifest instead.
  pb::Manifest m;
  if (!m.ParseFromArray(data, static_cast<int>(size)) && !m.ParseFromString(g_manifest)) return LLVMFuzzerMutate(data, size, max_size);
  for (int64_t k = 1 + pick(r, 2) * pick(r, 3); k > 0; --k) mutate_manifest(r, m);
  const std::string out = m.SerializeAsString();
  if (out.size() > max_size) return LLVMFuzzerMutate(data, size, max_size);
  std::memcpy(data, out.data(), out.size());
  return out.size();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ++g_inputs;
  const int fd = encode_bundle(data, size);
  if (fd < 0) return 0;
  // The descriptor stays open until the engine is gone: its /proc path must not be reused meanwhile.
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  {
    auto engine = Engine::load(path, EngineOptions{});
    if (!engine.ok()) {
      fuzz::must_name(engine.message(), path);
      if (g_verbose) std::fprintf(stderr, "refused: %s\n", engine.message().c_str());
    } else {
      const Engine& e = **engine;
      ++g_loaded;
      check_loaded(e, path);
      // One prefill of up to two tokens, each inside the vocabulary: safe by construction if the
      // load checks hold.
      const int32_t ids[2] = {e.vocab() > 2 ? 1 : 0, e.vocab() > 2 ? 2 : 0};
      const size_t n = e.max_context() >= 2 ? 2 : 1;
      auto session = Session::create(e, 1);
      if (session.ok()) {
        Session& s = **session;
        Status st = s.prefill(std::span<const int32_t>(ids, n));
        if (st.ok() && s.position() != static_cast<int64_t>(n)) fuzz::finding("prefill did not advance", path);
        g_prefilled += st.ok();
        // Save and restore the KV cache rows the manifest's state slots describe.
        if (st.ok() && s.save(g_session_file).ok()) {
          if (Status r = s.restore(g_session_file); !r.ok()) fuzz::finding("a saved session does not restore", r.message());
          if (s.position() != static_cast<int64_t>(n)) fuzz::finding("restore changed the position", path);
          ++g_saved;
        }
      }
    }
  }
  ::close(fd);
  return 0;
}
