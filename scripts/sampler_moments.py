#!/usr/bin/env python3
"""Exact mean and std of each discretized sampler for 1-D Gaussian data N(m, s^2) with
the optimal (analytic) model. With a Gaussian data distribution every sampler step is
affine in x plus independent Gaussian noise, so (mean, variance) propagate exactly.
tests/test_samplers.c compares its 10,000 samples with these numbers; this script is
written from the update formulas (independently of models/samplers.c). No numpy."""
import math

def betas(kind, T=1000):
    if kind == 'linear':
        return [1e-4 + (0.02 - 1e-4) * t / (T - 1) for t in range(T)]
    f = lambda u: math.cos(math.pi / 2 * (u + 0.008) / 1.008) ** 2
    return [min(1 - f((t + 1) / T) / f(t / T), 0.999) for t in range(T)]

def abars(b):
    out, p = [], 1.0
    for x in b:
        p *= 1 - x
        out.append(p)
    return out

def pred(m, s, a, sg):
    """x0_hat = A x + B, eps_hat = C x + D for x = a x0 + sg eps."""
    v = a * a * s * s + sg * sg
    A = a * s * s / v
    C = sg / v
    return A, m - A * a * m, C, -C * a * m

def ddpm(m, s, kind='linear', tilde=False):
    b = betas(kind); ab = abars(b); T = len(b)
    mu, var = 0.0, 1.0
    for t in range(T - 1, -1, -1):
        A, B, C, D = pred(m, s, math.sqrt(ab[t]), math.sqrt(1 - ab[t]))
        k = b[t] / math.sqrt(1 - ab[t]); r = 1 / math.sqrt(1 - b[t])
        P, Q = r * (1 - k * C), r * (-k * D)
        nv = 0 if t == 0 else ((1 - ab[t - 1]) / (1 - ab[t]) * b[t] if tilde else b[t])
        mu, var = P * mu + Q, P * P * var + nv
    return mu, math.sqrt(var)

def ddim(m, s, S, eta, quad=False, T=1000, v0=1.0):
    ab = abars(betas('linear', T))
    tau = []
    for i in range(S):
        u = (i / (S - 1)) ** (2 if quad else 1)
        t = int(math.floor(u * (T - 1) + 0.5))
        if tau and t <= tau[-1]: t = tau[-1] + 1
        tau.append(min(t, T - S + i))
    mu, var = 0.0, v0
    for i in range(S - 1, -1, -1):
        t = tau[i]; abp = ab[tau[i - 1]] if i > 0 else 1.0
        A, B, C, D = pred(m, s, math.sqrt(ab[t]), math.sqrt(1 - ab[t]))
        sig = eta * math.sqrt((1 - abp) / (1 - ab[t])) * math.sqrt(1 - ab[t] / abp)
        c0, c1 = math.sqrt(abp), math.sqrt(max(1 - abp - sig * sig, 0))
        P, Q = c0 * A + c1 * C, c0 * B + c1 * D
        mu, var = P * mu + Q, P * P * var + sig * sig
    return mu, math.sqrt(var)

def vp(t, b0=0.1, b1=20):
    beta = b0 + t * (b1 - b0); l = -0.25 * t * t * (b1 - b0) - 0.5 * t * b0
    a = math.exp(l); sg = math.sqrt(-math.expm1(2 * l))
    return dict(a=a, s=sg, da=-0.5 * beta * a, ds=0.5 * beta * a * a / sg, f=-0.5 * beta, g2=beta)

def ve(t, s0=0.01, s1=50):
    lr = math.log(s1 / s0); sg = s0 * math.exp(lr * t)
    return dict(a=1, s=sg, da=0, ds=sg * lr, f=0, g2=2 * sg * sg * lr)

def flow(t):
    return dict(a=t, s=1 - t, da=1, ds=-1, f=0, g2=0)

