/* Frozen parameter groups: another model's checkpoint loaded into a fresh run's store
 * under a scope, never trained (see ed_frozen_def in models/registry.h). */
#include "models/trainer.h"
#include "runtime/error.h"

#include <stdio.h>
#include <string.h>

/* The trainer's optimizer state: "opt." and "opt.<step>.", not the frozen model's weights. */
static bool is_optimizer_state(const char *name) { return strncmp(name, "opt.", 4) == 0; }

static int copy_group(const ed_frozen_def *f, const ed_store *from, ed_store *to)
{
    for (int i = 0; i < ed_store_count(from); i++) {
        const char *name = ed_store_name(from, i);
        if (is_optimizer_state(name)) continue;
        char scoped[512];
        int len = snprintf(scoped, sizeof scoped, "%s.%s", f->scope, name);
        if (len < 0 || (size_t)len >= sizeof scoped) return ed_fail("--%s: the name '%s' is too long", f->option, name);
        if (ed_store_get(to, scoped)) return ed_fail("--%s: '%s' is in the store already", f->option, scoped);
        ed_tensor *t = ed_tensor_copy(ed_store_tensor(from, i));
        if (!t || ed_store_put(to, scoped, t, false) != ED_OK) return ED_ERR;
    }
    return ED_OK;
}

static int load_group(ed_gen_model *m, const ed_frozen_def *f, ed_store *st)
{
    char path[ED_OPTION_TEXT_MAX], msg[ED_ERROR_MAX];
    if (!ed_gen_model_get(m, f->option, path, sizeof path))
        return ed_fail("model %s: its frozen group names no option '%s'", m->def->name, f->option);
    if (!path[0] && f->optional) return ED_OK;
    if (!path[0])
        return ed_fail("model %s needs --%s CKPT: a trained %s checkpoint (edifice train %s ...)", m->def->name,
                       f->option, f->model, f->model);
    const ed_model_def *def = ed_model_find(f->model);
    if (!def) return ED_ERR;
    ed_checkpoint ck;
    if (ed_checkpoint_load_for(path, def, &ck) != ED_OK) {
        snprintf(msg, sizeof msg, "%s", ed_last_error());
        return ed_fail("--%s: %s", f->option, msg);
    }
    int status = ED_OK;
    if (!ed_shape_eq(ck.model.sample, m->sample)) { /* every frozen model reads these data */
        char a[96], b[96];
        status = ed_fail("it was trained on samples %s, these data have %s",
                         ed_type_str(ED_F32, ck.model.sample, a, sizeof a),
                         ed_type_str(ED_F32, m->sample, b, sizeof b));
    }
    if (status == ED_OK && f->adopt) status = f->adopt(m, &ck.model);
    if (status != ED_OK) {
        snprintf(msg, sizeof msg, "%s", ed_last_error());
        status = ed_fail("--%s %s: %s", f->option, path, msg);
    }
    if (status == ED_OK) status = copy_group(f, ck.store, st);
    ed_checkpoint_free(&ck);
    return status;
}

int ed_frozen_load(ed_gen_model *m, ed_store *st)
{
    for (int k = 0; k < m->def->nfrozen; k++)
        if (load_group(m, &m->def->frozen[k], st) != ED_OK) return ED_ERR;
    return ED_OK;
}

bool ed_frozen_owns(const ed_gen_model *m, const char *name)
{
    for (int k = 0; k < m->def->nfrozen; k++) {
        size_t len = strlen(m->def->frozen[k].scope);
        if (strncmp(name, m->def->frozen[k].scope, len) == 0 && name[len] == '.') return true;
    }
    return false;
}
