"""The bench/README.md workloads in PyTorch, defined exactly as the C ones in bench/w*.c.

Each training workload is a factory returning (model, step, batches): model is the
nn.Module TorchScript may compile, step(model, opt, batch) runs one training step
(forward, backward, optimizer) and returns the loss tensor, batches is the list of
input tensors the steps cycle through.
"""
import gzip
import math
import os
from typing import List

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def glorot(layer):
    """Glorot-uniform weights and zero biases, as ed_dense."""
    nn.init.xavier_uniform_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def timestep_embedding(t, dim: int, max_period: float = 10000.0):
    """concat(sin(t f), cos(t f)), f_i = exp(-ln(max_period) i / half): ed_timestep_embedding."""
    half = dim // 2
    f = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    a = t.float().unsqueeze(1) * f.unsqueeze(0)
    return torch.cat([torch.sin(a), torch.cos(a)], dim=1)


def ddpm_tables(steps=1000):
    betas = torch.linspace(1e-4, 0.02, steps, dtype=torch.float64)
    abar = torch.cumprod(1 - betas, 0)
    return abar.sqrt().float(), (1 - abar).sqrt().float()


def ddpm_noised(x0, s1, s2, steps=1000):
    """t ~ U{0..T-1}, eps ~ N(0, 1), x_t = sqrt(abar) x0 + sqrt(1 - abar) eps (bench_ddpm_noised)."""
    b = x0.shape[0]
    t = torch.randint(0, steps, (b,))
    eps = torch.randn_like(x0)
    col = (b,) + (1,) * (x0.dim() - 1)
    return s1[t].view(col) * x0 + s2[t].view(col) * eps, t, eps


def digits(rows):
    path = os.environ.get("EDIFICE_DIGITS") or os.path.join(ROOT, "data", "digits.csv.gz")
    with gzip.open(path, "rt") as f:
        a = np.loadtxt(f, delimiter=",", dtype=np.float32, max_rows=rows)
    return torch.from_numpy(a[:, :64] / 16.0)


# ---- W1 ddpm_mlp_2d ----------------------------------------------------------------


class W1Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.temb = glorot(nn.Linear(32, 128))
        self.l0 = glorot(nn.Linear(130, 256))
        self.l1 = glorot(nn.Linear(256, 256))
        self.l2 = glorot(nn.Linear(256, 256))
        self.l3 = glorot(nn.Linear(256, 2))

    def forward(self, xt, t):
        e = F.silu(self.temb(timestep_embedding(t, 32)))
        h = torch.cat([xt, e], dim=1)
        h = F.silu(self.l0(h))
        h = F.silu(self.l1(h))
        h = F.silu(self.l2(h))
        return self.l3(h)


