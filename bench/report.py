#!/usr/bin/python3
"""Write bench/RESULTS.md (to stdout) from the raw output bench/run.sh left in OUT_DIR.

    python3 bench/report.py OUT_DIR BUILD_DIR > bench/RESULTS.md

Each OUT_DIR/NAME.txt holds `CMD ...`, the command's output (with `RESULT key=value`
lines) and `EXIT n`. Only the standard library is used.
"""
import datetime
import glob
import os
import platform
import re
import subprocess
import sys


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def load(out):
    runs = {}
    for path in sorted(glob.glob(os.path.join(out, "*.txt"))):
        name = os.path.basename(path)[:-4]
        r = {"cmd": "", "exit": None, "load": "", "results": [], "lines": []}
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if line.startswith("CMD "):
                    r["cmd"] = line[4:]
                elif line.startswith("LOAD "):
                    r["load"] = line[5:]
                elif line.startswith("EXIT "):
                    r["exit"] = int(line[5:])
                elif line.startswith("RESULT "):
                    r["results"].append(dict(kv.split("=", 1) for kv in line[7:].split() if "=" in kv))
                else:
                    r["lines"].append(line)
        runs[name] = r
    return runs


def machine(out, runs):
    cpu = "?"
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and cpu == "?":
                    cpu = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags:
                    flags = line.split(":", 1)[1]
    except OSError:
        pass
    isa = ", ".join(x for x in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl") if " %s " % x in flags + " ")
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = "%.0f GiB" % (int(f.readline().split()[1]) / 2**20)
    except (OSError, ValueError, IndexError):
        pass
    debian = ""
    if os.path.exists("/etc/debian_version"):
        with open("/etc/debian_version") as f:
            debian = "Debian " + f.read().strip()
    blas = sh("dpkg-query", "-W", "-f=${Version}", "libopenblas0-pthread") or sh(
        "dpkg-query", "-W", "-f=${Version}", "libopenblas0") or "?"
    torch = "not installed"
    for r in runs.values():
        for res in r["results"]:
            if res.get("side") == "torch":
                torch = res.get("torch", "?")
    torch_deb = sh("dpkg-query", "-W", "-f=${Version}", "python3-torch")
    if torch_deb:
        torch += " (Debian python3-torch %s)" % torch_deb
    commit = read(os.path.join(out, "commit.txt"))  # as it was when the runs started
    load_before = read(os.path.join(out, "load-before.txt"))
    load_after = read(os.path.join(out, "load-after.txt"))
    return [
        "- CPU: %s, %d cores visible (%s), %s memory" % (cpu, os.cpu_count() or 0, isa or "no AVX2", mem),
        "- OS: %s, kernel %s" % (debian or platform.system(), platform.release()),
        "- LLVM %s, OpenBLAS %s, gcc %s, Python %s, PyTorch %s" % (
            sh("llvm-config-19", "--version") or "?", blas, sh("gcc", "-dumpfullversion") or "?",
            platform.python_version(), torch),
        "- edifice commit %s, build type RelWithDebInfo" % (commit or "?"),
        "- load: before the runs `%s`; after `%s`; %s s of runs" % (
            load_before.split("load average:")[-1].strip() if load_before else "?",
            load_after.split("load average:")[-1].strip() if load_after else "?",
            read(os.path.join(out, "elapsed.txt")) or "?"),
    ]


def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def f(x, fmt="%.2f"):
    return fmt % x if x is not None else "n/a"


def num(d, k):
    try:
        return float(d[k])
    except (KeyError, TypeError, ValueError):
        return None


def first(runs, name, **match):
    r = runs.get(name)
    if not r:
        return None
    for res in r["results"]:
        if all(res.get(k) == str(v) for k, v in match.items()):
            return res
    return None


def cmd(runs, name):
    r = runs.get(name)
    return "`%s`" % r["cmd"] if r else ""


def status(runs, name):
    """Why a run has no figure: not run, failed (with its last message) or no result."""
    r = runs.get(name)
    if not r:
        return "not run"
    if r["exit"]:
        msg = next((ln for ln in reversed(r["lines"]) if ln.strip()), "")
        return "failed (exit %s: %s)" % (r["exit"], msg[:120])
    return "no result"


DEFS = {
    "w1": ("W1 ddpm_mlp_2d", "DDPM training step, MLP 130-256-256-256-2 + time MLP, batch 512, Adam"),
    "w2": ("W2 vae_digits", "VAE training step on the 8x8 digits, 64-256-256-(16,16) / 16-256-256-64, batch 128, Adam"),
    "w3": ("W3 dit_small", "DiT training step, 16 tokens x 128, 4 blocks, 4 heads, adaLN-zero, batch 64, AdamW"),
    "w3d": ("W3d dit_default", "W3 at the dit model's default size: 16 tokens x 256, 6 blocks, 4 heads, MLP ratio 4, "
            "batch 64, AdamW"),
    "w5": ("W5 realnvp_2d", "RealNVP training step, 8 affine couplings with 1-128-128-1 nets, batch 512, Adam"),
    "w8": ("W8 wgan_gp_2d", "WGAN-GP iteration at wgan_gp's default networks: a critic step with the gradient "
           "penalty (second-order autodiff) and a generator step, batch 256, Adam (0, 0.9)"),
    "w9_unet": ("W9 unet_fashion", "DDPM training step of the ddpm --arch conv U-Net (C 16, mults 1,2,2, group norm) "
                "on Fashion-MNIST 28x28, batch 64, Adam; FLOPs count the convolutions"),
    "w10_dcgan": ("W10 dcgan_fashion", "DCGAN iteration of gan --arch conv (channels 32,64): a discriminator step and "
                  "a generator step, non-saturating loss, on Fashion-MNIST 28x28, batch 64, Adam 2e-4 (0.5, 0.999); "
                  "FLOPs count the convolutions"),
}
TRAINING = ("w1", "w2", "w3", "w3d", "w5", "w8", "w9_unet", "w10_dcgan")
# Issue 21's target: 2 threads at least this many times as fast as 1 on these rows.
BOTH_CORES_TARGET = 1.7
TARGETED = ("w1", "w3", "w4net")
W4NET_SAMPLERS = ("ddpm-1000", "ddim-50", "fm-rk4-20")


def training_section(runs, w, summary):
    title, what = DEFS[w]
    out = ["## %s" % title, "", what + " (bench/README.md).", ""]
    out += ["| side | mode | threads | step median | min..max | steps/s | matmul GFLOP/s | roofline share | "
            "edifice / this | compile | load | command |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = []
    for t in (1, 2):
        c = first(runs, "c-%s-jit-t%d" % (w, t), workload=w)
        cmed = num(c, "median_ms") if c else None
        roof = num(c, "roofline_ms") if c else None
        mflop = num(c, "mflop") if c else None
        entries = [("edifice", "jit", "c-%s-jit-t%d" % (w, t))]
        if w == "w1":
            entries.append(("edifice", "interp", "c-w1-interp-t%d" % t))
        entries += [("PyTorch", "eager", "torch-%s-eager-t%d" % (w, t)), ("PyTorch", "TorchScript",
                                                                         "torch-%s-script-t%d" % (w, t))]
        srow = {"threads": t, "c": cmed, "c_min": num(c, "min_ms") if c else None, "mflop": mflop, "roof": roof}
        for side, mode, name in entries:
            res = first(runs, name, workload=w)
            med = num(res, "median_ms") if res else None
            if res is None or med is None:
                why = status(runs, name)
                if res is not None and res.get("status") == "failed":
                    why = "TorchScript failed: " + next(
                        (ln.split(": ", 1)[-1] for ln in runs[name]["lines"] if ln.startswith("TORCHSCRIPT_FAILED")),
                        "?")
                if side == "PyTorch" and not any(k.startswith("torch-") and k != "torch-missing" for k in runs):
                    why = "PyTorch not installed"
                rows.append("| %s | %s | %d | %s | | | | | | | | %s |" % (side, mode, t, why, cmd(runs, name)))
                continue
            gfl = mflop / med if mflop else None  # MFLOP per ms = GFLOP/s
            share = "%.0f%%" % (100 * roof / med) if roof else "n/a"
            ratio = "%.2f" % (med / cmed) if cmed and not (side == "edifice" and mode == "jit") else ""
            if side == "edifice":
                comp = "%.2f s (LLVM passes %.0f ms, codegen %.0f ms)" % (
                    num(res, "compile_s"), num(res, "optimize_ms"), num(res, "codegen_ms")) if mode == "jit" else ""
            else:
                comp = "script %.2f s" % num(res, "script_s") if mode == "TorchScript" else ""
            rows.append("| %s | %s | %d | %.3f ms | %.3f..%.3f | %.1f | %s | %s | %s | %s | %s | %s |" % (
                side, mode, t, med, num(res, "min_ms"), num(res, "max_ms"), 1e3 / med, f(gfl), share, ratio, comp,
                runs[name]["load"], cmd(runs, name)))
            srow[mode] = med
            srow[mode + "_min"] = num(res, "min_ms")
        summary.append((w, srow))
    out += rows
    if mflop:
        rates = []
        for t in (1, 2):
            c = first(runs, "c-%s-jit-t%d" % (w, t), workload=w)
            if c:
                rates.append("%s GFLOP/s at %d thread%s, roofline %.3f ms" % (
                    f(num(c, "sgemm_gflops"), "%.1f"), t, "s" if t > 1 else "", num(c, "roofline_ms")))
        out += ["", "Matmul work %.1f MFLOP per step (counted from the graph: 2mnk over every matmul, and 2 x "
                "the multiply-adds of every convolution, forward and backward; the optimizer has none). Roofline: that work at the 256^3 sgemm rate measured in the "
                "same process (%s); the roofline share is it over the row's step time. \"edifice / this\" is this "
                "row's step time over the edifice JIT's at the same thread count: above 1, edifice is faster. "
                "Load: the 1-minute load average when the command started (the previous command counts in it; 2 or "
                "more means other work shared the 2 cores)." % (mflop, "; ".join(rates) or "n/a")]
    c1 = first(runs, "c-%s-jit-t1" % w, workload=w)
    if c1:
        out += ["", "Graph: %s nodes, %s after the passes, %s kernels, arena %.1f MB; loss %s -> %s over the timed "
                "steps." % (c1["nodes"], c1["nodes_after"], c1["kernels"], int(c1["arena_bytes"]) / 1e6,
                            c1["loss_first"], c1["loss_last"])]
    return out + [""]


def w1_extras(runs):
    out = ["### W1 compile time by optimization level (1 thread)", "",
           "| level | lower | LLVM passes | codegen | total compile | step median | command |",
           "|---|---|---|---|---|---|---|"]
    for o in (0, 1, 2, 3):
        name = "c-w1-jit-t1" if o == 2 else "c-w1-jit-O%d" % o
        r = first(runs, name, workload="w1")
        if not r:
            out.append("| -O%d | %s | | | | | %s |" % (o, status(runs, name), cmd(runs, name)))
            continue
        out.append("| -O%d | %.1f ms | %.1f ms | %.1f ms | %.3f s | %.2f ms | %s |" % (
            o, num(r, "lower_ms"), num(r, "optimize_ms"), num(r, "codegen_ms"), num(r, "compile_s"),
            num(r, "median_ms"), cmd(runs, name)))
    out += ["", "Total compile includes building the program and the arena beyond the three phases.", ""]
    return out



def compile_section(runs):
    """Cold (an empty object cache: bench.c's fresh folder) and warm (the same compile
    again in the process, the entry just stored) per training workload, then the
    kernels-vs-compile-time series of bench/compile_series.sh."""
    out = ["## JIT compile: cold and warm (object cache)", "",
           "Cold: the first compile of the run, into an empty object cache (optimizer and code generator run, "
           "the objects are stored; LLVM runs on EDIFICE_COMPILE_THREADS threads, default the online CPUs). Warm: the "
           "same graph compiled again right after, as a second process would (a hit: the graph the passes made, its "
           "memory plan and the objects come from the entry; no graph pass, lowering or LLVM). JIT = lower + LLVM passes + codegen "
           "(or load); total = all of ed_compile, graph passes and memory plan included. From the 1-thread JIT "
           "runs of the workload sections.", "",
           "| workload | kernels | cold JIT | cold: lower / passes / codegen | cold total | warm JIT | warm total |",
           "|---|---|---|---|---|---|---|"]
    for w in TRAINING:
        r = first(runs, "c-%s-jit-t1" % w, workload=w)
        if not r or "warm_jit_ms" not in r:
            continue
        jit = num(r, "lower_ms") + num(r, "optimize_ms") + num(r, "codegen_ms")
        out.append("| %s | %s | %.0f ms | %.0f / %.0f / %.0f ms | %.2f s | %.0f ms (%s) | %.2f s |" % (
            DEFS[w][0], r.get("kernels", "?"), jit, num(r, "lower_ms"), num(r, "optimize_ms"), num(r, "codegen_ms"),
            num(r, "compile_s"), num(r, "warm_jit_ms"), r.get("warm_cache", "?"), num(r, "warm_compile_s")))
    series = runs.get("compile-series")
    out += ["", "### Compile time against kernels (tanh chains, no graph passes, -O2, cold then warm)", ""]
    if series and not series["exit"]:
        out += [ln for ln in series["lines"] if ln.startswith("|")]
        out += ["", cmd(runs, "compile-series") + ". `distinct`: no two nodes share a kernel; `same`: every tanh "
                "is one kernel (the randn source the other)."]
    else:
        out.append(status(runs, "compile-series"))
    return out + [""]


def passes_section(runs):
    """Each training step with the default pipeline against the same step without graph
    passes (`--passes ''`), JIT at 1 thread, run back to back."""
    out = ["## Graph passes", "",
           "Each training step compiled with the default pipeline (`simplify,fold,cse,dce,fuse,plan`) and with "
           "none (`--passes ''`), JIT, 1 thread, the two runs back to back. Kernels: one per computed node "
           "(a fused node is one). Arena: the bytes the JIT's memory plan allocates; buffers: the sum of every "
           "computed value's size (what an arena without reuse would need); peak: the largest set of values "
           "alive at once in the compiled order. The memory plan (reuse and in-place updates) is the backend's "
           "and runs in both rows; the passes change what it is given.", "",
           "| workload | pipeline | nodes | kernels | arena | buffers | peak live | in place | step median | "
           "steps/s | default / none | command |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for w in TRAINING:
        d = first(runs, "c-%s-jit-t1" % w, workload=w)
        n = first(runs, "c-%s-jit-nopasses" % w, workload=w)
        dmed = num(d, "median_ms") if d else None
        for label, name, r in (("default", "c-%s-jit-t1" % w, d), ("none", "c-%s-jit-nopasses" % w, n)):
            if not r:
                out.append("| %s | %s | %s | | | | | | | | | %s |" % (w.upper(), label, status(runs, name),
                                                                      cmd(runs, name)))
                continue
            med = num(r, "median_ms")
            mb = lambda k: "%.2f MB" % (num(r, k) / 1e6) if num(r, k) is not None else "n/a"
            ratio = "%.2fx" % (med / dmed) if dmed and label == "none" else ""
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %.3f ms | %.1f | %s | %s |" % (
                w.upper(), label, r["nodes_after"], r["kernels"], mb("arena_bytes"), mb("buffer_bytes"),
                mb("peak_bytes"), r.get("inplace", "n/a"), med, 1e3 / med, ratio, cmd(runs, name)))
    out += ["", "Sampler loops (W7, batch 1, one chunk per call; the passes run inside the loop body):", "",
            "| sampler | pipeline | body nodes | kernels | arena | per chunk | default / none | command |",
            "|---|---|---|---|---|---|---|---|"]
    for smp in ("ddpm-100", "ddim-10", "fm-euler-20"):
        d = first(runs, "c-w7-jit", workload="w7", sampler=smp)
        dmed = num(d, "median_ms") if d else None
        for label, name in (("default", "c-w7-jit"), ("none", "c-w7-jit-nopasses")):
            r = first(runs, name, workload="w7", sampler=smp)
            if not r or num(r, "median_ms") is None:
                out.append("| %s | %s | %s | | | | | %s |" % (smp, label, status(runs, name), cmd(runs, name)))
                continue
            med = num(r, "median_ms")
            ratio = "%.2fx" % (med / dmed) if dmed and label == "none" else ""
            arena = "%.2f MB" % (num(r, "arena_bytes") / 1e6) if num(r, "arena_bytes") is not None else "n/a"
            out.append("| %s | %s | %s | %s | %s | %.3f ms | %s | %s |" % (
                smp, label, r.get("body_after", "n/a"), r.get("kernels", "n/a"), arena, med, ratio, cmd(runs, name)))
    out += ["", "\"default / none\" is the step time without the passes over the step time with them: above 1, "
            "the pipeline makes the step faster. W3 is the DiT-sized transformer block (bench/README.md).", ""]
    return out

def w6_section(runs):
    out = ["## W6 kernels", "",
           "Peak: a register-only loop of independent FMAs at the widest vector width (`bench_peak_flops` in "
           "bench/bench_util.c), measured on one core, times the threads used.", "",
           "| size | threads | JIT sgemm GFLOP/s | cblas direct | JIT/direct | direct / peak | torch.mm | JIT/torch |"
           " command |", "|---|---|---|---|---|---|---|---|---|"]
    streams = []
    for t in (1, 2):
        name = "c-w6-t%d" % t
        for n in (64, 256, 1024):
            r = first(runs, name, kind="sgemm", n=n)
            tr = first(runs, "torch-w6-t%d" % t, kind="sgemm", n=n)
            if not r:
                out.append("| %d^3 | %d | %s | | | | | | %s |" % (n, t, status(runs, name), cmd(runs, name)))
                continue
            g, d, p = num(r, "gflops"), num(r, "direct_gflops"), num(r, "peak_gflops")
            tg = num(tr, "gflops") if tr else None
            out.append("| %d^3 | %d | %.2f | %.2f | %.3f | %.0f%% | %s | %s | %s |" % (
                n, t, g, d, g / d, 100 * d / p, f(tg), f(g / tg, "%.3f") if tg else "n/a", cmd(runs, name)))
        s = first(runs, name, kind="stream")
        ts = first(runs, "torch-w6-t%d" % t, kind="stream")
        if s:
            streams.append("| %d | %.2f GB/s | %.2f GB/s | %.3f | %s | %s |" % (
                t, num(s, "gbs"), num(s, "memcpy_gbs"), num(s, "gbs") / num(s, "memcpy_gbs"),
                "%s GB/s (copy_ %s GB/s)" % (ts["gbs"], ts["copy_gbs"]) if ts else "n/a",
                "%.2f" % (num(ts, "median_ms") / num(s, "median_ms")) if ts else "n/a"))
    out += ["", "Elementwise: y = relu(x * 1.5 + 0.25) over 2^25 f32 (three ops), bytes moved counted as each op "
            "reading and writing 2^25 floats, against memcpy of the same bytes. PyTorch eager runs the same three "
            "ops (each allocating its result).", "",
            "| threads | JIT | memcpy | JIT/memcpy | PyTorch eager | PyTorch time / JIT time |", "|---|---|---|---|---|---|"]
    return out + streams + [""]


def w4_section(runs):
    out = ["## W4 sampling, analytic-denoiser variant (10,000 2-D points, one call = the whole sampler)", "",
           "The denoiser is the optimal epsilon (velocity) predictor of N((1, -2), diag(0.25, 4)) built from "
           "ops, so this measures the sampler loop and its per-step arithmetic, not a network (bench/w4.c; "
           "PyTorch: the same samplers as Python loops over tensor ops, bench/torch/workloads.py). mean[1] should "
           "be near -2. 1 thread.", "",
           "| sampler | edifice JIT | interp | PyTorch eager | edifice / PyTorch | JIT compile | mean[1] JIT / "
           "PyTorch | commands |", "|---|---|---|---|---|---|---|---|"]
    for sampler in ("ddpm-1000", "ddim-50", "fm-rk4-20"):
        j = first(runs, "c-w4-jit", sampler=sampler)
        i = first(runs, "c-w4-interp", sampler=sampler)
        t = first(runs, "torch-w4-t1", sampler=sampler)
        jm, im, tm = (num(r, "median_ms") if r else None for r in (j, i, t))

        def ms(r, m, name):
            return "%.1f ms (%.1f..%.1f)" % (m, num(r, "min_ms"), num(r, "max_ms")) if r else status(runs, name)

        out.append("| %s | %s | %s | %s | %s | %s | %s / %s | %s; %s; %s |" % (
            sampler, ms(j, jm, "c-w4-jit"), ms(i, im, "c-w4-interp"), ms(t, tm, "torch-w4-t1"),
            f(tm / jm) if jm and tm else "n/a", "%.0f ms" % (1e3 * num(j, "compile_s")) if j else "",
            j["mean1"] if j else "?", t["mean1"] if t else "?", cmd(runs, "c-w4-jit"), cmd(runs, "c-w4-interp"),
            cmd(runs, "torch-w4-t1")))
    return out + ["", "DDPM draws 20,000 normals per step; edifice's come from the runtime's f32 Box-Muller "
                  "(runtime/normal_f32.c, a few ns per normal), PyTorch's from torch.randn.", ""]


def w4net_section(runs):
    out = ["## W4 sampling with the W1 network (10,000 2-D points, one call = the whole sampler)", "",
           "The W1 MLP (130-256-256-256-2 with SiLU, time MLP 32-128) as the denoiser, initial parameters (speed, "
           "not quality): bench/w4net.c and bench/torch/workloads.py. One call of each sampler, no warm-up (a "
           "DDPM call takes a minute or more), 1 thread. The interpreter runs the network at a few GFLOP/s, so it "
           "samples with fewer iterations (DDPM 2, DDIM 2, RK4 1) and its full-sampler time is that per-iteration "
           "time times the real count, marked *est.*", "",
           "| sampler | edifice JIT | per iteration | interp (per iteration) | interp full, est. | PyTorch eager | "
           "edifice / PyTorch | edifice / interp | JIT compile | GFLOP per call | roofline share | commands |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for sampler in ("ddpm-1000", "ddim-50", "fm-rk4-20"):
        j = first(runs, "c-w4net-jit", sampler=sampler)
        i = first(runs, "c-w4net-interp", sampler=sampler)
        t = first(runs, "torch-w4net-t1", sampler=sampler)
        jm, tm = (num(r, "median_ms") if r else None for r in (j, t))
        ifull = num(i, "full_ms") if i else None
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s; %s; %s |" % (
            sampler, "%.0f ms" % jm if jm else status(runs, "c-w4net-jit"),
            "%.2f ms" % num(j, "per_iter_ms") if j else "",
            "%.0f ms (from %s)" % (num(i, "per_iter_ms"), i["iterations"]) if i else status(runs, "c-w4net-interp"),
            "%.0f s" % (ifull / 1e3) if ifull else "", "%.0f ms" % tm if tm else status(runs, "torch-w4net-t1"),
            f(tm / jm) if jm and tm else "n/a", f(ifull / jm, "%.0f") if jm and ifull else "n/a",
            "%.2f s" % num(j, "compile_s") if j else "", gflop(j), roof_share(j, jm),
            cmd(runs, "c-w4net-jit"), cmd(runs, "c-w4net-interp"), cmd(runs, "torch-w4net-t1")))
    return out + ["", ROOF_NOTE, ""]


