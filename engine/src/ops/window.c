/* window.c: the sliding-window fields and output-size rule shared by conv
   and the pools, exactly as PyTorch defines them. */
#include "op.h"

rectify_status rx_parse_window(rx_ctx *c, const cJSON *j, rx_window *w, bool stride_defaults_to_kernel)
{
    static const int pair[] = {2, 0}, pads[] = {2, 4, 0};
    int64_t v[4];
    int n;
    rectify_status st;
    if ((st = rx_json_ints(c, j, "kernel", true, 0, 1, RECTIFY_MAX_DIM, pair, v, &n))) return st;
    w->kh = v[0], w->kw = v[1];
    if ((st = rx_json_ints(c, j, "stride", false, 1, 1, RECTIFY_MAX_DIM, pair, v, &n))) return st;
    w->sh = v[0], w->sw = v[1];
    if (n == 0 && stride_defaults_to_kernel) w->sh = w->kh, w->sw = w->kw;
    if ((st = rx_json_ints(c, j, "padding", false, 0, 0, RECTIFY_MAX_DIM, pads, v, &n))) return st;
    if (n == 4) /* [top, left, bottom, right], as ONNX's begin/end pads */
        w->pt = v[0], w->pl = v[1], w->pb = v[2], w->pr = v[3];
    else
        w->pt = w->pb = v[0], w->pl = w->pr = v[1];
    if (rx_json_get(j, "dilation")) {
        if ((st = rx_json_ints(c, j, "dilation", false, 1, 1, RECTIFY_MAX_DIM, pair, v, &n))) return st;
        w->dh = v[0], w->dw = v[1];
    } else {
        w->dh = w->dw = 1;
    }
    return RECTIFY_OK;
}

int64_t rx_window_out(int64_t in, int64_t k, int64_t s, int64_t p0, int64_t p1, int64_t d, bool ceil_mode)
{
    /* PyTorch: floor((in + pads - span + (ceil ? s - 1 : 0)) / s) + 1, the
       division rounding towards minus infinity. */
    int64_t num = in + p0 + p1 - (d * (k - 1) + 1) + (ceil_mode ? s - 1 : 0);
    int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
    /* The last window must start inside the input or its left padding. */
    if (ceil_mode && out > 0 && (out - 1) * s >= in + p0) out--;
    return out;
}
