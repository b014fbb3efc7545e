//! Layers the blocks are made of, beyond burn's own: a BatchNorm with PyTorch's running
//! statistics, a bidirectional LSTM and a multi-head attention stored in PyTorch's layout, and
//! the visitor that names every tensor as the reference's `state_dict` does.

pub mod attention;
pub mod batch_norm;
pub mod conv;
pub mod conv_branches;
pub mod dropout;
pub mod keras;
pub mod layers;
pub mod lstm;
pub mod visit;

pub use attention::MultiHeadAttention;
pub use batch_norm::BatchNorm1d;
pub use conv::Conv1d;
pub use conv_branches::ConvBranches;
pub use dropout::dropout;
pub use layers::{ConvInit, conv1d, forward_linear, layer_norm, linear};
pub use lstm::{BiLstm, LstmDirection};
pub use visit::{NamedWeights, WeightVisitor};

thread_local! {
    static FROZEN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether layers on `device` behave as in training (batch statistics, dropout, activation
/// checkpointing): on an autodiff device, unless inside [`frozen`].
pub fn training(device: &burn::tensor::Device) -> bool {
    device.is_autodiff() && !FROZEN.with(|f| f.get())
}

/// Run `f` with every layer in inference behaviour (running statistics, no dropout) even on an
/// autodiff device: for gradients of a trained model's predictions (attributions), not for
/// training. Scoped to this thread, restored when `f` returns or panics.
pub fn frozen<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            FROZEN.with(|f| f.set(self.0));
        }
    }
    let _restore = Restore(FROZEN.with(|f| f.replace(true)));
    f()
}