ROOF_NOTE = ("GFLOP per call: the matmul work of one whole sampler call, counted from the graph (2mnk over every "
             "matmul, a loop body once per trip). Roofline share: that work at the 256^3 sgemm rate measured in the "
             "same process, over the JIT's call time.")


def gflop(r):
    return "%.2f" % (num(r, "mflop") / 1e3) if r and "mflop" in r else ""


def roof_share(r, m):
    return "%.0f%%" % (100 * num(r, "roofline_ms") / m) if r and m and num(r, "roofline_ms") else ""


def w7_section(runs):
    out = ["## W7 policy latency (batch 1, observation 287, action chunk 8 x 64)", "",
           "The denoiser of models/denoiser.h (hidden 256, 4 pre-LN residual blocks, expansion 4), the observation "
           "an input fed per call and captured into the sampler loop (bench/w7.c; PyTorch: the same network and "
           "sampler loops, bench/torch/workloads.py). Wall time per generated chunk, 1 thread.", "",
           "| sampler | edifice JIT | per step | interp | PyTorch eager | edifice / PyTorch | edifice / interp | "
           "JIT compile | GFLOP per call | roofline share | commands |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for sampler in ("ddpm-100", "ddim-10", "fm-euler-20"):
        j = first(runs, "c-w7-jit", sampler=sampler)
        i = first(runs, "c-w7-interp", sampler=sampler)
        t = first(runs, "torch-w7-t1", sampler=sampler)
        jm, im, tm = (num(r, "median_ms") if r else None for r in (j, i, t))

        def ms(r, m, name):
            return "%.2f ms (%.2f..%.2f)" % (m, num(r, "min_ms"), num(r, "max_ms")) if r else status(runs, name)

        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s; %s; %s |" % (
            sampler, ms(j, jm, "c-w7-jit"), "%.0f us" % (1e3 * jm / int(j["iterations"])) if j else "",
            ms(i, im, "c-w7-interp"), ms(t, tm, "torch-w7-t1"), f(tm / jm) if jm and tm else "n/a",
            f(im / jm, "%.0f") if jm and im else "n/a", "%.2f s" % num(j, "compile_s") if j else "",
            gflop(j), roof_share(j, jm), cmd(runs, "c-w7-jit"), cmd(runs, "c-w7-interp"), cmd(runs, "torch-w7-t1")))
    return out + ["", ROOF_NOTE, ""]


