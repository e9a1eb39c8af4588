/* Generate text from a bundle with the C API of libingot.so.
 *   cc generate.c $(pkg-config --cflags --libs ingot) -o generate   (an installed prefix: docs/packaging.md)
 *   ./generate model.ingot "Once upon a time" 40
 * In the build tree it is the target example_generate. */
#include <stdio.h>
#include <stdlib.h>

#include <ingot/ingot.h>

static int print_piece(int32_t id, const char* piece, void* user) {
  (void)id;
  (void)user;
  fputs(piece, stdout);
  fflush(stdout);
  return 0; /* non-zero would stop the generation */
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s BUNDLE PROMPT [N]\n", argv[0]);
    return 2;
  }
  ingot_model* model = NULL;
  if (ingot_model_load(argv[1], /*verify=*/0, &model) != INGOT_OK) {
    fprintf(stderr, "error: %s\n", ingot_last_error());
    return 1;
  }
  ingot_session* session = NULL;
  if (ingot_session_create(model, /*threads=*/2, &session) != INGOT_OK) {
    fprintf(stderr, "error: %s\n", ingot_last_error());
    ingot_model_free(model);
    return 1;
  }
  ingot_sampling sampling;
  ingot_sampling_default(&sampling);
  sampling.temperature = 0.0f; /* greedy */
  const int32_t n = argc > 3 ? atoi(argv[3]) : 32;
  fputs(argv[2], stdout);
  ingot_generate_result result;
  result.struct_size = sizeof result;
  ingot_status st = ingot_generate_with(session, argv[2], &sampling, n, print_piece, NULL, &result);
  printf("\n");
  if (st != INGOT_OK && st != INGOT_ERR_CONTEXT_FULL) {
    fprintf(stderr, "error: %s\n", ingot_last_error());
  } else {
    static const char* const reasons[] = {"end of text", "length", "callback", "context full"};
    fprintf(stderr, "[%d prompt tokens, %d generated, stopped: %s]\n", result.prompt_tokens, result.generated_tokens,
            reasons[result.stop_reason]);
  }
  ingot_session_free(session);
  ingot_model_free(model);
  return st == INGOT_OK || st == INGOT_ERR_CONTEXT_FULL ? 0 : 1;
}
