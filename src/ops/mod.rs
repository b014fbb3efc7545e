//! Training operations: layers with our own forward and backward passes, inserted into burn's
//! autodiff graph when a tensor lives on the CPU training backend (`Autodiff<Flex>`). One file
//! per op family ([`conv`], [`lstm`], [`norm`], [`attention`], [`linear`], [`elementwise`]);
//! this file holds what they share: reading a tensor's values, and registering a graph node.
//! The row arithmetic they share with the inference engine lives in [`crate::kernels`].
//!
//! burn composes an LSTM from ~10 small graph nodes per time step, and its CPU convolution,
//! normalisation and attention backward passes allocate per operation; here each layer is one
//! node: convolutions (one product per kernel tap over the batch, or direct loops when
//! grouped), a whole BiLSTM layer (back-propagation through time with one product per step),
//! BatchNorm (+SiLU), LayerNorm, SwiGLU, attention, linear layers (either weight layout, all rows
//! in one product), channel scaling and dropout.
//!
//! Each function returns `None` when its inputs are not on `Autodiff<Flex>` (a GPU, plain
//! inference, or `PRIXFIXE_ENGINE=burn`); the caller then runs burn's own operations, so the
//! same model code runs everywhere.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, NodeGuard, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{BackendPrimitive, Float, Tensor, TensorData};
use rayon::prelude::*;

use crate::kernels;

type Ad = Autodiff<Flex>;
type AdTensor = <Float as BackendPrimitive<Ad>>::Primitive;

/// The autodiff primitive of `t`, when it lives on `Autodiff<Flex>` (and our kernels are on).
fn primitive<const D: usize>(t: &Tensor<D>) -> Option<AdTensor> {
    if !crate::kernels::enabled() {
        return None;
    }
    t.clone().try_into_primitive::<Ad>().ok()
}

/// A CPU tensor's values, contiguous, shared with the tensor (no copy when it already is
/// contiguous): saved states hold these rather than copies.
#[derive(Clone)]
struct Values(FlexTensor);

impl std::ops::Deref for Values {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        self.0.as_slice::<f32>().expect("contiguous f32 values")
    }
}

impl std::fmt::Debug for Values {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Values({})", self.len())
    }
}

/// An optional bias's primitive: `Some(None)` without a bias, `None` when it is off
/// `Autodiff<Flex>`.
fn optional_primitive(b: Option<&Tensor<1>>) -> Option<Option<AdTensor>> {
    match b {
        Some(b) => primitive(b).map(Some),
        None => Some(None),
    }
}

/// The values of a CPU tensor.
fn values(t: &FlexTensor) -> Values {
    if t.as_slice::<f32>().is_some() {
        Values(t.clone())
    } else {
        Values(t.to_contiguous())
    }
}

fn flex(values: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.to_vec()))
}

/// Register `op` as the graph node computing `output` from `nodes`; its backward pass gets
/// `state` (untracked inputs: no backward step).
fn node<const D: usize, const N: usize, BO>(
    op: BO,
    nodes: [NodeGuard; N],
    state: BO::State,
    output: FlexTensor,
) -> Tensor<D>
where
    BO: Backward<Flex, N>,
{
    let out = match op
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(state, output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    };
    Tensor::from_primitive::<Ad>(out)
}

/// [`node`] for a layer with input, weight and optional bias, whose backward pass is its saved
/// state's [`LayerGrads`].
fn layer_node<const D: usize, S>(
    (x, w, b): (&AdTensor, &AdTensor, Option<&AdTensor>),
    state: Arc<S>,
    output: FlexTensor,
) -> Tensor<D>
where
    S: LayerGrads + Send + Sync + std::fmt::Debug + 'static,
{
    let op = LayerBackward(std::marker::PhantomData);
    match b {
        Some(b) => node::<D, 3, _>(op, [x.node(), w.node(), b.node()], state, output),
        None => node::<D, 2, _>(op, [x.node(), w.node()], state, output),
    }
}

/// `Debug` for a saved state: its name and one field (the shape), not its buffers.
macro_rules! debug_shows {
    ($ty:ty, $name:literal, $field:ident) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct($name)
                    .field(stringify!($field), &self.$field)
                    .finish()
            }
        }
    };
}

/// Give each parent that takes a gradient its `(values, shape)`.
macro_rules! register {
    ($grads:expr, $parents:expr, $items:expr) => {
        for (node, (v, shape)) in $parents.into_iter().zip($items) {
            if let Some(node) = node {
                $grads.register::<Flex>(node.id, flex(v, &shape));
            }
        }
    };
}

/// The saved state of a layer with an input, a weight and an optional bias.
trait LayerGrads {
    /// The gradients of the input, weight and bias, each with its shape, from the output's.
    fn grads(&self, dy: &[f32]) -> [(Vec<f32>, Vec<usize>); 3];
}

/// The backward pass of a layer whose saved state is `S`, for both arities (with and without a
/// bias).
#[derive(Debug)]
struct LayerBackward<S>(std::marker::PhantomData<S>);

