/* GAN, WGAN-GP and conditional GAN: options, the two networks, the steps' losses, and
 * their registry entries. */
#include "models/gan.h"
#include "frontend/nn.h"
#include "frontend/norm.h"
#include "models/conv_image.h"
#include "models/registry.h"
#include "passes/autodiff.h"
#include "runtime/error.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const outputs[] = {"auto", "sigmoid", "tanh", "none", NULL};
static const char *const archs[] = {"mlp", "conv", NULL};
static const char *const inits[] = {"glorot", "dcgan", NULL};

/* The two tables differ in the defaults and notes of the widths, dropout, n_critic, the
 * betas and gp_lambda. */
#define GO(field) offsetof(ed_gan_opts, field)
#define ACTIVATION_HELP "activation of the hidden layers"
#define OUTPUT_HELP "G's output activation (auto: sigmoid for data in [0, 1], else none)"
#define BN_HELP "momentum of G's batch-norm running stats"
#define INIT_HELP "weights: glorot (uniform) or dcgan (N(0, 0.02))"

const ed_option ed_gan_options[ED_GAN_NOPTIONS] = {
    {"latent", ED_OPTION_INT, GO(latent), 128, 1, 65536, NULL, "size of the noise z", NULL},
    {"generator_sizes", ED_OPTION_SIZES, GO(gen_sizes), 0, 1, 65536, NULL, "hidden widths of G", "256,512"},
    {"discriminator_sizes", ED_OPTION_SIZES, GO(disc_sizes), 0, 1, 65536, NULL, "hidden widths of D", "512,256"},
    {"activation", ED_OPTION_ENUM, GO(activation), ED_ACT_RELU, 0, 0, ed_activation_names, ACTIVATION_HELP, NULL},
    {"output", ED_OPTION_ENUM, GO(output), ED_GAN_OUT_AUTO, 0, 0, outputs, OUTPUT_HELP, NULL},
    {"dropout", ED_OPTION_REAL, GO(dropout), -1, -1, 0.99, NULL,
     "dropout rate in D, training only (-1: 0.3, or 0 for --arch conv as DCGAN's D)", NULL},
    {"bn_momentum", ED_OPTION_REAL, GO(bn_momentum), 0.1, 0, 1, NULL, BN_HELP, NULL},
    {"n_critic", ED_OPTION_INT, GO(n_critic), 1, 1, 100, NULL, "discriminator steps per generator step", NULL},
    {"beta1", ED_OPTION_REAL, GO(beta1), 0.5, 0, 0.999999, NULL, "Adam beta1 of both steps", NULL},
    {"beta2", ED_OPTION_REAL, GO(beta2), 0.999, 0, 0.999999, NULL, "Adam beta2 of both steps", NULL},
    {"arch", ED_OPTION_ENUM, GO(arch), ED_GAN_MLP, 0, 0, archs,
     "mlp, or conv: DCGAN on images (a run then defaults to batch 64, lr 2e-4)", NULL},
    {"channels", ED_OPTION_SIZES, GO(channels), 0, 1, 4096, NULL, "conv: D's channels (G's reversed)", "32,64"},
    {"init", ED_OPTION_ENUM, GO(init), ED_GAN_INIT_GLOROT, 0, 0, inits, INIT_HELP, NULL},
};

/* wgan_gp on data of at most SMALL_DIM numbers (the 2-D sets) takes the toy settings of
 * Gulrajani et al.'s 8-Gaussians runs: a penalty weight of 0.1, Adam beta1 0.5, a critic
 * without dropout, and (for a budget that fits this machine) both networks 128,128.
 * From the defaults, 4000 iterations reached 6/8 modes with 22% of the samples
 * near one; with these, 8/8 and 75-77% (seeds 0, 1; bench/HISTORY.md). */
#define SMALL_DIM 16
#define SMALL_WIDTH 128
#define SMALL_NOTE " (low-dimensional data: "

