#!/usr/bin/python3
"""Write the "## Learning" section of bench/RESULTS.md from bench/learning.sh's raw output.

    python3 bench/learning_report.py OUT_DIR COMMAND RESULTS_MD

OUT_DIR holds c-MODEL-sS.txt (`edifice train` then `edifice eval`) and torch-MODEL-sS.txt
(bench/torch/learning.py, bench/torch/gan.py; the twins' samples judged by bench/score_samples) per model and
seed. The section replaces an earlier one in
RESULTS_MD (from its heading to the next "## " heading), or is appended.
"""
import glob
import os
import re
import statistics
import sys
import time

HEADING = "## Learning (test figures after the CLI's default budget)"
# (row label, model, figure name in both outputs)
ROWS = [
    ("vae neg ELBO (nats)", "vae", "neg_elbo"),
    ("vae IWAE NLL, K = 100 (nats)", "vae", "iwae_nll"),
    ("realnvp NLL (nats)", "realnvp", "nll"),
    ("realnvp bits/dim", "realnvp", "bits_per_dim"),
    ("vqvae recon MSE (per pixel)", "vqvae", "recon_mse"),
    ("vqvae prior NLL (nats)", "vqvae", "prior_nll"),
    ("vqvae codes used (of 64)", "vqvae", "codes_used"),
    ("vqvae code perplexity", "vqvae", "perplexity"),
    ("gan on 8gaussians: modes hit (of 8)", "gan", "modes_hit"),
    ("gan: share of samples within 3 std of a mode", "gan", "near_share"),
    ("wgan_gp on 8gaussians: modes hit (of 8)", "wgan_gp", "modes_hit"),
    ("wgan_gp: share of samples within 3 std of a mode", "wgan_gp", "near_share"),
    ("cgan on digits: label accuracy", "cgan", "label_accuracy"),
    ("cgan: Frechet distance (classifier features)", "cgan", "frechet_distance"),
    ("latent_diffusion Frechet distance (classifier features)", "latent_diffusion", "frechet_distance"),
    ("latent_diffusion label accuracy", "latent_diffusion", "label_accuracy"),
    ("dit denoise MSE (per pixel)", "dit", "denoise_mse"),
    ("dit label accuracy, unguided", "dit", "label_accuracy_unguided"),
    ("dit label accuracy, guidance 2", "dit", "label_accuracy_guided"),
    ("dit Frechet distance, unguided", "dit", "frechet_distance_unguided"),
    ("dit Frechet distance, guidance 2", "dit", "frechet_distance_guided"),
    ("score_sde VP moons sliced W1 / floor", "score_sde_vp", "swd_ratio"),
    ("score_sde VE moons sliced W1 / floor", "score_sde_ve", "swd_ratio"),
    ("consistency moons sliced W1 / floor, one step", "consistency", "swd_ratio"),
    ("consistency moons sliced W1 / floor, two steps", "consistency", "swd_ratio_two"),
]
MODELS = ("vae", "realnvp", "vqvae", "gan", "wgan_gp", "cgan", "latent_diffusion", "dit", "score_sde_vp", "score_sde_ve",
          "consistency")


def read(path):
    """The figures and the training seconds in one raw file; None for a failed run."""
    with open(path) as f:
        text = f.read()
    if re.search(r"^EXIT [1-9]", text, re.M):
        return None
    out = {}
    for name, value in re.findall(r"^\s*([a-z_]+)\s+(-?[0-9.]+(?:e[-+]?\d+)?)\b", text, re.M):
        out[name] = float(value)
    m = re.search(r"^trained \d+ steps in ([0-9.]+) s", text, re.M)
    if m:
        out["train_seconds"] = float(m.group(1))
    # `edifice eval` on 8gaussians: "modes hit (>= 1% each)  5/8  8/8", "within 3 std ...  47.4%  98.9%"
    m = re.search(r"^modes hit \(.*?\)\s+(\d+)/\d+", text, re.M)
    if m:
        out["modes_hit"] = float(m.group(1))
    m = re.search(r"^within 3 std of a mode\s+([0-9.]+)%", text, re.M)
    if m:
        out["near_share"] = float(m.group(1)) / 100
    return out


