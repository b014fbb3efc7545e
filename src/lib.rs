#![warn(missing_docs)]
//! # prixfixe
//!
//! Sequence-to-expression deep learning for gene regulation: the system of the Random Promoter
//! DREAM Challenge 2022 and its *Prix Fixe* framework (Rafi et al., Nature Biotechnology 2024).
//!
//! Where things live:
//! - [`data`] — where data enters: readers, validation, padding, encoding, soft labels, batches.
//! - [`blocks`] — the first / core / final layers blocks, one file and one registry line each
//!   (its docs say how to add a block).
//! - [`net`] — where a model is assembled from blocks, shape-checked, and the named presets.
//! - [`nn`] — layers beyond burn's own (BatchNorm, LSTM, attention in PyTorch's layout).
//! - [`train`] — where training happens: the DREAM recipe, checkpoints, resuming.
//! - [`predict`] — prediction (forward + reverse complement) and the `Predictor` interface.
//! - [`eval`] — where a score is computed: Pearson, Spearman, MSE.
//! - [`sim`] — the simulated experiment and test set, with known truth.
//! - [`design`] — the genetic algorithm, and design with trained models for an objective.
//! - [`interpret`] — in-silico mutagenesis and variant effects, with their file writers.
//! - [`engine`] — the CPU inference engine: one twin per block, built from the block's module.
//! - `ops` (crate-private) — training operations with our own backward passes, one file per op family.
//! - [`kernels`] — the ground floor: CPU kernels on slices, shared by `ops` and `engine`.
//! - [`device`] — CPU or GPU, never a silent fall-back.
//! - [`weights`] — PyTorch `.pth` and safetensors weights, by the reference's names.
//! - [`error`] — errors that name the file, the line and the problem.
//! - [`output`] — every file written atomically (temporary file, sync, rename).

pub mod atac;
pub mod bench;
pub mod blocks;
pub mod data;
pub mod demo;
pub mod design;
pub mod device;
pub mod engine;
pub mod error;
pub mod eval;
mod figure;
pub mod grid;
pub mod interpret;
pub mod kernels;
pub mod net;
pub mod nn;
pub(crate) mod ops;
pub mod output;
pub mod predict;
pub mod sim;
pub mod train;
pub mod weights;

pub use error::{Error, Problem, Result};
pub use net::{DataKind, NetConfig, PrixFixeNet};
