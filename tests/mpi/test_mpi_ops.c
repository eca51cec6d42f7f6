/* The allreduce ops on 2 ranks (run under mpirun -np 2; tests/mpi/README.md): values on
 * both backends, in place and not, the gradient rule, and a data-parallel training step
 * whose gradients go in several buckets. Every rank runs every test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "backend/backend.h"
#include "models/train_step.h"
#include "passes/autodiff.h"
#include "runtime/comm.h"
#include "runtime/store.h"

#include <math.h>

static const ed_backend backends[] = {ED_BACKEND_INTERP, ED_BACKEND_JIT};

/* x = (rank + 1) * base fed to a program with output y; y's values into out. */
static void run_fed(ed_graph *g, ed_backend be, ed_dtype dt, const double *base, int n, double *out)
{
    ed_program *p = ed_compile(g, NULL, &(ed_compile_opts){.backend = be});
    assert_non_null(p);
    ed_tensor *x = ed_tensor_new(dt, ed_shape1(n));
    for (int i = 0; i < n; i++) ed_tensor_set(x, i, (ed_comm_rank() + 1) * base[i]);
    assert_int_equal(ed_run(p, &(ed_feed){"x", x}, 1), ED_OK);
    const ed_tensor *y = ed_program_output(p, "y");
    for (int i = 0; i < n; i++) out[i] = ed_tensor_get(y, i);
    ed_tensor_free(x);
    ed_program_free(p);
}

static void test_ranks(void **state)
{
    (void)state;
    assert_int_equal(ed_comm_size(), 2);
    assert_true(ed_comm_rank() == 0 || ed_comm_rank() == 1);
}

/* Over ranks 1 and 2 times base: the sum is 3 base, the mean 1.5 base, on every rank. */
static void test_allreduce_values(void **state)
{
    (void)state;
    const double base[5] = {1, -2, 0.25, 1e-3, 7};
    for (int b = 0; b < 2; b++)
        for (int dt = 0; dt < 2; dt++)
            for (int mean = 0; mean < 2; mean++)
                for (int inplace = 0; inplace < 2; inplace++) {
                    ed_dtype type = dt ? ED_F64 : ED_F32;
                    ed_graph *g = ed_graph_new("g");
                    ed_node *x = ed_input(g, "x", type, ed_shape1(5));
                    /* neg(x) dies at the allreduce, which then takes its bytes */
                    ed_node *y = ed_allreduce(inplace ? ed_neg(x) : x, mean);
                    ed_output(g, "y", y);
                    double out[5];
                    run_fed(g, backends[b], type, base, 5, out);
                    for (int i = 0; i < 5; i++) {
                        double want = (inplace ? -1 : 1) * (mean ? 1.5 : 3) * base[i];
                        assert_float_equal(out[i], want, fabs(want) * 1e-7);
                    }
                    ed_graph_free(g);
                }
}

/* Rank-dependent values are fed, never constants: a constant 1 on one rank only would
 * let simplify drop a multiplication there, and ranks whose graphs differ call their
 * collectives in different orders. */
static ed_tensor *rank_scalar(void)
{
    ed_tensor *r = ed_tensor_new(ED_F32, ed_shape0());
    ed_tensor_set(r, 0, ed_comm_rank() + 1);
    return r;
}

/* L_r = sum(c_r * allreduce_sum(x_r)) with c_r = rank + 1: dL/dx_r summed over the ranks'
 * losses is c_0 + c_1 = 3 on each rank; the rule gives it as allreduce_sum(c_r). */
