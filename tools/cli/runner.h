/*
 * runner.h: what `run` and `sparsity` share: loading the model, one session
 * (batch 1), feeding images one by one, and keeping going past images that
 * fail to load (each is reported on stderr and remembered for the summary
 * and the JSON "failed" list).
 */
#ifndef RECTIFY_CLI_RUNNER_H
#define RECTIFY_CLI_RUNNER_H

#include <stddef.h>

#include "json_out.h"
#include "rectify.h"

/* Loads the model at `path`, with the weights at `weights_path` when that is
   not NULL; on failure prints the reason and returns EXIT_RUNTIME with
   *model NULL. */
int load_model(const char *path, const char *weights_path, int graph_only,
               rectify_model **model);

typedef struct image_failure {
    const char *path;   /* borrowed from argv */
    char *message;      /* owned */
} image_failure;

typedef struct image_runner {
    rectify_model *model;
    rectify_session *session;
    float *input;
    size_t input_size;
    image_failure *failures;
    int failure_count;
    int failure_capacity;
    int image_count;       /* images the caller will run, for the progress line */
    int progress_enabled;  /* stderr is a terminal and there are many images */
    int progress_shown;    /* a progress line is on the terminal now */
} image_runner;

/* Loads the model (weights from `weights_path` when not NULL) and creates its
   session with `threads` threads (0: the library's default). Returns 0, or
   prints the reason, cleans up and returns EXIT_RUNTIME. */
int runner_open(image_runner *runner, const char *model_path, const char *weights_path,
                int threads, int image_count);
void runner_close(image_runner *runner);

typedef enum runner_result {
    RUNNER_RAN,     /* the outputs and statistics are those of this image */
    RUNNER_SKIPPED, /* the image could not be loaded: reported and recorded */
    RUNNER_FATAL,   /* the run itself failed: reported; stop */
} runner_result;

/* Loads image `index` (0-based, for the progress line) and runs it. */
runner_result runner_run_image(image_runner *runner, int index, const char *path);

/* Erases the progress line so that output can follow on a clean line. */
void runner_clear_progress(image_runner *runner);

/* The "failed" list of the JSON output: [{"path", "error"}]. */
void runner_failures_json(const image_runner *runner, json_doc *doc, cJSON *parent);

/* The exit status once all images are done: 1 when any failed. */
int runner_exit_status(const image_runner *runner);

#endif /* RECTIFY_CLI_RUNNER_H */
