//! Unlock_DNA core (DREAM-Attn's core, d = 256): a learned positional embedding added to the
//! input, then conformer-style layers. The residual and normalisation order is the
//! reference's, quirks included (SPEC §3):
//! 1. `x = x + 0.5 · FF1(x)`
//! 2. `h = LN1(x); h = h + Conv(h); x = x + h` — the normalised `h` is added too
//! 3. `x = LN2(x); x = x + MHA(x)` — `x` is replaced by its normalisation
//! 4. `x = x + 0.5 · FF2(x)`

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Initializer, LayerNorm, Linear};
use burn::tensor::activation::{relu, silu};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::blocks::{BlockOutput, BuildBlock, CoreLayers, CoreLayersConfig};

use crate::nn::visit::{NamedWeights, WeightVisitor, join};
use crate::nn::{Conv1d, ConvInit, MultiHeadAttention, conv1d, layer_norm, linear};

pub(crate) const LN_EPS: f64 = 1e-6;

/// Configuration of [`UnlockDnaCore`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockDnaConfig {
    /// Model width; the incoming channels must equal it.
    #[serde(default = "default_d")]
    pub d: usize,
    /// Conformer layers.
    #[serde(default = "default_layers")]
    pub layers: usize,
    /// Attention heads. The reference passes 8 but always uses 4; 4 matches its weights.
    #[serde(default = "default_heads")]
    pub heads: usize,
    /// Feed-forward width before SwiGLU halves it.
    #[serde(default = "default_ff")]
    pub ff: usize,
    /// Kernel of the depthwise convolution.
    #[serde(default = "default_kernel")]
    pub kernel: usize,
    /// Dropout in the feed-forward and convolution modules.
    #[serde(default = "default_dropout")]
    pub dropout: f64,
}

fn default_d() -> usize {
    256
}
fn default_layers() -> usize {
    4
}
fn default_heads() -> usize {
    4
}
fn default_ff() -> usize {
    1024
}
fn default_kernel() -> usize {
    15
}
fn default_dropout() -> f64 {
    0.1
}

impl Default for UnlockDnaConfig {
    fn default() -> Self {
        UnlockDnaConfig {
            d: default_d(),
            layers: default_layers(),
            heads: default_heads(),
            ff: default_ff(),
            kernel: default_kernel(),
            dropout: default_dropout(),
        }
    }
}

impl CoreLayersConfig for UnlockDnaConfig {
    fn out_channels(&self, _cin: usize) -> usize {
        self.d
    }

    /// Attention trains at a lower peak rate (SPEC §4).
    fn default_max_lr(&self) -> f64 {
        0.001
    }

    /// Whether the configuration fits `cin` channels.
    fn check(&self, cin: usize) -> Result<(), String> {
        use crate::blocks::limits::{MAX_KERNEL, MAX_WIDTH, count, dropout};
        count("[core] d", self.d, MAX_WIDTH)?;
        count("[core] layers", self.layers, 256)?;
        count("[core] heads", self.heads, MAX_WIDTH)?;
        count("[core] ff", self.ff, MAX_WIDTH)?;
        count("[core] kernel", self.kernel, MAX_KERNEL)?;
        dropout("[core] dropout", self.dropout)?;
        if cin != self.d {
            return Err(format!(
                "core unlock-dna works at width d = {} but the first block gives {cin} channels; \
                 make them equal (for example first block autosome with out_channels = {})",
                self.d, self.d
            ));
        }
        if self.heads == 0 || !self.d.is_multiple_of(self.heads) {
            return Err(format!(
                "core unlock-dna: d = {} must divide into {} heads",
                self.d, self.heads
            ));
        }
        if !self.ff.is_multiple_of(2) {
            return Err(format!(
                "core unlock-dna: ff = {} must be even (SwiGLU halves it)",
                self.ff
            ));
        }
        Ok(())
    }
}

impl BuildBlock for UnlockDnaConfig {
    type Block = UnlockDnaCore;

