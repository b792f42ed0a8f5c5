#define _GNU_SOURCE
/* test_image.c: the image path: decode (PNG, JPEG from memory and file),
   color, resize, center crop, scale, mean/std, NCHW layout. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb/stb_image_write.h>

static rectify_model *graph(const char *input)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"format\":\"rectify\",\"version\":1,\"name\":\"img\",\"input\":%s,"
             "\"layers\":[{\"name\":\"r\",\"op\":\"relu\"}]}", input);
    rectify_error err;
    rectify_model *m = load_json(json, NULL, 0, &err);
    cr_assert_not_null(m, "%s\n%s", err.message, json);
    return m;
}

Test(image, scale_mean_std_on_gray_pixels)
{
    rectify_model *m = graph("{\"shape\":[1,2,2],\"preprocess\":{\"scale\":0.5,\"mean\":[1],\"std\":[2]}}");
    const unsigned char px[4] = {0, 2, 4, 255};
    float out[4];
    rectify_error err;
    cr_assert_eq(rectify_image_from_pixels(m, px, 2, 2, 1, 0, out, 4, &err), RECTIFY_OK, "%s", err.message);
    for (int i = 0; i < 4; i++) cr_assert_float_eq(out[i], (px[i] * 0.5f - 1.0f) / 2.0f, 1e-6, "pixel %d", i);
    rectify_model_destroy(m);
}

Test(image, rgb_planes_and_bgr_order)
{
    const unsigned char px[6] = {10, 20, 30, 40, 50, 60}; /* two RGB pixels, 2x1 */
    float out[6];
    rectify_error err;
    rectify_model *rgb = graph("{\"shape\":[3,1,2],\"preprocess\":{\"color\":\"rgb\"}}");
    cr_assert_eq(rectify_image_from_pixels(rgb, px, 2, 1, 3, 0, out, 6, &err), RECTIFY_OK, "%s", err.message);
    const float want_rgb[6] = {10, 40, 20, 50, 30, 60}; /* planes R, G, B */
    for (int i = 0; i < 6; i++) cr_assert_eq(out[i], want_rgb[i], "rgb %d: %g", i, out[i]);
    rectify_model *bgr = graph("{\"shape\":[3,1,2],\"preprocess\":{\"color\":\"bgr\",\"mean\":[1,2,3]}}");
    cr_assert_eq(rectify_image_from_pixels(bgr, px, 2, 1, 3, 0, out, 6, &err), RECTIFY_OK, "%s", err.message);
    const float want_bgr[6] = {30 - 1, 60 - 1, 20 - 2, 50 - 2, 10 - 3, 40 - 3}; /* mean applies per model channel */
    for (int i = 0; i < 6; i++) cr_assert_eq(out[i], want_bgr[i], "bgr %d: %g", i, out[i]);
    rectify_model_destroy(rgb);
    rectify_model_destroy(bgr);
}

Test(image, color_conversions_and_stride)
{
    /* 1x2 RGBA with a row stride of 12 bytes: alpha ignored, gray is BT.601 */
    unsigned char px[12] = {255, 0, 0, 7, 0, 0, 255, 9};
    float out[3];
    rectify_error err;
    rectify_model *gray = graph("{\"shape\":[1,1,2]}");
    cr_assert_eq(rectify_image_from_pixels(gray, px, 2, 1, 4, 12, out, 2, &err), RECTIFY_OK, "%s", err.message);
    cr_assert_eq(out[0], 76.0f); /* round(0.299 * 255) */
    cr_assert_eq(out[1], 29.0f); /* round(0.114 * 255) */
    rectify_model *rgb = graph("{\"shape\":[3,1,1]}");
    const unsigned char g[1] = {77};
    cr_assert_eq(rectify_image_from_pixels(rgb, g, 1, 1, 1, 0, out, 3, &err), RECTIFY_OK, "%s", err.message);
    cr_assert(out[0] == 77 && out[1] == 77 && out[2] == 77, "gray repeated in three channels");
    rectify_model_destroy(gray);
    rectify_model_destroy(rgb);
}

Test(image, center_crop_rounds_half_to_even)
{
    /* 5x5 image of its pixel indices; crop 2x2: offset round(1.5) = 2 */
    unsigned char px[25];
    for (int i = 0; i < 25; i++) px[i] = (unsigned char)i;
    rectify_model *m = graph("{\"shape\":[1,2,2],\"preprocess\":{\"crop\":[2,2]}}");
    float out[4];
    rectify_error err;
    cr_assert_eq(rectify_image_from_pixels(m, px, 5, 5, 1, 0, out, 4, &err), RECTIFY_OK, "%s", err.message);
    cr_assert_eq(out[0], 12.0f); /* row 2, column 2 */
    cr_assert_eq(out[3], 18.0f);
    /* 4x4 -> 2x2: offset 1 */
    cr_assert_eq(rectify_image_from_pixels(m, px, 4, 4, 1, 0, out, 4, &err), RECTIFY_OK);
    cr_assert_eq(out[0], 5.0f);
    /* smaller than the crop: an error that says so */
    cr_assert_eq(rectify_image_from_pixels(m, px, 1, 1, 1, 0, out, 4, &err), RECTIFY_ERR_INVALID);
    cr_assert(strstr(err.message, "smaller than the crop"), "%s", err.message);
    rectify_model_destroy(m);
}

