/* model.c: model.json into a validated graph: fields, names, inputs, order
   (a DAG, sorted), shapes and costs, then the plan, weights and labels. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "internal.h"
#include "ops/op.h"

static const char *const top_fields[] = {"format", "version", "name", "description", "input",
                                         "weights", "labels", "layers", "outputs", NULL};
static const char *const input_fields[] = {"name", "shape", "preprocess", NULL};
static const char *const preprocess_fields[] = {"color", "resize", "crop", "scale", "mean", "std", NULL};

/* malloc, asking for transparent huge pages for large blocks (packed weights,
   activations, scratch): 2 MiB pages fault in 512 times fewer (VGG-16's
   Winograd filters: 30,000 faults at load otherwise) and spare the TLB when
   the kernels stream them. Only a hint: the kernel may decline. */
static void *default_alloc(void *user, size_t size)
{
    (void)user;
    void *p = malloc(size);
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (p && size >= 2 * huge) {
        uintptr_t lo = ((uintptr_t)p + huge - 1) & ~(huge - 1), hi = ((uintptr_t)p + size) & ~(huge - 1);
        if (hi > lo) madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
    }
    return p;
}
static void default_free(void *user, void *p) { (void)user; free(p); }

/* While a model loads, its allocations pass through a tally that keeps each
   block's size, so that the model knows what it holds (held_bytes) however
   its operators allocate. The tally's own list lives in malloc'd memory. */
typedef struct tally {
    rectify_allocator real;
    int64_t bytes;
    size_t count, capacity;
    struct block { void *p; size_t size; } *blocks;
} tally;

static void *tally_alloc(void *user, size_t size)
{
    tally *t = user;
    if (t->count == t->capacity) {
        size_t capacity = t->capacity ? 2 * t->capacity : 64;
        struct block *grown = realloc(t->blocks, capacity * sizeof *grown);
        if (!grown) return NULL;
        t->blocks = grown;
        t->capacity = capacity;
    }
    void *p = t->real.alloc(t->real.user, size);
    if (p) {
        t->blocks[t->count++] = (struct block){p, size};
        t->bytes += (int64_t)size;
    }
    return p;
}

static void tally_free(void *user, void *p)
{
    tally *t = user;
    for (size_t i = t->count; i-- > 0;)
        if (t->blocks[i].p == p) {
            t->bytes -= (int64_t)t->blocks[i].size;
            t->blocks[i] = t->blocks[--t->count];
            break;
        }
    t->real.free(t->real.user, p);
}

static bool valid_name(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("_.:/-", *s)))
            return false;
    return true;
}

void rectify_model_destroy(rectify_model *m)
{
    if (!m) return;
    rectify_allocator a = m->allocator;
    for (int i = 0; m->layers && i < m->layer_count; i++) rx_free_aligned(&a, m->layers[i].packed_block);
    rx_free(&a, m->layers);
    rx_free(&a, m->outputs);
    rx_free(&a, m->tensors);
    rx_free(&a, m->buffer_elements);
    rx_unmap(&a, &m->weights);
    rx_free(&a, m->owned);
    rx_free(&a, m->labels);
    rx_free(&a, m->label_text);
    rx_free(&a, m);
}

rectify_status rx_declare_tensor(rx_ctx *c, rectify_model *m, rx_layer *l, const char *suffix,
                                 const rx_shape *shape, int64_t fan_in, int64_t fan_out, bool is_bias)
{
    if (l->tensor_count == 0) l->tensor_first = m->tensor_count;
    if (m->tensor_count == m->tensor_capacity) {
        int capacity = m->tensor_capacity ? 2 * m->tensor_capacity : 16;
        rx_tensor *grown = rx_grow(&m->allocator, m->tensors, (size_t)m->tensor_count * sizeof *grown,
                                   (size_t)capacity * sizeof *grown);
        if (!grown) return rx_cfail(c, RECTIFY_ERR_NOMEM, "out of memory");
        m->tensors = grown;
        m->tensor_capacity = capacity;
    }
    rx_tensor *t = &m->tensors[m->tensor_count++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s.%s", l->name, suffix);
    t->layer = (int)(l - m->layers);
    t->shape = *shape;
    t->elements = 1;
    for (int i = 0; i < shape->rank; i++)
        if (rx_mul_overflow(t->elements, shape->d[i], &t->elements) || t->elements > (int64_t)RECTIFY_MAX_ELEMENTS)
            return rx_cfail(c, RECTIFY_ERR_LIMIT, "tensor \"%s\" has more than %llu elements", t->name,
                            (unsigned long long)RECTIFY_MAX_ELEMENTS);
    t->fan_in = fan_in;
    t->fan_out = fan_out;
    t->is_bias = is_bias;
    l->tensor_count++;
    return RECTIFY_OK;
}

static rectify_status parse_float_list(rx_ctx *c, const cJSON *obj, const char *key, int64_t channels,
                                       float def, bool positive, float *out)
{
    const cJSON *v = rx_json_get(obj, key);
    for (int i = 0; i < channels; i++) out[i] = def;
    if (!v) return RECTIFY_OK;
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n != 1 && n != channels)
        return rx_cfail(c, RECTIFY_ERR_INVALID, "input.preprocess.%s must be an array of 1 or %lld numbers",
                        key, (long long)channels);
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        /* as float32: std must stay > 0 and 1/std finite */
        if (!cJSON_IsNumber(e) || !(e->valuedouble > -1e30 && e->valuedouble < 1e30) ||
            (positive && !(e->valuedouble > 1e-30)))
            return rx_cfail(c, RECTIFY_ERR_INVALID, "input.preprocess.%s[%d] must be a %snumber", key, i,
                            positive ? "positive " : "finite ");
        for (int k = (n == 1 ? 0 : i); k < (n == 1 ? channels : i + 1); k++) out[k] = (float)e->valuedouble;
    }
    return RECTIFY_OK;
}

