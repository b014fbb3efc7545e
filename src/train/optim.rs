//! AdamW exactly as PyTorch's (decoupled weight decay, bias correction with the *current*
//! beta1), written here because the one-cycle recipe changes beta1 every step and burn's
//! AdamW fixes its betas at construction.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, Param, ParamId, RunningState};
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
