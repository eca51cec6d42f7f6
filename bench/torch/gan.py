#!/usr/bin/python3
"""PyTorch twins of `edifice train gan|wgan_gp --data 8gaussians` at the CLI's defaults,
for the learning table (bench/RESULTS.md). Same architecture, init, losses, optimizer and
budget as models/gan.c with the trainer's defaults (models/trainer.c, frontend/optim.c):
  - data: 8 Gaussians at radius sqrt(2), std 0.1, 10,000 rows (models/toy_data.c; drawn
    here with numpy, so the rows differ, the distribution is the same); batches of 256
    drawn uniformly with replacement, a fresh batch for every step run;
  - G: z ~ N(0, I_128) -> [dense, BatchNorm1d (eps 1e-5, momentum 0.1), ReLU] x (256, 512)
    -> dense 2, no output activation (the data are not in [0, 1]); D: [dense, ReLU,
    dropout 0.3] x (512, 256) -> dense 1 (a logit); dense: glorot-uniform weights, zero
    biases, batch-norm gain 1, bias 0;
  - gan: D on softplus(-l(x)) + softplus(l(G(z))), G non-saturating softplus(-l(G(z))),
    Adam betas (0.5, 0.999), n_critic 1; wgan_gp: critic l(G(z)) - l(x) + 10 (|grad|_2 -
    1)^2 at random interpolates (create_graph), G -l(G(z)), Adam betas (0, 0.9), n_critic 5;
  - lr 1e-3 on both, the cosine schedule of frontend/optim.c over the 1000 iterations,
    each step's own Adam state and step counter.
Eval as `edifice eval` prints it for 8gaussians: 10,000 samples of G in eval mode; modes
hit (>= 1% of the samples within 3 std of the mode) and the share within 3 std of a mode.

Usage: gan.py gan|wgan_gp [--seed S] [--steps N] [--threads T]
Prints "name value" lines: train_seconds, modes_hit, near_share.
"""
import argparse
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

CENTERS = np.array([[math.sqrt(2) * math.cos(k * math.pi / 4), math.sqrt(2) * math.sin(k * math.pi / 4)]
                    for k in range(8)])
STD = 0.1


def eight_gaussians(n, rng):
    k = rng.integers(0, 8, n)
    return (CENTERS[k] + STD * rng.standard_normal((n, 2))).astype(np.float32)


def dense(n_in, n_out):
    lin = torch.nn.Linear(n_in, n_out)
    with torch.no_grad():
        lim = math.sqrt(6.0 / (n_in + n_out))
        lin.weight.uniform_(-lim, lim)
        lin.bias.zero_()
    return lin


def generator(latent=128, sizes=(256, 512), out=2):
    layers, n = [], latent
    for s in sizes:
        layers += [dense(n, s), torch.nn.BatchNorm1d(s, eps=1e-5, momentum=0.1), torch.nn.ReLU()]
        n = s
    layers.append(dense(n, out))
    return torch.nn.Sequential(*layers)


def discriminator(inp=2, sizes=(512, 256), dropout=0.3):
    layers, n = [], inp
    for s in sizes:
        layers += [dense(n, s), torch.nn.ReLU(), torch.nn.Dropout(dropout)]
        n = s
    layers.append(dense(n, 1))
    return torch.nn.Sequential(*layers)


def lr_factor(t, steps):
    """frontend/optim.c's cosine schedule with warmup_steps 1, min_ratio 0.01."""
    warm = min(1.0, t + 1)
    p = min(max((t - 1) / max(steps - 1, 1), 0.0), 1.0)
    return warm * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * p)))


def penalty(d, real, fake):
    e = torch.rand(real.shape[0], 1)
    mixed = (e * real + (1 - e) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(d(mixed).sum(), mixed, create_graph=True)
    norm = torch.sqrt(grad.square().sum(1) + 1e-12)
    return ((norm - 1) ** 2).mean()


def coverage(x):
    d2 = ((x[:, None, :] - CENTERS[None, :, :]) ** 2).sum(-1)
    nearest, dist2 = d2.argmin(1), d2.min(1)
    near = dist2 <= 9 * STD * STD
    counts = np.bincount(nearest[near], minlength=8)
    need = max(1, math.ceil(0.01 * len(x)))
    return int((counts >= need).sum()), float(near.mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=["gan", "wgan_gp"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--every", type=int, default=0, help="print the step's losses every K iterations")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    data = torch.from_numpy(eight_gaussians(10000, rng))
    g, d = generator(), discriminator()
    wgan = a.model == "wgan_gp"
    betas, n_critic = ((0.0, 0.9), 5) if wgan else ((0.5, 0.999), 1)
    opt_d = torch.optim.Adam(d.parameters(), lr=a.lr, betas=betas, eps=1e-8)
    opt_g = torch.optim.Adam(g.parameters(), lr=a.lr, betas=betas, eps=1e-8)
    t0 = time.time()
    for t in range(a.steps):
        for o in (opt_d, opt_g):
            for group in o.param_groups:
                group["lr"] = a.lr * lr_factor(t, a.steps)
        for _ in range(n_critic):
            real = data[torch.randint(0, len(data), (a.batch,))]
            fake = g(torch.randn(a.batch, 128))
            lr_, lf = d(real).squeeze(1), d(fake).squeeze(1)
            if wgan:
                loss = lf.mean() - lr_.mean() + 10 * penalty(d, real, fake)
            else:
                loss = F.softplus(-lr_).mean() + F.softplus(lf).mean()
            opt_d.zero_grad()
            loss.backward()
            opt_d.step()
        disc_loss = loss.item()
        lf = d(g(torch.randn(a.batch, 128))).squeeze(1)
        loss = -lf.mean() if wgan else F.softplus(-lf).mean()
        opt_g.zero_grad()
        loss.backward()
        opt_g.step()
        if a.every and (t + 1) % a.every == 0:
            print(f"step {t + 1} disc {disc_loss:.5f} gen {loss.item():.5f}", flush=True)
    train_s = time.time() - t0
    g.eval()
    with torch.no_grad():
        x = g(torch.randn(10000, 128)).numpy().astype(np.float64)
    hit, near = coverage(x)
    print(f"train_seconds {train_s:.1f}")
    print(f"modes_hit {hit}")
    print(f"near_share {near:.4f}")


if __name__ == "__main__":
    main()
