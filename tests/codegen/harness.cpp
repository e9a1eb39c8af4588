#include "tests/codegen/harness.h"
#include "runtime/cpu_features.h"

#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>

#include "ir/builder.h"
#include "ir/evaluator.h"
#include "ir/quant.h"

namespace ingot::cgtest {

// ---------------------------------------------------------------- the library
StatusOr<std::unique_ptr<KernelLibrary>> KernelLibrary::open(const std::string& path) {
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) return Status::Error("dlopen " + path + ": " + dlerror());
  auto lib = std::unique_ptr<KernelLibrary>(new KernelLibrary());
  lib->handle_ = h;
  return lib;
}

KernelLibrary::~KernelLibrary() {
  if (handle_) dlclose(handle_);
}

KernelFn KernelLibrary::find(const std::string& symbol) const {
  return reinterpret_cast<KernelFn>(dlsym(handle_, symbol.c_str()));
}

StatusOr<std::unique_ptr<KernelLibrary>> compile_and_open(const std::vector<KernelSpec>& kernels,
                                                          const CodegenOptions& options, CompileStats* stats) {
  static std::atomic<int> counter{0};
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("ingot-kernels-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + ".so"))
                               .string();
  INGOT_RETURN_IF_ERROR(compile_kernels(kernels, options, path, stats));
  auto lib = KernelLibrary::open(path);
  std::filesystem::remove(path);
  return lib;
}

// ---------------------------------------------------------------- cases
namespace {

const char* rope_name(RopeLayout r) {
  return r == RopeLayout::interleaved ? "ropei" : r == RopeLayout::rotate_half ? "ropeh" : "";
}

std::vector<float> random_floats(std::mt19937_64& rng, int64_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& f : v) f = u(rng);
  return v;
}

// A weight tensor of type t from f32 values, quantized by the reference quantizers.
Tensor weight_tensor(ElementType t, int64_t N, int64_t K, const std::vector<float>& f) {
  Tensor w = Tensor::zeros(t, {N, K});
  uint8_t* d = w.mutable_raw();
  switch (t) {
    case ElementType::f32: std::memcpy(d, f.data(), f.size() * 4); break;
    case ElementType::f16:
      for (size_t i = 0; i < f.size(); ++i) {
        const uint16_t h = f32_to_f16(f[i]);
        std::memcpy(d + 2 * i, &h, 2);
      }
      break;
    case ElementType::q8_0: quantize_row_q8_0(f.data(), reinterpret_cast<BlockQ8_0*>(d), N * K); break;
    case ElementType::q4_0: quantize_row_q4_0(f.data(), reinterpret_cast<BlockQ4_0*>(d), N * K); break;
    case ElementType::bf16:
      for (size_t i = 0; i < f.size(); ++i) {
        const uint16_t h = f32_to_bf16(f[i]);
        std::memcpy(d + 2 * i, &h, 2);
      }
      break;
    case ElementType::q5_0:
    case ElementType::q4_1:
    case ElementType::q5_1:
    case ElementType::iq4_nl: {
      // Random blocks (every quant pattern is valid) with scales that give values of order one;
      // q4_1/q5_1 with negative minimums, as ggml's quantizer makes them for centred weights.
      std::mt19937_64 rng(static_cast<uint64_t>(N * 1000033 + K));
      for (size_t i = 0; i < w.nbytes(); ++i) d[i] = static_cast<uint8_t>(rng());
      std::uniform_real_distribution<float> u(0.5f, 1.0f);
      const int64_t bb = type_info(t).block_bytes;
      const float levels = t == ElementType::q5_0 ? 16 : t == ElementType::q4_1 ? 7.5f : t == ElementType::q5_1 ? 15.5f : 127;
      for (int64_t b = 0; b < N * K / kQK; ++b) {
        const uint16_t scale = f32_to_f16(u(rng) / levels);
        std::memcpy(d + b * bb, &scale, 2);
        if (t == ElementType::q4_1 || t == ElementType::q5_1) {
          const uint16_t m = f32_to_f16(-u(rng));
          std::memcpy(d + b * bb + 2, &m, 2);
        }
      }
      break;
    }
    case ElementType::q4_k:
    case ElementType::q6_k: {
      // No k-quant quantizer in ir/ yet: random blocks (every byte pattern is a valid block) with
      // scales chosen so values are of order one, like the other types.
      std::mt19937_64 rng(static_cast<uint64_t>(N * 1000003 + K));
      for (size_t i = 0; i < w.nbytes(); ++i) d[i] = static_cast<uint8_t>(rng());
      const int64_t blocks = N * K / kQK_K;
      std::uniform_real_distribution<float> u(0.5f, 1.0f);
      for (int64_t b = 0; b < blocks; ++b) {
        if (t == ElementType::q4_k) {
          auto* blk = reinterpret_cast<BlockQ4_K*>(d) + b;
          blk->d = f32_to_f16(u(rng) / 63 / 15);
          blk->dmin = f32_to_f16(u(rng) / 63 / 2);
        } else {
          auto* blk = reinterpret_cast<BlockQ6_K*>(d) + b;
          blk->d = f32_to_f16(u(rng) / 127 / 32);
        }
      }
      break;
    }
    case ElementType::q5_k:
    case ElementType::q3_k:
    case ElementType::q2_k:
    case ElementType::iq4_xs: {
      // Random blocks (every byte pattern is a valid block) with f16 scales that make values of
      // order one: d * (largest scale) * (largest quant) ~ 1.
      std::mt19937_64 rng(static_cast<uint64_t>(N * 1000003 + K) ^ static_cast<uint64_t>(t));
      for (size_t i = 0; i < w.nbytes(); ++i) d[i] = static_cast<uint8_t>(rng());
      std::uniform_real_distribution<float> u(0.5f, 1.0f);
      for (int64_t b = 0; b < N * K / kQK_K; ++b) {
        if (t == ElementType::q5_k) {
          auto* blk = reinterpret_cast<BlockQ5_K*>(d) + b;
          blk->d = f32_to_f16(u(rng) / 63 / 31);
          blk->dmin = f32_to_f16(u(rng) / 63 / 2);
        } else if (t == ElementType::q3_k) {
          reinterpret_cast<BlockQ3_K*>(d)[b].d = f32_to_f16(u(rng) / 32 / 4);
        } else if (t == ElementType::q2_k) {
          auto* blk = reinterpret_cast<BlockQ2_K*>(d) + b;
          blk->d = f32_to_f16(u(rng) / 15 / 3);
          blk->dmin = f32_to_f16(u(rng) / 15 / 2);
        } else {
          reinterpret_cast<BlockIQ4_XS*>(d)[b].d = f32_to_f16(u(rng) / 32 / 127);
        }
      }
      break;
    }
    default: INGOT_ASSERT(false, "unsupported weight type in a test case");
  }
  return w;
}

Status run_reference(CaseData& d) {
  Evaluator ev(d.model);
  INGOT_ASSIGN_OR_RETURN(auto r, ev.run(d.inputs));
  d.expected = r[0].to_f32_vector();
  return Status::Ok();
}

}  // namespace