def w1():
    n = 512
    i = np.arange(n)
    u = i * 0.618033988749895 - np.floor(i * 0.618033988749895)
    x = np.stack([np.where(i % 2 == 1, 1.0, -1.0) + 0.1 * np.cos(6.283 * u), 0.1 * np.sin(6.283 * u)], 1)
    s1, s2 = ddpm_tables()

    def step(model, opt, x0):
        xt, t, eps = ddpm_noised(x0, s1, s2)
        loss = F.mse_loss(model(xt, t), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    model = W1Net()
    return model, torch.optim.Adam(model.parameters(), lr=1e-3), step, [torch.tensor(x, dtype=torch.float32)]


# ---- W2 vae_digits ------------------------------------------------------------------


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.e0 = glorot(nn.Linear(64, 256))
        self.e1 = glorot(nn.Linear(256, 256))
        self.mu = glorot(nn.Linear(256, 16))
        self.logvar = glorot(nn.Linear(256, 16))
        self.d0 = glorot(nn.Linear(16, 256))
        self.d1 = glorot(nn.Linear(256, 256))
        self.d2 = glorot(nn.Linear(256, 64))

    def forward(self, x, eps):
        h = F.relu(self.e1(F.relu(self.e0(x))))
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.exp(0.5 * logvar) * eps
        logits = self.d2(F.relu(self.d1(F.relu(self.d0(z)))))
        return logits, mu, logvar


def w2():
    b = 128
    data = digits(b * 11)
    batches = [data[k * b:(k + 1) * b].contiguous() for k in range(11)]

    def step(model, opt, x):
        logits, mu, logvar = model(x, torch.randn(b, 16))
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        loss = (bce + kl) / b
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    model = VAE()
    return model, torch.optim.Adam(model.parameters(), lr=1e-3), step, batches


# ---- W3 dit_small --------------------------------------------------------------------


def modulate(x, shift, scale):
    return F.layer_norm(x, (x.shape[-1],), eps=1e-6) * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class Attention(nn.Module):
    """q, k, v, o projections with bias, like ed_self_attention."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (glorot(nn.Linear(d, d)) for _ in range(4))

    def forward(self, x):
        b, n, d = x.shape
        h = self.heads
        q = self.q(x).view(b, n, h, d // h).transpose(1, 2)
        k = self.k(x).view(b, n, h, d // h).transpose(1, 2)
        v = self.v(x).view(b, n, h, d // h).transpose(1, 2)
        p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // h), dim=-1)
        return self.o((p @ v).transpose(1, 2).reshape(b, n, d))


def zero_linear(i, o):
    layer = nn.Linear(i, o)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class DiTBlock(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.ada = zero_linear(d, 6 * d)
        self.attn = Attention(d, heads)
        self.fc1 = glorot(nn.Linear(d, 4 * d))
        self.fc2 = glorot(nn.Linear(4 * d, d))

    def forward(self, h, sc):
        m = self.ada(sc).chunk(6, dim=1)
        h = h + m[2].unsqueeze(1) * self.attn(modulate(h, m[0], m[1]))
        y = self.fc2(F.gelu(self.fc1(modulate(h, m[3], m[4])), approximate="tanh"))
        return h + m[5].unsqueeze(1) * y


class DiT(nn.Module):
    def __init__(self, d=128, blocks=4, heads=4):
        super().__init__()
        self.d = d
        self.patch = glorot(nn.Linear(4, d))
        self.pos = nn.Parameter(torch.randn(16, d) * 0.02)
        self.t0 = glorot(nn.Linear(d, d))
        self.t1 = glorot(nn.Linear(d, d))
        self.blocks = nn.ModuleList([DiTBlock(d, heads) for _ in range(blocks)])
        self.final_ada = zero_linear(d, 2 * d)
        self.final = zero_linear(d, 4)

    def forward(self, xt, t):
        h = self.patch(xt) + self.pos
        sc = F.silu(self.t1(F.silu(self.t0(timestep_embedding(t, self.d)))))
        for blk in self.blocks:
            h = blk(h, sc)
        m = self.final_ada(sc).chunk(2, dim=1)
        return self.final(modulate(h, m[0], m[1]))


def patchify(x):
    """[B, 64] row-major 8x8 -> [B, 16, 4]: token (pr, pc) holds pixels (2pr + dy, 2pc + dx)."""
    b = x.shape[0]
    return x.view(b, 4, 2, 4, 2).permute(0, 1, 3, 2, 4).reshape(b, 16, 4)


def w3(d=128, blocks=4):
    b = 64
    data = digits(b * 22) * 2 - 1
    batches = [patchify(data[k * b:(k + 1) * b]).contiguous() for k in range(22)]
    s1, s2 = ddpm_tables()

    def step(model, opt, x0):
        xt, t, eps = ddpm_noised(x0, s1, s2)
        loss = F.mse_loss(model(xt, t), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    model = DiT(d, blocks)
    return model, torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01), step, batches


def w3d():
    """W3 at the dit model's default size: width 256, 6 blocks, 4 heads, MLP ratio 4."""
    return w3(256, 6)


# ---- W5 realnvp_2d -------------------------------------------------------------------


def mlp_1_128_128_1():
    return nn.Sequential(glorot(nn.Linear(1, 128)), nn.ReLU(), glorot(nn.Linear(128, 128)), nn.ReLU(),
                         glorot(nn.Linear(128, 1)))


class Coupling(nn.Module):
    """Keeps coordinate `keep`, maps the other: y = x exp(tanh(S(kept))) + T(kept)."""

    def __init__(self, keep: int):
        super().__init__()
        self.keep = keep
        self.s = mlp_1_128_128_1()
        self.t = mlp_1_128_128_1()

    def forward(self, c0, c1, logdet):
        if self.keep == 0:
            s = torch.tanh(self.s(c0))
            c1 = c1 * torch.exp(s) + self.t(c0)
        else:
            s = torch.tanh(self.s(c1))
            c0 = c0 * torch.exp(s) + self.t(c1)
        return c0, c1, logdet + s


class RealNVP(nn.Module):
    def __init__(self, layers=8):
        super().__init__()
        self.layers = nn.ModuleList([Coupling(i % 2) for i in range(layers)])

    def forward(self, x):
        c0, c1 = x[:, 0:1], x[:, 1:2]
        logdet = torch.zeros_like(c0)
        for layer in self.layers:
            c0, c1, logdet = layer(c0, c1, logdet)
        z = torch.cat([c0, c1], dim=1)
        return (0.5 * z.pow(2).sum(1, keepdim=True) + math.log(2 * math.pi) - logdet).mean()


def moons(n, seed=0, noise=0.1):
    """Two half circles centred by (0.5, 0.25) and scaled by 1.418, as ED_TOY_MOONS."""
    r = np.random.default_rng(seed)
    t = r.uniform(0, np.pi, n)
    upper = r.uniform(size=n) < 0.5
    x = np.where(upper, np.cos(t), 1 - np.cos(t)) - 0.5
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t)) - 0.25
    return np.stack([x, y], 1) * 1.418 + noise * r.standard_normal((n, 2))


