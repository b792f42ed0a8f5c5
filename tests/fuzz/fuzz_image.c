/* fuzz_image.c: the image path. The input is the bytes of an image file,
   decoded and preprocessed for three fixed models: gray 28x28 with a
   resize (as lenet5-mnist's users feed it), RGB resized and center-cropped
   with mean and std, and BGR taken at its exact size (no resize). The same
   bytes are also fed to rectify_image_from_pixels as raw pixels. */
#include "fuzz.h"

static const char *const jsons[] = {
    "{\"format\": \"rectify\", \"version\": 1, \"name\": \"gray\","
    " \"input\": {\"shape\": [1, 28, 28], \"preprocess\": {\"color\": \"gray\", \"resize\": [28, 28],"
    " \"scale\": 0.00392156862745098, \"mean\": [0.1307], \"std\": [0.3081]}},"
    " \"layers\": [{\"name\": \"f\", \"op\": \"flatten\"}]}",
    "{\"format\": \"rectify\", \"version\": 1, \"name\": \"rgb\","
    " \"input\": {\"shape\": [3, 24, 24], \"preprocess\": {\"color\": \"rgb\", \"resize\": [27, 31],"
    " \"crop\": [24, 24], \"scale\": 0.00392156862745098, \"mean\": [0.485, 0.456, 0.406],"
    " \"std\": [0.229, 0.224, 0.225]}},"
    " \"layers\": [{\"name\": \"f\", \"op\": \"flatten\"}]}",
    "{\"format\": \"rectify\", \"version\": 1, \"name\": \"bgr\","
    " \"input\": {\"shape\": [3, 20, 24], \"preprocess\": {\"color\": \"bgr\", \"crop\": [20, 24]}},"
    " \"layers\": [{\"name\": \"f\", \"op\": \"flatten\"}]}",
};
#define MODELS (int)(sizeof jsons / sizeof jsons[0])

static rectify_model *models[MODELS];
static float *out;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    rectify_load_options options = {.graph_only = 1};
    size_t most = 0;
    for (int i = 0; i < MODELS; i++) {
        rectify_error err;
        if (rectify_model_load_memory(jsons[i], strlen(jsons[i]), NULL, 0, NULL, &options, &models[i], &err)) {
            fprintf(stderr, "fuzz_image: model %d: %s\n", i, err.message);
            abort();
        }
        if (rectify_model_input_size(models[i]) > most) most = rectify_model_input_size(models[i]);
    }
    out = malloc(most * sizeof *out);
    return 0;
}

/* Width x height as the file's header declares them (PNG's IHDR, JPEG's
   first SOF), 0 when not found. */
static uint64_t declared_pixels(const uint8_t *b, size_t size)
{
    if (size >= 24 && memcmp(b, "\x89PNG", 4) == 0)
        return (uint64_t)((uint32_t)b[16] << 24 | (uint32_t)b[17] << 16 | (uint32_t)b[18] << 8 | b[19]) *
               ((uint32_t)b[20] << 24 | (uint32_t)b[21] << 16 | (uint32_t)b[22] << 8 | b[23]);
    for (size_t at = 2; at + 9 <= size; at++)
        if (b[at] == 0xff && b[at + 1] >= 0xc0 && b[at + 1] <= 0xcf && b[at + 1] != 0xc4 && b[at + 1] != 0xc8 &&
            b[at + 1] != 0xcc)
            return (uint64_t)(b[at + 5] << 8 | b[at + 6]) * (uint64_t)(b[at + 7] << 8 | b[at + 8]);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An image of 4 to 64 Mi pixels is within the limits and decodes for
       seconds under the sanitizers (15 Mi pixels: 9 s): such inputs, which
       the fuzzer likes (each new size is new coverage), would starve it:
       they are skipped. Over the limits, an input still runs here (it is
       refused before decoding). Above 256 Ki pixels, one model only. */
    uint64_t pixels = declared_pixels(data, size);
    if (pixels > ((uint64_t)4 << 20) && pixels <= RECTIFY_MAX_IMAGE_PIXELS) return 0;
    const int models_run = pixels > (1u << 18) ? 1 : MODELS;
    for (int i = 0; i < models_run; i++) {
        size_t n = rectify_model_input_size(models[i]);
        rectify_error err;
        rectify_status st = rectify_image_load_memory(models[i], data, size, out, n, &err);
        if (st) {
            fuzz_check_failure(st, &err);
            FUZZ_CHECK(st == RECTIFY_ERR_PARSE || st == RECTIFY_ERR_LIMIT || st == RECTIFY_ERR_INVALID ||
                       st == RECTIFY_ERR_NOMEM);
        } else {
            volatile float sink = 0;
            for (size_t k = 0; k < n; k++) sink += out[k];
            (void)sink;
        }
        /* The bytes as raw pixels: width, height, channels and row padding
           from the first four bytes, the rest the pixel rows. */
        if (size >= 4) {
            int w = 1 + data[0] % 48, h = 1 + data[1] % 48, channels = (int[]){1, 3, 4}[data[2] % 3];
            size_t stride = (size_t)w * (size_t)channels + data[3] % 5;
            if (size - 4 >= stride * (size_t)h) {
                st = rectify_image_from_pixels(models[i], data + 4, w, h, channels, stride, out, n, &err);
                if (st) fuzz_check_failure(st, &err);
            }
        }
    }
    return 0;
}
