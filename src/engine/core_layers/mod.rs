//! Twins of the core layers blocks.

pub(crate) mod autosome;
pub(crate) mod bhi;
pub(crate) mod unlock_dna;
