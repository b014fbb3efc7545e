#!/usr/bin/env python3
"""Parity fixture for the ChromBPNet models (tests/parity.rs::atac_models_match_pytorch).

ChromBPNet's BPNet tower, profile head, frozen-bias combination and loss are written here in
PyTorch from ../shared/SPEC_BENCHMARKS.md §5.3-5.6, independently of the Rust code:

- tower: Conv1d(4 -> F, 21, valid) -> ReLU; for i = 1..D: Conv1d(F -> F, 3, valid,
  dilation 2^i) -> ReLU, added to the input cropped symmetrically;
- head: profile Conv1d(F -> 1, 75, valid) cropped symmetrically to P positions (logits);
  counts: mean over the tower's positions -> Linear(F -> 1);
- combined: logits added, log counts by torch.logsumexp;
- loss: -sum_i Multinomial(total_count = n_i, logits_i).log_prob(counts_i) / batch (torch's
  own distribution, factorial terms included) + w * MSE(log counts, log(1 + n)).

At small widths (accessibility F = 8, D = 3; bias F = 6, D = 2) and a short input (300 nt,
P = 100), with torch-random weights, the fixture records the one-hot input of two sequences
(one with an N), both models' weights (our tensor names), the combined output, both loss
parts, and the gradient of the total loss with respect to the input and every accessibility
parameter (the bias model is frozen).

Usage:  python3 tools/atac_fixtures.py [--out tests/fixtures]
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

L, P, W = 300, 100, 3.7


class Bpnet(nn.Module):
    def __init__(self, filters, layers, profile_length=P):
        super().__init__()
        self.profile_length = profile_length
        self.first = nn.Conv1d(4, filters, 21)
        self.layers = nn.ModuleList(
            nn.Conv1d(filters, filters, 3, dilation=2 ** (i + 1)) for i in range(layers)
        )
        self.profile = nn.Conv1d(filters, 1, 75)
        self.counts = nn.Linear(filters, 1)

    def forward(self, x):
        x = F.relu(self.first(x))
        for conv in self.layers:
            h = F.relu(conv(x))
            crop = (x.shape[2] - h.shape[2]) // 2
            x = x[:, :, crop:crop + h.shape[2]] + h
        p = self.profile(x)
        n = self.profile_length
        crop = (p.shape[2] - n) // 2
        logits = p[:, 0, crop:crop + n]
        counts = self.counts(x.mean(dim=2))
        return torch.cat([logits, counts], dim=1)

    def named(self):
        names = {"first.weight": "first.conv.weight", "first.bias": "first.conv.bias"}
        out = {}
        for k, v in self.state_dict().items():
            k = names.get(k, k)
            if k.startswith("layers."):
                k = "core." + k
            elif k.startswith(("profile.", "counts.")):
                k = "final." + k
            out[k] = {"shape": list(v.shape), "data": v.flatten().tolist()}
        return out


def one_hot(seq):
    x = torch.zeros(4, len(seq))
    for j, b in enumerate(seq):
        if b in "ACGT":
            x["ACGT".index(b), j] = 1.0
    return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures")
    args = ap.parse_args()
    torch.manual_seed(11)
    random.seed(11)
    seqs = ["".join(random.choice("ACGT") for _ in range(L)) for _ in range(2)]
    seqs[1] = seqs[1][:40] + "N" + seqs[1][41:]
    main_model, bias_model = Bpnet(8, 3), Bpnet(6, 2)
    for m in (main_model, bias_model):
        for p in m.parameters():
            with torch.no_grad():
                p.mul_(1.5)
    x = torch.stack([one_hot(s) for s in seqs]).requires_grad_(True)
    counts = torch.tensor([[float(random.choice([0, 0, 0, 1, 1, 2, 5])) for _ in range(P)]
                           for _ in range(2)])
    with torch.no_grad():
        b = bias_model(x)
    a = main_model(x)
    logits = a[:, :P] + b[:, :P]
    lc = torch.logsumexp(torch.stack([a[:, P], b[:, P]]), dim=0)
    out = torch.cat([logits, lc[:, None]], dim=1)
    n = counts.sum(dim=1)
    nll = -sum(
        torch.distributions.Multinomial(total_count=int(n[i]), logits=logits[i]).log_prob(counts[i])
        for i in range(2)
    ) / 2
    mse = ((lc - torch.log1p(n)) ** 2).mean()
    loss = nll + W * mse
    loss.backward()
    fixture = {
        "length": L,
        "profile_length": P,
        "counts_weight": W,
        "main": {"filters": 8, "layers": 3},
        "bias": {"filters": 6, "layers": 2},
        "seqs": seqs,
        "input": x.detach().flatten().tolist(),
        "counts": counts.flatten().tolist(),
        "main_weights": main_model.named(),
        "bias_weights": bias_model.named(),
        "output": out.detach().flatten().tolist(),
        "nll": nll.item(),
        "mse": mse.item(),
        "loss": loss.item(),
        "input_grad": x.grad.flatten().tolist(),
        "grads": {
            k: v.grad.flatten().tolist()
            for k, v in zip(main_model.named().keys(), main_model.parameters())
        },
        "torch": torch.__version__,
    }
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "atac_bpnet.json")
    with open(path, "w") as f:
        json.dump(fixture, f)
    print(f"{path}: loss {loss.item():.6f} (nll {nll.item():.6f}, mse {mse.item():.6f})")


if __name__ == "__main__":
    main()
