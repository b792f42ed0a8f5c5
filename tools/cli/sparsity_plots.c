/* sparsity_plots.c: the SVG bar chart and the PNG APoZ heatmaps. */
#define _POSIX_C_SOURCE 200809L /* mkdir */

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "format.h"
#include "out_file.h"
#include "png_out.h"
#include "sparsity_plots.h"

/* ---- SVG ------------------------------------------------------------------ */

static void xml_text(FILE *f, const char *text)
{
    for (const char *p = text; *p; p++)
        switch (*p) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default:
            /* Control characters are not allowed in XML 1.0. */
            fputc((unsigned char)*p < 0x20 && *p != '\t' && *p != '\n' ? '?' : *p, f);
        }
}

static const char *op_color(const char *op)
{
    static const struct { const char *op, *color; } colors[] = {
        {"relu", "#d95f02"}, {"leaky_relu", "#e7298a"}, {"sigmoid", "#e6ab02"}, {"tanh", "#a6761d"},
        {"conv", "#1b9e77"}, {"dense", "#7570b3"}, {"maxpool", "#66a61e"}, {"avgpool", "#66a61e"},
        {"global_avgpool", "#66a61e"}, {"flatten", "#80b1d3"},
    };
    for (size_t i = 0; i < sizeof colors / sizeof colors[0]; i++)
        if (strcmp(colors[i].op, op) == 0) return colors[i].color;
    return "#999999";
}

int sparsity_svg(const sparsity_data *data, const char *path)
{
    const int n = data->layer_count, step = 26, left = 64, right = 24, top = 70, plot = 300;
    int longest = 0;
    for (int i = 0; i < n; i++) {
        int length = (int)strlen(data->layers[i].name);
        if (length > longest) longest = length;
    }
    const int label_space = 16 + (int)(longest * 6.2 * 0.82), legend = 40;
    int width = left + n * step + right;
    if (width < 560) width = 560;
    const int height = top + plot + label_space + legend;
    out_file file;
    int status = out_file_open(&file, path);
    if (status != 0) return status;
    FILE *f = file.stream;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"11\">\n",
            width, height, width, height);
    fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", width, height);
    fputs("<text x=\"16\" y=\"24\" font-size=\"15\" font-weight=\"bold\">Sparsity per layer: ", f);
    xml_text(f, data->model);
    fprintf(f, " (%lld image%s)</text>\n", (long long)data->images, data->images == 1 ? "" : "s");
    fputs("<text x=\"16\" y=\"44\" fill=\"#444\">bar: mean of the per-image sparsity (zeros / elements); "
          "whiskers: min and max over the images</text>\n", f);
    /* Axis and grid. */
    for (int pct = 0; pct <= 100; pct += 20) {
        double y = top + plot - plot * pct / 100.0;
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1\"/>\n", left,
                y, left + n * step, y, pct == 0 ? "#000" : "#ddd");
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%d%%</text>\n", left - 6, y + 4, pct);
    }
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#000\"/>\n", left, top, left, top + plot);
    fprintf(f, "<text transform=\"translate(16 %d) rotate(-90)\" text-anchor=\"middle\">sparsity</text>\n",
            top + plot / 2);
    for (int i = 0; i < n; i++) {
        const layer_data *l = &data->layers[i];
        double mean = layer_mean(data, l), lo = layer_min(data, l), hi = layer_max(data, l);
        double x = left + i * step + 4, w = step - 8, cx = x + w / 2;
        double y = top + plot - plot * mean;
        fprintf(f, "<g><title>");
        xml_text(f, l->name);
        fprintf(f, " (%s): mean %.2f%%, min %.2f%%, max %.2f%%, std %.2f%%</title>\n", l->op, 100 * mean, 100 * lo,
                100 * hi, 100 * layer_std(data, l));
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n", x, y, w,
                top + plot - y, op_color(l->op));
        if (data->images > 1 && hi > lo) {
            double y0 = top + plot - plot * lo, y1 = top + plot - plot * hi;
            fprintf(f, "<path d=\"M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f\" stroke=\"#000\" "
                       "stroke-width=\"1.2\" fill=\"none\"/>\n",
                    cx, y0, y1, cx - 4, y0, cx + 4, cx - 4, y1, cx + 4);
        }
        fputs("</g>\n", f);
        fprintf(f, "<text transform=\"translate(%.1f %d) rotate(-55)\" text-anchor=\"end\">", cx + 3,
                top + plot + 12);
        xml_text(f, l->name);
        fputs("</text>\n", f);
    }
    /* Legend: the ops present, in order of appearance. */
    int x = left, y = height - 18;
    for (int i = 0; i < n; i++) {
        int first = 1;
        for (int j = 0; j < i; j++)
            if (strcmp(data->layers[j].op, data->layers[i].op) == 0) first = 0;
        if (!first) continue;
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>", x, y - 10,
                op_color(data->layers[i].op));
        fprintf(f, "<text x=\"%d\" y=\"%d\">", x + 16, y);
        xml_text(f, data->layers[i].op);
        fputs("</text>\n", f);
        x += 26 + (int)(strlen(data->layers[i].op) * 7);
    }
    fputs("</svg>\n", f);
    return out_file_commit(&file);
}

