#!/usr/bin/env python3
"""Training-mode gradient fixtures for the tiny DREAM models (tests/parity.rs reads them).

For each tests/fixtures/tiny_<model>.pth (written by reference_models.py), in training mode
(BatchNorm on batch statistics) with dropout switched off (its masks are random on both sides),
it computes the head's raw output for the fixture's input rows, the loss
sum(output * probe) with a fixed probe, and the gradient of that loss with respect to every
parameter, and writes them to tests/fixtures/grad_<model>.json.

Usage:  python3 tools/grad_fixtures.py [--out tests/fixtures]
Needs:  pip install torch numpy
"""
import argparse
import json
import math
import os

import torch
import torch.nn as nn

from reference_models import build


def probe(shape):
    """A fixed probe both sides can compute: sin(0.7·i + 0.3)."""
    n = math.prod(shape)
    return torch.tensor([math.sin(0.7 * i + 0.3) for i in range(n)],
                        dtype=torch.float32).reshape(shape)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures")
    a = ap.parse_args()
    for name in ["dream-cnn", "dream-rnn", "dream-attn"]:
        stem = os.path.join(a.out, f"tiny_{name}")
        with open(stem + ".json") as f:
            fx = json.load(f)
        x = torch.tensor(fx["input"], dtype=torch.float32).reshape(fx["input_shape"])
        m = build(name, x.shape[1], x.shape[2], tiny=True)
        m.load_state_dict(torch.load(stem + ".pth"))
        m.train()
        for mod in m.modules():
            if isinstance(mod, nn.Dropout):
                mod.p = 0.0
        out, _ = m(x)  # the head's raw output (logits)
        p = probe(out.shape)
        (out * p).sum().backward()
        grads = {k: v.grad.reshape(-1).tolist() for k, v in m.named_parameters()}
        path = os.path.join(a.out, f"grad_{name}.json")
        with open(path, "w") as f:
            json.dump({"model": name, "input_shape": list(x.shape), "input": fx["input"],
                       "output_shape": list(out.shape), "output": out.reshape(-1).tolist(),
                       "grads": grads}, f)
        print(path, len(grads), "parameters")


if __name__ == "__main__":
    main()