    /// Build the block for inputs of `length` positions.
    fn build(&self, _cin: usize, length: usize, device: &Device) -> UnlockDnaCore {
        let d = self.d;
        let ff = || FeedForward {
            layernorm: layer_norm(d, LN_EPS, device),
            linear1: linear(d, self.ff, false, None, device),
            linear2: linear(self.ff / 2, d, false, None, device),
            dropout: DropoutConfig::new(self.dropout).init(),
        };
        UnlockDnaCore {
            pos_embedding: Initializer::Normal {
                mean: 0.0,
                std: 1.0,
            }
            .init([length, d], device),
            layers: (0..self.layers)
                .map(|_| ConformerLayer {
                    ff1: ff(),
                    layernorm1: layer_norm(d, LN_EPS, device),
                    depthwise: conv1d(d, d, self.kernel, d, false, ConvInit::Default, device),
                    pointwise: conv1d(d, d, 1, 1, true, ConvInit::Default, device),
                    conv_dropout: DropoutConfig::new(self.dropout).init(),
                    layernorm2: layer_norm(d, LN_EPS, device),
                    attn: MultiHeadAttention::new(d, self.heads, device),
                    ff2: ff(),
                })
                .collect(),
        }
    }
}

/// `ln.forward(x)` (epsilon `LN_EPS`, as every LayerNorm here is built), as one node with our
/// kernels when training on the CPU.
fn norm(ln: &LayerNorm, x: Tensor<3>) -> Tensor<3> {
    let beta = ln.beta.as_ref().map(|b| b.val());
    crate::ops::layer_norm(&x, &ln.gamma.val(), beta.as_ref(), LN_EPS)
        .unwrap_or_else(|| ln.forward(x))
}

/// LayerNorm → Linear(d → ff, no bias) → SwiGLU (`value · SiLU(gate)`, halves) → Dropout →
/// Linear(ff/2 → d, no bias) → Dropout.
#[derive(Module, Debug)]
pub struct FeedForward {
    pub(crate) layernorm: LayerNorm,
    pub(crate) linear1: Linear,
    pub(crate) linear2: Linear,
    dropout: Dropout,
}

impl FeedForward {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = crate::nn::forward_linear(&self.linear1, norm(&self.layernorm, x));
        let h = crate::ops::swiglu(&h).unwrap_or_else(|| {
            let mut halves = h.chunk(2, 2).into_iter();
            let value = halves.next().expect("two halves");
            let gate = halves.next().expect("two halves");
            value * silu(gate)
        });
        let h = crate::nn::dropout(&self.dropout, h);
        crate::nn::dropout(&self.dropout, crate::nn::forward_linear(&self.linear2, h))
    }
}

impl NamedWeights for FeedForward {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        self.layernorm.visit_weights(&join(prefix, "layernorm"), v);
        self.linear1.visit_weights(&join(prefix, "linear1"), v);
        self.linear2.visit_weights(&join(prefix, "linear2"), v);
    }
}

/// One conformer-style layer.
#[derive(Module, Debug)]
pub struct ConformerLayer {
    pub(crate) ff1: FeedForward,
    pub(crate) layernorm1: LayerNorm,
    pub(crate) depthwise: Conv1d,
    pub(crate) pointwise: Conv1d,
    conv_dropout: Dropout,
    pub(crate) layernorm2: LayerNorm,
    pub(crate) attn: MultiHeadAttention,
    pub(crate) ff2: FeedForward,
}

impl ConformerLayer {
    /// `(batch, L, d) -> (batch, L, d)`.
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = x.clone() + self.ff1.forward(x).mul_scalar(0.5);
        let h = norm(&self.layernorm1, x.clone());
        let conv = self
            .pointwise
            .forward(self.depthwise.forward(h.clone().swap_dims(1, 2)));
        let h = h + crate::nn::dropout(&self.conv_dropout, relu(conv)).swap_dims(1, 2);
        let x = norm(&self.layernorm2, x + h);
        let x = x.clone() + self.attn.forward(x);
        x.clone() + self.ff2.forward(x).mul_scalar(0.5)
    }
}

/// The Unlock_DNA core.
#[derive(Module, Debug)]
pub struct UnlockDnaCore {
    pub(crate) pos_embedding: Param<Tensor<2>>,
    pub(crate) layers: Vec<ConformerLayer>,
}

