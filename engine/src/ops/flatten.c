/* flatten.c: CxHxW -> C*H*W, the same memory; a copy only when the planner
   could not give it its input's buffer. */
#include <string.h>

#include "op.h"

static rectify_status infer(rx_ctx *c, rectify_model *m, rx_layer *l, const rx_shape *const *in)
{
    (void)c, (void)m;
    l->out = (rx_shape){1, {rx_shape_elements(in[0])}};
    return RECTIFY_OK;
}

static void run(const rx_exec *e)
{
    if (e->out != e->in[0])
        memcpy(e->out, e->in[0], (size_t)(e->batch * e->layer->out.d[0]) * sizeof(float));
}

const rx_op rx_op_flatten = {
    .name = "flatten", .min_inputs = 1, .max_inputs = 1, .in_place = true, .infer = infer, .run = run,
};
