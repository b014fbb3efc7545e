//! The CPU inference engine: one twin per block, each built from its typed burn module, in a
//! file that mirrors the block's (`first_layers/`, `core_layers/`, `final_layers/`). Used by
//! prediction, validation, ISM and design when the model runs on the CPU.
//!
//! A twin computes exactly what its block computes in inference mode, without an autodiff
//! graph or per-op tensor allocations: BatchNorm is folded into the preceding convolution,
//! activations use a vectorisable `exp`, the heads average before their 1×1 convolution (they
//! commute), and groups of sequences run in parallel, each on one thread with buffers kept
//! between groups.
//!
//! First blocks work channel-major on a group of sequences laid side by side (`Layout`).
//! Cores after them work on channels-last rows (one row of channels per position): a `same`
//! convolution there is one product per sequence whose rows are the receptive fields
//! (`rows::RowConv`), grouped convolutions are element-wise products of whole rows
//! (`rows::RowGrouped`), and products whose weights are known when the engine is built use
//! weights packed once (`crate::kernels::panels::Panels`).
//!
//! A block without a twin is not an error: `Engine::new` returns `None` and the burn network
//! runs (the registry below says which blocks have one). `PRIXFIXE_ENGINE=burn` forces the
//! burn path (for comparisons).
//!
//! To give a block a twin: write `engine/<slot>/<block>.rs` with a type built from the block's
//! module that implements `FirstTwin`, `CoreTwin` or `FinalTwin`, and add its arm to the
//! slot's registry function here.

mod core_layers;
mod final_layers;
mod first_layers;
pub(crate) mod rows;

use rayon::prelude::*;

use crate::blocks::{CoreBlock, FinalBlock, FirstBlock};
use crate::kernels;
use crate::net::{NetConfig, PrixFixeNet};

/// A first block's twin: encoded inputs of a group, channel-major `[cin, width]` (pad columns
/// zero) → `[c1, width]`.
pub(crate) trait FirstTwin: Send + Sync {
    /// Output channels.
    fn out_channels(&self) -> usize;
    /// The largest `same` padding of its convolutions.
    fn pad(&self) -> usize;
    /// `x [cin, width]` → `out [c1, width]` (resized to fit; pad columns need not be zero).
    fn apply(&self, x: &[f32], width: usize, out: &mut Vec<f32>);
}

/// A core block's twin. A core decides how sequences are grouped and laid out (the BiLSTM runs
/// batch-wide, convolutions per group), so it runs the whole prediction, calling back into the
/// engine for the first block ([`Engine::first_into`], [`Engine::first_rows`]) and the final block
/// ([`Engine::decode`]).
pub(crate) trait CoreTwin: Send + Sync {
    /// The largest `same` padding of its convolutions on a group's rows (0 if it pads per
    /// sequence itself).
    fn pad(&self) -> usize;
    /// Predictions `rows × tasks` for `rows` encoded inputs.
    fn predict(&self, net: &Engine, x: &[f32], rows: usize) -> Vec<f32>;
}

/// A final block's twin, on one sequence's channels-last rows `[len, channels]` (heads that
/// pool by the mean take [`column_means`] first: the mean commutes with their 1×1
/// convolutions).
pub(crate) trait FinalTwin: Send + Sync {
    /// Input channels.
    fn in_channels(&self) -> usize;
    /// Decoded predictions (`tasks` values) from one sequence's rows.
    fn predict(&self, rows: &[f32], len: usize) -> Vec<f32>;
}

/// Per-channel means of rows `[len, channels]`.
pub(crate) fn column_means(rows: &[f32], channels: usize) -> Vec<f32> {
    let mut m = vec![0.0; channels];
    let len = rows.len() / channels;
    for row in rows.chunks_exact(channels) {
        kernels::axpy(&mut m, row, 1.0);
    }
    m.iter_mut().for_each(|v| *v /= len as f32);
    m
}

/// The first-block registry: the block's twin, or `None` (the burn network runs).
fn first_twin(block: &FirstBlock) -> Option<Box<dyn FirstTwin>> {
    #[allow(unreachable_patterns)] // a block added without a twin falls through
    match block {
        FirstBlock::Bhi(b) => Some(Box::new(first_layers::bhi::Branches::new(b))),
        FirstBlock::Autosome(b) => Some(Box::new(first_layers::autosome::ConvBnSilu::new(b))),
        _ => None,
    }
}