const ed_option ed_wgan_gp_options[ED_WGAN_GP_NOPTIONS] = {
    {"latent", ED_OPTION_INT, GO(latent), 128, 1, 65536, NULL, "size of the noise z", NULL},
    {"generator_sizes", ED_OPTION_SIZES, GO(gen_sizes), 0, 1, 65536, NULL, "hidden widths of G" SMALL_NOTE "128,128)",
     "256,512"},
    {"discriminator_sizes", ED_OPTION_SIZES, GO(disc_sizes), 0, 1, 65536, NULL,
     "hidden widths of D" SMALL_NOTE "128,128)", "512,256"},
    {"activation", ED_OPTION_ENUM, GO(activation), ED_ACT_RELU, 0, 0, ed_activation_names, ACTIVATION_HELP, NULL},
    {"output", ED_OPTION_ENUM, GO(output), ED_GAN_OUT_AUTO, 0, 0, outputs, OUTPUT_HELP, NULL},
    {"dropout", ED_OPTION_REAL, GO(dropout), 0.3, 0, 0.99, NULL, "dropout rate in D, training only" SMALL_NOTE "0)",
     NULL},
    {"bn_momentum", ED_OPTION_REAL, GO(bn_momentum), 0.1, 0, 1, NULL, BN_HELP, NULL},
    {"n_critic", ED_OPTION_INT, GO(n_critic), 5, 1, 100, NULL, "critic steps per generator step", NULL},
    {"beta1", ED_OPTION_REAL, GO(beta1), 0, 0, 0.999999, NULL, "Adam beta1 of both steps" SMALL_NOTE "0.5)", NULL},
    {"beta2", ED_OPTION_REAL, GO(beta2), 0.9, 0, 0.999999, NULL, "Adam beta2 of both steps", NULL},
    {"gp_lambda", ED_OPTION_REAL, GO(gp_lambda), 10, 0, 1e6, NULL, "weight of the gradient penalty" SMALL_NOTE "0.1)",
     NULL},
    {"arch", ED_OPTION_ENUM, GO(arch), ED_GAN_MLP, 0, 0, archs,
     "mlp, or conv: DCGAN on images (a run then defaults to batch 64, lr 2e-4)", NULL},
    {"channels", ED_OPTION_SIZES, GO(channels), 0, 1, 4096, NULL, "conv: D's channels (G's reversed)", "32,64"},
    {"init", ED_OPTION_ENUM, GO(init), ED_GAN_INIT_GLOROT, 0, 0, inits, INIT_HELP, NULL},
};
#undef SMALL_NOTE
#undef ACTIVATION_HELP
#undef OUTPUT_HELP
#undef BN_HELP
#undef INIT_HELP
#undef GO

void ed_gan_defaults(ed_gan_opts *o)
{
    *o = (ed_gan_opts){.loss = ED_GAN_STANDARD};
    ed_options_defaults(ed_gan_options, ED_GAN_NOPTIONS, o);
}

void ed_wgan_gp_defaults(ed_gan_opts *o)
{
    *o = (ed_gan_opts){.loss = ED_GAN_WGAN_GP};
    ed_options_defaults(ed_wgan_gp_options, ED_WGAN_GP_NOPTIONS, o);
}

/* ---- the networks ------------------------------------------------------------------ */

static bool valid(ed_graph *g, const ed_gan_opts *o)
{
    if (ed_graph_error(g)) return false;
    if (o->data_dim < 1 || o->latent < 1 || o->classes < 0 || (unsigned)o->activation >= ED_ACT_COUNT ||
        (unsigned)o->output >= ED_GAN_OUT_COUNT || (unsigned)o->loss >= ED_GAN_COUNT || o->gen_sizes.n < 0 ||
        o->gen_sizes.n > ED_SIZES_MAX || o->disc_sizes.n < 0 || o->disc_sizes.n > ED_SIZES_MAX) {
        ed_graph_fail(g, "gan: bad options (data_dim %lld, latent %lld, classes %lld, activation %d, output %d)",
                      (long long)o->data_dim, (long long)o->latent, (long long)o->classes, o->activation, o->output);
        return false;
    }
    if ((unsigned)o->arch >= ED_GAN_ARCH_COUNT || (unsigned)o->init >= ED_GAN_INIT_COUNT) {
        ed_graph_fail(g, "gan: arch %d or init %d is out of range", o->arch, o->init);
        return false;
    }
    if (o->arch == ED_GAN_CONV)
        return ed_conv_image_check(g, "gan --arch conv", o->image, o->data_dim, o->channels.n, ED_SIZES_MAX);
    return true;
}

