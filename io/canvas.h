/* An 8-bit RGB picture in memory, the drawing the plots share (blended pixels, lines,
 * rectangles, 5x7 bitmap text) and its atomic PNG writer. For io/ 's plot files. */
#ifndef ED_CANVAS_H
#define ED_CANVAS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int w, h;
    unsigned char *px; /* RGB, row-major */
} ed_canvas;

/* A w x h picture filled with fill (0xRRGGBB); path names the file in the message. */
int ed_canvas_new(ed_canvas *c, int w, int h, uint32_t fill, const char *path);
void ed_canvas_free(ed_canvas *c);

/* Blends color into pixel (x, y) with opacity a in [0, 1]; outside the picture: nothing. */
void ed_canvas_blend(ed_canvas *c, int x, int y, uint32_t color, double a);
/* Fills the rectangle [x0, x1] x [y0, y1] (inclusive). */
void ed_canvas_fill(ed_canvas *c, int x0, int y0, int x1, int y1, uint32_t color);
/* An anti-aliased segment of the given width in pixels (centres at pixel centres + 0.5). */
void ed_canvas_line(ed_canvas *c, double x0, double y0, double x1, double y1, double width, uint32_t color);
/* An anti-aliased filled disc. */
void ed_canvas_disc(ed_canvas *c, double x, double y, double radius, uint32_t color, double alpha);

/* Writes c as PNG, atomically (io/atomic_file.h); description (may be NULL) goes into a
 * tEXt "Description" chunk. */
int ed_canvas_write_png(const ed_canvas *c, const char *path, const char *description);

/* ---- text: a built-in 5x7 font (io/font.c) ---------------------------------------------
 * Digits, upper-case letters (lower case is drawn as upper case) and the symbols
 * space . , ; : - + = _ / ( ) [ ] % < > ' " ? ! * # |; anything else is drawn as a box.
 * Each glyph cell is 6 x 7 font pixels (one column of spacing), each font pixel a
 * scale x scale block; '\n' is not special. */
#define ED_FONT_ADVANCE 6
#define ED_FONT_HEIGHT 7

/* Width in pixels of the first n characters of s (n < 0: all of s), without the
 * trailing column of spacing. */
int ed_text_width(const char *s, int n, int scale);
/* Draws the first n characters of s (n < 0: all) with its top-left corner at (x, y). */
void ed_canvas_text(ed_canvas *c, int x, int y, const char *s, int n, int scale, uint32_t color);

#endif
