#include "runtime/engine.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string_view>

#include <sys/mman.h>

#include "runtime/atomic_file.h"
#include "runtime/bundle_tokenizer.h"
#include "runtime/kernel_contract.h"

namespace ingot {
namespace {

size_t page_rounded(int64_t bytes) {
  const int64_t page = 4096;
  return static_cast<size_t>(std::max<int64_t>(page, (bytes + page - 1) / page * page));
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

Status fail(const std::string& msg, StatusCode code = StatusCode::invalid_argument) { return Status::Error(code, msg); }
Status fail(StatusCode code, const std::string& msg) { return Status::Error(code, msg); }

// Zeroed, page-aligned memory from the kernel: pages become resident only when first written, so
// a session's KV cache costs memory for the context actually used, not for --max-context. With
// `huge` (an engine whose weights are in huge pages: a server) 2 MiB-aligned and advised for
// transparent huge pages, so that memory becomes resident 2 MiB at a time. Why: a decode step of
// 8 sessions reads and writes rows of 44 KV-cache slots each, one 4 KiB page apart or more, and on
// a VM every TLB miss is a two-level page walk; in huge pages attention took 7.6 % of the step's
// samples instead of 9.6 % and the step 2.5 % less time (AMD Zen 5, tinyllama q4_0,
// batch_bench --sessions 8, three pairs).
uint8_t* zeroed_pages(int64_t bytes, bool huge = false) {
  const size_t want = page_rounded(bytes);
  if (!huge) {
    void* p = ::mmap(nullptr, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : static_cast<uint8_t*>(p);
  }
  return static_cast<uint8_t*>(huge_page_memory(want));  // release_pages unmaps exactly `want`
}

void release_pages(uint8_t* p, int64_t bytes) {
  if (p) ::munmap(p, page_rounded(bytes));
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

// The vocabulary size from the logits output's type "f32[1, 512]"; 0 if it is not a number of at
// most 2^31.
int64_t last_dim(const std::string& type) {
  const size_t close = type.rfind(']');
  const size_t comma = type.rfind(',', close);
  const size_t open = type.rfind('[', close);
  if (open == std::string::npos || close == std::string::npos) return 0;
  size_t from = (comma != std::string::npos && comma > open ? comma : open) + 1;
  while (from < close && type[from] == ' ') ++from;
  if (from >= close || close - from > 10) return 0;
  int64_t v = 0;
  for (size_t i = from; i < close; ++i) {
    if (type[i] < '0' || type[i] > '9') return 0;
    v = v * 10 + (type[i] - '0');
  }
  return v <= (int64_t{1} << 31) ? v : 0;
}

// Limits on what a manifest may ask for, far above any model: a corrupt or crafted number is
// refused by name instead of overflowing the arithmetic below.
constexpr int64_t kMaxBatch = int64_t{1} << 20;
constexpr int64_t kMaxContext = int64_t{1} << 31;
constexpr int64_t kMaxArenaBytes = int64_t{1} << 46;  // 64 TiB

bool add_ok(int64_t a, int64_t b, int64_t* out) { return !__builtin_add_overflow(a, b, out); }
bool mul_ok(int64_t a, int64_t b, int64_t* out) { return !__builtin_mul_overflow(a, b, out); }
// [offset, offset + bytes) inside [0, limit), without overflow.
bool inside(int64_t offset, int64_t bytes, int64_t limit) {
  return offset >= 0 && bytes >= 0 && offset <= limit && bytes <= limit - offset;
}

// Bytes of one context position of a state variable (its max shape without the first dim); -1 if
// the shape is not one or the product overflows.
int64_t state_row_bytes(const pb::StateVariable& v) {
  if (v.max_shape_size() == 0) return -1;
  int64_t n = v.type() == "f16" || v.type() == "bf16" ? 2 : 4;
  for (int d = 1; d < v.max_shape_size(); ++d)
    if (v.max_shape(d) < 0 || !mul_ok(n, v.max_shape(d), &n)) return -1;
  return n;
}

// The largest value of sum(dims[i] for i in mask) over every call a session can make: T tokens
// (1 <= T <= max_batch) after past ones (past + T <= max_context). Linear in (T, past), so the
// largest value is at a corner of that region.
int64_t max_dims_sum(const std::vector<int>& dims, uint64_t mask, int64_t max_batch, int64_t max_context) {
  const int64_t b = std::min(max_batch, max_context);
  const int64_t corners[4][2] = {{1, 0}, {b, 0}, {1, max_context - 1}, {b, max_context - b}};
  int64_t best = 0;
  for (const auto& [T, past] : corners) {
    int64_t sum = 0;
    for (size_t i = 0; i < dims.size() && i < 4; ++i) {
      if (!(mask & (uint64_t{1} << i))) continue;
      sum += dims[i] == pb::DIM_TOKENS ? T : dims[i] == pb::DIM_PAST ? past : dims[i] == pb::DIM_PAST_PLUS_TOKENS ? past + T : 1;
    }
    best = std::max(best, sum);
  }
  return best;
}

// The first dimension of "f32[tokens, 512]" as written: "tokens".
std::string first_dim(const std::string& type) {
  const size_t open = type.find('[');
  const size_t end = type.find_first_of(",]", open);
  if (open == std::string::npos || end == std::string::npos) return "";
  return type.substr(open + 1, end - open - 1);
}

}  // namespace

// Why the engine's calls cannot be batched across sessions ("" when they can): a per-session
// call must see its session's rows only (token-row tensors), and after the copy of the last row
// (the logits' tail, run once per wanted row) nothing may depend on a session.
static std::string batchable(const Engine& e, const std::map<std::string, KernelContract>& contracts, const pb::Manifest& m) {
  bool tail = false;
  for (size_t step = 0; step < e.calls().size(); ++step) {
    const Engine::Call& c = e.calls()[step];
    const std::string where = "call " + std::to_string(step) + " (node '" + c.node + "')";
    if (c.copy_last_row) {
      if (tail) return where + " copies the last row a second time";
      tail = true;
      continue;
    }
    if (!c.per_session) continue;
    if (tail) return where + " depends on the session after the last row was taken";
    const KernelContract& k = contracts.at(m.schedule().calls(int(step)).symbol());
    for (size_t i = 0; i < c.args.size() && i < k.args.size(); ++i)
      if (c.args[i].kind == Engine::Arg::Kind::arena && c.args[i].row_bytes == 0 && c.args[i].offset != e.pos_offset() &&
          k.args[i].access != ArgAccess::none)
        return where + " argument " + std::to_string(i) + " is not a tensor of token rows";
  }
  return "";
}

Engine::~Engine() = default;

StatusOr<std::unique_ptr<Engine>> Engine::load(const std::string& path, const EngineOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<Engine> e(new Engine());
  // With trusted keys, open refuses a bundle not signed by one of them before anything else.
  INGOT_ASSIGN_OR_RETURN(std::optional<TrustedKeys> trusted, load_trusted_keys(options.trusted_keys));
  bool huge_pages = options.huge_pages;
  if (const char* env = std::getenv("INGOT_WEIGHTS"); env && *env) {
    if (std::strcmp(env, "huge-pages") == 0) huge_pages = true;
    else if (std::strcmp(env, "mapped") == 0) huge_pages = false;
    else return fail(std::string("INGOT_WEIGHTS=") + env + ": expected huge-pages or mapped");
  }
  INGOT_ASSIGN_OR_RETURN(e->bundle_, Bundle::open(path, BundleOpenOptions{.tier = options.tier,
                                                                          .trusted_keys = trusted ? &*trusted : nullptr,
                                                                          .huge_pages = huge_pages}));
  if (!e->bundle_->kernel_set_note().empty())
    std::fprintf(stderr, "ingot: note: %s: %s\n", path.c_str(), e->bundle_->kernel_set_note().c_str());
  // Every load checks the manifest's SHA-256 (load_kernels checks the kernels'); --verify all.
  if (options.verify) INGOT_RETURN_IF_ERROR(e->bundle_->verify());
  else if (const BundleSection* ms = e->bundle_->find_section(bundle::SectionKind::manifest))
    INGOT_RETURN_IF_ERROR(e->bundle_->verify_section(size_t(ms - e->bundle_->sections().data())));
  const pb::Manifest& m = e->bundle_->manifest();
  const std::string& name = e->bundle_->name();
  if (m.schedule().calls_size() == 0) {
    return fail(name + ": the bundle has no schedule (some nodes had no kernel when it was compiled); it cannot run");
  }
  const pb::MemoryPlan& plan = m.memory_plan();
  e->max_context_ = plan.max_context();
  e->max_batch_ = plan.max_batch();
  e->arena_bytes_ = plan.arena_bytes();
  e->state_bytes_ = plan.state_bytes();
  e->scratch_per_thread_ = m.schedule().max_scratch_per_thread();
  // Every size the kernels and the session rely on is checked here, overflow-safe, before any
  // call can run: docs/security.md, "What the engine checks".
  auto refuse = [&](const std::string& field, const std::string& why) {
    return fail(name + ": manifest field " + field + " " + why);
  };
  if (e->max_batch_ < 1 || e->max_batch_ > kMaxBatch)
    return refuse("memory_plan.max_batch", "= " + std::to_string(e->max_batch_) + " is not between 1 and " + std::to_string(kMaxBatch));
  if (e->max_context_ < 1 || e->max_context_ > kMaxContext)
    return refuse("memory_plan.max_context", "= " + std::to_string(e->max_context_) + " is not between 1 and " + std::to_string(kMaxContext));
  if (e->arena_bytes_ < 0 || e->arena_bytes_ > kMaxArenaBytes)
    return refuse("memory_plan.arena_bytes", "= " + std::to_string(e->arena_bytes_) + " is out of range");
  if (e->state_bytes_ < 0 || e->state_bytes_ > kMaxArenaBytes)
    return refuse("memory_plan.state_bytes", "= " + std::to_string(e->state_bytes_) + " is out of range");
  if (e->scratch_per_thread_ < 0 || e->scratch_per_thread_ > kMaxArenaBytes)
    return refuse("schedule.max_scratch_per_thread", "= " + std::to_string(e->scratch_per_thread_) + " is out of range");
  // Every state slot holds max_context positions of its variable (sessions save and restore them,
  // a row per position: the row sizes checked here are the ones they use). One variable per name.
  {
    std::set<std::string_view> names;
    for (const auto& v : m.state())
      if (!names.insert(v.name()).second) return refuse("state", "names the variable '" + v.name() + "' twice");
  }
  for (const auto& slot : plan.state()) {
    const pb::StateVariable* var = nullptr;
    for (const auto& v : m.state())
      if (v.name() == slot.variable()) var = &v;
    int64_t need = 0;
    const int64_t row = var ? state_row_bytes(*var) : -1;
    if (row < 0 || !mul_ok(row, e->max_context_, &need) || need > slot.bytes())
      return refuse("memory_plan.state '" + slot.variable() + "'",
                    "holds " + std::to_string(slot.bytes()) + " bytes, less than max_context = " + std::to_string(e->max_context_) +
                        " positions of its variable");
    e->state_slots_.push_back({slot.offset(), row});
  }
  for (const auto& in : m.inputs()) {
    if (in.name() == "token_ids") e->token_ids_offset_ = in.arena_offset();
    if (in.name() == "pos") e->pos_offset_ = in.arena_offset();
  }
  if (m.outputs_size() > 0) {
    e->logits_offset_ = m.outputs(0).arena_offset();
    e->vocab_ = last_dim(m.outputs(0).type());
    // "f32[tokens, V]": compiled with --all-logits, a row per token of the call; else "f32[1, V]".
    e->all_logits_ = first_dim(m.outputs(0).type()) != "1";
  }
  if (e->token_ids_offset_ < 0 || e->pos_offset_ < 0 || e->logits_offset_ < 0 || e->vocab_ <= 0) {
    return fail(name + ": not a decoder bundle (inputs token_ids and pos, output logits)");
  }
  {
    int64_t logits = 0;
    // A call has at most min(max_batch, max_context) tokens (past + tokens <= max_context): the
    // memory plan sizes token_ids and per-token logits for that many.
    const int64_t max_tokens = std::min(e->max_batch_, e->max_context_);
    const bool ok = mul_ok(e->vocab_ * 4, e->all_logits_ ? max_tokens : 1, &logits) &&
                    inside(e->logits_offset_, logits, e->arena_bytes_) && inside(e->token_ids_offset_, max_tokens * 8, e->arena_bytes_) &&
                    inside(e->pos_offset_, 8, e->arena_bytes_);
    if (!ok) return fail(name + ": the inputs or outputs lie outside the arena");
    // The session stores token ids and the position as int64 and reads logits as floats.
    if (e->token_ids_offset_ % 8 != 0 || e->pos_offset_ % 8 != 0 || e->logits_offset_ % 4 != 0)
      return fail(name + ": the inputs or outputs are misaligned in the arena (token_ids at " + std::to_string(e->token_ids_offset_) +
                  ", pos at " + std::to_string(e->pos_offset_) + ": multiples of 8; logits at " + std::to_string(e->logits_offset_) +
                  ": a multiple of 4)");
  }

  if (!m.kernels().empty()) {
    INGOT_ASSIGN_OR_RETURN(e->kernels_, e->bundle_->load_kernels());
  }
  // The manifest's symbol table against the object's own: each listed kernel is a function the
  // object defines, with its contract beside it.
  std::map<std::string, KernelContract> contracts;
  for (const pb::Kernel& k : m.kernels()) {
    if (!e->kernels_) break;
    if (!e->kernels_->symbol(k.symbol()).ok())
      return fail(name + ": the manifest lists kernel '" + k.symbol() + "', which the kernels object does not define");
    const auto section = e->bundle_->bytes(e->bundle_->sections()[size_t(e->bundle_->kernel_sets()[size_t(e->bundle_->chosen_kernel_set())].section)]);
    const std::span<const uint8_t> blob = e->kernels_->info().data(section, contract_symbol(k.symbol()));
    if (blob.empty())
      return fail(name + ": kernel '" + k.symbol() + "' has no contract in the kernels object (a bundle from an older ingotc: recompile it)");
    auto contract = decode_contract(blob);
    if (!contract.ok()) return contract.status().with_context(name + ": kernel '" + k.symbol() + "'");
    contracts[k.symbol()] = std::move(*contract);
  }
  const int64_t arena = e->arena_bytes_;
  bool pos_alive = true;
  for (const pb::KernelCall& c : m.schedule().calls()) {
    Call call;
    call.node = c.node();
    const std::string where = "schedule call of node '" + c.node() + "'";
    // The arena offset an argument resolves to, or -1 when it is not in the arena.
    auto arena_offset_of = [&](const pb::ArgRef& a) -> int64_t {
      if (a.has_arena_offset()) return a.arena_offset();
      if (a.has_input()) return m.inputs(static_cast<int>(a.input())).arena_offset();
      if (a.has_output()) return m.outputs(static_cast<int>(a.output())).arena_offset();
      return -1;
    };
    if (c.dims_size() > 4) return refuse(where + " dims", "has " + std::to_string(c.dims_size()) + " entries (at most 4)");
    for (int d : c.dims()) {
      if (d != pb::DIM_TOKENS && d != pb::DIM_PAST && d != pb::DIM_PAST_PLUS_TOKENS && d != pb::DIM_ONE)
        return refuse(where + " dims", "has an unknown dimension " + std::to_string(d));
      call.dims.push_back(d);
    }
    if (!c.builtin().empty()) {
      if (c.builtin() != "copy_last_row" || c.args_size() != 2) {
        return fail(name + ": unknown builtin '" + c.builtin() + "' in the schedule (node " + c.node() + ")");
      }
      // A call has at most max_batch tokens and at most max_context (past + tokens <= max_context).
      const int64_t dst = arena_offset_of(c.args(0)), src = arena_offset_of(c.args(1));
      int64_t rows = 0;
      const int64_t max_tokens = std::min(e->max_batch_, e->max_context_);
      if (c.row_bytes() <= 0 || dst < 0 || src < 0 || !mul_ok(c.row_bytes(), max_tokens, &rows) || !inside(src, rows, arena) ||
          !inside(dst, c.row_bytes(), arena))
        return refuse(where + " row_bytes", "= " + std::to_string(c.row_bytes()) + " does not fit its buffers in the arena at " +
                                               std::to_string(max_tokens) + " tokens (source at " + std::to_string(src) + ", destination at " +
                                               std::to_string(dst) + ", arena " + std::to_string(arena) + " bytes)");
      // The row is copied with memcpy: the destination must not overlap any row it may come from.
      if (dst < src + rows && src < dst + c.row_bytes())
        return refuse(where + " args", "has its destination (at " + std::to_string(dst) + ", " + std::to_string(c.row_bytes()) +
                                           " bytes) overlapping its source rows (at " + std::to_string(src) + ", " + std::to_string(rows) + " bytes)");
      call.copy_last_row = true;
      call.row_bytes = c.row_bytes();
    } else {
      if (!e->kernels_) return fail(name + ": kernel '" + c.symbol() + "' (node " + c.node() + "): no kernels section");
      auto it = contracts.find(c.symbol());
      if (it == contracts.end())
        return fail(name + ": " + where + " calls '" + c.symbol() + "', which is not among the manifest's kernels");
      auto fn = e->kernels_->symbol(c.symbol());
      if (!fn.ok()) return fn.status().with_context(name + ": node " + c.node());
      call.fn = reinterpret_cast<Call::Fn>(*fn);
      // Every slot the kernel touches gets a buffer at least as large as the contract says for the
      // largest call (max_batch tokens, a full context), suitably aligned.
      const KernelContract& contract = it->second;
      for (size_t i = 0; i < contract.args.size(); ++i) {
        const ArgContract& want = contract.args[i];
        if (want.access == ArgAccess::none) continue;
        const std::string slot = where + " args[" + std::to_string(i) + "]";
        if (i >= size_t(c.args_size()) || c.args(int(i)).ref_case() == pb::ArgRef::REF_NOT_SET || c.args(int(i)).has_null())
          return refuse(slot, "is missing, but kernel '" + c.symbol() + "' uses it");
        const pb::ArgRef& a = c.args(int(i));
        int64_t need = 0;
        if (!contract_bytes(want, max_dims_sum(call.dims, want.dims_mask, e->max_batch_, e->max_context_), &need))
          return refuse(slot, "needs more bytes than an int64 holds");
        int64_t have = 0;
        uint64_t address = 0;  // for the alignment: an offset into a page-aligned arena, or a pointer
        if (want.access == ArgAccess::scratch) {
          if (!a.has_scratch()) return refuse(slot, "is not the call's scratch, which kernel '" + c.symbol() + "' needs there");
          have = e->scratch_per_thread_;
        } else if (a.has_scratch()) {
          return refuse(slot, "is scratch where kernel '" + c.symbol() + "' expects a tensor");
        } else if (a.has_weight()) {
          if (want.access != ArgAccess::read) return refuse(slot, "is a weight (read-only), but kernel '" + c.symbol() + "' writes it");
          have = static_cast<int64_t>(m.tensors(static_cast<int>(a.weight())).size());
          address = reinterpret_cast<uintptr_t>(e->bundle_->tensor_data(static_cast<int>(a.weight())));
        } else if (a.has_state_slot()) {
          const auto& s = plan.state(static_cast<int>(a.state_slot()));
          have = s.bytes();
          address = static_cast<uint64_t>(s.offset());
        } else {
          const int64_t off = arena_offset_of(a);
          have = off >= 0 && off <= arena ? arena - off : -1;
          address = static_cast<uint64_t>(off);
        }
        if (have < need)
          return refuse(slot, "gives kernel '" + c.symbol() + "' " + std::to_string(std::max<int64_t>(have, 0)) + " bytes where it may touch " +
                                  std::to_string(need) + " (max_batch = " + std::to_string(e->max_batch_) +
                                  ", max_context = " + std::to_string(e->max_context_) + ")");
        if (address % want.align != 0)
          return refuse(slot, "is not " + std::to_string(want.align) + "-byte aligned as kernel '" + c.symbol() + "' needs");
      }
    }
    const KernelContract* contract = nullptr;
    if (!c.builtin().empty()) {
    } else if (auto it = contracts.find(c.symbol()); it != contracts.end()) {
      contract = &it->second;
    }
    for (const pb::ArgRef& a : c.args()) {
      Arg arg;
      if (a.has_arena_offset()) {
        arg.kind = Arg::Kind::arena;
        arg.offset = a.arena_offset();
      } else if (a.has_weight()) {
        arg.kind = Arg::Kind::weight;
        arg.data = e->bundle_->tensor_data(static_cast<int>(a.weight()));
      } else if (a.has_state_slot()) {
        arg.kind = Arg::Kind::state;
        arg.offset = plan.state(static_cast<int>(a.state_slot())).offset();
      } else if (a.has_scratch()) {
        arg.kind = Arg::Kind::scratch;
      } else if (a.has_input() || a.has_output()) {
        const auto& io = a.has_input() ? m.inputs(static_cast<int>(a.input())) : m.outputs(static_cast<int>(a.output()));
        arg.kind = Arg::Kind::arena;
        arg.offset = io.arena_offset();
      }
      // Rows: the contract's plain form "per_row bytes for each of dims[0]", dims[0] being the
      // call's tokens (or 1 after the last-row copy).
      const size_t i = call.args.size();
      if (arg.kind == Arg::Kind::arena && contract && i < contract->args.size()) {
        const ArgContract& w = contract->args[i];
        if (w.access != ArgAccess::none && w.dims_mask == 1 && !call.dims.empty() &&
            (call.dims[0] == pb::DIM_TOKENS || call.dims[0] == pb::DIM_ONE) && w.fixed == 0 && w.cap == 0 && w.multiple <= 1)
          arg.row_bytes = w.per_row;
      }
      call.args.push_back(arg);
    }
    if (call.copy_last_row) call.args[1].row_bytes = call.row_bytes;
    for (size_t i = 0; i < call.args.size(); ++i) {
      const Arg& a = call.args[i];
      if (a.kind == Arg::Kind::state) call.per_session = true;
      // A size that grows with the cache: the kernel looks at the session's past.
      if (contract && i < contract->args.size() && contract->args[i].access != ArgAccess::none)
        for (size_t d = 0; d < call.dims.size(); ++d)
          if ((contract->args[i].dims_mask >> d & 1) && (call.dims[d] == pb::DIM_PAST || call.dims[d] == pb::DIM_PAST_PLUS_TOKENS))
            call.per_session = true;
    }
    // The pos input lives from the start until its last reader, after which the memory plan
    // may give its bytes to other tensors: the calls that read those bytes before anything
    // writes over them read pos.
    if (pos_alive && contract) {
      for (size_t i = 0; i < call.args.size() && i < contract->args.size(); ++i) {
        const ArgContract& w = contract->args[i];
        if (call.args[i].kind == Arg::Kind::arena && call.args[i].offset == e->pos_offset_ && w.access == ArgAccess::read && w.dims_mask == 0)
          call.reads_pos = true;
      }
      for (size_t i = 0; i < call.args.size() && i < contract->args.size(); ++i) {
        const ArgContract& w = contract->args[i];
        int64_t bytes = 0;
        if (call.args[i].kind != Arg::Kind::arena || !(int(w.access) & int(ArgAccess::write)) ||
            !contract_bytes(w, max_dims_sum(call.dims, w.dims_mask, e->max_batch_, e->max_context_), &bytes))
          continue;
        if (call.args[i].offset < e->pos_offset_ + 8 && e->pos_offset_ < call.args[i].offset + bytes) pos_alive = false;
      }
    } else if (call.copy_last_row && call.args[0].offset < e->pos_offset_ + 8 && e->pos_offset_ < call.args[0].offset + call.row_bytes) {
      pos_alive = false;
    }
    if (call.reads_pos) call.per_session = true;
    e->calls_.push_back(std::move(call));
  }
  e->not_batchable_ = batchable(*e, contracts, m);
  // The tail widens to several rows when every call after the copy has dims[0] = 1 and each of
  // its arena tensors is a one-row tensor.
  {
    bool tail = false, ok = true;
    for (size_t step = 0; step < e->calls_.size(); ++step) {
      const Call& c = e->calls_[step];
      if (c.copy_last_row) {
        tail = true;
        continue;
      }
      if (!tail) continue;
      if (c.dims.empty() || c.dims[0] != pb::DIM_ONE) ok = false;
      const KernelContract& k = contracts.at(m.schedule().calls(int(step)).symbol());
      for (size_t i = 0; i < c.args.size(); ++i)
        if (c.args[i].kind == Arg::Kind::arena && c.args[i].row_bytes == 0 && i < k.args.size() && k.args[i].access != ArgAccess::none)
          ok = false;
    }
    e->tail_batchable_ = tail && ok && e->not_batchable_.empty();
  }
  if (m.has_tokenizer() && m.tokenizer().tokens_size() > 0) {
    auto tok = Tokenizer::create(tokenizer_from_proto(m.tokenizer()));
    if (!tok.ok()) return tok.status().with_context(name + ": the bundle's tokenizer");
    e->tokenizer_ = std::move(*tok);
  }
  e->load_ms_ = ms_since(t0);
  return e;
}

// ---------------------------------------------------------------- Batcher

Batcher::Batcher(const Engine& e, int threads) : engine_(e), pool_(threads) {}

Batcher::~Batcher() {
  for (const TailBuffer& t : tail_buffers_) release_pages(t.data, t.bytes);
  release_pages(arena_, engine_.arena_bytes());
  release_pages(scratch_, engine_.scratch_per_thread() * pool_.size());
}

StatusOr<std::unique_ptr<Batcher>> Batcher::create(const Engine& engine, int threads) {
  if (threads < 1 || threads > kMaxSessionThreads)
    return fail("a batcher takes 1 to " + std::to_string(kMaxSessionThreads) + " threads, not " + std::to_string(threads));
  int64_t scratch = 0;
  if (!mul_ok(engine.scratch_per_thread(), threads, &scratch) || scratch > kMaxArenaBytes)
    return fail("the scratch for " + std::to_string(threads) + " threads is too large");
  std::unique_ptr<Batcher> b(new Batcher(engine, threads));
  const bool huge = engine.bundle().residency() == BundleResidency::huge_pages;
  b->arena_ = zeroed_pages(engine.arena_bytes(), huge);
  b->scratch_ = zeroed_pages(engine.scratch_per_thread() * b->pool_.size(), huge);  // fewer threads if the system could not start them all
  if (!b->arena_ || !b->scratch_)
    return fail("out of memory for the activation arena (" + std::to_string(engine.arena_bytes()) + " bytes)", StatusCode::internal);
  if (engine.tail_batchable()) {
    bool tail = false;
    for (const Engine::Call& c : engine.calls()) {
      tail = tail || c.copy_last_row;
      if (!tail) continue;
      for (size_t i = 0; i < c.args.size(); ++i) {
        const Engine::Arg& a = c.args[i];
        if (a.kind != Engine::Arg::Kind::arena || (c.copy_last_row && i == 1)) continue;
        const int64_t row = c.copy_last_row ? c.row_bytes : a.row_bytes;
        auto it = std::find_if(b->tail_buffers_.begin(), b->tail_buffers_.end(), [&](const TailBuffer& t) { return t.offset == a.offset; });
        if (it == b->tail_buffers_.end()) it = b->tail_buffers_.insert(b->tail_buffers_.end(), TailBuffer{a.offset, 0, nullptr});
        int64_t bytes = 0;
        if (!mul_ok(row, engine.max_batch(), &bytes)) return fail("the output rows of a batch are too large");
        it->bytes = std::max(it->bytes, bytes);
      }
    }
    for (TailBuffer& t : b->tail_buffers_) {
      t.data = zeroed_pages(t.bytes);
      if (!t.data) return fail("out of memory for the batch's output rows", StatusCode::internal);
    }
  }
  return b;
}

// The arguments and sizes of one call of the schedule over `tokens` rows starting at row `row`
// of the token-row tensors, after `past` cached positions of the KV cache at `state`
// (per-session calls; else null).
void Batcher::bind(const Engine::Call& c, int64_t tokens, int64_t past, int64_t row, uint8_t* state, const void** argv,
                   int64_t* dims) const {
  for (size_t i = 0; i < c.args.size(); ++i) {
    const Engine::Arg& a = c.args[i];
    argv[i] = nullptr;
    switch (a.kind) {
      case Engine::Arg::Kind::null: break;
      case Engine::Arg::Kind::arena: argv[i] = arena_ + a.offset + row * a.row_bytes; break;
      case Engine::Arg::Kind::weight: argv[i] = a.data; break;
      case Engine::Arg::Kind::state: argv[i] = state + a.offset; break;
      case Engine::Arg::Kind::scratch: argv[i] = scratch_; break;
    }
  }
  for (size_t d = 0; d < kDimWords; ++d) dims[d] = 0;  // no work counter: a per-session call splits by thread
  for (size_t d = 0; d < c.dims.size() && d < 4; ++d)
    dims[d] = c.dims[d] == pb::DIM_TOKENS ? tokens : c.dims[d] == pb::DIM_PAST ? past : c.dims[d] == pb::DIM_PAST_PLUS_TOKENS ? past + tokens
              : c.dims[d] == pb::DIM_ONE ? 1 : 0;
}

// One call of the schedule over `tokens` rows starting at row `row` of the token-row tensors,
// after `past` cached positions of the KV cache at `state` (per-session calls; else null).
void Batcher::call(const Engine::Call& c, int64_t tokens, int64_t past, int64_t row, uint8_t* state) {
  argv_.resize(c.args.size());
  int64_t dims[kDimWords];
  bind(c, tokens, past, row, state, argv_.data(), dims);
  dims[kDimWorkCounter] = work_counter();
  const void* const* argv = argv_.data();
  const Engine::Call::Fn fn = c.fn;
  pool_.run([&](int t, int nt) { fn(argv, dims, t, nt); });
}

// A per-session call for every part in one dispatch of the pool: each thread runs its share of
// each session's call in turn. The sessions' calls touch disjoint rows, caches and (per thread)
// scratch, so no barrier is needed between them.
void Batcher::call_per_part(const Engine::Call& c, std::span<const BatchPart> parts, std::span<const int64_t> first_row) {
  const size_t n_args = c.args.size();
  argv_.resize(n_args * parts.size());
  part_dims_.resize(kDimWords * parts.size());
  for (size_t p = 0; p < parts.size(); ++p) {
    const Session& s = *parts[p].session;
    bind(c, static_cast<int64_t>(parts[p].ids.size()), s.past_, first_row[p], s.state_, argv_.data() + p * n_args,
         part_dims_.data() + kDimWords * p);
  }
  const int64_t* dims = part_dims_.data();
  const size_t n_parts = parts.size();
  const Engine::Call::Fn fn = c.fn;
  const void* const* argv = argv_.data();
  pool_.run([&](int t, int nt) {
    for (size_t p = 0; p < n_parts; ++p) fn(argv + p * n_args, dims + kDimWords * p, t, nt);
  });
}

uint8_t* Batcher::tail_buffer(int64_t offset) const {
  for (const TailBuffer& t : tail_buffers_)
    if (t.offset == offset) return t.data;
  INGOT_ASSERT(false, "a tail tensor without its buffer");
  return nullptr;
}

// A call of the tail over `rows` rows, each one-row tensor in its own buffer of rows.
void Batcher::tail_call(const Engine::Call& c, int64_t rows) {
  argv_.assign(c.args.size(), nullptr);
  for (size_t i = 0; i < c.args.size(); ++i) {
    const Engine::Arg& a = c.args[i];
    switch (a.kind) {
      case Engine::Arg::Kind::null: break;
      case Engine::Arg::Kind::arena: argv_[i] = tail_buffer(a.offset); break;
      case Engine::Arg::Kind::weight: argv_[i] = a.data; break;
      case Engine::Arg::Kind::state: break;  // a tail does not touch the cache (Engine::load)
      case Engine::Arg::Kind::scratch: argv_[i] = scratch_; break;
    }
  }
  int64_t dims[kDimWords] = {};
  dims[0] = rows;  // dims[0] is 1 in every tail call (Engine::tail_batchable)
  for (size_t d = 1; d < c.dims.size() && d < 4; ++d) dims[d] = c.dims[d] == pb::DIM_ONE ? 1 : 0;
  dims[kDimWorkCounter] = work_counter();
  const void* const* argv = argv_.data();
  const Engine::Call::Fn fn = c.fn;
  pool_.run([&](int t, int nt) { fn(argv, dims, t, nt); });
}

Status Batcher::run(std::span<const BatchPart> parts) {
  const Engine& e = engine_;
  if (parts.empty()) return fail("no sessions to run");
  if (parts.size() > 1 && !e.not_batchable().empty())
    return fail(e.bundle().name() + ": this bundle cannot batch sessions: " + e.not_batchable(), StatusCode::unsupported);
  int64_t total = 0;
  for (size_t p = 0; p < parts.size(); ++p) {
    const BatchPart& part = parts[p];
    if (!part.session || &part.session->engine_ != &e) return fail("a batch part's session is not of this engine");
    for (size_t q = 0; q < p; ++q)
      if (parts[q].session == part.session) return fail("a session appears twice in one batch");
    const int64_t n = static_cast<int64_t>(part.ids.size());
    if (n == 0) return fail("no tokens to process");
    if (part.logit_rows < 1 || part.logit_rows > n)
      return fail("logit_rows = " + std::to_string(part.logit_rows) + " is not between 1 and the part's " + std::to_string(n) + " tokens");
    if (part.logit_rows > 1 && !e.not_batchable().empty())
      return fail(e.bundle().name() + ": this bundle cannot give logits for several rows: " + e.not_batchable(), StatusCode::unsupported);
    for (int32_t id : part.ids)
      if (id < 0 || id >= e.vocab()) return fail("token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(e.vocab()));
    const int64_t past = part.session->past_;
    if (past + n > e.max_context())
      return fail(StatusCode::context_full, "the context is full: " + std::to_string(past) + " tokens cached + " + std::to_string(n) +
                                                " new > " + std::to_string(e.max_context()) + " (the bundle's --max-context)");
    total += n;
  }
  if (total > e.max_batch())
    return fail("the batch has " + std::to_string(total) + " tokens, more than the bundle's --max-batch " + std::to_string(e.max_batch()));

  for (const BatchPart& part : parts) part.session->populate_cache(part.session->past_ + static_cast<int64_t>(part.ids.size()));

  int64_t* tok = reinterpret_cast<int64_t*>(arena_ + e.token_ids_offset());
  std::vector<int64_t> first_row(parts.size());
  for (size_t p = 0, row = 0; p < parts.size(); ++p) {
    first_row[p] = static_cast<int64_t>(row);
    for (int32_t id : parts[p].ids) tok[row++] = id;
  }
  std::memcpy(arena_ + e.pos_offset(), &parts[0].session->past_, sizeof(int64_t));
  // The step observer (ingotc check) watches a session's own calls only.
  const Session::StepObserver* observer = parts[0].session->step_observer_ ? &parts[0].session->step_observer_ : nullptr;
  const std::vector<Engine::Call>& calls = e.calls();
  size_t tail = calls.size();  // the last-row copy, then the logits' tail
  for (size_t step = 0; step < calls.size(); ++step) {
    const Engine::Call& c = calls[step];
    if (c.copy_last_row) {
      tail = step;
      break;
    }
    if (!c.per_session) {
      // A row-wise call reads no cache; with one part it still sees that part's past, as before.
      call(c, total, parts.size() == 1 ? parts[0].session->past_ : 0, 0, parts.size() == 1 ? parts[0].session->state_ : nullptr);
    } else if (!c.reads_pos && parts.size() > 1) {
      call_per_part(c, parts, first_row);
    } else {
      for (size_t p = 0; p < parts.size(); ++p) {
        Session& s = *parts[p].session;
        // pos shares its bytes with tensors that live when no call reads it: written only here.
        if (c.reads_pos) std::memcpy(arena_ + e.pos_offset(), &s.past_, sizeof(int64_t));
        call(c, static_cast<int64_t>(parts[p].ids.size()), s.past_, first_row[p], s.state_);
      }
    }
    if (observer) (*observer)(step, c, arena_, total);
  }
  const float* logits = reinterpret_cast<const float*>(arena_ + e.logits_offset());
  const size_t V = static_cast<size_t>(e.vocab());
  int64_t wanted = 0;  // logits rows over all parts
  for (const BatchPart& part : parts) wanted += part.logit_rows;
  // Several rows through the tail at once: the wanted rows gathered into the copy's own buffer,
  // then each tail call once over all of them.
  const bool wide_tail = tail < calls.size() && wanted > 1 && e.tail_batchable();
  if (wide_tail) {
    const Engine::Call& copy = calls[tail];
    uint8_t* dst = tail_buffer(copy.args[0].offset);
    int64_t i = 0;
    for (size_t p = 0; p < parts.size(); ++p) {
      const int64_t n = static_cast<int64_t>(parts[p].ids.size());
      for (int64_t r = n - parts[p].logit_rows; r < n; ++r, ++i)
        std::memcpy(dst + i * copy.row_bytes, arena_ + copy.args[1].offset + (first_row[p] + r) * copy.row_bytes,
                    static_cast<size_t>(copy.row_bytes));
    }
    for (size_t step = tail + 1; step < calls.size(); ++step) tail_call(calls[step], wanted);
    logits = reinterpret_cast<const float*>(tail_buffer(e.logits_offset()));
  }
  for (size_t p = 0, wide_row = 0; p < parts.size(); ++p) {
    Session& s = *parts[p].session;
    const int64_t n = static_cast<int64_t>(parts[p].ids.size());
    const int64_t rows = e.all_logits() ? n : parts[p].logit_rows;
    s.chunk_logits_.resize(static_cast<size_t>(rows) * V);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t at = first_row[p] + n - rows + r;  // the row in the call
      float* out = s.chunk_logits_.data() + static_cast<size_t>(r) * V;
      if (wide_tail) {
        std::memcpy(out, logits + wide_row++ * V, V * sizeof(float));
        continue;
      }
      if (tail == calls.size()) {  // every row's logits are in the arena
        std::memcpy(out, logits + static_cast<size_t>(e.all_logits() ? at : 0) * V, V * sizeof(float));
        continue;
      }
      // The tail (final norm, output matmul) runs on the one row copied out.
      const Engine::Call& copy = calls[tail];
      std::memcpy(arena_ + copy.args[0].offset, arena_ + copy.args[1].offset + at * copy.row_bytes, static_cast<size_t>(copy.row_bytes));
      if (observer) (*observer)(tail, copy, arena_, total);
      for (size_t step = tail + 1; step < calls.size(); ++step) {
        const Engine::Call& c = calls[step];
        if (c.copy_last_row) {  // a second copy (then the engine is not batchable): as it always did
          std::memcpy(arena_ + c.args[0].offset, arena_ + c.args[1].offset + (total - 1) * c.row_bytes, static_cast<size_t>(c.row_bytes));
          if (observer) (*observer)(step, c, arena_, total);
          continue;
        }
        // As the part's own call: a crafted schedule may touch the cache here (then the engine
        // is not batchable and this is the only part).
        call(c, total, s.past_, 0, s.state_);
        if (observer) (*observer)(step, calls[step], arena_, total);
      }
      std::memcpy(out, logits, V * sizeof(float));
    }
    std::memcpy(s.logits_.data(), s.chunk_logits_.data() + static_cast<size_t>(rows - 1) * V, V * sizeof(float));
    s.past_ += n;
    s.history_.insert(s.history_.end(), parts[p].ids.begin(), parts[p].ids.end());
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- Session

Session::~Session() { release_pages(state_, engine_.state_bytes()); }

StatusOr<std::unique_ptr<Session>> Session::create(const Engine& engine, int threads) {
  if (threads < 0 || threads > kMaxSessionThreads)
    return fail("a session takes 0 to " + std::to_string(kMaxSessionThreads) + " threads, not " + std::to_string(threads));
  std::unique_ptr<Session> s(new Session(engine));
  if (threads > 0) {
    INGOT_ASSIGN_OR_RETURN(s->own_, Batcher::create(engine, threads));
  }
  s->state_ = zeroed_pages(engine.state_bytes(), engine.bundle().residency() == BundleResidency::huge_pages);
  if (!s->state_)
    return fail("out of memory for the session's KV cache (" + std::to_string(engine.state_bytes()) + " bytes)", StatusCode::internal);
  s->logits_.assign(static_cast<size_t>(engine.vocab()), 0.0f);
  return s;
}

// Makes the cache rows of positions below `end` resident ahead of the kernels, kPopulateAhead
// positions at a time, one madvise(MADV_POPULATE_WRITE) per state slot: else every 4 KiB of every
// slot faults on the kernel thread that first writes it (on the AMD Zen 5 VMs 4-9 us each: 8
// sessions of tinyllama made 170 faults per decode step, ~0.7 ms of attention). A kernel without
// MADV_POPULATE_WRITE (before 5.14) leaves the pages to fault as before.
void Session::populate_cache(int64_t end) {
  if (end <= populated_) return;
  static std::atomic<bool> unsupported{false};
  const int64_t target = std::min(engine_.max_context(), (end + kPopulateAhead - 1) / kPopulateAhead * kPopulateAhead);
  if (!unsupported.load(std::memory_order_relaxed)) {
    const uintptr_t page = 4096;
    for (const Engine::StateSlot& slot : engine_.state_slots()) {
      const uintptr_t from = reinterpret_cast<uintptr_t>(state_ + slot.offset + populated_ * slot.row_bytes) & ~(page - 1);
      const uintptr_t to = reinterpret_cast<uintptr_t>(state_ + slot.offset + target * slot.row_bytes);
      if (to <= from) continue;
      if (::madvise(reinterpret_cast<void*>(from), to - from, MADV_POPULATE_WRITE) != 0 && (errno == EINVAL || errno == ENOSYS)) {
        unsupported.store(true, std::memory_order_relaxed);
        break;
      }
    }
  }
  populated_ = target;
}

void Session::reset() {
  past_ = 0;
  chunk_logits_.clear();
  history_.clear();
  std::fill(logits_.begin(), logits_.end(), 0.0f);
  // The cache rows beyond the position are never read; no need to clear them.
}

Status Session::truncate(int64_t n) {
  if (n < 0 || n > past_)
    return fail("cannot keep " + std::to_string(n) + " tokens: the session holds " + std::to_string(past_));
  if (n == past_) return Status::Ok();
  past_ = n;
  history_.resize(static_cast<size_t>(n));
  chunk_logits_.clear();
  // The logits belonged to the last token dropped: none are current until the next prefill.
  std::fill(logits_.begin(), logits_.end(), 0.0f);
  return Status::Ok();
}

Status Session::prefill(std::span<const int32_t> ids) {
  if (ids.empty()) return fail("no tokens to process");
  if (!own_) return fail("this session has no threads of its own (created with 0): run it through a Batcher");
  for (int32_t id : ids)
    if (id < 0 || id >= engine_.vocab())
      return fail("token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(engine_.vocab()));
  if (past_ + static_cast<int64_t>(ids.size()) > engine_.max_context())
    return fail(StatusCode::context_full, "the context is full: " + std::to_string(past_) + " tokens cached + " + std::to_string(ids.size()) +
                           " new > " + std::to_string(engine_.max_context()) + " (the bundle's --max-context)");
  for (size_t at = 0; at < ids.size(); at += static_cast<size_t>(engine_.max_batch())) {
    const size_t n = std::min(ids.size() - at, static_cast<size_t>(engine_.max_batch()));
    const BatchPart part{this, ids.subspan(at, n), 1};
    INGOT_RETURN_IF_ERROR(own_->run(std::span<const BatchPart>(&part, 1)));
  }
  return Status::Ok();
}

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::eos: return "eos";
    case StopReason::length: return "length";
    case StopReason::stopped: return "stop";
    case StopReason::context_full: return "context_full";
  }
  return "?";
}

Status Session::generate(std::span<const int32_t> prompt, const GenerateOptions& o, std::vector<int32_t>* out,
                         GenerateTimings* timings) {
  if (std::string bad = o.sampling.validate(); !bad.empty()) return fail(bad);
  if (past_ + static_cast<int64_t>(prompt.size()) > engine_.max_context())
    return fail(StatusCode::context_full, "the prompt (" + std::to_string(prompt.size()) +
                " tokens) is longer than the context left (" + std::to_string(engine_.max_context() - past_) + " of " +
                std::to_string(engine_.max_context()) + ")");
  // An empty prompt continues from the session's last token (its logits are current).
  if (prompt.empty() && past_ == 0) return fail("no tokens to process: the prompt is empty and the session holds none");
  Sampler sampler(o.sampling);
  GenerateTimings t;
  auto t0 = std::chrono::steady_clock::now();
  if (!prompt.empty()) INGOT_RETURN_IF_ERROR(prefill(prompt));
  t.prefill_ms = ms_since(t0);
  t.prefill_tokens = static_cast<int64_t>(prompt.size());
  const int32_t eos = engine_.tokenizer() ? engine_.tokenizer()->spec().eos : -1;
  t0 = std::chrono::steady_clock::now();
  for (int32_t i = 0; i < o.max_new_tokens; ++i) {
    const int32_t next = sampler.sample(logits_, history_);
    if (out) out->push_back(next);
    const bool keep_going = !o.on_token || o.on_token(next);
    t.stop = o.stop_at_eos && next == eos ? StopReason::eos
             : !keep_going                ? StopReason::stopped
             : i + 1 == o.max_new_tokens  ? StopReason::length
                                          : t.stop;
    const bool last = t.stop != StopReason::length || i + 1 == o.max_new_tokens;
    if (last && !o.keep_last) break;
    if (past_ + 1 > engine_.max_context()) {  // no room for this token: the context is full
      t.stop = StopReason::context_full;
      break;
    }
    INGOT_RETURN_IF_ERROR(decode(next));
    ++t.decode_tokens;
    if (last) break;
  }
  t.decode_ms = ms_since(t0);
  if (timings) *timings = t;
  return Status::Ok();
}

// File: magic, version, the manifest's size and the bundle's file size (a cheap identity check),
// position, history, then for every state slot the first `position` rows (each slot's row size as
// Engine::load checked it: Engine::state_slots).
namespace {
constexpr char kSessionMagic[8] = {'I', 'N', 'G', 'O', 'T', 'K', 'V', '1'};
}

Status Session::save(const std::string& path) const {
  // Atomically (runtime/atomic_file.h): a temporary beside `path`, renamed into place; only a new
  // or regular, writable file is replaced.
  auto out = AtomicFile::create(path);
  if (!out.ok()) return out.status();
  AtomicFile& f = **out;
  const pb::Manifest& m = engine_.bundle().manifest();
  const uint64_t identity[2] = {engine_.bundle().file_size(), static_cast<uint64_t>(m.memory_plan().state_bytes())};
  const int64_t past = past_, hist = static_cast<int64_t>(history_.size());
  INGOT_RETURN_IF_ERROR(f.write(kSessionMagic, 8));
  INGOT_RETURN_IF_ERROR(f.write(identity, sizeof(identity)));
  INGOT_RETURN_IF_ERROR(f.write(&past, 8));
  INGOT_RETURN_IF_ERROR(f.write(&hist, 8));
  INGOT_RETURN_IF_ERROR(f.write(history_.data(), history_.size() * 4));
  for (const Engine::StateSlot& slot : engine_.state_slots())
    INGOT_RETURN_IF_ERROR(f.write(state_ + slot.offset, static_cast<size_t>(slot.row_bytes * past_)));
  INGOT_RETURN_IF_ERROR(f.write(logits_.data(), logits_.size() * 4));
  return f.commit();
}

Status Session::restore(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return fail(StatusCode::io, path + ": cannot open file");
  const pb::Manifest& m = engine_.bundle().manifest();
  char magic[8];
  uint64_t identity[2];
  int64_t past = 0, hist = 0;
  f.read(magic, 8);
  f.read(reinterpret_cast<char*>(identity), sizeof(identity));
  f.read(reinterpret_cast<char*>(&past), 8);
  f.read(reinterpret_cast<char*>(&hist), 8);
  if (!f || std::memcmp(magic, kSessionMagic, 8) != 0) return fail(StatusCode::io, path + ": not an Ingot session file");
  if (identity[0] != engine_.bundle().file_size() || identity[1] != static_cast<uint64_t>(m.memory_plan().state_bytes()))
    return fail(StatusCode::io, path + ": saved from a different bundle");
  if (past < 0 || past > engine_.max_context() || hist < 0 || hist > engine_.max_context())
    return fail(StatusCode::io, path + ": corrupt session file (position " + std::to_string(past) + ")");
  // The rest has a size fixed by the position and the history's length: the file must be exactly
  // that long, so nothing is allocated for bytes it does not hold (the whole state arena of a long
  // context can be gigabytes).
  constexpr int64_t kHeader = 8 + sizeof(identity) + 8 + 8;
  int64_t rows = 0, want = 0;  // bytes of state rows; of the whole file
  for (const Engine::StateSlot& slot : engine_.state_slots())
    if (!add_ok(rows, slot.row_bytes * past, &rows)) return fail(StatusCode::io, path + ": corrupt session file (state too large)");
  if (!add_ok(kHeader + hist * 4, rows, &want) || !add_ok(want, static_cast<int64_t>(logits_.size() * 4), &want))
    return fail(StatusCode::io, path + ": corrupt session file (too large)");
  f.seekg(0, std::ios::end);
  const std::streamoff size = f.tellg();
  f.seekg(kHeader);
  if (!f || size < 0) return fail(StatusCode::io, path + ": cannot read its size");
  if (size != want)
    return fail(StatusCode::io, path + ": " + (size < want ? "truncated session file" : "corrupt session file") + " (" +
                                    std::to_string(size) + " bytes, where position " + std::to_string(past) + " and " +
                                    std::to_string(hist) + " tokens of history take " + std::to_string(want) + ")");
  std::vector<int32_t> history(static_cast<size_t>(hist));
  f.read(reinterpret_cast<char*>(history.data()), static_cast<std::streamsize>(history.size() * 4));
  for (int32_t id : history)
    if (id < 0 || id >= engine_.vocab())
      return fail(StatusCode::io, path + ": corrupt session file (token id " + std::to_string(id) + " outside the vocabulary of " +
                                      std::to_string(engine_.vocab()) + ")");
  // past <= max_context: every slot holds that many rows (Engine::load checked it).
  std::vector<uint8_t> state(static_cast<size_t>(rows));
  f.read(reinterpret_cast<char*>(state.data()), static_cast<std::streamsize>(state.size()));
  std::vector<float> logits(logits_.size());
  f.read(reinterpret_cast<char*>(logits.data()), static_cast<std::streamsize>(logits.size() * 4));
  if (!f) return fail(StatusCode::io, path + ": truncated session file");
  // Only now, with everything read, does the session change.
  const uint8_t* from = state.data();
  for (const Engine::StateSlot& slot : engine_.state_slots()) {
    std::memcpy(state_ + slot.offset, from, static_cast<size_t>(slot.row_bytes * past));
    from += slot.row_bytes * past;
  }
  past_ = past;
  history_ = std::move(history);
  logits_ = std::move(logits);
  return Status::Ok();
}

}  // namespace ingot
