#!/usr/bin/python3
"""PyTorch twins of `edifice train gan|wgan_gp --data 8gaussians` and `edifice train cgan
--data digits` at the CLI's defaults, for the learning table (bench/RESULTS.md). Same
architecture, init, losses, optimizer and budget as models/gan.c with the trainer's
defaults (models/trainer.c, frontend/optim.c):
  - data: 8 Gaussians at radius sqrt(2), std 0.1, 10,000 rows (models/toy_data.c; drawn
    here with numpy, so the rows differ, the distribution is the same); batches of 256
    drawn uniformly with replacement, a fresh batch for every step run;
  - G: z ~ N(0, I_128) -> [dense, BatchNorm1d (eps 1e-5, momentum 0.1), ReLU] x (256, 512)
    -> dense 2, no output activation (the data are not in [0, 1]); D: [dense, ReLU,
    dropout 0.3] x (512, 256) -> dense 1 (a logit); dense: glorot-uniform weights, zero
    biases, batch-norm gain 1, bias 0;
  - gan: D on softplus(-l(x)) + softplus(l(G(z))), G non-saturating softplus(-l(G(z))),
    Adam betas (0.5, 0.999), n_critic 1; wgan_gp: critic l(G(z)) - l(x) + lambda (|grad|_2
    - 1)^2 at random interpolates (create_graph), G -l(G(z)), n_critic 5, with edifice's
    settings for 2-D data (the WGAN-GP paper's toy ones): lambda 0.1, Adam betas (0.5,
    0.9), no dropout in the critic, both networks (128, 128);
  - cgan: the gan above on the digits (data/digits.csv.gz, pixels / 16, the first 1,500
    rows), the one-hot label concatenated to z and to x, G's output a sigmoid (the
    pixels lie in [0, 1]); batches of 256 rows with their labels, drawn with replacement;
  - lr 1e-3 on both, the cosine schedule of frontend/optim.c over the run's iterations
    (--steps: pass the edifice model's default, `edifice models MODEL`), each step's own
    Adam state and step counter.
Eval as `edifice eval` prints it for 8gaussians: 10,000 samples of G in eval mode; modes
hit (>= 1% of the samples within 3 std of the mode) and the share within 3 std of a mode.
cgan: G in eval mode draws one sample per test digit (rows 1500.., their labels in
order, as `edifice eval` does) into --samples FILE.npy (f32 [297, 64]) and FILE's
labels into FILE-labels.npy (i32); `build/score_samples cgan digits SEED FILE.npy FILE-labels.npy`
judges them with edifice's own feature classifier (Frechet distance, label accuracy).

Usage: gan.py gan|wgan_gp|cgan [--seed S] [--steps N] [--threads T] [--samples FILE.npy]
Prints "name value" lines: train_seconds, and modes_hit, near_share (8gaussians).
"""
import argparse
import gzip
import math
import os
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


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_ROWS, CLASSES = 1500, 10


def load_digits():
    """(train x, train labels, test x, test labels): pixels / 16 as f32 [N, 64], labels i64."""
    path = os.environ.get("EDIFICE_DIGITS", os.path.join(ROOT, "data", "digits.csv.gz"))
    with gzip.open(path, "rt") as f:
        a = np.loadtxt(f, delimiter=",", dtype=np.float32)
    x, y = torch.from_numpy(a[:, :64] / 16.0), torch.from_numpy(a[:, 64].astype(np.int64))
    return x[:TRAIN_ROWS], y[:TRAIN_ROWS], x[TRAIN_ROWS:], y[TRAIN_ROWS:]


class Conditioned(torch.nn.Module):
    """net([x, one_hot(labels)]): the conditional model's input, as with_label in models/gan.c."""

    def __init__(self, net, classes):
        super().__init__()
        self.net, self.classes = net, classes

    def forward(self, x, labels=None):
        if self.classes:
            x = torch.cat([x, F.one_hot(labels, self.classes).float()], 1)
        return self.net(x)


def generator(latent=128, sizes=(256, 512), out=2, classes=0, sigmoid=False):
    layers, n = [], latent + classes
    for s in sizes:
        layers += [dense(n, s), torch.nn.BatchNorm1d(s, eps=1e-5, momentum=0.1), torch.nn.ReLU()]
        n = s
    layers.append(dense(n, out))
    if sigmoid:
        layers.append(torch.nn.Sigmoid())
    return Conditioned(torch.nn.Sequential(*layers), classes)


