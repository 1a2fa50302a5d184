/* plot.c - the SVG line plots of training logs (t2 train, t2 svf) and the ETA format. */
#include "cli.h"

#include "base/t2_err.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static void xml_text(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '>') fputs("&gt;", f);
        else fputc(*s, f);
    }
}

int cli_plot_svg(const char *path, const char *title, const char *xlabel, const char *ylabel,
                 const cli_series *s, int n_series) {
    FILE *f = fopen(path, "w");
    if (!f) return t2_err_set(T2_EIO, "%s: cannot write: %s", path, strerror(errno));
    const double W = 640, H = 400, L = 70, R = 20, Tp = 40, Bt = 50;
    double lo = INFINITY, hi = -INFINITY, x0 = INFINITY, x1 = -INFINITY;
    for (int k = 0; k < n_series; k++)
        for (int i = 0; i < s[k].n; i++) {
            if (!isfinite(s[k].y[i]) || !isfinite(s[k].x[i])) continue;
            lo = fmin(lo, s[k].y[i]);
            hi = fmax(hi, s[k].y[i]);
            x0 = fmin(x0, s[k].x[i]);
            x1 = fmax(x1, s[k].x[i]);
        }
    if (!(lo <= hi)) lo = 0, hi = 1;
    if (hi - lo < 1e-6) hi = lo + 1e-6;
    if (!(x0 <= x1)) x0 = 0, x1 = 1;
    if (x1 - x0 < 1e-9) x1 = x0 + 1;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
               "viewBox=\"0 0 %g %g\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%g\" y=\"24\" text-anchor=\"middle\" font-size=\"14\">", W / 2);
    xml_text(f, title);
    fprintf(f, "</text>\n");
    fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n", L, H - Bt,
            W - R, H - Bt);
    fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n", L, Tp, L,
            H - Bt);
    for (int i = 0; i <= 4; i++) {
        double v = lo + (hi - lo) * i / 4, y = H - Bt - (H - Tp - Bt) * i / 4;
        fprintf(f, "<text x=\"%g\" y=\"%g\" text-anchor=\"end\">%.3f</text>\n", L - 6, y + 4, v);
        fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"#ddd\"/>\n", L, y,
                W - R, y);
        double xv = x0 + (x1 - x0) * i / 4, x = L + (W - L - R) * i / 4;
        fprintf(f, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">%.0f</text>\n", x, H - Bt + 18,
                xv);
    }
    fprintf(f, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">", (L + W - R) / 2, H - 12);
    xml_text(f, xlabel);
    fprintf(f, "</text>\n<text x=\"16\" y=\"%g\" text-anchor=\"middle\" "
               "transform=\"rotate(-90 16 %g)\">", (Tp + H - Bt) / 2, (Tp + H - Bt) / 2);
    xml_text(f, ylabel);
    fprintf(f, "</text>\n");
    for (int k = 0; k < n_series; k++) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"",
                s[k].color);
        for (int i = 0; i < s[k].n; i++) {
            if (!isfinite(s[k].y[i]) || !isfinite(s[k].x[i])) continue;
            double x = L + (W - L - R) * (s[k].x[i] - x0) / (x1 - x0);
            double y = H - Bt - (H - Tp - Bt) * (s[k].y[i] - lo) / (hi - lo);
            fprintf(f, "%.1f,%.1f ", x, y);
        }
        fprintf(f, "\"/>\n");
        if (n_series > 1) { /* legend */
            double ly = Tp + 6 + 16 * k;
            fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"%s\" "
                       "stroke-width=\"2\"/>\n", W - R - 170, ly, W - R - 150, ly, s[k].color);
            fprintf(f, "<text x=\"%g\" y=\"%g\">", W - R - 145, ly + 4);
            xml_text(f, s[k].name);
            fprintf(f, "</text>\n");
        }
    }
    fprintf(f, "</svg>\n");
    return fclose(f) == 0 ? 0 : t2_err_set(T2_EIO, "%s: write failed", path);
}

void cli_fmt_time(char *buf, size_t n, double s) {
    if (!(s >= 0) || s > 1e7) snprintf(buf, n, "?");
    else if (s < 60) snprintf(buf, n, "%.0fs", s);
    else if (s < 3600) snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(buf, n, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
}
