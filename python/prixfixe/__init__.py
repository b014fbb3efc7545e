"""prixfixe: Prix Fixe sequence-to-expression models (Random Promoter DREAM Challenge 2022).

A thin layer over the Rust engine (the `prixfixe` command's library): no PyTorch needed.
Arrays follow the field's layout: one-hot and attributions are ``(N, 4, L)`` in A, C, G, T
order, what TF-MoDISco, tangermeme and Captum take.

    >>> import prixfixe
    >>> model = prixfixe.load("runs/dream-cnn")          # a run directory of `prixfixe train`
    >>> model.predict(["TGCATTTTTTTCACATC...", ...])      # -> np.ndarray (N,) or (N, tasks)
    >>> onehot, attr = model.attribute(seqs, method="shap")   # (N, 4, L) each

`prixfixe.torch` (where torch is installed) gives the same model as a ``torch.nn.Module``.
"""

from __future__ import annotations

import json
import os
from typing import Iterable, Sequence, Union

import numpy as np

from . import _prixfixe

__version__ = _prixfixe.__version__
__all__ = ["load", "Model", "dream_score", "read_sequences", "onehot_to_sequences", "METHODS"]

#: Attribution methods of :meth:`Model.attribute`.
METHODS = ("saliency", "input_x_gradient", "integrated_gradients", "shap")

Sequences = Union[str, Sequence[str], np.ndarray]


def onehot_to_sequences(x: np.ndarray) -> list[str]:
    """``(N, 4, L)`` one-hot (A, C, G, T) → strings; an all-zero or uniform column reads as N."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[1] != 4:
        raise ValueError(
            f"one-hot sequences must be (N, 4, L) in A, C, G, T order; got shape {x.shape}"
            + (" (it looks like (N, L, 4): transpose it with x.transpose(0, 2, 1))"
               if x.ndim == 3 and x.shape[2] == 4 else "")
        )
    letters = np.array(list("ACGT"))
    best = x.argmax(axis=1)
    is_n = np.isclose(x.max(axis=1), x.min(axis=1))
    out = []
    for row, n in zip(best, is_n):
        s = letters[row].copy()
        s[n] = "N"
        out.append("".join(s))
    return out


def _sequences(seqs: Sequences) -> list[str]:
    if isinstance(seqs, str):
        return [seqs]
    if isinstance(seqs, np.ndarray) and seqs.dtype.kind in "fiub":
        return onehot_to_sequences(seqs)
    out = [str(s) for s in seqs]
    if not out:
        raise ValueError("no sequences given")
    return out


def _array(raw: bytes, shape) -> np.ndarray:
    return np.frombuffer(raw, dtype="<f4").reshape(shape).copy()


class Model:
    """A trained prixfixe model on the CPU engine (see :func:`load`)."""

    def __init__(self, inner: "_prixfixe.Model"):
        self._inner = inner

    @property
    def columns(self) -> list[str]:
        """The prediction columns (task names)."""
        return list(self._inner.columns)

    @property
    def length(self) -> int:
        """The model's input length."""
        return self._inner.length

    @property
    def config(self) -> str:
        """The model config (TOML), as `prixfixe train` wrote it."""
        return self._inner.config

    def _task(self, task) -> int:
        cols = self.columns
        if task is None:
            return 0
        if isinstance(task, str):
            if task not in cols:
                raise ValueError(f"task {task!r}: the model's columns are {cols}")
            return cols.index(task)
        if not 0 <= int(task) < len(cols):
            raise ValueError(f"task {task}: the model has {len(cols)} column(s) {cols}")
        return int(task)

    def _shape(self, n: int) -> tuple:
        t = len(self.columns)
        return (n,) if t == 1 else (n, t)

    def predict(self, seqs: Sequences, batch_size: int = 256) -> np.ndarray:
        """Predictions as `prixfixe predict` makes them (both strands averaged where the model
        does so): ``(N,)``, or ``(N, tasks)`` for several tasks. `seqs`: strings or a
        ``(N, 4, L)`` one-hot array."""
        s = _sequences(seqs)
        return _array(self._inner.predict(s, batch_size), self._shape(len(s)))

    def variant_effects(self, ref: Sequences, alt: Sequences, batch_size: int = 256) -> np.ndarray:
        """Predicted alt − ref for paired sequences (same shapes as :meth:`predict`)."""
        r, a = _sequences(ref), _sequences(alt)
        if len(r) != len(a):
            raise ValueError(f"{len(r)} reference but {len(a)} alternative sequences")
        return self.predict(a, batch_size) - self.predict(r, batch_size)

    def ism(self, seqs: Sequences, task=None, batch_size: int = 1024):
        """In-silico mutagenesis: for each sequence, the predicted effect of every single-base
        substitution, ``(4, L)`` (A, C, G, T; 0 at the reference base), for `task`. Returns an
        ``(N, 4, L)`` array when the lengths agree, else a list."""
        s = _sequences(seqs)
        t = self._task(task)
        tasks = len(self.columns)
        raw, _ = self._inner.ism(s, batch_size)
        maps = [
            _array(m, (4, len(seq), tasks))[:, :, t] for m, seq in zip(raw, s)
        ]
        if len({m.shape for m in maps}) == 1:
            return np.stack(maps)
        return maps

    def attribute(
        self,
        seqs: Sequences,
        method: str = "shap",
        task=None,
        steps: int | None = None,
        shuffles: int = 20,
        seed: int = 1234,
        batch_size: int = 128,
        return_predictions: bool = False,
    ):
        """Gradient attributions over the model's input window (padding included):
        ``(onehot, attributions)``, each ``(N, 4, L)`` float32, A, C, G, T — pass them to
        TF-MoDISco as they are (``np.savez("ohe.npz", onehot)``, ``np.savez("attr.npz", attr)``).

        `method`: ``saliency`` (∂f/∂x), ``input_x_gradient``, ``integrated_gradients`` (from the
        all-zero input, `steps` points, default 50) or ``shap`` (integrated gradients from
        `shuffles` dinucleotide-shuffled references, averaged; default 10 steps each). For the
        last two, the attributions of a sequence sum to f(x) − f(reference); with
        ``return_predictions=True`` the f(x) and f(reference) arrays are returned too.
        """
        if method not in METHODS:
            raise ValueError(f"method {method!r}: one of {', '.join(METHODS)}")
        s = _sequences(seqs)
        oh, va, pr, re = self._inner.attribute(
            s, method, self._task(task), steps, shuffles, seed, batch_size
        )
        shape = (len(s), 4, self.length)
        onehot, attr = _array(oh, shape), _array(va, shape)
        if return_predictions:
            return onehot, attr, _array(pr, (len(s),)), _array(re, (len(s),))
        return onehot, attr

    def __repr__(self) -> str:
        return f"<prixfixe.Model {self.length} nt → {', '.join(self.columns)}>"


