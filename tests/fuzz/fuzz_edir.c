/* The IR text parser: parse, verify, print and parse again; the second print must equal
 * the first (the text form round-trips), then the default passes run on the graph (a
 * graph the parser accepts must not break a pass: the plan pass's size overflow was
 * found this way). */
#include "fuzz.h"
#include "ir/ir.h"
#include "ir/text.h"
#include "passes/pass.h"
#include "runtime/error.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ed_graph *g = ed_graph_parse(fuzz_text(data, size), "fuzz.edir");
    if (!g) return 0;
    if (ed_graph_verify(g) != ED_OK) fuzz_fail("a parsed graph does not verify", ed_last_error());
    char *first = ed_graph_print(g);
    if (!first) fuzz_fail("print", ed_last_error());
    ed_graph *again = ed_graph_parse(first, "printed.edir");
    if (!again) fuzz_fail("the printed text does not parse", ed_last_error());
    char *second = ed_graph_print(again);
    if (!second || strcmp(first, second) != 0) fuzz_fail("print -> parse -> print differs", second);
    ed_pass_opts po = {.verify = ED_VERIFY_ON};
    (void)ed_pass_run(again, NULL, &po); /* may refuse with a message; must not crash */
    free(first);
    free(second);
    ed_graph_free(again);
    ed_graph_free(g);
    return 0;
}
