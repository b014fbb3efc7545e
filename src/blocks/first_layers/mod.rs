//! First layers blocks: `(batch, C_in, L) -> (batch, C1, L1)`.

pub mod autosome;
pub mod bhi;
pub mod bpnet;
pub mod deepstarr;
pub mod mprann;
pub mod unlock_dna;
