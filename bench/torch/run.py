#!/usr/bin/python3
"""PyTorch side of the benchmark: the bench/README.md workloads timed as build/bench times
them (warm-up, then R repeats of S steps; median, min and max per step).

    python3 bench/torch/run.py WORKLOAD [--mode eager|script] [--threads N] [--repeats R] [--steps S] [--no-warmup]

WORKLOAD is w1, w2, w3, w3d, w5 (training steps), w4 (the three samplers with the analytic
denoiser of bench/w4.c, eager only), w4net (the same samplers with the W1 network,
bench/w4net.c, eager only), w6 (sgemm and an elementwise chain) or w7 (policy latency,
bench/w7.c, eager only).
--mode script runs the model through torch.jit.script (the loss, backward and optimizer
stay in Python, as TorchScript cannot script autograd or the optimizer); it gets three
warm-up steps instead of one because the profiling executor specializes on the first
two calls. Prints one human line and one `RESULT key=value ...` line per figure.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import workloads  # noqa: E402


def timed(fn, repeats, steps, warmup=1):
    for _ in range(warmup):
        fn()
    t = []
    for _ in range(repeats):
        s = time.perf_counter()
        for _ in range(steps):
            fn()
        t.append((time.perf_counter() - s) / steps)
    t.sort()
    return t[len(t) // 2], t[0], t[-1]


def result(**kv):
    print("RESULT side=torch torch=%s " % torch.__version__ + " ".join("%s=%s" % (k, v) for k, v in kv.items()),
          flush=True)


def train(args):
    torch.manual_seed(0)
    model, opt, step, batches = workloads.TRAINING[args.workload]()
    warmup = 1
    t0 = time.perf_counter()
    if args.mode == "script":
        try:
            model = torch.jit.script(model)
        except Exception as e:  # reported, not fatal: eager still ran in its own process
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print("TORCHSCRIPT_FAILED %s: %s" % (args.workload, msg), flush=True)
            result(workload=args.workload, mode="script", threads=args.threads, status="failed")
            return 0
        warmup = 3
    compile_s = time.perf_counter() - t0
    state = {"k": 0, "losses": []}

    def one():
        b = batches[state["k"] % len(batches)]
        state["k"] += 1
        state["losses"].append(step(model, opt, b).item())

    cpu0 = time.process_time()
    med, lo, hi = timed(one, args.repeats, args.steps, warmup)
    cpu_step = (time.process_time() - cpu0) / (args.repeats * args.steps + warmup)  # CPU s per step, warm-up in
    losses = state["losses"]
    print("torch %s %s threads=%d step median=%.3fms min=%.3fms max=%.3fms (%d repeats x %d steps) steps/s=%.1f "
          "loss %.4f -> %.4f" % (args.workload, args.mode, args.threads, 1e3 * med, 1e3 * lo, 1e3 * hi, args.repeats,
                                 args.steps, 1 / med, losses[0], losses[-1]))
    result(workload=args.workload, mode=args.mode, threads=args.threads, status="ok", median_ms="%.4f" % (1e3 * med),
           min_ms="%.4f" % (1e3 * lo), max_ms="%.4f" % (1e3 * hi), repeats=args.repeats, steps=args.steps,
           script_s="%.4f" % compile_s, loss_first="%.6g" % losses[0], loss_last="%.6g" % losses[-1],
           cpu_ms="%.4f" % (1e3 * cpu_step))
    return 0


def kernels(args):
    for n in (64, 256, 1024):
        a = torch.rand(n, n)
        b = torch.rand(n, n)
        c = torch.empty(n, n)
        med, lo, hi = timed(lambda: torch.mm(a, b, out=c), args.repeats, args.steps)
        gf = 2.0 * n ** 3 / med / 1e9
        print("torch w6 sgemm %4d^3 threads=%d: %.2f GFLOP/s (median %.3f ms)" % (n, args.threads, gf, 1e3 * med))
        result(workload="w6", kind="sgemm", n=n, threads=args.threads, gflops="%.2f" % gf,
               median_ms="%.4f" % (1e3 * med))
    n = 1 << 25
    x = torch.full((n,), -0.1)
    y = torch.empty(n)
    med, lo, hi = timed(lambda: torch.relu(x * 1.5 + 0.25), args.repeats, args.steps)
    cmed, _, _ = timed(lambda: y.copy_(x), args.repeats, args.steps)
    moved = 2.0 * 4 * n
    gbs = 3 * moved / med / 1e9  # three unfused ops, as the C figure counts them
    print("torch w6 elementwise 3 ops x %d f32 threads=%d: median %.2f ms, %.2f GB/s | copy_ %.2f GB/s"
          % (n, args.threads, 1e3 * med, gbs, moved / cmed / 1e9))
    result(workload="w6", kind="stream", threads=args.threads, median_ms="%.4f" % (1e3 * med), gbs="%.2f" % gbs,
           copy_gbs="%.2f" % (moved / cmed / 1e9))
    return 0


def sampling(args):
    torch.manual_seed(0)
    samplers = workloads.net_samplers() if args.workload == "w4net" else workloads.SAMPLERS
    for name, fn in samplers.items():
        out = {}

        def one():
            out["x"] = fn()

        with torch.no_grad():
            med, lo, hi = timed(one, args.repeats, args.steps, 0 if args.no_warmup else 1)
        mean1 = out["x"][:, 1].mean().item()
        print("torch %s %s threads=%d call median=%.1fms min=%.1fms max=%.1fms mean[1]=%.3f"
              % (args.workload, name, args.threads, 1e3 * med, 1e3 * lo, 1e3 * hi, mean1))
        result(workload=args.workload, sampler=name, repeats=args.repeats, mode="eager", threads=args.threads, median_ms="%.4f" % (1e3 * med),
               min_ms="%.4f" % (1e3 * lo), max_ms="%.4f" % (1e3 * hi), mean1="%.4f" % mean1)
    return 0


def policy(args):
    torch.manual_seed(0)
    for name, fn in workloads.policy_samplers().items():
        with torch.no_grad():
            med, lo, hi = timed(fn, args.repeats, args.steps, 0 if args.no_warmup else 1)
        print("torch w7 %s threads=%d per chunk median=%.3fms min=%.3fms max=%.3fms"
              % (name, args.threads, 1e3 * med, 1e3 * lo, 1e3 * hi))
        result(workload="w7", sampler=name, mode="eager", threads=args.threads, median_ms="%.4f" % (1e3 * med),
               min_ms="%.4f" % (1e3 * lo), max_ms="%.4f" % (1e3 * hi), repeats=args.repeats)
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("workload", choices=sorted(list(workloads.TRAINING) + ["w4", "w4net", "w6", "w7"]))
    p.add_argument("--mode", choices=["eager", "script"], default="eager")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--no-warmup", action="store_true", help="time from the first call (w4net's minute-long calls)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    if args.workload in ("w4", "w4net"):
        return sampling(args)
    if args.workload == "w7":
        return policy(args)
    return kernels(args) if args.workload == "w6" else train(args)


if __name__ == "__main__":
    sys.exit(main())
