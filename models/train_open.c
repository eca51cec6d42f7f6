/* Opening a training run from a request: a fresh run's defaults, and the resume rules
 * (a resumed run keeps its model, data and seed; its schedule may change, with a note). */
#include "io/atomic_file.h"
#include "models/trainer.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_ROWS 10000

/* The last error, copied so that it can go into the next message. */
static const char *last_error_copy(char buf[ED_ERROR_MAX])
{
    snprintf(buf, ED_ERROR_MAX, "%s", ed_last_error());
    return buf;
}

static int bad_request(ed_train_open_result *res) /* the message is set */
{
    res->bad_request = true;
    return ED_ERR;
}

/* Sets r's model options on m; on resume each must leave the checkpoint's value as it was. */
static int apply_options(const ed_train_request *r, ed_gen_model *m, ed_train_open_result *res)
{
    for (int i = 0; i < r->noptions; i++) {
        const char *name = r->options[i].name;
        char before[ED_OPTION_TEXT_MAX], after[ED_OPTION_TEXT_MAX];
        ed_gen_model_get(m, name, before, sizeof before);
        if (ed_gen_model_set(m, name, r->options[i].value) != ED_OK) return bad_request(res);
        ed_gen_model_get(m, name, after, sizeof after);
        if (r->resume && strcmp(before, after) != 0) {
            ed_fail("%s was trained with %s = %s; a resumed run keeps its model options", r->resume, name, before);
            return bad_request(res);
        }
    }
    return ED_OK;
}

/* A flag the checkpoint fixes must be absent or equal. */
static int same_or_absent(const char *ckpt, const char *flag, bool given, bool equal, const char *was,
                          ed_train_open_result *res)
{
    if (!given || equal) return ED_OK;
    ed_fail("%s was trained with %s %s; a resumed run keeps it (leave %s out)", ckpt, flag, was, flag);
    return bad_request(res);
}

/* The resume rules for what the checkpoint fixes: data, rows, seed and model options. */
static int check_kept(const ed_train_request *r, const ed_checkpoint *ck, ed_gen_model *m, ed_train_open_result *res)
{
    char rows[32], seed[32];
    snprintf(rows, sizeof rows, "%lld", (long long)ck->data_n);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)ck->train.seed);
    if (same_or_absent(r->resume, "--data", r->data, r->data && strcmp(r->data, ck->data) == 0, ck->data, res) !=
            ED_OK ||
        same_or_absent(r->resume, "--n", r->n != 0, r->n == ck->data_n, rows, res) != ED_OK ||
        same_or_absent(r->resume, "--seed", r->has_seed, r->seed == ck->train.seed, seed, res) != ED_OK)
        return ED_ERR;
    *m = ck->model;
    return apply_options(r, m, res);
}

/* The fields of r that change the schedule of a resumed run from the checkpoint's. */
static bool diverges(const ed_train_request *r, const ed_trainer_opts *was)
{
    return (r->batch && r->batch != was->batch) || (r->lr != 0 && r->lr != was->lr) ||
           (r->has_lr_schedule && r->lr_schedule != was->lr_schedule) ||
           (was->lr_schedule == ED_LR_COSINE && r->steps && r->steps != was->steps);
}

/* The checkpoint's (or a fresh run's default) options with r's given fields over them
 * (their values are checked when the trainer is made). */
static ed_trainer_opts run_opts(const ed_train_request *r, ed_trainer_opts o)
{
    if (r->batch) o.batch = r->batch;
    if (r->lr != 0) o.lr = r->lr;
    if (r->has_lr_schedule) o.lr_schedule = r->lr_schedule;
    if (r->steps) o.steps = r->steps;
    o.backend = r->backend;
    o.passes = r->passes;
    o.pass_opts = r->pass_opts;
    o.bucket = r->bucket;
    return o;
}

/* Fails before training, not after it, when the checkpoint cannot be written; and
 * never replaces a file other than the checkpoint being resumed unless asked to. */
static int check_output(const ed_train_request *r, const char *out)
{
    if (ed_atomic_check(out) != ED_OK) {
        char msg[ED_ERROR_MAX];
        return ed_fail("cannot write the checkpoint: %s", last_error_copy(msg));
    }
    struct stat st;
    bool is_resumed = r->resume && ed_same_file(r->resume, out);
    if (!r->force && !is_resumed && stat(out, &st) == 0)
        return ed_fail("%s exists; give --force to replace it, --resume %s to continue it, or another --out", out, out);
    return ED_OK;
}