static void test_allreduce_gradient(void **state)
{
    (void)state;
    for (int b = 0; b < 2; b++) {
        ed_graph *g = ed_graph_new("g");
        ed_node *x = ed_input(g, "x", ED_F32, ed_shape1(3));
        ed_node *c = ed_input(g, "c", ED_F32, ed_shape0());
        ed_node *loss = ed_sum(ed_mul(c, ed_allreduce(x, false)), 1, false);
        ed_node *gx;
        assert_int_equal(ed_grad(loss, &x, 1, &gx), ED_OK);
        ed_output(g, "y", gx);
        ed_program *p = ed_compile(g, NULL, &(ed_compile_opts){.backend = backends[b]});
        assert_non_null(p);
        ed_tensor *xv = ed_tensor_new(ED_F32, ed_shape1(3)), *cv = rank_scalar();
        assert_int_equal(ed_run(p, (ed_feed[]){{"x", xv}, {"c", cv}}, 2), ED_OK);
        for (int i = 0; i < 3; i++) assert_float_equal(ed_tensor_get(ed_program_output(p, "y"), i), 3, 0);
        ed_tensor_free(xv);
        ed_tensor_free(cv);
        ed_program_free(p);
        ed_graph_free(g);
    }
}

/* One SGD step (lr 1) of loss = sum(w1 r) + sum(w2 2r) + w3 r with r = rank + 1 fed:
 * each param moves by minus the mean of the ranks' gradients, with a bucket of 4 values
 * splitting [3], [2, 2], [] into three calls; the loss output is the ranks' mean. */
static void test_train_step_buckets(void **state)
{
    (void)state;
    double mean_r = 1.5;
    for (int b = 0; b < 2; b++) {
        ed_graph *g = ed_graph_new("step");
        ed_node *w1 = ed_param(g, "w1", ED_F32, ed_shape1(3), (ed_init){ED_INIT_ONES, 0});
        ed_node *w2 = ed_param(g, "w2", ED_F32, ed_shape2(2, 2), (ed_init){ED_INIT_ONES, 0});
        ed_node *w3 = ed_param(g, "w3", ED_F32, ed_shape0(), (ed_init){ED_INIT_ONES, 0});
        ed_node *r = ed_input(g, "r", ED_F32, ed_shape0());
        ed_node *loss = ed_add(ed_add(ed_sum(ed_mul(w1, r), 1, false), ed_sum(ed_mul(w2, ed_add(r, r)), 3, false)),
                               ed_mul(w3, r));
        ed_train_opts o = {.optim = {.kind = ED_OPT_SGD, .lr = 1}, .allreduce_bucket = 4};
        assert_int_equal(ed_train_step(g, loss, &o), ED_OK);
        int calls = 0;
        for (int i = 0; i < g->nnodes; i++) calls += g->nodes[i]->op == ED_OP_ALLREDUCE_MEAN;
        assert_int_equal(calls, 4); /* three buckets and the loss */
        ed_store *st = ed_store_new(0);
        ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = backends[b]});
        assert_non_null(p);
        ed_tensor *rv = rank_scalar();
        assert_int_equal(ed_run(p, &(ed_feed){"r", rv}, 1), ED_OK);
        assert_float_equal(ed_tensor_get(ed_program_output(p, "loss"), 0), mean_r * (3 + 8 + 1), 1e-5);
        for (int i = 0; i < 3; i++) assert_float_equal(ed_tensor_get(ed_store_get(st, "w1"), i), 1 - mean_r, 1e-6);
        for (int i = 0; i < 4; i++) assert_float_equal(ed_tensor_get(ed_store_get(st, "w2"), i), 1 - 2 * mean_r, 1e-6);
        assert_float_equal(ed_tensor_get(ed_store_get(st, "w3"), 0), 1 - mean_r, 1e-6);
        ed_tensor_free(rv);
        ed_program_free(p);
        ed_store_free(st);
        ed_graph_free(g);
    }
}

int main(void)
{
    if (ed_comm_init() != ED_OK) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ranks),
        cmocka_unit_test(test_allreduce_values),
        cmocka_unit_test(test_allreduce_gradient),
        cmocka_unit_test(test_train_step_buckets),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    ed_comm_finalize();
    return failed;
}
