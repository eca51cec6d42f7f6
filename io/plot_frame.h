/* The frame of a plot (io/plot.c, io/plot_line.c): where the plot area goes in the
 * picture, the axes box with ticks at round numbers and their labels, a light grid, a
 * legend row above the area and a caption below it, all in the 5x7 font. */
#ifndef ED_PLOT_FRAME_H
#define ED_PLOT_FRAME_H

#include "io/canvas.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    double xmin, xmax, ymin, ymax;
} ed_bounds;

typedef struct {
    const char *label;
    uint32_t color;
    bool line; /* a short line as its mark; else a dot */
} ed_legend_item;

typedef struct {
    int w, h;
    int x0, y0, x1, y1; /* the plot area, inclusive */
    int scale;          /* of the text: 2 when the picture is at least 360 pixels both ways */
} ed_frame;

/* Lays out a w x h picture: room on the left for b's y tick labels, below for the x
 * tick labels and the caption (may be NULL; wrapped at spaces to the picture's width),
 * and above for a legend row when legend is true. */
void ed_frame_layout(ed_frame *f, int w, int h, const ed_bounds *b, bool legend, const char *caption);

/* Picture coordinates of data coordinates (the area spans the bounds edge to edge). */
double ed_frame_px(const ed_frame *f, const ed_bounds *b, double x);
double ed_frame_py(const ed_frame *f, const ed_bounds *b, double y);

/* Light grid lines at the ticks: draw before the data. */
void ed_frame_grid(ed_canvas *c, const ed_frame *f, const ed_bounds *b);
/* The box around the area, tick marks and tick labels: draw after the data. */
void ed_frame_axes(ed_canvas *c, const ed_frame *f, const ed_bounds *b);
void ed_frame_legend(ed_canvas *c, const ed_frame *f, const ed_legend_item *items, int n);
void ed_frame_caption(ed_canvas *c, const ed_frame *f, const char *caption);

#endif
