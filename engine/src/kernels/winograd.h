/* winograd.h: F(4x4, 3x3) and F(2x2, 3x3) convolution (Lavin & Gray, 2015):
   each 4x4 output tile costs 36 multiplications per input channel instead
   of 144 (F(2x2): 16 per 2x2 tile instead of 36). The products per tile
   (points) are as many GEMMs run on the packed micro-kernels. F(2x2) keeps
   16/9 of the weights as transformed filters where F(4x4) keeps 36/9. */
#ifndef RX_WINOGRAD_H
#define RX_WINOGRAD_H

#include <stdint.h>

/* tile: outputs per tile side, 2 or 4; its points: (tile + 2)^2. */
#define RX_WINO_POINTS_MAX 36
static inline int rx_winograd_points(int tile) { return (tile + 2) * (tile + 2); }

/* The GEMMs run with tiles in the micro-kernel's rows (RX_MR tiles) and
   filters in its vector columns (nr filters), so that layers with few
   tiles (small images, deep layers) still fill the vectors. */

/* Tiles per task: RX_WINO_BLOCK, or twice as many (conv.c:
   winograd_block); multiples of RX_MR. */
#define RX_WINO_BLOCK 48
#define RX_WINO_BLOCK_MAX (2 * RX_WINO_BLOCK)

/* U = G g G^T of every filter, packed as the GEMM's B operand:
   u[((point * filter_blocks + fb) * channels + c) * nr + j] for filter
   fb*nr + j (zero-padded). g is [filters][channels][3][3]. */
void rx_winograd_filters(int tile, const float *g, int64_t filters, int64_t channels, int nr, float *u);

/* V = B^T d B for tiles [t0, t0 + count) of every channel of one sample,
   as the GEMM's A operand (k = channel, lda = points * RX_MR):
   v[((g * channels + c) * points + point) * RX_MR + i] for tile t0 + g*RX_MR + i.
   One (tile group, channel) is one contiguous block: the writes stay local. */
void rx_winograd_input(int tile, const float *in, int64_t channels, int64_t height, int64_t width, int64_t pad_top,
                       int64_t pad_left, int64_t tiles_w, int64_t t0, int64_t count, float *v);

/* Y = A^T M A plus bias for filters [f0, f1) and tiles [t0, t0 + count) of
   m[(tile * points + point) * ldm + filter], written into the output planes
   of those filters (out: plane of filter 0). */
void rx_winograd_output(int tile, const float *m, int64_t ldm, int64_t f0, int64_t f1, const float *bias,
                        int64_t tiles_w, int64_t t0, int64_t count, float *out, int64_t out_h, int64_t out_w);

#endif