def loop_section(runs):
    out = ["## loop: 1000 trips over a carried f32[10000,2] (one call)", "",
           "| backend | body | call median | min..max | per trip | compile | kernels | command |",
           "|---|---|---|---|---|---|---|---|"]
    for be in ("jit", "interp"):
        name = "c-loop-%s" % be
        for body in ("randn", "const"):
            r = first(runs, name, body=body)
            if not r:
                out.append("| %s | %s | %s | | | | | %s |" % (be, body, status(runs, name), cmd(runs, name)))
                continue
            out.append("| %s | 6 elementwise ops + %s | %.1f ms | %.1f..%.1f ms | %.1f us | %s | %s | %s |" % (
                be, body, num(r, "median_ms"), num(r, "min_ms"), num(r, "max_ms"), num(r, "median_ms"),
                "%.0f ms" % num(r, "compile_ms") if be == "jit" else "", r["kernels"], cmd(runs, name)))
    return out + [""]


def summary_table(summary):
    out = ["## Summary", "",
           "Steps per second of one training step (higher is better) and the ratio edifice / PyTorch = edifice's "
           "steps/s over PyTorch's, measured in this run (above 1: edifice is faster), from the medians; "
           "\"fastest repeats\" divides the two sides' minimum repeat times instead, which a busy machine "
           "disturbs less. Roofline share: the step's matmul FLOPs at the measured sgemm rate, over edifice's step time.", "",
           "| workload | threads | edifice JIT | PyTorch eager | TorchScript | edifice / eager | edifice / TorchScript "
           "| edifice / eager, fastest repeats | MFLOP/step | roofline share |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for w, s in summary:
        c, e, sc = s.get("c"), s.get("eager"), s.get("TorchScript")
        cm, em = s.get("c_min"), s.get("eager_min")
        out.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            DEFS[w][0], s["threads"], f(1e3 / c, "%.1f") if c else "failed", f(1e3 / e, "%.1f") if e else "n/a",
            f(1e3 / sc, "%.1f") if sc else "n/a", f(e / c) if c and e else "n/a", f(sc / c) if c and sc else "n/a",
            f(em / cm) if cm and em else "n/a",
            f(s["mflop"], "%.1f"), "%.0f%%" % (100 * s["roof"] / c) if c and s["roof"] else "n/a"))
    heads = ["%s %sx" % (DEFS[w][0].split(" ", 1)[0], f(s["eager"] / s["c"]))
             for w, s in summary if s["threads"] == 1 and s.get("c") and s.get("eager")]
    if heads:
        out += ["", "Headline (1 thread, edifice JIT over PyTorch eager, medians): " + ", ".join(heads) + "."]
    return out + [""]


