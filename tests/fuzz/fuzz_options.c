/* Model options as the CLI passes them (`edifice train MODEL --NAME VALUE ...`): lines of
 * NAME=VALUE after a first line naming the model (or any text: its first byte picks
 * one) and the data's kind. Each value is accepted or refused with a message; the model's
 * own check runs on what was accepted; every option then prints and parses back to the
 * same text (checkpoints store options that way). A line "passes=LIST" checks a pass
 * pipeline. PATH options (other checkpoints) are not fuzzed: they name files to read. */
#include "fuzz.h"
#include "models/registry.h"
#include "passes/pass.h"
#include "runtime/error.h"

#include <stdio.h>
#include <string.h>

static ed_data_facts facts_for(int kind)
{
    switch (kind % 3) {
    case 0: return (ed_data_facts){.sample = ed_shape1(2)};
    case 1: return (ed_data_facts){.sample = ed_shape1(2), .obs_size = 3};
    default: return (ed_data_facts){.sample = ed_shape3(1, 8, 8), .classes = 10, .levels = 17, .unit_range = true};
    }
}

static void round_trip(const ed_gen_model *m)
{
    const ed_model_def *def = m->def;
    ed_gen_model copy = *m;
    for (int i = 0; i < def->noptions; i++) {
        const ed_option *o = &def->options[i];
        char a[ED_OPTION_TEXT_MAX], b[ED_OPTION_TEXT_MAX];
        if (!ed_gen_model_get(m, o->name, a, sizeof a)) fuzz_fail("get", o->name);
        if (ed_gen_model_set(&copy, o->name, a) != ED_OK) fuzz_fail("a printed option does not parse", a);
        if (!ed_gen_model_get(&copy, o->name, b, sizeof b) || strcmp(a, b) != 0)
            fuzz_fail("option print -> parse -> print differs", o->name);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    char *line = strtok(text, "\n");
    if (!line) return 0;
    const ed_model_def *def = ed_model_find(line);
    if (!def) def = ed_model_at((unsigned char)line[0] % ed_model_count());
    ed_data_facts f = facts_for(line[0] ? (unsigned char)line[1 % strlen(line)] : 0);
    ed_gen_model m;
    if (ed_gen_model_init_data(&m, def, &f) != ED_OK) return 0;
    bool ok = true;
    while ((line = strtok(NULL, "\n"))) {
        char *eq = strchr(line, '=');
        if (!eq) continue;
        *eq = '\0';
        if (strcmp(line, "passes") == 0) {
            (void)ed_pipeline_check(eq + 1);
            continue;
        }
        const ed_option *o = ed_option_find(def->options, def->noptions, line);
        if (o && o->kind == ED_OPTION_PATH) continue;
        if (ed_gen_model_set(&m, line, eq + 1) != ED_OK) ok = false;
    }
    if (ok) (void)ed_gen_model_check(&m);
    round_trip(&m);
    return 0;
}