static rectify_status parse_input(rx_ctx *c, const cJSON *root, rectify_model *m)
{
    const cJSON *in = rx_json_get(root, "input");
    if (!in) return rx_cfail(c, RECTIFY_ERR_INVALID, "field \"input\" is missing");
    c->section = "input";
    rectify_status st = rx_json_check_keys(c, in, "\"input\"", input_fields);
    const char *name;
    if (!st) st = rx_json_string(c, in, "name", false, "input", RECTIFY_MAX_NAME, &name);
    if (st) return st;
    if (!valid_name(name)) return rx_cfail(c, RECTIFY_ERR_INVALID, "input.name \"%s\" has characters outside [A-Za-z0-9_.:/-]", name);
    snprintf(m->input_name, sizeof m->input_name, "%s", name);
    static const int three[] = {3, 0};
    int n;
    st = rx_json_ints(c, in, "shape", true, 0, 1, RECTIFY_MAX_DIM, three, m->input.d, &n);
    if (st) return st;
    if (n != 3) return rx_cfail(c, RECTIFY_ERR_INVALID, "input.shape must be [C, H, W]");
    m->input.rank = 3;
    if (rx_shape_elements(&m->input) > (int64_t)RECTIFY_MAX_ELEMENTS)
        return rx_cfail(c, RECTIFY_ERR_LIMIT, "input.shape has more than %llu elements",
                        (unsigned long long)RECTIFY_MAX_ELEMENTS);
    int64_t channels = m->input.d[0];
    rx_preprocess *p = &m->pre;
    const cJSON *pre = rx_json_get(in, "preprocess");
    cJSON empty = {0};
    empty.type = cJSON_Object;
    if (!pre) {
        /* No preprocess: images load as gray or rgb where the channels allow,
           and a model of other channels takes tensors only. */
        pre = &empty;
        if (channels != 1 && channels != 3) {
            p->color = -1;
            p->scale = 1.0;
            for (int c = 0; c < 4; c++) p->mean[c] = 0.0f, p->std[c] = 1.0f;
            return RECTIFY_OK;
        }
    }
    c->section = "input.preprocess";
    if ((st = rx_json_check_keys(c, pre, "\"input.preprocess\"", preprocess_fields))) return st;
    const char *color;
    if ((st = rx_json_string(c, pre, "color", false, channels == 1 ? "gray" : "rgb", 8, &color))) return st;
    p->color = strcmp(color, "gray") == 0 ? 0 : strcmp(color, "rgb") == 0 ? 1 : strcmp(color, "bgr") == 0 ? 2 : -1;
    if (p->color < 0) return rx_cfail(c, RECTIFY_ERR_INVALID, "input.preprocess.color \"%s\": use gray, rgb or bgr", color);
    if ((p->color == 0) != (channels == 1) || (p->color && channels != 3))
        return rx_cfail(c, RECTIFY_ERR_INVALID, "input.preprocess.color \"%s\" does not give the %lld channels of input.shape",
                        color, (long long)channels);
    static const int two[] = {2, 0};
    int64_t v[2];
    if ((st = rx_json_ints(c, pre, "resize", false, 0, 1, RECTIFY_MAX_IMAGE_SIDE, two, v, &n))) return st;
    p->resize_h = v[0], p->resize_w = v[1];
    if (p->resize_h * p->resize_w > (int64_t)RECTIFY_MAX_IMAGE_PIXELS)
        return rx_cfail(c, RECTIFY_ERR_LIMIT, "resize to %lldx%lld is more than the limit of %u pixels",
                        (long long)p->resize_h, (long long)p->resize_w, RECTIFY_MAX_IMAGE_PIXELS);
    if ((st = rx_json_ints(c, pre, "crop", false, 0, 1, RECTIFY_MAX_IMAGE_SIDE, two, v, &n))) return st;
    p->crop_h = v[0], p->crop_w = v[1];
    if (p->crop_h && p->resize_h && (p->crop_h > p->resize_h || p->crop_w > p->resize_w))
        return rx_cfail(c, RECTIFY_ERR_INVALID, "input.preprocess.crop is larger than its resize");
    int64_t fh = p->crop_h ? p->crop_h : p->resize_h, fw = p->crop_h ? p->crop_w : p->resize_w;
    if (fh && (fh != m->input.d[1] || fw != m->input.d[2]))
        return rx_cfail(c, RECTIFY_ERR_INVALID, "input.preprocess gives %lldx%lld images, input.shape wants %lldx%lld",
                        (long long)fh, (long long)fw, (long long)m->input.d[1], (long long)m->input.d[2]);
    if ((st = rx_json_number(c, pre, "scale", 1.0, &p->scale))) return st;
    if (!(fabs(p->scale) < 1e30))
        return rx_cfail(c, RECTIFY_ERR_INVALID, "field \"scale\" is %g, out of float range", p->scale);
    if ((st = parse_float_list(c, pre, "mean", channels, 0.0f, false, p->mean))) return st;
    return parse_float_list(c, pre, "std", channels, 1.0f, true, p->std);
}

