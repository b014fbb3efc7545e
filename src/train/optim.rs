//! AdamW exactly as PyTorch's (decoupled weight decay, bias correction with the *current*
//! beta1), written here because the one-cycle recipe changes beta1 every step and burn's
//! AdamW fixes its betas at construction.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId, RunningState};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::nn::visit::{NamedWeights, WeightVisitor};
use crate::weights::{WeightMap, WeightTensor, tensor_values};

/// AdamW hyper-parameters (SPEC §4 defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamWConfig {
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Beta2.
    pub beta2: f64,
    /// Epsilon.
    pub eps: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            weight_decay: 0.01,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// First and second moments of one parameter, flattened.
#[derive(Clone)]
struct Moments {
    m: Tensor<1>,
    v: Tensor<1>,
}

/// AdamW state: the moments per parameter and the step count.
pub struct AdamW {
    config: AdamWConfig,
    moments: HashMap<ParamId, Moments>,
    step: u64,
}

impl AdamW {
    /// A fresh optimizer.
    pub fn new(config: AdamWConfig) -> Self {
        AdamW {
            config,
            moments: HashMap::new(),
            step: 0,
        }
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// One update of every parameter that has a gradient.
    pub fn step<M: Module>(&mut self, lr: f64, beta1: f64, module: M, grads: GradientsParams) -> M {
        self.step += 1;
        let mut mapper = Stepper {
            optim: self,
            grads,
            lr,
            beta1,
        };
        module.map(&mut mapper)
    }

    /// The moments as named tensors (`m.<name>`, `v.<name>`) for a checkpoint.
    pub fn to_weight_map<M: NamedWeights>(&self, model: &mut M) -> WeightMap {
        let mut names = IdNames::default();
        model.visit_weights("", &mut names);
        let mut map = WeightMap::default();
        for (name, id) in names.0 {
            if let Some(mo) = self.moments.get(&id) {
                for (key, t) in [("m", &mo.m), ("v", &mo.v)] {
                    let data = tensor_values(t.clone());
                    map.tensors.insert(
                        format!("{key}.{name}"),
                        WeightTensor {
                            shape: vec![data.len()],
                            data,
                        },
                    );
                }
            }
        }
        map.metadata.insert("step".into(), self.step.to_string());
        map
    }

    /// Restore the moments saved by [`AdamW::to_weight_map`] for `model`'s parameters.
    pub fn load_weight_map<M: NamedWeights>(
        config: AdamWConfig,
        map: &WeightMap,
        model: &mut M,
        device: &Device,
    ) -> Self {
        let mut names = IdNames::default();
        model.visit_weights("", &mut names);
        let mut moments = HashMap::new();
        for (name, id) in names.0 {
            let get = |k: &str| {
                map.tensors.get(&format!("{k}.{name}")).map(|t| {
                    Tensor::<1>::from_data(TensorData::new(t.data.clone(), [t.data.len()]), device)
                })
            };
            if let (Some(m), Some(v)) = (get("m"), get("v")) {
                moments.insert(id, Moments { m, v });
            }
        }
        let step = map
            .metadata
            .get("step")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        AdamW {
            config,
            moments,
            step,
        }
    }
}

/// Gradient clipping as the Unlock_DNA trainer does it (SPEC_GRID §6, Q8): PyTorch's
/// `clip_grad_norm_` (one L2 norm over every parameter's gradient; all scaled by
/// `min(1, norm / (total + 1e-6))`), then `clip_grad_value_` (each value into ±`value`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clip {
    /// The largest global L2 norm.
    pub norm: f64,
    /// The largest absolute value.
    pub value: f64,
}

impl Clip {
    /// The clipped gradients of `module`'s parameters, and the global norm before clipping.
    pub fn apply<M: Module>(&self, module: &M, grads: GradientsParams) -> (GradientsParams, f64) {
        let mut sum = SquaredNorm {
            grads: &grads,
            total: 0.0,
        };
        module.visit(&mut sum);
        let total = sum.total.sqrt();
        let scale = (self.norm / (total + 1e-6)).min(1.0);
        let mut clip = ClipEach {
            grads,
            scale,
            value: self.value,
        };
        module.visit(&mut clip);
        (clip.grads, total)
    }
}

struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: f64,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            self.total += g.powi_scalar(2).sum().into_scalar::<f32>() as f64;
        }
    }
}