def discriminator(inp=2, sizes=(512, 256), dropout=0.3, classes=0):
    layers, n = [], inp + classes
    for s in sizes:
        layers += [dense(n, s), torch.nn.ReLU(), torch.nn.Dropout(dropout)]
        n = s
    layers.append(dense(n, 1))
    return Conditioned(torch.nn.Sequential(*layers), classes)


def lr_factor(t, steps):
    """frontend/optim.c's cosine schedule with warmup_steps 1, min_ratio 0.01."""
    warm = min(1.0, t + 1)
    p = min(max((t - 1) / max(steps - 1, 1), 0.0), 1.0)
    return warm * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * p)))


def penalty(d, real, fake, labels):
    e = torch.rand(real.shape[0], 1)
    mixed = (e * real + (1 - e) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(d(mixed, labels).sum(), mixed, create_graph=True)
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
    ap.add_argument("model", choices=["gan", "wgan_gp", "cgan"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--every", type=int, default=0, help="print the step's losses every K iterations")
    ap.add_argument("--samples", help="cgan: write the test samples to this .npy (labels beside it)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    cond = a.model == "cgan"
    if cond:
        data, data_labels, _, test_labels = load_digits()
        g = generator(out=64, classes=CLASSES, sigmoid=True)
        d = discriminator(inp=64, classes=CLASSES)
    else:
        data, data_labels = torch.from_numpy(eight_gaussians(10000, rng)), None
        if a.model == "wgan_gp":
            g, d = generator(sizes=(128, 128)), discriminator(sizes=(128, 128), dropout=0.0)
        else:
            g, d = generator(), discriminator()
    wgan = a.model == "wgan_gp"
    betas, n_critic, gp_lambda = ((0.5, 0.9), 5, 0.1) if wgan else ((0.5, 0.999), 1, 0.0)
    opt_d = torch.optim.Adam(d.parameters(), lr=a.lr, betas=betas, eps=1e-8)
    opt_g = torch.optim.Adam(g.parameters(), lr=a.lr, betas=betas, eps=1e-8)
    t0 = time.time()
    for t in range(a.steps):
        for o in (opt_d, opt_g):
            for group in o.param_groups:
                group["lr"] = a.lr * lr_factor(t, a.steps)
        for _ in range(n_critic):
            rows = torch.randint(0, len(data), (a.batch,))
            real, labels = data[rows], data_labels[rows] if cond else None
            fake = g(torch.randn(a.batch, 128), labels)
            lr_, lf = d(real, labels).squeeze(1), d(fake, labels).squeeze(1)
            if wgan:
                loss = lf.mean() - lr_.mean() + gp_lambda * penalty(d, real, fake, labels)
            else:
                loss = F.softplus(-lr_).mean() + F.softplus(lf).mean()
            opt_d.zero_grad()
            loss.backward()
            opt_d.step()
        disc_loss = loss.item()
        labels = data_labels[torch.randint(0, len(data), (a.batch,))] if cond else None
        lf = d(g(torch.randn(a.batch, 128), labels), labels).squeeze(1)
        loss = -lf.mean() if wgan else F.softplus(-lf).mean()
        opt_g.zero_grad()
        loss.backward()
        opt_g.step()
        if a.every and (t + 1) % a.every == 0:
            print(f"step {t + 1} disc {disc_loss:.5f} gen {loss.item():.5f}", flush=True)
    train_s = time.time() - t0
    g.eval()
    print(f"train_seconds {train_s:.1f}")
    if cond:
        with torch.no_grad():
            x = g(torch.randn(len(test_labels), 128), test_labels).numpy().astype(np.float32)
        if a.samples:
            np.save(a.samples, x)
            np.save(a.samples[:-4] + "-labels.npy", test_labels.numpy().astype(np.int32))
        return
    with torch.no_grad():
        x = g(torch.randn(10000, 128)).numpy().astype(np.float64)
    hit, near = coverage(x)
    print(f"modes_hit {hit}")
    print(f"near_share {near:.4f}")


if __name__ == "__main__":
    main()
