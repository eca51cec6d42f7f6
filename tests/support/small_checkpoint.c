/* The small untrained checkpoint tests sample from (small_checkpoint.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "models/registry.h"
#include "runtime/error.h"
#include "support/small_checkpoint.h"

void small_checkpoint(const char *def, const char *data, const ed_option_arg *opts, int nopts, const char *path,
                      ed_checkpoint *ck)
{
    ed_train_request r = {.def = ed_model_find(def),
                          .options = opts,
                          .noptions = nopts,
                          .data = data,
                          .n = 200,
                          .batch = 16,
                          .out = path,
                          .force = true,
                          .backend = ED_BACKEND_INTERP};
    ed_train_open_result res;
    if (ed_trainer_open(&r, &res) != ED_OK) fail_msg("%s", ed_last_error());
    assert_int_equal(ed_trainer_save(res.trainer, path), ED_OK);
    ed_trainer_free(res.trainer);
    if (ed_checkpoint_load(path, ck) != ED_OK) fail_msg("%s", ed_last_error());
    for (int i = 0; i < ed_store_count(ck->store); i++) {
        ed_tensor *t = (ed_tensor *)ed_store_tensor(ck->store, i);
        if (t->dtype != ED_F32) continue;
        for (int64_t k = 0; k < ed_tensor_numel(t); k++) ((float *)t->data)[k] += 0.05f * (float)((k * 7 + i) % 11 - 5);
    }
}