/// The core-block registry.
fn core_twin(block: &CoreBlock) -> Option<Box<dyn CoreTwin>> {
    #[allow(unreachable_patterns)] // a block added without a twin falls through
    match block {
        CoreBlock::Autosome(b) => Some(Box::new(core_layers::autosome::Stages::new(b)?)),
        CoreBlock::Bhi(b) => Some(Box::new(core_layers::bhi::LstmConvs::new(b)?)),
        CoreBlock::UnlockDna(b) => Some(Box::new(core_layers::unlock_dna::Conformer::new(b)?)),
        _ => None,
    }
}

/// The final-block registry; the block sees `cin` channels of `length` positions.
fn final_twin(block: &FinalBlock, cin: usize, length: usize) -> Option<Box<dyn FinalTwin>> {
    #[allow(unreachable_patterns)] // a block added without a twin falls through
    match block {
        FinalBlock::SoftClass(b) => Some(Box::new(final_layers::soft_class::Expectation::new(b))),
        FinalBlock::Regression(b) => Some(Box::new(final_layers::regression::TaskHeads::new(b))),
        FinalBlock::Bhi(b) => Some(Box::new(final_layers::bhi::Perceptron::new(b, cin, length))),
        _ => None,
    }
}

/// The engine for one model.
pub struct Engine {
    first: Box<dyn FirstTwin>,
    core: Box<dyn CoreTwin>,
    final_block: Box<dyn FinalTwin>,
    channels: usize,
    length: usize,
    /// Zero columns around each sequence: the largest `same` padding of any convolution.
    pad: usize,
}

pub(crate) fn ensure(v: &mut Vec<f32>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}

/// Sequences per group (measured on DREAM-CNN/RNN inference, 2 threads: 1 → 263, 2 → 282,
/// 4 → 275, 8 → 265 seq/s for DREAM-CNN; wider groups fall out of cache).
const MAX_GROUP: usize = 4;

/// The first block's output and one sequence's copy, per thread, kept between groups and calls
/// (a fresh allocation of this size costs page faults every time: measured 3% of DREAM-Attn's
/// time).
#[derive(Default)]
struct FirstScratch {
    out: Vec<f32>,
    seq: Vec<f32>,
}

thread_local! {
    static FIRST: std::cell::RefCell<FirstScratch> = std::cell::RefCell::default();
}

impl Engine {
    /// Build the engine from a network's blocks; `None` when a block has no twin, or when our
    /// kernels are switched off (`PRIXFIXE_ENGINE=burn`).
    pub fn new(config: &NetConfig, net: &PrixFixeNet) -> Option<Self> {
        if !kernels::enabled() {
            return None;
        }
        let shapes = config.check().ok()?;
        if !shapes.keeps_length() {
            return None;
        }
        let first = first_twin(net.first())?;
        let core = core_twin(net.core())?;
        let final_block = final_twin(net.final_block(), shapes.core_channels, shapes.length)?;
        let pad = first.pad().max(core.pad());
        Some(Self {
            first,
            core,
            final_block,
            channels: shapes.input_channels,
            length: shapes.length,
            pad,
        })
    }

    /// Predictions `rows × tasks` (decoded: expectation over bins, or regression values) for
    /// `rows` inputs `channels × length`, as [`crate::PrixFixeNet::predict`] gives them.
    pub fn predict(&self, x: &[f32], rows: usize) -> Vec<f32> {
        assert_eq!(x.len(), rows * self.row(), "input of the wrong size");
        self.core.predict(self, x, rows)
    }

    /// Values per encoded input.
    pub(crate) fn row(&self) -> usize {
        self.channels * self.length
    }

    /// Positions per sequence.
    pub(crate) fn length(&self) -> usize {
        self.length
    }

    /// Sequences per group for `rows` inputs: all threads busy, at most [`MAX_GROUP`].
    pub(crate) fn group(&self, rows: usize) -> usize {
        rows.div_ceil(rayon::current_num_threads())
            .clamp(1, MAX_GROUP)
    }

    /// Output channels of the first block.
    pub(crate) fn first_out(&self) -> usize {
        self.first.out_channels()
    }

    /// A group of `seqs` sequences side by side with the engine's padding.
    pub(crate) fn layout(&self, seqs: usize) -> Layout {
        Layout {
            seqs,
            len: self.length,
            pad: self.pad,
        }
    }

