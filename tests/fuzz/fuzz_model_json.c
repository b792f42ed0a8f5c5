/* fuzz_model_json.c: model.json parsing and validation. The input is the
   text of a model.json, loaded graph-only from memory; a model that loads
   is walked through every getter. Twice the same input must give the same
   status and message (no hidden state). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rectify_load_options options = {.graph_only = 1};
    rectify_model *m = (rectify_model *)&options; /* not NULL: the load must clear it */
    rectify_error err;
    rectify_status st = rectify_model_load_memory((const char *)data, size, NULL, 0, NULL, &options, &m, &err);
    if (st != RECTIFY_OK) {
        FUZZ_CHECK(m == NULL);
        fuzz_check_failure(st, &err);
        rectify_error again;
        FUZZ_CHECK(rectify_model_load_memory((const char *)data, size, NULL, 0, NULL, &options, &m, &again) == st);
        FUZZ_CHECK(strcmp(err.message, again.message) == 0);
        return 0;
    }
    FUZZ_CHECK(m != NULL && err.status == RECTIFY_OK && err.message[0] == '\0');
    fuzz_walk_model(m);
    /* A graph-only model cannot run. */
    rectify_session *s = (rectify_session *)&options;
    FUZZ_CHECK(rectify_session_create(m, NULL, &s, &err) == RECTIFY_ERR_INVALID && s == NULL);
    rectify_model_destroy(m);
    return 0;
}