static int output_path(const ed_train_request *r, ed_train_open_result *res)
{
    const char *out = r->out ? r->out : r->resume;
    int len = out ? snprintf(res->out, sizeof res->out, "%s", out)
                  : snprintf(res->out, sizeof res->out, "%s.safetensors", r->def->name);
    if (len < 0 || (size_t)len >= sizeof res->out) return ed_fail("the output path is too long");
    return check_output(r, res->out);
}

/* What no run can take (the command line never gives these). */
static int check_request(const ed_train_request *r, ed_train_open_result *res)
{
    if (!r->def) ed_fail("no model given");
    else if (r->n < 0 || r->steps < 0)
        ed_fail("--n and --steps must be >= 1, got %lld and %lld", (long long)r->n, (long long)r->steps);
    else if (r->noptions && !r->options) ed_fail("%d model options but no array of them", r->noptions);
    else return ED_OK;
    return bad_request(res);
}

/* Everything before the trainer: the model, the data and the options of the run. */
static int prepare(const ed_train_request *r, ed_checkpoint *ck, ed_gen_model *m, ed_dataset *d, ed_trainer_opts *o,
                   ed_train_open_result *res)
{
    if (check_request(r, res) != ED_OK) return ED_ERR;
    if (r->resume) {
        if (ed_checkpoint_load_for(r->resume, r->def, ck) != ED_OK || check_kept(r, ck, m, res) != ED_OK) return ED_ERR;
        if (ed_store_check_finite(ck->store) != ED_OK) { /* a lower --lr cannot mend these */
            char msg[ED_ERROR_MAX];
            return ed_fail("%s: %s; the run diverged before this checkpoint: start again from scratch", r->resume,
                           last_error_copy(msg));
        }
        if (ed_dataset_open(d, ck->data, ck->data_n, ck->data_seed) != ED_OK) {
            char msg[ED_ERROR_MAX];
            return ed_fail("%s (the data of %s)", last_error_copy(msg), r->resume);
        }
        res->resumed = true;
        res->was = ck->train;
        res->diverges = diverges(r, &ck->train);
        *o = run_opts(r, ck->train);
    } else {
        if (!r->data) {
            ed_fail("--data is required (a built-in set, FILE.npy or OBS.npy,ACTIONS.npy)");
            return bad_request(res);
        }
        uint64_t seed = r->has_seed ? r->seed : 0;
        if (ed_dataset_open(d, r->data, r->n ? r->n : DEFAULT_ROWS, seed) != ED_OK) return ED_ERR;
        ed_data_facts facts = ed_dataset_facts(d);
        if (ed_gen_model_init_data(m, r->def, &facts) != ED_OK || apply_options(r, m, res) != ED_OK ||
            ed_gen_model_check(m) != ED_OK)
            return ED_ERR;
        ed_trainer_opts defaults = {.batch = ED_TRAIN_DEFAULT_BATCH,
                                    .lr = ED_TRAIN_DEFAULT_LR,
                                    .seed = seed,
                                    .steps = ed_model_default_steps(r->def),
                                    .lr_schedule = ED_LR_COSINE};
        if (m->def->run_defaults) m->def->run_defaults(m, &defaults.steps, &defaults.batch, &defaults.lr);
        *o = run_opts(r, defaults);
    }
    return output_path(r, res);
}

int ed_trainer_open(const ed_train_request *r, ed_train_open_result *res)
{
    *res = (ed_train_open_result){0};
    ed_checkpoint ck = {0};
    ed_dataset d = {0};
    ed_gen_model m;
    ed_trainer_opts o;
    int status = prepare(r, &ck, &m, &d, &o, res);
    if (status == ED_OK) {
        ed_clear_error();
        ed_trainer *t = ck.store ? ed_trainer_resume(&ck, &d, &o) : ed_trainer_new(&m, &d, &o);
        char msg[ED_ERROR_MAX];
        if (!t) status = r->resume ? ed_fail("%s: %s", r->resume, last_error_copy(msg)) : ED_ERR;
        else ed_trainer_take_data(t, &d);
        res->trainer = t;
    }
    ed_checkpoint_free(&ck);
    ed_dataset_free(&d);
    return status;
}
