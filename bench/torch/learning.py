#!/usr/bin/python3
"""PyTorch twins of `edifice train vae|realnvp|vqvae|latent_diffusion --data digits`, for the learning table of bench/RESULTS.md (bench/learning.sh).

Same architecture, init, loss, data split and budget as models/vae.c, models/realnvp.c and
models/vqvae.c
with the trainer's defaults (models/trainer.c, frontend/optim.c):
  - data: data/digits.csv.gz, pixels / 16 flattened to 64; train rows 0..1499, test
    1500..1796 (data/README.md);
  - Adam (0.9, 0.999, eps 1e-8), lr 1e-3, cosine schedule with a 1-step warm-up down to
    lr/100 at the last step: factor(t) = min(1, t + 1) * (0.01 + 0.99 (1 + cos(pi p)) / 2),
    p = clamp((t - 1) / (steps - 1), 0, 1), t = 0-based step; no clipping, no weight decay;
  - 1000 steps of batch 256 drawn uniformly with replacement from the 1,500 rows;
  - dense layers glorot-uniform weights, zero biases (frontend/nn.c ed_dense); RealNVP's
    s/t heads start at zero.
Random streams differ from edifice's (philox); only the distributions match.

Eval on the 297 test digits, per sample and averaged, as `edifice eval` does:
  vae: neg_elbo (one z per x) and iwae_nll (K = 100), nats;
  realnvp: nll (one dequantisation draw per x, minus D log 17), nats, and bits_per_dim;
  vqvae: recon_mse (per pixel, through the codes), prior_nll (nats per image), codes_used
  and perplexity of the test codes' histogram.

latent_diffusion (models/latent_diffusion.c, at test_quality's budget): a VAE (latent 8,
encoder 128, decoder 128) for --vae-steps, then the latent denoiser (models/denoiser.c:
hidden 128, 2 pre-LN blocks of expansion 4, sinusoidal time embedding of t * 1000, one-hot
class condition with its keep flag, dropout 0.1, zero output layer) on the VAE's latent
means times 1 / their std, flow matching (linear path, velocity), for --steps; then 297
samples for the test labels in order by Euler's method in 20 steps, decoded (sigmoid of
the logits), scored by bench/score_samples as dit's (--scorer; edifice eval's own
classifier): frechet_distance, classes_hit, label_accuracy.


dit (models/dit.c, flow matching, on the digits as [1, 8, 8] in [-1, 1], labels with the
null class dropped in at 0.1): denoise_mse on the test digits, then 297 samples drawn for
the test labels (Euler, 50 steps), unguided and at --guidance, scored by bench/score_samples
(edifice eval's own classifier, cached under $EDIFICE_CACHE): label_accuracy_* and
frechet_distance_*.

score_sde_vp, score_sde_ve (models/score_sde.c on 10,000 moons points drawn for the seed,
--hidden and --layers its denoiser's): 10,000 samples by the predictor-corrector sampler
(200 steps, snr 0.16), scored by bench/score_samples: swd, swd_floor, swd_ratio.

Usage: learning.py vae|realnvp|vqvae|latent_diffusion|dit|score_sde_vp|score_sde_ve [--seed S] [--steps N] [--threads T] [dit options]
Prints "name value" lines: train_seconds, then the figures.
"""
import argparse
import gzip
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_ROWS = 1500
D = 64
LEVELS = 17  # digits pixels are 0..16


def load_digits(labels=False):
    path = os.environ.get("EDIFICE_DIGITS", os.path.join(ROOT, "data", "digits.csv.gz"))
    with gzip.open(path, "rt") as f:
        a = np.loadtxt(f, delimiter=",", dtype=np.float32)
    x = torch.from_numpy(a[:, :D] / 16.0)
    if labels:
        y = torch.from_numpy(a[:, D].astype(np.int64))
        return x[:TRAIN_ROWS].contiguous(), x[TRAIN_ROWS:].contiguous(), y[:TRAIN_ROWS], y[TRAIN_ROWS:]
    return x[:TRAIN_ROWS].contiguous(), x[TRAIN_ROWS:].contiguous()


def dense(n_in, n_out, zero=False):
    """ed_dense: y = x W + b, W glorot-uniform (limit sqrt(6 / (in + out))), b zero."""
    lin = torch.nn.Linear(n_in, n_out)
    with torch.no_grad():
        if zero:
            lin.weight.zero_()
        else:
            lim = math.sqrt(6.0 / (n_in + n_out))
            lin.weight.uniform_(-lim, lim)
        lin.bias.zero_()
    return lin