/* [x, one_hot(labels)] for a conditional model, x itself otherwise. */
static ed_node *with_label(ed_node *x, ed_node *labels, const ed_gan_opts *o)
{
    if (!x || !o->classes) return x;
    if (!labels) return ed_graph_fail(x->graph, "gan: the conditional model needs labels");
    ed_node *parts[2] = {x, ed_one_hot(labels, o->classes, x->dtype)};
    return ed_concat(parts, 2, 1);
}

static ed_activation output_activation(const ed_gan_opts *o)
{
    switch ((ed_gan_output)o->output) {
    case ED_GAN_OUT_SIGMOID: return ED_ACT_SIGMOID;
    case ED_GAN_OUT_TANH: return ED_ACT_TANH;
    case ED_GAN_OUT_NONE: return ED_ACT_NONE;
    default: return o->unit_range ? ED_ACT_SIGMOID : ED_ACT_NONE;
    }
}

/* D's dropout: a negative rate (the gan table's default) is 0.3 for the MLP and none for
 * DCGAN's D, as Radford et al.'s (Frechet 46.6 against 49.8 with 0.3: bench/HISTORY.md). */
static double disc_dropout(const ed_gan_opts *o)
{
    if (o->dropout >= 0) return o->dropout;
    return o->arch == ED_GAN_CONV ? 0 : 0.3;
}

/* 4x4 kernels, stride 2, padding 1: a side halves (conv) or doubles (transposed). */
static const ed_conv_opts halve = {.stride = {2, 2}, .padding = {1, 1}};

/* DCGAN's G from h [B, latent (+ classes)] in scope "gen": -> [B, D]. */
static ed_node *conv_generate(ed_node *h, const ed_gan_opts *o)
{
    ed_activation act = (ed_activation)o->activation;
    int n = o->channels.n;
    int64_t b = h->shape.dim[0], top = o->channels.v[n - 1], h0 = o->image[1] >> n, w0 = o->image[2] >> n;
    h = ed_dense(h, "fc", top * h0 * w0, true);
    h = ed_activate(ed_batch_norm(h, "bn_fc", 1e-5, o->bn_momentum, true), act);
    h = h ? ed_reshape(h, ed_shape4(b, top, h0, w0)) : NULL;
    for (int i = n - 1; i >= 0; i--) {
        char up[16], bn[16];
        snprintf(up, sizeof up, "up%d", n - 1 - i);
        snprintf(bn, sizeof bn, "bn%d", n - 1 - i);
        h = ed_conv_transpose2d_layer(h, up, i ? o->channels.v[i - 1] : o->image[0], 4, &halve, true);
        if (i) h = ed_activate(ed_batch_norm2d(h, bn, 1e-5, o->bn_momentum, true), act);
    }
    h = ed_activate(h, output_activation(o));
    return h ? ed_reshape(h, ed_shape2(b, o->data_dim)) : NULL;
}

/* DCGAN's D from x [B, D] in scope "disc": the flattened features of the last conv. */
static ed_node *conv_features(ed_node *x, const ed_gan_opts *o)
{
    int64_t b = x->shape.dim[0];
    ed_node *h = ed_reshape(x, ed_shape4(b, o->image[0], o->image[1], o->image[2]));
    for (int i = 0; i < o->channels.n; i++) {
        char name[16];
        snprintf(name, sizeof name, "conv%d", i);
        h = ed_dropout(ed_leaky_relu(ed_conv2d_layer(h, name, o->channels.v[i], 4, &halve, true), 0.2),
                       disc_dropout(o));
    }
    return h ? ed_reshape(h, ed_shape2(b, ed_shape_numel(h->shape) / b)) : NULL;
}

/* DCGAN's init (Radford et al.): every weight ("*.w") made since node `first` drawn from
 * N(0, 0.02) instead of the layers' glorot; biases and batch-norm gains keep theirs. One
 * leaf per name, so D's second call finds its weights already set. */
static void dcgan_init(ed_graph *g, int first, const ed_gan_opts *o)
{
    bool dcgan = o->init == ED_GAN_INIT_DCGAN;
    for (int i = first; dcgan && !ed_graph_error(g) && i < g->nnodes; i++) {
        ed_node *n = g->nodes[i];
        size_t len = n->op == ED_OP_PARAM && n->attr.name ? strlen(n->attr.name) : 0;
        if (len > 2 && strcmp(n->attr.name + len - 2, ".w") == 0) n->attr.init = (ed_init){ED_INIT_NORMAL, 0.02};
    }
}

