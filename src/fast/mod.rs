//! Our CPU kernels. Two parts:
//!
//! - [`autodiff`]: training. Operations with their own forward and backward passes inserted into
//!   burn's autodiff graph when tensors live on the CPU training backend (`Autodiff<Flex>`):
//!   convolutions (per-tap matrix products, or direct loops when grouped), a whole BiLSTM layer
//!   (both directions side by side), training-mode BatchNorm (+SiLU), LayerNorm, SwiGLU,
//!   multi-head softmax attention and dropout. Blocks call them through the layers in
//!   [`crate::nn`] and fall back to burn's operations on any other device, so the same model
//!   code runs on GPUs. Every parameter's gradient matches PyTorch (`tests/parity.rs`).
//! - this module: a CPU inference engine for every block (BHI and Autosome first blocks;
//!   Autosome, BHI and Unlock_DNA cores; both heads), used by prediction, validation, ISM and
//!   design when the model runs on the CPU.
//!
//! Built from a model's named weights (the reference's names), it computes exactly what the
//! burn network computes in inference mode, but without an autodiff graph or per-op tensor
//! allocations: BatchNorm is folded into the preceding convolution, `same` convolutions are one
//! matrix product per kernel tap (or direct loops for the grouped ones), activations use a
//! vectorisable `exp`, the soft-classification head averages before its 1×1 convolution (they
//! commute), and groups of sequences run in parallel, each on one thread with reused buffers.
//! The BiLSTM runs batch-wide: one product for all input projections, then per step one
//! `batch × 4H` product and fused gate arithmetic.
//!
//! The Unlock_DNA conformer runs per sequence on `[L, d]` rows (LayerNorm, SwiGLU feed-forward,
//! depthwise convolution module, multi-head attention). A block added later without an engine
//! makes [`FastNet::new`] return `None`, and the burn network is used. `PRIXFIXE_ENGINE=burn`
//! forces the burn path for both parts (for comparisons).

pub(crate) mod autodiff;
pub mod kernels;

use rayon::prelude::*;

use crate::blocks::{CoreConfig, FinalConfig, FirstConfig};
use crate::net::NetConfig;
use crate::weights::WeightMap;
use kernels::{Conv, matmul};

const BN_EPS: f32 = 1e-5;

struct Weights<'a>(&'a WeightMap);

impl Weights<'_> {
    fn get(&self, name: &str) -> Option<&[f32]> {
        self.0.tensors.get(name).map(|t| t.data.as_slice())
    }

    fn shape(&self, name: &str) -> Option<&[usize]> {
        self.0.tensors.get(name).map(|t| t.shape.as_slice())
    }

    fn conv(&self, prefix: &str, groups: usize) -> Option<Conv> {
        let shape = self.shape(&format!("{prefix}.weight"))?;
        let (cout, cin_g, k) = (shape[0], shape[1], shape[2]);
        Some(Conv::new(
            self.get(&format!("{prefix}.weight"))?.to_vec(),
            self.get(&format!("{prefix}.bias"))
                .map_or_else(|| vec![0.0; cout], <[f32]>::to_vec),
            cin_g * groups,
            cout,
            k,
            groups,
        ))
    }

    /// A convolution followed by BatchNorm, folded.
    fn conv_bn(&self, conv: &str, bn: &str, groups: usize) -> Option<Conv> {
        let mut c = self.conv(conv, groups)?;
        let gamma = self.get(&format!("{bn}.weight"))?;
        let beta = self.get(&format!("{bn}.bias"))?;
        let mean = self.get(&format!("{bn}.running_mean"))?;
        let var = self.get(&format!("{bn}.running_var"))?;
        let scale: Vec<f32> = gamma
            .iter()
            .zip(var)
            .map(|(g, v)| g / (v + BN_EPS).sqrt())
            .collect();
        let shift: Vec<f32> = beta
            .iter()
            .zip(mean)
            .zip(&scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        c.fold(&scale, &shift);
        Some(c)
    }

    /// A 1×1 convolution as the linear map it is (applied to position means in the heads).
    fn pointwise(&self, prefix: &str) -> Option<Linear> {
        let conv = self.conv(prefix, 1)?;
        Some(Linear {
            out: conv.cout,
            inp: conv.cin,
            w: conv.w,
            b: conv.b,
        })
    }

    /// A linear layer on rows from `{weight}` (`[n, k]`, or `[n, k, 1]` for a 1×1
    /// convolution) and an optional `{bias}` (`[n]`).
    fn row_linear(&self, weight: &str, bias: Option<&str>) -> Option<RowLinear> {
        let (n, k) = match self.shape(weight)? {
            &[n, k] | &[n, k, 1] => (n, k),
            _ => return None,
        };
        let b = match bias {
            Some(name) => Some(self.get(name).filter(|b| b.len() == n)?),
            None => None,
        };
        Some(RowLinear::new(self.get(weight)?, b, n, k))
    }

    fn linear(&self, prefix: &str) -> Option<Linear> {
        let shape = self.shape(&format!("{prefix}.weight"))?;
        Some(Linear {
            w: self.get(&format!("{prefix}.weight"))?.to_vec(),
            b: self.get(&format!("{prefix}.bias"))?.to_vec(),
            out: shape[0],
            inp: shape[1],
        })
    }
}

