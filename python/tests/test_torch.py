"""`prixfixe.torch`: the PyTorch twin of a prixfixe model gives the engine's predictions and
gradients. Both directions are tested: a checkpoint the engine wrote, loaded into PyTorch; and
PyTorch-initialised weights (BatchNorm statistics included) saved with `torch.save`, read by
the engine. Every block of the framework is in one of the configs below."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

# Skipped where torch is not installed, except in CI (`.ci/run` sets PRIXFIXE_REQUIRE_TORCH),
# where a missing torch is a failure.
if os.environ.get("PRIXFIXE_REQUIRE_TORCH"):
    import torch
else:
    torch = pytest.importorskip("torch")

import prixfixe  # noqa: E402
import prixfixe.torch as pft  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"
YEAST = """[input]
padding = { kind = "plasmid", length = 150 }
channels = { is_reverse = true, is_singleton = true }
"""
HUMAN = """[input]
padding = { kind = "exact", length = 230 }
channels = { is_reverse = true, is_singleton = false, bases = "acgt", n = "zero" }
strands = { kind = "average-core", start = 15, end = 215 }
"""
FLY = """[input]
padding = { kind = "exact", length = 249 }
channels = { is_reverse = true, is_singleton = false, n = "zero" }
strands = { kind = "given" }
"""
TOKENS = """[input]
padding = { kind = "unlock-dna" }
channels = { is_reverse = false, is_singleton = false, tokens = true }
"""
BHI_INPUT = """[input]
padding = { kind = "bhi", length = 110 }
channels = { is_reverse = false, is_singleton = false }
"""

ATAC = """[input]
padding = { kind = "exact", length = 400 }
channels = { is_reverse = false, is_singleton = false, bases = "acgt", n = "zero" }
strands = { kind = "given" }
"""

# (name, config, sequence length): small widths, every block at least once.
CONFIGS = [
    ("bhi-autosome-softclass", YEAST + """
[first]
block = "bhi"
out_channels = 16
[core]
block = "autosome"
widths = [8, 8, 4]
[final]
block = "soft-class"
""", 110),
    ("bhi-bhi-regression", BHI_INPUT + """
[first]
block = "bhi"
out_channels = 8
[core]
block = "bhi"
hidden = 6
out_channels = 8
[final]
block = "regression"
tasks = 2
hidden = 5
""", 80),
    ("autosome-unlockdna-bhi", YEAST + """
[first]
block = "autosome"
out_channels = 16
[core]
block = "unlock-dna"
d = 16
layers = 2
heads = 4
ff = 32
kernel = 5
[final]
block = "bhi"
hidden = 7
""", 110),
    ("tokens-unlockdna", TOKENS + """
[first]
block = "unlock-dna"
out_channels = 8
kmer = 4
[core]
block = "unlock-dna"
d = 8
layers = 1
heads = 2
ff = 16
kernel = 3
[final]
block = "unlock-dna"
projectors = 4
""", 80),
    ("deepstarr", 'tasks = ["dev", "hk"]\n' + FLY + """
[first]
block = "deepstarr"
filters = 8
[core]
block = "deepstarr"
filters = [6, 6, 8]
kernels = [3, 5, 3]
[final]
block = "deepstarr"
tasks = 2
hidden = [16, 8]
""", 249),
    ("mprann", HUMAN + """
[first]
block = "mprann"
filters = 8
[core]
block = "mprann"
filters = [8, 8, 6]
[final]
block = "mprann"
hidden = [12, 6]
""", 230),
    ("atac-profile", ATAC + """
[first]
block = "bpnet"
filters = 6
kernel = 9
[core]
block = "bpnet"
layers = 2
[final]
block = "profile"
profile_length = 100
kernel = 75
counts_weight = 1.0
""", 400),
    ("bpnet-regression", HUMAN + """
[first]
block = "bpnet"
filters = 8
kernel = 9
[core]
block = "bpnet"
layers = 3
[final]
block = "regression"
tasks = 1
hidden = 4
""", 230),
]


def sequences(n, length, seed):
    rng = np.random.default_rng(seed)
    out = ["".join(rng.choice(list("ACGT"), size=length)) for _ in range(n)]
    out[0] = out[0][:10] + "N" + out[0][11:]
    return out


def engine_predictions(model, seqs):
    """`predict`, or for an ATAC profile model (whose `predict` needs its bias model) the
    bias-free log counts that `attribute` explains."""
    if model.columns == ["log_counts"]:
        with pytest.raises(ValueError, match="predict atac"):
            model.predict(seqs)
        return model.attribute(seqs, method="saliency", return_predictions=True)[2]
    return model.predict(seqs)


def randomise(module, seed):
    """Weights away from their initial values, BatchNorm statistics included, so that a
    name or a layout mix-up changes the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.state_dict().items():
            if not p.is_floating_point():
                continue
            if name.endswith("running_var"):
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            elif name.endswith(("running_mean", "bn.bias")) or ".bias" in name:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bn.weight") or "layernorm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                fan_in = max(1, p[0].numel()) if p.ndim > 1 else p.numel()
                p.copy_(2.0 * torch.randn(p.shape, generator=g) / fan_in**0.5)


