//! Final layers blocks: `(batch, C2, L) -> prediction`, with their loss and decoding.

pub mod bhi;
pub mod deepstarr;
pub mod mprann;
pub mod profile;
pub mod regression;
pub mod soft_class;
pub mod unlock_dna;