def w5():
    b = 512
    data = torch.tensor(moons(b * 16), dtype=torch.float32)
    batches = [data[k * b:(k + 1) * b].contiguous() for k in range(16)]

    def step(model, opt, x):
        loss = model(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    model = RealNVP()
    return model, torch.optim.Adam(model.parameters(), lr=1e-3), step, batches


# ---- W8 wgan_gp_2d (bench/w8.c) -------------------------------------------------------


def eight_gaussians(n, seed=0, std=0.1):
    """8 Gaussians on the circle of radius sqrt(2), as ED_TOY_8GAUSSIANS."""
    r = np.random.default_rng(seed)
    k = r.integers(0, 8, n) * (math.pi / 4)
    return np.stack([np.cos(k), np.sin(k)], 1) * math.sqrt(2) + std * r.standard_normal((n, 2))


class WGAN(nn.Module):
    """edifice's wgan_gp defaults: G 128 -> (dense, BatchNorm1d, ReLU) x (256, 512) -> 2,
    D 2 -> (dense, ReLU, dropout 0.3) x (512, 256) -> 1."""

    def __init__(self):
        super().__init__()
        g, n = [], 128
        for s in (256, 512):
            g += [glorot(nn.Linear(n, s)), nn.BatchNorm1d(s, eps=1e-5, momentum=0.1), nn.ReLU()]
            n = s
        self.g = nn.Sequential(*g, glorot(nn.Linear(n, 2)))
        d, n = [], 2
        for s in (512, 256):
            d += [glorot(nn.Linear(n, s)), nn.ReLU(), nn.Dropout(0.3)]
            n = s
        self.d = nn.Sequential(*d, glorot(nn.Linear(n, 1)))

    def forward(self, z):
        return self.g(z)


def gan_updates(model, opt_d, opt_g, d_loss, g_loss):
    """D's step on d_loss, then G's on g_loss() with D frozen (as the C side's groups)."""
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    for p in model.d.parameters():
        p.requires_grad_(False)
    gen = g_loss()
    opt_g.zero_grad(set_to_none=True)
    gen.backward()
    opt_g.step()
    for p in model.d.parameters():
        p.requires_grad_(True)


def w8():
    b = 256
    data = torch.tensor(eight_gaussians(b * 16), dtype=torch.float32)
    batches = [data[k * b:(k + 1) * b].contiguous() for k in range(16)]
    model = WGAN()
    opt_d = torch.optim.Adam(model.d.parameters(), lr=1e-3, betas=(0.0, 0.9))
    opt_g = torch.optim.Adam(model.g.parameters(), lr=1e-3, betas=(0.0, 0.9))

    def step(model, opt, x):
        """One G(z) for both steps, as bench/w8.c: the critic step with the penalty
        (create_graph), then the generator step through a second D pass."""
        fake = model(torch.randn(b, 128))
        real_fake = fake.detach()
        e = torch.rand(b, 1)
        mixed = (e * x + (1 - e) * real_fake).requires_grad_(True)
        grad, = torch.autograd.grad(model.d(mixed).sum(), mixed, create_graph=True)
        gp = ((torch.sqrt(grad.square().sum(1) + 1e-12) - 1) ** 2).mean()
        loss = model.d(real_fake).mean() - model.d(x).mean() + 10 * gp
        gan_updates(model, opt_d, opt_g, loss, lambda: -model.d(fake).mean())
        return loss

    return model, None, step, batches


# ---- W9 conv training steps (bench/w9.c) -----------------------------------------------
#
# w9_unet: the ddpm model's --arch conv U-Net at its defaults (models/unet.h): C 16, mults
# 1,2,2, one residual block per level, GroupNorm(8, eps 1e-5), no attention, zero output
# conv; convs glorot-uniform with PyTorch's fans (xavier_uniform_), biases zero; T = 100
# linear betas; Fashion-MNIST in [0, 1], the first 1024 training images as 16 batches of 64.


def conv3(i, o, stride=1):
    return glorot(nn.Conv2d(i, o, 3, stride=stride, padding=1))


class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb, groups):
        super().__init__()
        self.gn1 = nn.GroupNorm(groups, cin)
        self.conv1 = conv3(cin, cout)
        self.temb = glorot(nn.Linear(temb, cout))
        self.gn2 = nn.GroupNorm(groups, cout)
        self.conv2 = conv3(cout, cout)
        self.skip = glorot(nn.Conv2d(cin, cout, 1)) if cin != cout else nn.Identity()

    def forward(self, h, tact):
        u = self.conv1(F.silu(self.gn1(h))) + self.temb(tact)[:, :, None, None]
        u = self.conv2(F.silu(self.gn2(u)))
        return self.skip(h) + u


