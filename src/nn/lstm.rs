//! A bidirectional LSTM stored in PyTorch's layout (`weight_ih_l0 [4H, in]`,
//! `weight_hh_l0 [4H, H]`, two biases; gates in the order input, forget, cell, output).
//!
//! The input projection of all time steps is one large matrix product; only the recurrent
//! product runs per step. This is the place to swap in a fused kernel.

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::activation::{sigmoid, tanh};
use burn::tensor::{Device, Tensor};

use super::visit::{NamedWeights, WeightVisitor};
use crate::ops::LstmWeights;

/// One direction of an LSTM layer.
#[derive(Module, Debug)]
pub struct LstmDirection {
    /// `[4H, in]`.
    pub weight_ih: Param<Tensor<2>>,
    /// `[4H, H]`.
    pub weight_hh: Param<Tensor<2>>,
    /// `[4H]`.
    pub bias_ih: Param<Tensor<1>>,
    /// `[4H]`.
    pub bias_hh: Param<Tensor<1>>,
    hidden: usize,
}

impl LstmDirection {
    /// PyTorch's initialisation: every tensor ~ Uniform(±1/sqrt(H)).
    pub fn new(input: usize, hidden: usize, device: &Device) -> Self {
        let k = 1.0 / (hidden as f64).sqrt();
        let init = Initializer::Uniform { min: -k, max: k };
        LstmDirection {
            weight_ih: init.init([4 * hidden, input], device),
            weight_hh: init.init([4 * hidden, hidden], device),
            bias_ih: init.init([4 * hidden], device),
            bias_hh: init.init([4 * hidden], device),
            hidden,
        }
    }

    /// Run over `x: [batch, length, in]`, forwards or backwards in time; `[batch, length, H]`.
    ///
    /// On the CPU training backend the whole direction is one graph node with our own forward
    /// and backward kernels (`ops`); elsewhere burn's operations below.
    pub fn forward(&self, x: Tensor<3>, reverse: bool) -> Tensor<3> {
        let w = self.vals();
        if let Some(y) = crate::ops::lstm_direction(&x, w.weights(), reverse) {
            return y;
        }
        self.forward_ops(x, reverse)
    }

    /// The current parameter values.
    fn vals(&self) -> DirectionValues {
        DirectionValues {
            w_ih: self.weight_ih.val(),
            w_hh: self.weight_hh.val(),
            b_ih: self.bias_ih.val(),
            b_hh: self.bias_hh.val(),
        }
    }

    /// The same computation from burn's tensor operations (any backend).
    pub fn forward_ops(&self, x: Tensor<3>, reverse: bool) -> Tensor<3> {
        let [b, l, c] = x.dims();
        let h_dim = self.hidden;
        let bias = (self.bias_ih.val() + self.bias_hh.val()).unsqueeze_dim::<2>(0);
        // All time steps' input projections at once: [b*l, 4H] -> [b, l, 4H].
        let xw = (x
            .reshape([b * l, c])
            .matmul(self.weight_ih.val().transpose())
            + bias)
            .reshape([b, l, 4 * h_dim]);
        let w_hh = self.weight_hh.val().transpose();
        let device = xw.device();
        let mut h: Tensor<2> = Tensor::zeros([b, h_dim], &device);
        let mut c_state: Tensor<2> = Tensor::zeros([b, h_dim], &device);
        let mut outs = vec![None; l];
        for step in 0..l {
            let t = if reverse { l - 1 - step } else { step };
            let gates = xw.clone().narrow(1, t, 1).reshape([b, 4 * h_dim]) + h.matmul(w_hh.clone());
            let mut g = gates.chunk(4, 1).into_iter();
            let (i, f, gg, o) = (
                g.next().expect("4 gates"),
                g.next().expect("4 gates"),
                g.next().expect("4 gates"),
                g.next().expect("4 gates"),
            );
            c_state = sigmoid(f) * c_state + sigmoid(i) * tanh(gg);
            h = sigmoid(o) * tanh(c_state.clone());
            outs[t] = Some(h.clone());
        }
        Tensor::stack(
            outs.into_iter()
                .map(|o| o.expect("every step ran"))
                .collect(),
            1,
        )
    }
}

/// A direction's parameter values, borrowed by the fused kernels.
struct DirectionValues {
    w_ih: Tensor<2>,
    w_hh: Tensor<2>,
    b_ih: Tensor<1>,
    b_hh: Tensor<1>,
}

impl DirectionValues {
    fn weights(&self) -> LstmWeights<'_> {
        LstmWeights {
            w_ih: &self.w_ih,
            w_hh: &self.w_hh,
            b_ih: &self.b_ih,
            b_hh: &self.b_hh,
        }
    }
}

/// A one-layer bidirectional LSTM; the output concatenates forward and backward features.
#[derive(Module, Debug)]
pub struct BiLstm {
    /// Forward in time.
    pub forward_dir: LstmDirection,
    /// Backward in time.
    pub backward_dir: LstmDirection,
}

