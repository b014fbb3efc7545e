//! The engine's layers, each built from its typed burn module: a convolution (BatchNorm folded
//! in), a linear map, and their channels-last forms ([`RowConv`], [`RowGrouped`],
//! [`RowLinear`]), LayerNorm on rows. Weights are read from the module's tensors, so no name is
//! spelled here: names live once, in each block's `visit_weights`.

use burn::module::Param;
use burn::tensor::Tensor;

use super::Layout;
use crate::kernels::{self, Conv, panels::Panels};
use crate::nn::{BatchNorm1d, Conv1d};
use crate::weights::tensor_values;

fn values<const D: usize>(p: &Param<Tensor<D>>) -> Vec<f32> {
    tensor_values(p.val())
}

/// A convolution's weights and bias as the engine's [`Conv`].
pub(crate) fn conv(c: &Conv1d) -> Conv {
    let [cout, cin_g, k] = c.conv.weight.dims();
    let groups = c.conv.groups;
    Conv::new(
        values(&c.conv.weight),
        c.conv.bias.as_ref().map_or_else(|| vec![0.0; cout], values),
        cin_g * groups,
        cout,
        k,
        groups,
    )
}

/// A convolution followed by BatchNorm (running statistics), folded into one convolution.
pub(crate) fn conv_bn(c: &Conv1d, bn: &BatchNorm1d) -> Conv {
    let mut conv = conv(c);
    let (gamma, beta) = (values(&bn.weight), values(&bn.bias));
    let mean = tensor_values(bn.running_mean.value());
    let var = tensor_values(bn.running_var.value());
    let eps = bn.eps as f32;
    let scale: Vec<f32> = gamma
        .iter()
        .zip(&var)
        .map(|(g, v)| g / (v + eps).sqrt())
        .collect();
    let shift: Vec<f32> = beta
        .iter()
        .zip(&mean)
        .zip(&scale)
        .map(|((b, m), s)| b - m * s)
        .collect();
    conv.fold(&scale, &shift);
    conv
}

/// `y = W x + b` on one vector, `W` row-major `[out, in]`.
pub(crate) struct Linear {
    w: Vec<f32>,
    b: Vec<f32>,
    pub(crate) out: usize,
    pub(crate) inp: usize,
}

impl Linear {
    /// From burn's linear layer (weights `[in, out]`).
    pub(crate) fn new(l: &burn::nn::Linear) -> Self {
        let [inp, out] = l.weight.dims();
        let w = kernels::transpose(&values(&l.weight), inp);
        let b = l.bias.as_ref().map_or_else(|| vec![0.0; out], values);
        Self { w, b, out, inp }
    }

    /// A 1×1 convolution as the linear map it is (the heads apply it to position means).
    pub(crate) fn pointwise(c: &Conv1d) -> Self {
        let c = conv(c);
        Self {
            out: c.cout,
            inp: c.cin,
            w: c.w,
            b: c.b,
        }
    }

    /// Reorder the inputs: new input `j` is old input `from(j)`.
    pub(crate) fn permute_inputs(&mut self, from: impl Fn(usize) -> usize) {
        let mut w = vec![0.0; self.w.len()];
        for o in 0..self.out {
            for j in 0..self.inp {
                w[o * self.inp + j] = self.w[o * self.inp + from(j)];
            }
        }
        self.w = w;
    }

    pub(crate) fn apply(&self, x: &[f32]) -> Vec<f32> {
        (0..self.out)
            .map(|o| self.b[o] + kernels::dot(&self.w[o * self.inp..(o + 1) * self.inp], x))
            .collect()
    }
}

/// A linear layer on rows, `out (rows × n) = x (rows × k) · W + b`, packed once ([`Panels`]).
pub(crate) struct RowLinear(Panels);

impl RowLinear {
    /// From burn's linear layer (weights `[in, out]`).
    pub(crate) fn new(l: &burn::nn::Linear) -> Self {
        let [k, n] = l.weight.dims();
        let (w, b) = (values(&l.weight), l.bias.as_ref().map(values));
        Self(Panels::new(k, n, |kk, o| w[kk * n + o], b.as_deref()))
    }

    /// From PyTorch's `[n, k]` layout (a 1×1 convolution, attention's stacked projection).
    pub(crate) fn out_in(w: &[f32], b: Option<&[f32]>, n: usize, k: usize) -> Self {
        Self(Panels::new(k, n, |kk, o| w[o * k + kk], b))
    }

    /// A 1×1 convolution on rows.
    pub(crate) fn pointwise(c: &Conv1d) -> Self {
        let c = conv(c);
        Self::out_in(&c.w, Some(&c.b), c.cout, c.cin)
    }

