//! Naming every tensor of a model as the reference PyTorch `state_dict` names it.
//!
//! Each block walks its tensors with [`NamedWeights::visit_weights`], giving the reference
//! name of each. Loading, saving and counting are visitors; one naming serves all three.

use burn::module::{Param, RunningState};
use burn::nn::conv::Conv1d;
use burn::nn::{LayerNorm, Linear};
use burn::tensor::Tensor;

/// Something that does a job per named tensor.
pub trait WeightVisitor {
    /// A parameter stored as PyTorch stores it.
    fn param<const D: usize>(&mut self, name: &str, param: &mut Param<Tensor<D>>);
    /// A linear layer's weight: burn keeps `[in, out]`, PyTorch `[out, in]`; the visitor sees
    /// and gives the PyTorch layout.
    fn linear_weight(&mut self, name: &str, param: &mut Param<Tensor<2>>);
    /// A running statistic (BatchNorm): state, not a trained parameter.
    fn running(&mut self, name: &str, state: &mut RunningState<Tensor<1>>);
}

/// A module whose tensors have reference names.
pub trait NamedWeights {
    /// Visit every tensor, each named `prefix` + its reference name.
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V);
}

/// Draw every parameter now: burn initialises a parameter lazily, at its first use, so a
/// freshly built module has not yet drawn from the generator.
pub fn materialize<M: NamedWeights>(module: &mut M) {
    struct Draw;
    impl WeightVisitor for Draw {
        fn param<const D: usize>(&mut self, _: &str, param: &mut Param<Tensor<D>>) {
            let _ = param.val();
        }
        fn linear_weight(&mut self, _: &str, param: &mut Param<Tensor<2>>) {
            let _ = param.val();
        }
        fn running(&mut self, _: &str, _: &mut RunningState<Tensor<1>>) {}
    }
    module.visit_weights("", &mut Draw);
}

/// `prefix.name`, or `name` when the prefix is empty.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

impl NamedWeights for Conv1d {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        v.param(&join(prefix, "weight"), &mut self.weight);
        if let Some(b) = &mut self.bias {
            v.param(&join(prefix, "bias"), b);
        }
    }
}

impl NamedWeights for Linear {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        v.linear_weight(&join(prefix, "weight"), &mut self.weight);
        if let Some(b) = &mut self.bias {
            v.param(&join(prefix, "bias"), b);
        }
    }
}

impl NamedWeights for LayerNorm {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        v.param(&join(prefix, "weight"), &mut self.gamma);
        if let Some(b) = &mut self.beta {
            v.param(&join(prefix, "bias"), b);
        }
    }
}
