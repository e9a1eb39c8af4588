// `ingot bench --profile OUT.json`: where a decode step's time goes, kernel call by kernel call,
// against this host's measured limits (a roofline). docs/inspect.md describes the method.
#pragma once

#include <string>

#include "base/status.h"
#include "runtime/engine.h"

namespace ingot {

struct ProfileOptions {
  int threads = 1;
  int context = 128;  // tokens prefilled before the measured decode steps
  int steps = 32;     // measured decode steps with the observer, and as many without
  // > 0: profile prompt processing instead: each measured step prefills this many tokens into an
  // empty context (`steps` of them observed, as many not).
  int prompt_tokens = 0;
  bool print = true;  // the table on stdout
};

// The host's limits, measured: streaming read bandwidth over a buffer larger than the caches,
// and peak f32 (FMA) and int8 (VNNI dot-product) operation rates, on `threads` threads.
struct HostLimits {
  double read_gbps = 0;
  double f32_gops = 0;
  double int8_gops = 0;
  std::string f32_isa, int8_isa;  // the instructions the probes used
  int64_t probe_bytes = 0;        // the bandwidth probe's buffer: max(512 MiB, 2 x the L3 cache)
};
HostLimits measure_host_limits(int threads);

// Profiles `engine` and writes the JSON to `out` (atomically). Returns the failure, if any.
Status run_profile(const Engine& engine, const std::string& bundle_path, const ProfileOptions& options,
                   const std::string& out);

}  // namespace ingot