def mlp(sizes, activate_last):
    """ed_mlp: dense layers with ReLU after each (after the last one only if asked)."""
    layers = []
    for i in range(1, len(sizes)):
        layers.append(dense(sizes[i - 1], sizes[i]))
        if i < len(sizes) - 1 or activate_last:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


class VAE(torch.nn.Module):
    """models/vae.c defaults: latent 32, encoder 256,128, decoder 128,256, ReLU, Bernoulli."""

    def __init__(self, latent=32, encoder=(256, 128), decoder=(128, 256)):
        super().__init__()
        self.latent = latent
        self.enc = mlp([D, *encoder], activate_last=True)
        self.mu = dense(encoder[-1], latent)
        self.log_var = dense(encoder[-1], latent)
        self.dec = mlp([latent, *decoder, D], activate_last=False)

    def encode(self, x):
        h = self.enc(x)
        return self.mu(h), self.log_var(h)

    @staticmethod
    def recon_nll(x, logits):
        return (F.softplus(logits) - x * logits).sum(-1)

    def neg_elbo(self, x):
        mu, log_var = self.encode(x)
        z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
        kl = 0.5 * (mu.square() + log_var.exp() - 1 - log_var).sum(-1)
        return self.recon_nll(x, self.dec(z)) + kl

    def iwae(self, x, k=100):
        mu, log_var = self.encode(x)
        eps = torch.randn(k, *mu.shape)
        z = mu + torch.exp(0.5 * log_var) * eps
        # log p(z) - log q(z | x): the 2 pi terms cancel, (z - mu)^2 / var = eps^2.
        prior_ratio = 0.5 * (eps.square().sum(-1) + log_var.sum(-1) - z.square().sum(-1))
        log_w = prior_ratio - self.recon_nll(x, self.dec(z))
        return math.log(k) - torch.logsumexp(log_w, 0)

    def loss(self, x):
        return self.neg_elbo(x).mean()

    def figures(self, x):
        return {"neg_elbo": self.neg_elbo(x).mean().item(), "iwae_nll": self.iwae(x).mean().item()}