impl<S, const N: usize> Backward<Flex, N> for LayerBackward<S>
where
    S: LayerGrads + Send + Sync + std::fmt::Debug + 'static,
{
    type State = Arc<S>;

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = values(&grads.consume::<Flex>(&ops.node));
        register!(grads, ops.parents, ops.state.grads(&dy));
    }
}

mod attention;
mod checkpoint;
mod conv;
mod elementwise;
mod linear;
mod lstm;
mod norm;

pub(crate) use attention::attention;
pub(crate) use checkpoint::{checkpointed, wanted as checkpoint_wanted};
pub(crate) use conv::{conv1d, conv1d_same};
pub(crate) use elementwise::{channel_scale, dropout, swiglu, with_dropout_stream};
pub(crate) use linear::{WeightLayout, linear};
pub(crate) use lstm::{LstmWeights, bilstm, lstm_direction};
pub(crate) use norm::{batch_norm_train, layer_norm};

/// Rows of `width` values in parallel chunks of whole rows (~16 K values each).
fn row_chunk(width: usize) -> usize {
    ((1 << 14) / width.max(1)).max(1) * width
}

/// Helpers for the tests comparing our kernels with burn's operations.
#[cfg(test)]
pub(crate) mod testing {
    use burn::tensor::{Gradients, Tensor};

    /// Back-propagate `Σ y ⊙ probe` from `x` to `y`: `y`'s values and `x`'s gradient, and the
    /// gradients for the caller's parameters.
    pub(crate) fn probed<const D: usize>(
        x: &Tensor<D>,
        y: Tensor<D>,
        probe: &Tensor<D>,
    ) -> (Vec<Vec<f32>>, Gradients) {
        let grads = (y.clone() * probe.clone()).sum().backward();
        let dx = x.grad(&grads).expect("x takes a gradient");
        let values = [y.into_data(), dx.into_data()]
            .map(|d| d.try_into_vec::<f32>().expect("f32"))
            .to_vec();
        (values, grads)
    }

