#!/usr/bin/python3
"""PyTorch eager twins of one training iteration of `edifice train vae --arch conv` and
`edifice train gan --arch conv` on Fashion-MNIST (bench/conv_gen_step.c times edifice's).
Same networks as models/vae.c and models/gan.c at their defaults, channels 32,64:
  - conv VAE: x [B,1,28,28] -> Conv2d(1,32,4,2,1) ReLU -> Conv2d(32,64,4,2,1) ReLU ->
    flatten 3136 -> Linear mu(32), Linear log_var(32); z = mu + exp(log_var/2) eps;
    Linear(32,3136) ReLU -> [64,7,7] -> ConvTranspose2d(64,32,4,2,1) ReLU ->
    ConvTranspose2d(32,1,4,2,1) logits; loss mean over the batch of BCE-with-logits
    summed over pixels + KL; Adam lr 1e-3; batch 256.
  - DCGAN: bench/torch/workloads.py's DCGAN (W10's networks: channels 32,64, no dropout in
    D, as `gan --arch conv` defaults); the disc step then the gen step (fresh z for each,
    as edifice's two programs; D frozen in the gen step), non-saturating loss,
    Adam(2e-4, betas 0.5, 0.999); batch 64.
The data are random [0, 1] pixels of the right shape (the timing does not depend on
them; edifice draws real Fashion-MNIST batches, a gather it pays and this does not).
Prints the wall-clock median and the process CPU seconds per iteration.

Usage: convgen.py vae|gan [--threads T] [--repeats R] [--steps S]
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads  # noqa: E402


def vae_nets():
    enc = nn.Sequential(nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(), nn.Flatten())
    heads = nn.Linear(3136, 64)  # mu and log_var as one matmul split in two: the same FLOPs
    dec = nn.Sequential(nn.Linear(32, 3136), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
                        nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, 1, 4, 2, 1))
    return nn.ModuleList([enc, heads, dec])


def vae_step(nets, opt, x):
    enc, heads, dec = nets
    mu, log_var = heads(enc(x)).chunk(2, dim=1)
    z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
    logits = dec(z)
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=(1, 2, 3))
    kl = 0.5 * (mu.square() + log_var.exp() - 1 - log_var).sum(dim=1)
    loss = (rec + kl).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


def gan_step(model, opt_g, opt_d, x):
    b = x.shape[0]
    fake = model(torch.randn(b, 128))
    loss_d = F.softplus(-model.d(x)).mean() + F.softplus(model.d(fake.detach())).mean()
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    for p in model.d.parameters():  # the gen step trains G's params alone
        p.requires_grad_(False)
    loss_g = F.softplus(-model.d(model(torch.randn(b, 128)))).mean()
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    for p in model.d.parameters():
        p.requires_grad_(True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=["vae", "gan"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    batch = 256 if a.model == "vae" else 64
    x = torch.rand(batch, 1, 28, 28)
    if a.model == "vae":
        nets = vae_nets()
        opt = torch.optim.Adam(nets.parameters(), lr=1e-3)
        step = lambda: vae_step(nets, opt, x)
    else:
        model = workloads.DCGAN()
        opt_g = torch.optim.Adam(model.g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(model.d.parameters(), lr=2e-4, betas=(0.5, 0.999))
        x = x.view(batch, 784)  # the networks take flat images, as edifice's
        step = lambda: gan_step(model, opt_g, opt_d, x)
    step()  # warm-up
    walls = []
    cpu0 = time.process_time()
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        walls.append((time.perf_counter() - t0) / a.steps)
    cpu = (time.process_time() - cpu0) / (a.repeats * a.steps)
    print(f"torch {a.model} batch {batch} threads {a.threads}: wall {statistics.median(walls):.4f} s/iter "
          f"(median of {a.repeats} x {a.steps}; min {min(walls):.4f}), cpu {cpu:.4f} s/iter")


if __name__ == "__main__":
    main()
