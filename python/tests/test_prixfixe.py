"""The Python package's suite: the Rust engine through `import prixfixe`, on the repository's
tiny DREAM-CNN fixture (weights saved by PyTorch's reference script)."""

from pathlib import Path

import numpy as np
import pytest

import prixfixe

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"
# The same tiny DREAM-CNN-shaped config as the Rust tests (tests/common/mod.rs).
TINY_CNN = (FIXTURES / "tiny_dream-cnn.toml").read_text()
SEQS = [
    "TGCATTTTTTTCACATCAAAACCCGGGTTTGATTACCCGGAGGTTACGGCTGTT",
    "TGCATTTTTTTCACATCGGAGGGGGGTTATAAAGCTGGTTACGGCTGTT",
    "ACGTTGCATGCCATGACGTACGATCGATCGTAGCTAGCTAGCATCGATCGA",
]


@pytest.fixture(scope="module")
def model():
    return prixfixe.load(FIXTURES / "tiny_dream-cnn.safetensors", config=TINY_CNN)


def onehot(seq: str) -> np.ndarray:
    x = np.zeros((4, len(seq)), dtype=np.float32)
    for j, c in enumerate(seq):
        if c in "ACGT":
            x["ACGT".index(c), j] = 1.0
    return x


def test_predict_takes_strings_and_onehot_arrays(model):
    p = model.predict(SEQS)
    assert p.shape == (3,) and p.dtype == np.float32
    assert np.all(np.isfinite(p))
    # The same sequences as an (N, 4, L) one-hot array (equal lengths): the same predictions.
    same = [s[:48] for s in SEQS]
    x = np.stack([onehot(s) for s in same])
    np.testing.assert_allclose(model.predict(x), model.predict(same), rtol=0, atol=1e-6)
    assert model.columns == ["prediction"] or len(model.columns) == 1
    assert model.length == 150


def test_layout_mistakes_are_named(model):
    x = np.stack([onehot(s[:48]) for s in SEQS]).transpose(0, 2, 1)
    with pytest.raises(ValueError, match="transpose"):
        model.predict(x)
    with pytest.raises(ValueError, match="position 3"):
        model.predict(["ACXT"])
    with pytest.raises(ValueError, match="method"):
        model.attribute(SEQS, method="deeplift-rescale")


def test_ism_is_mutant_minus_reference(model):
    maps = model.ism(SEQS[:1])
    assert maps.shape == (1, 4, len(SEQS[0]))
    seq = SEQS[0]
    ref = model.predict([seq])[0]
    for pos in (0, 10, len(seq) - 1):
        for b, letter in enumerate("ACGT"):
            mutant = seq[:pos] + letter + seq[pos + 1 :]
            want = 0.0 if letter == seq[pos] else model.predict([mutant])[0] - ref
            assert abs(maps[0, b, pos] - want) < 1e-5


def test_variant_effects_are_alt_minus_ref(model):
    ref, alt = SEQS[:2], [SEQS[0][:20] + "G" + SEQS[0][21:], SEQS[2]]
    eff = model.variant_effects(ref, alt)
    np.testing.assert_allclose(eff, model.predict(alt) - model.predict(ref), atol=1e-6)


@pytest.mark.parametrize("method", ["integrated_gradients", "shap"])
def test_attributions_sum_to_the_prediction_difference(model, method):
    onehot_, attr, pred, ref = model.attribute(
        SEQS, method=method, steps=32, shuffles=4, return_predictions=True
    )
    assert onehot_.shape == attr.shape == (3, 4, 150)
    assert onehot_.dtype == attr.dtype == np.float32
    # The one-hot is the padded input: one base per position.
    np.testing.assert_allclose(onehot_.sum(axis=1), 1.0)
    np.testing.assert_allclose(pred, model.predict(SEQS), atol=1e-5)
    diff = pred - ref
    assert np.all(np.abs(diff) > 1e-5)
    np.testing.assert_allclose(attr.sum(axis=(1, 2)), diff, rtol=0.03, atol=3e-5)


def test_input_x_gradient_is_saliency_at_the_bases_present(model):
    oh, sal = model.attribute(SEQS, method="saliency")
    _, ixg = model.attribute(SEQS, method="input_x_gradient")
    np.testing.assert_allclose(ixg, sal * oh, atol=1e-7)
    assert np.abs(sal).max() > 0


def test_arrays_are_what_modisco_reads(model, tmp_path):
    oh, attr = model.attribute(SEQS[:2], method="shap", shuffles=2, steps=4)
    np.savez(tmp_path / "ohe.npz", oh)
    np.savez(tmp_path / "attr.npz", attr)
    # modisco motifs reads np.load(path)["arr_0"] and wants (N, 4, L).
    back = np.load(tmp_path / "attr.npz")["arr_0"]
    assert back.shape == (2, 4, 150)


def test_dream_score_against_numpy(model):
    rng = np.random.default_rng(0)
    meas = rng.normal(size=200)
    pred = meas + rng.normal(scale=0.5, size=200)
    s = prixfixe.dream_score(pred, meas)
    r = np.corrcoef(pred, meas)[0, 1]
    rank = lambda v: np.argsort(np.argsort(v))
    rho = np.corrcoef(rank(pred), rank(meas))[0, 1]
    all_ = next(x for x in s["subsets"] if x["name"] == "all")
    assert abs(all_["pearson"] - r) < 1e-9
    assert abs(all_["spearman"] - rho) < 1e-9
    with pytest.raises(ValueError, match="measured"):
        prixfixe.dream_score(pred, meas[:10])


def test_a_missing_run_directory_is_named(tmp_path):
    with pytest.raises(ValueError, match="not a run directory"):
        prixfixe.load(tmp_path)


def test_sequence_files_read_as_predict_reads_them(model, tmp_path):
    fa = tmp_path / "x.fa"
    fa.write_text(">one\n" + SEQS[0][:30] + "\n" + SEQS[0][30:] + "\n>two\n" + SEQS[1] + "\n")
    ids, seqs = prixfixe.read_sequences(fa)
    assert ids == ["one", "two"] and seqs == SEQS[:2]
    # A table with a `sequence` column (what `predict` and `design` write) reads back too.
    tsv = tmp_path / "pred.tsv"
    pred = model.predict(SEQS)
    tsv.write_text("id\tsequence\tprediction\n" + "".join(
        f"s{i}\t{s}\t{p}\n" for i, (s, p) in enumerate(zip(SEQS, pred))))
    ids, seqs = prixfixe.read_sequences(tsv)
    assert ids == ["s0", "s1", "s2"]
    np.testing.assert_allclose(model.predict(seqs), pred, atol=1e-6)
    bad = tmp_path / "bad.fa"
    bad.write_text(">a\nACGT\n>b\nACXT\n")
    with pytest.raises(ValueError, match=r"bad.fa:4: invalid base .X."):
        prixfixe.read_sequences(bad)