def both_cores_section(runs):
    """Each workload's 2-thread time against its 1-thread time from the same run: the
    training steps' JIT medians (and PyTorch's), and W4net's one call per sampler."""
    out = ["## Both cores", "",
           "Speedup of 2 threads over 1 = the 1-thread median over the 2-thread median, same run (above 1: the "
           "second core helps); \"fastest repeats\" divides the minimum repeat times instead, which a busy machine "
           "disturbs less. Target (issue 21): at least %.1fx on W1, W3 and the W4net samplers. W4net is one call "
           "per sampler at each thread count, no warm-up (bench/README.md), and PyTorch runs it at 1 thread only. "
           "Load: the 1-minute load average when the 2-thread command started." % BOTH_CORES_TARGET, "",
           "| workload | edifice 1 thread | edifice 2 threads | edifice 2 vs 1 | fastest repeats | PyTorch eager 2 vs 1 "
           "| TorchScript 2 vs 1 | target | load |", "|---|---|---|---|---|---|---|---|---|"]

    def pair(n1, n2, **match):
        r1, r2 = first(runs, n1, **match), first(runs, n2, **match)
        m1, m2 = (num(r, "median_ms") if r else None for r in (r1, r2))
        lo1, lo2 = (num(r, "min_ms") if r else None for r in (r1, r2))
        return r1, r2, m1, m2, (m1 / m2 if m1 and m2 else None), (lo1 / lo2 if lo1 and lo2 else None)

    def target(w, x):
        if w not in TARGETED:
            return ""
        if x is None:
            return "%.1fx: no figure" % BOTH_CORES_TARGET
        return "%.1fx: %s" % (BOTH_CORES_TARGET, "met" if x >= BOTH_CORES_TARGET else "not met")

    met, missed, unknown = [], [], []
    rows = [(w, DEFS[w][0], "c-%s-jit-t1" % w, "c-%s-jit-t2" % w, {"workload": w}) for w in TRAINING]
    rows += [("w4net", "W4net %s" % smp, "c-w4net-jit", "c-w4net-jit-t2", {"sampler": smp}) for smp in W4NET_SAMPLERS]
    for w, label, n1, n2, match in rows:
        _, _, m1, m2, x, xlo = pair(n1, n2, **match)
        torch = []
        for mode in ("eager", "script"):
            tx = pair("torch-%s-%s-t1" % (w, mode), "torch-%s-%s-t2" % (w, mode), **match)[4]
            torch.append("%.2fx" % tx if tx else "n/a")
        ms = lambda m, n: "%.3f ms" % m if m else status(runs, n)
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label, ms(m1, n1), ms(m2, n2), "%.2fx" % x if x else "n/a", "%.2fx" % xlo if xlo else "n/a", torch[0],
            torch[1], target(w, x), runs[n2]["load"] if n2 in runs else ""))
        if w in TARGETED:
            (unknown if x is None else met if x >= BOTH_CORES_TARGET else missed).append(
                label if w == "w4net" else label.split(" ", 1)[0])
    out += ["", "Target %.1fx met on: %s; not met on: %s%s." % (
        BOTH_CORES_TARGET, ", ".join(met) or "none", ", ".join(missed) or "none",
        "; no figure for: " + ", ".join(unknown) if unknown else "")]
    return out + [""]


