/* op.h: what an operator is. One file per operator under ops/ defines one
   rx_op; ops.c lists them in one table. */
#ifndef RX_OP_H
#define RX_OP_H

#include "../internal.h"

/* Everything a kernel needs for one layer of one run. */
typedef struct rx_exec {
    const rectify_model *model;
    const rx_layer *layer;
    const float *in[RECTIFY_MAX_INPUTS];
    const rx_shape *in_shape[RECTIFY_MAX_INPUTS];
    float *out;          /* batch x out elements; == in[0] for in-place ops */
    int64_t batch;
    int threads;
    float *scratch;      /* threads x scratch(layer) floats */
    /* Ops that count zeros (counts_zeros) fill zeros: batch x channels exact
       zeros of their output; and in_zeros when not NULL: those of input 0,
       read before an in-place op overwrites it, so that the session need not
       read either tensor again for the statistics. Both NULL when the
       session's statistics are off, and for a layer of one float per
       channel, which the session counts itself (session.c: counts_units). */
    int64_t *zeros, *in_zeros;
    /* A ReLU fused into this layer (rx_layer.relu_fused, no observer): the
       layer writes max(y, 0) in place of y, and, with the statistics on,
       zeros then holds the zeros of y (the layer's own output) and
       relu_zeros those of max(y, 0) (the ReLU's), batch x channels each,
       zeroed by the session before the run. */
    bool relu;
    int64_t *relu_zeros;
    /* A ReLU before this layer run on its input as it is read
       (rx_layer.relu_in, no observer): the layer computes on max(x, 0)
       instead of x, and, with the statistics on, writes relu_zeros: batch x
       channels zeros of max(x, 0) (the ReLU's), and in_zeros, when not NULL,
       those of x. */
    bool relu_in;
} rx_exec;

typedef struct rx_op {
    const char *name;
    const char *const *fields;  /* the op's own JSON fields, NULL-terminated */
    int min_inputs, max_inputs;
    bool in_place;              /* may write into its first input's buffer */
    bool counts_zeros;          /* its run fills rx_exec.zeros (and in_zeros) */
    /* Whether the layer, prepared, runs a ReLU after it (rx_exec.relu);
       NULL: never. */
    bool (*fuses_relu)(const rectify_model *m, const rx_layer *l);
    /* Whether the layer, reading input `in` (a ReLU's output), can run that
       ReLU on it instead (rx_exec.relu_in): reading every input float once,
       so that it counts them all; NULL: never. */
    bool (*takes_relu)(const rx_layer *l, const rx_shape *in);
    /* Reads the op's fields into p (NULL: the op has none). */
    rectify_status (*parse)(rx_ctx *c, const cJSON *json, rx_params *p);
    /* Output shape, cost and weight tensors, given the input shapes. */
    rectify_status (*infer)(rx_ctx *c, rectify_model *m, rx_layer *l,
                            const rx_shape *const *in);
    /* Scratch floats per thread (NULL: none). */
    int64_t (*scratch)(const rx_layer *l, const rx_shape *const *in);
    void (*run)(const rx_exec *e);
    /* Once the weights are bound: make the layer's kernel choices and pack
       its first tensor (the weights) into l->packed for the kernel, as
       packed_floats floats; later tensors (the bias) are read as bound.
       When l->packed is set already (a packed file, packed.c, with the
       choices it was packed with), only the choices not stored there are
       made. NULL: the op has no weights to pack. */
    rectify_status (*prepare)(rectify_model *m, rx_layer *l, rectify_error *err);
    /* Floats of the packed weights for the layer's choices (l->winograd),
       or -1 when those choices are not valid for the layer. */
    int64_t (*packed_floats)(const rectify_model *m, const rx_layer *l);
} rx_op;

const rx_op *rx_find_op(const char *name);
/* ops.c: the output has the input's shape (element-wise ops). */
rectify_status rx_infer_same_shape(rx_ctx *c, rectify_model *m, rx_layer *l, const rx_shape *const *in);
/* maxpool.c: the output-size rules shared by both pools. */
rectify_status rx_pool_infer(rx_ctx *c, rx_layer *l, const rx_shape *in);
/* "conv, maxpool, ..." for messages. */
void rx_op_names(char *buf, size_t size);

extern const rx_op rx_op_conv, rx_op_maxpool, rx_op_avgpool, rx_op_global_avgpool,
    rx_op_dense, rx_op_relu, rx_op_flatten, rx_op_softmax,
    rx_op_concat,
    rx_op_add,
    rx_op_sigmoid, rx_op_tanh, rx_op_leaky_relu;

#endif
