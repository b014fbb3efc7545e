//! Twin of [`crate::blocks::final_layers::regression`]: per task, the 1×1 convolution on the
//! position means (the mean commutes with it), then the linear layer.

use crate::blocks::final_layers::regression::Regression;
use crate::engine::{FinalTwin, column_means, rows::Linear};

/// One `(1×1 convolution, linear)` pair per task.
pub(crate) struct TaskHeads(Vec<(Linear, Linear)>);

impl TaskHeads {
    pub(crate) fn new(b: &Regression) -> Self {
        Self(
            b.heads
                .iter()
                .map(|h| (Linear::pointwise(&h.conv), Linear::new(&h.linear)))
                .collect(),
        )
    }
}

impl FinalTwin for TaskHeads {
    fn in_channels(&self) -> usize {
        self.0[0].0.inp
    }

    fn predict(&self, rows: &[f32], _len: usize) -> Vec<f32> {
        let means = column_means(rows, self.in_channels());
        self.0
            .iter()
            .map(|(conv, lin)| lin.apply(&conv.apply(&means))[0])
            .collect()
    }
}
