#!/usr/bin/python3
"""PyTorch twin of `edifice train consistency --data moons` (consistency training) at the
CLI's defaults on 2-D data, for the learning table (bench/RESULTS.md, bench/learning.sh).
Same network, init, parameterization, schedule, loss, target update, optimizer, budget
and sampler as models/consistency.c with the trainer's defaults (models/trainer.c,
frontend/optim.c):
  - data: 10,000 moons points drawn for the seed (bench/torch/workloads.py moons, the
    distribution of models/toy_data.c); batches of 256 drawn with replacement;
  - f(x, s) = c_skip(s) x + c_out(s) F(x / sqrt(s^2 + sd^2), log(s) / 4), c_skip = sd^2 /
    ((s - smin)^2 + sd^2), c_out = sd (s - smin) / sqrt(s^2 + sd^2); sigma 0.002..80,
    rho 7, sd 0.5;
  - F: models/denoiser.c, unconditional: [x, sinusoidal embedding of t * 10 (max period
    10000)] -> dense(hidden) -> silu, `layers` pre-LayerNorm residual blocks h + fc2(silu(
    fc1(LN(h)))) of expansion 4, a zero output layer; dense glorot-uniform, zero biases;
  - CT: N(k) = ceil(sqrt(k / K ((s1 + 1)^2 - s0^2) + s0^2) - 1) + 1 with K the run's steps,
    s0 2, s1 50, the ascending Karras grid of N(k) points, the level n drawn from iCT's
    discretized lognormal (P_mean -1.1, P_std 2; or uniform on 0..N-2), one z for both ends
    of the pair, lambda 1 / (sigma_{n+1} - sigma_n) (or 1), pseudo-Huber sqrt(|a - b|^2 + c^2) - c (c = 0.00054
    sqrt(2)) or the mean squared error, averaged over the batch; the target network an EMA
    of the online params updated after each Adam step with mu(k) = exp(s0 log(mu0) / N(k))
    (mu0 0: the online params themselves; the target starts as the online params);
  - Adam (0.9, 0.999, eps 1e-8), lr 1e-3, the cosine schedule down to lr / 100;
  - 64 wide with 2 blocks, 8000 steps (the CLI's defaults on 2-D data);
  - sampling with the online params: K steps over the first K points of the descending
    Karras grid of K + 1 points (one step: sigma_max alone), x = f(sigma_0 z, sigma_0),
    then x = f(x + sqrt(s^2 - smin^2) z', s).
Random streams differ from edifice's (philox); only the distributions match.
10,000 samples in one step and in two are written to --samples DIR and judged by
bench/score_samples (--scorer), edifice eval's sliced Wasserstein-1 and its floor.

Usage: consistency.py [--seed S] [--steps N] [--threads T] [--samples DIR] [--scorer BIN]
                      [--hidden H --layers L --time-scale T --s0 --s1 --mu0 --noise --weighting --loss]
Prints "name value" lines: train_seconds, final_loss, then swd, swd_floor, swd_ratio for
one step and swd_two, swd_floor_two, swd_ratio_two for two.
"""
import argparse
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from learning import dense, lr_factor, timestep_embedding  # noqa: E402
from workloads import moons  # noqa: E402

SIGMA_MIN, SIGMA_MAX, RHO, SIGMA_DATA = 0.002, 80.0, 7.0, 0.5


class Net(torch.nn.Module):
    """models/denoiser.c with sinusoidal time features of t * time_scale."""

    def __init__(self, d, hidden, layers, time_scale, expansion=4):
        super().__init__()
        self.hidden, self.time_scale = hidden, time_scale
        self.inp = dense(d + hidden, hidden)
        self.lns = torch.nn.ModuleList(torch.nn.LayerNorm(hidden, eps=1e-5) for _ in range(layers))
        self.fc1 = torch.nn.ModuleList(dense(hidden, expansion * hidden) for _ in range(layers))
        self.fc2 = torch.nn.ModuleList(dense(expansion * hidden, hidden) for _ in range(layers))
        self.out = dense(hidden, d, zero=True)

    def forward(self, x, t):
        h = F.silu(self.inp(torch.cat([x, timestep_embedding(t * self.time_scale, self.hidden)], 1)))
        for ln, f1, f2 in zip(self.lns, self.fc1, self.fc2):
            h = h + f2(F.silu(f1(ln(h))))
        return self.out(h)


def consistency_fn(net, x, s):
    """f(x, s) for s [B]: exactly x at sigma_min."""
    off = s - SIGMA_MIN
    norm = torch.sqrt(s * s + SIGMA_DATA ** 2)
    c_skip = SIGMA_DATA ** 2 / (off * off + SIGMA_DATA ** 2)
    c_out = SIGMA_DATA * off / norm
    return c_skip[:, None] * x + c_out[:, None] * net(x / norm[:, None], 0.25 * torch.log(s))


def karras(i, n):
    if i <= 0:
        return SIGMA_MIN
    if i >= n - 1:
        return SIGMA_MAX
    lo, hi = SIGMA_MIN ** (1 / RHO), SIGMA_MAX ** (1 / RHO)
    return (lo + i / (n - 1) * (hi - lo)) ** RHO