class Level(nn.Module):
    """One resolution: its residual blocks, then the resampling (Identity at the end)."""

    def __init__(self, blocks, resample):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.resample = resample


class UNet(nn.Module):
    def __init__(self, cin=1, c=16, mults=(1, 2, 2), blocks=1, groups=8):
        super().__init__()
        self.c = c
        self.fc1 = glorot(nn.Linear(c, 4 * c))
        self.fc2 = glorot(nn.Linear(4 * c, 4 * c))
        self.inc = conv3(cin, c)
        widths = [c * m for m in mults]
        down = []
        h = c
        for i, w in enumerate(widths):
            bl = []
            for _ in range(blocks):
                bl.append(ResBlock(h, w, 4 * c, groups))
                h = w
            down.append(Level(bl, conv3(w, w, 2) if i < len(widths) - 1 else nn.Identity()))
        self.down = nn.ModuleList(down)
        self.mid = ResBlock(h, h, 4 * c, groups)
        up = []
        for i in reversed(range(len(widths))):
            bl = []
            for _ in range(blocks):
                bl.append(ResBlock(h + widths[i], widths[i], 4 * c, groups))
                h = widths[i]
            if i > 0:
                up.append(Level(bl, nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"),
                                                  conv3(h, widths[i - 1]))))
                h = widths[i - 1]
            else:
                up.append(Level(bl, nn.Identity()))
        self.up = nn.ModuleList(up)
        self.out_gn = nn.GroupNorm(groups, c)
        self.out = nn.Conv2d(c, cin, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x, t):
        tact = F.silu(self.fc2(F.silu(self.fc1(timestep_embedding(t, self.c)))))
        h = self.inc(x)
        skips: List[torch.Tensor] = []
        for level in self.down:
            for blk in level.blocks:
                h = blk(h, tact)
                skips.append(h)
            h = level.resample(h)
        h = self.mid(h, tact)
        for level in self.up:
            for blk in level.blocks:
                h = blk(torch.cat([h, skips.pop()], 1), tact)
            h = level.resample(h)
        return self.out(F.silu(self.out_gn(h)))


