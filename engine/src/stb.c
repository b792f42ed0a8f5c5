/* stb.c: the one place stb_image and stb_image_resize are compiled. Only
   the PNG and JPEG decoders: Debian's stb (2.27) carries known CVEs in the
   others (GIF, PSD, PIC, HDR ...). Dimensions are capped here as well as
   by the pixel budget that image.c checks before decoding. The packaged
   libstb.so is not linked. */
#include "internal.h"

#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
/* stb's cap is only a second guard: image.c reads the size first and
   reports RECTIFY_MAX_IMAGE_SIDE / _PIXELS itself, with the size. */
#define STBI_MAX_DIMENSIONS (1 << 24)
#define STB_IMAGE_STATIC
/* stb_image's allocations note a failure, so that a decode that failed for
   want of memory is told from bad data: its own messages cannot (its zlib
   gives none, and a failed format test reads as "unknown image type").
   They are zeroed: stb 2.27 lets a JPEG scan use a Huffman table that no
   DHT defined, and decoded with an uninitialised table (fuzz_image found
   it) a symbol id indexes values[] anywhere within +-64 KiB, a read out of
   bounds. A zeroed table decodes every code as symbol 0 through its fast
   path, inside the table. */
#include <stdlib.h>
static _Thread_local int out_of_memory;
static void *stb_malloc(size_t size)
{
    void *p = calloc(1, size);
    if (!p) out_of_memory = 1;
    return p;
}
static void *stb_realloc(void *old, size_t size)
{
    void *p = realloc(old, size);
    if (!p) out_of_memory = 1;
    return p;
}
#define STBI_MALLOC(size) stb_malloc(size)
#define STBI_REALLOC(p, size) stb_realloc(p, size)
#define STBI_FREE(p) free(p)
/* stb_image's asserts check its own state on crafted input (a JPEG whose
   Huffman codes do not match their table fails one in
   stbi__jpeg_huff_decode); release builds compile them out, and the library
   never aborts, so they are off in every build. Memory safety does not rest
   on them: the fuzzers run stb as release builds do, under ASan and UBSan. */
#define STBI_ASSERT(x) ((void)0)
#define STB_IMAGE_IMPLEMENTATION
#if defined(__GNUC__)
#  pragma GCC diagnostic ignored "-Wunused-function"
#  pragma GCC diagnostic ignored "-Wsign-compare"
#  pragma GCC diagnostic ignored "-Wunused-parameter"
#  pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#  pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#  pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <stb/stb_image.h>
/* stb_image_resize asserts that each output pixel's filter weights sum to
   0.9..1.1 before it normalises them to 1; the triangle filter's sampled
   weights miss that for about 8% of size pairs (7 -> 5 pixels sums to 1.12),
   and the normalisation right after makes them exact. The library never
   aborts: without NDEBUG that assert would. */
#define STBIR_ASSERT(x) ((void)0)
#define STB_IMAGE_RESIZE_STATIC
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb/stb_image_resize.h>

#include "image.h"

/* stb_image 2.27 (Debian's) trusts a JPEG Huffman table (DHT) to define at
   most 256 codes: one declaring more writes past stbi__huffman.size[257] and
   .values[256] (a heap overflow that fuzz_image found). Every DHT segment
   stb could read is checked first, walking the markers as stb does: junk
   between segments skipped a byte at a time, 0xFF fill bytes, segments
   skipped by their length, entropy-coded data scanned up to the next
   marker (0xFF then neither 0x00 nor another 0xFF). */
static int jpeg_tables_fit(const unsigned char *b, int size)
{
    if (size < 2 || b[0] != 0xff || b[1] != 0xd8) return 1; /* not a JPEG */
    int at = 2;
    while (at < size) {
        if (b[at] != 0xff) { at++; continue; }
        while (at < size && b[at] == 0xff) at++;
        if (at >= size) break;
        int marker = b[at++];
        if (marker == 0x00 || marker == 0x01 || marker == 0xd8 || (marker >= 0xd0 && marker <= 0xd7)) continue;
        if (marker == 0xd9 || at + 2 > size) break;
        int length = b[at] << 8 | b[at + 1];
        if (marker == 0xc4) {
            int left = length - 2, p = at + 2;
            while (left > 0) {
                int codes = 0;
                for (int i = 1; i <= 16; i++) codes += p + i < size ? b[p + i] : 0;
                if (codes > 256) return 0;
                p += 17 + codes;
                left -= 17 + codes;
            }
        }
        at += length;
    }
    return 1;
}

int rx_stb_info(const unsigned char *bytes, int size, int *w, int *h, int *channels)
{
    if (!jpeg_tables_fit(bytes, size)) return 0;
    out_of_memory = 0;
    /* The format's own reader: stbi_info_from_memory would first try JPEG's
       on a PNG (an allocation for nothing). */
    stbi__context s;
    stbi__start_mem(&s, bytes, size);
    if (size >= 2 && bytes[0] == 0xff && bytes[1] == 0xd8) return stbi__jpeg_info(&s, w, h, channels);
    return stbi__png_info(&s, w, h, channels);
}

int rx_stb_out_of_memory(void) { return out_of_memory; }

unsigned char *rx_stb_decode(const unsigned char *bytes, int size, int *w, int *h, int channels,
                             const char **reason)
{
    if (!jpeg_tables_fit(bytes, size)) {
        *reason = "a Huffman table of more than 256 codes";
        return NULL;
    }
    int found;
    out_of_memory = 0;
    unsigned char *p = stbi_load_from_memory(bytes, size, w, h, &found, channels);
    if (!p) *reason = stbi_failure_reason();
    return p;
}

void rx_stb_free(unsigned char *p) { stbi_image_free(p); }

int rx_stb_resize(const unsigned char *in, int w, int h, int stride, unsigned char *out, int ow, int oh,
                  int channels)
{
    /* The triangle (bilinear) filter, widened when shrinking so every source
       pixel counts: what PIL's BILINEAR does, and what torchvision users had. */
    return stbir_resize_uint8_generic(in, w, h, stride, out, ow, oh, 0, channels, STBIR_ALPHA_CHANNEL_NONE, 0,
                                      STBIR_EDGE_CLAMP, STBIR_FILTER_TRIANGLE, STBIR_COLORSPACE_LINEAR, NULL);
}
