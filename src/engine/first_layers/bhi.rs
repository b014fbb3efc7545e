//! Twin of [`crate::blocks::first_layers::bhi`]: parallel convolutions + ReLU, concatenated.

use crate::blocks::first_layers::bhi::BhiFirst;
use crate::engine::{FirstTwin, rows};
use crate::kernels::{self, Conv};

/// The BHI pair of convolutions, channel-major.
pub(crate) struct Branches(pub(crate) Vec<Conv>);

impl Branches {
    pub(crate) fn new(b: &BhiFirst) -> Self {
        Self(b.branches.convs.iter().map(rows::conv).collect())
    }
}

impl FirstTwin for Branches {
    fn out_channels(&self) -> usize {
        self.0.iter().map(|c| c.cout).sum()
    }

    fn pad(&self) -> usize {
        self.0.iter().map(|c| c.k / 2).max().unwrap_or(0)
    }

    fn apply(&self, x: &[f32], width: usize, out: &mut Vec<f32>) {
        out.resize(self.out_channels() * width, 0.0);
        let mut at = 0;
        for c in &self.0 {
            c.apply(x, width, &mut out[at..at + c.cout * width]);
            at += c.cout * width;
        }
        kernels::relu(out);
    }
}
