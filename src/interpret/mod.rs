//! Interpretation (SPEC §6): in-silico mutagenesis, gradient attributions and variant effects, written against the
//! [`Predictor`](crate::predict::Predictor) interface so they work with every Prix Fixe model,
//! imported PyTorch weights and fold ensembles alike.

pub mod attribute;
pub mod attribute_files;
pub mod ism;
pub mod ism_files;
pub mod plot;
pub mod shuffle;
pub mod variants;

pub use attribute::{AttributeOptions, Attribution, Method, attribute, input_planes};
pub use ism::{IsmMap, ism};
pub use variants::{VariantPair, read_pairs, read_vcf};