std::string MatMulCase::name() const { return kernel_name() + "_m" + std::to_string(M); }

std::string MatMulCase::kernel_name() const {
  std::string n = "mm_" + std::string(type_name(weight)) + (act_q8 ? "_aq8" : "") + "_n" + std::to_string(N) + "_k" +
                  std::to_string(K);
  if (bias) n += "_bias";
  if (rope != RopeLayout::none) n += std::string("_") + rope_name(rope) + std::to_string(rope_heads) + "x" + std::to_string(head_dim);
  if (swiglu) n += "_swiglu";
  if (residual) n += "_res";
  if (block_tokens) n += "_bt" + std::to_string(block_tokens);
  return n;
}

std::string RMSNormCase::name() const { return kernel_name() + "_m" + std::to_string(M); }
std::string RMSNormCase::kernel_name() const { return "rms_d" + std::to_string(D); }

StatusOr<std::unique_ptr<CaseData>> make_case(const MatMulCase& c, uint64_t seed, bool with_reference) {
  auto d = std::make_unique<CaseData>();
  std::mt19937_64 rng(seed);
  const int64_t nout = c.swiglu ? c.N / 2 : c.N;
  d->rows = c.M;
  d->out_cols = nout;
  d->x = random_floats(rng, c.M * c.K);
  auto w = std::make_shared<Tensor>(weight_tensor(c.weight, c.N, c.K, random_floats(rng, c.N * c.K)));
  GraphBuilder b(d->model);
  std::vector<Value> ins = {b.parameter("x", ElementType::f32, static_shape({c.M, c.K})), b.constant(w, "w")};
  d->inputs["x"] = Tensor::from_f32({c.M, c.K}, d->x);
  if (c.bias) {
    d->bias = random_floats(rng, c.N);
    ins.push_back(b.parameter("bias", ElementType::f32, static_shape({c.N})));
    d->inputs["bias"] = Tensor::from_f32({c.N}, d->bias);
  }
  if (c.rope != RopeLayout::none) {
    const int64_t half = c.head_dim / 2;
    for (int64_t t = 0; t < c.M; ++t)
      for (int64_t i = 0; i < half; ++i) {
        const double a = static_cast<double>(t + 5) * std::pow(10000.0, -2.0 * static_cast<double>(i) / static_cast<double>(c.head_dim));
        d->cos.push_back(static_cast<float>(std::cos(a)));
        d->sin.push_back(static_cast<float>(std::sin(a)));
      }
    ins.push_back(b.parameter("cos", ElementType::f32, static_shape({c.M, half})));
    ins.push_back(b.parameter("sin", ElementType::f32, static_shape({c.M, half})));
    d->inputs["cos"] = Tensor::from_f32({c.M, half}, d->cos);
    d->inputs["sin"] = Tensor::from_f32({c.M, half}, d->sin);
  }
  if (c.residual) {
    d->residual = random_floats(rng, c.M * nout);
    ins.push_back(b.parameter("residual", ElementType::f32, static_shape({c.M, nout})));
    d->inputs["residual"] = Tensor::from_f32({c.M, nout}, d->residual);
  }
  const bool fused = c.bias || c.rope != RopeLayout::none || c.swiglu || c.residual;
  AttrMap attrs = {{"act_quant", Attribute::String(c.act_q8 ? "q8" : "none")}};
  if (fused) {
    attrs["has_bias"] = Attribute::Bool(c.bias);
    attrs["has_residual"] = Attribute::Bool(c.residual);
    attrs["activation"] = Attribute::String(c.swiglu ? "swiglu" : "none");
    if (c.rope != RopeLayout::none) {
      attrs["rope"] = Attribute::String(c.rope == RopeLayout::interleaved ? "interleaved" : "rotate_half");
      attrs["rope_q_heads"] = Attribute::Int(c.rope_heads);
      attrs["rope_k_heads"] = Attribute::Int(0);
      attrs["head_dim"] = Attribute::Int(c.head_dim);
    }
  }
  Node* n = b.node(fused ? Op::FusedMatMul : Op::WeightMatMul, ins, attrs, "mm");
  if (!b.ok()) return b.status();
  b.result(n->out(0), "y");
  INGOT_RETURN_IF_ERROR(b.status());
  INGOT_ASSIGN_OR_RETURN(d->spec, kernel_spec_for(*n, c.kernel_name()));
  d->spec.matmul.block_tokens = c.block_tokens;
  INGOT_ASSIGN_OR_RETURN(d->packed, pack_matmul_weights(d->spec.matmul, w->raw(), w->nbytes()));
  if (with_reference) INGOT_RETURN_IF_ERROR(run_reference(*d));
  return d;
}

