"""A prixfixe model as a PyTorch module, for Captum, tangermeme and the rest of the PyTorch
world. The Rust engine stays the reference: a module built here takes the weights of a prixfixe
checkpoint under their reference names (the state dict's own) and gives the same predictions
as ``prixfixe.load(...).predict`` (to float rounding), gradients included.

    >>> import prixfixe.torch as pft
    >>> net = pft.load("runs/dream-cnn")              # torch.nn.Module, eval mode
    >>> x = net.onehot(["TGCATTTTTTTCACATC..."])       # (N, 4, L) A, C, G, T, padded as prixfixe pads
    >>> net(x)                                         # (N, tasks): both strands averaged where the model does so

The module's input is what :meth:`prixfixe.Model.attribute` calls the one-hot: the model's
whole input window, ``(N, 4, L)`` in A, C, G, T order (6 planes A, C, G, T, N, M for the
Unlock_DNA tokens). The constant ``is_reverse``/``is_singleton`` planes and the reverse-
complement pass are built inside ``forward``, so gradients reach the forward planes through
both strands, as in ``prixfixe attribute``. Needs ``pip install torch``; ``prixfixe`` itself
does not.
"""

from __future__ import annotations

import json
import os
from typing import Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import Model, _prixfixe, load as _load_rust

__all__ = ["load", "build", "PrixFixeModule"]

# Keras' BatchNorm (DeepSTARR, MPRAnn); every other block uses PyTorch's.
_KERAS_BN = dict(momentum=0.01, eps=1e-3)
_LN_EPS = 1e-6


def _bn(c: int, keras: bool = False) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(c, **_KERAS_BN) if keras else nn.BatchNorm1d(c)


def _max_pool(x: torch.Tensor, size: int) -> torch.Tensor:
    return x if size == 1 else F.max_pool1d(x, size)


def _flatten_positions(x: torch.Tensor) -> torch.Tensor:
    """Keras' Flatten of a ``(length, channels)`` tensor held as ``(batch, channels, length)``."""
    return x.transpose(1, 2).reshape(x.shape[0], -1)


class _ConvUnit(nn.Module):
    """The BHI branches' ``conv_list.{i}.conv``."""

    def __init__(self, cin, cout, k):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, k, padding="same")


