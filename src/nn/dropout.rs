//! Dropout: burn's module, run by our own training kernel (`ops`) when training on the CPU.

use burn::nn::Dropout;
use burn::tensor::Tensor;

/// `dropout.forward(x)`, as one graph node with our own mask generator on the CPU training
/// backend. Inactive (identity) outside training (see [`crate::nn::training`]).
pub fn dropout<const D: usize>(dropout: &Dropout, x: Tensor<D>) -> Tensor<D> {
    if !crate::nn::training(&x.device()) {
        return x;
    }
    if dropout.training.is_enabled()
        && dropout.prob > 0.0
        && let Some(y) = crate::ops::dropout(&x, dropout.prob)
    {
        return y;
    }
    dropout.forward(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::DropoutConfig;
    use burn::tensor::Device;

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec().unwrap()
    }

    #[test]
    fn fused_dropout_keeps_scales_and_backpropagates_through_its_mask() {
        let device = Device::flex().autodiff();
        let d = DropoutConfig::new(0.3).init();
        let x: Tensor<2> = Tensor::ones([64, 500], &device).require_grad();
        let y = crate::ops::dropout(&x, 0.3).expect("fused kernel on Autodiff<Flex>");
        let grads = (y.clone() * 2.0).sum().backward();
        let (yv, gv) = (vals(y), vals(x.grad(&grads).unwrap()));
        let kept = yv.iter().filter(|&&v| v != 0.0).count() as f64 / yv.len() as f64;
        assert!((kept - 0.7).abs() < 0.01, "kept fraction {kept}");
        for (a, g) in yv.iter().zip(&gv) {
            assert!(*a == 0.0 || (a - 1.0 / 0.7).abs() < 1e-6, "value {a}");
            assert!((g - 2.0 * a).abs() < 1e-6, "gradient {g} for output {a}");
        }
        // Each call draws a new mask (its seed comes from burn's random stream).
        assert_ne!(vals(dropout(&d, x.clone())), vals(dropout(&d, x.clone())));
        // Outside training: the identity.
        let plain: Tensor<2> = Tensor::ones([4, 5], &Device::flex());
        assert_eq!(vals(dropout(&d, plain)), vec![1.0; 20]);
    }
}