ed_node *ed_gan_generate(ed_node *z, ed_node *labels, const ed_gan_opts *o)
{
    if (!z || !valid(z->graph, o)) return NULL;
    ed_graph *g = z->graph;
    int first = g->nnodes;
    ed_scope_push(g, "gen");
    ed_node *h = with_label(z, labels, o);
    if (o->arch == ED_GAN_CONV) {
        h = h ? conv_generate(h, o) : NULL;
        ed_scope_pop(g);
        dcgan_init(g, first, o);
        return h;
    }
    for (int i = 0; i < o->gen_sizes.n; i++) {
        char dense[16], bn[16];
        snprintf(dense, sizeof dense, "%d", i);
        snprintf(bn, sizeof bn, "bn%d", i);
        h = ed_dense(h, dense, o->gen_sizes.v[i], true);
        h = ed_activate(ed_batch_norm(h, bn, 1e-5, o->bn_momentum, true), (ed_activation)o->activation);
    }
    h = ed_activate(ed_dense(h, "out", o->data_dim, true), output_activation(o));
    ed_scope_pop(g);
    dcgan_init(g, first, o);
    return h;
}

ed_node *ed_gan_discriminate(ed_node *x, ed_node *labels, const ed_gan_opts *o)
{
    if (!x || !valid(x->graph, o)) return NULL;
    ed_graph *g = x->graph;
    int first = g->nnodes;
    ed_scope_push(g, "disc");
    if (o->arch == ED_GAN_CONV) x = conv_features(x, o);
    ed_node *h = with_label(x, labels, o);
    for (int i = 0; o->arch == ED_GAN_MLP && i < o->disc_sizes.n; i++) {
        char dense[16];
        snprintf(dense, sizeof dense, "%d", i);
        h = ed_dropout(ed_activate(ed_dense(h, dense, o->disc_sizes.v[i], true), (ed_activation)o->activation),
                       disc_dropout(o));
    }
    h = ed_dense(h, "out", 1, true);
    ed_scope_pop(g);
    dcgan_init(g, first, o);
    return h ? ed_reshape(h, ed_shape1(h->shape.dim[0])) : NULL;
}

static ed_node *generate_batch(ed_graph *g, int64_t batch, ed_node *labels, const ed_gan_opts *o)
{
    if (!valid(g, o)) return NULL;
    return ed_gan_generate(ed_randn(g, ED_F32, ed_shape2(batch, o->latent)), labels, o);
}

static ed_node *mean_of(ed_node *v) { return ed_mean(v, ED_ALL_AXES, false); }

ed_node *ed_gan_gradient_penalty(ed_node *real, ed_node *fake, ed_node *labels, const ed_gan_opts *o)
{
    if (!real || !fake) return NULL;
    ed_graph *g = real->graph;
    int64_t b = real->shape.dim[0];
    ed_node *e = ed_rand(g, real->dtype, ed_shape2(b, 1), 0, 1);
    ed_node *mixed = ed_add(ed_mul(e, real), ed_mul(ed_sub(ed_scalar_like(e, 1), e), fake));
    ed_node *critic = ed_gan_discriminate(mixed, labels, o);
    /* d sum_j l(x^_j) / d x^: row i is sample i's own gradient, D acting on rows apart */
    ed_node *grad = critic ? ed_grad1(ed_sum(critic, ED_ALL_AXES, false), mixed) : NULL;
    if (!grad) return NULL;
    ed_node *norm = ed_sqrt(ed_add_scalar(ed_sum(ed_square(grad), ed_axis_bit(grad, 1), false), 1e-12));
    return mean_of(ed_square(ed_add_scalar(norm, -1)));
}

ed_node *ed_gan_disc_loss(ed_graph *g, ed_node *x, ed_node *labels, const ed_gan_opts *o)
{
    if (!x || !valid(g, o)) return NULL;
    ed_node *fake = generate_batch(g, x->shape.dim[0], labels, o);
    ed_node *real_l = ed_gan_discriminate(x, labels, o), *fake_l = ed_gan_discriminate(fake, labels, o);
    if (o->loss == ED_GAN_STANDARD) return ed_add(mean_of(ed_softplus(ed_neg(real_l))), mean_of(ed_softplus(fake_l)));
    ed_node *w = ed_sub(mean_of(fake_l), mean_of(real_l));
    if (o->gp_lambda == 0) return w;
    return ed_add(w, ed_mul_scalar(ed_gan_gradient_penalty(x, fake, labels, o), o->gp_lambda));
}