def __getattr__(name: str):
    # `prixfixe.torch` (the PyTorch twin) is imported on first use: torch stays optional.
    if name == "torch":
        import importlib

        return importlib.import_module(".torch", __name__)
    raise AttributeError(f"module 'prixfixe' has no attribute {name!r}")


def load(path: Union[str, os.PathLike], checkpoint: str = "best", config: str | None = None) -> Model:
    """Load a run directory written by `prixfixe train` (its ``best`` or ``last`` checkpoint)
    or a prixfixe ``.safetensors`` checkpoint; with `config` (a model config, TOML text or a
    path to one), weights from elsewhere (PyTorch ``.pth``/``.pt`` or ``.safetensors``)."""
    if checkpoint not in ("best", "last"):
        raise ValueError(f"checkpoint {checkpoint!r}: best or last")
    if config is not None and os.path.exists(config):
        with open(config) as f:
            config = f.read()
    return Model(_prixfixe.Model(os.fspath(path), checkpoint, config))


def read_sequences(path: Union[str, os.PathLike]) -> tuple[list[str], list[str]]:
    """The ids and sequences of a file, read as ``prixfixe predict`` reads it (streamed by the
    Rust readers; FASTA, gzipped or not; the DREAM format; CSV/TSV with a ``sequence`` column,
    which includes the files ``predict`` and ``design`` write). Rows without an id are named
    after their line (``line12``). A malformed file raises ``ValueError`` naming its line."""
    ids, seqs, _, _ = _prixfixe.read_sequences(os.fspath(path))
    return ids, seqs


def dream_score(predictions, measured=None, test=None, subsets=None) -> dict:
    """The DREAM Challenge score of `predictions`: against `measured` values (the ``all``
    subset alone), or against the challenge's `test` file and its `subsets` directory (the
    weighted Pearson and Spearman scores over every subset). Returns a dict with
    ``pearson_score``, ``spearman_score`` and per-subset figures."""
    pred = np.asarray(predictions, dtype=np.float64).ravel().tolist()
    meas = None if measured is None else np.asarray(measured, dtype=np.float64).ravel().tolist()
    text = _prixfixe.dream_score(
        pred,
        meas,
        None if test is None else os.fspath(test),
        None if subsets is None else os.fspath(subsets),
    )
    return json.loads(text)
