// AMX probe: exact per-block int8 dots (one 32-element q8_0 block per tdpbssd), scaled and added in f32
// as the reference (acc += float(dot) * (dw * dx)), for a 32x32 output macro tile; measures the
// effective int8 ops/s of the loop with AVX-512 doing the per-block scaling.
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

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)) { perror("arch_prctl"); return 1; }
  const int M = 512, N = 2048, K = 2048, NB = K / 32;  // tokens, outputs, inner
  const int mode = argc > 1 ? atoi(argv[1]) : 0;      // 0: exact per block; 1: K=64 per op, no per-block scaling (upper bound)
  // A: activations [M/16][NB][16 rows][32 bytes]; B: weights [N/16][NB][8 rows][64 bytes] (VNNI layout)
  int8_t* A = aligned_alloc(64, (size_t)M * K);
  int8_t* B = aligned_alloc(64, (size_t)N * K);
  float* dx = aligned_alloc(64, (size_t)M * NB * 4);
  float* dw = aligned_alloc(64, (size_t)N * NB * 4);
  float* Y = aligned_alloc(64, (size_t)M * N * 4);
  for (size_t i = 0; i < (size_t)M * K; ++i) A[i] = (int8_t)(rand() % 255 - 127);
  for (size_t i = 0; i < (size_t)N * K; ++i) B[i] = (int8_t)(rand() % 255 - 127);
  for (int i = 0; i < M * NB; ++i) dx[i] = 0.01f;
  for (int i = 0; i < N * NB; ++i) dw[i] = 0.02f;
  TileCfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.palette = 1;
  const int kb = mode == 0 ? 32 : 64;
  for (int t = 0; t < 4; ++t) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }        // C: 16 x 16 i32
  for (int t = 4; t < 6; ++t) { cfg.rows[t] = 16; cfg.colsb[t] = kb; }        // A: 16 rows x kb bytes
  for (int t = 6; t < 8; ++t) { cfg.rows[t] = kb / 4; cfg.colsb[t] = 64; }    // B: kb/4 rows x 64 bytes
  _tile_loadconfig(&cfg);
  int32_t C[4][16 * 16] __attribute__((aligned(64)));
  double best = 1e9;
  for (int rep = 0; rep < 5; ++rep) {
    const double t0 = now();
    for (int mt = 0; mt < M; mt += 32)
      for (int nt = 0; nt < N; nt += 32) {
        __m512 acc[32][2];
        for (int r = 0; r < 32; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
        const int steps = mode == 0 ? NB : NB / 2;
        for (int b = 0; b < steps; ++b) {
          const int8_t* a0 = A + ((size_t)(mt / 16) * NB * 512) + (size_t)b * kb * 16;
          const int8_t* a1 = A + ((size_t)(mt / 16 + 1) * NB * 512) + (size_t)b * kb * 16;
          const int8_t* b0 = B + ((size_t)(nt / 16) * NB * 512) + (size_t)b * kb * 16;
          const int8_t* b1 = B + ((size_t)(nt / 16 + 1) * NB * 512) + (size_t)b * kb * 16;
          if (mode == 0 || b == 0) { _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3); }
          _tile_loadd(4, a0, kb); _tile_loadd(5, a1, kb);
          _tile_loadd(6, b0, 64); _tile_loadd(7, b1, 64);
          _tile_dpbssd(0, 4, 6); _tile_dpbssd(1, 4, 7); _tile_dpbssd(2, 5, 6); _tile_dpbssd(3, 5, 7);
          if (mode == 0) {
            _tile_stored(0, C[0], 64); _tile_stored(1, C[1], 64); _tile_stored(2, C[2], 64); _tile_stored(3, C[3], 64);
            const __m512 w0 = _mm512_load_ps(dw + (size_t)b * N + nt), w1 = _mm512_load_ps(dw + (size_t)b * N + nt + 16);
            for (int r = 0; r < 32; ++r) {
              const __m512 x = _mm512_set1_ps(dx[(size_t)b * M + mt + r]);
              const int half = r / 16, rr = r % 16;
              const __m512 s0 = _mm512_mul_ps(w0, x), s1 = _mm512_mul_ps(w1, x);
              acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(C[half * 2] + rr * 16)), s0));
              acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(C[half * 2 + 1] + rr * 16)), s1));
            }
          }
        }
        if (mode == 1) { _tile_stored(0, C[0], 64); _tile_stored(1, C[1], 64); _tile_stored(2, C[2], 64); _tile_stored(3, C[3], 64); }
        for (int r = 0; r < 32; ++r) {
          _mm512_store_ps(Y + (size_t)(mt + r) * N + nt, acc[r][0]);
          _mm512_store_ps(Y + (size_t)(mt + r) * N + nt + 16, acc[r][1]);
        }
      }
    const double dt = now() - t0;
    if (dt < best) best = dt;
  }
  _tile_release();
  const double ops = 2.0 * M * N * K;
  printf("mode %d (%s): %.1f ms, %.0f G int8 ops/s (one core), y[0]=%g\n", mode, mode == 0 ? "exact per-block scaling" : "K=64, no scaling",
         best * 1e3, ops / best * 1e-9, Y[0]);
  return 0;
}