impl BiLstm {
    /// A bidirectional LSTM from `input` features to `2 × hidden`.
    pub fn new(input: usize, hidden: usize, device: &Device) -> Self {
        BiLstm {
            forward_dir: LstmDirection::new(input, hidden, device),
            backward_dir: LstmDirection::new(input, hidden, device),
        }
    }

    /// `[batch, length, in] -> [batch, length, 2H]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let (f, b) = (self.forward_dir.vals(), self.backward_dir.vals());
        if let Some(y) = crate::ops::bilstm(&x, f.weights(), b.weights()) {
            return y;
        }
        self.forward_ops(x)
    }

    /// The same computation from burn's tensor operations (any backend).
    pub fn forward_ops(&self, x: Tensor<3>) -> Tensor<3> {
        let f = self.forward_dir.forward_ops(x.clone(), false);
        let r = self.backward_dir.forward_ops(x, true);
        Tensor::cat(vec![f, r], 2)
    }
}

impl NamedWeights for BiLstm {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        for (dir, suffix) in [
            (&mut self.forward_dir, ""),
            (&mut self.backward_dir, "_reverse"),
        ] {
            v.param(
                &format!("{prefix}.weight_ih_l0{suffix}"),
                &mut dir.weight_ih,
            );
            v.param(
                &format!("{prefix}.weight_hh_l0{suffix}"),
                &mut dir.weight_hh,
            );
            v.param(&format!("{prefix}.bias_ih_l0{suffix}"), &mut dir.bias_ih);
            v.param(&format!("{prefix}.bias_hh_l0{suffix}"), &mut dir.bias_hh);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::normal;

    /// The gradients of a direction's four parameters.
    fn direction_grads(dir: &LstmDirection, grads: &burn::tensor::Gradients) -> Vec<Vec<f32>> {
        let vals = |t: Option<Tensor<2>>| t.unwrap().into_data().try_into_vec().unwrap();
        let vals1 = |t: Option<Tensor<1>>| t.unwrap().into_data().try_into_vec().unwrap();
        vec![
            vals(dir.weight_ih.val().grad(grads)),
            vals(dir.weight_hh.val().grad(grads)),
            vals1(dir.bias_ih.val().grad(grads)),
            vals1(dir.bias_hh.val().grad(grads)),
        ]
    }

    /// Our fused kernels and burn's operations give the same outputs and gradients.
    #[test]
    fn fused_direction_matches_burn_ops() {
        let device = Device::flex().autodiff();
        let dir = LstmDirection::new(5, 6, &device);
        let x: Tensor<3> = normal([3, 7, 5], 0.0, 1.0, 1, &device);
        let probe: Tensor<3> = normal([3, 7, 6], 0.0, 1.0, 2, &device);
        for reverse in [false, true] {
            let run = |fused: bool| {
                let xg = x.clone().detach().require_grad();
                let y = if fused {
                    let w = dir.vals();
                    crate::ops::lstm_direction(&xg, w.weights(), reverse)
                        .expect("the fused kernel runs on Autodiff<Flex>")
                } else {
                    dir.forward_ops(xg.clone(), reverse)
                };
                let (mut all, grads) = crate::ops::testing::probed(&xg, y, &probe);
                all.extend(direction_grads(&dir, &grads));
                all
            };
            let (fused, ops) = (run(true), run(false));
            crate::ops::testing::assert_all_close(
                &fused,
                &ops,
                1e-5,
                &format!("reverse {reverse}"),
            );
        }
    }

    /// The bidirectional node (both directions side by side) matches burn's operations.
    #[test]
    fn fused_bidirectional_matches_burn_ops() {
        let device = Device::flex().autodiff();
        let lstm = BiLstm::new(4, 5, &device);
        let x: Tensor<3> = normal([3, 6, 4], 0.0, 1.0, 3, &device);
        let probe: Tensor<3> = normal([3, 6, 10], 0.0, 1.0, 4, &device);
        let run = |fused: bool| {
            let xg = x.clone().detach().require_grad();
            let y = if fused {
                let (f, b) = (lstm.forward_dir.vals(), lstm.backward_dir.vals());
                crate::ops::bilstm(&xg, f.weights(), b.weights())
                    .expect("the fused kernel runs on Autodiff<Flex>")
            } else {
                lstm.forward_ops(xg.clone())
            };
            let (mut all, grads) = crate::ops::testing::probed(&xg, y, &probe);
            for dir in [&lstm.forward_dir, &lstm.backward_dir] {
                all.extend(direction_grads(dir, &grads));
            }
            all
        };
        let (fused, ops) = (run(true), run(false));
        crate::ops::testing::assert_all_close(&fused, &ops, 1e-5, "fused vs burn ops");
    }
}
