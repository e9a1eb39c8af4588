// Running a bundle: an Engine is a loaded model (the mapped bundle, its kernels resolved, the
// schedule turned into calls); it is immutable after load and shared by any number of Sessions.
// A Session owns everything one conversation changes: the activation arena, the KV cache (state
// arena), scratch, its thread pool and the position. Sessions on one Engine may run concurrently
// on different threads; one Session is used by one thread at a time.
//
// Errors are Status values (base/status.h) with a code a caller can act on; nothing throws.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "runtime/bundle.h"
#include "runtime/kernel_library.h"
#include "runtime/sampler.h"
#include "runtime/thread_pool.h"
#include "runtime/tokenizer.h"

namespace ingot {

// The most kernel threads a session takes (Session::create); the command-line tools also cap
// them at the host's hardware threads.
inline constexpr int kMaxSessionThreads = 1024;

struct EngineOptions {
  // Check every section's SHA-256 before loading (the weights too). Without it, the manifest's and
  // the chosen kernels section's are checked: they are small.
  bool verify = false;
  // The kernel set to run, by tier name; empty: $INGOT_TIER when set, otherwise the most
  // demanding set this host runs (BundleOpenOptions::tier).
  std::string tier;
  // A trusted-keys file: the bundle must be signed by one of its keys. Empty: $INGOT_TRUSTED_KEYS,
  // else $XDG_CONFIG_HOME/ingot/trusted-keys if it exists (trusted_keys_path), else no requirement.
  std::string trusted_keys = {};
  // Read the bundle into memory backed by 2 MiB transparent huge pages instead of mapping the
  // file (where the system offers them; BundleResidency): the weights then stream through few
  // TLB entries whatever folios the page cache holds, at the price of a copy at load (on the AMD
  // Zen 5 VMs 0.15-1.2 s for 590 MB: each first write of fresh memory faults on the host) and of
  // pages no other process shares. `ingot serve` asks for it; $INGOT_WEIGHTS=huge-pages or
  // =mapped overrides this option for any command.
  bool huge_pages = false;
};

class Engine {
 public:
  static StatusOr<std::unique_ptr<Engine>> load(const std::string& path, const EngineOptions& options = {});
  ~Engine();

  const Bundle& bundle() const { return *bundle_; }
  // The CPU tier whose kernels run ("" for a bundle without kernels).
  std::string tier() const { return bundle_->tier(); }
  // The model's tokenizer; null if the bundle has none.
  const Tokenizer* tokenizer() const { return tokenizer_.get(); }
  int64_t max_context() const { return max_context_; }
  int64_t max_batch() const { return max_batch_; }
  int64_t vocab() const { return vocab_; }
  // Compiled with `ingotc compile --all-logits`: every call leaves logits for each of its tokens
  // (Session::chunk_logits), not just the last.
  bool all_logits() const { return all_logits_; }
  double load_ms() const { return load_ms_; }

  // One resolved step of the schedule.
  struct Arg {
    enum class Kind { null, arena, weight, state, scratch } kind = Kind::null;
    int64_t offset = 0;              // arena or state arena offset
    const uint8_t* data = nullptr;   // weights: in the mapping
    // Arena tensors laid out a row per token of the call ([tokens, ...]): the bytes of one row
    // (its kernel's contract), by which a per-session call's view moves to its session's rows.
    // After the last-row copy, the bytes of a row of the one-row tensors ([1, ...]), which a
    // Batcher widens to one row per wanted logits row. 0: not rows.
    int64_t row_bytes = 0;
  };
  struct Call {
    using Fn = void (*)(const void* const*, const int64_t*, int32_t, int32_t);
    Fn fn = nullptr;                 // null for a builtin
    std::string node;
    std::vector<Arg> args;
    std::vector<int> dims;           // pb::DynamicDim values
    bool copy_last_row = false;
    int64_t row_bytes = 0;
    // Depends on a session's position or KV cache (attention, the RoPE tables: a state slot, an
    // argument whose size grows with the past, or the pos input): in a batched call it runs once per session, on that
    // session's rows. Every other call is row-wise and runs once over all rows.
    bool per_session = false;
    bool reads_pos = false;  // the pos input is among its arguments
  };
  const std::vector<Call>& calls() const { return calls_; }
  // Whether a Batcher can run several sessions in one call (and logits for several rows):
  // every per-session call sees token rows only and nothing after the last-row copy is
  // per-session. Empty when it can; else why not.
  const std::string& not_batchable() const { return not_batchable_; }
  // Whether the calls after the last-row copy (final norm, output matmul) can run on several rows
  // at once: all their arena tensors are one-row tensors. Else they run once per wanted row.
  bool tail_batchable() const { return tail_batchable_; }
  // The memory plan's state slots, in order: offset in the state arena and bytes per context
  // position, checked at load to hold max_context positions. Sessions save and restore these rows.
  struct StateSlot {
    int64_t offset = 0, row_bytes = 0;
  };
  const std::vector<StateSlot>& state_slots() const { return state_slots_; }
  int64_t arena_bytes() const { return arena_bytes_; }
  int64_t state_bytes() const { return state_bytes_; }
  int64_t scratch_per_thread() const { return scratch_per_thread_; }
  // Arena offsets of the inputs token_ids and pos, and of the logits output.
  int64_t token_ids_offset() const { return token_ids_offset_; }
  int64_t pos_offset() const { return pos_offset_; }
  int64_t logits_offset() const { return logits_offset_; }

