/* conv.c: 2-D convolution with stride, asymmetric padding, dilation and
   groups (depthwise included). y = bias + sum over (c, ki, kj) of w * x.
   The kernel is an implicit GEMM: each task packs the im2col panel of a few
   output pixels (kernels/panel.c) and multiplies it by a block of filters. */
#include <omp.h>
#include <string.h>

#include "op.h"
#include "../kernels/kernels.h"

static const char *const fields[] = {"out_channels", "kernel", "stride", "padding", "dilation",
                                     "groups", "bias", NULL};

static rectify_status parse(rx_ctx *c, const cJSON *j, rx_params *p)
{
    rectify_status st;
    if ((st = rx_json_int(c, j, "out_channels", true, 0, 1, RECTIFY_MAX_DIM, &p->out_channels))) return st;
    if ((st = rx_parse_window(c, j, &p->win, false))) return st;
    if ((st = rx_json_int(c, j, "groups", false, 1, 1, RECTIFY_MAX_DIM, &p->groups))) return st;
    return rx_json_bool(c, j, "bias", true, &p->bias);
}

static rectify_status infer(rx_ctx *c, rectify_model *m, rx_layer *l, const rx_shape *const *in)
{
    const rx_params *p = &l->p;
    const rx_window *w = &p->win;
    if (in[0]->rank != 3)
        return rx_cfail(c, RECTIFY_ERR_INVALID, "conv needs a CxHxW input, got rank %d", in[0]->rank);
    int64_t cin = in[0]->d[0];
    if (cin % p->groups || p->out_channels % p->groups)
        return rx_cfail(c, RECTIFY_ERR_INVALID,
                        "groups %lld must divide the input channels (%lld) and out_channels (%lld)",
                        (long long)p->groups, (long long)cin, (long long)p->out_channels);
    int64_t oh = rx_window_out(in[0]->d[1], w->kh, w->sh, w->pt, w->pb, w->dh, false);
    int64_t ow = rx_window_out(in[0]->d[2], w->kw, w->sw, w->pl, w->pr, w->dw, false);
    if (oh < 1 || ow < 1)
        return rx_cfail(c, RECTIFY_ERR_INVALID, "kernel %lldx%lld (dilation %lldx%lld) is larger than the padded input %lldx%lld",
                        (long long)w->kh, (long long)w->kw, (long long)w->dh, (long long)w->dw,
                        (long long)(in[0]->d[1] + w->pt + w->pb), (long long)(in[0]->d[2] + w->pl + w->pr));
    l->out = (rx_shape){3, {p->out_channels, oh, ow}};
    int64_t k = cin / p->groups * w->kh * w->kw, weights;
    if (rx_mul_overflow(k, p->out_channels, &weights) || rx_mul_overflow(rx_shape_elements(&l->out), k, &l->macs))
        return rx_cfail(c, RECTIFY_ERR_LIMIT, "the layer's size overflows");
    l->params = weights + (p->bias ? p->out_channels : 0);
    rx_shape ws = {4, {p->out_channels, cin / p->groups, w->kh, w->kw}};
    int64_t fan_out = p->out_channels / p->groups * w->kh * w->kw;
    rectify_status st = rx_declare_tensor(c, m, l, "weight", &ws, k, fan_out, false);
    if (st || !p->bias) return st;
    rx_shape bs = {1, {p->out_channels}};
    return rx_declare_tensor(c, m, l, "bias", &bs, k, fan_out, true);
}

static int64_t scratch(const rx_layer *l, const rx_shape *const *in)
{
    return in[0]->d[0] / l->p.groups * l->p.win.kh * l->p.win.kw * RX_PANEL_COLS;
}

static void run(const rx_exec *e)
{
    const rx_layer *l = e->layer;
    const rx_window *w = &l->p.win;
    rx_conv_geometry g = {
        .channels = e->in_shape[0]->d[0] / l->p.groups,
        .height = e->in_shape[0]->d[1], .width = e->in_shape[0]->d[2],
        .out_height = l->out.d[1], .out_width = l->out.d[2], .win = *w,
    };
    const int64_t groups = l->p.groups, cin = e->in_shape[0]->d[0];
    const int64_t filters = l->p.out_channels / groups;       /* per group */
    const int64_t k = g.channels * w->kh * w->kw;
    const int64_t pixels = g.out_height * g.out_width;
    const int64_t n_tiles = (pixels + RX_PANEL_COLS - 1) / RX_PANEL_COLS;
    const int64_t m_tiles = (filters + RX_PANEL_ROWS - 1) / RX_PANEL_ROWS;
    const int64_t tasks = e->batch * groups * n_tiles * m_tiles;
    const float *weight = rx_weight(e->model, l, 0);
    const float *bias = l->p.bias ? rx_weight(e->model, l, 1) : NULL;
    const int64_t in_size = cin * g.height * g.width, out_size = rx_shape_elements(&l->out);

    #pragma omp parallel num_threads(e->threads)
    {
        float *panel = e->scratch + (int64_t)omp_get_thread_num() * k * RX_PANEL_COLS;
        int64_t packed = -1; /* which (sample, group, tile) the panel holds */
        #pragma omp for schedule(static)
        for (int64_t t = 0; t < tasks; t++) {
            int64_t mt = t % m_tiles, rest = t / m_tiles;
            int64_t nt = rest % n_tiles, bg = rest / n_tiles;
            int64_t b = bg / groups, grp = bg % groups;
            int64_t col0 = nt * RX_PANEL_COLS;
            int64_t cols = pixels - col0 < RX_PANEL_COLS ? pixels - col0 : RX_PANEL_COLS;
            if (packed != rest) {
                rx_pack_panel(&g, e->in[0] + b * in_size + grp * g.channels * g.height * g.width,
                              col0, cols, panel);
                packed = rest;
            }
            int64_t row0 = mt * RX_PANEL_ROWS;
            int64_t rows = filters - row0 < RX_PANEL_ROWS ? filters - row0 : RX_PANEL_ROWS;
            int64_t oc = grp * filters + row0;
            rx_panel_gemm(rows, k, cols, weight + oc * k, k, panel,
                          e->out + b * out_size + oc * pixels + col0, pixels, bias ? bias + oc : NULL);
        }
    }
}

const rx_op rx_op_conv = {
    .name = "conv", .fields = fields, .min_inputs = 1, .max_inputs = 1,
    .parse = parse, .infer = infer, .scratch = scratch, .run = run,
};
