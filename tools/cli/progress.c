/* progress.c: the stderr progress bar. */
#define _POSIX_C_SOURCE 200809L /* isatty, fileno, clock_gettime */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

#define BAR_WIDTH 24

double cli_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void progress_start(progress *p, int64_t total)
{
    const char *term = getenv("TERM");
    memset(p, 0, sizeof *p);
    p->enabled = (total > 1 || total == PROGRESS_UNKNOWN) && isatty(fileno(stderr)) &&
                 !(term != NULL && strcmp(term, "dumb") == 0);
    p->total = total;
    p->start = cli_now();
}

static void format_duration(char *text, size_t size, double seconds)
{
    long s = (long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(text, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(text, size, "%ld:%02ld", s / 60, s % 60);
}

void progress_update(progress *p, int64_t done)
{
    if (!p->enabled)
        return;
    double t = cli_now();
    if (done < p->total && t - p->last_draw < 0.1)
        return;
    p->last_draw = t;
    double elapsed = t - p->start, rate = elapsed > 0 ? (double)done / elapsed : 0.0;
    char bar[BAR_WIDTH + 1], left[32] = "?";
    int filled = p->total > 0 ? (int)(BAR_WIDTH * done / p->total) : 0;
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < filled ? '#' : '-';
    bar[BAR_WIDTH] = '\0';
    if (rate > 0)
        format_duration(left, sizeof left, (double)(p->total - done) / rate);
    fprintf(stderr, "\r\033[K[%s] %lld/%lld images, %.1f/s, %s left", bar, (long long)done, (long long)p->total,
            rate, left);
    fflush(stderr);
    p->shown = 1;
}

void progress_note(progress *p, int force, const char *format, ...)
{
    if (!p->enabled)
        return;
    double t = cli_now();
    if (!force && t - p->last_draw < 0.1)
        return;
    p->last_draw = t;
    va_list ap;
    va_start(ap, format);
    fputs("\r\033[K", stderr);
    vfprintf(stderr, format, ap);
    va_end(ap);
    fflush(stderr);
    p->shown = 1;
}

void progress_clear(progress *p)
{
    if (!p->shown)
        return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    p->shown = 0;
}
