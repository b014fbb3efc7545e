#!/usr/bin/env python3
"""Parity fixtures for the Keras baselines DeepSTARR and MPRAnn (tests/parity.rs reads them).

Both models are written here in PyTorch from ../shared/SPEC_BENCHMARKS.md §3–4 with Keras
semantics: inputs one-hot A, C, G, T with N as zeros, layout (batch, channels, length);
BatchNorm momentum 0.01 (Keras 0.99) and eps 1e-3; `same` / `valid` convolutions; flooring
max pooling; MPRAnn's softmax over the channel axis; Keras' position-major Flatten, i.e.
flatten in (length, channels) order. Each model is built at a small width (the layer structure
and input length of the real one), with torch-random weights and non-trivial BatchNorm
statistics.

For fixed sequences (with an N), one fixture per model records: the sequences and their
encoding; the weights (our tensor names); in training mode (batch statistics) with dropout off:
the output, the gradient of sum(output · probe) (probe = sin(0.7 i + 0.3)) with respect to the
input and every parameter, the summed per-task MSE against a fixed target, and the running
statistics after that one step; then the output in evaluation mode.

Usage:  python3 tools/baseline_fixtures.py [--out tests/fixtures]
Needs:  pip install torch numpy
"""
import argparse
import json
import math
import os
import random

import torch
import torch.nn as nn
import torch.nn.functional as F

KERAS_BN = dict(momentum=0.01, eps=1e-3)


def bn(c):
    return nn.BatchNorm1d(c, **KERAS_BN)


def flatten_positions(x):
    """Keras' Flatten of a (length, channels) tensor held as (batch, channels, length)."""
    return x.transpose(1, 2).reshape(x.shape[0], -1)


class ConvBn(nn.Module):
    def __init__(self, cin, cout, k, same):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, k, padding=(k - 1) // 2 if same else 0)
        self.bn = bn(cout)


class DenseBn(nn.Module):
    def __init__(self, din, dout):
        super().__init__()
        self.linear = nn.Linear(din, dout)
        self.bn = bn(dout)


class Seq(nn.Module):
    """first / core / final as the framework splits the model (our tensor names)."""


class DeepSTARR(nn.Module):
    """SPEC_BENCHMARKS §3.1: conv(k7, same) → BN → ReLU → pool 2, three more such convs,
    flatten, two Dense → BN → ReLU → Dropout, one Dense(1) per task."""

    def __init__(self, length, f1, filters, kernels, hidden, tasks, dropout=0.0):
        super().__init__()
        self.first = Seq()
        self.first.conv = nn.Conv1d(4, f1, 7, padding=3)
        self.first.bn = bn(f1)
        self.core = Seq()
        self.core.convs = nn.ModuleList()
        c, l = f1, length // 2
        for f, k in zip(filters, kernels):
            self.core.convs.append(ConvBn(c, f, k, True))
            c, l = f, l // 2
        self.final = Seq()
        self.final.dense = nn.ModuleList()
        d = c * l
        for h in hidden:
            self.final.dense.append(DenseBn(d, h))
            d = h
        self.final.heads = nn.ModuleList([nn.Linear(d, 1) for _ in range(tasks)])
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        x = F.max_pool1d(F.relu(self.first.bn(self.first.conv(x))), 2)
        for layer in self.core.convs:
            x = F.max_pool1d(F.relu(layer.bn(layer.conv(x))), 2)
        h = flatten_positions(x)
        for layer in self.final.dense:
            h = self.drop(F.relu(layer.bn(layer.linear(h))))
        return torch.cat([head(h) for head in self.final.heads], 1)


