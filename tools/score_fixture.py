#!/usr/bin/env python3
"""Fixtures for the DREAM score tests, with expected values from scipy (independent of our
code). Writes tests/fixtures/score/: a small DREAM-format test file, two subset CSVs (one with
a repeated position, one pair subset with a repeated pair), predictions of two models in two
formats, an exclusion list, and expected.json.

Usage: python3 tools/score_fixture.py     (needs numpy, scipy)
"""
import json
import os

import numpy as np
from scipy import stats

OUT = "tests/fixtures/score"
WEIGHTS = {"all": 1.0, "high_exp_seqs": 0.3, "motif_tiling_seqs": 0.4}


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(7)
    n = 120
    bases = np.array(list("ACGT"))
    seqs = ["".join(rng.choice(bases, 30)) for _ in range(n)]
    # Measured values rounded to 1 decimal: many ties.
    meas = np.round(rng.normal(0, 1, n), 1)
    model_a = np.round(meas + rng.normal(0, 0.7, n), 2)
    model_b = np.round(rng.normal(0, 1, n), 1)  # ties, no signal
    with open(f"{OUT}/test.txt", "w") as f:
        for s, m in zip(seqs, meas):
            f.write(f"{s}\t{m}\n")
    high = [int(i) for i in rng.choice(n, 40, replace=False)]
    high_rows = high + [high[3]]  # a repeated position
    with open(f"{OUT}/high_exp_seqs.csv", "w") as f:
        f.write(",tag,sequence,pos,exp\n")
        for k, p in enumerate(high_rows):
            f.write(f"{k},h{k},{seqs[p]},{p},\n")
    pairs = [(int(a), int(r)) for a, r in zip(rng.choice(n, 30, replace=False), rng.choice(n, 30))]
    pair_rows = pairs + [pairs[0]]
    with open(f"{OUT}/motif_tiling_seqs.csv", "w") as f:
        f.write(",alt_tag,ref_tag,alt_sequence,ref_sequence,alt_pos,ref_pos,alt_exp,ref_exp\n")
        for k, (a, r) in enumerate(pair_rows):
            f.write(f"{k},a{k},r{k},{seqs[a]},{seqs[r]},{a},{r},,\n")
    with open(f"{OUT}/pred_a.tsv", "w") as f:
        f.write("sequence\tprediction\n")
        for s, v in zip(seqs, model_a):
            f.write(f"{s}\t{v}\n")
    with open(f"{OUT}/pred_b.json", "w") as f:
        json.dump({str(i): float(v) for i, v in enumerate(model_b)}, f)
    exclude = [int(i) for i in rng.choice(n, 15, replace=False)]
    with open(f"{OUT}/exclude.txt", "w") as f:
        f.write("\n".join(map(str, exclude)) + "\n")

    def score(pred, excl):
        ex = set(excl)
        subsets = {
            "all": ("single", [i for i in range(n) if i not in ex]),
            "high_exp_seqs": ("single", [p for p in dict.fromkeys(high) if p not in ex]),
            "motif_tiling_seqs": ("pair", [pr for pr in dict.fromkeys(pairs)
                                           if pr[0] not in ex and pr[1] not in ex]),
        }
        out, sp, ss, w = {}, 0.0, 0.0, 0.0
        for name, (kind, rows) in subsets.items():
            if kind == "single":
                p, m = pred[rows], meas[rows]
            else:
                a = np.array([x[0] for x in rows]); r = np.array([x[1] for x in rows])
                p, m = pred[a] - pred[r], meas[a] - meas[r]
            r_ = stats.pearsonr(p, m)[0]
            rho = stats.spearmanr(p, m)[0]
            out[name] = {"n": len(rows), "pearson": float(r_), "spearman": float(rho)}
            sp += WEIGHTS[name] * r_ ** 2
            ss += WEIGHTS[name] * rho
            w += WEIGHTS[name]
        return {"subsets": out, "pearson_score": sp / w, "spearman_score": ss / w}

    expected = {
        "a": score(model_a, []), "b": score(model_b, []),
        "a_excluded": score(model_a, exclude),
    }
    with open(f"{OUT}/expected.json", "w") as f:
        json.dump(expected, f, indent=1)
    print(json.dumps(expected["a"], indent=1))


if __name__ == "__main__":
    main()
