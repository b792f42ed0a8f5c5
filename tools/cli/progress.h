/*
 * progress.h: a progress bar on stderr for long runs: images done, rate and
 * time left, redrawn at most ten times a second. Only when stderr is a
 * terminal (and TERM is not "dumb"); otherwise every call does nothing, so
 * that logs and pipes get no carriage returns.
 */
#ifndef RECTIFY_CLI_PROGRESS_H
#define RECTIFY_CLI_PROGRESS_H

#include <stdint.h>

typedef struct progress {
    int enabled, shown;
    int64_t total;
    double start, last_draw;
} progress;

void progress_start(progress *p, int64_t total);
/* `done` of total finished. */
void progress_update(progress *p, int64_t done);
/* Erases the bar so that other output starts on a clean line. */
void progress_clear(progress *p);

#endif /* RECTIFY_CLI_PROGRESS_H */