/* Name -> JSON index lookup by sorted array. */
typedef struct named { const char *name; int index; } named;

static int compare_named(const void *a, const void *b)
{
    return strcmp(((const named *)a)->name, ((const named *)b)->name);
}

static int lookup(const named *sorted, int n, const char *name)
{
    named key = {name, 0};
    const named *hit = bsearch(&key, sorted, (size_t)n, sizeof key, compare_named);
    return hit ? hit->index : -2;
}

static rectify_status parse_layers(rx_ctx *c, const cJSON *root, rectify_model *m)
{
    const cJSON *layers = rx_json_get(root, "layers");
    if (!layers) return rx_cfail(c, RECTIFY_ERR_INVALID, "field \"layers\" is missing");
    if (!cJSON_IsArray(layers)) return rx_cfail(c, RECTIFY_ERR_INVALID, "field \"layers\" must be an array");
    int n = cJSON_GetArraySize(layers);
    if (n == 0) return rx_cfail(c, RECTIFY_ERR_INVALID, "\"layers\" is empty");
    if (n > RECTIFY_MAX_LAYERS)
        return rx_cfail(c, RECTIFY_ERR_LIMIT, "%d layers, more than the limit of %d", n, RECTIFY_MAX_LAYERS);
    rx_layer *parsed = calloc((size_t)n, sizeof *parsed);
    named *names = calloc((size_t)n, sizeof *names);
    int *order = calloc((size_t)n, sizeof *order), *position = calloc((size_t)n, sizeof *position);
    rx_shape *shapes = NULL;
    rectify_status st = RECTIFY_OK;
    if (!parsed || !names || !order || !position) { st = rx_cfail(c, RECTIFY_ERR_NOMEM, "out of memory"); goto done; }

    /* Pass 1: each layer's own fields. */
    int i = 0;
    for (const cJSON *j = layers->child; j; j = j->next, i++) {
        rx_layer *l = &parsed[i];
        l->json_index = i;
        c->layer_index = i;
        char what[48];
        c->layer = ""; /* no name yet: messages say "layer #i" */
        if (!cJSON_IsObject(j)) { st = rx_cfail(c, RECTIFY_ERR_INVALID, "must be an object"); goto done; }
        const char *name, *op;
        if ((st = rx_json_string(c, j, "name", true, NULL, RECTIFY_MAX_NAME, &name))) goto done;
        if (!valid_name(name)) {
            st = rx_cfail(c, RECTIFY_ERR_INVALID, "name \"%s\" has characters outside [A-Za-z0-9_.:/-]", name);
            goto done;
        }
        snprintf(l->name, sizeof l->name, "%s", name);
        c->layer = l->name;
        if ((st = rx_json_string(c, j, "op", true, NULL, 32, &op))) goto done;
        l->op = rx_find_op(op);
        if (!l->op) {
            char known[256];
            rx_op_names(known, sizeof known);
            st = rx_cfail(c, RECTIFY_ERR_INVALID, "unknown op \"%s\" (known: %s)", op, known);
            goto done;
        }
        const char *allowed[24] = {"name", "op", "inputs"};
        int a = 3;
        for (const char *const *f = l->op->fields; f && *f && a < 23; f++) allowed[a++] = *f;
        snprintf(what, sizeof what, "a %s layer", l->op->name);
        if ((st = rx_json_check_keys(c, j, what, allowed))) goto done;
        if (l->op->parse && (st = l->op->parse(c, j, &l->p))) goto done;
        names[i] = (named){l->name, i};
    }
    c->layer = NULL;
    qsort(names, (size_t)n, sizeof *names, compare_named);
    for (i = 1; i < n; i++)
        if (strcmp(names[i - 1].name, names[i].name) == 0) {
            st = rx_cfail(c, RECTIFY_ERR_INVALID, "two layers are named \"%s\" (#%d and #%d)", names[i].name,
                          names[i - 1].index < names[i].index ? names[i - 1].index : names[i].index,
                          names[i - 1].index < names[i].index ? names[i].index : names[i - 1].index);
            goto done;
        }
    if (lookup(names, n, m->input_name) >= 0) {
        st = rx_cfail(c, RECTIFY_ERR_INVALID, "a layer has the input's name \"%s\"", m->input_name);
        goto done;
    }

    /* Pass 2: inputs by name (JSON indices; -1 is the model input). */
    i = 0;
    for (const cJSON *j = layers->child; j; j = j->next, i++) {
        rx_layer *l = &parsed[i];
        c->layer = l->name;
        c->layer_index = i;
        const cJSON *inputs = rx_json_get(j, "inputs");
        if (!inputs) {
            l->input_count = 1;
            l->inputs[0] = i - 1;
        } else {
            int k = cJSON_IsArray(inputs) ? cJSON_GetArraySize(inputs) : -1;
            if (k < 0) { st = rx_cfail(c, RECTIFY_ERR_INVALID, "field \"inputs\" must be an array of names"); goto done; }
            if (k > RECTIFY_MAX_INPUTS) {
                st = rx_cfail(c, RECTIFY_ERR_LIMIT, "%d inputs, more than the limit of %d", k, RECTIFY_MAX_INPUTS);
                goto done;
            }
            int e = 0;
            for (const cJSON *x = inputs->child; x; x = x->next, e++) {
                if (!cJSON_IsString(x)) { st = rx_cfail(c, RECTIFY_ERR_INVALID, "inputs[%d] must be a name", e); goto done; }
                int idx = strcmp(x->valuestring, m->input_name) == 0 ? -1 : lookup(names, n, x->valuestring);
                if (idx == -2) {
                    st = rx_cfail(c, RECTIFY_ERR_INVALID, "inputs[%d] names \"%.100s\", which is neither a layer nor the input",
                                  e, x->valuestring);
                    goto done;
                }
                if (idx == i) { st = rx_cfail(c, RECTIFY_ERR_INVALID, "the layer names itself as an input"); goto done; }
                l->inputs[e] = idx;
            }
            l->input_count = k;
        }
        if (l->input_count < l->op->min_inputs || l->input_count > l->op->max_inputs) {
            st = rx_cfail(c, RECTIFY_ERR_INVALID, "%s takes %d to %d inputs, it has %d", l->op->name,
                          l->op->min_inputs, l->op->max_inputs, l->input_count);
            goto done;
        }
    }
    c->layer = NULL;

    /* Execution order: the JSON order, except that a layer waits for its
       inputs (a stable topological sort); a cycle leaves layers unplaced. */
    for (i = 0; i < n; i++) position[i] = -1;
    int placed = 0;
    while (placed < n) {
        int before = placed;
        for (i = 0; i < n; i++) {
            if (position[i] >= 0) continue;
            bool ready = true;
            for (int e = 0; e < parsed[i].input_count && ready; e++)
                ready = parsed[i].inputs[e] < 0 || position[parsed[i].inputs[e]] >= 0;
            if (ready) { position[i] = placed; order[placed++] = i; }
        }
        if (placed == before) {
            /* From an unplaced layer, follow unplaced inputs: within n steps
               the walk is inside the cycle (a layer merely downstream of it
               is never reached twice). */
            for (i = 0; i < n && position[i] >= 0; i++) {}
            for (int step = 0; step < n; step++) {
                int next = -1;
                for (int e = 0; e < parsed[i].input_count && next < 0; e++)
                    if (parsed[i].inputs[e] >= 0 && position[parsed[i].inputs[e]] < 0) next = parsed[i].inputs[e];
                if (next < 0) break;
                i = next;
            }
            c->layer = parsed[i].name;
            c->layer_index = i;
            st = rx_cfail(c, RECTIFY_ERR_INVALID, "the layers form a cycle through this layer");
            goto done;
        }
    }
    m->layers = rx_calloc(&m->allocator, (size_t)n, sizeof *m->layers);
    shapes = calloc((size_t)n, sizeof *shapes);
    if (!m->layers || !shapes) { st = rx_cfail(c, RECTIFY_ERR_NOMEM, "out of memory"); goto done; }
    m->layer_count = n;
    for (i = 0; i < n; i++) {
        m->layers[i] = parsed[order[i]];
        for (int e = 0; e < m->layers[i].input_count; e++)
            if (m->layers[i].inputs[e] >= 0) m->layers[i].inputs[e] = position[m->layers[i].inputs[e]];
    }

    /* Shapes, costs, tensors, in execution order. */
    for (i = 0; i < n; i++) {
        rx_layer *l = &m->layers[i];
        c->layer = l->name;
        c->layer_index = l->json_index;
        const rx_shape *in[RECTIFY_MAX_INPUTS];
        for (int e = 0; e < l->input_count; e++) in[e] = l->inputs[e] < 0 ? &m->input : &shapes[l->inputs[e]];
        if ((st = l->op->infer(c, m, l, in))) goto done;
        for (int d = 0; d < l->out.rank; d++)
            if (l->out.d[d] > RECTIFY_MAX_DIM) {
                st = rx_cfail(c, RECTIFY_ERR_LIMIT, "output dimension %lld is over the limit of %d",
                              (long long)l->out.d[d], RECTIFY_MAX_DIM);
                goto done;
            }
        if (rx_shape_elements(&l->out) > (int64_t)RECTIFY_MAX_ELEMENTS) {
            st = rx_cfail(c, RECTIFY_ERR_LIMIT, "output has more than %llu elements",
                          (unsigned long long)RECTIFY_MAX_ELEMENTS);
            goto done;
        }
        shapes[i] = l->out;
    }
    c->layer = NULL;

    /* Outputs: named, or the last layer of the list. */
    const cJSON *outputs = rx_json_get(root, "outputs");
    if (outputs) {
        int k = cJSON_IsArray(outputs) ? cJSON_GetArraySize(outputs) : -1;
        if (k < 1 || k > RECTIFY_MAX_LAYERS) { st = rx_cfail(c, RECTIFY_ERR_INVALID, "\"outputs\" must be a non-empty array of layer names"); goto done; }
        m->outputs = rx_calloc(&m->allocator, (size_t)k, sizeof *m->outputs);
        if (!m->outputs) { st = rx_cfail(c, RECTIFY_ERR_NOMEM, "out of memory"); goto done; }
        int e = 0;
        for (const cJSON *x = outputs->child; x; x = x->next, e++) {
            int idx = cJSON_IsString(x) ? lookup(names, n, x->valuestring) : -2;
            if (idx < 0) {
                st = rx_cfail(c, RECTIFY_ERR_INVALID, "outputs[%d] must name a layer%s%.100s%s", e,
                              cJSON_IsString(x) ? " (\"" : "", cJSON_IsString(x) ? x->valuestring : "",
                              cJSON_IsString(x) ? "\" is none)" : "");
                goto done;
            }
            for (int f = 0; f < e; f++)
                if (m->outputs[f] == position[idx]) {
                    st = rx_cfail(c, RECTIFY_ERR_INVALID, "outputs names \"%s\" twice", x->valuestring);
                    goto done;
                }
            m->outputs[e] = position[idx];
        }
        m->output_count = k;
    } else {
        m->outputs = rx_calloc(&m->allocator, 1, sizeof *m->outputs);
        if (!m->outputs) { st = rx_cfail(c, RECTIFY_ERR_NOMEM, "out of memory"); goto done; }
        m->outputs[0] = position[n - 1];
        m->output_count = 1;
    }
done:
    free(parsed);
    free(names);
    free(order);
    free(position);
    free(shapes);
    return st;
}