 private:
  Engine() = default;
  std::unique_ptr<Bundle> bundle_;
  std::unique_ptr<KernelLibrary> kernels_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<Call> calls_;
  std::vector<StateSlot> state_slots_;
  int64_t max_context_ = 0, max_batch_ = 0, vocab_ = 0;
  bool all_logits_ = false;
  std::string not_batchable_;
  bool tail_batchable_ = false;
  int64_t arena_bytes_ = 0, state_bytes_ = 0, scratch_per_thread_ = 0;
  int64_t token_ids_offset_ = -1, pos_offset_ = -1, logits_offset_ = -1;
  double load_ms_ = 0;
};

struct GenerateOptions {
  SamplingParams sampling;
  int32_t max_new_tokens = 32;
  bool stop_at_eos = true;
  // Called with each new id as soon as it is sampled; return false to stop.
  std::function<bool(int32_t)> on_token;
  // Whether the last sampled id is also run through the model, so that the session holds every
  // generated token and a later prefill or generate continues after it (one decode step more).
  // A caller that will not continue the session (a one-shot `ingot run`) may skip it.
  bool keep_last = true;
};

// Why generation stopped: the end-of-text token, max_new_tokens, on_token asked to stop (a stop
// string, say), or the context is full (nothing more fits).
enum class StopReason { eos, length, stopped, context_full };
const char* stop_reason_name(StopReason r);  // "eos", "length", "stop", "context_full"

struct GenerateTimings {
  double prefill_ms = 0, decode_ms = 0;
  int64_t prefill_tokens = 0, decode_tokens = 0;
  StopReason stop = StopReason::length;
};

class Session;

// One session's share of a batched call: its new tokens, and how many of their last rows need
// next-token logits (1: the last; more: a speculative verification wants each drafted
// position's).
struct BatchPart {
  Session* session = nullptr;
  std::span<const int32_t> ids;
  int32_t logit_rows = 1;
};

// The activation arena, scratch and threads that run calls of the schedule. run() takes the new
// tokens of several sessions of one engine as one call: the row-wise kernels (matmuls, norms,
// SwiGLU) see every row at once, so each weight is read once per call for all sessions; the
// per-session calls (attention over the session's own KV cache, the RoPE tables at its
// position) run once per session on its rows. A row's arithmetic does not depend on the rows
// beside it, so every session ends bit for bit as if it had run its tokens alone.
// A Session owns one for its own calls; a server owns one and batches sessions through it.
class Batcher {
 public:
  // 1 to kMaxSessionThreads threads (the caller's is one of them).
  static StatusOr<std::unique_ptr<Batcher>> create(const Engine& engine, int threads);
  ~Batcher();
  int threads() const { return pool_.size(); }
  // Each part a distinct session of this engine with 1..max_batch tokens, together at most
  // max_batch; logit_rows from 1 to the part's tokens. Afterwards each session holds its tokens
  // and the logits of its last logit_rows rows (Session::chunk_logits; every row with an
  // all_logits engine). An error (bad id, a full context: code context_full, too many tokens)
  // changes no session.
  Status run(std::span<const BatchPart> parts);

