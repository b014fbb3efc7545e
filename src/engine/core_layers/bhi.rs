//! Twin of [`crate::blocks::core_layers::bhi`]: the BiLSTM batch-wide on time-major rows, then
//! the parallel convolutions on each group's channels-last rows.
//!
//! Each direction runs on one thread: its input projections a few steps at a time, then per
//! step one `batch × 4H` product and fused gate arithmetic.

use rayon::prelude::*;

use crate::blocks::core_layers::bhi::BhiCore;
use crate::engine::rows::{self, RowBranches};
use crate::engine::{CoreTwin, Engine, Layout};
use crate::kernels::{self, panels::Panels};
use crate::nn::LstmDirection;
use crate::weights::tensor_values;

struct Lstm {
    /// Input projections per direction: `[in, 4H]` with the bias `b_ih + b_hh`.
    w_ih: [Panels; 2],
    /// Recurrent weights per direction: `W_hhᵀ`, `[H, 4H]`.
    w_hh: [Panels; 2],
    hidden: usize,
}

/// The BHI core.
pub(crate) struct LstmConvs {
    lstm: Lstm,
    branches: RowBranches,
}

/// One direction's packed input and recurrent weights.
fn direction(d: &LstmDirection) -> (Panels, Panels) {
    let [g4, inp] = d.weight_ih.dims();
    let h = g4 / 4;
    let wi = tensor_values(d.weight_ih.val());
    let wh = tensor_values(d.weight_hh.val());
    let bias: Vec<f32> = tensor_values(d.bias_ih.val())
        .iter()
        .zip(tensor_values(d.bias_hh.val()))
        .map(|(a, b)| a + b)
        .collect();
    // PyTorch's [4H, in] and [4H, H]: W[kk, gate] = weight[gate, kk].
    (
        Panels::new(inp, g4, |kk, g| wi[g * inp + kk], Some(&bias)),
        Panels::new(h, g4, |kk, g| wh[g * h + kk], None),
    )
}

impl LstmConvs {
    /// `None` if a convolution cannot run on rows (an even kernel).
    pub(crate) fn new(core: &BhiCore) -> Option<Self> {
        let (fi, fh) = direction(&core.lstm.forward_dir);
        let (ri, rh) = direction(&core.lstm.backward_dir);
        let convs: Vec<_> = core.branches.convs.iter().map(rows::conv).collect();
        Some(Self {
            lstm: Lstm {
                hidden: fh.k(),
                w_ih: [fi, ri],
                w_hh: [fh, rh],
            },
            branches: RowBranches::new(&convs)?,
        })
    }
}

impl CoreTwin for LstmConvs {
    fn pad(&self) -> usize {
        self.branches.0.iter().map(|c| c.pad).max().unwrap_or(0)
    }

    fn predict(&self, net: &Engine, x: &[f32], rows: usize) -> Vec<f32> {
        // The first block per group, gathered time-major: row t·rows + r is sequence r at
        // position t, so each step's rows (of all sequences) are contiguous.
        let (len, c1, group) = (net.length(), net.first_out(), net.group(rows));
        let seqs: Vec<f32> = x
            .par_chunks(group * net.row())
            .flat_map_iter(|xs| net.first_rows(xs))
            .collect();
        let mut xt = vec![0.0; len * rows * c1];
        for (i, v) in seqs.chunks_exact(c1).enumerate() {
            let (r, t) = (i / len, i % len);
            xt[(t * rows + r) * c1..(t * rows + r + 1) * c1].copy_from_slice(v);
        }
        let h = self.lstm.apply(&xt, rows, len);
        (0..rows)
            .into_par_iter()
            .step_by(group)
            .flat_map_iter(|r0| {
                let lay = net.layout(group.min(rows - r0));
                let x = self.lstm.rows(&h, rows, r0, &lay);
                net.decode(&self.branches.apply(&x, &lay), &lay)
            })
            .collect()
    }
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