static rectify_status parse_labels(rectify_model *m, const char *source, const char *file, rectify_error *err)
{
    size_t size = strlen(source) + 1;
    char *text = m->label_text = rx_malloc(&m->allocator, size);
    if (!text) return rx_fail(err, RECTIFY_ERR_NOMEM, "%s: out of memory", file);
    memcpy(text, source, size);
    int lines = 0;
    for (char *p = text; *p; p++) lines += *p == '\n';
    lines++;
    m->labels = rx_calloc(&m->allocator, (size_t)lines, sizeof *m->labels);
    if (!m->labels) return rx_fail(err, RECTIFY_ERR_NOMEM, "%s: out of memory", file);
    int n = 0;
    for (char *p = text; *p;) {
        char *end = strchr(p, '\n');
        char *next = end ? end + 1 : p + strlen(p);
        if (end) *end = '\0';
        size_t len = strlen(p);
        if (len && p[len - 1] == '\r') p[len - 1] = '\0';
        m->labels[n++] = p;
        p = next;
    }
    m->label_count = n;
    /* The labels name the channels (classes) of the first output. */
    const rx_layer *out = &m->layers[m->outputs[0]];
    if (rx_shape_channels(&out->out) != n)
        return rx_fail(err, RECTIFY_ERR_INVALID, "%s: %d labels, but output \"%s\" has %lld channels", file, n,
                       out->name, (long long)rx_shape_channels(&out->out));
    return RECTIFY_OK;
}

