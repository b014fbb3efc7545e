#!/usr/bin/env python3
"""Naive in-silico mutagenesis in PyTorch, the yardstick for `prixfixe ism`.

Builds a DREAM model from the spec (tools/reference_models.py) with PyTorch's default random
initialisation, saves its state_dict (so `prixfixe ism --weights W --model NAME` runs the very
same weights), then for every sequence predicts the reference and each of its 3·L single-base
mutants, forward and reverse complement averaged with is_singleton = 0, in batches, and reports
sequences per second. Optionally writes the effects to compare with prixfixe's ism.tsv.

Usage: python3 tools/ism_reference.py --model dream-cnn --input seqs.txt --save-weights w.pth \\
           --threads 2 --batch 1024 [--effects out.tsv]
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import reference_models as R  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="dream-cnn")
    ap.add_argument("--input", required=True, help="one read per line")
    ap.add_argument("--save-weights", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--effects")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = R.build(a.model, 6, 150)
    model.eval()
    torch.save(model.state_dict(), a.save_weights)
    reads = [l.split("\t")[0].strip() for l in open(a.input) if l.strip()]

    def encode_pair(read):
        p = R.pad_yeast(read)
        return R.encode(p, 0, 0, 6), R.encode(R.revcomp(p), 1, 0, 6)

    t0 = time.perf_counter()
    rows = []
    with torch.no_grad():
        for read in reads:
            variants = [read]
            for i, ref in enumerate(read):
                for b in "AGCT":
                    if b != ref:
                        variants.append(read[:i] + b + read[i + 1:])
            x = np.stack([e for v in variants for e in encode_pair(v)])
            preds = []
            for s in range(0, len(x), a.batch):
                _, expr = model(torch.from_numpy(x[s:s + a.batch]))
                preds.append(expr.numpy())
            p = np.concatenate(preds).reshape(-1, 2).mean(axis=1)
            rows.append((read, p[0], p[1:] - p[0]))
    seconds = time.perf_counter() - t0
    rate = len(reads) / seconds
    print(json.dumps({"model": a.model, "sequences": len(reads), "seconds": seconds,
                      "sequences_per_second": rate, "threads": a.threads,
                      "torch": torch.__version__}))
    if a.effects:
        with open(a.effects, "w") as f:
            for read, ref, eff in rows:
                k = 0
                for i, r in enumerate(read):
                    for b in "AGCT":
                        if b != r:
                            f.write(f"{i + 1}\t{b}\t{eff[k]}\n")
                            k += 1


if __name__ == "__main__":
    main()
