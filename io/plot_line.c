/* Line charts (training-loss curves): polylines in the shared plot frame. */
#include "io/canvas.h"
#include "io/plot.h"
#include "io/plot_frame.h"
#include "runtime/error.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_SERIES 16

static const uint32_t palette[] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b, 0xe377c2, 0x7f7f7f};

static void widen(double *lo, double *hi, double v)
{
    if (!isfinite(v))
        return;
    *lo = fmin(*lo, v);
    *hi = fmax(*hi, v);
}

static ed_bounds line_bounds(const double *x, int64_t n, const ed_series *series, int nseries)
{
    ed_bounds b = {INFINITY, -INFINITY, INFINITY, -INFINITY};
    for (int64_t i = 0; i < n; i++) {
        widen(&b.xmin, &b.xmax, x[i]);
        for (int k = 0; k < nseries; k++)
            widen(&b.ymin, &b.ymax, series[k].y[i]);
    }
    if (!(b.xmin <= b.xmax))
        b.xmin = -1, b.xmax = 1;
    if (b.xmin == b.xmax)
        b.xmin -= 1, b.xmax += 1;
    if (!(b.ymin <= b.ymax))
        b.ymin = -1, b.ymax = 1;
    double pad = b.ymax > b.ymin ? 0.05 * (b.ymax - b.ymin) : 1;
    b.ymin -= pad;
    b.ymax += pad;
    return b;
}

static int check_lines(const char *path, const double *x, int64_t n, const ed_series *series, int nseries,
                       const ed_line_opts *o)
{
    if (!x || n < 1)
        return ed_fail("%s: a line chart needs at least one x value", path);
    if (!series || nseries < 1 || nseries > MAX_SERIES)
        return ed_fail("%s: a line chart takes 1..%d series, got %d", path, MAX_SERIES, nseries);
    for (int k = 0; k < nseries; k++)
        if (!series[k].y || !(series[k].width >= 0 && series[k].width <= 16))
            return ed_fail("%s: series %d needs values and a width in 0..16", path, k);
    if (o->width < 64 || o->width > ED_PLOT_MAX_SIDE || o->height < 64 || o->height > ED_PLOT_MAX_SIDE)
        return ed_fail("%s: picture size %dx%d is outside 64..%d", path, o->width, o->height, ED_PLOT_MAX_SIDE);
    if (o->caption && strlen(o->caption) > 4096)
        return ed_fail("%s: a caption of %zu characters is too long (4096 at most)", path, strlen(o->caption));
    return ED_OK;
}

static void draw_series(ed_canvas *c, const ed_frame *f, const ed_bounds *b, const double *x, int64_t n,
                        const ed_series *s, uint32_t color)
{
    double width = (s->width > 0 ? s->width : 1.5) * f->scale / 1.5;
    bool have_prev = false;
    double px = 0, py = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(s->y[i])) {
            have_prev = false;
            continue;
        }
        double qx = ed_frame_px(f, b, x[i]), qy = ed_frame_py(f, b, s->y[i]);
        if (have_prev)
            ed_canvas_line(c, px, py, qx, qy, width, color);
        else
            ed_canvas_disc(c, qx, qy, width / 2, color, 1); /* a lone point stays visible */
        px = qx, py = qy, have_prev = true;
    }
}

int ed_plot_lines(const char *path, const double *x, int64_t n, const ed_series *series, int nseries,
                  const ed_line_opts *opts)
{
    if (!path)
        return ed_fail("plot: NULL path");
    ed_line_opts o = opts ? *opts : (ed_line_opts){0};
    o.width = o.width ? o.width : 720;
    o.height = o.height ? o.height : 450;
    if (check_lines(path, x, n, series, nseries, &o) != ED_OK)
        return ED_ERR;
    ed_canvas c;
    if (ed_canvas_new(&c, o.width, o.height, 0xffffff, path) != ED_OK)
        return ED_ERR;
    ed_bounds b = line_bounds(x, n, series, nseries);
    ed_legend_item items[MAX_SERIES];
    int named = 0;
    for (int k = 0; k < nseries; k++)
        if (series[k].name)
            items[named++] = (ed_legend_item){series[k].name,
                                              series[k].color ? series[k].color : palette[k % 8], true};
    ed_frame f;
    ed_frame_layout(&f, o.width, o.height, &b, named > 0, o.caption);
    ed_frame_grid(&c, &f, &b);
    for (int k = 0; k < nseries; k++)
        draw_series(&c, &f, &b, x, n, &series[k], series[k].color ? series[k].color : palette[k % 8]);
    /* lines may overshoot the area by half their width: white margins again, then the frame */
    ed_canvas_fill(&c, 0, 0, o.width - 1, f.y0 - 2, 0xffffff);
    ed_canvas_fill(&c, 0, f.y1 + 2, o.width - 1, o.height - 1, 0xffffff);
    ed_canvas_fill(&c, 0, 0, f.x0 - 2, o.height - 1, 0xffffff);
    ed_canvas_fill(&c, f.x1 + 2, 0, o.width - 1, o.height - 1, 0xffffff);
    ed_frame_axes(&c, &f, &b);
    ed_frame_legend(&c, &f, items, named);
    ed_frame_caption(&c, &f, o.caption);
    char desc[256];
    snprintf(desc, sizeof desc, "x [%.6g, %.6g] y [%.6g, %.6g]; series: %d of %lld points; area x %d..%d y %d..%d",
             b.xmin, b.xmax, b.ymin, b.ymax, nseries, (long long)n, f.x0, f.x1, f.y0, f.y1);
    int status = ed_canvas_write_png(&c, path, desc);
    ed_canvas_free(&c);
    return status;
}
