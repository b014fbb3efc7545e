//! Twin of [`crate::blocks::core_layers::autosome`]: EfficientNet-like stages on a group's
//! channels-last rows, BatchNorm folded into every convolution.

use crate::blocks::core_layers::autosome::AutosomeCore;
use crate::engine::rows::{self, Linear, RowConv, RowGrouped};
use crate::engine::{CoreTwin, Engine, Layout, ensure};
use crate::kernels;

/// One stage: expand (1×1) → grouped k-wide → squeeze-excitation → project (1×1), then the
/// resize convolution over `[x, project(h)]`.
struct Stage {
    expand: RowConv,
    grouped: RowGrouped,
    se_down: Linear,
    se_up: Linear,
    project: RowConv,
    resize: RowConv,
}

/// The Autosome core.
pub(crate) struct Stages(Vec<Stage>);

impl Stages {
    /// `None` if a convolution cannot run on rows (an even kernel).
    pub(crate) fn new(core: &AutosomeCore) -> Option<Self> {
        let stages = core
            .stages
            .iter()
            .map(|s| {
                Some(Stage {
                    expand: RowConv::new(&rows::conv_bn(&s.expand, &s.expand_bn))?,
                    grouped: RowGrouped::new(rows::conv_bn(&s.grouped, &s.grouped_bn))?,
                    se_down: Linear::new(&s.se_down),
                    se_up: Linear::new(&s.se_up),
                    project: RowConv::new(&rows::conv_bn(&s.project, &s.project_bn))?,
                    resize: RowConv::new(&rows::conv_bn(&s.resize, &s.resize_bn))?,
                })
            })
            .collect::<Option<_>>()?;
        Some(Self(stages))
    }
}

/// Per-thread buffers, kept between groups and calls.
#[derive(Default)]
struct Scratch {
    /// The rows each stage reads and writes in place, `[width, channels]`.
    rows: Vec<f32>,
    /// After the expanding convolution.
    expanded: Vec<f32>,
    /// After the grouped convolution and the squeeze-excitation.
    grouped: Vec<f32>,
    /// `[x, project(h)]` side by side in each row.
    joined: Vec<f32>,
    /// Rotated copies of the input of the grouped convolution.
    rotated: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

impl CoreTwin for Stages {
    fn pad(&self) -> usize {
        self.0
            .iter()
            .flat_map(|st| {
                [
                    st.expand.pad,
                    st.project.pad,
                    st.resize.pad,
                    st.grouped.pad(),
                ]
            })
            .max()
            .unwrap_or(0)
    }

    fn predict(&self, net: &Engine, x: &[f32], rows: usize) -> Vec<f32> {
        net.per_group(x, rows, |xs| {
            SCRATCH.with_borrow_mut(|s| {
                let lay = net.layout(xs.len() / net.row());
                net.first_group_rows(xs, &lay, &mut s.rows);
                self.apply(&lay, s);
                net.decode(&s.rows, &lay)
            })
        })
    }
}

impl Stages {
    /// The stages on a group's rows in `s.rows` (pad rows zero), in place.
    fn apply(&self, lay: &Layout, s: &mut Scratch) {
        let (w, len) = (lay.width(), lay.len);
        for st in &self.0 {
            let x = &mut s.rows;
            let (p, e) = (st.project.w.n(), st.expand.w.n());
            ensure(&mut s.expanded, w * e);
            st.expand.apply(x, lay, &mut s.expanded, e);
            lay.zero_pad_rows(&mut s.expanded[..w * e], e);
            kernels::silu(&mut s.expanded[..w * e]);
            ensure(&mut s.grouped, w * e);
            lay.zero_pad_rows(&mut s.grouped[..w * e], e);
            for q in 0..lay.seqs {
                let at = (q * lay.stride() + lay.pad) * e;
                let h = &mut s.grouped[at..at + len * e];
                st.grouped
                    .apply(&s.expanded[at..at + len * e], len, h, &mut s.rotated);
                kernels::silu(h);
                // squeeze-excitation
                let mut z = st.se_down.apply(&lay.row_means(&s.grouped, e, q));
                kernels::silu(&mut z);
                let mut g = st.se_up.apply(&z);
                kernels::sigmoid(&mut g);
                kernels::scale_rows(&mut s.grouped[at..at + len * e], &g);
            }
            // [x, project(h)] side by side in each row
            ensure(&mut s.joined, w * 2 * p);
            let c = &mut s.joined[..w * 2 * p];
            lay.zero_pad_rows(c, 2 * p);
            for (row, xr) in c.chunks_exact_mut(2 * p).zip(x.chunks_exact(p)) {
                row[..p].copy_from_slice(xr);
            }
            st.project.apply(&s.grouped, lay, &mut c[p..], 2 * p);
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
}
