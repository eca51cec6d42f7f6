"""Start-up and per-chunk latency of a PyTorch eager twin of `edifice train ddpm --data
demo`'s policy (bench/export.sh): the W7 network (workloads.PolicyDenoiser) at the demo's
sizes, observation 6 and chunk 8 x 2, DDPM 100 steps, batch 1, no grad. Weights are random:
this measures latency, not the policy. Prints the time from the interpreter's start to the
first chunk (import torch included) and the median of N more chunks."""
import time

T0 = time.monotonic()  # noqa: E402  (as early as the script can measure)

import os  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import workloads  # noqa: E402


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = workloads.PolicyDenoiser(obs=6, d=16)
    obs = torch.tensor([[((i % 5) - 2) / 2.0 for i in range(6)]])

    def eps(x, t, a, s):
        return model(x, float(t), obs)

    def chunk():
        return workloads.sample_ddpm(steps=100, eps_fn=eps, shape=(1, 8, 2))

    with torch.no_grad():
        chunk()
        first = time.monotonic() - T0
        if n == 0:
            print("torch first_chunk_ms=%.1f (interpreter start not included)" % (1e3 * first))
            return
        t = []
        for _ in range(n):
            s = time.monotonic()
            chunk()
            t.append(time.monotonic() - s)
    t.sort()
    print("torch first_chunk_ms=%.1f (after import: interpreter start not included) per_chunk median_ms=%.3f "
          "min_ms=%.3f max_ms=%.3f chunks=%d" % (1e3 * first, 1e3 * t[n // 2], 1e3 * t[0], 1e3 * t[-1], n))


if __name__ == "__main__":
    main()