/// `y = W x + b`, `W` as PyTorch stores it (`[out, in]`).
struct Linear {
    w: Vec<f32>,
    b: Vec<f32>,
    out: usize,
    inp: usize,
}

impl Linear {
    fn apply(&self, x: &[f32]) -> Vec<f32> {
        (0..self.out)
            .map(|o| self.b[o] + kernels::dot(&self.w[o * self.inp..(o + 1) * self.inp], x))
            .collect()
    }
}

/// Parallel convolutions + ReLU, concatenated (the BHI pair).
struct Branches(Vec<Conv>);

impl Branches {
    fn new(w: &Weights, prefix: &str, n: usize) -> Option<Self> {
        (0..n)
            .map(|i| w.conv(&format!("{prefix}.conv_list.{i}.conv"), 1))
            .collect::<Option<Vec<_>>>()
            .map(Self)
    }

    fn out(&self) -> usize {
        self.0.iter().map(|c| c.cout).sum()
    }

    fn apply(&self, x: &[f32], len: usize, out: &mut Vec<f32>) {
        out.resize(self.out() * len, 0.0);
        let mut at = 0;
        for c in &self.0 {
            c.apply(x, len, &mut out[at..at + c.cout * len]);
            at += c.cout * len;
        }
        kernels::relu(out);
    }
}

struct Stage {
    expand: Conv,
    grouped: Conv,
    se_down: Linear,
    se_up: Linear,
    project: Conv,
    resize: Conv,
}

enum First {
    Bhi(Branches),
    Autosome(Conv),
}

struct Lstm {
    /// `[4H, in]` per direction.
    w_ih: [Vec<f32>; 2],
    /// `W_hhᵀ`, `[H, 4H]` row-major, per direction (the per-step product reads it row-major).
    w_hh: [Vec<f32>; 2],
    /// `b_ih + b_hh` per direction.
    bias: [Vec<f32>; 2],
    hidden: usize,
    inp: usize,
}

enum Core {
    Autosome(Vec<Stage>),
    Bhi(Lstm, Branches),
    Unlock(Conformer),
}

enum Final {
    SoftClass(Linear),
    Regression(Vec<(Linear, Linear)>),
}

/// The engine for one model.
pub struct FastNet {
    first: First,
    core: Core,
    head: Final,
    channels: usize,
    length: usize,
    /// Zero columns around each sequence: the largest `same` padding of any convolution.
    pad: usize,
}

/// Per-thread buffers.
#[derive(Default)]
struct Scratch {
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    d: Vec<f32>,
}

fn ensure(v: &mut Vec<f32>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}

impl FastNet {
    /// Whether the engine is switched off (`PRIXFIXE_ENGINE=burn`).
    pub fn disabled() -> bool {
        std::env::var("PRIXFIXE_ENGINE").is_ok_and(|v| v == "burn")
    }

