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
//! allocations: BatchNorm is folded into the preceding convolution, activations use a
//! vectorisable `exp`, the soft-classification head averages before its 1×1 convolution (they
//! commute), and groups of sequences run in parallel, each on one thread with buffers kept
//! between groups.
//!
//! After the first block, the cores work on channels-last rows (one row of channels per
//! position). A `same` convolution there is one product per sequence whose rows are the
//! receptive fields, overlapping runs of `k·cin` values, with no im2col copy (`RowConv`);
//! grouped convolutions are element-wise products of whole rows (`RowGrouped`). Products
//! whose weights are known when the engine is built use [`panels::Panels`] (weights packed
//! once for an AVX-512 micro-kernel). The BiLSTM runs batch-wide on time-major rows, each
//! direction on one thread: the input projections a few steps at a time, then per step one
//! `batch × 4H` product and fused gate arithmetic. The first blocks stay channel-major (one
//! product per kernel tap on shifted columns).
//!
//! The Unlock_DNA conformer runs per sequence on `[L, d]` rows (LayerNorm, SwiGLU feed-forward,
//! depthwise convolution module, multi-head attention). A block added later without an engine
//! makes [`FastNet::new`] return `None`, and the burn network is used. `PRIXFIXE_ENGINE=burn`
//! forces the burn path for both parts (for comparisons).

pub(crate) mod autodiff;
pub mod kernels;
pub mod panels;

use rayon::prelude::*;

use crate::blocks::{CoreConfig, FinalConfig, FirstConfig};
use crate::net::NetConfig;
use crate::weights::WeightMap;
use kernels::{Conv, matmul};
use panels::Panels;

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

/// An Autosome core stage on channels-last rows, BatchNorm folded into every convolution.
struct Stage {
    expand: RowConv,
    grouped: RowGrouped,
    se_down: Linear,
    se_up: Linear,
    project: RowConv,
    resize: RowConv,
}

enum First {
    Bhi(Branches),
    Autosome(Conv),
}

struct Lstm {
    /// Input projections per direction: `[in, 4H]` with the bias `b_ih + b_hh`.
    w_ih: [Panels; 2],
    /// Recurrent weights per direction: `W_hhᵀ`, `[H, 4H]`.
    w_hh: [Panels; 2],
    hidden: usize,
}

/// A `same` convolution over a group's channels-last rows: one product per sequence whose rows
/// are the receptive fields, overlapping runs of `k·cin` values (weights `[k·cin, cout]`,
/// tap-major, with the bias).
struct RowConv {
    w: Panels,
    /// `(k − 1)/2`.
    pad: usize,
}

/// Parallel convolutions over channels-last rows (the BHI core after its BiLSTM), their outputs
/// side by side in each row.
struct RowBranches(Vec<RowConv>);