    /// Output width.
    pub(crate) fn n(&self) -> usize {
        self.0.n()
    }

    /// `out [rows, n] = x [rows, k] · W (+ b)`.
    pub(crate) fn apply(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        let (k, n) = (self.0.k(), self.0.n());
        self.0.apply((x, k), rows, (out, n), false);
    }
}

/// LayerNorm on rows (the reference's epsilon, 1e-6, as the block builds it).
pub(crate) struct LayerNorm {
    w: Vec<f32>,
    b: Option<Vec<f32>>,
    eps: f32,
}

impl LayerNorm {
    pub(crate) fn new(ln: &burn::nn::LayerNorm) -> Self {
        Self {
            w: values(&ln.gamma),
            b: ln.beta.as_ref().map(values),
            eps: crate::blocks::core_layers::unlock_dna::LN_EPS as f32,
        }
    }

    /// Normalise each row of `x` (`rows × d`) into `out`.
    pub(crate) fn apply(&self, x: &[f32], out: &mut [f32]) {
        let d = self.w.len();
        let mut xhat = vec![0.0; d];
        for (xr, or) in x.chunks(d).zip(out.chunks_mut(d)) {
            kernels::layer_norm_row(xr, &self.w, self.b.as_deref(), self.eps, &mut xhat, or);
        }
    }
}

/// A `same` convolution over a group's channels-last rows: one product per sequence whose rows
/// are the receptive fields, overlapping runs of `k·cin` values (weights `[k·cin, cout]`,
/// tap-major, with the bias).
pub(crate) struct RowConv {
    pub(crate) w: Panels,
    /// `(k − 1)/2`.
    pub(crate) pad: usize,
}

impl RowConv {
    /// From an ungrouped convolution with an odd kernel, or `None`.
    pub(crate) fn new(c: &Conv) -> Option<Self> {
        let (cin, k) = (c.cin, c.k);
        if c.groups != 1 || k % 2 == 0 || c.w.len() != c.cout * cin * k {
            return None;
        }
        // PyTorch's [out, in, k]: row t·cin + ci of the receptive field.
        let w = |kk: usize, o: usize| c.w[(o * cin + kk % cin) * k + kk / cin];
        Some(Self {
            w: Panels::new(k * cin, c.cout, w, Some(&c.b)),
            pad: (k - 1) / 2,
        })
    }

    /// Rows `[width, cin]` of a group (pad rows zero) → each sequence's output rows at
    /// `out[j·out_rs ..][..cout]`; pad rows of `out` untouched.
    pub(crate) fn apply(&self, x: &[f32], lay: &Layout, out: &mut [f32], out_rs: usize) {
        let (pad, cin) = (self.pad, self.w.k() / (2 * self.pad + 1));
        debug_assert!(pad <= lay.pad);
        for q in 0..lay.seqs {
            let j = q * lay.stride() + lay.pad;
            let rows = &x[(j - pad) * cin..];
            self.w.apply(
                (rows, cin),
                lay.len,
                (&mut out[j * out_rs..], out_rs),
                false,
            );
        }
    }
}

/// Parallel convolutions + ReLU over channels-last rows, their outputs side by side in each row
/// (the BHI core after its BiLSTM).
pub(crate) struct RowBranches(pub(crate) Vec<RowConv>);

impl RowBranches {
    /// From the convolutions of the branches, or `None` if one cannot run on rows.
    pub(crate) fn new(convs: &[Conv]) -> Option<Self> {
        convs
            .iter()
            .map(RowConv::new)
            .collect::<Option<_>>()
            .map(Self)
    }

    /// Rows `[width, cin]` of a group (pad rows zero) → the branches' ReLU outputs
    /// `[width, Σ cout]`, pad rows zero.
    pub(crate) fn apply(&self, x: &[f32], lay: &Layout) -> Vec<f32> {
        let cout: usize = self.0.iter().map(|c| c.w.n()).sum();
        let mut out = vec![0.0; lay.width() * cout];
        let mut col = 0;
        for c in &self.0 {
            c.apply(x, lay, &mut out[col..], cout);
            col += c.w.n();
        }
        kernels::relu(&mut out);
        out
    }
}

/// A grouped `same` convolution with as many input as output channels per group (`m`; one for
/// a depthwise convolution) on one sequence's rows `[len, d]`. Channel `c` sums its group's
/// channels in rotated order: `out[j, c] = b[c] + Σ_r Σ_t w_r[t, c] · x[j + t − pad, rot_r(c)]`
/// with `rot_r(c)` the channel `r` places after `c` within its group, so every term is an
/// element-wise product of whole rows.
pub(crate) struct RowGrouped {
    /// Per rotation `r`, the weights per tap, `[m][k][d]`.
    taps: Vec<f32>,
    b: Vec<f32>,
    m: usize,
    k: usize,
}

