#!/usr/bin/env python3
"""Block-level parity fixtures for the Prix Fixe modules added for the grid (tests/blocks.rs).

Each block is written here in PyTorch from ../shared/SPEC_GRID.md (the reference code's
layers, state_dict names and defaults), alone, at a small size, with torch-random weights.
For a fixed random input it records the block's output, the gradient of sum(output * probe)
(probe = sin(0.7 i + 0.3)) with respect to the input and to every parameter, and for a final
block its loss against a fixed target. One JSON file per case: tests/fixtures/block_<case>.json.

Usage:  python3 tools/block_fixtures.py [--out tests/fixtures]
Needs:  pip install torch numpy
"""
import argparse
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F


class UnlockDNAFirst(nn.Module):
    """SPEC_GRID §7 (prixfixe/unlockdna/first_layers_block.py), stride 1, seqsize = L."""

    def __init__(self, cin, d, seqsize, kmer):
        super().__init__()
        self.pos_embedding = nn.Embedding(seqsize, d)
        self.strand_embedding = nn.Embedding(2, d)
        self.expression_embedding = nn.Linear(1, d)
        self.kmer_dense = nn.Linear(cin * kmer, d)
        self.seqsize = seqsize
        self.kmer = kmer

    def forward(self, x):
        x = F.pad(x, (self.kmer // 2 - 1, self.kmer // 2, 0, 0))
        x = x.unfold(2, self.kmer, 1)          # (B, C, L, k)
        x = x.permute(0, 2, 1, 3).contiguous()  # (B, L, C, k)
        x = x.transpose(2, 3)                   # (B, L, k, C)
        x = x.reshape(x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        x = self.kmer_dense(x)
        half = self.seqsize // 2
        strand = torch.tensor([0] * half + [1] * half).unsqueeze(0)
        x = x + self.strand_embedding(strand)
        return x.transpose(1, 2)


class BHIFinal(nn.Module):
    """SPEC_GRID §4 (prixfixe/bhi/final_layers_block.py): flatten → 64 → 64 → 1, Huber."""

    def __init__(self, cin, length, hidden=64):
        super().__init__()
        self.main = nn.Sequential(
            nn.Linear(cin * length, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 1))

    def forward(self, x):
        return self.main(x.flatten(1)).squeeze(-1)

    def loss(self, out, y):
        return nn.HuberLoss(delta=1.0)(out, y)


class UnlockDNAFinal(nn.Module):
    """SPEC_GRID §8 (prixfixe/unlockdna/final_layers_block.py), its outputs laid out as ours:
    the expression, then the (5, L) nucleotide logits flattened class-major. The loss is the
    Unlock_DNA trainer's (SPEC_GRID §6): MSE + Σ mask·CE / (Σ mask + 1); its target is
    (y, one-hot tokens (5, L) class-major, mask (L)) per row."""

    def __init__(self, cin, seqsize, num_projectors=8, rate=0.0):
        super().__init__()
        self.expression_dense = nn.Linear(cin, 1)
        self.dropout = nn.Dropout(rate)
        self.nucleotide_dense = nn.Linear(cin, 5)
        self.seqsize = seqsize
        self.num_projectors = num_projectors

    def forward(self, x):
        expression = x[:, :, :self.num_projectors].permute(0, 2, 1)
        x = x[:, :, -self.seqsize:].permute(0, 2, 1)
        expression = self.dropout(expression)
        expression = self.expression_dense(expression)
        expression = torch.mean(expression, 1).squeeze(-1)
        logits = self.nucleotide_dense(x).permute(0, 2, 1)  # (B, 5, L)
        return torch.cat([expression[:, None], logits.reshape(x.shape[0], -1)], 1)

    def loss(self, out, target):
        b, l = out.shape[0], self.seqsize
        expression, logits = out[:, 0], out[:, 1:].reshape(b, 5, l)
        y = target[:, 0]
        tokens = target[:, 1:1 + 5 * l].reshape(b, 5, l).argmax(1)
        mask = target[:, 1 + 5 * l:]
        ce = F.cross_entropy(logits, tokens, reduction="none")  # (B, L)
        return F.mse_loss(expression, y) + (mask * ce).sum() / (mask.sum() + 1)


def probe(shape):
    n = math.prod(shape)
    return torch.tensor([math.sin(0.7 * i + 0.3) for i in range(n)],
                        dtype=torch.float32).reshape(shape)


def flat(t):
    return t.detach().reshape(-1).tolist()


def case(name, slot, config, module, x, prefix, target=None):
    x = x.clone().requires_grad_(True)
    out = module(x)
    (out * probe(out.shape)).sum().backward()
    fx = {
        "slot": slot,
        "config": config,
        "input_shape": list(x.shape),
        "input": flat(x),
        "output_shape": list(out.shape),
        "output": flat(out),
        "input_grad": flat(x.grad),
        "weights": {f"{prefix}.{k}": {"shape": list(v.shape), "data": flat(v)}
                    for k, v in module.state_dict().items()},
        # Parameters the forward pass does not use have no gradient.
        "grads": {f"{prefix}.{k}": flat(v.grad)
                  for k, v in module.named_parameters() if v.grad is not None},
        "n_params": sum(p.numel() for p in module.parameters()),
    }
    if target is not None:
        fx["target_shape"] = list(target.shape)
        fx["target"] = flat(target)
        fx["loss"] = module.loss(out.detach(), target).item()
        # The loss's gradient with respect to the input, through the block.
        x2 = x.detach().clone().requires_grad_(True)
        module.loss(module(x2), target).backward()
        fx["loss_input_grad"] = flat(x2.grad)
    return name, fx


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures")
    a = ap.parse_args()
    torch.manual_seed(20261201)
    cases = []
    for kmer, length in [(4, 20), (10, 30)]:
        m = UnlockDNAFirst(6, 8, length, kmer)
        x = torch.randn(3, 6, length)
        cases.append(case(f"unlock-dna-first_k{kmer}", "first",
                          {"block": "unlock-dna", "out_channels": 8, "kmer": kmer},
                          m, x, "first"))
    m = BHIFinal(5, 7)
    x = torch.randn(4, 5, 7)
    y = torch.randn(4) * 2.0
    cases.append(case("bhi-final", "final", {"block": "bhi"}, m, x, "final", y))
    b, c, l = 3, 6, 12
    m = UnlockDNAFinal(c, l)
    x = torch.randn(b, c, l)
    tokens = torch.randint(0, 5, (b, l))
    mask = ((torch.rand(b, l) < 0.4) & (tokens != 4)).float()
    target = torch.cat([torch.randn(b, 1), F.one_hot(tokens, 5).permute(0, 2, 1).reshape(b, -1).float(),
                        mask], 1)
    cases.append(case("unlock-dna-final", "final", {"block": "unlock-dna", "dropout": 0.0},
                      m, x, "final", target))
    for name, fx in cases:
        path = os.path.join(a.out, f"block_{name}.json")
        with open(path, "w") as f:
            json.dump(fx, f)
        print(path, fx["n_params"], "parameters")


if __name__ == "__main__":
    main()