    /// Build the engine from a config and its weights; `None` for blocks it does not cover.
    pub fn new(config: &NetConfig, weights: &WeightMap) -> Option<Self> {
        let w = Weights(weights);
        let first = match &config.first {
            FirstConfig::Bhi(c) => First::Bhi(Branches::new(&w, "first", c.kernels.len())?),
            FirstConfig::Autosome(_) => {
                First::Autosome(w.conv_bn("first.block.0", "first.block.1", 1)?)
            }
        };
        let core = match &config.core {
            CoreConfig::Autosome(c) => {
                let mut stages = Vec::new();
                for (i, &s) in c.widths.iter().enumerate() {
                    let inv = format!("core.seqextractor.inv_res_blc{i}");
                    let res = format!("core.seqextractor.resize_blc{i}");
                    let e = c.expand * s;
                    stages.push(Stage {
                        expand: w.conv_bn(&format!("{inv}.0"), &format!("{inv}.1"), 1)?,
                        grouped: w.conv_bn(&format!("{inv}.3"), &format!("{inv}.4"), e / 2)?,
                        se_down: w.linear(&format!("{inv}.6.fc.0"))?,
                        se_up: w.linear(&format!("{inv}.6.fc.2"))?,
                        project: w.conv_bn(&format!("{inv}.7"), &format!("{inv}.8"), 1)?,
                        resize: w.conv_bn(&format!("{res}.0"), &format!("{res}.1"), 1)?,
                    });
                }
                Core::Autosome(stages)
            }
            CoreConfig::Bhi(c) => {
                let dir = |s: &str| -> Option<(Vec<f32>, Vec<f32>, Vec<f32>)> {
                    let bi = w.get(&format!("core.lstm.bias_ih_l0{s}"))?;
                    let bh = w.get(&format!("core.lstm.bias_hh_l0{s}"))?;
                    Some((
                        w.get(&format!("core.lstm.weight_ih_l0{s}"))?.to_vec(),
                        w.get(&format!("core.lstm.weight_hh_l0{s}"))?.to_vec(),
                        bi.iter().zip(bh).map(|(a, b)| a + b).collect(),
                    ))
                };
                let (fi, fh, fb) = dir("")?;
                let (ri, rh, rb) = dir("_reverse")?;
                let inp = w.shape("core.lstm.weight_ih_l0")?[1];
                Core::Bhi(
                    Lstm {
                        w_ih: [fi, ri],
                        w_hh: [transpose(&fh, 4 * c.hidden), transpose(&rh, 4 * c.hidden)],
                        bias: [fb, rb],
                        hidden: c.hidden,
                        inp,
                    },
                    Branches::new(&w, "core", c.kernels.len())?,
                )
            }
            CoreConfig::UnlockDna(c) => Core::Unlock(Conformer::new(&w, c)?),
        };
        let head = match &config.final_block {
            FinalConfig::SoftClass(_) => Final::SoftClass(w.pointwise("final.mapper.0")?),
            FinalConfig::Regression(r) => Final::Regression(
                (0..r.tasks)
                    .map(|t| {
                        Some((
                            w.pointwise(&format!("final.heads.{t}.conv"))?,
                            w.linear(&format!("final.heads.{t}.linear"))?,
                        ))
                    })
                    .collect::<Option<Vec<_>>>()?,
            ),
        };
        let mut pad = 0;
        let mut see = |c: &Conv| pad = pad.max(c.k / 2);
        match &first {
            First::Bhi(b) => b.0.iter().for_each(&mut see),
            First::Autosome(c) => see(c),
        }
        match &core {
            Core::Autosome(stages) => stages.iter().for_each(|st| {
                for c in [&st.expand, &st.grouped, &st.project, &st.resize] {
                    see(c);
                }
            }),
            Core::Bhi(_, b) => b.0.iter().for_each(&mut see),
            Core::Unlock(_) => {}
        }
        Some(Self {
            first,
            core,
            head,
            channels: config.input.channels.count(),
            length: config.input.padding.length(),
            pad,
        })
    }