Test(image, resize_keeps_flat_images_flat_and_averages_when_shrinking)
{
    rectify_model *m = graph("{\"shape\":[1,3,3],\"preprocess\":{\"resize\":[3,3]}}");
    unsigned char flat[64];
    memset(flat, 100, sizeof flat);
    float out[9];
    rectify_error err;
    cr_assert_eq(rectify_image_from_pixels(m, flat, 8, 8, 1, 0, out, 9, &err), RECTIFY_OK, "%s", err.message);
    for (int i = 0; i < 9; i++) cr_assert_eq(out[i], 100.0f);
    /* a 6x6 checkerboard of 0 and 200 shrunk by 2 averages to about 100 */
    unsigned char board[36];
    for (int i = 0; i < 36; i++) board[i] = ((i / 6 + i % 6) % 2) ? 200 : 0;
    cr_assert_eq(rectify_image_from_pixels(m, board, 6, 6, 1, 0, out, 9, &err), RECTIFY_OK);
    for (int i = 0; i < 9; i++) cr_assert(fabsf(out[i] - 100.0f) <= 30.0f, "pixel %d is %g", i, out[i]);
    rectify_model_destroy(m);
}

Test(image, wrong_size_without_resize_is_a_clear_error)
{
    rectify_model *m = graph("{\"shape\":[1,2,2]}");
    unsigned char px[9] = {0};
    float out[4];
    rectify_error err;
    cr_assert_eq(rectify_image_from_pixels(m, px, 3, 3, 1, 0, out, 4, &err), RECTIFY_ERR_INVALID);
    cr_assert(strstr(err.message, "3x3") && strstr(err.message, "2x2"), "%s", err.message);
    cr_assert_eq(rectify_image_from_pixels(m, px, 2, 2, 2, 0, out, 4, &err), RECTIFY_ERR_ARGUMENT);
    cr_assert_eq(rectify_image_from_pixels(m, px, 2, 2, 1, 0, out, 3, &err), RECTIFY_ERR_ARGUMENT, "room for 3 floats");
    rectify_model_destroy(m);
}

typedef struct membuf { unsigned char *data; int size; } membuf;

static void append(void *ctx, void *data, int size)
{
    membuf *b = ctx;
    b->data = realloc(b->data, (size_t)(b->size + size));
    memcpy(b->data + b->size, data, (size_t)size);
    b->size += size;
}

Test(image, png_and_jpeg_from_memory_and_file_match_the_pixels)
{
    unsigned char px[8 * 6 * 3];
    for (int i = 0; i < (int)sizeof px; i++) px[i] = (unsigned char)(i * 37 % 251);
    rectify_model *m = graph("{\"shape\":[3,6,8],\"preprocess\":{\"scale\":0.00392156862745098}}");
    float direct[144], decoded[144];
    rectify_error err;
    cr_assert_eq(rectify_image_from_pixels(m, px, 8, 6, 3, 0, direct, 144, &err), RECTIFY_OK);
    membuf png = {0};
    cr_assert(stbi_write_png_to_func(append, &png, 8, 6, 3, px, 0));
    cr_assert_eq(rectify_image_load_memory(m, png.data, (size_t)png.size, decoded, 144, &err), RECTIFY_OK, "%s",
                 err.message);
    cr_assert_eq(memcmp(direct, decoded, sizeof direct), 0, "PNG is lossless");
    char path[] = "/tmp/rectify-test-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "wb");
    fwrite(png.data, 1, (size_t)png.size, f);
    fclose(f);
    memset(decoded, 0, sizeof decoded);
    cr_assert_eq(rectify_image_load(m, path, decoded, 144, &err), RECTIFY_OK, "%s", err.message);
    cr_assert_eq(memcmp(direct, decoded, sizeof direct), 0, "the same from a file");
    remove(path);
    membuf jpg = {0};
    cr_assert(stbi_write_jpg_to_func(append, &jpg, 8, 6, 3, px, 100));
    cr_assert_eq(rectify_image_load_memory(m, jpg.data, (size_t)jpg.size, decoded, 144, &err), RECTIFY_OK, "%s",
                 err.message);
    double diff = 0;
    for (int i = 0; i < 144; i++) diff += fabs(direct[i] - decoded[i]);
    cr_assert(diff / 144 < 0.15, "JPEG at quality 100 is close: mean |diff| %g", diff / 144);
    /* truncated PNG: a parse error, not a crash */
    cr_assert_eq(rectify_image_load_memory(m, png.data, (size_t)png.size / 2, decoded, 144, &err), RECTIFY_ERR_PARSE);
    free(png.data);
    free(jpg.data);
    rectify_model_destroy(m);
}

Test(image, shipped_sample_gives_the_pixels_the_model_was_trained_on)
{
    rectify_model *m;
    rectify_error err;
    cr_assert_eq(rectify_model_load(TEST_SOURCE_ROOT "/models/lenet5-mnist", NULL, &m, &err), RECTIFY_OK, "%s",
                 err.message);
    float x[784];
    cr_assert_eq(rectify_image_load(m, TEST_SOURCE_ROOT "/models/lenet5-mnist/samples/digit-7.png", x, 784, &err),
                 RECTIFY_OK, "%s", err.message);
    /* background pixels are 0 bytes: (0/255 - 0.1307) / 0.3081 */
    cr_assert_float_eq(x[0], -0.1307f / 0.3081f, 1e-5);
    float top = x[0];
    for (int i = 0; i < 784; i++) top = x[i] > top ? x[i] : top;
    cr_assert_float_eq(top, (1.0f - 0.1307f) / 0.3081f, 1e-3, "the stroke reaches 255");
    rectify_model_destroy(m);
}
