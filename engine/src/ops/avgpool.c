/* avgpool.c: y = mean over the window, PyTorch's AvgPool2d: the divisor
   counts padding when count_include_pad, never the part of a ceil_mode
   window that falls past the padding. */
#include "op.h"

static const char *const fields[] = {"kernel", "stride", "padding", "ceil_mode", "count_include_pad", NULL};

static rectify_status parse(rx_ctx *c, const cJSON *j, rx_params *p)
{
    rectify_status st = rx_parse_window(c, j, &p->win, true);
    if (!st) st = rx_json_bool(c, j, "ceil_mode", false, &p->ceil_mode);
    if (!st) st = rx_json_bool(c, j, "count_include_pad", true, &p->count_include_pad);
    return st;
}

static rectify_status infer(rx_ctx *c, rectify_model *m, rx_layer *l, const rx_shape *const *in)
{
    (void)m;
    return rx_pool_infer(c, l, in[0]);
}

static void run(const rx_exec *e)
{
    const rx_window *w = &e->layer->p.win;
    const bool include_pad = e->layer->p.count_include_pad;
    const int64_t h = e->in_shape[0]->d[1], wd = e->in_shape[0]->d[2];
    const int64_t oh = e->layer->out.d[1], ow = e->layer->out.d[2];
    const int64_t planes = e->batch * e->layer->out.d[0];
    RX_PARALLEL_FOR(planes * oh * ow > 16384 ? e->threads : 1, pl, planes, {
        const float *x = e->in[0] + pl * h * wd;
        float *y = e->out + pl * oh * ow;
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                int64_t y0 = oy * w->sh - w->pt, x0 = ox * w->sw - w->pl;
                int64_t y1 = y0 + w->kh < h + w->pb ? y0 + w->kh : h + w->pb;
                int64_t x1 = x0 + w->kw < wd + w->pr ? x0 + w->kw : wd + w->pr;
                int64_t padded = (y1 - y0) * (x1 - x0);
                y0 = y0 < 0 ? 0 : y0, x0 = x0 < 0 ? 0 : x0;
                y1 = y1 > h ? h : y1, x1 = x1 > wd ? wd : x1;
                float sum = 0.0f;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) sum += x[iy * wd + ix];
                int64_t count = include_pad ? padded : (y1 - y0) * (x1 - x0);
                y[oy * ow + ox] = count > 0 ? sum / (float)count : 0.0f;
            }
    });
}

const rx_op rx_op_avgpool = {
    .name = "avgpool", .fields = fields, .min_inputs = 1, .max_inputs = 1,
    .parse = parse, .infer = infer, .run = run,
};
