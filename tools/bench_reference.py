#!/usr/bin/env python3
"""The PyTorch side of `prixfixe bench`: the same models (tools/reference_models.py, built from
the spec), the same protocol — training step (forward + backward + AdamW step) timed over
repetitions after one warm-up, median and spread; inference without gradients, batch doubled
from 32, one warm-up and one timed pass each, best rate — on the same number of threads.

Usage: python3 tools/bench_reference.py --model dream-cnn [--data yeast|human|drosophila] \\
           --train-batches 32 --reps 3 --max-infer-batch 256 --threads 2 [--json out.json]

On human (5 × 230, one task) and Drosophila (5 × 249, two tasks) data the DREAM models get the
regression head and the summed per-task MSE; `deepstarr` and `mprann` (4 channels, the ports of
tools/baseline_fixtures.py at full size) train with Adam as their recipes do.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
import reference_models as R  # noqa: E402
import baseline_fixtures as B  # noqa: E402

SHAPES = {"yeast": (6, 150, None), "human": (5, 230, 1), "drosophila": (5, 249, 2)}


def build(name, data):
    """The model, its input shape and its task count (None: yeast's 18 bins)."""
    c, l, tasks = SHAPES[data]
    if name == "deepstarr":
        t = tasks or 1
        return B.DeepSTARR(l, 256, [60, 60, 120], [3, 5, 3], [256, 256], t, 0.4), 4, l, t
    if name == "mprann":
        t = tasks or 1
        return B.MPRAnn(l, 250, [250, 250, 100], [8, 3, 2], [300, 200], t, 0.1), 4, l, t
    return R.build(name, c, l, tasks=tasks), c, l, tasks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="dream-cnn")
    ap.add_argument("--data", default="yeast", choices=sorted(SHAPES))
    ap.add_argument("--train-batches", default="32,64")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--max-infer-batch", type=int, default=1024)
    ap.add_argument("--max-infer-seconds", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model, c, l, tasks = build(a.model, a.data)
    params = R.n_params(model)
    baseline = a.model in ("deepstarr", "mprann")
    if baseline:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)

    def forward(x):
        out = model(x)
        return out if baseline else out[0]
    print(f"pytorch {torch.__version__}, {torch.get_num_threads()} threads, {a.model}: {params} parameters")
    train = []
    for b in [int(x) for x in a.train_batches.split(",")]:
        x = torch.rand(b, c, l)
        y = torch.softmax(torch.rand(b, R.N_BINS), dim=1) if tasks is None else torch.rand(b, tasks)
        model.train()
        times = []
        for rep in range(a.reps + 1):
            t = time.perf_counter()
            out = forward(x)
            if tasks is None:
                loss = torch.nn.functional.kl_div(torch.log_softmax(out, 1), y, reduction="batchmean")
            else:
                loss = ((out - y) ** 2).mean(0).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if rep > 0:
                times.append((time.perf_counter() - t) * 1000)
        med = statistics.median(times)
        print(f"train step, batch {b:>5}: median {med:>9.1f} ms (min {min(times):.1f}, max {max(times):.1f})")
        train.append({"batch": b, "median_ms": med, "min_ms": min(times), "max_ms": max(times)})
    model.eval()
    inference = []
    b = 32
    with torch.no_grad():
        while b <= a.max_infer_batch:
            x = torch.rand(b, c, l)
            forward(x)
            t = time.perf_counter()
            forward(x)
            secs = time.perf_counter() - t
            print(f"inference, batch {b:>5}: {b / secs:>9.1f} seq/s")
            inference.append({"batch": b, "seqs_per_sec": b / secs})
            if secs > a.max_infer_seconds:
                break
            b *= 2
    best = max(i["seqs_per_sec"] for i in inference)
    print(f"best inference {best:.1f} seq/s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"params": params, "train": train, "inference": inference,
                       "best_seqs_per_sec": best}, f, indent=1)


if __name__ == "__main__":
    main()
