/* image.c: PNG/JPEG bytes or raw pixels -> the model's preprocess -> one
   NCHW float sample: color, resize, center crop, scale, mean and std. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "internal.h"

/* Round half to even, as torchvision's CenterCrop (Python's round). */
static int64_t crop_offset(int64_t size, int64_t crop)
{
    int64_t diff = size - crop, k = diff / 2;
    return (diff % 2 == 0 || k % 2 == 0) ? k : k + 1;
}

static rectify_status preprocess(const rectify_model *m, const unsigned char *pixels, int width, int height,
                                 int channels, size_t stride, float *out, size_t count, const char *what,
                                 rectify_error *err)
{
    const rx_preprocess *p = &m->pre;
    if (p->color < 0)
        return rx_fail(err, RECTIFY_ERR_INVALID, "%s: the model's input has %lld channels; images give 1 or 3", what,
                       (long long)m->input.d[0]);
    const int want = p->color == 0 ? 1 : 3;
    const int64_t H = m->input.d[1], W = m->input.d[2];
    if (count < (size_t)rx_shape_elements(&m->input))
        return rx_fail(err, RECTIFY_ERR_ARGUMENT, "output has room for %zu floats, the model's input needs %lld",
                       count, (long long)rx_shape_elements(&m->input));
    /* Color first, into a tight buffer of `want` channels. */
    unsigned char *color = malloc((size_t)width * (size_t)height * (size_t)want);
    if (!color) return rx_fail(err, RECTIFY_ERR_NOMEM, "%s: out of memory", what);
    for (int y = 0; y < height; y++) {
        const unsigned char *row = pixels + (size_t)y * stride;
        unsigned char *dst = color + (size_t)y * (size_t)width * (size_t)want;
        for (int x = 0; x < width; x++) {
            const unsigned char *px = row + (size_t)x * (size_t)channels;
            if (want == channels || (want == 3 && channels == 4)) {
                memcpy(dst + x * want, px, (size_t)want);
            } else if (want == 3) { /* gray -> rgb */
                dst[x * 3] = dst[x * 3 + 1] = dst[x * 3 + 2] = px[0];
            } else { /* rgb(a) -> gray: ITU-R 601-2 luma, rounded as PIL's convert("L") */
                dst[x] = (unsigned char)((px[0] * 19595 + px[1] * 38470 + px[2] * 7471 + 0x8000) >> 16);
            }
        }
    }
    unsigned char *img = color;
    int64_t w = width, h = height;
    if (p->resize_h && (p->resize_h != h || p->resize_w != w)) {
        unsigned char *resized = malloc((size_t)(p->resize_h * p->resize_w * want));
        if (!resized || !rx_stb_resize(img, width, height, 0, resized, (int)p->resize_w, (int)p->resize_h, want)) {
            free(resized);
            free(color);
            return rx_fail(err, RECTIFY_ERR_NOMEM, "%s: resizing failed (out of memory)", what);
        }
        free(color);
        img = color = resized;
        w = p->resize_w, h = p->resize_h;
    }
    int64_t top = 0, left = 0;
    if (p->crop_h) {
        if (p->crop_h > h || p->crop_w > w) {
            free(color);
            return rx_fail(err, RECTIFY_ERR_INVALID, "%s: %lldx%lld image is smaller than the crop %lldx%lld", what,
                           (long long)w, (long long)h, (long long)p->crop_w, (long long)p->crop_h);
        }
        top = crop_offset(h, p->crop_h), left = crop_offset(w, p->crop_w);
    } else if (h != H || w != W) {
        free(color);
        return rx_fail(err, RECTIFY_ERR_INVALID,
                       "%s: image is %lldx%lld (width x height), the model wants %lldx%lld and its preprocess has no resize",
                       what, (long long)w, (long long)h, (long long)W, (long long)H);
    }
    for (int c = 0; c < want; c++) {
        int src = p->color == 2 ? 2 - c : c; /* bgr: channel 0 is blue */
        float scale = (float)p->scale, mean = p->mean[c], inv_std = 1.0f / p->std[c];
        float *plane = out + (int64_t)c * H * W;
        for (int64_t y = 0; y < H; y++)
            for (int64_t x = 0; x < W; x++)
                plane[y * W + x] = ((float)img[((top + y) * w + left + x) * want + src] * scale - mean) * inv_std;
    }
    free(color);
    return RECTIFY_OK;
}