    /// Predictions `rows × tasks` (decoded: expectation over bins, or regression values) for
    /// `rows` inputs `channels × length`, as [`crate::PrixFixeNet::predict`] gives them.
    ///
    /// Sequences go through the convolutional blocks in groups laid side by side, each with
    /// zero columns on both sides ([`Layout`]): one `same` convolution over the whole group is
    /// then exactly the per-sequence convolution, and every matrix product is wide.
    pub fn predict(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let row = self.channels * self.length;
        assert_eq!(x.len(), rows * row, "input of the wrong size");
        let group = rows
            .div_ceil(rayon::current_num_threads())
            .clamp(1, MAX_GROUP);
        match &self.core {
            Core::Autosome(stages) => x
                .par_chunks(group * row)
                .map_init(Scratch::default, |s, xs| {
                    let lay = self.layout(xs.len() / row);
                    let h = self.first(xs, &lay);
                    let h = autosome(stages, h, &lay, s);
                    self.decode(&h, &lay)
                })
                .flatten_iter()
                .collect(),
            Core::Bhi(lstm, branches) => {
                let first: Vec<Vec<f32>> = x
                    .par_chunks(group * row)
                    .map(|xs| {
                        let lay = self.layout(xs.len() / row);
                        let h = self.first(xs, &lay);
                        lay.unpack(&h, self.first_out())
                    })
                    .flatten_iter()
                    .collect();
                let h = lstm.apply(&first, self.length);
                h.par_chunks(group)
                    .map(|hs| {
                        let lay = self.layout(hs.len());
                        let packed = lay.pack(hs.iter().map(Vec::as_slice), 2 * lstm.hidden);
                        let mut out = Vec::new();
                        branches.apply(&packed, lay.width(), &mut out);
                        lay.zero_pads(&mut out);
                        self.decode(&out, &lay)
                    })
                    .flatten_iter()
                    .collect()
            }
            Core::Unlock(conformer) => x
                .par_chunks(group * row)
                .map(|xs| {
                    let lay = self.layout(xs.len() / row);
                    let h = self.first(xs, &lay);
                    let one = Layout {
                        seqs: 1,
                        len: self.length,
                        pad: 0,
                    };
                    let h = conformer.apply(
                        &lay.unpack(&h, self.first_out()).concat(),
                        lay.seqs,
                        self.length,
                    );
                    h.chunks(conformer.d * self.length)
                        .flat_map(|hi| self.decode(hi, &one))
                        .collect::<Vec<_>>()
                })
                .flatten_iter()
                .collect(),
        }
    }

    fn first_out(&self) -> usize {
        match &self.first {
            First::Bhi(b) => b.out(),
            First::Autosome(c) => c.cout,
        }
    }

    fn layout(&self, seqs: usize) -> Layout {
        Layout {
            seqs,
            len: self.length,
            pad: self.pad,
        }
    }

    /// The first block on a group of encoded inputs.
    fn first(&self, xs: &[f32], lay: &Layout) -> Vec<f32> {
        let row = self.channels * self.length;
        let x = lay.pack(xs.chunks(row), self.channels);
        let mut out = Vec::new();
        match &self.first {
            First::Bhi(b) => b.apply(&x, lay.width(), &mut out),
            First::Autosome(c) => {
                out.resize(c.cout * lay.width(), 0.0);
                c.apply(&x, lay.width(), &mut out);
                kernels::silu(&mut out);
            }
        }
        lay.zero_pads(&mut out);
        out
    }

    /// The head on a group: one prediction row per sequence.
    fn decode(&self, h: &[f32], lay: &Layout) -> Vec<f32> {
        (0..lay.seqs)
            .flat_map(|q| match &self.head {
                Final::SoftClass(lin) => {
                    // mean over positions commutes with the 1×1 convolution
                    let logits = lin.apply(&lay.means(h, lin.inp, q));
                    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let e: Vec<f32> = logits.iter().map(|v| (v - max).exp()).collect();
                    let z: f32 = e.iter().sum();
                    vec![e.iter().enumerate().map(|(i, v)| i as f32 * v).sum::<f32>() / z]
                }
                Final::Regression(heads) => {
                    let m = lay.means(h, heads[0].0.inp, q);
                    heads
                        .iter()
                        .map(|(conv, lin)| lin.apply(&conv.apply(&m))[0])
                        .collect()
                }
            })
            .collect()
    }
}

/// Sequences per group (measured on DREAM-CNN/RNN inference, 2 threads: 1 → 263, 2 → 282,
/// 4 → 275, 8 → 265 seq/s for DREAM-CNN; wider groups fall out of cache).
const MAX_GROUP: usize = 4;

/// A group of sequences side by side: each takes `pad + len + pad` columns, the pads zero, so
/// a `same` convolution over the whole width (kernel up to `2·pad + 1`) never mixes sequences.
struct Layout {
    seqs: usize,
    len: usize,
    pad: usize,
}

impl Layout {
    fn stride(&self) -> usize {
        self.len + 2 * self.pad
    }

    fn width(&self) -> usize {
        self.seqs * self.stride()
    }

