//! BatchNorm over `(batch, channels, length)` with PyTorch's semantics: the running variance
//! is updated with the *unbiased* batch variance (burn's own uses the biased one), momentum 0.1.

use burn::module::{Module, Param, RunningState};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};

use super::visit::{NamedWeights, WeightVisitor, join};

/// Batch normalisation over channels.
#[derive(Module, Debug)]
pub struct BatchNorm1d {
    /// Scale (γ).
    pub weight: Param<Tensor<1>>,
    /// Shift (β).
    pub bias: Param<Tensor<1>>,
    /// Running mean.
    pub running_mean: RunningState<Tensor<1>>,
    /// Running (unbiased) variance.
    pub running_var: RunningState<Tensor<1>>,
    momentum: f64,
    eps: f64,
}

impl BatchNorm1d {
    /// PyTorch's defaults: weight 1, bias 0, momentum 0.1, eps 1e-5.
    pub fn new(channels: usize, device: &Device) -> Self {
        BatchNorm1d {
            weight: Initializer::Ones.init([channels], device),
            bias: Initializer::Zeros.init([channels], device),
            running_mean: RunningState::new(Tensor::zeros([channels], device)),
            running_var: RunningState::new(Tensor::ones([channels], device)),
            momentum: 0.1,
            eps: 1e-5,
        }
    }

    /// Batch statistics when training (on an autodiff device), running statistics otherwise.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let device = x.device();
        if !device.is_autodiff() {
            return burn::tensor::module::batch_norm(
                x,
                self.weight.val(),
                self.bias.val(),
                self.running_mean.value_sync().to_device(&device),
                self.running_var.value_sync().to_device(&device),
                self.eps,
            );
        }
        let [b, _, l] = x.dims();
        let n = (b * l) as f64;
        let out =
            burn::tensor::module::batch_norm_train(x, self.weight.val(), self.bias.val(), self.eps);
        let m = self.momentum;
        let unbiased = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
        let mean = self.running_mean.value_sync().to_device(&device);
        let var = self.running_var.value_sync().to_device(&device);
        self.running_mean
            .update((mean.mul_scalar(1.0 - m) + out.mean.detach().mul_scalar(m)).detach());
        self.running_var.update(
            (var.mul_scalar(1.0 - m) + out.variance.detach().mul_scalar(m * unbiased)).detach(),
        );
        out.output
    }
}

impl NamedWeights for BatchNorm1d {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        v.param(&join(prefix, "weight"), &mut self.weight);
        v.param(&join(prefix, "bias"), &mut self.bias);
        v.running(&join(prefix, "running_mean"), &mut self.running_mean);
        v.running(&join(prefix, "running_var"), &mut self.running_var);
    }
}
