#!/usr/bin/env python3
"""PyTorch side of the training-kernel benchmarks in benches/kernels.rs: forward + backward
(input gradient, as `y.sum().backward()`) of a Conv1d(256→256, k=9, same padding) and of a
bidirectional LSTM(256→320), both at batch 64 × 150, median over repetitions after a warm-up.

Usage:  python3 tools/bench_kernels_reference.py [--threads 2] [--reps 5]
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn


def timed(f, reps):
    f()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), min(times), max(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    conv = nn.Conv1d(256, 256, 9, padding="same")
    xc = torch.rand(64, 256, 150, requires_grad=True)

    def conv_step():
        conv.zero_grad()
        xc.grad = None
        conv(xc).sum().backward()

    lstm = nn.LSTM(256, 320, batch_first=True, bidirectional=True)
    xl = torch.rand(64, 150, 256, requires_grad=True)

    def lstm_step():
        lstm.zero_grad()
        xl.grad = None
        lstm(xl)[0].sum().backward()

    for name, f in [("conv 256→256 k=9, batch 64 × 150", conv_step),
                    ("BiLSTM 256→2×320, batch 64 × 150", lstm_step)]:
        med, lo, hi = timed(f, a.reps)
        print(f"{name}: median {med:.1f} ms (min {lo:.1f}, max {hi:.1f})")


if __name__ == "__main__":
    main()