    /// `[channels, len]` per sequence → `[channels, width]`.
    fn pack<'a>(&self, xs: impl Iterator<Item = &'a [f32]>, channels: usize) -> Vec<f32> {
        let (w, st, len) = (self.width(), self.stride(), self.len);
        let mut out = vec![0.0; channels * w];
        for (q, x) in xs.enumerate() {
            for c in 0..channels {
                let at = c * w + q * st + self.pad;
                out[at..at + len].copy_from_slice(&x[c * len..(c + 1) * len]);
            }
        }
        out
    }

    /// `[channels, width]` → `[channels, len]` per sequence.
    fn unpack(&self, x: &[f32], channels: usize) -> Vec<Vec<f32>> {
        let (w, st, len) = (self.width(), self.stride(), self.len);
        (0..self.seqs)
            .map(|q| {
                let mut v = Vec::with_capacity(channels * len);
                for c in 0..channels {
                    let at = c * w + q * st + self.pad;
                    v.extend_from_slice(&x[at..at + len]);
                }
                v
            })
            .collect()
    }

    /// Zero the pad columns of every channel (a convolution's bias and activation fill them).
    fn zero_pads(&self, x: &mut [f32]) {
        let (w, st) = (self.width(), self.stride());
        for row in x.chunks_mut(w) {
            for q in 0..self.seqs {
                row[q * st..q * st + self.pad].fill(0.0);
                row[q * st + self.pad + self.len..(q + 1) * st].fill(0.0);
            }
        }
    }

    /// Per-channel means over sequence `q`'s columns.
    fn means(&self, x: &[f32], channels: usize, q: usize) -> Vec<f32> {
        let (w, at) = (self.width(), q * self.stride() + self.pad);
        (0..channels)
            .map(|c| kernels::sum(&x[c * w + at..c * w + at + self.len]) / self.len as f32)
            .collect()
    }

    /// Multiply sequence `q`'s columns of each channel by `g[c]`.
    fn scale(&self, x: &mut [f32], q: usize, g: &[f32]) {
        let (w, at) = (self.width(), q * self.stride() + self.pad);
        for (c, gc) in g.iter().enumerate() {
            x[c * w + at..c * w + at + self.len]
                .iter_mut()
                .for_each(|v| *v *= gc);
        }
    }
}

fn autosome(stages: &[Stage], mut x: Vec<f32>, lay: &Layout, s: &mut Scratch) -> Vec<f32> {
    let len = lay.width();
    for st in stages {
        let (p, e) = (st.expand.cin, st.expand.cout);
        ensure(&mut s.a, e * len);
        st.expand.apply(&x, len, &mut s.a);
        kernels::silu(&mut s.a[..e * len]);
        lay.zero_pads(&mut s.a[..e * len]);
        ensure(&mut s.b, e * len);
        st.grouped.apply(&s.a, len, &mut s.b);
        let h = &mut s.b[..e * len];
        kernels::silu(h);
        lay.zero_pads(h);
        // squeeze-excitation, per sequence
        for q in 0..lay.seqs {
            let mut z = st.se_down.apply(&lay.means(h, e, q));
            kernels::silu(&mut z);
            let mut g = st.se_up.apply(&z);
            kernels::sigmoid(&mut g);
            lay.scale(h, q, &g);
        }
        // project, then concatenate [x; h] into c
        ensure(&mut s.c, 2 * p * len);
        s.c[..p * len].copy_from_slice(&x[..p * len]);
        st.project.apply(&s.b, len, &mut s.c[p * len..2 * p * len]);
        kernels::silu(&mut s.c[p * len..2 * p * len]);
        lay.zero_pads(&mut s.c[p * len..2 * p * len]);
        let out_c = st.resize.cout;
        ensure(&mut s.d, out_c * len);
        st.resize.apply(&s.c, len, &mut s.d);
        kernels::silu(&mut s.d[..out_c * len]);
        lay.zero_pads(&mut s.d[..out_c * len]);
        x.clear();
        x.extend_from_slice(&s.d[..out_c * len]);
    }
    x
}

/// Unlock_DNA's conformer layers, on one sequence as `[L, d]` rows.
struct Conformer {
    pos: Vec<f32>,
    layers: Vec<ConformerLayer>,
    d: usize,
    heads: usize,
}

struct LayerNorm {
    w: Vec<f32>,
    b: Vec<f32>,
}

struct FeedForward {
    norm: LayerNorm,
    /// `d → ff`, no bias.
    w1: RowLinear,
    /// `ff/2 → d`, no bias.
    w2: RowLinear,
}

