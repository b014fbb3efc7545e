//! Twin of [`crate::blocks::final_layers::bhi`]: the three-layer perceptron on one sequence's
//! features. The block flattens channel-major (`c·L + l`); the engine's rows are
//! channels-last (`l·C + c`), so the first layer's weights are permuted once, when the twin is
//! built.

use crate::blocks::final_layers::bhi::BhiFinal;
use crate::engine::{FinalTwin, rows::Linear};
use crate::kernels;

/// Linear → ReLU → Linear → ReLU → Linear, the first on channels-last features.
pub(crate) struct Perceptron {
    layers: Vec<Linear>,
    channels: usize,
}

impl Perceptron {
    /// For `channels × length` features.
    pub(crate) fn new(b: &BhiFinal, channels: usize, length: usize) -> Self {
        let mut layers: Vec<Linear> = b.layers.iter().map(Linear::new).collect();
        layers[0].permute_inputs(|j| {
            // input j of the channels-last rows is (l, c) = (j / C, j % C): the block's c·L + l
            let (l, c) = (j / channels, j % channels);
            c * length + l
        });
        Self { layers, channels }
    }
}

impl FinalTwin for Perceptron {
    fn in_channels(&self) -> usize {
        self.channels
    }

    fn predict(&self, rows: &[f32], _len: usize) -> Vec<f32> {
        let mut h = self.layers[0].apply(rows);
        for layer in &self.layers[1..] {
            kernels::relu(&mut h);
            h = layer.apply(&h);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};

    use crate::blocks::FinalConfig;
    use crate::engine::Engine;
    use crate::net::{DataKind, NetConfig};

    /// The twin against the burn network on the same random weights and inputs.
    #[test]
    fn the_twin_predicts_what_the_block_predicts() {
        let device = Device::flex();
        let mut config = NetConfig::preset("dream-cnn", DataKind::Human).unwrap();
        config.final_block = FinalConfig::Bhi(Default::default());
        let net = config.init(&device).unwrap();
        let (c, l) = (config.input.channels.count(), config.input.padding.length());
        let x = Tensor::<3>::random([3, c, l], Distribution::Default, &device);
        let want = crate::weights::tensor_values(net.predict(x.clone()));
        let engine = Engine::new(&config, &net).expect("every block has a twin");
        let got = engine.predict(&crate::weights::tensor_values(x), 3);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w).abs() < 1e-3 * w.abs().max(1.0),
                "{got:?} vs {want:?}"
            );
        }
    }
}
