//! Core layers blocks: `(batch, C1, L) -> (batch, C2, L)`.

pub mod autosome;
pub mod bhi;
pub mod unlock_dna;
