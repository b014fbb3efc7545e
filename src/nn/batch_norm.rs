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
    pub(crate) eps: f64,
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

    /// The same with another momentum (PyTorch's convention: the weight of the new batch)
    /// and eps.
    pub fn with_momentum_eps(self, momentum: f64, eps: f64) -> Self {
        BatchNorm1d {
            momentum,
            eps,
            ..self
        }
    }

    /// Batch statistics when training (on an autodiff device), running statistics otherwise.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let device = x.device();
        if !crate::nn::training(&device) {
            return burn::tensor::module::batch_norm(
                x,
                self.weight.val(),
                self.bias.val(),
                self.running_mean.value_sync().to_device(&device),
                self.running_var.value_sync().to_device(&device),
                self.eps,
            );
        }
        if let Some(y) = self.train_fused(&x, false) {
            return y;
        }
        let [b, _, l] = x.dims();
        let out =
            burn::tensor::module::batch_norm_train(x, self.weight.val(), self.bias.val(), self.eps);
        self.update_running(out.mean.detach(), out.variance.detach(), b * l);
        out.output
    }

    /// `silu(self.forward(x))`, as one node with our own kernels when training on the CPU.
    pub fn forward_silu(&self, x: Tensor<3>) -> Tensor<3> {
        if crate::nn::training(&x.device())
            && let Some(y) = self.train_fused(&x, true)
        {
            return y;
        }
        burn::tensor::activation::silu(self.forward(x))
    }

    /// Training-mode normalisation (+ SiLU) by the `ops` kernels, `None` off the CPU
    /// training backend.
    fn train_fused(&self, x: &Tensor<3>, silu: bool) -> Option<Tensor<3>> {
        let (y, mean, var) =
            crate::ops::batch_norm_train(x, &self.weight.val(), &self.bias.val(), self.eps, silu)?;
        let device = x.device();
        let stat = |v: Vec<f32>| {
            let c = v.len();
            Tensor::<1>::from_data(burn::tensor::TensorData::new(v, [c]), &device)
        };
        let [b, _, l] = x.dims();
        self.update_running(stat(mean), stat(var), b * l);
        Some(y)
    }

    /// Running statistics ← (1 − momentum) · running + momentum · batch, with the batch
    /// variance (over `values` per channel) made unbiased as PyTorch does.
    fn update_running(&self, batch_mean: Tensor<1>, batch_var: Tensor<1>, values: usize) {
        let device = batch_mean.device();
        let m = self.momentum;
        let n = values as f64;
        let unbiased = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
        let mean = self.running_mean.value_sync().to_device(&device);
        let var = self.running_var.value_sync().to_device(&device);
        self.running_mean
            .update((mean.mul_scalar(1.0 - m) + batch_mean.mul_scalar(m)).detach());
        self.running_var
            .update((var.mul_scalar(1.0 - m) + batch_var.mul_scalar(m * unbiased)).detach());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::normal;

    fn vec1(t: Tensor<1>) -> Vec<f32> {
        t.into_data().try_into_vec().unwrap()
    }

    /// Our fused kernels and burn's operations give the same outputs, gradients and running
    /// statistics, with and without SiLU.
    #[test]
    fn fused_norm_matches_burn_ops() {
        let device = Device::flex().autodiff();
        let x: Tensor<3> = normal([3, 4, 11], 0.5, 2.0, 1, &device);
        let probe: Tensor<3> = normal([3, 4, 11], 0.0, 1.0, 2, &device);
        let gamma: Tensor<1> = normal([4], 1.0, 0.3, 3, &device);
        let beta: Tensor<1> = normal([4], 0.0, 0.3, 4, &device);
        for act in [false, true] {
            let run = |fused: bool| {
                let mut bn = BatchNorm1d::new(4, &device);
                bn.weight = Param::from_tensor(gamma.clone().detach().require_grad());
                bn.bias = Param::from_tensor(beta.clone().detach().require_grad());
                let xg = x.clone().detach().require_grad();
                let y = if fused {
                    bn.train_fused(&xg, act)
                        .expect("fused kernel on Autodiff<Flex>")
                } else {
                    let [b, _, l] = xg.dims();
                    let out = burn::tensor::module::batch_norm_train(
                        xg.clone(),
                        bn.weight.val(),
                        bn.bias.val(),
                        bn.eps,
                    );
                    bn.update_running(out.mean.detach(), out.variance.detach(), b * l);
                    if act {
                        burn::tensor::activation::silu(out.output)
                    } else {
                        out.output
                    }
                };
                let grads = (y.clone() * probe.clone()).sum().backward();
                vec![
                    y.into_data().try_into_vec::<f32>().unwrap(),
                    xg.grad(&grads).unwrap().into_data().try_into_vec().unwrap(),
                    vec1(bn.weight.val().grad(&grads).unwrap()),
                    vec1(bn.bias.val().grad(&grads).unwrap()),
                    vec1(bn.running_mean.value_sync()),
                    vec1(bn.running_var.value_sync()),
                ]
            };
            let (fused, ops) = (run(true), run(false));
            crate::ops::testing::assert_all_close(&fused, &ops, 1e-4, &format!("silu {act}"));
        }
    }
}