class Schedule:
    """N(k), mu(k) and each grid's sigmas and lognormal level CDF, in double as edifice's
    host tables."""

    def __init__(self, a, steps):
        self.a, self.steps = a, steps
        self.grids, self.cdfs = {}, {}

    def size(self, k):
        s0, s1 = self.a.s0, self.a.s1
        done = 1.0 if k >= self.steps else k / self.steps
        return int(math.ceil(math.sqrt(done * ((s1 + 1) ** 2 - s0 * s0) + s0 * s0) - 1)) + 1

    def mu(self, k):
        return math.exp(self.a.s0 * math.log(self.a.mu0) / self.size(k)) if self.a.mu0 > 0 else 0.0

    def grid(self, n):
        if n not in self.grids:
            self.grids[n] = torch.tensor([karras(i, n) for i in range(n)], dtype=torch.float64)
        return self.grids[n]

    def cdf(self, n):
        if n not in self.cdfs:
            pm, ps = -1.1, 2.0
            g = self.grid(n).numpy()
            w = [math.erf((math.log(g[j + 1]) - pm) / (math.sqrt(2) * ps))
                 - math.erf((math.log(g[j]) - pm) / (math.sqrt(2) * ps)) for j in range(n - 1)]
            self.cdfs[n] = torch.tensor(np.cumsum(w) / np.sum(w), dtype=torch.float32)
        return self.cdfs[n]

    def level(self, n, b):
        u = torch.rand(b)
        if self.a.noise == "lognormal":
            lv = (self.cdf(n)[None, :] < u[:, None]).sum(1)
        else:
            lv = (u * (n - 1)).long()
        return torch.clamp(lv, max=n - 2)


def ct_loss(net, target, x, sch, k, a):
    n = sch.size(k)
    lv = sch.level(n, x.shape[0])
    grid = sch.grid(n)
    s_lo, s_hi = grid[lv].float(), grid[lv + 1].float()
    z = torch.randn_like(x)
    online = consistency_fn(net, x + s_hi[:, None] * z, s_hi)
    with torch.no_grad():
        tgt = consistency_fn(target, x + s_lo[:, None] * z, s_lo)
    ss = (online - tgt).square().sum(1)
    if a.loss == "l2":
        per = ss / x.shape[1]
    else:
        c = 0.00054 * math.sqrt(x.shape[1])
        per = torch.sqrt(ss + c * c) - c
    if a.weighting == "inverse":
        per = per / (s_hi - s_lo)
    return per.mean()


@torch.no_grad()
def sample(net, n, steps):
    sigmas = [karras(steps - i, steps + 1) for i in range(steps)]
    x = torch.randn(n, 2) * sigmas[0]
    x = consistency_fn(net, x, torch.full((n,), sigmas[0]))
    for s in sigmas[1:]:
        x = x + math.sqrt(s * s - SIGMA_MIN ** 2) * torch.randn_like(x)
        x = consistency_fn(net, x, torch.full((n,), s))
    return x


def score(a, path, suffix):
    r = subprocess.run([a.scorer, "consistency", "moons", str(a.seed), path], capture_output=True, text=True)
    if r.returncode:
        print(f"consistency.py: {a.scorer}: {r.stderr.strip()}", file=sys.stderr)
        return 1
    for line in r.stdout.strip().splitlines():
        key, value = line.split()
        print(f"{key}{suffix} {value}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=8000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--time-scale", type=float, default=10.0)
    ap.add_argument("--s0", type=int, default=2)
    ap.add_argument("--s1", type=int, default=50)
    ap.add_argument("--mu0", type=float, default=0.0)
    ap.add_argument("--noise", choices=["uniform", "lognormal"], default="lognormal")
    ap.add_argument("--weighting", choices=["uniform", "inverse"], default="inverse")
    ap.add_argument("--loss", choices=["pseudo_huber", "l2"], default="pseudo_huber")
    ap.add_argument("--samples", help="directory for the samples (.npy; default a temporary one)")
    ap.add_argument("--scorer", help="bench/score_samples binary (BUILD/score_samples)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    train = torch.tensor(moons(10000, seed=a.seed), dtype=torch.float32)
    net = Net(2, a.hidden, a.layers, a.time_scale)
    target = Net(2, a.hidden, a.layers, a.time_scale)
    target.load_state_dict(net.state_dict())
    for p in target.parameters():
        p.requires_grad_(False)
    sch = Schedule(a, a.steps)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    gen = torch.Generator().manual_seed(a.seed + 1)

    start = time.perf_counter()
    for k in range(a.steps):
        for group in opt.param_groups:
            group["lr"] = a.lr * lr_factor(k, a.steps)
        idx = torch.randint(0, train.shape[0], (a.batch,), generator=gen)
        loss = ct_loss(net, target, train[idx], sch, k, a)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        mu = sch.mu(k)
        with torch.no_grad():
            for pt, po in zip(target.parameters(), net.parameters()):
                pt.mul_(mu).add_(po, alpha=1 - mu)
        if not math.isfinite(loss.item()):
            print(f"consistency.py: the loss is {loss.item()} at step {k + 1}", file=sys.stderr)
            return 1
    print(f"train_seconds {time.perf_counter() - start:.3f}")
    print(f"final_loss {loss.item():.6f}")
    net.eval()
    out_dir = a.samples or tempfile.mkdtemp(prefix="learning-cm-")
    for steps, suffix in ((1, ""), (2, "_two")):
        path = os.path.join(out_dir, f"torch-consistency-s{a.seed}-k{steps}.npy")
        np.save(path, sample(net, 10000, steps).numpy().astype(np.float32))
        if a.scorer and score(a, path, suffix):
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
