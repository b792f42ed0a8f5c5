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
#define STBI_MAX_DIMENSIONS RECTIFY_MAX_IMAGE_SIDE
#define STB_IMAGE_STATIC
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
#define STB_IMAGE_RESIZE_STATIC
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb/stb_image_resize.h>

#include "image.h"

int rx_stb_info(const unsigned char *bytes, int size, int *w, int *h, int *channels)
{
    return stbi_info_from_memory(bytes, size, w, h, channels);
}

unsigned char *rx_stb_decode(const unsigned char *bytes, int size, int *w, int *h, int channels,
                             const char **reason)
{
    int found;
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
