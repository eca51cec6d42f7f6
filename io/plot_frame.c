/* Plot frames: ticks at 1, 2 or 5 times a power of ten, labelled with just enough
 * decimals to tell them apart; text in the built-in font. */
#include "io/plot_frame.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_TICKS 12
#define TICK_LEN 5
#define PAD 8
#define AXIS_COLOR 0x404040
#define TEXT_COLOR 0x202020
#define GRID_COLOR 0xececec

typedef struct {
    int n;
    double v[MAX_TICKS];
    char text[MAX_TICKS][24];
} ticks;

/* Ticks in [lo, hi], about `want` of them. */
static void make_ticks(double lo, double hi, int want, ticks *t)
{
    t->n = 0;
    if (!(hi > lo) || !isfinite(hi - lo))
        return;
    want = want < 2 ? 2 : want > MAX_TICKS - 2 ? MAX_TICKS - 2 : want;
    double raw = (hi - lo) / want, mag = pow(10, floor(log10(raw))), norm = raw / mag;
    double step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    bool plain = fmax(fabs(lo), fabs(hi)) < 1e6 && step >= 1e-4;
    for (double k = ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9 && t->n < MAX_TICKS; k++) {
        double v = k * step;
        if (fabs(v) < step * 1e-9)
            v = 0; /* no "-0.0" */
        t->v[t->n] = v;
        if (plain)
            snprintf(t->text[t->n], sizeof t->text[0], "%.*f", decimals, v);
        else
            snprintf(t->text[t->n], sizeof t->text[0], "%.3g", v);
        t->n++;
    }
}

static int y_tick_count(int height, int scale) { return height / (ED_FONT_HEIGHT * scale * 4); }
static int x_tick_count(int width, int scale) { return width / (ED_FONT_ADVANCE * scale * 8); }

/* Number of caption lines, or draws them when c is not NULL: greedy wrapping at spaces
 * and at '\n', a word longer than a line cut where the line ends. */
static int caption_lines(ed_canvas *c, const ed_frame *f, const char *s, int top)
{
    if (!s || !*s)
        return 0;
    int per_line = (f->w - 2 * PAD) / (ED_FONT_ADVANCE * f->scale);
    per_line = per_line < 1 ? 1 : per_line;
    int lines = 0;
    while (*s) {
        int len = 0, cut = -1;
        while (s[len] && s[len] != '\n' && len < per_line) {
            if (s[len] == ' ')
                cut = len;
            len++;
        }
        if (s[len] && s[len] != '\n' && s[len] != ' ' && cut > 0)
            len = cut; /* break at the last space */
        if (c)
            ed_canvas_text(c, PAD, top + lines * (ED_FONT_HEIGHT + 3) * f->scale, s, len, f->scale, TEXT_COLOR);
        lines++;
        s += len;
        while (*s == ' ')
            s++;
        if (*s == '\n')
            s++;
    }
    return lines;
}

void ed_frame_layout(ed_frame *f, int w, int h, const ed_bounds *b, bool legend, const char *caption)
{
    *f = (ed_frame){.w = w, .h = h, .scale = w >= 360 && h >= 360 ? 2 : 1};
    int s = f->scale, text_h = ED_FONT_HEIGHT * s;
    int top = legend ? PAD + text_h + PAD : PAD + text_h / 2;
    int bottom = TICK_LEN + 4 + text_h + PAD;
    int lines = caption_lines(NULL, f, caption, 0);
    if (lines)
        bottom += lines * (ED_FONT_HEIGHT + 3) * s;
    ticks ty;
    make_ticks(b->ymin, b->ymax, y_tick_count(h - top - bottom, s), &ty);
    int label_w = 0;
    for (int i = 0; i < ty.n; i++) {
        int tw = ed_text_width(ty.text[i], -1, s);
        label_w = tw > label_w ? tw : label_w;
    }
    /* one character of slack: the final bounds may add a sign or a digit */
    int left = PAD + label_w + ED_FONT_ADVANCE * s + 4 + TICK_LEN;
    int right = PAD + 3 * ED_FONT_ADVANCE * s;
    f->x0 = left;
    f->y0 = top;
    f->x1 = w - right - 1;
    f->y1 = h - bottom - 1;
}

double ed_frame_px(const ed_frame *f, const ed_bounds *b, double x)
{
    return f->x0 + (x - b->xmin) / (b->xmax - b->xmin) * (f->x1 - f->x0 + 1);
}

double ed_frame_py(const ed_frame *f, const ed_bounds *b, double y)
{
    return f->y0 + (b->ymax - y) / (b->ymax - b->ymin) * (f->y1 - f->y0 + 1);
}