ed_node *ed_gan_gen_loss(ed_graph *g, int64_t batch, ed_node *labels, const ed_gan_opts *o)
{
    ed_node *fake_l = ed_gan_discriminate(generate_batch(g, batch, labels, o), labels, o);
    if (!fake_l) return NULL;
    if (o->loss == ED_GAN_STANDARD) return mean_of(ed_softplus(ed_neg(fake_l)));
    return ed_neg(mean_of(fake_l));
}

ed_node *ed_gan_sample(ed_graph *g, int64_t n, ed_node *labels, const ed_gan_opts *o)
{
    return generate_batch(g, n, labels, o);
}

/* ---- the registry entries ---------------------------------------------------------- */

static void set_data(ed_gen_model *m)
{
    ed_gan_opts *o = &m->opts.gan;
    o->data_dim = ed_gen_model_dim(m);
    o->classes = m->classes;
    o->unit_range = m->unit_range;
    ed_gen_model_image(m, o->image);
}

static void gan_defaults(ed_gen_model *m)
{
    ed_gan_defaults(&m->opts.gan);
    set_data(m);
}

static void wgan_gp_defaults(ed_gen_model *m)
{
    ed_gan_opts *o = &m->opts.gan;
    ed_wgan_gp_defaults(o);
    set_data(m);
    if (m->sample.rank == 1 && o->data_dim <= SMALL_DIM) {
        o->gen_sizes = o->disc_sizes = (ed_sizes){.n = 2, .v = {SMALL_WIDTH, SMALL_WIDTH}};
        o->gp_lambda = 0.1;
        o->beta1 = 0.5;
        o->dropout = 0;
    }
}

static int gan_check(const ed_gen_model *m)
{
    if (m->obs_size) return ed_fail("model %s takes no observations: the data have some", m->def->name);
    if (m->def->uses_labels && m->classes < 1)
        return ed_fail("model %s needs class labels: the data have none (try --data digits)", m->def->name);
    const ed_gan_opts *o = &m->opts.gan;
    if (o->arch == ED_GAN_CONV) {
        int64_t chw[3];
        if (!ed_gen_model_image(m, chw))
            return ed_fail("model %s --arch conv needs images ([H, W] or [C, H, W] samples); these data are not",
                           m->def->name);
        int n = o->channels.n;
        if (chw[1] % (1 << n) || chw[2] % (1 << n))
            return ed_fail("model %s --arch conv: %d stride-2 layers (--channels) need H and W divisible by %d; the "
                           "images are %lldx%lld",
                           m->def->name, n, 1 << n, (long long)chw[1], (long long)chw[2]);
        for (int i = 0; i < m->def->noptions; i++) {
            const ed_option *op = &m->def->options[i];
            char has[64], def[64];
            if (strcmp(op->name, "generator_sizes") && strcmp(op->name, "discriminator_sizes")) continue;
            ed_option_default_str(op, def, sizeof def);
            if (strcmp(ed_gen_model_get(m, op->name, has, sizeof has), def) != 0)
                return ed_fail("model %s --arch conv: --%s is the mlp's widths (set --channels instead)", m->def->name,
                               op->name);
        }
    }
    return ED_OK;
}

static ed_node *disc_loss(ed_graph *g, const ed_gen_model *m, const ed_batch *b)
{
    return ed_gan_disc_loss(g, ed_gen_model_flatten(m, b->x), b->labels, &m->opts.gan);
}

static ed_node *gen_loss(ed_graph *g, const ed_gen_model *m, const ed_batch *b)
{
    return ed_gan_gen_loss(g, b->x->shape.dim[0], b->labels, &m->opts.gan);
}

static int64_t critic_repeats(const ed_gen_model *m) { return m->opts.gan.n_critic; }

static void adam_betas(const ed_gen_model *m, ed_optim_opts *o)
{
    o->beta1 = m->opts.gan.beta1;
    o->beta2 = m->opts.gan.beta2;
    o->exact_betas = true;
}

/* DCGAN's own settings (Radford et al.: Adam 2e-4, batch 128; 64 here, for the step
 * time on 2 cores) for a fresh run of --arch conv; the MLP keeps the trainer's. */
