/* concat.c: joins 2..8 inputs along the channel axis (rank 3, equal H and W)
   or the feature axis (rank 1), in the order of "inputs": PyTorch's
   torch.cat(xs, dim=1) on NCHW or on [N, features]. */
#include <string.h>

#include "op.h"

static const char *input_name(const rectify_model *m, const rx_layer *l, int e)
{
    return l->inputs[e] < 0 ? m->input_name : m->layers[l->inputs[e]].name;
}

static rectify_status infer(rx_ctx *c, rectify_model *m, rx_layer *l, const rx_shape *const *in)
{
    const rx_shape *first = in[0];
    int64_t channels = 0;
    for (int e = 0; e < l->input_count; e++) {
        const rx_shape *s = in[e];
        bool same = s->rank == first->rank && (s->rank == 1 || (s->d[1] == first->d[1] && s->d[2] == first->d[2]));
        if (!same) {
            char a[64], b[64];
            rx_shape_format(first, a, sizeof a);
            rx_shape_format(s, b, sizeof b);
            return rx_cfail(c, RECTIFY_ERR_INVALID,
                            "concat needs inputs of one rank and, for rank 3, the same height and width: "
                            "input \"%s\" is %s, input \"%s\" is %s",
                            input_name(m, l, 0), a, input_name(m, l, e), b);
        }
        channels += s->d[0];
    }
    l->out = *first;
    l->out.d[0] = channels;
    return RECTIFY_OK;
}

static void run(const rx_exec *e)
{
    const rx_layer *l = e->layer;
    const int n = l->input_count;
    const int64_t out_size = rx_shape_elements(&l->out);
    const int64_t pieces = e->batch * n;
    RX_PARALLEL_FOR(e->batch * out_size > 32768 ? e->threads : 1, t, pieces, {
        int64_t b = t / n;
        int k = (int)(t % n);
        int64_t offset = 0;
        for (int j = 0; j < k; j++) offset += rx_shape_elements(e->in_shape[j]);
        const int64_t size = rx_shape_elements(e->in_shape[k]);
        memcpy(e->out + b * out_size + offset, e->in[k] + b * size, (size_t)size * sizeof(float));
    });
}

const rx_op rx_op_concat = {
    .name = "concat", .min_inputs = 2, .max_inputs = RECTIFY_MAX_INPUTS, .infer = infer, .run = run,
};