struct ConformerLayer {
    ff1: FeedForward,
    norm1: LayerNorm,
    depthwise: RowDepthwise,
    pointwise: RowLinear,
    norm2: LayerNorm,
    in_proj: RowLinear,
    out_proj: RowLinear,
    ff2: FeedForward,
}

/// A linear layer on rows, `out (rows × n) = x (rows × k) · Wᵀ + b`, holding `Wᵀ` (`[k, n]`)
/// so the product reads it in place as its packed operand: measured faster than repacking a
/// `[n, k]` weight matrix in every product.
struct RowLinear {
    wt: Vec<f32>,
    b: Option<Vec<f32>>,
    n: usize,
    k: usize,
}

impl RowLinear {
    /// From PyTorch's `[n, k]` weights.
    fn new(w: &[f32], b: Option<&[f32]>, n: usize, k: usize) -> Self {
        Self {
            wt: transpose(w, n),
            b: b.map(<[f32]>::to_vec),
            n,
            k,
        }
    }

    fn apply(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        let n = self.n;
        if let Some(b) = &self.b {
            for row in out[..rows * n].chunks_mut(n) {
                row.copy_from_slice(b);
            }
        }
        matmul(
            rows,
            n,
            self.k,
            x,
            (self.k, 1),
            &self.wt,
            (n, 1),
            out,
            self.b.is_some(),
        );
    }
}

const LN_EPS: f32 = 1e-6;

impl LayerNorm {
    fn new(w: &Weights, prefix: &str) -> Option<Self> {
        Some(Self {
            w: w.get(&format!("{prefix}.weight"))?.to_vec(),
            b: w.get(&format!("{prefix}.bias"))?.to_vec(),
        })
    }

    /// Normalise each row of `x` (`rows × d`) into `out`.
    fn apply(&self, x: &[f32], out: &mut [f32]) {
        let d = self.w.len();
        for (xr, or) in x.chunks(d).zip(out.chunks_mut(d)) {
            kernels::standardize(xr, LN_EPS, or);
            for ((o, w), b) in or.iter_mut().zip(&self.w).zip(&self.b) {
                *o = *o * w + b;
            }
        }
    }
}

impl FeedForward {
    fn new(w: &Weights, prefix: &str) -> Option<Self> {
        Some(Self {
            norm: LayerNorm::new(w, &format!("{prefix}.layernorm"))?,
            w1: w.row_linear(&format!("{prefix}.linear1.weight"), None)?,
            w2: w.row_linear(&format!("{prefix}.linear2.weight"), None)?,
        })
    }

    /// `x += 0.5 · FF(x)` on `len × d` rows.
    fn add_half(&self, x: &mut [f32], len: usize, d: usize) {
        let mut h = vec![0.0; len * d];
        self.norm.apply(x, &mut h);
        let ff = self.w1.n;
        let mut u = vec![0.0; len * ff];
        self.w1.apply(&h, len, &mut u);
        // SwiGLU: value · silu(gate), value the first half of each row.
        let half = ff / 2;
        let mut v = vec![0.0; len * half];
        for (vr, ur) in v.chunks_mut(half).zip(u.chunks_mut(ff)) {
            let (value, gate) = ur.split_at_mut(half);
            kernels::silu(gate);
            for j in 0..half {
                vr[j] = value[j] * gate[j];
            }
        }
        self.w2.apply(&v, len, &mut h);
        x.iter_mut().zip(&h).for_each(|(a, b)| *a += 0.5 * b);
    }
}

/// A depthwise `same` convolution (weights `[d, 1, k]`) on one sequence's rows `[len, d]`:
/// `out[j] = b + Σ_t w[:, t] ⊙ x[j + t − pad]`, each tap a vector operation over the channels.
struct RowDepthwise {
    /// The weights per tap, `[k, d]`.
    taps: Vec<f32>,
    b: Vec<f32>,
}

impl RowDepthwise {
    /// From a convolution with one input channel per group, or `None`.
    fn new(conv: Conv) -> Option<Self> {
        (conv.w.len() == conv.cout * conv.k).then(|| Self {
            taps: transpose(&conv.w, conv.cout),
            b: conv.b,
        })
    }