StatusOr<std::unique_ptr<CaseData>> make_case(const RMSNormCase& c, uint64_t seed, bool with_reference) {
  auto d = std::make_unique<CaseData>();
  std::mt19937_64 rng(seed);
  d->rows = c.M;
  d->out_cols = c.D;
  d->x = random_floats(rng, c.M * c.D, -3.0f, 3.0f);
  d->norm_weight = random_floats(rng, c.D, 0.5f, 1.5f);
  GraphBuilder b(d->model);
  Value x = b.parameter("x", ElementType::f32, static_shape({c.M, c.D}));
  Value w = b.parameter("w", ElementType::f32, static_shape({c.D}));
  d->inputs["x"] = Tensor::from_f32({c.M, c.D}, d->x);
  d->inputs["w"] = Tensor::from_f32({c.D}, d->norm_weight);
  Node* n = b.node(Op::RMSNorm, {x, w}, {{"eps", Attribute::Float(c.eps)}}, "norm");
  if (!b.ok()) return b.status();
  b.result(n->out(0), "y");
  INGOT_RETURN_IF_ERROR(b.status());
  INGOT_ASSIGN_OR_RETURN(d->spec, kernel_spec_for(*n, c.kernel_name()));
  if (with_reference) INGOT_RETURN_IF_ERROR(run_reference(*d));
  return d;
}