 private:
  friend class Session;
  Batcher(const Engine& e, int threads);
  void bind(const Engine::Call& c, int64_t tokens, int64_t past, int64_t row, uint8_t* state, const void** argv, int64_t* dims) const;
  void call(const Engine::Call& c, int64_t tokens, int64_t past, int64_t row, uint8_t* state);
  void call_per_part(const Engine::Call& c, std::span<const BatchPart> parts, std::span<const int64_t> first_row);
  void tail_call(const Engine::Call& c, int64_t rows);
  const Engine& engine_;
  ThreadPool pool_;
  uint8_t* arena_ = nullptr;
  uint8_t* scratch_ = nullptr;
  std::vector<const void*> argv_;
  std::vector<int64_t> part_dims_;  // call_per_part: kDimWords per part
  // The row-wise calls' work counter (kernel_contract.h, kDimWorkCounter), zeroed before each
  // call: matmul threads take their chunks of panels from it. On its own cache line: the threads
  // add to it while they write their outputs.
  alignas(64) std::atomic<int64_t> work_counter_{0};
  char work_counter_pad_[64 - sizeof(std::atomic<int64_t>)] = {};
  int64_t work_counter() {
    work_counter_.store(0, std::memory_order_relaxed);  // published to the workers by the pool's dispatch
    return static_cast<int64_t>(reinterpret_cast<uintptr_t>(&work_counter_));
  }
  // For a tail over several rows: each one-row tensor of the tail (by arena offset) gets its own
  // buffer of max_batch rows (pages become resident as they are used).
  struct TailBuffer {
    int64_t offset = 0, bytes = 0;
    uint8_t* data = nullptr;
  };
  std::vector<TailBuffer> tail_buffers_;
  uint8_t* tail_buffer(int64_t offset) const;
};

class Session {
 public:
  // 1 to kMaxSessionThreads kernel threads (the caller's thread is one of them). If the system
  // cannot start them all, the session runs on those it could start.
  static StatusOr<std::unique_ptr<Session>> create(const Engine& engine, int threads);
  ~Session();

  // Appends tokens to the context (in chunks of at most max_batch) and leaves the next-token
  // logits of the last one in logits(). An error (bad id; the context would overflow: code
  // context_full) changes nothing.
  Status prefill(std::span<const int32_t> ids);
  Status decode(int32_t id) { return prefill(std::span<const int32_t>(&id, 1)); }
  std::span<const float> logits() const { return logits_; }
  // The logits rows of the last call (the last chunk of a prefill): one row per token of it when
  // the engine has all_logits(), else the last token's row only. Valid until the next call.
  // After a Batcher call: the rows its part asked for (logit_rows; every row with all_logits).
  std::span<const float> chunk_logits() const { return chunk_logits_; }
  int64_t position() const { return past_; }  // tokens in the KV cache
  const std::vector<int32_t>& history() const { return history_; }
  void reset();
  // Makes the KV cache's rows of the first `positions` positions resident now instead of as the
  // context grows (a server's slots at start: in huge pages the first write of each 2 MiB zeroes
  // all of it, and a request should not wait for that).
  void make_cache_resident(int64_t positions) { populate_cache(positions); }
  // Keeps the first n tokens of the context and forgets the rest (their cache rows are rewritten
  // by what follows): a conversation whose re-tokenized history differs from the tokens cached
  // continues from where they agree. The logits are not current until the next prefill.
  Status truncate(int64_t n);

  // Prefills `prompt`, then samples up to max_new_tokens. Returns the new ids (the prompt excluded);
  // timings->stop says why it stopped. With keep_last every sampled id ends up in the KV cache, so
  // that generate(a) then generate(b) computes what one generate over the same tokens would.
  Status generate(std::span<const int32_t> prompt, const GenerateOptions& options, std::vector<int32_t>* out,
                  GenerateTimings* timings = nullptr);

  // The KV cache, position and history to a file, and back (same bundle only).
  // Errors have the code io.
  Status save(const std::string& path) const;
  Status restore(const std::string& path);

  // Called after every step of the schedule with the step's index, the call, the session's
  // activation arena and the step's token count: `ingotc check` compares each kernel's output
  // with the reference evaluator this way. Empty (the default) costs nothing.
  using StepObserver = std::function<void(size_t step, const Engine::Call& call, const uint8_t* arena, int64_t tokens)>;
  void set_step_observer(StepObserver o) { step_observer_ = std::move(o); }

 private:
  friend class Batcher;
  explicit Session(const Engine& e) : engine_(e) {}
  const Engine& engine_;
  std::unique_ptr<Batcher> own_;  // runs this session's prefill and decode calls
  uint8_t* state_ = nullptr;
  // The cache's rows below this position are resident (populate_cache); pages stay until the
  // session is destroyed.
  int64_t populated_ = 0;
  static constexpr int64_t kPopulateAhead = 64;
  void populate_cache(int64_t end);
  int64_t past_ = 0;
  std::vector<int32_t> history_;
  std::vector<float> logits_;        // the next-token logits (the last row)
  std::vector<float> chunk_logits_;  // the rows of the last call (chunk_logits)
  StepObserver step_observer_;
};

}  // namespace ingot