impl RowGrouped {
    /// From a grouped convolution with as many inputs as outputs per group, or `None`.
    pub(crate) fn new(conv: Conv) -> Option<Self> {
        let (d, k) = (conv.cout, conv.k);
        let m = conv.cin / conv.groups;
        if conv.cin != d || d % m != 0 || conv.w.len() != d * m * k {
            return None;
        }
        let mut taps = vec![0.0; m * k * d];
        for r in 0..m {
            for t in 0..k {
                for c in 0..d {
                    let i = (c % m + r) % m;
                    taps[(r * k + t) * d + c] = conv.w[(c * m + i) * k + t];
                }
            }
        }
        Some(Self {
            taps,
            b: conv.b,
            m,
            k,
        })
    }

    pub(crate) fn pad(&self) -> usize {
        (self.k - 1) / 2
    }

    /// `rotated` holds the input's rotated copies (rotation 0 is the input itself).
    pub(crate) fn apply(&self, x: &[f32], len: usize, out: &mut [f32], rotated: &mut Vec<f32>) {
        let (d, m, k) = (self.b.len(), self.m, self.k);
        super::ensure(rotated, (m - 1) * len * d);
        for r in 1..m {
            let at: Vec<usize> = (0..m).map(|i| (i + r) % m).collect();
            let y = &mut rotated[(r - 1) * len * d..r * len * d];
            for (yg, xg) in y.chunks_exact_mut(m).zip(x.chunks_exact(m)) {
                for (v, &i) in yg.iter_mut().zip(&at) {
                    *v = xg[i];
                }
            }
        }
        let srcs: Vec<&[f32]> = std::iter::once(&x[..len * d])
            .chain((1..m).map(|r| &rotated[(r - 1) * len * d..r * len * d]))
            .collect();
        kernels::grouped_rows(&mut out[..len * d], &self.b, &self.taps, &srcs, k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::transpose;

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 37 + seed * 11) % 29) as f32 * 0.07 - 1.0)
            .collect()
    }

    /// The channels-last convolutions against the channel-major [`Conv`] on the same weights:
    /// ungrouped over a group of sequences (pad rows zero), grouped with 1, 2 and 3 channels
    /// per group on one sequence.
    #[test]
    fn row_convolutions_match_channel_major() {
        let lay = Layout {
            seqs: 3,
            len: 11,
            pad: 4,
        };
        let (cin, cout, k) = (5, 7, 9);
        let conv = Conv::new(values(cout * cin * k, 1), values(cout, 2), cin, cout, k, 1);
        let x = lay.pack(
            (0..3)
                .map(|q| values(cin * 11, q + 3))
                .collect::<Vec<_>>()
                .iter()
                .map(Vec::as_slice),
            cin,
        );
        let mut want = vec![0.0; cout * lay.width()];
        conv.apply(&x, lay.width(), &mut want);
        let rows = transpose(&x, cin);
        let mut got = vec![f32::NAN; lay.width() * cout];
        RowConv::new(&conv)
            .unwrap()
            .apply(&rows, &lay, &mut got, cout);
        for q in 0..lay.seqs {
            for t in 0..lay.len {
                let j = q * lay.stride() + lay.pad + t;
                for o in 0..cout {
                    let (g, w) = (got[j * cout + o], want[o * lay.width() + j]);
                    assert!(
                        (g - w).abs() < 1e-4,
                        "seq {q} position {t} channel {o}: {g} vs {w}"
                    );
                }
            }
        }
        // 84 channels take the 64-, 16- and 1-wide paths of `kernels::grouped_rows`.
        for (m, d) in [(1, 6), (2, 6), (3, 6), (1, 84), (2, 84), (3, 84)] {
            let (len, k) = (13, 7);
            let conv = Conv::new(values(d * m * k, m), values(d, 5), d, d, k, d / m);
            let x = values(d * len, 7);
            let mut want = vec![0.0; d * len];
            conv.apply(&x, len, &mut want);
            let mut got = vec![0.0; len * d];
            let g = RowGrouped::new(conv).unwrap();
            g.apply(&transpose(&x, d), len, &mut got, &mut Vec::new());
            let got = transpose(&got, len);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() < 1e-4,
                    "{m} per group, {d} channels, at {i}: {g} vs {w}"
                );
            }
        }
    }
}
