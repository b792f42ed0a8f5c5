/* bench_util.h: what the C benchmark programs (bench_rectify, darknet_bench,
   sparse/layout) share: clocks, the peak resident set, medians. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The process's peak resident set: VmHWM of /proc/self/status (this program
   image only). getrusage's ru_maxrss is reported too, but on Linux it keeps
   the high-water mark of the process before execve, i.e. of the parent that
   forked it (a Python harness: tens of MiB), so it overstates small runs. */
static inline long long vm_hwm_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) { kb = atoll(line + 6); break; }
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

static inline double process_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..n), sorting v in place; 0 when n is 0. */
static inline double median_sort(double *v, int n)
{
    if (n <= 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#endif
