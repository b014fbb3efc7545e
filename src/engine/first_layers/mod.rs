//! Twins of the first layers blocks.

pub(crate) mod autosome;
pub(crate) mod bhi;
