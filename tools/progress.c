/* The training progress line: redrawn in place (\r, clear to end of line) at most ten
 * times a second on a terminal; otherwise one plain line every `every` steps, so logs
 * and pipes get a readable history rather than carriage returns. */
#include "tools/cli.h"

#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cli_progress_start(cli_progress *p, FILE *f, int64_t start, int64_t total, int64_t every)
{
    *p = (cli_progress){.f = f,
                        .tty = f && isatty(fileno(f)) == 1,
                        .start = start,
                        .total = total,
                        .every = every,
                        .nlosses = 1,
                        .names = {"loss"}};
    if (p->every < 1) p->every = (total - start) / 10 > 1 ? (total - start) / 10 : 1;
    p->t0 = now_s();
    p->last_draw = -1;
}

void cli_progress_losses(cli_progress *p, const char *const *names, int n)
{
    p->nlosses = n < 1 ? 1 : n > CLI_MAX_LOSSES ? CLI_MAX_LOSSES : n;
    for (int k = 0; k < p->nlosses; k++) p->names[k] = n == 1 ? "loss" : names[k];
}

static void format_eta(double s, char *buf, size_t size)
{
    if (!(s >= 0 && s < 1e8)) {
        snprintf(buf, size, "?");
        return;
    }
    long long t = (long long)(s + 0.5);
    if (t >= 3600) snprintf(buf, size, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, size, "%lld:%02lld", t / 60, t % 60);
}

static void draw(cli_progress *p, int64_t step, const double *losses, double t)
{
    if (!p->f) return; /* quiet: a rank other than 0 */
    double elapsed = t - p->t0, rate = elapsed > 0 ? (double)(step - p->start) / elapsed : 0;
    char eta[32];
    format_eta(rate > 0 ? (double)(p->total - step) / rate : -1, eta, sizeof eta);
    fprintf(p->f, "%sstep %lld/%lld", p->tty ? "\r" : "", (long long)step, (long long)p->total);
    for (int k = 0; k < p->nlosses; k++) fprintf(p->f, "  %s %.5f", p->names[k], losses[k]);
    fprintf(p->f, "  %.1f steps/s  ETA %s%s", rate, eta, p->tty ? "\033[K" : "\n");
    fflush(p->f);
    p->last_draw = t;
    p->drawn = true;
}

void cli_progress_update(cli_progress *p, int64_t step, const double *losses)
{
    double t = now_s();
    if (p->tty ? (p->last_draw < 0 || t - p->last_draw >= 0.1) : (step - p->start) % p->every == 0)
        draw(p, step, losses, t);
}

double cli_progress_end(cli_progress *p, int64_t step, const double *losses)
{
    double t = now_s();
    if (p->tty || (step - p->start) % p->every != 0) draw(p, step, losses, t);
    if (p->tty && p->drawn) fputc('\n', p->f);
    return t - p->t0;
}