rectify_status rectify_image_from_pixels(const rectify_model *m, const unsigned char *pixels, int width,
                                         int height, int channels, size_t stride, float *out, size_t count,
                                         rectify_error *err)
{
    rx_ok(err);
    if (!m || !pixels || !out) return rx_fail(err, RECTIFY_ERR_ARGUMENT, "model, pixels or out is NULL");
    if (channels != 1 && channels != 3 && channels != 4)
        return rx_fail(err, RECTIFY_ERR_ARGUMENT, "channels is %d: use 1, 3 or 4", channels);
    if (width < 1 || height < 1 || width > RECTIFY_MAX_IMAGE_SIDE || height > RECTIFY_MAX_IMAGE_SIDE ||
        (uint64_t)width * (uint64_t)height > RECTIFY_MAX_IMAGE_PIXELS)
        return rx_fail(err, RECTIFY_ERR_LIMIT, "image of %dx%d is outside the limits (side %d, %u pixels)", width,
                       height, RECTIFY_MAX_IMAGE_SIDE, RECTIFY_MAX_IMAGE_PIXELS);
    if (stride == 0) stride = (size_t)width * (size_t)channels;
    if (stride < (size_t)width * (size_t)channels)
        return rx_fail(err, RECTIFY_ERR_ARGUMENT, "stride %zu is less than width x channels", stride);
    return preprocess(m, pixels, width, height, channels, stride, out, count, "pixels", err);
}

/* PNG chunks carry a CRC-32 that stb does not check: a damaged file must
   not pass as an image. */
static uint32_t crc32_png(const unsigned char *p, size_t n)
{
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return crc ^ 0xffffffffu;
}

static bool is_png(const unsigned char *b, size_t size)
{
    return size >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0;
}

static bool is_jpeg(const unsigned char *b, size_t size)
{
    return size >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff;
}

static rectify_status check_png(const unsigned char *b, size_t size, const char *what, rectify_error *err)
{
    size_t at = 8;
    while (at + 12 <= size) {
        uint32_t length = (uint32_t)b[at] << 24 | (uint32_t)b[at + 1] << 16 | (uint32_t)b[at + 2] << 8 | b[at + 3];
        if (length > size - at - 12)
            return rx_fail(err, RECTIFY_ERR_PARSE, "%s: damaged PNG: chunk %.4s runs past the end of the file", what,
                           (const char *)b + at + 4);
        const unsigned char *crc = b + at + 8 + length;
        uint32_t want = (uint32_t)crc[0] << 24 | (uint32_t)crc[1] << 16 | (uint32_t)crc[2] << 8 | crc[3];
        if (crc32_png(b + at + 4, length + 4) != want)
            return rx_fail(err, RECTIFY_ERR_PARSE, "%s: damaged PNG: chunk %.4s fails its CRC check", what,
                           (const char *)b + at + 4);
        if (memcmp(b + at + 4, "IEND", 4) == 0) return RECTIFY_OK;
        at += 12 + length;
    }
    return rx_fail(err, RECTIFY_ERR_PARSE, "%s: truncated PNG (no IEND chunk)", what);
}

/* Width and height from the header, before any decoding. */
static bool header_size(const unsigned char *b, size_t size, int64_t *w, int64_t *h)
{
    if (is_png(b, size)) {
        if (size < 24 || memcmp(b + 12, "IHDR", 4) != 0) return false;
        *w = (int64_t)b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19];
        *h = (int64_t)b[20] << 24 | b[21] << 16 | b[22] << 8 | b[23];
        return true;
    }
    /* JPEG: walk the markers to the first start-of-frame */
    size_t at = 2;
    while (at + 4 <= size && b[at] == 0xff) {
        unsigned marker = b[at + 1];
        size_t length = (size_t)b[at + 2] << 8 | b[at + 3];
        if (marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc) {
            if (at + 9 > size) return false;
            *h = b[at + 5] << 8 | b[at + 6];
            *w = b[at + 7] << 8 | b[at + 8];
            return true;
        }
        at += 2 + length;
    }
    return false;
}