static rectify_status prepare_layers(rectify_model *m, rectify_error *err)
{
    for (int i = 0; i < m->layer_count; i++) {
        rx_layer *l = &m->layers[i];
        rectify_status st = l->op->prepare ? l->op->prepare(m, l, err) : RECTIFY_OK;
        if (st) return st;
    }
    return RECTIFY_OK;
}

/* m->weights, a safetensors file (checked, then packed) or a packed one. */
static rectify_status bind_weights(rectify_model *m, const char *label, const rectify_load_options *options,
                                   rectify_error *err)
{
    m->allow_nonfinite = options->allow_nonfinite;
    rectify_status st;
    if (rx_is_packed(m->weights.data, m->weights.size)) {
        st = rx_bind_packed(m, label, err);
    } else {
        st = rx_bind_weights(m, label, err);
        if (!st && !options->allow_nonfinite) st = rx_check_finite(m, label, err);
    }
    if (!st) st = prepare_layers(m, err);
    if (!st) rx_plan_fusion(m);
    return st;
}

/* One sample on one thread must fit RECTIFY_MAX_ACTIVATION_BYTES: a model
   that loads can run (sessions check their batch and threads again). */
static rectify_status check_activations(const rectify_model *m, rx_ctx *c)
{
    int64_t floats = m->max_scratch;
    for (int b = 0; b < m->buffer_count; b++)
        if (__builtin_add_overflow(floats, m->buffer_elements[b], &floats)) floats = INT64_MAX;
    if (floats > (int64_t)(RECTIFY_MAX_ACTIVATION_BYTES / sizeof(float)))
        return rx_cfail(c, RECTIFY_ERR_LIMIT, "one sample needs %lld bytes of activations, more than the limit of %llu",
                        (long long)(floats > INT64_MAX / 4 ? INT64_MAX : floats * 4),
                        (unsigned long long)RECTIFY_MAX_ACTIVATION_BYTES);
    return RECTIFY_OK;
}