enum Core {
    Autosome(Vec<Stage>),
    Bhi(Box<Lstm>, RowBranches),
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

/// Per-thread buffers, kept between groups and calls (a fresh allocation of this size costs
/// page faults every time).
#[derive(Default)]
struct Scratch {
    /// The rows a block reads and writes in place.
    x: Vec<f32>,
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
                    let conv = |c: &str, bn: &str| RowConv::new(&w.conv_bn(c, bn, 1)?);
                    stages.push(Stage {
                        expand: conv(&format!("{inv}.0"), &format!("{inv}.1"))?,
                        grouped: RowGrouped::new(w.conv_bn(
                            &format!("{inv}.3"),
                            &format!("{inv}.4"),
                            e / 2,
                        )?)?,
                        se_down: w.linear(&format!("{inv}.6.fc.0"))?,
                        se_up: w.linear(&format!("{inv}.6.fc.2"))?,
                        project: conv(&format!("{inv}.7"), &format!("{inv}.8"))?,
                        resize: conv(&format!("{res}.0"), &format!("{res}.1"))?,
                    });
                }
                Core::Autosome(stages)
            }
            CoreConfig::Bhi(c) => {
                let (h, inp) = (c.hidden, w.shape("core.lstm.weight_ih_l0")?[1]);
                let dir = |s: &str| -> Option<(Panels, Panels)> {
                    let bi = w.get(&format!("core.lstm.bias_ih_l0{s}"))?;
                    let bh = w.get(&format!("core.lstm.bias_hh_l0{s}"))?;
                    let wi = w.get(&format!("core.lstm.weight_ih_l0{s}"))?;
                    let wh = w.get(&format!("core.lstm.weight_hh_l0{s}"))?;
                    if wi.len() != 4 * h * inp || wh.len() != 4 * h * h || bi.len() != 4 * h {
                        return None;
                    }
                    let bias: Vec<f32> = bi.iter().zip(bh).map(|(a, b)| a + b).collect();
                    // PyTorch's [4H, in] and [4H, H]: W[kk, gate] = weight[gate, kk].
                    Some((
                        Panels::new(inp, 4 * h, |kk, g| wi[g * inp + kk], Some(&bias)),
                        Panels::new(h, 4 * h, |kk, g| wh[g * h + kk], None),
                    ))
                };
                let (fi, fh) = dir("")?;
                let (ri, rh) = dir("_reverse")?;
                let branches = Branches::new(&w, "core", c.kernels.len())?;
                Core::Bhi(
                    Box::new(Lstm {
                        w_ih: [fi, ri],
                        w_hh: [fh, rh],
                        hidden: h,
                    }),
                    RowBranches::new(&branches)?,
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
        let mut widen = |p: usize| pad = pad.max(p);
        let mut see = |c: &Conv| widen(c.k / 2);
        match &first {
            First::Bhi(b) => b.0.iter().for_each(&mut see),
            First::Autosome(c) => see(c),
        }
        match &core {
            Core::Autosome(stages) => stages.iter().for_each(|st| {
                for c in [&st.expand, &st.project, &st.resize] {
                    widen(c.pad);
                }
                widen(st.grouped.pad());
            }),
            Core::Bhi(_, b) => b.0.iter().for_each(|c| widen(c.pad)),
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
    /// zero positions on both sides (`Layout`), so a `same` convolution never mixes sequences
    /// and the first block's products are wide.
    pub fn predict(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let row = self.channels * self.length;
        assert_eq!(x.len(), rows * row, "input of the wrong size");
        let group = rows
            .div_ceil(rayon::current_num_threads())
            .clamp(1, MAX_GROUP);
        match &self.core {
            Core::Autosome(stages) => x
                .par_chunks(group * row)
                .map(|xs| {
                    SCRATCH.with_borrow_mut(|s| {
                        let lay = self.layout(xs.len() / row);
                        let c1 = self.first_out();
                        self.first_into(xs, &lay, &mut s.a);
                        s.x.resize(s.a.len(), 0.0);
                        kernels::transpose_into(&s.a, c1, lay.width(), &mut s.x);
                        autosome(stages, &lay, s);
                        self.decode(&s.x, &lay)
                    })
                })
                .flatten_iter()
                .collect(),
            Core::Bhi(lstm, branches) => {
                // The first block per group, gathered time-major: row t·rows + r is sequence r
                // at position t, so each step's rows (of all sequences) are contiguous.
                let (len, c1) = (self.length, self.first_out());
                let seqs: Vec<f32> = x
                    .par_chunks(group * row)
                    .flat_map_iter(|xs| self.first_rows(xs))
                    .collect();
                let mut xt = vec![0.0; len * rows * c1];
                for (i, v) in seqs.chunks_exact(c1).enumerate() {
                    let (r, t) = (i / len, i % len);
                    xt[(t * rows + r) * c1..(t * rows + r + 1) * c1].copy_from_slice(v);
                }
                let h = lstm.apply(&xt, rows, len);
                (0..rows)
                    .into_par_iter()
                    .step_by(group)
                    .flat_map_iter(|r0| {
                        let lay = self.layout(group.min(rows - r0));
                        let x = lstm.rows(&h, rows, r0, &lay);
                        self.decode(&branches.apply(&x, &lay), &lay)
                    })
                    .collect()
            }
            Core::Unlock(conformer) => x
                .par_chunks(group * row)
                .map(|xs| {
                    let seqs = xs.len() / row;
                    let h = conformer.apply(self.first_rows(xs), seqs, self.length);
                    let lay = Layout {
                        seqs,
                        len: self.length,
                        pad: 0,
                    };
                    self.decode(&h, &lay)
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

    /// The first block on a group of encoded inputs, channel-major `[C1, width]`, into `out`
    /// (resized to fit).
    fn first_into(&self, xs: &[f32], lay: &Layout, out: &mut Vec<f32>) {
        let row = self.channels * self.length;
        let x = lay.pack(xs.chunks(row), self.channels);
        match &self.first {
            First::Bhi(b) => b.apply(&x, lay.width(), out),
            First::Autosome(c) => {
                out.resize(c.cout * lay.width(), 0.0);
                c.apply(&x, lay.width(), out);
                kernels::silu(out);
            }
        }
        lay.zero_pads(out);
    }

    /// The first block on a group of encoded inputs as channels-last rows, each sequence's
    /// `L` rows one after another (no pads), transposed one sequence at a time. The first
    /// block's output goes to the thread's scratch: a fresh buffer of that size per group cost
    /// page faults (measured 3% of DREAM-Attn's time).
    fn first_rows(&self, xs: &[f32]) -> Vec<f32> {
        let lay = self.layout(xs.len() / (self.channels * self.length));
        let (c1, len) = (self.first_out(), lay.len);
        let mut rows = vec![0.0; lay.seqs * len * c1];
        SCRATCH.with_borrow_mut(|s| {
            self.first_into(xs, &lay, &mut s.a);
            for (q, dst) in rows.chunks_exact_mut(len * c1).enumerate() {
                s.b.clear();
                for c in 0..c1 {
                    let at = c * lay.width() + q * lay.stride() + lay.pad;
                    s.b.extend_from_slice(&s.a[at..at + len]);
                }
                kernels::transpose_into(&s.b, c1, len, dst);
            }
        });
        rows
    }

    /// The head on a group's channels-last rows: one prediction row per sequence.
    fn decode(&self, x: &[f32], lay: &Layout) -> Vec<f32> {
        let c = match &self.head {
            Final::SoftClass(lin) => lin.inp,
            Final::Regression(heads) => heads[0].0.inp,
        };
        (0..lay.seqs)
            .flat_map(|q| self.head(lay.row_means(x, c, q)))
            .collect()
    }

    /// The head on one sequence's per-channel means over positions.
    fn head(&self, means: Vec<f32>) -> Vec<f32> {
        match &self.head {
            Final::SoftClass(lin) => {
                // mean over positions commutes with the 1×1 convolution
                let logits = lin.apply(&means);
                let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = logits.iter().map(|v| (v - max).exp()).collect();
                let z: f32 = e.iter().sum();
                vec![e.iter().enumerate().map(|(i, v)| i as f32 * v).sum::<f32>() / z]
            }
            Final::Regression(heads) => heads
                .iter()
                .map(|(conv, lin)| lin.apply(&conv.apply(&means))[0])
                .collect(),
        }
    }
}

/// Sequences per group (measured on DREAM-CNN/RNN inference, 2 threads: 1 → 263, 2 → 282,
/// 4 → 275, 8 → 265 seq/s for DREAM-CNN; wider groups fall out of cache).
const MAX_GROUP: usize = 4;

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

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

    /// Zero the pad rows of channels-last rows `[width, channels]`.
    fn zero_pad_rows(&self, x: &mut [f32], channels: usize) {
        let (st, c) = (self.stride(), channels);
        for q in 0..self.seqs {
            x[q * st * c..(q * st + self.pad) * c].fill(0.0);
            x[(q * st + self.pad + self.len) * c..(q + 1) * st * c].fill(0.0);
        }
    }

    /// Per-channel means over sequence `q`'s rows of channels-last rows `[width, channels]`.
    fn row_means(&self, x: &[f32], channels: usize, q: usize) -> Vec<f32> {
        let at = (q * self.stride() + self.pad) * channels;
        let mut m = vec![0.0; channels];
        for row in x[at..at + self.len * channels].chunks_exact(channels) {
            kernels::axpy(&mut m, row, 1.0);
        }
        m.iter_mut().for_each(|v| *v /= self.len as f32);
        m
    }
}

/// The Autosome core on a group's rows in `s.x` (pad rows zero), in place.
fn autosome(stages: &[Stage], lay: &Layout, s: &mut Scratch) {
    let (w, len) = (lay.width(), lay.len);
    for st in stages {
        let x = &mut s.x;
        let (p, e) = (st.project.w.n(), st.expand.w.n());
        ensure(&mut s.a, w * e);
        st.expand.apply(x, lay, &mut s.a, e);
        lay.zero_pad_rows(&mut s.a[..w * e], e);
        kernels::silu(&mut s.a[..w * e]);
        ensure(&mut s.b, w * e);
        lay.zero_pad_rows(&mut s.b[..w * e], e);
        for q in 0..lay.seqs {
            let at = (q * lay.stride() + lay.pad) * e;
            let h = &mut s.b[at..at + len * e];
            st.grouped.apply(&s.a[at..at + len * e], len, h, &mut s.d);
            kernels::silu(h);
            // squeeze-excitation
            let mut z = st.se_down.apply(&lay.row_means(&s.b, e, q));
            kernels::silu(&mut z);
            let mut g = st.se_up.apply(&z);
            kernels::sigmoid(&mut g);
            kernels::scale_rows(&mut s.b[at..at + len * e], &g);
        }
        // [x, project(h)] side by side in each row
        ensure(&mut s.c, w * 2 * p);
        let c = &mut s.c[..w * 2 * p];
        lay.zero_pad_rows(c, 2 * p);
        for (row, xr) in c.chunks_exact_mut(2 * p).zip(x.chunks_exact(p)) {
            row[..p].copy_from_slice(xr);
        }
        st.project.apply(&s.b, lay, &mut c[p..], 2 * p);
        for row in c.chunks_exact_mut(2 * p) {
            kernels::silu(&mut row[p..]);
        }
        let out_c = st.resize.w.n();
        x.clear();
        x.resize(w * out_c, 0.0);
        st.resize.apply(c, lay, x, out_c);
        kernels::silu(x);
    }
}

/// Unlock_DNA's conformer layers, on rows `[L, d]` per sequence.
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
    depthwise: RowGrouped,
    pointwise: RowLinear,
    norm2: LayerNorm,
    in_proj: RowLinear,
    out_proj: RowLinear,
    ff2: FeedForward,
}

/// A linear layer on rows, `out (rows × n) = x (rows × k) · Wᵀ + b`, from PyTorch's `[n, k]`
/// weights, packed once ([`Panels`]).
struct RowLinear(Panels);

impl RowLinear {
    /// From PyTorch's `[n, k]` weights.
    fn new(w: &[f32], b: Option<&[f32]>, n: usize, k: usize) -> Self {
        Self(Panels::new(k, n, |kk, o| w[o * k + kk], b))
    }

    /// Output width.
    fn n(&self) -> usize {
        self.0.n()
    }

    /// `out [rows, n] = x [rows, k] · Wᵀ (+ b)`.
    fn apply(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        let (k, n) = (self.0.k(), self.0.n());
        self.0.apply((x, k), rows, (out, n), false);
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
        let ff = self.w1.n();
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

/// A grouped `same` convolution with as many input as output channels per group (`m`; one for
/// a depthwise convolution) on one sequence's rows `[len, d]`. Channel `c` sums its group's
/// channels in rotated order: `out[j, c] = b[c] + Σ_r Σ_t w_r[t, c] · x[j + t − pad, rot_r(c)]`
/// with `rot_r(c)` the channel `r` places after `c` within its group, so every term is an
/// element-wise product of whole rows.
struct RowGrouped {
    /// Per rotation `r`, the weights per tap, `[m][k][d]`.
    taps: Vec<f32>,
    b: Vec<f32>,
    m: usize,
    k: usize,
}

impl RowGrouped {
    /// From a grouped convolution with as many inputs as outputs per group, or `None`.
    fn new(conv: Conv) -> Option<Self> {
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

    fn pad(&self) -> usize {
        (self.k - 1) / 2
    }

    /// `rotated` holds the input's rotated copies (rotation 0 is the input itself).
    fn apply(&self, x: &[f32], len: usize, out: &mut [f32], rotated: &mut Vec<f32>) {
        let (d, m, k) = (self.b.len(), self.m, self.k);
        ensure(rotated, (m - 1) * len * d);
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
                    depthwise: RowGrouped::new(w.conv(&format!("{p}.conv.0"), c.d)?)?,
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

    /// `seqs` sequences of rows `[L, d]`, one after another → the same layout. Row-wise layers
    /// (LayerNorm, feed-forward, attention projections) run on all `seqs · L` rows at once, so
    /// each product is wide.
    fn apply(&self, mut t: Vec<f32>, seqs: usize, len: usize) -> Vec<f32> {
        let d = self.d;
        let block = len * d;
        assert_eq!(t.len(), seqs * block, "rows of the wrong size");
        // plus the position embedding
        for ts in t.chunks_mut(block) {
            ts.iter_mut().zip(&self.pos).for_each(|(v, p)| *v += p);
        }
        let rows = seqs * len;
        let mut h = vec![0.0; rows * d];
        let mut conv = vec![0.0; rows * d];
        let mut pw = vec![0.0; rows * d];
        let mut rotated = Vec::new();
        for layer in &self.layers {
            layer.ff1.add_half(&mut t, rows, d);
            // convolution module on LN1(x), added to LN1(x); then x = LN2(x + that)
            layer.norm1.apply(&t, &mut h);
            for (hs, cs) in h.chunks(block).zip(conv.chunks_mut(block)) {
                layer.depthwise.apply(hs, len, cs, &mut rotated);
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
        t
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
    /// Inputs time-major `[L][rows][in]` → hidden states `[L][rows][H]` per direction, both
    /// directions side by side, each on one thread. PyTorch's gate order `i, f, g, o`.
    fn apply(&self, xt: &[f32], rows: usize, len: usize) -> [Vec<f32>; 2] {
        let (f, b) = rayon::join(
            || self.direction(xt, rows, len, 0),
            || self.direction(xt, rows, len, 1),
        );
        [f, b]
    }

    /// One direction over all sequences on the calling thread. The input projections are made
    /// a few steps at a time (about 192 rows per product), so they are still in the cache when
    /// the steps use them.
    fn direction(&self, xt: &[f32], rows: usize, len: usize, dir: usize) -> Vec<f32> {
        let (h, g4, c) = (self.hidden, 4 * self.hidden, self.w_ih[dir].k());
        let span = (192 / rows).clamp(1, len);
        let mut gates = vec![0.0f32; span * rows * g4];
        let mut out = vec![0.0f32; len * rows * h];
        let mut hs = vec![0.0f32; rows * h];
        let mut cs = vec![0.0f32; rows * h];
        let mut tc = vec![0.0f32; h];
        for s0 in (0..len).step_by(span) {
            let n = span.min(len - s0);
            // Steps s0..s0 + n are positions lo..lo + n (visited backwards when dir is 1).
            let lo = if dir == 0 { s0 } else { len - s0 - n };
            self.w_ih[dir].apply((&xt[lo * rows * c..], c), n * rows, (&mut gates, g4), false);
            for step in s0..s0 + n {
                let t = if dir == 0 { step } else { len - 1 - step };
                let g = &mut gates[(t - lo) * rows * g4..(t - lo + 1) * rows * g4];
                // gates += h · W_hhᵀ (h is zero at the first step)
                if step > 0 {
                    self.w_hh[dir].apply((&hs, h), rows, (g, g4), true);
                }
                for (r, g) in g.chunks_exact_mut(g4).enumerate() {
                    let h_row = &mut hs[r * h..(r + 1) * h];
                    kernels::lstm_cell(
                        kernels::lstm_gates(g, h),
                        &mut cs[r * h..(r + 1) * h],
                        h_row,
                        &mut tc,
                    );
                    out[(t * rows + r) * h..(t * rows + r + 1) * h].copy_from_slice(h_row);
                }
            }
        }
        out
    }

    /// Sequences `r0..` of the hidden states (`[L][rows][H]` per direction) as a group's
    /// channels-last rows `[width, 2H]` (forward then backward direction in each row), the pad
    /// rows zero.
    fn rows(&self, hs: &[Vec<f32>; 2], rows: usize, r0: usize, lay: &Layout) -> Vec<f32> {
        let h = self.hidden;
        let mut x = vec![0.0; lay.width() * 2 * h];
        for q in 0..lay.seqs {
            for t in 0..lay.len {
                let (src, dst) = (t * rows + r0 + q, q * lay.stride() + lay.pad + t);
                for (d, states) in hs.iter().enumerate() {
                    x[(dst * 2 + d) * h..(dst * 2 + d + 1) * h]
                        .copy_from_slice(&states[src * h..(src + 1) * h]);
                }
            }
        }
        x
    }
}

impl RowConv {
    /// From an ungrouped convolution, or `None`.
    fn new(c: &Conv) -> Option<Self> {
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
    fn apply(&self, x: &[f32], lay: &Layout, out: &mut [f32], out_rs: usize) {
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

impl RowBranches {
    fn new(b: &Branches) -> Option<Self> {
        b.0.iter()
            .map(RowConv::new)
            .collect::<Option<_>>()
            .map(Self)
    }

    /// Rows `[width, cin]` of a group (pad rows zero) → the branches' ReLU outputs
    /// `[width, Σ cout]`, pad rows zero.
    fn apply(&self, x: &[f32], lay: &Layout) -> Vec<f32> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
