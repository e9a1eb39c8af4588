// AMX probe: where the time of an exact q8_0 AMX matmul goes. The amx tier's kernel
// (codegen/kernels/matmul/amx_tiles.cpp) computes every 32-element block's integer dots with one
// tdpbssd (K = 32), stores the 16 x 16 C tile, and scales and adds it in f32 as the reference
// does (acc += float(dot) * (d_w * d_x)), 16 tokens x 16 outputs per step, accumulators in zmm.
// This loop has the same structure on 512 x 2048 x 2048 and takes it apart, one core:
//
//   cc -O2 -march=sapphirerapids bench/probes/amx_block_scaling.c -o /tmp/amx && /tmp/amx
//
// modes: full (the kernel's step), vector (scaling only), tiles (zero, loads, tdpbssd, store),
// loads+tdp, stores, stores+vector, loads+tdp+vector, tdp (tdpbssd only). If two parts
// overlapped, the full time would be near the larger of them; it is near their sum.
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

typedef struct {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} __attribute__((packed)) TileCfg;

enum { FULL, VECTOR, TILES, LOADS_TDP, STORES, STORES_VECTOR, LOADS_TDP_VECTOR, TDP, MODES };
static const char* kNames[MODES] = {"full", "vector", "tiles", "loads+tdp", "stores", "stores+vector", "loads+tdp+vector", "tdp"};

enum { M = 512, N = 2048, K = 2048, NB = K / 32 };
static int8_t *A, *B;
static float *dx, *dw, *Y;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

// The reference's f32 order for one block of a 16 x 16 step.
static inline void scale(const int32_t* C, int blk, int mt, int nt, __m512* acc) {
  const __m512 w = _mm512_load_ps(dw + (size_t)blk * N + nt);
#pragma unroll
  for (int r = 0; r < 16; ++r) {
    const __m512 s = _mm512_mul_ps(w, _mm512_set1_ps(dx[(size_t)blk * M + mt + r]));
    acc[r] = _mm512_add_ps(acc[r], _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(C + r * 16)), s));
  }
}

static double run(int mode) {
  int32_t C[2][256] __attribute__((aligned(64))) = {{0}};
  double best = 1e9;
  for (int rep = 0; rep < 5; ++rep) {
    const double t0 = now();
    for (int nt = 0; nt < N; nt += 16)
      for (int mt = 0; mt < M; mt += 16) {
        __m512 acc[16];
        for (int r = 0; r < 16; ++r) acc[r] = _mm512_setzero_ps();
        const int8_t* a = A + (size_t)mt * K;  // 16 token rows of K bytes
        const int8_t* b = B + (size_t)nt * K;  // per block one B tile: 8 rows x 64 bytes
        for (int blk = 0; blk < NB; blk += 2) {
          const int load = mode == FULL || mode == TILES || mode == LOADS_TDP || mode == LOADS_TDP_VECTOR;
          const int store = mode == FULL || mode == TILES || mode == STORES || mode == STORES_VECTOR;
          const int vector = mode == FULL || mode == VECTOR || mode == STORES_VECTOR || mode == LOADS_TDP_VECTOR;
          if (load || mode == TDP) {
            _tile_zero(0);
            if (load) { _tile_loadd(2, a + blk * 32, K); _tile_loadd(4, b + blk * 512, 64); }
            _tile_dpbssd(0, 2, 4);
            _tile_zero(1);
            if (load) { _tile_loadd(3, a + blk * 32 + 32, K); _tile_loadd(5, b + blk * 512 + 512, 64); }
            _tile_dpbssd(1, 3, 5);
          }
          if (store) _tile_stored(0, C[0], 64);
          if (vector) scale(C[0], blk, mt, nt, acc);
          if (store) _tile_stored(1, C[1], 64);
          if (vector) scale(C[1], blk + 1, mt, nt, acc);
        }
        for (int r = 0; r < 16; ++r) _mm512_store_ps(Y + (size_t)(mt + r) * N + nt, acc[r]);
      }
    const double dt = now() - t0;
    if (dt < best) best = dt;
  }
  return best;
}

int main(void) {
  if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)) { perror("arch_prctl"); return 1; }
  A = aligned_alloc(64, (size_t)M * K);
  B = aligned_alloc(64, (size_t)N * K);
  dx = aligned_alloc(64, (size_t)M * NB * 4);
  dw = aligned_alloc(64, (size_t)N * NB * 4);
  Y = aligned_alloc(64, (size_t)M * N * 4);
  for (size_t i = 0; i < (size_t)M * K; ++i) A[i] = (int8_t)(rand() % 255 - 127);
  for (size_t i = 0; i < (size_t)N * K; ++i) B[i] = (int8_t)(rand() % 255 - 127);
  for (int i = 0; i < M * NB; ++i) dx[i] = 0.01f;
  for (int i = 0; i < N * NB; ++i) dw[i] = 0.02f;
  TileCfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.palette = 1;
  for (int t = 0; t < 2; ++t) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }      // C: 16 tokens x 16 i32
  for (int t = 2; t < 4; ++t) { cfg.rows[t] = 16; cfg.colsb[t] = 32; }      // A: 16 tokens x 32 bytes
  for (int t = 4; t < 6; ++t) { cfg.rows[t] = 8; cfg.colsb[t] = 64; }       // B: 8 rows x 16 outputs x 4
  _tile_loadconfig(&cfg);
  const double ops = 2.0 * M * N * K;
  for (int mode = 0; mode < MODES; ++mode) {
    const double t = run(mode);
    printf("%-18s %7.2f ms  %6.0f G int8 ops/s (one core)\n", kNames[mode], t * 1e3, ops / t * 1e-9);
  }
  _tile_release();
  return (int)Y[5];
}