def ode(m, s, lev, times, method, v0=1.0):
    mu, var = 0.0, v0
    for k in range(len(times) - 1):
        ta, tb = times[k], times[k + 1]; h = tb - ta
        def f(x, t):
            L = lev(t); A, B, C, D = pred(m, s, L['a'], L['s'])
            return (L['da'] * A + L['ds'] * C) * x + L['da'] * B + L['ds'] * D
        def step(x):
            if method == 'euler': return x + h * f(x, ta)
            if method == 'heun':
                k1 = f(x, ta); return x + h / 2 * (k1 + f(x + h * k1, tb))
            if method == 'midpoint': return x + h * f(x + h / 2 * f(x, ta), ta + h / 2)
            k1 = f(x, ta); k2 = f(x + h / 2 * k1, ta + h / 2); k3 = f(x + h / 2 * k2, ta + h / 2)
            k4 = f(x + h * k3, tb); return x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        Q = step(0.0); P = step(1.0) - Q
        mu, var = P * mu + Q, P * P * var
    return mu, math.sqrt(var)

def grid(t0, t1, n): return [t0 + (t1 - t0) * i / n for i in range(n)] + [t1]

def em(m, s, lev, n, v0, eps=1e-3):
    mu, var = 0.0, v0
    ts = grid(1, eps, n)
    for k in range(n):
        ta, h = ts[k], ts[k + 1] - ts[k]
        L = lev(ta); A, B, C, D = pred(m, s, L['a'], L['s'])
        P = 1 + h * (L['f'] + L['g2'] * C / L['s']); Q = h * L['g2'] * D / L['s']
        nv = L['g2'] * -h if k < n - 1 else 0
        mu, var = P * mu + Q, P * P * var + nv
    return mu, math.sqrt(var)

def consistency(m, s, sigmas, smin=0.002):
    # exact consistency function f(x, sg) = m + s (x - m) / sqrt(s^2 + sg^2)
    mu, var = 0.0, sigmas[0] ** 2
    for k, sg in enumerate(sigmas):
        if k > 0: var += sg * sg - smin * smin
        c = s / math.sqrt(s * s + sg * sg)
        mu, var = m + c * (mu - m), c * c * var
    return mu, math.sqrt(var)

CASES = {
    'ddpm_linear': lambda m, s: ddpm(m, s),
    'ddpm_cosine_tilde': lambda m, s: ddpm(m, s, 'cosine', True),
    'ddim_100_eta0': lambda m, s: ddim(m, s, 100, 0),
    'ddim_100_eta1': lambda m, s: ddim(m, s, 100, 1),
    'ddim_100_eta1_from_0': lambda m, s: ddim(m, s, 100, 1, v0=0.0),
    'ddim_quad_50_eta05': lambda m, s: ddim(m, s, 50, 0.5, quad=True),
    'flow_euler_100': lambda m, s: ode(m, s, flow, grid(0, 1, 100), 'euler'),
    'flow_midpoint_20': lambda m, s: ode(m, s, flow, grid(0, 1, 20), 'midpoint'),
    'flow_heun_20_to_0.999': lambda m, s: ode(m, s, flow, grid(0, 0.999, 20), 'heun'),
    'flow_rk4_10': lambda m, s: ode(m, s, flow, grid(0, 1, 10), 'rk4'),
    'vp_ode_rk4_20': lambda m, s: ode(m, s, vp, grid(1, 1e-3, 20), 'rk4'),
    'vp_ode_heun_50': lambda m, s: ode(m, s, vp, grid(1, 1e-3, 50), 'heun'),
    've_ode_rk4_50': lambda m, s: ode(m, s, ve, grid(1, 1e-3, 50), 'rk4', 2500.0),
    'vp_em_500': lambda m, s: em(m, s, vp, 500, 1.0),
    've_em_500': lambda m, s: em(m, s, ve, 500, 2500.0),
    'consistency_1': lambda m, s: consistency(m, s, [80]),
    'consistency_2': lambda m, s: consistency(m, s, [80, 0.661]),
}

if __name__ == '__main__':
    for name, fn in CASES.items():
        (m1, s1), (m2, s2) = fn(1, 0.5), fn(-2, 2)
        print('%-24s {%.6f, %.6f}, {%.6f, %.6f}' % (name, m1, m2, s1, s2))