/* The shared loader: json text; weights either from `weights` (memory) or
   from the file the JSON names, relative to `dir`. */
static rectify_status load(const char *json, size_t json_size, const char *dir, const char *json_label,
                           const void *weights, size_t weights_size, const char *labels_text,
                           const rectify_load_options *options, rectify_model **out, rectify_error *err)
{
    rx_ok(err);
    *out = NULL;
    rectify_load_options none = {0};
    if (!options) options = &none;
    rectify_allocator a = {default_alloc, default_free, NULL};
    if (options->allocator) a = *options->allocator;
    if (!a.alloc || !a.free) return rx_fail(err, RECTIFY_ERR_ARGUMENT, "the allocator needs both alloc and free");
    tally held = {.real = a};
    rectify_allocator counted = {tally_alloc, tally_free, &held};
    rectify_model *m = rx_calloc(&counted, 1, sizeof *m);
    if (!m) { free(held.blocks); return rx_fail(err, RECTIFY_ERR_NOMEM, "out of memory"); }
    m->allocator = counted;
    rx_ctx c = {.err = err, .file = json_label};
    cJSON *root = NULL;
    rectify_status st = rx_json_parse(&c, json, json_size, &root);
    if (st) goto fail;
    if ((st = rx_json_check_keys(&c, root, "the model", top_fields))) goto fail;
    const char *format, *name, *text;
    int64_t version;
    if ((st = rx_json_string(&c, root, "format", true, NULL, 64, &format))) goto fail;
    if (strcmp(format, "rectify") != 0) {
        st = rx_cfail(&c, RECTIFY_ERR_INVALID, "\"format\" is \"%s\", not \"rectify\"", format);
        goto fail;
    }
    if ((st = rx_json_int(&c, root, "version", true, 0, INT64_MIN, INT64_MAX, &version))) goto fail;
    if (version != 1) {
        st = rx_cfail(&c, RECTIFY_ERR_INVALID, "format version %lld is not supported (this is version 1)", (long long)version);
        goto fail;
    }
    if ((st = rx_json_string(&c, root, "name", true, NULL, RECTIFY_MAX_NAME, &name))) goto fail;
    snprintf(m->name, sizeof m->name, "%s", name);
    const cJSON *description = rx_json_get(root, "description");
    if (description && !cJSON_IsString(description)) {
        st = rx_cfail(&c, RECTIFY_ERR_INVALID, "field \"description\" must be a string");
        goto fail;
    }
    (void)text;
    st = parse_input(&c, root, m);
    c.section = NULL;
    if (st) goto fail;
    if ((st = parse_layers(&c, root, m))) goto fail;
    if ((st = rx_plan(m, err))) goto fail;
    if ((st = check_activations(m, &c))) goto fail;

    const char *weights_name, *labels_name;
    char path[8192];
    if ((st = rx_json_string(&c, root, "weights", false, "weights.safetensors", 4096, &weights_name))) goto fail;
    if ((st = rx_json_string(&c, root, "labels", false, NULL, 4096, &labels_name))) goto fail;
    if (!labels_name && dir) { /* labels.txt beside model.json, when there is one */
        snprintf(path, sizeof path, "%s/labels.txt", dir);
        struct stat sb;
        if (stat(path, &sb) == 0) labels_name = "labels.txt";
    }
    m->graph_only = options->graph_only;
    if (!options->graph_only) {
        if (weights) {
            /* On a page, as a mapped file is: a packed file's data is read in
               place, its dense blocks page-aligned. */
            void *block = rx_malloc_aligned(&m->allocator, weights_size + RX_PAGE_BYTES);
            if (!block) { st = rx_fail(err, RECTIFY_ERR_NOMEM, "out of memory copying the weights"); goto fail; }
            unsigned char *copy = (unsigned char *)(((uintptr_t)block + RX_PAGE_BYTES - 1) & ~(uintptr_t)(RX_PAGE_BYTES - 1));
            memcpy(copy, weights, weights_size);
            m->weights = (rx_blob){.data = copy, .size = weights_size, .block = block};
            st = bind_weights(m, "weights", options, err);
        } else if (dir || options->weights_path) {
            if (options->weights_path) snprintf(path, sizeof path, "%s", options->weights_path);
            else if (weights_name[0] == '/') snprintf(path, sizeof path, "%s", weights_name);
            else snprintf(path, sizeof path, "%s/%s", dir, weights_name);
            if (!(st = rx_map_file(path, &m->weights, err))) st = bind_weights(m, path, options, err);
        } else {
            st = rx_fail(err, RECTIFY_ERR_ARGUMENT, "no weights given (set graph_only to load the graph alone)");
        }
        if (st) goto fail;
    }
    if (labels_text || (labels_name && dir)) {
        char *file_text = NULL;
        size_t size;
        if (labels_text) {
            snprintf(path, sizeof path, "labels");
        } else {
            if (labels_name[0] == '/') snprintf(path, sizeof path, "%s", labels_name);
            else snprintf(path, sizeof path, "%s/%s", dir, labels_name);
            if ((st = rx_read_file(path, RECTIFY_MAX_JSON_BYTES, &file_text, &size, err))) goto fail;
        }
        st = parse_labels(m, labels_text ? labels_text : file_text, path, err);
        free(file_text);
        if (st) goto fail;
    }
    cJSON_Delete(root);
    m->allocator = a;
    m->held_bytes = held.bytes;
    free(held.blocks);
    *out = m;
    return RECTIFY_OK;
fail:
    cJSON_Delete(root);
    rectify_model_destroy(m);
    free(held.blocks);
    return st;
}

