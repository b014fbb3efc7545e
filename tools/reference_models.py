#!/usr/bin/env python3
"""PyTorch implementation of the Prix Fixe DREAM models, written from SPEC §2-§3, with the
reference code's parameter names (shared/REFERENCE_WEIGHTS.md).

It produces the parity fixtures the Rust tests read (CI needs no Python):

  tests/fixtures/parity_<model>.json   inputs, logits/outputs and decoded expression, eval mode,
                                        for weights set by a formula both sides can compute
                                        (so the 4-million-parameter models need no weight files)
  tests/fixtures/tiny_<model>.pth      small variants with torch-random weights, saved by
  tests/fixtures/tiny_<model>.safetensors  torch.save and as safetensors, with their outputs in
  tests/fixtures/tiny_<model>.json     the JSON (tests the file readers end to end)

Usage:  python3 tools/reference_models.py [--out tests/fixtures]
Needs:  pip install torch numpy
"""
import argparse
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

N_BINS = 18

# ---------------------------------------------------------------- data (SPEC §2.2, §2.3)

LEFT150 = ("AGTCCACTATTAAAGAACGTGGACTCCAACGTCAAAGGGCGAAAAACCGTCTATCAGGGCGATGGCCCACTACGTGAACC"
           "ATCACCCTAATCAAGTGCTAGCAGGAATGATGCAAAAGGTTCCCGATTCGAACTGCATTTTTTTCACATC")
assert len(LEFT150) == 150
CODE = {"A": 0, "G": 1, "C": 2, "T": 3}
COMP = {"A": "T", "T": "A", "G": "C", "C": "G", "N": "N"}


def pad_yeast(read):
    return (LEFT150 + read[17:])[-150:]


def revcomp(s):
    return "".join(COMP.get(c, "N") for c in reversed(s))


def encode(seq, is_reverse, is_singleton, channels):
    x = np.zeros((channels, len(seq)), dtype=np.float32)
    for j, c in enumerate(seq.upper()):
        if c in CODE:
            x[CODE[c], j] = 1.0
        else:
            x[:4, j] = 0.25
    if channels >= 5:
        x[4, :] = float(is_reverse)
    if channels >= 6:
        x[5, :] = float(is_singleton)
    return x


# ---------------------------------------------------------------- blocks (SPEC §3)

class ConvUnit(nn.Module):
    """Named like the reference's BHI conv: `conv_list.{i}.conv`."""

    def __init__(self, cin, cout, k):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, k, padding="same")

    def forward(self, x):
        return self.conv(x)


