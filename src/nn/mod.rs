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
