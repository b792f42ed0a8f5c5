/* threshold.c: at what input sparsity does skipping zeros beat the dense
   GEMV? Times, for dense-layer shapes from LeNet-5 to VGG-16's head, the
   dense kernel (rx_gemm_select()->gemv in chunks of 16 rows, as dense.c runs
   it) against the two zero-skipping kernels of kernels/sparse_gemv.c: "rows"
   reads the weights as loaded at the non-zero columns, "cols" reads a
   transposed copy, one contiguous row per non-zero input. Zeros are placed
   at random. Prints one line per shape, sparsity and kernel, and per shape
   the lowest sparsity from which each sparse kernel stays faster.

     threshold [--threads N] [--quick]
*/
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/sparse_gemv.h"

typedef struct shape { const char *name; int64_t n, units; } shape;

static const shape shapes[] = {
    {"lenet5.fc2 120->84", 120, 84},
    {"lenet5.fc1 400->120", 400, 120},
    {"cifar 2048->512", 2048, 512},
    {"vgg16.fc8 4096->1000", 4096, 1000},
    {"vgg16.fc7 4096->4096", 4096, 4096},
    {"vgg16.fc6 25088->4096", 25088, 4096},
};

static const double sparsities[] = {0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99};
#define NS (int)(sizeof sparsities / sizeof sparsities[0])

static uint64_t state = 88172645463325252ull;
static double uniform(void)
{
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return (double)(state >> 11) / 9007199254740992.0;
}

enum { DENSE, ROWS, COLS, KINDS };
static const char *kind_names[] = {"dense", "rows", "cols"};

static void run(int kind, const float *w, const float *wt, int64_t n, int64_t units, const float *x,
                const float *bias, float *y, int32_t *idx, float *val, int threads)
{
    const int64_t chunk = 16, chunks = (units + chunk - 1) / chunk;
    if (kind == DENSE) {
        const rx_gemv_kernel gemv = rx_gemm_select()->gemv;
        #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (int64_t c = 0; c < chunks; c++) {
            int64_t r0 = c * chunk, rows = units - r0 < chunk ? units - r0 : chunk;
            gemv(w + r0 * n, rows, n, x, bias + r0, y + r0);
        }
        return;
    }
    int64_t nnz = rx_gather_nonzero(x, n, idx, val);
    if (kind == ROWS) {
        #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (int64_t c = 0; c < chunks; c++) {
            int64_t r0 = c * chunk, rows = units - r0 < chunk ? units - r0 : chunk;
            rx_sparse_gemv_rows(w + r0 * n, rows, n, idx, val, nnz, bias + r0, y + r0);
        }
    } else {
        const int64_t block = 1024, blocks = (units + block - 1) / block;
        #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (int64_t c = 0; c < blocks; c++) {
            int64_t r0 = c * block, rows = units - r0 < block ? units - r0 : block;
            rx_sparse_gemv_cols(wt, units, r0, rows, idx, val, nnz, bias, y);
        }
    }
}

/* The fastest of `reps` timings of each kind, interleaved so that a busy
   machine slows all kinds alike; the minimum is the least disturbed run. */
static void time_kinds(const float *w, const float *wt, int64_t n, int64_t units, const float *x,
                       const float *bias, float *y, int32_t *idx, float *val, int threads, int reps,
                       double best[KINDS])
{
    for (int kind = 0; kind < KINDS; kind++) {
        run(kind, w, wt, n, units, x, bias, y, idx, val, threads);
        best[kind] = 1e30;
    }
    for (int r = 0; r < reps; r++)
        for (int kind = 0; kind < KINDS; kind++) {
            double t0 = omp_get_wtime();
            run(kind, w, wt, n, units, x, bias, y, idx, val, threads);
            double t = omp_get_wtime() - t0;
            if (t < best[kind]) best[kind] = t;
        }
}

int main(int argc, char **argv)
{
    int threads = omp_get_num_procs(), quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--quick") == 0) quick = 1;
        else { fprintf(stderr, "usage: threshold [--threads N] [--quick]\n"); return 2; }
    }
    printf("# isa %s, %d threads; times are the fastest of several runs, in microseconds\n", rx_gemm_select()->name, threads);
    printf("%-24s %8s %10s %10s %10s %7s %7s\n", "shape", "sparsity", "dense", "rows", "cols", "rows_x", "cols_x");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t n = shapes[s].n, units = shapes[s].units;
        const int reps = n * units > 10000000 ? (quick ? 5 : 15) : (quick ? 51 : 301);
        float *w = malloc((size_t)(n * units) * sizeof *w), *wt = malloc((size_t)(n * units) * sizeof *wt);
        float *x = malloc((size_t)n * sizeof *x), *bias = malloc((size_t)units * sizeof *bias);
        float *y = malloc((size_t)units * sizeof *y), *val = malloc((size_t)n * sizeof *val);
        int32_t *idx = malloc((size_t)n * sizeof *idx);
        for (int64_t i = 0; i < n * units; i++) w[i] = (float)(uniform() - 0.5);
        for (int64_t r = 0; r < units; r++)
            for (int64_t i = 0; i < n; i++) wt[i * units + r] = w[r * n + i];
        for (int64_t r = 0; r < units; r++) bias[r] = 0.1f;
        double first[KINDS] = {-1, -1, -1};
        for (int k = 0; k < NS; k++) {
            for (int64_t i = 0; i < n; i++) x[i] = uniform() < sparsities[k] ? 0.0f : (float)uniform();
            double t[KINDS];
            time_kinds(w, wt, n, units, x, bias, y, idx, val, threads, reps, t);
            printf("%-24s %8.2f %10.1f %10.1f %10.1f %7.2f %7.2f\n", shapes[s].name, sparsities[k], t[DENSE] * 1e6,
                   t[ROWS] * 1e6, t[COLS] * 1e6, t[DENSE] / t[ROWS], t[DENSE] / t[COLS]);
            for (int kind = ROWS; kind < KINDS; kind++) {
                if (t[kind] < t[DENSE] && first[kind] < 0) first[kind] = sparsities[k];
                if (t[kind] >= t[DENSE]) first[kind] = -1;
            }
        }
        for (int kind = ROWS; kind < KINDS; kind++)
            if (first[kind] < 0) printf("# %s: %s never faster\n", shapes[s].name, kind_names[kind]);
            else printf("# %s: %s faster from sparsity %.2f\n", shapes[s].name, kind_names[kind], first[kind]);
        free(w), free(wt), free(x), free(bias), free(y), free(val), free(idx);
    }
    return 0;
}
