#!/usr/bin/env python3
"""The PyTorch side of `prixfixe bench`: the same models (tools/reference_models.py, built from
the spec), the same protocol — training step (forward + backward + AdamW step) timed over
repetitions after one warm-up, median and spread; inference without gradients, batch doubled
from 32, one warm-up and one timed pass each, best rate — on the same number of threads.

Usage: python3 tools/bench_reference.py --model dream-cnn [--data yeast|human|drosophila] \\
           --train-batches 32 --reps 3 --max-infer-batch 256 --threads 2 [--json out.json]
       python3 tools/bench_reference.py --task atac --model chrombpnet|dream-cnn|dream-rnn|dream-attn ...

On human (5 × 230, one task) and Drosophila (5 × 249, two tasks) data the DREAM models get the
regression head and the summed per-task MSE; `deepstarr` and `mprann` (4 channels, the ports of
tools/baseline_fixtures.py at full size) train with Adam as their recipes do.
With `--task atac` the model is ChromBPNet (tools/atac_fixtures.py at F = 512, D = 8) or a
DREAM trunk on the 4 bases with ChromBPNet's profile head, at 2,114 nt, over the frozen bias
model (F = 128, D = 4), with the multinomial + log-count loss: `prixfixe bench --task atac`.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(__file__))
import reference_models as R  # noqa: E402
import baseline_fixtures as B  # noqa: E402
import atac_fixtures as A  # noqa: E402

SHAPES = {"yeast": (6, 150, None), "human": (5, 230, 1), "drosophila": (5, 249, 2)}
ATAC_LENGTH, PROFILE = 2114, 1000


class ProfileHead(nn.Module):
    """ChromBPNet's head on a DREAM trunk (SPEC_BENCHMARKS §5.10): profile Conv1d(cin -> 1,
    75, valid) cropped to the central 1,000; counts Linear(cin -> 1) of the mean over
    positions. Output (B, 1,001): logits then log counts."""

    def __init__(self, cin):
        super().__init__()
        self.profile = nn.Conv1d(cin, 1, 75)
        self.counts = nn.Linear(cin, 1)

    def forward(self, x):
        p = self.profile(x)
        crop = (p.shape[2] - PROFILE) // 2
        return torch.cat([p[:, 0, crop:crop + PROFILE], self.counts(x.mean(dim=2))], dim=1)


def build_atac(name):
    """An ATAC model at 2,114 nt over the 4 bases, and ChromBPNet's bias model."""
    bias = A.Bpnet(128, 4, PROFILE)
    if name == "chrombpnet":
        return A.Bpnet(512, 8, PROFILE), bias
    trunk = R.build(name, 4, ATAC_LENGTH)
    width = (R.first_out(trunk.first) if name == "dream-rnn" else
             trunk.core.blocks[0].ff1.linear2.out_features if name == "dream-attn" else
             64)
    return R.PrixFixeNet(trunk.first, trunk.core, ProfileHead(width)), bias


def profile_loss(out, counts, weight=1.0):
    """Multinomial NLL (factorial terms included) + weight x MSE of the log counts."""
    logits, lc = out[:, :PROFILE], out[:, PROFILE]
    n = counts.sum(dim=1)
    nll = -(counts * torch.log_softmax(logits, dim=1)).sum(1) \
        - torch.lgamma(n + 1) + torch.lgamma(counts + 1).sum(1)
    return nll.mean() + weight * ((lc - torch.log1p(n)) ** 2).mean()


def combine(a, b):
    """The frozen-bias combination: logits added, log counts by log-sum-exp."""
    logits = a[:, :PROFILE] + b[:, :PROFILE]
    lc = torch.logsumexp(torch.stack([a[:, PROFILE], b[:, PROFILE]]), dim=0)
    return torch.cat([logits, lc[:, None]], dim=1)


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
    ap.add_argument("--task", default="expression", choices=["expression", "atac"])
    ap.add_argument("--train-batches", default="32,64")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--max-infer-batch", type=int, default=1024)
    ap.add_argument("--max-infer-seconds", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    atac = a.task == "atac"
    if atac:
        model, bias = build_atac(a.model)
        bias.eval()
        c, l, tasks = 4, ATAC_LENGTH, "profile"
    else:
        model, c, l, tasks = build(a.model, a.data)
    params = R.n_params(model)
    baseline = a.model in ("deepstarr", "mprann")
    if baseline:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)

    def forward(x):
        if atac:  # the frozen bias model's forward pass is part of every step
            with torch.no_grad():
                b = bias(x)
            return combine(model(x), b)
        out = model(x)
        return out if baseline else out[0]
    print(f"pytorch {torch.__version__}, {torch.get_num_threads()} threads, {a.model}: {params} parameters")
    train = []
    for b in [int(x) for x in a.train_batches.split(",")]:
        x = torch.rand(b, c, l)
        if atac:
            y = torch.floor(3 * torch.rand(b, PROFILE))
        elif tasks is None:
            y = torch.softmax(torch.rand(b, R.N_BINS), dim=1)
        else:
            y = torch.rand(b, tasks)
        model.train()
        times = []
        for rep in range(a.reps + 1):
            t = time.perf_counter()
            out = forward(x)
            if atac:
                loss = profile_loss(out, y)
            elif tasks is None:
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
    train_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory after training: {train_peak:.0f} MiB")
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
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"best inference {best:.1f} seq/s; peak memory {peak:.0f} MiB")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"params": params, "train": train, "inference": inference,
                       "best_seqs_per_sec": best, "peak_rss_mib": peak,
                       "train_peak_rss_mib": train_peak}, f, indent=1)


if __name__ == "__main__":
    main()
