/* png_out.c: stb_image_write's one implementation in the tool, and drawing. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "out_file.h"
#include "png_out.h"

#if defined(__GNUC__)
/* stb declares functions it never defines when a feature is compiled out;
   the warning comes at the end of the file, after a pop. */
#  pragma GCC diagnostic ignored "-Wunused-function"
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Wunused-parameter"
#  pragma GCC diagnostic ignored "-Wsign-compare"
#  pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STBI_WRITE_NO_STDIO
#include <stb/stb_image_write.h>
#include <stb/stb_easy_font.h>
#if defined(__GNUC__)
#  pragma GCC diagnostic pop
#endif

int canvas_create(canvas *c, int width, int height, uint32_t background)
{
    c->width = width;
    c->height = height;
    c->rgb = malloc((size_t)width * (size_t)height * 3);
    if (c->rgb == NULL)
        return cli_error("out of memory for a %dx%d picture", width, height);
    canvas_rect(c, 0, 0, width, height, background);
    return 0;
}

void canvas_free(canvas *c)
{
    free(c->rgb);
    c->rgb = NULL;
}

void canvas_rect(canvas *c, int x, int y, int width, int height, uint32_t color)
{
    int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
    int x1 = x + width > c->width ? c->width : x + width, y1 = y + height > c->height ? c->height : y + height;
    for (int row = y0; row < y1; row++)
        for (int col = x0; col < x1; col++) {
            unsigned char *p = c->rgb + ((size_t)row * (size_t)c->width + (size_t)col) * 3;
            p[0] = (unsigned char)(color >> 16), p[1] = (unsigned char)(color >> 8), p[2] = (unsigned char)color;
        }
}

int canvas_text_width(const char *text, int scale)
{
    return stb_easy_font_width((char *)text) * scale;
}

void canvas_text(canvas *c, int x, int y, const char *text, uint32_t color, int scale)
{
    /* stb_easy_font gives axis-aligned quads, 4 vertices of 16 bytes each. */
    char buffer[64 * 1024];
    int quads = stb_easy_font_print(0, 0, (char *)text, NULL, buffer, sizeof buffer);
    for (int q = 0; q < quads; q++) {
        const float *v = (const float *)(buffer + q * 64);
        int qx0 = (int)v[0], qy0 = (int)v[1], qx1 = (int)v[8], qy1 = (int)v[9];
        canvas_rect(c, x + qx0 * scale, y + qy0 * scale, (qx1 - qx0) * scale, (qy1 - qy0) * scale, color);
    }
}

typedef struct memory { unsigned char *bytes; size_t size, capacity; int failed; } memory;

static void collect(void *context, void *data, int size)
{
    memory *m = context;
    if (m->failed || size <= 0)
        return;
    if (m->size + (size_t)size > m->capacity) {
        size_t capacity = (m->size + (size_t)size) * 2;
        unsigned char *grown = realloc(m->bytes, capacity);
        if (grown == NULL) {
            m->failed = 1;
            return;
        }
        m->bytes = grown;
        m->capacity = capacity;
    }
    memcpy(m->bytes + m->size, data, (size_t)size);
    m->size += (size_t)size;
}

int png_write(const char *path, int width, int height, int channels, const unsigned char *pixels)
{
    memory m = {0};
    if (!stbi_write_png_to_func(collect, &m, width, height, channels, pixels, width * channels) || m.failed) {
        free(m.bytes);
        return cli_error("cannot encode %s: out of memory", path);
    }
    int status = out_file_write(path, m.bytes, m.size);
    free(m.bytes);
    return status;
}
