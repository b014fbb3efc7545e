//! # prixfixe
//!
//! Sequence-to-expression deep learning for gene regulation: the system of the Random Promoter
//! DREAM Challenge 2022 and its *Prix Fixe* framework (Rafi et al., Nature Biotechnology 2024).
//!
//! Where things live:
//! - [`data`] — where data enters: readers, validation, padding, encoding, soft labels, batches.
//! - [`error`] — errors that name the file, the line and the problem.

pub mod data;
pub mod error;

pub use error::{Error, Problem, Result};