static int clamp_px(double v, int lo, int hi)
{
    int p = (int)floor(v);
    return p < lo ? lo : p > hi ? hi : p;
}

void ed_frame_grid(ed_canvas *c, const ed_frame *f, const ed_bounds *b)
{
    ticks tx, ty;
    make_ticks(b->xmin, b->xmax, x_tick_count(f->x1 - f->x0, f->scale), &tx);
    make_ticks(b->ymin, b->ymax, y_tick_count(f->y1 - f->y0, f->scale), &ty);
    for (int i = 0; i < tx.n; i++) {
        int x = clamp_px(ed_frame_px(f, b, tx.v[i]), f->x0, f->x1);
        ed_canvas_fill(c, x, f->y0, x, f->y1, GRID_COLOR);
    }
    for (int i = 0; i < ty.n; i++) {
        int y = clamp_px(ed_frame_py(f, b, ty.v[i]), f->y0, f->y1);
        ed_canvas_fill(c, f->x0, y, f->x1, y, GRID_COLOR);
    }
}

void ed_frame_axes(ed_canvas *c, const ed_frame *f, const ed_bounds *b)
{
    int s = f->scale, text_h = ED_FONT_HEIGHT * s;
    ed_canvas_fill(c, f->x0 - 1, f->y0 - 1, f->x1 + 1, f->y0 - 1, AXIS_COLOR);
    ed_canvas_fill(c, f->x0 - 1, f->y1 + 1, f->x1 + 1, f->y1 + 1, AXIS_COLOR);
    ed_canvas_fill(c, f->x0 - 1, f->y0 - 1, f->x0 - 1, f->y1 + 1, AXIS_COLOR);
    ed_canvas_fill(c, f->x1 + 1, f->y0 - 1, f->x1 + 1, f->y1 + 1, AXIS_COLOR);
    ticks tx, ty;
    make_ticks(b->xmin, b->xmax, x_tick_count(f->x1 - f->x0, s), &tx);
    make_ticks(b->ymin, b->ymax, y_tick_count(f->y1 - f->y0, s), &ty);
    for (int i = 0; i < tx.n; i++) {
        int x = clamp_px(ed_frame_px(f, b, tx.v[i]), f->x0, f->x1);
        ed_canvas_fill(c, x, f->y1 + 2, x + s - 1, f->y1 + 1 + TICK_LEN, AXIS_COLOR);
        int tw = ed_text_width(tx.text[i], -1, s);
        ed_canvas_text(c, x - tw / 2, f->y1 + 2 + TICK_LEN + 3, tx.text[i], -1, s, TEXT_COLOR);
    }
    for (int i = 0; i < ty.n; i++) {
        int y = clamp_px(ed_frame_py(f, b, ty.v[i]), f->y0, f->y1);
        ed_canvas_fill(c, f->x0 - 1 - TICK_LEN, y, f->x0 - 2, y + s - 1, AXIS_COLOR);
        int tw = ed_text_width(ty.text[i], -1, s);
        ed_canvas_text(c, f->x0 - 1 - TICK_LEN - 4 - tw, y - text_h / 2, ty.text[i], -1, s, TEXT_COLOR);
    }
}

/* Items right-aligned above the area: mark, gap, label, wider gap. */
void ed_frame_legend(ed_canvas *c, const ed_frame *f, const ed_legend_item *items, int n)
{
    int s = f->scale, text_h = ED_FONT_HEIGHT * s, mark_w = 4 * ED_FONT_ADVANCE * s / 2;
    int total = 0;
    for (int i = 0; i < n; i++)
        total += mark_w + 4 * s + ed_text_width(items[i].label, -1, s) + (i ? 4 * ED_FONT_ADVANCE * s / 2 : 0);
    int x = f->x1 + 1 - total, y = PAD;
    for (int i = 0; i < n; i++) {
        if (i)
            x += 4 * ED_FONT_ADVANCE * s / 2;
        double mid = y + text_h / 2.0;
        if (items[i].line)
            ed_canvas_line(c, x, mid, x + mark_w, mid, 1.5 * s, items[i].color);
        else
            ed_canvas_disc(c, x + mark_w / 2.0, mid, 2.5 * s, items[i].color, 1);
        x += mark_w + 4 * s;
        ed_canvas_text(c, x, y, items[i].label, -1, s, TEXT_COLOR);
        x += ed_text_width(items[i].label, -1, s);
    }
}

void ed_frame_caption(ed_canvas *c, const ed_frame *f, const char *caption)
{
    int top = f->y1 + 2 + TICK_LEN + 3 + ED_FONT_HEIGHT * f->scale + PAD;
    caption_lines(c, f, caption, top);
}
