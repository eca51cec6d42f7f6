/* The NAME.h of an export (backend/export.h): the functions of NAME.o with their
 * inputs and outputs named, typed and sized in comments and macros. */
#include "backend/export.h"
#include "backend/program.h"
#include "runtime/error.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *c_type(ed_dtype dt) { return dt == ED_F32 ? "float" : dt == ED_I32 ? "int32_t" : "double"; }

/* name as a C identifier into buf (other bytes become '_', a leading digit gets '_'). */
static const char *ident(const char *name, char *buf, size_t size)
{
    size_t k = 0;
    if (isdigit((unsigned char)name[0]) && k + 1 < size) buf[k++] = '_';
    for (size_t i = 0; name[i] && k + 1 < size; i++) buf[k++] = isalnum((unsigned char)name[i]) ? name[i] : '_';
    buf[k] = '\0';
    return buf;
}

static void upper(char *s)
{
    for (; *s; s++) *s = (char)toupper((unsigned char)*s);
}

static void shape_text(ed_shape s, char *buf, size_t size)
{
    size_t k = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < s.rank && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, "%s%lld", i ? ", " : "", (long long)s.dim[i]);
    if (k < size) snprintf(buf + k, size - k, "]");
}

/* One line per input or output in the comment and its _COUNT macro. */
static void port(FILE *f, const char *NAME, const char *kind, const char *name, const ed_node *n)
{
    char id[128], ID[128], shape[256];
    ident(name, id, sizeof id);
    snprintf(ID, sizeof ID, "%s", id);
    upper(ID);
    shape_text(n->shape, shape, sizeof shape);
    fprintf(f, "/* %s %s \"%s\": %s %s, %lld elements, %lld bytes */\n", kind, id, name, ed_dtype_name(n->dtype), shape,
            (long long)ed_shape_numel(n->shape),
            (long long)(ed_shape_numel(n->shape) * (int64_t)ed_dtype_size(n->dtype)));
    fprintf(f, "#define %s_%s_COUNT %lld\n", NAME, ID, (long long)ed_shape_numel(n->shape));
}

static void params(FILE *f, const ed_program *p, bool sample)
{
    char id[128];
    bool comma = false;
    for (int i = 0; i < p->ninputs; i++, comma = true)
        fprintf(f, "%sconst %s *%s", comma ? ", " : "", c_type(p->inputs[i]->dtype),
                ident(p->inputs[i]->attr.name, id, sizeof id));
    if (sample) fprintf(f, "%suint64_t seed", comma ? ", " : ""), comma = true;
    for (int i = 0; i < p->noutputs; i++, comma = true)
        fprintf(f, "%s%s *%s", comma ? ", " : "", c_type(p->outputs[i].node->dtype),
                ident(p->outputs[i].name, id, sizeof id));
    if (!sample) fprintf(f, "%suint64_t seed, uint64_t call", comma ? ", " : "");
}

int ed_export_write_header(const ed_program *p, const ed_export_opts *o, const char *name, const char *triple,
                           const char *cpu, const char *needs)
{
    size_t n = strlen(o->out) + 3;
    char *path = malloc(n), NAME[128];
    if (!path) return ed_fail("export: out of memory");
    snprintf(path, n, "%s.h", o->out);
    snprintf(NAME, sizeof NAME, "%s", name);
    upper(NAME);
    FILE *f = fopen(path, "w");
    if (!f) {
        ed_fail("export: cannot write %s", path);
        free(path);
        return ED_ERR;
    }
    const char *base = strrchr(o->out, '/');
    base = base ? base + 1 : o->out;
    fprintf(f, "/* %s.h: the interface of %s.o, written by `edifice export`.\n", base, base);
    if (o->about) fprintf(f, " *\n%s", o->about);
    fprintf(f,
            " *\n"
            " * Link: cc prog.c %s.o%s -lm   (the object needs only libc, libm%s;\n"
            " *       its symbols from them: %s)\n"
            " * Code for %s, CPU %s%s.\n"
            " *\n"
            " * Params and consts are constant data inside the object. The workspace (every\n"
            " * intermediate value) is either the caller's, %s_WORKSPACE_BYTES 64-byte aligned,\n"
            " * initialized once with %s_init, or the object's own static one (%s_run; not\n"
            " * reentrant, one call at a time).\n"
            " *\n"
            " * seed and call: the random draws of call number `call` (0, 1, ...) under `seed` are\n"
            " * those of the (call+1)-th run of the edifice program compiled with that seed. All\n"
            " * functions return 0. Outputs are written whole; inputs are not modified. */\n",
            base, o->no_blas ? "" : " -lopenblas", o->no_blas ? " (no BLAS: --no-blas)" : " and OpenBLAS",
            needs && *needs ? needs : "none", triple, cpu, o->target_cpu ? "" : " (the exporting host's)", NAME, name,
            name);
    fprintf(f, "#ifndef %s_H\n#define %s_H\n\n#include <stdint.h>\n\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n",
            NAME, NAME);
    for (int i = 0; i < p->ninputs; i++) port(f, NAME, "input", p->inputs[i]->attr.name, p->inputs[i]);
    for (int i = 0; i < p->noutputs; i++) port(f, NAME, "output", p->outputs[i].name, p->outputs[i].node);
    fprintf(f, "\n#define %s_WORKSPACE_BYTES %zu\n\n", NAME, p->arena_bytes ? p->arena_bytes : 64);
    fprintf(f, "/* Zero a workspace of %s_WORKSPACE_BYTES (64-byte aligned) and write the consts in. */\n", NAME);
    fprintf(f, "void %s_init(void *workspace);\n\n", name);
    fprintf(f, "/* One call in the caller's initialized workspace. */\nint %s_call(void *workspace, ", name);
    params(f, p, false);
    fprintf(f, ");\n\n/* One call in the object's static workspace. */\nint %s_run(", name);
    params(f, p, false);
    fprintf(f, ");\n");
    if (o->sample_fn) {
        fprintf(f, "\n/* %s_run at call 0: the samples edifice sample draws with --seed seed. */\nint %s_sample(", name,
                name);
        params(f, p, true);
        fprintf(f, ");\n");
    }
    fprintf(f, "\n#ifdef __cplusplus\n}\n#endif\n\n#endif\n");
    int st = ferror(f) | fclose(f) ? ed_fail("export: writing %s failed", path) : ED_OK;
    free(path);
    return st;
}