    /// The first block on a group of encoded inputs, channel-major `[C1, width]`, into `out`
    /// (resized to fit), pad columns zero.
    pub(crate) fn first_into(&self, xs: &[f32], lay: &Layout, out: &mut Vec<f32>) {
        let x = lay.pack(xs.chunks(self.row()), self.channels);
        self.first.apply(&x, lay.width(), out);
        lay.zero_pads(out);
    }

    /// The first block on a group of encoded inputs as channels-last rows, each sequence's
    /// `L` rows one after another (no pads), transposed one sequence at a time.
    pub(crate) fn first_rows(&self, xs: &[f32]) -> Vec<f32> {
        let lay = self.layout(xs.len() / self.row());
        let (c1, len) = (self.first_out(), lay.len);
        let mut rows = vec![0.0; lay.seqs * len * c1];
        FIRST.with_borrow_mut(|s| {
            self.first_into(xs, &lay, &mut s.out);
            for (q, dst) in rows.chunks_exact_mut(len * c1).enumerate() {
                s.seq.clear();
                for c in 0..c1 {
                    let at = c * lay.width() + q * lay.stride() + lay.pad;
                    s.seq.extend_from_slice(&s.out[at..at + len]);
                }
                kernels::transpose_into(&s.seq, c1, len, dst);
            }
        });
        rows
    }

    /// The first block on a group, transposed to channels-last rows `[width, C1]` (pad rows
    /// zero) into `rows`.
    pub(crate) fn first_group_rows(&self, xs: &[f32], lay: &Layout, rows: &mut Vec<f32>) {
        FIRST.with_borrow_mut(|s| {
            self.first_into(xs, lay, &mut s.out);
            rows.resize(s.out.len(), 0.0);
            kernels::transpose_into(&s.out, self.first_out(), lay.width(), rows);
        });
    }

    /// The final block on a group's channels-last rows: one prediction row per sequence.
    pub(crate) fn decode(&self, x: &[f32], lay: &Layout) -> Vec<f32> {
        let c = self.final_block.in_channels();
        (0..lay.seqs)
            .flat_map(|q| {
                let at = (q * lay.stride() + lay.pad) * c;
                self.final_block.predict(&x[at..at + lay.len * c], lay.len)
            })
            .collect()
    }

    /// `rows` inputs in groups, in parallel: `f` maps a group's inputs to its predictions.
    pub(crate) fn per_group(
        &self,
        x: &[f32],
        rows: usize,
        f: impl Fn(&[f32]) -> Vec<f32> + Sync + Send,
    ) -> Vec<f32> {
        x.par_chunks(self.group(rows) * self.row())
            .map(f)
            .flatten_iter()
            .collect()
    }
}

/// A group of sequences side by side: each takes `pad + len + pad` columns, the pads zero, so
/// a `same` convolution over the whole width (kernel up to `2·pad + 1`) never mixes sequences.
pub(crate) struct Layout {
    pub(crate) seqs: usize,
    pub(crate) len: usize,
    pub(crate) pad: usize,
}

impl Layout {
    pub(crate) fn stride(&self) -> usize {
        self.len + 2 * self.pad
    }

    pub(crate) fn width(&self) -> usize {
        self.seqs * self.stride()
    }

    /// `[channels, len]` per sequence → `[channels, width]`.
    pub(crate) fn pack<'a>(
        &self,
        xs: impl Iterator<Item = &'a [f32]>,
        channels: usize,
    ) -> Vec<f32> {
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
    pub(crate) fn zero_pads(&self, x: &mut [f32]) {
        let (w, st) = (self.width(), self.stride());
        for row in x.chunks_mut(w) {
            for q in 0..self.seqs {
                row[q * st..q * st + self.pad].fill(0.0);
                row[q * st + self.pad + self.len..(q + 1) * st].fill(0.0);
            }
        }
    }

    /// Zero the pad rows of channels-last rows `[width, channels]`.
    pub(crate) fn zero_pad_rows(&self, x: &mut [f32], channels: usize) {
        let (st, c) = (self.stride(), channels);
        for q in 0..self.seqs {
            x[q * st * c..(q * st + self.pad) * c].fill(0.0);
            x[(q * st + self.pad + self.len) * c..(q + 1) * st * c].fill(0.0);
        }
    }

    /// Per-channel means over sequence `q`'s rows of channels-last rows `[width, channels]`.
    pub(crate) fn row_means(&self, x: &[f32], channels: usize, q: usize) -> Vec<f32> {
        let at = (q * self.stride() + self.pad) * channels;
        column_means(&x[at..at + self.len * channels], channels)
    }
}
