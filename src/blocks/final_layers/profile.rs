//! The ChromBPNet head (SPEC_BENCHMARKS §5.3, §5.10): a base-resolution profile and a total
//! count from one tower.
//!
//! - Profile: `Conv1D(C → 1, k 75, valid)`, cropped symmetrically to the central
//!   `profile_length` (1,000) positions: the profile's logits.
//! - Counts: the mean of the tower over all its positions → `Dense(1)`: log counts.
//!
//! Outputs `(batch, profile_length + 1)`: the logits, then the log count. The loss (§5.6) is
//! the multinomial NLL of the per-base counts under `softmax(logits)`, factorial terms
//! included, plus `counts_weight` × the MSE of `log(1 + Σ counts)`. The weight comes from the
//! data (`atac::regions::counts_loss_weight`) and is stored in the model's config. Tensors
//! `final.profile.*`, `final.counts.*`; `75·C + 1 + C + 1` parameters (38,401 + 513 at
//! C = 512; 9,601 + 129 for the bias model's 128).

use burn::module::Module;
use burn::nn::Linear;
use burn::nn::conv::Conv1d as BurnConv1d;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::blocks::{BuildBlock, FinalLayers, FinalLayersConfig};
use crate::nn::forward_linear;
use crate::nn::keras::{dense, valid_conv, valid_length};
use crate::nn::visit::{NamedWeights, WeightVisitor, join};

/// Configuration of [`ProfileHead`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProfileConfig {
    /// Positions of the predicted profile (the central part of the input).
    pub profile_length: usize,
    /// Width of the profile convolution.
    pub kernel: usize,
    /// Weight of the log-count MSE against the profile's NLL.
    pub counts_weight: f64,
}

impl Default for ProfileConfig {
    fn default() -> Self {
        ProfileConfig {
            profile_length: 1000,
            kernel: 75,
            counts_weight: 1.0,
        }
    }
}

impl ProfileConfig {
    /// The crop on each side of the profile convolution's output for a tower of `length`
    /// positions, or why the tower does not fit.
    pub fn crop(&self, length: usize) -> Result<usize, String> {
        let conv = valid_length(length, self.kernel, "[final] kernel")?;
        if conv < self.profile_length || !(conv - self.profile_length).is_multiple_of(2) {
            return Err(format!(
                "[final] profile_length: the profile convolution gives {conv} positions, which \
                 cannot be cropped symmetrically to {} (the input length sets this; ChromBPNet \
                 takes 2,114 nt for 1,000)",
                self.profile_length
            ));
        }
        Ok((conv - self.profile_length) / 2)
    }
}

impl FinalLayersConfig for ProfileConfig {
    fn tasks(&self) -> usize {
        1
    }

    fn outputs(&self) -> usize {
        self.profile_length + 1
    }

    fn target_width(&self) -> usize {
        self.profile_length
    }

    fn check(&self) -> Result<(), String> {
        use crate::blocks::limits::{MAX_KERNEL, MAX_LENGTH, count};
        count("[final] profile_length", self.profile_length, MAX_LENGTH)?;
        count("[final] kernel", self.kernel, MAX_KERNEL)?;
        if !(self.counts_weight.is_finite() && self.counts_weight >= 0.0) {
            return Err(format!(
                "[final] counts_weight must be a finite number ≥ 0, got {}",
                self.counts_weight
            ));
        }
        Ok(())
    }

    fn check_length(&self, length: usize) -> Result<(), String> {
        self.crop(length).map(|_| ())
    }

    fn labels_wanted(&self) -> String {
        format!(
            "a per-base count track of {} positions per region (train it with --task atac)",
            self.profile_length
        )
    }

    fn columns(&self) -> Vec<String> {
        vec!["log_counts".into()]
    }
}

impl BuildBlock for ProfileConfig {
    type Block = ProfileHead;

    fn build(&self, cin: usize, length: usize, device: &Device) -> ProfileHead {
        ProfileHead {
            profile: valid_conv(cin, 1, self.kernel, 1, device),
            counts: dense(cin, 1, device),
            // `NetConfig::check` has checked the crop before anything is built.
            crop: self.crop(length).unwrap_or(0),
            profile_length: self.profile_length,
            counts_weight: self.counts_weight,
        }
    }
}