// ---------------------------------------------------------------- running
namespace {

constexpr size_t kGuard = 256;        // sentinel bytes before and after each written buffer
constexpr uint8_t kSentinel = 0xA5;

// A 64-byte aligned buffer with sentinel bytes on both sides.
class Guarded {
 public:
  explicit Guarded(size_t bytes) : bytes_(bytes) {
    const size_t total = (bytes + 2 * kGuard + 63) / 64 * 64;  // aligned_alloc wants whole alignments
    mem_ = static_cast<uint8_t*>(std::aligned_alloc(64, total));
    std::memset(mem_, kSentinel, total);
  }
  ~Guarded() { std::free(mem_); }
  Guarded(const Guarded&) = delete;
  uint8_t* data() { return mem_ + kGuard; }
  bool intact() const {
    for (size_t i = 0; i < kGuard; ++i)
      if (mem_[i] != kSentinel || mem_[kGuard + bytes_ + i] != kSentinel) return false;
    return true;
  }

 private:
  uint8_t* mem_;
  size_t bytes_;
};

// Inputs copied into 64-byte aligned memory, as the runtime will place them.
struct Args {
  std::vector<std::unique_ptr<uint8_t, decltype(&std::free)>> owned;
  const void* slots[kMatMulArgCount] = {};
  int64_t dims[kDimWords] = {};
  std::atomic<int64_t> work_counter{0};
  // The runtime's way (threads take chunks of panels from the counter), or the split by thread
  // index that a caller without a counter gets.
  void use_work_counter(bool on) {
    work_counter.store(0);
    dims[kDimWorkCounter] = on ? static_cast<int64_t>(reinterpret_cast<uintptr_t>(&work_counter)) : 0;
  }
  const void* put(const void* src, size_t bytes) {
    if (bytes == 0) return nullptr;
    auto* p = static_cast<uint8_t*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
    std::memcpy(p, src, bytes);
    owned.emplace_back(p, &std::free);
    return p;
  }
};

void fill_args(Args& a, const CaseData& d, void* y, void* scratch) {
  a.dims[0] = d.rows;
  a.slots[0] = y;
  a.slots[1] = a.put(d.x.data(), d.x.size() * 4);
  if (d.spec.kind == "rms_norm") {
    a.slots[kRMSNormW] = a.put(d.norm_weight.data(), d.norm_weight.size() * 4);
    return;
  }
  a.slots[kMatMulW] = a.put(d.packed.data(), d.packed.size());
  a.slots[kMatMulBias] = a.put(d.bias.data(), d.bias.size() * 4);
  a.slots[kMatMulCos] = a.put(d.cos.data(), d.cos.size() * 4);
  a.slots[kMatMulSin] = a.put(d.sin.data(), d.sin.size() * 4);
  a.slots[kMatMulResidual] = a.put(d.residual.data(), d.residual.size() * 4);
  a.slots[kMatMulScratch] = scratch;
}

}  // namespace

RunResult run_case(KernelFn fn, const CaseData& d, int threads, bool work_counter, int only_thread) {
  RunResult r;
  const size_t out_bytes = static_cast<size_t>(d.rows * d.out_cols) * 4;
  Guarded y(out_bytes);
  // Unwritten outputs stay NaN and poison the error.
  const float nan = std::nanf("");
  for (size_t i = 0; i < out_bytes / 4; ++i) std::memcpy(y.data() + 4 * i, &nan, 4);
  const size_t scratch_bytes = static_cast<size_t>(scratch_bytes_per_thread(d.spec, d.rows)) * static_cast<size_t>(threads);
  Guarded scratch(scratch_bytes);
  Args a;
  fill_args(a, d, y.data(), scratch_bytes ? scratch.data() : nullptr);
  a.use_work_counter(work_counter);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    if (only_thread < 0 || t == only_thread) pool.emplace_back([&, t] { fn(a.slots, a.dims, t, threads); });
  for (auto& th : pool) th.join();
  r.sentinels_ok = y.intact() && scratch.intact();
  double num = 0, den = 0;
  for (size_t i = 0; i < out_bytes / 4; ++i) {
    float v;
    std::memcpy(&v, y.data() + 4 * i, 4);
    if (v != v) ++r.unwritten;
    const double e = static_cast<double>(d.expected[i]);
    num += (v - e) * (v - e);
    den += e * e;
  }
  r.nmse = den > 0 ? num / den : num;
  if (!r.sentinels_ok) r.problem = "a sentinel byte around the output or scratch was overwritten";
  else if (!(r.nmse == r.nmse)) r.problem = "NaN in the output (an element left unwritten?)";
  return r;
}

