#!/usr/bin/env python3
"""The PyTorch side of `prixfixe bench`: the same models (tools/reference_models.py, built from
the spec), the same protocol — training step (forward + backward + AdamW step) timed over
repetitions after one warm-up, median and spread; inference without gradients, batch doubled
from 32, one warm-up and one timed pass each, best rate — on the same number of threads.

Usage: python3 tools/bench_reference.py --model dream-cnn --train-batches 32 --reps 3 \\
           --max-infer-batch 256 --threads 2 [--json out.json]
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="dream-cnn")
    ap.add_argument("--train-batches", default="32,64")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--max-infer-batch", type=int, default=1024)
    ap.add_argument("--max-infer-seconds", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    c, l = 6, 150
    model = R.build(a.model, c, l)
    params = R.n_params(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    print(f"pytorch {torch.__version__}, {torch.get_num_threads()} threads, {a.model}: {params} parameters")
    train = []
    for b in [int(x) for x in a.train_batches.split(",")]:
        x = torch.rand(b, c, l)
        y = torch.softmax(torch.rand(b, R.N_BINS), dim=1)
        model.train()
        times = []
        for rep in range(a.reps + 1):
            t = time.perf_counter()
            logits, _ = model(x)
            loss = torch.nn.functional.kl_div(torch.log_softmax(logits, 1), y, reduction="batchmean")
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
            model(x)
            t = time.perf_counter()
            model(x)
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