def export_section(runs):
    """Exported policy (bench/export.sh): start-up to the first chunk and per-chunk latency
    of the object `edifice export` wrote, against `edifice sample` and PyTorch eager."""
    r = runs.get("export-policy")
    if not r:
        return []
    text = "\n".join(r["lines"])
    med = lambda xs: sorted(xs)[len(xs) // 2] if xs else None
    num = lambda pat: [float(x) for x in re.findall(pat, text)]
    wall = {k: re.search(r"%s:\s+median ([0-9.]+) ms \(min ([0-9.]+), max ([0-9.]+)\)" % k, text)
            for k in ("exported policy_demo", "edifice sample --n 1", "pytorch eager twin")}
    ex_first, ex_chunk = med(num(r"export first_chunk_ms=([0-9.]+)")), med(num(r"export first_chunk_ms=[0-9.]+ per_chunk median_ms=([0-9.]+)"))
    cli_chunk = med([1e3 * x / 200 for x in num(r"edifice sample: 200 chunks in ([0-9.]+) s")])
    th_first, th_chunk = med(num(r"torch first_chunk_ms=([0-9.]+)")), med(num(r"torch first_chunk_ms=[0-9.]+ \(after import[^)]*\) per_chunk median_ms=([0-9.]+)"))
    w = lambda m: "%s ms (%s..%s)" % m.groups() if m else "n/a"
    f = lambda x: "%.1f ms" % x if x is not None else "n/a"
    build = re.search(r"export: ([0-9]+) ms to write policy.o \(([0-9]+) bytes\)", text)
    out = ["## Exported policy: start-up and per-chunk latency", "",
           "`edifice train ddpm --data demo --steps 300` (hidden 256, 4 blocks; observation 6, chunk 8 x 2, DDPM 100 "
           "steps), batch 1, 1 thread. Exported: `edifice export ddpm` then `cc examples/policy_demo.c policy.o "
           "-lopenblas -lm` (start-up) and bench/export_latency.c (per chunk, in process). CLI: `edifice sample ... "
           "--n 1` per process (checkpoint load and JIT compile included); per chunk: 200 batches of one in one "
           "process, the mean. PyTorch: bench/torch/policy_startup.py, the W7 network at the demo's sizes "
           "(random weights), eager, no grad. Load before `%s`." % r["load"], "",
           "| | exported object | edifice sample | PyTorch eager |", "|---|---|---|---|",
           "| one process, one chunk (wall, median of runs) | %s | %s | %s |" % (
               w(wall["exported policy_demo"]), w(wall["edifice sample --n 1"]), w(wall["pytorch eager twin"])),
           "| in process: start to first chunk | %s | | %s (after the interpreter started) |" % (f(ex_first), f(th_first)),
           "| per chunk (median of runs) | %s | %s | %s |" % (f(ex_chunk), f(cli_chunk), f(th_chunk)), ""]
    if build:
        out += ["`edifice export` wrote the %s-byte object (weights included) in %s ms." % (build.group(2), build.group(1)), ""]
    out += ["Command: `%s`" % r["cmd"], ""]
    return out


def splice(out_dir, runs, path):
    """Replace (or insert before "## Graph passes") the sections of the training workloads
    that ran in out_dir (`BENCH_ONLY=... bench/run.sh`), each saying it is a partial run;
    the rest of the file stays as the last full run wrote it."""
    with open(path) as fh:
        doc = fh.read()
    load = lambda n: open(os.path.join(out_dir, n)).read().strip().split("load average: ")[-1]
    for w in TRAINING:
        if not any(k.startswith("c-%s-" % w) for k in runs):
            continue
        sec = training_section(runs, w, [])
        sec[2] += (" From a run of this workload alone (`BENCH_ONLY=%s bench/run.sh`) on %s UTC, load before `%s`, "
                   "after `%s`; the summary above does not include it until the next full `make bench`." % (
                       w, datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"), load("load-before.txt"),
                       load("load-after.txt")))
        text = "\n".join(sec) + "\n"
        head = "## %s\n" % DEFS[w][0]
        start = doc.find(head)
        if start < 0:
            start = end = doc.find("## Graph passes")
            if start < 0:
                start = end = len(doc)
        else:
            end = doc.find("\n## ", start + len(head))
            end = len(doc) if end < 0 else end + 1
        doc = doc[:start] + text + doc[end:]
    sec = export_section(runs)
    if sec:  # `bench/run.sh` with BENCH_ONLY=export
        head = sec[0] + "\n"
        start = doc.find(head)
        if start < 0:
            start = end = doc.find("## W6 kernels")
            start = end = len(doc) if start < 0 else start
        else:
            end = doc.find("\n## ", start + len(head))
            end = len(doc) if end < 0 else end + 1
        doc = doc[:start] + "\n".join(sec) + "\n" + doc[end:]
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(doc)
    os.replace(tmp, path)


def main():
    if len(sys.argv) == 5 and sys.argv[3] == "--splice":
        splice(sys.argv[1], load(sys.argv[1]), sys.argv[4])
        return
    if len(sys.argv) != 3:
        sys.exit("usage: report.py OUT_DIR BUILD_DIR [--splice RESULTS_MD]")
    out_dir = sys.argv[1]
    runs = load(out_dir)
    summary = []
    sections = []
    for w in TRAINING:
        sections += training_section(runs, w, summary)
        if w == "w1":
            sections += w1_extras(runs)
    sections += compile_section(runs) + passes_section(runs) + w4_section(runs) + w4net_section(runs) + w7_section(runs) + export_section(runs) + w6_section(runs) + loop_section(runs)
    doc = ["# Benchmark results", "",
           "Written by `make bench` (bench/run.sh, bench/report.py) on %s UTC. Do not edit by hand: re-run it. "
           "Workload definitions: bench/README.md. Earlier hand-recorded figures and their analysis: "
           "bench/HISTORY.md." % datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"), "", "## Machine", ""]
    doc += machine(out_dir, runs)
    doc += ["",
            "The machine is shared with other engineers' builds and small (2 cores): figures are medians of 5 "
            "repeats, both sides ran back to back in the same run, and ratios within one run mean more than "
            "absolute figures. Thread counts set OpenBLAS's threads (both sides, `OPENBLAS_NUM_THREADS`) and "
            "PyTorch's intra-op threads (`torch.set_num_threads`); edifice's own JIT kernels run on one thread. "
            "Every command runs with `OMP_WAIT_POLICY=PASSIVE`: with libgomp's default spinning, PyTorch's OpenMP "
            "threads compete with OpenBLAS's own on the 2 cores and its 2-thread steps were 3-20x slower in trial "
            "runs. "
            "Timing: one warm-up step (three for TorchScript, whose profiling executor specializes on the first "
            "two calls), then 5 repeats of S steps; the per-step median, min and max over the repeats.", ""]
    if "torch-missing" in runs or not any(k.startswith("torch-") for k in runs):
        doc += ["**PyTorch is not installed** for /usr/bin/python3 (`apt-get install python3-torch "
                "python3-numpy`), so this run has the C side only.", ""]
    doc += summary_table(summary) + both_cores_section(runs) + sections
    sys.stdout.write("\n".join(doc))


if __name__ == "__main__":
    main()
