//! First layers blocks: `(batch, C_in, L) -> (batch, C1, L)`.

pub mod autosome;
pub mod bhi;
pub mod unlock_dna;
