//! Core layers blocks: `(batch, C1, L1) -> (batch, C2, L2)`.

pub mod autosome;
pub mod bhi;
pub mod bpnet;
pub mod deepstarr;
pub mod mprann;
pub mod unlock_dna;