rectify_status rectify_model_load(const char *path, const rectify_load_options *options,
                                  rectify_model **model, rectify_error *err)
{
    if (!model) return rx_fail(err, RECTIFY_ERR_ARGUMENT, "model is NULL");
    *model = NULL;
    if (!path) return rx_fail(err, RECTIFY_ERR_ARGUMENT, "path is NULL");
    char dir[4096], json_path[4200];
    struct stat st;
    if (stat(path, &st) != 0) return rx_fail(err, RECTIFY_ERR_IO, "%s: no such model folder or file", path);
    if (S_ISDIR(st.st_mode)) {
        snprintf(dir, sizeof dir, "%s", path);
        snprintf(json_path, sizeof json_path, "%s/model.json", path);
    } else {
        snprintf(json_path, sizeof json_path, "%s", path);
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        else snprintf(dir, sizeof dir, ".");
    }
    char *json;
    size_t size;
    rectify_status s = rx_read_file(json_path, RECTIFY_MAX_JSON_BYTES, &json, &size, err);
    if (s) return s;
    s = load(json, size, dir, json_path, NULL, 0, NULL, options, model, err);
    free(json);
    return s;
}

rectify_status rectify_model_load_memory(const char *json, size_t json_size, const void *weights,
                                         size_t weights_size, const char *labels_text,
                                         const rectify_load_options *options, rectify_model **model,
                                         rectify_error *err)
{
    if (!model) return rx_fail(err, RECTIFY_ERR_ARGUMENT, "model is NULL");
    *model = NULL;
    if (!json) return rx_fail(err, RECTIFY_ERR_ARGUMENT, "json is NULL");
    if (!weights && weights_size) return rx_fail(err, RECTIFY_ERR_ARGUMENT, "weights is NULL");
    return load(json, json_size, NULL, "model.json", weights, weights_size, labels_text, options, model, err);
}