class RealNVP(torch.nn.Module):
    """models/realnvp.c with digits' defaults: 4 couplings, hidden [256] ReLU, checkerboard
    masks on the 8x8 grid alternating with the complement, s = tanh(raw), zero heads,
    17-level dequantisation, logit pre-transform with alpha 0.05."""

    def __init__(self, couplings=4, hidden=256, alpha=0.05):
        super().__init__()
        self.alpha = alpha
        masks = []
        for i in range(couplings):
            m = [float((((j // 8) + (j % 8)) % 2 == 0) == (i % 2 == 0)) for j in range(D)]
            masks.append(m)
        self.register_buffer("masks", torch.tensor(masks))
        self.nets = torch.nn.ModuleList(mlp([D, hidden], activate_last=True) for _ in range(couplings))
        self.s = torch.nn.ModuleList(dense(hidden, D, zero=True) for _ in range(couplings))
        self.t = torch.nn.ModuleList(dense(hidden, D, zero=True) for _ in range(couplings))

    def log_density(self, v):
        a = self.alpha
        p = a + (1 - 2 * a) * v
        log_p, log_q = torch.log(p), torch.log(1 - p)
        y = log_p - log_q
        ld = -(log_p + log_q).sum(1) + D * math.log(1 - 2 * a)
        for i in range(len(self.nets)):
            m = self.masks[i]
            h = self.nets[i](y * m)
            s = (1 - m) * torch.tanh(self.s[i](h))
            t = (1 - m) * self.t[i](h)
            y = y * torch.exp(s) + t
            ld = ld + s.sum(1)
        return -0.5 * y.square().sum(1) - 0.5 * D * math.log(2 * math.pi) + ld

    def log_prob(self, x):
        v = (x * (LEVELS - 1) + torch.rand_like(x)) / LEVELS
        return self.log_density(v) - D * math.log(LEVELS)

    def loss(self, x):
        return -self.log_prob(x).mean()

    def figures(self, x):
        nll = -self.log_prob(x).mean().item()
        return {"nll": nll, "bits_per_dim": nll / (D * math.log(2))}


class Block(torch.nn.Module):
    """models/vqvae_prior.c's pre-LayerNorm causal block: h + attn(LN(h)), h + MLP(LN(h)),
    the MLP 4x wide with exact GELU; attention q, k, v, o dense layers (frontend/nn.c)."""

    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = torch.nn.LayerNorm(width, eps=1e-5), torch.nn.LayerNorm(width, eps=1e-5)
        self.q, self.k, self.v, self.o = (dense(width, width) for _ in range(4))
        self.fc1, self.fc2 = dense(width, 4 * width), dense(4 * width, width)

    def attention(self, x):
        b, t, w = x.shape
        split = lambda y: y.view(b, t, self.heads, w // self.heads).transpose(1, 2)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        s = q @ k.transpose(-1, -2) / math.sqrt(w // self.heads)
        s = s.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
        y = torch.softmax(s, -1) @ v
        return self.o(y.transpose(1, 2).reshape(b, t, w))

    def forward(self, h):
        h = h + self.attention(self.ln1(h))
        return h + self.fc2(F.gelu(self.fc1(self.ln2(h))))


class VQVAE(torch.nn.Module):
    """models/vqvae.c defaults: G = 4 codes of E = 16 per image, K = 64, encoder 256,128,
    decoder 128,256, ReLU, Bernoulli decoder, commitment 0.25, codebook by its loss term
    (U(-1/K, 1/K) init); the prior a causal transformer (width 64, 2 blocks, 4 heads,
    N(0, 0.02) token and position tables, final LayerNorm and a dense head). Two steps per
    iteration, each with its own batch and its own Adam: the autoencoder and codebook,
    then the prior on the codes of the (then frozen) encoder."""

    def __init__(self, codes=4, k=64, e=16, width=64, layers=2, heads=4):
        super().__init__()
        self.g, self.k, self.e = codes, k, e
        self.enc = mlp([D, 256, 128, codes * e], activate_last=False)
        self.dec = mlp([codes * e, 128, 256, D], activate_last=False)
        self.codebook = torch.nn.Parameter(torch.empty(k, e).uniform_(-1.0 / k, 1.0 / k))
        self.tok = torch.nn.Parameter(torch.randn(k + 1, width) * 0.02)
        self.pos = torch.nn.Parameter(torch.randn(codes, width) * 0.02)
        self.blocks = torch.nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.ln = torch.nn.LayerNorm(width, eps=1e-5)
        self.out = dense(width, k)

    def autoencoder_params(self):
        return list(self.enc.parameters()) + list(self.dec.parameters()) + [self.codebook]

    def prior_params(self):
        return [self.tok, self.pos, *self.blocks.parameters(), *self.ln.parameters(), *self.out.parameters()]

    def quantize(self, x):
        z_e = self.enc(x).view(-1, self.g, self.e)
        dist = (z_e.unsqueeze(2) - self.codebook).square().sum(-1)  # [B, G, K]
        idx = dist.argmin(-1)
        return z_e, idx, self.codebook[idx]

    def loss(self, x):
        z_e, _, z_q = self.quantize(x)
        logits = self.dec((z_e + (z_q - z_e).detach()).flatten(1))
        recon = (F.softplus(logits) - x * logits).sum(-1)
        commit = (z_e - z_q.detach()).square().sum((1, 2))
        book = (z_e.detach() - z_q).square().sum((1, 2))
        return (recon + 0.25 * commit + book).mean()

    def prior_nll(self, idx):
        start = torch.full((idx.shape[0], 1), self.k, dtype=torch.long)
        h = self.tok[torch.cat([start, idx[:, :-1]], 1)] + self.pos
        for b in self.blocks:
            h = b(h)
        logp = F.log_softmax(self.out(self.ln(h)), -1)
        return -logp.gather(-1, idx.unsqueeze(-1)).squeeze(-1).sum(-1)

    def prior_loss(self, x):
        with torch.no_grad():
            idx = self.quantize(x)[1]
        return self.prior_nll(idx).mean()

    def figures(self, x):
        _, idx, z_q = self.quantize(x)
        mse = (x - torch.sigmoid(self.dec(z_q.flatten(1)))).square().mean(-1).mean().item()
        count = torch.bincount(idx.flatten(), minlength=self.k).double()
        p = count[count > 0] / count.sum()
        return {
            "recon_mse": mse,
            "prior_nll": self.prior_nll(idx).mean().item(),
            "codes_used": float((count > 0).sum()),
            "perplexity": math.exp(-(p * p.log()).sum().item()),
        }


class LatentDenoiser(torch.nn.Module):
    """models/denoiser.c with a one-hot class condition (obs_size = classes)."""

    def __init__(self, d, classes, hidden=128, layers=2, expansion=4, time_scale=1000.0, max_period=10000.0):
        super().__init__()
        self.hidden, self.time_scale = hidden, time_scale
        half = hidden // 2
        self.register_buffer("freqs", torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64) / half).float())
        self.cond = dense(classes + 1, hidden)
        self.inp = dense(d + 2 * hidden, hidden)
        self.blocks = torch.nn.ModuleList()
        for _ in range(layers):
            ln = torch.nn.LayerNorm(hidden, eps=1e-5)
            self.blocks.append(torch.nn.ModuleList([ln, dense(hidden, expansion * hidden), dense(expansion * hidden, hidden)]))
        self.out = dense(hidden, d, zero=True)

    def forward(self, x, t, onehot, keep):
        args = (t * self.time_scale)[:, None] * self.freqs[None, :]
        temb = torch.cat([torch.sin(args), torch.cos(args)], 1)
        c = self.cond(torch.cat([onehot * keep, keep], 1))
        h = F.silu(self.inp(torch.cat([x, temb, c], 1)))
        for ln, fc1, fc2 in self.blocks:
            h = h + fc2(F.silu(fc1(ln(h))))
        return self.out(h)


def scorer_lines(a, args):
    """bench/score_samples ARGS (edifice eval's own classifier and figures, so both sides are
    judged by the same code): its "name value" lines, or None (the error printed)."""
    import subprocess

    r = subprocess.run([a.scorer, *args], capture_output=True, text=True)
    if r.returncode:
        print(f"learning.py: {a.scorer}: {r.stderr.strip()}", file=sys.stderr)
        return None
    return [line.split() for line in r.stdout.splitlines()]


def sample_dir(a, model):
    """Where the samples go: --samples, else a temporary directory."""
    import tempfile

    return a.samples or tempfile.mkdtemp(prefix=f"learning-{model}-")


def train_steps(loss_fn, params, steps, a, train, gen, labels=None):
    """The trainer's loop: Adam, the cosine schedule, batches drawn with replacement."""
    opt = torch.optim.Adam(params, lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    for t in range(steps):
        for group in opt.param_groups:
            group["lr"] = a.lr * lr_factor(t, steps)
        idx = torch.randint(0, train.shape[0], (a.batch,), generator=gen)
        loss = loss_fn(train[idx]) if labels is None else loss_fn(train[idx], labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return loss.item()


def latent_diffusion(a):
    """The latent_diffusion twin (see the module's doc)."""
    train, test, ytrain, ytest = load_digits(labels=True)
    classes, drop = 10, 0.1
    gen = torch.Generator().manual_seed(a.seed + 1)
    vae = VAE(latent=8, encoder=(128,), decoder=(128,))
    start = time.perf_counter()
    train_steps(vae.loss, list(vae.parameters()), a.vae_steps, a, train, gen)
    print(f"vae_seconds {time.perf_counter() - start:.3f}")
    with torch.no_grad():
        mu = vae.encode(train)[0]
        scale = 1.0 / mu.double().std(unbiased=False).item()
    net = LatentDenoiser(8, classes)

    def loss_fn(x, y):
        with torch.no_grad():
            z1 = vae.encode(x)[0] * scale
        t = torch.rand(x.shape[0], 1)
        z0 = torch.randn_like(z1)
        keep = 1 - torch.bernoulli(torch.full((x.shape[0], 1), drop))
        u = z1 - z0
        v = net(z0 + t * u, t[:, 0], F.one_hot(y, classes).float(), keep)
        return (v - u).square().mean()

    start = time.perf_counter()
    loss = train_steps(loss_fn, list(net.parameters()), a.steps, a, train, gen, ytrain)
    print(f"train_seconds {time.perf_counter() - start:.3f}")
    print(f"final_loss {loss:.6f}")
    print(f"scale {scale:.6f}")
    n, k = test.shape[0], 20
    with torch.no_grad():
        onehot, keep = F.one_hot(ytest, classes).float(), torch.ones(n, 1)
        z = torch.randn(n, 8)
        for i in range(k):
            z = z + net(z, torch.full((n,), i / k), onehot, keep) / k
        x = torch.sigmoid(vae.dec(z / scale)).clamp(0, 1)
    out_dir = sample_dir(a, "latent_diffusion")
    path = os.path.join(out_dir, f"torch-latent_diffusion-s{a.seed}.npy")
    labels_path = os.path.join(out_dir, f"torch-latent_diffusion-s{a.seed}-labels.npy")
    np.save(path, x.view(-1, 1, 8, 8).numpy().astype(np.float32))
    np.save(labels_path, ytest.numpy().astype(np.int32))
    if not a.scorer:
        return 0
    lines = scorer_lines(a, ["latent_diffusion", "digits", str(a.seed), path, labels_path])
    if lines is None:
        return 1
    for key, value in lines:
        if key in ("frechet_distance", "classes_hit", "label_accuracy"):
            print(f"{key} {value}")
    return 0



# ---- DiT on the digits (models/dit.c, frontend/dit_blocks.c) --------------------------------


def load_digit_labels():
    path = os.environ.get("EDIFICE_DIGITS", os.path.join(ROOT, "data", "digits.csv.gz"))
    with gzip.open(path, "rt") as f:
        a = np.loadtxt(f, delimiter=",", dtype=np.float32)
    y = torch.from_numpy(a[:, D].astype(np.int64))
    return y[:TRAIN_ROWS].contiguous(), y[TRAIN_ROWS:].contiguous()


def pos_embed_2d(gh, gw, dim):
    """frontend/dit_blocks.c ed_pos_embed_2d: per token [sin(row w), cos(row w), sin(col w),
    cos(col w)], w_i = 10000^(-i / (dim / 4))."""
    q = dim // 4
    w = torch.tensor([10000.0 ** (-i / q) for i in range(q)], dtype=torch.float64)
    k = torch.arange(gh * gw)
    row, col = (k // gw).double().unsqueeze(1) * w, (k % gw).double().unsqueeze(1) * w
    return torch.cat([row.sin(), row.cos(), col.sin(), col.cos()], 1).float()


def timestep_embedding(t, dim, max_period=10000.0):
    """frontend/nn.c ed_timestep_embedding: [sin(t f), cos(t f)], f_i = exp(-ln(P) i / half)."""
    half = dim // 2
    f = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64) / half).float()
    a = t.unsqueeze(1) * f
    return torch.cat([a.sin(), a.cos()], 1)


def zero_dense(n_in, n_out):
    return dense(n_in, n_out, zero=True)


class DiTBlock(torch.nn.Module):
    """ed_dit_block: adaLN-Zero (shift, scale, gate for attention and MLP from one
    zero-initialised dense on silu(c)), LayerNorm eps 1e-6 without affine, q/k/v/o dense
    attention, MLP with tanh-approximated GELU."""

    def __init__(self, d, heads, mlp_hidden):
        super().__init__()
        self.heads = heads
        self.ada = zero_dense(d, 6 * d)
        self.q, self.k, self.v, self.o = (dense(d, d) for _ in range(4))
        self.fc1, self.fc2 = dense(d, mlp_hidden), dense(mlp_hidden, d)

    def attention(self, x):
        b, t, w = x.shape
        split = lambda y: y.view(b, t, self.heads, w // self.heads).transpose(1, 2)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(w // self.heads), -1)
        return self.o((p @ v).transpose(1, 2).reshape(b, t, w))

    def forward(self, h, sc):
        d = h.shape[-1]
        m = self.ada(sc).unsqueeze(1).split(d, -1)
        ln = lambda x: F.layer_norm(x, (d,), eps=1e-6)
        h = h + m[2] * self.attention(ln(h) * (1 + m[1]) + m[0])
        return h + m[5] * self.fc2(F.gelu(self.fc1(ln(h) * (1 + m[4]) + m[3]), approximate="tanh"))


class DiT(torch.nn.Module):
    """models/dit.c with the flow-matching objective: patchify, dense patch embedding plus
    fixed 2-D sin-cos positions, c = time embedder(1000 t) + label table[y] (the last row
    the null class, N(0, 0.02)), adaLN-Zero blocks on silu(c), the adaptive final layer
    (zero), unpatchify. Velocity on x_t = x0 + t (x1 - x0), x0 noise, x1 the data in
    [-1, 1]; labels dropped to the null class with probability cond_dropout."""

    def __init__(self, hidden=128, depth=4, heads=4, mlp_ratio=4, patch=2, size=8, classes=10, cond_dropout=0.1):
        super().__init__()
        self.p, self.size, self.classes, self.cond_dropout = patch, size, classes, cond_dropout
        g = size // patch
        self.patch = dense(patch * patch, hidden)
        self.register_buffer("pos", pos_embed_2d(g, g, hidden))
        self.t0, self.t1 = dense(256, hidden), dense(hidden, hidden)
        self.table = torch.nn.Parameter(torch.randn(classes + 1, hidden) * 0.02)
        self.blocks = torch.nn.ModuleList(DiTBlock(hidden, heads, mlp_ratio * hidden) for _ in range(depth))
        self.final_ada = zero_dense(hidden, 2 * hidden)
        self.final = zero_dense(hidden, patch * patch)

    def forward(self, x, t, y):
        b, p, g = x.shape[0], self.p, self.size // self.p
        tok = x.view(b, 1, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(b, g * g, p * p)
        h = self.patch(tok) + self.pos
        c = self.t1(F.silu(self.t0(timestep_embedding(t * 1000.0, 256)))) + self.table[y]
        sc = F.silu(c)
        for blk in self.blocks:
            h = blk(h, sc)
        d = h.shape[-1]
        shift, scale = self.final_ada(sc).unsqueeze(1).split(d, -1)
        out = self.final(F.layer_norm(h, (d,), eps=1e-6) * (1 + scale) + shift)
        return out.view(b, g, g, 1, p, p).permute(0, 3, 1, 4, 2, 5).reshape(b, 1, self.size, self.size)

    def image_loss(self, x1, y, dropout):
        b = x1.shape[0]
        if dropout > 0:
            y = torch.where(torch.rand(b) < dropout, torch.full_like(y, self.classes), y)
        t = torch.rand(b)
        x0 = torch.randn_like(x1)
        u = x1 - x0
        xt = x0 + t.view(b, 1, 1, 1) * u
        return (self(xt, t, y) - u).square().mean((1, 2, 3))

    @torch.no_grad()
    def sample(self, y, guidance=1.0, steps=50):
        """Euler on t = 0 -> 1 in `steps` equal steps, guidance null + s (cond - null);
        pixels back to [0, 1], clamped."""
        b = y.shape[0]
        x = torch.randn(b, 1, self.size, self.size)
        null = torch.full_like(y, self.classes)
        for k in range(steps):
            t = torch.full((b,), k / steps)
            v = self(x, t, y)
            if guidance != 1:
                vn = self(x, t, null)
                v = vn + guidance * (v - vn)
            x = x + v / steps
        return ((x + 1) * 0.5).clamp(0, 1)


def lr_factor(t, steps):
    """frontend/optim.c's cosine schedule with warmup_steps 1, min_ratio 0.01."""
    warm = min(1.0, (t + 1) / 1.0)
    p = min(max((t - 1) / (steps - 1), 0.0), 1.0)
    return warm * (0.01 + 0.99 * 0.5 * (math.cos(math.pi * p) + 1))



def dit_figures(model, a, test, test_y):
    """denoise_mse on the test digits (labels kept), then samples drawn for the test labels
    in order, unguided and at guidance 2, judged by bench/score_samples (edifice eval's
    classifier and figures) when --scorer is given."""
    model.eval()
    x = test.view(-1, 1, 8, 8) * 2 - 1
    with torch.no_grad():
        print(f"denoise_mse {model.image_loss(x, test_y, 0.0).mean().item():.6f}")
    out_dir = sample_dir(a, "dit")
    labels_path = os.path.join(out_dir, f"torch-dit-s{a.seed}-labels.npy")
    np.save(labels_path, test_y.numpy().astype(np.int32))
    for name, g in (("unguided", 1.0), ("guided", a.guidance)):
        path = os.path.join(out_dir, f"torch-dit-s{a.seed}-{name}.npy")
        np.save(path, model.sample(test_y, g, a.sample_steps).numpy().astype(np.float32))
        if not a.scorer:
            continue
        lines = scorer_lines(a, ["dit", "digits", str(a.seed), path, labels_path])
        if lines is None:
            return 1
        for key, value in lines:
            if key in ("label_accuracy", "frechet_distance"):
                print(f"{key}_{name} {value}")
    return 0


# ---- score SDE on moons (models/score_sde.c, models/denoiser.c, models/samplers.c) -------


class Denoiser(torch.nn.Module):
    """models/denoiser.c, unconditional: [x, time features] -> dense(hidden) -> silu, then
    `layers` pre-LayerNorm residual blocks h + fc2(silu(fc1(LN(h)))), then a zero output
    layer. Time features: Gaussian Fourier [sin(2 pi t W), cos(2 pi t W)], W ~ N(0,
    scale^2) [hidden / 2], fixed."""

    def __init__(self, d, hidden, layers, expansion=4, fourier_scale=16.0):
        super().__init__()
        self.register_buffer("w", torch.randn(hidden // 2) * fourier_scale)
        self.inp = dense(d + hidden, hidden)
        self.lns = torch.nn.ModuleList(torch.nn.LayerNorm(hidden, eps=1e-5) for _ in range(layers))
        self.fc1 = torch.nn.ModuleList(dense(hidden, expansion * hidden) for _ in range(layers))
        self.fc2 = torch.nn.ModuleList(dense(expansion * hidden, hidden) for _ in range(layers))
        self.out = dense(hidden, d, zero=True)

    def forward(self, x, t):
        a = 2 * math.pi * t.unsqueeze(1) * self.w
        h = F.silu(self.inp(torch.cat([x, a.sin(), a.cos()], 1)))
        for ln, f1, f2 in zip(self.lns, self.fc1, self.fc2):
            h = h + f2(F.silu(f1(ln(h))))
        return self.out(h)


class ScoreSDE(torch.nn.Module):
    """models/score_sde.c on 2-D data: eps prediction (score = -eps / sigma), denoising score
    matching with lambda = sigma^2 (the eps MSE), t ~ U(1e-5, 1); VP beta 0.1..20, VE sigma
    0.01..50 with the net fed x / sqrt(1 + sigma^2)."""

    def __init__(self, sde="vp", hidden=256, layers=4, d=2):
        super().__init__()
        self.sde = sde
        self.net = Denoiser(d, hidden, layers)
        self.b0, self.b1, self.s0, self.s1 = 0.1, 20.0, 0.01, 50.0

    def level(self, t):
        """(sigma, alpha, f, g2) of the process at t (a tensor or a float)."""
        t = torch.as_tensor(t, dtype=torch.float64)
        if self.sde == "ve":
            lr = math.log(self.s1 / self.s0)
            sigma = self.s0 * torch.exp(lr * t)
            return sigma, torch.ones_like(t), torch.zeros_like(t), 2 * sigma * sigma * lr
        beta = self.b0 + t * (self.b1 - self.b0)
        la = -0.25 * t * t * (self.b1 - self.b0) - 0.5 * t * self.b0
        return torch.sqrt(-torch.expm1(2 * la)), torch.exp(la), -0.5 * beta, beta

    def eps(self, x, t):
        if self.sde == "ve":
            x = x * torch.rsqrt(self.level(t)[0].float() ** 2 + 1).view(-1, 1)
        return self.net(x, t)

    def loss(self, x0):
        b = x0.shape[0]
        t = torch.rand(b) * (1 - 1e-5) + 1e-5
        z = torch.randn_like(x0)
        sigma, alpha, _, _ = self.level(t)
        xt = alpha.float().view(-1, 1) * x0 + sigma.float().view(-1, 1) * z
        return (self.eps(xt, t) - z).square().mean()

    @torch.no_grad()
    def sample_pc(self, n, steps=200, snr=0.16, t_eps=1e-3):
        """models/samplers.c ed_sample_pc: from t = 1 to t_eps in `steps` equal steps, each a
        Langevin corrector step then an Euler-Maruyama predictor step at the step's start
        time (no noise on the last one)."""
        prior = float(self.level(1.0)[0]) if self.sde == "ve" else 1.0
        x = torch.randn(n, 2) * prior
        for k in range(steps):
            ta = 1 + (t_eps - 1) * k / steps
            tb = t_eps if k + 1 == steps else 1 + (t_eps - 1) * (k + 1) / steps
            h = tb - ta
            sigma, _, f, g2 = (float(v) for v in self.level(ta))
            t = torch.full((n,), ta)
            score = -self.eps(x, t) / sigma
            z = torch.randn_like(x)
            ratio = snr * z.norm(dim=1).mean() / score.norm(dim=1).mean()
            e = 2 * (1 - g2 * -h if self.sde == "vp" else 1.0) * ratio * ratio
            x = x + e * score + torch.sqrt(2 * e) * z
            out = self.eps(x, t)
            x = x + h * (f * x + g2 / sigma * out)
            if k + 1 < steps:
                x = x + math.sqrt(g2 * -h) * torch.randn_like(x)
        return x


def score_sde_figures(model, a):
    """10,000 samples by the predictor-corrector sampler, scored by bench/score_samples
    (edifice eval's sliced Wasserstein against fresh moons, and its floor)."""
    model.eval()
    path = os.path.join(sample_dir(a, "score_sde"), f"torch-score_sde_{model.sde}-s{a.seed}.npy")
    np.save(path, model.sample_pc(10000).numpy().astype(np.float32))
    if not a.scorer:
        return 0
    lines = scorer_lines(a, ["score_sde", "moons", str(a.seed), path])
    if lines is None:
        return 1
    for key, value in lines:
        print(f"{key} {value}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", choices=["vae", "realnvp", "vqvae", "latent_diffusion", "dit", "score_sde_vp", "score_sde_ve"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--vae-steps", type=int, default=1000, help="latent_diffusion: the VAE's steps")
    # dit: the network (models/dit.c's options), sampling, and the scorer of its samples
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--layers", type=int, default=4, help="score_sde: residual blocks")
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--patch", type=int, default=2)
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--sample-steps", type=int, default=50)
    ap.add_argument("--samples", help="directory for the samples scored (.npy; default a temporary one)")
    ap.add_argument("--scorer", help="bench/score_samples binary (BUILD/score_samples)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    if a.model == "latent_diffusion":
        return latent_diffusion(a)
    train, test = load_digits()
    if a.model.startswith("score_sde"):
        from workloads import moons

        train = torch.tensor(moons(10000, seed=a.seed), dtype=torch.float32)
        model = ScoreSDE(a.model[-2:], hidden=a.hidden, layers=a.layers)
        loss_fn = lambda idx: model.loss(train[idx])
    elif a.model == "dit":
        train_y, test_y = load_digit_labels()
        model = DiT(hidden=a.hidden, depth=a.depth, heads=a.heads, patch=a.patch)
        images = train.view(-1, 1, 8, 8) * 2 - 1
        loss_fn = lambda idx: model.image_loss(images[idx], train_y[idx], model.cond_dropout).mean()
    else:
        model = {"vae": VAE, "realnvp": RealNVP, "vqvae": VQVAE}[a.model]()
        loss_fn = lambda idx: model.loss(train[idx])
    # One (loss, Adam) per training step, run in order every iteration on its own batch.
    if a.model == "vqvae":
        steps = [(lambda idx: model.loss(train[idx]), model.autoencoder_params()),
                 (lambda idx: model.prior_loss(train[idx]), model.prior_params())]
    else:
        steps = [(loss_fn, list(model.parameters()))]
    opts = [torch.optim.Adam(params, lr=a.lr, betas=(0.9, 0.999), eps=1e-8) for _, params in steps]
    gen = torch.Generator().manual_seed(a.seed + 1)

    start = time.perf_counter()
    for t in range(a.steps):
        for (loss_fn, _), opt in zip(steps, opts):
            for group in opt.param_groups:
                group["lr"] = a.lr * lr_factor(t, a.steps)
            idx = torch.randint(0, train.shape[0], (a.batch,), generator=gen)
            loss = loss_fn(idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if not math.isfinite(loss.item()):
                print(f"learning.py: the loss is {loss.item()} at step {t + 1}", file=sys.stderr)
                return 1
    seconds = time.perf_counter() - start
    print(f"train_seconds {seconds:.3f}")
    print(f"final_loss {loss.item():.6f}")
    if a.model == "dit":
        return dit_figures(model, a, test, test_y)
    if a.model.startswith("score_sde"):
        return score_sde_figures(model, a)
    with torch.no_grad():
        for name, value in model.figures(test).items():
            print(f"{name} {value:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
