//! Activation checkpointing (Chen et al. 2016, "Training deep nets with sublinear memory
//! cost"): a block runs forward without keeping its intermediate values, as one graph node
//! that saves only its input; its backward pass runs the block again, on a graph of its own,
//! and back-propagates through that. Memory per block drops from everything its backward pass
//! needs to its input, for one more forward pass of compute.
//!
//! The block's dropout masks come from one seed drawn per call, so the second forward pass
//! draws the same masks; [`checkpointed`] draws that seed whether or not it checkpoints, so a
//! checkpointed and a plain run of the same model take the same steps.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};

use super::elementwise::{draw_seed, with_dropout_stream};
use super::*;

/// Above this many bytes of saved values (for all calls of one block type in a step: the
/// caller's estimate), [`checkpointed`] recomputes instead of keeping them. DREAM-Attn's four
/// conformer layers at 2,114 nt and batch 64 would keep ≈ 18 GB.
pub(crate) const SAVED_ACTIVATIONS_LIMIT: usize = 4 << 30;

/// Whether a block whose saved values the caller estimates at `saved` bytes is checkpointed:
/// above [`SAVED_ACTIVATIONS_LIMIT`], unless `PRIXFIXE_CHECKPOINT` says `always` or `never`
/// (results are the same either way; only memory and time differ).
pub(crate) fn wanted(saved: usize) -> bool {
    match std::env::var("PRIXFIXE_CHECKPOINT").as_deref() {
        Ok("always") => true,
        Ok("never") => false,
        _ => saved > SAVED_ACTIVATIONS_LIMIT,
    }
}

/// `f(module, x)` as one checkpointed node when `checkpoint` and training on `Autodiff<Flex>`;
/// otherwise `f(module, x)` as is. Either way, on the autodiff backend the block's dropout
/// masks come from one seed drawn from the caller's stream (see the module docs).
pub(crate) fn checkpointed<M>(
    module: &M,
    x: Tensor<3>,
    checkpoint: bool,
    f: fn(&M, Tensor<3>) -> Tensor<3>,
) -> Tensor<3>
where
    M: Module + Sync + 'static,
{
    if !crate::nn::training(&x.device()) {
        return f(module, x);
    }
    let seed = draw_seed(&x);
    let plain = || with_dropout_stream(seed, || f(module, x.clone()));
    if !checkpoint {
        return plain();
    }
    let Some(xp) = primitive(&x) else {
        return plain();
    };
    // The parameters, flattened into one tracked vector: the node's second parent, through
    // which their gradients flow back to each of them.
    let mut flat = Flatten(Vec::new());
    module.visit(&mut flat);
    if flat.0.is_empty() {
        return plain();
    }
    let packed = Tensor::cat(flat.0, 0);
    let Some(pp) = primitive(&packed) else {
        return plain();
    };
    // Forward without a graph: the input and parameters as untracked values.
    let frozen = module.clone().map(&mut Untrack);
    let y = with_dropout_stream(seed, || f(&frozen, x.clone().set_require_grad(false)));
    let Some(yp) = primitive(&y) else {
        return plain();
    };
    let saved = Arc::new(Saved {
        module: frozen,
        x: xp.primitive().clone(),
        seed,
        f,
    });
    node(
        CheckpointBackward(std::marker::PhantomData),
        [xp.node(), pp.node()],
        saved,
        yp.primitive().clone(),
    )
}

/// Each float parameter's value, flattened, in the module's visiting order.
struct Flatten(Vec<Tensor<1>>);

impl ModuleVisitor for Flatten {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let v = param.val();
        let n = v.shape().num_elements();
        self.0.push(v.reshape([n]));
    }
}

/// Every float parameter as a value outside any graph.
struct Untrack;

impl ModuleMapper for Untrack {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| t.set_require_grad(false))
    }
}

/// Every float parameter as a fresh leaf taking a gradient (a node of a new graph).
struct Leaves;

impl ModuleMapper for Leaves {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| t.set_require_grad(false).set_require_grad(true))
    }
}

/// Each float parameter's gradient from `grads`, flattened (zeros where it took none), in the
/// module's visiting order.
struct CollectGrads<'a> {
    grads: &'a burn::tensor::Gradients,
    out: Vec<f32>,
}

impl ModuleVisitor for CollectGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let v = param.val();
        match v.grad(self.grads) {
            Some(g) => self
                .out
                .extend(g.into_data().iter::<f32>().collect::<Vec<_>>()),
            None => self
                .out
                .extend(std::iter::repeat_n(0.0, v.shape().num_elements())),
        }
    }
}

/// What the backward pass needs to run the block again.
struct Saved<M> {
    module: M,
    x: FlexTensor,
    seed: u64,
    f: fn(&M, Tensor<3>) -> Tensor<3>,
}

impl<M> std::fmt::Debug for Saved<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("x", &self.x.layout().shape())
            .finish()
    }
}

/// The backward pass of a checkpointed block of type `M`.
#[derive(Debug)]
struct CheckpointBackward<M>(std::marker::PhantomData<M>);

impl<M> Backward<Flex, 2> for CheckpointBackward<M>
where
    M: Module + Sync + 'static,
{
    type State = Arc<Saved<M>>;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let s = &ops.state;
        let device = burn::tensor::Device::flex().autodiff();
        let shape = s.x.layout().shape().to_vec();
        let x: Tensor<3> = Tensor::from_data(
            TensorData::new(values(&s.x).to_vec(), shape.clone()),
            &device,
        )
        .require_grad();
        let dy: Tensor<3> = Tensor::from_data(
            TensorData::new(values(&dy).to_vec(), shape.clone()),
            &device,
        );
        let module = s.module.clone().map(&mut Leaves);
        // The block again, on a graph of its own, with the same dropout masks.
        let y = with_dropout_stream(s.seed, || (s.f)(&module, x.clone()));
        let inner = (y * dy).sum().backward();
        let [xn, pn] = ops.parents;
        if let Some(node) = xn {
            let dx = x.grad(&inner).expect("the input takes a gradient");
            let dx = dx.into_data().try_into_vec::<f32>().expect("f32");
            grads.register::<Flex>(node.id, flex(dx, &shape));
        }
        if let Some(node) = pn {
            let mut collect = CollectGrads {
                grads: &inner,
                out: Vec::new(),
            };
            module.visit(&mut collect);
            let n = collect.out.len();
            grads.register::<Flex>(node.id, flex(collect.out, &[n]));
        }
    }
}