def runs(out_dir, side, model):
    found = []
    for path in sorted(glob.glob(os.path.join(out_dir, f"{side}-{model}-s*.txt"))):
        r = read(path)
        found.append(r)
    return found


def stat(values, digits):
    """mean ± sd (sample sd over the seeds), or what there is."""
    if not values:
        return "failed"
    mean = statistics.fmean(values)
    if len(values) < 3:
        return f"{mean:.{digits}f} ({len(values)} run{'s' if len(values) > 1 else ''})"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def first_line(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "?"


def earlier_rows(doc):
    """The table rows of doc's Learning section by their label, to keep for the models a run
    did not measure."""
    start = doc.find(HEADING)
    rows = {}
    if start < 0:
        return rows
    nxt = doc.find("\n## ", start + len(HEADING))
    for line in doc[start:nxt if nxt >= 0 else len(doc)].splitlines():
        if line.startswith("| ") and not line.startswith("| figure"):
            rows[line.split(" | ")[0][2:]] = line
    return rows


def section(out_dir, command, earlier):
    data = {(side, model): runs(out_dir, side, model) for side in ("c", "torch") for model in MODELS}
    nseeds = max(len(v) for v in data.values())
    seeds = sorted({int(m) for m in re.findall(r"-s(\d+)\.txt", " ".join(os.listdir(out_dir)))})
    failed = sum(1 for v in data.values() for r in v if r is None)
    lines = [
        HEADING,
        "",
        f"Written by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"load before `{first_line(os.path.join(out_dir, 'load-before.txt')).split('load average: ')[-1]}`, "
        f"after `{first_line(os.path.join(out_dir, 'load-after.txt')).split('load average: ')[-1]}`. "
        "`edifice train vae|realnvp|vqvae --data digits --seed S` at the CLI's defaults (1000 steps of batch 256 "
        "drawn with replacement from the 1,500 training digits, Adam lr 1e-3 with the cosine schedule down "
        "to lr/100), then `edifice eval` on the 297 test digits; PyTorch: bench/torch/learning.py, the same "
        "architectures, init (glorot-uniform weights, zero biases, zero RealNVP s/t heads), loss, data split "
        "and budget, on one thread. Random streams differ between the two sides. "
        f"Mean ± sd over up to {nseeds} seeds ({', '.join(map(str, seeds))}; a row with fewer says so), per test sample, lower is better. vae: neg ELBO with one z "
        "per digit, IWAE bound with K = 100; realnvp: one uniform-dequantisation draw per digit, the bound "
        "on the 17-level discrete likelihood; vqvae: two steps per iteration (autoencoder and codebook, then "
        "the prior on the codes), recon MSE through the codes, the prior's NLL of the test codes, and "
        "the test codes' histogram (codes used, perplexity; higher is better for these two). "
        "GANs (higher is better but for the Frechet distance): `edifice train gan|wgan_gp --data 8gaussians` at "
        "their own default budgets (gan 3000, wgan_gp 4000 iterations of n_critic 1 / 5 critic steps and a "
        "generator step, `edifice models`; wgan_gp with its 2-D defaults: both networks 128,128, lambda 0.1, "
        "Adam betas (0.5, 0.9), no critic dropout), then `edifice eval`'s modes hit (each by >= 1% of 10,000 samples "
        "within 3 std) and share of samples within 3 std of a mode (the data: 8/8, 98.9%); bench/torch/gan.py "
        "the same from numpy's draws of the data. `edifice train cgan --data digits` (1000 iterations), 297 "
        "samples for the test labels judged by eval's feature classifier (test accuracy 0.960; Frechet "
        "distance of its features, floor 4.24); the PyTorch twin's samples go through the same classifier "
        "(bench/score_samples). "
        "latent_diffusion (test_quality's budget): a VAE (latent 8, widths 128, STEPS steps), then the latent "
        "flow-matching denoiser (hidden 128, 2 blocks, one-hot classes with dropout 0.1) for 2 x STEPS steps "
        "on the VAE's scaled latent means; 297 samples for the test labels (Euler, 20 steps, no guidance), "
        "judged by eval's feature classifier (PyTorch's samples through bench/score_samples): Frechet distance of its features to the "
        "test digits' (the floor, train against test, is 4.24), and the share classified as the label asked "
        "for (higher is better); its training time is the denoiser's only. Training time: edifice's is the CLI's own `trained N steps in "
        "X s` (the step loop; the JIT compile before it, about a second, is not counted); PyTorch's is its "
        "step loop (eager). Both on one OpenBLAS thread, on a loaded 2-core machine.",
        "",
        "dit: `edifice train dit --data digits` at tests/test_quality.c's budget (the options and steps in "
        "bench/learning.sh; the CLI's default run is minutes per seed on this machine), then `edifice eval dit` "
        "unguided and with `--guidance 2`: 297 samples drawn for the test labels (Euler, 50 steps), judged by "
        "eval's feature classifier (label accuracy: the share classified as asked, higher is better; Frechet "
        "distance of its features to the test digits'); PyTorch: the same network (patches, sin-cos positions, "
        "adaLN-Zero blocks zero at init, label table with a null class, label dropout 0.1, flow matching) and "
        "budget, its samples scored by bench/score_samples with the same classifier. score_sde: `edifice train "
        "score_sde --sde vp|ve --data moons` at the CLI's defaults (on 2-D data: 8000 steps, denoiser 64 wide "
        "with 2 blocks), then `edifice eval`: 10,000 samples by the "
        "predictor-corrector sampler (200 steps, snr 0.16), sliced W1 over its floor (two independent draws of "
        "the data; 1 is perfect); PyTorch: the same denoiser, loss and sampler, scored by bench/score_samples. "
        "consistency: `edifice train consistency --data moons` at the CLI's defaults (consistency training; on "
        "2-D data the small network and 8000 steps, `edifice models consistency`), then `edifice eval` in one "
        "step and with `--steps 2` (10,000 samples, sliced W1 over its floor); PyTorch: bench/torch/consistency.py, "
        "the same network, parameterization, schedule, loss, EMA target, budget and sampler, scored by "
        "bench/score_samples. "
        "Rows of models not in the command's run are kept from the run that wrote them.",
        "",
        "| figure | edifice | PyTorch | edifice train s | PyTorch train s |",
        "|---|---|---|---|---|",
    ]
    for label, model, fig in ROWS:
        c = [r[fig] for r in data[("c", model)] if r and fig in r]
        t = [r[fig] for r in data[("torch", model)] if r and fig in r]
        ct = [r["train_seconds"] for r in data[("c", model)] if r and "train_seconds" in r]
        tt = [r["train_seconds"] for r in data[("torch", model)] if r and "train_seconds" in r]
        if not c and not t:
            if label in earlier:
                lines.append(earlier[label])
            continue
        digits = 4 if "bits" in label or "MSE" in label else 1 if "codes used" in label or "modes" in label else 3 \
            if "share" in label or "accuracy" in label else 2
        lines.append(f"| {label} | {stat(c, digits)} | {stat(t, digits)} | {stat(ct, 1)} | {stat(tt, 1)} |")
    if failed:
        lines += ["", f"{failed} run(s) failed; their raw output is in {out_dir}."]
    return "\n".join(lines) + "\n"


def splice(doc, new):
    """doc with its Learning section replaced by new (or new appended)."""
    start = doc.find(HEADING)
    if start < 0:
        return doc.rstrip("\n") + "\n\n" + new
    nxt = doc.find("\n## ", start + len(HEADING))
    rest = "" if nxt < 0 else doc[nxt + 1:]
    return doc[:start] + new + ("\n" + rest if rest else "")


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir, command, path = sys.argv[1:]
    try:
        with open(path) as f:
            doc = f.read()
    except FileNotFoundError:
        doc = "# Benchmark results\n"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(splice(doc, section(out_dir, command, earlier_rows(doc))))
    os.replace(tmp, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