class BHIFirst(nn.Module):
    def __init__(self, cin, cout=320, ks=(9, 15), dropout=0.2):
        super().__init__()
        self.conv_list = nn.ModuleList([ConvUnit(cin, cout // len(ks), k) for k in ks])
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return torch.cat([self.dropout(F.relu(c(x))) for c in self.conv_list], dim=1)


class AutosomeFirst(nn.Module):
    def __init__(self, cin, cout=256, k=7):
        super().__init__()
        self.block = nn.Sequential(nn.Conv1d(cin, cout, k, padding="same", bias=False),
                                   nn.BatchNorm1d(cout), nn.SiLU())

    def forward(self, x):
        return self.block(x)


class SE(nn.Module):
    def __init__(self, channels, hidden):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.SiLU(),
                                nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, x):
        return x * self.fc(x.mean(dim=2)).unsqueeze(2)


class AutosomeCore(nn.Module):
    def __init__(self, cin, widths=(128, 128, 64, 64, 64, 64), k=7, expand=4):
        super().__init__()
        self.seqextractor = nn.Module()
        p = cin
        self.n = len(widths)
        for i, s in enumerate(widths):
            e = expand * s
            setattr(self.seqextractor, f"inv_res_blc{i}", nn.Sequential(
                nn.Conv1d(p, e, 1, bias=False), nn.BatchNorm1d(e), nn.SiLU(),
                nn.Conv1d(e, e, k, groups=e // 2, padding="same", bias=False),
                nn.BatchNorm1d(e), nn.SiLU(),
                SE(e, p // 4),
                nn.Conv1d(e, p, 1, bias=False), nn.BatchNorm1d(p), nn.SiLU()))
            setattr(self.seqextractor, f"resize_blc{i}", nn.Sequential(
                nn.Conv1d(2 * p, s, k, padding="same", bias=False), nn.BatchNorm1d(s), nn.SiLU()))
            p = s

    def forward(self, x):
        for i in range(self.n):
            inv = getattr(self.seqextractor, f"inv_res_blc{i}")
            res = getattr(self.seqextractor, f"resize_blc{i}")
            x = res(torch.cat([x, inv(x)], dim=1))
        return x


class BHICore(nn.Module):
    def __init__(self, cin, hidden=320, cout=320, ks=(9, 15), dropout=0.2, final_dropout=0.5):
        super().__init__()
        self.lstm = nn.LSTM(cin, hidden, batch_first=True, bidirectional=True)
        self.conv_list = nn.ModuleList([ConvUnit(2 * hidden, cout // len(ks), k) for k in ks])
        self.dropout = nn.Dropout(dropout)
        self.final_dropout = nn.Dropout(final_dropout)

    def forward(self, x):
        h, _ = self.lstm(x.permute(0, 2, 1))
        h = h.permute(0, 2, 1)
        h = torch.cat([self.dropout(F.relu(c(h))) for c in self.conv_list], dim=1)
        return self.final_dropout(h)


class FF(nn.Module):
    def __init__(self, d, hidden, dropout):
        super().__init__()
        self.layernorm = nn.LayerNorm(d, eps=1e-6)
        self.linear1 = nn.Linear(d, hidden, bias=False)
        self.linear2 = nn.Linear(hidden // 2, d, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        h = self.linear1(self.layernorm(x))
        a, b = h.chunk(2, dim=-1)
        return self.dropout(self.linear2(self.dropout(a * F.silu(b))))


class ConformerLayer(nn.Module):
    def __init__(self, d, heads, ff, k, dropout):
        super().__init__()
        self.ff1 = FF(d, ff, dropout)
        self.layernorm1 = nn.LayerNorm(d, eps=1e-6)
        self.conv = nn.Sequential(nn.Conv1d(d, d, k, groups=d, padding="same", bias=False),
                                  nn.Conv1d(d, d, 1), nn.ReLU(), nn.Dropout(dropout))
        self.layernorm2 = nn.LayerNorm(d, eps=1e-6)
        self.attn = nn.MultiheadAttention(d, heads, dropout=0.0, batch_first=True)
        self.ff2 = FF(d, ff, dropout)

    def forward(self, x):  # (B, L, d)
        x = x + 0.5 * self.ff1(x)
        h = self.layernorm1(x)
        h = h + self.conv(h.permute(0, 2, 1)).permute(0, 2, 1)
        x = x + h
        x = self.layernorm2(x)
        x = x + self.attn(x, x, x, need_weights=False)[0]
        return x + 0.5 * self.ff2(x)


class UnlockDNACore(nn.Module):
    def __init__(self, cin, length, d=256, layers=4, heads=4, ff=1024, k=15, dropout=0.1):
        super().__init__()
        assert cin == d
        self.blocks = nn.ModuleList([ConformerLayer(d, heads, ff, k, dropout) for _ in range(layers)])
        self.pos_embedding = nn.Embedding(length, d)

    def forward(self, x):
        x = x.permute(0, 2, 1) + self.pos_embedding.weight[: x.shape[2]].unsqueeze(0)
        for b in self.blocks:
            x = b(x)
        return x.permute(0, 2, 1)


class SoftClassFinal(nn.Module):
    def __init__(self, cin, bins=N_BINS):
        super().__init__()
        self.mapper = nn.Sequential(nn.Conv1d(cin, bins, 1))
        self.register_buffer("bins", torch.arange(bins, dtype=torch.float32))

    def forward(self, x):
        logits = self.mapper(x).mean(dim=2)
        return logits, (F.softmax(logits, dim=1) * self.bins).sum(dim=1)


class RegressionHead(nn.Module):
    def __init__(self, cin, hidden=256):
        super().__init__()
        self.conv = nn.Conv1d(cin, hidden, 1)
        self.linear = nn.Linear(hidden, 1)

    def forward(self, x):
        return self.linear(self.conv(x).mean(dim=2))


class RegressionFinal(nn.Module):
    def __init__(self, cin, tasks, hidden=256):
        super().__init__()
        self.heads = nn.ModuleList([RegressionHead(cin, hidden) for _ in range(tasks)])

    def forward(self, x):
        out = torch.cat([h(x) for h in self.heads], dim=1)
        return out, out


class PrixFixeNet(nn.Module):
    def __init__(self, first, core, final):
        super().__init__()
        self.first, self.core, self.final = first, core, final

    def forward(self, x):
        return self.final(self.core(self.first(x)))


def build(name, channels, length, tasks=None, tiny=False):
    """The three DREAM models; `tasks` gives a regression head, `tiny` shrinks every width."""
    final = (lambda c: RegressionFinal(c, tasks, 8 if tiny else 256)) if tasks else SoftClassFinal
    if name == "dream-cnn":
        widths = (8, 8, 4) if tiny else (128, 128, 64, 64, 64, 64)
        first = BHIFirst(channels, 16 if tiny else 320)
        return PrixFixeNet(first, AutosomeCore(first_out(first), widths), final(widths[-1]))
    if name == "dream-rnn":
        c1, h = (16, 8) if tiny else (320, 320)
        return PrixFixeNet(BHIFirst(channels, c1), BHICore(c1, h, c1), final(c1))
    if name == "dream-attn":
        d, layers, ff = (16, 2, 32) if tiny else (256, 4, 1024)
        return PrixFixeNet(AutosomeFirst(channels, d), UnlockDNACore(d, length, d, layers, 4, ff),
                           final(d))
    raise ValueError(name)


def first_out(first):
    return sum(c.conv.out_channels for c in first.conv_list)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------- formula weights (mirrored in tests/parity.rs)

def fnv1a(name):
    h = 0x811C9DC5
    for b in name.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def formula_tensor(name, shape):
    """Deterministic weights both sides compute exactly: u in [-0.5, 0.5) on a 2^-24 grid."""
    n = int(np.prod(shape)) if len(shape) else 1
    j = np.arange(n, dtype=np.uint64)
    k = ((np.uint64(fnv1a(name)) + j * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)) >> np.uint64(8)
    u = (k.astype(np.float32) / np.float32(2 ** 24)) - np.float32(0.5)
    if name.endswith("running_var"):
        v = u + np.float32(1.0)
    elif len(shape) >= 2:
        fan_in = n // shape[0]
        v = u * np.float32(2.0 * math.sqrt(3.0 / fan_in))
    elif name.endswith("weight"):
        v = u * np.float32(0.5) + np.float32(1.0)
    else:
        v = u * np.float32(0.2)
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def calibrate_batch_norm(model, x):
    """Set every BatchNorm's running statistics to the statistics of `x` flowing through the
    model (cumulative average, dropout off), so that eval-mode activations stay O(1) and depend
    on the input. Without this, default-scale random weights shrink activations layer after
    layer and a deep CNN's output no longer depends on its input: a parity test would then
    compare little more than biases."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    if not bns:
        return
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    with torch.no_grad():
        model(torch.from_numpy(x))
    for m in bns:
        m.momentum = 0.1
    model.eval()


def set_formula_weights(model):
    sd = model.state_dict()
    for k, v in sd.items():
        if k.endswith("num_batches_tracked") or k == "final.bins":
            continue
        sd[k] = formula_tensor(k, tuple(v.shape))
    model.load_state_dict(sd)


# ---------------------------------------------------------------- fixtures

def save_safetensors(path, sd):
    header, blobs, off = {}, [], 0
    for k, v in sd.items():
        a = v.detach().cpu().numpy()
        dtype = {np.float32: "F32", np.int64: "I64"}[a.dtype.type]
        b = a.tobytes()
        header[k] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def yeast_inputs(path, rows=6, skip=0):
    reads = []
    with open(path) as f:
        for _ in range(skip):
            f.readline()
        for line in f:
            s, e = line.rstrip("\n").split("\t")[:2]
            reads.append((s, float(e)))
            if len(reads) == rows:
                break
    xs, meta = [], []
    for i, (s, e) in enumerate(reads):
        padded = pad_yeast(s)
        rev = i % 2 == 1
        seq = revcomp(padded) if rev else padded
        single = float(e).is_integer()
        xs.append(encode(seq, rev, single, 6))
        meta.append({"read": s, "is_reverse": rev, "is_singleton": single})
    return np.stack(xs), meta


def table_inputs(path, seq_col, channels, rows=4, skip=0):
    xs, meta = [], []
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        for _ in range(skip):
            f.readline()
        id_col = header[3] if "ID" in header else header[0]
        for line in f:
            r = dict(zip(header, line.rstrip("\n").split("\t")))
            rid = r.get("ID", r.get("seq_id"))
            rev = "_-_" in rid or rid.endswith("_Reversed:")
            xs.append(encode(r[seq_col], rev, False, channels))
            meta.append({"read": r[seq_col], "is_reverse": rev, "is_singleton": False})
            if len(xs) == rows:
                break
    return np.stack(xs), meta


def run(model, x):
    model.eval()
    with torch.no_grad():
        out, expr = model(torch.from_numpy(x))
    return out.numpy(), expr.numpy()


def fixture(model, x, meta, extra, buffers=None):
    out, expr = run(model, x)
    if buffers is not None:
        extra = dict(extra, buffers={k: v.reshape(-1).tolist() for k, v in model.state_dict().items()
                                     if k.endswith("running_mean") or k.endswith("running_var")})
    return dict(extra, n_params=n_params(model), input_shape=list(x.shape), rows=meta,
                input=x.reshape(-1).tolist(), output=out.reshape(-1).tolist(),
                output_shape=list(out.shape), expression=expr.reshape(-1).tolist())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures")
    ap.add_argument("--data", default="tests/data")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(0)
    yx, ymeta = yeast_inputs(os.path.join(a.data, "yeast_demo_train.txt"))
    dx, dmeta = table_inputs(os.path.join(a.data, "drosophila_train_200.txt"), "Sequence", 5)
    hx, hmeta = table_inputs(os.path.join(a.data, "human_train_200.txt"), "seq", 5)
    # Other rows of the same files, to calibrate BatchNorm statistics.
    calib = {"yeast": yeast_inputs(os.path.join(a.data, "yeast_demo_train.txt"), 64, skip=100)[0],
             "drosophila": table_inputs(os.path.join(a.data, "drosophila_train_200.txt"), "Sequence",
                                        5, 64, skip=100)[0],
             "human": table_inputs(os.path.join(a.data, "human_train_200.txt"), "seq", 5, 64,
                                   skip=100)[0]}

    counts = {}
    for name in ["dream-cnn", "dream-rnn", "dream-attn"]:
        for data, (c, l, tasks) in {"yeast": (6, 150, None), "human": (5, 230, 1),
                                    "drosophila": (5, 249, 2)}.items():
            counts[f"{name}/{data}"] = n_params(build(name, c, l, tasks))
    print(json.dumps(counts, indent=1))

    cases = [("dream-cnn", "yeast", yx, ymeta, None), ("dream-rnn", "yeast", yx, ymeta, None),
             ("dream-attn", "yeast", yx, ymeta, None), ("dream-cnn", "drosophila", dx, dmeta, 2),
             ("dream-attn", "human", hx, hmeta, 1)]
    for name, data, x, meta, tasks in cases:
        m = build(name, x.shape[1], x.shape[2], tasks)
        set_formula_weights(m)
        calibrate_batch_norm(m, calib[data])
        fx = fixture(m, x, meta, {"model": name, "data": data, "tasks": tasks or 0}, buffers=True)
        path = os.path.join(a.out, f"parity_{name}_{data}.json")
        with open(path, "w") as f:
            json.dump(fx, f)
        print(path, fx["n_params"])

    for name in ["dream-cnn", "dream-rnn", "dream-attn"]:
        m = build(name, 6, 150, tiny=True)
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm1d):
                mod.weight.data.uniform_(0.5, 1.5)
                mod.bias.data.uniform_(-0.2, 0.2)
        calibrate_batch_norm(m, calib["yeast"])
        stem = os.path.join(a.out, f"tiny_{name}")
        torch.save(m.state_dict(), stem + ".pth")
        save_safetensors(stem + ".safetensors", m.state_dict())
        fx = fixture(m, yx, ymeta, {"model": name, "data": "yeast", "tasks": 0})
        with open(stem + ".json", "w") as f:
            json.dump(fx, f)
        print(stem, fx["n_params"])


if __name__ == "__main__":
    main()
