/* The training log `edifice train --log` writes, read back: a header of column names
 * (step first), then rows of numbers, an empty field read as NaN. `edifice plot-log`
 * draws it. */
#ifndef ED_IO_CSV_LOG_H
#define ED_IO_CSV_LOG_H

#include <stdint.h>

#define ED_CSV_LOG_MAX_COLUMNS 8

typedef struct {
    int ncol;
    char names[ED_CSV_LOG_MAX_COLUMNS][64];
    double *v[ED_CSV_LOG_MAX_COLUMNS]; /* rows values each */
    int64_t rows, cap;
} ed_csv_log;

/* Reads path into *l (zeroed first): ED_ERR with a message naming the file and line for
 * a missing file, a line over 4095 bytes, fewer than two or more than
 * ED_CSV_LOG_MAX_COLUMNS columns, a field that is not a number, a row with more or fewer
 * fields than the header, or no rows. Free with ed_csv_log_free either way. */
int ed_csv_log_read(const char *path, ed_csv_log *l);
void ed_csv_log_free(ed_csv_log *l);

#endif
