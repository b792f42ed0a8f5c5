/*
 * progress.h: a progress bar on stderr for long runs: images done, rate and
 * time left, redrawn at most ten times a second; or, for work whose length
 * is not known in advance, a line of text saying what is being done. Only
 * when stderr is a terminal (and TERM is not "dumb"); otherwise every call
 * does nothing, so that logs and pipes get no carriage returns.
 */
#ifndef RECTIFY_CLI_PROGRESS_H
#define RECTIFY_CLI_PROGRESS_H

#include <stdint.h>

#include "cli.h"

typedef struct progress {
    int enabled, shown;
    int64_t total;
    double start, last_draw;
} progress;

/* `total` images to come; the bar is shown only for more than one. */
void progress_start(progress *p, int64_t total);
/* As a total: an unknown amount of work, shown by progress_note only. */
#define PROGRESS_UNKNOWN (-1)
/* `done` of total finished. */
void progress_update(progress *p, int64_t done);
/* A line of text in place of the bar, e.g. "warm-up run 2 of 3". At most
   ten a second, like the bar, unless `force` (a new stage, worth showing at
   once). */
void progress_note(progress *p, int force, const char *format, ...) CLI_PRINTF(3, 4);
/* Erases the bar so that other output starts on a clean line. */
void progress_clear(progress *p);

/* Seconds on the monotonic clock: the bar's, and the commands' timings. */
double cli_now(void);

#endif /* RECTIFY_CLI_PROGRESS_H */