    fn apply(&self, x: &[f32], len: usize, out: &mut [f32]) {
        let d = self.b.len();
        let pad = (self.taps.len() / d - 1) / 2;
        for (j, o) in out.chunks_mut(d).take(len).enumerate() {
            o.copy_from_slice(&self.b);
            for (t, w) in self.taps.chunks(d).enumerate() {
                if let Some(src) = (j + t).checked_sub(pad).filter(|&s| s < len) {
                    kernels::mul_add(o, w, &x[src * d..(src + 1) * d]);
                }
            }
        }
    }
}

impl Conformer {
    fn new(
        w: &Weights,
        c: &crate::blocks::core_layers::unlock_dna::UnlockDnaConfig,
    ) -> Option<Self> {
        let layers = (0..c.layers)
            .map(|i| {
                let p = format!("core.blocks.{i}");
                Some(ConformerLayer {
                    ff1: FeedForward::new(w, &format!("{p}.ff1"))?,
                    norm1: LayerNorm::new(w, &format!("{p}.layernorm1"))?,
                    depthwise: RowDepthwise::new(w.conv(&format!("{p}.conv.0"), c.d)?)?,
                    pointwise: w.row_linear(
                        &format!("{p}.conv.1.weight"),
                        Some(&format!("{p}.conv.1.bias")),
                    )?,
                    norm2: LayerNorm::new(w, &format!("{p}.layernorm2"))?,
                    in_proj: w.row_linear(
                        &format!("{p}.attn.in_proj_weight"),
                        Some(&format!("{p}.attn.in_proj_bias")),
                    )?,
                    out_proj: w.row_linear(
                        &format!("{p}.attn.out_proj.weight"),
                        Some(&format!("{p}.attn.out_proj.bias")),
                    )?,
                    ff2: FeedForward::new(w, &format!("{p}.ff2"))?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            pos: w.get("core.pos_embedding.weight")?.to_vec(),
            layers,
            d: c.d,
            heads: c.heads,
        })
    }

    /// `seqs` sequences of `[d, L]`, one after another → the same layout. Row-wise layers
    /// (LayerNorm, feed-forward, attention projections) run on all `seqs · L` rows at once, so
    /// each weight matrix is packed once per group instead of once per sequence.
    fn apply(&self, x: &[f32], seqs: usize, len: usize) -> Vec<f32> {
        let d = self.d;
        let block = len * d;
        // to rows [L, d] per sequence, plus the position embedding
        let mut t = vec![0.0; seqs * block];
        for (ts, xs) in t.chunks_mut(block).zip(x.chunks(block)) {
            kernels::transpose_into(xs, d, len, ts);
            ts.iter_mut().zip(&self.pos).for_each(|(v, p)| *v += p);
        }
        let rows = seqs * len;
        let mut h = vec![0.0; rows * d];
        let mut conv = vec![0.0; rows * d];
        let mut pw = vec![0.0; rows * d];
        for layer in &self.layers {
            layer.ff1.add_half(&mut t, rows, d);
            // convolution module on LN1(x), added to LN1(x); then x = LN2(x + that)
            layer.norm1.apply(&t, &mut h);
            for (hs, cs) in h.chunks(block).zip(conv.chunks_mut(block)) {
                layer.depthwise.apply(hs, len, cs);
            }
            // the 1×1 convolution is a linear layer on rows
            layer.pointwise.apply(&conv, rows, &mut pw);
            kernels::relu(&mut pw);
            for ((a, p), x) in h.iter_mut().zip(&pw).zip(&t) {
                *a += p + x;
            }
            layer.norm2.apply(&h, &mut t);
            self.attention(layer, &mut t, seqs, len);
            layer.ff2.add_half(&mut t, seqs * len, d);
        }
        let mut out = vec![0.0; seqs * block];
        for (os, ts) in out.chunks_mut(block).zip(t.chunks(block)) {
            kernels::transpose_into(ts, len, d, os);
        }
        out
    }

    /// `x += MHA(x)` on `seqs` sequences of `len × d` rows, attention within each sequence
    /// (PyTorch's `in_proj` layout: q, k, v stacked).
    fn attention(&self, layer: &ConformerLayer, x: &mut [f32], seqs: usize, len: usize) {
        let (d, heads) = (self.d, self.heads);
        let (dh, rows) = (d / heads, seqs * len);
        let mut qkv = vec![0.0; rows * 3 * d];
        layer.in_proj.apply(x, rows, &mut qkv);
        let scale = 1.0 / (dh as f32).sqrt();
        let mut scores = vec![0.0; len * len];
        let mut att = vec![0.0; rows * d];
        for (qs, atts) in qkv.chunks(len * 3 * d).zip(att.chunks_mut(len * d)) {
            for hd in 0..heads {
                let q = &qs[hd * dh..];
                let k = &qs[d + hd * dh..];
                let v = &qs[2 * d + hd * dh..];
                // scores = q kᵀ: q rows (3d, 1), kᵀ strides (1, 3d)
                matmul(
                    len,
                    len,
                    dh,
                    q,
                    (3 * d, 1),
                    k,
                    (1, 3 * d),
                    &mut scores,
                    false,
                );
                for row in scores.chunks_mut(len) {
                    kernels::softmax_scaled(row, scale);
                }
                // att[:, head] = scores · v
                crate::fast::kernels::matmul_strided(
                    len,
                    dh,
                    len,
                    &scores,
                    (len, 1),
                    v,
                    (3 * d, 1),
                    &mut atts[hd * dh..],
                    d,
                );
            }
        }
        let mut out = vec![0.0; rows * d];
        layer.out_proj.apply(&att, rows, &mut out);
        x.iter_mut().zip(&out).for_each(|(a, b)| *a += b);
    }
}

/// The transpose of a row-major `rows × (len/rows)` matrix.
pub(crate) fn transpose(m: &[f32], rows: usize) -> Vec<f32> {
    let mut t = vec![0.0; m.len()];
    kernels::transpose_into(m, rows, m.len() / rows, &mut t);
    t
}

impl Lstm {
    /// Inputs `[C, L]` per sequence → outputs `[2H, L]` per sequence (forward then backward
    /// direction), PyTorch's gate order `i, f, g, o`.
    fn apply(&self, xs: &[Vec<f32>], len: usize) -> Vec<Vec<f32>> {
        let h = self.hidden;
        // The two directions side by side, each on one thread: no synchronisation per step.
        let (fwd, bwd) = rayon::join(|| self.direction(xs, len, 0), || self.direction(xs, len, 1));
        fwd.into_iter()
            .zip(bwd)
            .map(|(f, b)| {
                let mut o = f;
                o.extend_from_slice(&b);
                debug_assert_eq!(o.len(), 2 * h * len);
                o
            })
            .collect()
    }

    /// One direction over all sequences on the calling thread: `[H, L]` per sequence.
    fn direction(&self, xs: &[Vec<f32>], len: usize, dir: usize) -> Vec<Vec<f32>> {
        let (b, h, c) = (xs.len(), self.hidden, self.inp);
        let g4 = 4 * h;
        // Input projections of every position of every sequence: [b][L, 4H].
        let xw: Vec<Vec<f32>> = xs
            .iter()
            .map(|x| {
                let mut y = vec![0.0; len * g4];
                for row in y.chunks_mut(g4) {
                    row.copy_from_slice(&self.bias[dir]);
                }
                // x is [C, L]: as an [L, C] matrix its strides are (1, L); W_ih^T is [C, 4H]
                // with strides (1, C).
                matmul(
                    len,
                    g4,
                    c,
                    x,
                    (1, len),
                    &self.w_ih[dir],
                    (1, c),
                    &mut y,
                    true,
                );
                y
            })
            .collect();
        let mut out: Vec<Vec<f32>> = vec![vec![0.0; h * len]; b];
        let mut hs = vec![0.0f32; b * h];
        let mut cs = vec![0.0f32; b * h];
        let mut gates = vec![0.0f32; b * g4];
        let mut tc = vec![0.0f32; h];
        for step in 0..len {
            let t = if dir == 0 { step } else { len - 1 - step };
            // gates = xw[t] + h · W_hhᵀ
            for r in 0..b {
                gates[r * g4..(r + 1) * g4].copy_from_slice(&xw[r][t * g4..(t + 1) * g4]);
            }
            matmul(
                b,
                g4,
                h,
                &hs,
                (h, 1),
                &self.w_hh[dir],
                (g4, 1),
                &mut gates,
                true,
            );
            for r in 0..b {
                let h_row = &mut hs[r * h..(r + 1) * h];
                kernels::lstm_cell(
                    kernels::lstm_gates(&mut gates[r * g4..(r + 1) * g4], h),
                    &mut cs[r * h..(r + 1) * h],
                    h_row,
                    &mut tc,
                );
                for (j, &v) in h_row.iter().enumerate() {
                    out[r][j * len + t] = v;
                }
            }
        }
        out
    }
}