/* ---- getters ---- */

const char *rectify_model_name(const rectify_model *m) { return m->name; }
size_t rectify_model_input_size(const rectify_model *m) { return (size_t)rx_shape_elements(&m->input); }
int rectify_model_label_count(const rectify_model *m) { return m->label_count; }
const char *rectify_model_label(const rectify_model *m, int i)
{
    return i >= 0 && i < m->label_count ? m->labels[i] : NULL;
}
int rectify_model_layer_count(const rectify_model *m) { return m->layer_count; }

rectify_status rectify_model_layer(const rectify_model *m, int i, rectify_layer_info *info)
{
    if (!m || !info || i < 0 || i >= m->layer_count) return RECTIFY_ERR_ARGUMENT;
    const rx_layer *l = &m->layers[i];
    memset(info, 0, sizeof *info);
    info->name = l->name;
    info->op = l->op->name;
    info->rank = l->out.rank;
    for (int d = 0; d < l->out.rank; d++) info->shape[d] = l->out.d[d];
    info->elements = rx_shape_elements(&l->out);
    info->params = l->params;
    info->macs = l->macs;
    info->in_place = l->in_place;
    info->buffer = l->buffer;
    info->input_count = l->input_count;
    for (int e = 0; e < l->input_count; e++) info->inputs[e] = l->inputs[e];
    info->fused_into = i > 0 && m->layers[i - 1].relu_fused         ? i - 1
                       : i + 1 < m->layer_count && m->layers[i + 1].relu_in ? i + 1
                                                                            : -1;
    return RECTIFY_OK;
}

rectify_status rectify_model_layer_window(const rectify_model *m, int i, rectify_window *w)
{
    if (!m || !w || i < 0 || i >= m->layer_count) return RECTIFY_ERR_ARGUMENT;
    const rx_layer *l = &m->layers[i];
    if (l->op != &rx_op_conv && l->op != &rx_op_maxpool && l->op != &rx_op_avgpool) return RECTIFY_ERR_ARGUMENT;
    const rx_window *v = &l->p.win;
    *w = (rectify_window){{v->kh, v->kw}, {v->sh, v->sw}, {v->pt, v->pl, v->pb, v->pr}, {v->dh, v->dw},
                          l->op == &rx_op_conv ? l->p.groups : 1};
    return RECTIFY_OK;
}

int rectify_model_find_layer(const rectify_model *m, const char *name)
{
    for (int i = 0; name && i < m->layer_count; i++)
        if (strcmp(m->layers[i].name, name) == 0) return i;
    return -1;
}

void rectify_model_input_shape(const rectify_model *m, int64_t shape[3])
{
    for (int d = 0; d < 3; d++) shape[d] = m->input.d[d];
}

int rectify_model_output_count(const rectify_model *m) { return m->output_count; }
int rectify_model_output_layer(const rectify_model *m, int i)
{
    return i >= 0 && i < m->output_count ? m->outputs[i] : -1;
}

void rectify_model_memory(const rectify_model *m, rectify_memory_info *info)
{
    memset(info, 0, sizeof *info);
    for (int b = 0; b < m->buffer_count; b++) info->planned_bytes += m->buffer_elements[b] * 4;
    info->unplanned_bytes = m->unplanned_elements * 4;
    info->buffers = m->buffer_count;
    info->weight_bytes = m->weight_bytes;
    info->model_bytes = m->held_bytes;
}

int rectify_model_tensor_count(const rectify_model *m) { return m->tensor_count; }

rectify_status rectify_model_tensor(const rectify_model *m, int i, rectify_tensor_info *info)
{
    if (!m || !info || i < 0 || i >= m->tensor_count) return RECTIFY_ERR_ARGUMENT;
    const rx_tensor *t = &m->tensors[i];
    memset(info, 0, sizeof *info);
    info->name = t->name;
    info->rank = t->shape.rank;
    for (int d = 0; d < t->shape.rank; d++) info->shape[d] = t->shape.d[d];
    info->elements = t->elements;
    info->fan_in = t->fan_in;
    info->fan_out = t->fan_out;
    info->is_bias = t->is_bias;
    return RECTIFY_OK;
}
