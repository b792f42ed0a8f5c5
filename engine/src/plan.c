/* plan.c: activation buffers. A tensor's buffer returns to a free list once
   its last reader has run; in-place ops (relu, flatten) take over their
   input's buffer when nothing else still needs it. Buffers are sized per
   sample; a session multiplies by its batch. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "ops/op.h"

typedef struct pool {
    int64_t *elements;
    bool *busy;
    int count;
} pool;

static int take(pool *p, int64_t need)
{
    int best = -1, largest = -1;
    for (int b = 0; b < p->count; b++) {
        if (p->busy[b]) continue;
        if (p->elements[b] >= need && (best < 0 || p->elements[b] < p->elements[best])) best = b;
        if (largest < 0 || p->elements[b] > p->elements[largest]) largest = b;
    }
    if (best < 0 && largest >= 0) { best = largest; p->elements[best] = need; }
    if (best < 0) { best = p->count++; p->elements[best] = need; }
    p->busy[best] = true;
    return best;
}

rectify_status rx_plan(rectify_model *m, rectify_error *err)
{
    const int n = m->layer_count;
    /* last_use[i + 1] for layer i; last_use[0] for the model input. */
    int *last_use = malloc((size_t)(n + 1) * sizeof *last_use);
    pool p = {rx_calloc(&m->allocator, (size_t)n + 1, sizeof *p.elements), calloc((size_t)n + 1, sizeof *p.busy), 0};
    if (!last_use || !p.elements || !p.busy) {
        free(last_use), rx_free(&m->allocator, p.elements), free(p.busy);
        return rx_fail(err, RECTIFY_ERR_NOMEM, "out of memory planning buffers");
    }
    for (int i = 0; i <= n; i++) last_use[i] = i - 1; /* unread: dead once written */
    for (int i = 0; i < n; i++)
        for (int e = 0; e < m->layers[i].input_count; e++) last_use[m->layers[i].inputs[e] + 1] = i;
    for (int o = 0; o < m->output_count; o++) last_use[m->outputs[o] + 1] = n; /* kept */

    m->input_buffer = take(&p, rx_shape_elements(&m->input));
    m->unplanned_elements = rx_shape_elements(&m->input);
    int64_t scratch = 0;
    for (int i = 0; i < n; i++) {
        rx_layer *l = &m->layers[i];
        int64_t need = rx_shape_elements(&l->out);
        m->unplanned_elements += need;
        int src = l->inputs[0];
        int src_buffer = src < 0 ? m->input_buffer : m->layers[src].buffer;
        l->in_place = l->op->in_place && last_use[src + 1] == i;
        for (int e = 1; e < l->input_count && l->in_place; e++) l->in_place = l->inputs[e] != src;
        l->buffer = l->in_place ? src_buffer : take(&p, need);
        for (int e = 0; e < l->input_count; e++) {
            int in = l->inputs[e];
            int buffer = in < 0 ? m->input_buffer : m->layers[in].buffer;
            if (last_use[in + 1] == i && buffer != l->buffer) p.busy[buffer] = false;
        }
        if (last_use[i + 1] < i + 1 && last_use[i + 1] != n) p.busy[l->buffer] = false; /* nobody reads it */
        if (l->op->scratch) {
            const rx_shape *in[RECTIFY_MAX_INPUTS];
            for (int e = 0; e < l->input_count; e++)
                in[e] = l->inputs[e] < 0 ? &m->input : &m->layers[l->inputs[e]].out;
            int64_t s = l->op->scratch(l, in);
            if (s > scratch) scratch = s;
        }
    }
    m->max_scratch = scratch;
    m->buffer_count = p.count;
    m->buffer_elements = p.elements;
    free(p.busy);
    free(last_use);
    return RECTIFY_OK;
}

/* Whether only layer `by` reads layer i's output (not a model output). */
static bool read_only_by(const rectify_model *m, int i, int by)
{
    for (int o = 0; o < m->output_count; o++)
        if (m->outputs[o] == i) return false;
    for (int j = i + 1; j < m->layer_count; j++)
        for (int e = 0; e < m->layers[j].input_count; e++)
            if (m->layers[j].inputs[e] == i && j != by) return false;
    return true;
}

void rx_plan_fusion(rectify_model *m)
{
    /* A ReLU right after a layer that can apply it (op->fuses_relu), in
       place on that layer's output (so nothing else reads the output before
       the ReLU), is fused into the layer: its kernel writes max(y, 0) while
       y is in registers or cache, and the ReLU's own pass over the tensor is
       saved. Else, a ReLU in place whose output only the next layer reads,
       when that layer can take it (op->takes_relu: the max pools), runs in
       that layer's kernel on the values as it reads them: the ReLU's pass
       is saved and its output never written (the buffer keeps its input).
       RECTIFY_FUSE=0 (read at load) keeps every ReLU a pass of its own. */
    const char *env = getenv("RECTIFY_FUSE");
    const bool off = env && strcmp(env, "0") == 0;
    for (int i = 0; i + 1 < m->layer_count; i++) {
        rx_layer *l = &m->layers[i];
        const rx_layer *next = &m->layers[i + 1];
        l->relu_fused = !off && l->op->fuses_relu && l->op->fuses_relu(m, l) && next->op == &rx_op_relu &&
                        next->inputs[0] == i && next->in_place;
    }
    for (int i = 0; i + 1 < m->layer_count; i++) {
        const rx_layer *relu = &m->layers[i];
        rx_layer *next = &m->layers[i + 1];
        next->relu_in = !off && relu->op == &rx_op_relu && relu->in_place && !(i > 0 && m->layers[i - 1].relu_fused) &&
                        next->op->takes_relu && next->input_count == 1 && next->inputs[0] == i &&
                        read_only_by(m, i, i + 1) && next->op->takes_relu(next, &relu->out);
    }
}