/* ---- PNG heatmaps ------------------------------------------------------------ */

/* Viridis at nine points, linearly between them: dark purple (no zeros) to
   yellow (always zero). */
static uint32_t viridis(double t)
{
    static const unsigned char stops[9][3] = {
        {68, 1, 84}, {71, 44, 122}, {59, 81, 139}, {44, 113, 142}, {33, 144, 141},
        {39, 173, 129}, {92, 200, 99}, {170, 220, 50}, {253, 231, 37}};
    if (!(t > 0)) t = 0;
    if (t > 1) t = 1;
    double position = t * 8;
    int i = (int)position;
    if (i >= 8) i = 7;
    double a = position - i;
    uint32_t color = 0;
    for (int k = 0; k < 3; k++)
        color = color << 8 | (uint32_t)lround(stops[i][k] + a * (stops[i + 1][k] - stops[i][k]));
    return color;
}

#define DEAD_COLOR 0xe41a1cu

static int wants_heatmap(const sparsity_data *data, const layer_data *l)
{
    static const char *const activations[] = {"relu", "leaky_relu", "sigmoid", "tanh"};
    int any = 0;
    for (int i = 0; i < data->layer_count; i++)
        for (int k = 0; k < 4; k++)
            any |= strcmp(data->layers[i].op, activations[k]) == 0;
    if (!any) return 1;
    for (int k = 0; k < 4; k++)
        if (strcmp(l->op, activations[k]) == 0) return 1;
    return 0;
}

static int heatmap(const sparsity_data *data, const layer_data *l, const char *path)
{
    const int64_t channels = l->channels;
    int cols = (int)ceil(sqrt((double)channels));
    if (cols < 1) cols = 1;
    int rows = (int)((channels + cols - 1) / cols);
    int cell = 512 / cols;
    if (cell > 48) cell = 48;
    if (cell < 4) cell = 4;
    const int margin = 16, scale = 2, line = 9 * scale;
    int grid_w = cols * cell, grid_h = rows * cell;
    int width = grid_w + 2 * margin;
    if (width < 420) width = 420;
    int header = margin + 3 * line + 6, footer = 16 + 12 + line + margin;
    int height = header + grid_h + footer;
    canvas c;
    int status = canvas_create(&c, width, height, 0xffffff);
    if (status != 0) return status;
    char text[256];
    snprintf(text, sizeof text, "%s (%s)", l->name, l->op);
    canvas_text(&c, margin, margin, text, 0x000000, scale);
    snprintf(text, sizeof text, "%lld channels, %lld dead, %lld images", (long long)channels,
             (long long)layer_dead_channels(data, l), (long long)data->images);
    canvas_text(&c, margin, margin + line, text, 0x333333, scale);
    snprintf(text, sizeof text, "APoZ median %.1f%%, max %.1f%%", 100 * layer_apoz_quantile(data, l, 0.5),
             100 * layer_apoz_quantile(data, l, 1.0));
    canvas_text(&c, margin, margin + 2 * line, text, 0x333333, scale);
    int x0 = (width - grid_w) / 2, y0 = header;
    const int64_t dead_count = data->images * l->plane;
    for (int64_t ch = 0; ch < channels; ch++) {
        int x = x0 + (int)(ch % cols) * cell, y = y0 + (int)(ch / cols) * cell;
        int gap = cell >= 8 ? 1 : 0;
        uint32_t color = data->images > 0 && l->channel_zeros[ch] == dead_count ? DEAD_COLOR
                                                                                 : viridis(layer_apoz(data, l, ch));
        canvas_rect(&c, x, y, cell - gap, cell - gap, color);
    }
    /* Colour bar: 0% .. 100%, then the dead colour. */
    int bar_y = header + grid_h + 16, bar_w = width - 2 * margin - 90;
    for (int i = 0; i < bar_w; i++) canvas_rect(&c, margin + i, bar_y, 1, 12, viridis((double)i / (bar_w - 1)));
    canvas_text(&c, margin, bar_y + 14, "APoZ 0%", 0x000000, scale);
    canvas_text(&c, margin + bar_w - canvas_text_width("100%", scale), bar_y + 14, "100%", 0x000000, scale);
    canvas_rect(&c, width - margin - 70, bar_y, 12, 12, DEAD_COLOR);
    canvas_text(&c, width - margin - 54, bar_y, "dead", 0x000000, scale);
    status = png_write(path, c.width, c.height, 3, c.rgb);
    canvas_free(&c);
    return status;
}

int sparsity_png(const sparsity_data *data, const char *dir)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return cli_error("cannot create %s: %s", dir, strerror(errno));
    int status = 0;
    for (int i = 0; status == 0 && i < data->layer_count; i++) {
        const layer_data *l = &data->layers[i];
        if (l->channel_zeros == NULL || !wants_heatmap(data, l)) continue;
        size_t size = strlen(dir) + strlen(l->name) + 32;
        char *path = malloc(size);
        if (path == NULL) return cli_error("out of memory");
        int n = snprintf(path, size, "%s/%02d-", dir, i);
        for (const char *p = l->name; *p; p++) path[n++] = *p == '/' || *p == ':' ? '_' : *p;
        strcpy(path + n, ".png");
        status = heatmap(data, l, path);
        free(path);
    }
    return status;
}
