/* format.c: numbers and shapes for the human tables. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "format.h"

const char *format_shape(char *buffer, size_t size, int rank, const int64_t *shape)
{
    size_t used = 0;
    buffer[0] = '\0';
    for (int i = 0; i < rank && used < size; i++) {
        int written = snprintf(buffer + used, size - used, "%s%" PRId64,
                               i > 0 ? "x" : "", shape[i]);
        if (written < 0)
            break;
        used += (size_t)written;
    }
    return buffer;
}

const char *format_count(char *buffer, size_t size, int64_t value)
{
    char digits[32];
    /* Through uint64 so that INT64_MIN's magnitude is representable. */
    uint64_t magnitude = value < 0 ? (uint64_t)0 - (uint64_t)value : (uint64_t)value;
    snprintf(digits, sizeof digits, "%" PRIu64, magnitude);

    size_t length = strlen(digits);
    char grouped[48];
    size_t out = 0;
    if (value < 0)
        grouped[out++] = '-';
    for (size_t i = 0; i < length; i++) {
        if (i > 0 && (length - i) % 3 == 0)
            grouped[out++] = ',';
        grouped[out++] = digits[i];
    }
    grouped[out] = '\0';
    snprintf(buffer, size, "%s", grouped);
    return buffer;
}

const char *format_scaled(char *buffer, size_t size, int64_t value)
{
    static const char suffixes[] = {'K', 'M', 'G', 'T', 'P'};
    double scaled = (double)value;
    int suffix = -1;
    while ((scaled >= 1000.0 || scaled <= -1000.0) && suffix + 1 < (int)sizeof suffixes) {
        scaled /= 1000.0;
        suffix++;
    }
    if (suffix < 0)
        snprintf(buffer, size, "%" PRId64, value);
    else
        snprintf(buffer, size, "%.2f%c", scaled, suffixes[suffix]);
    return buffer;
}

const char *format_bytes(char *buffer, size_t size, int64_t bytes)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    double scaled = (double)bytes;
    int unit = -1;
    while (scaled >= 1024.0 && unit + 1 < (int)(sizeof units / sizeof units[0])) {
        scaled /= 1024.0;
        unit++;
    }
    if (unit < 0)
        snprintf(buffer, size, "%" PRId64 " B", bytes);
    else
        snprintf(buffer, size, "%.2f %s", scaled, units[unit]);
    return buffer;
}

double ratio(int64_t zeros, int64_t elements)
{
    return elements > 0 ? (double)zeros / (double)elements : 0.0;
}