static void run_defaults(const ed_gen_model *m, int64_t *steps, int64_t *batch, double *lr)
{
    (void)steps;
    if (m->opts.gan.arch != ED_GAN_CONV) return;
    *batch = 64;
    *lr = 2e-4;
}

/* cgan without labels (a sampler that passes none): class i mod classes for sample i,
 * so a grid of `classes` columns has one class per column. */
static ed_node *cycle_labels(ed_graph *g, int64_t n, int64_t classes)
{
    double *v = malloc((size_t)n * sizeof *v);
    if (!v) return ed_graph_fail(g, "gan: out of memory");
    for (int64_t i = 0; i < n; i++) v[i] = (double)(i % classes);
    ed_node *labels = ed_const(g, ED_I32, ed_shape1(n), v, n);
    free(v);
    return labels;
}

static ed_node *gan_sample(ed_graph *g, const ed_gen_model *m, int64_t n, ed_node *obs, ed_node *labels,
                           const ed_gen_sample_opts *so)
{
    (void)obs;
    if (!ed_gen_model_plain_sampler(g, m, so, "one pass of the generator on fresh noise")) return NULL;
    if (m->classes && !labels) labels = cycle_labels(g, n, m->classes);
    return ed_gen_model_unflatten(m, ed_gan_sample(g, n, m->classes ? labels : NULL, &m->opts.gan));
}

/* The iterations of a run without --steps. At the trainer's 1000 neither reaches every
 * mode of 8gaussians (gan 5/8, wgan_gp 6/8, as their PyTorch twins); the measurements
 * over seeds and BLAS threads that chose these are in bench/HISTORY.md. wgan_gp's 4000
 * are for its low-dimensional settings (about a minute of CPU on 8gaussians); images
 * take them too. cgan keeps 1000 (the digits, label accuracy 0.97). */
#define GAN_STEPS 3000
#define WGAN_GP_STEPS 4000

static const char *const disc_groups[] = {"disc.", NULL};
static const char *const gen_groups[] = {"gen.", NULL};
/* The three entries share their steps: the discriminator (n_critic runs) then the generator. */

const ed_model_def ed_gan_model = {
    .name = "gan",
    .summary = "GAN: MLP generator with batch norm and a dropout discriminator, non-saturating loss",
    .options = ed_gan_options,
    .noptions = ED_GAN_NOPTIONS,
    .defaults = gan_defaults,
    .check = gan_check,
    .nsteps = 2,
    .steps =
        {{.name = "disc", .groups = disc_groups, .loss = disc_loss, .repeats = critic_repeats, .optim = adam_betas},
         {.name = "gen", .groups = gen_groups, .loss = gen_loss, .optim = adam_betas}},
    .default_steps = GAN_STEPS,
    .run_defaults = run_defaults,
    .sample = gan_sample,
    .samplers = "generator",
};

const ed_model_def ed_wgan_gp_model = {
    .name = "wgan_gp",
    .summary = "WGAN-GP: the GAN's networks as generator and critic, gradient penalty at interpolates",
    .options = ed_wgan_gp_options,
    .noptions = ED_WGAN_GP_NOPTIONS,
    .defaults = wgan_gp_defaults,
    .check = gan_check,
    .nsteps = 2,
    .steps =
        {{.name = "disc", .groups = disc_groups, .loss = disc_loss, .repeats = critic_repeats, .optim = adam_betas},
         {.name = "gen", .groups = gen_groups, .loss = gen_loss, .optim = adam_betas}},
    .default_steps = WGAN_GP_STEPS,
    .run_defaults = run_defaults,
    .sample = gan_sample,
    .samplers = "generator",
};

const ed_model_def ed_cgan_model = {
    .name = "cgan",
    .summary = "conditional GAN: the class label (one-hot) enters both generator and discriminator",
    .uses_labels = true,
    .options = ed_gan_options,
    .noptions = ED_GAN_NOPTIONS,
    .defaults = gan_defaults,
    .check = gan_check,
    .nsteps = 2,
    .steps =
        {{.name = "disc", .groups = disc_groups, .loss = disc_loss, .repeats = critic_repeats, .optim = adam_betas},
         {.name = "gen", .groups = gen_groups, .loss = gen_loss, .optim = adam_betas}},
    .run_defaults = run_defaults,
    .sample = gan_sample,
    .samplers = "generator",
};