    /// A tensor of Normal(`mean`, `std`) values from a generator of the test's own, seeded with
    /// `seed`: burn's generator is one per process, so tests drawing from it on parallel
    /// threads take each other's draws.
    pub(crate) fn normal<const D: usize>(
        shape: [usize; D],
        mean: f32,
        std: f32,
        seed: u64,
        device: &burn::tensor::Device,
    ) -> Tensor<D> {
        use rand::SeedableRng;
        use rand_distr::Distribution;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let dist = rand_distr::Normal::new(mean, std).expect("a finite std");
        let n = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| dist.sample(&mut rng)).collect();
        Tensor::from_data(burn::tensor::TensorData::new(values, shape), device)
    }

    /// Every output `a[k]` within `tol` of `b[k]`, element by element.
    pub(crate) fn assert_all_close(a: &[Vec<f32>], b: &[Vec<f32>], tol: f32, what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: number of outputs");
        for (k, (p, q)) in a.iter().zip(b).enumerate() {
            assert_eq!(p.len(), q.len(), "{what}, output {k}: length");
            let worst = p
                .iter()
                .zip(q)
                .map(|(u, v)| (u - v).abs())
                .fold(0.0, f32::max);
            assert!(worst < tol, "{what}, output {k}: max |diff| {worst}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::elementwise::dropout_apply;
    use super::testing::{assert_all_close, normal};
    use super::*;
    use burn::tensor::Device;

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec().unwrap()
    }

    /// Output and gradients of `f` at `x` (and at the leaves `params`), probed with a fixed
    /// random weighting of the output.
    fn probe<const D: usize, const E: usize>(
        x: &Tensor<D>,
        params: &[Tensor<1>],
        f: impl Fn(Tensor<D>, &[Tensor<1>]) -> Tensor<E>,
    ) -> Vec<Vec<f32>> {
        let xg = x.clone().detach().require_grad();
        let ps: Vec<Tensor<1>> = params
            .iter()
            .map(|p| p.clone().detach().require_grad())
            .collect();
        let y = f(xg.clone(), &ps);
        let w: Tensor<E> = normal(y.dims(), 0.0, 1.0, 99, &y.device());
        let grads = (y.clone() * w).sum().backward();
        let mut out = vec![vals(y), vals(xg.grad(&grads).unwrap())];
        out.extend(ps.iter().map(|p| vals(p.grad(&grads).unwrap())));
        out
    }

    /// The mask is a function of the seed alone: repeatable, independent of thread count.
    #[test]
    fn dropout_mask_depends_on_the_seed_only() {
        let x: Vec<f32> = (0..100_003).map(|i| i as f32).collect();
        let a = dropout_apply(&x, 0.25, 42);
        assert_eq!(a, dropout_apply(&x, 0.25, 42));
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert_eq!(a, one.install(|| dropout_apply(&x, 0.25, 42)));
        assert_ne!(a, dropout_apply(&x, 0.25, 43));
        let kept = a.iter().filter(|&&v| v != 0.0).count() as f64 / (x.len() - 1) as f64;
        assert!((kept - 0.75).abs() < 0.01, "kept {kept}");
        // Independence: neighbours are both kept 0.75² of the time, and the masks of two
        // adjacent seeds agree as often as independent draws would (0.75² + 0.25²).
        let m = |v: &[f32]| v[1..].iter().map(|&v| v != 0.0).collect::<Vec<_>>();
        let (ma, mb) = (m(&a), m(&dropout_apply(&x, 0.25, 43)));
        let frac = |n: usize| n as f64 / ma.len() as f64;
        let both = frac(ma.windows(2).filter(|w| w[0] && w[1]).count());
        assert!((both - 0.5625).abs() < 0.01, "neighbours both kept {both}");
        let agree = frac(ma.iter().zip(&mb).filter(|(p, q)| p == q).count());
        assert!(
            (agree - 0.625).abs() < 0.01,
            "seeds 42 and 43 agree {agree}"
        );
    }

    #[test]
    fn layer_norm_swiglu_and_attention_match_burn_ops() {
        let device = Device::flex().autodiff();
        let x: Tensor<3> = normal([2, 5, 8], 0.3, 1.5, 1, &device);
        let gamma: Tensor<1> = normal([8], 1.0, 0.2, 2, &device);
        let beta: Tensor<1> = normal([8], 0.0, 0.2, 3, &device);
        let fused = probe(&x, &[gamma.clone(), beta.clone()], |x, p| {
            layer_norm(&x, &p[0], Some(&p[1]), 1e-6).expect("Autodiff<Flex>")
        });
        let ops = probe(&x, &[gamma, beta], |x, p| {
            burn::tensor::module::layer_norm(x, p[0].clone(), Some(p[1].clone()), 1e-6)
        });
        assert_all_close(&fused, &ops, 1e-4, "layer norm");

        let fused = probe(&x, &[], |x, _| swiglu(&x).expect("Autodiff<Flex>"));
        let ops = probe(&x, &[], |x, _| {
            let mut halves = x.chunk(2, 2).into_iter();
            let (v, g) = (halves.next().unwrap(), halves.next().unwrap());
            v * burn::tensor::activation::silu(g)
        });
        assert_all_close(&fused, &ops, 1e-4, "swiglu");

        let w: Tensor<1> = normal([10], 0.0, 1.0, 4, &device);
        let fused = probe(&x, std::slice::from_ref(&w), |x, p| {
            let w = p[0].clone().reshape([2, 5]);
            channel_scale(&x.narrow(2, 0, 4), &w).expect("Autodiff<Flex>")
        });
        let ops = probe(&x, std::slice::from_ref(&w), |x, p| {
            x.narrow(2, 0, 4) * p[0].clone().reshape([2, 5, 1])
        });
        assert_all_close(&fused, &ops, 1e-4, "channel scale");

        // d = 8 in 2 heads of 4: qkv [2, 5, 24].
        let qkv: Tensor<3> = normal([2, 5, 24], 0.0, 1.0, 5, &device);
        let fused = probe(&qkv, &[], |x, _| attention(&x, 2).expect("Autodiff<Flex>"));
        let ops = probe(&qkv, &[], |x, _| crate::nn::attention::attend_ops(x, 2));
        assert_all_close(&fused, &ops, 1e-4, "attention");
    }

    /// Both weight layouts, with and without a bias: output, input, weight and bias gradients.
    #[test]
    fn linear_matches_burn_ops() {
        let device = Device::flex().autodiff();
        let x: Tensor<3> = normal([2, 5, 8], 0.3, 1.5, 6, &device);
        // the weight (and bias) travel flattened through `probe`'s parameter list
        let w: Tensor<1> = normal([8 * 6], 0.0, 0.5, 7, &device);
        let b: Tensor<1> = normal([6], 0.0, 0.5, 8, &device);
        for layout in [WeightLayout::InOut, WeightLayout::OutIn] {
            let shape = match layout {
                WeightLayout::InOut => [8, 6],
                WeightLayout::OutIn => [6, 8],
            };
            let as_in_out = |w: Tensor<2>| match layout {
                WeightLayout::InOut => w,
                WeightLayout::OutIn => w.transpose(),
            };
            for params in [vec![w.clone()], vec![w.clone(), b.clone()]] {
                let fused = probe(&x, &params, |x, p| {
                    let w = p[0].clone().reshape(shape);
                    linear(&x, &w, layout, p.get(1)).expect("Autodiff<Flex>")
                });
                let ops = probe(&x, &params, |x, p| {
                    let y = x.matmul(as_in_out(p[0].clone().reshape(shape)).unsqueeze());
                    match p.get(1) {
                        Some(b) => y + b.clone().unsqueeze(),
                        None => y,
                    }
                });
                let what = format!("linear {layout:?}, {} parameters", params.len());
                assert_all_close(&fused, &ops, 1e-4, &what);
            }
        }
    }
}
