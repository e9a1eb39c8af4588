// Offline recording helper for tests/scripts/record_ggml_quant.py; never built or linked by Ingot.
// For one ggml type it reads R weight rows and A activation rows of N elements and writes, in
// this order: the R*N dequantized weights (ggml-base's to_float, as llama.cpp runs it), each
// activation row quantized to the type's vec_dot_type (ggml-cpu's from_float on this host), and
// the R*A dot products of ggml's generic (scalar) dot product, compiled from the same snapshot's
// ggml-cpu/quants.c with -ffp-contract=off (the C source's arithmetic, no fused multiply-adds).
//
//   ggml_quant_oracle TYPE N R A < input > output
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml.h"
#include "ggml-cpu.h"

// quants.c reads f16 scales through this table (ggml-cpu fills its own copy the same way).
float ggml_table_f32_f16[1 << 16];

typedef void (*dot_fn)(int, float*, size_t, const void*, size_t, const void*, size_t, int);
#define DOT(name) void name(int, float*, size_t, const void*, size_t, const void*, size_t, int);
DOT(ggml_vec_dot_q4_0_q8_0_generic) DOT(ggml_vec_dot_q4_1_q8_1_generic) DOT(ggml_vec_dot_q5_0_q8_0_generic)
DOT(ggml_vec_dot_q5_1_q8_1_generic) DOT(ggml_vec_dot_q8_0_q8_0_generic) DOT(ggml_vec_dot_q2_K_q8_K_generic)
DOT(ggml_vec_dot_q3_K_q8_K_generic) DOT(ggml_vec_dot_q4_K_q8_K_generic) DOT(ggml_vec_dot_q5_K_q8_K_generic)
DOT(ggml_vec_dot_q6_K_q8_K_generic) DOT(ggml_vec_dot_iq4_nl_q8_0_generic) DOT(ggml_vec_dot_iq4_xs_q8_K_generic)

static dot_fn generic_dot(enum ggml_type t) {
  switch (t) {
    case GGML_TYPE_Q4_0: return ggml_vec_dot_q4_0_q8_0_generic;
    case GGML_TYPE_Q4_1: return ggml_vec_dot_q4_1_q8_1_generic;
    case GGML_TYPE_Q5_0: return ggml_vec_dot_q5_0_q8_0_generic;
    case GGML_TYPE_Q5_1: return ggml_vec_dot_q5_1_q8_1_generic;
    case GGML_TYPE_Q8_0: return ggml_vec_dot_q8_0_q8_0_generic;
    case GGML_TYPE_Q2_K: return ggml_vec_dot_q2_K_q8_K_generic;
    case GGML_TYPE_Q3_K: return ggml_vec_dot_q3_K_q8_K_generic;
    case GGML_TYPE_Q4_K: return ggml_vec_dot_q4_K_q8_K_generic;
    case GGML_TYPE_Q5_K: return ggml_vec_dot_q5_K_q8_K_generic;
    case GGML_TYPE_Q6_K: return ggml_vec_dot_q6_K_q8_K_generic;
    case GGML_TYPE_IQ4_NL: return ggml_vec_dot_iq4_nl_q8_0_generic;
    case GGML_TYPE_IQ4_XS: return ggml_vec_dot_iq4_xs_q8_K_generic;
    default: return NULL;
  }
}

static void read_all(void* p, size_t n) {
  if (fread(p, 1, n, stdin) != n) { fprintf(stderr, "short input\n"); exit(1); }
}

int main(int argc, char** argv) {
  if (argc != 5) { fprintf(stderr, "usage: ggml_quant_oracle TYPE N R A\n"); return 2; }
  const enum ggml_type t = (enum ggml_type)atoi(argv[1]);
  const int n = atoi(argv[2]), rows = atoi(argv[3]), acts = atoi(argv[4]);
  ggml_cpu_init();
  for (int i = 0; i < (1 << 16); ++i) ggml_table_f32_f16[i] = ggml_fp16_to_fp32((ggml_fp16_t)i);
  const size_t row_bytes = ggml_row_size(t, n);
  uint8_t* w = malloc(row_bytes * rows);
  float* x = malloc(sizeof(float) * n * acts);
  float* deq = malloc(sizeof(float) * n * rows);
  read_all(w, row_bytes * rows);
  read_all(x, sizeof(float) * n * acts);
  for (int r = 0; r < rows; ++r) {
    if (t == GGML_TYPE_F32) memcpy(deq + (size_t)r * n, w + r * row_bytes, row_bytes);  // ggml has no f32 to_float
    else ggml_get_type_traits(t)->to_float(w + r * row_bytes, deq + (size_t)r * n, n);
  }
  fwrite(deq, sizeof(float), (size_t)n * rows, stdout);
  dot_fn dot = generic_dot(t);
  if (!dot) return 0;  // float types: dequantization only
  const enum ggml_type vt = ggml_get_type_traits_cpu(t)->vec_dot_type;
  const size_t act_bytes = ggml_row_size(vt, n);
  uint8_t* q = malloc(act_bytes * acts);
  for (int a = 0; a < acts; ++a) ggml_get_type_traits_cpu(vt)->from_float(x + (size_t)a * n, q + a * act_bytes, n);
  fwrite(q, 1, act_bytes * acts, stdout);
  for (int r = 0; r < rows; ++r)
    for (int a = 0; a < acts; ++a) {
      float s;
      dot(n, &s, 0, w + r * row_bytes, 0, q + a * act_bytes, 0, 1);
      fwrite(&s, sizeof(float), 1, stdout);
    }
  return 0;
}