/// The profile and counts head.
#[derive(Module, Debug)]
pub struct ProfileHead {
    pub(crate) profile: BurnConv1d,
    pub(crate) counts: Linear,
    crop: usize,
    profile_length: usize,
    counts_weight: f64,
}

impl FinalLayers for ProfileHead {
    /// `(batch, C, L) -> (batch, profile_length + 1)`.
    fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let [b, c, _] = x.dims();
        let logits = self
            .profile
            .forward(x.clone())
            .narrow(2, self.crop, self.profile_length)
            .reshape([b, self.profile_length]);
        let pooled = x.mean_dim(2).reshape([b, c]);
        let log_counts = forward_linear(&self.counts, pooled);
        Tensor::cat(vec![logits, log_counts], 1)
    }

    /// The log counts.
    fn decode(&self, out: Tensor<2>) -> Tensor<2> {
        out.narrow(1, self.profile_length, 1)
    }

    fn loss(&self, out: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
        profile_loss(out, target, self.counts_weight)
    }
}

impl NamedWeights for ProfileHead {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        self.profile.visit_weights(&join(prefix, "profile"), v);
        self.counts.visit_weights(&join(prefix, "counts"), v);
    }
}

/// The two parts of [`profile_loss`], each `[1]`: the multinomial NLL per region and the
/// log-count MSE.
pub fn profile_loss_parts(out: Tensor<2>, counts: Tensor<2>) -> (Tensor<1>, Tensor<1>) {
    let [b, p] = counts.dims();
    let logits = out.clone().narrow(1, 0, p);
    let log_counts = out.narrow(1, p, 1);
    let host = counts
        .clone()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 counts");
    // log n! − Σ log k_i!, per region: the multinomial's normalising term (constant in the
    // weights, included so the loss is the true NLL, as ChromBPNet reports it).
    let mut norm = 0.0f64;
    let mut totals = Vec::with_capacity(b);
    for row in host.chunks(p) {
        let n: f64 = row.iter().map(|&k| k as f64).sum();
        norm += libm::lgamma(n + 1.0)
            - row
                .iter()
                .map(|&k| libm::lgamma(k as f64 + 1.0))
                .sum::<f64>();
        totals.push((1.0 + n).ln() as f32);
    }
    let device = log_counts.device();
    let ll = (counts * log_softmax(logits, 1)).sum();
    let nll = (ll.add_scalar(norm))
        .neg()
        .div_scalar(b as f64)
        .reshape([1]);
    let target = Tensor::<2>::from_data(TensorData::new(totals, [b, 1]), &device);
    let mse = (log_counts - target).powi_scalar(2).mean().reshape([1]);
    (nll, mse)
}

/// ChromBPNet's loss: the multinomial NLL of `counts` (`(batch, P)`) under the softmax of the
/// first `P` outputs, plus `counts_weight` × the MSE of the last output against
/// `log(1 + Σ counts)`.
pub fn profile_loss(out: Tensor<2>, counts: Tensor<2>, counts_weight: f64) -> Tensor<1> {
    let (nll, mse) = profile_loss_parts(out, counts);
    nll + mse.mul_scalar(counts_weight)
}

/// The frozen-bias combination (SPEC_BENCHMARKS §5.5): profile logits added, log counts
/// combined by log-sum-exp. Both `(batch, P + 1)`.
pub fn combine_with_bias(main: Tensor<2>, bias: Tensor<2>) -> Tensor<2> {
    let [_, w] = main.dims();
    let p = w - 1;
    let logits = main.clone().narrow(1, 0, p) + bias.clone().narrow(1, 0, p);
    let a = main.narrow(1, p, 1);
    let c = bias.narrow(1, p, 1);
    // log(e^a + e^c) = max + log(1 + e^(−|a − c|)).
    let hi = a.clone().max_pair(c.clone());
    let lse = hi + (a - c).abs().neg().exp().log1p();
    Tensor::cat(vec![logits, lse], 1)
}
