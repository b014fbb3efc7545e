//! Twin of [`crate::blocks::final_layers::soft_class`]: the 1×1 convolution on the position
//! means (the mean commutes with it), then the expected bin.

use crate::blocks::final_layers::soft_class::SoftClass;
use crate::engine::{FinalTwin, column_means, rows::Linear};
use crate::kernels;

/// Logits from the means, decoded to `Σ i · softmax(logits)_i`.
pub(crate) struct Expectation(Linear);

impl Expectation {
    pub(crate) fn new(b: &SoftClass) -> Self {
        Self(Linear::pointwise(&b.conv))
    }
}

impl FinalTwin for Expectation {
    fn in_channels(&self) -> usize {
        self.0.inp
    }

    fn predict(&self, rows: &[f32], _len: usize) -> Vec<f32> {
        let means = column_means(rows, self.0.inp);
        vec![kernels::soft_class_expectation(&self.0.apply(&means))]
    }
}
