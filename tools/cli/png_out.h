/*
 * png_out.h: RGB pictures drawn in memory and written as PNG with
 * stb_image_write (compiled here, and only here), with text from
 * stb_easy_font.
 */
#ifndef RECTIFY_CLI_PNG_OUT_H
#define RECTIFY_CLI_PNG_OUT_H

#include <stdint.h>

typedef struct canvas {
    int width, height;
    unsigned char *rgb; /* width x height x 3 */
} canvas;

/* A canvas filled with `background` (0xRRGGBB). Returns 0 or EXIT_RUNTIME. */
int canvas_create(canvas *c, int width, int height, uint32_t background);
void canvas_free(canvas *c);
void canvas_rect(canvas *c, int x, int y, int width, int height, uint32_t color);
/* Text with its top left at (x, y), each font pixel `scale` pixels wide. */
void canvas_text(canvas *c, int x, int y, const char *text, uint32_t color, int scale);
/* Width in pixels of `text` at `scale`. */
int canvas_text_width(const char *text, int scale);

/* Writes pixels (`channels` 1 or 3 per pixel) to `path` through a temporary
   file. Returns 0 or EXIT_RUNTIME (reported). */
int png_write(const char *path, int width, int height, int channels, const unsigned char *pixels);

#endif /* RECTIFY_CLI_PNG_OUT_H */