def fashion_mnist(rows):
    d = os.environ.get("EDIFICE_FASHION_MNIST") or "/usr/share/datasets/fashion-mnist"
    with gzip.open(os.path.join(d, "train-images-idx3-ubyte.gz"), "rb") as f:
        a = np.frombuffer(f.read(), dtype=np.uint8, offset=16)[:rows * 784]
    return torch.from_numpy(a.astype(np.float32).reshape(rows, 1, 28, 28) / 255.0)


def w9_unet():
    b, n = 64, 16
    data = fashion_mnist(b * n)
    batches = [data[k * b:(k + 1) * b].contiguous() for k in range(n)]
    s1, s2 = ddpm_tables(100)

    def step(model, opt, x0):
        xt, t, eps = ddpm_noised(x0, s1, s2, 100)
        loss = F.mse_loss(model(xt, t), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    model = UNet()
    return model, torch.optim.Adam(model.parameters(), lr=1e-3), step, batches


# ---- W10 dcgan_fashion (bench/w10.c) ---------------------------------------------------
#
# `edifice train gan --arch conv` at its defaults (models/gan.h): channels 32,64, latent 128,
# glorot-uniform weights (xavier_uniform_), zero biases, no dropout in D; also the networks
# of bench/torch/convgen.py (the trainer's two-program iteration).


class DCGAN(nn.Module):
    """G z(128) -> Linear(128, 3136) BatchNorm1d ReLU -> [64, 7, 7] -> ConvTranspose2d(64, 32,
    4, 2, 1) BatchNorm2d ReLU -> ConvTranspose2d(32, 1, 4, 2, 1) sigmoid -> [B, 784];
    D [B, 784] -> [1, 28, 28] -> Conv2d(1, 32, 4, 2, 1) LeakyReLU(0.2) -> Conv2d(32, 64, 4, 2,
    1) LeakyReLU(0.2) -> Linear(3136, 1), a logit per sample."""

    def __init__(self, latent=128):
        super().__init__()
        self.latent = latent
        self.g = nn.Sequential(glorot(nn.Linear(latent, 3136)), nn.BatchNorm1d(3136), nn.ReLU(),
                               nn.Unflatten(1, (64, 7, 7)), glorot(nn.ConvTranspose2d(64, 32, 4, 2, 1)),
                               nn.BatchNorm2d(32), nn.ReLU(), glorot(nn.ConvTranspose2d(32, 1, 4, 2, 1)), nn.Sigmoid(),
                               nn.Flatten())
        self.d = nn.Sequential(nn.Unflatten(1, (1, 28, 28)), glorot(nn.Conv2d(1, 32, 4, 2, 1)), nn.LeakyReLU(0.2),
                               glorot(nn.Conv2d(32, 64, 4, 2, 1)), nn.LeakyReLU(0.2), nn.Flatten(),
                               glorot(nn.Linear(3136, 1)))

    def forward(self, z):
        return self.g(z)


def w10_dcgan():
    b, n = 64, 16
    data = fashion_mnist(b * n).view(b * n, 784)
    batches = [data[k * b:(k + 1) * b].contiguous() for k in range(n)]
    model = DCGAN()
    opt_d = torch.optim.Adam(model.d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(model.g.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step(model, opt, x):
        """One G(z) for both steps, as bench/w10.c: D's step on x and the detached fake,
        then G's non-saturating step through a second D pass, D frozen."""
        fake = model(torch.randn(b, 128))
        loss = F.softplus(-model.d(x)).mean() + F.softplus(model.d(fake.detach())).mean()
        gan_updates(model, opt_d, opt_g, loss, lambda: F.softplus(-model.d(fake)).mean())
        return loss

    return model, None, step, batches


TRAINING = {"w1": w1, "w2": w2, "w3": w3, "w3d": w3d, "w5": w5, "w8": w8, "w9_unet": w9_unet, "w10_dcgan": w10_dcgan}


# ---- W4 sampling, analytic-denoiser variant (bench/w4.c) -------------------------------
#
# 10,000 2-D points; the denoiser is the optimal predictor for data N((1, -2),
# diag(0.25, 4)) written with tensor ops, so the figure is the sampler loop: per-step
# coefficients are Python floats from double-precision tables, as in models/samplers.c.

W4_M = torch.tensor([1.0, -2.0])
W4_S2 = torch.tensor([0.25, 4.0])


def gauss_r(x, alpha: float, sigma: float):
    return (x - alpha * W4_M) / (alpha * alpha * W4_S2 + sigma * sigma)


def gauss_eps(x, t, a: float, s: float):
    return s * gauss_r(x, a, s)


def gauss_v(x, t: float):
    r = gauss_r(x, t, 1 - t)
    return (W4_M + t * W4_S2 * r) - (1 - t) * r


def sample_ddpm(n=10000, steps=1000, eps_fn=gauss_eps, shape=None):
    """x_T ~ N(0, I); x <- posterior mean given x0_hat, plus sqrt(beta_t) z for t > 0.
    eps_fn(x, t, alpha, sigma) is the denoiser (t the integer timestep)."""
    betas = np.linspace(1e-4, 0.02, steps)
    abar = np.cumprod(1 - betas)
    x = torch.randn(shape or (n, 2))
    for t in range(steps - 1, -1, -1):
        a, s = math.sqrt(abar[t]), math.sqrt(1 - abar[t])
        eps = eps_fn(x, t, a, s)
        x0 = (x - s * eps) / a
        ab_prev = abar[t - 1] if t > 0 else 1.0
        c1 = math.sqrt(ab_prev) * betas[t] / (1 - abar[t])
        c2 = math.sqrt(1 - betas[t]) * (1 - ab_prev) / (1 - abar[t])
        x = c1 * x0 + c2 * x
        if t > 0:
            x = x + math.sqrt(betas[t]) * torch.randn_like(x)
    return x


def sample_ddim(n=10000, steps=50, T=1000, eps_fn=gauss_eps, shape=None):
    """eta = 0, timesteps uniform in 0..T-1."""
    abar = np.cumprod(1 - np.linspace(1e-4, 0.02, T))
    ts = np.linspace(0, T - 1, steps).round().astype(int)
    x = torch.randn(shape or (n, 2))
    for i in range(steps - 1, -1, -1):
        t = ts[i]
        a, s = math.sqrt(abar[t]), math.sqrt(1 - abar[t])
        eps = eps_fn(x, t, a, s)
        x0 = (x - s * eps) / a
        ap = math.sqrt(abar[ts[i - 1]]) if i > 0 else 1.0
        sp = math.sqrt(1 - abar[ts[i - 1]]) if i > 0 else 0.0
        x = ap * x0 + sp * eps
    return x


def sample_fm_rk4(n=10000, steps=20, v=gauss_v, shape=None):
    """Flow matching, t = 0 noise to t = 1 data, x_t = t x1 + (1 - t) x0, v = x1 - x0;
    v(x, t) is the velocity model."""
    x = torch.randn(shape or (n, 2))
    h = 1.0 / steps
    for i in range(steps):
        t = i * h
        k1 = v(x, t)
        k2 = v(x + 0.5 * h * k1, t + 0.5 * h)
        k3 = v(x + 0.5 * h * k2, t + 0.5 * h)
        k4 = v(x + h * k3, t + h)
        x = x + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


SAMPLERS = {"ddpm-1000": sample_ddpm, "ddim-50": sample_ddim, "fm-rk4-20": sample_fm_rk4}


# ---- W4 with the W1 network (bench/w4net.c) ------------------------------------------
#
# The same three sampler loops with W1Net as the denoiser (glorot weights: speed, not
# quality). The embedding of the scalar t is computed once per call and broadcast over
# the batch, as the C side does; flow matching scales t by 1000.


def w1net_eval(model, x, t: float):
    e = F.silu(model.temb(timestep_embedding(torch.tensor([float(t)]), 32)))
    h = torch.cat([x, e.expand(x.shape[0], -1)], dim=1)
    h = F.silu(model.l0(h))
    h = F.silu(model.l1(h))
    h = F.silu(model.l2(h))
    return model.l3(h)


def net_samplers():
    model = W1Net()

    def eps(x, t, a, s):
        return w1net_eval(model, x, t)

    def vel(x, t):
        return w1net_eval(model, x, 1000.0 * t)

    return {"ddpm-1000": lambda: sample_ddpm(eps_fn=eps), "ddim-50": lambda: sample_ddim(eps_fn=eps),
            "fm-rk4-20": lambda: sample_fm_rk4(v=vel)}


# ---- W7 policy latency (bench/w7.c) ----------------------------------------------------
#
# Batch 1, observation 287, action chunk 8 x 64; the denoiser of models/denoiser.h
# (hidden 256, 4 pre-LayerNorm residual blocks, expansion 4): flatten x, the sinusoidal
# embedding of t * time_scale (256), a dense layer of (obs * keep, keep), concat, dense +
# SiLU, blocks h += fc2(silu(fc1(LN(h)))), an output layer starting at zero.

W7_OBS, W7_H, W7_A, W7_HIDDEN = 287, 8, 64, 256


class PolicyDenoiser(nn.Module):
    def __init__(self, hidden=W7_HIDDEN, blocks=4, expansion=4, obs=W7_OBS, d=W7_H * W7_A):
        super().__init__()
        self.hidden = hidden
        self.cond = glorot(nn.Linear(obs + 1, hidden))
        self.inp = glorot(nn.Linear(d + 2 * hidden, hidden))
        self.ln = nn.ModuleList([nn.LayerNorm(hidden, eps=1e-5) for _ in range(blocks)])
        self.fc1 = nn.ModuleList([glorot(nn.Linear(hidden, expansion * hidden)) for _ in range(blocks)])
        self.fc2 = nn.ModuleList([glorot(nn.Linear(expansion * hidden, hidden)) for _ in range(blocks)])
        self.out = nn.Linear(hidden, d)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x, t: float, obs):
        b = x.shape[0]
        e = timestep_embedding(torch.tensor([t]), self.hidden).expand(b, -1)
        keep = torch.ones(b, 1)
        c = self.cond(torch.cat([obs * keep, keep], dim=1))
        h = F.silu(self.inp(torch.cat([x.reshape(b, -1), e, c], dim=1)))
        for ln, fc1, fc2 in zip(self.ln, self.fc1, self.fc2):
            h = h + fc2(F.silu(fc1(ln(h))))
        return self.out(h).reshape(x.shape)


def sample_fm_euler(steps=20, v=gauss_v, shape=None):
    x = torch.randn(shape)
    h = 1.0 / steps
    for i in range(steps):
        x = x + h * v(x, i * h)
    return x


def policy_samplers():
    model = PolicyDenoiser()
    obs = torch.tensor([[((i % 17) - 8) / 8.0 for i in range(W7_OBS)]])
    shape = (1, W7_H, W7_A)

    def eps(x, t, a, s):
        return model(x, float(t), obs)

    def vel(x, t):
        return model(x, 1000.0 * t, obs)

    return {"ddpm-100": lambda: sample_ddpm(steps=100, eps_fn=eps, shape=shape),
            "ddim-10": lambda: sample_ddim(steps=10, eps_fn=eps, shape=shape),
            "fm-euler-20": lambda: sample_fm_euler(steps=20, v=vel, shape=shape)}