class _Branches(nn.Module):
    """Parallel same-padded convolutions → ReLU → dropout, concatenated (BHI)."""

    def __init__(self, cin, cout, kernels, dropout):
        super().__init__()
        self.conv_list = nn.ModuleList(_ConvUnit(cin, cout // len(kernels), k) for k in kernels)
        self.dropout = nn.Dropout(dropout)

    def branches(self, x):
        return torch.cat([self.dropout(F.relu(c.conv(x))) for c in self.conv_list], dim=1)


class _ConvBn(nn.Module):
    def __init__(self, cin, cout, k, same):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, k, padding="same" if same else 0)
        self.bn = _bn(cout, keras=True)


def _conv_stack(cin, filters, kernels, same) -> nn.ModuleList:
    """DeepSTARR's and MPRAnn's convolutions, each → Keras BatchNorm (``convs.{i}``)."""
    convs = nn.ModuleList()
    for f, k in zip(filters, kernels):
        convs.append(_ConvBn(cin, f, k, same))
        cin = f
    return convs


# ------------------------------------------------------------------------- first layers


class BhiFirst(_Branches):
    def __init__(self, c, cin, length):
        super().__init__(cin, c["out_channels"], c["kernels"], c["dropout"])

    def forward(self, x):
        return self.branches(x)


class AutosomeFirst(nn.Module):
    def __init__(self, c, cin, length):
        super().__init__()
        k, cout = c["kernel"], c["out_channels"]
        self.block = nn.Sequential(
            nn.Conv1d(cin, cout, k, padding="same", bias=False), _bn(cout), nn.SiLU()
        )

    def forward(self, x):
        return self.block(x)


class UnlockDnaFirst(nn.Module):
    """k-mer windows through one dense layer plus a strand embedding over the two halves (the
    reference's position and expression embeddings are weights it never uses)."""

    def __init__(self, c, cin, length):
        super().__init__()
        d, self.kmer = c["out_channels"], c["kmer"]
        self.pos_embedding = nn.Embedding(length, d)
        self.strand_embedding = nn.Embedding(2, d)
        self.expression_embedding = nn.Linear(1, d)
        self.kmer_dense = nn.Linear(cin * self.kmer, d)

    def forward(self, x):
        b, ch, length = x.shape
        x = F.pad(x, (self.kmer // 2 - 1, self.kmer // 2))
        # Feature `offset · C + channel` at each window position.
        w = x.unfold(2, self.kmer, 1).permute(0, 2, 3, 1).reshape(b, length, self.kmer * ch)
        h = self.kmer_dense(w)
        half = length // 2
        e = self.strand_embedding.weight
        strand = torch.cat([e[:1].expand(half, -1), e[1:].expand(length - half, -1)])
        return (h + strand.unsqueeze(0)).transpose(1, 2)


class DeepStarrFirst(_ConvBn):
    def __init__(self, c, cin, length):
        super().__init__(cin, c["filters"], c["kernel"], True)
        self.pool = c["pool"]

    def forward(self, x):
        return _max_pool(F.relu(self.bn(self.conv(x))), self.pool)


class MprannFirst(_ConvBn):
    def __init__(self, c, cin, length):
        super().__init__(cin, c["filters"], c["kernel"], False)

    def forward(self, x):
        return self.bn(F.relu(self.conv(x)))


class BpnetFirst(nn.Module):
    def __init__(self, c, cin, length):
        super().__init__()
        self.conv = nn.Conv1d(cin, c["filters"], c["kernel"])

    def forward(self, x):
        return F.relu(self.conv(x))


# -------------------------------------------------------------------------- core layers


class _SqueezeExcite(nn.Module):
    def __init__(self, channels, hidden):
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden), nn.SiLU(), nn.Linear(hidden, channels), nn.Sigmoid()
        )

    def forward(self, x):
        return x * self.fc(x.mean(dim=2)).unsqueeze(2)


class AutosomeCore(nn.Module):
    """LegNet's inverted-residual stages, each concatenated with its input and resized."""

    def __init__(self, c, cin, length):
        super().__init__()
        self.seqextractor = nn.Module()
        k, p = c["kernel"], cin
        self.stages = len(c["widths"])
        for i, s in enumerate(c["widths"]):
            e = c["expand"] * s
            inv = nn.Sequential(
                nn.Conv1d(p, e, 1, bias=False), _bn(e), nn.SiLU(),
                nn.Conv1d(e, e, k, groups=e // 2, padding="same", bias=False), _bn(e), nn.SiLU(),
                _SqueezeExcite(e, p // 4),
                nn.Conv1d(e, p, 1, bias=False), _bn(p), nn.SiLU(),
            )  # fmt: skip
            resize = nn.Sequential(
                nn.Conv1d(2 * p, s, k, padding="same", bias=False), _bn(s), nn.SiLU()
            )
            setattr(self.seqextractor, f"inv_res_blc{i}", inv)
            setattr(self.seqextractor, f"resize_blc{i}", resize)
            p = s

    def forward(self, x):
        for i in range(self.stages):
            inv = getattr(self.seqextractor, f"inv_res_blc{i}")
            resize = getattr(self.seqextractor, f"resize_blc{i}")
            x = resize(torch.cat([x, inv(x)], dim=1))
        return x


class BhiCore(_Branches):
    def __init__(self, c, cin, length):
        super().__init__(2 * c["hidden"], c["out_channels"], c["kernels"], c["dropout"])
        self.lstm = nn.LSTM(cin, c["hidden"], batch_first=True, bidirectional=True)
        self.final_dropout = nn.Dropout(c["final_dropout"])

    def forward(self, x):
        h, _ = self.lstm(x.transpose(1, 2))
        return self.final_dropout(self.branches(h.transpose(1, 2)))


class _FeedForward(nn.Module):
    def __init__(self, d, ff, dropout):
        super().__init__()
        self.layernorm = nn.LayerNorm(d, eps=_LN_EPS)
        self.linear1 = nn.Linear(d, ff, bias=False)
        self.linear2 = nn.Linear(ff // 2, d, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        value, gate = self.linear1(self.layernorm(x)).chunk(2, dim=-1)
        return self.dropout(self.linear2(self.dropout(value * F.silu(gate))))


class _Conformer(nn.Module):
    def __init__(self, d, heads, ff, k, dropout):
        super().__init__()
        self.ff1 = _FeedForward(d, ff, dropout)
        self.layernorm1 = nn.LayerNorm(d, eps=_LN_EPS)
        self.conv = nn.Sequential(
            nn.Conv1d(d, d, k, groups=d, padding="same", bias=False),
            nn.Conv1d(d, d, 1),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.layernorm2 = nn.LayerNorm(d, eps=_LN_EPS)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ff2 = _FeedForward(d, ff, dropout)

    def forward(self, x):  # (B, L, d)
        x = x + 0.5 * self.ff1(x)
        h = self.layernorm1(x)
        h = h + self.conv(h.transpose(1, 2)).transpose(1, 2)
        x = self.layernorm2(x + h)
        x = x + self.attn(x, x, x, need_weights=False)[0]
        return x + 0.5 * self.ff2(x)


class UnlockDnaCore(nn.Module):
    """Conformer layers over a learned position embedding (DREAM-Attn's core)."""

    def __init__(self, c, cin, length):
        super().__init__()
        d = c["d"]
        self.blocks = nn.ModuleList(
            _Conformer(d, c["heads"], c["ff"], c["kernel"], c["dropout"]) for _ in range(c["layers"])
        )
        self.pos_embedding = nn.Embedding(length, d)

    def forward(self, x):
        x = x.transpose(1, 2) + self.pos_embedding.weight[: x.shape[2]].unsqueeze(0)
        for layer in self.blocks:
            x = layer(x)
        return x.transpose(1, 2)


class DeepStarrCore(nn.Module):
    def __init__(self, c, cin, length):
        super().__init__()
        self.convs = _conv_stack(cin, c["filters"], c["kernels"], same=True)
        self.pool = c["pool"]

    def forward(self, x):
        for layer in self.convs:
            x = _max_pool(F.relu(layer.bn(layer.conv(x))), self.pool)
        return x


class MprannCore(nn.Module):
    """Valid convolutions with a softmax over channels, each → BN; pooling by 2 after the first."""

    def __init__(self, c, cin, length):
        super().__init__()
        self.convs = _conv_stack(cin, c["filters"], c["kernels"], same=False)
        self.dropout = nn.Dropout(c["dropout"])

    def forward(self, x):
        for i, layer in enumerate(self.convs):
            x = layer.bn(torch.softmax(layer.conv(x), 1))
            if i == 0:
                x = self.dropout(_max_pool(x, 2))
        return self.dropout(x)


class BpnetCore(nn.Module):
    """Dilated valid convolutions (dilation 2, 4, …), each added to its centre-cropped input."""

    def __init__(self, c, cin, length):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Conv1d(cin, cin, c["kernel"], dilation=2 ** (i + 1)) for i in range(c["layers"])
        )

    def forward(self, x):
        for conv in self.layers:
            h = F.relu(conv(x))
            crop = (x.shape[2] - h.shape[2]) // 2
            x = x[:, :, crop : crop + h.shape[2]] + h
        return x


# ------------------------------------------------------------------------- final layers
# Each returns the predictions (batch, tasks): the decoded output prixfixe predict writes.


class _TaskHead(nn.Module):
    def __init__(self, cin, hidden):
        super().__init__()
        self.conv = nn.Conv1d(cin, hidden, 1)
        self.linear = nn.Linear(hidden, 1)


class Regression(nn.Module):
    def __init__(self, c, cin, length):
        super().__init__()
        self.heads = nn.ModuleList(_TaskHead(cin, c["hidden"]) for _ in range(c["tasks"]))

    def forward(self, x):
        return torch.cat([h.linear(h.conv(x).mean(dim=2)) for h in self.heads], dim=1)


class SoftClass(nn.Module):
    """18 sort-bin logits from the mean over positions; the prediction is their expectation."""

    def __init__(self, c, cin, length):
        super().__init__()
        self.mapper = nn.Sequential(nn.Conv1d(cin, c["bins"], 1))
        self.register_buffer("bins", torch.arange(c["bins"], dtype=torch.float32), persistent=False)

    def logits(self, x):
        return self.mapper(x).mean(dim=2)

    def forward(self, x):
        return (F.softmax(self.logits(x), dim=1) * self.bins).sum(dim=1, keepdim=True)


class BhiFinal(nn.Module):
    def __init__(self, c, cin, length):
        super().__init__()
        h = c["hidden"]
        self.main = nn.Sequential(
            nn.Linear(cin * length, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 1)
        )

    def forward(self, x):
        return self.main(x.flatten(1))


class _DenseBn(nn.Module):
    def __init__(self, din, dout):
        super().__init__()
        self.linear = nn.Linear(din, dout)
        self.bn = _bn(dout, keras=True)


class DeepStarrFinal(nn.Module):
    def __init__(self, c, cin, length):
        super().__init__()
        d = cin * length
        self.dense = nn.ModuleList()
        for h in c["hidden"]:
            self.dense.append(_DenseBn(d, h))
            d = h
        self.heads = nn.ModuleList(nn.Linear(d, 1) for _ in range(c["tasks"]))
        self.dropout = nn.Dropout(c["dropout"])

    def forward(self, x):
        h = _flatten_positions(x)
        for layer in self.dense:
            h = self.dropout(F.relu(layer.bn(layer.linear(h))))
        return torch.cat([head(h) for head in self.heads], dim=1)


class MprannFinal(nn.Module):
    def __init__(self, c, cin, length):
        super().__init__()
        d = cin * length
        self.dense = nn.ModuleList()
        for h in list(c["hidden"]) + [c["tasks"]]:
            self.dense.append(nn.Linear(d, h))
            d = h
        self.dropout = nn.Dropout(c["dropout"])

    def forward(self, x):
        h = _flatten_positions(x)
        last = len(self.dense) - 1
        for i, layer in enumerate(self.dense):
            h = layer(h)
            if i < last:
                h = torch.sigmoid(h)
            if i == 0 and last > 0:
                h = self.dropout(h)
        return h


class UnlockDnaFinal(nn.Module):
    """The expression: one dense unit over the first `projectors` positions, averaged (the
    nucleotide head is trained but not part of the prediction)."""

    def __init__(self, c, cin, length):
        super().__init__()
        self.expression_dense = nn.Linear(cin, 1)
        self.nucleotide_dense = nn.Linear(cin, 5)
        self.dropout = nn.Dropout(c["dropout"])
        self.projectors = c["projectors"]

    def forward(self, x):
        heads = self.dropout(x[:, :, : self.projectors].transpose(1, 2))
        return self.expression_dense(heads).mean(dim=1)


class Profile(nn.Module):
    """ChromBPNet's head: the prediction is the log counts (a dense unit on the mean over
    positions), as ``prixfixe attribute`` explains it; :meth:`profile_logits` gives the
    profile (a valid convolution cropped to its central `profile_length` positions). The
    bias model is not part of the module: it is the bias-free accessibility model."""

    def __init__(self, c, cin, length):
        super().__init__()
        self.profile = nn.Conv1d(cin, 1, c["kernel"])
        self.counts = nn.Linear(cin, 1)
        self.profile_length = c["profile_length"]

    def forward(self, x):
        return self.counts(x.mean(dim=2))

    def profile_logits(self, x):
        p = self.profile(x)
        crop = (p.shape[2] - self.profile_length) // 2
        return p[:, 0, crop : crop + self.profile_length]


FIRST = {
    "bhi": BhiFirst,
    "autosome": AutosomeFirst,
    "unlock-dna": UnlockDnaFirst,
    "deepstarr": DeepStarrFirst,
    "mprann": MprannFirst,
    "bpnet": BpnetFirst,
}
CORE = {
    "autosome": AutosomeCore,
    "bhi": BhiCore,
    "unlock-dna": UnlockDnaCore,
    "deepstarr": DeepStarrCore,
    "mprann": MprannCore,
    "bpnet": BpnetCore,
}
FINAL = {
    "soft-class": SoftClass,
    "regression": Regression,
    "bhi": BhiFinal,
    "unlock-dna": UnlockDnaFinal,
    "deepstarr": DeepStarrFinal,
    "mprann": MprannFinal,
    "profile": Profile,
}


def _block(table, slot, c, cin, length):
    name = c["block"]
    if name not in table:
        raise ValueError(
            f"[{slot}] block {name!r} has no PyTorch twin; those with one: {', '.join(table)}"
        )
    return table[name](c, cin, length)


class PrixFixeModule(nn.Module):
    """First, core and final block with the reference's tensor names, behind the data
    processor's input layout: ``forward(x)`` takes ``(N, planes, L)`` (see the module doc) and
    returns ``(N, tasks)``, averaged over both strands where the model averages them."""

    def __init__(self, layout: dict):
        super().__init__()
        cfg, s = layout["config"], layout["shapes"]
        self.layout = layout
        self.columns = list(layout["columns"])
        self.length = s["length"]
        inp = cfg["input"]
        ch = inp["channels"]
        self.tokens = bool(ch.get("tokens", False))
        self.planes = 6 if self.tokens else 4
        self.extra = s["input_channels"] - self.planes
        self.marks_reverse = bool(ch.get("is_reverse", False))
        # Model channel of each input plane: A, G, C, T models take planes 0, 2, 1, 3.
        acgt = self.tokens or ch.get("bases", "agct") == "acgt"
        self.register_buffer(
            "order", torch.tensor([0, 1, 2, 3] if acgt else [0, 2, 1, 3]), persistent=False
        )
        strands = inp.get("strands", {"kind": "average"})
        self.strands = strands["kind"]
        self.span = (strands.get("start"), strands.get("end"))
        self.first = _block(FIRST, "first", cfg["first"], s["input_channels"], s["length"])
        self.core = _block(CORE, "core", cfg["core"], s["first_channels"], s["first_length"])
        self.final = _block(FINAL, "final", cfg["final"], s["core_channels"], s["core_length"])
        self._rust: Model | None = None

    def net(self, x: torch.Tensor) -> torch.Tensor:
        """The three blocks on a full model input ``(N, channels, L)``, extra planes included
        and channels in the model's own order: predictions ``(N, tasks)``."""
        return self.final(self.core(self.first(x)))

    def _with_extras(self, planes: torch.Tensor, reverse) -> torch.Tensor:
        if self.extra == 0:
            return planes
        n, _, length = planes.shape
        extras = planes.new_zeros(n, self.extra, length)
        if self.marks_reverse:
            extras[:, 0, :] = reverse.to(planes.dtype).reshape(-1, 1)
        return torch.cat([planes, extras], dim=1)

    def forward(self, x: torch.Tensor, reverse=None) -> torch.Tensor:
        """Predictions ``(N, tasks)`` for input planes ``(N, planes, L)``. `reverse` (``(N,)``
        booleans) sets the ``is_reverse`` flag of models that predict each row once in its own
        orientation (human ``_Reversed:`` oligos, Drosophila ``-`` rows); default forward."""
        if x.ndim != 3 or x.shape[1] != self.planes or x.shape[2] != self.length:
            hint = (
                " (it looks like (N, L, 4): use x.transpose(1, 2))"
                if x.ndim == 3 and x.shape[2] == self.planes
                else ""
            )
            raise ValueError(
                f"the model takes (N, {self.planes}, {self.length}) input planes; "
                f"got {tuple(x.shape)}{hint} — `.onehot(seqs)` makes them"
            )
        n = x.shape[0]
        bases = x if self.tokens else x[:, self.order]
        rev = (
            torch.zeros(n, device=x.device)
            if reverse is None
            else torch.as_tensor(reverse, device=x.device).to(x.dtype).reshape(n)
        )
        fwd = self._with_extras(bases, rev)
        if self.strands == "given":
            return self.net(fwd)
        # The complement of A, C, G, T or A, G, C, T is the reversed channel order; the token
        # planes N and M stay where they are.
        b4 = bases[:, :4]
        if self.strands == "average-core":
            a, e = self.span
            turned = torch.cat([b4[:, :, :a], b4[:, :, a:e].flip([1, 2]), b4[:, :, e:]], dim=2)
            rest = bases[:, 4:]
        else:
            turned = b4.flip([1, 2])
            rest = bases[:, 4:].flip([2])
        turned = torch.cat([turned, rest], dim=1)
        both = self.net(torch.cat([fwd, self._with_extras(turned, 1 - rev)], dim=0))
        return (both[:n] + both[n:]) / 2

    def onehot(self, seqs) -> torch.Tensor:
        """Input planes ``(N, planes, L)`` for sequences (strings), padded or centred as
        prixfixe pads them (needs the model to have come from :func:`load`)."""
        if self._rust is None:
            raise ValueError("onehot needs the prixfixe model: build the module with prixfixe.torch.load")
        seqs = [seqs] if isinstance(seqs, str) else list(seqs)
        planes, raw = self._rust._inner.planes(seqs)
        x = np.frombuffer(raw, dtype="<f4").reshape(len(seqs), planes, self.length)
        return torch.from_numpy(x.copy())

    def predict(self, seqs, batch_size: int = 256) -> np.ndarray:
        """``forward`` on sequences in batches, without gradients: ``(N, tasks)`` NumPy. (Refused
        for an ATAC profile model, as :meth:`prixfixe.Model.predict` refuses it: its predictions
        need the bias model; ``forward`` gives its bias-free log counts.)"""
        if isinstance(self.final, Profile):
            raise ValueError(
                "this is an ATAC profile model: its predictions combine it with the bias model "
                "it was trained with; score regions with `prixfixe predict atac` (forward gives "
                "the bias-free log counts that attributions explain)"
            )
        out = []
        seqs = [seqs] if isinstance(seqs, str) else list(seqs)
        with torch.no_grad():
            for i in range(0, len(seqs), batch_size):
                out.append(self(self.onehot(seqs[i : i + batch_size])).numpy())
        return np.concatenate(out)


def build(config: Union[str, dict]) -> PrixFixeModule:
    """A fresh (PyTorch-initialised) module for a model config: TOML text, a path to one, or
    the JSON layout of :attr:`prixfixe.Model.layout`. Its ``state_dict()`` saved with
    ``torch.save`` is a checkpoint ``prixfixe.load(path, config=...)`` and the ``prixfixe``
    command (``--weights``) read."""
    if isinstance(config, dict):
        return PrixFixeModule(config)
    if os.path.exists(config):
        with open(config) as f:
            config = f.read()
    return PrixFixeModule(json.loads(_prixfixe.model_config(config)))


def load(path, checkpoint: str = "best", config: str | None = None) -> PrixFixeModule:
    """The PyTorch twin of ``prixfixe.load(path, checkpoint, config)``: the same weights in a
    :class:`PrixFixeModule`, in eval mode (BatchNorm on its running statistics, no dropout)."""
    model = _load_rust(path, checkpoint=checkpoint, config=config)
    module = PrixFixeModule(json.loads(model._inner.layout))
    state = {
        name: torch.from_numpy(np.frombuffer(raw, dtype="<f4").reshape(shape).copy())
        for name, shape, raw in model._inner.weights()
    }
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise RuntimeError(
            f"the PyTorch twin and the checkpoint disagree: missing {missing}, unexpected {unexpected}"
        )
    module._rust = model
    return module.eval()
