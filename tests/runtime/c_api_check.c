/* Compiled as C: ingot.h must be valid C, and errors come back as codes and messages. */
#include <stdio.h>
#include <string.h>

#include "runtime/ingot.h"

/* Returns the number of failed checks; describes each on stderr. */
int ingot_c_api_error_checks(const char* missing_path, const char* not_a_bundle) {
  int failures = 0;
  ingot_model* model = (ingot_model*)1;
#define CHECK(cond)                                                  \
  do {                                                               \
    if (!(cond)) {                                                   \
      fprintf(stderr, "c_api_check: failed: %s (line %d)\n", #cond, __LINE__); \
      ++failures;                                                    \
    }                                                                \
  } while (0)
  CHECK(ingot_model_load(missing_path, 0, &model) == INGOT_ERR_LOAD);
  CHECK(model == NULL);
  CHECK(strstr(ingot_last_error(), missing_path) != NULL);
  CHECK(ingot_model_load(not_a_bundle, 1, &model) == INGOT_ERR_LOAD);
  CHECK(strlen(ingot_last_error()) > 0);
  CHECK(ingot_model_load(NULL, 0, &model) == INGOT_ERR_INVALID_ARGUMENT);
  CHECK(ingot_session_create(NULL, 1, NULL) == INGOT_ERR_INVALID_ARGUMENT);
  CHECK(ingot_session_prefill(NULL, NULL, 0) == INGOT_ERR_INVALID_ARGUMENT);
  CHECK(ingot_session_logits(NULL, NULL) == NULL);
  CHECK(ingot_model_vocab_size(NULL) == 0);
  ingot_model_free(NULL);
  ingot_session_free(NULL);
  {
    ingot_sampling s;
    ingot_sampling_default(&s);
    CHECK(s.temperature > 0.0f && s.top_k == 40);
  }
#undef CHECK
  return failures;
}