static rectify_status decode(const rectify_model *m, const unsigned char *bytes, size_t size, float *out,
                             size_t count, const char *what, rectify_error *err)
{
    if (size > (size_t)1 << 30)
        return rx_fail(err, RECTIFY_ERR_LIMIT, "%s: %zu bytes is too large for an image", what, size);
    if (!is_png(bytes, size) && !is_jpeg(bytes, size))
        return rx_fail(err, RECTIFY_ERR_PARSE, "%s: not a PNG or JPEG image", what);
    int64_t hw = 0, hh = 0;
    if (header_size(bytes, size, &hw, &hh) &&
        (hw > RECTIFY_MAX_IMAGE_SIDE || hh > RECTIFY_MAX_IMAGE_SIDE || hw * hh > (int64_t)RECTIFY_MAX_IMAGE_PIXELS))
        return rx_fail(err, RECTIFY_ERR_LIMIT, "%s: image of %lldx%lld pixels is over the limits (side %d, %u pixels)",
                       what, (long long)hw, (long long)hh, RECTIFY_MAX_IMAGE_SIDE, RECTIFY_MAX_IMAGE_PIXELS);
    if (header_size(bytes, size, &hw, &hh) && (hw == 0 || hh == 0))
        return rx_fail(err, RECTIFY_ERR_PARSE, "%s: image of %lldx%lld pixels has no pixels", what, (long long)hw,
                       (long long)hh);
    if (is_png(bytes, size)) {
        rectify_status st = check_png(bytes, size, what, err);
        if (st) return st;
    }
    int w, h, comp;
    int header_read = rx_stb_info(bytes, (int)size, &w, &h, &comp);
    if (!header_read && rx_stb_out_of_memory())
        return rx_fail(err, RECTIFY_ERR_NOMEM, "%s: out of memory reading the image's header", what);
    if (!header_read)
        return rx_fail(err, RECTIFY_ERR_PARSE, "%s: damaged %s image (its header cannot be read)", what,
                       is_png(bytes, size) ? "PNG" : "JPEG");
    if (w < 1 || h < 1 || w > RECTIFY_MAX_IMAGE_SIDE || h > RECTIFY_MAX_IMAGE_SIDE ||
        (uint64_t)w * (uint64_t)h > RECTIFY_MAX_IMAGE_PIXELS)
        return rx_fail(err, RECTIFY_ERR_LIMIT, "%s: image of %dx%d pixels is over the limits (side %d, %u pixels)",
                       what, w, h, RECTIFY_MAX_IMAGE_SIDE, RECTIFY_MAX_IMAGE_PIXELS);
    /* Decode gray images as gray, others as RGB: color conversion is ours. */
    int channels = comp <= 2 ? 1 : 3;
    const char *reason = "unknown";
    unsigned char *pixels = rx_stb_decode(bytes, (int)size, &w, &h, channels, &reason);
    if (!pixels && rx_stb_out_of_memory())
        return rx_fail(err, RECTIFY_ERR_NOMEM, "%s: out of memory decoding the image", what);
    if (!pixels)
        return rx_fail(err, RECTIFY_ERR_PARSE, "%s: cannot decode the %s data: %s", what,
                       is_png(bytes, size) ? "PNG" : "JPEG", reason && reason[0] ? reason : "damaged or truncated");
    rectify_status st = preprocess(m, pixels, w, h, channels, (size_t)w * (size_t)channels, out, count, what, err);
    rx_stb_free(pixels);
    return st;
}

rectify_status rectify_image_load_memory(const rectify_model *m, const void *bytes, size_t size, float *out,
                                         size_t count, rectify_error *err)
{
    rx_ok(err);
    if (!m || !bytes || !out) return rx_fail(err, RECTIFY_ERR_ARGUMENT, "model, bytes or out is NULL");
    return decode(m, bytes, size, out, count, "image", err);
}

rectify_status rectify_image_load(const rectify_model *m, const char *path, float *out, size_t count,
                                  rectify_error *err)
{
    rx_ok(err);
    if (!m || !path || !out) return rx_fail(err, RECTIFY_ERR_ARGUMENT, "model, path or out is NULL");
    char *bytes;
    size_t size;
    rectify_status st = rx_read_file(path, (size_t)1 << 30, &bytes, &size, err);
    if (st) return st;
    st = decode(m, (const unsigned char *)bytes, size, out, count, path, err);
    free(bytes);
    return st;
}