struct ClipEach {
    grads: GradientsParams,
    scale: f64,
    value: f64,
}

impl ModuleVisitor for ClipEach {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            let g = g.mul_scalar(self.scale).clamp(-self.value, self.value);
            self.grads.register::<D>(param.id, g);
        }
    }
}

/// Parameter ids by reference name.
#[derive(Default)]
struct IdNames(Vec<(String, ParamId)>);

impl WeightVisitor for IdNames {
    fn param<const D: usize>(&mut self, name: &str, param: &mut Param<Tensor<D>>) {
        self.0.push((name.to_string(), param.id));
    }
    fn linear_weight(&mut self, name: &str, param: &mut Param<Tensor<2>>) {
        self.0.push((name.to_string(), param.id));
    }
    fn running(&mut self, _: &str, _: &mut RunningState<Tensor<1>>) {}
}

struct Stepper<'a> {
    optim: &'a mut AdamW,
    grads: GradientsParams,
    lr: f64,
    beta1: f64,
}

impl ModuleMapper for Stepper<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let require_grad = tensor.is_require_grad();
        let shape = tensor.dims();
        let n: usize = shape.iter().product();
        let c = self.optim.config;
        let (b1, b2) = (self.beta1, c.beta2);
        let t = self.optim.step as i32;

        let p = tensor.inner().reshape([n]);
        let g = grad.reshape([n]);
        let device = p.device();
        let prev = self.optim.moments.remove(&id).unwrap_or_else(|| Moments {
            m: Tensor::zeros([n], &device),
            v: Tensor::zeros([n], &device),
        });
        let m = prev.m.mul_scalar(b1) + g.clone().mul_scalar(1.0 - b1);
        let v = prev.v.mul_scalar(b2) + (g.clone() * g).mul_scalar(1.0 - b2);
        let bias1 = 1.0 - b1.powi(t);
        let bias2 = 1.0 - b2.powi(t);
        // PyTorch: p ← p·(1 − lr·wd); p ← p − lr/bias1 · m / (sqrt(v)/sqrt(bias2) + eps).
        let denom = v.clone().sqrt().div_scalar(bias2.sqrt()).add_scalar(c.eps);
        let p = p.mul_scalar(1.0 - self.lr * c.weight_decay)
            - (m.clone() / denom).mul_scalar(self.lr / bias1);
        self.optim.moments.insert(id, Moments { m, v });

        let mut updated = Tensor::from_inner(p.reshape(shape));
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PyTorch's `clip_grad_norm_(1.0)` then `clip_grad_value_(0.5)`, checked by hand on a
    /// layer whose gradients are known: every gradient scaled by `1 / (‖g‖ + 1e-6)`, then
    /// clamped to ±0.5.
    #[test]
    fn clipping_scales_to_the_global_norm_then_clamps_values() {
        let device = Device::flex().autodiff();
        let layer = crate::nn::linear(3, 2, true, None, &device);
        let x = Tensor::<2>::from_floats([[4.0, -2.0, 1.0]], &device);
        // d(sum(W x + b))/dW = x per row, /db = 1: ‖g‖² = 2·21 + 2 = 44.
        let loss = crate::nn::forward_linear(&layer, x).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &layer);
        let (clipped, total) = Clip {
            norm: 1.0,
            value: 0.5,
        }
        .apply(&layer, grads);
        assert!((total - 44f64.sqrt()).abs() < 1e-5, "{total}");
        let s = 1.0 / (44f64.sqrt() + 1e-6);
        let w: Vec<f32> = clipped
            .get::<2>(layer.weight.id)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let mut want: Vec<f32> = [4.0, -2.0, 1.0, 4.0, -2.0, 1.0]
            .iter()
            .map(|v: &f64| (v * s).clamp(-0.5, 0.5) as f32)
            .collect();
        want.sort_by(f32::total_cmp);
        let mut got = w.clone();
        got.sort_by(f32::total_cmp);
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-6, "{got:?} vs {want:?}");
        }
        // 4·s = 0.603 was clamped to 0.5.
        assert!(got.contains(&0.5));
        let bias: Vec<f32> = clipped
            .get::<1>(layer.bias.as_ref().unwrap().id)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(
            bias.iter().all(|v| (*v as f64 - s).abs() < 1e-6),
            "{bias:?}"
        );
    }
}
