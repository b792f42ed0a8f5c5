/* image.h: the stb wrappers that stb.c compiles; image.c uses them. */
#ifndef RX_IMAGE_H
#define RX_IMAGE_H

int rx_stb_info(const unsigned char *bytes, int size, int *w, int *h, int *channels);
unsigned char *rx_stb_decode(const unsigned char *bytes, int size, int *w, int *h, int channels,
                             const char **reason);
void rx_stb_free(unsigned char *p);
/* Whether the last rx_stb_info or rx_stb_decode on this thread failed for
   want of memory (stb's "outofmem"), not for the data. */
int rx_stb_out_of_memory(void);
int rx_stb_resize(const unsigned char *in, int w, int h, int stride, unsigned char *out, int ow, int oh,
                  int channels);

#endif