double time_kernel(KernelFn fn, const CaseData& d, int threads, int iterations, int weight_copies) {
  const size_t out_bytes = static_cast<size_t>(d.rows * d.out_cols) * 4;
  Guarded y(out_bytes);
  const size_t scratch_bytes = static_cast<size_t>(scratch_bytes_per_thread(d.spec, d.rows)) * static_cast<size_t>(threads);
  Guarded scratch(scratch_bytes);
  Args a;
  fill_args(a, d, y.data(), scratch_bytes ? scratch.data() : nullptr);
  std::vector<const void*> weights = {a.slots[kMatMulW]};
  // The copies live in one mapping that may use transparent huge pages, as a bundle's weights do
  // (the page cache maps large files with large folios). With 4 KiB pages the page walks of a
  // gigabyte of scattered copies, expensive under a VM's nested paging, cost more than the reads.
  void* region = nullptr;
  size_t region_bytes = 0;
  if (d.spec.kind == "matmul" && weight_copies > 1) {
    const size_t stride = (d.packed.size() + 4095) / 4096 * 4096;
    region_bytes = stride * static_cast<size_t>(weight_copies - 1);
    region = ::mmap(nullptr, region_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) {
      region = nullptr;
    } else {
      ::madvise(region, region_bytes, MADV_HUGEPAGE);
      for (int c = 1; c < weight_copies; ++c) {
        uint8_t* p = static_cast<uint8_t*>(region) + stride * static_cast<size_t>(c - 1);
        std::memcpy(p, d.packed.data(), d.packed.size());
        weights.push_back(p);
      }
    }
  }
  // One slot array per copy; every thread of call i reads the same one.
  std::vector<std::vector<const void*>> slots(weights.size(), std::vector<const void*>(a.slots, a.slots + kMatMulArgCount));
  for (size_t c = 0; c < weights.size(); ++c) slots[c][kMatMulW] = weights[c];
  a.use_work_counter(true);
  fn(a.slots, a.dims, 0, 1);  // warm-up
  a.use_work_counter(true);
  // As the runtime does: the counter zeroed between calls (the barrier's completion runs while
  // every thread waits).
  std::barrier sync(threads, [&]() noexcept { a.work_counter.store(0, std::memory_order_relaxed); });
  std::vector<std::thread> pool;
  auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (int i = 0; i < iterations; ++i) {
        fn(slots[static_cast<size_t>(i) % slots.size()].data(), a.dims, t, threads);
        sync.arrive_and_wait();
      }
    });
  for (auto& th : pool) th.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / iterations;
  if (region) ::munmap(region, region_bytes);
  return seconds;
}

std::vector<std::string> tier_names() {
  std::vector<std::string> out;
  for (const CpuTier& t : cpu_tiers()) out.push_back(t.name);
  return out;
}

std::string tier_test_name(const std::string& tier) {
  std::string n = tier;
  for (char& ch : n)
    if (ch == '-') ch = '_';
  return n;
}

std::string best_host_tier() {
  const CpuTier* t = best_cpu_tier(usable_cpu_features());
  return t ? t->name : "";
}

std::string host_lacks_tier(const std::string& tier) {
  const CpuTier* t = find_cpu_tier(tier);
  if (!t) return "no tier named " + tier;
  // Running the amx tier needs this process's grant of tile state.
  return check_cpu_features(t->features, t->name, usable_cpu_features());
}

}  // namespace ingot::cgtest