class MPRAnn(nn.Module):
    """SPEC_BENCHMARKS §4.1: conv(k7, valid, ReLU) → BN; conv(k8, softmax) → BN → pool 2 →
    Dropout; conv(k3, softmax) → BN; conv(k2, softmax) → BN → Dropout; flatten → Dense
    sigmoid → Dropout → Dense sigmoid → Dense linear. Softmax over channels."""

    def __init__(self, length, f1, filters, kernels, hidden, tasks, dropout=0.0):
        super().__init__()
        self.first = Seq()
        self.first.conv = nn.Conv1d(4, f1, 7)
        self.first.bn = bn(f1)
        self.core = Seq()
        self.core.convs = nn.ModuleList()
        c, l = f1, length - 6
        for i, (f, k) in enumerate(zip(filters, kernels)):
            self.core.convs.append(ConvBn(c, f, k, False))
            c, l = f, l - k + 1
            if i == 0:
                l //= 2
        self.final = Seq()
        self.final.dense = nn.ModuleList()
        d = c * l
        for h in hidden + [tasks]:
            self.final.dense.append(nn.Linear(d, h))
            d = h
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        x = self.first.bn(F.relu(self.first.conv(x)))
        for i, layer in enumerate(self.core.convs):
            x = layer.bn(torch.softmax(layer.conv(x), 1))
            if i == 0:
                x = self.drop(F.max_pool1d(x, 2))
        x = self.drop(x)
        h = flatten_positions(x)
        last = len(self.final.dense) - 1
        for i, layer in enumerate(self.final.dense):
            h = layer(h)
            if i < last:
                h = torch.sigmoid(h)
            if i == 0:
                h = self.drop(h)
        return h


def one_hot_acgt(seq):
    idx = {"A": 0, "C": 1, "G": 2, "T": 3}
    x = torch.zeros(4, len(seq))
    for j, ch in enumerate(seq):
        if ch in idx:
            x[idx[ch], j] = 1.0
    return x


def probe(shape):
    n = math.prod(shape)
    return torch.tensor([math.sin(0.7 * i + 0.3) for i in range(n)],
                        dtype=torch.float32).reshape(shape)


def flat(t):
    return t.detach().reshape(-1).tolist()


def fixture(name, model, config, length, rows, tasks, rng):
    seqs = ["".join(rng.choice("ACGT") for _ in range(length)) for _ in range(rows)]
    seqs[1] = seqs[1][:10] + "N" + seqs[1][11:]
    x = torch.stack([one_hot_acgt(s) for s in seqs]).requires_grad_(True)
    # BatchNorm statistics that are not the identity, so evaluation mode means something.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    weights = {k: {"shape": list(v.shape), "data": flat(v)}
               for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    model.train()
    out = model(x)
    (out * probe(out.shape)).sum().backward()
    target = torch.randn(rows, tasks)
    loss = ((out.detach() - target) ** 2).mean(0).sum().item()
    running = {k: flat(v) for k, v in model.state_dict().items()
               if k.endswith("running_mean") or k.endswith("running_var")}
    model.eval()
    with torch.no_grad():
        eval_out = model(x.detach())
    return {
        "model": name,
        "config": config,
        "length": length,
        "seqs": seqs,
        "input_shape": list(x.shape),
        "input": flat(x),
        "weights": weights,
        "output_shape": list(out.shape),
        "output": flat(out),
        "input_grad": flat(x.grad),
        "grads": {k: flat(v.grad) for k, v in model.named_parameters()},
        "target": flat(target),
        "loss": loss,
        "running_after_step": running,
        "eval_output": flat(eval_out),
        "n_params": sum(p.numel() for p in model.parameters()),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures")
    a = ap.parse_args()
    torch.manual_seed(20261202)
    rng = random.Random(7)
    cases = []
    # DeepSTARR at 249 nt, two tasks, narrow.
    f1, filters, kernels, hidden = 12, [8, 8, 10], [3, 5, 3], [16, 12]
    m = DeepSTARR(249, f1, filters, kernels, hidden, 2)
    config = {
        "first": {"block": "deepstarr", "filters": f1},
        "core": {"block": "deepstarr", "filters": filters, "kernels": kernels},
        "final": {"block": "deepstarr", "tasks": 2, "hidden": hidden, "dropout": 0.0},
    }
    cases.append(fixture("deepstarr", m, config, 249, 5, 2, rng))
    # MPRAnn at 230 nt, one task, narrow.
    f1, filters, kernels, hidden = 10, [9, 8, 6], [8, 3, 2], [12, 7]
    m = MPRAnn(230, f1, filters, kernels, hidden, 1)
    config = {
        "first": {"block": "mprann", "filters": f1},
        "core": {"block": "mprann", "filters": filters, "kernels": kernels, "dropout": 0.0},
        "final": {"block": "mprann", "tasks": 1, "hidden": hidden, "dropout": 0.0},
    }
    cases.append(fixture("mprann", m, config, 230, 4, 1, rng))
    for fx in cases:
        path = os.path.join(a.out, f"baseline_{fx['model']}.json")
        with open(path, "w") as f:
            json.dump(fx, f)
        print(path, fx["n_params"], "parameters")


if __name__ == "__main__":
    main()