impl UnlockDnaCore {
    /// `(batch, d, L) -> (batch, d, L)`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [_, _, l] = x.dims();
        let pos = self
            .pos_embedding
            .val()
            .narrow(0, 0, l)
            .unsqueeze_dim::<3>(0);
        let x = x.swap_dims(1, 2) + pos;
        let checkpoint = crate::ops::checkpoint_wanted(self.saved_bytes(&x));
        self.layers_forward(x, checkpoint).swap_dims(1, 2)
    }

    /// The conformer layers on `x [b, l, d]`, each checkpointed when `checkpoint` (training on
    /// the CPU).
    fn layers_forward(&self, x: Tensor<3>, checkpoint: bool) -> Tensor<3> {
        self.layers.iter().fold(x, |x, layer| {
            crate::ops::checkpointed(layer, x, checkpoint, ConformerLayer::forward)
        })
    }

    /// Roughly what training's backward pass would keep of all layers for `x [b, l, d]`: per
    /// position and layer, ~12 values of width d (norms, convolutions, residuals, attention's
    /// projections) and ~3 of width ff (the feed-forward modules). Above
    /// the checkpointing limit (4 GiB) the layers are checkpointed: each keeps its input
    /// and runs again in the backward pass (identical results, ~1/3 more compute).
    fn saved_bytes(&self, x: &Tensor<3>) -> usize {
        let [b, l, d] = x.dims();
        let Some(layer) = self.layers.first() else {
            return 0;
        };
        let ff = layer.ff1.linear1.weight.dims()[1];
        self.layers.len() * b * l * (12 * d + 3 * ff) * 4
    }

    /// Longest input the positional embedding covers.
    pub fn max_length(&self) -> usize {
        self.pos_embedding.dims()[0]
    }
}

impl NamedWeights for UnlockDnaCore {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        for (i, layer) in self.layers.iter_mut().enumerate() {
            let p = format!("{prefix}.blocks.{i}");
            layer.ff1.visit_weights(&format!("{p}.ff1"), v);
            layer
                .layernorm1
                .visit_weights(&format!("{p}.layernorm1"), v);
            layer.depthwise.visit_weights(&format!("{p}.conv.0"), v);
            layer.pointwise.visit_weights(&format!("{p}.conv.1"), v);
            layer
                .layernorm2
                .visit_weights(&format!("{p}.layernorm2"), v);
            layer.attn.visit_weights(&format!("{p}.attn"), v);
            layer.ff2.visit_weights(&format!("{p}.ff2"), v);
        }
        v.param(
            &format!("{prefix}.pos_embedding.weight"),
            &mut self.pos_embedding,
        );
    }
}

impl CoreLayers for UnlockDnaCore {
    fn forward(&self, x: Tensor<3>) -> BlockOutput {
        UnlockDnaCore::forward(self, x).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{assert_all_close, normal};
    use burn::module::ModuleVisitor;

    /// Every float parameter's gradient, flattened, in visiting order.
    struct Grads<'a>(&'a burn::tensor::Gradients, Vec<Vec<f32>>);

    impl ModuleVisitor for Grads<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let g = param
                .val()
                .grad(self.0)
                .expect("every parameter takes a gradient");
            self.1.push(g.into_data().try_into_vec().unwrap());
        }
    }

    /// Output, input gradient and every parameter's gradient of the layers, with dropout on.
    fn run(core: &UnlockDnaCore, x: &Tensor<3>, checkpoint: bool) -> Vec<Vec<f32>> {
        let xg = x.clone().detach().require_grad();
        let y = crate::ops::with_dropout_stream(7, || core.layers_forward(xg.clone(), checkpoint));
        let w: Tensor<3> = normal(y.dims(), 0.0, 1.0, 3, &y.device());
        let grads = (y.clone() * w).sum().backward();
        let mut out = vec![
            y.into_data().try_into_vec().unwrap(),
            xg.grad(&grads).unwrap().into_data().try_into_vec().unwrap(),
        ];
        let mut g = Grads(&grads, Vec::new());
        for layer in &core.layers {
            layer.visit(&mut g);
        }
        assert_eq!(g.1.len(), 2 * 19, "two layers of 19 parameter tensors");
        out.extend(g.1);
        out
    }

    /// Checkpointed layers (input kept, the layer run again in the backward pass) give the
    /// plain layers' output and gradients, dropout masks included.
    #[test]
    fn checkpointed_layers_match_the_plain_ones() {
        let device = Device::flex().autodiff();
        let config = UnlockDnaConfig {
            d: 8,
            layers: 2,
            heads: 2,
            ff: 16,
            kernel: 3,
            dropout: 0.2,
        };
        let core = config.build(8, 12, &device);
        let x: Tensor<3> = normal([3, 12, 8], 0.1, 1.0, 1, &device);
        let plain = run(&core, &x, false);
        let checkpointed = run(&core, &x, true);
        assert_all_close(&checkpointed, &plain, 1e-6, "checkpointed layers");
        // The dropout masks are live: another stream seed changes the output.
        let other = crate::ops::with_dropout_stream(8, || core.layers_forward(x.clone(), true));
        let other: Vec<f32> = other.into_data().try_into_vec().unwrap();
        assert!(
            other
                .iter()
                .zip(&plain[0])
                .any(|(a, b)| (a - b).abs() > 1e-3)
        );
    }
}