@pytest.fixture(scope="module")
def tiny():
    toml = (FIXTURES / "tiny_dream-cnn.toml").read_text()
    path = FIXTURES / "tiny_dream-cnn.safetensors"
    return prixfixe.load(path, config=toml), pft.load(path, config=toml)


def test_a_checkpoint_of_the_engine_predicts_the_same_in_torch(tiny):
    model, net = tiny
    seqs = sequences(5, 48, 1)
    assert isinstance(net, torch.nn.Module) and not net.training
    x = net.onehot(seqs)
    assert x.shape == (5, 4, 150)
    # The one-hot is the one `attribute` hands to TF-MoDISco.
    oh, _ = model.attribute(seqs, method="saliency")
    np.testing.assert_array_equal(x.numpy(), oh)
    y = net(x)
    assert y.shape == (5, 1)
    np.testing.assert_allclose(y.detach().numpy()[:, 0], model.predict(seqs), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(net.predict(seqs)[:, 0], model.predict(seqs), rtol=1e-5, atol=1e-5)
    # Gradients: torch's autograd through both strands = the engine's saliency.
    x.requires_grad_(True)
    net(x)[:, 0].sum().backward()
    _, sal = model.attribute(seqs, method="saliency")
    assert np.abs(sal).max() > 1e-3
    np.testing.assert_allclose(x.grad.numpy(), sal, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("name,config,length", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_torch_weights_read_by_the_engine_give_the_same_predictions(tmp_path, name, config, length):
    torch.manual_seed(0)
    net = pft.build(config)
    randomise(net, 7)
    net.eval()
    path = tmp_path / f"{name}.pth"
    torch.save(net.state_dict(), path)

    model = prixfixe.load(path, config=config)
    twin = pft.load(path, config=config)
    seqs = sequences(6, length, 3)
    x = twin.onehot(seqs)
    assert x.shape == (6, twin.planes, model.length)
    want = engine_predictions(model, seqs).reshape(6, -1)
    assert want.shape[1] == len(model.columns) == len(net.columns)
    assert np.std(want, axis=0).min() > 1e-4, "predictions should differ between sequences"
    with torch.no_grad():
        got = net(x).numpy()
        again = twin(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(again, got)

    # The same gradients, for the last task.
    task = len(model.columns) - 1
    x.requires_grad_(True)
    net(x)[:, task].sum().backward()
    _, sal = model.attribute(seqs, method="saliency", task=task)
    got = x.grad.numpy()[:, :4]
    scale = np.abs(sal).max()
    assert scale > 0
    # Elementwise to 1e-3 but for a few positions: where a ReLU's input is within float
    # rounding of 0 (the two engines sum in other orders), its gradient is taken on the
    # other side of the kink, which moves the gradient near that position only.
    close = np.isclose(got, sal, rtol=1e-3, atol=1e-4 * scale)
    assert close.mean() > 0.99, f"{(~close).sum()} of {close.size} gradients differ"
    assert np.linalg.norm(got - sal) < 3e-3 * np.linalg.norm(sal)


FULL_SIZE = {
    "dream-cnn": YEAST + '[first]\nblock = "bhi"\n[core]\nblock = "autosome"\n[final]\nblock = "soft-class"\n',
    "dream-rnn": YEAST + '[first]\nblock = "bhi"\n[core]\nblock = "bhi"\n[final]\nblock = "soft-class"\n',
    "dream-attn": YEAST
    + '[first]\nblock = "autosome"\n[core]\nblock = "unlock-dna"\n[final]\nblock = "soft-class"\n',
    "deepstarr": FLY + '[first]\nblock = "deepstarr"\n[core]\nblock = "deepstarr"\n'
    '[final]\nblock = "deepstarr"\ntasks = 2\nhidden = [256, 256]\ndropout = 0.4\n',
    "mprann": HUMAN + '[first]\nblock = "mprann"\n[core]\nblock = "mprann"\n'
    '[final]\nblock = "mprann"\ntasks = 1\nhidden = [300, 200]\ndropout = 0.3\n',
}


@pytest.mark.parametrize("name", FULL_SIZE)
def test_the_parameter_count_is_the_engines(name):
    cfg = json.loads(prixfixe._prixfixe.model_config(FULL_SIZE[name]))
    net = pft.build(cfg)
    assert sum(p.numel() for p in net.parameters()) == cfg["parameters"]


def test_mistakes_are_named(tiny):
    _, net = tiny
    with pytest.raises(ValueError, match=r"\(N, 4, 150\).*transpose"):
        net(torch.zeros(2, 150, 4))
    with pytest.raises(ValueError, match="unknown variant `lstm`"):
        pft.build((FIXTURES / "tiny_dream-cnn.toml").read_text().replace('"autosome"', '"lstm"'))
    with pytest.raises(ValueError, match="onehot needs"):
        pft.build((FIXTURES / "tiny_dream-cnn.toml").read_text()).onehot(["ACGT"])

